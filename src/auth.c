/*
 * Secrets: bcrypt password hashes (libxcrypt), access tokens (OpenSSL
 * RAND_bytes, base64url) and the SHA-256 under which tokens are stored.
 * The database never sees a plaintext token; comparisons of secrets in C
 * are constant-time.
 */
#include "config.h"

#include <crypt.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "extern.h"

/* 32 KiB: one per process, never on the stack. */
static struct crypt_data cd;

/* A hash of a random password, checked for unknown users so that they
 * cost the same bcrypt work as a wrong password. */
static char dummy[CRYPT_OUTPUT_SIZE];

int
auth_init(void)
{
	unsigned char pw[24];
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	char hex[sizeof pw * 2 + 1];

	if (RAND_bytes(pw, sizeof pw) != 1)
		return -1;
	for (size_t i = 0; i < sizeof pw; i++)
		snprintf(hex + 2 * i, 3, "%02x", pw[i]);
	explicit_bzero(pw, sizeof pw);
	if (crypt_gensalt_rn("$2b$", (unsigned long)cfg.bcrypt_cost, NULL, 0,
		salt, sizeof salt) == NULL)
		return -1;
	return auth_hash_with(hex, salt, dummy, sizeof dummy);
}

/* Hash pw with an explicit setting (salt or full hash); -1 on failure. */
int
auth_hash_with(const char *pw, const char *setting, char *out, size_t outsz)
{
	uint64_t t0 = metric_now();
	const char *h;
	int rc = -1;

	h = crypt_rn(pw, setting, &cd, sizeof cd);
	metric_bcrypt(t0);
	if (h != NULL && h[0] != '*' && strlen(h) < outsz) {
		memcpy(out, h, strlen(h) + 1);
		rc = 0;
	}
	explicit_bzero(&cd, sizeof cd);
	return rc;
}

/* A new $2b$ hash at the configured cost, salted from the OS. */
int
auth_hash_password(const char *pw, char *out, size_t outsz)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];

	if (crypt_gensalt_rn("$2b$", (unsigned long)cfg.bcrypt_cost, NULL, 0,
		salt, sizeof salt) == NULL) {
		log_err("crypt_gensalt_rn failed");
		return -1;
	}
	return auth_hash_with(pw, salt, out, outsz);
}

/* 1 if pw matches the stored hash (a NULL hash: check the dummy). */
int
auth_check_password(const char *pw, const char *stored)
{
	char h[CRYPT_OUTPUT_SIZE];
	size_t n;
	int ok;

	if (stored == NULL)
		stored = dummy;
	if (auth_hash_with(pw, stored, h, sizeof h) == -1)
		return 0;
	n = strlen(stored);
	ok = strlen(h) == n && CRYPTO_memcmp(h, stored, n) == 0;
	explicit_bzero(h, sizeof h);
	return ok && stored != dummy;
}

/*
 * A new token: 32 random bytes as unpadded base64url (TOKEN_LEN chars,
 * NUL-terminated in tok) and its SHA-256 in hash (HASH_LEN bytes).
 */
int
auth_token_new(char *tok, unsigned char *hash)
{
	unsigned char raw[TOKEN_RAW];
	size_t n;

	if (RAND_bytes(raw, TOKEN_RAW) != 1) {
		log_err("RAND_bytes failed");
		return -1;
	}
	n = b64url_encode(raw, TOKEN_RAW, tok, TOKEN_LEN + 1);
	explicit_bzero(raw, sizeof raw);
	return n == TOKEN_LEN && auth_token_hash(tok, hash) == 0 ? 0 : -1;
}

/*
 * A new session id: SESSION_RAW random bytes as unpadded base64url
 * (SESSION_LEN chars, NUL-terminated in text) and raw.  Public, not a
 * secret: it names a session to its owner.
 */
int
auth_session_new(char *text, unsigned char *raw)
{
	if (RAND_bytes(raw, SESSION_RAW) != 1) {
		log_err("RAND_bytes failed");
		return -1;
	}
	return b64url_encode(raw, SESSION_RAW, text, SESSION_LEN + 1) ==
		SESSION_LEN
	    ? 0
	    : -1;
}

/*
 * A SHA-256 context, started.  The digest is fetched from OpenSSL's
 * provider once and the context kept (a worker is one thread): SHA256()
 * and EVP_sha256() look the algorithm up again on every call, which cost
 * a GET more than the hash itself (docs/performance.md).  NULL if
 * OpenSSL fails.
 */
static EVP_MD_CTX *
sha256_begin(void)
{
	static EVP_MD *md;
	static EVP_MD_CTX *c;

	if (md == NULL && (md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		return NULL;
	if (c == NULL && (c = EVP_MD_CTX_new()) == NULL)
		return NULL;
	return EVP_DigestInit_ex2(c, md, NULL) == 1 ? c : NULL;
}

/*
 * The key of a username's failed logins: SHA-256 of its ASCII-lowercased
 * bytes, as usernames compare (and unknown ones alike).
 */
void
auth_name_hash(const char *name, size_t len, unsigned char *hash)
{
	EVP_MD_CTX *c = sha256_begin();
	unsigned char buf[64];
	size_t n;

	if (c == NULL)
		goto fail;
	while (len > 0) {
		n = len < sizeof buf ? len : sizeof buf;
		for (size_t i = 0; i < n; i++) {
			unsigned char ch = (unsigned char)name[i];

			buf[i] = ch >= 'A' && ch <= 'Z'
			    ? (unsigned char)(ch - 'A' + 'a')
			    : ch;
		}
		if (EVP_DigestUpdate(c, buf, n) != 1)
			goto fail;
		name += n;
		len -= n;
	}
	if (EVP_DigestFinal_ex(c, hash, NULL) != 1)
		goto fail;
	return;
fail:
	/* Counted under one key rather than none: still a lock-out. */
	log_err("SHA-256 of a username failed");
	memset(hash, 0, HASH_LEN);
}

/* A row version: random, so a re-created key never repeats an ETag. */
uint64_t
auth_rand64(void)
{
	uint64_t v = 0;

	if (RAND_bytes((unsigned char *)&v, sizeof v) != 1)
		log_err("RAND_bytes failed");
	return v >> 1; /* fits a signed BIGINT too */
}

/* The SHA-256 of token tok (TOKEN_LEN chars) in hash; -1 if OpenSSL
 * fails. */
int
auth_token_hash(const char *tok, unsigned char *hash)
{
	EVP_MD_CTX *c = sha256_begin();

	if (c == NULL || EVP_DigestUpdate(c, tok, TOKEN_LEN) != 1 ||
	    EVP_DigestFinal_ex(c, hash, NULL) != 1) {
		log_err("SHA-256 of a token failed");
		return -1;
	}
	return 0;
}
