/*
 * Configuration: built-in defaults, then the config file (`-c` or
 * KVAPI_CONFIG), then KVAPI_<KEY> environment variables for containers.
 * The database password may come from the file only when the file is
 * private to its owner, or from a MySQL option file; never from argv or
 * the environment.  Any invalid setting is fatal before serving.
 * config_print shows a setting as parsed, for scripts (--print-config).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "extern.h"

struct config cfg;

/*
 * K_ORIGINS is text where unset means "*"; K_NGINX text the worker keeps
 * only to print it (--print-config) for the nginx site.
 */
enum ktype { K_STR, K_UINT, K_LL, K_SIZE, K_COST, K_LEVEL, K_ORIGINS, K_NGINX };

static const struct key {
	const char *name;
	size_t off;
	long long min, max;
	enum ktype type;
	int env; /* 0 for a secret: not from the environment, not printed */
} keys[] = {
#define OFF(f) offsetof(struct config, f)
    {"db_host", OFF(db_host), 0, 0, K_STR, 1},
    {"db_hosts", OFF(db_hosts), 0, 0, K_STR, 1},
    {"db_port", OFF(db_port), 0, 65535, K_UINT, 1},
    {"db_socket", OFF(db_socket), 0, 0, K_STR, 1},
    {"db_name", OFF(db_name), 0, 0, K_STR, 1},
    {"db_user", OFF(db_user), 0, 0, K_STR, 1},
    {"db_password", OFF(db_password), 0, 0, K_STR, 0},
    {"db_option_file", OFF(db_option_file), 0, 0, K_STR, 1},
    {"db_option_group", OFF(db_option_group), 0, 0, K_STR, 1},
    {"db_connect_timeout", OFF(db_connect_timeout), 1, 3600, K_UINT, 1},
    {"db_read_timeout", OFF(db_read_timeout), 1, 3600, K_UINT, 1},
    {"db_write_timeout", OFF(db_write_timeout), 1, 3600, K_UINT, 1},
    {"db_galera", OFF(db_galera), 0, 1, K_UINT, 1},
    {"token_lifetime", OFF(token_lifetime), 1, 315360000, K_LL, 1},
    {"token_purge_interval", OFF(token_purge_interval), 0, 86400, K_LL, 1},
    {"refresh_lifetime", OFF(refresh_lifetime), 1, 315360000, K_LL, 1},
    {"login_max_failures", OFF(login_max_failures), 1, 1000000, K_UINT, 1},
    {"login_failure_window", OFF(login_failure_window), 1, 31536000, K_LL, 1},
    {"quota_keys", OFF(quota_keys), 1, 1000000000, K_LL, 1},
    {"quota_bytes", OFF(quota_bytes), 1, 1LL << 50, K_LL, 1},
    {"changes_retention", OFF(changes_retention), 1, 315360000, K_LL, 1},
    {"bcrypt_cost", OFF(bcrypt_cost), 4, 31, K_COST, 1},
    {"value_max", OFF(value_max), 16, 64LL << 20, K_SIZE, 1},
    {"body_max", OFF(body_max), 1024, 80LL << 20, K_SIZE, 1},
    {"cors_origins", OFF(cors_origins), 0, 0, K_ORIGINS, 1},
    {"log_level", OFF(log_level), 0, 0, K_LEVEL, 1},
    /* Read by script/stack for the nginx site; the worker ignores them. */
    {"auth_rate", OFF(auth_rate), 0, 0, K_NGINX, 1},
    {"auth_burst", OFF(auth_burst), 0, 0, K_NGINX, 1},
    /* The nginx site's limits on slow and idle clients (script/stack,
     * docs/operations.md); the worker only checks and prints them. */
    {"conn_per_address", OFF(conn_per_address), 1, 1000000, K_UINT, 1},
    {"header_timeout", OFF(header_timeout), 1, 3600, K_UINT, 1},
    {"body_timeout", OFF(body_timeout), 1, 3600, K_UINT, 1},
    {"keepalive_timeout", OFF(keepalive_timeout), 1, 3600, K_UINT, 1},
    /* Metrics: the workers' files, and the site's listener for them. */
    {"metrics_dir", OFF(metrics_dir), 0, 0, K_STR, 1},
    {"metrics_listen", OFF(metrics_listen), 0, 0, K_NGINX, 1},
#undef OFF
};

