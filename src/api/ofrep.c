/* ofrep.c: the OpenFeature Remote Evaluation Protocol. Every catalog feature
 * is a boolean flag: true when the account may use one more of it (or
 * context.quantity more). context.targetingKey is the user; the account is
 * read from a context field (accountId by default). Errors follow the OFREP
 * spec (errorCode/errorDetails; 401/403 without a body), not our error
 * envelope, so unmodified OpenFeature providers understand them. */
#include <stdio.h>
#include <string.h>

#include "api_int.h"
#include "jsonbody.h"
#include "map.h"

typedef struct ctx {
    const char *user, *account;
    int64_t qty;
} ctx;

static void ofrep_error(hr_req *r, int status, const char *key, const char *code,
                        const char *details) {
    hr_buf_reset(&r->out);
    hr_buf_putc(&r->out, '{');
    if (key) {
        hr_buf_puts(&r->out, "\"key\":");
        hr_buf_json_str(&r->out, key);
        hr_buf_putc(&r->out, ',');
    }
    hr_buf_puts(&r->out, "\"errorCode\":");
    hr_buf_json_str(&r->out, code);
    hr_buf_puts(&r->out, ",\"errorDetails\":");
    hr_buf_json_str(&r->out, details);
    hr_buf_putc(&r->out, '}');
    hr_reply(r, status);
}

/* Parses {"context":{...}}; replies and returns NULL on error. */
static json_object *read_ctx(hr_req *r, const char *key, ctx *c) {
    json_object *doc = NULL, *cx = NULL, *v;
    if (r->body_len) {
        /* the strict decoder the rest of the API uses: trailing data, single
         * quotes or trailing commas are a PARSE_ERROR, not silently ignored */
        char msg[200], details[260];
        size_t off;
        int rc = hr_json_decode(r->body, r->body_len, &doc, &off, msg, sizeof msg);
        if (rc == HR_ENOMEM) {
            hr_reply_error(r, 500, "internal", "out of memory");
            return NULL;
        }
        if (rc || !json_object_is_type(doc, json_type_object)) {
            if (rc)
                snprintf(details, sizeof details, "malformed JSON at byte %zu: %s", off, msg);
            else
                snprintf(details, sizeof details, "the body must be a JSON object");
            json_object_put(doc);
            ofrep_error(r, 400, key, "PARSE_ERROR", details);
            return NULL;
        }
    } else {
        doc = json_object_new_object();
    }
    if (json_object_object_get_ex(doc, "context", &cx) && !json_object_is_type(cx, json_type_object)) {
        json_object_put(doc);
        ofrep_error(r, 400, key, "INVALID_CONTEXT", "context must be an object");
        return NULL;
    }
    c->user = hr_api_str(cx, "targetingKey");
    if (!c->user || !*c->user) {
        json_object_put(doc);
        ofrep_error(r, 400, key, "TARGETING_KEY_MISSING", "context.targetingKey (the user id) is required");
        return NULL;
    }
    c->account = hr_api_str(cx, r->app->ofrep_account_field);
    if (!c->account || !*c->account) {
        char msg[160];
        snprintf(msg, sizeof msg, "context.%s (the account id) is required",
                 r->app->ofrep_account_field);
        json_object_put(doc);
        ofrep_error(r, 400, key, "INVALID_CONTEXT", msg);
        return NULL;
    }
    c->qty = 1;
    if (json_object_object_get_ex(cx, "quantity", &v)) {
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0) {
            json_object_put(doc);
            ofrep_error(r, 400, key, "INVALID_CONTEXT", "context.quantity must be an integer >= 0");
            return NULL;
        }
        c->qty = json_object_get_int64(v);
    }
    if (hr_api_browser_ok(r, c->account, c->user, hr_api_str(cx, "ts"), hr_api_str(cx, "userHash"), 1)) {
        json_object_put(doc);
        return NULL;
    }
    return doc;
}

/* One evaluation: {"key":..,"value":..,"reason":..,"variant":..,"metadata":{..}} */
/* note_denied: record a denied premium feature (single evaluations only: a
 * bulk evaluation asks about every flag, which is not a user's attempt). */
