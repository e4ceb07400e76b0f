/*
 * Users.  POST /api/register: the router has checked the fields in the
 * contract's order; hash the password with bcrypt, insert the user.
 * Uniqueness is left to the database's unique keys, so concurrent
 * registrations cannot both win, and a taken username or email says
 * which (db.c).  /api/users/me: the token's own account, to read, change,
 * re-password or delete.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <crypt.h>
#include <cjson/cJSON.h>

#include "extern.h"

/* Emails are unique without regard to ASCII case: the key they compare
 * by, into out (EMAIL_MAX + 1 bytes; the rules have bounded email). */
static const char *
lower(const char *email, char *out)
{
	size_t i;

	for (i = 0; i < EMAIL_MAX && email[i] != '\0'; i++)
		out[i] = (char)tolower((unsigned char)email[i]);
	out[i] = '\0';
	return out;
}

struct outcome
h_register(struct req *r)
{
	const struct field_value *f = r->field;
	const char *user = f[F_USERNAME].s, *email = f[F_EMAIL].s;
	const char *name = f[F_FULL_NAME].s;
	const char *gender = f[F_GENDER].state == FV_SET ? f[F_GENDER].s : NULL;
	int age = f[F_AGE].state == FV_SET ? (int)f[F_AGE].n : 0;
	char hash[CRYPT_OUTPUT_SIZE], email_key[EMAIL_MAX + 1], id[24];
	uint64_t uid;
	enum dbr d;

	if (auth_hash_password(f[F_PASSWORD].s, hash, sizeof hash) == -1)
		return outcome(ERR_INTERNAL);
	d = db_user_insert(user, email, lower(email, email_key), hash, name,
	    age, gender, &uid);
	explicit_bzero(hash, sizeof hash);
	if (d != DBR_OK)
		return outcome(err_of_db(d, ERR_INTERNAL));
	if ((r->data = cJSON_CreateObject()) == NULL)
		return outcome(ERR_INTERNAL);
	snprintf(id, sizeof id, "%llu", (unsigned long long)uid);
	cJSON_AddStringToObject(r->data, "user_id", id);
	cJSON_AddStringToObject(r->data, "username", user);
	cJSON_AddStringToObject(r->data, "email", email);
	cJSON_AddStringToObject(r->data, "full_name", name);
	if (age > 0)
		cJSON_AddNumberToObject(r->data, "age", age);
	else
		cJSON_AddNullToObject(r->data, "age");
	if (gender != NULL)
		cJSON_AddStringToObject(r->data, "gender", gender);
	else
		cJSON_AddNullToObject(r->data, "gender");
	r->status = 201;
	r->message = "User successfully registered!";
	return outcome(ERR_OK);
}

/*
 * /api/users/me: the account of the presented token.  GET and PATCH are
 * data requests; PUT .../password and DELETE check the password (one
 * bcrypt) and run in the bcrypt pool (nginx).
 */

/* The profile as GET answers it, into r->data. */
static struct outcome
profile(struct req *r)
{
	struct profile u;
	struct outcome o;
	cJSON *usage, *quota;
	char id[24];

	o = outcome_db(db_profile(r->token_hash, &u), ERR_INVALID_TOKEN);
	if (o.err != ERR_OK)
		return o;
	r->user = u.id;
	if ((r->data = cJSON_CreateObject()) == NULL) {
		o.err = ERR_INTERNAL;
		return o;
	}
	snprintf(id, sizeof id, "%llu", (unsigned long long)u.id);
	cJSON_AddStringToObject(r->data, "user_id", id);
	cJSON_AddStringToObject(r->data, "username", u.username);
	cJSON_AddStringToObject(r->data, "email", u.email);
	cJSON_AddStringToObject(r->data, "full_name", u.full_name);
	if (u.age > 0)
		cJSON_AddNumberToObject(r->data, "age", (double)u.age);
	else
		cJSON_AddNullToObject(r->data, "age");
	if (u.has_gender)
		cJSON_AddStringToObject(r->data, "gender", u.gender);
	else
		cJSON_AddNullToObject(r->data, "gender");
	cJSON_AddStringToObject(r->data, "created_at", u.created);
	usage = cJSON_AddObjectToObject(r->data, "usage");
	quota = cJSON_AddObjectToObject(r->data, "quota");
	if (usage == NULL || quota == NULL) {
		o.err = ERR_INTERNAL;
		return o;
	}
	cJSON_AddNumberToObject(usage, "keys", (double)u.keys);
	cJSON_AddNumberToObject(usage, "bytes", (double)u.bytes);
	cJSON_AddNumberToObject(quota, "keys", (double)cfg.quota_keys);
	cJSON_AddNumberToObject(quota, "bytes", (double)cfg.quota_bytes);
	r->status = 200;
	return o;
}

