/*
 * The router: ONE table of routes (method, path, auth, body, handler),
 * and the steps every request goes through in the contract's order:
 * 404/405, authentication, Content-Type (415), body size (413), JSON
 * (400), the key from the URL, then the handler.  The token is checked
 * by the handler's own statement where it can be (see dispatch), and a
 * token that is not valid is still the first error answered.  It is also
 * the only place that writes a response, so every answer gets the same
 * envelope, CORS and cache headers.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <fcgiapp.h>

#include "extern.h"

#define KEY_PREFIX "/api/data/"

static const struct route {
	const char *path; /* exact, or a prefix when it ends in '/' */
	const char *method;
	int auth; /* needs a Bearer token */
	int body; /* takes a JSON body */
	enum err (*fn)(struct req *);
} routes[] = {
    {"/api/register", "POST", 0, 1, h_register},
    {"/api/token", "POST", 0, 1, h_token},
    {"/api/token", "DELETE", 1, 0, h_token_delete},
    {"/api/data", "POST", 1, 1, h_data_post},
    {"/api/data", "GET", 1, 0, h_data_list},
    {"/api/data", "HEAD", 1, 0, h_data_list},
    {KEY_PREFIX, "GET", 1, 0, h_data_get},
    {KEY_PREFIX, "HEAD", 1, 0, h_data_get},
    {KEY_PREFIX, "PUT", 1, 1, h_data_put},
    {KEY_PREFIX, "DELETE", 1, 0, h_data_delete},
    {"/api/health", "GET", 0, 0, h_health},
    {"/api/health", "HEAD", 0, 0, h_health},
};
#define NROUTES (sizeof routes / sizeof routes[0])

static const char expose[] =
    "Access-Control-Expose-Headers: ETag, Location, Retry-After, "
    "WWW-Authenticate\r\n";

/*
 * One header line.  libfcgi's own FCGX_FPrintF knows no %zu, so format
 * with the C library and write the bytes.
 */
static void __attribute__((format(printf, 2, 3)))
hdr(FCGX_Stream *out, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof line)
		FCGX_PutStr(line, n, out);
}

static int
path_match(const struct route *rt, const char *path)
{
	size_t n = strlen(rt->path);

	if (rt->path[n - 1] == '/')
		return strncmp(path, rt->path, n) == 0;
	return strcmp(path, rt->path) == 0;
}

/* The Allow header of the path that rt matched, from the table. */
static const char *
allow_for(const struct route *rt, char *buf, size_t cap)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NROUTES; i++)
		if (strcmp(routes[i].path, rt->path) == 0)
			o += (size_t)snprintf(
			    buf + o, cap - o, "%s, ", routes[i].method);
	snprintf(buf + (o < cap ? o : cap - 1), cap - (o < cap ? o : cap - 1),
	    "OPTIONS");
	return buf;
}

/* Only printable ASCII is echoed back into a header. */
static int
header_safe(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return 0;
	return 1;
}

/* CORS: "*" by default; with an allow-list, echo a listed Origin. */
static void
write_cors(FCGX_Stream *out, const struct req *r)
{
	const char *o = cfg.cors_origins, *p;
	size_t n;

	if (o == NULL) {
		FCGX_PutS("Access-Control-Allow-Origin: *\r\n", out);
		return;
	}
	FCGX_PutS("Vary: Origin\r\n", out);
	if (r->origin == NULL || !header_safe(r->origin))
		return;
	n = strlen(r->origin);
	/* Compare whole entries: an Origin holding spaces matches none. */
	for (p = o + strspn(o, " "); *p; p += strspn(p, " ")) {
		size_t elen = strcspn(p, " ");

		if (elen == n && memcmp(p, r->origin, n) == 0) {
			hdr(out, "Access-Control-Allow-Origin: %s\r\n",
			    r->origin);
			return;
		}
		p += elen;
	}
}

