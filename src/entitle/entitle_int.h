/* entitle_int.h: the engine's in-memory records, shared by engine.c (state,
 * persistence) and decide.c (the decision). Not for use outside entitle/. */
#ifndef HR_ENTITLE_INT_H
#define HR_ENTITLE_INT_H

#include <pthread.h>
#include <stdint.h>

#include "acctix.h"
#include "buf.h"
#include "catalog/catalog.h"
#include "map.h"
#include "rdlock.h"
#include "events/meter.h"
#include "store/store.h"
#include "engine.h"

/* Names (plans, features, add-ons) are interned pointers (intern.h). */
typedef struct hr_usage_ent { const char *feature; int64_t value, period_start; } hr_usage_ent;
typedef struct hr_ovr_ent { const char *feature; int64_t value, expires_at, created_at; } hr_ovr_ent;
typedef struct hr_ftrial_ent { const char *feature; int64_t started_at, ends_at; } hr_ftrial_ent;
/* ix: the add-on's index in the engine's current catalog, -1 if absent. */
typedef struct hr_addon_ent { const char *addon; int32_t qty; int32_t ix; } hr_addon_ent;

/* A meter's value in its latest period (older periods live in the store). */
typedef struct hr_mval_ent {
    const char *meter; /* interned */
    hr_meter_value v;
} hr_mval_ent;

/* Event history (history.c): per event, a count per UTC day (ascending,
 * at most HR_HISTORY_DAYS back) and the first and last time it was seen. */
#define HR_HISTORY_DAYS 400

typedef struct hr_day_count {
    int32_t day; /* days since 1970-01-01 */
    uint32_t count;
} hr_day_count;

typedef struct hr_hist_ent {
    const char *event; /* interned; "*" for every product event */
    int64_t first_ms, last_ms;
    uint32_t n, cap;
    hr_day_count *days;
} hr_hist_ent;

/* Sums of a numeric property per day, for rules' sum(): only for the
 * (event, property) pairs some rule of the catalog asks about. key is the
 * interned "EVENT\x1fPROPERTY". */
typedef struct hr_day_sum {
    int32_t day;
    double sum;
} hr_day_sum;

typedef struct hr_sum_ent {
    const char *key;
    uint32_t n, cap;
    hr_day_sum *days;
} hr_sum_ent;

typedef struct hr_hist {
    uint32_t n;
    hr_hist_ent *ents;
    uint32_t nsums;
    hr_sum_ent *sums;
} hr_hist;

void hr_hist_free(hr_hist *h);
hr_hist_ent *hr_hist_find(const hr_hist *h, const char *event);
/* As hr_hist_find for an interned name (history keys are): pointers only. */
hr_hist_ent *hr_hist_find_interned(const hr_hist *h, const char *event);
/* The entry for event, created if needed (*h too); NULL on OOM. */
hr_hist_ent *hr_hist_get(hr_hist **h, const char *event);
/* Sets the count of day (inserting it in order); drops days older than the
 * horizon before `today`. -1 on OOM. */
int hr_hist_set_day(hr_hist_ent *he, int32_t day, uint32_t count, int32_t today);
uint32_t hr_hist_day_count(const hr_hist_ent *he, int32_t day);
/* The sum entry for key in *h (created, with *h, when create); NULL if none or OOM. */
hr_sum_ent *hr_hist_sum(hr_hist **h, const char *key, int create);
double hr_hist_sum_day(const hr_sum_ent *se, int32_t day);
/* Sets day's sum (in order; days past the horizon dropped). -1 on OOM. */
int hr_hist_sum_set(hr_sum_ent *se, int32_t day, double sum, int32_t today);
/* Over the `days` days up to today. */
double hr_hist_sum_window(const hr_sum_ent *se, int32_t today, int days);
/* The days of an entry as stored (event_hist.days): "DAY:N,GAP:N,..." in
 * day order, DAY the first day (days since 1970-01-01), each GAP the
 * distance from the day before, N the count (he) or the sum (se, to 17
 * digits). Text, so that sqlite3 shows it and SQL (migration 9) can write
 * it. Appended to out. */
void hr_hist_days_text(const hr_hist_ent *he, const hr_sum_ent *se, hr_buf *out);
/* Sets the days of he (or se) from such text, leaving out days past the
 * horizon before today. HR_EINVAL if malformed, HR_ENOMEM. */
int hr_hist_days_parse(const char *s, int32_t today, hr_hist_ent *he, hr_sum_ent *se);
/* Over the `days` days up to today (he may be NULL): the total count and
 * how many days had at least one. */
void hr_hist_window(const hr_hist_ent *he, int32_t today, int days, int64_t *total, int *active);

