/*
 * Metrics: counters and histograms every worker keeps in a small file of
 * its own under metrics_dir, mapped shared, so that they outlive the
 * process (prometheus_client's multiprocess mode).  A request only adds
 * to the mapped struct: no lock, no system call.  A starting worker takes
 * a file no live worker holds (flock, released by the kernel when its
 * holder dies), a dead worker's included, and goes on counting in it, so
 * files are reused, never deleted, and the sums never go backwards.
 * GET /metrics on the metrics listener reaches a data worker with the
 * FastCGI parameter KVAPI_METRICS (nginx sets it, a client cannot):
 * metrics_serve sums every file in the Prometheus text format.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "extern.h"

#define M_ROUTES  32 /* rows of router.c's table, and one for "no route" */
#define M_METHODS 8  /* methods[], and one for any other */
#define M_CODES	  32 /* statuses the worker answers, and one for others */
#define M_BUCKETS 14 /* finite histogram buckets, at most */

static const char *const methods[M_METHODS - 1] = {
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};

/* Upper bounds of the buckets, in nanoseconds (the text says seconds). */
static const uint64_t latency_le[] = {500000, 1000000, 2500000, 5000000,
    10000000, 25000000, 50000000, 100000000, 250000000, 500000000, 1000000000,
    2500000000, 5000000000, 10000000000};
static const uint64_t bcrypt_le[] = {5000000, 10000000, 25000000, 50000000,
    100000000, 250000000, 500000000, 1000000000, 2500000000};
#define NLE(a) (sizeof(a) / sizeof((a)[0]))

struct hist {
	uint64_t bucket[M_BUCKETS + 1]; /* per bucket, not cumulative */
	uint64_t sum_ns;
};

/* What a file holds.  Only ever grows at the end with a new magic. */
struct mfile {
	uint64_t magic;	  /* layout(): 0 in a file not yet set up */
	uint64_t running; /* 1 while a worker holds it */
	uint64_t counter[M__MAX];
	uint64_t requests[M_ROUTES + 1][M_METHODS][M_CODES];
	struct hist latency[M_ROUTES + 1];
	struct hist bcrypt;
};

/*
 * The counters, grouped by name: a name's HELP and TYPE are printed
 * before its first row.
 */
static const struct {
	enum metric id;
	const char *name, *labels, *help;
} counters[] = {
    {M_DB_ERR_CONNECT, "kvapi_db_errors_total", "kind=\"connect\"",
	"Database errors: failed connects, connections lost under a "
	"statement, other statement errors."},
    {M_DB_ERR_LOST, "kvapi_db_errors_total", "kind=\"lost\"", NULL},
    {M_DB_ERR_QUERY, "kvapi_db_errors_total", "kind=\"query\"", NULL},
    {M_DB_RECONNECT, "kvapi_db_reconnects_total", NULL,
	"Database connections opened again after a worker's first."},
    {M_LOGIN_OK, "kvapi_logins_total", "result=\"ok\"",
	"Password logins (POST /api/token) by result."},
    {M_LOGIN_FAILED, "kvapi_logins_total", "result=\"failed\"", NULL},
    {M_LOGIN_LOCKED, "kvapi_logins_total", "result=\"locked\"", NULL},
    {M_LOGIN_DISABLED, "kvapi_logins_total", "result=\"disabled\"", NULL},
    {M_SESSION_OPENED, "kvapi_sessions_opened_total", NULL,
	"Sessions opened by a login."},
    {M_SESSION_REFRESHED, "kvapi_sessions_refreshed_total", NULL,
	"Refresh grants that rotated a session's tokens."},
    {M_REFRESH_REUSE, "kvapi_refresh_reuse_total", NULL,
	"Consumed refresh tokens presented again (the session is ended)."},
    {M_QUOTA_REFUSED, "kvapi_quota_refusals_total", NULL,
	"Writes refused because the account's quota is used up."},
    {M_WORKER_START, "kvapi_worker_starts_total", NULL,
	"Workers started (multiwatch restarts included)."},
    {M_WORKER_CRASH, "kvapi_worker_crashes_total", NULL,
	"Workers that ended without stopping cleanly (kill -9, a crash), "
	"seen when their file is taken over."},
};

static struct mfile fallback; /* before metrics_init, or without a file */
static struct mfile *m = &fallback;
static int codes[M_CODES - 1], ncodes;
static unsigned char code_slot[600]; /* status -> slot, M_CODES-1: other */
static uint64_t magic;

