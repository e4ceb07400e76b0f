/*
 * POST /api/batch: up to BATCH_MAX operations on the user's pairs, in
 * order, in one transaction: all apply or none does.  Each operation is
 * the single request it names (get, create, put, patch, delete: the
 * handlers of h_data.c, with the fields declared below taken from the
 * operation's object instead of the body and the path), or a check of a
 * key's ETag.  Before anything runs, the list's form is checked (400
 * INVALID_BATCH), then every operation's fields, as its single request
 * checks them; the first failure is the answer, with data {index}.  Then
 * db_batch runs them; the first that fails rolls the batch back and is
 * the answer, with its index.  The quota holds the batch's net effect
 * (db.c).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "extern.h"

#define BATCH_MAX 100

#define FIELDS(a) (a), sizeof(a) / sizeof((a)[0])

/* The fields of each operation, as router.c declares a route's. */
// clang-format off
static const struct field key_fields[] = {
    {F_KEY,   "key",   IN_BODY, FT_STRING, FN_REQUIRED, valid_key, ERR_INVALID_KEY,   NULL},
};
static const struct field pair_fields[] = {
    {F_KEY,   "key",   IN_BODY, FT_STRING, FN_REQUIRED, valid_key, ERR_INVALID_KEY,   NULL},
    {F_VALUE, "value", IN_BODY, FT_VALUE,  FN_REQUIRED, NULL,      ERR_INVALID_VALUE, NULL},
    {F_TTL,   "ttl",   IN_BODY, FT_INT,    FN_OPTIONAL, valid_ttl, ERR_INVALID_TTL,   NULL},
};
/* A patch's "value" is the merge patch. */
static const struct field patch_fields[] = {
    {F_KEY,   "key",   IN_BODY, FT_STRING, FN_REQUIRED, valid_key, ERR_INVALID_KEY,   NULL},
    {F_PATCH, "value", IN_BODY, FT_JSON,   FN_REQUIRED, NULL,      ERR_INVALID_VALUE, NULL},
};
// clang-format on

static struct outcome op_check(struct req *);

enum { IF_IGNORED, IF_OPTIONAL, IF_REQUIRED };
static const struct op {
	const char *name;
	const struct field *fields;
	size_t nfields;
	struct outcome (*fn)(struct req *);
	int if_match;
} ops[] = {
    {"get", FIELDS(key_fields), h_data_get, IF_IGNORED},
    {"create", FIELDS(pair_fields), h_data_post, IF_IGNORED},
    {"put", FIELDS(pair_fields), h_data_put, IF_OPTIONAL},
    {"patch", FIELDS(patch_fields), h_data_patch, IF_OPTIONAL},
    {"delete", FIELDS(key_fields), h_data_delete, IF_OPTIONAL},
    {"check", FIELDS(key_fields), op_check, IF_REQUIRED},
};
#define NOPS (sizeof ops / sizeof ops[0])

/* A batch in hand: its operations, and what running them gave. */
struct batch {
	struct req *r;
	cJSON *list; /* the "ops" array */
	const struct op *op[BATCH_MAX];
	cJSON *results;
	enum err err; /* of the operation that failed, */
	int index;    /* which */
};

/*
 * A check: with "if_match" a string (r->if_match), the key exists with
 * one of its ETags ("*": any); with null (r->if_match NULL), the key does
 * not exist.  The row (or the gap) stays locked to the commit, so no
 * other writer can change what was checked before the batch is done.
 */
static struct outcome
op_check(struct req *r)
{
	const struct field_value *k = &r->field[F_KEY];
	struct stored cur;
	enum dbr d;
	struct outcome o;
	int ok;

	d = db_data_lock(r->token_hash, k->s, k->len, 0, &cur);
	o = outcome_db(d == DBR_NONE ? DBR_OK : d, ERR_INTERNAL);
	if (o.err != ERR_OK)
		return o;
	if (r->if_match == NULL)
		ok = d == DBR_NONE;
	else
		ok = d == DBR_OK && req_etag_matches(r->if_match, cur.version);
	if (!ok)
		o.err = ERR_PRECONDITION_FAILED;
	r->status = 200;
	return o;
}

/*
 * The form of the list (INVALID_BATCH): an array of 1..BATCH_MAX objects,
 * each with a known "op", and "if_match" (where the op takes one) a
 * string or null.  A \u0000 anywhere is refused here too: cJSON would cut
 * a string at it.  *index is the failing operation's, or -1.
 */
static enum err
batch_form(struct batch *b, int *index)
{
	const cJSON *it, *name, *im;
	size_t i, k;

	*index = -1;
	b->list = cJSON_GetObjectItemCaseSensitive(b->r->json, "ops");
	if (!cJSON_IsArray(b->list) || json_has_nul(b->list))
		return ERR_INVALID_BATCH;
	i = 0;
	cJSON_ArrayForEach(it, b->list)
	{
		*index = (int)i;
		if (i == BATCH_MAX)
			return ERR_INVALID_BATCH;
		name = cJSON_GetObjectItemCaseSensitive(it, "op");
		if (!cJSON_IsObject(it) || !cJSON_IsString(name))
			return ERR_INVALID_BATCH;
		for (k = 0; k < NOPS; k++)
			if (strcmp(ops[k].name, name->valuestring) == 0)
				break;
		if (k == NOPS)
			return ERR_INVALID_BATCH;
		im = cJSON_GetObjectItemCaseSensitive(it, "if_match");
		if (ops[k].if_match != IF_IGNORED && im != NULL &&
		    !cJSON_IsString(im) && !cJSON_IsNull(im))
			return ERR_INVALID_BATCH;
		if (ops[k].if_match == IF_REQUIRED && im == NULL)
			return ERR_INVALID_BATCH;
		b->op[i++] = &ops[k];
	}
	*index = -1;
	return i == 0 ? ERR_INVALID_BATCH : ERR_OK;
}

