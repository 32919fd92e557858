/* decide.c: the entitlement decision and the cheapest way to a yes.
 *
 * An account's allocation of a feature is, in order of precedence: an
 * unexpired override (API, then config); else its plan version's
 * entitlement plus add-on grants, raised by an active plan or feature trial.
 * When the answer is no (or overage), every higher plan and every add-on the
 * plan may buy is priced as a monthly difference against what the account
 * pays now; the cheapest self-serve one is the upgrade, the rest are
 * alternatives. Everything here reads memory under the engine's shared lock
 * and allocates only for the JSON it writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "entitle_int.h"
#include "timeutil.h"

/* The decision's steps are inlined into hr_engine_check, where calls,
 * spills and the unused outputs cost more than the work itself. */
#define HOT static inline __attribute__((always_inline))

enum { SRC_NONE, SRC_PLAN, SRC_ADDON, SRC_OVERRIDE, SRC_TRIAL };
static const char *src_names[] = {"none", "plan", "addon", "override", "trial"};

static const char *reason_names[] = {"ok", "not_in_plan", "limit_reached", "trial_active",
                                     "trial_expired", "override", "overage",
                                     "unknown_account", "unknown_feature"};

const char *hr_reason_str(hr_reason r) {
    return (unsigned)r < sizeof reason_names / sizeof *reason_names ? reason_names[r] : "?";
}

typedef struct grant {
    int64_t limit; /* HR_ENT_NONE, 0/1 for boolean, count, HR_UNLIMITED */
    int src;
    int expired_trial; /* a trial that would have granted more has ended */
} grant;

HOT int64_t plus(int64_t v, int64_t add) {
    if (v == HR_UNLIMITED || add == HR_UNLIMITED) return HR_UNLIMITED;
    if (v == HR_ENT_NONE) v = 0;
    return v > HR_UNLIMITED - add ? HR_UNLIMITED : v + add;
}

/* Plan pi's version v (0 or unknown: the current one); most accounts are
 * on the current one (version numbers are unique within a plan). The
 * common decision finds the current version's row in hr_ftab instead. */
static inline const hr_plan_version *plan_version(const hr_catalog *c, int pi, int v) {
    if (pi < 0 || pi >= c->nplans || !c->plans[pi].nversions) return NULL;
    const hr_plan *p = &c->plans[pi];
    const hr_plan_version *cur = &p->versions[p->nversions - 1];
    if (v > 0 && cur->version != v)
        for (int i = 0; i < p->nversions - 1; i++)
            if (p->versions[i].version == v) return &p->versions[i];
    return cur;
}

HOT const hr_plan_version *acct_version(const hr_catalog *c, const hr_account *a, int *pi) {
    *pi = a->plan_ix; /* cached by the engine for the current catalog */
    return plan_version(c, *pi, a->plan_version);
}

/* v raised by add-on ai (-1: not in the catalog) bought qty times; with
 * only_for >= 0, only if that plan may buy it. */
HOT int64_t addon_grant(const hr_catalog *c, int fi, int boolean, int ai, int64_t qty,
                        int only_for, int64_t v) {
    if (ai < 0) return v;
    const hr_addon *ad = &c->addons[ai];
    int64_t g = ad->grants[fi];
    if (g <= 0 || (only_for >= 0 && !ad->plans[only_for])) return v;
    return boolean ? 1 : plus(v, g == HR_UNLIMITED ? g : g * qty);
}

/* Plan version pv's entitlement for fi plus the account's add-on grants;
 * with only_for >= 0, only add-ons that plan may buy count. */
HOT int64_t plan_limit(const hr_catalog *c, const hr_account *a, int fi,
                          const hr_plan_version *pv, int only_for, int *from_addon) {
    int64_t v = pv ? pv->ent[fi] : HR_ENT_NONE;
    if (from_addon) *from_addon = 0;
    if (!a->naddons) return v;
    int boolean = c->features[fi].type == HR_FEAT_BOOLEAN;
    for (uint16_t i = 0; i < a->naddons; i++) {
        int64_t before = v;
        v = addon_grant(c, fi, boolean, a->addons[i].ix, a->addons[i].qty, only_for, v);
        if (from_addon && v != before) *from_addon = 1;
    }
    return v;
}

/* The value a feature trial gives: on for a boolean; for a count, the
 * lowest-tier plan's entitlement that is more than the account has. */
static int64_t feature_trial_value(const hr_catalog *c, int fi, int64_t base) {
    if (c->features[fi].type == HR_FEAT_BOOLEAN) return 1;
    for (int p = 0; p < c->nplans; p++) {
        const hr_plan *pl = &c->plans[p];
        int64_t v = pl->versions[pl->nversions - 1].ent[fi];
        if (v > base) return v;
    }
    return base;
}

static const hr_ftrial_ent *ftrial_of(const hr_account *a, const char *f) {
    for (uint16_t i = 0; i < a->nftrial; i++)
        if (!strcmp(a->ftrial[i].feature, f)) return &a->ftrial[i];
    return NULL;
}

HOT grant effective(const hr_catalog *c, const hr_account *a, int fi, int64_t now) {
    grant g = {HR_ENT_NONE, SRC_NONE, 0};
    const char *fname = c->features[fi].key;
    for (uint16_t i = 0; i < a->novr; i++) { /* most accounts have none */
        const hr_ovr_ent *o = &a->ovr[i];
        if (!strcmp(o->feature, fname) && (!o->expires_at || now < o->expires_at))
            return (grant){o->value, SRC_OVERRIDE, 0};
    }
    for (int i = 0; i < c->noverrides; i++) {
        const hr_cat_override *o = &c->overrides[i];
        if (o->feature == fi && !strcmp(o->account, a->id) &&
            (!o->expires_at || now < o->expires_at))
            return (grant){o->value, SRC_OVERRIDE, 0};
    }
    int pi, from_addon;
    const hr_plan_version *pv = acct_version(c, a, &pi);
    g.limit = plan_limit(c, a, fi, pv, -1, &from_addon);
    g.src = from_addon ? SRC_ADDON : g.limit == HR_ENT_NONE ? SRC_NONE : SRC_PLAN;
    if (a->trial_plan) {
        int ti = a->trial_ix;
        if (ti >= 0) {
            int64_t tv = plan_limit(c, a, fi, plan_version(c, ti, 0), -1, NULL);
            if (tv > g.limit) {
                if (now < a->trial_ends_at)
                    g.limit = tv, g.src = SRC_TRIAL;
                else
                    g.expired_trial = 1;
            }
        }
    }
    const hr_ftrial_ent *ft = a->nftrial ? ftrial_of(a, fname) : NULL;
    if (ft) {
        int64_t tv = feature_trial_value(c, fi, g.limit);
        if (tv > g.limit) {
            if (now < ft->ends_at)
                g.limit = tv, g.src = SRC_TRIAL, g.expired_trial = 0;
            else
                g.expired_trial = 1;
        }
    }
    return g;
}

