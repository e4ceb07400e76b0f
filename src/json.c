/*
 * JSON in and out.  cJSON builds the tree, but it accepts things the
 * contract refuses (invalid UTF-8, duplicate member names) and silently
 * truncates strings at a \u0000 escape.  So every body first goes through
 * a strict RFC 8259 scan here, which also notes which top-level members
 * hold a \u0000: those members are flagged on the cJSON tree, and typed
 * getters treat them as invalid instead of reading a truncated string.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "extern.h"

#define JSON_DEPTH  256	   /* well below cJSON's own limit of 1000 */
#define JSON_NUL    0x1000 /* our flag in cJSON's type bits */
#define NUL_MEMBERS 32	   /* flagged top-level members we remember */

struct scan {
	const unsigned char *p, *e;
	int depth, limit;
	int nul;     /* a \u0000 seen since last reset */
	int anynul;  /* a \u0000 seen anywhere */
	int members; /* note the top-level members holding one: */
	size_t nnul;
	size_t nulidx[NUL_MEMBERS]; /* indexes of top-level members */
};

static int scan_value(struct scan *);

static void
scan_ws(struct scan *s)
{
	while (s->p < s->e &&
	    (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int
hex4(const unsigned char *p, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned c = p[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			d = (c | 0x20) - 'a' + 10;
		else
			return -1;
		*v = *v << 4 | d;
	}
	return 0;
}

static int
scan_string(struct scan *s)
{
	const unsigned char *run;

	s->p++; /* the opening quote */
	run = s->p;
	while (s->p < s->e) {
		unsigned c = *s->p, u, lo;

		if (c == '"') {
			if (!utf8_valid(
				(const char *)run, (size_t)(s->p - run), NULL))
				return -1;
			s->p++;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c != '\\') {
			s->p++;
			continue;
		}
		if (!utf8_valid((const char *)run, (size_t)(s->p - run), NULL))
			return -1;
		if (s->e - s->p < 2)
			return -1;
		switch (s->p[1]) {
		case '"':
		case '\\':
		case '/':
		case 'b':
		case 'f':
		case 'n':
		case 'r':
		case 't': s->p += 2; break;
		case 'u':
			if (s->e - s->p < 6 || hex4(s->p + 2, &u) == -1)
				return -1;
			s->p += 6;
			if (u == 0)
				s->nul = s->anynul = 1;
			if (u >= 0xDC00 && u <= 0xDFFF)
				return -1; /* a lone low surrogate */
			if (u >= 0xD800 && u <= 0xDBFF) {
				if (s->e - s->p < 6 || s->p[0] != '\\' ||
				    s->p[1] != 'u' ||
				    hex4(s->p + 2, &lo) == -1 || lo < 0xDC00 ||
				    lo > 0xDFFF)
					return -1;
				s->p += 6;
			}
			break;
		default: return -1;
		}
		run = s->p;
	}
	return -1;
}

static int
digits(struct scan *s)
{
	const unsigned char *start = s->p;

	while (s->p < s->e && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > start ? 0 : -1;
}

static int
scan_number(struct scan *s)
{
	if (*s->p == '-')
		s->p++;
	if (s->p < s->e && *s->p == '0')
		s->p++;
	else if (digits(s) == -1)
		return -1;
	if (s->p < s->e && *s->p == '.') {
		s->p++;
		if (digits(s) == -1)
			return -1;
	}
	if (s->p < s->e && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->e && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (digits(s) == -1)
			return -1;
	}
	return 0;
}

static int
scan_word(struct scan *s, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(s->e - s->p) < n || memcmp(s->p, w, n) != 0)
		return -1;
	s->p += n;
	return 0;
}

/* Objects and arrays; at depth 1 (a body's object) note NUL members. */
static int
scan_container(struct scan *s)
{
	int obj = *s->p == '{';
	unsigned char close = obj ? '}' : ']';
	size_t idx = 0;

	if (++s->depth > s->limit)
		return -1;
	s->p++;
	scan_ws(s);
	if (s->p < s->e && *s->p == close) {
		s->p++;
		s->depth--;
		return 0;
	}
	for (;; idx++) {
		int top = obj && s->depth == 1 && s->members;

		if (top)
			s->nul = 0;
		if (obj) {
			if (s->p >= s->e || *s->p != '"' ||
			    scan_string(s) == -1)
				return -1;
			scan_ws(s);
			if (s->p >= s->e || *s->p != ':')
				return -1;
			s->p++;
		}
		if (scan_value(s) == -1)
			return -1;
		if (top && s->nul) {
			if (s->nnul == NUL_MEMBERS)
				return -1;
			s->nulidx[s->nnul++] = idx;
		}
		scan_ws(s);
		if (s->p < s->e && *s->p == ',') {
			s->p++;
			scan_ws(s);
			continue;
		}
		if (s->p < s->e && *s->p == close) {
			s->p++;
			s->depth--;
			return 0;
		}
		return -1;
	}
}

static int
scan_value(struct scan *s)
{
	scan_ws(s);
	if (s->p >= s->e)
		return -1;
	switch (*s->p) {
	case '{':
	case '[': return scan_container(s);
	case '"': return scan_string(s);
	case 't': return scan_word(s, "true");
	case 'f': return scan_word(s, "false");
	case 'n': return scan_word(s, "null");
	default:
		if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
			return scan_number(s);
		return -1;
	}
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Does any object in the tree repeat a member name? */
static int
has_duplicates(const cJSON *it)
{
	const cJSON *c, *d;
	const char **names;
	size_t n = 0, i;
	int dup = 0;

	for (c = it->child; c != NULL; c = c->next) {
		if (c->child != NULL && has_duplicates(c))
			return 1;
		n++;
	}
	if (!cJSON_IsObject(it) || n < 2)
		return 0;
	if (n <= 8) {
		for (c = it->child; c != NULL; c = c->next)
			for (d = c->next; d != NULL; d = d->next)
				if (strcmp(c->string, d->string) == 0)
					return 1;
		return 0;
	}
	/* Sort to stay O(n log n) on a body with many members. */
	if ((names = calloc(n, sizeof *names)) == NULL)
		return 1;
	for (i = 0, c = it->child; c != NULL; c = c->next)
		names[i++] = c->string;
	qsort(names, n, sizeof *names, name_cmp);
	for (i = 1; i < n && !dup; i++)
		dup = strcmp(names[i - 1], names[i]) == 0;
	free(names);
	return dup;
}

/*
 * Parse a request body: valid UTF-8 JSON whose top level is an object,
 * without duplicate names.  With `any`, the body is a value (a merge
 * patch): any JSON at all, as deep as a value may be (one level less
 * than a body, whose object holds it), and a \u0000 anywhere in it
 * flags the whole (json_value_print refuses it).  On success *out owns
 * the tree.
 */
enum err
json_parse_body(const char *buf, size_t len, int any, cJSON **out)
{
	struct scan s = {(const unsigned char *)buf,
	    (const unsigned char *)buf + len, 0, JSON_DEPTH - !!any, 0, 0, !any,
	    0, {0}};
	const char *end = NULL;
	cJSON *root, *c;
	size_t i, k;

	*out = NULL;
	scan_ws(&s);
	if (s.p >= s.e || (!any && *s.p != '{') || scan_value(&s) == -1)
		return ERR_INVALID_JSON;
	scan_ws(&s);
	if (s.p != s.e)
		return ERR_INVALID_JSON;
	/* buf is NUL-terminated by the reader, so no len + 1 pitfall. */
	root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
	if (root == NULL)
		return ERR_INVALID_JSON;
	if (has_duplicates(root)) {
		cJSON_Delete(root);
		return ERR_INVALID_JSON;
	}
	if (any && s.anynul)
		root->type |= JSON_NUL;
	for (i = 0, k = 0, c = root->child; !any && c != NULL && k < s.nnul;
	     c = c->next, i++)
		if (s.nulidx[k] == i) {
			c->type |= JSON_NUL;
			k++;
		}
	*out = root;
	return ERR_OK;
}

/* A string item.  Missing (NULL) or null is JF_ABSENT. */
enum json_field
json_text(const cJSON *it, const char **s, size_t *len)
{
	if (it == NULL || cJSON_IsNull(it))
		return JF_ABSENT;
	if (!cJSON_IsString(it) || (it->type & JSON_NUL))
		return JF_WRONG;
	*s = it->valuestring;
	*len = strlen(it->valuestring);
	return JF_OK;
}

/* The string member `name`, as json_text. */
enum json_field
json_string(const cJSON *obj, const char *name, const char **s, size_t *len)
{
	return json_text(cJSON_GetObjectItemCaseSensitive(obj, name), s, len);
}

int
json_has_nul(const cJSON *it)
{
	return (it->type & JSON_NUL) != 0;
}

/*
 * cJSON 1.7.15 prints a double with %1.15g whenever that reads back
 * "close enough", which loses digits (9007199254740993, 0.1 + 0.2, and
 * DBL_MAX, which then reads back as infinity).  So each number of a value
 * becomes a raw item holding the shortest of %.15g, %.16g and %.17g that
 * reads back to the very same double, as JavaScript prints it.  Returns 0
 * for a number that is not finite, -1 on OOM.
 */
static int
exact_numbers(cJSON *it)
{
	char buf[32], *raw;
	int r;

	if (cJSON_IsNumber(it)) {
		double d = it->valuedouble;

		if (!isfinite(d))
			return 0;
		/* Integers a double holds exactly print plainly. */
		if (d == floor(d) && fabs(d) < 9007199254740992.0)
			snprintf(buf, sizeof buf, "%.0f", d);
		else
			for (int prec = 15; prec <= 17; prec++) {
				snprintf(buf, sizeof buf, "%.*g", prec, d);
				if (strtod(buf, NULL) == d)
					break;
			}
		if ((raw = strdup(buf)) == NULL)
			return -1;
		it->type = cJSON_Raw | (it->type & JSON_NUL);
		it->valuestring = raw;
		return 1;
	}
	for (it = it->child; it != NULL; it = it->next)
		if ((r = exact_numbers(it)) != 1)
			return r;
	return 1;
}

/*
 * A value the contract takes, whatever its size: not missing, not null,
 * no \u0000 inside, numbers a double holds (which become their exact
 * text, exact_numbers).  ERR_INVALID_VALUE otherwise.
 */
enum err
json_value_check(cJSON *it)
{
	int r;

	if (it == NULL || cJSON_IsNull(it) || (it->type & JSON_NUL))
		return ERR_INVALID_VALUE;
	if ((r = exact_numbers(it)) != 1)
		return r == 0 ? ERR_INVALID_VALUE : ERR_INTERNAL;
	return ERR_OK;
}

/*
 * The stored text of a value: compact JSON as cJSON prints it, so numbers
 * are doubles as in JavaScript.  A value the contract refuses (missing,
 * null, a \u0000 inside, a number too large for a double, over
 * value_max) is ERR_INVALID_VALUE.  On success *out is malloc'd.
 */
enum err
json_value_print(cJSON *it, char **out, size_t *len)
{
	enum err e;

	*out = NULL;
	if ((e = json_value_check(it)) != ERR_OK)
		return e;
	if ((*out = cJSON_PrintUnformatted(it)) == NULL)
		return ERR_INTERNAL;
	*len = strlen(*out);
	if (*len > cfg.value_max) {
		cJSON_free(*out);
		*out = NULL;
		return ERR_INVALID_VALUE;
	}
	return ERR_OK;
}

/*
 * RFC 7396's MergePatch into the object obj, in place: members keep
 * their places, new ones are added at the end.  0, or -1 when out of
 * memory (obj is then half merged: the caller deletes it).
 */
static int
merge_into(cJSON *obj, const cJSON *patch)
{
	for (const cJSON *m = patch->child; m != NULL; m = m->next) {
		cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, m->string), *v;

		if (cJSON_IsNull(m)) {
			if (t != NULL)
				cJSON_Delete(
				    cJSON_DetachItemViaPointer(obj, t));
			continue;
		}
		if (cJSON_IsObject(t) && cJSON_IsObject(m)) {
			if (merge_into(t, m) == -1)
				return -1;
			continue;
		}
		if ((v = json_merge_patch(NULL, m)) == NULL)
			return -1;
		if (!(t != NULL ? cJSON_ReplaceItemInObjectCaseSensitive(
				      obj, m->string, v)
				: cJSON_AddItemToObject(obj, m->string, v))) {
			cJSON_Delete(v);
			return -1;
		}
	}
	return 0;
}

/*
 * MergePatch(target, patch) of RFC 7396, section 2: the merged value,
 * made of target (NULL: none), which it takes over, and of copies of
 * patch's items (a parsed body's: json_value_print may have made its
 * numbers raw text, which print as they are).  NULL when out of memory.
 * Done here, not with MariaDB's JSON_MERGE_PATCH, which keeps numbers
 * as they were written, spaces its output and fails beyond 32 levels
 * (docs/decisions.md).
 */
cJSON *
json_merge_patch(cJSON *target, const cJSON *patch)
{
	if (!cJSON_IsObject(patch)) {
		cJSON_Delete(target);
		return cJSON_Duplicate(patch, 1);
	}
	if (!cJSON_IsObject(target)) {
		cJSON_Delete(target);
		if ((target = cJSON_CreateObject()) == NULL)
			return NULL;
	}
	if (merge_into(target, patch) == -1) {
		cJSON_Delete(target);
		return NULL;
	}
	return target;
}
