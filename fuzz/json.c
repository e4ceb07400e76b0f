/*
 * Fuzz a request body: json_parse_body on the bytes with a NUL after
 * them, as read_body leaves it, then the typed getters the handlers use.
 * Invariants: a parsed body is an object; every string in the tree and
 * every string json_string hands out is valid UTF-8 (checked by request.c
 * and by the reference in fuzz.h); the printed "value" is compact JSON
 * that json_parse_body takes back when wrapped as {"value":...}, with
 * the same type and the very same doubles, bit for bit, and printing
 * that again gives the same text.  A username passes user_name_valid
 * exactly when it is 3..64 of [A-Za-z0-9_.-].  And, against a walk of the
 * raw text written here: a top-level member is flagged exactly when a
 * \u0000 occurs in it, and json_string hands out the whole string, the
 * very bytes the escapes spell, never one cut short at a \u0000.
 */
#include "config.h"

#include <cjson/cJSON.h>

#include "../src/extern.h"
#include "fuzz.h"

#define VALUE_MAX (1 << 20)

static void
check_utf8(const char *s)
{
	size_t len = strlen(s);

	CHECK(utf8_valid(s, len, NULL));
	CHECK(ref_utf8(s, len, NULL) >= 0);
}

/* Every member name and string value in the tree. */
static void
check_tree(const cJSON *it)
{
	for (; it != NULL; it = it->next) {
		if (it->string != NULL)
			check_utf8(it->string);
		if (cJSON_IsString(it))
			check_utf8(it->valuestring);
		check_tree(it->child);
	}
}