/* Traits flattened for rules (traits.c): "company.size" -> 50, looked up by
 * the path's hr_rule_hash. Built on first use from traits_json and
 * published with a compare-and-swap, so readers under the read lock may
 * build it; whoever replaces traits_json (under the write lock) frees it. */
typedef struct hr_traits_ix hr_traits_ix;
const hr_traits_ix *hr_traits_get(hr_traits_ix **slot, const char *traits_json);
void hr_traits_free(hr_traits_ix *ix);
struct hr_rval;
/* The trait at path (hash as hr_rule_hash computes it); 0 when found. */
int hr_traits_find(const hr_traits_ix *ix, const char *path, uint64_t hash, struct hr_rval *out);

typedef struct hr_user {
    char *id, *role, *seat_type, *traits_json;
    hr_traits_ix *tix;                 /* traits_json flattened, made on first use */
    int64_t created_at, updated_at;
    hr_hist *hist;
} hr_user;

/* Usage entries kept inside the account itself: most products meter a
 * handful of features, and a decision then touches no other allocation. */
#define HR_USAGE_INLINE 4

/* Kept small (1M accounts must fit in 1 GiB with their usage) and ordered
 * for the decision: what it reads comes first, in the account's first three
 * cache lines, which the hash map prefetches as soon as the slot matches,
 * while it compares the id at the end; one random account then costs about
 * one memory round trip. */
typedef struct hr_account {
    /* hot: the decision */
    const char *plan, *trial_plan;     /* interned */
    int16_t plan_ix, trial_ix;         /* their indexes in the current catalog, -1 if absent */
    int32_t plan_version;              /* 0 = the plan's current version */
    int64_t trial_ends_at;
    uint16_t nusage, naddons, novr, nftrial;
    uint16_t nmvals;
    /* the one add-on of an account with one (most that have any): its
     * index and quantity here spare the decision a trip to addons[]
     * (hr_account_reindex keeps them) */
    int16_t addon_ix;
    int32_t addon_qty;
    /* (the common decision reads nothing else of the account but its
     * feature's usage entry) */
    hr_usage_ent *usage;               /* usage_inline until it outgrows it */
    hr_addon_ent *addons;
    hr_ovr_ent *ovr;
    hr_ftrial_ent *ftrial;
    hr_mval_ent *mvals;
    hr_usage_ent usage_inline[HR_USAGE_INLINE];
    /* cold: read by the API, not by decisions */
    hr_hist *hist;                     /* event history of the account */
    char *name, *owner, *traits_json; /* traits kept as JSON text */
    hr_traits_ix *tix;                 /* traits_json flattened, made on first use */
    hr_user *users;
    uint32_t nusers;
    uint8_t interval;                  /* hr_interval: MONTH or YEAR */
    uint8_t plan_trial_used;
    uint8_t slab;                      /* size class in the account slabs (engine.c), 0: malloc */
    int64_t created_at, updated_at, renews_at, trial_started_at;
    char id[];                         /* the map key lives here */
} hr_account;

/* The current catalog's features by name, for the decision path: an open
 * table of the map's hash (one probe, no call), rebuilt with the catalog.
 * A slot also holds what the decision needs to know of the feature, so the
 * common case reads nothing else of the catalog but the plan's entitlement:
 * its type, the meter feeding it and how its usage and resets_at follow
 * the calendar. */
enum {
    HR_FRESET_NONE,  /* resets_at 0: not metered, or a lifetime meter */
    HR_FRESET_METER, /* the next start of the meter's shared period, 0 if none */
    HR_FRESET_OWN,   /* the next start of the feature's own shared period */
    HR_FRESET_SLOW   /* a billing cycle (or no calendar period): the full decision */
};

typedef struct hr_fslot {
    uint64_t hash;    /* hr_fkey_hash of key; 0 = empty */
    uint64_t a, b;    /* key's zero-padded words (hr_key16) when it is up to 16 bytes */
    const char *key;  /* the catalog's */
    const char *name; /* key interned (e->fnames[fi]): usage compares by address */
    uint32_t len;
    int32_t fi;
    int16_t mi;       /* the meter feeding the feature, -1 if none */
    uint8_t type;     /* hr_feature_type */
    uint8_t overage;  /* has_overage */
    uint8_t uperiod;  /* metered: its (shared) period, which API usage must be in; else NONE */
    uint8_t reset;    /* HR_FRESET_* */
    uint8_t rperiod;  /* the period resets_at follows (METER, OWN) */
    uint8_t uhome;    /* where the feature's usage entry sits in an account's
                       * inline entries when it can (hr_ftab.uhome) */
    uint8_t full;     /* always the full decision: reset SLOW, or a catalog
                       * with per-account overrides */
} hr_fslot;

