/*
 * Checking a route's declared fields (the rows of router.c's table)
 * against a request: each field is found in the JSON body, the path
 * parameter or the query string, converted to its type and passed
 * through its rule, in the order of the rows; the first failure is the
 * answer, with the row's error.  What passes is left in r->field[] for
 * the handler.  Text from the path and the query is decoded once, into
 * the request's own buffers: nothing here allocates but the stored text
 * of a value.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "extern.h"

#define INT_DIGITS 18 /* decimal digits an integer in a URL may have */

/* Conversions: 0 done, -1 not of the type (the row's error), -2 OOM. */

static int
from_json(const struct field *f, cJSON *it, struct field_value *v)
{
	enum err e;
	double d;

	if (it == NULL)
		return -1;
	switch (f->type) {
	case FT_STRING: return json_text(it, &v->s, &v->len) == JF_OK ? 0 : -1;
	case FT_STRING_NUL:
		/* cJSON cut the string at the U+0000 that json.c flagged. */
		if (!cJSON_IsString(it))
			return -1;
		v->s = it->valuestring;
		v->len = strlen(v->s);
		v->nul = json_has_nul(it);
		return 0;
	case FT_INT:
		/* Integral, and within what a double holds exactly. */
		if (!cJSON_IsNumber(it))
			return -1;
		d = it->valuedouble;
		if (d != floor(d) || fabs(d) >= 9007199254740992.0)
			return -1;
		v->n = (long long)d;
		return 0;
	case FT_VALUE:
		e = json_value_print(it, &v->own, &v->len);
		v->s = v->own;
		return e == ERR_OK ? 0 : e == ERR_INTERNAL ? -2 : -1;
	case FT_JSON:
		/* Only the result of a patch must fit value_max. */
		e = json_value_check(it);
		return e == ERR_OK ? 0 : e == ERR_INTERNAL ? -2 : -1;
	case FT_BASE64URL: break;
	}
	return -1;
}

/* Text of the path or the query: 1 found, 0 absent, -1 malformed. */
static int
text_of(const struct req *r, const struct field *f, char *out, size_t cap,
    size_t *len)
{
	if (f->in == IN_QUERY)
		return req_query(r->query, f->name, out, cap, len);
	if (r->param == NULL)
		return 0;
	return req_pct_decode(r->param, r->paramlen, out, cap, len) == -1 ? -1
									  : 1;
}

/* A field of the path or the query, decoded into buf (FIELD_TEXT_MAX). */
static int
from_text(const struct req *r, const struct field *f, char *buf,
    struct field_value *v)
{
	char b64[2 * FIELD_TEXT_MAX + 1];
	size_t len = 0;
	int found;

	if (f->type == FT_BASE64URL) {
		if ((found = text_of(r, f, b64, sizeof b64, &len)) == 1 &&
		    b64url_decode(b64, len, (unsigned char *)buf,
			FIELD_TEXT_MAX, &len) == -1)
			found = -1;
	} else
		found = text_of(r, f, buf, FIELD_TEXT_MAX + 1, &len);
	if (found <= 0)
		return found;
	buf[len] = '\0';
	v->state = FV_SET;
	v->s = buf;
	v->len = len;
	switch (f->type) {
	case FT_STRING:
	case FT_BASE64URL: return memchr(buf, '\0', len) == NULL ? 1 : -1;
	case FT_STRING_NUL: v->nul = memchr(buf, '\0', len) != NULL; return 1;
	case FT_INT:
		if (len == 0 || len > INT_DIGITS ||
		    strspn(buf, "0123456789") != len)
			return -1;
		v->n = strtoll(buf, NULL, 10);
		return 1;
	case FT_VALUE:
	case FT_JSON: break;
	}
	return -1;
}

static int
is_string(enum field_type t)
{
	return t == FT_STRING || t == FT_STRING_NUL || t == FT_BASE64URL;
}

/* One row: ERR_OK, the row's error, or ERR_INTERNAL. */
static enum err
check(struct req *r, const struct field *f, char *buf)
{
	struct field_value *v = &r->field[f->id];
	cJSON *it;
	int rc;

	cJSON_free(v->own); /* a row may check a field again */
	memset(v, 0, sizeof *v);
	v->s = ""; /* absent: an empty string, never NULL */
	if (f->in == IN_BODY || f->in == IN_WHOLE) {
		it = f->in == IN_WHOLE
		    ? r->json
		    : cJSON_GetObjectItemCaseSensitive(r->json, f->name);
		if (it != NULL)
			v->state = cJSON_IsNull(it) ? FV_NULL : FV_SET;
		if (f->need == FN_ABSENT)
			return v->state == FV_ABSENT ? ERR_OK : f->err;
		v->item = it;
		if (v->state == FV_SET && (rc = from_json(f, it, v)) != 0)
			return rc == -2 ? ERR_INTERNAL : f->err;
	} else if (from_text(r, f, buf, v) == -1)
		return f->err;
	if (v->state == FV_NULL && f->need == FN_NOT_NULL)
		return f->err;
	if (v->state != FV_SET)
		return f->need == FN_REQUIRED ? f->err : ERR_OK;
	if (f->need == FN_REQUIRED && is_string(f->type) && v->len == 0)
		return f->err;
	if (f->valid != NULL && !f->valid(v))
		return f->err;
	return ERR_OK;
}

/* The fields of a route, rows fs[0..n), in order. */
enum err
field_check(struct req *r, const struct field *fs, size_t n)
{
	size_t texts = 0;
	enum err e;

	for (size_t i = 0; i < n; i++) {
		char *buf = NULL;

		if (fs[i].when != NULL && !fs[i].when(r->field))
			continue;
		if (fs[i].in != IN_BODY && fs[i].in != IN_WHOLE) {
			if (texts == FIELD_TEXTS) {
				log_err("field %s: more than %d path and "
					"query fields",
				    fs[i].name, FIELD_TEXTS);
				return ERR_INTERNAL;
			}
			buf = r->texts[texts++];
		}
		if ((e = check(r, &fs[i], buf)) != ERR_OK) {
			log_debug(
			    "field %s: %s", fs[i].name, err_info(e)->code);
			return e;
		}
	}
	return ERR_OK;
}

/* What the checks allocated. */
void
field_free(struct req *r)
{
	for (int i = 0; i < F__MAX; i++) {
		cJSON_free(r->field[i].own);
		r->field[i].own = NULL;
	}
}
