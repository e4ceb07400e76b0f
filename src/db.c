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
	ST_TOKEN_ACCOUNT,
	ST_SESSION_INSERT,
	ST_REFRESH_INSERT,
	ST_FAILURES_COUNT,
	ST_FAILURE_INSERT,
	ST_FAILURES_CLEAR,
	ST_REFRESH_CONSUME,
	ST_REFRESH_SESSION,
	ST_SESSION_REFRESHED,
	ST_SESSION_DELETE,
	ST_SESSION_DELETE_OWN,
	ST_SESSIONS_DELETE_OTHERS,
	ST_TOKENS_DELETE_OTHERS,
	ST_SESSIONS_LIST,
	ST_PROFILE,
	ST_PROFILE_UPDATE,
	ST_PASSWORD_SET,
	ST_USER_DELETE,
	ST_SESSION_PURGE,
	ST_REFRESH_PURGE,
	ST_FAILURES_PURGE,
	ST_LIMITS,
	ST_DATA_LOCK,
	ST_DATA_SET,
	ST_DATA_PURGE,
	ST_DATA_EXPIRE,
	ST_FEED,
	ST_CHANGES_LIST,
	ST_CHANGES_PURGE,
	ST_BATCH_BEGIN,
	ST_USAGE,
	/* kvapi-admin's (the block at the end of this file). */
	ST_ADMIN_USERS,
	ST_ADMIN_USER,
	ST_ADMIN_DISABLE,
	ST_ADMIN_ENABLE,
	ST_ADMIN_SESSIONS_END,
	ST_ADMIN_TOKENS_END,
	ST_ADMIN_STATS,
	ST__MAX
};

/*
 * A valid token, as a condition on `tokens t`.  Every statement on data
 * checks the request's token itself, as part of the read or the write:
 * a data request is one round trip, and what it does happens only if the
 * token is valid at that instant.
 */
#define TOKEN_VALID "t.token_hash = ? AND t.expires_at > UTC_TIMESTAMP(6)"
/* A UTC DATETIME as RFC 3339 text, to the second: 2026-12-01T09:00:00Z. */
#define RFC3339(col) "DATE_FORMAT(" col ", '%Y-%m-%dT%H:%i:%sZ')"
/*
 * A pair that has not expired (migration 0003), as a condition on data
 * (`a` is "" or "d."): an expired pair is gone for every statement at
 * once, whether or not the purge has deleted it yet.
 */
#define LIVE(a)                                                                \
	"(" a "expires_at IS NULL OR " a "expires_at > UTC_TIMESTAMP(6))"
/* The token's user, with that user's row of key k if there is one. */
#define TOKEN_AND_KEY                                                          \
	" FROM tokens t LEFT JOIN data d ON d.user_id = t.user_id "            \
	"AND d.k = ? AND " LIVE("d.") " WHERE " TOKEN_VALID
/*
 * Key k of the token's user, for UPDATE and DELETE: a subquery, not a
 * multi-table UPDATE/DELETE, whose prepared form crashed MariaDB 10.11.19
 * under the test suite's load (signal 11 in multi_update).  The plan is
 * the same: the token by its primary key, then the row by its own.
 */
#define USER_OF_TOKEN "(SELECT t.user_id FROM tokens t WHERE " TOKEN_VALID ")"
#define KEY_OF_TOKEN                                                           \
	" WHERE user_id = " USER_OF_TOKEN " AND k = ? AND " LIVE("")
/* A PUT replaces the expiry too: a NULL ttl makes it NULL (no expiry). */
#define SET_VALUE                                                              \
	"UPDATE data SET v = ?, version = ?, updated_at = UTC_TIMESTAMP(6), "  \
	"expires_at = UTC_TIMESTAMP(6) + INTERVAL ? SECOND" KEY_OF_TOKEN
/* The expired pairs of user u, not yet purged. */
#define EXPIRED_OF_U                                                           \
	" FROM data d WHERE d.expires_at <= UTC_TIMESTAMP(6) "                 \
	"AND d.user_id = u.id"
/* A POST onto an expired pair makes it anew: column col becomes new. */
#define ANEW(col, new)                                                         \
	"data." col                                                            \
	" = IF(data.expires_at <= UTC_TIMESTAMP(6), " new ", data." col ")"
/*
 * The profile of user u and its usage (profile_cols), as GET
 * /api/users/me and kvapi-admin show them: what the triggers counted,
 * less the expired pairs not yet purged (few: the purge keeps up;
 * ix_data_expires finds them).
 */
#define PROFILE_OF_U                                                           \
	"u.id, u.username, u.email, u.full_name, u.age, u.gender, " RFC3339(   \
	    "u.created_at") ", COALESCE(g.key_count, 0) - (SELECT "            \
			    "COUNT(*)" EXPIRED_OF_U                            \
			    "), COALESCE(g.byte_count, 0) - "                  \
			    "(SELECT COALESCE(SUM(LENGTH(d.k) + "              \
			    "LENGTH(d.v)), "                                   \
			    "0)" EXPIRED_OF_U ")"
