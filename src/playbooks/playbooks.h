/* playbooks.h: sales playbooks (Signal -> Messaging -> Action), account
 * scores and the reps' inbox (docs/PLAYBOOKS.md).
 *
 * A playbook's signal is a rule over the account (rules/). It is evaluated
 * for an account when one of its events has been ingested, and for every
 * account by a periodic sweep (time passes: renewals come closer). It fires
 * on a rising edge only (false -> true), at most once per cooldown per
 * account; a firing records the signal with its evidence (the values of
 * the facts the rule read), opens a task in the inbox and writes the
 * playbook's webhooks to the outbox, all in one transaction, then wakes
 * the webhook sender. Scores (0-100) are recomputed at each evaluation.
 *
 * Thread-safe. Evaluation runs on the module's own thread; the API calls
 * read and change the inbox from request threads. */
#ifndef HR_PLAYBOOKS_H
#define HR_PLAYBOOKS_H

#include <stdint.h>

#include "buf.h"
#include "entitle/engine.h"
#include "store/store.h"

typedef struct hr_playbooks hr_playbooks;

/* store: a connection of its own (borrowed; may be NULL: memory only);
 * kick(kick_ud) (may be NULL) is called after firings wrote outbox rows:
 * headroomd passes the webhook sender's hr_webhooks_kick. Loads signal
 * state and tasks and registers for ingested events. */
int hr_playbooks_new(hr_engine *e, hr_store *store, void (*kick)(void *ud), void *kick_ud,
                     hr_playbooks **out, hr_err *err);
/* Starts the evaluation thread (at a lower CPU priority than requests):
 * accounts with new events or writes within ~100 ms, and a sweep every
 * sweep_ms (0: none) for what time alone changes. A sweep evaluates every
 * playbook whose signal reads the clock (renewals, trials, days_since ...);
 * the first sweep of a UTC day, the first after start and the first after
 * a catalog change evaluate every playbook (day windows slide at midnight). */
int hr_playbooks_start(hr_playbooks *p, int64_t sweep_ms, hr_err *err);
void hr_playbooks_free(hr_playbooks *p);

/* Evaluates every playbook for one account now (and acts on rising
 * edges). *fired counts the firings (may be NULL). */
int hr_playbooks_eval_account(hr_playbooks *p, const char *account, int64_t now_ms, int *fired,
                              hr_err *err);
/* The account changed (a write over the API): evaluate it soon. */
void hr_playbooks_touch(hr_playbooks *p, const char *account);
/* Asks the thread for a full sweep as soon as it can (the catalog changed). */
void hr_playbooks_request_sweep(hr_playbooks *p);
/* Evaluates every account and every playbook (a full sweep, synchronously). */
int hr_playbooks_sweep(hr_playbooks *p, int64_t now_ms, int *fired, hr_err *err);

/* For /metrics: sweeps done, the last one's duration and accounts, and
 * every firing so far. */
typedef struct hr_playbooks_stats {
    int64_t sweeps, last_sweep_ms, last_sweep_accounts, fired;
} hr_playbooks_stats;
void hr_playbooks_get_stats(hr_playbooks *p, hr_playbooks_stats *out);

/* The account's score 0-100 as last computed; -1 if never. */
double hr_playbooks_score(hr_playbooks *p, const char *account);
/* {"accounts":[{"id","score"}...]} hottest first, at most limit. */
int hr_playbooks_top(hr_playbooks *p, int limit, hr_buf *out);

/* GET /v1/inbox: {"tasks":[...]} for owner (NULL: all) and status (NULL:
 * open and claimed), ranked by the account's current score. */
int hr_playbooks_inbox(hr_playbooks *p, const char *owner, const char *status, int limit,
                       int64_t now_ms, hr_buf *out, hr_err *err);
/* claim (rep: who claims; NULL keeps the owner), complete, snooze (until_ms,
 * 0 = a day), dismiss, reopen. Writes the task. HR_ENOTFOUND, HR_EINVAL for
 * an unknown action, HR_ECONFLICT for a move a task's status forbids. */
int hr_playbooks_task_action(hr_playbooks *p, const char *id, const char *action,
                             const char *rep, int64_t until_ms, int64_t now_ms, hr_buf *out,
                             hr_err *err);
/* Which accounts the playbook's signal holds for now, without acting:
 * {"playbook","matches":[{"account","value","would_fire","evidence"}],"evaluated":N}. */
int hr_playbooks_dry_run(hr_playbooks *p, const char *playbook, int limit, int64_t now_ms,
                         hr_buf *out, hr_err *err);
/* The account's fired signals, newest first. */
int hr_playbooks_history(hr_playbooks *p, const char *account, int limit, hr_buf *out,
                         hr_err *err);

#endif