/* A feature name's hash in hr_ftab, never 0: for up to 16 bytes, one
 * multiply of its zero-padded words (a, b; filled: hr_key16), which the
 * table compares too, so a lookup never reads the slot's key; longer names
 * by hr_hash (a, b unset). Weak for a hash map, enough for a table that
 * grows until no two of the catalog's few dozen features share a home
 * slot. */
static inline uint64_t hr_fkey_hash(const char *s, size_t n, uint64_t *a, uint64_t *b) {
    if (n > 16) return hr_hash(s, n) | 1ULL << 63;
    uint64_t w[2];
    hr_key16(s, n, w);
    *a = w[0], *b = w[1];
    return (((*a ^ n) + *b * 0x9e3779b97f4a7c15ULL) * 0xff51afd7ed558ccdULL) >> 32 | 1ULL << 63;
}

typedef struct hr_ftab {
    uint32_t mask;
    uint32_t direct; /* every feature in its home slot: a lookup is one slot, no loop */
    /* By feature index: the inline usage entry (0 .. HR_USAGE_INLINE - 1)
     * where the engine puts that feature's usage when it is free, the
     * features that can have usage (not booleans) taken in turn. A decision
     * then reads the entry at a place it knows before the account arrives,
     * rather than comparing every entry (a scan whose result the next
     * instructions wait for); anything elsewhere (a collision, more than
     * HR_USAGE_INLINE entries, entries placed under an earlier catalog) is
     * still found by a scan. */
    const uint8_t *uhome;
    /* By plan index + 1 (0: the account's plan is not in this catalog):
     * the current version's entitlements (HR_ENT_NONE throughout for 0)
     * and its number, for the decision's common case without walking the
     * catalog's plans and versions. */
    int nplans;
    const int64_t *const *plan_ent;
    const int32_t *plan_ver;
    hr_fslot slots[];
} hr_ftab;

struct hr_engine {
    hr_rdlock *lock;        /* readers vs. applying a mutation (rdlock.h) */
    pthread_mutex_t wmu;    /* one writer at a time, across store + apply */
    hr_catalog *cat;        /* swapped under lock (exclusive) */
    const char **fnames;    /* cat's feature keys, interned: usage compares by address */
    const char **mnames;    /* cat's meter keys, interned */
    hr_ftab *ftab;          /* cat's features by name (swapped with cat) */
    hr_acctix *accounts;    /* id -> hr_account*, with decision summaries */
    hr_store *store;        /* borrowed, may be NULL */
    /* in-memory idempotency keys when there is no store */
    hr_map *idem;
    /* Ingestion (ingest.c): the account each user last joined (user id ->
     * hr_membership), message ids seen in the dedup window (hashes),
     * and the group-commit queue. */
    hr_map *user_acct;
    struct hr_idset *seen;  /* hashes of message ids in the dedup window */
    int members_built;      /* user_acct holds every account's users */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    struct hr_ingest_job *qhead, *qtail;
    int qbusy;
    /* The pipelined group commit (ingest.c): batches folded into memory
     * whose log write may still be under way, oldest first (linked and
     * unlinked under wmu; their state under imu), and the turns that keep
     * log writes in fold order. log_store: a connection of the log
     * writer's own (NULL: the log is written on store, under wmu). */
    hr_store *log_store;
    struct hr_inflight *inflight, *inflight_tail;
    pthread_mutex_t imu;
    pthread_cond_t icv;
    uint64_t log_next, log_turn;
    int flush_failed;        /* a flush behind the log could not write (imu) */
    int64_t dedup_window_ms;
    int64_t last_prune_ms;  /* when seen ids past the window were last dropped */
    int64_t dedup_warned_ms; /* when the memory bound's warning was last logged */
    int64_t retention_ms;   /* raw events older than this are deleted (0: kept) */
    /* headroom.feature_denied noted on the decision path, recorded by the
     * next hr_engine_flush_internal (never on the decision's time) */
    pthread_mutex_t pmu;
    struct hr_denied *denied;
    size_t ndenied, capdenied;
    hr_map *denied_at;      /* "account\x1fuser\x1ffeature" -> last noted (ms) */
    /* Meters and history are written behind the event log (ingest.c):
     * what changed since the last write, and how far the log has been
     * folded. */
    struct hr_dirty *dirty; /* changed meter values and history rows; NULL: none */
    struct hr_snap *writing; /* flushes taken and not yet committed behind the
                                log, newest first (imu) */
    struct batch *spare;     /* a finished group commit's arrays, for the next
                                one (imu) */
    struct hr_idset *spare_seen; /* and its emptied id set (wmu) */
    size_t dmeters_hint, dhist_hint; /* their counts at the last flush: the
                                        next set starts there instead of growing */
    int64_t folded_seq;     /* newest log seq folded into memory */
    int64_t flushed_seq;    /* newest log seq in the meter and history tables */
    int64_t last_flush_ms;
    int fold_stuck;         /* a change could not be tracked: stop writing
                               them, so a restart replays from flushed_seq */
    hr_ingest_hook hooks[HR_MAX_HOOKS]; /* after each group commit (set under wmu) */
    void *hook_uds[HR_MAX_HOOKS];
    int nhooks;
};

