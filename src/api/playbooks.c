/* playbooks.c: sales playbooks over HTTP (playbooks/playbooks.h).
 *
 *   GET/PUT/DELETE /v1/playbooks[/{id}]      playbooks, validated as in headroom.yaml
 *   POST /v1/playbooks/{id}/dry-run          which accounts would fire now
 *   GET  /v1/accounts/{id}/signals           fired signals with their evidence, and the score
 *   GET  /v1/inbox?owner=&status=&limit=     the reps' tasks, hottest account first
 *   POST /v1/inbox/{id}/{action}             claim, complete, snooze, dismiss, reopen
 *
 * A playbook written over the API becomes part of the catalog: the
 * current catalog with that playbook set is validated and swapped in like
 * PUT /v1/catalog (and stored, so a restart keeps it). */
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "err.h"
#include "events/segment.h"
#include "playbooks/playbooks.h"
#include "timeutil.h"

static int no_playbooks(hr_req *r) {
    if (r->app->playbooks) return 0;
    hr_reply_error(r, 503, "unavailable", "playbooks are not running");
    return 1;
}

/* The catalog's "playbooks" object as json-c (caller puts), and the whole
 * catalog in *doc. */
static json_object *catalog_doc(hr_req *r, json_object **pbs) {
    hr_catalog *c = hr_engine_catalog(r->app->engine);
    char *text = hr_catalog_to_json(c);
    hr_catalog_release(c);
    json_object *doc = text ? json_tokener_parse(text) : NULL;
    free(text);
    if (!doc) return NULL;
    if (!json_object_object_get_ex(doc, "playbooks", pbs)) {
        *pbs = json_object_new_object();
        json_object_object_add(doc, "playbooks", *pbs);
    }
    return doc;
}

