/*
 * /api/data: a user's key-value pairs.  The router has hashed the Bearer
 * token and checked the declared fields (the key, from the URL or the
 * body; the value, as the text to store; a listing's query).  Each
 * handler runs one statement, which checks the token too (the user is
 * the token's); a write that changed nothing asks once more why.  Every
 * write gives the row a new random version, which is its ETag; If-Match
 * writes put the version check into the statement itself, so two
 * writers holding the same ETag cannot both win.  A pair may expire (its
 * TTL): the statements treat an expired pair as gone.  The user's quota
 * is the database's to enforce (its usage triggers), as part of each
 * write; a write it refuses is tried once more if the user had expired
 * pairs the purge has not deleted yet.  A merge patch is the one write
 * of two statements: the value is read, merged here and written back in
 * one transaction.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "extern.h"

#define LIST_DEFAULT 100
#define LIST_BYTES   (8 << 20) /* value bytes per page, whatever the limit */

/*
 * A write changed no row: the token is not valid, or the key does not
 * exist, or (If-Match) it has another version.  A precondition does not
 * turn a 404 into a 412 (RFC 9110 13.2.1).
 */
static struct outcome
why_unchanged(struct req *r, int conditional)
{
	const struct field_value *k = &r->field[F_KEY];
	struct stored cur;
	struct outcome o;

	o = outcome_db(db_data_get(r->token_hash, k->s, k->len, 0, &cur),
	    ERR_KEY_NOT_FOUND);
	r->user = cur.user;
	if (o.err == ERR_OK)
		o.err =
		    conditional ? ERR_PRECONDITION_FAILED : ERR_KEY_NOT_FOUND;
	return o;
}

/*
 * A write the quota refused (d) may go again when the user had expired
 * pairs: they are deleted now, which frees their space.
 */
static int
expired_freed(const struct req *r, enum dbr d)
{
	unsigned long long n = 0;

	return d == DBR_QUOTA && db_data_expire(r->token_hash, &n) == DBR_OK &&
	    n > 0;
}

/* If-Match's versions into tags: -1 for none (no condition, or "*"). */
static int
match_versions(const struct req *r, uint64_t *tags)
{
	return r->if_match != NULL
	    ? req_etags(r->if_match, tags, ETAGS_MAX, NULL)
	    : -1;
}

/*
 * Run a write under If-Match, if the request has one: op() is called with
 * NULL (no condition, or "*": the key must merely exist) or with each
 * listed version in turn until one matches.
 */
static enum dbr
each_version(struct req *r,
    enum dbr (*op)(struct req *, const uint64_t *, const void *),
    const void *arg, int *n)
{
	uint64_t tags[ETAGS_MAX];
	enum dbr d = DBR_NONE;

	if ((*n = match_versions(r, tags)) == -1)
		d = op(r, NULL, arg);
	for (int i = 0; i < *n && d == DBR_NONE; i++)
		d = op(r, &tags[i], arg);
	return d;
}

static struct outcome
conditional(struct req *r,
    enum dbr (*op)(struct req *, const uint64_t *, const void *),
    const void *arg)
{
	enum dbr d;
	int n;

	d = each_version(r, op, arg, &n);
	if (expired_freed(r, d))
		d = each_version(r, op, arg, &n);
	if (d == DBR_NONE)
		return why_unchanged(r, n != -1);
	return outcome_db(d, ERR_INTERNAL);
}

/* The pair a POST or a PUT writes, with the new version. */
static struct pair
pair_of(const struct req *r, uint64_t version)
{
	const struct field_value *f = r->field;
	struct pair w = {f[F_KEY].s, f[F_KEY].len, f[F_VALUE].s, f[F_VALUE].len,
	    version, f[F_TTL].state == FV_SET ? f[F_TTL].n : 0};

	return w;
}

struct outcome
h_data_post(struct req *r)
{
	const struct field_value *k = &r->field[F_KEY];
	const size_t plen = sizeof KEY_PREFIX - 1;
	struct pair w = pair_of(r, auth_rand64());
	enum dbr d;
	struct outcome o;

	d = db_data_insert(r->token_hash, &w);
	if (expired_freed(r, d))
		d = db_data_insert(r->token_hash, &w);
	/* Nothing inserted: a live pair has the key, or the token is not
	 * valid. */
	if (d == DBR_NONE &&
	    (d = db_token_user(r->token_hash, &r->user)) == DBR_OK)
		d = DBR_NONE;
	if ((o = outcome_db(d, ERR_KEY_EXISTS)).err != ERR_OK)
		return o;
	memcpy(r->location, KEY_PREFIX, plen);
	req_pct_encode(
	    k->s, k->len, r->location + plen, sizeof r->location - plen);
	req_etag(w.version, r->etag);
	r->status = 201;
	r->message = "Data stored successfully.";
	return o;
}