#define USAGE_JOIN "LEFT JOIN user_usage g ON g.user_id = u.id"

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
	"SELECT id, password_hash, disabled_at IS NOT NULL FROM users "
	"WHERE username = ?",
	0},
    [ST_TOKEN_INSERT] = {"token_insert",
	"INSERT INTO tokens (token_hash, user_id, session_id, "
	"created_at, expires_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6), "
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
    /*
     * A live pair is left as it is (no row changed: KEY_EXISTS); an
     * expired one is made anew, expires_at last, since each assignment
     * sees the ones before it.  The triggers count both in the usage.
     */
    [ST_DATA_INSERT] = {"data_insert",
	"INSERT INTO data (user_id, k, v, version, expires_at) "
	"SELECT t.user_id, ?, ?, ?, UTC_TIMESTAMP(6) + INTERVAL ? SECOND "
	"FROM tokens t WHERE " TOKEN_VALID
	" ON DUPLICATE KEY UPDATE " ANEW("v", "VALUE(v)") ", " ANEW(
	    "version", "VALUE(version)") ", " ANEW("created_at",
	    "UTC_TIMESTAMP(6)") ", " ANEW("updated_at",
	    "UTC_TIMESTAMP(6)") ", " ANEW("expires_at", "VALUE(expires_at)"),
	1},
    [ST_DATA_GET] = {"data_get",
	"SELECT t.user_id, d.version, d.v, " RFC3339("d.expires_at")
	    TOKEN_AND_KEY,
	0},
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
	"SELECT k, v, " RFC3339(
	    "expires_at") " FROM data WHERE user_id = ? "
			  "AND k > ? AND k LIKE ? AND " LIVE(
			      "") " ORDER BY k LIMIT ?",
	0},
    /* The sessions' statements (migration 0002): a login opens a
     * session, a refresh rotates its refresh token, ending one deletes
     * it and, by the foreign keys, its tokens. */
    [ST_TOKEN_ACCOUNT] = {"token_account",
	"SELECT t.user_id, t.session_id, u.password_hash FROM tokens t "
	"JOIN users u ON u.id = t.user_id WHERE " TOKEN_VALID,
	0},
    /* Only while the password is the one the login checked: a change
     * that committed meanwhile makes this insert nothing. */
    [ST_SESSION_INSERT] = {"session_insert",
	"INSERT INTO sessions (id, user_id, created_at, expires_at, "
	"user_agent) SELECT ?, id, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) + "
	"INTERVAL ? SECOND, ? FROM users WHERE id = ? AND password_hash = ? "
	"AND disabled_at IS NULL",
	1},
    [ST_REFRESH_INSERT] = {"refresh_insert",
	"INSERT INTO refresh_tokens (token_hash, session_id, created_at, "
	"expires_at) VALUES (?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) + "
	"INTERVAL ? SECOND)",
	1},
    /* The failures in the window, and the seconds until the oldest
     * leaves it. */
    [ST_FAILURES_COUNT] = {"failures_count",
	"SELECT COUNT(*), GREATEST(1, COALESCE(CEIL(TIMESTAMPDIFF("
	"MICROSECOND, UTC_TIMESTAMP(6), MIN(failed_at) + INTERVAL ? SECOND) "
	"/ 1000000), 1)) FROM login_failures WHERE name_hash = ? AND "
	"failed_at > UTC_TIMESTAMP(6) - INTERVAL ? SECOND",
	0},
    [ST_FAILURE_INSERT] = {"failure_insert",
	"INSERT INTO login_failures (name_hash, failed_at) "
	"VALUES (?, UTC_TIMESTAMP(6))",
	1},
    [ST_FAILURES_CLEAR] = {"failures_clear",
	"DELETE FROM login_failures WHERE name_hash = ?", 1},
    /* The check and the consumption are one statement: of two refreshes
     * with one token, one changes the row. */
    [ST_REFRESH_CONSUME] = {"refresh_consume",
	"UPDATE refresh_tokens SET consumed_at = UTC_TIMESTAMP(6) "
	"WHERE token_hash = ? AND consumed_at IS NULL "
	"AND expires_at > UTC_TIMESTAMP(6)",
	1},
    [ST_REFRESH_SESSION] = {"refresh_session",
	"SELECT r.session_id, s.user_id, u.disabled_at IS NOT NULL, "
	"r.consumed_at IS NOT NULL FROM refresh_tokens r "
	"JOIN sessions s ON s.id = r.session_id "
	"JOIN users u ON u.id = s.user_id WHERE r.token_hash = ? FOR UPDATE",
	0},
    [ST_SESSION_REFRESHED] = {"session_refreshed",
	"UPDATE sessions SET refreshed_at = UTC_TIMESTAMP(6), expires_at = "
	"UTC_TIMESTAMP(6) + INTERVAL ? SECOND WHERE id = ?",
	1},
    [ST_SESSION_DELETE] = {"session_delete",
	"DELETE FROM sessions WHERE id = ?", 1},
    [ST_SESSION_DELETE_OWN] = {"session_delete_own",
	"DELETE FROM sessions WHERE id = ? AND user_id = ? "
	"AND expires_at > UTC_TIMESTAMP(6)",
	1},
    [ST_SESSIONS_DELETE_OTHERS] = {"sessions_delete_others",
	"DELETE FROM sessions WHERE user_id = ? AND id <> ?", 1},
    /* Tokens of no session (a 0.1.0 worker's) but the given one. */
    [ST_TOKENS_DELETE_OTHERS] = {"tokens_delete_others",
	"DELETE FROM tokens WHERE user_id = ? AND session_id IS NULL "
	"AND token_hash <> ?",
	1},
    [ST_SESSIONS_LIST] = {"sessions_list",
	"SELECT id, " RFC3339("created_at") ", " RFC3339(
	    "refreshed_at") ", " RFC3339("expires_at") ", user_agent FROM "
						       "sessions WHERE user_id "
						       "= ? "
						       "AND expires_at > "
						       "UTC_TIMESTAMP(6) ORDER "
						       "BY created_at DESC, id "
						       "LIMIT 1000",
	0},
    /* The profile and its usage, as GET /api/users/me answers them. */
    [ST_PROFILE] = {"profile",
	"SELECT " PROFILE_OF_U " FROM tokens t JOIN users u ON u.id = "
	"t.user_id " USAGE_JOIN " WHERE " TOKEN_VALID,
	0},
    /* Each column changes only when its flag says so. */
    [ST_PROFILE_UPDATE] = {"profile_update",
	"UPDATE users SET email = IF(?, ?, email), "
	"email_key = IF(?, ?, email_key), full_name = IF(?, ?, full_name), "
	"age = IF(?, ?, age), gender = IF(?, ?, gender) "
	"WHERE id = (SELECT t.user_id FROM tokens t WHERE " TOKEN_VALID ")",
	1},
    [ST_PASSWORD_SET] = {"password_set",
	"UPDATE users SET password_hash = ? WHERE id = ? "
	"AND password_hash = ?",
	1},
    /* Sessions, tokens and data go with the user (foreign keys). */
    [ST_USER_DELETE] = {"user_delete", "DELETE FROM users WHERE id = ?", 1},
    /* A session outlives its refresh token by an access token's life. */
    [ST_SESSION_PURGE] = {"session_purge",
	"DELETE FROM sessions WHERE expires_at < UTC_TIMESTAMP(6) - "
	"INTERVAL ? SECOND LIMIT 1000",
	1},
    [ST_REFRESH_PURGE] = {"refresh_purge",
	"DELETE FROM refresh_tokens WHERE expires_at < UTC_TIMESTAMP(6) "
	"LIMIT 1000",
	1},
    [ST_FAILURES_PURGE] = {"failures_purge",
	"DELETE FROM login_failures WHERE failed_at < UTC_TIMESTAMP(6) - "
	"INTERVAL ? SECOND LIMIT 1000",
	1},
    /* Data lifecycle (migration 0003).  The quotas, for the triggers
     * that keep the usage: run on every new connection. */
    [ST_LIMITS] = {"limits",
	"SET @kvapi_quota_keys = ?, @kvapi_quota_bytes = ?", 0},
    /* A merge patch reads the value and writes the result in one
     * transaction, the row locked in between. */
    [ST_DATA_LOCK] = {"data_lock",
	"SELECT d.user_id, d.version, d.v FROM data d WHERE d.user_id "
	"= " USER_OF_TOKEN " AND d.k = ? AND " LIVE("d.") " FOR UPDATE",
	0},
    /* The expiry is kept. */
    [ST_DATA_SET] = {"data_set",
	"UPDATE data SET v = ?, version = ?, updated_at = UTC_TIMESTAMP(6) "
	"WHERE user_id = ? AND k = ?",
	1},
    [ST_DATA_PURGE] = {"data_purge",
	"DELETE FROM data WHERE expires_at <= UTC_TIMESTAMP(6) LIMIT 1000", 1},
    /* The expired pairs of the token's user, when a write met the quota:
     * an expired pair frees its space at once, not at the next purge. */
    [ST_DATA_EXPIRE] = {"data_expire",
	"DELETE FROM data WHERE expires_at <= UTC_TIMESTAMP(6) AND user_id "
	"= " USER_OF_TOKEN,
	1},
    /* The change feed: the triggers on data write it (migration 0003). */
    [ST_FEED] = {"feed",
	"SELECT t.user_id, COALESCE(g.rev, 0), COALESCE(g.purged_rev, 0) "
	"FROM tokens t LEFT JOIN user_usage g ON g.user_id = t.user_id "
	"WHERE " TOKEN_VALID,
	0},
    [ST_CHANGES_LIST] = {"changes_list",
	"SELECT rev, k, version FROM changes WHERE user_id = ? AND rev > ? "
	"ORDER BY rev LIMIT ?",
	0},
    [ST_CHANGES_PURGE] = {"changes_purge",
	"DELETE FROM changes WHERE changed_at < UTC_TIMESTAMP(6) - "
	"INTERVAL ? SECOND LIMIT 1000",
	1},
    /* A batch: the token's user and its usage, locked to the commit (the
     * batch's net effect is held against the quota at the end). */
    [ST_BATCH_BEGIN] = {"batch_begin",
	"SELECT t.user_id, COALESCE(g.key_count, 0), COALESCE(g.byte_count, "
	"0) FROM tokens t LEFT JOIN user_usage g ON g.user_id = t.user_id "
	"WHERE " TOKEN_VALID " FOR UPDATE",
	0},
    [ST_USAGE] = {"usage",
	"SELECT key_count, byte_count FROM user_usage WHERE user_id = ?", 0},
    /* kvapi-admin: users after a name, with a prefix, in name order
     * (the column's collation: case does not count). */
    [ST_ADMIN_USERS] = {"admin_users",
	"SELECT id, username, email, " RFC3339("created_at") ", " RFC3339(
	    "disabled_at") " FROM users WHERE username > ? AND "
			   "LEFT(username, ?) = ? ORDER BY username LIMIT 1000",
	0},
    /* The profile's columns (profile_cols), then disabled_at. */
    [ST_ADMIN_USER] = {"admin_user",
	"SELECT " PROFILE_OF_U
	", " RFC3339("u.disabled_at") " FROM users u " USAGE_JOIN
				      " WHERE u.username = ?",
	0},
    [ST_ADMIN_DISABLE] = {"admin_disable",
	"UPDATE users SET disabled_at = UTC_TIMESTAMP(6) WHERE id = ? "
	"AND disabled_at IS NULL",
	1},
    [ST_ADMIN_ENABLE] = {"admin_enable",
	"UPDATE users SET disabled_at = NULL WHERE id = ? "
	"AND disabled_at IS NOT NULL",
	1},
    /* Every session of a user, and with them (foreign keys) their tokens;
     * then the tokens of no session (a 0.1.0 worker's). */
    [ST_ADMIN_SESSIONS_END] = {"admin_sessions_end",
	"DELETE FROM sessions WHERE user_id = ?", 1},
    [ST_ADMIN_TOKENS_END] = {"admin_tokens_end",
	"DELETE FROM tokens WHERE user_id = ?", 1},
    [ST_ADMIN_STATS] = {"admin_stats",
	"SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM users "
	"WHERE disabled_at IS NOT NULL), (SELECT COUNT(*) FROM data), "
	"(SELECT COUNT(*) FROM sessions WHERE expires_at > UTC_TIMESTAMP(6)), "
	"(SELECT COUNT(*) FROM tokens WHERE expires_at > UTC_TIMESTAMP(6))",
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
	const char *key;
	enum stmt st;
	enum dbr dup;
} uniques[] = {
    {"uq_users_username", ST_USER_INSERT, DBR_DUP_USERNAME},
    {"uq_users_email_key", ST_USER_INSERT, DBR_DUP_EMAIL},
    {"uq_users_email_key", ST_PROFILE_UPDATE, DBR_DUP_EMAIL},
};

