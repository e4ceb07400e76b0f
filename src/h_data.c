/*
 * /api/data: a user's key-value pairs.  The router has hashed the Bearer
 * token and checked the declared fields (the key, from the URL or the
 * body; the value, as the text to store; a listing's query).  Each
 * handler runs one statement, which checks the token too (the user is
 * the token's); a write that changed nothing asks once more why.  Every
 * write gives the row a new random version, which is its ETag; If-Match
 * writes put the version check into the statement itself, so two
 * writers holding the same ETag cannot both win.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "extern.h"

#define LIST_DEFAULT 100
#define LIST_BYTES   (8 << 20) /* value bytes per page, whatever the limit */
#define MAX_ETAGS    8

/*
 * A write changed no row: the token is not valid, or the key does not
 * exist, or (If-Match) it has another version.  A precondition does not
 * turn a 404 into a 412 (RFC 9110 13.2.1).
 */
static struct outcome
why_unchanged(struct req *r, int conditional)
{
	const struct field_value *k = &r->field[F_KEY];
	uint64_t version;
	struct outcome o;

	o = outcome_db(db_data_get(r->token_hash, k->s, k->len, &r->user,
			   &version, NULL, NULL),
	    ERR_KEY_NOT_FOUND);
	if (o.err == ERR_OK)
		o.err =
		    conditional ? ERR_PRECONDITION_FAILED : ERR_KEY_NOT_FOUND;
	return o;
}

/*
 * Run a write under If-Match, if the request has one: op() is called with
 * NULL (no condition, or "*": the key must merely exist) or with each
 * listed version in turn until one matches.
 */
static struct outcome
conditional(struct req *r,
    enum dbr (*op)(struct req *, const uint64_t *, const void *),
    const void *arg)
{
	uint64_t tags[MAX_ETAGS];
	enum dbr d = DBR_NONE;
	int n = -1;

	if (r->if_match != NULL)
		n = req_etags(r->if_match, tags, MAX_ETAGS, NULL);
	if (n == -1)
		d = op(r, NULL, arg);
	for (int i = 0; i < n && d == DBR_NONE; i++)
		d = op(r, &tags[i], arg);
	if (d == DBR_NONE)
		return why_unchanged(r, n != -1);
	return outcome_db(d, ERR_INTERNAL);
}

struct outcome
h_data_post(struct req *r)
{
	const struct field_value *k = &r->field[F_KEY], *v = &r->field[F_VALUE];
	const size_t plen = sizeof KEY_PREFIX - 1;
	uint64_t version = auth_rand64();
	struct outcome o;

	o = outcome_db(
	    db_data_insert(r->token_hash, k->s, k->len, v->s, v->len, version),
	    ERR_INTERNAL);
	if (o.err != ERR_OK)
		return o;
	memcpy(r->location, KEY_PREFIX, plen);
	req_pct_encode(
	    k->s, k->len, r->location + plen, sizeof r->location - plen);
	req_etag(version, r->etag);
	r->status = 201;
	r->message = "Data stored successfully.";
	return o;
}

struct outcome
h_data_get(struct req *r)
{
	const struct field_value *k = &r->field[F_KEY];
	uint64_t version, tags[MAX_ETAGS];
	char *v;
	size_t vlen;
	struct outcome o;
	cJSON *data, *raw;
	int n, weak = 0;

	o = outcome_db(db_data_get(r->token_hash, k->s, k->len, &r->user,
			   &version, &v, &vlen),
	    ERR_KEY_NOT_FOUND);
	if (o.err != ERR_OK)
		return o;
	req_etag(version, r->etag);
	/* If-None-Match uses the weak comparison (RFC 9110 13.1.2). */
	if (r->if_none_match != NULL) {
		n = req_etags(r->if_none_match, tags, MAX_ETAGS, &weak);
		for (int i = 0; i < n || n == -1; i++)
			if (n == -1 || tags[i] == version) {
				free(v);
				r->status = 304;
				return o;
			}
	}
	/* The stored text is already compact JSON: embed it as it is. */
	data = cJSON_CreateObject();
	raw = cJSON_AddRawToObject(data, "value", v);
	free(v);
	if (raw == NULL || cJSON_AddStringToObject(data, "key", k->s) == NULL) {
		cJSON_Delete(data);
		o.err = ERR_INTERNAL;
		return o;
	}
	/* "key" first, as the contract shows it. */
	cJSON_DetachItemViaPointer(data, raw);
	cJSON_AddItemToObject(data, "value", raw);
	r->data = data;
	r->status = 200;
	return o;
}

