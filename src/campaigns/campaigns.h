/* campaigns.h: in-app upgrade prompts (docs/CAMPAIGNS.md).
 *
 * The campaigns themselves live in the catalog (catalog.h hr_campaign);
 * this module decides which prompt to show to whom and when, and keeps
 * what that needs on the server: per user and campaign the recent shows,
 * the last dismissal and whether it was answered; per experiment unit the
 * variant it was assigned and when it was first exposed and converted; per
 * variant the counts of what the SDK reported.
 *
 * Thread-safe: any number of request threads may call in at once. Serving
 * a prompt changes state in memory at once and on disk at the next
 * hr_campaigns_flush (every second on the thread hr_campaigns_start starts,
 * and at hr_campaigns_free); reported events (a dismissal, say) are on disk
 * before hr_campaigns_event returns. */
#ifndef HR_CAMPAIGNS_H
#define HR_CAMPAIGNS_H

#include <stdint.h>

#include "buf.h"
#include "entitle/engine.h"
#include "store/store.h"

typedef struct hr_campaigns hr_campaigns;

/* Loads the state from store (borrowed, may be NULL: memory only; it must
 * be a connection of its own, not the engine's, since flushes run beside
 * ingestion) and registers for the engine's ingested events (goal
 * conversions). The engine is borrowed and must outlive the result. */
int hr_campaigns_new(hr_engine *e, hr_store *store, hr_campaigns **out, hr_err *err);
void hr_campaigns_free(hr_campaigns *cs);

typedef struct hr_prompt_req {
    const char *account;  /* required */
    const char *user;     /* may be NULL: no per-user caps, user facts are null */
    const char *trigger;  /* "on_load", "page", "feature_denied:F", "limit_hit:F",
                             "event:E", "element:F"; NULL = on_load and page */
    const char *page;     /* path, for page triggers; may be NULL */
    const char *locale;   /* may be NULL */
    int64_t now_ms;       /* 0 = now */
} hr_prompt_req;

/* Appends the JSON array of prompts due now (ranked, capped, at most the
 * catalog's throttle.per_request) to out and records them as shown. An
 * unknown account is HR_ENOTFOUND. */
int hr_campaigns_prompts(hr_campaigns *cs, const hr_prompt_req *q, hr_buf *out, hr_err *err);

/* Records what the SDK reports for prompt id ("campaign:variant"): type is
 * impression, click, dismiss, trial_started or converted. Durable when it
 * returns 0. HR_ENOTFOUND for an unknown campaign, HR_EINVAL for a bad type. */
int hr_campaigns_event(hr_campaigns *cs, const char *id, const char *type, const char *user,
                       const char *account, int64_t now_ms, hr_err *err);

/* GET /v1/campaigns/{id}/results: the experiment's numbers as a JSON object. */
int hr_campaigns_results(hr_campaigns *cs, const char *campaign, hr_buf *out, hr_err *err);
/* GET /v1/campaigns: every campaign with its state and counts. */
int hr_campaigns_list(hr_campaigns *cs, int64_t now_ms, hr_buf *out);

/* The variant campaign assigns to unit: deterministic (a hash of both) and
 * weighted; for tests and the results of units never exposed. */
int hr_campaign_assign(const hr_campaign *cp, const char *unit);

/* Starts the background flush (once a second, at a lower CPU priority). */
int hr_campaigns_start(hr_campaigns *cs, hr_err *err);
/* Writes state changed since the last flush. */
int hr_campaigns_flush(hr_campaigns *cs, hr_err *err);

#endif