/*
 * A pair as GET and the listing answer it: {key, value} and, when it has
 * a TTL, expires_at.  The stored text is already compact JSON: it is
 * embedded as it is.  NULL when out of memory.
 */
static cJSON *
pair_json(const char *k, const char *v, const char *expires_at)
{
	cJSON *it = cJSON_CreateObject();

	if (it == NULL || cJSON_AddStringToObject(it, "key", k) == NULL ||
	    cJSON_AddRawToObject(it, "value", v) == NULL ||
	    (expires_at != NULL && *expires_at != '\0' &&
		cJSON_AddStringToObject(it, "expires_at", expires_at) ==
		    NULL)) {
		cJSON_Delete(it);
		return NULL;
	}
	return it;
}

struct outcome
h_data_get(struct req *r)
{
	const struct field_value *k = &r->field[F_KEY];
	uint64_t tags[ETAGS_MAX];
	struct stored cur;
	struct outcome o;
	int n, weak = 0;

	o = outcome_db(db_data_get(r->token_hash, k->s, k->len, 1, &cur),
	    ERR_KEY_NOT_FOUND);
	r->user = cur.user;
	if (o.err != ERR_OK)
		return o;
	req_etag(cur.version, r->etag);
	/* If-None-Match uses the weak comparison (RFC 9110 13.1.2). */
	if (r->if_none_match != NULL) {
		n = req_etags(r->if_none_match, tags, ETAGS_MAX, &weak);
		for (int i = 0; i < n || n == -1; i++)
			if (n == -1 || tags[i] == cur.version) {
				free(cur.v);
				r->status = 304;
				return o;
			}
	}
	r->data = pair_json(k->s, cur.v, cur.expires_at);
	free(cur.v);
	if (r->data == NULL) {
		o.err = ERR_INTERNAL;
		return o;
	}
	r->status = 200;
	return o;
}

/* The new value and expiry, with the new version: *arg, a pair. */
static enum dbr
put_op(struct req *r, const uint64_t *if_version, const void *arg)
{
	return db_data_update(r->token_hash, arg, if_version);
}

struct outcome
h_data_put(struct req *r)
{
	struct pair w = pair_of(r, auth_rand64());
	struct outcome o;

	if ((o = conditional(r, put_op, &w)).err != ERR_OK)
		return o;
	req_etag(w.version, r->etag);
	r->status = 200;
	r->message = "Data updated successfully.";
	return o;
}

/* A merge patch in the making: why it was refused, the new value's text. */
struct merge {
	struct req *r;
	enum err err;
	char *text;
};

/* db_data_patch's callback: If-Match, then the merge of the body. */
static int
merge_op(void *arg, const struct stored *cur, const char **v, size_t *vlen)
{
	struct merge *m = arg;
	cJSON *value;

	cJSON_free(m->text);
	m->text = NULL;
	m->r->user = cur->user;
	if (m->r->if_match != NULL &&
	    !req_etag_matches(m->r->if_match, cur->version)) {
		m->err = ERR_PRECONDITION_FAILED;
		return -1;
	}
	if ((value = cJSON_Parse(cur->v)) == NULL) {
		log_err("a stored value does not parse");
		m->err = ERR_INTERNAL;
		return -1;
	}
	value = json_merge_patch(value, m->r->field[F_PATCH].item);
	if (value == NULL) {
		m->err = ERR_INTERNAL;
		return -1;
	}
	/* The result is a value like any other: not null, within value_max. */
	m->err = json_value_print(value, &m->text, vlen);
	cJSON_Delete(value);
	*v = m->text;
	return m->err != ERR_OK;
}

