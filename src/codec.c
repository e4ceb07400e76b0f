/*
 * Codecs: the encodings client bytes arrive in and answers leave in.
 * Strict UTF-8, percent-coding (a URL key is decoded once, a Location is
 * encoded), unpadded base64url (tokens, listing cursors) and the text of
 * an ETag.  They say whether bytes are well-formed, never whether they
 * are acceptable: that is valid.c's business.  Each takes explicit
 * lengths and never reads or writes past them.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

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

/* The strong ETag of a row version: "<16 hex digits>". */
void
req_etag(uint64_t version, char *out)
{
	snprintf(out, ETAG_MAX, "\"%016llx\"", (unsigned long long)version);
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
