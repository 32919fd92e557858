/* facts.c: the rule language's view of an account (rules.h hr_rule_env).
 *
 * hr_engine_with_rules looks the account (and user) up once, under the read
 * lock, and hands the caller an environment whose facts read the in-memory
 * records directly: attributes, flattened traits, event history, usage and
 * limits as the decision computes them, trials and add-ons. Nothing here
 * allocates except the first read of an account's traits (traits.c). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "entitle_int.h"
#include "rules/rules.h"
#include "buf.h"
#include "intern.h"
#include "timeutil.h"

typedef struct fctx {
    hr_engine *e;
    const hr_catalog *cat;
    hr_account *a;
    hr_user *u;      /* NULL: no user (or not a member) */
    int64_t now;     /* unix s */
    int32_t today;
    int32_t plan_len; /* strlen of a->plan, -1 until asked (many rules test the plan) */
} fctx;

static void set_str(hr_rval *v, const char *s) {
    if (!s) {
        v->type = HR_RV_NULL;
        return;
    }
    v->type = HR_RV_STR;
    v->s = s;
    v->len = (uint32_t)strlen(s);
}

static void set_num(hr_rval *v, double n) {
    v->type = HR_RV_NUM;
    v->n = n;
}

static void set_bool(hr_rval *v, int b) {
    v->type = HR_RV_BOOL;
    v->b = b != 0;
}

static void set_time(hr_rval *v, int64_t t) {
    if (t > 0)
        set_num(v, (double)t);
    else
        v->type = HR_RV_NULL;
}

static int attr(fctx *x, const hr_fact_call *c, hr_rval *v) {
    if (c->scope == HR_SCOPE_USER) {
        const hr_user *u = x->u;
        if (!u) return 0;
        switch (c->attr) {
        case HR_ATTR_ID: set_str(v, u->id); return 0;
        case HR_ATTR_ROLE: set_str(v, u->role); return 0;
        case HR_ATTR_SEAT_TYPE: set_str(v, u->seat_type); return 0;
        case HR_ATTR_CREATED_AT: set_time(v, u->created_at); return 0;
        case HR_ATTR_EMAIL:
            hr_traits_find(hr_traits_get(&x->u->tix, u->traits_json), "email",
                           hr_rule_hash("email", 5), v);
            return 0;
        default: break;
        }
        if (c->attr == HR_ATTR_TRAIT)
            hr_traits_find(hr_traits_get(&x->u->tix, u->traits_json), c->path, c->path_hash, v);
        return 0;
    }
    const hr_account *a = x->a;
    switch (c->attr) {
    case HR_ATTR_ID: set_str(v, a->id); return 0;
    case HR_ATTR_NAME: set_str(v, a->name); return 0;
    case HR_ATTR_PLAN:
        if (!a->plan) return 0;
        if (x->plan_len < 0) x->plan_len = (int32_t)strlen(a->plan);
        v->type = HR_RV_STR, v->s = a->plan, v->len = (uint32_t)x->plan_len;
        return 0;
    case HR_ATTR_OWNER: set_str(v, a->owner); return 0;
    case HR_ATTR_INTERVAL: {
        const char *iv = hr_interval_str((hr_interval)a->interval);
        v->type = HR_RV_STR, v->s = iv, v->len = iv[0] == 'm' ? 5 : iv[0] == 'y' ? 4 : (uint32_t)strlen(iv);
        return 0;
    }
    case HR_ATTR_CREATED_AT: set_time(v, a->created_at); return 0;
    case HR_ATTR_RENEWS_AT: set_time(v, a->renews_at); return 0;
    case HR_ATTR_TRIAL_PLAN:
        set_str(v, a->trial_plan && x->now < a->trial_ends_at ? a->trial_plan : NULL);
        return 0;
    case HR_ATTR_TRIAL_ENDS_AT: set_time(v, a->trial_plan ? a->trial_ends_at : 0); return 0;
    case HR_ATTR_TRAIT:
        hr_traits_find(hr_traits_get(&x->a->tix, a->traits_json), c->path, c->path_hash, v);
        return 0;
    default: /* user-only names on the account: none */
        return 0;
    }
}

static const hr_hist *hist(const fctx *x, hr_rule_scope sc) {
    if (sc == HR_SCOPE_USER) return x->u ? x->u->hist : NULL;
    return x->a->hist;
}

