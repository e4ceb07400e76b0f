/*
 * The database: one persistent connection per worker, and every SQL
 * statement of the program in one table, prepared once per connection
 * and reused; each row carries the statement's name, which every log
 * line about it prints.  Wrappers below bind parameters and results for each
 * statement; callers never see MySQL types or error texts.  A lost
 * connection is reopened on the next request; a read that hit a dead
 * connection is retried once on a new one, a write is not (its outcome
 * is unknown, so the client gets 503 and may retry).
 */
#include "config.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include "extern.h"

enum stmt {
	ST_USER_INSERT,
	ST_USER_LOOKUP,
	ST_TOKEN_INSERT,
	ST_TOKEN_USER,
	ST_TOKEN_DELETE,
	ST_TOKEN_PURGE,
	ST_DATA_INSERT,
	ST_DATA_GET,
	ST_DATA_VERSION,
	ST_DATA_UPDATE,
	ST_DATA_UPDATE_IF,
	ST_DATA_DELETE,
	ST_DATA_DELETE_IF,
	ST_DATA_LIST,
	ST__MAX
};

/*
 * A valid token, as a condition on `tokens t`.  Every statement on data
 * checks the request's token itself, as part of the read or the write:
 * a data request is one round trip, and what it does happens only if the
 * token is valid at that instant.
 */
#define TOKEN_VALID "t.token_hash = ? AND t.expires_at > UTC_TIMESTAMP(6)"
/* The token's user, with that user's row of key k if there is one. */
#define TOKEN_AND_KEY                                                          \
	" FROM tokens t LEFT JOIN data d ON d.user_id = t.user_id "            \
	"AND d.k = ? WHERE " TOKEN_VALID
/*
 * Key k of the token's user, for UPDATE and DELETE: a subquery, not a
 * multi-table UPDATE/DELETE, whose prepared form crashed MariaDB 10.11.19
 * under the test suite's load (signal 11 in multi_update).  The plan is
 * the same: the token by its primary key, then the row by its own.
 */
#define KEY_OF_TOKEN                                                           \
	" WHERE user_id = (SELECT t.user_id FROM tokens t WHERE " TOKEN_VALID  \
	") AND k = ?"
#define SET_VALUE                                                              \
	"UPDATE data SET v = ?, version = ?, updated_at = "                    \
	"UTC_TIMESTAMP(6)" KEY_OF_TOKEN

/* Each statement: its name (for the log), its SQL, whether it writes. */
static const struct {
	const char *name;
	const char *sql;
	int write;
} statements[ST__MAX] = {
    [ST_USER_INSERT] = {"user_insert",
	"INSERT INTO users (username, email, email_key, "
	"password_hash, full_name, age, gender) "
	"VALUES (?, ?, ?, ?, ?, ?, ?)",
	1},
    [ST_USER_LOOKUP] = {"user_lookup",
	"SELECT id, password_hash FROM users "
	"WHERE username = ?",
	0},
    [ST_TOKEN_INSERT] = {"token_insert",
	"INSERT INTO tokens (token_hash, user_id, "
	"created_at, expires_at) VALUES (?, ?, UTC_TIMESTAMP(6), "
	"UTC_TIMESTAMP(6) + INTERVAL ? SECOND)",
	1},
    [ST_TOKEN_USER] = {"token_user",
	"SELECT t.user_id FROM tokens t WHERE " TOKEN_VALID, 0},
    [ST_TOKEN_DELETE] = {"token_delete",
	"DELETE FROM tokens WHERE token_hash = ? "
	"AND expires_at > UTC_TIMESTAMP(6)",
	1},
    [ST_TOKEN_PURGE] = {"token_purge",
	"DELETE FROM tokens "
	"WHERE expires_at < UTC_TIMESTAMP(6) LIMIT 1000",
	1},
    [ST_DATA_INSERT] = {"data_insert",
	"INSERT INTO data (user_id, k, v, version) "
	"SELECT t.user_id, ?, ?, ? FROM tokens t "
	"WHERE " TOKEN_VALID,
	1},
    [ST_DATA_GET] = {"data_get",
	"SELECT t.user_id, d.version, d.v" TOKEN_AND_KEY, 0},
    [ST_DATA_VERSION] = {"data_version",
	"SELECT t.user_id, d.version" TOKEN_AND_KEY, 0},
    [ST_DATA_UPDATE] = {"data_update", SET_VALUE, 1},
    /* If-Match: the check and the write are one statement. */
    [ST_DATA_UPDATE_IF] = {"data_update_if", SET_VALUE " AND version = ?", 1},
    [ST_DATA_DELETE] = {"data_delete", "DELETE FROM data" KEY_OF_TOKEN, 1},
    [ST_DATA_DELETE_IF] = {"data_delete_if",
	"DELETE FROM data" KEY_OF_TOKEN " AND version = ?", 1},
    /* Keyset pagination in byte order; the prefix is a LIKE pattern
     * with %, _ and \\ escaped, so it matches literally. */
    [ST_DATA_LIST] = {"data_list",
	"SELECT k, v FROM data WHERE user_id = ? AND k > ? "
	"AND k LIKE ? ORDER BY k LIMIT ?",
	0},
};

