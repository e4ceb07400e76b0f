/*
 * bcrypt_time: what one bcrypt costs on this machine, now.  The login
 * ceiling of script/bench is nproc / (the time of one crypt_rn at the
 * configured cost): POST /api/token cannot go faster than the cores can
 * hash.  Built by script/bench (cc + pkg-config libxcrypt).
 *
 *   bcrypt_time COST [RUNS]      time RUNS (default 5) crypt_rn calls;
 *                                prints "cost=C runs=N wall_ms=M cpu_ms=M
 *                                min_wall_ms=M" (medians) on one line
 *   bcrypt_time -H COST          read a password on stdin, print its
 *                                $2b$ hash (for seeding users by SQL)
 *   bcrypt_time -d SECONDS COST  hash for SECONDS, print "count=N
 *                                seconds=S": script/bench runs nproc of
 *                                these at once, the ceiling measured
 *                                under the same load as the logins
 *
 * The same library call, salt prefix and struct crypt_data as kvapi's
 * src/auth.c.
 */
#define _GNU_SOURCE
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct crypt_data cd; /* 32 KiB: not on the stack */

static double
now_ms(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int
salt(unsigned long cost, char *out, int cap)
{
	if (crypt_gensalt_rn("$2b$", cost, NULL, 0, out, cap) == NULL) {
		perror("crypt_gensalt_rn");
		return -1;
	}
	return 0;
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: bcrypt_time COST [RUNS] | bcrypt_time -H COST "
	    "<PASSWORD | bcrypt_time -d SECONDS COST\n");
	return 2;
}

int
main(int argc, char *argv[])
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE], pw[128];
	const char *h;
	double wall[101], cpu[101], w0, c0, minw;
	unsigned long cost;
	int runs = 5;

	if (argc == 3 && strcmp(argv[1], "-H") == 0) {
		cost = strtoul(argv[2], NULL, 10);
		if (fgets(pw, sizeof pw, stdin) == NULL)
			return usage();
		pw[strcspn(pw, "\n")] = '\0';
		if (salt(cost, setting, sizeof setting) == -1)
			return 1;
		h = crypt_rn(pw, setting, &cd, sizeof cd);
		if (h == NULL || h[0] == '*')
			return 1;
		puts(h);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "-d") == 0) {
		double secs = atof(argv[2]), t0 = now_ms(CLOCK_MONOTONIC), t;
		long n = 0;

		cost = strtoul(argv[3], NULL, 10);
		if (secs <= 0 || salt(cost, setting, sizeof setting) == -1)
			return usage();
		do {
			h = crypt_rn(
			    "benchmark password", setting, &cd, sizeof cd);
			if (h == NULL || h[0] == '*')
				return 1;
			n++;
			t = now_ms(CLOCK_MONOTONIC) - t0;
		} while (t < secs * 1000);
		printf("count=%ld seconds=%.3f\n", n, t / 1000);
		return 0;
	}
	if (argc < 2 || argc > 3)
		return usage();
	cost = strtoul(argv[1], NULL, 10);
	if (argc == 3)
		runs = atoi(argv[2]);
	if (cost < 4 || cost > 31 || runs < 1 || runs > 101)
		return usage();
	if (salt(cost, setting, sizeof setting) == -1)
		return 1;
	/* One untimed call: page in the code, warm the caches. */
	if (crypt_rn("warm-up password", setting, &cd, sizeof cd) == NULL)
		return 1;
	minw = 1e18;
	for (int i = 0; i < runs; i++) {
		w0 = now_ms(CLOCK_MONOTONIC);
		c0 = now_ms(CLOCK_THREAD_CPUTIME_ID);
		h = crypt_rn("benchmark password", setting, &cd, sizeof cd);
		cpu[i] = now_ms(CLOCK_THREAD_CPUTIME_ID) - c0;
		wall[i] = now_ms(CLOCK_MONOTONIC) - w0;
		if (h == NULL || h[0] == '*')
			return 1;
		if (wall[i] < minw)
			minw = wall[i];
	}
	printf("cost=%lu runs=%d wall_ms=%.2f cpu_ms=%.2f min_wall_ms=%.2f\n",
	    cost, runs, median(wall, runs), median(cpu, runs), minw);
	return 0;
}
