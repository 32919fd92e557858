/* static.c: the browser SDK (/sdk/headroom.js, compiled into the binary so
 * the script always matches the server) and, with --demo-app, the demo host
 * app under /demo/ with a demo-only identity signer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "map.h"
#include "timeutil.h"

/* sdk_js.c, generated from sdk/js/headroom.js at build time */
extern const unsigned char hr_sdk_js[];
extern const size_t hr_sdk_js_len;

void hr_api_sdk_js(hr_req *r) {
    /* the script changes with the server: revalidate, cheaply */
    snprintf(r->etag, sizeof r->etag, "\"%016llx\"",
             (unsigned long long)hr_hash((const char *)hr_sdk_js, hr_sdk_js_len));
    snprintf(r->cache, sizeof r->cache, "public, max-age=300");
    const char *inm = hr_req_header(r, "If-None-Match");
    if (inm && !strcmp(inm, r->etag)) return hr_reply_empty(r, 304);
    hr_buf_append(&r->out, hr_sdk_js, hr_sdk_js_len);
    hr_reply_type(r, 200, "application/javascript; charset=utf-8");
}

static const char *ctype_of(const char *path) {
    const char *dot = strrchr(path, '.');
    if (!dot) return "application/octet-stream";
    if (!strcmp(dot, ".html")) return "text/html; charset=utf-8";
    if (!strcmp(dot, ".js")) return "application/javascript; charset=utf-8";
    if (!strcmp(dot, ".css")) return "text/css; charset=utf-8";
    if (!strcmp(dot, ".svg")) return "image/svg+xml";
    if (!strcmp(dot, ".png")) return "image/png";
    if (!strcmp(dot, ".json")) return "application/json";
    return "application/octet-stream";
}

/* Only plain names: letters, digits, '-', '_' and one '.' run; no '..'. */
static int safe_name(const char *s) {
    if (!*s || *s == '.' || strstr(s, "..")) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

static void demo_serve(hr_req *r, const char *name) {
    const char *dir = r->app->demo_dir;
    char path[4096];
    if (!dir) return hr_reply_error(r, 404, "not_found", "the demo app is off (--demo-app DIR)");
    if (!safe_name(name)) return hr_reply_error(r, 404, "not_found", "no such file");
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return hr_reply_error(r, 404, "not_found", "no such file '%s'", name);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) hr_buf_append(&r->out, buf, n);
    fclose(f);
    hr_reply_type(r, 200, ctype_of(name));
}

void hr_api_demo_index(hr_req *r) { demo_serve(r, "index.html"); }
void hr_api_demo_file(hr_req *r) { demo_serve(r, r->params[0]); }

/* What a host app's backend does for its pages: sign the identity. Only
 * with --demo-app, which is never for production. */
void hr_api_demo_identity(hr_req *r) {
    const char *user = hr_req_query(r, "user"), *account = hr_req_query(r, "account");
    const hr_auth_cfg *a = &r->app->auth;
    if (!r->app->demo_dir) return hr_reply_error(r, 404, "not_found", "the demo app is off");
    if (!user || !account) return hr_reply_error(r, 400, "invalid_request", "user and account are required");
    if (!a->identity_secrets[0] || !a->publishable_key)
        return hr_reply_error(r, 503, "unavailable",
                              "the demo needs HEADROOM_IDENTITY_SECRET and HEADROOM_PUBLISHABLE_KEY");
    char hash[65];
    int64_t ts = hr_time_now();
    hr_identity_hash(a->identity_secrets[0], user, account, ts, hash);
    hr_buf_puts(&r->out, "{\"user\":");
    hr_buf_json_str(&r->out, user);
    hr_buf_puts(&r->out, ",\"account\":");
    hr_buf_json_str(&r->out, account);
    hr_buf_printf(&r->out, ",\"ts\":%lld,\"user_hash\":\"%s\",\"key\":", (long long)ts, hash);
    hr_buf_json_str(&r->out, a->publishable_key);
    hr_buf_putc(&r->out, '}');
    hr_reply(r, 200);
}
