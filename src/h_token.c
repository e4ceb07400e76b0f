/*
 * POST /api/token: check a username and password, mint an access token.
 * Unknown users, over-long passwords and wrong passwords all cost one
 * bcrypt at the configured cost, so timing tells nothing.
 */
#include "config.h"

#include <string.h>

#include <crypt.h>
#include <cjson/cJSON.h>

#include "extern.h"

enum err
h_token(struct req *r)
{
	const cJSON *pw, *name;
	const char *user;
	char hash[CRYPT_OUTPUT_SIZE], tok[TOKEN_LEN + 1];
	unsigned char th[HASH_LEN];
	uint64_t uid = 0;
	size_t len;
	enum dbr d;
	int ok;

	/* Strings holding a \u0000 are still strings: they match nobody. */
	name = cJSON_GetObjectItemCaseSensitive(r->json, "username");
	pw = cJSON_GetObjectItemCaseSensitive(r->json, "password");
	if (!cJSON_IsString(name) || name->valuestring[0] == '\0' ||
	    !cJSON_IsString(pw) || pw->valuestring[0] == '\0')
		return ERR_MISSING_FIELDS;
	user = name->valuestring;
	len = json_has_nul(name) ? 0 : strlen(user);

	/* A name registration would refuse is nobody's: no look-up (the
	 * column's collation would ignore trailing spaces). */
	d = !user_name_valid(user, len)
	    ? DBR_NONE
	    : db_user_lookup(user, &uid, hash, sizeof hash);
	if (d != DBR_OK && d != DBR_NONE)
		return err_of_db(d, ERR_INTERNAL);
	/* A password bcrypt would truncate, or one holding a NUL, never
	 * matches: registration refuses both. */
	if (strlen(pw->valuestring) > PASSWORD_MAX || json_has_nul(pw))
		d = DBR_NONE;
	ok = auth_check_password(pw->valuestring, d == DBR_OK ? hash : NULL);
	explicit_bzero(hash, sizeof hash);
	if (!ok)
		return ERR_INVALID_CREDENTIALS;

	if (auth_token_new(tok, th) == -1)
		return ERR_INTERNAL;
	if ((d = db_token_insert(th, uid, cfg.token_lifetime)) != DBR_OK)
		return err_of_db(d, ERR_INTERNAL);
	if ((r->data = cJSON_CreateObject()) == NULL)
		return ERR_INTERNAL;
	cJSON_AddStringToObject(r->data, "access_token", tok);
	explicit_bzero(tok, sizeof tok);
	cJSON_AddStringToObject(r->data, "token_type", "Bearer");
	cJSON_AddNumberToObject(
	    r->data, "expires_in", (double)cfg.token_lifetime);
	r->status = 200;
	r->message = "Access token generated successfully.";
	return ERR_OK;
}

/* DELETE /api/token: revoke the request's token, if it is valid. */
enum err
h_token_delete(struct req *r)
{
	enum err e;

	e = router_db(r, db_token_delete(r->token_hash), ERR_INVALID_TOKEN);
	if (e != ERR_OK)
		return e;
	r->status = 200;
	r->message = "Access token revoked.";
	return ERR_OK;
}