void hr_api_playbooks_list(hr_req *r) {
    json_object *pbs, *doc = catalog_doc(r, &pbs);
    if (!doc) return hr_reply_error(r, 500, "internal", "out of memory");
    hr_buf_puts(&r->out, "{\"playbooks\":[");
    int n = 0;
    json_object_object_foreach(pbs, k, v) {
        if (n++) hr_buf_putc(&r->out, ',');
        hr_buf_puts(&r->out, "{\"id\":");
        hr_buf_json_str(&r->out, k);
        hr_buf_puts(&r->out, ",\"definition\":");
        hr_buf_puts(&r->out, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        hr_buf_putc(&r->out, '}');
    }
    hr_buf_puts(&r->out, "]}");
    json_object_put(doc);
    hr_reply(r, 200);
}

static void playbook_reply(hr_req *r, int status) {
    json_object *pbs, *v, *doc = catalog_doc(r, &pbs);
    if (!doc) return hr_reply_error(r, 500, "internal", "out of memory");
    if (!json_object_object_get_ex(pbs, r->params[0], &v)) {
        json_object_put(doc);
        return hr_reply_error(r, 404, "not_found", "no playbook '%s'", r->params[0]);
    }
    hr_buf_puts(&r->out, "{\"id\":");
    hr_buf_json_str(&r->out, r->params[0]);
    hr_buf_puts(&r->out, ",\"definition\":");
    hr_buf_puts(&r->out, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    hr_buf_putc(&r->out, '}');
    json_object_put(doc);
    hr_reply(r, status);
}

void hr_api_playbook_get(hr_req *r) { playbook_reply(r, 200); }

/* Validates and swaps in doc; replies with the errors when it is refused. */
static int reload(hr_req *r, json_object *doc) {
    hr_err err = {0};
    hr_err_list errs = {0};
    size_t len;
    const char *text = json_object_to_json_string_length(doc, JSON_C_TO_STRING_PLAIN, &len);
    int rc = hr_app_reload(r->app, text, len, "catalog", 1, &err, &errs);
    if (rc) {
        /* positions would point into the generated catalog: messages only */
        hr_buf_puts(&r->out, "{\"error\":{\"code\":");
        hr_buf_json_str(&r->out, hr_err_code_str(rc));
        hr_buf_puts(&r->out, ",\"message\":");
        hr_buf_json_str(&r->out, err.message);
        hr_buf_puts(&r->out, ",\"details\":[");
        for (int i = 0; i < errs.count; i++) {
            if (i) hr_buf_putc(&r->out, ',');
            hr_buf_puts(&r->out, "{\"message\":");
            hr_buf_json_str(&r->out, errs.items[i].message);
            hr_buf_putc(&r->out, '}');
        }
        hr_buf_puts(&r->out, "]}}");
        hr_reply(r, hr_err_http_status(rc));
    }
    hr_catalog_errors_free(&errs);
    return rc;
}

void hr_api_playbook_put(hr_req *r) {
    json_object *body = hr_req_json(r, 0);
    if (!body) return;
    if (!json_object_is_type(body, json_type_object)) {
        json_object_put(body);
        return hr_reply_error(r, 400, "invalid_request", "the body is a playbook object");
    }
    json_object *pbs, *old, *doc = catalog_doc(r, &pbs);
    if (!doc) {
        json_object_put(body);
        return hr_reply_error(r, 500, "internal", "out of memory");
    }
    int existed = json_object_object_get_ex(pbs, r->params[0], &old);
    json_object_object_add(pbs, r->params[0], body); /* takes body */
    int rc = reload(r, doc);
    json_object_put(doc);
    if (!rc) playbook_reply(r, existed ? 200 : 201);
}

void hr_api_playbook_delete(hr_req *r) {
    json_object *pbs, *old, *doc = catalog_doc(r, &pbs);
    if (!doc) return hr_reply_error(r, 500, "internal", "out of memory");
    if (!json_object_object_get_ex(pbs, r->params[0], &old)) {
        json_object_put(doc);
        return hr_reply_error(r, 404, "not_found", "no playbook '%s'", r->params[0]);
    }
    json_object_object_del(pbs, r->params[0]);
    if (!json_object_object_length(pbs)) json_object_object_del(doc, "playbooks");
    if (!reload(r, doc)) hr_reply_empty(r, 204);
    json_object_put(doc);
}

static int int_query(hr_req *r, const char *name, int def, int max, int *out) {
    const char *s = hr_req_query(r, name);
    *out = def;
    if (!s) return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 1 || v > max) {
        hr_reply_error(r, 400, "invalid_request", "%s must be 1..%d", name, max);
        return -1;
    }
    *out = (int)v;
    return 0;
}

void hr_api_playbook_dry_run(hr_req *r) {
    hr_err err = {0};
    int limit;
    if (no_playbooks(r) || int_query(r, "limit", 100, 10000, &limit)) return;
    if (hr_playbooks_dry_run(r->app->playbooks, r->params[0], limit, 0, &r->out, &err))
        return hr_reply_err(r, &err);
    hr_reply(r, 200);
}

void hr_api_account_signals(hr_req *r) {
    hr_err err = {0};
    int limit;
    if (no_playbooks(r) || int_query(r, "limit", 100, 1000, &limit)) return;
    hr_buf tmp;
    hr_buf_init(&tmp);
    int missing = hr_engine_get_account(r->app->engine, r->params[0], &tmp);
    hr_buf_dispose(&tmp);
    if (missing) return hr_reply_error(r, 404, "not_found", "no account '%s'", r->params[0]);
    if (hr_playbooks_history(r->app->playbooks, r->params[0], limit, &r->out, &err))
        return hr_reply_err(r, &err);
    hr_reply(r, 200);
}

void hr_api_inbox(hr_req *r) {
    hr_err err = {0};
    int limit;
    if (no_playbooks(r) || int_query(r, "limit", 100, 1000, &limit)) return;
    if (hr_playbooks_inbox(r->app->playbooks, hr_req_query(r, "owner"), hr_req_query(r, "status"),
                           limit, 0, &r->out, &err))
        return hr_reply_err(r, &err);
    hr_reply(r, 200);
}

/* Body (optional): {"rep":"alice"} for claim, {"until":"2026-12-01T09:00:00Z"} for snooze. */
void hr_api_inbox_action(hr_req *r) {
    hr_err err = {0};
    if (no_playbooks(r)) return;
    json_object *body = hr_req_json(r, 1);
    if (!body) return;
    const char *rep = hr_api_str(body, "rep"), *until = hr_api_str(body, "until");
    int64_t until_ms = 0;
    if (until && hr_time_parse_ms(until, &until_ms)) {
        json_object_put(body);
        return hr_reply_error(r, 400, "invalid_request", "'until' must be an RFC 3339 time");
    }
    int rc = hr_playbooks_task_action(r->app->playbooks, r->params[0], r->params[1], rep,
                                      until_ms, 0, &r->out, &err);
    json_object_put(body);
    if (rc) return hr_reply_err(r, &err);
    hr_reply(r, 200);
}
