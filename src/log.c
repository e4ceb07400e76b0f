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

int
log_level_parse(const char *s)
{
	static const char *names[] = {"error", "warn", "info", "debug"};

	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

static void
vlog(int level, const char *fmt, va_list ap)
{
	static const char *tags[] = {"error", "warn", "info", "debug"};
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
	    tags[level], log_request_id ? "req=" : "",
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
