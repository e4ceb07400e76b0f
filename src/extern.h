/*
 * kvapi: every declaration shared between source files.  Anything not
 * listed here is static to its file.
 */
#ifndef KVAPI_EXTERN_H
#define KVAPI_EXTERN_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;

#define KVAPI_VERSION PACKAGE_VERSION

#define KEY_MAX	     255 /* bytes of UTF-8 in a key */
#define TOKEN_LEN    43	 /* base64url of 32 random bytes, no padding */
#define TOKEN_RAW    32
#define HASH_LEN     32 /* SHA-256 */
#define PASSWORD_MAX 72 /* bytes: bcrypt ignores the rest */
#define ETAG_MAX     32
#define ETAGS_MAX    8 /* entity tags of an If-Match list that count */
#define KEY_PREFIX   "/api/data/" /* the path of a key is this, then the key */
#define SESSION_RAW  16		  /* bytes of a session id */
#define SESSION_LEN  22		  /* its base64url text, no padding */
#define UA_MAX	     255	  /* bytes of a session's user agent */
#define TIME_LEN     20		  /* RFC 3339 UTC: 2026-12-01T09:00:00Z */
#define TTL_MAX	     31536000	  /* seconds: a year */

/*
 * The error table (err.c).  Handlers return one of these; only the
 * router turns it into a response.
 */
enum err {
	ERR_OK = 0,
	ERR_INVALID_REQUEST,
	ERR_INVALID_PASSWORD,
	ERR_INVALID_AGE,
	ERR_INVALID_GENDER,
	ERR_USERNAME_EXISTS,
	ERR_EMAIL_EXISTS,
	ERR_MISSING_FIELDS,
	ERR_INVALID_CREDENTIALS,
	ERR_INVALID_TOKEN,
	ERR_INVALID_KEY,
	ERR_INVALID_VALUE,
	ERR_KEY_EXISTS,
	ERR_KEY_NOT_FOUND,
	ERR_INVALID_JSON,
	ERR_UNSUPPORTED_MEDIA_TYPE,
	ERR_PAYLOAD_TOO_LARGE,
	ERR_BAD_REQUEST,
	ERR_NOT_FOUND,
	ERR_METHOD_NOT_ALLOWED,
	ERR_TOO_MANY_REQUESTS,
	ERR_PRECONDITION_FAILED,
	ERR_INVALID_QUERY,
	ERR_INVALID_TTL,
	ERR_QUOTA_EXCEEDED,
	ERR_CHANGES_EXPIRED,
	ERR_INVALID_BATCH,
	ERR_INVALID_GRANT,
	ERR_UNSUPPORTED_GRANT_TYPE,
	ERR_INVALID_PROFILE,
	ERR_MISSING_PASSWORDS,
	ERR_SESSION_NOT_FOUND,
	ERR_ACCOUNT_DISABLED,
	ERR_ACCOUNT_LOCKED,
	ERR_SERVICE_UNAVAILABLE,
	ERR_INTERNAL,
	ERR__MAX
};

struct err_info {
	int status;
	const char *code;
	const char *message;
};

const struct err_info *err_info(enum err);
const char *http_reason(int status);

/* Configuration (config.c): defaults, then the file, then KVAPI_* env. */
struct config {
	char *db_host;
	char *db_hosts; /* a node list (Galera), instead of db_host */
	char *db_socket;
	char *db_name;
	char *db_user;
	char *db_password;
	char *db_option_file;
	char *db_option_group;
	unsigned int db_port;
	unsigned int db_connect_timeout;
	unsigned int db_read_timeout;
	unsigned int db_write_timeout;
	unsigned int db_galera;
	long long token_lifetime;
	long long token_purge_interval;
	long long refresh_lifetime;
	unsigned int login_max_failures;
	long long login_failure_window;
	long long quota_keys; /* per user (db.c hands them to the triggers) */
	long long quota_bytes;
	long long changes_retention; /* seconds the feed keeps a change */
	int bcrypt_cost;
	size_t value_max;
	size_t body_max;
	char *cors_origins; /* NULL or "*" means any origin */
	int log_level;
	char *auth_rate; /* for the nginx site (script/stack): not used here */
	char *auth_burst;
	unsigned int conn_per_address; /* the site's too, as the two above */
	unsigned int header_timeout;
	unsigned int body_timeout;
	unsigned int keepalive_timeout;
	char *metrics_dir;    /* every worker's metrics file (metrics.c) */
	char *metrics_listen; /* for the nginx site's metrics server */
};