int64_t hr_account_limit(const hr_catalog *c, const hr_account *a, int fi, int64_t now) {
    return effective(c, a, fi, now).limit;
}

/* ---- the verdict ------------------------------------------------------- */

/* Bounds of the period containing now, for the periods that are the same
 * for every account (not billing cycles), kept per thread for the last
 * second asked: consecutive decisions share them. */
static _Thread_local struct {
    int64_t now[HR_PERIOD_LIFETIME + 1], start[HR_PERIOD_LIFETIME + 1],
        next[HR_PERIOD_LIFETIME + 1];
} pcache;

static inline int shared_period(hr_period p) {
    return p == HR_PERIOD_DAY || p == HR_PERIOD_WEEK || p == HR_PERIOD_MONTH ||
           p == HR_PERIOD_YEAR || p == HR_PERIOD_LIFETIME;
}

/* For shared_period(p) only: as hr_meter_period_start/next (anchor-free). */
static inline void period_at(hr_period p, int64_t now, int64_t *start, int64_t *next) {
    if (pcache.now[p] != now || !now) {
        pcache.start[p] = hr_meter_period_start(p, now, 0, 1);
        pcache.next[p] = hr_meter_period_next(p, pcache.start[p], 0, 1);
        pcache.now[p] = now;
    }
    *start = pcache.start[p];
    if (next) *next = pcache.next[p];
}

/* Usage set over the API, as hr_account_usage counts it (0 once a metered
 * feature's period has rolled over). */
static inline int64_t api_usage(const hr_account *a, const hr_feature *f, const char *fname,
                                int64_t now) {
    for (uint16_t i = 0; i < a->nusage; i++) {
        const hr_usage_ent *u = &a->usage[i];
        if (u->feature != fname) continue;
        if (f->type == HR_FEAT_METERED) {
            int64_t start;
            if (shared_period(f->period))
                period_at(f->period, now, &start, NULL);
            else
                start = hr_period_start(f->period, now);
            if (u->period_start != start) return 0;
        }
        return u->value;
    }
    return 0;
}

/* A feature's usage: what was set over the API plus, for a feature fed by a
 * meter, the meter's value in its current period. */
HOT int64_t feature_usage(const hr_catalog *c, const hr_account *a, int fi, const char *fname,
                          int64_t now) {
    int64_t u = api_usage(a, &c->features[fi], fname, now);
    int mi = c->feature_meter && a->nmvals ? c->feature_meter[fi] : -1;
    if (mi >= 0) {
        double m = hr_account_meter_now(c, a, mi, now);
        u += m >= (double)INT64_MAX ? INT64_MAX : (int64_t)m;
    }
    return u;
}

int64_t hr_account_feature_usage(const hr_catalog *c, const hr_account *a, int fi,
                                 const char *fname, int64_t now) {
    return feature_usage(c, a, fi, fname, now);
}

/* When the usage next resets: the meter's period for a metered feature fed
 * by a meter, else the feature's own period; 0 if it never resets. */
HOT int64_t feature_resets(const hr_catalog *c, const hr_account *a, int fi, int64_t now) {
    const hr_feature *f = &c->features[fi];
    int mi = c->feature_meter ? c->feature_meter[fi] : -1;
    if (mi >= 0) {
        const hr_meter *m = &c->meters[mi];
        if (shared_period(m->period)) {
            int64_t start, next;
            period_at(m->period, now, &start, &next);
            return next == INT64_MAX ? 0 : next;
        }
        int months = a->interval == HR_INTERVAL_YEAR ? 12 : 1;
        int64_t next = hr_meter_period_next(
            m->period, hr_meter_period_start(m->period, now, a->renews_at, months), a->renews_at,
            months);
        return next == INT64_MAX ? 0 : next;
    }
    if (f->type == HR_FEAT_METERED) {
        if (shared_period(f->period)) {
            int64_t start, next;
            period_at(f->period, now, &start, &next);
            return next;
        }
        return hr_period_next(f->period, hr_period_start(f->period, now));
    }
    return 0;
}

HOT void verdict_of(const hr_catalog *c, const hr_account *a, int fi, const char *fname,
                       int64_t qty, int64_t now, grant *gout, hr_verdict *v) {
    const hr_feature *f = &c->features[fi];
    grant g = effective(c, a, fi, now);
    *gout = g;
    memset(v, 0, sizeof *v);
    if (f->type == HR_FEAT_BOOLEAN) {
        v->limit = g.limit == 1;
        v->allowed = g.limit == 1;
    } else {
        v->usage = feature_usage(c, a, fi, fname, now);
        v->limit = g.limit == HR_ENT_NONE ? 0 : g.limit;
        v->resets_at = feature_resets(c, a, fi, now);
        v->remaining = g.limit == HR_UNLIMITED ? HR_UNLIMITED
                       : v->usage >= v->limit  ? 0
                                               : v->limit - v->usage;
        v->allowed = g.limit != HR_ENT_NONE &&
                     (g.limit == HR_UNLIMITED || (qty <= v->remaining && v->usage <= v->limit));
    }
    if (v->allowed) {
        v->reason = g.src == SRC_OVERRIDE ? HR_REASON_OVERRIDE
                    : g.src == SRC_TRIAL  ? HR_REASON_TRIAL_ACTIVE
                                          : HR_REASON_OK;
    } else if (f->type != HR_FEAT_BOOLEAN && g.limit != HR_ENT_NONE && f->has_overage) {
        v->allowed = 1;
        v->reason = HR_REASON_OVERAGE;
        v->overage_units = v->usage + qty - v->limit;
        v->overage_cost = hr_catalog_minor(c, v->overage_units * f->overage_price);
    } else if (g.expired_trial) {
        v->reason = HR_REASON_TRIAL_EXPIRED;
    } else if (g.limit == HR_ENT_NONE || f->type == HR_FEAT_BOOLEAN) {
        v->reason = HR_REASON_NOT_IN_PLAN;
    } else {
        v->reason = HR_REASON_LIMIT_REACHED;
    }
}