/* The new value, with the new version *arg. */
static enum dbr
put_op(struct req *r, const uint64_t *if_version, const void *arg)
{
	const struct field_value *k = &r->field[F_KEY], *v = &r->field[F_VALUE];

	return db_data_update(r->token_hash, k->s, k->len, v->s, v->len,
	    *(const uint64_t *)arg, if_version);
}

struct outcome
h_data_put(struct req *r)
{
	uint64_t version = auth_rand64();
	struct outcome o;

	if ((o = conditional(r, put_op, &version)).err != ERR_OK)
		return o;
	req_etag(version, r->etag);
	r->status = 200;
	r->message = "Data updated successfully.";
	return o;
}

static enum dbr
delete_op(struct req *r, const uint64_t *if_version, const void *arg)
{
	const struct field_value *k = &r->field[F_KEY];

	(void)arg;
	return db_data_delete(r->token_hash, k->s, k->len, if_version);
}

struct outcome
h_data_delete(struct req *r)
{
	struct outcome o;

	if ((o = conditional(r, delete_op, NULL)).err != ERR_OK)
		return o;
	r->status = 200;
	r->message = "Data deleted successfully.";
	return o;
}

/* One page of a listing, filled row by row by db_data_list. */
struct page {
	cJSON *items;
	long long limit, count;
	size_t bytes;
	int more, oom;
	char last[KEY_MAX + 1];
	size_t lastlen;
};

static int
page_row(void *arg, const char *k, size_t klen, const char *v, size_t vlen)
{
	struct page *pg = arg;
	cJSON *it;

	if (pg->count == pg->limit ||
	    (pg->count > 0 && pg->bytes + vlen > LIST_BYTES)) {
		pg->more = 1;
		return 1;
	}
	if (klen > KEY_MAX || (it = cJSON_CreateObject()) == NULL) {
		pg->oom = 1;
		return 1;
	}
	cJSON_AddItemToArray(pg->items, it);
	if (cJSON_AddStringToObject(it, "key", k) == NULL ||
	    cJSON_AddRawToObject(it, "value", v) == NULL) {
		pg->oom = 1;
		return 1;
	}
	memcpy(pg->last, k, klen);
	pg->lastlen = klen;
	pg->bytes += vlen;
	pg->count++;
	return 0;
}

/* Escape LIKE's metacharacters so the prefix matches literally. */
static size_t
like_prefix(const char *p, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == '%' || p[i] == '_' || p[i] == '\\')
			out[o++] = '\\';
		out[o++] = p[i];
	}
	out[o++] = '%';
	return o;
}

/*
 * A page of the listing.  The statement reads by user, so the token is
 * looked up first: two statements, where the other routes have one.
 */
struct outcome
h_data_list(struct req *r)
{
	const struct field_value *f = r->field;
	char like[2 * KEY_MAX + 2], next[2 * KEY_MAX];
	struct page pg;
	struct outcome o;

	memset(&pg, 0, sizeof pg);
	pg.limit = f[F_LIMIT].state == FV_SET ? f[F_LIMIT].n : LIST_DEFAULT;
	o = outcome_db(
	    db_token_user(r->token_hash, &r->user), ERR_INVALID_TOKEN);
	if (o.err != ERR_OK)
		return o;
	if ((pg.items = cJSON_CreateArray()) == NULL) {
		o.err = ERR_INTERNAL;
		return o;
	}
	o.err = err_of_db(
	    db_data_list(r->user, f[F_CURSOR].s, f[F_CURSOR].len, like,
		like_prefix(f[F_PREFIX].s, f[F_PREFIX].len, like), pg.limit + 1,
		page_row, &pg),
	    ERR_INTERNAL);
	if (o.err == ERR_OK && pg.oom)
		o.err = ERR_INTERNAL;
	if (o.err == ERR_OK && (r->data = cJSON_CreateObject()) == NULL)
		o.err = ERR_INTERNAL;
	if (o.err != ERR_OK) {
		cJSON_Delete(pg.items);
		return o;
	}
	cJSON_AddItemToObject(r->data, "items", pg.items);
	if (pg.more) {
		b64url_encode(
		    (unsigned char *)pg.last, pg.lastlen, next, sizeof next);
		cJSON_AddStringToObject(r->data, "next_cursor", next);
	} else
		cJSON_AddNullToObject(r->data, "next_cursor");
	r->status = 200;
	return o;
}
