/*
 * /api/data: a user's key-value pairs.  The router has parsed the Bearer
 * token and, for /api/data/{key}, decoded and checked the key; these
 * handlers check the body's fields and run one statement each, which
 * checks the token too (the user is the token's).  Every write gives the
 * row a new random version, which is its ETag; If-Match writes put the
 * version check into the statement itself, so two writers holding the
 * same ETag cannot both win.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "extern.h"

#define LIST_DEFAULT 100
#define LIST_MAX     1000
#define LIST_BYTES   (8 << 20) /* value bytes per page, whatever the limit */
#define MAX_ETAGS    8

/* The "value" member as stored text; *v is for cJSON_free. */
static enum err
body_value(const struct req *r, char **v, size_t *vlen)
{
	return json_value_print(
	    cJSON_GetObjectItemCaseSensitive(r->json, "value"), v, vlen);
}

/*
 * A write changed no row: the token is not valid, or the key does not
 * exist, or (If-Match) it has another version.  A precondition does not
 * turn a 404 into a 412 (RFC 9110 13.2.1).
 */
static enum err
why_unchanged(struct req *r, int conditional)
{
	uint64_t version;
	enum err e;

	e = router_db(r,
	    db_data_get(r->token_hash, r->key, r->keylen, &r->user_id, &version,
		NULL, NULL),
	    ERR_KEY_NOT_FOUND);
	if (e == ERR_OK)
		e = conditional ? ERR_PRECONDITION_FAILED : ERR_KEY_NOT_FOUND;
	return e;
}

/*
 * Run a write under If-Match, if the request has one: op() is called with
 * NULL (no condition, or "*": the key must merely exist) or with each
 * listed version in turn until one matches.
 */
static enum err
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
	return router_db(r, d, ERR_INTERNAL);
}

enum err
h_data_post(struct req *r)
{
	const char *key;
	char *v;
	size_t klen, vlen;
	uint64_t version = auth_rand64();
	enum err e;

	if (json_string(r->json, "key", &key, &klen) != JF_OK ||
	    !req_key_valid(key, klen))
		return ERR_INVALID_KEY;
	if ((e = body_value(r, &v, &vlen)) != ERR_OK)
		return e;
	e = router_db(r,
	    db_data_insert(r->token_hash, key, klen, v, vlen, version),
	    ERR_INTERNAL);
	cJSON_free(v);
	if (e != ERR_OK)
		return e;
	memcpy(r->location, "/api/data/", 10);
	req_pct_encode(key, klen, r->location + 10, sizeof r->location - 10);
	req_etag(version, r->etag);
	r->status = 201;
	r->message = "Data stored successfully.";
	return ERR_OK;
}

enum err
h_data_get(struct req *r)
{
	uint64_t version, tags[MAX_ETAGS];
	char *v;
	size_t vlen;
	enum err e;
	cJSON *data, *raw;
	int n, weak = 0;

	e = router_db(r,
	    db_data_get(r->token_hash, r->key, r->keylen, &r->user_id, &version,
		&v, &vlen),
	    ERR_KEY_NOT_FOUND);
	if (e != ERR_OK)
		return e;
	req_etag(version, r->etag);
	/* If-None-Match uses the weak comparison (RFC 9110 13.1.2). */
	if (r->if_none_match != NULL) {
		n = req_etags(r->if_none_match, tags, MAX_ETAGS, &weak);
		for (int i = 0; i < n || n == -1; i++)
			if (n == -1 || tags[i] == version) {
				free(v);
				r->status = 304;
				return ERR_OK;
			}
	}
	/* The stored text is already compact JSON: embed it as it is. */
	data = cJSON_CreateObject();
	raw = cJSON_AddRawToObject(data, "value", v);
	free(v);
	if (raw == NULL ||
	    cJSON_AddStringToObject(data, "key", r->key) == NULL) {
		cJSON_Delete(data);
		return ERR_INTERNAL;
	}
	/* "key" first, as the contract shows it. */
	cJSON_DetachItemViaPointer(data, raw);
	cJSON_AddItemToObject(data, "value", raw);
	r->data = data;
	r->status = 200;
	return ERR_OK;
}