/* Unix seconds for a caller that passes now = 0: the coarse clock, read
 * from memory the kernel updates every tick (1-4 ms), costs a few
 * nanoseconds where the precise one costs ~20 on a VM; the decision only
 * needs seconds. It may lag the precise clock by one tick. */
static int64_t check_now(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME_COARSE, &ts)) return hr_time_now();
    return (int64_t)ts.tv_sec;
}

/* *now, reading the clock on first use (0: not read yet). */
static inline int64_t now_of(int64_t *now) {
    if (!*now) *now = check_now();
    return *now;
}

/* The caller's feature name as the table is probed with it: its length
 * and hr_fkey_hash (with its words up to 16 bytes). */
typedef struct fkey {
    const char *s;
    size_t n;
    uint64_t h, a, b;
} fkey;

static inline fkey fkey_of(const char *s) {
    fkey k = {s, hr_key_len(s), 0, 0, 0};
    k.h = hr_fkey_hash(s, k.n, &k.a, &k.b);
    return k;
}

/* Whether slot s holds feature k: short names by the words kept in the
 * slot (equal words and length: equal names). */
static inline int fslot_is(const hr_fslot *s, const fkey *k) {
    if (s->hash != k->h || s->len != k->n) return 0;
    if (k->n > 16) return !memcmp(s->key, k->s, k->n);
    return ((k->a ^ s->a) | (k->b ^ s->b)) == 0;
}

/* The current catalog's slot for feature k, NULL if none; under the lock. */
static inline const hr_fslot *feature_slot(const hr_ftab *t, const fkey *k) {
    if (!t) return NULL;
    uint32_t i = (uint32_t)k->h & t->mask;
    if (t->direct) /* a feature not in its home slot is not in the table */
        return fslot_is(&t->slots[i], k) ? &t->slots[i] : NULL;
    for (;; i = (i + 1) & t->mask) {
        if (!t->slots[i].hash) return NULL;
        if (fslot_is(&t->slots[i], k)) return &t->slots[i];
    }
}

/* resets_at and the answer of a plain decision on a non-boolean feature,
 * from lim (the allocation) and usage (as feature_usage counts it): shared
 * by the summary's and the account's paths. */
HOT void plain_tail(const hr_catalog *c, const hr_fslot *fs, int64_t lim, int64_t usage,
                    int64_t qty, int64_t *now, hr_verdict *v) {
    int64_t start, next;
    int64_t resets = 0;
    if (fs->reset != HR_FRESET_NONE) { /* as feature_resets */
        period_at(fs->rperiod, now_of(now), &start, &next);
        resets = fs->reset == HR_FRESET_METER && next == INT64_MAX ? 0 : next;
    }
    int64_t limit = lim == HR_ENT_NONE ? 0 : lim;
    int64_t rem = lim == HR_UNLIMITED ? HR_UNLIMITED : usage >= limit ? 0 : limit - usage;
    int ok = lim != HR_ENT_NONE && (lim == HR_UNLIMITED || (qty <= rem && usage <= limit));
    *v = (hr_verdict){.allowed = ok, .reason = HR_REASON_OK, .usage = usage, .limit = limit,
                      .remaining = rem, .resets_at = resets};
    if (ok) return;
    if (lim != HR_ENT_NONE && fs->overage) {
        v->allowed = 1;
        v->reason = HR_REASON_OVERAGE;
        v->overage_units = usage + qty - limit;
        v->overage_cost =
            hr_catalog_minor(c, v->overage_units * c->features[fs->fi].overage_price);
    } else {
        v->reason = lim == HR_ENT_NONE ? HR_REASON_NOT_IN_PLAN : HR_REASON_LIMIT_REACHED;
    }
}

/* verdict_of's answer for the common case, in a few dozen instructions: an
 * account without overrides, plan trial or feature trials (in a catalog
 * without per-account overrides), on a feature whose usage and resets
 * follow the calendar. Everything rarer (overrides, trials, billing
 * cycles) stays out of this instruction stream, so that a call is short
 * enough for the CPU to start the next call's cache misses while this one
 * waits for its own. The clock is read only when the feature needs it.
 * Returns 0, having written nothing, for any other case. */
HOT int plain_verdict(const hr_catalog *c, const hr_ftab *t, const hr_account *a,
                      const hr_fslot *fs, int64_t qty, int64_t *now, hr_verdict *v) {
    int pr = a->plan_ix + 1; /* the plan's row in t (0: none) */
    if ((a->novr | a->nftrial) || a->trial_plan || fs->full || (unsigned)pr > (unsigned)t->nplans)
        return 0;
    int fi = fs->fi;
    const int64_t *ent = t->plan_ent[pr]; /* as acct_version, for the current version */
    if (__builtin_expect(a->plan_version > 0 && a->plan_version != t->plan_ver[pr], 0)) {
        const hr_plan_version *pv = plan_version(c, a->plan_ix, a->plan_version);
        ent = pv ? pv->ent : t->plan_ent[0];
    }
    int64_t lim = ent[fi];
    if (a->naddons == 1) /* from the account itself, not addons[] */
        lim = addon_grant(c, fi, fs->type == HR_FEAT_BOOLEAN, a->addon_ix, a->addon_qty, -1, lim);
    else if (a->naddons) {
        int pi;
        lim = plan_limit(c, a, fi, acct_version(c, a, &pi), -1, NULL);
    }
    if (fs->type == HR_FEAT_BOOLEAN) {
        int on = lim == 1;
        *v = (hr_verdict){.allowed = on, .reason = on ? HR_REASON_OK : HR_REASON_NOT_IN_PLAN,
                          .limit = on};
        return 1;
    }
    /* api_usage: the feature's entry counts if in its period; looked for
     * at its home first (hr_ftab.uhome), else scanned from the end without
     * a branch on where it is */
    const hr_usage_ent *u = NULL;
    if (__builtin_expect(fs->uhome < a->nusage && a->usage[fs->uhome].feature == fs->name, 1))
        u = &a->usage[fs->uhome];
    else
        for (uint16_t i = a->nusage; i-- > 0;)
            u = a->usage[i].feature == fs->name ? &a->usage[i] : u;
    int64_t usage = u ? u->value : 0, start;
    if (u && fs->uperiod != HR_PERIOD_NONE) {
        period_at(fs->uperiod, now_of(now), &start, NULL);
        if (u->period_start != start) usage = 0;
    }
    if (fs->mi >= 0 && a->nmvals) { /* as feature_usage */
        double m = hr_account_meter_now(c, a, fs->mi, now_of(now));
        usage += m >= (double)INT64_MAX ? INT64_MAX : (int64_t)m;
    }
    plain_tail(c, fs, lim, usage, qty, now, v);
    return 1;
}

