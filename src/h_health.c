/*
 * GET /api/health: is the database reachable from this worker?  For load
 * balancers and monitors; it touches no user data.
 */
#include "config.h"

#include <cjson/cJSON.h>

#include "extern.h"

struct outcome
h_health(struct req *r)
{
	int up = db_ping() == DBR_OK;

	if ((r->data = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(r->data, "database", up ? "up" : "down") ==
		NULL)
		return outcome(ERR_INTERNAL);
	r->status = 200;
	return outcome(up ? ERR_OK : ERR_SERVICE_UNAVAILABLE);
}