static int days_of(const hr_fact_call *c) { return c->days > 0 ? c->days : HR_HISTORY_DAYS; }

/* event is interned (the rule compiler interns names) */
static int64_t count(const fctx *x, const hr_hist *h, const char *event, int days) {
    int64_t total;
    int active;
    hr_hist_window(hr_hist_find_interned(h, event), x->today, days, &total, &active);
    return total;
}

/* "*" (every product event), interned once: history names are interned,
 * so the score's and active_users' lookups compare addresses */
static const char *star;
static pthread_once_t star_once = PTHREAD_ONCE_INIT;
static void star_init(void) { star = hr_intern("*"); }
static const char *every_event(void) {
    pthread_once(&star_once, star_init);
    return star ? star : "*";
}

static int has_ftrial(const hr_account *a, const char *fkey, int64_t now, int *active) {
    for (uint16_t i = 0; i < a->nftrial; i++)
        if (!strcmp(a->ftrial[i].feature, fkey)) {
            *active = now < a->ftrial[i].ends_at;
            return 1;
        }
    *active = 0;
    return 0;
}

static int fact(void *ud, const hr_fact_call *c, hr_rval *v) {
    fctx *x = ud;
    const hr_catalog *cat = x->cat;
    const hr_account *a = x->a;
    int64_t total;
    int active;
    v->type = HR_RV_NULL;
    if (c->scope == HR_SCOPE_USER && !x->u && c->fact != HR_FACT_ATTR) return 0;
    switch (c->fact) {
    case HR_FACT_ATTR: return attr(x, c, v);
    case HR_FACT_COUNT:
        set_num(v, (double)count(x, hist(x, c->scope), c->event, days_of(c)));
        return 0;
    case HR_FACT_ACTIVE_DAYS:
        hr_hist_window(hr_hist_find_interned(hist(x, c->scope), c->event), x->today, days_of(c),
                       &total, &active);
        set_num(v, active);
        return 0;
    case HR_FACT_SUM: {
        /* kept per day for the pairs the catalog's rules name */
        char key[600];
        if (!c->event || !c->property || hr_sum_key(c->event, c->property, key, sizeof key))
            return 0;
        hr_hist *h = (hr_hist *)hist(x, c->scope);
        set_num(v, hr_hist_sum_window(hr_hist_sum(&h, key, 0), x->today, days_of(c)));
        return 0;
    }
    case HR_FACT_FIRST_SEEN:
    case HR_FACT_LAST_SEEN: {
        const hr_hist_ent *he = hr_hist_find(hist(x, c->scope), c->event);
        int64_t ms = he ? (c->fact == HR_FACT_FIRST_SEEN ? he->first_ms : he->last_ms) : 0;
        set_time(v, ms / 1000);
        return 0;
    }
    case HR_FACT_ACTIVE_USERS: {
        int n = 0;
        for (uint32_t i = 0; i < a->nusers; i++)
            n += count(x, a->users[i].hist, every_event(), days_of(c)) > 0;
        set_num(v, n);
        return 0;
    }
    case HR_FACT_USERS: set_num(v, a->nusers); return 0;
    case HR_FACT_ROLE_ACTIVE_DAYS: { /* the role rides in event */
        int best = 0;
        for (uint32_t i = 0; c->event && i < a->nusers; i++) {
            const char *role = a->users[i].role;
            if (!role || (role != c->event && strcmp(role, c->event))) continue;
            hr_hist_window(hr_hist_find_interned(a->users[i].hist, every_event()), x->today,
                           days_of(c), &total, &active);
            if (active > best) best = active;
        }
        set_num(v, best);
        return 0;
    }
    case HR_FACT_USAGE:
    case HR_FACT_LIMIT:
    case HR_FACT_USAGE_PCT:
    case HR_FACT_HAS_FEATURE: {
        if (c->feature < 0 || c->feature >= cat->nfeatures) return 0;
        int64_t lim = hr_account_limit(cat, a, c->feature, x->now);
        int64_t use = hr_account_feature_usage(cat, a, c->feature, x->e->fnames[c->feature], x->now);
        int boolean = cat->features[c->feature].type == HR_FEAT_BOOLEAN;
        if (c->fact == HR_FACT_HAS_FEATURE)
            set_bool(v, lim == HR_UNLIMITED || (lim != HR_ENT_NONE && (boolean ? lim == 1 : lim > 0)));
        else if (boolean)
            return 0; /* on/off features have no usage */
        else if (c->fact == HR_FACT_USAGE)
            set_num(v, (double)use);
        else if (c->fact == HR_FACT_LIMIT) {
            if (lim != HR_UNLIMITED && lim != HR_ENT_NONE) set_num(v, (double)lim);
        } else if (lim == HR_UNLIMITED)
            set_num(v, 0);
        else if (lim > 0)
            set_num(v, (double)use / (double)lim);
        return 0;
    }
    case HR_FACT_METER: {
        if (c->meter < 0 || c->meter >= cat->nmeters) return 0;
        set_num(v, hr_account_meter_now(cat, a, c->meter, x->now));
        return 0;
    }
    case HR_FACT_GROWTH: {
        /* from the history: a count meter counts its event, a sum meter
         * sums its property per day (hr_meter_sum_key), any other name is
         * an event. A meter with a where clause, or another aggregate, is
         * not in the history: null. */
        const char *ev = c->event;
        double cur, both;
        if (c->meter >= 0 && c->meter < cat->nmeters) {
            const hr_meter *m = &cat->meters[c->meter];
            char key[600];
            if (m->aggregate == HR_AGG_SUM && !hr_meter_sum_key(m, key, sizeof key)) {
                hr_hist *h = a->hist;
                const hr_sum_ent *se = hr_hist_sum(&h, key, 0);
                cur = hr_hist_sum_window(se, x->today, c->days);
                both = hr_hist_sum_window(se, x->today, 2 * c->days);
                if (c->days > 0 && both - cur > 0) set_num(v, (cur - (both - cur)) / (both - cur));
                return 0;
            }
            if (m->aggregate != HR_AGG_COUNT || m->nwhere) return 0;
            ev = m->event;
        }
        if (!ev || c->days <= 0) return 0;
        const hr_hist_ent *he = ev[0] == '*' && !ev[1] ? hr_hist_find_interned(a->hist, every_event())
                                                       : hr_hist_find(a->hist, ev);
        int64_t n1, n2;
        hr_hist_window(he, x->today, c->days, &n1, &active);
        hr_hist_window(he, x->today, 2 * c->days, &n2, &active);
        int64_t prev = n2 - n1;
        if (prev > 0) set_num(v, (double)(n1 - prev) / (double)prev);
        return 0;
    }
    case HR_FACT_HAS_ADDON:
        if (c->addon < 0 || c->addon >= cat->naddons) return 0;
        for (uint16_t i = 0; i < a->naddons; i++)
            if (!strcmp(a->addons[i].addon, cat->addons[c->addon].key) && a->addons[i].qty > 0) {
                set_bool(v, 1);
                return 0;
            }
        set_bool(v, 0);
        return 0;
    case HR_FACT_TRIAL_USED:
    case HR_FACT_TRIAL_ACTIVE: {
        if (c->feature < 0 || c->feature >= cat->nfeatures) return 0;
        int used = has_ftrial(a, cat->features[c->feature].key, x->now, &active);
        set_bool(v, c->fact == HR_FACT_TRIAL_USED ? used : active);
        return 0;
    }
    case HR_FACT_TRIAL_DAYS_LEFT:
        if (c->feature < 0 || c->feature >= cat->nfeatures) return 0;
        for (uint16_t i = 0; i < a->nftrial; i++)
            if (!strcmp(a->ftrial[i].feature, cat->features[c->feature].key) &&
                x->now < a->ftrial[i].ends_at)
                set_num(v, (double)(a->ftrial[i].ends_at - x->now) / 86400.0);
        return 0;
    case HR_FACT_DAYS_TO_RENEWAL:
        if (a->renews_at > 0) set_num(v, (double)(a->renews_at - x->now) / 86400.0);
        return 0;
    default: return 0;
    }
}