/* plain_verdict from the account's summary in its index slot (acctix.h),
 * without reading the account: the summary's plan row, add-on and the
 * feature's usage (API usage and meter value, added up) at its home.
 * Returns 0 for anything else (an account that is not plain, a
 * grandfathered plan version). */
HOT int sum_verdict(const hr_catalog *c, const hr_ftab *t, const hr_acct_sum *s,
                    const hr_fslot *fs, int64_t qty, int64_t *now, hr_verdict *v) {
    int pr = s->prow;
    if (!s->plain || fs->full || (unsigned)pr > (unsigned)t->nplans ||
        (s->plan_version > 0 && s->plan_version != t->plan_ver[pr]))
        return 0;
    int fi = fs->fi;
    int64_t lim = t->plan_ent[pr][fi];
    if (s->naddons)
        lim = addon_grant(c, fi, fs->type == HR_FEAT_BOOLEAN, s->addon_ix, s->addon_qty, -1, lim);
    if (fs->type == HR_FEAT_BOOLEAN) {
        int on = lim == 1;
        *v = (hr_verdict){.allowed = on, .reason = on ? HR_REASON_OK : HR_REASON_NOT_IN_PLAN,
                          .limit = on};
        return 1;
    }
    /* a plain summary keeps every feature's usage at its home: none there,
     * none at all */
    int h = fs->uhome;
    int64_t usage = 0, start;
    if (s->ufi[h] == fi + 1) {
        usage = s->uval[h];
        if (s->uper[h] != HR_PERIOD_NONE) {
            period_at((hr_period)s->uper[h], now_of(now), &start, NULL);
            if ((int64_t)s->ustart[h] != start) usage = 0;
        }
    }
    plain_tail(c, fs, lim, usage, qty, now, v);
    return 1;
}

/* Builds with HR_CHECK_SUMMARIES (the sanitizer builds, which run every
 * test) compare the summary a decision read with one made from the
 * account now, and abort on a difference: a write that forgot
 * hr_engine_sync_account shows up in whichever test decides after it. */
static inline void check_summary(const hr_engine *e, const hr_acct_slot *as) {
#ifdef HR_CHECK_SUMMARIES
    hr_acct_sum now;
    hr_account_summary(e, as->acct, &now);
    if (memcmp(&now, &as->sum, sizeof now)) {
        fprintf(stderr, "headroom: stale decision summary of account '%s'\n", as->acct->id);
        abort();
    }
#else
    (void)e, (void)as;
#endif
}

/* Every other case, out of line: the full rules. */
static __attribute__((noinline)) void full_verdict(const hr_catalog *c, const hr_account *a,
                                                   const hr_fslot *fs, int64_t qty, int64_t now,
                                                   hr_verdict *v) {
    grant g;
    verdict_of(c, a, fs->fi, fs->name, qty, now ? now : check_now(), &g, v);
}

int hr_engine_check(hr_engine *e, const char *account, const char *feature, int64_t quantity,
                    int64_t now, hr_verdict *out) {
    /* the caller's strings are hashed before taking the lock */
    hr_acctix_key ak;
    hr_acctix_key_of(account, &ak);
    fkey fk = fkey_of(feature);
    if (quantity < 0) quantity = 0;
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    /* the feature first: it is in cache, and what runs after the account's
     * cache misses is what keeps the next call's misses from starting */
    const hr_fslot *fs = feature_slot(e->ftab, &fk);
    const hr_acct_slot *as = hr_acctix_find_fast(e->accounts, &ak);
    if (__builtin_expect(!as || !fs, 0)) {
        memset(out, 0, sizeof *out);
        out->reason = !as ? HR_REASON_UNKNOWN_ACCOUNT : HR_REASON_UNKNOWN_FEATURE;
    } else {
        check_summary(e, as);
        /* the slot, else the account's first lines, else the full rules */
        if (!sum_verdict(e->cat, e->ftab, &as->sum, fs, quantity, &now, out) &&
            !plain_verdict(e->cat, e->ftab, as->acct, fs, quantity, &now, out))
            full_verdict(e->cat, as->acct, fs, quantity, now, out);
    }
    hr_rdlock_read_end(e->lock, rs);
    return 0;
}

/* ---- upgrade options --------------------------------------------------- */

enum { OPT_PLAN, OPT_ADDON, OPT_CONTACT };

typedef struct option {
    int kind, idx;
    int64_t qty;
    int64_t delta;   /* micros per month (one-time add-ons: once) */
    hr_interval iv;
    int64_t after;   /* the allocation after the change */
} option;

/* Monthly cost of the account's add-ons; with only_for >= 0, of those that
 * plan may buy (the ones kept when moving to it). One-off add-ons cost 0. */
static int64_t addons_monthly(const hr_catalog *c, const hr_account *a, int only_for) {
    int64_t m = 0;
    for (uint16_t i = 0; i < a->naddons; i++) {
        int ai = a->addons[i].ix;
        if (ai < 0 || c->addons[ai].interval == HR_INTERVAL_ONE_TIME) continue;
        if (only_for >= 0 && !c->addons[ai].plans[only_for]) continue;
        m += hr_catalog_monthly(c->addons[ai].price, c->addons[ai].interval) * a->addons[i].qty;
    }
    return m;
}

/* What the account pays per month now: its plan version plus add-ons. */
static int64_t current_monthly(const hr_catalog *c, const hr_account *a) {
    int pi;
    const hr_plan_version *pv = acct_version(c, a, &pi);
    return (pv ? hr_catalog_monthly(pv->price, pv->interval) : 0) + addons_monthly(c, a, -1);
}

static int helps(const hr_feature *f, int64_t after, int64_t needed) {
    if (f->type == HR_FEAT_BOOLEAN) return after == 1;
    return after == HR_UNLIMITED || (after != HR_ENT_NONE && after >= needed);
}

static int opt_cmp(const void *x, const void *y) {
    const option *a = x, *b = y;
    if ((a->kind == OPT_CONTACT) != (b->kind == OPT_CONTACT)) return a->kind == OPT_CONTACT ? 1 : -1;
    if (a->delta != b->delta) return a->delta < b->delta ? -1 : 1;
    if (a->kind != b->kind) return a->kind == OPT_ADDON ? -1 : 1; /* the smaller change */
    return a->idx - b->idx;
}