/*
 * The unique keys a statement can run into (sql/schema.sql), by the name
 * MariaDB's duplicate-entry error gives them, and what a duplicate on
 * each means.  The name is only in the error's text, which connections
 * ask for in English (open_conn); asking which key it was with another
 * query would race with the row's owner changing it.
 */
static const struct {
	enum stmt st;
	const char *key;
	enum dbr dup;
} uniques[] = {
    {ST_USER_INSERT, "uq_users_username", DBR_DUP_USERNAME},
    {ST_USER_INSERT, "uq_users_email_key", DBR_DUP_EMAIL},
    {ST_DATA_INSERT, "PRIMARY", DBR_DUP_KEY},
};

static MYSQL *conn;
static MYSQL_STMT *stmts[ST__MAX];
static time_t last_used, last_logged;
static double slow_failed; /* when a connect last failed slowly */

#define IDLE_PING      30 /* seconds idle before we ping first */
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

static double
seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Open a connection to host:port (or the configured socket): NULL on
 * failure, logged at most once a second while the database is away.
 */
static MYSQL *
open_conn(const char *host, unsigned int port)
{
	unsigned int ct = cfg.db_connect_timeout, rt = cfg.db_read_timeout,
		     wt = cfg.db_write_timeout;
	time_t now = time(NULL);
	MYSQL *m;

	if ((m = mysql_init(NULL)) == NULL)
		return NULL;
	mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
	mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &rt);
	mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &wt);
	mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	/* English errors: a duplicate's key name is read from the text. */
	mysql_options(m, MYSQL_INIT_COMMAND,
	    "SET SESSION sql_mode = "
	    "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', "
	    "lc_messages = 'en_US'");
	/* On Galera: a statement waits until this node has applied every
	 * write the cluster committed before it (read-your-writes anywhere).
	 * 7 = reads, UPDATE/DELETE and INSERT: writes read the token too. */
	if (cfg.db_galera)
		mysql_options(
		    m, MYSQL_INIT_COMMAND, "SET SESSION wsrep_sync_wait = 7");
	if (cfg.db_option_file != NULL)
		mysql_options(m, MYSQL_READ_DEFAULT_FILE, cfg.db_option_file);
	if (cfg.db_option_group != NULL)
		mysql_options(m, MYSQL_READ_DEFAULT_GROUP, cfg.db_option_group);
	if (mysql_real_connect(m, host, cfg.db_user, cfg.db_password,
		cfg.db_name, port, cfg.db_socket, 0) != NULL)
		return m;
	if (now != last_logged)
		log_err("database connect to %s: %s",
		    host ? host : "the default server", mysql_error(m));
	last_logged = now;
	mysql_close(m);
	return NULL;
}

/*
 * Entry i of db_hosts ("host", "host:port" or "[v6]:port", separated by
 * spaces) into host (cap bytes) and *port; 0 if there is no entry i.
 */
static int
node(int i, char *host, size_t cap, unsigned int *port)
{
	const char *p = cfg.db_hosts, *end, *colon;
	size_t n;

	for (p += strspn(p, " "); *p != '\0' && i > 0; i--) {
		p += strcspn(p, " ");
		p += strspn(p, " ");
	}
	if (*p == '\0')
		return 0;
	n = strcspn(p, " ");
	end = p + n;
	*port = cfg.db_port;
	if (*p == '[' && (colon = memchr(p, ']', n)) != NULL) {
		p++;
		n = (size_t)(colon - p);
		colon = colon[1] == ':' ? colon + 1 : NULL;
	} else if ((colon = memchr(p, ':', n)) != NULL)
		n = (size_t)(colon - p);
	if (colon != NULL && colon + 1 < end)
		*port = (unsigned int)strtoul(colon + 1, NULL, 10);
	snprintf(host, cap, "%.*s", (int)n, p);
	return 1;
}

