/*
 * Fuzz the Authorization header: req_bearer on the bytes up to the first
 * NUL, as FastCGI hands HTTP_AUTHORIZATION over.  On success the token is
 * TOKEN_LEN base64url characters, the header is "Bearer" in any case,
 * spaces and then exactly that token, and the token buffer (TOKEN_LEN + 1
 * bytes, as the router's bearer() has it) is NUL-terminated.
 */
#include "config.h"

#include <strings.h>

#include "../src/extern.h"
#include "fuzz.h"

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char tok[TOKEN_LEN + 1];

	cfg.log_level = LOG_ERR_;
	CHECK(req_bearer(NULL, tok) == -1);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char *h = fuzz_cstr(data, len), *tok = fuzz_buf(TOKEN_LEN + 1);
	const char *p;
	unsigned char raw[TOKEN_RAW + 1];
	size_t hlen = strlen(h), rawlen;
	int r, ref;

	/* The grammar, spelled out: the answer must agree with it. */
	ref = hlen >= 7 && strncasecmp(h, "Bearer ", 7) == 0;
	for (p = ref ? h + 6 : h; ref && *p == ' '; p++)
		;
	ref = ref && strlen(p) == TOKEN_LEN && strspn(p, b64url) == TOKEN_LEN;

	r = req_bearer(h, tok);
	CHECK(r == (ref ? 0 : -1));
	if (r == 0) {
		CHECK(tok[TOKEN_LEN] == '\0');
		CHECK(strlen(tok) == TOKEN_LEN);
		CHECK(strspn(tok, b64url) == TOKEN_LEN);
		CHECK(hlen >= 7 + TOKEN_LEN);
		CHECK(strncasecmp(h, "Bearer ", 7) == 0);
		for (p = h + 6; *p == ' '; p++)
			;
		CHECK(p == h + hlen - TOKEN_LEN);
		CHECK(memcmp(p, tok, TOKEN_LEN + 1) == 0);
		/* 43 characters carry 258 bits: 32 bytes, if canonical. */
		if (b64url_decode(tok, TOKEN_LEN, raw, sizeof raw, &rawlen) ==
		    0)
			CHECK(rawlen == TOKEN_RAW);
	}
	free(tok);
	free(h);
	return 0;
}