/* Fills opts (capacity nplans + naddons); returns the count, sorted. */
static int options(const hr_catalog *c, const hr_account *a, int fi, int64_t needed,
                   const grant *g, option *opts) {
    const hr_feature *f = &c->features[fi];
    int n = 0, pi;
    if (g->src == SRC_OVERRIDE) return 0; /* an override decides whatever the plan */
    const hr_plan_version *cur = acct_version(c, a, &pi);
    int64_t paid = plan_limit(c, a, fi, cur, -1, NULL);
    int64_t now_m = current_monthly(c, a);
    for (int p = 0; p < c->nplans; p++) {
        const hr_plan *pl = &c->plans[p];
        if (pi >= 0 && pl->tier <= c->plans[pi].tier) continue;
        const hr_plan_version *pv = &pl->versions[pl->nversions - 1];
        int64_t after = plan_limit(c, a, fi, pv, p, NULL);
        if (!helps(f, after, needed)) continue;
        option o = {pl->contact_sales ? OPT_CONTACT : OPT_PLAN, p, 1, 0, HR_INTERVAL_MONTH, after};
        /* the new plan plus the add-ons it keeps, against today's bill */
        if (!pl->contact_sales)
            o.delta = hr_catalog_monthly(pv->price, pv->interval) + addons_monthly(c, a, p) - now_m;
        opts[n++] = o;
    }
    if (pi >= 0) {
        for (int ai = 0; ai < c->naddons; ai++) {
            const hr_addon *ad = &c->addons[ai];
            int64_t per = ad->grants[fi];
            if (per <= 0 || !ad->plans[pi]) continue;
            int64_t owned = 0;
            for (uint16_t i = 0; i < a->naddons; i++)
                if (a->addons[i].ix == ai) owned = a->addons[i].qty;
            int64_t qty, after;
            if (f->type == HR_FEAT_BOOLEAN) {
                if (owned) continue;
                qty = 1;
                after = 1;
            } else {
                /* from what the account pays for: a trial ends */
                int64_t base = g->src == SRC_TRIAL ? paid : g->limit;
                if (base == HR_ENT_NONE) base = 0;
                if (base == HR_UNLIMITED) continue;
                qty = per == HR_UNLIMITED ? 1 : (needed - base + per - 1) / per;
                if (qty < 1) qty = 1;
                after = plus(base, per == HR_UNLIMITED ? per : per * qty);
            }
            if (ad->max_quantity && owned + qty > ad->max_quantity) continue;
            option o = {OPT_ADDON, ai, qty, ad->price * qty, ad->interval, after};
            if (ad->interval == HR_INTERVAL_YEAR) o.delta = hr_catalog_monthly(ad->price, ad->interval) * qty;
            opts[n++] = o;
        }
    }
    qsort(opts, (size_t)n, sizeof *opts, opt_cmp);
    return n;
}

static void money(const hr_catalog *c, int64_t micros, hr_interval iv, hr_buf *out) {
    hr_buf_puts(out, "{\"amount\":");
    hr_buf_i64(out, hr_catalog_minor(c, micros));
    hr_buf_puts(out, ",\"currency\":");
    hr_buf_json_str(out, c->currency);
    hr_buf_puts(out, ",\"interval\":");
    hr_buf_json_str(out, hr_interval_str(iv));
    hr_buf_putc(out, '}');
}

/* "limit_after": n, or null with "unlimited": true; booleans say "grants". */
static void after_json(const hr_feature *f, const char *field, int64_t v, hr_buf *out) {
    hr_buf_putc(out, ',');
    if (f->type == HR_FEAT_BOOLEAN) {
        hr_buf_puts(out, "\"grants\":true");
        return;
    }
    hr_buf_json_key(out, field);
    if (v == HR_UNLIMITED)
        hr_buf_puts(out, "null,\"unlimited\":true");
    else
        hr_buf_i64(out, v == HR_ENT_NONE ? 0 : v);
}

static void option_json(const hr_catalog *c, const hr_account *a, const hr_feature *f,
                        const option *o, hr_buf *out) {
    if (o->kind == OPT_ADDON) {
        const hr_addon *ad = &c->addons[o->idx];
        hr_buf_puts(out, "{\"kind\":\"addon\",\"addon\":");
        hr_buf_json_str(out, ad->key);
        hr_buf_puts(out, ",\"name\":");
        hr_buf_json_str(out, ad->name ? ad->name : ad->key);
        hr_buf_puts(out, ",\"quantity\":");
        hr_buf_i64(out, o->qty);
        hr_buf_puts(out, ",\"price_delta\":");
        money(c, o->delta, o->iv == HR_INTERVAL_ONE_TIME ? o->iv : HR_INTERVAL_MONTH, out);
    } else {
        const hr_plan *p = &c->plans[o->idx];
        hr_buf_puts(out, o->kind == OPT_CONTACT ? "{\"kind\":\"contact_sales\",\"plan\":"
                                                : "{\"kind\":\"plan\",\"plan\":");
        hr_buf_json_str(out, p->key);
        hr_buf_puts(out, ",\"name\":");
        hr_buf_json_str(out, p->name ? p->name : p->key);
        if (o->kind == OPT_PLAN) {
            hr_buf_puts(out, ",\"price_delta\":");
            money(c, o->delta, HR_INTERVAL_MONTH, out);
            if (p->trial_days && !a->plan_trial_used) {
                hr_buf_puts(out, ",\"trial_days\":");
                hr_buf_i64(out, p->trial_days);
            }
        }
    }
    after_json(f, "limit_after", o->after, out);
    hr_buf_putc(out, '}');
}

/* The trial that would allow the request, if the account has one unused. */
static void trial_offer(const hr_catalog *c, const hr_account *a, int fi, int64_t needed,
                        int64_t current, const option *opts, int nopts, hr_buf *out) {
    const hr_feature *f = &c->features[fi];
    int days = c->feature_trial_days[fi];
    if (days > 0 && !ftrial_of(a, f->key) &&
        helps(f, feature_trial_value(c, fi, current), needed)) {
        hr_buf_puts(out, ",\"trial\":{\"kind\":\"feature\",\"feature\":");
        hr_buf_json_str(out, f->key);
        hr_buf_puts(out, ",\"days\":");
        hr_buf_i64(out, days);
        hr_buf_putc(out, '}');
        return;
    }
    if (a->plan_trial_used) return;
    for (int i = 0; i < nopts; i++) { /* cheapest first */
        if (opts[i].kind != OPT_PLAN || !c->plans[opts[i].idx].trial_days) continue;
        hr_buf_puts(out, ",\"trial\":{\"kind\":\"plan\",\"plan\":");
        hr_buf_json_str(out, c->plans[opts[i].idx].key);
        hr_buf_puts(out, ",\"days\":");
        hr_buf_i64(out, c->plans[opts[i].idx].trial_days);
        hr_buf_putc(out, '}');
        return;
    }
}

