/*
 * Reading a request: its FastCGI parameters into a struct req, its body
 * (size-capped, and always read to the end so the connection stays in
 * step), and the parsers of what a client sends beside the body: the
 * Authorization header, Content-Type, If-Match / If-None-Match lists and
 * the query string.  Each takes explicit lengths or NUL-terminated
 * parameters and never reads past them.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <fcgiapp.h>

#include "extern.h"

static const char *
param(FCGX_Request *f, const char *name)
{
	return FCGX_GetParam(name, f->envp);
}

/* The request's parameters into a zeroed r (but for its text buffers). */
void
req_init(struct req *r, FCGX_Request *f)
{
	memset(r, 0, offsetof(struct req, texts));
	r->route = -1;
	r->method = param(f, "REQUEST_METHOD");
	r->path = param(f, "PATH_INFO");
	r->uri = param(f, "REQUEST_URI");
	r->ctype = param(f, "CONTENT_TYPE");
	r->content_length = param(f, "CONTENT_LENGTH");
	r->query = param(f, "QUERY_STRING");
	r->if_match = param(f, "HTTP_IF_MATCH");
	r->if_none_match = param(f, "HTTP_IF_NONE_MATCH");
	r->authz = param(f, "HTTP_AUTHORIZATION");
	r->origin = param(f, "HTTP_ORIGIN");
	r->user_agent = param(f, "HTTP_USER_AGENT");
	r->acrh = param(f, "HTTP_ACCESS_CONTROL_REQUEST_HEADERS");
	log_request_id = param(f, "REQUEST_ID");
	if (r->method == NULL)
		r->method = "";
	if (r->path == NULL)
		r->path = "";
}

/*
 * Read the body into r->body (NUL-terminated), at most cfg.body_max
 * bytes.  nginx buffers bodies and always sends CONTENT_LENGTH, even for
 * chunked ones; without it, read to the end.  Whatever is left is
 * drained, so the FastCGI connection stays in step.
 */
enum err
req_read_body(FCGX_Stream *in, struct req *r)
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
 * "Bearer" (any case), one or more spaces, then exactly TOKEN_LEN
 * base64url characters and nothing else.  Copies the token to tok
 * (TOKEN_LEN + 1 bytes).  Returns 0 or -1.
 */
