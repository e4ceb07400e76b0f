/*
 * Validation rules: what the contract accepts as a key, a username, an
 * email, a password, an age, a piece of stored text.  Each is a
 * predicate on bytes already decoded (codec.c) and says yes or no; the
 * valid_* ones are the same rules as field rows name them (router.c),
 * on a field's checked value.  Which error a refusal answers is the
 * route table's business.
 */
#include "config.h"

#include <string.h>

#include "extern.h"

/*
 * Text a client may store: valid UTF-8 of min..max code points, without
 * control characters: C0, DEL, and C1 (U+0080..U+009F, encoded C2 80 to
 * C2 9F).
 */
int
req_text_valid(const char *s, size_t len, size_t min, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t chars;

	if (!utf8_valid(s, len, &chars) || chars < min || chars > max)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < 0x20 || p[i] == 0x7F)
			return 0;
		if (p[i] == 0xC2 && i + 1 < len && p[i + 1] < 0xA0)
			return 0;
	}
	return 1;
}

/* A username: 3..64 of [A-Za-z0-9_.-]. */
int
user_name_valid(const char *s, size_t len)
{
	if (len < 3 || len > 64)
		return 0;
	return strspn(s,
		   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		   "0123456789_.-") == len;
}

/*
 * nginx resolves "." and ".." segments (also those spelled %2E and %2F)
 * and refuses a path that climbs above the root with its own 400, so a
 * key that does so from /api/data/ (three ".." more than real segments)
 * could be stored but never read or deleted.  Such keys are refused.
 * Anything below the root still reaches the workers: the site routes on
 * the raw URI.
 */
static int
key_reachable(const char *k, size_t len)
{
	int depth = 2; /* levels we may climb and stay at or below "/" */

	for (size_t i = 0; i <= len;) {
		size_t n = 0;

		while (i + n < len && k[i + n] != '/')
			n++;
		if (n == 2 && k[i] == '.' && k[i + 1] == '.') {
			if (depth-- == 0)
				return 0;
		} else if (n > 1 || (n == 1 && k[i] != '.'))
			depth++;
		i += n + 1;
	}
	return 1;
}

/* A key is 1..KEY_MAX bytes of such text that nginx can route. */
int
req_key_valid(const char *k, size_t len)
{
	return len <= KEY_MAX && req_text_valid(k, len, 1, KEY_MAX) &&
	    key_reachable(k, len);
}

/*
 * An email, as loosely as the contract says: one '@', a non-empty local
 * part, a dot inside the domain, no spaces; text of at most EMAIL_MAX.
 */
static int
email_valid(const char *s, size_t len)
{
	const char *at = strchr(s, '@'), *dot;

	if (len > EMAIL_MAX || !req_text_valid(s, len, 3, EMAIL_MAX) ||
	    strpbrk(s, " \t") != NULL || at == NULL || at == s ||
	    strchr(at + 1, '@') != NULL)
		return 0;
	dot = strchr(at + 1, '.');
	return dot != NULL && dot != at + 1 && s[len - 1] != '.';
}

/* The rules of field rows (router.c), on checked values of their type. */

int
valid_username(const struct field_value *v)
{
	return user_name_valid(v->s, v->len);
}

int
valid_email(const struct field_value *v)
{
	return email_valid(v->s, v->len);
}

int
valid_full_name(const struct field_value *v)
{
	return req_text_valid(v->s, v->len, 1, 128);
}

/*
 * 8 characters to PASSWORD_MAX bytes, the bcrypt limit: never truncated
 * silently.  bcrypt takes C strings, so a U+0000 is refused.
 */
int
valid_password(const struct field_value *v)
{
	size_t chars;

	return !v->nul && v->len <= PASSWORD_MAX &&
	    utf8_valid(v->s, v->len, &chars) && chars >= 8;
}

int
valid_age(const struct field_value *v)
{
	return v->n >= 1 && v->n <= 150;
}

/* A key's time to live, in seconds. */
int
valid_ttl(const struct field_value *v)
{
	return v->n >= 1 && v->n <= TTL_MAX;
}

int
valid_gender(const struct field_value *v)
{
	return req_text_valid(v->s, v->len, 1, 32);
}

int
valid_key(const struct field_value *v)
{
	return req_key_valid(v->s, v->len);
}

/* A listing's prefix is text, but not a path: nginx never resolves it. */
int
valid_prefix(const struct field_value *v)
{
	return v->len == 0 || req_text_valid(v->s, v->len, 1, KEY_MAX);
}

/* 1..LIST_MAX, in no more digits than LIST_MAX has. */
int
valid_limit(const struct field_value *v)
{
	return v->len <= 4 && v->n >= 1 && v->n <= LIST_MAX;
}

/* grant_type: absent or null (the row is optional), "password" or
 * "refresh_token". */
int
valid_grant_type(const struct field_value *v)
{
	return strcmp(v->s, "password") == 0 ||
	    strcmp(v->s, "refresh_token") == 0;
}

/* Which grant a token request is, from its checked grant_type. */
int
grant_refresh(const struct field_value *f)
{
	return f[F_GRANT_TYPE].state == FV_SET &&
	    strcmp(f[F_GRANT_TYPE].s, "refresh_token") == 0;
}

int
grant_password(const struct field_value *f)
{
	return !grant_refresh(f);
}

/* n characters of the unpadded base64url alphabet. */
static int
b64url_text(const struct field_value *v, size_t n)
{
	return v->len == n &&
	    strspn(v->s,
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789-_") == n;
}

/* A token as handed out: TOKEN_LEN characters of base64url. */
int
valid_token_text(const struct field_value *v)
{
	return b64url_text(v, TOKEN_LEN);
}

/* A session id as handed out: SESSION_LEN characters of base64url. */
int
valid_session_id(const struct field_value *v)
{
	return b64url_text(v, SESSION_LEN);
}

/*
 * The User-Agent a session keeps: at most UA_MAX bytes, cut at a
 * character boundary, into out (UA_MAX + 1 bytes); 0 (nothing kept) when
 * it is absent, empty, not UTF-8 or holds control characters.
 */
size_t
user_agent_clean(const char *ua, char *out)
{
	size_t n;

	if (ua == NULL || (n = strlen(ua)) == 0)
		return 0;
	if (n > UA_MAX) {
		n = UA_MAX;
		/* Back off continuation bytes to the start of a character. */
		while (n > 0 && ((unsigned char)ua[n] & 0xC0) == 0x80)
			n--;
	}
	if (!req_text_valid(ua, n, 1, UA_MAX))
		return 0;
	memcpy(out, ua, n);
	out[n] = '\0';
	return n;
}
