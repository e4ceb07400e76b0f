/*
 * POST /api/register: the router has checked the fields in the
 * contract's order; hash the password with bcrypt, insert the user.
 * Uniqueness is left to the database's unique keys, so concurrent
 * registrations cannot both win, and a taken username or email says
 * which (db.c).
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <crypt.h>
#include <cjson/cJSON.h>

#include "extern.h"

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
	size_t i;

	if (auth_hash_password(f[F_PASSWORD].s, hash, sizeof hash) == -1)
		return outcome(ERR_INTERNAL);
	/* Emails are unique without regard to ASCII case. */
	for (i = 0; email[i] != '\0'; i++)
		email_key[i] = (char)tolower((unsigned char)email[i]);
	email_key[i] = '\0';

	d = db_user_insert(
	    user, email, email_key, hash, name, age, gender, &uid);
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