static void
write_preflight(FCGX_Stream *out, const struct req *r)
{
	FCGX_PutS("Status: 204 No Content\r\n", out);
	write_cors(out, r);
	FCGX_PutS(expose, out);
	FCGX_PutS("Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,"
		  "DELETE\r\n",
	    out);
	if (r->acrh != NULL && *r->acrh && header_safe(r->acrh))
		hdr(out, "Access-Control-Allow-Headers: %s\r\n", r->acrh);
	FCGX_PutS("Vary: Access-Control-Request-Headers\r\n"
		  "Content-Length: 0\r\n\r\n",
	    out);
}

/* Write the response r describes, or the error e. */
static void
write_response(FCGX_Stream *out, struct req *r, enum err e)
{
	const struct err_info *ei = err_info(e);
	cJSON *body;
	char *text;
	int status = e == ERR_OK ? r->status : ei->status;

	if (e == ERR_OK && status == 304) {
		/* Not Modified: the validators, no body. */
		hdr(out, "Status: 304 %s\r\nETag: %s\r\n", http_reason(304),
		    r->etag);
		FCGX_PutS("Cache-Control: no-store\r\n", out);
		write_cors(out, r);
		FCGX_PutS(expose, out);
		FCGX_PutS("\r\n", out);
		return;
	}
	body = cJSON_CreateObject();
	if (body == NULL)
		goto oom;
	if (e == ERR_OK) {
		cJSON_AddStringToObject(body, "status", "success");
		if (r->message != NULL)
			cJSON_AddStringToObject(body, "message", r->message);
	} else {
		cJSON_AddStringToObject(body, "status", "error");
		cJSON_AddStringToObject(body, "code", ei->code);
		cJSON_AddStringToObject(body, "message", ei->message);
	}
	/* Errors may carry data too (health: "down"). */
	if (r->data != NULL) {
		cJSON_AddItemToObject(body, "data", r->data);
		r->data = NULL;
	}
	text = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	if (text == NULL)
		goto oom;
	if (status >= 500)
		log_err("answered %d %s", status, ei->code);

	hdr(out, "Status: %d %s\r\n", status, http_reason(status));
	FCGX_PutS("Content-Type: application/json; charset=utf-8\r\n"
		  "Cache-Control: no-store\r\n",
	    out);
	write_cors(out, r);
	FCGX_PutS(expose, out);
	if (e == ERR_OK && r->location[0])
		hdr(out, "Location: %s\r\n", r->location);
	if (e == ERR_OK && r->etag[0])
		hdr(out, "ETag: %s\r\n", r->etag);
	if (e == ERR_METHOD_NOT_ALLOWED && r->allow)
		hdr(out, "Allow: %s\r\n", r->allow);
	if (e == ERR_INVALID_TOKEN)
		hdr(out, "WWW-Authenticate: %s\r\n",
		    r->www_auth ? r->www_auth : "Bearer realm=\"kvapi\"");
	hdr(out, "Content-Length: %zu\r\n\r\n", strlen(text));
	FCGX_PutStr(text, (int)strlen(text), out);
	cJSON_free(text);
	return;
oom:
	/* No memory for cJSON: a fixed answer that needs none. */
	FCGX_PutS("Status: 500 Internal Server Error\r\n"
		  "Content-Type: application/json; charset=utf-8\r\n\r\n"
		  "{\"status\":\"error\",\"code\":\"INTERNAL_SERVER_ERROR\","
		  "\"message\":\"An internal server error occurred. Please try "
		  "again later.\"}",
	    out);
}

/*
 * Read the body into r->body (NUL-terminated), at most cfg.body_max
 * bytes.  nginx buffers bodies and always sends CONTENT_LENGTH, even for
 * chunked ones; without it, read to the end.  Whatever is left is
 * drained, so the FastCGI connection stays in step.
 */
