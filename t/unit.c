/*
 * Unit tests (TAP) for the parsers that see client bytes first: UTF-8,
 * percent-decoding, the Authorization header, Content-Type, keys and the
 * strict JSON body check; and the JSON Merge Patch of RFC 7396.  Run by
 * t/01-unit.t under prove.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "../src/extern.h"

static int n, failed;

static void
ok(int cond, const char *name)
{
	printf("%sok %d - %s\n", cond ? "" : "not ", ++n, name);
	if (!cond)
		failed++;
}

/* {"a":[[...]]} with k balanced arrays: k + 1 levels in all. */
static const char *
nested(char *buf, size_t cap, size_t k)
{
	size_t o = 5;

	if (2 * k + 7 > cap)
		return "";
	memcpy(buf, "{\"a\":", 5);
	memset(buf + o, '[', k);
	o += k;
	memset(buf + o, ']', k);
	o += k;
	buf[o++] = '}';
	buf[o] = '\0';
	return buf;
}

/* Does the HASH_LEN-byte hash h print as the lower-case hex want? */
static int
hex_is(const unsigned char *h, const char *want)
{
	char got[2 * HASH_LEN + 1];

	for (int i = 0; i < HASH_LEN; i++)
		snprintf(got + 2 * i, 3, "%02x", h[i]);
	if (strcmp(got, want) == 0)
		return 1;
	printf("# got  %s\n# want %s\n", got, want);
	return 0;
}

/* SHA-256 of a string through OpenSSL's EVP interface, not kvapi's. */
static int
sha256_of(const char *s, unsigned char *h)
{
	unsigned int len = 0;

	return EVP_Digest(s, strlen(s), h, &len, EVP_sha256(), NULL) == 1 &&
	    len == HASH_LEN;
}

static int
decodes(const char *in, const char *want, size_t wantlen)
{
	char out[KEY_MAX + 1];
	size_t len;

	if (req_pct_decode(in, strlen(in), out, sizeof out, &len) == -1)
		return want == NULL;
	return want != NULL && len == wantlen && memcmp(out, want, len) == 0;
}

static enum err
body(const char *s)
{
	cJSON *j = NULL;
	enum err e = json_parse_body(s, strlen(s), 0, &j);

	cJSON_Delete(j);
	return e;
}

static enum err
value_of(const char *s, char *out, size_t cap)
{
	cJSON *j = NULL;
	char *v = NULL;
	size_t len = 0;
	enum err e = json_parse_body(s, strlen(s), 0, &j);

	if (e == ERR_OK)
		e = json_value_print(
		    cJSON_GetObjectItemCaseSensitive(j, "value"), &v, &len);
	if (e == ERR_OK)
		snprintf(out, cap, "%s", v);
	cJSON_free(v);
	cJSON_Delete(j);
	return e;
}

/*
 * RFC 7396 MergePatch(target, patch) as the store does it (json.c): the
 * stored value parsed, the patch a body parsed as a value, the result
 * printed as a value is stored.  Is it want?
 */
static int
merges(const char *target, const char *patch, const char *want)
{
	cJSON *t = cJSON_Parse(target), *p = NULL, *m;
	char *v = NULL;
	size_t len = 0;
	int same;

	if (t == NULL ||
	    json_parse_body(patch, strlen(patch), 1, &p) != ERR_OK) {
		cJSON_Delete(t);
		return 0;
	}
	m = json_merge_patch(t, p);
	same = m != NULL && json_value_print(m, &v, &len) == ERR_OK &&
	    strcmp(v, want) == 0;
	if (!same)
		printf("# %s + %s = %s, not %s\n", target, patch, v ? v : "-",
		    want);
	cJSON_free(v);
	cJSON_Delete(m);
	cJSON_Delete(p);
	return same;
}

