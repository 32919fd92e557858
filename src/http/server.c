/* server.c: libmicrohttpd glue: body accumulation, routing, key checks and
 * replies.
 *
 * MHD calls the access handler several times per request: first with the
 * headers, then with body chunks, then once more with nothing left. We only
 * answer on that last call (answering earlier makes MHD drop keep-alive),
 * except when the declared body is already too large. */
#include "server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "api/app.h"
#include "err.h"
#include "http.h"
#include "jsonbody.h"

struct hr_server {
    struct MHD_Daemon *d;
    hr_app *app;
    int port;
};

const hr_route hr_routes[HR_ROUTE_COUNT] = {
#define ROUTE(m, p, h, a) {#m, p, #h, hr_api_##h, HR_ACCESS_##a},
#include "api/routes.def"
#undef ROUTE
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- request accessors and replies ------------------------------------- */

const char *hr_req_header(hr_req *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *hr_req_query(hr_req *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* The Origin when it may read our answers (--cors / HEADROOM_CORS_ORIGINS:
 * a comma-separated list, or "*"), else NULL. */
static const char *cors_origin(hr_req *r) {
    const char *allowed = r->app->cors_origins, *o = hr_req_header(r, "Origin");
    if (!allowed || !*allowed || !o || !*o) return NULL;
    if (!strcmp(allowed, "*")) return o;
    size_t n = strlen(o);
    for (const char *p = allowed; *p;) {
        size_t len = strcspn(p, ",");
        const char *q = p;
        size_t l = len;
        while (l && *q == ' ') q++, l--;
        while (l && q[l - 1] == ' ') l--;
        if (l == n && !strncmp(q, o, n)) return o;
        p += len;
        if (*p == ',') p++;
    }
    return NULL;
}

static void cors_headers(hr_req *r, struct MHD_Response *resp) {
    const char *o = cors_origin(r);
    if (!o) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", o);
    MHD_add_response_header(resp, "Vary", "Origin");
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", "ETag");
}

static void send_reply(hr_req *r, int status, char *body, size_t len, const char *ctype) {
    if (r->status) { /* a handler replied twice: keep the first */
        free(body);
        return;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return;
    }
    if (ctype) MHD_add_response_header(resp, "Content-Type", ctype);
    cors_headers(r, resp);
    if (r->cache[0]) MHD_add_response_header(resp, "Cache-Control", r->cache);
    if (r->etag[0]) MHD_add_response_header(resp, "ETag", r->etag);
    if (r->allow[0]) MHD_add_response_header(resp, "Allow", r->allow);
    MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->status = status;
}

void hr_reply(hr_req *r, int status) {
    if (hr_buf_failed(&r->out)) {
        hr_buf_reset(&r->out);
        r->out.failed = 0;
        hr_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    size_t len;
    char *body = hr_buf_steal(&r->out, &len);
    send_reply(r, status, body, len, "application/json");
}

void hr_reply_type(hr_req *r, int status, const char *ctype) {
    size_t len;
    char *body = hr_buf_steal(&r->out, &len);
    send_reply(r, status, body, len, ctype);
}

void hr_reply_empty(hr_req *r, int status) { send_reply(r, status, calloc(1, 1), 0, NULL); }

void hr_reply_error(hr_req *r, int status, const char *code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hr_buf_reset(&r->out);
    hr_buf_puts(&r->out, "{\"error\":{\"code\":");
    hr_buf_json_str(&r->out, code);
    hr_buf_puts(&r->out, ",\"message\":");
    hr_buf_json_str(&r->out, msg);
    hr_buf_puts(&r->out, "}}");
    hr_reply(r, status);
}

void hr_reply_err(hr_req *r, const hr_err *err) {
    int code = err->code ? err->code : HR_EINTERNAL;
    hr_reply_error(r, hr_err_http_status(code), hr_err_code_str(code), "%s",
                   err->message[0] ? err->message : hr_strerror(code));
}

json_object *hr_req_json(hr_req *r, int empty_ok) {
    size_t i = 0;
    while (i < r->body_len && strchr(" \t\r\n", r->body[i])) i++;
    if (i == r->body_len) {
        if (empty_ok) return json_object_new_object();
        hr_reply_error(r, 400, "invalid_request", "a JSON body is required");
        return NULL;
    }
    json_object *o = NULL;
    size_t off = 0;
    char msg[160];
    int rc = hr_json_decode(r->body, r->body_len, &o, &off, msg, sizeof msg);
    if (rc == HR_ENOMEM) {
        hr_reply_error(r, 500, "internal", "out of memory");
        return NULL;
    }
    if (rc) {
        hr_reply_error(r, 400, "malformed_json", "malformed JSON at byte %zu: %s", off, msg);
        return NULL;
    }
    return o;
}

/* ---- routing ----------------------------------------------------------- */

/* Matches path against pattern; fills params (pointers into seg). */
static int match(const char *pattern, char *path, hr_req *r) {
    const char *p = pattern;
    char *s = path;
    int n = 0;
    while (*p && *s) {
        if (*p != '/' || *s != '/') return 0;
        p++, s++;
        const char *pe = strchr(p, '/');
        char *se = strchr(s, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p);
        size_t sl = se ? (size_t)(se - s) : strlen(s);
        if (pl == 2 && p[0] == '{' && p[1] == '}') {
            if (!sl || n == HR_MAX_PARAMS) return 0;
            r->params[n++] = s;
        } else if (pl != sl || strncmp(p, s, pl)) {
            return 0;
        }
        p += pl;
        s += sl;
    }
    if (*p || (*s && strcmp(s, "/"))) return 0;
    r->nparams = n;
    return 1;
}

static int find_route(hr_req *r, int *path_matched) {
    *path_matched = 0;
    size_t n = strlen(r->path);
    char *tmp = malloc(n + 1);
    if (!tmp) return -1;
    for (int i = 0; i < HR_ROUTE_COUNT; i++) {
        memcpy(tmp, r->path, n + 1);
        if (!match(hr_routes[i].pattern, tmp, r)) continue;
        if (strcmp(hr_routes[i].method, r->method)) {
            /* remember for the Allow header of a 405 */
            size_t al = strlen(r->allow);
            if (al + strlen(hr_routes[i].method) + 3 < sizeof r->allow)
                snprintf(r->allow + al, sizeof r->allow - al, "%s%s", al ? ", " : "",
                         hr_routes[i].method);
            *path_matched = 1;
            continue;
        }
        r->allow[0] = 0;
        /* params point into pathbuf: cut the segments there */
        free(r->pathbuf);
        r->pathbuf = tmp;
        for (int k = 0; k < r->nparams; k++) {
            char *e = strchr(r->params[k], '/');
            if (e) *e = 0;
        }
        return i;
    }
    free(tmp);
    return -1;
}

static hr_key_kind key_of(hr_req *r) {
    const char *h = hr_req_header(r, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return HR_KEY_NONE;
    const char *k = h + 7;
    while (*k == ' ') k++;
    if (hr_key_equal(k, r->app->auth.secret_key)) return HR_KEY_SECRET;
    if (hr_key_equal(k, r->app->auth.publishable_key)) return HR_KEY_PUBLISHABLE;
    return HR_KEY_NONE;
}

/* application/json or any +json type; for /v1/import, JSON lines. */
static int has_json_type(hr_req *r, int lines) {
    const char *ct = hr_req_header(r, "Content-Type");
    if (!ct) return 0;
    while (*ct == ' ') ct++;
    size_t n = strcspn(ct, "; ");
    if (lines) return n == 20 && !strncasecmp(ct, "application/x-ndjson", 20);
    return (n == 16 && !strncasecmp(ct, "application/json", 16)) ||
           (n > 5 && !strncasecmp(ct + n - 5, "+json", 5));
}

/* A CORS preflight for a browser route from an allowed origin: 204 with
 * what the SDK sends. */
static int preflight(hr_req *r) {
    if (strcmp(r->method, "OPTIONS") || !hr_req_header(r, "Access-Control-Request-Method"))
        return 0;
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) return 1;
    if (cors_origin(r)) {
        cors_headers(r, resp);
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type, X-Headroom-User, X-Headroom-Account, "
                                "X-Headroom-Ts, X-Headroom-User-Hash, If-None-Match");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    }
    MHD_queue_response(r->conn, cors_origin(r) ? 204 : 403, resp);
    MHD_destroy_response(resp);
    r->status = cors_origin(r) ? 204 : 403;
    return 1;
}

static void dispatch(hr_req *r) {
    int path_matched;
    if (preflight(r)) return;
    r->route = find_route(r, &path_matched);
    if (r->route < 0) {
        if (path_matched) {
            r->route = -1;
            hr_reply_error(r, 405, "method_not_allowed", "%s is not allowed on %s", r->method,
                           r->path);
        } else {
            hr_reply_error(r, 404, "not_found", "no such endpoint: %s %s", r->method, r->path);
        }
        return;
    }
    const hr_route *rt = &hr_routes[r->route];
    int ofrep = rt->access == HR_ACCESS_OFREP;
    if (r->too_big) {
        hr_reply_error(r, 413, "payload_too_large", "request body exceeds %zu bytes",
                       r->app->max_body);
        return;
    }
    if (rt->access == HR_ACCESS_WRITE) {
        r->key = key_of(r); /* the handler also takes the write key */
    } else if (rt->access != HR_ACCESS_PUBLIC) {
        r->key = key_of(r);
        if (r->key == HR_KEY_NONE) {
            if (ofrep) return hr_reply_empty(r, 401);
            hr_reply_error(r, 401, "unauthorized", "missing or invalid API key: send "
                           "'Authorization: Bearer sk_...' (or pk_... where allowed)");
            return;
        }
        if (rt->access == HR_ACCESS_SECRET && r->key != HR_KEY_SECRET) {
            hr_reply_error(r, 403, "forbidden", "this endpoint needs the secret key");
            return;
        }
    }
    int lines = rt->handler == hr_api_seg_import;
    if (r->body_len && !has_json_type(r, lines)) {
        hr_reply_error(r, 415, "unsupported_media_type", "Content-Type must be %s",
                       lines ? "application/x-ndjson" : "application/json");
        return;
    }
    rt->handler(r);
    if (!r->status) hr_reply_error(r, 500, "internal", "handler did not reply");
    /* a write to an account: its playbook signals may have changed */
    if (r->status >= 200 && r->status < 300 && strcmp(r->method, "GET") && r->nparams &&
        !strncmp(rt->pattern, "/v1/accounts/{}", 15))
        hr_app_account_changed(r->app, r->params[0]);
}

/* ---- MHD callbacks ----------------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls) {
    hr_server *s = cls;
    hr_req *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        r->app = s->app;
        r->conn = c;
        r->method = method;
        r->path = url;
        r->route = -1;
        r->t0_ns = now_ns();
        hr_buf_init(&r->out);
        *con_cls = r;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->app->max_body) {
            r->too_big = 1;
            int pm;
            r->route = find_route(r, &pm);
            hr_reply_error(r, 413, "payload_too_large", "request body exceeds %zu bytes",
                           s->app->max_body);
            return MHD_YES;
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_big && r->body_len + *upload_size > s->app->max_body) r->too_big = 1;
        if (!r->too_big) {
            if (r->body_len + *upload_size + 1 > r->body_cap) {
                size_t cap = r->body_cap ? r->body_cap : 1024;
                while (cap < r->body_len + *upload_size + 1) cap *= 2;
                char *nb = realloc(r->body, cap);
                if (!nb) return MHD_NO;
                r->body = nb;
                r->body_cap = cap;
            }
            memcpy(r->body + r->body_len, upload, *upload_size);
            r->body_len += *upload_size;
            r->body[r->body_len] = 0;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->status) return MHD_YES; /* already answered (413 on Content-Length) */
    if (!r->body) r->body = calloc(1, 1);
    dispatch(r);
    return r->status ? MHD_YES : MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    hr_server *s = cls;
    hr_req *r = *con_cls;
    if (!r) return;
    if (r->status)
        hr_metrics_observe(&s->app->metrics, r->route, r->status,
                           (now_ns() - r->t0_ns) / 1000);
    free(r->body);
    free(r->pathbuf);
    hr_buf_dispose(&r->out);
    free(r);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls, (void)fmt, (void)ap; /* MHD's own chatter; errors reach clients as replies */
}

int hr_server_start(hr_app *app, const char *host, int port, int threads, hr_server **out,
                    hr_err *err) {
    hr_server *s = calloc(1, sizeof *s);
    if (!s) return hr_err_set(err, HR_ENOMEM, "out of memory");
    s->app = app;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        free(s);
        return hr_err_set(err, HR_EINVAL, "listen address '%s' is not an IPv4 address", host);
    }
    if (threads < 1) threads = 1;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    /* One thread: MHD's own polling thread serves, no pool (a pool of one
     * only adds a hand-off). The per-connection pool holds headers only
     * (bodies are copied out), and MHD clears it on every request: 16 KiB
     * instead of the default 32 halves that work. */
    s->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(threads > 1 ? threads : 0),
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)10000,
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                            MHD_OPTION_END);
    if (!s->d) {
        free(s);
        return hr_err_set(err, HR_EIO, "cannot listen on %s:%d (address in use?)", host, port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : port;
    *out = s;
    return 0;
}

int hr_server_port(const hr_server *s) { return s->port; }

void hr_server_stop(hr_server *s) {
    if (!s) return;
    /* Quiesce first: no new connections while in-flight requests finish. */
    MHD_socket fd = MHD_quiesce_daemon(s->d);
    MHD_stop_daemon(s->d);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    free(s);
}
