/*
 * kvapi: a FastCGI worker for the key-value API.  spawn-fcgi hands it the
 * listening socket on fd 0 and multiwatch keeps N of them running; each
 * loops on FCGX_Accept_r and serves one request at a time.  SIGTERM
 * (SIGINT, SIGUSR1) lets the request in hand finish, then the loop ends.
 * A worker never exits because the database is down: it answers 503 and
 * reconnects by itself.  --print-config and --print-nginx print what
 * scripts need of its config parser and its tables, and exit.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "extern.h"

static volatile sig_atomic_t stopping;

static void
on_term(int sig)
{
	(void)sig;
	stopping = 1;
	/* Makes a blocked accept() return instead of being restarted. */
	FCGX_ShutdownPending();
}

static time_t last_purge;

/* After a request is answered, so no client waits for it. */
static void
purge_tokens(void)
{
	unsigned long long n = 0;
	time_t now = time(NULL);

	if (cfg.token_purge_interval == 0 ||
	    now - last_purge < cfg.token_purge_interval)
		return;
	last_purge = now;
	if (db_token_purge(&n) == DBR_OK && n > 0)
		log_info("purged %llu expired tokens", n);
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: kvapi [-c config] [--print-config KEY...] | --print-nginx "
	    "|\n"
	    "       --help | --version\n"
	    "\n"
	    "A FastCGI worker for the kvapi key-value API.  It accepts on fd "
	    "0,\n"
	    "where spawn-fcgi puts the listening socket:\n"
	    "\n"
	    "  spawn-fcgi -n -s /run/kvapi.sock -- multiwatch -f 6 -- kvapi -c "
	    "FILE\n"
	    "\n"
	    "  -c FILE    config file (default: $KVAPI_CONFIG, else %s)\n"
	    "  --print-config KEY...\n"
	    "             print these settings as the worker sees them, one a "
	    "line\n"
	    "  --print-nginx\n"
	    "             print what the nginx site takes from the worker, as "
	    "NAME=VALUE\n"
	    "  --help     this text\n"
	    "  --version  print the version\n"
	    "\n"
	    "Settings are key = value lines; KVAPI_<KEY> environment "
	    "variables\n"
	    "override them (except db_password).  See kvapi.conf.sample.\n",
	    SYSCONFDIR "/kvapi/kvapi.conf");
}

int
main(int argc, char *argv[])
{
	const char *conf = getenv("KVAPI_CONFIG");
	struct sigaction sa;
	sigset_t stops;
	FCGX_Request req;
	char **print = NULL;
	int i, served = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0 ||
		    strcmp(argv[i], "-v") == 0) {
			printf("kvapi %s\n", KVAPI_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			conf = argv[++i];
			continue;
		}
		if (strcmp(argv[i], "--print-nginx") == 0)
			return router_init() == -1 || nginx_print() == -1;
		/* The rest are the keys. */
		if (strcmp(argv[i], "--print-config") == 0 && i + 1 < argc) {
			print = &argv[i + 1];
			break;
		}
		usage(stderr);
		return 2;
	}
	if (conf == NULL && access(SYSCONFDIR "/kvapi/kvapi.conf", F_OK) == 0)
		conf = SYSCONFDIR "/kvapi/kvapi.conf";
	if (config_load(conf) == -1 || router_init() == -1)
		return 1;
	if (print != NULL) {
		for (i = 0; print[i] != NULL; i++)
			if (config_print(print[i]) == -1)
				break;
		config_free();
		return print[i] == NULL ? 0 : 2;
	}

	if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0) {
		fprintf(stderr, "kvapi: cannot initialise libfcgi\n");
		return 1;
	}
	/* After FCGX_Init, which installs handlers of its own. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term; /* no SA_RESTART: see on_term */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* multiwatch's graceful signal (its -s option is off by one). */
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (FCGX_IsCGI()) {
		fprintf(stderr,
		    "kvapi: fd 0 is not a FastCGI socket; run me "
		    "under spawn-fcgi (see --help)\n");
		return 1;
	}
	if (auth_init() == -1) {
		fprintf(stderr,
		    "kvapi: cannot initialise bcrypt or the random "
		    "number generator\n");
		return 1;
	}
	if (metrics_init() == -1)
		return 1;
	if (db_init() == -1)
		log_warn(
		    "database unreachable at start; will retry per request");
	log_info("worker ready (kvapi %s)", KVAPI_VERSION);

	/* Workers purge expired tokens in turn: start each at a random
	 * point of the interval so they do not all run together. */
	if (cfg.token_purge_interval > 0)
		last_purge = time(NULL) -
		    (time_t)(auth_rand64() %
			(uint64_t)cfg.token_purge_interval);
	/*
	 * The stop signals are blocked while a request is in hand: libfcgi
	 * does not restart a read that a signal interrupts, so a stop during
	 * a body read would cut the body short.  They are delivered, and end
	 * the loop, when the worker goes back to accept().
	 */
	sigemptyset(&stops);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGUSR1);
	while (!stopping && FCGX_Accept_r(&req) >= 0) {
		sigprocmask(SIG_BLOCK, &stops, NULL);
		/* Only the metrics listener's server block sets it. */
		if (FCGX_GetParam("KVAPI_METRICS", req.envp) != NULL)
			metrics_serve(req.out);
		else
			router_handle(&req);
		/*
		 * Close the connection at once.  Undetached, libfcgi shuts
		 * down its side and waits (up to 2 s) for nginx to close
		 * first, so that unread input cannot reset the connection
		 * before nginx has the answer; the worker then blocks once
		 * more per request.  There is no unread input: the router
		 * has read the request to its end, body included.  (-10 us
		 * of CPU per request, +0-7% throughput: docs/performance.md.)
		 */
		FCGX_Detach(&req);
		FCGX_Finish_r(&req);
		served++;
		purge_tokens();
		sigprocmask(SIG_UNBLOCK, &stops, NULL);
	}
	log_info("worker stopping after %d requests", served);
	FCGX_Free(&req, 1);
	metrics_close();
	db_close();
	config_free();
	return 0;
}
