/*
 * /api/data: a user's key-value pairs.  The router has authenticated the
 * user and, for /api/data/{key}, decoded and checked the key; these
 * handlers check the body's fields and run one statement each.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "extern.h"

static enum err
db_err(enum dbr d, enum err none)
{
	switch (d) {
	case DBR_OK: return ERR_OK;
	case DBR_NONE: return none;
	case DBR_DUP: return ERR_KEY_EXISTS;
	case DBR_DOWN: return ERR_SERVICE_UNAVAILABLE;
	default: return ERR_INTERNAL;
	}
}

/* The "value" member as stored text; *v is for cJSON_free. */
static enum err
body_value(const struct req *r, char **v, size_t *vlen)
{
	return json_value_print(cJSON_GetObjectItemCaseSensitive(r->json,
	    "value"), v, vlen);
}

enum err
h_data_post(struct req *r)
{
	const char *key;
	char *v;
	size_t klen, vlen;
	enum err e;

	if (json_string(r->json, "key", &key, &klen) != JF_OK ||
	    !req_key_valid(key, klen))
		return ERR_INVALID_KEY;
	if ((e = body_value(r, &v, &vlen)) != ERR_OK)
		return e;
	e = db_err(db_data_insert(r->user_id, key, klen, v, vlen), ERR_INTERNAL);
	cJSON_free(v);
	if (e != ERR_OK)
		return e;
	memcpy(r->location, "/api/data/", 10);
	req_pct_encode(key, klen, r->location + 10, sizeof r->location - 10);
	r->status = 201;
	r->message = "Data stored successfully.";
	return ERR_OK;
}

enum err
h_data_get(struct req *r)
{
	char *v;
	size_t vlen;
	uint64_t version;
	enum err e;
	cJSON *raw;

	e = db_err(db_data_get(r->user_id, r->key, r->keylen, &v, &vlen,
	    &version), ERR_KEY_NOT_FOUND);
	if (e != ERR_OK)
		return e;
	/* The stored text is already compact JSON: embed it as it is. */
	r->data = cJSON_CreateObject();
	raw = cJSON_CreateRaw(v);
	free(v);
	if (r->data == NULL || raw == NULL ||
	    cJSON_AddStringToObject(r->data, "key", r->key) == NULL) {
		cJSON_Delete(raw);
		return ERR_INTERNAL;
	}
	cJSON_AddItemToObject(r->data, "value", raw);
	r->status = 200;
	return ERR_OK;
}

enum err
h_data_put(struct req *r)
{
	char *v;
	size_t vlen;
	enum err e;

	if ((e = body_value(r, &v, &vlen)) != ERR_OK)
		return e;
	e = db_err(db_data_update(r->user_id, r->key, r->keylen, v, vlen),
	    ERR_KEY_NOT_FOUND);
	cJSON_free(v);
	if (e != ERR_OK)
		return e;
	r->status = 200;
	r->message = "Data updated successfully.";
	return ERR_OK;
}

enum err
h_data_delete(struct req *r)
{
	enum err e;

	e = db_err(db_data_delete(r->user_id, r->key, r->keylen),
	    ERR_KEY_NOT_FOUND);
	if (e != ERR_OK)
		return e;
	r->status = 200;
	r->message = "Data deleted successfully.";
	return ERR_OK;
}
