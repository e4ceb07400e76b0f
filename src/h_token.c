/*
 * POST /api/token: check a username and password (the router has made
 * sure both are non-empty strings), mint an access token.  Unknown
 * users, over-long passwords and wrong passwords all cost one bcrypt at
 * the configured cost, so timing tells nothing.  DELETE /api/token
 * revokes the presented one.
 */
#include "config.h"

#include <string.h>

#include <crypt.h>
#include <cjson/cJSON.h>

#include "extern.h"

struct outcome
h_token(struct req *r)
{
	const struct field_value *name = &r->field[F_USERNAME];
	const struct field_value *pw = &r->field[F_PASSWORD];
	char hash[CRYPT_OUTPUT_SIZE], tok[TOKEN_LEN + 1];
	unsigned char th[HASH_LEN];
	uint64_t uid = 0;
	enum dbr d;
	int ok;

	/* A name registration would refuse is nobody's: no look-up (the
	 * column's collation would ignore trailing spaces), and neither is
	 * one holding a U+0000. */
	d = name->nul || !user_name_valid(name->s, name->len)
	    ? DBR_NONE
	    : db_user_lookup(name->s, &uid, hash, sizeof hash);
	if (d != DBR_OK && d != DBR_NONE)
		return outcome(err_of_db(d, ERR_INTERNAL));
	/* A password bcrypt would truncate, or one holding a U+0000, never
	 * matches: registration refuses both. */
	if (pw->len > PASSWORD_MAX || pw->nul)
		d = DBR_NONE;
	ok = auth_check_password(pw->s, d == DBR_OK ? hash : NULL);
	explicit_bzero(hash, sizeof hash);
	if (!ok)
		return outcome(ERR_INVALID_CREDENTIALS);

	if (auth_token_new(tok, th) == -1)
		return outcome(ERR_INTERNAL);
	if ((d = db_token_insert(th, uid, cfg.token_lifetime)) != DBR_OK)
		return outcome(err_of_db(d, ERR_INTERNAL));
	if ((r->data = cJSON_CreateObject()) == NULL)
		return outcome(ERR_INTERNAL);
	cJSON_AddStringToObject(r->data, "access_token", tok);
	explicit_bzero(tok, sizeof tok);
	cJSON_AddStringToObject(r->data, "token_type", "Bearer");
	cJSON_AddNumberToObject(
	    r->data, "expires_in", (double)cfg.token_lifetime);
	r->status = 200;
	r->message = "Access token generated successfully.";
	return outcome(ERR_OK);
}

/* DELETE /api/token: revoke the request's token, if it is valid. */
struct outcome
h_token_delete(struct req *r)
{
	struct outcome o;

	o = outcome_db(db_token_delete(r->token_hash), ERR_INVALID_TOKEN);
	if (o.err != ERR_OK)
		return o;
	r->status = 200;
	r->message = "Access token revoked.";
	return o;
}
