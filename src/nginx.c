/*
 * What the nginx site (nginx/kvapi.conf.in) takes from the worker's own
 * tables, so that the answers nginx makes itself say what the worker's
 * would: the return line of every error in err.c's table, in the
 * envelope response.c writes; the methods of the route table; the
 * headers CORS exposes.  `kvapi --print-nginx` prints them as NAME=VALUE
 * lines, which the renderers (script/stack, Makefile.am) fill in for
 * @NAME@.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "extern.h"

/*
 * RETURN_<CODE>=return <status> '<body>';  A body in single quotes keeps
 * its backslashes and quotes escaped; nginx would read a '$' as a
 * variable, and no escape prevents that.
 */
static int
print_return(enum err e)
{
	const struct err_info *ei = err_info(e);
	char *text = resp_error_text(e);

	if (text == NULL || strchr(text, '$') != NULL) {
		fprintf(stderr, "kvapi: %s: no nginx return line for it\n",
		    ei->code);
		cJSON_free(text);
		return -1;
	}
	printf("RETURN_%s=return %d '", ei->code, ei->status);
	for (const char *p = text; *p; p++) {
		if (*p == '\'' || *p == '\\')
			putchar('\\');
		putchar(*p);
	}
	printf("';\n");
	cJSON_free(text);
	return 0;
}

int
nginx_print(void)
{
	char methods[ALLOW_MAX];

	for (int e = ERR_OK + 1; e < ERR__MAX; e++)
		if (print_return((enum err)e) == -1)
			return -1;
	router_methods(methods, sizeof methods);
	printf("ALLOW_ANY=%s\n", methods);
	printf("CORS_EXPOSE=%s\n", cors_expose);
	return 0;
}
