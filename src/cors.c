/*
 * CORS, as Express cors() does it by default (API.md, CORS): the
 * Access-Control-* headers of every answer, and the preflight that
 * OPTIONS on any /api/ path gets, without authentication.  With
 * cors_origins set, a listed Origin is echoed and answers vary on Origin.
 */
#include "config.h"

#include <string.h>

#include <fcgiapp.h>

#include "extern.h"

/*
 * The methods a preflight allows: the contract's list, which is Express
 * cors()'s default, and like it a constant rather than what the routes
 * happen to answer.  router_init refuses a route whose method it lacks;
 * PATCH is listed before any route answers it (docs/decisions.md).
 */
#define METHODS "GET,HEAD,PUT,PATCH,POST,DELETE"

/* What a browser client may read of an answer (nginx.c prints it too). */
#define EXPOSE "ETag, Location, Retry-After, WWW-Authenticate"
const char cors_expose[] = EXPOSE;

/* Only printable ASCII is echoed back into a header. */
static int
header_safe(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return 0;
	return 1;
}

/*
 * The CORS headers of every answer: "*" by default; with an allow-list,
 * a listed Origin echoed.
 */
void
cors_headers(FCGX_Stream *out, const struct req *r)
{
	const char *o = cfg.cors_origins, *p;
	size_t n;

	if (o == NULL) {
		FCGX_PutS("Access-Control-Allow-Origin: *\r\n", out);
		goto expose;
	}
	FCGX_PutS("Vary: Origin\r\n", out);
	if (r->origin == NULL || !header_safe(r->origin))
		goto expose;
	n = strlen(r->origin);
	/* Compare whole entries: an Origin holding spaces matches none. */
	for (p = o + strspn(o, " "); *p; p += strspn(p, " ")) {
		size_t elen = strcspn(p, " ");

		if (elen == n && memcmp(p, r->origin, n) == 0) {
			resp_header(out, "Access-Control-Allow-Origin: %s\r\n",
			    r->origin);
			break;
		}
		p += elen;
	}
expose:
	FCGX_PutS("Access-Control-Expose-Headers: " EXPOSE "\r\n", out);
}

/* Does the preflight allow method m? */
int
cors_allows(const char *m)
{
	size_t n = strlen(m), len;

	for (const char *p = METHODS; *p; p += len + (p[len] == ',')) {
		len = strcspn(p, ",");
		if (len == n && memcmp(p, m, n) == 0)
			return 1;
	}
	return 0;
}

void
cors_preflight(FCGX_Stream *out, const struct req *r)
{
	FCGX_PutS("Status: 204 No Content\r\n", out);
	cors_headers(out, r);
	FCGX_PutS("Access-Control-Allow-Methods: " METHODS "\r\n", out);
	if (r->acrh != NULL && *r->acrh && header_safe(r->acrh))
		resp_header(
		    out, "Access-Control-Allow-Headers: %s\r\n", r->acrh);
	FCGX_PutS("Vary: Access-Control-Request-Headers\r\n"
		  "Content-Length: 0\r\n\r\n",
	    out);
}