int
main(void)
{
	char tok[TOKEN_LEN + 1], big[300], deep[4200], out[256];
	unsigned char h1[HASH_LEN], h2[HASH_LEN];
	const char *s;
	size_t len;
	cJSON *j;

	cfg.value_max = 1048576;
	cfg.log_level = -1;

	/* UTF-8 */
	ok(utf8_valid("h\xc3\xa9\xe2\x98\x83\xf0\x9f\x98\x80", 10, &len) &&
		len == 4,
	    "utf8: valid mixed, 4 code points");
	ok(!utf8_valid("\xc0\xaf", 2, NULL), "utf8: overlong refused");
	ok(!utf8_valid("\xed\xa0\x80", 3, NULL), "utf8: surrogate refused");
	ok(!utf8_valid("\xf4\x90\x80\x80", 4, NULL),
	    "utf8: > U+10FFFF refused");
	ok(!utf8_valid("\xe2\x98", 2, NULL), "utf8: truncated refused");
	ok(!utf8_valid("\xff", 1, NULL), "utf8: 0xFF refused");

	/* percent-decoding, exactly once */
	ok(decodes("a%2Fb%20c", "a/b c", 5), "pct: %2F and %20");
	ok(decodes("a%252F", "a%2F", 4), "pct: decoded once only");
	ok(decodes("a+b", "a+b", 3), "pct: + stays +");
	ok(decodes("%E2%98%83", "\xe2\x98\x83", 3), "pct: UTF-8 bytes");
	ok(decodes("%00", "\0", 1), "pct: %00 decodes to a NUL byte");
	ok(decodes("%zz", NULL, 0), "pct: %zz refused");
	ok(decodes("abc%", NULL, 0), "pct: lone % refused");
	ok(decodes("abc%4", NULL, 0), "pct: %4 refused");
	memset(big, 'a', 256);
	big[256] = '\0';
	ok(decodes(big, NULL, 0), "pct: 256 bytes refused (buffer)");

	/* keys */
	ok(req_key_valid("a/b c%\xe2\x98\x83?#", 11), "key: the issue's key");
	ok(!req_key_valid("", 0), "key: empty refused");
	ok(req_key_valid(big, 255), "key: 255 bytes ok");
	ok(!req_key_valid(big, 256), "key: 256 bytes refused");
	ok(!req_key_valid("a\x01", 2), "key: C0 refused");
	ok(!req_key_valid("a\x7f", 2), "key: DEL refused");
	ok(!req_key_valid("a\xc2\x85", 3), "key: C1 (NEL) refused");
	ok(req_key_valid("a\xc2\xa0", 3), "key: NBSP ok");
	ok(!req_key_valid("a\xff", 2), "key: invalid UTF-8 refused");
	ok(req_key_valid("..", 2) && req_key_valid("../x", 4) &&
		req_key_valid("../../etc/passwd", 16) &&
		req_key_valid("a/../../../x", 12) && req_key_valid("./.", 3),
	    "key: dot segments that stay below the root are fine");
	ok(!req_key_valid("../../..", 8) && !req_key_valid("../../../x", 10) &&
		!req_key_valid("a/../../../..", 13),
	    "key: dot segments climbing above the root refused");

	/* Authorization */
	s = "Bearer 8YQX-T9-wHG6X59GypQ8zgI2TFtLf0BTKK-xV_-yhdk";
	ok(req_bearer(s, tok) == 0 && strcmp(tok, s + 7) == 0, "bearer: ok");
	ok(req_bearer(
	       "bEaReR 8YQX-T9-wHG6X59GypQ8zgI2TFtLf0BTKK-xV_-yhdk", tok) == 0,
	    "bearer: scheme case-insensitive");
	ok(req_bearer(
	       "Bearer  8YQX-T9-wHG6X59GypQ8zgI2TFtLf0BTKK-xV_-yhdk", tok) == 0,
	    "bearer: several spaces");
	ok(req_bearer("Bearer 8YQX-T9-wHG6X59GypQ8zgI2TFtLf0BTKK-xV_-yhdkx",
	       tok) == -1,
	    "bearer: trailing junk refused");
	ok(req_bearer(
	       "Bearer 8YQX-T9-wHG6X59GypQ8zgI2TFtLf0BTKK-xV_-yhd=", tok) == -1,
	    "bearer: padding refused");
	ok(req_bearer("Bearer", tok) == -1, "bearer: no token");
	ok(req_bearer("Basic dXNlcjpwYXNz", tok) == -1, "bearer: Basic");
	ok(req_bearer(
	       "Bearer8YQX-T9-wHG6X59GypQ8zgI2TFtLf0BTKK-xV_-yhdk", tok) == -1,
	    "bearer: no space");

	/* Content-Type */
	ok(req_json_ctype("application/json"), "ctype: plain");
	ok(req_json_ctype("Application/JSON; charset=UTF-8"), "ctype: case");
	ok(req_json_ctype("application/json;charset=\"utf-8\""),
	    "ctype: quoted");
	ok(req_json_ctype("application/merge-patch+json"), "ctype: +json");
	ok(!req_json_ctype("application/json; charset=latin1"),
	    "ctype: other charset refused");
	ok(!req_json_ctype("text/plain"), "ctype: text/plain refused");
	ok(!req_json_ctype("application/jsonx"), "ctype: jsonx refused");
	ok(!req_json_ctype(NULL), "ctype: missing refused");
	ok(req_patch_ctype("application/merge-patch+json; charset=utf-8") &&
		req_patch_ctype("Application/Merge-Patch+JSON") &&
		req_patch_ctype("application/json"),
	    "ctype: a merge patch's");
	ok(!req_patch_ctype("application/json-patch+json") &&
		!req_patch_ctype("application/vnd.x+json") &&
		!req_patch_ctype("application/merge-patch+jsonx") &&
		!req_patch_ctype(NULL),
	    "ctype: other +json types are not a merge patch");
	ok(!req_json_ctype("application/x/+json"), "ctype: odd subtype");
	ok(!req_json_ctype("application/json; charset =latin1") &&
		!req_json_ctype("application/a\tb+json") &&
		!req_json_ctype("application/json x"),
	    "ctype: whitespace inside a name or type refused");
	ok(req_json_ctype("application/json;") &&
		req_json_ctype("application/json; charset=utf-8;") &&
		req_json_ctype("application/json;;q=1"),
	    "ctype: empty parameters allowed");
	{
		uint64_t tags[4];
		int weak = 0;

		ok(req_etags(", \"00000000000000ff\",,W/\"0000000000000001\"",
		       tags, 4, &weak) == 2 &&
			tags[0] == 255 && tags[1] == 1 && weak,
		    "etags: empty list elements skipped");
		ok(req_etags("\"x\" junk", tags, 4, NULL) == -2,
		    "etags: junk after a tag refused");
		ok(req_etags("*", tags, 4, NULL) == -1, "etags: *");
	}

	/* JSON bodies */
	ok(body("{\"a\":1}") == ERR_OK, "json: object");
	ok(body(" {\"a\":[1,{\"b\":null}]} \n") == ERR_OK, "json: nested");
	ok(body("[1]") == ERR_INVALID_JSON, "json: array refused");
	ok(body("\"s\"") == ERR_INVALID_JSON, "json: scalar refused");
	ok(body("") == ERR_INVALID_JSON, "json: empty refused");
	ok(body("{\"a\":1} x") == ERR_INVALID_JSON, "json: trailing junk");
	ok(body("{\"a\":1,}") == ERR_INVALID_JSON, "json: trailing comma");
	ok(body("{\"a\":1,\"a\":2}") == ERR_INVALID_JSON, "json: duplicate");
	ok(body("{\"v\":{\"x\":1,\"x\":1}}") == ERR_INVALID_JSON,
	    "json: nested duplicate");
	ok(body("{\"a\":\"\xff\"}") == ERR_INVALID_JSON, "json: bad UTF-8");
	ok(body("{\"a\":\"x\ty\"}") == ERR_INVALID_JSON, "json: raw tab");
	ok(body("{\"a\":\"\\ud800\"}") == ERR_INVALID_JSON,
	    "json: lone surrogate");
	ok(body("{\"a\":\"\\ud83d\\ude00\"}") == ERR_OK, "json: pair");
	ok(body("{\"a\":01}") == ERR_INVALID_JSON, "json: leading zero");
	ok(body("{\"a\":1.}") == ERR_INVALID_JSON, "json: 1.");
	ok(body("{\"a\":tru}") == ERR_INVALID_JSON, "json: tru");
	ok(body("{'a':1}") == ERR_INVALID_JSON, "json: single quotes");
	/* The body's object is level 1 (docs/decisions.md, nesting). */
	ok(body(nested(deep, sizeof deep, 255)) == ERR_OK,
	    "json: 256 levels, the body's object included, accepted");
	ok(body(nested(deep, sizeof deep, 256)) == ERR_INVALID_JSON,
	    "json: 257 levels refused");
	ok(body(nested(deep, sizeof deep, 2000)) == ERR_INVALID_JSON,
	    "json: 2001 levels refused");
	{
		char many[4096];
		size_t o = 0;

		o += (size_t)snprintf(many + o, sizeof many - o, "{");
		for (int i = 0; i < 100; i++)
			o += (size_t)snprintf(many + o, sizeof many - o,
			    "%s\"k%d\":1", i ? "," : "", i % 99);
		snprintf(many + o, sizeof many - o, "}");
		ok(body(many) == ERR_INVALID_JSON,
		    "json: duplicate among 100 members");
	}

	/* NUL escapes: flagged, never truncated */
	j = NULL;
	ok(json_parse_body("{\"key\":\"a\\u0000b\",\"x\":\"ok\"}", 27, 0, &j) ==
		ERR_OK,
	    "nul: body parses");
	ok(json_string(j, "key", &s, &len) == JF_WRONG,
	    "nul: flagged member is not read");
	ok(json_string(j, "x", &s, &len) == JF_OK && strcmp(s, "ok") == 0,
	    "nul: other members read");
	ok(json_string(j, "KEY", &s, &len) == JF_ABSENT,
	    "names are case-sensitive");
	cJSON_Delete(j);
	ok(value_of("{\"value\":{\"a\":\"\\u0000\"}}", out, sizeof out) ==
		ERR_INVALID_VALUE,
	    "nul: inside a value refused");
	ok(value_of("{\"value\":\"a\\\\u0000\"}", out, sizeof out) == ERR_OK &&
		strcmp(out, "\"a\\\\u0000\"") == 0,
	    "nul: escaped backslash ok");

	/* values */
	ok(value_of("{\"value\": [1, 2.5, true, {\"a\": \"\\u00e9\"}]}", out,
	       sizeof out) == ERR_OK &&
		strcmp(out, "[1,2.5,true,{\"a\":\"\xc3\xa9\"}]") == 0,
	    "value: printed compact");
	ok(value_of("{\"value\":12345678901234567890}", out, sizeof out) ==
		    ERR_OK &&
		strcmp(out, "1.2345678901234567e+19") == 0,
	    "value: big integer as its double");
	ok(value_of("{\"value\":[9007199254740993,0.30000000000000004,"
		    "1.7976931348623157e308,1e21,-0.5,1e-7]}",
	       out, sizeof out) == ERR_OK &&
		strcmp(out,
		    "[9007199254740992,0.30000000000000004,"
		    "1.7976931348623157e+308,1e+21,-0.5,1e-07]") == 0,
	    "value: numbers print exactly (cJSON alone would lose digits)");
	ok(value_of("{\"value\":1e400}", out, sizeof out) == ERR_INVALID_VALUE,
	    "value: infinity refused");
	ok(value_of("{\"value\":null}", out, sizeof out) == ERR_INVALID_VALUE,
	    "value: null refused");
	ok(value_of("{\"x\":1}", out, sizeof out) == ERR_INVALID_VALUE,
	    "value: missing refused");
	cfg.value_max = 5;
	ok(value_of("{\"value\":\"abcd\"}", out, sizeof out) ==
		ERR_INVALID_VALUE,
	    "value: over value_max refused");
	ok(value_of("{\"value\":\"abc\"}", out, sizeof out) == ERR_OK,
	    "value: at value_max ok");

	/*
	 * tokens.  The stored hash is checked against SHA-256 computed
	 * outside kvapi: a known vector (from `printf %s TOKEN | sha256sum`)
	 * for auth_token_hash, and OpenSSL's EVP interface over the text
	 * auth_token_new returned, so neither check compares kvapi with
	 * itself.
	 */
	auth_token_hash("0123456789-_abcdefghijklmnopqrstuvwxyzABCDE", h2);
	ok(hex_is(h2,
	       "c2510bb08965e13dc74fd311222c442c"
	       "8597345ffbd1160bda9824d92c057457"),
	    "token: auth_token_hash is SHA-256 of the 43 chars (known vector)");
	ok(auth_token_new(tok, h1) == 0 && strlen(tok) == TOKEN_LEN &&
		req_bearer("Bearer x", tok) == -1,
	    "token: 43 chars");
	ok(sha256_of(tok, h2) && memcmp(h1, h2, HASH_LEN) == 0,
	    "token: auth_token_new's hash is SHA-256 of the text it returned");
	{
		char line[64];

		snprintf(line, sizeof line, "Bearer %s", tok);
		ok(req_bearer(line, out) == 0,
		    "token: passes the header check");
	}

	/* err.c's table: its text goes into JSON and nginx unescaped */
	{
		int plain = 1;

		for (int e = ERR_OK + 1; e < ERR__MAX; e++) {
			const struct err_info *ei = err_info((enum err)e);

			plain = plain && ei->status >= 400 &&
			    strpbrk(ei->code, "\"\\$") == NULL &&
			    strpbrk(ei->message, "\"\\$") == NULL;
		}
		ok(plain,
		    "errors: no quote, backslash or $ in a code or message");
	}

	cfg.value_max = 1048576;
	/* RFC 7396 appendix A, all of it, then what the store adds: member
	 * order kept, numbers as doubles, deep values, patches that are not
	 * objects. */
	ok(merges("{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"),
	    "merge: A.1");
	ok(merges(
	       "{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"),
	    "merge: A.2");
	ok(merges("{\"a\":\"b\"}", "{\"a\":null}", "{}"), "merge: A.3");
	ok(merges("{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"),
	    "merge: A.4");
	ok(merges("{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"),
	    "merge: A.5");
	ok(merges("{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"),
	    "merge: A.6");
	ok(merges("{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}",
	       "{\"a\":{\"b\":\"d\"}}"),
	    "merge: A.7");
	ok(merges("{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"),
	    "merge: A.8");
	ok(merges("[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"),
	    "merge: A.9");
	ok(merges("{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"), "merge: A.10");
	ok(merges("{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"),
	    "merge: A.12");
	ok(merges("[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"),
	    "merge: A.13");
	ok(merges(
	       "{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"),
	    "merge: A.14");
	ok(merges("{\"a\":\"foo\"}", "\"bar\"", "\"bar\""),
	    "merge: A.11, a string replaces");
	ok(merges("{\"x\":1,\"y\":2,\"z\":3}",
	       "{\"y\":[null],\"w\":1.50,\"x\":1e2}",
	       "{\"x\":100,\"y\":[null],\"z\":3,\"w\":1.5}"),
	    "merge: order kept, new last, numbers as doubles");
	ok(merges("{\"Aa\":1}", "{\"aA\":2}", "{\"Aa\":1,\"aA\":2}"),
	    "merge: names compare case-sensitively");
	ok(merges(
	       "0.1", "{\"n\":9007199254740993}", "{\"n\":9007199254740992}"),
	    "merge: a scalar target becomes an object");
	ok(merges("{\"a\":1}", "{}", "{\"a\":1}"),
	    "merge: an empty patch changes nothing");
	/* 201 levels: MariaDB's JSON_MERGE_PATCH gives up beyond 32. */
	nested(deep, sizeof deep, 200);
	ok(merges("{\"a\":1}", deep, deep), "merge: a patch 201 levels deep");
	len = strlen(deep);
	snprintf(big, sizeof big, "%s", "{\"b\":true}");
	memcpy(deep + len - 1, ",\"b\":true}", 11);
	deep[len - 1 + 10] = '\0';
	{
		char target[4200];

		nested(target, sizeof target, 200);
		ok(merges(target, big, deep),
		    "merge: into a value 201 levels deep");
	}

	printf("1..%d\n", n);
	return failed != 0;
}
