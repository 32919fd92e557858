/* store.h: the durable store behind the engine, as an ops table.
 *
 * The engine keeps all state in memory and writes through to a store; at
 * start it loads everything back with hr_store_load. Backends implement
 * hr_store_ops (sqlite.c now, pg.c later). Records are plain data: strings
 * are borrowed for the duration of the call only. Every call that returns 0
 * has made its write durable (or, between begin and commit, durable at
 * commit). One store is used by one thread at a time: callers serialise. */
#ifndef HR_STORE_H
#define HR_STORE_H

#include <stdint.h>

#include "headroom.h"

typedef struct hr_account_rec {
    const char *id, *name, *plan, *owner;
    int plan_version;
    const char *interval;    /* "month" | "year" */
    int64_t created_at, updated_at, renews_at;
    const char *traits_json; /* a JSON object as text, "{}" if none */
    const char *addons_json; /* {"extra_boards":1}, "{}" if none */
    const char *trial_plan;  /* plan under trial, NULL if none */
    int64_t trial_started_at, trial_ends_at;
    int plan_trial_used;     /* a plan trial was ever started */
} hr_account_rec;

typedef struct hr_user_rec {
    const char *account, *id, *role, *seat_type, *traits_json;
    int64_t created_at, updated_at;
} hr_user_rec;

typedef struct hr_usage_rec {
    const char *account, *feature;
    int64_t value, period_start; /* period_start 0 for features that do not reset */
    int64_t updated_at;
} hr_usage_rec;

typedef struct hr_override_rec {
    const char *account, *feature;
    int64_t value, expires_at; /* expires_at 0 = never */
    int64_t created_at;
} hr_override_rec;

typedef struct hr_ftrial_rec {
    const char *account, *feature;
    int64_t started_at, ends_at;
} hr_ftrial_rec;

typedef struct hr_idem_rec {
    const char *key;       /* scope-qualified idempotency key */
    uint64_t request_hash; /* to refuse the same key with another body */
    int status;
    const char *body;
    int64_t created_at;
} hr_idem_rec;

/* One ingested event (Segment message), appended to the event log. */
typedef struct hr_event_rec {
    const char *message_id;  /* NULL: the client sent none */
    const char *account;     /* NULL if it reached no account */
    const char *user_id, *anonymous_id;
    const char *type;        /* "track", "identify", ... */
    const char *event;       /* track event / page name; may be NULL */
    int64_t ts_ms, received_ms;
    const char *body;        /* the message as JSON text */
    int64_t seq;             /* its place in the log (reads only) */
    size_t body_len;         /* body's length when the writer knows it (0: strlen) */
} hr_event_rec;

/* A meter's value for one account and period. uniq/nuniq: the set of value
 * hashes of a unique meter (NULL/0 otherwise). */
typedef struct hr_meter_rec {
    const char *account, *meter;
    int64_t period_start;
    double value;
    int64_t latest_ms;
    const uint64_t *uniq;
    uint32_t nuniq;
} hr_meter_rec;

/* Event history for rules, one row per (account, user, event): how many
 * times the event happened on each UTC day (days as history.c writes them:
 * text, opaque here), for the account (user "" or NULL) or one of its
 * users, and when it was first and last seen. A property's sums per day for
 * rules' sum() are a row of their own: event "sum\x1fEVENT\x1fPROPERTY"
 * (HR_SUM_PREFIX), first and last 0. */
typedef struct hr_hist_rec {
    const char *account, *user, *event;
    int64_t first_ms, last_ms;
    const char *days;
} hr_hist_rec;
#define HR_SUM_PREFIX "sum\x1f"

/* Campaign state (campaigns/): kind 0 is a user's state in a campaign (key
 * = user id; shows = recent show times, unix ms, comma-separated), 1 an
 * experiment unit's (key = account or user id; variant, first_ms = first
 * exposure, converted_ms), 2 a user's shows across campaigns (campaign ""). */
typedef struct hr_prompt_rec {
    const char *campaign;
    int kind;
    const char *key, *variant, *account; /* variant, account may be NULL */
    int64_t first_ms, dismissed_ms, answered_ms, converted_ms;
    const char *shows;
} hr_prompt_rec;

