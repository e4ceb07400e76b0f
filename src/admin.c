/*
 * kvapi-admin: an operator's commands on the accounts of a kvapi
 * database, through the worker's own config (config.c) and statements
 * (db.c): list and show users, disable, enable or delete one, end its
 * sessions, purge what has expired, count what there is.  It connects as
 * db_user, which may only read and write rows, like the workers.  Exit
 * codes: 0 done, 1 no such user (or nothing it may do), 2 usage, 3 the
 * database failed; the reason is on stderr.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "extern.h"

enum { EX_DONE = 0, EX_REFUSED = 1, EX_USAGE = 2, EX_DB = 3 };

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: kvapi-admin [-c config] command\n"
	    "\n"
	    "  user list [--prefix P]  users, one a line: id, username, "
	    "email,\n"
	    "                          created_at, disabled_at (or -), by "
	    "tabs\n"
	    "  user show NAME          profile, usage and live sessions, as "
	    "JSON\n"
	    "  user disable NAME       refuse its logins and end every "
	    "session\n"
	    "  user enable NAME        allow its logins again\n"
	    "  user delete NAME        delete it with its sessions and data\n"
	    "  sessions revoke NAME    end every session of the user\n"
	    "  purge                   delete expired tokens, sessions, "
	    "refresh\n"
	    "                          tokens, failed logins, keys and "
	    "old changes\n"
	    "  stats                   counts of users, keys, sessions, "
	    "tokens\n"
	    "  --help | --version\n"
	    "\n"
	    "Exit status: 0 done, 1 no such user, 2 usage, 3 database "
	    "error.\n"
	    "The config is -c FILE, else $KVAPI_CONFIG, else %s.\n",
	    SYSCONFDIR "/kvapi/kvapi.conf");
}

/* A database result as an exit code, saying why on stderr. */
static int
db_fail(enum dbr r, const char *what)
{
	fprintf(stderr, "kvapi-admin: %s: %s\n", what,
	    r == DBR_DOWN ? "cannot reach the database"
			  : "the database failed (see the line above)");
	return EX_DB;
}

/* Print a cJSON document and free it. */
static int
print_json(cJSON *doc)
{
	char *text = doc ? cJSON_Print(doc) : NULL;

	cJSON_Delete(doc);
	if (text == NULL) {
		fprintf(stderr, "kvapi-admin: out of memory\n");
		return EX_DB;
	}
	puts(text);
	cJSON_free(text);
	return EX_DONE;
}

static int
list_row(void *arg, const struct admin_user *u)
{
	(void)arg;
	printf("%llu\t%s\t%s\t%s\t%s\n", (unsigned long long)u->p.id,
	    u->p.username, u->p.email, u->p.created,
	    u->disabled_null ? "-" : u->disabled);
	return 0;
}

/* user list [--prefix P]: page by page, in name order. */
static int
cmd_list(int argc, char **argv)
{
	const char *prefix = "";
	char after[65] = "";
	unsigned long long n;
	enum dbr r;

	if (argc == 2 && strcmp(argv[0], "--prefix") == 0)
		prefix = argv[1];
	else if (argc != 0)
		return -1;
	do {
		r = db_admin_users(after, prefix, strlen(prefix), list_row,
		    NULL, after, sizeof after, &n);
		if (r != DBR_OK)
			return db_fail(r, "user list");
	} while (n == 1000);
	return EX_DONE;
}

/* The user of name, or an exit code other than EX_DONE in *ex. */
static int
find_user(const char *name, struct admin_user *u, int *ex)
{
	enum dbr r = db_admin_user(name, u);

	*ex = EX_DONE;
	if (r == DBR_NONE) {
		fprintf(stderr, "kvapi-admin: no user '%s'\n", name);
		*ex = EX_REFUSED;
	} else if (r != DBR_OK)
		*ex = db_fail(r, "user lookup");
	return *ex == EX_DONE;
}

static int
text_or_null(cJSON *o, const char *name, const char *t, int null)
{
	return (null ? cJSON_AddNullToObject(o, name)
		     : cJSON_AddStringToObject(o, name, t)) != NULL;
}

struct show {
	cJSON *items;
	int oom;
};

static int
session_row(void *arg, const struct session_row *s)
{
	struct show *sh = arg;

	if (session_add(sh->items, s, NULL) == -1)
		sh->oom = 1;
	return sh->oom;
}

/* user show NAME: the profile as GET /api/users/me shows it, with
 * disabled_at, and the live sessions. */
static int
cmd_show(const char *name)
{
	struct admin_user u;
	struct show sh = {NULL, 0};
	cJSON *doc, *usage;
	char id[24];
	enum dbr r;
	int ex;

	if (!find_user(name, &u, &ex))
		return ex;
	if ((doc = cJSON_CreateObject()) == NULL)
		return print_json(NULL);
	snprintf(id, sizeof id, "%llu", (unsigned long long)u.p.id);
	cJSON_AddStringToObject(doc, "user_id", id);
	cJSON_AddStringToObject(doc, "username", u.p.username);
	cJSON_AddStringToObject(doc, "email", u.p.email);
	cJSON_AddStringToObject(doc, "full_name", u.p.full_name);
	if (u.p.age > 0)
		cJSON_AddNumberToObject(doc, "age", (double)u.p.age);
	else
		cJSON_AddNullToObject(doc, "age");
	text_or_null(doc, "gender", u.p.gender, !u.p.has_gender);
	cJSON_AddStringToObject(doc, "created_at", u.p.created);
	text_or_null(doc, "disabled_at", u.disabled, u.disabled_null);
	if ((usage = cJSON_AddObjectToObject(doc, "usage")) == NULL ||
	    (sh.items = cJSON_AddArrayToObject(doc, "sessions")) == NULL) {
		cJSON_Delete(doc);
		return print_json(NULL);
	}
	cJSON_AddNumberToObject(usage, "keys", (double)u.p.keys);
	cJSON_AddNumberToObject(usage, "bytes", (double)u.p.bytes);
	if ((r = db_sessions(u.p.id, session_row, &sh)) != DBR_OK) {
		cJSON_Delete(doc);
		return db_fail(r, "user show");
	}
	if (sh.oom) {
		cJSON_Delete(doc);
		doc = NULL;
	}
	return print_json(doc);
}