struct outcome
h_data_patch(struct req *r)
{
	const struct field_value *k = &r->field[F_KEY];
	struct merge m = {r, ERR_OK, NULL};
	uint64_t version = auth_rand64();
	struct outcome o;
	enum dbr d;

	d = db_data_patch(r->token_hash, k->s, k->len, version, merge_op, &m);
	if (expired_freed(r, d))
		d = db_data_patch(
		    r->token_hash, k->s, k->len, version, merge_op, &m);
	cJSON_free(m.text);
	if (d == DBR_NONE)
		return why_unchanged(r, 0);
	o = outcome_db(d, ERR_INTERNAL);
	if (d == DBR_REFUSED)
		o.err = m.err;
	if (o.err != ERR_OK)
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
page_row(void *arg, const char *k, size_t klen, const char *v, size_t vlen,
    const char *expires_at)
{
	struct page *pg = arg;
	cJSON *it;

	if (pg->count == pg->limit ||
	    (pg->count > 0 && pg->bytes + vlen > LIST_BYTES)) {
		pg->more = 1;
		return 1;
	}
	if (klen > KEY_MAX || (it = pair_json(k, v, expires_at)) == NULL) {
		pg->oom = 1;
		return 1;
	}
	cJSON_AddItemToArray(pg->items, it);
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

/* One page of the change feed, filled row by row by db_changes. */
struct feed_page {
	cJSON *items;
	long long limit, count;
	uint64_t last;
	int more, oom;
};

static int
feed_row(void *arg, uint64_t rev, const char *k, size_t klen,
    const uint64_t *version)
{
	struct feed_page *pg = arg;
	char etag[ETAG_MAX];
	cJSON *it;

	if (pg->count == pg->limit) {
		pg->more = 1;
		return 1;
	}
	if (klen > KEY_MAX || (it = cJSON_CreateObject()) == NULL) {
		pg->oom = 1;
		return 1;
	}
	cJSON_AddItemToArray(pg->items, it);
	if (version != NULL)
		req_etag(*version, etag);
	if (cJSON_AddNumberToObject(it, "rev", (double)rev) == NULL ||
	    cJSON_AddStringToObject(it, "key", k) == NULL ||
	    cJSON_AddStringToObject(it, "op", version ? "put" : "delete") ==
		NULL ||
	    (version != NULL &&
		cJSON_AddStringToObject(it, "etag", etag) == NULL)) {
		pg->oom = 1;
		return 1;
	}
	pg->last = rev;
	pg->count++;
	return 0;
}

/*
 * The user's writes after revision `since`, oldest first.  A `since`
 * before changes the purge has deleted, or past the user's last revision
 * (the revisions of another database: a restore), is 410: the client
 * must resync, from a listing and the feed after data.last_rev.
 */
struct outcome
h_changes(struct req *r)
{
	const struct field_value *f = r->field;
	uint64_t since =
	    f[F_SINCE].state == FV_SET ? (uint64_t)f[F_SINCE].n : 0;
	struct feed head;
	struct feed_page pg;
	struct outcome o;

	memset(&pg, 0, sizeof pg);
	pg.limit = f[F_LIMIT].state == FV_SET ? f[F_LIMIT].n : LIST_DEFAULT;
	o = outcome_db(db_feed(r->token_hash, &head), ERR_INVALID_TOKEN);
	if (o.err != ERR_OK)
		return o;
	r->user = head.user;
	if ((r->data = cJSON_CreateObject()) == NULL) {
		o.err = ERR_INTERNAL;
		return o;
	}
	if (since < head.purged_rev || since > head.rev) {
		o.err = cJSON_AddNumberToObject(
			    r->data, "last_rev", (double)head.rev) == NULL
		    ? ERR_INTERNAL
		    : ERR_CHANGES_EXPIRED;
		return o;
	}
	if ((pg.items = cJSON_AddArrayToObject(r->data, "items")) == NULL) {
		o.err = ERR_INTERNAL;
		goto fail;
	}
	o.err =
	    err_of_db(db_changes(head.user, since, pg.limit + 1, feed_row, &pg),
		ERR_INTERNAL);
	if (o.err == ERR_OK && pg.oom)
		o.err = ERR_INTERNAL;
	if (o.err != ERR_OK)
		goto fail;
	/* Where the next call starts: this page's end, or (the whole feed
	 * read) the user's last revision, which may be newer still. */
	if (!pg.more && head.rev > pg.last)
		pg.last = head.rev;
	if (cJSON_AddNumberToObject(r->data, "last_rev", (double)pg.last) ==
		NULL ||
	    cJSON_AddBoolToObject(r->data, "more", pg.more) == NULL) {
		o.err = ERR_INTERNAL;
		goto fail;
	}
	r->status = 200;
	return o;
fail:
	/* No half a page in an error. */
	cJSON_Delete(r->data);
	r->data = NULL;
	return o;
}