/* What the SDK reported about a prompt (impression, click, dismiss ...). */
typedef struct hr_prompt_event_rec {
    const char *campaign, *variant, *type, *user, *account;
    int64_t at_ms;
} hr_prompt_event_rec;

/* Playbooks (playbooks/): whether an account's signal held at the last
 * evaluation (edge-triggering) and when it last fired; each firing with
 * the values that made it fire; the reps' tasks. */
typedef struct hr_signal_rec {
    const char *account, *playbook;
    int active;
    int64_t last_fired_ms;
} hr_signal_rec;

typedef struct hr_fired_rec {
    const char *account, *playbook;
    int64_t at_ms;
    double value;
    int has_value;
    const char *evidence;    /* JSON object */
} hr_fired_rec;

typedef struct hr_task_rec {
    const char *id, *account, *playbook, *owner; /* owner may be NULL */
    const char *status;      /* open, claimed, snoozed, completed, dismissed */
    const char *message, *evidence;
    double score;
    int64_t created_ms, updated_ms, snooze_until_ms;
} hr_task_rec;

/* Webhooks (webhooks/): the durable outbox, one row per logical delivery
 * (id is the stable webhook-id), and the log of attempts. */
enum { HR_OUTBOX_PENDING = 0, HR_OUTBOX_DELIVERED = 1, HR_OUTBOX_DEAD = 2 };
typedef struct hr_outbox_rec {
    const char *id, *url;
    const char *secrets;     /* whsec_ secrets, space-separated (two during rotation); may be NULL */
    const char *body;        /* JSON */
    const char *playbook, *account; /* may be NULL */
    int status, attempts;
    int64_t created_ms, next_at_ms;
    int last_code;           /* HTTP status of the last attempt, 0 if none or no response */
    int64_t last_latency_ms;
    const char *last_error;  /* may be NULL */
} hr_outbox_rec;

typedef struct hr_delivery_rec {
    const char *msg_id;
    int attempt;
    int64_t at_ms;
    int code;
    int64_t latency_ms;
    const char *error;       /* may be NULL */
} hr_delivery_rec;

/* Called for each row by load; a non-zero return stops the load with it. */
typedef struct hr_store_loader {
    void *ud;
    int (*account)(void *ud, const hr_account_rec *r);
    int (*user)(void *ud, const hr_user_rec *r);
    int (*usage)(void *ud, const hr_usage_rec *r);
    int (*override)(void *ud, const hr_override_rec *r);
    int (*ftrial)(void *ud, const hr_ftrial_rec *r);
    /* Optional, called first: about how many accounts follow (an upper
     * bound), so the caller can size its tables once. */
    void (*expect)(void *ud, int64_t accounts);
    /* Optional: every meter value of the latest period stored for each
     * (account, meter), after the feature trials; the uniq array is
     * borrowed for the call. */
    int (*meter)(void *ud, const hr_meter_rec *r);
    /* Optional: message ids received at or after seen_since (unix ms), for
     * the dedup window, after the meters. */
    int (*seen)(void *ud, const char *message_id, int64_t received_ms);
    int64_t seen_since;
    /* Optional: event history, after the seen ids, in no particular order
     * (mostly by account: rows in the order first written). */
    int (*hist)(void *ud, const hr_hist_rec *r);
    /* Optional, last: the log seq the meters and history just loaded
     * include (the replay starts after it), read in the same snapshot. */
    int (*folded)(void *ud, int64_t folded_seq);
} hr_store_loader;

typedef struct hr_store hr_store;