/*
 * user disable / enable NAME, sessions revoke NAME (how: 1, -1, 0).
 * Disabling an account that is disabled (or enabling one that is not)
 * changes nothing and says so; it is not an error.
 */
static int
cmd_account(const char *name, int how)
{
	/* By how + 1. */
	static const char *const done[] = {
	    "enabled", "ended the sessions of", "disabled"};
	struct admin_user u;
	unsigned long long changed, sessions;
	enum dbr r;
	int ex;

	if (!find_user(name, &u, &ex))
		return ex;
	if ((r = db_admin_account(u.p.id, how, &changed, &sessions)) != DBR_OK)
		return db_fail(r, "user change");
	if (how != 0 && changed == 0)
		printf("%s (user %llu) was already %s\n", u.p.username,
		    (unsigned long long)u.p.id,
		    how > 0 ? "disabled" : "enabled");
	else
		printf("%s %s (user %llu)\n", done[how + 1], u.p.username,
		    (unsigned long long)u.p.id);
	if (how >= 0)
		printf("ended %llu session%s\n", sessions,
		    sessions == 1 ? "" : "s");
	return EX_DONE;
}

static int
cmd_delete(const char *name)
{
	struct admin_user u;
	enum dbr r;
	int ex;

	if (!find_user(name, &u, &ex))
		return ex;
	if ((r = db_user_delete(u.p.id)) == DBR_NONE) {
		fprintf(stderr, "kvapi-admin: no user '%s'\n", name);
		return EX_REFUSED;
	}
	if (r != DBR_OK)
		return db_fail(r, "user delete");
	printf("deleted %s (user %llu), its sessions and %llu keys\n",
	    u.p.username, (unsigned long long)u.p.id,
	    (unsigned long long)u.p.keys);
	return EX_DONE;
}

/* purge: the workers' purge (db_token_purge), until nothing is left. */
static int
cmd_purge(void)
{
	unsigned long long n, total = 0;
	enum dbr r;

	do {
		if ((r = db_token_purge(&n)) != DBR_OK)
			return db_fail(r, "purge");
		total += n;
	} while (n > 0);
	printf("purged %llu rows\n", total);
	return EX_DONE;
}

static int
cmd_stats(void)
{
	struct admin_stats st;
	cJSON *doc;
	enum dbr r;

	if ((r = db_admin_stats(&st)) != DBR_OK)
		return db_fail(r, "stats");
	if ((doc = cJSON_CreateObject()) == NULL)
		return print_json(NULL);
	cJSON_AddNumberToObject(doc, "users", (double)st.users);
	cJSON_AddNumberToObject(doc, "users_disabled", (double)st.disabled);
	cJSON_AddNumberToObject(doc, "keys", (double)st.keys);
	cJSON_AddNumberToObject(doc, "sessions", (double)st.sessions);
	cJSON_AddNumberToObject(doc, "tokens", (double)st.tokens);
	return print_json(doc);
}

/* The command of argv (after the options): an exit code, -1 for usage. */
static int
command(int argc, char **argv)
{
	const char *a = argc > 0 ? argv[0] : "", *b = argc > 1 ? argv[1] : "";

	if (strcmp(a, "user") == 0 && strcmp(b, "list") == 0)
		return cmd_list(argc - 2, argv + 2);
	if (strcmp(a, "purge") == 0 && argc == 1)
		return cmd_purge();
	if (strcmp(a, "stats") == 0 && argc == 1)
		return cmd_stats();
	if (argc != 3)
		return -1;
	if (strcmp(a, "sessions") == 0 && strcmp(b, "revoke") == 0)
		return cmd_account(argv[2], 0);
	if (strcmp(a, "user") != 0)
		return -1;
	if (strcmp(b, "show") == 0)
		return cmd_show(argv[2]);
	if (strcmp(b, "disable") == 0)
		return cmd_account(argv[2], 1);
	if (strcmp(b, "enable") == 0)
		return cmd_account(argv[2], -1);
	if (strcmp(b, "delete") == 0)
		return cmd_delete(argv[2]);
	return -1;
}

int
main(int argc, char *argv[])
{
	const char *conf = getenv("KVAPI_CONFIG");
	int i, ex;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return EX_DONE;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("kvapi-admin %s\n", KVAPI_VERSION);
			return EX_DONE;
		}
		if (strcmp(argv[i], "-c") != 0 || i + 1 == argc) {
			usage(stderr);
			return EX_USAGE;
		}
		conf = argv[++i];
	}
	if (i >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	if (conf == NULL && access(SYSCONFDIR "/kvapi/kvapi.conf", F_OK) == 0)
		conf = SYSCONFDIR "/kvapi/kvapi.conf";
	if (config_load(conf) == -1)
		return EX_USAGE;
	/* The worker's "connected" lines say nothing to an operator. */
	if (cfg.log_level > LOG_WARN_)
		cfg.log_level = LOG_WARN_;
	/* db.c connects on the first statement (and says why it cannot). */
	ex = command(argc - i, argv + i);
	if (ex == -1) {
		usage(stderr);
		ex = EX_USAGE;
	}
	db_close();
	config_free();
	return ex;
}