/*
 * Connect and prepare every statement.  With db_hosts, try the nodes in
 * turn, starting with the one that worked last (so a node that failed is
 * not tried first again and again), and stay on the first that answers.
 */
static int
db_connect(void)
{
	static int last_node;
	char host[256];
	unsigned int port;
	double t0 = seconds();
	int nodes = 0;

	/*
	 * A database that does not answer in time makes the next second's
	 * requests fail fast, instead of each waiting for a connect timeout.
	 * A refused connect takes microseconds: it is simply tried again on
	 * the next request, so a restarted database is used at once.
	 */
	if (t0 - slow_failed < 1)
		return -1;
	if (cfg.db_hosts != NULL)
		while (node(nodes, host, sizeof host, &port))
			nodes++;
	if (nodes == 0)
		conn = open_conn(cfg.db_host, cfg.db_port);
	for (int i = 0; i < nodes && conn == NULL; i++) {
		int k = (last_node + i) % nodes;

		node(k, host, sizeof host, &port);
		if ((conn = open_conn(host, port)) != NULL)
			last_node = k;
	}
	if (conn == NULL)
		goto fail;
	for (int i = 0; i < ST__MAX; i++) {
		if ((stmts[i] = mysql_stmt_init(conn)) == NULL ||
		    mysql_stmt_prepare(stmts[i], statements[i].sql,
			strlen(statements[i].sql)) != 0) {
			log_err("prepare statement %s: %s", statements[i].name,
			    stmts[i] ? mysql_stmt_error(stmts[i])
				     : mysql_error(conn));
			goto fail;
		}
	}
	slow_failed = 0;
	last_used = time(NULL);
	if (nodes > 0)
		log_info("connected to the database at %s", host);
	else
		log_info("connected to the database");
	return 0;
fail:
	db_close();
	if (seconds() - t0 > 0.1)
		slow_failed = seconds();
	return -1;
}

/* Connect at start-up; a failure is only logged, requests retry. */
int
db_init(void)
{
	return db_connect();
}

static int
closed_by_server(void)
{
	struct pollfd p = {
	    .fd = (int)mysql_get_socket(conn), .events = POLLIN | POLLRDHUP};

	return p.fd >= 0 && poll(&p, 1, 0) > 0;
}

/* Make sure there is a live connection before a request's first query. */
static int
ready(void)
{
	time_t now = time(NULL);

	/*
	 * Between requests the server has nothing to say: if the socket is
	 * readable, the server has closed it (a restart, wait_timeout).  Seen
	 * now, without a round trip, the request's first statement runs on a
	 * new connection instead of failing; a write whose connection died
	 * under it cannot be retried safely.  A connection idle for long gets
	 * a ping too, for peers that vanished without closing.
	 */
	if (conn != NULL && closed_by_server()) {
		log_warn("database closed the connection; reconnecting");
		db_close();
		slow_failed = 0;
	} else if (conn != NULL && now - last_used > IDLE_PING &&
	    mysql_ping(conn) != 0) {
		log_warn("database connection lost while idle: %s",
		    mysql_error(conn));
		db_close();
		slow_failed = 0;
	}
	if (conn == NULL && db_connect() == -1)
		return -1;
	last_used = now;
	return 0;
}