typedef struct hr_denied {
    char account[129], user[129], feature[65];
    int64_t at_ms;
} hr_denied;

typedef struct hr_membership {
    const char *account; /* interned */
    int64_t at;
    char user[];
} hr_membership;

/* Remembers that user joined account at time at (newest wins). The map is
 * built from the accounts on first use; before that this does nothing.
 * Callers hold the writer mutex. */
void hr_engine_note_member(hr_engine *e, const char *user, const char *account, int64_t at);
void hr_ingest_init(hr_engine *e);
/* Loader hooks: a stored meter value (latest period) into its account; a
 * message id into the dedup window. */
int hr_account_load_meter(hr_account *a, const hr_meter_rec *r);
int hr_ingest_load_seen(hr_engine *e, const char *id, int64_t at_ms);
int hr_account_load_hist(hr_account *a, const hr_hist_rec *r, int32_t today);
void hr_ingest_dispose(hr_engine *e);
/* After the load: folds the log's events past the stored folded_seq into
 * memory (writer mutex held, store attached, no read lock held). */
int hr_ingest_replay(hr_engine *e, hr_err *err);
/* Writes the changed meters and history with folded_seq, in one
 * transaction (writer mutex held). */
int hr_ingest_flush_locked(hr_engine *e, hr_err *err);
/* The allocation of feature fi for account a now (HR_ENT_NONE, a count or
 * HR_UNLIMITED; 0/1 for booleans), as the decision computes it. */
int64_t hr_account_limit(const hr_catalog *c, const hr_account *a, int fi, int64_t now);
/* Usage of feature fi as the decision counts it: set over the API plus the
 * meter feeding it in its current period. fname: e->fnames[fi]. */
int64_t hr_account_feature_usage(const hr_catalog *c, const hr_account *a, int fi,
                                 const char *fname, int64_t now);
/* The thresholds of f (hr_feature.thresholds: fractions of the limit) that
 * usage crosses upwards from before to after, each recorded as
 * headroom.usage_threshold: fills up to HR_MAX_THRESHOLDS into out and
 * returns how many. */
int hr_thresholds_crossed(const hr_feature *f, int64_t before, int64_t after, int64_t limit,
                          double *out);
/* A headroom.* track message for account (user NULL: anonymous "headroom");
 * takes ownership of props; caller puts the result. NULL on OOM. */
json_object *hr_internal_msg(const char *event, const char *account, const char *user,
                             json_object *props, const char *message_id);
/* headroom.usage_threshold for feature crossing `threshold` of its limit;
 * caller puts it. NULL on OOM. */
json_object *hr_threshold_msg(const char *account, const char *feature, double threshold,
                              int64_t usage, int64_t limit);
/* The value of meter m (index mi in the current catalog) for account a now. */
double hr_account_meter_now(const hr_catalog *c, const hr_account *a, int mi, int64_t now);

void hr_account_free(hr_account *a);
/* a's summary for the account index (acctix.h), as of e's catalog. */
void hr_account_summary(const hr_engine *e, const hr_account *a, hr_acct_sum *s);
/* Rewrites a's summary in e->accounts from a: under the write lock, after
 * any change to what it mirrors (plan, add-ons, usage, overrides, trials,
 * meter values), before the lock is released. */
void hr_engine_sync_account(hr_engine *e, const hr_account *a);
/* How many accounts' summaries differ from what hr_account_summary makes
 * of them now: 0 when every write kept them right (tests check this). */
size_t hr_engine_stale_summaries(hr_engine *e);
/* Recomputes the catalog indexes cached in a (plan, trial plan, add-ons). */
void hr_account_reindex(const hr_catalog *c, hr_account *a);
int64_t hr_period_start(hr_period p, int64_t now);
int64_t hr_period_next(hr_period p, int64_t start);
/* Usage of feature f now (0 when its metered period has rolled over); fname
 * is f's key, interned. */
int64_t hr_account_usage(const hr_account *a, const hr_feature *f, const char *fname, int64_t now);
/* One feature's state (usage against allocation) as JSON, with the usage set
 * over the API given explicitly (so a mutation can describe the state it is
 * about to apply); a meter feeding the feature is added to it. */
void hr_feature_state_json(const hr_catalog *c, const hr_account *a, int fi, int64_t usage,
                           int64_t now, hr_buf *out);
/* Writes the account as JSON (caller holds the lock). */
void hr_account_json(const hr_catalog *c, const hr_account *a, hr_buf *out);

#endif
