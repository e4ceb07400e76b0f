/*
 * Fuzz two headers on the bytes up to the first NUL: Content-Type through
 * req_json_ctype, and If-Match / If-None-Match lists through req_etags
 * with the sizes and weak-comparison modes h_data.c uses (and smaller).
 * Content-Type answers must not depend on letter case, and a charset
 * parameter appended to an accepted type decides the answer.  An ETag
 * list's tags must be in the header and come back the same when the
 * list is printed and parsed again.
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <strings.h>

#include "../src/extern.h"
#include "fuzz.h"

#define MAX_ETAGS 8 /* as in h_data.c */

static int
ctype_with(const char *h, const char *suffix)
{
	size_t hl = strlen(h), sl = strlen(suffix);
	char *s = fuzz_buf(hl + sl + 1);
	int r;

	memcpy(s, h, hl);
	memcpy(s + hl, suffix, sl + 1);
	r = req_json_ctype(s);
	free(s);
	return r;
}

static void
check_ctype(const char *h)
{
	size_t n = strlen(h);
	char *up = fuzz_buf(n + 1);
	const char *p = h;
	int r;

	r = req_json_ctype(h);
	CHECK(r == 0 || r == 1);
	for (size_t i = 0; i <= n; i++)
		up[i] = (char)toupper((unsigned char)h[i]);
	CHECK(req_json_ctype(up) == r);
	free(up);
	if (r == 0)
		return;
	while (*p == ' ' || *p == '\t')
		p++;
	CHECK(strncasecmp(p, "application/", 12) == 0);
	/* Parameters only narrow: a foreign charset refuses, ours keeps. */
	CHECK(ctype_with(h, "; charset=latin1") == 0);
	CHECK(ctype_with(h, ";charset=\"UTF-8\"") == 1);
}

/* Is the tag of v in h, strong (not after "W/") if strong is asked? */
static int
tag_in(const char *h, uint64_t v, int strong)
{
	char tag[ETAG_MAX];
	const char *p;

	req_etag(v, tag);
	for (p = h; (p = strstr(p, tag)) != NULL; p++)
		if (!strong || p - h < 2 || p[-2] != 'W' || p[-1] != '/')
			return 1;
	return 0;
}

static int
etags(const char *h, int max, int *weak, uint64_t **v)
{
	int r;

	*v = fuzz_buf((size_t)max * sizeof **v);
	r = req_etags(h, *v, max, weak);
	CHECK(r >= -2 && r <= max);
	return r;
}

static void
check_etags(const char *h)
{
	uint64_t *strong, *any, *one, *none, *again;
	char list[MAX_ETAGS * (ETAG_MAX + 2) + 1], *l = list;
	int rs, ra, r1, r0, rr, weak = 0, w2 = 0;
	const char *p = h;

	rs = etags(h, MAX_ETAGS, NULL, &strong); /* If-Match */
	ra = etags(h, MAX_ETAGS, &weak, &any);	 /* If-None-Match */
	r1 = etags(h, 1, NULL, &one);
	r0 = etags(h, 0, NULL, &none);

	/* "*" and malformed do not depend on the mode or the room. */
	if (rs < 0 || ra < 0 || r1 < 0 || r0 < 0)
		CHECK(rs == ra && rs == r1 && rs == r0);
	if (rs == -1) {
		while (*p == ' ' || *p == '\t')
			p++;
		CHECK(*p == '*' && p[1 + strspn(p + 1, " \t")] == '\0');
	}
	if (rs >= 0) {
		CHECK(r0 == 0 && r1 == (rs > 0) && ra >= rs);
		CHECK(!weak || strstr(h, "W/\"") != NULL);
		CHECK(weak || ra == rs);
		for (int i = 0; i < rs; i++)
			CHECK(tag_in(h, strong[i], 1));
		for (int i = 0; i < ra; i++)
			CHECK(tag_in(h, any[i], 0));
		if (r1 == 1)
			CHECK(one[0] == strong[0]);
		/* The strong tags, printed as a list, parse back the same. */
		for (int i = 0; i < rs; i++) {
			if (i > 0)
				*l++ = ',', *l++ = ' ';
			req_etag(strong[i], l);
			l += strlen(l);
		}
		*l = '\0';
		rr = etags(list, MAX_ETAGS, &w2, &again);
		CHECK(rr == rs && w2 == 0);
		CHECK(
		    rs == 0 || memcmp(again, strong, rs * sizeof *again) == 0);
		free(again);
	}
	free(none);
	free(one);
	free(any);
	free(strong);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	cfg.log_level = LOG_ERR_;
	CHECK(req_json_ctype(NULL) == 0);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char *h = fuzz_cstr(data, len);

	check_ctype(h);
	check_etags(h);
	free(h);
	return 0;
}