enum dbr
db_ping(void)
{
	/* Two tries: the first may only find a connection that died. */
	for (int i = 0; i < 2; i++) {
		if (ready() == -1)
			return DBR_DOWN;
		if (mysql_ping(conn) == 0)
			return DBR_OK;
		log_warn("database ping: %s", mysql_error(conn));
		db_close();
		slow_failed = 0;
	}
	return DBR_DOWN;
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

#define MAXCOL 4

/*
 * Which unique key a duplicate-entry error on statement st names:
 * "Duplicate entry '...' for key 'NAME'" (MySQL 8 writes
 * 'table.NAME').  The entry may hold quotes; the name is the last
 * quoted word and holds none.
 */
static enum dbr
duplicate(enum stmt st, const char *msg)
{
	size_t n = strlen(msg), i;
	const char *name, *dot;

	if (n < 2 || msg[n - 1] != '\'')
		goto unknown;
	for (i = n - 1; i > 0 && msg[i - 1] != '\''; i--)
		;
	if (i == 0)
		goto unknown;
	name = msg + i;
	n = n - 1 - i;
	if ((dot = memchr(name, '.', n)) != NULL) {
		n -= (size_t)(dot + 1 - name);
		name = dot + 1;
	}
	for (i = 0; i < sizeof uniques / sizeof uniques[0]; i++)
		if (uniques[i].st == st && strlen(uniques[i].key) == n &&
		    memcmp(uniques[i].key, name, n) == 0)
			return uniques[i].dup;
unknown:
	log_err("statement %s: %s", statements[st].name, msg);
	return DBR_ERR;
}

/* Map an error on statement st; may close the connection. */
static enum dbr
fail(enum stmt st, MYSQL_STMT *s)
{
	unsigned int e = mysql_stmt_errno(s);

	if (e == ER_DUP_ENTRY)
		return duplicate(st, mysql_stmt_error(s));
	if (lost(e)) {
		log_err("statement %s: database connection lost: %s",
		    statements[st].name, mysql_stmt_error(s));
		db_close();
		slow_failed = 0; /* reconnect at once */
		return DBR_DOWN;
	}
	log_err(
	    "statement %s: %u %s", statements[st].name, e, mysql_stmt_error(s));
	mysql_stmt_free_result(s);
	mysql_stmt_reset(s);
	return DBR_ERR;
}

/*
 * Execute statement st.  Deadlocks are retried (autocommit: the whole
 * statement was rolled back); a read that found the connection dead is
 * retried once on a new one.
 */
static enum dbr
exec(enum stmt st, MYSQL_BIND *par)
{
	MYSQL_STMT *s;
	unsigned int e;
	enum dbr r;

	for (int tries = 1;; tries++) {
		if (ready() == -1)
			return DBR_DOWN;
		s = stmts[st];
		if (mysql_stmt_bind_param(s, par) == 0 &&
		    mysql_stmt_execute(s) == 0)
			return DBR_OK;
		e = mysql_stmt_errno(s);
		if ((e == ER_LOCK_DEADLOCK || e == ER_LOCK_WAIT_TIMEOUT) &&
		    tries < RETRY_DEADLOCK) {
			log_warn("statement %s: %s; retrying",
			    statements[st].name, mysql_stmt_error(s));
			continue;
		}
		r = fail(st, s);
		if (r != DBR_DOWN || statements[st].write || tries > 1)
			return r;
	}
}

static int
bind_cols(MYSQL_STMT *s, MYSQL_BIND *res, struct col *cols, int ncol)
{
	memset(res, 0, sizeof *res * MAXCOL);
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
	return mysql_stmt_bind_result(s, res);
}

/*
 * Fetch the next row into cols: 1, or 0 at the end, or -1 on error
 * (logged; C_ALLOC outputs of this row are then freed).
 */
static int
fetch(enum stmt st, MYSQL_STMT *s, MYSQL_BIND *res, struct col *cols, int ncol)
{
	int rc = mysql_stmt_fetch(s), i;

	if (rc == MYSQL_NO_DATA)
		return 0;
	if (rc == 1)
		return -1;
	for (i = 0; i < ncol; i++) {
		struct col *c = &cols[i];

		if (c->type == C_U64)
			continue;
		if (c->type == C_BUF) {
			if (c->null || c->len >= c->cap) {
				log_err("statement %s: column %d too long",
				    statements[st].name, i);
				goto bad;
			}
			((char *)c->buf)[c->len] = '\0';
			continue;
		}
		/* C_ALLOC: fetch at the real length now. */
		if ((*c->out = malloc(c->len + 1)) == NULL)
			goto bad;
		res[i].buffer = *c->out;
		res[i].buffer_length = c->len + 1;
		if (c->len > 0 &&
		    mysql_stmt_fetch_column(s, &res[i], (unsigned)i, 0) != 0) {
			free(*c->out);
			*c->out = NULL;
			goto bad;
		}
		(*c->out)[c->len] = '\0';
		*c->outlen = c->len;
		res[i].buffer = NULL;
		res[i].buffer_length = 0;
	}
	return 1;
bad:
	while (i-- > 0)
		if (cols[i].type == C_ALLOC) {
			free(*cols[i].out);
			*cols[i].out = NULL;
		}
	return -1;
}

/*
 * Run one statement.  Results, if any, are from the first row; *rows is
 * the number of rows found (SELECT) or changed (other statements).
 */
static enum dbr
run(enum stmt st, MYSQL_BIND *par, struct col *cols, int ncol,
    unsigned long long *rows)
{
	MYSQL_BIND res[MAXCOL];
	MYSQL_STMT *s;
	enum dbr r;
	int rc;

	*rows = 0;
	if ((r = exec(st, par)) != DBR_OK)
		return r;
	s = stmts[st];
	if (ncol == 0) {
		*rows = mysql_stmt_affected_rows(s);
		return DBR_OK;
	}
	if (bind_cols(s, res, cols, ncol) != 0 ||
	    (rc = fetch(st, s, res, cols, ncol)) == -1)
		return fail(st, s);
	*rows = (unsigned long long)rc;
	mysql_stmt_free_result(s);
	return DBR_OK;
}

/* MYSQL_BIND wants a void * even for parameters it only reads. */
static void *
unconst(const void *p)
{
	union {
		const void *c;
		void *m;
	} u = {.c = p};

	return u.m;
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
	b->buffer = unconst(s);
	b->buffer_length = len;
}

static void
bind_blob(MYSQL_BIND *b, const unsigned char *s, size_t len)
{
	memset(b, 0, sizeof *b);
	b->buffer_type = MYSQL_TYPE_BLOB;
	b->buffer = unconst(s);
	b->buffer_length = len;
}

static void
bind_u64(MYSQL_BIND *b, const uint64_t *v)
{
	memset(b, 0, sizeof *b);
	b->buffer_type = MYSQL_TYPE_LONGLONG;
	b->buffer = unconst(v);
	b->is_unsigned = 1;
}

static void
bind_ll(MYSQL_BIND *b, const long long *v)
{
	memset(b, 0, sizeof *b);
	b->buffer_type = MYSQL_TYPE_LONGLONG;
	b->buffer = unconst(v);
}

/*
 * A new user; age 0 and gender NULL are stored as NULL.  A taken name or
 * email is DBR_DUP_USERNAME or DBR_DUP_EMAIL.
 */
enum dbr
db_user_insert(const char *username, const char *email, const char *email_key,
    const char *hash, const char *full_name, int age, const char *gender,
    uint64_t *id)
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

/* The user of a valid token; DBR_NOAUTH if it is not valid. */
enum dbr
db_token_user(const unsigned char *tok, uint64_t *user)
{
	MYSQL_BIND p[1];
	struct col c[1] = {{C_U64, user, 0, NULL, NULL, 0, 0}};
	unsigned long long rows;
	enum dbr r;

	bind_blob(&p[0], tok, HASH_LEN);
	if ((r = run(ST_TOKEN_USER, p, c, 1, &rows)) != DBR_OK)
		return r;
	return rows ? DBR_OK : DBR_NOAUTH;
}

/* Revoke a valid token; DBR_NOAUTH if it is not valid. */
enum dbr
db_token_delete(const unsigned char *tok)
{
	MYSQL_BIND p[1];
	unsigned long long rows;
	enum dbr r;

	bind_blob(&p[0], tok, HASH_LEN);
	if ((r = run(ST_TOKEN_DELETE, p, NULL, 0, &rows)) != DBR_OK)
		return r;
	return rows ? DBR_OK : DBR_NOAUTH;
}

/* Delete up to 1000 expired tokens; *n says how many went. */
enum dbr
db_token_purge(unsigned long long *n)
{
	return run(ST_TOKEN_PURGE, NULL, NULL, 0, n);
}

/*
 * The data statements below take the request's token (its hash), not a
 * user: each checks it as it runs.
 */

/*
 * A new pair: DBR_DUP_KEY if the key exists, DBR_NOAUTH if tok is not
 * valid.
 */
enum dbr
db_data_insert(const unsigned char *tok, const char *k, size_t klen,
    const char *v, size_t vlen, uint64_t version)
{
	MYSQL_BIND p[4];
	unsigned long long rows;
	enum dbr r;

	bind_blob(&p[0], (const unsigned char *)k, klen);
	bind_str(&p[1], v, vlen);
	bind_u64(&p[2], &version);
	bind_blob(&p[3], tok, HASH_LEN);
	if ((r = run(ST_DATA_INSERT, p, NULL, 0, &rows)) != DBR_OK)
		return r;
	return rows ? DBR_OK : DBR_NOAUTH;
}

/*
 * Key k of the token's user (*user): its version and, unless v is NULL,
 * its value (*v malloc'd and NUL-terminated).  DBR_NOAUTH if tok is not
 * valid, DBR_NONE if there is no such key.
 */
enum dbr
db_data_get(const unsigned char *tok, const char *k, size_t klen,
    uint64_t *user, uint64_t *version, char **v, size_t *vlen)
{
	MYSQL_BIND p[2];
	struct col c[3] = {
	    {C_U64, user, 0, NULL, NULL, 0, 0},
	    {C_U64, version, 0, NULL, NULL, 0, 0},
	    {C_ALLOC, NULL, 0, v, vlen, 0, 0},
	};
	unsigned long long rows;
	enum dbr r;

	if (v != NULL)
		*v = NULL;
	bind_blob(&p[0], (const unsigned char *)k, klen);
	bind_blob(&p[1], tok, HASH_LEN);
	r = run(v ? ST_DATA_GET : ST_DATA_VERSION, p, c, v ? 3 : 2, &rows);
	if (r != DBR_OK)
		return r;
	if (rows == 0)
		return DBR_NOAUTH;
	if (c[1].null) {
		if (v != NULL) {
			free(*v);
			*v = NULL;
		}
		return DBR_NONE;
	}
	return DBR_OK;
}

/*
 * Replace a value, giving the row version `version`.  With `if_version`,
 * only when the row still has that version.  DBR_NONE when no row
 * changed: no valid token, no such key or another version (db_data_get
 * tells which).
 */
enum dbr
db_data_update(const unsigned char *tok, const char *k, size_t klen,
    const char *v, size_t vlen, uint64_t version, const uint64_t *if_version)
{
	MYSQL_BIND p[5];
	unsigned long long rows;
	enum dbr r;

	bind_str(&p[0], v, vlen);
	bind_u64(&p[1], &version);
	bind_blob(&p[2], tok, HASH_LEN);
	bind_blob(&p[3], (const unsigned char *)k, klen);
	if (if_version != NULL)
		bind_u64(&p[4], if_version);
	r = run(
	    if_version ? ST_DATA_UPDATE_IF : ST_DATA_UPDATE, p, NULL, 0, &rows);
	if (r != DBR_OK)
		return r;
	return rows ? DBR_OK : DBR_NONE;
}

/* Delete a pair; DBR_NONE as for db_data_update. */
enum dbr
db_data_delete(const unsigned char *tok, const char *k, size_t klen,
    const uint64_t *if_version)
{
	MYSQL_BIND p[3];
	unsigned long long rows;
	enum dbr r;

	bind_blob(&p[0], tok, HASH_LEN);
	bind_blob(&p[1], (const unsigned char *)k, klen);
	if (if_version != NULL)
		bind_u64(&p[2], if_version);
	r = run(
	    if_version ? ST_DATA_DELETE_IF : ST_DATA_DELETE, p, NULL, 0, &rows);
	if (r != DBR_OK)
		return r;
	return rows ? DBR_OK : DBR_NONE;
}

/*
 * Up to `limit` of a user's pairs with keys after `after` (bytes) that
 * start with the LIKE pattern `like`, in byte order.  fn gets each pair
 * (the strings are freed after it returns) and returns non-zero to stop.
 */
enum dbr
db_data_list(uint64_t user, const char *after, size_t alen, const char *like,
    size_t llen, long long limit,
    int (*fn)(void *, const char *, size_t, const char *, size_t), void *arg)
{
	MYSQL_BIND p[4], res[MAXCOL];
	char *k = NULL, *v = NULL;
	size_t klen = 0, vlen = 0;
	struct col c[2] = {
	    {C_ALLOC, NULL, 0, &k, &klen, 0, 0},
	    {C_ALLOC, NULL, 0, &v, &vlen, 0, 0},
	};
	MYSQL_STMT *s;
	enum dbr r;
	int rc, stop = 0;

	bind_u64(&p[0], &user);
	bind_blob(&p[1], (const unsigned char *)after, alen);
	bind_blob(&p[2], (const unsigned char *)like, llen);
	bind_ll(&p[3], &limit);
	if ((r = exec(ST_DATA_LIST, p)) != DBR_OK)
		return r;
	s = stmts[ST_DATA_LIST];
	if (bind_cols(s, res, c, 2) != 0)
		return fail(ST_DATA_LIST, s);
	while ((rc = fetch(ST_DATA_LIST, s, res, c, 2)) == 1) {
		if (!stop)
			stop = fn(arg, k, klen, v, vlen);
		free(k);
		free(v);
		k = v = NULL;
	}
	if (rc == -1)
		return fail(ST_DATA_LIST, s);
	mysql_stmt_free_result(s);
	return DBR_OK;
}