static void count_json(const char *key, int64_t v, hr_buf *out) {
    hr_buf_putc(out, ',');
    hr_buf_json_key(out, key);
    if (v == HR_UNLIMITED)
        hr_buf_puts(out, "null");
    else
        hr_buf_i64(out, v);
}

int hr_engine_decide(hr_engine *e, const char *account, const char *feature, int64_t quantity,
                     int64_t now, hr_verdict *verdict, hr_buf *out) {
    hr_verdict v;
    if (!now) now = hr_time_now();
    if (quantity < 0) quantity = 0;
    memset(&v, 0, sizeof v);
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    const hr_catalog *c = e->cat;
    const hr_account *a = hr_acctix_get(e->accounts, account);
    int fi = hr_catalog_feature(c, feature);
    grant g = {0};
    if (!a)
        v.reason = HR_REASON_UNKNOWN_ACCOUNT;
    else if (fi < 0)
        v.reason = HR_REASON_UNKNOWN_FEATURE;
    else
        verdict_of(c, a, fi, e->fnames[fi], quantity, now, &g, &v);
    hr_buf_puts(out, v.allowed ? "{\"allowed\":true,\"reason\":" : "{\"allowed\":false,\"reason\":");
    hr_buf_json_str(out, hr_reason_str(v.reason));
    hr_buf_puts(out, ",\"account\":");
    hr_buf_json_str(out, account);
    hr_buf_puts(out, ",\"feature\":");
    hr_buf_json_str(out, feature);
    hr_buf_puts(out, ",\"quantity\":");
    hr_buf_i64(out, quantity);
    if (a && fi >= 0) {
        const hr_feature *f = &c->features[fi];
        hr_buf_puts(out, ",\"type\":");
        hr_buf_json_str(out, hr_feature_type_str(f->type));
        if (f->type != HR_FEAT_BOOLEAN) {
            count_json("usage", v.usage, out);
            count_json("limit", v.limit, out);
            count_json("remaining", v.remaining, out);
            hr_buf_puts(out, v.limit == HR_UNLIMITED ? ",\"unlimited\":true" : ",\"unlimited\":false");
            hr_buf_puts(out, ",\"resets_at\":");
            hr_buf_json_time(out, v.resets_at);
        }
        if (v.reason == HR_REASON_OVERAGE) {
            hr_buf_puts(out, ",\"overage\":{\"units\":");
            hr_buf_i64(out, v.overage_units);
            hr_buf_puts(out, ",\"unit_price\":");
            money(c, f->overage_price, HR_INTERVAL_ONE_TIME, out);
            hr_buf_puts(out, ",\"cost\":");
            money(c, v.overage_units * f->overage_price, HR_INTERVAL_ONE_TIME, out);
            hr_buf_putc(out, '}');
        }
        if (!v.allowed || v.reason == HR_REASON_OVERAGE) {
            option stack[16], *opts = stack;
            size_t cap = (size_t)(c->nplans + c->naddons);
            if (cap > 16 && !(opts = malloc(cap * sizeof *opts))) opts = NULL;
            int n = opts ? options(c, a, fi, v.usage + quantity, &g, opts) : 0;
            int first = -1;
            for (int i = 0; i < n && first < 0; i++)
                if (opts[i].kind != OPT_CONTACT) first = i;
            hr_buf_puts(out, ",\"upgrade\":");
            if (first >= 0)
                option_json(c, a, f, &opts[first], out);
            else
                hr_buf_puts(out, "null");
            if (!v.allowed) trial_offer(c, a, fi, v.usage + quantity, g.limit, opts, n, out);
            hr_buf_puts(out, ",\"alternatives\":[");
            int k = 0;
            for (int i = 0; i < n; i++) {
                if (i == first) continue;
                if (k++) hr_buf_putc(out, ',');
                option_json(c, a, f, &opts[i], out);
            }
            hr_buf_putc(out, ']');
            if (opts != stack) free(opts);
        }
    }
    hr_buf_putc(out, '}');
    hr_rdlock_read_end(e->lock, rs);
    if (verdict) *verdict = v;
    return hr_buf_failed(out) ? HR_ENOMEM : 0;
}

int hr_engine_check_json(hr_engine *e, const char *account, const char *feature,
                         int64_t quantity, int64_t now, char **json) {
    hr_buf b;
    hr_buf_init(&b);
    int rc = hr_engine_decide(e, account, feature, quantity, now, NULL, &b);
    if (rc) {
        hr_buf_dispose(&b);
        *json = NULL;
        return rc;
    }
    *json = hr_buf_steal(&b, NULL);
    return 0;
}

/* ---- state for billing screens ----------------------------------------- */

void hr_feature_state_json(const hr_catalog *c, const hr_account *a, int fi, int64_t usage,
                           int64_t now, hr_buf *out) {
    const hr_feature *f = &c->features[fi];
    grant g = effective(c, a, fi, now);
    int mi = c->feature_meter ? c->feature_meter[fi] : -1;
    if (mi >= 0) { /* the meter's part, as in feature_usage */
        double m = hr_account_meter_now(c, a, mi, now);
        usage += m >= (double)INT64_MAX ? INT64_MAX : (int64_t)m;
    }
    hr_buf_puts(out, "{\"account\":");
    hr_buf_json_str(out, a->id);
    hr_buf_puts(out, ",\"feature\":");
    hr_buf_json_str(out, f->key);
    hr_buf_puts(out, ",\"type\":");
    hr_buf_json_str(out, hr_feature_type_str(f->type));
    if (f->unit) {
        hr_buf_puts(out, ",\"unit\":");
        hr_buf_json_str(out, f->unit);
    }
    int enabled = f->type == HR_FEAT_BOOLEAN ? g.limit == 1 : g.limit != HR_ENT_NONE;
    hr_buf_puts(out, enabled ? ",\"enabled\":true" : ",\"enabled\":false");
    if (f->type != HR_FEAT_BOOLEAN) {
        int64_t lim = g.limit == HR_ENT_NONE ? 0 : g.limit;
        count_json("usage", usage, out);
        count_json("limit", lim, out);
        count_json("remaining", lim == HR_UNLIMITED ? HR_UNLIMITED : usage >= lim ? 0 : lim - usage, out);
        hr_buf_puts(out, lim == HR_UNLIMITED ? ",\"unlimited\":true" : ",\"unlimited\":false");
        hr_buf_puts(out, ",\"resets_at\":");
        hr_buf_json_time(out, feature_resets(c, a, fi, now));
        if (f->has_overage) {
            hr_buf_puts(out, ",\"overage_price\":");
            money(c, f->overage_price, HR_INTERVAL_ONE_TIME, out);
        }
    }
    hr_buf_puts(out, ",\"source\":");
    hr_buf_json_str(out, src_names[g.src]);
    hr_buf_putc(out, '}');
}

