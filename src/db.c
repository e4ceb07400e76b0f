/*
 * The database: one persistent connection per worker, and every SQL
 * statement of the program in one table, prepared once per connection
 * and reused.  Wrappers below bind parameters and results for each
 * statement; callers never see MySQL types or error texts.  A lost
 * connection is reopened on the next request; a read that hit a dead
 * connection is retried once on a new one, a write is not (its outcome
 * is unknown, so the client gets 503 and may retry).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include "extern.h"

enum stmt {
	ST_USER_INSERT,
	ST_USER_EXISTS,
	ST_USER_LOOKUP,
	ST_TOKEN_INSERT,
	ST_TOKEN_USER,
	ST_DATA_INSERT,
	ST_DATA_GET,
	ST_DATA_UPDATE,
	ST_DATA_DELETE,
	ST__MAX
};

static const struct {
	const char *sql;
	int write;
} sqls[ST__MAX] = {
	[ST_USER_INSERT] = {"INSERT INTO users (username, email, email_key, "
	    "password_hash, full_name, age, gender) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?)", 1},
	[ST_USER_EXISTS] = {"SELECT 1 FROM users WHERE username = ?", 0},
	[ST_USER_LOOKUP] = {"SELECT id, password_hash FROM users "
	    "WHERE username = ?", 0},
	[ST_TOKEN_INSERT] = {"INSERT INTO tokens (token_hash, user_id, "
	    "created_at, expires_at) VALUES (?, ?, UTC_TIMESTAMP(6), "
	    "UTC_TIMESTAMP(6) + INTERVAL ? SECOND)", 1},
	[ST_TOKEN_USER] = {"SELECT user_id FROM tokens WHERE token_hash = ? "
	    "AND expires_at > UTC_TIMESTAMP(6)", 0},
	[ST_DATA_INSERT] = {"INSERT INTO data (user_id, k, v) "
	    "VALUES (?, ?, ?)", 1},
	[ST_DATA_GET] = {"SELECT v, version FROM data "
	    "WHERE user_id = ? AND k = ?", 0},
	[ST_DATA_UPDATE] = {"UPDATE data SET v = ?, version = version + 1, "
	    "updated_at = UTC_TIMESTAMP(6) WHERE user_id = ? AND k = ?", 1},
	[ST_DATA_DELETE] = {"DELETE FROM data WHERE user_id = ? AND k = ?", 1},
};

static MYSQL *conn;
static MYSQL_STMT *stmts[ST__MAX];
static time_t last_used, last_failed;

#define IDLE_PING 30		/* seconds idle before we ping first */
#define RETRY_DEADLOCK 3

void
db_close(void)
{
	for (int i = 0; i < ST__MAX; i++)
		if (stmts[i] != NULL) {
			mysql_stmt_close(stmts[i]);
			stmts[i] = NULL;
		}
	if (conn != NULL) {
		mysql_close(conn);
		conn = NULL;
	}
}

static int
lost(unsigned int e)
{
	return e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST ||
	    e == CR_CONNECTION_ERROR || e == CR_CONN_HOST_ERROR ||
	    e == CR_COMMANDS_OUT_OF_SYNC || e == ER_CONNECTION_KILLED ||
	    e == ER_SERVER_SHUTDOWN || e == CR_SERVER_HANDSHAKE_ERR;
}

