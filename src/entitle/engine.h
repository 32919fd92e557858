/* engine.h: accounts, users, usage, overrides and trials held in memory, and
 * the entitlement decision over them (the in-process part of headroom.h,
 * plus what the HTTP API and the CLI need).
 *
 * Concurrency: any number of threads may read (check, get, list) while one
 * writer at a time mutates. A mutation validates against the catalog, writes
 * through to the attached store (durable when it returns 0), then applies to
 * memory under a short exclusive lock, so decisions never wait on disk.
 * JSON documents passed in are borrowed; hr_buf outputs are appended to. */
#ifndef HR_ENGINE_H
#define HR_ENGINE_H

#include <json-c/json.h>
#include <stdint.h>

#include "buf.h"
#include "catalog/catalog.h"
#include "headroom.h"
#include "store/store.h"

/* Loads every account from s and writes through to it from now on. The
 * engine does not own the store. Call once, before serving. */
int hr_engine_attach_store(hr_engine *e, hr_store *s, hr_err *err);
/* A second connection to the same database, for ingestion's event log
 * (borrowed; set once, before ingesting): a group commit's log write then
 * overlaps the next one's fold instead of following it under the writer
 * mutex. Without it the log is written on the attached store. */
void hr_engine_set_log_store(hr_engine *e, hr_store *log);

/* The current catalog snapshot, retained: release with hr_catalog_release. */
hr_catalog *hr_engine_catalog(hr_engine *e);
/* Swaps in a new catalog (the engine retains it). Accounts whose plan or
 * add-ons vanished keep them by name; decisions treat them as absent. */
int hr_engine_set_catalog(hr_engine *e, hr_catalog *c, hr_err *err);

size_t hr_engine_account_count(hr_engine *e);

/* Accounts. put creates or replaces (patch=1 merges the given fields);
 * *created is set to 1 when the account did not exist. The resulting account
 * is written to out as JSON when out is not NULL. */
int hr_engine_put_account(hr_engine *e, const char *id, json_object *doc, int patch,
                          int *created, hr_buf *out, hr_err *err);
int hr_engine_get_account(hr_engine *e, const char *id, hr_buf *out);
/* The account's plan key copied into out ("" when it has none);
 * HR_ENOTFOUND for an unknown account. */
int hr_engine_account_plan(hr_engine *e, const char *id, char *out, size_t n);
int hr_engine_delete_account(hr_engine *e, const char *id, hr_err *err);
/* Accounts in id order after cursor ("" for the first page), at most limit;
 * writes {"accounts":[...],"next_cursor":...}. */
int hr_engine_list_accounts(hr_engine *e, const char *cursor, int limit, hr_buf *out);

/* Users of an account. */
int hr_engine_put_user(hr_engine *e, const char *account, const char *uid, json_object *doc,
                       int *created, hr_buf *out, hr_err *err);
int hr_engine_get_user(hr_engine *e, const char *account, const char *uid, hr_buf *out);
int hr_engine_delete_user(hr_engine *e, const char *account, const char *uid, hr_err *err);
int hr_engine_list_users(hr_engine *e, const char *account, hr_buf *out);
/* 1 if the user belongs to the account. */
int hr_engine_has_user(hr_engine *e, const char *account, const char *uid);

/* Usage: set (replace=1) or increment by value (may be negative; the result
 * never goes below 0). idem_key (may be NULL) makes a retry with the same key
 * and body return the first answer without applying twice; a reuse with
 * another body is HR_ECONFLICT. Writes the feature's new state to out. */
int hr_engine_record_usage(hr_engine *e, const char *account, const char *feature,
                           int64_t value, int replace, const char *idem_key,
                           uint64_t body_hash, int64_t now, int *status, hr_buf *out,
                           hr_err *err);

/* Overrides: value as JSON (number, true/false or "unlimited"), expires_at
 * 0 = never. */