extern struct config cfg;

int config_load(const char *path);
int config_print(const char *);
void config_free(void);

/* Logging (log.c) to stderr, which spawn-fcgi leaves to the log file. */
enum { LOG_ERR_ = 0, LOG_WARN_, LOG_INFO_, LOG_DEBUG_ };
extern const char *log_request_id;
int log_level_parse(const char *);
const char *log_level_name(int);
void log_err(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));

/*
 * Declared fields.  Each route of router.c's table lists the fields it
 * takes, in the order the contract checks them: where the field is (the
 * JSON body, the path parameter, the query string), its type, whether it
 * must be there, the rule its value must pass (valid.c) and the error a
 * failure answers.  field.c checks them before the handler runs, which
 * then reads r->field[F_x]: present, typed and valid.  A new field is a
 * new id here and rows in the table.
 */
enum field_id {
	F_USERNAME,
	F_EMAIL,
	F_PASSWORD,
	F_FULL_NAME,
	F_AGE,
	F_GENDER,
	F_KEY,
	F_VALUE,
	F_LIMIT,
	F_PREFIX,
	F_CURSOR,
	F_GRANT_TYPE,
	F_REFRESH_TOKEN,
	F_CURRENT_PASSWORD,
	F_NEW_PASSWORD,
	F_SESSION_ID,
	F_TTL,
	F_PATCH,
	F_SINCE,
	F__MAX
};
enum field_in {
	IN_BODY,  /* a member of the JSON body */
	IN_WHOLE, /* the JSON body itself (a merge patch) */
	IN_PATH,
	IN_QUERY
};
enum field_type {
	FT_STRING,     /* a string without U+0000 */
	FT_STRING_NUL, /* a string; one holding U+0000 is cut there (.nul) */
	FT_INT,	       /* an integral JSON number (30.0 is 30), or digits */
	FT_BASE64URL,  /* unpadded base64url, handed out decoded */
	FT_VALUE,      /* any JSON but null, handed out as the text to store */
	FT_JSON,       /* any JSON but null, of any size: a merge patch */
};
enum field_need {
	FN_OPTIONAL, /* absent or null passes (.state tells which) */
	FN_REQUIRED, /* present, not null, and not an empty string */
	FN_NOT_NULL, /* absent passes; null does not */
	FN_ABSENT,   /* must not be there at all, not even null */
};
struct field_value {
	enum { FV_ABSENT = 0, FV_NULL, FV_SET } state;
	const char *s; /* strings: NUL-terminated, len bytes ("" if unset) */
	size_t len;
	int nul;		  /* FT_STRING_NUL: the string held a U+0000 */
	long long n;		  /* FT_INT */
	char *own;		  /* FT_VALUE: s, freed with the request */
	const struct cJSON *item; /* a body field's JSON, as parsed */
};
/* Members in the order a row reads; rows are few and static. */
struct field { // NOLINT(clang-analyzer-optin.performance.Padding)
	enum field_id id;
	const char *name;
	enum field_in in;
	enum field_type type;
	enum field_need need;
	int (*valid)(const struct field_value *); /* NULL: any of the type */
	enum err err;				  /* what a failure answers */
	/* NULL, or the row applies only when this says so of the fields
	 * checked so far (the token grant's fields depend on grant_type). */
	int (*when)(const struct field_value *);
};

/* The longest text a path or query field holds: a key. */
#define FIELD_TEXT_MAX KEY_MAX
#define FIELD_TEXTS    3 /* path and query fields a route may have */
#define ALLOW_MAX      64

/*
 * One request and its answer.  request.c fills the input from the
 * FastCGI parameters and the body; the router adds the token's hash, the
 * parsed body and the checked fields; a handler fills the output, which
 * response.c writes.
 */
struct req {
	/* input */
	const char *method;
	const char *path;  /* PATH_INFO: decoded by nginx, for routing */
	const char *uri;   /* REQUEST_URI: raw, for the key bytes */
	const char *query; /* QUERY_STRING */
	const char *ctype;
	const char *authz;
	const char *origin;
	const char *user_agent;
	const char *acrh; /* Access-Control-Request-Headers */
	const char *content_length;
	const char *if_match;
	const char *if_none_match;
	char *body; /* NUL-terminated, bodylen bytes */
	size_t bodylen;

