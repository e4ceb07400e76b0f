/*
 * Reading a request: the FastCGI parameters, the body (size-capped), and
 * the small parsers that see client bytes before anything else does:
 * percent-decoding of the key, the Authorization header, Content-Type,
 * UTF-8.  Each takes explicit lengths and never reads past them.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <fcgiapp.h>

#include "extern.h"

/*
 * Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing
 * above U+10FFFF.  On success, *chars (if given) is the code point count.
 */
int
utf8_valid(const char *s, size_t len, size_t *chars)
{
	const unsigned char *p = (const unsigned char *)s, *e = p + len;
	size_t n = 0;

	while (p < e) {
		unsigned c = *p;
		size_t need;
		unsigned lo = 0x80, hi = 0xBF;

		if (c < 0x80) {
			p++, n++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			need = 1;
		else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			if (c == 0xE0)
				lo = 0xA0;
			else if (c == 0xED)
				hi = 0x9F; /* no surrogates */
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;
		} else
			return 0;
		if ((size_t)(e - p) <= need)
			return 0;
		if (p[1] < lo || p[1] > hi)
			return 0;
		for (size_t i = 2; i <= need; i++)
			if ((p[i] & 0xC0) != 0x80)
				return 0;
		p += need + 1;
		n++;
	}
	if (chars != NULL)
		*chars = n;
	return 1;
}

/*
 * Text a client may store: valid UTF-8 of min..max code points, without
 * control characters: C0, DEL, and C1 (U+0080..U+009F, encoded C2 80 to
 * C2 9F).
 */
int
req_text_valid(const char *s, size_t len, size_t min, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t chars;

	if (!utf8_valid(s, len, &chars) || chars < min || chars > max)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < 0x20 || p[i] == 0x7F)
			return 0;
		if (p[i] == 0xC2 && i + 1 < len && p[i + 1] < 0xA0)
			return 0;
	}
	return 1;
}

/* A username: 3..64 of [A-Za-z0-9_.-]. */
int
user_name_valid(const char *s, size_t len)
{
	if (len < 3 || len > 64)
		return 0;
	return strspn(s,
		   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		   "0123456789_.-") == len;
}

/*
 * nginx resolves "." and ".." segments (also those spelled %2E and %2F)
 * and refuses a path that climbs above the root with its own 400, so a
 * key that does so from /api/data/ (three ".." more than real segments)
 * could be stored but never read or deleted.  Such keys are refused.
 * Anything below the root still reaches the workers: the site routes on
 * the raw URI.
 */
static int
key_reachable(const char *k, size_t len)
{
	int depth = 2; /* levels we may climb and stay at or below "/" */

	for (size_t i = 0; i <= len;) {
		size_t n = 0;

		while (i + n < len && k[i + n] != '/')
			n++;
		if (n == 2 && k[i] == '.' && k[i + 1] == '.') {
			if (depth-- == 0)
				return 0;
		} else if (n > 1 || (n == 1 && k[i] != '.'))
			depth++;
		i += n + 1;
	}
	return 1;
}

/* A key is 1..KEY_MAX bytes of such text that nginx can route. */
int
req_key_valid(const char *k, size_t len)
{
	return len <= KEY_MAX && req_text_valid(k, len, 1, KEY_MAX) &&
	    key_reachable(k, len);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decode %XX escapes once.  Returns 0, or -1 for a malformed escape or
 * output longer than cap - 1.  The output is NUL-terminated; embedded NUL
 * bytes (%00) are kept, and *outlen tells the real length.
 */
int
req_pct_decode(
    const char *src, size_t len, char *dst, size_t cap, size_t *outlen)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		int c = (unsigned char)src[i];

		if (c == '%') {
			int h, l;

			if (len - i < 3)
				return -1;
			if ((h = hexval(src[i + 1])) < 0 ||
			    (l = hexval(src[i + 2])) < 0)
				return -1;
			c = h << 4 | l;
			i += 2;
		}
		if (o + 1 >= cap)
			return -1;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	*outlen = o;
	return 0;
}

/* Percent-encode all but RFC 3986 unreserved bytes; returns the length. */
size_t
req_pct_encode(const char *src, size_t len, char *dst, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~';

		if (o + (plain ? 1 : 3) >= cap)
			break;
		if (plain)
			dst[o++] = (char)c;
		else {
			dst[o++] = '%';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	if (cap > 0)
		dst[o] = '\0';
	return o;
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

/* The strong ETag of a row version: "<16 hex digits>". */
void
req_etag(uint64_t version, char *out)
{
	snprintf(out, ETAG_MAX, "\"%016llx\"", (unsigned long long)version);
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

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Unpadded base64url of len bytes into out; 0 if cap is too small. */
size_t
b64url_encode(const unsigned char *in, size_t len, char *out, size_t cap)
{
	size_t o = 0, need = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0) + 1;

	if (cap < need) {
		if (cap > 0)
			out[0] = '\0';
		return 0;
	}
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;

		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
		if (i + 1 < len)
			out[o++] = b64url[v >> 6 & 63];
		if (i + 2 < len)
			out[o++] = b64url[v & 63];
	}
	out[o] = '\0';
	return o;
}

/* Decode unpadded base64url; -1 if malformed or longer than cap. */
int
b64url_decode(
    const char *in, size_t len, unsigned char *out, size_t cap, size_t *outlen)
{
	unsigned v = 0;
	size_t o = 0, bits = 0;

	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		const char *p = in[i] != '\0' ? strchr(b64url, in[i]) : NULL;

		if (p == NULL)
			return -1;
		v = v << 6 | (unsigned)(p - b64url);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == cap)
				return -1;
			out[o++] = (unsigned char)(v >> bits);
			v &= (1u << bits) - 1;
		}
	}
	if (v != 0)
		return -1; /* non-canonical trailing bits */
	*outlen = o;
	return 0;
}
