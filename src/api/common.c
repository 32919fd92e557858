/* common.c: identity checks and error replies shared by the handlers. */
#include <stdio.h>
#include <string.h>

#include "api_int.h"
#include "err.h"
#include "timeutil.h"

const char *hr_api_str(json_object *o, const char *key) {
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v)) return NULL;
    if (json_object_is_type(v, json_type_string)) return json_object_get_string(v);
    if (json_object_is_type(v, json_type_int)) return json_object_get_string(v);
    return NULL;
}

void hr_api_fail(hr_req *r, int rc, const hr_err *err) {
    if (err && err->code) {
        hr_reply_err(r, err);
        return;
    }
    hr_reply_error(r, hr_err_http_status(rc), hr_err_code_str(rc), "%s", hr_strerror(rc));
}

int hr_api_browser_ok(hr_req *r, const char *account, const char *user, const char *ts,
                      const char *hash, int bare) {
    if (r->key == HR_KEY_SECRET) return 0;
    const char *hu = hr_req_header(r, "X-Headroom-User");
    const char *ha = hr_req_header(r, "X-Headroom-Account");
    /* The identity is the headers' when given, else the request's own
     * fields; the request may then only name that user and account. */
    const char *id_user = hu ? hu : user;
    const char *id_acct = ha ? ha : account;
    if (!ts) ts = hr_req_header(r, "X-Headroom-Ts");
    if (!hash) hash = hr_req_header(r, "X-Headroom-User-Hash");
    const char *why = NULL;
    if (hr_identity_verify(&r->app->auth, id_user, id_acct, ts, hash, hr_time_now(), &why)) {
        if (bare)
            hr_reply_empty(r, 401);
        else
            hr_reply_error(r, 401, "unauthorized", "publishable key: %s", why);
        return -1;
    }
    if ((account && strcmp(account, id_acct)) || (user && strcmp(user, id_user))) {
        if (bare)
            hr_reply_empty(r, 403);
        else
            hr_reply_error(r, 403, "forbidden",
                           "the verified identity is user '%s' of account '%s'", id_user,
                           id_acct);
        return -1;
    }
    snprintf(r->id.user, sizeof r->id.user, "%s", id_user);
    snprintf(r->id.account, sizeof r->id.account, "%s", id_acct);
    r->id.verified = 1;
    return 0;
}
