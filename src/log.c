/*
 * Logging: one line per event on stderr, which spawn-fcgi hands to the
 * log file.  Each line carries the pid and, inside a request, the
 * request id that nginx also writes to its access log, so the two can be
 * joined.  Never log passwords, tokens or bodies.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "extern.h"

const char *log_request_id;

/* By level: what log_level says, and what a line is tagged with. */
static const char *const levels[] = {"error", "warn", "info", "debug"};

int
log_level_parse(const char *s)
{
	for (int i = LOG_ERR_; i <= LOG_DEBUG_; i++)
		if (strcmp(s, levels[i]) == 0)
			return i;
	return -1;
}

const char *
log_level_name(int level)
{
	return levels[level];
}

static void
vlog(int level, const char *fmt, va_list ap)
{
	char msg[1024], stamp[32];
	struct tm tm;
	time_t now;

	if (level > cfg.log_level)
		return;
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
	vsnprintf(msg, sizeof msg, fmt, ap);
	/* One fprintf, so concurrent workers do not interleave a line. */
	fprintf(stderr, "%s kvapi[%d] %s: %s%s%s%s\n", stamp, (int)getpid(),
	    levels[level], log_request_id ? "req=" : "",
	    log_request_id ? log_request_id : "", log_request_id ? " " : "",
	    msg);
}

#define LOG_FN(name, level)                                                    \
	void name(const char *fmt, ...)                                        \
	{                                                                      \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		vlog(level, fmt, ap);                                          \
		va_end(ap);                                                    \
	}

LOG_FN(log_err, LOG_ERR_)
LOG_FN(log_warn, LOG_WARN_)
LOG_FN(log_info, LOG_INFO_)
LOG_FN(log_debug, LOG_DEBUG_)
