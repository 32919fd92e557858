/* playbooks.c: sales playbooks over HTTP (playbooks/playbooks.h).
 *
 *   GET/PUT/DELETE /v1/playbooks[/{id}]      playbooks, validated as in headroom.yaml
 *   POST /v1/playbooks/{id}/dry-run          which accounts would fire now
 *   GET  /v1/accounts/{id}/signals           fired signals with their evidence, and the score
 *   GET  /v1/inbox?owner=&status=&limit=     the reps' tasks, hottest account first
 *   POST /v1/inbox/{id}/{action}             claim, complete, snooze, dismiss, reopen
 *
 * A playbook written over the API becomes part of the catalog (section.c). */
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

void hr_api_playbooks_list(hr_req *r) { hr_api_section_list(r, "playbooks"); }
void hr_api_playbook_get(hr_req *r) { hr_api_section_get(r, "playbooks", "playbook"); }
void hr_api_playbook_put(hr_req *r) { hr_api_section_put(r, "playbooks", "playbook"); }
void hr_api_playbook_delete(hr_req *r) { hr_api_section_delete(r, "playbooks", "playbook"); }

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
    char plan[128];
    if (hr_engine_account_plan(r->app->engine, r->params[0], plan, sizeof plan))
        return hr_reply_error(r, 404, "not_found", "no account '%s'", r->params[0]);
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
