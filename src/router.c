/*
 * The router: ONE table of routes, each with the fields it takes, and the
 * steps every request goes through in the contract's order (API.md,
 * "Validation order is fixed"): the route (404, 405), the form of the
 * Bearer token (401), Content-Type (415), the body (413, 400), its JSON
 * (400), the route's fields in the order they are declared, then the
 * handler.  Control goes one way: a handler gets checked fields, calls
 * the database and returns what happened (struct outcome); it never
 * calls back in here.  Data statements check the token as they run (one
 * round trip, see db.c); a request that ended before any statement did
 * has its token looked up here, so a token that is not valid is still
 * the first error answered.  response.c writes the answer, cors.c the
 * preflight.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <fcgiapp.h>

#include "extern.h"

/*
 * The fields of each route, in the order API.md's error table checks
 * them; the first that fails is answered with its error.
 */
// clang-format off
static const struct field register_fields[] = {
    {F_USERNAME,  "username",  IN_BODY, FT_STRING,     FN_REQUIRED, valid_username,  ERR_INVALID_REQUEST, NULL},
    {F_EMAIL,     "email",     IN_BODY, FT_STRING,     FN_REQUIRED, valid_email,     ERR_INVALID_REQUEST, NULL},
    /* Any non-empty string first; its length is judged after full_name. */
    {F_PASSWORD,  "password",  IN_BODY, FT_STRING_NUL, FN_REQUIRED, NULL,            ERR_INVALID_REQUEST, NULL},
    {F_FULL_NAME, "full_name", IN_BODY, FT_STRING,     FN_REQUIRED, valid_full_name, ERR_INVALID_REQUEST, NULL},
    {F_PASSWORD,  "password",  IN_BODY, FT_STRING_NUL, FN_REQUIRED, valid_password,  ERR_INVALID_PASSWORD, NULL},
    {F_AGE,       "age",       IN_BODY, FT_INT,        FN_OPTIONAL, valid_age,       ERR_INVALID_AGE, NULL},
    {F_GENDER,    "gender",    IN_BODY, FT_STRING,     FN_OPTIONAL, valid_gender,    ERR_INVALID_GENDER, NULL},
};
/*
 * The token's grant decides the rest: a login's username and password
 * (strings holding a U+0000 are strings: they match nobody, h_token.c),
 * or a refresh's token.
 */