	/* what the router makes of it */
	unsigned char token_hash[HASH_LEN]; /* of the presented token */
	struct cJSON *json; /* the parsed body, when the route takes one */
	const char *param;  /* raw path parameter (a key), paramlen bytes */
	size_t paramlen;
	int route; /* routes[] row of the path (metrics), -1: none */
	struct field_value field[F__MAX];

	/* output */
	int status;
	const char *message;
	struct cJSON *data;
	char location[16 + 3 * KEY_MAX + 1];
	char etag[ETAG_MAX];
	char allow[ALLOW_MAX];
	const char *www_auth;
	long long retry_after; /* seconds, for ACCOUNT_LOCKED */
	/* The token's user once a statement has read it, else 0: sent to
	 * nginx as X-Kvapi-User for its access log (nginx strips it). */
	uint64_t user;

	/* Last, and not zeroed: field.c writes each before reading it. */
	char texts[FIELD_TEXTS][FIELD_TEXT_MAX + 1]; /* decoded field text */
};

/*
 * What a handler returns: err (ERR_OK when r's output is the answer), and
 * whether one of its statements has checked the request's token, which
 * data statements do as they run (db.c).  On an authenticated route the
 * router looks the token up itself when none did.
 */
struct outcome {
	enum err err;
	int checked;
};
struct outcome outcome(enum err);

/* request.c */
struct FCGX_Request;
struct FCGX_Stream;
void req_init(struct req *, struct FCGX_Request *);
enum err req_read_body(struct FCGX_Stream *, struct req *);
int req_bearer(const char *, char *);
int req_json_ctype(const char *);
int req_patch_ctype(const char *);
int req_etags(const char *, uint64_t *, int, int *);
int req_etag_matches(const char *, uint64_t);
int req_query(const char *, const char *, char *, size_t, size_t *);

/* codec.c */
int utf8_valid(const char *, size_t, size_t *);
int req_pct_decode(const char *, size_t, char *, size_t, size_t *);
size_t req_pct_encode(const char *, size_t, char *, size_t);
size_t b64url_encode(const unsigned char *, size_t, char *, size_t);
int b64url_decode(const char *, size_t, unsigned char *, size_t, size_t *);
void req_etag(uint64_t, char *);

/* valid.c: rules on bytes, and the same as rules of field rows */
#define EMAIL_MAX 254
#define LIST_MAX  1000 /* items of a listing page */
int req_text_valid(const char *, size_t, size_t, size_t);
int user_name_valid(const char *, size_t);
int req_key_valid(const char *, size_t);
int valid_username(const struct field_value *);
int valid_email(const struct field_value *);
int valid_full_name(const struct field_value *);
int valid_password(const struct field_value *);
int valid_age(const struct field_value *);
int valid_gender(const struct field_value *);
int valid_key(const struct field_value *);
int valid_prefix(const struct field_value *);
int valid_limit(const struct field_value *);
int valid_grant_type(const struct field_value *);
int valid_token_text(const struct field_value *);
int valid_session_id(const struct field_value *);
int valid_ttl(const struct field_value *);
int grant_password(const struct field_value *);
int grant_refresh(const struct field_value *);
size_t user_agent_clean(const char *, char *);

/* field.c */
enum err field_check(struct req *, const struct field *, size_t);
void field_free(struct req *);

