/*
 * Reading a request: the FastCGI parameters, the body (size-capped), and
 * the small parsers that see client bytes before anything else does:
 * percent-decoding of the key, the Authorization header, Content-Type,
 * UTF-8.  Each takes explicit lengths and never reads past them.
 */
#include "config.h"

#include <errno.h>
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
				hi = 0x9F;	/* no surrogates */
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

/* A key is 1..KEY_MAX bytes of such text. */
int
req_key_valid(const char *k, size_t len)
{
	return len <= KEY_MAX && req_text_valid(k, len, 1, KEY_MAX);
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
req_pct_decode(const char *src, size_t len, char *dst, size_t cap,
    size_t *outlen)
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
	n = strspn(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
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

/*
 * application/json or application/<x>+json, any case, with parameters;
 * a charset parameter, if any, must say utf-8.
 */
int
req_json_ctype(const char *ct)
{
	const char *p, *semi;
	size_t tlen;

	if (ct == NULL)
		return 0;
	p = ows(ct);
	semi = strchr(p, ';');
	tlen = semi ? (size_t)(semi - p) : strlen(p);
	while (tlen > 0 && (p[tlen - 1] == ' ' || p[tlen - 1] == '\t'))
		tlen--;
	if (tlen < 16 || strncasecmp(p, "application/", 12) != 0)
		return 0;
	if (!(tlen == 16 && strncasecmp(p + 12, "json", 4) == 0) &&
	    !(tlen > 17 && strncasecmp(p + tlen - 5, "+json", 5) == 0 &&
	      memchr(p + 12, '/', tlen - 12) == NULL &&
	      memchr(p + 12, ' ', tlen - 12) == NULL))
		return 0;
	while (semi != NULL) {
		const char *name = ows(semi + 1), *eq, *val;
		size_t vlen;

		semi = strchr(name, ';');
		if ((eq = strchr(name, '=')) == NULL || (semi && eq > semi))
			return 0;
		val = eq + 1;
		vlen = semi ? (size_t)(semi - val) : strlen(val);
		while (vlen > 0 && (val[vlen - 1] == ' ' ||
		    val[vlen - 1] == '\t'))
			vlen--;
		if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"')
			val++, vlen -= 2;
		if ((size_t)(eq - name) == 7 &&
		    strncasecmp(name, "charset", 7) == 0 &&
		    !((vlen == 5 && strncasecmp(val, "utf-8", 5) == 0) ||
		      (vlen == 4 && strncasecmp(val, "utf8", 4) == 0)))
			return 0;
	}
	return 1;
}