static void
set_defaults(void)
{
	cfg.db_host = NULL; /* NULL host + NULL socket: the client default */
	cfg.db_port = 0;
	cfg.db_galera = 0;
	cfg.db_name = strdup("kvapi");
	cfg.db_user = strdup("kvapi");
	cfg.db_connect_timeout = 3;
	cfg.db_read_timeout = 10;
	cfg.db_write_timeout = 10;
	cfg.token_lifetime = 3600;
	cfg.token_purge_interval = 300;
	cfg.refresh_lifetime = 2592000;
	cfg.login_max_failures = 5;
	cfg.login_failure_window = 900;
	cfg.quota_keys = 100000;
	cfg.quota_bytes = 104857600;
	cfg.changes_retention = 604800;
	cfg.bcrypt_cost = 12;
	cfg.value_max = 1048576;
	cfg.body_max = 1048576 + 65536;
	cfg.cors_origins = strdup("*");
	cfg.log_level = LOG_INFO_;
	cfg.auth_rate = strdup("5r/s");
	cfg.auth_burst = strdup("10");
	cfg.conn_per_address = 256;
	cfg.header_timeout = 10;
	cfg.body_timeout = 10;
	cfg.keepalive_timeout = 30;
	cfg.metrics_dir = strdup("/run/kvapi/metrics");
	cfg.metrics_listen = strdup("127.0.0.1:9464");
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Store one value; on error say why, naming where it came from. */
static int
set_key(const struct key *k, const char *val, const char *where)
{
	char *p = (char *)&cfg + k->off, *end;
	long long n;

	switch (k->type) {
	case K_STR:
	case K_ORIGINS:
	case K_NGINX:
		free(*(char **)p);
		*(char **)p = *val ? strdup(val) : NULL;
		return 0;
	case K_LEVEL:
		if ((*(int *)p = log_level_parse(val)) < 0)
			goto bad;
		return 0;
	default: break;
	}
	errno = 0;
	n = strtoll(val, &end, 10);
	if (errno || end == val || *end != '\0' || n < k->min || n > k->max)
		goto bad;
	switch (k->type) {
	case K_UINT: *(unsigned int *)p = (unsigned int)n; break;
	case K_LL: *(long long *)p = n; break;
	case K_SIZE: *(size_t *)p = (size_t)n; break;
	case K_COST: *(int *)p = (int)n; break;
	default: break;
	}
	return 0;
bad:
	fprintf(stderr, "kvapi: %s: invalid value for %s", where, k->name);
	if (k->type == K_UINT || k->type == K_LL || k->type == K_SIZE ||
	    k->type == K_COST)
		fprintf(
		    stderr, " (an integer from %lld to %lld)", k->min, k->max);
	else if (k->type == K_LEVEL)
		fprintf(stderr, " (error, warn, info or debug)");
	fprintf(stderr, "\n");
	return -1;
}

static const struct key *
find_key(const char *name)
{
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int
load_file(const char *path)
{
	char line[4096], where[PATH_MAX + 32], *p, *eq, *name;
	const struct key *k;
	struct stat st;
	int lineno = 0, rc = -1;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "kvapi: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) == -1) {
		fprintf(stderr, "kvapi: %s: %s\n", path, strerror(errno));
		goto out;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		lineno++;
		snprintf(where, sizeof where, "%s:%d", path, lineno);
		if (strchr(line, '\n') == NULL && !feof(f)) {
			fprintf(stderr, "kvapi: %s: line too long\n", where);
			goto out;
		}
		p = trim(line);
		if (*p == '\0' || *p == '#')
			continue;
		if ((eq = strchr(p, '=')) == NULL) {
			fprintf(
			    stderr, "kvapi: %s: expected key = value\n", where);
			goto out;
		}
		*eq = '\0';
		name = trim(p);
		if ((k = find_key(name)) == NULL) {
			fprintf(stderr, "kvapi: %s: unknown setting '%s'\n",
			    where, name);
			goto out;
		}
		if (strcmp(name, "db_password") == 0 &&
		    (st.st_mode & (S_IRWXG | S_IRWXO))) {
			fprintf(stderr,
			    "kvapi: %s: db_password is set but the "
			    "file is readable by group or others (chmod 600 "
			    "it, or use db_option_file)\n",
			    where);
			goto out;
		}
		if (set_key(k, trim(eq + 1), where) == -1)
			goto out;
	}
	if (ferror(f)) {
		fprintf(stderr, "kvapi: %s: read error\n", path);
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(line, sizeof line);
	fclose(f);
	return rc;
}

static int
load_env(void)
{
	char name[64], where[80];
	const char *val;

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		size_t j;

		memcpy(name, "KVAPI_", 6);
		for (j = 0; keys[i].name[j] != '\0' && 7 + j < sizeof name; j++)
			name[6 + j] =
			    (char)toupper((unsigned char)keys[i].name[j]);
		name[6 + j] = '\0';
		if ((val = getenv(name)) == NULL)
			continue;
		if (!keys[i].env) {
			fprintf(stderr,
			    "kvapi: %s is not read from the "
			    "environment; put it in the config file or a "
			    "MySQL option file\n",
			    name);
			return -1;
		}
		snprintf(where, sizeof where, "environment %s", name);
		if (set_key(&keys[i], val, where) == -1)
			return -1;
	}
	return 0;
}

int
config_load(const char *path)
{
	set_defaults();
	if (path != NULL && load_file(path) == -1)
		return -1;
	if (load_env() == -1)
		return -1;
	if (cfg.body_max < cfg.value_max) {
		fprintf(stderr,
		    "kvapi: body_max (%zu) must be at least "
		    "value_max (%zu)\n",
		    cfg.body_max, cfg.value_max);
		return -1;
	}
	if (cfg.cors_origins != NULL && strcmp(cfg.cors_origins, "*") == 0) {
		free(cfg.cors_origins);
		cfg.cors_origins = NULL;
	}
	return 0;
}

/*
 * Print setting `name` as the worker sees it, for scripts (kvapi
 * --print-config): what a file would say, "" for unset text.  Secrets are
 * not printed.  0, or -1 with the reason on stderr.
 */
int
config_print(const char *name)
{
	const struct key *k = find_key(name);
	const char *p, *text;

	if (k == NULL) {
		fprintf(stderr, "kvapi: unknown setting '%s'\n", name);
		return -1;
	}
	if (!k->env) {
		fprintf(stderr, "kvapi: %s is a secret: not printed\n", name);
		return -1;
	}
	p = (const char *)&cfg + k->off;
	switch (k->type) {
	case K_STR:
	case K_NGINX:
	case K_ORIGINS:
		if ((text = *(char *const *)p) == NULL)
			text = k->type == K_ORIGINS ? "*" : "";
		printf("%s\n", text);
		break;
	case K_UINT: printf("%u\n", *(const unsigned int *)p); break;
	case K_LL: printf("%lld\n", *(const long long *)p); break;
	case K_SIZE: printf("%zu\n", *(const size_t *)p); break;
	case K_COST: printf("%d\n", *(const int *)p); break;
	case K_LEVEL: printf("%s\n", log_level_name(*(const int *)p)); break;
	}
	return 0;
}

void
config_free(void)
{
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		char **p = (char **)((char *)&cfg + keys[i].off);

		if ((keys[i].type != K_STR && keys[i].type != K_ORIGINS &&
			keys[i].type != K_NGINX) ||
		    *p == NULL)
			continue;
		explicit_bzero(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}
