/*
 * /api/sessions: the sessions of the presented token's user.  A session
 * is what a login opened; its public id names it to its owner.  Listing
 * shows the live ones, newest first; ending one (or all but the current
 * one) deletes them with their tokens.
 */
#include "config.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "extern.h"

struct list {
	cJSON *items;
	const struct account *a;
	int oom;
};

static int
time_or_null(cJSON *o, const char *name, const char *t, int null)
{
	return (null ? cJSON_AddNullToObject(o, name)
		     : cJSON_AddStringToObject(o, name, t)) != NULL;
}

/*
 * Add session s to the array items as the API shows it, with "current"
 * (whether it is a's own session) unless a is NULL (kvapi-admin's view).
 * 0, or -1 when out of memory.
 */
int
session_add(cJSON *items, const struct session_row *s, const struct account *a)
{
	char id[SESSION_LEN + 1];
	cJSON *it;

	if ((it = cJSON_CreateObject()) == NULL)
		return -1;
	cJSON_AddItemToArray(items, it);
	b64url_encode(s->id, SESSION_RAW, id, sizeof id);
	if (cJSON_AddStringToObject(it, "session_id", id) == NULL ||
	    !time_or_null(it, "created_at", s->created, 0) ||
	    !time_or_null(
		it, "refreshed_at", s->refreshed, s->refreshed_null) ||
	    !time_or_null(it, "expires_at", s->expires, 0) ||
	    !time_or_null(it, "user_agent", s->agent, s->agent_null))
		return -1;
	if (a != NULL &&
	    cJSON_AddBoolToObject(it, "current",
		a->has_session &&
		    memcmp(a->session, s->id, SESSION_RAW) == 0) == NULL)
		return -1;
	return 0;
}

static int
session_item(void *arg, const struct session_row *s)
{
	struct list *l = arg;

	if (session_add(l->items, s, l->a) == -1) {
		l->oom = 1;
		return 1;
	}
	return 0;
}

/* The account of the request's token, without its password hash; the
 * user is the access log's (r->user). */
static struct outcome
account(struct req *r, struct account *a)
{
	struct outcome o;

	o = outcome_db(db_account(r->token_hash, a), ERR_INVALID_TOKEN);
	explicit_bzero(a->hash, sizeof a->hash);
	if (o.err == ERR_OK)
		r->user = a->user;
	return o;
}

struct outcome
h_sessions_list(struct req *r)
{
	struct account a;
	struct list l = {NULL, &a, 0};
	struct outcome o;

	if ((o = account(r, &a)).err != ERR_OK)
		return o;
	if ((r->data = cJSON_CreateObject()) == NULL ||
	    (l.items = cJSON_AddArrayToObject(r->data, "items")) == NULL) {
		o.err = ERR_INTERNAL;
		return o;
	}
	if ((o.err = err_of_db(db_sessions(a.user, session_item, &l),
		 ERR_INTERNAL)) == ERR_OK &&
	    l.oom)
		o.err = ERR_INTERNAL;
	r->status = 200;
	return o;
}

/* DELETE /api/sessions/{id}: one of the user's, the current one too. */
struct outcome
h_session_end(struct req *r)
{
	const struct field_value *f = &r->field[F_SESSION_ID];
	unsigned char sid[SESSION_RAW];
	struct account a;
	struct outcome o;
	size_t n;

	if ((o = account(r, &a)).err != ERR_OK)
		return o;
	if (b64url_decode(f->s, f->len, sid, sizeof sid, &n) == -1 ||
	    n != SESSION_RAW) {
		o.err = ERR_SESSION_NOT_FOUND;
		return o;
	}
	if ((o.err = err_of_db(
		 db_session_end(a.user, sid), ERR_SESSION_NOT_FOUND)) != ERR_OK)
		return o;
	r->status = 200;
	r->message = "Session revoked.";
	return o;
}

/* DELETE /api/sessions: all of the user's but the current one. */
struct outcome
h_sessions_end_others(struct req *r)
{
	unsigned long long n = 0;
	struct account a;
	struct outcome o;

	if ((o = account(r, &a)).err != ERR_OK)
		return o;
	if ((o.err = err_of_db(db_sessions_end_others(&a, &n), ERR_INTERNAL)) !=
	    ERR_OK)
		return o;
	if ((r->data = cJSON_CreateObject()) == NULL ||
	    cJSON_AddNumberToObject(r->data, "revoked", (double)n) == NULL) {
		o.err = ERR_INTERNAL;
		return o;
	}
	r->status = 200;
	r->message = "Other sessions revoked.";
	return o;
}
