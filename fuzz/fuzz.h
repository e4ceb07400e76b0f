/*
 * What the libFuzzer harnesses share: a NUL-terminated heap copy of the
 * fuzzer's bytes (exactly sized, so AddressSanitizer sees a read one past
 * the end), an invariant check that aborts with its text, and a reference
 * UTF-8 decoder written apart from request.c's, for differential checks.
 */
#ifndef KVAPI_FUZZ_H
#define KVAPI_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An invariant of the code under test; a failure is a finding. */
#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "%s:%d: invariant failed: %s\n",       \
			    __FILE__, __LINE__, #c);                           \
			abort();                                               \
		}                                                              \
	} while (0)

/* The libFuzzer entry points, declared for -Wmissing-prototypes. */
int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* n bytes and a NUL after them, as the worker's reader leaves a body. */
static inline char *
fuzz_cstr(const uint8_t *d, size_t n)
{
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	if (n > 0)
		memcpy(s, d, n);
	s[n] = '\0';
	return s;
}

/*
 * An exactly sized buffer (even of 0 bytes, which AddressSanitizer then
 * guards whole), filled with junk so nothing relies on zeros.
 */
static inline void *
fuzz_buf(size_t n)
{
	void *s = malloc(n);

	if (s == NULL && n > 0)
		abort();
	if (n > 0)
		memset(s, 0xA5, n);
	return s;
}

/*
 * Strict UTF-8 the slow, obvious way: find the sequence length from the
 * lead byte, assemble the code point, then refuse overlong forms,
 * surrogates and anything above U+10FFFF.  Calls fn (if given) on each
 * code point; returns the count, or -1.
 */
static inline long
ref_utf8(const char *s, size_t len, int (*fn)(uint32_t))
{
	static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
	const unsigned char *p = (const unsigned char *)s;
	long count = 0;
	size_t i = 0;

	while (i < len) {
		uint32_t cp;
		size_t n;

		if (p[i] < 0x80)
			n = 1, cp = p[i];
		else if ((p[i] & 0xE0) == 0xC0)
			n = 2, cp = p[i] & 0x1F;
		else if ((p[i] & 0xF0) == 0xE0)
			n = 3, cp = p[i] & 0x0F;
		else if ((p[i] & 0xF8) == 0xF0)
			n = 4, cp = p[i] & 0x07;
		else
			return -1;
		if (len - i < n)
			return -1;
		for (size_t k = 1; k < n; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return -1;
			cp = cp << 6 | (p[i + k] & 0x3F);
		}
		if (cp < min[n] || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return -1;
		if (fn != NULL && !fn(cp))
			return -1;
		i += n;
		count++;
	}
	return count;
}

/* A code point a stored key or text may hold: no C0, DEL or C1. */
static inline int
ref_text_cp(uint32_t cp)
{
	return !(cp < 0x20 || (cp >= 0x7F && cp <= 0x9F));
}

/*
 * nginx resolves "." and ".." path segments (after decoding %2E and %2F)
 * and answers 400 itself to a path that climbs above the root.  Does
 * /api/data/<key> stay at or below "/" at every step?
 */
static inline int
ref_key_routable(const char *k, size_t len)
{
	size_t below = 2; /* "api", "data" */
	size_t i = 0;

	while (i <= len) {
		const char *slash = memchr(k + i, '/', len - i);
		size_t n = slash ? (size_t)(slash - (k + i)) : len - i;

		if (n == 2 && memcmp(k + i, "..", 2) == 0) {
			if (below == 0)
				return 0;
			below--;
		} else if (!(n == 0 || (n == 1 && k[i] == '.')))
			below++;
		i += n + 1;
	}
	return 1;
}

/*
 * What API.md says a key is: 1..255 bytes of UTF-8 without controls, and
 * one whose URL nginx passes on.
 */
static inline int
ref_key_valid(const char *k, size_t len)
{
	return len >= 1 && len <= 255 && ref_utf8(k, len, ref_text_cp) >= 1 &&
	    ref_key_routable(k, len);
}

#endif