typedef struct hr_store_ops {
    const char *name;
    void (*close)(hr_store *s);
    int (*begin)(hr_store *s, hr_err *err);
    int (*commit)(hr_store *s, hr_err *err);
    void (*rollback)(hr_store *s);
    /* Loads accounts first, then users, usage, overrides, feature trials;
     * the rows of the later tables come grouped by account, in id order. */
    int (*load)(hr_store *s, const hr_store_loader *l, hr_err *err);
    int (*put_account)(hr_store *s, const hr_account_rec *r, hr_err *err);
    /* Deletes the account and everything that belongs to it, including its
     * meter values, its event history and the idempotency
     * keys scoped to it (keys that start with "{id}\x1f"); its raw events
     * stay in the log. */
    int (*delete_account)(hr_store *s, const char *id, hr_err *err);
    int (*put_user)(hr_store *s, const hr_user_rec *r, hr_err *err);
    int (*delete_user)(hr_store *s, const char *account, const char *id, hr_err *err);
    int (*put_usage)(hr_store *s, const hr_usage_rec *r, hr_err *err);
    int (*put_override)(hr_store *s, const hr_override_rec *r, hr_err *err);
    int (*delete_override)(hr_store *s, const char *account, const char *feature, hr_err *err);
    int (*put_ftrial)(hr_store *s, const hr_ftrial_rec *r, hr_err *err);
    /* Idempotency: get returns HR_ENOTFOUND when the key is unknown; the
     * body is copied into *body (caller frees). */
    int (*idem_get)(hr_store *s, const char *key, uint64_t *request_hash, int *status,
                    char **body, hr_err *err);
    int (*idem_put)(hr_store *s, const hr_idem_rec *r, hr_err *err);
    /* Forgets keys stored before older_than (unix seconds). */
    int (*idem_prune)(hr_store *s, int64_t older_than, hr_err *err);
    /* Appends events to the log, each with a seq of its own (a store may
     * keep an account's consecutive events in one row; its readers hand
     * them out one by one); their message ids are what load's `seen`
     * gives back (the dedup window), so no separate table is written. */
    int (*put_events)(hr_store *s, const hr_event_rec *r, int n, hr_err *err);
    /* Upserts a meter value (account, meter, period_start). */
    int (*put_meter)(hr_store *s, const hr_meter_rec *r, hr_err *err);
    /* The log's newest seq (0 when empty). */
    int (*last_seq)(hr_store *s, int64_t *seq, hr_err *err);
    /* Meters and history are written behind the log: put_folded_seq
     * records (in the same transaction as them) the newest seq whose event
     * they include, which load's `folded` reports, and replay_events hands
     * every later event, in log order, to fn at start-up. */
    int (*put_folded_seq)(hr_store *s, int64_t seq, hr_err *err);
    int (*replay_events)(hr_store *s, int64_t after_seq,
                         int (*fn)(void *ud, const hr_event_rec *r), void *ud, hr_err *err);
    /* Values of one account's meter with period_start in [from, to), in
     * period order; for GET .../usage. */
    int (*meter_series)(hr_store *s, const char *account, const char *meter, int64_t from,
                        int64_t to, int (*fn)(void *ud, const hr_meter_rec *r), void *ud,
                        hr_err *err);
    /* The newest `limit` events of an account, newest first (bodies). */
    int (*recent_events)(hr_store *s, const char *account, int limit,
                         int (*fn)(void *ud, const hr_event_rec *r), void *ud, hr_err *err);
    /* Event history rows, created or replaced (whole: the caller writes
     * what memory holds), in one transaction (the caller's if open). */
    int (*put_hists)(hr_store *s, const hr_hist_rec *r, int n, hr_err *err);
    /* Of the log's oldest `limit` rows (a row holds one or more events of
     * an account, received together), deletes those received before
     * older_than_ms and already folded (folded_seq); *rows says how many
     * rows went (fewer than limit: nothing older is left to prune now),
     * *events how many events (either may be NULL).
     * Meter values are kept: retention thins the log only (it must not be
     * shorter than the dedup window, whose ids the log holds). */
    int (*prune_events)(hr_store *s, int64_t older_than_ms, int limit, int *rows,
                        int64_t *events, hr_err *err);
    /* Campaign state upserts (by campaign, kind, key) and the prompt event
     * log, each batch in one transaction. */
    int (*put_prompts)(hr_store *s, const hr_prompt_rec *r, int n, hr_err *err);
    int (*put_prompt_events)(hr_store *s, const hr_prompt_event_rec *r, int n, hr_err *err);
    /* Every state row, then the event log's counts per (campaign, variant,
     * type). */
    int (*load_prompts)(hr_store *s, int (*state)(void *ud, const hr_prompt_rec *r),
                        int (*counts)(void *ud, const char *campaign, const char *variant,
                                      const char *type, int64_t n),
                        void *ud, hr_err *err);
    /* Playbooks: upserts and appends, each batch in one transaction (or in
     * the caller's, after begin); loads and lists hand rows to fn, whose
     * non-zero return stops them and is returned. */
    int (*signal_put)(hr_store *s, const hr_signal_rec *r, int n, hr_err *err);
    int (*signal_load)(hr_store *s, int (*fn)(void *ud, const hr_signal_rec *r), void *ud,
                       hr_err *err);
    int (*fired_put)(hr_store *s, const hr_fired_rec *r, int n, hr_err *err);
    /* newest first */
    int (*fired_list)(hr_store *s, const char *account, int limit,
                      int (*fn)(void *ud, const hr_fired_rec *r), void *ud, hr_err *err);
    int (*task_put)(hr_store *s, const hr_task_rec *r, int n, hr_err *err);
    int (*task_load)(hr_store *s, int (*fn)(void *ud, const hr_task_rec *r), void *ud,
                     hr_err *err);
    /* Webhooks: outbox rows are upserted whole; due = pending with
     * next_at_ms <= now, soonest first; list = newest first, status -1 for
     * any; deliveries newest first (msg_id NULL: all). */
    int (*outbox_put)(hr_store *s, const hr_outbox_rec *r, int n, hr_err *err);
    int (*outbox_due)(hr_store *s, int64_t now_ms, int limit,
                      int (*fn)(void *ud, const hr_outbox_rec *r), void *ud, hr_err *err);
    int (*outbox_get)(hr_store *s, const char *id, int (*fn)(void *ud, const hr_outbox_rec *r),
                      void *ud, hr_err *err);
    int (*outbox_list)(hr_store *s, int status, int limit,
                       int (*fn)(void *ud, const hr_outbox_rec *r), void *ud, hr_err *err);
    int (*delivery_put)(hr_store *s, const hr_delivery_rec *r, int n, hr_err *err);
    int (*delivery_list)(hr_store *s, const char *msg_id, int limit,
                         int (*fn)(void *ud, const hr_delivery_rec *r), void *ud, hr_err *err);
    /* Catalog text set over the API (PUT /v1/catalog): latest wins. */
    int (*put_catalog)(hr_store *s, const char *text, int64_t at, hr_err *err);
    int (*get_catalog)(hr_store *s, char **text, int64_t *at, hr_err *err);
} hr_store_ops;