/* response.c, cors.c */
void resp_header(struct FCGX_Stream *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
void resp_write(struct FCGX_Stream *, struct req *, enum err);
char *resp_error_text(enum err);
extern const char cors_expose[];
void cors_headers(struct FCGX_Stream *, const struct req *);
void cors_preflight(struct FCGX_Stream *, const struct req *);
int cors_allows(const char *);

/* json.c: a strict check beside cJSON, and typed field access. */
enum json_field {
	JF_ABSENT = 0, /* missing, or null */
	JF_OK,
	JF_WRONG, /* present with the wrong type or an invalid value */
};
enum err json_parse_body(const char *, size_t, int, struct cJSON **);
enum json_field json_text(const struct cJSON *, const char **, size_t *);
enum json_field
json_string(const struct cJSON *, const char *, const char **, size_t *);
int json_has_nul(const struct cJSON *);
enum err json_value_check(struct cJSON *);
enum err json_value_print(struct cJSON *, char **, size_t *);
struct cJSON *json_merge_patch(struct cJSON *, const struct cJSON *);

/* auth.c */
int auth_init(void);
int auth_hash_with(const char *, const char *, char *, size_t);
int auth_hash_password(const char *, char *, size_t);
int auth_check_password(const char *, const char *);
int auth_token_new(char *, unsigned char *);
int auth_session_new(char *, unsigned char *);
void auth_name_hash(const char *, size_t, unsigned char *);
int auth_token_hash(const char *, unsigned char *);
uint64_t auth_rand64(void);

/* db.c */
enum dbr {
	DBR_OK = 0,
	DBR_NONE,   /* no row / no row changed */
	DBR_NOAUTH, /* the token is not valid (unknown, expired, revoked) */
	DBR_DUP_USERNAME, /* unique keys: the username is taken, */
	DBR_DUP_EMAIL,	  /* the email, */
	DBR_DISABLED,	  /* the account is disabled */
	DBR_QUOTA,	  /* the write would pass the user's quota */
	DBR_REFUSED,	  /* the caller's callback refused: nothing written */
	DBR_CONFLICT,	  /* a transaction lost a deadlock or certification
			     three times: may be tried again */
	DBR_DOWN,	  /* cannot reach the database */
	DBR_ERR,	  /* anything else: logged */
	DBR__MAX
};
/* err.c: what each result answers; DBR_NONE answers the second argument */
enum err err_of_db(enum dbr, enum err);
struct outcome outcome_db(enum dbr, enum err);
int db_init(void);
void db_close(void);
enum dbr db_ping(void);
enum dbr db_user_insert(const char *, const char *, const char *, const char *,
    const char *, int, const char *, uint64_t *);
enum dbr db_user_lookup(const char *, uint64_t *, char *, size_t, int *);
enum dbr db_token_user(const unsigned char *, uint64_t *);
enum dbr db_token_end(const unsigned char *, uint64_t *);
enum dbr db_token_purge(unsigned long long *);

/*
 * What a login or a refresh hands out: a new access token and refresh
 * token (text for the client, SHA-256 for the database) and the
 * session's id (new for a login; a refresh's is the session's own).
 */
struct grant {
	char access[TOKEN_LEN + 1];
	unsigned char access_hash[HASH_LEN];
	char refresh[TOKEN_LEN + 1];
	unsigned char refresh_hash[HASH_LEN];
	char session[SESSION_LEN + 1];
	unsigned char session_raw[SESSION_RAW];
};
enum dbr
db_login_failures(const unsigned char *, unsigned long long *, long long *);
enum dbr db_login_failed(const unsigned char *);
enum dbr db_login(uint64_t, const char *, const unsigned char *, const char *,
    const struct grant *);
enum dbr db_refresh(const unsigned char *, struct grant *, int *);

/* The account of a token: its user, its session, its password hash. */
struct account {
	uint64_t user;
	unsigned char session[SESSION_RAW];
	int has_session;
	char hash[128];
};
enum dbr db_account(const unsigned char *, struct account *);
struct profile {
	uint64_t id;
	char username[65];
	char email[EMAIL_MAX + 1];
	char full_name[4 * 128 + 1];
	uint64_t age; /* 0: none */
	int has_gender;
	char gender[4 * 32 + 1];
	char created[TIME_LEN + 1];
	uint64_t keys, bytes;
};
enum dbr db_profile(const unsigned char *, struct profile *);
/* A profile change: each field is set only when its pointer is not NULL
 * (age 0 and gender "" clear them). */
struct profile_change {
	const char *email, *email_key, *full_name, *gender;
	const long long *age;
};
enum dbr
db_profile_update(const unsigned char *, const struct profile_change *);
enum dbr
db_password_change(const struct account *, const unsigned char *, const char *);
enum dbr db_user_delete(uint64_t);
struct session_row {
	unsigned char id[SESSION_RAW];
	char created[TIME_LEN + 1], refreshed[TIME_LEN + 1],
	    expires[TIME_LEN + 1];
	int refreshed_null, agent_null;
	char agent[UA_MAX + 1];
};
enum dbr
db_sessions(uint64_t, int (*)(void *, const struct session_row *), void *);
enum dbr db_session_end(uint64_t, const unsigned char *);
enum dbr db_sessions_end_others(const struct account *, unsigned long long *);
/* kvapi-admin's view of a user: the profile (db_admin_users fills its
 * id, username, email and created only) and when it was disabled. */
struct admin_user {
	struct profile p;
	int disabled_null;
	char disabled[TIME_LEN + 1];
};
struct admin_stats {
	uint64_t users, disabled, keys, sessions, tokens;
};
enum dbr db_admin_users(const char *, const char *, size_t,
    int (*)(void *, const struct admin_user *), void *, char *, size_t,
    unsigned long long *);
enum dbr db_admin_user(const char *, struct admin_user *);
enum dbr
db_admin_account(uint64_t, int, unsigned long long *, unsigned long long *);
enum dbr db_admin_stats(struct admin_stats *);
/* A pair as a write gives it: key, the value's text, its new version and
 * its TTL in seconds (0: none). */
struct pair {
	const char *k;
	size_t klen;
	const char *v;
	size_t vlen;
	uint64_t version;
	long long ttl;
};
/* A pair as it is stored: the user's, its version, its value (when
 * asked for: malloc'd) and its expiry ("" when it has none). */
struct stored {
	uint64_t user, version;
	char *v;
	size_t vlen;
	char expires_at[TIME_LEN + 1];
};
enum dbr db_data_insert(const unsigned char *, const struct pair *);
enum dbr
db_data_get(const unsigned char *, const char *, size_t, int, struct stored *);
enum dbr
db_data_update(const unsigned char *, const struct pair *, const uint64_t *);
enum dbr
db_data_delete(const unsigned char *, const char *, size_t, const uint64_t *);
enum dbr db_data_patch(const unsigned char *, const char *, size_t, uint64_t,
    int (*)(void *, const struct stored *, const char **, size_t *), void *);
enum dbr db_data_expire(const unsigned char *, unsigned long long *);
enum dbr
db_data_lock(const unsigned char *, const char *, size_t, int, struct stored *);
enum dbr db_batch(const unsigned char *, enum dbr (*)(void *), void *);
/* The feed's state for a user: its last revision, the highest purged. */
struct feed {
	uint64_t user, rev, purged_rev;
};
enum dbr db_feed(const unsigned char *, struct feed *);
enum dbr db_changes(uint64_t, uint64_t, long long,
    int (*)(void *, uint64_t, const char *, size_t, const uint64_t *), void *);
enum dbr
db_data_list(uint64_t, const char *, size_t, const char *, size_t, long long,
    int (*)(void *, const char *, size_t, const char *, size_t, const char *),
    void *);

/* handlers: h_user.c, h_token.c, h_session.c, h_data.c, h_health.c */
struct outcome h_register(struct req *);
struct outcome h_token(struct req *);
struct outcome h_token_delete(struct req *);
struct outcome h_me_get(struct req *);
struct outcome h_me_patch(struct req *);
struct outcome h_me_password(struct req *);
struct outcome h_me_delete(struct req *);
struct outcome h_sessions_list(struct req *);
struct outcome h_sessions_end_others(struct req *);
struct outcome h_session_end(struct req *);
int
session_add(struct cJSON *, const struct session_row *, const struct account *);
struct outcome h_data_post(struct req *);
struct outcome h_data_get(struct req *);
struct outcome h_data_put(struct req *);
struct outcome h_data_patch(struct req *);
struct outcome h_data_delete(struct req *);
struct outcome h_data_list(struct req *);
struct outcome h_changes(struct req *);
struct outcome h_batch(struct req *);
struct outcome h_health(struct req *);

/* router.c */
int router_init(void);
size_t router_methods(char *, size_t);
void router_handle(struct FCGX_Request *);
int router_route(size_t, const char **, const char **);

/* nginx.c */
int nginx_print(void);

/*
 * Metrics (metrics.c): counters every worker keeps in a file of its own
 * under metrics_dir, summed by GET /metrics on the metrics listener.
 * metric_inc is one increment in memory: call it where the event is.
 */
enum metric {
	M_DB_ERR_CONNECT,
	M_DB_ERR_LOST,
	M_DB_ERR_QUERY,
	M_DB_RECONNECT,
	M_LOGIN_OK,
	M_LOGIN_FAILED,
	M_LOGIN_LOCKED,
	M_LOGIN_DISABLED,
	M_SESSION_OPENED,
	M_SESSION_REFRESHED,
	M_REFRESH_REUSE,
	M_QUOTA_REFUSED, /* a write refused by the account's quota */
	M_WORKER_START,
	M_WORKER_CRASH,
	M__MAX
};
int metrics_init(void);
void metrics_close(void);
void metrics_serve(struct FCGX_Stream *);
void metric_inc(enum metric);
uint64_t metric_now(void);
void metric_request(int, const char *, int, uint64_t);
void metric_bcrypt(uint64_t);

#endif