int
req_bearer(const char *h, char *tok)
{
	size_t n;

	if (h == NULL || strncasecmp(h, "Bearer", 6) != 0 || h[6] != ' ')
		return -1;
	h += 6;
	while (*h == ' ')
		h++;
	n = strspn(h,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-_");
	if (n != TOKEN_LEN || h[n] != '\0')
		return -1;
	memcpy(tok, h, TOKEN_LEN + 1);
	return 0;
}

/* Skip optional whitespace (RFC 9110 OWS). */
static const char *
ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* The length of the RFC 9110 token at p. */
static size_t
token_len(const char *p)
{
	return strspn(p,
	    "!#$%&'*+-.^_`|~0123456789"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
}

/*
 * application/json or application/<token>+json, any case, with
 * parameters (RFC 9110 8.3.1; empty ones allowed); a charset parameter,
 * if any, must say utf-8.
 */
int
req_json_ctype(const char *ct)
{
	const char *p, *sub, *name, *val, *q;
	size_t sublen, nlen, vlen;

	if (ct == NULL)
		return 0;
	p = ows(ct);
	if (token_len(p) != 11 || strncasecmp(p, "application", 11) != 0 ||
	    p[11] != '/')
		return 0;
	sub = p + 12;
	sublen = token_len(sub);
	if (!(sublen == 4 && strncasecmp(sub, "json", 4) == 0) &&
	    !(sublen > 5 && strncasecmp(sub + sublen - 5, "+json", 5) == 0))
		return 0;
	p = ows(sub + sublen);
	while (*p == ';') {
		p = ows(p + 1);
		if (*p == ';' || *p == '\0')
			continue;
		name = p;
		nlen = token_len(p);
		if (nlen == 0 || p[nlen] != '=')
			return 0;
		val = p + nlen + 1;
		if (*val == '"') {
			/* A quoted value; escapes are not worth supporting. */
			if ((q = strchr(val + 1, '"')) == NULL ||
			    memchr(val, '\\', (size_t)(q - val)) != NULL)
				return 0;
			val++;
			vlen = (size_t)(q - val);
			p = q + 1;
		} else {
			if ((vlen = token_len(val)) == 0)
				return 0;
			p = val + vlen;
		}
		if (nlen == 7 && strncasecmp(name, "charset", 7) == 0 &&
		    !(vlen == 5 && strncasecmp(val, "utf-8", 5) == 0) &&
		    !(vlen == 4 && strncasecmp(val, "utf8", 4) == 0))
			return 0;
		p = ows(p);
	}
	return *p == '\0';
}

/*
 * A merge patch's Content-Type (RFC 7396 section 4): application/json or
 * application/merge-patch+json, as req_json_ctype judges them.  Any other
 * +json type means another format (a JSON Patch is a list of operations,
 * which a merge would store as the value).
 */
int
req_patch_ctype(const char *ct)
{
	const char *sub;
	size_t n;

	if (!req_json_ctype(ct))
		return 0;
	sub = ows(ct) + 12;
	n = token_len(sub);
	return (n == 4 && strncasecmp(sub, "json", 4) == 0) ||
	    (n == 16 && strncasecmp(sub, "merge-patch+json", 16) == 0);
}

/*
 * An If-Match / If-None-Match list: "*", or entity tags separated by
 * commas.  Tags of ours are stored in v (at most max), weak ones too
 * (W/ dropped: callers that need strong comparison pass weak = NULL and
 * a weak tag then never matches).  Tags that are not ours cannot match
 * and are skipped.  Returns the count, or -1 for "*", or -2 if the
 * header is malformed.
 */
int
req_etags(const char *h, uint64_t *v, int max, int *weak)
{
	int n = 0;

	while (*h == ' ' || *h == '\t')
		h++;
	if (h[0] == '*' && h[1 + strspn(h + 1, " \t")] == '\0')
		return -1;
	for (;;) {
		int w = 0;
		const char *end;
		char *e;
		unsigned long long x;

		/* Empty list elements are allowed (RFC 9110 5.6.1). */
		h += strspn(h, " \t,");
		if (*h == '\0')
			break;
		if (h[0] == 'W' && h[1] == '/')
			w = 1, h += 2;
		if (*h != '"' || (end = strchr(h + 1, '"')) == NULL)
			return -2;
		if (end - h == 17 && strspn(h + 1, "0123456789abcdef") == 16 &&
		    (!w || weak != NULL) && n < max) {
			x = strtoull(h + 1, &e, 16);
			if (e == end) {
				v[n++] = x;
				if (w)
					*weak = 1;
			}
		}
		h = end + 1;
		h += strspn(h, " \t");
		if (*h != ',' && *h != '\0')
			return -2;
	}
	return n;
}

/*
 * Does If-Match list h let a write of a resource at version v go on (RFC
 * 9110 13.1.1, strong comparison): "*", or v among its tags.  A
 * malformed list matches nothing.
 */
int
req_etag_matches(const char *h, uint64_t v)
{
	uint64_t tags[ETAGS_MAX];
	int n = req_etags(h, tags, ETAGS_MAX, NULL);

	for (int i = 0; i < n; i++)
		if (tags[i] == v)
			return 1;
	return n == -1;
}

/*
 * The value of parameter `name` in a query string, form-decoded (+ is a
 * space) once into out.  Returns 1 if found, 0 if absent, -1 if
 * malformed, repeated or too long.
 */
int
req_query(const char *q, const char *name, char *out, size_t cap, size_t *len)
{
	size_t nlen = strlen(name);
	int found = 0;

	while (q != NULL && *q != '\0') {
		size_t plen = strcspn(q, "&");

		if (plen > nlen && strncmp(q, name, nlen) == 0 &&
		    q[nlen] == '=') {
			char tmp[1024];
			size_t vlen = plen - nlen - 1;

			if (found++ || vlen >= sizeof tmp)
				return -1;
			memcpy(tmp, q + nlen + 1, vlen);
			for (size_t i = 0; i < vlen; i++)
				if (tmp[i] == '+')
					tmp[i] = ' ';
			if (req_pct_decode(tmp, vlen, out, cap, len) == -1)
				return -1;
		} else if (plen == nlen && strncmp(q, name, nlen) == 0)
			return -1; /* "name" with no "=" */
		q += plen;
		if (*q == '&')
			q++;
	}
	return found;
}