static int
db_connect(void)
{
	unsigned int ct = cfg.db_connect_timeout, rt = cfg.db_read_timeout,
	    wt = cfg.db_write_timeout;
	time_t now = time(NULL);

	/* While the database is down, fail fast instead of stalling every
	 * request for a connect timeout. */
	if (last_failed != 0 && now - last_failed < 1)
		return -1;
	if ((conn = mysql_init(NULL)) == NULL)
		goto fail;
	mysql_options(conn, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
	mysql_options(conn, MYSQL_OPT_READ_TIMEOUT, &rt);
	mysql_options(conn, MYSQL_OPT_WRITE_TIMEOUT, &wt);
	mysql_options(conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_options(conn, MYSQL_INIT_COMMAND,
	    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'");
	if (cfg.db_option_file != NULL)
		mysql_options(conn, MYSQL_READ_DEFAULT_FILE,
		    cfg.db_option_file);
	if (cfg.db_option_group != NULL)
		mysql_options(conn, MYSQL_READ_DEFAULT_GROUP,
		    cfg.db_option_group);
	if (mysql_real_connect(conn, cfg.db_host, cfg.db_user,
	    cfg.db_password, cfg.db_name, cfg.db_port, cfg.db_socket,
	    0) == NULL) {
		log_err("database connect: %s", mysql_error(conn));
		goto fail;
	}
	for (int i = 0; i < ST__MAX; i++) {
		if ((stmts[i] = mysql_stmt_init(conn)) == NULL ||
		    mysql_stmt_prepare(stmts[i], sqls[i].sql,
		    strlen(sqls[i].sql)) != 0) {
			log_err("prepare statement %d: %s", i,
			    stmts[i] ? mysql_stmt_error(stmts[i]) :
			    mysql_error(conn));
			goto fail;
		}
	}
	last_failed = 0;
	last_used = now;
	log_info("connected to the database");
	return 0;
fail:
	db_close();
	last_failed = now;
	return -1;
}

/* Connect at start-up; a failure is only logged, requests retry. */
int
db_init(void)
{
	return db_connect();
}

/* Make sure there is a live connection before a request's first query. */
static int
ready(void)
{
	time_t now = time(NULL);

	if (conn != NULL && now - last_used > IDLE_PING &&
	    mysql_ping(conn) != 0) {
		log_warn("database connection lost while idle: %s",
		    mysql_error(conn));
		db_close();
	}
	if (conn == NULL && db_connect() == -1)
		return -1;
	last_used = now;
	return 0;
}

enum dbr
db_ping(void)
{
	if (ready() == -1)
		return DBR_DOWN;
	if (mysql_ping(conn) != 0) {
		log_warn("database ping: %s", mysql_error(conn));
		db_close();
		return DBR_DOWN;
	}
	return DBR_OK;
}

/*
 * Result columns: a fixed buffer (ints, short strings), or, with buffer
 * NULL, a string fetched at its real length into malloc'd memory.
 */
struct col {
	enum { C_U64, C_BUF, C_ALLOC } type;
	void *buf;
	size_t cap;
	char **out;
	size_t *outlen;
	unsigned long len;
	my_bool null;
};

/*
 * Run one statement.  Results, if any, are from the first row; *rows is
 * the number of rows found (SELECT) or changed (other statements).
 */
static enum dbr
run(enum stmt st, MYSQL_BIND *par, struct col *cols, int ncol,
    unsigned long long *rows)
{
	MYSQL_BIND res[4];
	MYSQL_STMT *s;
	int tries = 0, rc;
	unsigned int e;

again:
	if (ready() == -1)
		return DBR_DOWN;
	s = stmts[st];
	if (mysql_stmt_bind_param(s, par) != 0 || mysql_stmt_execute(s) != 0)
		goto error;
	if (ncol == 0) {
		*rows = mysql_stmt_affected_rows(s);
		return DBR_OK;
	}
	memset(res, 0, sizeof res);
	for (int i = 0; i < ncol; i++) {
		res[i].length = &cols[i].len;
		res[i].is_null = &cols[i].null;
		if (cols[i].type == C_U64) {
			res[i].buffer_type = MYSQL_TYPE_LONGLONG;
			res[i].is_unsigned = 1;
			res[i].buffer = cols[i].buf;
		} else {
			res[i].buffer_type = MYSQL_TYPE_STRING;
			res[i].buffer = cols[i].buf;
			res[i].buffer_length = cols[i].buf ? cols[i].cap : 0;
		}
	}
	if (mysql_stmt_bind_result(s, res) != 0)
		goto error;
	rc = mysql_stmt_fetch(s);
	if (rc == 1)
		goto error;
	*rows = rc == MYSQL_NO_DATA ? 0 : 1;
	for (int i = 0; i < ncol && *rows; i++) {
		struct col *c = &cols[i];

		if (c->type == C_U64)
			continue;
		if (c->type == C_BUF) {
			if (c->null || c->len >= c->cap) {
				log_err("statement %d: column %d too long",
				    st, i);
				mysql_stmt_free_result(s);
				return DBR_ERR;
			}
			((char *)c->buf)[c->len] = '\0';
			continue;
		}
		/* C_ALLOC: fetch the real length now. */
		if ((*c->out = malloc(c->len + 1)) == NULL) {
			mysql_stmt_free_result(s);
			return DBR_ERR;
		}
		res[i].buffer = *c->out;
		res[i].buffer_length = c->len + 1;
		if (c->len > 0 && mysql_stmt_fetch_column(s, &res[i],
		    (unsigned)i, 0) != 0) {
			free(*c->out);
			*c->out = NULL;
			goto error;
		}
		(*c->out)[c->len] = '\0';
		*c->outlen = c->len;
	}
	mysql_stmt_free_result(s);
	return DBR_OK;

error:
	e = mysql_stmt_errno(s);
	if (e == ER_DUP_ENTRY)
		return DBR_DUP;
	if ((e == ER_LOCK_DEADLOCK || e == ER_LOCK_WAIT_TIMEOUT) &&
	    ++tries < RETRY_DEADLOCK) {
		log_warn("statement %d: %s; retrying", st, mysql_stmt_error(s));
		goto again;
	}
	if (lost(e)) {
		log_err("statement %d: database connection lost: %s", st,
		    mysql_stmt_error(s));
		db_close();
		last_failed = 0;	/* reconnect at once */
		if (!sqls[st].write && ++tries < 2)
			goto again;
		return DBR_DOWN;
	}
	log_err("statement %d: %u %s", st, e, mysql_stmt_error(s));
	mysql_stmt_free_result(s);
	mysql_stmt_reset(s);
	return DBR_ERR;
}

static void
bind_str(MYSQL_BIND *b, const char *s, size_t len)
{
	memset(b, 0, sizeof *b);
	if (s == NULL) {
		b->buffer_type = MYSQL_TYPE_NULL;
		return;
	}
	b->buffer_type = MYSQL_TYPE_STRING;
	b->buffer = (void *)(uintptr_t)s;
	b->buffer_length = len;
}

static void
bind_blob(MYSQL_BIND *b, const unsigned char *s, size_t len)
{
	memset(b, 0, sizeof *b);
	b->buffer_type = MYSQL_TYPE_BLOB;
	b->buffer = (void *)(uintptr_t)s;
	b->buffer_length = len;
}

static void
bind_u64(MYSQL_BIND *b, const uint64_t *v)
{
	memset(b, 0, sizeof *b);
	b->buffer_type = MYSQL_TYPE_LONGLONG;
	b->buffer = (void *)(uintptr_t)v;
	b->is_unsigned = 1;
}

static void
bind_ll(MYSQL_BIND *b, const long long *v)
{
	memset(b, 0, sizeof *b);
	b->buffer_type = MYSQL_TYPE_LONGLONG;
	b->buffer = (void *)(uintptr_t)v;
}

/* A new user; age 0 and gender NULL are stored as NULL. */
enum dbr
db_user_insert(const char *username, const char *email,
    const char *email_key, const char *hash, const char *full_name, int age,
    const char *gender, uint64_t *id)
{
	MYSQL_BIND p[7];
	long long a = age;
	unsigned long long rows;
	enum dbr r;

	bind_str(&p[0], username, strlen(username));
	bind_str(&p[1], email, strlen(email));
	bind_str(&p[2], email_key, strlen(email_key));
	bind_str(&p[3], hash, strlen(hash));
	bind_str(&p[4], full_name, strlen(full_name));
	if (age > 0)
		bind_ll(&p[5], &a);
	else
		bind_str(&p[5], NULL, 0);
	bind_str(&p[6], gender, gender ? strlen(gender) : 0);
	if ((r = run(ST_USER_INSERT, p, NULL, 0, &rows)) == DBR_OK)
		*id = mysql_stmt_insert_id(stmts[ST_USER_INSERT]);
	return r;
}

enum dbr
db_user_exists(const char *username)
{
	MYSQL_BIND p[1];
	uint64_t one;
	struct col c[1] = {{C_U64, &one, 0, NULL, NULL, 0, 0}};
	unsigned long long rows;
	enum dbr r;

	bind_str(&p[0], username, strlen(username));
	if ((r = run(ST_USER_EXISTS, p, c, 1, &rows)) != DBR_OK)
		return r;
	return rows ? DBR_OK : DBR_NONE;
}

enum dbr
db_user_lookup(const char *username, uint64_t *id, char *hash, size_t cap)
{
	MYSQL_BIND p[1];
	struct col c[2] = {
		{C_U64, id, 0, NULL, NULL, 0, 0},
		{C_BUF, hash, cap, NULL, NULL, 0, 0},
	};
	unsigned long long rows;
	enum dbr r;

	bind_str(&p[0], username, strlen(username));
	if ((r = run(ST_USER_LOOKUP, p, c, 2, &rows)) != DBR_OK)
		return r;
	return rows ? DBR_OK : DBR_NONE;
}

enum dbr
db_token_insert(const unsigned char *hash, uint64_t user, long long life)
{
	MYSQL_BIND p[3];
	unsigned long long rows;

	bind_blob(&p[0], hash, HASH_LEN);
	bind_u64(&p[1], &user);
	bind_ll(&p[2], &life);
	return run(ST_TOKEN_INSERT, p, NULL, 0, &rows);
}

enum dbr
db_token_user(const unsigned char *hash, uint64_t *user)
{
	MYSQL_BIND p[1];
	struct col c[1] = {{C_U64, user, 0, NULL, NULL, 0, 0}};
	unsigned long long rows;
	enum dbr r;

	bind_blob(&p[0], hash, HASH_LEN);
	if ((r = run(ST_TOKEN_USER, p, c, 1, &rows)) != DBR_OK)
		return r;
	return rows ? DBR_OK : DBR_NONE;
}

enum dbr
db_data_insert(uint64_t user, const char *k, size_t klen, const char *v,
    size_t vlen)
{
	MYSQL_BIND p[3];
	unsigned long long rows;

	bind_u64(&p[0], &user);
	bind_blob(&p[1], (const unsigned char *)k, klen);
	bind_str(&p[2], v, vlen);
	return run(ST_DATA_INSERT, p, NULL, 0, &rows);
}

/* On DBR_OK, *v is malloc'd and NUL-terminated. */
enum dbr
db_data_get(uint64_t user, const char *k, size_t klen, char **v,
    size_t *vlen, uint64_t *version)
{
	MYSQL_BIND p[2];
	struct col c[2] = {
		{C_ALLOC, NULL, 0, v, vlen, 0, 0},
		{C_U64, version, 0, NULL, NULL, 0, 0},
	};
	unsigned long long rows;
	enum dbr r;

	*v = NULL;
	bind_u64(&p[0], &user);
	bind_blob(&p[1], (const unsigned char *)k, klen);
	if ((r = run(ST_DATA_GET, p, c, 2, &rows)) != DBR_OK)
		return r;
	return rows ? DBR_OK : DBR_NONE;
}

enum dbr
db_data_update(uint64_t user, const char *k, size_t klen, const char *v,
    size_t vlen)
{
	MYSQL_BIND p[3];
	unsigned long long rows;
	enum dbr r;

	bind_str(&p[0], v, vlen);
	bind_u64(&p[1], &user);
	bind_blob(&p[2], (const unsigned char *)k, klen);
	if ((r = run(ST_DATA_UPDATE, p, NULL, 0, &rows)) != DBR_OK)
		return r;
	return rows ? DBR_OK : DBR_NONE;
}

enum dbr
db_data_delete(uint64_t user, const char *k, size_t klen)
{
	MYSQL_BIND p[2];
	unsigned long long rows;
	enum dbr r;

	bind_u64(&p[0], &user);
	bind_blob(&p[1], (const unsigned char *)k, klen);
	if ((r = run(ST_DATA_DELETE, p, NULL, 0, &rows)) != DBR_OK)
		return r;
	return rows ? DBR_OK : DBR_NONE;
}
