/* http.h: one HTTP request as the API handlers see it, and the replies.
 *
 * The server (server.c) reads the whole body, authenticates, matches the
 * route and calls the handler once; the handler answers with exactly one
 * hr_reply_* call. Everything in hr_req lives until the response is sent. */
#ifndef HR_HTTP_H
#define HR_HTTP_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "headroom.h"

typedef struct hr_app hr_app;
struct MHD_Connection;

typedef enum { HR_KEY_NONE, HR_KEY_SECRET, HR_KEY_PUBLISHABLE } hr_key_kind;

/* A browser identity, verified by user_hash (auth.h). */
typedef struct hr_identity {
    char user[129], account[129];
    int verified;
} hr_identity;

#define HR_MAX_PARAMS 4

typedef struct hr_req {
    hr_app *app;
    struct MHD_Connection *conn;
    const char *method, *path;
    int route;                /* index in routes.def, -1 if none */
    const char *params[HR_MAX_PARAMS]; /* decoded path segments, owned by req */
    int nparams;
    char *body;               /* NUL-terminated */
    size_t body_len, body_cap;
    int too_big;
    hr_key_kind key;
    hr_identity id;
    int status;               /* of the reply, for metrics */
    hr_buf out;
    char etag[40];            /* set by a handler to send an ETag */
    char cache[48];           /* set by a handler to send Cache-Control */
    char allow[48];           /* methods for the Allow header of a 405 */
    char *pathbuf;
    uint64_t t0_ns;
} hr_req;

const char *hr_req_header(hr_req *r, const char *name);
const char *hr_req_query(hr_req *r, const char *name);
/* Parses the body as JSON. On failure replies 400 naming the byte offset
 * and returns NULL. Caller puts the object with json_object_put. An empty
 * body gives an empty object when empty_ok. */
json_object *hr_req_json(hr_req *r, int empty_ok);

/* Replies with r->out as the JSON body. */
void hr_reply(hr_req *r, int status);
/* {"error":{"code":..,"message":..}} */
void hr_reply_error(hr_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* From an hr_err: status and code from the error table. */
void hr_reply_err(hr_req *r, const hr_err *err);
/* Replies with r->out under another content type (Prometheus text). */
void hr_reply_type(hr_req *r, int status, const char *ctype);
/* Status with no body (OFREP 401/403, 304). */
void hr_reply_empty(hr_req *r, int status);

#endif
