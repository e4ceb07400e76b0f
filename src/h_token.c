/*
 * POST /api/token, both grants.  A login (grant_type absent or
 * "password"; the router has made sure username and password are
 * non-empty strings) checks the password and opens a session; unknown
 * users, over-long passwords and wrong passwords all cost one bcrypt at
 * the configured cost, so timing tells nothing, and a username with too
 * many recent failures is refused before any bcrypt.  A refresh
 * (grant_type "refresh_token") rotates the session's refresh token and
 * costs no bcrypt.  DELETE /api/token ends the presented token's session.
 */
#include "config.h"

#include <string.h>

#include <crypt.h>
#include <cjson/cJSON.h>

#include "extern.h"

/* New tokens and, for a login, a new session id. */
static int
grant_new(struct grant *g, int session)
{
	if (auth_token_new(g->access, g->access_hash) == -1 ||
	    auth_token_new(g->refresh, g->refresh_hash) == -1)
		return -1;
	return session ? auth_session_new(g->session, g->session_raw) : 0;
}

/* The answer of both grants. */
static struct outcome
granted(struct req *r, struct grant *g)
{
	if ((r->data = cJSON_CreateObject()) == NULL) {
		explicit_bzero(g, sizeof *g);
		return outcome(ERR_INTERNAL);
	}
	cJSON_AddStringToObject(r->data, "access_token", g->access);
	cJSON_AddStringToObject(r->data, "token_type", "Bearer");
	cJSON_AddNumberToObject(
	    r->data, "expires_in", (double)cfg.token_lifetime);
	cJSON_AddStringToObject(r->data, "refresh_token", g->refresh);
	cJSON_AddNumberToObject(
	    r->data, "refresh_expires_in", (double)cfg.refresh_lifetime);
	cJSON_AddStringToObject(r->data, "session_id", g->session);
	explicit_bzero(g, sizeof *g);
	r->status = 200;
	r->message = "Access token generated successfully.";
	return outcome(ERR_OK);
}

static struct outcome
login(struct req *r)
{
	const struct field_value *name = &r->field[F_USERNAME];
	const struct field_value *pw = &r->field[F_PASSWORD];
	char hash[CRYPT_OUTPUT_SIZE], ua[UA_MAX + 1];
	unsigned char key[HASH_LEN];
	unsigned long long failures;
	struct grant g;
	uint64_t uid = 0;
	enum dbr d;
	int ok, disabled = 0;

	/* Failures count per name as usernames compare, known or not. */
	auth_name_hash(name->s, name->len, key);
	if ((d = db_login_failures(key, &failures, &r->retry_after)) != DBR_OK)
		return outcome(err_of_db(d, ERR_INTERNAL));
	if (failures >= cfg.login_max_failures) {
		metric_inc(M_LOGIN_LOCKED);
		return outcome(ERR_ACCOUNT_LOCKED);
	}
	/* A name registration would refuse is nobody's: no look-up (the
	 * column's collation would ignore trailing spaces), and neither is
	 * one holding a U+0000. */
	d = name->nul || !user_name_valid(name->s, name->len)
	    ? DBR_NONE
	    : db_user_lookup(name->s, &uid, hash, sizeof hash, &disabled);
	if (d != DBR_OK && d != DBR_NONE)
		return outcome(err_of_db(d, ERR_INTERNAL));
	/* A password bcrypt would truncate, or one holding a U+0000, never
	 * matches: registration refuses both. */
	if (pw->len > PASSWORD_MAX || pw->nul)
		d = DBR_NONE;
	ok = auth_check_password(pw->s, d == DBR_OK ? hash : NULL);
	if (!ok) {
		explicit_bzero(hash, sizeof hash);
		metric_inc(M_LOGIN_FAILED);
		if ((d = db_login_failed(key)) != DBR_OK)
			return outcome(err_of_db(d, ERR_INTERNAL));
		return outcome(ERR_INVALID_CREDENTIALS);
	}
	if (disabled) {
		explicit_bzero(hash, sizeof hash);
		metric_inc(M_LOGIN_DISABLED);
		return outcome(ERR_ACCOUNT_DISABLED);
	}
	if (grant_new(&g, 1) == -1) {
		explicit_bzero(hash, sizeof hash);
		return outcome(ERR_INTERNAL);
	}
	d = db_login(uid, hash, key,
	    user_agent_clean(r->user_agent, ua) ? ua : NULL, &g);
	explicit_bzero(hash, sizeof hash);
	/* The password changed between the check and the session. */
	if (d != DBR_OK) {
		explicit_bzero(&g, sizeof g);
		return outcome(err_of_db(d, ERR_INVALID_CREDENTIALS));
	}
	metric_inc(M_LOGIN_OK);
	metric_inc(M_SESSION_OPENED);
	return granted(r, &g);
}

static struct outcome
refresh(struct req *r)
{
	const struct field_value *rt = &r->field[F_REFRESH_TOKEN];
	unsigned char presented[HASH_LEN];
	struct grant g;
	enum dbr d;
	int reused;

	if (auth_token_hash(rt->s, presented) == -1 || grant_new(&g, 0) == -1)
		return outcome(ERR_INTERNAL);
	d = db_refresh(presented, &g, &reused);
	if (reused) {
		metric_inc(M_REFRESH_REUSE);
		log_warn("a consumed refresh token was presented again: its "
			 "session is ended");
	}
	if (d != DBR_OK) {
		explicit_bzero(&g, sizeof g);
		return outcome(err_of_db(d, ERR_INVALID_GRANT));
	}
	b64url_encode(g.session_raw, SESSION_RAW, g.session, sizeof g.session);
	metric_inc(M_SESSION_REFRESHED);
	return granted(r, &g);
}

struct outcome
h_token(struct req *r)
{
	return grant_refresh(r->field) ? refresh(r) : login(r);
}

/* DELETE /api/token: end the request's token's whole session. */
struct outcome
h_token_delete(struct req *r)
{
	struct outcome o;

	o = outcome_db(
	    db_token_end(r->token_hash, &r->user), ERR_INVALID_TOKEN);
	if (o.err != ERR_OK)
		return o;
	r->status = 200;
	r->message = "Access token revoked.";
	return o;
}