/* Operation i's fields into r->field[], and its If-Match into r. */
static enum err
op_fields(struct batch *b, int i, cJSON *it, int *must_be_absent)
{
	struct req *r = b->r;
	const cJSON *im = cJSON_GetObjectItemCaseSensitive(it, "if_match");
	cJSON *body = r->json;
	enum err e;

	if (i >= BATCH_MAX || b->op[i] == NULL) /* batch_form saw to it */
		return ERR_INTERNAL;
	r->json = it;
	e = field_check(r, b->op[i]->fields, b->op[i]->nfields);
	r->json = body;
	r->if_match = NULL;
	*must_be_absent = 0;
	if (b->op[i]->if_match == IF_IGNORED || im == NULL)
		return e;
	if (cJSON_IsString(im))
		r->if_match = im->valuestring;
	else
		*must_be_absent = 1;
	return e;
}

/* What operation i answered, as a result of the batch. */
static int
add_result(struct batch *b)
{
	struct req *r = b->r;
	cJSON *res = cJSON_CreateObject(), *v;

	if (res == NULL)
		return -1;
	cJSON_AddItemToArray(b->results, res);
	if (cJSON_AddNumberToObject(res, "status", r->status) == NULL ||
	    (r->etag[0] &&
		cJSON_AddStringToObject(res, "etag", r->etag) == NULL))
		return -1;
	if (r->data != NULL &&
	    (v = cJSON_DetachItemFromObjectCaseSensitive(r->data, "value")) !=
		NULL)
		cJSON_AddItemToObject(res, "value", v);
	return 0;
}

/* Clear what an operation left in r's output. */
static void
op_reset(struct req *r)
{
	cJSON_Delete(r->data);
	r->data = NULL;
	r->status = 0;
	r->message = NULL;
	r->etag[0] = r->location[0] = '\0';
}

/* db_batch's callback: every operation in turn, in its transaction. */
static enum dbr
run_ops(void *arg)
{
	struct batch *b = arg;
	struct req *r = b->r;
	struct outcome o;
	cJSON *it;
	int i = 0, absent;

	cJSON_Delete(b->results); /* a transaction run again */
	if ((b->results = cJSON_CreateArray()) == NULL)
		return DBR_ERR;
	cJSON_ArrayForEach(it, b->list)
	{
		b->index = i;
		if ((b->err = op_fields(b, i, it, &absent)) != ERR_OK)
			return DBR_REFUSED;
		/* if_match null on a write: the key must not exist (it
		 * then fails as a missing key). */
		o = outcome(ERR_OK);
		if (absent && b->op[i]->fn != op_check)
			o = op_check(r);
		if (o.err == ERR_OK)
			o = b->op[i]->fn(r);
		if ((b->err = o.err) != ERR_OK) {
			op_reset(r);
			return DBR_REFUSED;
		}
		if (add_result(b) == -1) {
			b->err = ERR_INTERNAL;
			return DBR_REFUSED;
		}
		op_reset(r);
		i++;
	}
	return DBR_OK;
}

/* An error of operation index (-1: of none) as the answer. */
static struct outcome
op_error(struct req *r, enum err e, int index, int checked)
{
	struct outcome o = {e, checked};

	cJSON_Delete(r->data);
	r->data = NULL;
	if (index >= 0 &&
	    ((r->data = cJSON_CreateObject()) == NULL ||
		cJSON_AddNumberToObject(r->data, "index", index) == NULL))
		o.err = ERR_INTERNAL;
	return o;
}

struct outcome
h_batch(struct req *r)
{
	struct batch b;
	struct outcome o;
	enum dbr d;
	enum err e;
	int index, absent;
	cJSON *it;

	memset(&b, 0, sizeof b);
	b.r = r;
	if ((e = batch_form(&b, &index)) != ERR_OK)
		return op_error(r, e, index, 0);
	/* Every operation's fields, before anything runs. */
	index = 0;
	cJSON_ArrayForEach(it, b.list)
	{
		if ((e = op_fields(&b, index, it, &absent)) != ERR_OK)
			return op_error(r, e, index, 0);
		index++;
	}
	r->if_none_match = NULL; /* a get in a batch is never a 304 */
	d = db_batch(r->token_hash, run_ops, &b);
	if (d == DBR_REFUSED) {
		cJSON_Delete(b.results);
		return op_error(r, b.err, b.index, 1);
	}
	if ((o = outcome_db(d, ERR_INTERNAL)).err != ERR_OK) {
		cJSON_Delete(b.results);
		return o;
	}
	if ((r->data = cJSON_CreateObject()) == NULL) {
		cJSON_Delete(b.results);
		o.err = ERR_INTERNAL;
		return o;
	}
	cJSON_AddItemToObject(r->data, "results", b.results);
	r->status = 200;
	r->message = "Batch applied.";
	return o;
}
