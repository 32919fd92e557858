/* accounts.c: /v1/accounts and its sub-resources (users, usage, overrides,
 * trials): JSON in, engine call, JSON out. Validation lives in the engine so
 * the embedded API and HTTP refuse the same things. */
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "playbooks/playbooks.h"
#include "err.h"
#include "map.h"
#include "timeutil.h"

static void put_or_patch(hr_req *r, int patch) {
    json_object *doc = hr_req_json(r, 0);
    if (!doc) return;
    hr_err err = {0};
    int created = 0;
    int rc = hr_engine_put_account(r->app->engine, r->params[0], doc, patch, &created, &r->out,
                                   &err);
    json_object_put(doc);
    if (rc) return hr_api_fail(r, rc, &err);
    hr_reply(r, created ? 201 : 200);
}

void hr_api_account_put(hr_req *r) { put_or_patch(r, 0); }
void hr_api_account_patch(hr_req *r) { put_or_patch(r, 1); }

void hr_api_account_get(hr_req *r) {
    if (hr_engine_get_account(r->app->engine, r->params[0], &r->out))
        return hr_reply_error(r, 404, "not_found", "no account '%s'", r->params[0]);
    hr_reply(r, 200);
}

void hr_api_account_delete(hr_req *r) {
    hr_err err = {0};
    int rc = hr_engine_delete_account(r->app->engine, r->params[0], &err);
    if (rc) return hr_api_fail(r, rc, &err);
    hr_reply_empty(r, 204);
}

void hr_api_accounts_list(hr_req *r) {
    const char *lim = hr_req_query(r, "limit"), *cursor = hr_req_query(r, "cursor");
    int limit = 100;
    if (lim) {
        char *end;
        long v = strtol(lim, &end, 10);
        if (*end || v < 1 || v > 1000)
            return hr_reply_error(r, 400, "invalid_request", "limit must be 1..1000");
        limit = (int)v;
    }
    const char *sort = hr_req_query(r, "sort");
    if (sort && strcmp(sort, "score") && strcmp(sort, "id"))
        return hr_reply_error(r, 400, "invalid_request", "sort is id or score");
    if (sort && !strcmp(sort, "score")) {
        /* the hottest accounts first, by their product-qualified score */
        if (!r->app->playbooks) return hr_reply_error(r, 503, "unavailable", "scores are not running");
        hr_playbooks_top(r->app->playbooks, limit, &r->out);
        return hr_reply(r, 200);
    }
    hr_engine_list_accounts(r->app->engine, cursor, limit, &r->out);
    hr_reply(r, 200);
}

void hr_api_users_list(hr_req *r) {
    if (hr_engine_list_users(r->app->engine, r->params[0], &r->out))
        return hr_reply_error(r, 404, "not_found", "no account '%s'", r->params[0]);
    hr_reply(r, 200);
}

void hr_api_user_put(hr_req *r) {
    json_object *doc = hr_req_json(r, 1);
    if (!doc) return;
    hr_err err = {0};
    int created = 0;
    int rc = hr_engine_put_user(r->app->engine, r->params[0], r->params[1], doc, &created,
                                &r->out, &err);
    json_object_put(doc);
    if (rc) return hr_api_fail(r, rc, &err);
    hr_reply(r, created ? 201 : 200);
}

void hr_api_user_get(hr_req *r) {
    if (hr_engine_get_user(r->app->engine, r->params[0], r->params[1], &r->out))
        return hr_reply_error(r, 404, "not_found", "no user '%s' in account '%s'", r->params[1],
                              r->params[0]);
    hr_reply(r, 200);
}

void hr_api_user_delete(hr_req *r) {
    hr_err err = {0};
    int rc = hr_engine_delete_user(r->app->engine, r->params[0], r->params[1], &err);
    if (rc) return hr_api_fail(r, rc, &err);
    hr_reply_empty(r, 204);
}

