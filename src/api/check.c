/* check.c: POST /v1/check and GET /v1/accounts/{id}/entitlements, the two
 * reads a product makes at the moment of use. Both answer from memory. */
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "timeutil.h"

/* {"account":"acme","feature":"boards","quantity":1,"user":"u1"} */
void hr_api_check(hr_req *r) {
    json_object *doc = hr_req_json(r, 0), *q;
    if (!doc) return;
    const char *account = hr_api_str(doc, "account"), *feature = hr_api_str(doc, "feature");
    int64_t qty = 1;
    if (!json_object_is_type(doc, json_type_object) || !account || !feature) {
        hr_reply_error(r, 400, "invalid_request", "'account' and 'feature' (strings) are required");
        goto out;
    }
    if (json_object_object_get_ex(doc, "quantity", &q) && !json_object_is_type(q, json_type_null)) {
        if (!json_object_is_type(q, json_type_int) || json_object_get_int64(q) < 0) {
            hr_reply_error(r, 400, "invalid_request", "'quantity' must be an integer >= 0");
            goto out;
        }
        qty = json_object_get_int64(q);
    }
    if (hr_api_browser_ok(r, account, hr_api_str(doc, "user"), hr_api_str(doc, "ts"),
                          hr_api_str(doc, "user_hash"), 0))
        goto out;
    hr_verdict v;
    hr_engine_decide(r->app->engine, account, feature, qty, 0, &v, &r->out);
    hr_reply(r, 200);
    /* a premium feature denied is a signal for prompts and playbooks */
    if (v.reason == HR_REASON_NOT_IN_PLAN || v.reason == HR_REASON_TRIAL_EXPIRED)
        hr_engine_note_denied(r->app->engine, account, hr_api_str(doc, "user"), feature);
out:
    json_object_put(doc);
}

void hr_api_entitlements(hr_req *r) {
    const char *account = r->params[0];
    if (hr_api_browser_ok(r, account, hr_req_query(r, "user"), hr_req_query(r, "ts"),
                          hr_req_query(r, "user_hash"), 0))
        return;
    if (hr_engine_entitlements(r->app->engine, account, 0, &r->out))
        return hr_reply_error(r, 404, "not_found", "no account '%s'", account);
    hr_reply(r, 200);
}