static MYSQL *conn;
static int in_tx;	/* statements run inside tx() */
static int tx_conflict; /* one of them lost a deadlock or certification */
static MYSQL_STMT *stmts[ST__MAX];
static time_t last_used, last_logged;
static double slow_failed; /* when a connect last failed slowly */

#define IDLE_PING    30 /* seconds idle before we ping first */
#define QUOTA_SIGNAL "kvapi: QUOTA_EXCEEDED"
/*
 * Tries of a statement or transaction that lost a deadlock or, on Galera,
 * a certification: every write of a user changes the user's usage row,
 * so one user's writes on two nodes conflict; each retry waits a little
 * longer (backoff), with jitter so that the two do not meet again.
 */
#define RETRY_DEADLOCK 8

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
	metric_inc(M_DB_ERR_CONNECT);
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
 * The quotas, for the usage triggers of this connection's writes; off
 * (NULL) while a batch runs, whose net effect is checked instead.
 */
static int
set_limits(int on)
{
	MYSQL_STMT *s = stmts[ST_LIMITS];
	MYSQL_BIND p[2];

	memset(p, 0, sizeof p);
	p[0].buffer_type = p[1].buffer_type =
	    on ? MYSQL_TYPE_LONGLONG : MYSQL_TYPE_NULL;
	p[0].buffer = &cfg.quota_keys;
	p[1].buffer = &cfg.quota_bytes;
	if (mysql_stmt_bind_param(s, p) == 0 && mysql_stmt_execute(s) == 0)
		return 0;
	log_err("statement %s: %s", statements[ST_LIMITS].name,
	    mysql_stmt_error(s));
	return -1;
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
	static unsigned long connects;
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
	if (set_limits(1) == -1)
		goto fail;
	slow_failed = 0;
	last_used = time(NULL);
	if (connects++ > 0)
		metric_inc(M_DB_RECONNECT);
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
 * Result columns: a fixed buffer (ints, short strings; C_OPT: one that
 * may be NULL, then ""), or, with buffer NULL, a string fetched at its
 * real length into malloc'd memory.  .null says a column was NULL.
 */
/* Members in the order an initializer reads; the arrays are small. */
struct col { // NOLINT(clang-analyzer-optin.performance.Padding)
	enum { C_U64, C_BUF, C_OPT, C_ALLOC } type;
	void *buf;
	size_t cap;
	char **out;
	size_t *outlen;
	unsigned long len;
	my_bool null;
};

#define MAXCOL 10

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
	/* The usage triggers' refusal (sql/migrations/0003_lifecycle.sql). */
	if (e == ER_SIGNAL_EXCEPTION &&
	    strcmp(mysql_stmt_error(s), QUOTA_SIGNAL) == 0) {
		mysql_stmt_reset(s);
		return DBR_QUOTA;
	}
	metric_inc(lost(e) ? M_DB_ERR_LOST : M_DB_ERR_QUERY);
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

static int
conflict(unsigned int e)
{
	return e == ER_LOCK_DEADLOCK || e == ER_LOCK_WAIT_TIMEOUT;
}

/* Wait before try tries + 1: up to tries milliseconds, at random. */
static void
backoff(int tries)
{
	struct timespec ts = {0, (long)(auth_rand64() % 1000000) * tries};

	nanosleep(&ts, NULL);
}

/*
 * Execute statement st.  Deadlocks are retried (autocommit: the whole
 * statement was rolled back); a read that found the connection dead is
 * retried once on a new one.  Inside a transaction (tx) neither: the
 * transaction is what is tried again.
 */
static enum dbr
exec(enum stmt st, MYSQL_BIND *par)
{
	MYSQL_STMT *s;
	unsigned int e;
	enum dbr r;

	for (int tries = 1;; tries++) {
		if (!in_tx && ready() == -1)
			return DBR_DOWN;
		s = stmts[st];
		if (mysql_stmt_bind_param(s, par) == 0 &&
		    mysql_stmt_execute(s) == 0)
			return DBR_OK;
		e = mysql_stmt_errno(s);
		if (in_tx && conflict(e)) {
			/* The server rolled the transaction back: tx() runs it
			 * again, whatever its caller made of this. */
			tx_conflict = 1;
			mysql_stmt_reset(s);
			return DBR_CONFLICT;
		}
		if (conflict(e) && tries < RETRY_DEADLOCK) {
			log_warn("statement %s: %s; retrying",
			    statements[st].name, mysql_stmt_error(s));
			backoff(tries);
			continue;
		}
		if (conflict(e)) {
			log_err("statement %s: %s; gave up after %d tries",
			    statements[st].name, mysql_stmt_error(s), tries);
			mysql_stmt_reset(s);
			return DBR_CONFLICT;
		}
		r = fail(st, s);
		if (r != DBR_DOWN || statements[st].write || tries > 1 || in_tx)
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
		if (c->type == C_OPT && c->null) {
			((char *)c->buf)[0] = '\0';
			continue;
		}
		if (c->type == C_BUF || c->type == C_OPT) {
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

/*
 * Run fn(arg) inside one transaction: committed if it returns DBR_OK,
 * rolled back otherwise.  A deadlock or, on Galera, a certification
 * conflict (in a statement or at COMMIT) rolls back the whole
 * transaction, which is then run again, up to RETRY_DEADLOCK times.  A
 * lost connection is not retried: the outcome of a COMMIT is unknown.
 */
static enum dbr
tx(const char *name, enum dbr (*fn)(void *), void *arg)
{
	enum dbr r;
	unsigned int e;

	for (int tries = 1;; tries++) {
		if (ready() == -1)
			return DBR_DOWN;
		if (mysql_query(conn, "START TRANSACTION") != 0) {
			e = mysql_errno(conn);
			goto failed;
		}
		in_tx = 1;
		tx_conflict = 0;
		r = fn(arg);
		in_tx = 0;
		if (tx_conflict && r != DBR_DOWN)
			r = DBR_CONFLICT;
		if (conn == NULL) /* lost: fail() closed it */
			return r;
		if (r != DBR_OK) {
			if (mysql_rollback(conn) != 0) {
				e = mysql_errno(conn);
				goto failed;
			}
			if (r == DBR_CONFLICT && tries < RETRY_DEADLOCK) {
				log_warn("transaction %s: a conflict; retrying",
				    name);
				backoff(tries);
				continue;
			}
			return r;
		}
		if (mysql_commit(conn) == 0)
			return DBR_OK;
		e = mysql_errno(conn);
		if (conflict(e) && tries < RETRY_DEADLOCK) {
			log_warn("transaction %s: %s; retrying", name,
			    mysql_error(conn));
			backoff(tries);
			continue;
		}
	failed:
		in_tx = 0;
		log_err("transaction %s: %u %s", name, e, mysql_error(conn));
		metric_inc(lost(e) ? M_DB_ERR_LOST : M_DB_ERR_QUERY);
		if (lost(e)) {
			db_close();
			slow_failed = 0;
			return DBR_DOWN;
		}
		return conflict(e) ? DBR_CONFLICT : DBR_ERR;
	}
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
db_user_lookup(
    const char *username, uint64_t *id, char *hash, size_t cap, int *disabled)
{
	MYSQL_BIND p[1];
	uint64_t off = 0;
	struct col c[3] = {
	    {C_U64, id, 0, NULL, NULL, 0, 0},
	    {C_BUF, hash, cap, NULL, NULL, 0, 0},
	    {C_U64, &off, 0, NULL, NULL, 0, 0},
	};
	unsigned long long rows;
	enum dbr r;

	bind_str(&p[0], username, strlen(username));
	if ((r = run(ST_USER_LOOKUP, p, c, 3, &rows)) != DBR_OK)
		return r;
	*disabled = off != 0;
	return rows ? DBR_OK : DBR_NONE;
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

/*
 * End the whole session of a valid token (its access tokens and its
 * refresh token: the foreign keys delete them); a token of no session
 * (a 0.1.0 worker's) alone.  DBR_NOAUTH if the token is not valid.
 */
enum dbr
db_token_end(const unsigned char *tok, uint64_t *user)
{
	MYSQL_BIND p[1];
	struct account a;
	unsigned long long rows;
	enum dbr r;

	r = db_account(tok, &a);
	explicit_bzero(a.hash, sizeof a.hash);
	if (r != DBR_OK)
		return r;
	*user = a.user;
	if (a.has_session)
		bind_blob(&p[0], a.session, SESSION_RAW);
	else
		bind_blob(&p[0], tok, HASH_LEN);
	if ((r = run(a.has_session ? ST_SESSION_DELETE : ST_TOKEN_DELETE, p,
		 NULL, 0, &rows)) != DBR_OK)
		return r;
	return rows ? DBR_OK : DBR_NOAUTH;
}

/*
 * Delete up to 1000 each of expired tokens, sessions past their refresh
 * token and an access token's lifetime, expired refresh tokens, failed
 * logins out of the window, expired pairs and changes older than
 * changes_retention; *n says how many rows went.
 */
enum dbr
db_token_purge(unsigned long long *n)
{
	static const enum stmt purges[] = {ST_TOKEN_PURGE, ST_SESSION_PURGE,
	    ST_REFRESH_PURGE, ST_FAILURES_PURGE, ST_DATA_PURGE,
	    ST_CHANGES_PURGE};
	MYSQL_BIND p[1];
	unsigned long long k;
	enum dbr r;

	*n = 0;
	for (size_t i = 0; i < sizeof purges / sizeof purges[0]; i++) {
		bind_ll(&p[0],
		    purges[i] == ST_FAILURES_PURGE ? &cfg.login_failure_window
			: purges[i] == ST_CHANGES_PURGE ? &cfg.changes_retention
							: &cfg.token_lifetime);
		if ((r = run(purges[i], p, NULL, 0, &k)) != DBR_OK)
			return r;
		*n += k;
	}
	return DBR_OK;
}

/*
 * The data statements below take the request's token (its hash), not a
 * user: each checks it as it runs.
 */

/* A pair's TTL as a parameter: NULL (no expiry) when it has none. */
static void
bind_ttl(MYSQL_BIND *b, const long long *ttl)
{
	if (*ttl > 0)
		bind_ll(b, ttl);
	else
		bind_str(b, NULL, 0);
}

/*
 * A new pair, or an expired one made anew: DBR_NONE if a live pair has
 * the key or tok is not valid (db_data_get tells which), DBR_QUOTA if
 * the user's quota has no room for it.
 */
enum dbr
db_data_insert(const unsigned char *tok, const struct pair *w)
{
	MYSQL_BIND p[5];
	unsigned long long rows;
	enum dbr r;

	bind_blob(&p[0], (const unsigned char *)w->k, w->klen);
	bind_str(&p[1], w->v, w->vlen);
	bind_u64(&p[2], &w->version);
	bind_ttl(&p[3], &w->ttl);
	bind_blob(&p[4], tok, HASH_LEN);
	if ((r = run(ST_DATA_INSERT, p, NULL, 0, &rows)) != DBR_OK)
		return r;
	return rows ? DBR_OK : DBR_NONE;
}

/*
 * Live key k of the token's user: into *out its user, its version, its
 * expiry if it has one and, with want_value, its value (out->v malloc'd
 * and NUL-terminated).  DBR_NOAUTH if tok is not valid, DBR_NONE if
 * there is no such key (out->user is set).
 */
enum dbr
db_data_get(const unsigned char *tok, const char *k, size_t klen,
    int want_value, struct stored *out)
{
	MYSQL_BIND p[2];
	struct col c[4] = {
	    {C_U64, &out->user, 0, NULL, NULL, 0, 0},
	    {C_U64, &out->version, 0, NULL, NULL, 0, 0},
	    {C_ALLOC, NULL, 0, &out->v, &out->vlen, 0, 0},
	    {C_OPT, out->expires_at, sizeof out->expires_at, NULL, NULL, 0, 0},
	};
	unsigned long long rows;
	enum dbr r;

	out->user = 0;
	out->v = NULL;
	out->vlen = 0;
	out->expires_at[0] = '\0';
	bind_blob(&p[0], (const unsigned char *)k, klen);
	bind_blob(&p[1], tok, HASH_LEN);
	r = run(want_value ? ST_DATA_GET : ST_DATA_VERSION, p, c,
	    want_value ? 4 : 2, &rows);
	if (r != DBR_OK)
		return r;
	if (rows == 0)
		return DBR_NOAUTH;
	if (c[1].null) {
		free(out->v);
		out->v = NULL;
		return DBR_NONE;
	}
	return DBR_OK;
}

/*
 * Replace a live pair's value and expiry.  With `if_version`, only when
 * the row still has that version.  DBR_NONE when no row changed: no
 * valid token, no such key or another version (db_data_get tells which);
 * DBR_QUOTA when the value grows past the user's quota.
 */
enum dbr
db_data_update(
    const unsigned char *tok, const struct pair *w, const uint64_t *if_version)
{
	MYSQL_BIND p[6];
	unsigned long long rows;
	enum dbr r;

	bind_str(&p[0], w->v, w->vlen);
	bind_u64(&p[1], &w->version);
	bind_ttl(&p[2], &w->ttl);
	bind_blob(&p[3], tok, HASH_LEN);
	bind_blob(&p[4], (const unsigned char *)w->k, w->klen);
	if (if_version != NULL)
		bind_u64(&p[5], if_version);
	r = run(
	    if_version ? ST_DATA_UPDATE_IF : ST_DATA_UPDATE, p, NULL, 0, &rows);
	if (r != DBR_OK)
		return r;
	return rows ? DBR_OK : DBR_NONE;
}

/* Delete a live pair; DBR_NONE as for db_data_update. */
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

struct patch_tx {
	const unsigned char *tok;
	const char *k;
	size_t klen;
	uint64_t version;
	int (*fn)(void *, const struct stored *, const char **, size_t *);
	void *arg;
};

static enum dbr
patch_tx(void *arg)
{
	const struct patch_tx *x = arg;
	MYSQL_BIND p[4];
	struct stored cur;
	unsigned long long rows;
	const char *v;
	size_t vlen;
	enum dbr r;
	int refused;

	if ((r = db_data_lock(x->tok, x->k, x->klen, 1, &cur)) != DBR_OK)
		return r;
	refused = x->fn(x->arg, &cur, &v, &vlen);
	free(cur.v);
	if (refused)
		return DBR_REFUSED;
	bind_str(&p[0], v, vlen);
	bind_u64(&p[1], &x->version);
	bind_u64(&p[2], &cur.user);
	bind_blob(&p[3], (const unsigned char *)x->k, x->klen);
	return run(ST_DATA_SET, p, NULL, 0, &rows);
}

/*
 * Rewrite the value of live key k of the token's user, keeping its
 * expiry, in one transaction with the row locked: fn gets the pair as it
 * is (value, version) and returns 0 with the new value's text in *v
 * (*vlen bytes, fn's to free, valid until it is called again or the
 * caller is done), or non-zero to change nothing (DBR_REFUSED).  The new
 * version is `version`.  DBR_NONE when the token is not valid or there is
 * no such key (db_data_get tells which), DBR_QUOTA when the new value
 * does not fit the user's quota.  fn may run more than once: a
 * transaction that lost a deadlock or a certification is run again.
 */
enum dbr
db_data_patch(const unsigned char *tok, const char *k, size_t klen,
    uint64_t version,
    int (*fn)(void *, const struct stored *, const char **, size_t *),
    void *arg)
{
	struct patch_tx x = {tok, k, klen, version, fn, arg};

	/* In a batch, the batch's transaction. */
	return in_tx ? patch_tx(&x) : tx("patch", patch_tx, &x);
}

/*
 * Live key k of the token's user, locked to the end of the transaction
 * (a patch's read, a batch's check): its user and version into out and,
 * with want_value, its value (out->v, malloc'd).  DBR_NONE if there is
 * no such key, or the token is not valid.
 */
enum dbr
db_data_lock(const unsigned char *tok, const char *k, size_t klen,
    int want_value, struct stored *out)
{
	MYSQL_BIND p[2];
	struct col c[3] = {
	    {C_U64, &out->user, 0, NULL, NULL, 0, 0},
	    {C_U64, &out->version, 0, NULL, NULL, 0, 0},
	    {C_ALLOC, NULL, 0, &out->v, &out->vlen, 0, 0},
	};
	unsigned long long rows;
	enum dbr r;

	memset(out, 0, sizeof *out);
	bind_blob(&p[0], tok, HASH_LEN);
	bind_blob(&p[1], (const unsigned char *)k, klen);
	r = run(ST_DATA_LOCK, p, c, 3, &rows);
	if (r != DBR_OK || rows == 0 || !want_value) {
		free(out->v);
		out->v = NULL;
	}
	if (r != DBR_OK)
		return r;
	return rows ? DBR_OK : DBR_NONE;
}

/* Delete the expired pairs of the token's user; *n how many. */
enum dbr
db_data_expire(const unsigned char *tok, unsigned long long *n)
{
	MYSQL_BIND p[1];

	bind_blob(&p[0], tok, HASH_LEN);
	return run(ST_DATA_EXPIRE, p, NULL, 0, n);
}

/*
 * Up to `limit` of a user's live pairs with keys after `after` (bytes)
 * that start with the LIKE pattern `like`, in byte order.  fn gets each
 * pair and its expiry (NULL: none; the strings are freed after it
 * returns) and returns non-zero to stop.
 */
enum dbr
db_data_list(uint64_t user, const char *after, size_t alen, const char *like,
    size_t llen, long long limit,
    int (*fn)(void *, const char *, size_t, const char *, size_t, const char *),
    void *arg)
{
	MYSQL_BIND p[4], res[MAXCOL];
	char *k = NULL, *v = NULL, exp[TIME_LEN + 1];
	size_t klen = 0, vlen = 0;
	struct col c[3] = {
	    {C_ALLOC, NULL, 0, &k, &klen, 0, 0},
	    {C_ALLOC, NULL, 0, &v, &vlen, 0, 0},
	    {C_OPT, exp, sizeof exp, NULL, NULL, 0, 0},
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
	if (bind_cols(s, res, c, 3) != 0)
		return fail(ST_DATA_LIST, s);
	while ((rc = fetch(ST_DATA_LIST, s, res, c, 3)) == 1) {
		if (!stop)
			stop =
			    fn(arg, k, klen, v, vlen, c[2].null ? NULL : exp);
		free(k);
		free(v);
		k = v = NULL;
	}
	if (rc == -1)
		return fail(ST_DATA_LIST, s);
	mysql_stmt_free_result(s);
	return DBR_OK;
}

/*
 * Accounts and sessions (migration 0002).  The statements above checked
 * a data request's token as they ran; these first find the token's
 * account (db_account) where the request needs more than its user.
 */

/* Failed logins of a username within the window, and the seconds until
 * the oldest of them leaves it. */
enum dbr
db_login_failures(
    const unsigned char *name, unsigned long long *count, long long *retry)
{
	MYSQL_BIND p[3];
	uint64_t n = 0, secs = 1;
	struct col c[2] = {
	    {C_U64, &n, 0, NULL, NULL, 0, 0},
	    {C_U64, &secs, 0, NULL, NULL, 0, 0},
	};
	unsigned long long rows;
	enum dbr r;

	bind_ll(&p[0], &cfg.login_failure_window);
	bind_blob(&p[1], name, HASH_LEN);
	bind_ll(&p[2], &cfg.login_failure_window);
	if ((r = run(ST_FAILURES_COUNT, p, c, 2, &rows)) != DBR_OK)
		return r;
	*count = n;
	*retry = (long long)secs;
	return DBR_OK;
}

enum dbr
db_login_failed(const unsigned char *name)
{
	MYSQL_BIND p[1];
	unsigned long long rows;

	bind_blob(&p[0], name, HASH_LEN);
	return run(ST_FAILURE_INSERT, p, NULL, 0, &rows);
}

/* An access token and a refresh token of a session (both inserts of a
 * login and of a refresh). */
static enum dbr
session_tokens(uint64_t user, const struct grant *g)
{
	MYSQL_BIND p[4];
	unsigned long long rows;
	enum dbr r;

	bind_blob(&p[0], g->refresh_hash, HASH_LEN);
	bind_blob(&p[1], g->session_raw, SESSION_RAW);
	bind_ll(&p[2], &cfg.refresh_lifetime);
	if ((r = run(ST_REFRESH_INSERT, p, NULL, 0, &rows)) != DBR_OK)
		return r;
	bind_blob(&p[0], g->access_hash, HASH_LEN);
	bind_u64(&p[1], &user);
	bind_blob(&p[2], g->session_raw, SESSION_RAW);
	bind_ll(&p[3], &cfg.token_lifetime);
	return run(ST_TOKEN_INSERT, p, NULL, 0, &rows);
}

struct login {
	uint64_t user;
	const char *hash, *agent;
	const unsigned char *name;
	const struct grant *g;
};

static enum dbr
login_tx(void *arg)
{
	const struct login *l = arg;
	MYSQL_BIND p[5];
	unsigned long long rows;
	enum dbr r;

	bind_blob(&p[0], l->g->session_raw, SESSION_RAW);
	bind_ll(&p[1], &cfg.refresh_lifetime);
	bind_str(&p[2], l->agent, l->agent ? strlen(l->agent) : 0);
	bind_u64(&p[3], &l->user);
	bind_str(&p[4], l->hash, strlen(l->hash));
	if ((r = run(ST_SESSION_INSERT, p, NULL, 0, &rows)) != DBR_OK)
		return r;
	if (rows == 0)
		return DBR_NONE;
	if ((r = session_tokens(l->user, l->g)) != DBR_OK)
		return r;
	bind_blob(&p[0], l->name, HASH_LEN);
	return run(ST_FAILURES_CLEAR, p, NULL, 0, &rows);
}

/*
 * Open the session of a login whose password matched hash: the session
 * (user agent ua, or NULL), its refresh token and its first access token,
 * and clear the username's failed logins, in one transaction.  DBR_NONE
 * when the password changed (or the account was disabled) since it was
 * read: nothing is opened.
 */
enum dbr
db_login(uint64_t user, const char *hash, const unsigned char *name,
    const char *ua, const struct grant *g)
{
	struct login l = {user, hash, ua, name, g};

	return tx("login", login_tx, &l);
}

struct refresh {
	const unsigned char *presented;
	struct grant *g;
	int reused, disabled;
};

static enum dbr
refresh_tx(void *arg)
{
	struct refresh *f = arg;
	MYSQL_BIND p[2];
	char sid[SESSION_RAW + 1];
	uint64_t user = 0, disabled = 0, consumed = 0;
	struct col c[4] = {
	    {C_BUF, sid, sizeof sid, NULL, NULL, 0, 0},
	    {C_U64, &user, 0, NULL, NULL, 0, 0},
	    {C_U64, &disabled, 0, NULL, NULL, 0, 0},
	    {C_U64, &consumed, 0, NULL, NULL, 0, 0},
	};
	unsigned long long changed, rows;
	enum dbr r;

	f->reused = f->disabled = 0;
	bind_blob(&p[0], f->presented, HASH_LEN);
	if ((r = run(ST_REFRESH_CONSUME, p, NULL, 0, &changed)) != DBR_OK)
		return r;
	/* Locking read: what the consumption left, whoever did it. */
	if ((r = run(ST_REFRESH_SESSION, p, c, 4, &rows)) != DBR_OK)
		return r;
	if (rows == 0 || c[0].len != SESSION_RAW)
		return DBR_NONE; /* unknown: nothing to do */
	memcpy(f->g->session_raw, sid, SESSION_RAW);
	if (changed == 0) {
		if (!consumed)
			return DBR_NONE; /* expired */
		/* A replay of a rotated token: end its session (committed,
		 * the request is still refused). */
		f->reused = 1;
		bind_blob(&p[0], f->g->session_raw, SESSION_RAW);
		return run(ST_SESSION_DELETE, p, NULL, 0, &rows);
	}
	if (disabled) {
		f->disabled = 1;
		return DBR_DISABLED;
	}
	bind_ll(&p[0], &cfg.refresh_lifetime);
	bind_blob(&p[1], f->g->session_raw, SESSION_RAW);
	if ((r = run(ST_SESSION_REFRESHED, p, NULL, 0, &rows)) != DBR_OK)
		return r;
	return session_tokens(user, f->g);
}

/*
 * Rotate the refresh token whose hash is presented: consume it, and give
 * its session the new tokens of g (g->session_raw is set to the
 * session's id), in one transaction.  DBR_NONE for a token unknown,
 * expired or consumed; a consumed one also ends its session (*reused).
 * DBR_DISABLED when the account is disabled.
 */
enum dbr
db_refresh(const unsigned char *presented, struct grant *g, int *reused)
{
	struct refresh f = {presented, g, 0, 0};
	enum dbr r = tx("refresh", refresh_tx, &f);

	*reused = r == DBR_OK && f.reused;
	if (*reused)
		return DBR_NONE;
	return r;
}

/* The account of a valid token; DBR_NOAUTH if it is not. */
enum dbr
db_account(const unsigned char *tok, struct account *a)
{
	MYSQL_BIND p[1];
	char sid[SESSION_RAW + 1];
	struct col c[3] = {
	    {C_U64, &a->user, 0, NULL, NULL, 0, 0},
	    {C_OPT, sid, sizeof sid, NULL, NULL, 0, 0},
	    {C_BUF, a->hash, sizeof a->hash, NULL, NULL, 0, 0},
	};
	unsigned long long rows;
	enum dbr r;

	bind_blob(&p[0], tok, HASH_LEN);
	if ((r = run(ST_TOKEN_ACCOUNT, p, c, 3, &rows)) != DBR_OK)
		return r;
	if (rows == 0)
		return DBR_NOAUTH;
	a->has_session = !c[1].null && c[1].len == SESSION_RAW;
	if (a->has_session)
		memcpy(a->session, sid, SESSION_RAW);
	return DBR_OK;
}

/*
 * The columns of a profile, in the order ST_PROFILE and ST_ADMIN_USER
 * read them, into c[PROFILE_COLS]; profile_read completes u after a
 * fetch.
 */
#define PROFILE_COLS 9
static void
profile_cols(struct col *c, struct profile *u)
{
	const struct col cols[PROFILE_COLS] = {
	    {C_U64, &u->id, 0, NULL, NULL, 0, 0},
	    {C_BUF, u->username, sizeof u->username, NULL, NULL, 0, 0},
	    {C_BUF, u->email, sizeof u->email, NULL, NULL, 0, 0},
	    {C_BUF, u->full_name, sizeof u->full_name, NULL, NULL, 0, 0},
	    {C_U64, &u->age, 0, NULL, NULL, 0, 0},
	    {C_OPT, u->gender, sizeof u->gender, NULL, NULL, 0, 0},
	    {C_BUF, u->created, sizeof u->created, NULL, NULL, 0, 0},
	    {C_U64, &u->keys, 0, NULL, NULL, 0, 0},
	    {C_U64, &u->bytes, 0, NULL, NULL, 0, 0},
	};

	memcpy(c, cols, sizeof cols);
}

static void
profile_read(const struct col *c, struct profile *u)
{
	if (c[4].null)
		u->age = 0;
	u->has_gender = !c[5].null;
}

/* The profile of a valid token's user; DBR_NOAUTH if it is not valid. */
enum dbr
db_profile(const unsigned char *tok, struct profile *u)
{
	MYSQL_BIND p[1];
	struct col c[PROFILE_COLS];
	unsigned long long rows;
	enum dbr r;

	profile_cols(c, u);
	bind_blob(&p[0], tok, HASH_LEN);
	if ((r = run(ST_PROFILE, p, c, PROFILE_COLS, &rows)) != DBR_OK)
		return r;
	if (rows == 0)
		return DBR_NOAUTH;
	profile_read(c, u);
	return DBR_OK;
}

/* Bind a flag (column is set) and its value, a string or NULL. */
static void
bind_change(MYSQL_BIND *p, const long long *flag, const char *v, int set_null)
{
	bind_ll(&p[0], flag);
	bind_str(&p[1], set_null ? NULL : v, v ? strlen(v) : 0);
}

/*
 * Change the profile of a valid token's user: each column of c that is
 * not NULL.  A taken email: DBR_DUP_EMAIL.  The token is not checked
 * here (no row changed may mean no change): db_profile after it does.
 */
enum dbr
db_profile_update(const unsigned char *tok, const struct profile_change *c)
{
	static const long long yes = 1, no = 0;
	MYSQL_BIND p[11];
	long long age = c->age ? *c->age : 0;
	unsigned long long rows;

	bind_change(&p[0], c->email ? &yes : &no, c->email, 0);
	bind_change(&p[2], c->email_key ? &yes : &no, c->email_key, 0);
	bind_change(&p[4], c->full_name ? &yes : &no, c->full_name, 0);
	bind_ll(&p[6], c->age ? &yes : &no);
	if (age > 0)
		bind_ll(&p[7], &age);
	else
		bind_str(&p[7], NULL, 0);
	bind_change(&p[8], c->gender ? &yes : &no, c->gender,
	    c->gender != NULL && *c->gender == '\0');
	bind_blob(&p[10], tok, HASH_LEN);
	return run(ST_PROFILE_UPDATE, p, NULL, 0, &rows);
}

/* a's session id, or one no session has (a token of no session). */
static const unsigned char *
session_of(const struct account *a)
{
	static const unsigned char none[SESSION_RAW];

	return a->has_session ? a->session : none;
}

struct pwchange {
	const struct account *a;
	const unsigned char *tok;
	const char *hash;
};

static enum dbr
password_tx(void *arg)
{
	const struct pwchange *w = arg;
	MYSQL_BIND p[3];
	unsigned long long rows;
	enum dbr r;

	bind_str(&p[0], w->hash, strlen(w->hash));
	bind_u64(&p[1], &w->a->user);
	bind_str(&p[2], w->a->hash, strlen(w->a->hash));
	if ((r = run(ST_PASSWORD_SET, p, NULL, 0, &rows)) != DBR_OK)
		return r;
	if (rows == 0)
		return DBR_NONE;
	bind_u64(&p[0], &w->a->user);
	bind_blob(&p[1], session_of(w->a), SESSION_RAW);
	if ((r = run(ST_SESSIONS_DELETE_OTHERS, p, NULL, 0, &rows)) != DBR_OK)
		return r;
	bind_blob(&p[1], w->tok, HASH_LEN);
	return run(ST_TOKENS_DELETE_OTHERS, p, NULL, 0, &rows);
}

/*
 * Set the password of account a (whose hash it still has) to hash, and
 * end every other session of the user, in one transaction.  DBR_NONE
 * when the password changed since a was read.
 */
enum dbr
db_password_change(
    const struct account *a, const unsigned char *tok, const char *hash)
{
	struct pwchange w = {a, tok, hash};

	return tx("password", password_tx, &w);
}

/* Delete a user: its sessions, tokens and data go with it (foreign keys,
 * one statement, so one transaction). */
enum dbr
db_user_delete(uint64_t user)
{
	MYSQL_BIND p[1];
	unsigned long long rows;
	enum dbr r;

	bind_u64(&p[0], &user);
	if ((r = run(ST_USER_DELETE, p, NULL, 0, &rows)) != DBR_OK)
		return r;
	return rows ? DBR_OK : DBR_NONE;
}

/* A user's live sessions, newest first: fn gets each (and returns
 * non-zero to stop). */
enum dbr
db_sessions(
    uint64_t user, int (*fn)(void *, const struct session_row *), void *arg)
{
	MYSQL_BIND p[1], res[MAXCOL];
	struct session_row row;
	char id[SESSION_RAW + 1];
	struct col c[5] = {
	    {C_BUF, id, sizeof id, NULL, NULL, 0, 0},
	    {C_BUF, row.created, sizeof row.created, NULL, NULL, 0, 0},
	    {C_OPT, row.refreshed, sizeof row.refreshed, NULL, NULL, 0, 0},
	    {C_BUF, row.expires, sizeof row.expires, NULL, NULL, 0, 0},
	    {C_OPT, row.agent, sizeof row.agent, NULL, NULL, 0, 0},
	};
	MYSQL_STMT *s;
	enum dbr r;
	int rc, stop = 0;

	bind_u64(&p[0], &user);
	if ((r = exec(ST_SESSIONS_LIST, p)) != DBR_OK)
		return r;
	s = stmts[ST_SESSIONS_LIST];
	if (bind_cols(s, res, c, 5) != 0)
		return fail(ST_SESSIONS_LIST, s);
	while ((rc = fetch(ST_SESSIONS_LIST, s, res, c, 5)) == 1) {
		if (stop || c[0].len != SESSION_RAW)
			continue;
		memcpy(row.id, id, SESSION_RAW);
		row.refreshed_null = c[2].null != 0;
		row.agent_null = c[4].null != 0;
		stop = fn(arg, &row);
	}
	if (rc == -1)
		return fail(ST_SESSIONS_LIST, s);
	mysql_stmt_free_result(s);
	return DBR_OK;
}

/* End a live session of user; DBR_NONE if there is no such. */
enum dbr
db_session_end(uint64_t user, const unsigned char *sid)
{
	MYSQL_BIND p[2];
	unsigned long long rows;
	enum dbr r;

	bind_blob(&p[0], sid, SESSION_RAW);
	bind_u64(&p[1], &user);
	if ((r = run(ST_SESSION_DELETE_OWN, p, NULL, 0, &rows)) != DBR_OK)
		return r;
	return rows ? DBR_OK : DBR_NONE;
}

/* End every session of a's user but a's own; *n how many. */
enum dbr
db_sessions_end_others(const struct account *a, unsigned long long *n)
{
	MYSQL_BIND p[2];

	bind_u64(&p[0], &a->user);
	bind_blob(&p[1], session_of(a), SESSION_RAW);
	return run(ST_SESSIONS_DELETE_OTHERS, p, NULL, 0, n);
}

/*
 * The change feed (migration 0003): the triggers on data write it; these
 * read it.
 */

/* The feed's state of a valid token's user; DBR_NOAUTH if it is not. */
enum dbr
db_feed(const unsigned char *tok, struct feed *f)
{
	MYSQL_BIND p[1];
	struct col c[3] = {
	    {C_U64, &f->user, 0, NULL, NULL, 0, 0},
	    {C_U64, &f->rev, 0, NULL, NULL, 0, 0},
	    {C_U64, &f->purged_rev, 0, NULL, NULL, 0, 0},
	};
	unsigned long long rows;
	enum dbr r;

	bind_blob(&p[0], tok, HASH_LEN);
	if ((r = run(ST_FEED, p, c, 3, &rows)) != DBR_OK)
		return r;
	return rows ? DBR_OK : DBR_NOAUTH;
}

/*
 * Up to `limit` changes of user after revision `since`, oldest first: fn
 * gets each (its revision, key and new version, NULL for a delete) and
 * returns non-zero to stop.
 */
enum dbr
db_changes(uint64_t user, uint64_t since, long long limit,
    int (*fn)(void *, uint64_t, const char *, size_t, const uint64_t *),
    void *arg)
{
	MYSQL_BIND p[3], res[MAXCOL];
	uint64_t rev = 0, version = 0;
	char *k = NULL;
	size_t klen = 0;
	struct col c[3] = {
	    {C_U64, &rev, 0, NULL, NULL, 0, 0},
	    {C_ALLOC, NULL, 0, &k, &klen, 0, 0},
	    {C_U64, &version, 0, NULL, NULL, 0, 0},
	};
	MYSQL_STMT *s;
	enum dbr r;
	int rc, stop = 0;

	bind_u64(&p[0], &user);
	bind_u64(&p[1], &since);
	bind_ll(&p[2], &limit);
	if ((r = exec(ST_CHANGES_LIST, p)) != DBR_OK)
		return r;
	s = stmts[ST_CHANGES_LIST];
	if (bind_cols(s, res, c, 3) != 0)
		return fail(ST_CHANGES_LIST, s);
	while ((rc = fetch(ST_CHANGES_LIST, s, res, c, 3)) == 1) {
		if (!stop)
			stop =
			    fn(arg, rev, k, klen, c[2].null ? NULL : &version);
		free(k);
		k = NULL;
	}
	if (rc == -1)
		return fail(ST_CHANGES_LIST, s);
	mysql_stmt_free_result(s);
	return DBR_OK;
}

/*
 * kvapi-admin (src/admin.c): an operator's view of the accounts, by
 * username.  Not on the request path: no token, and a user is found by
 * its name.
 */

/*
 * Up to 1000 users whose names start with prefix (plen bytes, any case)
 * and sort after `after`, in name order: fn gets each (and returns
 * non-zero to stop).  *last is the last name seen (for the next page),
 * *n how many.
 */
enum dbr
db_admin_users(const char *after, const char *prefix, size_t plen,
    int (*fn)(void *, const struct admin_user *), void *arg, char *last,
    size_t cap, unsigned long long *n)
{
	MYSQL_BIND p[3], res[MAXCOL];
	struct admin_user u;
	long long len = (long long)plen;
	struct col c[5] = {
	    {C_U64, &u.p.id, 0, NULL, NULL, 0, 0},
	    {C_BUF, u.p.username, sizeof u.p.username, NULL, NULL, 0, 0},
	    {C_BUF, u.p.email, sizeof u.p.email, NULL, NULL, 0, 0},
	    {C_BUF, u.p.created, sizeof u.p.created, NULL, NULL, 0, 0},
	    {C_OPT, u.disabled, sizeof u.disabled, NULL, NULL, 0, 0},
	};
	MYSQL_STMT *s;
	enum dbr r;
	int rc, stop = 0;

	*n = 0;
	bind_str(&p[0], after, strlen(after));
	bind_ll(&p[1], &len);
	bind_str(&p[2], prefix, plen);
	if ((r = exec(ST_ADMIN_USERS, p)) != DBR_OK)
		return r;
	s = stmts[ST_ADMIN_USERS];
	if (bind_cols(s, res, c, 5) != 0)
		return fail(ST_ADMIN_USERS, s);
	while ((rc = fetch(ST_ADMIN_USERS, s, res, c, 5)) == 1) {
		if (stop)
			continue;
		u.disabled_null = c[4].null != 0;
		snprintf(last, cap, "%s", u.p.username);
		(*n)++;
		stop = fn(arg, &u);
	}
	if (rc == -1)
		return fail(ST_ADMIN_USERS, s);
	mysql_stmt_free_result(s);
	return DBR_OK;
}

/* User `name` (any case) with its usage; DBR_NONE if there is none. */
enum dbr
db_admin_user(const char *name, struct admin_user *u)
{
	MYSQL_BIND p[1];
	struct col c[PROFILE_COLS + 1];
	unsigned long long rows;
	enum dbr r;

	profile_cols(c, &u->p);
	c[PROFILE_COLS] = (struct col){
	    C_OPT, u->disabled, sizeof u->disabled, NULL, NULL, 0, 0};
	bind_str(&p[0], name, strlen(name));
	if ((r = run(ST_ADMIN_USER, p, c, PROFILE_COLS + 1, &rows)) != DBR_OK)
		return r;
	if (rows == 0)
		return DBR_NONE;
	profile_read(c, &u->p);
	u->disabled_null = c[PROFILE_COLS].null != 0;
	return DBR_OK;
}

struct admin_end {
	uint64_t user;
	int disable; /* 1 disable, -1 enable, 0 neither */
	unsigned long long changed, sessions;
};

static enum dbr
admin_end_tx(void *arg)
{
	struct admin_end *e = arg;
	MYSQL_BIND p[1];
	unsigned long long tokens;
	enum dbr r;

	bind_u64(&p[0], &e->user);
	if (e->disable != 0 &&
	    (r = run(e->disable > 0 ? ST_ADMIN_DISABLE : ST_ADMIN_ENABLE, p,
		 NULL, 0, &e->changed)) != DBR_OK)
		return r;
	if (e->disable < 0)
		return DBR_OK;
	if ((r = run(ST_ADMIN_SESSIONS_END, p, NULL, 0, &e->sessions)) !=
	    DBR_OK)
		return r;
	return run(ST_ADMIN_TOKENS_END, p, NULL, 0, &tokens);
}

/*
 * Disable (how > 0) or enable (how < 0) user, or neither (0); disabling
 * and neither end every session of the user and every token, in the same
 * transaction.  *changed: whether disabled_at changed; *sessions: how
 * many sessions ended.
 */
enum dbr
db_admin_account(uint64_t user, int how, unsigned long long *changed,
    unsigned long long *sessions)
{
	struct admin_end e = {user, how, 0, 0};
	enum dbr r = tx("admin_account", admin_end_tx, &e);

	*changed = e.changed;
	*sessions = e.sessions;
	return r;
}

/* Rows of users, disabled users, keys, live sessions, live tokens. */
enum dbr
db_admin_stats(struct admin_stats *st)
{
	struct col c[5] = {
	    {C_U64, &st->users, 0, NULL, NULL, 0, 0},
	    {C_U64, &st->disabled, 0, NULL, NULL, 0, 0},
	    {C_U64, &st->keys, 0, NULL, NULL, 0, 0},
	    {C_U64, &st->sessions, 0, NULL, NULL, 0, 0},
	    {C_U64, &st->tokens, 0, NULL, NULL, 0, 0},
	};
	unsigned long long rows;

	return run(ST_ADMIN_STATS, NULL, c, 5, &rows);
}

/*
 * A batch (POST /api/batch): its operations run in one transaction, with
 * the per-statement quota off; at the end the user's usage may not have
 * grown past a quota (expired pairs are deleted once to make room).
 */
struct batch_tx {
	const unsigned char *tok;
	enum dbr (*fn)(void *);
	void *arg;
};

/* The usage of user now: 1 if it grew from (keys, bytes) past a quota. */
static int
over_quota(uint64_t user, uint64_t keys, uint64_t bytes, enum dbr *r)
{
	MYSQL_BIND p[1];
	uint64_t k = 0, b = 0;
	struct col c[2] = {
	    {C_U64, &k, 0, NULL, NULL, 0, 0},
	    {C_U64, &b, 0, NULL, NULL, 0, 0},
	};
	unsigned long long rows;

	bind_u64(&p[0], &user);
	if ((*r = run(ST_USAGE, p, c, 2, &rows)) != DBR_OK)
		return 0;
	return (k > keys && k > (uint64_t)cfg.quota_keys) ||
	    (b > bytes && b > (uint64_t)cfg.quota_bytes);
}

static enum dbr
batch_tx(void *arg)
{
	const struct batch_tx *x = arg;
	MYSQL_BIND p[1];
	uint64_t user = 0, keys = 0, bytes = 0;
	struct col c[3] = {
	    {C_U64, &user, 0, NULL, NULL, 0, 0},
	    {C_U64, &keys, 0, NULL, NULL, 0, 0},
	    {C_U64, &bytes, 0, NULL, NULL, 0, 0},
	};
	unsigned long long rows, n;
	enum dbr r;

	bind_blob(&p[0], x->tok, HASH_LEN);
	if ((r = run(ST_BATCH_BEGIN, p, c, 3, &rows)) != DBR_OK)
		return r;
	if (rows == 0)
		return DBR_NOAUTH;
	if (set_limits(0) == -1)
		return DBR_ERR;
	if ((r = x->fn(x->arg)) != DBR_OK)
		return r;
	if (!over_quota(user, keys, bytes, &r))
		return r;
	if ((r = db_data_expire(x->tok, &n)) != DBR_OK)
		return r;
	if (n > 0 && !over_quota(user, keys, bytes, &r))
		return r;
	return r == DBR_OK ? DBR_QUOTA : r;
}

/*
 * Run fn(arg), a batch's operations, in one transaction for the token's
 * user: committed if it returns DBR_OK.  DBR_NOAUTH if the token is not
 * valid, DBR_QUOTA if the batch grew the usage past a quota.  fn may run
 * more than once (a conflict runs the transaction again).
 */
enum dbr
db_batch(const unsigned char *tok, enum dbr (*fn)(void *), void *arg)
{
	struct batch_tx x = {tok, fn, arg};
	enum dbr r = tx("batch", batch_tx, &x);

	/* The quotas again: a connection without them would not be held to
	 * them, so one that cannot have them back is dropped. */
	if (conn != NULL && set_limits(1) == -1)
		db_close();
	return r;
}