static void
check_string(const cJSON *j, const char *name)
{
	const char *s = NULL;
	size_t len = (size_t)-1;
	enum json_field f = json_string(j, name, &s, &len);

	CHECK(f == JF_ABSENT || f == JF_OK || f == JF_WRONG);
	if (f != JF_OK)
		return;
	CHECK(s != NULL && len == strlen(s));
	CHECK(utf8_valid(s, len, NULL));
	CHECK(ref_utf8(s, len, NULL) >= 0);
	if (strcmp(name, "username") == 0)
		CHECK(user_name_valid(s, len) ==
		    (len >= 3 && len <= 64 &&
			strspn(s,
			    "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len));
}

/*
 * The reference walk, over text json_parse_body accepted: so it is valid
 * JSON, and the walk need not check anything.
 */
struct walk {
	const char *p;
	char *buf; /* a decoded string, len bytes */
	size_t len;
	int nul; /* a \u0000 seen */
};

static void
ws(struct walk *w)
{
	while (*w->p == ' ' || *w->p == '\t' || *w->p == '\n' || *w->p == '\r')
		w->p++;
}

static unsigned
hex4(const char *p)
{
	char h[5] = {p[0], p[1], p[2], p[3], '\0'};

	return (unsigned)strtoul(h, NULL, 16);
}

static void
put_utf8(struct walk *w, unsigned cp)
{
	char *o = w->buf + w->len;

	if (cp < 0x80)
		o[0] = (char)cp, w->len += 1;
	else if (cp < 0x800)
		o[0] = (char)(0xC0 | cp >> 6), o[1] = (char)(0x80 | (cp & 63)),
		w->len += 2;
	else if (cp < 0x10000)
		o[0] = (char)(0xE0 | cp >> 12),
		o[1] = (char)(0x80 | (cp >> 6 & 63)),
		o[2] = (char)(0x80 | (cp & 63)), w->len += 3;
	else
		o[0] = (char)(0xF0 | cp >> 18),
		o[1] = (char)(0x80 | (cp >> 12 & 63)),
		o[2] = (char)(0x80 | (cp >> 6 & 63)),
		o[3] = (char)(0x80 | (cp & 63)), w->len += 4;
}

/* Decode the string at w->p (its quote) into w->buf. */
static void
string(struct walk *w)
{
	unsigned cp;

	w->len = 0;
	for (w->p++; *w->p != '"'; w->p++) {
		if (*w->p != '\\') {
			w->buf[w->len++] = *w->p;
			continue;
		}
		switch (*++w->p) {
		case 'b': w->buf[w->len++] = '\b'; break;
		case 'f': w->buf[w->len++] = '\f'; break;
		case 'n': w->buf[w->len++] = '\n'; break;
		case 'r': w->buf[w->len++] = '\r'; break;
		case 't': w->buf[w->len++] = '\t'; break;
		case 'u':
			cp = hex4(w->p + 1);
			w->p += 4;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				cp = 0x10000 + ((cp - 0xD800) << 10) +
				    (hex4(w->p + 3) - 0xDC00);
				w->p += 6;
			}
			if (cp == 0)
				w->nul = 1;
			put_utf8(w, cp);
			break;
		default: w->buf[w->len++] = *w->p; break; /* " \ / */
		}
	}
	w->p++;
}

/* Skip a value, noting any \u0000 in it (member names included). */
static void
skip_value(struct walk *w)
{
	int depth = 0;

	ws(w);
	do {
		if (*w->p == '"') {
			string(w);
			continue;
		}
		if (*w->p == '{' || *w->p == '[')
			depth++;
		else if (*w->p == '}' || *w->p == ']')
			depth--;
		else if (depth == 0) {
			/* A number or a word at the top: up to what ends it. */
			w->p += strcspn(w->p, ",}] \t\r\n");
			break;
		}
		w->p++;
	} while (depth > 0);
}

static void
check_members(const char *body, size_t len, const cJSON *j)
{
	struct walk w = {body, fuzz_buf(len + 1), 0, 0};
	char *name = fuzz_buf(len + 1), *val = fuzz_buf(len + 1);
	const cJSON *c = j->child;
	size_t nlen, vlen = 0;
	int name_nul, is_string, is_null;

	ws(&w);
	w.p++; /* { */
	for (ws(&w); *w.p == '"'; c = c->next) {
		CHECK(c != NULL);
		w.nul = 0;
		string(&w);
		memcpy(name, w.buf, w.len);
		nlen = w.len;
		name[nlen] = '\0';
		name_nul = w.nul;
		ws(&w);
		w.p++; /* : */
		ws(&w);
		is_string = *w.p == '"';
		is_null = *w.p == 'n';
		skip_value(&w);
		if (is_string) {
			memcpy(val, w.buf, w.len);
			vlen = w.len;
			val[vlen] = '\0';
		}
		CHECK(json_has_nul(c) == w.nul);
		if (!name_nul) {
			const char *s = NULL;
			size_t slen = 0;
			enum json_field f = json_string(j, name, &s, &slen);

			CHECK(strcmp(c->string, name) == 0);
			if (is_null)
				CHECK(f == JF_ABSENT);
			else if (!is_string || w.nul)
				CHECK(f == JF_WRONG);
			else {
				CHECK(f == JF_OK);
				CHECK(
				    slen == vlen && memcmp(s, val, vlen) == 0);
			}
		}
		ws(&w);
		if (*w.p == ',')
			w.p++;
		ws(&w);
	}
	CHECK(*w.p == '}' && c == NULL);
	free(val);
	free(name);
	free(w.buf);
}

/* The numbers in a value, in document order, as cJSON read them. */
static void
numbers(const cJSON *it, double *d, size_t *n)
{
	if (cJSON_IsNumber(it))
		d[(*n)++] = it->valuedouble;
	for (it = it->child; it != NULL; it = it->next)
		numbers(it, d, n);
}

/*
 * {"value":<printed>} parses to the same type and the very same doubles
 * (bit for bit: -0 stays -0), and its value prints to the same text.
 */
static void
check_reparse(
    int type, const double *num, size_t nnum, const char *out, size_t len)
{
	static const char pre[] = "{\"value\":";
	size_t wlen = sizeof pre - 1 + len + 1;
	char *w = fuzz_buf(wlen + 1), *out2 = NULL;
	cJSON *j = NULL, *v;
	double *num2;
	size_t len2 = 0, nnum2 = 0;
	enum err e;

	memcpy(w, pre, sizeof pre - 1);
	memcpy(w + sizeof pre - 1, out, len);
	w[wlen - 1] = '}';
	w[wlen] = '\0';
	e = json_parse_body(w, wlen, 0, &j);
	if (e != ERR_OK)
		fprintf(stderr, "printed value does not re-parse: %s\n", out);
	CHECK(e == ERR_OK && j != NULL);
	v = cJSON_GetObjectItemCaseSensitive(j, "value");
	CHECK(v != NULL);
	CHECK((v->type & 0xFF) == type);
	num2 = fuzz_buf((nnum + 1) * sizeof *num2);
	numbers(v, num2, &nnum2);
	CHECK(nnum2 == nnum);
	for (size_t i = 0; i < nnum; i++) {
		if (memcmp(&num[i], &num2[i], sizeof *num) != 0)
			fprintf(stderr,
			    "number %.17g printed as %s reads "
			    "back as %.17g\n",
			    num[i], out, num2[i]);
		CHECK(memcmp(&num[i], &num2[i], sizeof *num) == 0);
	}
	free(num2);
	e = json_value_print(v, &out2, &len2);
	CHECK(e == ERR_OK);
	if (len2 != len || memcmp(out, out2, len) != 0)
		fprintf(
		    stderr, "printed twice: %s\n           vs %s\n", out, out2);
	CHECK(len2 == len && memcmp(out, out2, len) == 0);
	cJSON_free(out2);
	cJSON_Delete(j);
	free(w);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	cfg.log_level = LOG_ERR_;
	cfg.value_max = VALUE_MAX;
	return 0;
}

/*
 * The bytes as a merge patch (any JSON): merged into a value that holds
 * a bit of everything, the result is a value as any other or refused as
 * one; never a crash or a leak.
 */
static void
merge_patch(const char *body, size_t len)
{
	cJSON *p = (cJSON *)&p, *t, *m;
	char *out = NULL;
	size_t olen = 0;
	enum err e = json_parse_body(body, len, 1, &p);

	if (e != ERR_OK) {
		CHECK(e == ERR_INVALID_JSON && p == NULL);
		return;
	}
	if (json_value_check(p) != ERR_OK) {
		cJSON_Delete(p);
		return;
	}
	t = cJSON_Parse("{\"a\":{\"b\":[1,2.5,\"c\"],\"d\":null},\"e\":true}");
	CHECK(t != NULL);
	m = json_merge_patch(t, p);
	CHECK(m != NULL);
	e = json_value_print(m, &out, &olen);
	CHECK(e == ERR_OK || e == ERR_INVALID_VALUE);
	CHECK(e != ERR_OK || (out != NULL && olen == strlen(out)));
	cJSON_free(out);
	cJSON_Delete(m);
	cJSON_Delete(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char *body = fuzz_cstr(data, len), *out = NULL, *small = NULL;
	cJSON *j = (cJSON *)&j; /* must be reset, also on failure */
	const cJSON *c;
	cJSON *value;
	size_t olen = 0, slen = 0, nnum = 0;
	double *num;
	enum err e, e2;
	int type;

	merge_patch(body, len);
	e = json_parse_body(body, len, 0, &j);
	if (e != ERR_OK) {
		CHECK(e == ERR_INVALID_JSON);
		CHECK(j == NULL);
		free(body);
		return 0;
	}
	CHECK(j != NULL && cJSON_IsObject(j));
	check_tree(j->child);

	check_string(j, "username");
	check_string(j, "key");
	check_string(j, "password");
	for (c = j->child; c != NULL; c = c->next)
		check_string(j, c->string);
	check_members(body, len, j);

	/* json_value_print turns numbers into raw items: note the type. */
	value = cJSON_GetObjectItemCaseSensitive(j, "value");
	type = value != NULL ? value->type & 0xFF : 0;
	num = fuzz_buf((len + 1) * sizeof *num);
	if (value != NULL)
		numbers(value, num, &nnum);
	e = json_value_print(value, &out, &olen);
	CHECK(e == ERR_OK || e == ERR_INVALID_VALUE);
	if (e == ERR_OK) {
		CHECK(out != NULL && olen == strlen(out) && olen <= VALUE_MAX);
		CHECK(value != NULL && !cJSON_IsNull(value) &&
		    !json_has_nul(value));
		check_reparse(type, num, nnum, out, olen);
	} else
		CHECK(out == NULL);

	/* The smallest value_max the config allows: same text or refused. */
	cfg.value_max = 16;
	e2 = json_value_print(value, &small, &slen);
	cfg.value_max = VALUE_MAX;
	if (e == ERR_OK && olen <= 16) {
		CHECK(e2 == ERR_OK && slen == olen &&
		    memcmp(small, out, olen) == 0);
	} else
		CHECK(e2 == ERR_INVALID_VALUE && small == NULL);

	free(num);
	cJSON_free(small);
	cJSON_free(out);
	cJSON_Delete(j);
	free(body);
	return 0;
}