static const struct field token_fields[] = {
    {F_GRANT_TYPE, "grant_type", IN_BODY, FT_STRING, FN_OPTIONAL, valid_grant_type, ERR_UNSUPPORTED_GRANT_TYPE, NULL},
    {F_USERNAME,  "username",  IN_BODY, FT_STRING_NUL, FN_REQUIRED, NULL,            ERR_MISSING_FIELDS, grant_password},
    {F_PASSWORD,  "password",  IN_BODY, FT_STRING_NUL, FN_REQUIRED, NULL,            ERR_MISSING_FIELDS, grant_password},
    {F_REFRESH_TOKEN, "refresh_token", IN_BODY, FT_STRING, FN_REQUIRED, valid_token_text, ERR_INVALID_GRANT, grant_refresh},
};
/* A profile change: register's rules; username and password not at all. */
static const struct field profile_fields[] = {
    {F_USERNAME,  "username",  IN_BODY, FT_STRING,     FN_ABSENT,   NULL,            ERR_INVALID_PROFILE, NULL},
    {F_PASSWORD,  "password",  IN_BODY, FT_STRING,     FN_ABSENT,   NULL,            ERR_INVALID_PROFILE, NULL},
    {F_EMAIL,     "email",     IN_BODY, FT_STRING,     FN_NOT_NULL, valid_email,     ERR_INVALID_PROFILE, NULL},
    {F_FULL_NAME, "full_name", IN_BODY, FT_STRING,     FN_NOT_NULL, valid_full_name, ERR_INVALID_PROFILE, NULL},
    {F_AGE,       "age",       IN_BODY, FT_INT,        FN_OPTIONAL, valid_age,       ERR_INVALID_AGE, NULL},
    {F_GENDER,    "gender",    IN_BODY, FT_STRING,     FN_OPTIONAL, valid_gender,    ERR_INVALID_GENDER, NULL},
};
static const struct field password_fields[] = {
    {F_CURRENT_PASSWORD, "current_password", IN_BODY, FT_STRING_NUL, FN_REQUIRED, NULL, ERR_MISSING_PASSWORDS, NULL},
    {F_NEW_PASSWORD, "new_password", IN_BODY, FT_STRING_NUL, FN_REQUIRED, NULL,  ERR_MISSING_PASSWORDS, NULL},
    {F_NEW_PASSWORD, "new_password", IN_BODY, FT_STRING_NUL, FN_REQUIRED, valid_password, ERR_INVALID_PASSWORD, NULL},
};
/* A missing password is a wrong one (docs/decisions.md). */
static const struct field delete_user_fields[] = {
    {F_PASSWORD,  "password",  IN_BODY, FT_STRING_NUL, FN_REQUIRED, NULL,            ERR_INVALID_CREDENTIALS, NULL},
};
static const struct field session_fields[] = {
    {F_SESSION_ID, "session_id", IN_PATH, FT_STRING,   FN_REQUIRED, valid_session_id, ERR_SESSION_NOT_FOUND, NULL},
};
static const struct field new_pair_fields[] = {
    {F_KEY,       "key",       IN_BODY, FT_STRING,     FN_REQUIRED, valid_key,       ERR_INVALID_KEY, NULL},
    {F_VALUE,     "value",     IN_BODY, FT_VALUE,      FN_REQUIRED, NULL,            ERR_INVALID_VALUE, NULL},
    {F_TTL,       "ttl",       IN_BODY, FT_INT,        FN_OPTIONAL, valid_ttl,       ERR_INVALID_TTL, NULL},
};
static const struct field key_fields[] = {
    {F_KEY,       "key",       IN_PATH, FT_STRING,     FN_REQUIRED, valid_key,       ERR_INVALID_KEY, NULL},
};
static const struct field put_fields[] = {
    {F_KEY,       "key",       IN_PATH, FT_STRING,     FN_REQUIRED, valid_key,       ERR_INVALID_KEY, NULL},
    {F_VALUE,     "value",     IN_BODY, FT_VALUE,      FN_REQUIRED, NULL,            ERR_INVALID_VALUE, NULL},
    {F_TTL,       "ttl",       IN_BODY, FT_INT,        FN_OPTIONAL, valid_ttl,       ERR_INVALID_TTL, NULL},
};
/* The body is the merge patch itself: any JSON but null. */
static const struct field patch_fields[] = {
    {F_KEY,       "key",       IN_PATH, FT_STRING,     FN_REQUIRED, valid_key,       ERR_INVALID_KEY, NULL},
    {F_PATCH,     "patch",     IN_WHOLE, FT_JSON,      FN_REQUIRED, NULL,            ERR_INVALID_VALUE, NULL},
};
static const struct field changes_fields[] = {
    {F_SINCE,     "since",     IN_QUERY, FT_INT,       FN_OPTIONAL, NULL,            ERR_INVALID_QUERY, NULL},
    {F_LIMIT,     "limit",     IN_QUERY, FT_INT,       FN_OPTIONAL, valid_limit,     ERR_INVALID_QUERY, NULL},
};
static const struct field list_fields[] = {
    {F_LIMIT,     "limit",     IN_QUERY, FT_INT,       FN_OPTIONAL, valid_limit,     ERR_INVALID_QUERY, NULL},
    {F_PREFIX,    "prefix",    IN_QUERY, FT_STRING,    FN_OPTIONAL, valid_prefix,    ERR_INVALID_QUERY, NULL},
    {F_CURSOR,    "cursor",    IN_QUERY, FT_BASE64URL, FN_OPTIONAL, valid_key,       ERR_INVALID_QUERY, NULL},
};

#define FIELDS(a) (a), sizeof(a) / sizeof((a)[0])
#define NO_FIELDS NULL, 0

/*
 * A path ending in '/' is a prefix: what follows it in the raw URI is the
 * route's path parameter (IN_PATH).  HEAD is served wherever GET is.  A
 * body is a JSON object (B_OBJECT), or any JSON value (B_VALUE: a merge
 * patch).
 */
