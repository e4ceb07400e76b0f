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
#define KEY_PREFIX   "/api/data/" /* the path of a key is this, then the key */

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
	F__MAX
};
enum field_in { IN_BODY, IN_PATH, IN_QUERY };
enum field_type {
	FT_STRING,     /* a string without U+0000 */
	FT_STRING_NUL, /* a string; one holding U+0000 is cut there (.nul) */
	FT_INT,	       /* an integral JSON number (30.0 is 30), or digits */
	FT_BASE64URL,  /* unpadded base64url, handed out decoded */
	FT_VALUE,      /* any JSON but null, handed out as the text to store */
};
enum field_need {
	FN_OPTIONAL, /* absent or null passes (.state tells which) */
	FN_REQUIRED, /* present, not null, and not an empty string */
};
struct field_value {
	enum { FV_ABSENT = 0, FV_NULL, FV_SET } state;
	const char *s; /* strings: NUL-terminated, len bytes ("" if unset) */
	size_t len;
	int nul;     /* FT_STRING_NUL: the string held a U+0000 */
	long long n; /* FT_INT */
	char *own;   /* FT_VALUE: s, freed with the request */
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
	struct field_value field[F__MAX];

	/* output */
	int status;
	const char *message;
	struct cJSON *data;
	char location[16 + 3 * KEY_MAX + 1];
	char etag[ETAG_MAX];
	char allow[ALLOW_MAX];
	const char *www_auth;

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
int req_etags(const char *, uint64_t *, int, int *);
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
enum err json_parse_body(const char *, size_t, struct cJSON **);
enum json_field json_text(const struct cJSON *, const char **, size_t *);
enum json_field
json_string(const struct cJSON *, const char *, const char **, size_t *);
int json_has_nul(const struct cJSON *);
enum err json_value_print(struct cJSON *, char **, size_t *);

/* auth.c */
int auth_init(void);
int auth_hash_with(const char *, const char *, char *, size_t);
int auth_hash_password(const char *, char *, size_t);
int auth_check_password(const char *, const char *);
int auth_token_new(char *, unsigned char *);
void auth_token_hash(const char *, unsigned char *);
uint64_t auth_rand64(void);

/* db.c */
enum dbr {
	DBR_OK = 0,
	DBR_NONE,   /* no row / no row changed */
	DBR_NOAUTH, /* the token is not valid (unknown, expired, revoked) */
	DBR_DUP_USERNAME, /* unique keys: the username is taken, */
	DBR_DUP_EMAIL,	  /* the email, */
	DBR_DUP_KEY,	  /* the user has this data key */
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
enum dbr db_user_lookup(const char *, uint64_t *, char *, size_t);
enum dbr db_token_insert(const unsigned char *, uint64_t, long long);
enum dbr db_token_user(const unsigned char *, uint64_t *);
enum dbr db_token_delete(const unsigned char *);
enum dbr db_token_purge(unsigned long long *);
enum dbr db_data_insert(const unsigned char *, const char *, size_t,
    const char *, size_t, uint64_t);
enum dbr db_data_get(const unsigned char *, const char *, size_t, uint64_t *,
    uint64_t *, char **, size_t *);
enum dbr db_data_update(const unsigned char *, const char *, size_t,
    const char *, size_t, uint64_t, const uint64_t *);
enum dbr
db_data_delete(const unsigned char *, const char *, size_t, const uint64_t *);
enum dbr
db_data_list(uint64_t, const char *, size_t, const char *, size_t, long long,
    int (*)(void *, const char *, size_t, const char *, size_t), void *);

/* handlers: h_user.c, h_token.c, h_data.c, h_health.c */
struct outcome h_register(struct req *);
struct outcome h_token(struct req *);
struct outcome h_token_delete(struct req *);
struct outcome h_data_post(struct req *);
struct outcome h_data_get(struct req *);
struct outcome h_data_put(struct req *);
struct outcome h_data_delete(struct req *);
struct outcome h_data_list(struct req *);
struct outcome h_health(struct req *);

/* router.c */
int router_init(void);
size_t router_methods(char *, size_t);
void router_handle(struct FCGX_Request *);

/* nginx.c */
int nginx_print(void);

#endif
