/*
 * The router: ONE table of routes (method, path, auth, body, handler),
 * and the steps every request goes through in the contract's order:
 * 404/405, authentication, Content-Type (415), body size (413), JSON
 * (400), the key from the URL, then the handler.  The token is checked
 * by the handler's own statement where it can be (see dispatch), and a
 * token that is not valid is still the first error answered.  The answer
 * is written by response.c, the preflight by cors.c.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <fcgiapp.h>

#include "extern.h"

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

/*
 * The answer to a statement that checked the request's token (every
 * statement of an authenticated route does, see dispatch): DBR_NONE
 * becomes `none`.
 */
enum err
router_db(struct req *r, enum dbr d, enum err none)
{
	r->authed = 1;
	return err_of_db(d, none);
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
		return req_url_key(r);
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
	body = req_read_body(f->in, r);
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

void
router_handle(FCGX_Request *f)
{
	struct req r;
	enum err e;

	req_init(&r, f);
	if (strcmp(r.method, "OPTIONS") == 0) {
		(void)req_read_body(f->in, &r);
		cors_preflight(f->out, &r);
	} else {
		e = dispatch(f, &r);
		resp_write(f->out, &r, e);
	}
	cJSON_Delete(r.json);
	cJSON_Delete(r.data);
	free(r.body);
	log_request_id = NULL;
}