static enum err
read_body(FCGX_Stream *in, struct req *r)
{
	char sink[16384], *nb, *end;
	size_t cap = 4096, limit = cfg.body_max;
	unsigned long long cl;
	enum err e = ERR_OK;
	int n, known = 0;

	if (r->content_length != NULL && *r->content_length != '\0') {
		cl = strtoull(r->content_length, &end, 10);
		if (*end != '\0' || cl > limit)
			e = ERR_PAYLOAD_TOO_LARGE;
		cap = (size_t)cl;
		known = 1;
	}
	if (e == ERR_OK && (r->body = malloc(cap + 1)) == NULL)
		e = ERR_INTERNAL;
	while (e == ERR_OK) {
		if (r->bodylen == cap) {
			if (known)
				break;
			if (cap == limit) {
				if (FCGX_GetStr(sink, 1, in) > 0)
					e = ERR_PAYLOAD_TOO_LARGE;
				break;
			}
			cap = cap * 2 > limit ? limit : cap * 2;
			if ((nb = realloc(r->body, cap + 1)) == NULL) {
				e = ERR_INTERNAL;
				break;
			}
			r->body = nb;
		}
		n = FCGX_GetStr(
		    r->body + r->bodylen, (int)(cap - r->bodylen), in);
		if (n <= 0)
			break;
		r->bodylen += (size_t)n;
	}
	if (r->body != NULL)
		r->body[r->bodylen] = '\0';
	/* Less than announced: the request was cut off on its way. */
	if (e == ERR_OK && known && r->bodylen < cap)
		e = ERR_BAD_REQUEST;
	while (FCGX_GetStr(sink, sizeof sink, in) > 0)
		;
	return e;
}

/*
 * The key of a /api/data/{key} route: the raw REQUEST_URI after the
 * prefix, up to the query, percent-decoded exactly once.  PATH_INFO is
 * no use here: nginx has decoded it and merged its slashes.
 */
static enum err
url_key(struct req *r)
{
	const char *p = r->uri;
	size_t n;

	if (p == NULL || strncmp(p, KEY_PREFIX, sizeof KEY_PREFIX - 1) != 0)
		return ERR_INVALID_KEY;
	p += sizeof KEY_PREFIX - 1;
	n = strcspn(p, "?");
	if (req_pct_decode(p, n, r->key, sizeof r->key, &r->keylen) == -1 ||
	    !req_key_valid(r->key, r->keylen))
		return ERR_INVALID_KEY;
	return ERR_OK;
}

/*
 * The answer to a statement that checked the request's token (every
 * statement of an authenticated route does, see dispatch): DBR_NONE
 * becomes `none`.
 */
enum err
router_db(struct req *r, enum dbr d, enum err none)
{
	r->authed = 1;
	switch (d) {
	case DBR_OK: return ERR_OK;
	case DBR_NONE: return none;
	case DBR_NOAUTH: return ERR_INVALID_TOKEN;
	/* The only unique key an authenticated route can hit: (user, k). */
	case DBR_DUP: return ERR_KEY_EXISTS;
	case DBR_DOWN: return ERR_SERVICE_UNAVAILABLE;
	default: return ERR_INTERNAL;
	}
}

/* Look the token up by itself; sets r->user_id. */
enum err
router_auth(struct req *r)
{
	return router_db(
	    r, db_token_user(r->token_hash, &r->user_id), ERR_INVALID_TOKEN);
}

/* The Bearer token's hash into r->token_hash, without the database. */
static enum err
bearer(struct req *r)
{
	char tok[TOKEN_LEN + 1];

	if (r->authz == NULL || *r->authz == '\0')
		return ERR_INVALID_TOKEN;
	r->www_auth = "Bearer realm=\"kvapi\", error=\"invalid_token\"";
	if (req_bearer(r->authz, tok) == -1)
		return ERR_INVALID_TOKEN;
	auth_token_hash(tok, r->token_hash);
	explicit_bzero(tok, sizeof tok);
	return ERR_OK;
}