enum { B_NONE, B_OBJECT, B_VALUE };
static const struct route {
	const char *path;
	const char *method;
	int auth; /* needs a Bearer token */
	int body; /* the JSON body it takes: B_* */
	struct outcome (*fn)(struct req *);
	const struct field *fields; /* checked before fn, in this order */
	size_t nfields;
} routes[] = {
    {"/api/register", "POST",   0, B_OBJECT, h_register,     FIELDS(register_fields)},
    {"/api/token",    "POST",   0, B_OBJECT, h_token,        FIELDS(token_fields)},
    {"/api/token",    "DELETE", 1, B_NONE,   h_token_delete, NO_FIELDS},
    {"/api/users/me", "GET",    1, B_NONE,   h_me_get,       NO_FIELDS},
    {"/api/users/me", "HEAD",   1, B_NONE,   h_me_get,       NO_FIELDS},
    {"/api/users/me", "PATCH",  1, B_OBJECT, h_me_patch,     FIELDS(profile_fields)},
    {"/api/users/me", "DELETE", 1, B_OBJECT, h_me_delete,    FIELDS(delete_user_fields)},
    {"/api/users/me/password", "PUT", 1, B_OBJECT, h_me_password, FIELDS(password_fields)},
    {"/api/sessions", "GET",    1, B_NONE,   h_sessions_list, NO_FIELDS},
    {"/api/sessions", "HEAD",   1, B_NONE,   h_sessions_list, NO_FIELDS},
    {"/api/sessions", "DELETE", 1, B_NONE,   h_sessions_end_others, NO_FIELDS},
    {"/api/sessions/", "DELETE", 1, B_NONE,   h_session_end, FIELDS(session_fields)},
    {"/api/data",     "POST",   1, B_OBJECT, h_data_post,    FIELDS(new_pair_fields)},
    {"/api/data",     "GET",    1, B_NONE,   h_data_list,    FIELDS(list_fields)},
    {"/api/data",     "HEAD",   1, B_NONE,   h_data_list,    FIELDS(list_fields)},
    {KEY_PREFIX,      "GET",    1, B_NONE,   h_data_get,     FIELDS(key_fields)},
    {KEY_PREFIX,      "HEAD",   1, B_NONE,   h_data_get,     FIELDS(key_fields)},
    {KEY_PREFIX,      "PUT",    1, B_OBJECT, h_data_put,     FIELDS(put_fields)},
    {KEY_PREFIX,      "PATCH",  1, B_VALUE,  h_data_patch,   FIELDS(patch_fields)},
    {KEY_PREFIX,      "DELETE", 1, B_NONE,   h_data_delete,  FIELDS(key_fields)},
    {"/api/batch",    "POST",   1, B_OBJECT, h_batch,        NO_FIELDS},
    {"/api/changes",  "GET",    1, B_NONE,   h_changes,      FIELDS(changes_fields)},
    {"/api/changes",  "HEAD",   1, B_NONE,   h_changes,      FIELDS(changes_fields)},
    {"/api/health",   "GET",    0, B_NONE,   h_health,       NO_FIELDS},
    {"/api/health",   "HEAD",   0, B_NONE,   h_health,       NO_FIELDS},
};
// clang-format on
#define NROUTES (sizeof routes / sizeof routes[0])

/*
 * The path a request routes on, n bytes at *p: a raw URI under /api/data/
 * is always a key's (nginx has resolved dot segments in PATH_INFO, so the
 * key ".." would look like /api/), or with no key the collection's; any
 * other path is PATH_INFO.  A trailing slash is the same route as none
 * (API.md, Transport: Express's non-strict routing), but a key may end
 * in one: /api/data/k/ is the key "k/".
 */
static void
route_path(const struct req *r, const char **p, size_t *n)
{
	const size_t plen = sizeof KEY_PREFIX - 1;

	if (r->uri != NULL && strncmp(r->uri, KEY_PREFIX, plen) == 0) {
		*p = r->uri;
		if ((*n = strcspn(r->uri, "?")) == plen)
			(*n)--;
		return;
	}
	*p = r->path;
	*n = strlen(r->path);
	if (*n > 1 && r->path[*n - 1] == '/')
		(*n)--;
}

/* Does path p (n bytes) name rt's path?  A prefix needs a rest. */
static int
route_match(const struct route *rt, const char *p, size_t n)
{
	size_t len = strlen(rt->path);

	if (rt->path[len - 1] == '/')
		return n > len && memcmp(p, rt->path, len) == 0;
	return n == len && memcmp(p, rt->path, len) == 0;
}

/*
 * The route of a request, and in *any the first row of its path (NULL:
 * no such path).  The path parameter of a prefix row is taken from the
 * raw URI only, never from the decoded PATH_INFO.
 */
