/*
 * Validation rules: what the contract accepts as a key, a username or a
 * piece of stored text.  Each is a predicate on bytes already decoded
 * (codec.c) and says yes or no; which error a refusal answers is the
 * route table's business (router.c).
 */
#include "config.h"

#include <string.h>

#include "extern.h"

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