static int eval_flag(hr_req *r, const char *key, const ctx *c, hr_buf *out, int note_denied) {
    hr_verdict v;
    hr_buf scratch;
    hr_buf_init(&scratch);
    /* the full decision also names the upgrade; we keep only its plan/add-on */
    hr_engine_decide(r->app->engine, c->account, key, c->qty, 0, &v, &scratch);
    if (v.reason == HR_REASON_UNKNOWN_FEATURE) {
        hr_buf_dispose(&scratch);
        return -1;
    }
    if (note_denied && (v.reason == HR_REASON_NOT_IN_PLAN || v.reason == HR_REASON_TRIAL_EXPIRED))
        hr_engine_note_denied(r->app->engine, c->account, c->user, key);
    hr_buf_puts(out, "{\"key\":");
    hr_buf_json_str(out, key);
    hr_buf_puts(out, v.allowed ? ",\"value\":true" : ",\"value\":false");
    hr_buf_puts(out, v.reason == HR_REASON_UNKNOWN_ACCOUNT ? ",\"reason\":\"DEFAULT\""
                                                            : ",\"reason\":\"TARGETING_MATCH\"");
    hr_buf_puts(out, ",\"variant\":");
    hr_buf_json_str(out, hr_reason_str(v.reason));
    hr_buf_puts(out, ",\"metadata\":{\"reason\":");
    hr_buf_json_str(out, hr_reason_str(v.reason));
    if (v.reason != HR_REASON_UNKNOWN_ACCOUNT) {
        json_object *d = json_tokener_parse(scratch.data), *x;
        if (json_object_object_get_ex(d, "type", &x) && strcmp(json_object_get_string(x), "boolean")) {
            hr_buf_puts(out, ",\"usage\":");
            hr_buf_i64(out, v.usage);
            if (v.limit != HR_UNLIMITED) {
                hr_buf_puts(out, ",\"limit\":");
                hr_buf_i64(out, v.limit);
                hr_buf_puts(out, ",\"remaining\":");
                hr_buf_i64(out, v.remaining);
            }
            hr_buf_puts(out, v.limit == HR_UNLIMITED ? ",\"unlimited\":true" : ",\"unlimited\":false");
        }
        json_object *up;
        if (json_object_object_get_ex(d, "upgrade", &up) && json_object_is_type(up, json_type_object)) {
            const char *kind = hr_api_str(up, "kind");
            hr_buf_puts(out, ",\"upgradeKind\":");
            hr_buf_json_str(out, kind);
            const char *target = hr_api_str(up, !strcmp(kind ? kind : "", "addon") ? "addon" : "plan");
            hr_buf_puts(out, ",\"upgradeTo\":");
            hr_buf_json_str(out, target);
            json_object *pd, *amt;
            if (json_object_object_get_ex(up, "price_delta", &pd) &&
                json_object_object_get_ex(pd, "amount", &amt)) {
                hr_buf_puts(out, ",\"upgradePriceDelta\":");
                hr_buf_i64(out, json_object_get_int64(amt));
            }
        }
        json_object_put(d);
    }
    hr_buf_puts(out, "}}");
    hr_buf_dispose(&scratch);
    return 0;
}

void hr_api_ofrep_flag(hr_req *r) {
    const char *key = r->params[0];
    ctx c;
    json_object *doc = read_ctx(r, key, &c);
    if (!doc) return;
    if (eval_flag(r, key, &c, &r->out, 1)) {
        char msg[300];
        snprintf(msg, sizeof msg, "flag '%s' is not a feature in the catalog", key);
        ofrep_error(r, 404, key, "FLAG_NOT_FOUND", msg);
    } else {
        hr_reply(r, 200);
    }
    json_object_put(doc);
}

typedef struct bulk {
    hr_req *r;
    const ctx *c;
    int n;
} bulk;

static void bulk_one(void *ud, const char *key) {
    bulk *b = ud;
    if (b->n++) hr_buf_putc(&b->r->out, ',');
    eval_flag(b->r, key, b->c, &b->r->out, 0);
}

void hr_api_ofrep_bulk(hr_req *r) {
    ctx c;
    json_object *doc = read_ctx(r, NULL, &c);
    if (!doc) return;
    bulk b = {r, &c, 0};
    hr_buf_puts(&r->out, "{\"flags\":[");
    hr_engine_each_feature(r->app->engine, bulk_one, &b);
    hr_buf_puts(&r->out, "]}");
    json_object_put(doc);
    /* ETag over the evaluated flags: a poller re-sending it gets a 304 */
    snprintf(r->etag, sizeof r->etag, "\"%016llx\"",
             (unsigned long long)hr_hash(r->out.data ? r->out.data : "", r->out.len));
    const char *inm = hr_req_header(r, "If-None-Match");
    if (inm && strstr(inm, r->etag)) {
        hr_buf_reset(&r->out);
        hr_reply_empty(r, 304);
        return;
    }
    hr_reply(r, 200);
}

void hr_api_ofrep_config(hr_req *r) {
    hr_buf_puts(&r->out, "{\"name\":\"headroom\",\"capabilities\":{\"cacheInvalidation\":"
                         "{\"polling\":{\"enabled\":true,\"minPollingIntervalMs\":");
    hr_buf_i64(&r->out, r->app->ofrep_poll_ms);
    hr_buf_puts(&r->out, "}},\"flagEvaluation\":{\"supportedTypes\":[\"boolean\"]}}}");
    hr_reply(r, 200);
}