struct hr_store {
    const hr_store_ops *ops;
};

/* Opens (creating and migrating) an SQLite database in WAL mode.
 * durable_full: fsync every commit (synchronous=FULL) rather than NORMAL. */
int hr_store_sqlite_open(const char *path, int durable_full, hr_store **out, hr_err *err);
/* Schema version after migrations (for /metrics and tests). */
int hr_store_sqlite_schema_version(hr_store *s);
/* Moves s's WAL checkpoints (copying the log into the database, with its
 * fsyncs) to a thread of s's own on a connection of its own, woken after
 * a commit leaves `frames` pages in the log (0: 10,000, ~40 MB): the
 * writer's commits, which everyone waits for, then never do it. A file
 * database only (else a no-op); stopped by hr_store_close. 0, or an error
 * (s checkpoints as before). */
int hr_store_sqlite_background_checkpoints(hr_store *s, int frames, hr_err *err);
/* Another connection s to the same database hands its checkpoints to
 * owner's thread too (after hr_store_sqlite_background_checkpoints on
 * owner), instead of copying the log inside its own commits. owner must be
 * closed after s. 0, or an error (s checkpoints itself). */
int hr_store_sqlite_share_checkpoints(hr_store *s, hr_store *owner, hr_err *err);

/* Convenience wrappers: s->ops->x(s, ...). hr_store_close accepts NULL. */
static inline void hr_store_close(hr_store *s) {
    if (s) s->ops->close(s);
}

#endif