uint64_t
metric_now(void)
{
	struct timespec ts;

	/* The vDSO answers CLOCK_MONOTONIC without a system call. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
metric_inc(enum metric id)
{
	m->counter[id]++;
}

static void
observe(struct hist *h, const uint64_t *le, size_t n, uint64_t ns)
{
	size_t i = 0;

	while (i < n && ns > le[i])
		i++;
	h->bucket[i]++;
	h->sum_ns += ns;
}

void
metric_request(int route, const char *method, int status, uint64_t t0)
{
	size_t r = route >= 0 && route < M_ROUTES ? (size_t)route : M_ROUTES;
	size_t k = 0;

	while (k < M_METHODS - 1 && strcmp(methods[k], method) != 0)
		k++;
	m->requests[r][k][status >= 0 && status < 600 ? code_slot[status]
						      : M_CODES - 1]++;
	observe(&m->latency[r], latency_le, NLE(latency_le), metric_now() - t0);
}

void
metric_bcrypt(uint64_t t0)
{
	observe(&m->bcrypt, bcrypt_le, NLE(bcrypt_le), metric_now() - t0);
}

/* The label of route slot r: the table's path, {param} for a prefix. */
static void
route_label(size_t r, char *buf, size_t cap)
{
	const char *path, *param;

	if (r == M_ROUTES || router_route(r, &path, &param) == -1)
		snprintf(buf, cap, "none");
	else
		snprintf(buf, cap, "%s%s%s%s", path, param ? "{" : "",
		    param ? param : "", param ? "}" : "");
}

/* FNV-1a over the text, continuing from h. */
static uint64_t
fnv(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

/*
 * The statuses to count, from the error table and the successes, in
 * order; and a number that changes whenever what a slot means does: a
 * file of another layout is neither taken over nor summed.
 */
static int
layout(void)
{
	static const int ok[] = {200, 201, 204, 304};
	const char *path, *param;
	char label[128], num[16];
	int s;

	memset(code_slot, M_CODES - 1, sizeof code_slot);
	ncodes = 0;
	for (s = 100; s < 600; s++) {
		int want = 0;

		for (size_t i = 0; i < NLE(ok); i++)
			want |= ok[i] == s;
		for (int e = 0; e < ERR__MAX; e++)
			want |= err_info((enum err)e)->status == s;
		if (!want)
			continue;
		if (ncodes == M_CODES - 1)
			return -1;
		code_slot[s] = (unsigned char)ncodes;
		codes[ncodes++] = s;
	}
	/* Every row of the table has a slot. */
	if (router_route(M_ROUTES, &path, &param) != -1)
		return -1;
	magic = fnv(14695981039346656037u, "kvapi-metrics-1");
	snprintf(num, sizeof num, "%zu", sizeof(struct mfile));
	magic = fnv(magic, num);
	for (int i = 0; i < ncodes; i++) {
		snprintf(num, sizeof num, "%d", codes[i]);
		magic = fnv(magic, num);
	}
	for (size_t r = 0; r < M_ROUTES; r++) {
		route_label(r, label, sizeof label);
		magic = fnv(magic, label);
	}
	return magic == 0 ? -1 : 0;
}

/*
 * Take file fd for this worker, when no live worker holds it: a file
 * of this layout, or a new one (empty).  -1 leaves fd to the caller.
 */
static int
take(int fd)
{
	struct stat st;
	void *p;

	if (flock(fd, LOCK_EX | LOCK_NB) == -1 || fstat(fd, &st) == -1)
		return -1;
	if (st.st_size == 0 && ftruncate(fd, sizeof(struct mfile)) == -1)
		return -1;
	if (st.st_size != 0 && st.st_size != (off_t)sizeof(struct mfile))
		return -1;
	p = mmap(NULL, sizeof(struct mfile), PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0);
	if (p == MAP_FAILED)
		return -1;
	if (((struct mfile *)p)->magic != 0 &&
	    ((struct mfile *)p)->magic != magic) {
		munmap(p, sizeof(struct mfile));
		return -1;
	}
	m = p;
	/* Its last holder died without metrics_close. */
	if (m->magic == magic && m->running)
		m->counter[M_WORKER_CRASH]++;
	m->magic = magic;
	m->running = 1;
	m->counter[M_WORKER_START]++;
	return 0;
}

static int
is_mfile(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 8 && strcmp(d->d_name + n - 8, ".metrics") == 0;
}

/*
 * A new file, taken before it is visible under a .metrics name: made
 * under a name of its own, then linked to a free name (link never
 * replaces a file, which may be a dead worker's with its counts).
 */
static int
new_file(const char *dir)
{
	char tmp[4096], path[4096];
	long pid = (long)getpid();
	int fd, n;

	snprintf(tmp, sizeof tmp, "%s/.new-%ld", dir, pid);
	(void)unlink(tmp); /* left by a dead process of the same pid */
	if ((fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1)
		return -1;
	if (take(fd) == -1) {
		close(fd);
		(void)unlink(tmp);
		return -1;
	}
	for (n = 0; n < 100; n++) {
		snprintf(path, sizeof path, "%s/%ld-%d.metrics", dir, pid, n);
		if (link(tmp, path) == 0)
			break;
		if (errno != EEXIST || n == 99) {
			log_warn("metrics: link %s: %s; GET /metrics will not "
				 "see this worker",
			    path, strerror(errno));
			break;
		}
	}
	(void)unlink(tmp);
	return fd;
}

/* A file of dir no live worker holds, or a new one: its fd, or -1. */
static int
find_file(const char *dir)
{
	char path[4096];
	struct dirent *d;
	DIR *dp;
	int fd = -1;

	if ((dp = opendir(dir)) == NULL)
		return -1;
	while (fd == -1 && (d = readdir(dp)) != NULL) {
		if (!is_mfile(d))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, d->d_name);
		if ((fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) == -1)
			continue;
		if (take(fd) == -1) {
			close(fd);
			fd = -1;
		}
	}
	closedir(dp);
	return fd != -1 ? fd : new_file(dir);
}

/*
 * At a worker's start: its file under metrics_dir (made if missing).
 * Without one the worker counts in memory only and says so; it still
 * serves.  -1 only when the tables do not fit the file's layout.
 */
int
metrics_init(void)
{
	const char *dir = cfg.metrics_dir;

	if (layout() == -1) {
		fprintf(stderr,
		    "kvapi: the routes or statuses do not fit the "
		    "metrics file (M_ROUTES, M_CODES)\n");
		return -1;
	}
	if (dir == NULL)
		return 0;
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		log_warn("metrics: mkdir %s: %s; counting in memory only", dir,
		    strerror(errno));
		return 0;
	}
	for (int i = 0; i < 5; i++)
		if (find_file(dir) != -1)
			return 0;
	log_warn("metrics: no file of mine in %s: %s; counting in memory "
		 "only",
	    dir, strerror(errno));
	return 0;
}

/* A clean stop: whoever takes the file over sees no crash. */
void
metrics_close(void)
{
	m->running = 0;
}

/* Relaxed loads: each counter has a single writer, never torn. */
static uint64_t
get(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void
add_hist(struct hist *to, const struct hist *h)
{
	for (size_t i = 0; i <= M_BUCKETS; i++)
		to->bucket[i] += get(&h->bucket[i]);
	to->sum_ns += get(&h->sum_ns);
}

/* Add file fd to sum, if it has this layout; *live when a worker holds it. */
static void
add_file(struct mfile *sum, int fd, int *live)
{
	struct stat st;
	const struct mfile *f;
	size_t i, j, k;
	void *p;

	if (fstat(fd, &st) == -1 || st.st_size != (off_t)sizeof *f)
		return;
	p = mmap(NULL, sizeof *f, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return;
	f = p;
	if (get(&f->magic) == magic) {
		for (i = 0; i < M__MAX; i++)
			sum->counter[i] += get(&f->counter[i]);
		for (i = 0; i <= M_ROUTES; i++) {
			for (j = 0; j < M_METHODS; j++)
				for (k = 0; k < M_CODES; k++)
					sum->requests[i][j][k] +=
					    get(&f->requests[i][j][k]);
			add_hist(&sum->latency[i], &f->latency[i]);
		}
		add_hist(&sum->bcrypt, &f->bcrypt);
		/* The holder's exclusive lock refuses ours, also when the
		 * holder is this process (another open file). */
		if (flock(fd, LOCK_SH | LOCK_NB) == -1)
			(*live)++;
		else
			flock(fd, LOCK_UN);
	}
	munmap(p, sizeof *f);
}

/* The sum of every file in metrics_dir (or this worker's own). */
static int
sum_files(struct mfile *sum, int *live)
{
	char path[4096];
	struct dirent *d;
	DIR *dp;
	int fd;

	if (m == &fallback || (dp = opendir(cfg.metrics_dir)) == NULL) {
		*sum = *m;
		*live = 1;
		return 0;
	}
	while ((d = readdir(dp)) != NULL) {
		if (!is_mfile(d))
			continue;
		snprintf(
		    path, sizeof path, "%s/%s", cfg.metrics_dir, d->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd == -1)
			continue;
		add_file(sum, fd, live);
		close(fd);
	}
	closedir(dp);
	return 0;
}

/* ns as seconds, without trailing zeros: 0.0005, 1, 2.5. */
static void
print_seconds(FCGX_Stream *out, uint64_t ns)
{
	char buf[32];
	size_t n;

	n = (size_t)snprintf(buf, sizeof buf, "%llu.%09llu",
	    (unsigned long long)(ns / 1000000000u),
	    (unsigned long long)(ns % 1000000000u));
	while (buf[n - 1] == '0')
		n--;
	if (buf[n - 1] == '.')
		n--;
	FCGX_PutStr(buf, (int)n, out);
}

/* One histogram's rows; labels is "" or `name="value"`. */
static void
print_hist(FCGX_Stream *out, const char *name, const char *labels,
    const struct hist *h, const uint64_t *le, size_t n)
{
	const char *sep = *labels ? "," : "", *l = *labels ? "{" : "",
		   *r = *labels ? "}" : "";
	uint64_t c = 0;

	for (size_t i = 0; i <= n; i++) {
		c += h->bucket[i];
		FCGX_FPrintF(out, "%s_bucket{%s%sle=\"", name, labels, sep);
		if (i < n)
			print_seconds(out, le[i]);
		else
			FCGX_PutS("+Inf", out);
		FCGX_FPrintF(out, "\"} %llu\n", (unsigned long long)c);
	}
	FCGX_FPrintF(out, "%s_sum%s%s%s ", name, l, labels, r);
	print_seconds(out, h->sum_ns);
	FCGX_FPrintF(out, "\n%s_count%s%s%s %llu\n", name, l, labels, r,
	    (unsigned long long)c);
}

static uint64_t
hist_count(const struct hist *h)
{
	uint64_t c = 0;

	for (size_t i = 0; i <= M_BUCKETS; i++)
		c += h->bucket[i];
	return c;
}

static void
print_requests(FCGX_Stream *out, const struct mfile *s)
{
	char label[128], code[16], lb[160];

	FCGX_PutS("# HELP kvapi_http_requests_total Requests answered by the "
		  "workers, by route pattern, method and status.\n"
		  "# TYPE kvapi_http_requests_total counter\n",
	    out);
	for (size_t r = 0; r <= M_ROUTES; r++) {
		route_label(r, label, sizeof label);
		for (size_t k = 0; k < M_METHODS; k++)
			for (size_t c = 0; c < M_CODES; c++) {
				if (s->requests[r][k][c] == 0)
					continue;
				if (c < (size_t)ncodes)
					snprintf(
					    code, sizeof code, "%d", codes[c]);
				else
					snprintf(code, sizeof code, "other");
				FCGX_FPrintF(out,
				    "kvapi_http_requests_total{route=\"%s\","
				    "method=\"%s\",code=\"%s\"} %llu\n",
				    label,
				    k < M_METHODS - 1 ? methods[k] : "other",
				    code,
				    (unsigned long long)s->requests[r][k][c]);
			}
	}
	FCGX_PutS("# HELP kvapi_http_request_duration_seconds Time from a "
		  "request's arrival at a worker to its answer, by route "
		  "pattern.\n"
		  "# TYPE kvapi_http_request_duration_seconds histogram\n",
	    out);
	for (size_t r = 0; r <= M_ROUTES; r++) {
		if (hist_count(&s->latency[r]) == 0)
			continue;
		route_label(r, label, sizeof label);
		snprintf(lb, sizeof lb, "route=\"%s\"", label);
		print_hist(out, "kvapi_http_request_duration_seconds", lb,
		    &s->latency[r], latency_le, NLE(latency_le));
	}
}

/* GET /metrics: the sums of every worker's file, as Prometheus reads. */
void
metrics_serve(FCGX_Stream *out)
{
	struct mfile *s;
	const char *prev = "";
	int live = 0;

	if ((s = calloc(1, sizeof *s)) == NULL || sum_files(s, &live) == -1) {
		free(s);
		FCGX_PutS("Status: 500 Internal Server Error\r\n"
			  "Content-Type: text/plain\r\n\r\nout of memory\n",
		    out);
		return;
	}
	FCGX_PutS("Status: 200 OK\r\n"
		  "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		  "Cache-Control: no-store\r\n\r\n",
	    out);
	print_requests(out, s);
	for (size_t i = 0; i < NLE(counters); i++) {
		if (strcmp(counters[i].name, prev) != 0)
			FCGX_FPrintF(out, "# HELP %s %s\n# TYPE %s counter\n",
			    counters[i].name, counters[i].help,
			    counters[i].name);
		prev = counters[i].name;
		FCGX_FPrintF(out, "%s%s%s%s %llu\n", counters[i].name,
		    counters[i].labels ? "{" : "",
		    counters[i].labels ? counters[i].labels : "",
		    counters[i].labels ? "}" : "",
		    (unsigned long long)s->counter[counters[i].id]);
	}
	FCGX_PutS("# HELP kvapi_bcrypt_seconds Time of one bcrypt (a "
		  "password hashed or checked).\n"
		  "# TYPE kvapi_bcrypt_seconds histogram\n",
	    out);
	print_hist(out, "kvapi_bcrypt_seconds", "", &s->bcrypt, bcrypt_le,
	    NLE(bcrypt_le));
	FCGX_FPrintF(out,
	    "# HELP kvapi_workers Workers running now, of both pools.\n"
	    "# TYPE kvapi_workers gauge\n"
	    "kvapi_workers %d\n",
	    live);
	free(s);
}
