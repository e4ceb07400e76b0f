/*
 * The response writer: the one place that turns a handled request (or an
 * error of the table in err.c) into CGI headers and the JSON envelope of
 * API.md, so every answer gets the same envelope, CORS and cache headers.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <fcgiapp.h>

#include "extern.h"

/*
 * One header line.  libfcgi's own FCGX_FPrintF knows no %zu, so format
 * with the C library and write the bytes.
 */
void
resp_header(FCGX_Stream *out, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof line)
		FCGX_PutStr(line, n, out);
}

/*
 * The envelope of API.md: {"status":"success","message"} with message
 * (if any), or {"status":"error","code","message"} of error e.  NULL when
 * out of memory.
 */
static cJSON *
envelope(enum err e, const char *message)
{
	const struct err_info *ei = err_info(e);
	cJSON *body = cJSON_CreateObject();

	if (body == NULL)
		return NULL;
	if (e == ERR_OK) {
		cJSON_AddStringToObject(body, "status", "success");
		if (message != NULL)
			cJSON_AddStringToObject(body, "message", message);
	} else {
		cJSON_AddStringToObject(body, "status", "error");
		cJSON_AddStringToObject(body, "code", ei->code);
		cJSON_AddStringToObject(body, "message", ei->message);
	}
	return body;
}

/* The body of error e as the worker writes it, for cJSON_free. */
char *
resp_error_text(enum err e)
{
	cJSON *body = envelope(e, NULL);
	char *text = body ? cJSON_PrintUnformatted(body) : NULL;

	cJSON_Delete(body);
	return text;
}

/*
 * The token's user, for nginx's access log only: the site logs it and
 * strips it (fastcgi_hide_header), so no client sees it.
 */
static void
user_header(FCGX_Stream *out, const struct req *r)
{
	if (r->user != 0)
		resp_header(
		    out, "X-Kvapi-User: %llu\r\n", (unsigned long long)r->user);
}

/* Write the response r describes, or the error e. */
void
resp_write(FCGX_Stream *out, struct req *r, enum err e)
{
	const struct err_info *ei = err_info(e);
	cJSON *body;
	char *text;
	int status = e == ERR_OK ? r->status : ei->status;

	r->status = status; /* for the metrics */
	if (e == ERR_OK && status == 304) {
		/* Not Modified: the validators, no body. */
		resp_header(out, "Status: 304 %s\r\nETag: %s\r\n",
		    http_reason(304), r->etag);
		FCGX_PutS("Cache-Control: no-store\r\n", out);
		user_header(out, r);
		cors_headers(out, r);
		FCGX_PutS("\r\n", out);
		return;
	}
	if ((body = envelope(e, r->message)) == NULL)
		goto oom;
	/* Errors may carry data too (health: "down"). */
	if (r->data != NULL) {
		cJSON_AddItemToObject(body, "data", r->data);
		r->data = NULL;
	}
	text = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	if (text == NULL)
		goto oom;
	/* A full quota is the client's state, not a fault. */
	if (status >= 500 && e != ERR_QUOTA_EXCEEDED)
		log_err("answered %d %s", status, ei->code);
	else
		log_debug(
		    "answered %d%s%s", status, e ? " " : "", e ? ei->code : "");

	resp_header(out, "Status: %d %s\r\n", status, http_reason(status));
	FCGX_PutS("Content-Type: application/json; charset=utf-8\r\n"
		  "Cache-Control: no-store\r\n",
	    out);
	cors_headers(out, r);
	user_header(out, r);
	if (e == ERR_OK && r->location[0])
		resp_header(out, "Location: %s\r\n", r->location);
	if (e == ERR_OK && r->etag[0])
		resp_header(out, "ETag: %s\r\n", r->etag);
	if (e == ERR_METHOD_NOT_ALLOWED && r->allow[0])
		resp_header(out, "Allow: %s\r\n", r->allow);
	if (e == ERR_ACCOUNT_LOCKED)
		resp_header(out, "Retry-After: %lld\r\n", r->retry_after);
	/* As nginx's own 503 (nginx/kvapi.conf.in): a database that is
	 * away, or a conflict that kept failing, is worth a retry soon. */
	if (e == ERR_SERVICE_UNAVAILABLE)
		FCGX_PutS("Retry-After: 1\r\n", out);
	if (e == ERR_INVALID_TOKEN)
		resp_header(out, "WWW-Authenticate: %s\r\n",
		    r->www_auth ? r->www_auth : "Bearer realm=\"kvapi\"");
	resp_header(out, "Content-Length: %zu\r\n\r\n", strlen(text));
	FCGX_PutStr(text, (int)strlen(text), out);
	cJSON_free(text);
	return;
oom:
	/* No memory for cJSON: the table's text needs no escaping (t/unit). */
	ei = err_info(ERR_INTERNAL);
	log_err("answered %d %s: out of memory", ei->status, ei->code);
	resp_header(out,
	    "Status: %d %s\r\n"
	    "Content-Type: application/json; charset=utf-8\r\n\r\n"
	    "{\"status\":\"error\",\"code\":\"%s\",\"message\":\"%s\"}",
	    ei->status, http_reason(ei->status), ei->code, ei->message);
}