struct outcome
h_me_get(struct req *r)
{
	return profile(r);
}

/* PATCH: the fields present (the router has checked them), then the
 * profile as GET answers it. */
struct outcome
h_me_patch(struct req *r)
{
	const struct field_value *f = r->field;
	struct profile_change c = {NULL, NULL, NULL, NULL, NULL};
	char email_key[EMAIL_MAX + 1];
	long long age = 0;
	struct outcome o;
	enum dbr d;

	if (f[F_EMAIL].state == FV_SET) {
		c.email = f[F_EMAIL].s;
		c.email_key = lower(c.email, email_key);
	}
	if (f[F_FULL_NAME].state == FV_SET)
		c.full_name = f[F_FULL_NAME].s;
	if (f[F_AGE].state != FV_ABSENT) {
		age = f[F_AGE].state == FV_SET ? f[F_AGE].n : 0;
		c.age = &age;
	}
	if (f[F_GENDER].state != FV_ABSENT)
		c.gender = f[F_GENDER].state == FV_SET ? f[F_GENDER].s : "";
	/* Not checked by the update (no row changed may be no change): the
	 * profile's statement after it checks the token. */
	if ((d = db_profile_update(r->token_hash, &c)) != DBR_OK) {
		/* A taken email answers only for a valid token. */
		o = outcome_db(
		    db_token_user(r->token_hash, &r->user), ERR_INVALID_TOKEN);
		if (o.err == ERR_OK)
			o.err = err_of_db(d, ERR_INTERNAL);
		return o;
	}
	if ((o = profile(r)).err == ERR_OK)
		r->message = "User updated successfully.";
	return o;
}

/* The account of the token, and whether password pw is its password
 * (one bcrypt).  ERR_OK, or what to answer. */
static struct outcome
confirm(struct req *r, struct account *a, const struct field_value *pw)
{
	struct outcome o;

	o = outcome_db(db_account(r->token_hash, a), ERR_INVALID_TOKEN);
	if (o.err != ERR_OK)
		return o;
	r->user = a->user;
	if (pw->nul || pw->len > PASSWORD_MAX ||
	    !auth_check_password(pw->s, a->hash))
		o.err = ERR_INVALID_CREDENTIALS;
	return o;
}

/* PUT /api/users/me/password: every other session of the user ends. */
struct outcome
h_me_password(struct req *r)
{
	char hash[CRYPT_OUTPUT_SIZE];
	struct account a;
	struct outcome o;
	enum dbr d;

	if ((o = confirm(r, &a, &r->field[F_CURRENT_PASSWORD])).err != ERR_OK)
		goto done;
	if (auth_hash_password(r->field[F_NEW_PASSWORD].s, hash, sizeof hash) ==
	    -1) {
		o.err = ERR_INTERNAL;
		goto done;
	}
	/* A change that committed meanwhile made a's hash stale: the
	 * current password was checked against an old one. */
	d = db_password_change(&a, r->token_hash, hash);
	explicit_bzero(hash, sizeof hash);
	if ((o.err = err_of_db(d, ERR_INVALID_CREDENTIALS)) != ERR_OK)
		goto done;
	r->status = 200;
	r->message = "Password changed successfully.";
done:
	explicit_bzero(a.hash, sizeof a.hash);
	return o;
}

/* DELETE /api/users/me: the user, its sessions and its data. */
struct outcome
h_me_delete(struct req *r)
{
	struct account a;
	struct outcome o;

	if ((o = confirm(r, &a, &r->field[F_PASSWORD])).err != ERR_OK)
		goto done;
	if ((o.err = err_of_db(db_user_delete(a.user), ERR_INVALID_TOKEN)) !=
	    ERR_OK)
		goto done;
	r->status = 200;
	r->message = "User deleted successfully.";
done:
	explicit_bzero(a.hash, sizeof a.hash);
	return o;
}
