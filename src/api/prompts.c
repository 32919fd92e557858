/* prompts.c: the in-app prompt endpoints (campaigns/campaigns.h).
 *
 *   GET  /v1/prompts?user=&account=&page=&trigger=&locale=   what to show now
 *   POST /v1/prompts/{id}/events                            what happened to it
 *   GET  /v1/bootstrap?user=&account=&page=&locale=         decisions + prompts for a page
 *   GET  /v1/campaigns, GET /v1/campaigns/{id}/results      the PM's view
 *
 * The browser calls the first three with the publishable key and a
 * verified identity; the identity, not the query, decides whose state
 * (caps, dismissals) is read and written. */
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "campaigns/campaigns.h"
#include "timeutil.h"

/* The user and account a browser request is about: the verified identity
 * when there is one, else the query (secret key). */
static int who(hr_req *r, const char **user, const char **account) {
    const char *u = hr_req_query(r, "user"), *a = hr_req_query(r, "account");
    if (!a) a = hr_req_header(r, "X-Headroom-Account");
    if (!u) u = hr_req_header(r, "X-Headroom-User");
    if (!a) {
        hr_reply_error(r, 400, "invalid_request", "'account' is required");
        return -1;
    }
    if (hr_api_browser_ok(r, a, u, hr_req_query(r, "ts"), hr_req_query(r, "user_hash"), 0))
        return -1;
    *user = r->id.verified ? r->id.user : u;
    *account = r->id.verified ? r->id.account : a;
    return 0;
}

static int prompts_into(hr_req *r, const char *user, const char *account, const char *trigger) {
    hr_err err = {0};
    hr_prompt_req q = {account, user, trigger, hr_req_query(r, "page"), hr_req_query(r, "locale"), 0};
    int rc = hr_campaigns_prompts(r->app->campaigns, &q, &r->out, &err);
    if (rc) hr_reply_err(r, &err);
    return rc;
}

void hr_api_prompts(hr_req *r) {
    const char *user, *account;
    if (who(r, &user, &account)) return;
    hr_buf_puts(&r->out, "{\"prompts\":");
    if (prompts_into(r, user, account, hr_req_query(r, "trigger"))) return;
    hr_buf_putc(&r->out, '}');
    hr_reply(r, 200);
}

/* {"type":"dismiss","user":"u1","account":"acme"} */
void hr_api_prompt_event(hr_req *r) {
    json_object *doc = hr_req_json(r, 0);
    if (!doc) return;
    const char *type = hr_api_str(doc, "type"), *user = hr_api_str(doc, "user"),
               *account = hr_api_str(doc, "account");
    hr_err err = {0};
    if (!json_object_is_type(doc, json_type_object) || !type) {
        hr_reply_error(r, 400, "invalid_request", "'type' (string) is required");
        goto out;
    }
    if (!account) account = hr_req_header(r, "X-Headroom-Account");
    if (!user) user = hr_req_header(r, "X-Headroom-User");
    if (!account) {
        hr_reply_error(r, 400, "invalid_request", "'account' is required");
        goto out;
    }
    if (hr_api_browser_ok(r, account, user, hr_api_str(doc, "ts"), hr_api_str(doc, "user_hash"), 0))
        goto out;
    if (r->id.verified) user = r->id.user, account = r->id.account;
    if (hr_campaigns_event(r->app->campaigns, r->params[0], type, user, account, 0, &err)) {
        hr_reply_err(r, &err);
        goto out;
    }
    hr_buf_puts(&r->out, "{\"recorded\":true}");
    hr_reply(r, 200);
out:
    json_object_put(doc);
}

typedef struct feat_ctx {
    hr_req *r;
    const char *account;
    int n;
} feat_ctx;

static void one_feature(void *ud, const char *key) {
    feat_ctx *f = ud;
    if (f->n++) hr_buf_putc(&f->r->out, ',');
    hr_buf_json_key(&f->r->out, key);
    hr_engine_decide(f->r->app->engine, f->account, key, 1, 0, NULL, &f->r->out);
}

void hr_api_bootstrap(hr_req *r) {
    const char *user, *account;
    if (who(r, &user, &account)) return;
    char plan[128];
    if (hr_engine_account_plan(r->app->engine, account, plan, sizeof plan))
        return hr_reply_error(r, 404, "not_found", "no account '%s'", account);
    hr_buf_puts(&r->out, "{\"account\":");
    hr_buf_json_str(&r->out, account);
    hr_buf_puts(&r->out, ",\"user\":");
    hr_buf_json_str(&r->out, user);
    hr_buf_puts(&r->out, ",\"plan\":");
    hr_buf_json_str(&r->out, plan[0] ? plan : NULL);
    hr_buf_puts(&r->out, ",\"features\":{");
    feat_ctx f = {r, account, 0};
    hr_engine_each_feature(r->app->engine, one_feature, &f);
    hr_buf_puts(&r->out, "},\"prompts\":");
    /* ?prompts=0: decisions only (a refresh must not count as a show) */
    const char *want = hr_req_query(r, "prompts");
    if (want && !strcmp(want, "0"))
        hr_buf_puts(&r->out, "[]");
    else if (prompts_into(r, user, account, NULL))
        return;
    hr_buf_putc(&r->out, '}');
    hr_reply(r, 200);
}

void hr_api_campaigns_list(hr_req *r) {
    hr_campaigns_list(r->app->campaigns, 0, &r->out);
    hr_reply(r, 200);
}

void hr_api_campaign_results(hr_req *r) {
    hr_err err = {0};
    if (hr_campaigns_results(r->app->campaigns, r->params[0], &r->out, &err))
        return hr_reply_err(r, &err);
    hr_reply(r, 200);
}

/* A campaign's definition over the API: part of the catalog (section.c). */
void hr_api_campaign_get(hr_req *r) { hr_api_section_get(r, "campaigns", "campaign"); }
void hr_api_campaign_put(hr_req *r) { hr_api_section_put(r, "campaigns", "campaign"); }
void hr_api_campaign_delete(hr_req *r) { hr_api_section_delete(r, "campaigns", "campaign"); }