/* Content-Type (415), the body (413, 400), its JSON, the URL's key. */
static enum err
parse(const struct route *rt, struct req *r, enum err body)
{
	enum err e;

	if (rt->body) {
		if (!req_json_ctype(r->ctype))
			return ERR_UNSUPPORTED_MEDIA_TYPE;
		if (body != ERR_OK)
			return body;
		if ((e = json_parse_body(r->body, r->bodylen, &r->json)) !=
		    ERR_OK)
			return e;
	}
	// NOLINTNEXTLINE(clang-analyzer-unix.Malloc): a false positive
	if (rt->path[strlen(rt->path) - 1] == '/')
		return url_key(r);
	return ERR_OK;
}

static enum err
dispatch(FCGX_Request *f, struct req *r)
{
	const struct route *rt = NULL, *any = NULL;
	const char *path = r->path;
	static char allow[128];
	enum err e, body;

	/*
	 * Routes match PATH_INFO, except that a raw URI under /api/data/ is
	 * always a key: nginx has already resolved dot segments in
	 * PATH_INFO, so the key ".." would otherwise look like /api/.
	 */
	if (r->uri != NULL &&
	    strncmp(r->uri, KEY_PREFIX, sizeof KEY_PREFIX - 1) == 0)
		path = r->uri;
	for (size_t i = 0; i < NROUTES && rt == NULL; i++)
		if (path_match(&routes[i], path)) {
			any = &routes[i];
			if (strcmp(routes[i].method, r->method) == 0)
				rt = &routes[i];
		}
	/* Read (or drain) the body before any answer. */
	body = read_body(f->in, r);
	if (any == NULL)
		return ERR_NOT_FOUND;
	if (rt == NULL) {
		r->allow = allow_for(any, allow, sizeof allow);
		return ERR_METHOD_NOT_ALLOWED;
	}
	if (rt->auth && (e = bearer(r)) != ERR_OK)
		return e;
	/* r->body and r->json are router_handle's to free, whatever this
	 * returns. */
	if ((e = parse(rt, r, body)) == ERR_OK)
		e = rt->fn(r);
	/*
	 * The handler's statement checks the token as it reads or writes
	 * (one round trip).  A request that failed before any statement ran
	 * has its token checked now: the contract answers INVALID_TOKEN
	 * before every other error of an authenticated route.
	 */
	if (rt->auth && !r->authed) {
		enum err a = router_auth(r);

		if (a != ERR_OK)
			return a;
		if (e == ERR_OK) {
			log_err("%s %s: the handler did not check the token",
			    rt->method, rt->path);
			return ERR_INTERNAL;
		}
	}
	return e;
}

static const char *
param(FCGX_Request *f, const char *name)
{
	return FCGX_GetParam(name, f->envp);
}

void
router_handle(FCGX_Request *f)
{
	struct req r;
	enum err e;

	memset(&r, 0, sizeof r);
	r.method = param(f, "REQUEST_METHOD");
	r.path = param(f, "PATH_INFO");
	r.uri = param(f, "REQUEST_URI");
	r.ctype = param(f, "CONTENT_TYPE");
	r.content_length = param(f, "CONTENT_LENGTH");
	r.query = param(f, "QUERY_STRING");
	r.if_match = param(f, "HTTP_IF_MATCH");
	r.if_none_match = param(f, "HTTP_IF_NONE_MATCH");
	r.authz = param(f, "HTTP_AUTHORIZATION");
	r.origin = param(f, "HTTP_ORIGIN");
	r.acrh = param(f, "HTTP_ACCESS_CONTROL_REQUEST_HEADERS");
	log_request_id = param(f, "REQUEST_ID");
	if (r.method == NULL)
		r.method = "";
	if (r.path == NULL)
		r.path = "";

	if (strcmp(r.method, "OPTIONS") == 0) {
		(void)read_body(f->in, &r);
		write_preflight(f->out, &r);
	} else {
		e = dispatch(f, &r);
		write_response(f->out, &r, e);
	}
	cJSON_Delete(r.json);
	cJSON_Delete(r.data);
	free(r.body);
	log_request_id = NULL;
}