static const hr_rule_env env = {fact};

/* The view of account a (none yet: NULL) at now_ms; under the read lock. */
static fctx fctx_of(hr_engine *e, hr_account *a, int64_t now_ms) {
    return (fctx){e, e->cat, a, NULL, now_ms / 1000, (int32_t)hr_time_days(now_ms / 1000), -1};
}

int hr_engine_with_rules(hr_engine *e, const char *account, const char *user, int64_t now_ms,
                         hr_rules_fn fn, void *ud) {
    if (!now_ms) now_ms = hr_time_now_ms();
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    hr_account *a = hr_acctix_get(e->accounts, account);
    if (!a) {
        hr_rdlock_read_end(e->lock, rs);
        return HR_ENOTFOUND;
    }
    fctx x = fctx_of(e, a, now_ms);
    for (uint32_t i = 0; user && i < a->nusers; i++)
        if (!strcmp(a->users[i].id, user)) {
            x.u = &a->users[i];
            break;
        }
    int rc = fn(ud, e->cat, &env, &x);
    hr_rdlock_read_end(e->lock, rs);
    return rc;
}

/* The sweep walks a million accounts in map order, which is random in
 * memory, and each account is a chain of allocations: the record, then its
 * users and history, then their event entries and days. Fetched one by one,
 * each link would stall the walk. So a slice's accounts are listed first
 * and the walk prefetches ahead of the evaluation, one link deeper every
 * STAGE accounts: the record 4 * STAGE accounts before it is evaluated, the
 * days of its history STAGE accounts before. */
