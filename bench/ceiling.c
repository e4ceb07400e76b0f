/*
 * ceiling: the smallest FastCGI program that does what a GET of a key
 * must do at the least -- one prepared primary-key SELECT per request --
 * and nothing else: no authentication, no routing, no JSON library, no
 * logging.  script/bench runs it behind nginx under spawn-fcgi +
 * multiwatch, exactly as kvapi's data pool runs, so kvapi/ceiling tells
 * how much of the possible throughput kvapi's own work costs.
 *
 *   spawn-fcgi -n -s SOCK -- multiwatch -f N -- ceiling OPTION_FILE DB
 *
 * OPTION_FILE is a MySQL option file whose [client] group holds host,
 * port, user and password (no secret on the command line).  The key is
 * the last segment of REQUEST_URI (bench keys are plain ASCII); the
 * user id comes from the X-Bench-User header that the bench's Lua
 * scenarios send to every target.  Built by script/bench with
 * cc + pkg-config fcgi libmariadb.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>
#include <mysql.h>

#define SQL "SELECT v FROM data WHERE user_id = ? AND k = ?"

static char value[65536];

int
main(int argc, char *argv[])
{
	MYSQL *db;
	MYSQL_STMT *st;
	MYSQL_BIND par[2], res[1];
	FCGX_Request req;
	unsigned long long uid;
	unsigned long klen, vlen;
	char key[256];
	const char *uri, *u, *k;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: ceiling OPTION_FILE DATABASE\n");
		return 2;
	}
	if ((db = mysql_init(NULL)) == NULL)
		return 1;
	mysql_options(db, MYSQL_READ_DEFAULT_FILE, argv[1]);
	mysql_options(db, MYSQL_READ_DEFAULT_GROUP, "client");
	mysql_options(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	if (mysql_real_connect(db, NULL, NULL, NULL, argv[2], 0, NULL, 0) ==
	    NULL) {
		fprintf(stderr, "ceiling: connect: %s\n", mysql_error(db));
		return 1;
	}
	if ((st = mysql_stmt_init(db)) == NULL ||
	    mysql_stmt_prepare(st, SQL, strlen(SQL)) != 0) {
		fprintf(stderr, "ceiling: prepare: %s\n", mysql_error(db));
		return 1;
	}
	memset(par, 0, sizeof par);
	par[0].buffer_type = MYSQL_TYPE_LONGLONG;
	par[0].is_unsigned = 1;
	par[0].buffer = &uid;
	par[1].buffer_type = MYSQL_TYPE_BLOB;
	par[1].buffer = key;
	par[1].length = &klen;
	memset(res, 0, sizeof res);
	res[0].buffer_type = MYSQL_TYPE_STRING;
	res[0].buffer = value;
	res[0].buffer_length = sizeof value - 1;
	res[0].length = &vlen;

	if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
		return 1;
	while (FCGX_Accept_r(&req) >= 0) {
		uri = FCGX_GetParam("REQUEST_URI", req.envp);
		u = FCGX_GetParam("HTTP_X_BENCH_USER", req.envp);
		k = uri ? strrchr(uri, '/') : NULL;
		uid = u ? strtoull(u, NULL, 10) : 0;
		klen = k ? strcspn(++k, "?") : 0;
		if (klen >= sizeof key)
			klen = 0;
		if (klen > 0)
			memcpy(key, k, klen);
		rc = -1;
		if (mysql_stmt_bind_param(st, par) == 0 &&
		    mysql_stmt_execute(st) == 0 &&
		    mysql_stmt_bind_result(st, res) == 0) {
			rc = mysql_stmt_fetch(st);
			mysql_stmt_free_result(st);
		}
		if (rc == 0 || rc == MYSQL_DATA_TRUNCATED) {
			if (vlen > sizeof value - 1)
				vlen = sizeof value - 1;
			value[vlen] = '\0';
			FCGX_FPrintF(req.out,
			    "Status: 200 OK\r\n"
			    "Content-Type: application/json; charset=utf-8\r\n"
			    "\r\n"
			    "{\"status\":\"success\",\"data\":{\"key\":\"%.*"
			    "s\","
			    "\"value\":%s}}",
			    (int)klen, key, value);
		} else if (rc == MYSQL_NO_DATA) {
			FCGX_PutS("Status: 404 Not Found\r\n"
				  "Content-Type: application/json; "
				  "charset=utf-8\r\n\r\n"
				  "{\"status\":\"error\",\"code\":\"KEY_NOT_"
				  "FOUND\"}",
			    req.out);
		} else {
			fprintf(stderr, "ceiling: %s\n", mysql_stmt_error(st));
			FCGX_PutS("Status: 500 Internal Server Error\r\n\r\n",
			    req.out);
		}
		/* Close at once, as kvapi does (src/main.c). */
		FCGX_Detach(&req);
		FCGX_Finish_r(&req);
	}
	return 0;
}
