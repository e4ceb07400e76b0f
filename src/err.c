/*
 * The error table: every error the API can answer, with its HTTP status,
 * its code and its message, word for word from the contract (API.md).
 * Handlers and the router name an error; only response.c spells it out,
 * and nginx's own error pages are generated from the same table
 * (nginx.c).  Beside it: the one mapping of database results to errors,
 * the outcome a handler returns, and the reason phrases of the statuses.
 */
#include "config.h"

#include "extern.h"

static const struct err_info errs[ERR__MAX] = {
    [ERR_OK] = {200, "OK", ""},
    [ERR_INVALID_REQUEST] = {400, "INVALID_REQUEST",
	"Invalid request. Please provide all required fields: username, "
	"email, password, full_name."},
    [ERR_INVALID_PASSWORD] = {400, "INVALID_PASSWORD",
	"The provided password does not meet the requirements. Password "
	"must be 8 to 72 bytes long."},
    [ERR_INVALID_AGE] = {400, "INVALID_AGE",
	"Invalid age value. Age must be a positive integer."},
    [ERR_INVALID_GENDER] = {400, "INVALID_GENDER",
	"Invalid gender value. Gender must be a non-empty string of at "
	"most 32 characters."},
    [ERR_USERNAME_EXISTS] = {409, "USERNAME_EXISTS",
	"The provided username is already taken. Please choose a "
	"different username."},
    [ERR_EMAIL_EXISTS] = {409, "EMAIL_EXISTS",
	"The provided email is already registered. Please use a "
	"different email address."},
    [ERR_MISSING_FIELDS] = {400, "MISSING_FIELDS",
	"Missing fields. Please provide both username and password."},
    [ERR_INVALID_CREDENTIALS] = {401, "INVALID_CREDENTIALS",
	"Invalid credentials. The provided username or password is "
	"incorrect."},
    [ERR_INVALID_TOKEN] = {401, "INVALID_TOKEN",
	"Invalid access token provided."},
    [ERR_INVALID_KEY] = {400, "INVALID_KEY",
	"The provided key is not valid or missing."},
    [ERR_INVALID_VALUE] = {400, "INVALID_VALUE",
	"The provided value is not valid or missing."},
    [ERR_KEY_EXISTS] = {409, "KEY_EXISTS",
	"The provided key already exists in the database. To update an "
	"existing key, use the update API."},
    [ERR_KEY_NOT_FOUND] = {404, "KEY_NOT_FOUND",
	"The provided key does not exist in the database."},
    [ERR_INVALID_JSON] = {400, "INVALID_JSON",
	"The request body is not valid JSON."},
    [ERR_UNSUPPORTED_MEDIA_TYPE] = {415, "UNSUPPORTED_MEDIA_TYPE",
	"Content-Type must be application/json."},
    [ERR_PAYLOAD_TOO_LARGE] = {413, "PAYLOAD_TOO_LARGE",
	"The request body is too large."},
    [ERR_BAD_REQUEST] = {400, "BAD_REQUEST",
	"The request could not be parsed."},
    [ERR_NOT_FOUND] = {404, "NOT_FOUND",
	"The requested resource does not exist."},
    [ERR_METHOD_NOT_ALLOWED] = {405, "METHOD_NOT_ALLOWED",
	"The method is not allowed for this resource."},
    [ERR_TOO_MANY_REQUESTS] = {429, "TOO_MANY_REQUESTS",
	"Too many requests. Please try again later."},
    [ERR_PRECONDITION_FAILED] = {412, "PRECONDITION_FAILED",
	"The resource has changed since it was read."},
    [ERR_INVALID_QUERY] = {400, "INVALID_QUERY",
	"The query parameters are not valid."},
    [ERR_INVALID_TTL] = {400, "INVALID_TTL",
	"The ttl must be an integer number of seconds between 1 and "
	"31536000."},
    [ERR_QUOTA_EXCEEDED] = {507, "QUOTA_EXCEEDED",
	"The storage quota for this account is exceeded."},
    [ERR_CHANGES_EXPIRED] = {410, "CHANGES_EXPIRED",
	"The requested revision is no longer available. Please resync."},
    [ERR_INVALID_BATCH] = {400, "INVALID_BATCH",
	"The batch operations are not valid."},
    [ERR_INVALID_GRANT] = {401, "INVALID_GRANT",
	"The refresh token is not valid."},
    [ERR_UNSUPPORTED_GRANT_TYPE] = {400, "UNSUPPORTED_GRANT_TYPE",
	"The grant type is not supported."},
    [ERR_INVALID_PROFILE] = {400, "INVALID_PROFILE",
	"The profile fields are not valid."},
    [ERR_MISSING_PASSWORDS] = {400, "MISSING_PASSWORDS",
	"Please provide both current_password and new_password."},
    [ERR_SESSION_NOT_FOUND] = {404, "SESSION_NOT_FOUND",
	"The session does not exist."},
    [ERR_ACCOUNT_DISABLED] = {403, "ACCOUNT_DISABLED",
	"This account is disabled."},
    [ERR_ACCOUNT_LOCKED] = {429, "ACCOUNT_LOCKED",
	"Too many failed login attempts. Please try again later."},
    [ERR_SERVICE_UNAVAILABLE] = {503, "SERVICE_UNAVAILABLE",
	"The service is temporarily unavailable. Please try again later."},
    [ERR_INTERNAL] = {500, "INTERNAL_SERVER_ERROR",
	"An internal server error occurred. Please try again later."},
};

const struct err_info *
err_info(enum err e)
{
	if ((unsigned)e >= ERR__MAX)
		e = ERR_INTERNAL;
	return &errs[e];
}

/*
 * The one mapping of database results to errors.  "No row" means
 * something else to each statement (no such key, no such user), so the
 * caller says what DBR_NONE answers.
 */
enum err
err_of_db(enum dbr d, enum err none)
{
	static const enum err of[DBR__MAX] = {
	    [DBR_OK] = ERR_OK,
	    [DBR_NONE] = ERR_INTERNAL, /* the caller's `none` instead */
	    [DBR_NOAUTH] = ERR_INVALID_TOKEN,
	    [DBR_DUP_USERNAME] = ERR_USERNAME_EXISTS,
	    [DBR_DUP_EMAIL] = ERR_EMAIL_EXISTS,
	    [DBR_DISABLED] = ERR_ACCOUNT_DISABLED,
	    [DBR_QUOTA] = ERR_QUOTA_EXCEEDED,
	    [DBR_REFUSED] = ERR_INTERNAL, /* the caller's own reason */
	    [DBR_CONFLICT] = ERR_SERVICE_UNAVAILABLE,
	    [DBR_DOWN] = ERR_SERVICE_UNAVAILABLE,
	    [DBR_ERR] = ERR_INTERNAL,
	};

	if (d == DBR_NONE)
		return none;
	return (unsigned)d < DBR__MAX ? of[d] : ERR_INTERNAL;
}

/* A handler's outcome when no statement of it checked the token. */
struct outcome
outcome(enum err e)
{
	struct outcome o = {e, 0};

	return o;
}

/* The outcome of a statement that checked the request's token. */
struct outcome
outcome_db(enum dbr d, enum err none)
{
	struct outcome o = {err_of_db(d, none), 1};

	return o;
}

/* The reason phrase for the CGI Status line. */
const char *
http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 503: return "Service Unavailable";
	case 507: return "Insufficient Storage";
	default: return "Internal Server Error";
	}
}