#define STAGE 4

/* always_inline: GCC deems a function that only prefetches free of side
 * effects and drops the calls; inlined, the prefetches stay. */
static inline __attribute__((always_inline)) void prefetch_hist(const hr_hist *h, int deep) {
    if (!h) return;
    if (!deep) {
        __builtin_prefetch(h->ents);
        return;
    }
    for (uint32_t i = 0; i < h->n && i < 4; i++) __builtin_prefetch(h->ents[i].days);
}

static inline __attribute__((always_inline)) void prefetch_account(const hr_account *a, int stage) {
    if (!stage) { /* nothing of a may be read yet: that would wait for it */
        for (int i = 0; i < 4; i++) __builtin_prefetch((const char *)a + 64 * i);
        return;
    }
    uint32_t nu = a->nusers < 4 ? a->nusers : 4;
    switch (stage) {
    case 1:
        __builtin_prefetch(a->hist);
        __builtin_prefetch(a->usage);
        for (uint32_t i = 0; i < nu; i++) __builtin_prefetch(&a->users[i]);
        break;
    case 2:
        prefetch_hist(a->hist, 0);
        for (uint32_t i = 0; i < nu; i++) {
            __builtin_prefetch(a->users[i].hist);
            __builtin_prefetch(a->users[i].role); /* the score looks for decision makers */
        }
        break;
    default:
        prefetch_hist(a->hist, 1);
        for (uint32_t i = 0; i < nu; i++) prefetch_hist(a->users[i].hist, 0);
        break;
    }
}

int hr_engine_sweep(hr_engine *e, size_t *pos, int max, int64_t now_ms, hr_sweep_fn fn, void *ud) {
    hr_acct_slot *as;
    int n = 0, rc = 0, more = 1;
    if (max <= 0) return 1;
    hr_account **list = malloc(sizeof *list * (size_t)max);
    if (!list) return HR_ENOMEM;
    if (!now_ms) now_ms = hr_time_now_ms();
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    while (n < max && (more = hr_acctix_next(e->accounts, pos, &as))) list[n++] = as->acct;
    fctx x = fctx_of(e, NULL, now_ms);
    for (int i = 0; i < n; i++) {
        for (int st = 0; st < 4; st++)
            if (i + (4 - st) * STAGE < n) prefetch_account(list[i + (4 - st) * STAGE], st);
        x.a = list[i], x.u = NULL, x.plan_len = -1;
        if ((rc = fn(ud, list[i]->id, e->cat, &env, &x)) < 0) break;
    }
    hr_rdlock_read_end(e->lock, rs);
    free(list);
    return rc < 0 ? rc : more;
}

int hr_engine_new_members(hr_engine *e, const char *account, int days, int64_t now_ms, hr_buf *out) {
    int64_t since = (now_ms ? now_ms : hr_time_now_ms()) / 1000 - (int64_t)days * 86400;
    int n = 0;
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    hr_account *a = hr_acctix_get(e->accounts, account);
    hr_buf_putc(out, '[');
    for (uint32_t i = 0; a && i < a->nusers; i++)
        if (a->users[i].created_at >= since) {
            if (n++) hr_buf_putc(out, ',');
            hr_buf_json_str(out, a->users[i].id);
        }
    hr_buf_putc(out, ']');
    hr_rdlock_read_end(e->lock, rs);
    return a ? 0 : HR_ENOTFOUND;
}