static const struct route *
route_find(struct req *r, const struct route **any)
{
	const char *p;
	size_t n, len;

	route_path(r, &p, &n);
	*any = NULL;
	for (size_t i = 0; i < NROUTES; i++) {
		const struct route *rt = &routes[i];

		if (!route_match(rt, p, n))
			continue;
		if (*any == NULL) {
			*any = rt;
			r->route = (int)i;
		}
		if (strcmp(rt->method, r->method) != 0)
			continue;
		len = strlen(rt->path);
		if (rt->path[len - 1] != '/')
			return rt;
		if (p == r->uri) {
			r->param = p + len;
			r->paramlen = n - len;
		} else if (r->uri != NULL &&
		    strncmp(r->uri, rt->path, len) == 0) {
			/* Not a key: a trailing slash is the same route. */
			r->param = r->uri + len;
			r->paramlen = strcspn(r->param, "?");
			if (r->paramlen > 0 && r->param[r->paramlen - 1] == '/')
				r->paramlen--;
		}
		return rt;
	}
	return NULL;
}

/*
 * Add name to the method list of o bytes in buf (cap bytes): the new
 * length, or cap when it does not fit (router_init makes sure all do).
 */
static size_t
list_add(char *buf, size_t cap, size_t o, const char *name)
{
	int k;

	if (o >= cap)
		return cap;
	k = snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", name);
	return k < 0 || (size_t)k >= cap - o ? cap : o + (size_t)k;
}

/* The Allow header of the path of rt, from the table, into buf. */
static size_t
allow_for(const struct route *rt, char *buf, size_t cap)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NROUTES; i++)
		if (strcmp(routes[i].path, rt->path) == 0)
			o = list_add(buf, cap, o, routes[i].method);
	return list_add(buf, cap, o, "OPTIONS");
}

/*
 * Every method the table answers somewhere, in RFC 9110's order (PATCH,
 * RFC 5789, after PUT), and OPTIONS: the Allow of the 405 nginx answers
 * itself, to TRACE and CONNECT on any path (nginx.c).
 */
static const char *const method_order[] = {
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
#define NMETHODS (sizeof method_order / sizeof method_order[0])

static int
routed(const char *method)
{
	for (size_t i = 0; i < NROUTES; i++)
		if (strcmp(routes[i].method, method) == 0)
			return 1;
	return 0;
}

size_t
router_methods(char *buf, size_t cap)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t m = 0; m < NMETHODS; m++)
		if (routed(method_order[m]))
			o = list_add(buf, cap, o, method_order[m]);
	return list_add(buf, cap, o, "OPTIONS");
}

/*
 * Check what the table promises but C cannot: every method is one of
 * method_order and one a preflight allows (cors.c), and the method lists
 * fit their buffers.  0, or -1 with the reason on stderr.
 */
int
router_init(void)
{
	char list[ALLOW_MAX];
	size_t m;

	for (size_t i = 0; i < NROUTES; i++) {
		for (m = 0; m < NMETHODS; m++)
			if (strcmp(routes[i].method, method_order[m]) == 0)
				break;
		if (m == NMETHODS || !cors_allows(routes[i].method) ||
		    allow_for(&routes[i], list, sizeof list) == sizeof list) {
			fprintf(stderr,
			    "kvapi: route %s %s: a method unknown or not in "
			    "the CORS preflight's, or Allow over %d bytes\n",
			    routes[i].method, routes[i].path, ALLOW_MAX - 1);
			return -1;
		}
	}
	if (router_methods(list, sizeof list) == sizeof list) {
		fprintf(stderr,
		    "kvapi: the routes' methods are over %d bytes\n",
		    ALLOW_MAX - 1);
		return -1;
	}
	return 0;
}

/* The Bearer token's hash into r->token_hash, without the database. */
static enum err
bearer(struct req *r)
{
	char tok[TOKEN_LEN + 1];
	enum err e;

	if (r->authz == NULL || *r->authz == '\0')
		return ERR_INVALID_TOKEN;
	r->www_auth = "Bearer realm=\"kvapi\", error=\"invalid_token\"";
	if (req_bearer(r->authz, tok) == -1)
		return ERR_INVALID_TOKEN;
	e = auth_token_hash(tok, r->token_hash) == 0 ? ERR_OK : ERR_INTERNAL;
	explicit_bzero(tok, sizeof tok);
	return e;
}

/* Content-Type (415), the body (413, 400), its JSON, then the fields. */
static enum err
parse(const struct route *rt, struct req *r, enum err body)
{
	enum err e;

	if (rt->body != B_NONE) {
		if (!(rt->body == B_VALUE ? req_patch_ctype(r->ctype)
					  : req_json_ctype(r->ctype)))
			return ERR_UNSUPPORTED_MEDIA_TYPE;
		if (body != ERR_OK)
			return body;
		if ((e = json_parse_body(r->body, r->bodylen,
			 rt->body == B_VALUE, &r->json)) != ERR_OK)
			return e;
	}
	return field_check(r, rt->fields, rt->nfields);
}