struct put {
	const char *v;
	size_t vlen;
	uint64_t version;
};

static enum dbr
put_op(struct req *r, const uint64_t *if_version, const void *arg)
{
	const struct put *p = arg;

	return db_data_update(r->token_hash, r->key, r->keylen, p->v, p->vlen,
	    p->version, if_version);
}

enum err
h_data_put(struct req *r)
{
	struct put p;
	char *v;
	enum err e;

	if ((e = body_value(r, &v, &p.vlen)) != ERR_OK)
		return e;
	p.v = v;
	p.version = auth_rand64();
	e = conditional(r, put_op, &p);
	cJSON_free(v);
	if (e != ERR_OK)
		return e;
	req_etag(p.version, r->etag);
	r->status = 200;
	r->message = "Data updated successfully.";
	return ERR_OK;
}

static enum dbr
delete_op(struct req *r, const uint64_t *if_version, const void *arg)
{
	(void)arg;
	return db_data_delete(r->token_hash, r->key, r->keylen, if_version);
}

enum err
h_data_delete(struct req *r)
{
	enum err e;

	if ((e = conditional(r, delete_op, NULL)) != ERR_OK)
		return e;
	r->status = 200;
	r->message = "Data deleted successfully.";
	return ERR_OK;
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

enum err
h_data_list(struct req *r)
{
	char prefix[KEY_MAX + 1], cur[2 * KEY_MAX], like[2 * KEY_MAX + 2];
	char after[KEY_MAX + 1] = "", num[16], next[2 * KEY_MAX];
	size_t plen = 0, clen, alen = 0, nlen;
	struct page pg;
	enum err e;
	int f;

	memset(&pg, 0, sizeof pg);
	pg.limit = LIST_DEFAULT;
	if ((f = req_query(r->query, "limit", num, sizeof num, &nlen)) == -1)
		return ERR_INVALID_QUERY;
	if (f == 1) {
		/* Digits only: strtoll alone would skip spaces and stop at a
		 * decoded NUL. */
		if (nlen == 0 || nlen > 4 || strspn(num, "0123456789") != nlen)
			return ERR_INVALID_QUERY;
		pg.limit = strtoll(num, NULL, 10);
		if (pg.limit < 1 || pg.limit > LIST_MAX)
			return ERR_INVALID_QUERY;
	}
	/* A prefix is text, but not a path: nginx never resolves it. */
	if ((f = req_query(r->query, "prefix", prefix, sizeof prefix, &plen)) ==
		-1 ||
	    (f == 1 && plen > 0 && !req_text_valid(prefix, plen, 1, KEY_MAX)))
		return ERR_INVALID_QUERY;
	if ((f = req_query(r->query, "cursor", cur, sizeof cur, &clen)) == -1 ||
	    (f == 1 &&
		(b64url_decode(
		     cur, clen, (unsigned char *)after, KEY_MAX, &alen) == -1 ||
		    !req_key_valid(after, alen))))
		return ERR_INVALID_QUERY;

	if ((e = router_auth(r)) != ERR_OK)
		return e;
	if ((pg.items = cJSON_CreateArray()) == NULL)
		return ERR_INTERNAL;
	e = router_db(r,
	    db_data_list(r->user_id, after, alen, like,
		like_prefix(prefix, plen, like), pg.limit + 1, page_row, &pg),
	    ERR_INTERNAL);
	if (e == ERR_OK && pg.oom)
		e = ERR_INTERNAL;
	if (e != ERR_OK || (r->data = cJSON_CreateObject()) == NULL) {
		cJSON_Delete(pg.items);
		return e != ERR_OK ? e : ERR_INTERNAL;
	}
	cJSON_AddItemToObject(r->data, "items", pg.items);
	if (pg.more) {
		b64url_encode(
		    (unsigned char *)pg.last, pg.lastlen, next, sizeof next);
		cJSON_AddStringToObject(r->data, "next_cursor", next);
	} else
		cJSON_AddNullToObject(r->data, "next_cursor");
	r->status = 200;
	return ERR_OK;
}
