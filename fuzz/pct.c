/*
 * Fuzz the key in a URL: req_pct_decode as the router calls it (the raw
 * REQUEST_URI tail up to '?', into a KEY_MAX + 1 buffer), then
 * req_key_valid on the result, checked against the reference in fuzz.h.
 * Also the invariants of the pair decode/encode on all the input bytes:
 * decoding never grows the text, and the encoding of a decoded text
 * decodes back to the same bytes, even when cut short by a small buffer.
 * The raw bytes also go straight to utf8_valid and req_text_valid, for a
 * differential check against the reference.
 */
#include "config.h"

#include "../src/extern.h"
#include "fuzz.h"

static int
unreserved(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

static int
hexdigit(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* Encode dec into cap bytes; the result must decode to a prefix of dec. */
static void
encode_check(const char *dec, size_t dlen, size_t cap)
{
	char *enc = fuzz_buf(cap), *back;
	size_t elen, blen, i;

	elen = req_pct_encode(dec, dlen, enc, cap);
	if (cap == 0) {
		CHECK(elen == 0);
		free(enc);
		return;
	}
	CHECK(elen < cap);
	CHECK(elen <= 3 * dlen);
	CHECK(enc[elen] == '\0');
	/* Only unreserved bytes and whole %XX escapes, uppercase. */
	for (i = 0; i < elen; i++) {
		if (enc[i] == '%') {
			CHECK(i + 2 < elen && hexdigit(enc[i + 1]) &&
			    hexdigit(enc[i + 2]));
			i += 2;
		} else
			CHECK(unreserved((unsigned char)enc[i]));
	}
	back = fuzz_buf(elen + 1);
	CHECK(req_pct_decode(enc, elen, back, elen + 1, &blen) == 0);
	CHECK(blen <= dlen);
	CHECK(memcmp(back, dec, blen) == 0);
	if (cap >= 3 * dlen + 1)
		CHECK(blen == dlen); /* room for all: nothing dropped */
	free(back);
	free(enc);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	cfg.log_level = LOG_ERR_;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char *in = fuzz_cstr(data, len);
	char *key = fuzz_buf(KEY_MAX + 1), *dec = fuzz_buf(len + 1);
	size_t n, klen = (size_t)-1, dlen = (size_t)-1, chars, min, max;
	long rc, rt;
	int kr, dr;

	/* The UTF-8 check itself, on the raw bytes. */
	chars = (size_t)-1;
	rc = ref_utf8(in, len, NULL);
	CHECK(utf8_valid(in, len, &chars) == (rc >= 0));
	if (rc >= 0)
		CHECK(chars == (size_t)rc);
	min = len > 0 ? (unsigned char)in[0] % 4 : 0;
	max = min + (len > 1 ? (unsigned char)in[1] % 64 : 0);
	rt = ref_utf8(in, len, ref_text_cp);
	CHECK(req_text_valid(in, len, min, max) ==
	    (rt >= 0 && (size_t)rt >= min && (size_t)rt <= max));

	/* As url_key() in router.c does it. */
	n = strcspn(in, "?");
	kr = req_pct_decode(in, n, key, KEY_MAX + 1, &klen);
	CHECK(kr == 0 || kr == -1);
	if (kr == 0) {
		CHECK(klen <= n && klen <= KEY_MAX);
		CHECK(key[klen] == '\0');
		CHECK(req_key_valid(key, klen) == ref_key_valid(key, klen));
	}

	/* All len bytes, NULs included, with room for any output. */
	dr = req_pct_decode(in, len, dec, len + 1, &dlen);
	CHECK(dr == 0 || dr == -1);
	if (dr == 0) {
		CHECK(dlen <= len);
		CHECK(dec[dlen] == '\0');
		CHECK(req_key_valid(dec, dlen) == ref_key_valid(dec, dlen));
		if (n == len) {
			/* Same input: the small buffer fails only for size. */
			CHECK(kr == (dlen <= KEY_MAX ? 0 : -1));
			if (kr == 0)
				CHECK(klen == dlen &&
				    memcmp(key, dec, dlen) == 0);
		}
		encode_check(dec, dlen, 3 * dlen + 1);
		encode_check(dec, dlen, dlen + 1);
		encode_check(dec, dlen, len % 8);
		/* The Location header's room in struct req. */
		if (dlen <= KEY_MAX)
			encode_check(dec, dlen, 16 + 3 * KEY_MAX + 1 - 10);
	} else if (n == len)
		CHECK(kr == -1);

	free(dec);
	free(key);
	free(in);
	return 0;
}