int hr_engine_put_override(hr_engine *e, const char *account, const char *feature,
                           json_object *value, int64_t expires_at, hr_buf *out, hr_err *err);
int hr_engine_delete_override(hr_engine *e, const char *account, const char *feature,
                              hr_err *err);

/* Trials: a feature trial once per account and feature; a plan trial once per
 * account. Both refuse with HR_ECONFLICT when already used. */
int hr_engine_start_feature_trial(hr_engine *e, const char *account, const char *feature,
                                  int64_t now, hr_buf *out, hr_err *err);
int hr_engine_start_plan_trial(hr_engine *e, const char *account, const char *plan,
                               int64_t now, hr_buf *out, hr_err *err);

/* The full decision as JSON into out (see docs/API.md, POST /v1/check).
 * Unknown accounts and features are answers (reasons), not errors. verdict
 * may be NULL. */
int hr_engine_decide(hr_engine *e, const char *account, const char *feature, int64_t quantity,
                     int64_t now, hr_verdict *verdict, hr_buf *out);
/* Every feature's state, plan, renewal, add-ons and upgrades: the data of a
 * pricing/billing screen. HR_ENOTFOUND for an unknown account. */
int hr_engine_entitlements(hr_engine *e, const char *account, int64_t now, hr_buf *out);

/* Ingestion of validated Segment messages (events/segment.h): dedup by
 * messageId within a 7-day window, account resolution (the message's, else
 * the group its user last joined), meters folded, everything appended to the
 * event log, durably, with other requests' messages in one transaction
 * (group commit). Blocks until durable. status[i] is one of: */
enum { HR_INGEST_OK, HR_INGEST_DUPLICATE, HR_INGEST_NO_ACCOUNT };
typedef struct hr_msg hr_msg;
int hr_engine_ingest(hr_engine *e, hr_msg *msgs, int n, int64_t now_ms, int *status, hr_err *err);
/* Current-period value of meter `meter` for an account (0 if none). */
int hr_engine_meter_value(hr_engine *e, const char *account, const char *meter, int64_t now,
                          double *out);
/* Makes user a member of account (the group call): creates the user if
 * needed and remembers the account for resolving the user's later events.
 * Creates the account on the first plan when it does not exist. */
int hr_engine_join(hr_engine *e, const char *account, const char *user, json_object *account_traits,
                   json_object *user_traits, int64_t now, hr_err *err);

/* Event history, from memory: how many times `event` happened for the
 * account (user NULL) or one of its members in the last `days` UTC days
 * (today included); on how many of those days it happened; when it was
 * first and last seen (unix ms, 0 if never). "*" is every product event.
 * HR_ENOTFOUND for an unknown account or a user not in it. History keeps
 * 400 days. */
int hr_engine_event_count(hr_engine *e, const char *account, const char *user, const char *event,
                          int days, int64_t now, int64_t *out);
int hr_engine_active_days(hr_engine *e, const char *account, const char *user, const char *event,
                          int days, int64_t now, int *out);
int hr_engine_event_seen(hr_engine *e, const char *account, const char *user, const char *event,
                         int64_t *first_ms, int64_t *last_ms);

/* Notes that a premium (not-in-plan) feature was denied to account/user
 * (user may be NULL): cheap, no I/O, so the decision path may call it. The
 * event (headroom.feature_denied) is recorded by hr_engine_flush_internal,
 * which headroomd calls every second. At most 10,000 wait; more are dropped. */
void hr_engine_note_denied(hr_engine *e, const char *account, const char *user,
                           const char *feature);
/* Records the noted denials in the event stream (one group commit). */
int hr_engine_flush_internal(hr_engine *e, hr_err *err);
/* Meters and event history reach their tables behind the event log (a
 * restart replays the log past what they hold): writes what changed when
 * the last write is at least max_age_ms old (0: now). headroomd calls it
 * every second and at shutdown; GET .../usage before reading the table. */