static void plan_ref_json(const hr_catalog *c, const hr_account *a, hr_buf *out) {
    int pi;
    const hr_plan_version *pv = acct_version(c, a, &pi);
    hr_buf_puts(out, "{\"key\":");
    hr_buf_json_str(out, a->plan);
    if (pi >= 0) {
        hr_buf_puts(out, ",\"name\":");
        hr_buf_json_str(out, c->plans[pi].name ? c->plans[pi].name : c->plans[pi].key);
        hr_buf_puts(out, ",\"version\":");
        hr_buf_i64(out, pv->version);
        hr_buf_puts(out, ",\"current_version\":");
        hr_buf_i64(out, c->plans[pi].versions[c->plans[pi].nversions - 1].version);
        hr_buf_puts(out, ",\"price\":");
        money(c, pv->price, pv->interval, out);
        hr_buf_puts(out, c->plans[pi].contact_sales ? ",\"contact_sales\":true" : ",\"contact_sales\":false");
    } else {
        hr_buf_puts(out, ",\"unknown\":true");
    }
    hr_buf_putc(out, '}');
}

void hr_account_json(const hr_catalog *c, const hr_account *a, hr_buf *out) {
    hr_buf_puts(out, "{\"id\":");
    hr_buf_json_str(out, a->id);
    hr_buf_puts(out, ",\"name\":");
    hr_buf_json_str(out, a->name);
    hr_buf_puts(out, ",\"plan\":");
    hr_buf_json_str(out, a->plan);
    hr_buf_puts(out, ",\"plan_version\":");
    hr_buf_i64(out, a->plan_version);
    hr_buf_puts(out, ",\"interval\":");
    hr_buf_json_str(out, a->interval == HR_INTERVAL_YEAR ? "year" : "month");
    hr_buf_puts(out, ",\"addons\":{");
    for (uint16_t i = 0; i < a->naddons; i++) {
        if (i) hr_buf_putc(out, ',');
        hr_buf_json_key(out, a->addons[i].addon);
        hr_buf_i64(out, a->addons[i].qty);
    }
    hr_buf_puts(out, "},\"traits\":");
    hr_buf_puts(out, a->traits_json ? a->traits_json : "{}");
    hr_buf_puts(out, ",\"owner\":");
    hr_buf_json_str(out, a->owner);
    hr_buf_puts(out, ",\"renews_at\":");
    hr_buf_json_time(out, a->renews_at);
    hr_buf_puts(out, ",\"trial\":");
    if (a->trial_plan) {
        int64_t now = hr_time_now();
        hr_buf_puts(out, "{\"plan\":");
        hr_buf_json_str(out, a->trial_plan);
        hr_buf_puts(out, ",\"started_at\":");
        hr_buf_json_time(out, a->trial_started_at);
        hr_buf_puts(out, ",\"ends_at\":");
        hr_buf_json_time(out, a->trial_ends_at);
        hr_buf_puts(out, now < a->trial_ends_at ? ",\"active\":true}" : ",\"active\":false}");
    } else {
        hr_buf_puts(out, "null");
    }
    hr_buf_puts(out, a->plan_trial_used ? ",\"plan_trial_used\":true" : ",\"plan_trial_used\":false");
    hr_buf_puts(out, ",\"overrides\":[");
    for (uint16_t i = 0; i < a->novr; i++) {
        if (i) hr_buf_putc(out, ',');
        hr_buf_puts(out, "{\"feature\":");
        hr_buf_json_str(out, a->ovr[i].feature);
        hr_buf_puts(out, ",\"value\":");
        int fi = hr_catalog_feature(c, a->ovr[i].feature);
        if (a->ovr[i].value == HR_UNLIMITED)
            hr_buf_puts(out, "\"unlimited\"");
        else if (fi >= 0 && c->features[fi].type == HR_FEAT_BOOLEAN)
            hr_buf_puts(out, a->ovr[i].value ? "true" : "false");
        else
            hr_buf_i64(out, a->ovr[i].value);
        hr_buf_puts(out, ",\"expires_at\":");
        hr_buf_json_time(out, a->ovr[i].expires_at);
        hr_buf_putc(out, '}');
    }
    hr_buf_puts(out, "],\"feature_trials\":[");
    for (uint16_t i = 0; i < a->nftrial; i++) {
        if (i) hr_buf_putc(out, ',');
        hr_buf_puts(out, "{\"feature\":");
        hr_buf_json_str(out, a->ftrial[i].feature);
        hr_buf_puts(out, ",\"started_at\":");
        hr_buf_json_time(out, a->ftrial[i].started_at);
        hr_buf_puts(out, ",\"ends_at\":");
        hr_buf_json_time(out, a->ftrial[i].ends_at);
        hr_buf_putc(out, '}');
    }
    hr_buf_puts(out, "],\"users\":");
    hr_buf_i64(out, a->nusers);
    hr_buf_puts(out, ",\"created_at\":");
    hr_buf_json_time(out, a->created_at);
    hr_buf_puts(out, ",\"updated_at\":");
    hr_buf_json_time(out, a->updated_at);
    hr_buf_putc(out, '}');
}

