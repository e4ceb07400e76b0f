/*
 * POST /api/register: validate the fields in the contract's order, hash
 * the password with bcrypt, insert the user.  Uniqueness is left to the
 * database's unique keys, so concurrent registrations cannot both win.
 */
#include "config.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <crypt.h>
#include <cjson/cJSON.h>

#include "extern.h"

#define EMAIL_MAX 254

/* One '@', a non-empty local part, a dot inside the domain, no spaces. */
static int
email_ok(const char *s, size_t len)
{
	const char *at = strchr(s, '@'), *dot;

	if (len > EMAIL_MAX || !req_text_valid(s, len, 3, EMAIL_MAX) ||
	    strpbrk(s, " \t") != NULL || at == NULL || at == s ||
	    strchr(at + 1, '@') != NULL)
		return 0;
	dot = strchr(at + 1, '.');
	return dot != NULL && dot != at + 1 && s[len - 1] != '.';
}

/* A string member that must be valid text of min..max characters. */
static enum json_field
text_field(
    const cJSON *j, const char *name, size_t min, size_t max, const char **s)
{
	enum json_field f;
	size_t len;

	if ((f = json_string(j, name, s, &len)) != JF_OK)
		return f;
	return req_text_valid(*s, len, min, max) ? JF_OK : JF_WRONG;
}

static enum err
validate(const cJSON *j, const char **user, const char **email, const char **pw,
    const char **name, int *age, const char **gender)
{
	const cJSON *it;
	size_t len, chars;

	if (json_string(j, "username", user, &len) != JF_OK ||
	    !user_name_valid(*user, len))
		return ERR_INVALID_REQUEST;
	if (json_string(j, "email", email, &len) != JF_OK ||
	    !email_ok(*email, len))
		return ERR_INVALID_REQUEST;
	/* A password is any non-empty string; its length is checked next. */
	it = cJSON_GetObjectItemCaseSensitive(j, "password");
	if (!cJSON_IsString(it) || it->valuestring[0] == '\0')
		return ERR_INVALID_REQUEST;
	if (text_field(j, "full_name", 1, 128, name) != JF_OK)
		return ERR_INVALID_REQUEST;

	*pw = it->valuestring;
	len = strlen(*pw);
	if (json_has_nul(it) || len > PASSWORD_MAX ||
	    !utf8_valid(*pw, len, &chars) || chars < 8)
		return ERR_INVALID_PASSWORD;

	it = cJSON_GetObjectItemCaseSensitive(j, "age");
	*age = 0;
	if (it != NULL && !cJSON_IsNull(it)) {
		if (!cJSON_IsNumber(it) ||
		    it->valuedouble != floor(it->valuedouble) ||
		    it->valuedouble < 1 || it->valuedouble > 150)
			return ERR_INVALID_AGE;
		*age = (int)it->valuedouble;
	}

	*gender = NULL;
	if (text_field(j, "gender", 1, 32, gender) == JF_WRONG)
		return ERR_INVALID_GENDER;
	return ERR_OK;
}

enum err
h_register(struct req *r)
{
	const char *user, *email, *pw, *name, *gender;
	char hash[CRYPT_OUTPUT_SIZE], email_key[EMAIL_MAX + 1], id[24];
	uint64_t uid;
	int age;
	enum err e;
	enum dbr d;
	size_t i;

	if ((e = validate(r->json, &user, &email, &pw, &name, &age, &gender)) !=
	    ERR_OK)
		return e;
	if (auth_hash_password(pw, hash, sizeof hash) == -1)
		return ERR_INTERNAL;
	/* Emails are unique without regard to ASCII case. */
	for (i = 0; email[i] != '\0'; i++)
		email_key[i] = (char)tolower((unsigned char)email[i]);
	email_key[i] = '\0';

	d = db_user_insert(
	    user, email, email_key, hash, name, age, gender, &uid);
	explicit_bzero(hash, sizeof hash);
	if (d != DBR_OK)
		return err_of_db(d, ERR_INTERNAL);
	if ((r->data = cJSON_CreateObject()) == NULL)
		return ERR_INTERNAL;
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
	return ERR_OK;
}