int hr_engine_flush_derived(hr_engine *e, int64_t max_age_ms, hr_err *err);

/* How long a messageId is remembered for deduplication (default 7 days).
 * Call before hr_engine_attach_store (it loads the window's ids). */
void hr_engine_set_dedup_window(hr_engine *e, int days);
/* Bounds the messageId index's memory (0: no bound). At the bound the
 * oldest ids are dropped first, which shortens the window retries are
 * recognised in: hr_engine_dedup_stats says by how much. Call before
 * hr_engine_attach_store. */
void hr_engine_set_dedup_memory(hr_engine *e, size_t bytes);
typedef struct hr_dedup_stats {
    size_t ids, bytes, evicted; /* held, their memory, dropped by the bound */
    int64_t window_s;           /* the window actually covered */
} hr_dedup_stats;
void hr_engine_dedup_stats(hr_engine *e, hr_dedup_stats *out);

/* Raw events older than `days` are deleted from the log (0: keep them all;
 * default 90; never less than the 7-day dedup window, whose message ids the
 * log holds). Meter values are kept forever. */
void hr_engine_set_retention(hr_engine *e, int days);

/* The account the user last joined, copied into out; HR_ENOTFOUND if none. */
int hr_engine_user_account(hr_engine *e, const char *user, char *out, size_t n);

/* Rules (rules/rules.h) over one account and, when user is not NULL and a
 * member, one of its users: calls fn under the read lock with the engine's
 * current catalog (compile rules against that snapshot: facts name
 * features by its indexes) and an environment whose facts read the account.
 * fn must not call back into the engine. now_ms 0 = now. Returns fn's
 * result, or HR_ENOTFOUND for an unknown account (fn is not called). */
struct hr_rule_env;
typedef int (*hr_rules_fn)(void *ud, const hr_catalog *cat, const struct hr_rule_env *env,
                           void *ctx);
int hr_engine_with_rules(hr_engine *e, const char *account, const char *user, int64_t now_ms,
                         hr_rules_fn fn, void *ud);

/* Rules over every account, a slice at a time: from *pos (0 to start) at
 * most max accounts are handed to fn (with the account id, borrowed for the
 * call) under the read lock, which is released between slices so writers
 * are never held up for long. Returns 1 while accounts remain, 0 at the
 * end, or fn's negative error. Accounts created or removed meanwhile may be
 * seen or missed once. */
typedef int (*hr_sweep_fn)(void *ud, const char *account, const hr_catalog *cat,
                           const struct hr_rule_env *env, void *ctx);
int hr_engine_sweep(hr_engine *e, size_t *pos, int max, int64_t now_ms, hr_sweep_fn fn, void *ud);

/* Members who joined in the last `days` days, as a JSON array of ids. */
int hr_engine_new_members(hr_engine *e, const char *account, int days, int64_t now_ms, hr_buf *out);

/* Called after each group commit with the product events it made durable
 * (not identify/group), in order: campaigns count goal conversions, playbooks
 * re-evaluate signals. Runs on the committing thread, outside the engine's
 * locks; it may read the engine but must be quick. Up to HR_MAX_HOOKS hooks;
 * add before serving, remove before freeing what ud points to. */
#define HR_MAX_HOOKS 4
typedef struct hr_ingested {
    const char *event, *account, *user; /* user may be NULL */
    int64_t at_ms;
} hr_ingested;
typedef void (*hr_ingest_hook)(void *ud, const hr_ingested *evs, int n);
int hr_engine_add_ingest_hook(hr_engine *e, hr_ingest_hook fn, void *ud);
void hr_engine_remove_ingest_hook(hr_engine *e, hr_ingest_hook fn, void *ud);

/* For OFREP: every catalog feature key in order, as a callback. */
typedef void (*hr_feature_fn)(void *ud, const char *key);
void hr_engine_each_feature(hr_engine *e, hr_feature_fn fn, void *ud);

#endif