/*
 * The users of tokens this worker has seen, for the access log of a
 * write (X-Kvapi-User), whose statement checks the token without reading
 * its user.  A token's user never changes, so an entry never goes stale:
 * it only spares the read.  Direct-mapped by the hash's first bytes.
 */
#define USER_CACHE 512
static struct {
	unsigned char hash[HASH_LEN];
	uint64_t user;
} users_seen[USER_CACHE];

static unsigned
user_slot(const unsigned char *h)
{
	return ((unsigned)h[0] | (unsigned)h[1] << 8) % USER_CACHE;
}

static uint64_t
user_of(const unsigned char *h)
{
	unsigned i = user_slot(h);

	return memcmp(users_seen[i].hash, h, HASH_LEN) == 0 ? users_seen[i].user
							    : 0;
}

static void
user_seen(const unsigned char *h, uint64_t user)
{
	unsigned i = user_slot(h);

	memcpy(users_seen[i].hash, h, HASH_LEN);
	users_seen[i].user = user;
}

static enum err
dispatch(FCGX_Request *f, struct req *r)
{
	const struct route *rt, *any;
	struct outcome o = {ERR_OK, 0};
	enum err body, a;

	rt = route_find(r, &any);
	/* Read (or drain) the body before any answer. */
	body = req_read_body(f->in, r);
	if (any == NULL)
		return ERR_NOT_FOUND;
	if (rt == NULL) {
		allow_for(any, r->allow, sizeof r->allow);
		return ERR_METHOD_NOT_ALLOWED;
	}
	if (rt->auth && (o.err = bearer(r)) != ERR_OK)
		return o.err;
	/* r->body, r->json and the fields are router_handle's to free,
	 * whatever this returns. */
	if ((o.err = parse(rt, r, body)) == ERR_OK)
		o = rt->fn(r);
	/*
	 * The handler's statement checks the token as it reads or writes
	 * (one round trip).  A request that failed before any statement ran
	 * has its token checked now: the contract answers INVALID_TOKEN
	 * before every other error of an authenticated route.
	 */
	if (rt->auth && !o.checked) {
		a = err_of_db(
		    db_token_user(r->token_hash, &r->user), ERR_INVALID_TOKEN);
		if (a != ERR_OK)
			return a;
		if (o.err == ERR_OK) {
			log_err("%s %s: the handler did not check the token",
			    rt->method, rt->path);
			return ERR_INTERNAL;
		}
	}
	/*
	 * A write's statement checks the token without reading its user;
	 * the access log wants it (X-Kvapi-User): one primary-key read,
	 * after the write, for a successful write only, and only the first
	 * time this worker sees the token.
	 */
	if (rt->auth && o.err == ERR_OK && r->user == 0 &&
	    (r->user = user_of(r->token_hash)) == 0)
		(void)db_token_user(r->token_hash, &r->user);
	if (rt->auth && o.err == ERR_OK && r->user != 0)
		user_seen(r->token_hash, r->user);
	return o.err;
}

void
router_handle(FCGX_Request *f)
{
	uint64_t t0 = metric_now();
	struct req r;
	enum err e;

	req_init(&r, f);
	if (strcmp(r.method, "OPTIONS") == 0) {
		(void)req_read_body(f->in, &r);
		cors_preflight(f->out, &r);
		r.status = 204;
	} else {
		e = dispatch(f, &r);
		if (e == ERR_QUOTA_EXCEEDED)
			metric_inc(M_QUOTA_REFUSED);
		resp_write(f->out, &r, e);
	}
	field_free(&r);
	cJSON_Delete(r.json);
	cJSON_Delete(r.data);
	free(r.body);
	metric_request(r.route, r.method, r.status, t0);
	log_request_id = NULL;
}

/*
 * Row i of the table for the metrics' route label: its path and the name
 * of its path parameter (NULL: none).  -1 past the last row.
 */
int
router_route(size_t i, const char **path, const char **param)
{
	if (i >= NROUTES)
		return -1;
	*path = routes[i].path;
	*param = NULL;
	for (size_t k = 0; k < routes[i].nfields; k++)
		if (routes[i].fields[k].in == IN_PATH)
			*param = routes[i].fields[k].name;
	return 0;
}