int hr_engine_entitlements(hr_engine *e, const char *account, int64_t now, hr_buf *out) {
    if (!now) now = hr_time_now();
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    const hr_catalog *c = e->cat;
    const hr_account *a = hr_acctix_get(e->accounts, account);
    if (!a) {
        hr_rdlock_read_end(e->lock, rs);
        return HR_ENOTFOUND;
    }
    int pi;
    acct_version(c, a, &pi);
    hr_buf_puts(out, "{\"account\":");
    hr_buf_json_str(out, a->id);
    hr_buf_puts(out, ",\"name\":");
    hr_buf_json_str(out, a->name);
    hr_buf_puts(out, ",\"plan\":");
    plan_ref_json(c, a, out);
    hr_buf_puts(out, ",\"renews_at\":");
    hr_buf_json_time(out, a->renews_at);
    hr_buf_puts(out, ",\"currency\":");
    hr_buf_json_str(out, c->currency);
    hr_buf_puts(out, ",\"monthly_total\":");
    money(c, current_monthly(c, a), HR_INTERVAL_MONTH, out);
    hr_buf_puts(out, ",\"trial\":");
    if (a->trial_plan && now < a->trial_ends_at) {
        hr_buf_puts(out, "{\"plan\":");
        hr_buf_json_str(out, a->trial_plan);
        hr_buf_puts(out, ",\"ends_at\":");
        hr_buf_json_time(out, a->trial_ends_at);
        hr_buf_putc(out, '}');
    } else {
        hr_buf_puts(out, "null");
    }
    hr_buf_puts(out, ",\"features\":{");
    for (int fi = 0; fi < c->nfeatures; fi++) {
        if (fi) hr_buf_putc(out, ',');
        hr_buf_json_key(out, c->features[fi].key);
        hr_feature_state_json(c, a, fi, hr_account_usage(a, &c->features[fi], e->fnames[fi], now),
                              now, out);
    }
    hr_buf_puts(out, "},\"addons\":{");
    for (uint16_t i = 0; i < a->naddons; i++) {
        if (i) hr_buf_putc(out, ',');
        hr_buf_json_key(out, a->addons[i].addon);
        hr_buf_i64(out, a->addons[i].qty);
    }
    hr_buf_puts(out, "},\"available_addons\":[");
    int k = 0;
    for (int ai = 0; pi >= 0 && ai < c->naddons; ai++) {
        const hr_addon *ad = &c->addons[ai];
        if (!ad->plans[pi]) continue;
        int64_t owned = 0;
        for (uint16_t i = 0; i < a->naddons; i++)
            if (a->addons[i].ix == ai) owned = a->addons[i].qty;
        if (k++) hr_buf_putc(out, ',');
        hr_buf_puts(out, "{\"addon\":");
        hr_buf_json_str(out, ad->key);
        hr_buf_puts(out, ",\"name\":");
        hr_buf_json_str(out, ad->name ? ad->name : ad->key);
        hr_buf_puts(out, ",\"price\":");
        money(c, ad->price, ad->interval, out);
        hr_buf_puts(out, ",\"grants\":{");
        int gk = 0;
        for (int fi = 0; fi < c->nfeatures; fi++) {
            if (ad->grants[fi] <= 0) continue;
            if (gk++) hr_buf_putc(out, ',');
            hr_buf_json_key(out, c->features[fi].key);
            if (c->features[fi].type == HR_FEAT_BOOLEAN)
                hr_buf_puts(out, "true");
            else
                hr_buf_i64(out, ad->grants[fi]);
        }
        hr_buf_puts(out, "},\"owned\":");
        hr_buf_i64(out, owned);
        hr_buf_puts(out, ",\"max_quantity\":");
        if (ad->max_quantity)
            hr_buf_i64(out, ad->max_quantity);
        else
            hr_buf_puts(out, "null");
        hr_buf_putc(out, '}');
    }
    hr_buf_puts(out, "],\"upgrades\":[");
    k = 0;
    int64_t now_m = current_monthly(c, a);
    for (int p = 0; p < c->nplans; p++) {
        const hr_plan *pl = &c->plans[p];
        if (pi >= 0 && pl->tier <= c->plans[pi].tier) continue;
        const hr_plan_version *pv = &pl->versions[pl->nversions - 1];
        if (k++) hr_buf_putc(out, ',');
        hr_buf_puts(out, pl->contact_sales ? "{\"kind\":\"contact_sales\",\"plan\":"
                                           : "{\"kind\":\"plan\",\"plan\":");
        hr_buf_json_str(out, pl->key);
        hr_buf_puts(out, ",\"name\":");
        hr_buf_json_str(out, pl->name ? pl->name : pl->key);
        if (!pl->contact_sales) {
            hr_buf_puts(out, ",\"price\":");
            money(c, pv->price, pv->interval, out);
            hr_buf_puts(out, ",\"price_delta\":");
            money(c, hr_catalog_monthly(pv->price, pv->interval) + addons_monthly(c, a, p) - now_m,
                  HR_INTERVAL_MONTH, out);
        }
        hr_buf_puts(out, ",\"trial_days\":");
        hr_buf_i64(out, a->plan_trial_used ? 0 : pl->trial_days);
        hr_buf_putc(out, '}');
    }
    hr_buf_puts(out, "],\"feature_trials_available\":[");
    k = 0;
    for (int fi = 0; fi < c->nfeatures; fi++) {
        if (c->feature_trial_days[fi] <= 0 || ftrial_of(a, c->features[fi].key)) continue;
        if (k++) hr_buf_putc(out, ',');
        hr_buf_puts(out, "{\"feature\":");
        hr_buf_json_str(out, c->features[fi].key);
        hr_buf_puts(out, ",\"days\":");
        hr_buf_i64(out, c->feature_trial_days[fi]);
        hr_buf_putc(out, '}');
    }
    /* every meter's value in its current period, with when that period ends */
    hr_buf_puts(out, "],\"meters\":{");
    int months = a->interval == HR_INTERVAL_YEAR ? 12 : 1;
    for (int mi = 0; mi < c->nmeters; mi++) {
        const hr_meter *m = &c->meters[mi];
        int64_t start = hr_meter_period_start(m->period, now, a->renews_at, months);
        int64_t next = hr_meter_period_next(m->period, start, a->renews_at, months);
        if (mi) hr_buf_putc(out, ',');
        hr_buf_json_key(out, m->key);
        hr_buf_printf(out, "{\"value\":%.17g,\"period_start\":", hr_account_meter_now(c, a, mi, now));
        hr_buf_json_time(out, m->period == HR_PERIOD_LIFETIME ? 0 : start);
        hr_buf_puts(out, ",\"resets_at\":");
        hr_buf_json_time(out, next == INT64_MAX ? 0 : next);
        hr_buf_putc(out, '}');
    }
    hr_buf_puts(out, "}}");
    hr_rdlock_read_end(e->lock, rs);
    return hr_buf_failed(out) ? HR_ENOMEM : 0;
}