/* {"feature":"boards","set":3} or {"feature":"boards","increment":1} */
void hr_api_usage(hr_req *r) {
    json_object *doc = hr_req_json(r, 0), *v;
    if (!doc) return;
    const char *feature = NULL;
    int64_t value = 0;
    int replace = -1;
    if (!json_object_is_type(doc, json_type_object)) {
        hr_reply_error(r, 400, "invalid_request", "the body must be a JSON object");
        goto out;
    }
    json_object_object_foreach(doc, k, val) {
        if (!strcmp(k, "feature")) {
            feature = json_object_is_type(val, json_type_string) ? json_object_get_string(val) : NULL;
        } else if (!strcmp(k, "set") || !strcmp(k, "increment")) {
            if (replace != -1) {
                hr_reply_error(r, 400, "invalid_request", "give one of 'set' or 'increment'");
                goto out;
            }
            if (!json_object_is_type(val, json_type_int)) {
                hr_reply_error(r, 400, "invalid_request", "'%s' must be an integer", k);
                goto out;
            }
            replace = !strcmp(k, "set");
            value = json_object_get_int64(val);
        } else {
            hr_reply_error(r, 400, "invalid_request", "unknown field '%s'", k);
            goto out;
        }
    }
    (void)v;
    if (!feature) {
        hr_reply_error(r, 400, "invalid_request", "'feature' (a string) is required");
        goto out;
    }
    if (replace == -1) {
        hr_reply_error(r, 400, "invalid_request", "one of 'set' or 'increment' is required");
        goto out;
    }
    const char *idem = hr_req_header(r, "Idempotency-Key");
    if (idem && (!*idem || strlen(idem) > 255)) {
        hr_reply_error(r, 400, "invalid_request", "Idempotency-Key must be 1-255 characters");
        goto out;
    }
    hr_err err = {0};
    int status = 200;
    int rc = hr_engine_record_usage(r->app->engine, r->params[0], feature, value, replace, idem,
                                    hr_hash(r->body, r->body_len), 0, &status, &r->out, &err);
    if (rc)
        hr_api_fail(r, rc, &err);
    else
        hr_reply(r, status);
out:
    json_object_put(doc);
}

/* {"value":20,"expires_at":"2027-03-01T00:00:00Z"} */
void hr_api_override_put(hr_req *r) {
    json_object *doc = hr_req_json(r, 0), *val = NULL;
    if (!doc) return;
    int64_t exp = 0;
    if (!json_object_is_type(doc, json_type_object) ||
        !json_object_object_get_ex(doc, "value", &val)) {
        hr_reply_error(r, 400, "invalid_request", "'value' is required");
        goto out;
    }
    json_object_object_foreach(doc, k, v) {
        if (!strcmp(k, "value")) continue;
        if (!strcmp(k, "expires_at")) {
            if (json_object_is_type(v, json_type_null)) continue;
            if (!json_object_is_type(v, json_type_string) ||
                hr_time_parse(json_object_get_string(v), &exp)) {
                hr_reply_error(r, 400, "invalid_request",
                               "'expires_at' must be an RFC 3339 time or null");
                goto out;
            }
            continue;
        }
        hr_reply_error(r, 400, "invalid_request", "unknown field '%s'", k);
        goto out;
    }
    hr_err err = {0};
    int rc = hr_engine_put_override(r->app->engine, r->params[0], r->params[1], val, exp, &r->out,
                                    &err);
    if (rc)
        hr_api_fail(r, rc, &err);
    else
        hr_reply(r, 200);
out:
    json_object_put(doc);
}

void hr_api_override_delete(hr_req *r) {
    hr_err err = {0};
    int rc = hr_engine_delete_override(r->app->engine, r->params[0], r->params[1], &err);
    if (rc) return hr_api_fail(r, rc, &err);
    hr_reply_empty(r, 204);
}

/* The browser may start a feature trial too (a prompt's "Try it" button),
 * for its own verified account only. */
void hr_api_feature_trial(hr_req *r) {
    hr_err err = {0};
    if (hr_api_browser_ok(r, r->params[0], NULL, NULL, NULL, 0)) return;
    int rc = hr_engine_start_feature_trial(r->app->engine, r->params[0], r->params[1], 0,
                                           &r->out, &err);
    if (rc) return hr_api_fail(r, rc, &err);
    hr_reply(r, 201);
}

/* {"plan":"pro"} */
void hr_api_plan_trial(hr_req *r) {
    json_object *doc = hr_req_json(r, 0);
    if (!doc) return;
    const char *plan = hr_api_str(doc, "plan");
    if (!plan) {
        hr_reply_error(r, 400, "invalid_request", "'plan' (a string) is required");
    } else {
        hr_err err = {0};
        int rc = hr_engine_start_plan_trial(r->app->engine, r->params[0], plan, 0, &r->out, &err);
        if (rc)
            hr_api_fail(r, rc, &err);
        else
            hr_reply(r, 201);
    }
    json_object_put(doc);
}
