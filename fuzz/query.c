/*
 * Fuzz the listing's query string: req_query for "limit", "prefix" and
 * "cursor" with the buffer sizes h_data_list gives it, each answer
 * checked against the rules spelled out again here (found once, no bare
 * name, form-decoded, fits); then the cursor's base64url as the handler
 * decodes it, and b64url_encode/b64url_decode round trips on the raw
 * bytes, with the canonical-form rule checked both ways.
 */
#include "config.h"

#include "../src/extern.h"
#include "fuzz.h"

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

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

/* application/x-www-form-urlencoded, one value; -1 if malformed. */
static long
ref_form_decode(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			if (n - i < 3 || hexval(s[i + 1]) < 0 ||
			    hexval(s[i + 2]) < 0)
				return -1;
			out[o++] =
			    (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		} else
			out[o++] = s[i] == '+' ? ' ' : s[i];
	}
	return (long)o;
}

/*
 * What req_query should answer, order aside: -1 for a bare "name", for
 * two "name=", or for the one value being malformed or too long (the
 * raw value under 1024 bytes, the decoded one under cap); else found.
 */
static int
ref_query(const char *q, const char *name, size_t cap, char *out, long *olen)
{
	size_t nlen = strlen(name);
	int found = 0, bad = 0;

	while (*q != '\0') {
		size_t plen = strcspn(q, "&");

		if (plen == nlen && strncmp(q, name, nlen) == 0)
			bad = 1;
		else if (plen > nlen && strncmp(q, name, nlen) == 0 &&
		    q[nlen] == '=') {
			size_t vlen = plen - nlen - 1;

			if (found++ > 0 || vlen >= 1024)
				bad = 1;
			else if ((*olen = ref_form_decode(
				      q + nlen + 1, vlen, out)) < 0 ||
			    (size_t)*olen >= cap)
				bad = 1;
		}
		q += plen;
		if (*q == '&')
			q++;
	}
	return bad ? -1 : found;
}

static void
check_query(
    const char *q, const char *name, size_t cap, char *out, size_t *olen)
{
	char *ref = fuzz_buf(strlen(q) + 1);
	long rlen = -1;
	int r, want;

	*olen = (size_t)-1;
	r = req_query(q, name, out, cap, olen);
	want = ref_query(q, name, cap, ref, &rlen);
	if (r != want)
		fprintf(stderr, "req_query(%s) = %d, want %d\n", name, r, want);
	CHECK(r == want);
	if (r == 1) {
		CHECK(*olen < cap && out[*olen] == '\0');
		CHECK((long)*olen == rlen && memcmp(out, ref, *olen) == 0);
	}
	free(ref);
}

/* Canonical unpadded base64url: the only text b64url_decode takes. */
static int
ref_b64_canonical(const char *s, size_t n)
{
	const char *p;

	if (n % 4 == 1)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0' || memchr(b64url, s[i], 64) == NULL)
			return 0;
	if (n % 4 == 0)
		return 1;
	p = memchr(b64url, s[n - 1], 64);
	/* 2 chars carry 1 byte + 4 spare bits; 3 chars 2 bytes + 2. */
	return ((p - b64url) & (n % 4 == 2 ? 15 : 3)) == 0;
}

/* Decode n chars into cap bytes; on success encode back to the same. */
static int
check_b64_text(const char *s, size_t n, size_t cap)
{
	unsigned char *raw = fuzz_buf(cap);
	char *back;
	size_t rlen = (size_t)-1, blen;
	int r;

	r = b64url_decode(s, n, raw, cap, &rlen);
	CHECK(r == 0 || r == -1);
	if (r == 0) {
		CHECK(ref_b64_canonical(s, n));
		CHECK(rlen <= cap && rlen == n * 3 / 4);
		back = fuzz_buf(n + 1);
		blen = b64url_encode(raw, rlen, back, n + 1);
		CHECK(blen == n && memcmp(back, s, n) == 0 && back[n] == '\0');
		free(back);
	} else
		CHECK(!ref_b64_canonical(s, n) || n * 3 / 4 > cap);
	free(raw);
	return r;
}

/* Encode bytes into exactly the room needed, and one byte less. */
static void
check_b64_bytes(const unsigned char *d, size_t n)
{
	size_t need = n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0), elen, rlen;
	char *enc = fuzz_buf(need + 1);
	unsigned char *raw = fuzz_buf(n);

	elen = b64url_encode(d, n, enc, need + 1);
	CHECK(elen == need && enc[need] == '\0');
	CHECK(strspn(enc, b64url) == need);
	CHECK(b64url_decode(enc, elen, raw, n, &rlen) == 0);
	CHECK(rlen == n && (n == 0 || memcmp(raw, d, n) == 0));
	CHECK(b64url_encode(d, n, enc, need) == 0 &&
	    (need == 0 || enc[0] == '\0'));
	free(raw);
	free(enc);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char out[8];
	size_t len;

	cfg.log_level = LOG_ERR_;
	CHECK(req_query(NULL, "limit", out, sizeof out, &len) == 0);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char *q = fuzz_cstr(data, len);
	char *num = fuzz_buf(16), *prefix = fuzz_buf(KEY_MAX + 1);
	char *cur = fuzz_buf(2 * KEY_MAX);
	size_t nlen, plen, clen;

	/* The sizes h_data_list passes. */
	check_query(q, "limit", 16, num, &nlen);
	check_query(q, "prefix", KEY_MAX + 1, prefix, &plen);
	check_query(q, "cursor", 2 * KEY_MAX, cur, &clen);
	if (req_query(q, "cursor", cur, 2 * KEY_MAX, &clen) == 1) {
		/* As h_data_list decodes it, and with room to spare. */
		check_b64_text(cur, clen, KEY_MAX);
		check_b64_text(cur, clen, clen);
	}

	check_b64_text((const char *)data, len, len);
	check_b64_bytes(data, len);

	free(cur);
	free(prefix);
	free(num);
	free(q);
	return 0;
}
