/* engine.c: the account state behind the decisions, and its persistence.
 *
 * Design: every mutation runs under one writer mutex in three steps:
 * validate against the catalog, write through to the store (durable), then
 * apply to memory under the write side of the engine's lock (rdlock.h),
 * briefly. Readers (decisions) only take its read side, so they never wait
 * on disk, and memory never holds state the store has not acknowledged. */
#include "engine.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "entitle_int.h"
#include "err.h"
#include "hugemem.h"
#include "intern.h"
#include "events/segment.h"
#include "jsonbody.h"
#include "timeutil.h"

#define MAX_ID 128
#define HR_IDEM_WINDOW (7 * 86400)

/* ---- small helpers ---------------------------------------------------- */

static int valid_id(const char *s) {
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (!isalnum(c) && !strchr("._:@+-", c)) return 0;
    }
    return n > 0 && n <= MAX_ID;
}

/* Account ids may not contain '.': a user_hash signs "{user}.{account}.{ts}",
 * and with dot-free accounts that string splits one way only (user ids, often
 * e-mail addresses, keep their dots). */
static int valid_account_id(const char *s) { return valid_id(s) && !strchr(s, '.'); }

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static int grow(void **arr, size_t elem, size_t n) {
    void *p = realloc(*arr, elem * (n + 1));
    if (!p) return -1;
    *arr = p;
    return 0;
}

/* grow() for an array of a live account, which decisions may be reading:
 * realloc can move it and free the old one, so under the write lock. */
static int grow_live(hr_engine *e, void **arr, size_t elem, size_t n) {
    hr_rdlock_write(e->lock);
    int rc = grow(arr, elem, n);
    hr_rdlock_write_end(e->lock);
    return rc;
}

static void account_release(hr_account *a);

void hr_account_free(hr_account *a) {
    if (!a) return;
    free(a->name);
    free(a->owner);
    free(a->traits_json);
    hr_traits_free(a->tix);
    if (a->usage != a->usage_inline) free(a->usage);
    free(a->addons);
    free(a->ovr);
    free(a->ftrial);
    for (uint16_t i = 0; i < a->nmvals; i++) hr_meter_value_dispose(&a->mvals[i].v);
    free(a->mvals);
    for (uint32_t i = 0; i < a->nusers; i++) {
        hr_user *u = &a->users[i];
        free(u->id);
        free(u->role);
        free(u->seat_type);
        free(u->traits_json);
        hr_traits_free(u->tix);
        hr_hist_free(u->hist);
    }
    free(a->users);
    hr_hist_free(a->hist);
    account_release(a);
}

/* Room for one more usage entry: inline first, then on the heap (grown one
 * entry at a time: an account gains a usage entry once per feature). */
static int usage_reserve(hr_account *a) {
    if (!a->usage) a->usage = a->usage_inline;
    if (a->usage == a->usage_inline) {
        if (a->nusage < HR_USAGE_INLINE) return 0;
        hr_usage_ent *heap = malloc(sizeof *heap * (HR_USAGE_INLINE + 1));
        if (!heap) return -1;
        memcpy(heap, a->usage_inline, sizeof a->usage_inline);
        a->usage = heap;
        return 0;
    }
    hr_usage_ent *p = realloc(a->usage, sizeof *p * ((size_t)a->nusage + 1));
    if (!p) return -1;
    a->usage = p;
    return 0;
}

/* Accounts live in slabs of 2 MiB offered to transparent huge pages: a
 * decision on a random account among a million otherwise misses the TLB as
 * well as the cache, and on a VM (nested paging) that walk costs about as
 * much as the miss. Two size classes of whole cache lines (ids of up to 47
 * and 175 bytes), so an account's hot fields start a line; longer ids (none
 * pass validation) use malloc. Freed accounts go on a free list and the
 * slabs are kept for the process's life (shared by its engines). */
#define SLAB_SZ HR_HUGE_PAGE
static const size_t slab_class[3] = {0, 320, 448};
static pthread_mutex_t slab_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    void *free;        /* freed accounts, linked through their first word */
    char *cur, *end;   /* the slab being carved */
} slabs[3];

static void *slab_chunk(void) { return hr_huge_alloc(SLAB_SZ); }

static hr_account *account_alloc(const char *id) {
    size_t n = strlen(id), need = sizeof(hr_account) + n + 1;
    int k = need <= slab_class[1] ? 1 : need <= slab_class[2] ? 2 : 0;
#if defined(__SANITIZE_ADDRESS__)
    k = 0; /* malloc, so ASan sees a use after free */
#endif
    hr_account *a = NULL;
    if (!k) {
        a = calloc(1, need);
    } else {
        pthread_mutex_lock(&slab_mu);
        if (slabs[k].free) {
            a = slabs[k].free;
            memcpy(&slabs[k].free, a, sizeof(void *));
        } else {
            if (slabs[k].cur == slabs[k].end) {
                char *c = slab_chunk();
                if (c) slabs[k].cur = c, slabs[k].end = c + SLAB_SZ / slab_class[k] * slab_class[k];
            }
            if (slabs[k].cur != slabs[k].end) {
                a = (hr_account *)slabs[k].cur;
                slabs[k].cur += slab_class[k];
            }
        }
        pthread_mutex_unlock(&slab_mu);
        if (a) memset(a, 0, need);
    }
    if (!a) return NULL;
    a->slab = (uint8_t)k;
    memcpy(a->id, id, n + 1);
    return a;
}

/* The struct itself (its fields freed or owned elsewhere). */
static void account_release(hr_account *a) {
    int k = a->slab;
    if (!k) {
        free(a);
        return;
    }
    pthread_mutex_lock(&slab_mu);
    memcpy(a, &slabs[k].free, sizeof(void *));
    slabs[k].free = a;
    pthread_mutex_unlock(&slab_mu);
}

/* A feature's calendar period: the same arithmetic as a meter's (meter.c),
 * NONE for features that do not reset. */
int64_t hr_period_start(hr_period p, int64_t now) {
    return p == HR_PERIOD_NONE ? 0 : hr_meter_period_start(p, now, 0, 1);
}

int64_t hr_period_next(hr_period p, int64_t start) {
    return p == HR_PERIOD_NONE ? 0 : hr_meter_period_next(p, start, 0, 1);
}

/* fname must be interned: usage entries compare by address (the engine keeps
 * the catalog's feature keys interned in e->fnames for the decision path). */
static hr_usage_ent *find_usage(const hr_account *a, const char *fname) {
    for (uint16_t i = 0; i < a->nusage; i++)
        if (a->usage[i].feature == fname) return &a->usage[i];
    return NULL;
}

/* Where fname (interned) belongs among the inline usage entries
 * (hr_ftab.uhome), -1 if the current catalog has no such feature: a scan of
 * the catalog's interned names, cheaper than hashing for a few dozen. */
static int usage_home(const hr_engine *e, const char *fname) {
    if (!e->fnames || !e->ftab) return -1;
    for (int fi = 0; e->fnames[fi]; fi++)
        if (e->fnames[fi] == fname) return e->ftab->uhome[fi];
    return -1;
}

/* After entry k was added: moves inline entries to their homes where they
 * can go (a few swaps among at most HR_USAGE_INLINE entries; entries are
 * unique by feature, so their order means nothing else). Returns where
 * entry k ended up. Under the engine's write lock: decisions read these. */
static hr_usage_ent *usage_arrange(const hr_engine *e, hr_account *a, int k) {
    int n = a->nusage, home[HR_USAGE_INLINE];
    if (a->usage != a->usage_inline || n > HR_USAGE_INLINE) return &a->usage[k];
    if ((home[k] = usage_home(e, a->usage[k].feature)) == k) return &a->usage[k];
    for (int i = 0; i < n; i++)
        if (i != k) home[i] = usage_home(e, a->usage[i].feature);
    /* position by position: a swap brings i the entry whose home it is, and
     * never moves an entry already at its own home */
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n && home[i] != i; j++) {
            if (j == i || home[j] != i) continue;
            hr_usage_ent t = a->usage[i];
            a->usage[i] = a->usage[j], a->usage[j] = t;
            int h = home[i];
            home[i] = home[j], home[j] = h;
            k = k == i ? j : k == j ? i : k;
        }
    }
    return &a->usage[k];
}

/* One part of a feature's usage for the summary: a value that counts while
 * its period (p) starts at start. */
typedef struct part {
    hr_period p;
    int64_t start, value;
} part;

/* Folds part x into the summary's entry for a feature (k: what counts at
 * any time; r, nr: what counts in one calendar period). 0, or -1 when the
 * entry cannot say it (two periods, two starts, overflow). */
static int add_part(part x, int64_t *k, part *r, int *nr) {
    if (x.p == HR_PERIOD_LIFETIME) { /* its one period: resolved now */
        if (x.start != hr_meter_period_start(HR_PERIOD_LIFETIME, 0, 0, 1)) return 0;
        x.p = HR_PERIOD_NONE;
    }
    if (x.p == HR_PERIOD_NONE) return __builtin_add_overflow(*k, x.value, k) ? -1 : 0;
    if (!*nr) {
        *r = x, *nr = 1;
        return 0;
    }
    if (r->p != x.p || r->start != x.start) return -1;
    return __builtin_add_overflow(r->value, x.value, &r->value) ? -1 : 0;
}

/* The meter value entry of meter mi of e's catalog, NULL if none. */
static const hr_mval_ent *meter_of(const hr_engine *e, const hr_account *a, int mi) {
    for (uint16_t i = 0; i < a->nmvals; i++)
        if (a->mvals[i].meter == e->mnames[mi]) return &a->mvals[i];
    return NULL;
}

void hr_account_summary(const hr_engine *e, const hr_account *a, hr_acct_sum *s) {
    memset(s, 0, sizeof *s);
    s->prow = (int16_t)(a->plan_ix + 1);
    s->plan_version = a->plan_version;
    s->naddons = (uint8_t)(a->naddons > 1 ? 2 : a->naddons);
    s->addon_ix = a->naddons ? a->addon_ix : -1;
    s->addon_qty = a->naddons ? a->addon_qty : 0;
    const hr_catalog *c = e->cat;
    int plain = c && e->ftab && !(a->novr | a->nftrial) && !a->trial_plan && a->naddons <= 1 &&
                c->nfeatures < 255;
    /* Each feature's usage as the decision counts it (API usage plus its
     * meter's value, each in its period) at the feature's home: one value
     * and, when it lasts one calendar period, that period's start. */
    for (int fi = 0; plain && fi < c->nfeatures; fi++) {
        const hr_feature *f = &c->features[fi];
        if (f->type == HR_FEAT_BOOLEAN) continue;
        const hr_usage_ent *u = find_usage(a, e->fnames[fi]);
        int mi = c->feature_meter ? c->feature_meter[fi] : -1;
        const hr_mval_ent *mv = mi >= 0 ? meter_of(e, a, mi) : NULL;
        if (!u && !mv) continue;
        hr_period up = f->type == HR_FEAT_METERED ? f->period : HR_PERIOD_NONE;
        hr_period mp = mi >= 0 ? c->meters[mi].period : HR_PERIOD_NONE;
        if ((u && up == HR_PERIOD_BILLING_CYCLE) || (mv && mp == HR_PERIOD_BILLING_CYCLE))
            continue; /* decided by the full rules (hr_fslot.full): never read */
        int64_t k = 0;
        part r = {HR_PERIOD_NONE, 0, 0};
        int nr = 0;
        if (u && add_part((part){up, u->period_start, u->value}, &k, &r, &nr)) plain = 0;
        if (mv) {
            double m = mv->v.value; /* as the decision converts it */
            int64_t v = m >= (double)INT64_MAX ? INT64_MAX : (int64_t)m;
            if (add_part((part){mp, mv->v.period_start, v}, &k, &r, &nr)) plain = 0;
        }
        int h = e->ftab->uhome[fi];
        if (!plain || h >= HR_USAGE_INLINE || s->ufi[h] || (nr && k) ||
            (nr && (r.start < 0 || r.start > (int64_t)UINT32_MAX))) {
            plain = 0;
            break;
        }
        s->ufi[h] = (uint8_t)(fi + 1);
        s->uper[h] = (uint8_t)(nr ? r.p : HR_PERIOD_NONE);
        s->uval[h] = nr ? r.value : k;
        s->ustart[h] = (uint32_t)(nr ? r.start : 0);
    }
    if (!plain)
        memset(s->uval, 0, sizeof s->uval), memset(s->ustart, 0, sizeof s->ustart),
            memset(s->ufi, 0, sizeof s->ufi), memset(s->uper, 0, sizeof s->uper);
    s->plain = (uint8_t)plain;
}

void hr_engine_sync_account(hr_engine *e, const hr_account *a) {
    hr_acct_sum *s = hr_acctix_sum(e->accounts, a->id);
    if (s) hr_account_summary(e, a, s);
}

/* Every account's summary anew (a load, a catalog that changes what they
 * count): the accounts are read in slot order, at random, so a few ahead
 * are asked for early. */
static void sync_all(hr_engine *e) {
    size_t pos = 0, ahead = 0;
    hr_acct_slot *s, *t;
    for (int i = 0; i < 8 && hr_acctix_next(e->accounts, &ahead, &t); i++)
        __builtin_prefetch(t->acct);
    while (hr_acctix_next(e->accounts, &pos, &s)) {
        if (hr_acctix_next(e->accounts, &ahead, &t)) {
            __builtin_prefetch(t->acct);
            __builtin_prefetch((const char *)t->acct + 64);
            __builtin_prefetch((const char *)t->acct + 128);
        }
        hr_account_summary(e, s->acct, &s->sum);
    }
}

size_t hr_engine_stale_summaries(hr_engine *e) {
    size_t pos = 0, stale = 0;
    hr_acct_slot *s;
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    while (hr_acctix_next(e->accounts, &pos, &s)) {
        hr_acct_sum now;
        hr_account_summary(e, s->acct, &now);
        stale += memcmp(&now, &s->sum, sizeof now) != 0;
    }
    hr_rdlock_read_end(e->lock, rs);
    return stale;
}

int64_t hr_account_usage(const hr_account *a, const hr_feature *f, const char *fname,
                         int64_t now) {
    const hr_usage_ent *u = find_usage(a, fname);
    if (!u) return 0;
    if (f && f->type == HR_FEAT_METERED && u->period_start != hr_period_start(f->period, now))
        return 0;
    return u->value;
}

void hr_account_reindex(const hr_catalog *c, hr_account *a) {
    a->plan_ix = (int16_t)hr_catalog_plan(c, a->plan);
    a->trial_ix = (int16_t)(a->trial_plan ? hr_catalog_plan(c, a->trial_plan) : -1);
    for (uint16_t i = 0; i < a->naddons; i++)
        a->addons[i].ix = hr_catalog_addon(c, a->addons[i].addon);
    a->addon_ix = (int16_t)(a->naddons ? a->addons[0].ix : -1);
    a->addon_qty = a->naddons ? a->addons[0].qty : 0;
}

/* Interned feature keys of c, in catalog order; NULL on OOM. */
static const char **intern_features(const hr_catalog *c) {
    const char **f = calloc((size_t)c->nfeatures + 1, sizeof *f);
    for (int i = 0; f && i < c->nfeatures; i++)
        if (!(f[i] = hr_intern(c->features[i].key))) {
            free(f);
            return NULL;
        }
    return f;
}

/* Interned meter keys of c, in catalog order; NULL on OOM. */
static const char **intern_meters(const hr_catalog *c) {
    const char **m = calloc((size_t)c->nmeters + 1, sizeof *m);
    for (int i = 0; m && i < c->nmeters; i++)
        if (!(m[i] = hr_intern(c->meters[i].key))) {
            free(m);
            return NULL;
        }
    return m;
}

/* The periods that start at the same time for every account. */
static int calendar_period(hr_period p) {
    return p == HR_PERIOD_DAY || p == HR_PERIOD_WEEK || p == HR_PERIOD_MONTH ||
           p == HR_PERIOD_YEAR || p == HR_PERIOD_LIFETIME;
}

/* What the decision needs to know of feature fi (decide.c, feature_resets
 * and api_usage, says what each case means). */
static void describe_feature(const hr_catalog *c, int fi, hr_fslot *s) {
    const hr_feature *f = &c->features[fi];
    int mi = c->feature_meter ? c->feature_meter[fi] : -1;
    int metered = f->type == HR_FEAT_METERED;
    s->mi = (int16_t)mi;
    s->type = (uint8_t)f->type;
    s->overage = f->has_overage != 0;
    s->uperiod = (uint8_t)(metered ? f->period : HR_PERIOD_NONE);
    if (mi >= 0) {
        hr_period p = c->meters[mi].period;
        s->reset = p == HR_PERIOD_LIFETIME ? HR_FRESET_NONE
                   : calendar_period(p)     ? HR_FRESET_METER
                                            : HR_FRESET_SLOW;
        s->rperiod = (uint8_t)p;
    } else if (metered) {
        s->reset = calendar_period(f->period) ? HR_FRESET_OWN : HR_FRESET_SLOW;
        s->rperiod = (uint8_t)f->period;
    } else {
        s->reset = HR_FRESET_NONE;
    }
    if (metered && !calendar_period(f->period)) s->reset = HR_FRESET_SLOW;
}

/* Whether c's features all have distinct home slots in a table of cap. */
static int no_collision(const hr_catalog *c, uint32_t cap) {
    uint8_t *seen = calloc(cap, 1);
    int ok = seen != NULL;
    for (int fi = 0; ok && fi < c->nfeatures; fi++) {
        const char *k = c->features[fi].key;
        uint64_t a, b;
        uint32_t i = (uint32_t)hr_fkey_hash(k, strlen(k), &a, &b) & (cap - 1);
        ok = !seen[i];
        seen[i] = 1;
    }
    free(seen);
    return ok;
}

/* c's features by name (fnames: their keys interned); NULL on OOM. At
 * least a quarter full, and grown (up to 64 times the features) until no
 * two features share a home slot: then a lookup reads one slot, without
 * the loop whose exit a random feature would make the CPU mispredict. */
static hr_ftab *feature_table(const hr_catalog *c, const char **fnames) {
    uint32_t cap = 16, direct = 0;
    while (cap < (uint32_t)c->nfeatures * 4) cap *= 2;
    for (uint32_t k = cap; k <= cap * 16 && !direct; k *= 2)
        if (no_collision(c, k)) cap = k, direct = 1;
    size_t rows = sizeof(hr_ftab) + cap * sizeof(hr_fslot), np = (size_t)c->nplans + 1;
    size_t nf = (size_t)c->nfeatures;
    hr_ftab *t = calloc(1, rows + np * sizeof(int64_t *) + nf * sizeof(int64_t) +
                               np * sizeof(int32_t) + nf);
    if (!t) return NULL;
    t->mask = cap - 1;
    t->direct = direct;
    const int64_t **plan_ent = (const int64_t **)(void *)((char *)t + rows);
    int64_t *no_plan = (int64_t *)(plan_ent + np);
    int32_t *plan_ver = (int32_t *)(no_plan + nf);
    uint8_t *uhome = (uint8_t *)(plan_ver + np);
    for (size_t fi = 0; fi < nf; fi++) no_plan[fi] = HR_ENT_NONE;
    plan_ent[0] = no_plan;
    for (int pi = 0; pi < c->nplans; pi++) {
        const hr_plan *p = &c->plans[pi];
        const hr_plan_version *cur = p->nversions ? &p->versions[p->nversions - 1] : NULL;
        plan_ent[pi + 1] = cur ? cur->ent : no_plan;
        plan_ver[pi + 1] = cur ? cur->version : 0;
    }
    t->nplans = c->nplans;
    t->plan_ent = plan_ent;
    t->plan_ver = plan_ver;
    for (int fi = 0, k = 0; fi < c->nfeatures; fi++)
        if (c->features[fi].type != HR_FEAT_BOOLEAN) uhome[fi] = (uint8_t)(k++ % HR_USAGE_INLINE);
    t->uhome = uhome;
    for (int fi = 0; fi < c->nfeatures; fi++) {
        const char *k = c->features[fi].key;
        size_t n = strlen(k);
        uint64_t a = 0, b = 0, h = hr_fkey_hash(k, n, &a, &b);
        uint32_t i = (uint32_t)h & t->mask;
        while (t->slots[i].hash) i = (i + 1) & t->mask;
        t->slots[i] = (hr_fslot){.hash = h, .a = a, .b = b, .key = k, .name = fnames[fi],
                                 .len = (uint32_t)n, .fi = fi, .uhome = uhome[fi]};
        describe_feature(c, fi, &t->slots[i]);
        t->slots[i].full = t->slots[i].reset == HR_FRESET_SLOW || c->noverrides;
    }
    return t;
}

/* ---- lifecycle -------------------------------------------------------- */

hr_engine *hr_engine_new(hr_catalog *c) {
    hr_engine *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->accounts = hr_acctix_new(1024);
    e->idem = hr_map_new(64);
    e->lock = hr_rdlock_new();
    if (!e->accounts || !e->idem || !e->lock) goto fail;
    hr_ingest_init(e);
    if (!e->user_acct || !e->seen) {
        hr_ingest_dispose(e);
        goto fail;
    }
    pthread_mutex_init(&e->wmu, NULL);
    if (c && (!(e->fnames = intern_features(c)) || !(e->mnames = intern_meters(c)) ||
              !(e->ftab = feature_table(c, e->fnames)))) {
        free(e->fnames);
        free(e->mnames);
        hr_ingest_dispose(e);
        pthread_mutex_destroy(&e->wmu);
        goto fail;
    }
    e->cat = c ? hr_catalog_retain(c) : NULL;
    return e;
fail:
    hr_acctix_free(e->accounts);
    hr_map_free(e->idem);
    hr_rdlock_free(e->lock);
    free(e);
    return NULL;
}

void hr_engine_free(hr_engine *e) {
    if (!e) return;
    size_t pos = 0;
    hr_acct_slot *as;
    while (hr_acctix_next(e->accounts, &pos, &as)) hr_account_free(as->acct);
    hr_acctix_free(e->accounts);
    pos = 0;
    void *v;
    while (hr_map_next(e->idem, &pos, NULL, &v)) free(v);
    hr_map_free(e->idem);
    hr_ingest_dispose(e);
    if (e->cat) hr_catalog_release(e->cat);
    free(e->fnames);
    free(e->mnames);
    free(e->ftab);
    hr_rdlock_free(e->lock);
    pthread_mutex_destroy(&e->wmu);
    free(e);
}

hr_catalog *hr_engine_catalog(hr_engine *e) {
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    hr_catalog *c = e->cat ? hr_catalog_retain(e->cat) : NULL;
    hr_rdlock_read_end(e->lock, rs);
    return c;
}

/* Plans and add-ons in the same order under the same keys. */
static int same_layout(const hr_catalog *a, const hr_catalog *b) {
    if (a->nplans != b->nplans || a->naddons != b->naddons) return 0;
    for (int i = 0; i < a->nplans; i++)
        if (strcmp(a->plans[i].key, b->plans[i].key)) return 0;
    for (int i = 0; i < a->naddons; i++)
        if (strcmp(a->addons[i].key, b->addons[i].key)) return 0;
    return 1;
}

/* Whether the summaries written under catalog a (its interned feature and
 * meter names fa, ma and its table ta) are the ones b would have: the same
 * features in the same order, each of the same type and period, at the same
 * home, fed by the same meter (by name) with the same period. */
static int same_summaries(const hr_catalog *a, const char **fa, const char **ma,
                          const hr_ftab *ta, const hr_catalog *b, const char **fb,
                          const char **mb, const hr_ftab *tb) {
    if (!a || !ta || !tb || a->nfeatures != b->nfeatures) return 0;
    for (int fi = 0; fi < a->nfeatures; fi++) {
        const hr_feature *x = &a->features[fi], *y = &b->features[fi];
        int mx = a->feature_meter ? a->feature_meter[fi] : -1;
        int my = b->feature_meter ? b->feature_meter[fi] : -1;
        if (fa[fi] != fb[fi] || x->type != y->type || x->period != y->period ||
            ta->uhome[fi] != tb->uhome[fi] || (mx < 0) != (my < 0))
            return 0;
        if (mx >= 0 && (ma[mx] != mb[my] || a->meters[mx].period != b->meters[my].period))
            return 0;
    }
    return 1;
}

int hr_engine_set_catalog(hr_engine *e, hr_catalog *c, hr_err *err) {
    if (!c) return hr_err_set(err, HR_EINVAL, "no catalog");
    const char **fnames = intern_features(c), **mnames = intern_meters(c);
    hr_ftab *ftab = fnames ? feature_table(c, fnames) : NULL;
    if (!fnames || !mnames || !ftab) {
        free(fnames);
        free(mnames);
        free(ftab);
        return hr_err_set(err, HR_ENOMEM, "out of memory");
    }
    hr_catalog_retain(c);
    pthread_mutex_lock(&e->wmu);
    hr_rdlock_write(e->lock);
    hr_catalog *old = e->cat;
    const char **old_names = e->fnames, **old_mnames = e->mnames;
    hr_ftab *old_ftab = e->ftab;
    e->cat = c;
    e->fnames = fnames;
    e->mnames = mnames;
    e->ftab = ftab;
    /* accounts cache catalog indexes: a new catalog may order things anew;
     * when plans and add-ons keep their order (most reloads) the cached
     * indexes stay right and a million accounts need no walk under the lock */
    int layout = old && same_layout(old, c);
    if (!layout) {
        size_t pos = 0;
        hr_acct_slot *s;
        while (hr_acctix_next(e->accounts, &pos, &s)) hr_account_reindex(c, s->acct);
    }
    /* summaries name features by index, place usage by home and count it by
     * the features' and meters' periods: a catalog that changes any of
     * that (or the plans' order) rewrites them all; plan versions are
     * compared when deciding, so a reload of prices and limits writes none */
    if (!layout ||
        !same_summaries(old, old_names, old_mnames, old_ftab, c, fnames, mnames, ftab))
        sync_all(e);
    hr_rdlock_write_end(e->lock);
    pthread_mutex_unlock(&e->wmu);
    if (old) hr_catalog_release(old);
    free(old_names);
    free(old_mnames);
    free(old_ftab);
    return 0;
}

size_t hr_engine_account_count(hr_engine *e) {
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    size_t n = hr_acctix_count(e->accounts);
    hr_rdlock_read_end(e->lock, rs);
    return n;
}

/* ---- loading from the store -------------------------------------------- */

static int parse_addons_json(const char *text, hr_addon_ent **out, uint16_t *n) {
    *out = NULL;
    *n = 0;
    if (!text || !strcmp(text, "{}") || !*text) return 0;
    json_object *o = json_tokener_parse(text);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return -1;
    }
    int rc = 0;
    json_object_object_foreach(o, k, v) {
        if (grow((void **)out, sizeof **out, *n)) {
            rc = -1;
            break;
        }
        (*out)[*n].addon = hr_intern(k);
        (*out)[*n].qty = (int32_t)json_object_get_int(v);
        (*n)++;
    }
    json_object_put(o);
    return rc;
}

/* Rows of the other tables come grouped by account, in id order. Where the
 * accounts themselves arrived in id order (as rows inserted in id order do),
 * a cursor over them finds each row's account without a hash probe: a merge
 * join, which is what keeps a 1M-account start within its budget. Any row
 * the cursor cannot place falls back to the hash map, so order only ever
 * affects speed. The last name interned is remembered too (features repeat). */
typedef struct loader {
    hr_engine *e;
    hr_account *last;
    const char *last_name; /* interned */
    hr_account **order;    /* accounts whose ids ascend in load order */
    size_t n, cap, cur;
    int table;             /* which table the cursor walks */
    hr_account **pending;  /* loaded, not yet in the map (put_many at the end) */
    size_t npending, cappending;
    int oom;
    int32_t today; /* for the history horizon */
} loader;

/* Puts the pending accounts into the map in one sorted sweep. */
static int flush_pending(loader *l) {
    if (!l->npending) return l->oom ? HR_ENOMEM : 0;
    int rc = hr_acctix_put_many(l->e->accounts, l->pending, l->npending) ? HR_ENOMEM : 0;
    if (rc) /* not in the map: nobody else will free them */
        for (size_t i = 0; i < l->npending; i++) hr_account_free(l->pending[i]);
    l->npending = 0;
    return rc ? rc : l->oom ? HR_ENOMEM : 0;
}

static void expect_accounts(void *ud, int64_t n) {
    loader *l = ud;
    if (n > 0) hr_acctix_reserve(l->e->accounts, hr_acctix_count(l->e->accounts) + (size_t)n);
}

/* Keeps the accounts that extend an increasing run of ids: the cursor walks
 * those; any other account is found through the map. */
static void remember(loader *l, hr_account *a) {
    if (l->n && strcmp(l->order[l->n - 1]->id, a->id) >= 0) return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        hr_account **p = realloc(l->order, cap * sizeof *p);
        if (!p) return; /* the map alone still finds everything */
        l->order = p;
        l->cap = cap;
    }
    l->order[l->n++] = a;
}

static hr_account *owner_of(loader *l, int table, const char *id) {
    if (l->npending && flush_pending(l)) l->oom = 1;
    if (l->last && !strcmp(l->last->id, id)) return l->last;
    if (l->n) {
        if (l->table != table) l->table = table, l->cur = 0;
        while (l->cur < l->n && strcmp(l->order[l->cur]->id, id) < 0) l->cur++;
        if (l->cur < l->n && !strcmp(l->order[l->cur]->id, id)) return l->last = l->order[l->cur];
    }
    return l->last = hr_acctix_get(l->e->accounts, id);
}

static const char *name_of(loader *l, const char *s) {
    if (!l->last_name || strcmp(l->last_name, s)) l->last_name = hr_intern(s);
    return l->last_name;
}

static int load_account(void *ud, const hr_account_rec *r) {
    hr_engine *e = ((loader *)ud)->e;
    hr_account *a = account_alloc(r->id);
    if (!a) return HR_ENOMEM;
    a->name = dup_or_null(r->name);
    a->owner = dup_or_null(r->owner);
    a->traits_json = (r->traits_json && strcmp(r->traits_json, "{}")) ? strdup(r->traits_json)
                                                                        : NULL;
    a->plan = hr_intern(r->plan ? r->plan : "");
    a->plan_version = r->plan_version;
    a->interval = (r->interval && !strcmp(r->interval, "year")) ? HR_INTERVAL_YEAR
                                                                 : HR_INTERVAL_MONTH;
    a->created_at = r->created_at;
    a->updated_at = r->updated_at;
    a->renews_at = r->renews_at;
    a->trial_plan = r->trial_plan ? hr_intern(r->trial_plan) : NULL;
    a->trial_started_at = r->trial_started_at;
    a->trial_ends_at = r->trial_ends_at;
    a->plan_trial_used = (uint8_t)r->plan_trial_used;
    int err = 0;
    if (parse_addons_json(r->addons_json, &a->addons, &a->naddons)) err = 1;
    if (!err) hr_account_reindex(e->cat, a);
    loader *l = ud;
    if (!err && hr_acctix_count(e->accounts)) {
        /* an engine that already holds accounts (not the start-up case):
         * replace in place */
        hr_account *old = hr_acctix_put(e->accounts, a, &err);
        if (!err) hr_account_free(old);
    } else if (!err) {
        if (l->npending == l->cappending) {
            size_t cap = l->cappending ? l->cappending * 2 : 4096;
            hr_account **p = realloc(l->pending, cap * sizeof *p);
            if (!p)
                err = 1;
            else
                l->pending = p, l->cappending = cap;
        }
        if (!err) l->pending[l->npending++] = a;
    }
    if (err) {
        hr_account_free(a);
        return HR_ENOMEM;
    }
    remember(ud, a);
    return 0;
}

static int load_user(void *ud, const hr_user_rec *r) {
    hr_account *a = owner_of(ud, 1, r->account);
    if (!a) return 0; /* orphan row: its account was deleted */
    if (grow((void **)&a->users, sizeof *a->users, a->nusers)) return HR_ENOMEM;
    hr_user *u = &a->users[a->nusers++];
    memset(u, 0, sizeof *u);
    u->id = strdup(r->id);
    u->role = dup_or_null(r->role);
    u->seat_type = dup_or_null(r->seat_type);
    /* most users have no traits: keep NULL rather than a copy of "{}" */
    u->traits_json = r->traits_json && strcmp(r->traits_json, "{}") ? strdup(r->traits_json) : NULL;
    u->created_at = r->created_at;
    u->updated_at = r->updated_at;
    /* the user -> account map is built on first use (ingest.c): not here,
     * where a million users would cost start-up a second */
    return u->id ? 0 : HR_ENOMEM;
}

static int load_usage(void *ud, const hr_usage_rec *r) {
    hr_account *a = owner_of(ud, 2, r->account);
    if (!a) return 0;
    const char *f = name_of(ud, r->feature);
    hr_usage_ent *u = find_usage(a, f);
    if (!u) {
        if (usage_reserve(a)) return HR_ENOMEM;
        u = &a->usage[a->nusage++];
        u->feature = f;
        u = usage_arrange(((loader *)ud)->e, a, a->nusage - 1);
    }
    u->value = r->value;
    u->period_start = r->period_start;
    return 0;
}

static hr_ovr_ent *find_ovr(const hr_account *a, const char *f) {
    for (uint16_t i = 0; i < a->novr; i++)
        if (!strcmp(a->ovr[i].feature, f)) return &a->ovr[i];
    return NULL;
}

static hr_ftrial_ent *find_ftrial(const hr_account *a, const char *f) {
    for (uint16_t i = 0; i < a->nftrial; i++)
        if (!strcmp(a->ftrial[i].feature, f)) return &a->ftrial[i];
    return NULL;
}

static int load_meter(void *ud, const hr_meter_rec *r) {
    hr_account *a = owner_of(ud, 5, r->account);
    return a ? hr_account_load_meter(a, r) : 0;
}

static int load_hist(void *ud, const hr_hist_rec *r) {
    hr_account *a = owner_of(ud, 6, r->account);
    return a ? hr_account_load_hist(a, r, ((loader *)ud)->today) : 0;
}

static int load_folded(void *ud, int64_t seq) {
    hr_engine *e = ((loader *)ud)->e;
    e->folded_seq = e->flushed_seq = seq;
    return 0;
}

static int load_seen(void *ud, const char *id, int64_t at_ms) {
    return hr_ingest_load_seen(((loader *)ud)->e, id, at_ms);
}

static int load_override(void *ud, const hr_override_rec *r) {
    hr_account *a = owner_of(ud, 3, r->account);
    if (!a) return 0;
    const char *f = name_of(ud, r->feature);
    hr_ovr_ent *o = find_ovr(a, f);
    if (!o) {
        if (grow((void **)&a->ovr, sizeof *a->ovr, a->novr)) return HR_ENOMEM;
        o = &a->ovr[a->novr++];
        o->feature = f;
    }
    o->value = r->value;
    o->expires_at = r->expires_at;
    o->created_at = r->created_at;
    return 0;
}

static int load_ftrial(void *ud, const hr_ftrial_rec *r) {
    hr_account *a = owner_of(ud, 4, r->account);
    if (!a) return 0;
    const char *f = name_of(ud, r->feature);
    hr_ftrial_ent *t = find_ftrial(a, f);
    if (!t) {
        if (grow((void **)&a->ftrial, sizeof *a->ftrial, a->nftrial)) return HR_ENOMEM;
        t = &a->ftrial[a->nftrial++];
        t->feature = f;
    }
    t->started_at = r->started_at;
    t->ends_at = r->ends_at;
    return 0;
}

int hr_engine_attach_store(hr_engine *e, hr_store *s, hr_err *err) {
    loader ctx = {.e = e};
    hr_store_loader l = {.ud = &ctx,           .account = load_account, .user = load_user,
                         .usage = load_usage,   .override = load_override, .ftrial = load_ftrial,
                         .expect = expect_accounts, .meter = load_meter, .seen = load_seen,
                         .seen_since = hr_time_now() * 1000 - e->dedup_window_ms,
                         .hist = load_hist, .folded = load_folded};
    ctx.today = (int32_t)(hr_time_now() / 86400);
    pthread_mutex_lock(&e->wmu);
    hr_rdlock_write(e->lock);
    int rc = s->ops->load(s, &l, err);
    int frc = flush_pending(&ctx); /* when no other table had rows */
    if (!rc && frc) rc = hr_err_set(err, frc, "out of memory loading accounts");
    sync_all(e); /* now that usage, overrides and trials are in */
    free(ctx.order);
    free(ctx.pending);
    /* idempotency keys are kept for a week: long enough for any retry */
    if (!rc) rc = s->ops->idem_prune(s, hr_time_now() - HR_IDEM_WINDOW, err);
    if (!rc) e->store = s;
    hr_rdlock_write_end(e->lock);
    /* the log past what the meter and history tables hold */
    if (!rc && (rc = hr_ingest_replay(e, err))) e->store = NULL;
    pthread_mutex_unlock(&e->wmu);
    return rc;
}

/* ---- writing through --------------------------------------------------- */

static void addons_json(const hr_addon_ent *ad, uint16_t n, hr_buf *b) {
    hr_buf_putc(b, '{');
    for (uint16_t i = 0; i < n; i++) {
        if (i) hr_buf_putc(b, ',');
        hr_buf_json_key(b, ad[i].addon);
        hr_buf_i64(b, ad[i].qty);
    }
    hr_buf_putc(b, '}');
}

/* id is passed apart from a: callers stage changes in a stack copy of the
 * account, and a struct copy does not carry the flexible id[] member. */
static int store_account(hr_engine *e, const char *id, const hr_account *a, hr_err *err) {
    if (!e->store) return 0;
    hr_buf ab;
    hr_buf_init(&ab);
    addons_json(a->addons, a->naddons, &ab);
    if (hr_buf_failed(&ab)) {
        hr_buf_dispose(&ab);
        return hr_err_set(err, HR_ENOMEM, "out of memory");
    }
    hr_account_rec r = {
        .id = id, .name = a->name, .plan = a->plan, .owner = a->owner,
        .plan_version = a->plan_version,
        .interval = a->interval == HR_INTERVAL_YEAR ? "year" : "month",
        .created_at = a->created_at, .updated_at = a->updated_at, .renews_at = a->renews_at,
        .traits_json = a->traits_json ? a->traits_json : "{}", .addons_json = ab.data,
        .trial_plan = a->trial_plan, .trial_started_at = a->trial_started_at,
        .trial_ends_at = a->trial_ends_at, .plan_trial_used = a->plan_trial_used,
    };
    int rc = e->store->ops->put_account(e->store, &r, err);
    hr_buf_dispose(&ab);
    return rc;
}

/* ---- accounts ---------------------------------------------------------- */

enum { F_NAME = 1, F_PLAN = 2, F_VERSION = 4, F_INTERVAL = 8, F_ADDONS = 16, F_TRAITS = 32,
       F_RENEWS = 64, F_OWNER = 128, F_CREATED = 256 };

/* New attribute values parsed from a document, applied after the store write. */
typedef struct attrs {
    unsigned set;
    char *name, *owner, *traits_json;
    const char *plan;
    int32_t plan_version;
    uint8_t interval;
    int64_t renews_at, created_at;
    hr_addon_ent *addons;
    uint16_t naddons;
} attrs;

static void attrs_dispose(attrs *t) {
    free(t->name);
    free(t->owner);
    free(t->traits_json);
    free(t->addons);
}

static int opt_string(json_object *v, const char *field, char **out, hr_err *err) {
    if (json_object_is_type(v, json_type_null)) return 0;
    if (!json_object_is_type(v, json_type_string))
        return hr_err_set(err, HR_EINVAL, "'%s' must be a string", field);
    if (!(*out = strdup(json_object_get_string(v)))) return hr_err_set(err, HR_ENOMEM, "oom");
    return 0;
}

static int opt_time(json_object *v, const char *field, int64_t *out, hr_err *err) {
    if (json_object_is_type(v, json_type_null)) {
        *out = 0;
        return 0;
    }
    if (!json_object_is_type(v, json_type_string) || hr_time_parse(json_object_get_string(v), out))
        return hr_err_set(err, HR_EINVAL, "'%s' must be an RFC 3339 time such as "
                                          "\"2026-12-01T00:00:00Z\"", field);
    return 0;
}

static int parse_attrs(json_object *doc, attrs *t, hr_err *err) {
    if (!json_object_is_type(doc, json_type_object))
        return hr_err_set(err, HR_EINVAL, "the body must be a JSON object");
    json_object_object_foreach(doc, k, v) {
        int rc = 0;
        if (!strcmp(k, "name")) {
            t->set |= F_NAME;
            rc = opt_string(v, k, &t->name, err);
        } else if (!strcmp(k, "owner")) {
            t->set |= F_OWNER;
            rc = opt_string(v, k, &t->owner, err);
        } else if (!strcmp(k, "plan")) {
            t->set |= F_PLAN;
            if (!json_object_is_type(v, json_type_string))
                return hr_err_set(err, HR_EINVAL, "'plan' must be a string");
            t->plan = hr_intern(json_object_get_string(v));
        } else if (!strcmp(k, "plan_version")) {
            t->set |= F_VERSION;
            if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1 ||
                json_object_get_int64(v) > 1000000)
                return hr_err_set(err, HR_EINVAL, "'plan_version' must be an integer >= 1");
            t->plan_version = (int32_t)json_object_get_int64(v);
        } else if (!strcmp(k, "interval")) {
            t->set |= F_INTERVAL;
            const char *s = json_object_get_string(v);
            if (!json_object_is_type(v, json_type_string) ||
                (strcmp(s, "month") && strcmp(s, "year")))
                return hr_err_set(err, HR_EINVAL, "'interval' must be \"month\" or \"year\"");
            t->interval = !strcmp(s, "year") ? HR_INTERVAL_YEAR : HR_INTERVAL_MONTH;
        } else if (!strcmp(k, "traits")) {
            t->set |= F_TRAITS;
            if (json_object_is_type(v, json_type_null)) continue;
            if (!json_object_is_type(v, json_type_object))
                return hr_err_set(err, HR_EINVAL, "'traits' must be an object");
            t->traits_json = strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
            if (!t->traits_json) return hr_err_set(err, HR_ENOMEM, "oom");
        } else if (!strcmp(k, "renews_at")) {
            t->set |= F_RENEWS;
            rc = opt_time(v, k, &t->renews_at, err);
        } else if (!strcmp(k, "created_at")) {
            t->set |= F_CREATED;
            rc = opt_time(v, k, &t->created_at, err);
        } else if (!strcmp(k, "addons")) {
            t->set |= F_ADDONS;
            if (json_object_is_type(v, json_type_null)) continue;
            if (!json_object_is_type(v, json_type_object))
                return hr_err_set(err, HR_EINVAL,
                                  "'addons' must be an object of add-on -> quantity");
            json_object_object_foreach(v, ak, av) {
                if (!json_object_is_type(av, json_type_int) || json_object_get_int64(av) < 0 ||
                    json_object_get_int64(av) > 1000000)
                    return hr_err_set(err, HR_EINVAL,
                                      "add-on '%s': quantity must be an integer >= 0", ak);
                if (json_object_get_int64(av) == 0) continue;
                if (grow((void **)&t->addons, sizeof *t->addons, t->naddons))
                    return hr_err_set(err, HR_ENOMEM, "oom");
                t->addons[t->naddons].addon = hr_intern(ak);
                t->addons[t->naddons++].qty = (int32_t)json_object_get_int64(av);
            }
        } else {
            return hr_err_set(err, HR_EINVAL, "unknown field '%s'", k);
        }
        if (rc) return rc;
    }
    return 0;
}

/* Checks plan, version and add-ons of the account as it would be. */
static int validate_account(const hr_catalog *c, const char *plan, int32_t version,
                            const hr_addon_ent *ad, uint16_t nad, hr_err *err) {
    int pi = hr_catalog_plan(c, plan);
    if (pi < 0) return hr_err_set(err, HR_ELIMIT, "unknown plan '%s'", plan);
    const hr_plan *p = &c->plans[pi];
    if (version) {
        int found = 0;
        for (int i = 0; i < p->nversions; i++) found |= p->versions[i].version == version;
        if (!found)
            return hr_err_set(err, HR_ELIMIT, "plan '%s' has no version %d", plan, (int)version);
    }
    for (uint16_t i = 0; i < nad; i++) {
        int ai = hr_catalog_addon(c, ad[i].addon);
        if (ai < 0) return hr_err_set(err, HR_ELIMIT, "unknown add-on '%s'", ad[i].addon);
        const hr_addon *a = &c->addons[ai];
        if (!a->plans[pi])
            return hr_err_set(err, HR_ELIMIT, "add-on '%s' is not available on plan '%s'",
                              ad[i].addon, plan);
        if (a->max_quantity && ad[i].qty > a->max_quantity)
            return hr_err_set(err, HR_ELIMIT, "add-on '%s': at most %d", ad[i].addon,
                              a->max_quantity);
    }
    return 0;
}

static int32_t current_version(const hr_catalog *c, const char *plan) {
    int pi = hr_catalog_plan(c, plan);
    return pi < 0 ? 0 : c->plans[pi].versions[c->plans[pi].nversions - 1].version;
}

int hr_engine_put_account(hr_engine *e, const char *id, json_object *doc, int patch,
                          int *created, hr_buf *out, hr_err *err) {
    attrs t = {0};
    hr_account *fresh = NULL, tmp;
    int rc = 0, locked = 0;
    if (created) *created = 0;
    if (!valid_account_id(id))
        return hr_err_set(err, HR_EINVAL, "account id must be 1-%d characters of "
                                          "letters, digits and _:@+- (no dots)", MAX_ID);
    if ((rc = parse_attrs(doc, &t, err))) goto out;
    pthread_mutex_lock(&e->wmu);
    locked = 1;
    hr_account *old = hr_acctix_get(e->accounts, id);
    if (patch && !old) {
        rc = hr_err_set(err, HR_ENOTFOUND, "no account '%s'", id);
        goto out;
    }
    int64_t now = hr_time_now();
    /* The account as it will be, in tmp: old values, then replaced or patched. */
    if (old) {
        tmp = *old;
    } else {
        memset(&tmp, 0, sizeof tmp);
        tmp.created_at = now;
    }
    if (!patch) { /* PUT replaces the attributes, keeps usage, users, trials */
        tmp.name = tmp.owner = tmp.traits_json = NULL;
        tmp.renews_at = 0;
        tmp.interval = HR_INTERVAL_MONTH;
        tmp.addons = NULL;
        tmp.naddons = 0;
        if (!(t.set & F_PLAN)) {
            if (!(t.set & F_PLAN) && !old && e->cat->nplans)
                t.plan = hr_intern(e->cat->plans[0].key), t.set |= F_PLAN;
            else if (old)
                t.plan = old->plan, t.set |= F_PLAN;
        }
    }
    if (t.set & F_NAME) tmp.name = t.name;
    if (t.set & F_OWNER) tmp.owner = t.owner;
    if (t.set & F_TRAITS) tmp.traits_json = t.traits_json;
    if (t.set & F_RENEWS) tmp.renews_at = t.renews_at;
    if (t.set & F_CREATED) tmp.created_at = t.created_at ? t.created_at : tmp.created_at;
    if (t.set & F_INTERVAL) tmp.interval = t.interval;
    if (t.set & F_ADDONS) tmp.addons = t.addons, tmp.naddons = t.naddons;
    if (t.set & F_PLAN) {
        /* A new plan starts on its current version; the same plan keeps the
         * version it was bought at (grandfathering). */
        if (!old || old->plan != t.plan || !old->plan_version)
            tmp.plan_version = current_version(e->cat, t.plan);
        tmp.plan = t.plan;
    }
    if (t.set & F_VERSION) tmp.plan_version = t.plan_version;
    tmp.updated_at = now;
    if ((rc = validate_account(e->cat, tmp.plan, tmp.plan_version, tmp.addons, tmp.naddons, err)))
        goto out;
    hr_account_reindex(e->cat, &tmp);
    if (!old) {
        if (!(fresh = account_alloc(id))) {
            rc = hr_err_set(err, HR_ENOMEM, "oom");
            goto out;
        }
        size_t idlen = strlen(id);
        uint8_t slab = fresh->slab; /* how fresh was allocated, not tmp's */
        memcpy(fresh, &tmp, sizeof tmp);
        fresh->slab = slab;
        memcpy(fresh->id, id, idlen + 1);
    }
    if ((rc = store_account(e, id, old ? &tmp : fresh, err))) goto out;
    /* Durable: apply. */
    hr_rdlock_write(e->lock);
    if (!old) {
        int perr = 0;
        hr_acctix_put(e->accounts, fresh, &perr);
        if (perr) {
            hr_rdlock_write_end(e->lock);
            rc = hr_err_set(err, HR_ENOMEM, "oom");
            goto out;
        }
    } else {
        if (tmp.name != old->name) free(old->name);
        if (tmp.owner != old->owner) free(old->owner);
        if (tmp.traits_json != old->traits_json) {
            free(old->traits_json);
            hr_traits_free(old->tix);
            tmp.tix = NULL;
        }
        if (tmp.addons != old->addons) free(old->addons);
        memcpy(old, &tmp, sizeof tmp);
    }
    hr_engine_sync_account(e, old ? old : fresh);
    hr_rdlock_write_end(e->lock);
    /* The attrs' strings now belong to the account. */
    if (t.set & F_NAME) t.name = NULL;
    if (t.set & F_OWNER) t.owner = NULL;
    if (t.set & F_TRAITS) t.traits_json = NULL;
    if (t.set & F_ADDONS) t.addons = NULL;
    hr_account *a = old ? old : fresh;
    fresh = NULL;
    if (created) *created = !old;
    if (out) hr_account_json(e->cat, a, out);
out:
    if (locked) pthread_mutex_unlock(&e->wmu);
    if (fresh) {
        /* never published: its fields are still owned by t */
        account_release(fresh);
    }
    attrs_dispose(&t);
    return rc;
}

int hr_engine_account_plan(hr_engine *e, const char *id, char *out, size_t n) {
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    const hr_account *a = hr_acctix_get(e->accounts, id);
    if (a) snprintf(out, n, "%s", a->plan ? a->plan : "");
    hr_rdlock_read_end(e->lock, rs);
    return a ? 0 : HR_ENOTFOUND;
}

int hr_engine_get_account(hr_engine *e, const char *id, hr_buf *out) {
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    hr_account *a = hr_acctix_get(e->accounts, id);
    if (a) hr_account_json(e->cat, a, out);
    hr_rdlock_read_end(e->lock, rs);
    return a ? 0 : HR_ENOTFOUND;
}

/* Drops the in-memory idempotency keys of an account ("{id}\x1f..."). */
static void forget_idem(hr_engine *e, const char *id) {
    size_t n = strlen(id), pos = 0, cnt = 0;
    const char *k;
    void *v;
    void **gone = malloc(hr_map_count(e->idem) * sizeof *gone + 1);
    if (!gone) return;
    while (hr_map_next(e->idem, &pos, &k, &v))
        if (!strncmp(k, id, n) && k[n] == '\x1f') gone[cnt++] = v;
    for (size_t i = 0; i < cnt; i++) {
        /* the key lives inside the value: after "hash\nstatus\nbody\0" */
        const char *blob = gone[i];
        hr_map_del(e->idem, blob + strlen(blob) + 1);
        free(gone[i]);
    }
    free(gone);
}

int hr_engine_delete_account(hr_engine *e, const char *id, hr_err *err) {
    int rc = 0;
    pthread_mutex_lock(&e->wmu);
    hr_account *a = hr_acctix_get(e->accounts, id);
    if (!a) {
        rc = hr_err_set(err, HR_ENOTFOUND, "no account '%s'", id);
        goto out;
    }
    /* meters and history written first: a restart must not replay the
     * account's logged events into a new account of the same id */
    if (e->store && (rc = hr_ingest_flush_locked(e, err))) goto out;
    if (e->store && (rc = e->store->ops->delete_account(e->store, id, err))) goto out;
    hr_rdlock_write(e->lock);
    hr_acctix_del(e->accounts, id);
    hr_rdlock_write_end(e->lock);
    hr_account_free(a);
    forget_idem(e, id);
out:
    pthread_mutex_unlock(&e->wmu);
    return rc;
}

int hr_engine_list_accounts(hr_engine *e, const char *cursor, int limit, hr_buf *out) {
    if (limit < 1) limit = 1;
    if (limit > 1000) limit = 1000;
    const char **page = calloc((size_t)limit + 1, sizeof *page);
    if (!page) return HR_ENOMEM;
    int n = 0, more = 0;
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    size_t pos = 0;
    hr_acct_slot *as;
    /* Keep the `limit` smallest ids after the cursor, sorted (insertion). */
    while (hr_acctix_next(e->accounts, &pos, &as)) {
        const char *k = as->acct->id;
        if (cursor && *cursor && strcmp(k, cursor) <= 0) continue;
        if (n == limit) {
            more = 1;
            if (strcmp(k, page[n - 1]) >= 0) continue;
            n--;
        }
        int i = n;
        while (i > 0 && strcmp(page[i - 1], k) > 0) {
            page[i] = page[i - 1];
            i--;
        }
        page[i] = k;
        n++;
    }
    hr_buf_puts(out, "{\"accounts\":[");
    for (int i = 0; i < n; i++) {
        if (i) hr_buf_putc(out, ',');
        hr_account_json(e->cat, hr_acctix_get(e->accounts, page[i]), out);
    }
    hr_buf_puts(out, "],\"next_cursor\":");
    hr_buf_json_str(out, more && n ? page[n - 1] : NULL);
    hr_buf_puts(out, ",\"total\":");
    hr_buf_i64(out, (int64_t)hr_acctix_count(e->accounts));
    hr_buf_putc(out, '}');
    hr_rdlock_read_end(e->lock, rs);
    free(page);
    return 0;
}

/* ---- users ------------------------------------------------------------- */

static hr_user *find_user(const hr_account *a, const char *uid) {
    for (uint32_t i = 0; i < a->nusers; i++)
        if (!strcmp(a->users[i].id, uid)) return &a->users[i];
    return NULL;
}

static void user_json(const char *account, const hr_user *u, hr_buf *out) {
    hr_buf_puts(out, "{\"id\":");
    hr_buf_json_str(out, u->id);
    hr_buf_puts(out, ",\"account\":");
    hr_buf_json_str(out, account);
    hr_buf_puts(out, ",\"role\":");
    hr_buf_json_str(out, u->role);
    hr_buf_puts(out, ",\"seat_type\":");
    hr_buf_json_str(out, u->seat_type);
    hr_buf_puts(out, ",\"traits\":");
    hr_buf_puts(out, u->traits_json ? u->traits_json : "{}");
    hr_buf_puts(out, ",\"created_at\":");
    hr_buf_json_time(out, u->created_at);
    hr_buf_puts(out, ",\"updated_at\":");
    hr_buf_json_time(out, u->updated_at);
    hr_buf_putc(out, '}');
}

/* Ingests one of headroom's own messages (taking ownership of it). Best
 * effort: what caused it is already durable. */
static void emit(hr_engine *e, json_object *o, int64_t now) {
    hr_msg m;
    hr_err err = {0};
    int st;
    if (o && hr_msg_parse(o, -1, 0, 0, now * 1000, &m, &err) == 0)
        hr_engine_ingest(e, &m, 1, now * 1000, &st, &err);
    json_object_put(o);
}

/* Records headroom.user_added in the event stream (log and meters), with a
 * messageId of its own so a retried write does not count it twice. Best
 * effort: the membership itself is already durable. */
static void emit_user_added(hr_engine *e, const char *account, const char *uid, int64_t now) {
    char id[400];
    snprintf(id, sizeof id, "headroom.user_added:%s:%s:%lld", account, uid, (long long)now);
    emit(e, hr_internal_msg("headroom.user_added", account, uid, NULL, id), now);
}

int hr_engine_put_user(hr_engine *e, const char *account, const char *uid, json_object *doc,
                       int *created, hr_buf *out, hr_err *err) {
    hr_user nu = {0};
    int rc = 0;
    if (created) *created = 0;
    if (!valid_id(uid))
        return hr_err_set(err, HR_EINVAL, "user id must be 1-%d characters of "
                                          "letters, digits and ._:@+-", MAX_ID);
    if (!json_object_is_type(doc, json_type_object))
        return hr_err_set(err, HR_EINVAL, "the body must be a JSON object");
    json_object_object_foreach(doc, k, v) {
        if (!strcmp(k, "role")) rc = opt_string(v, k, &nu.role, err);
        else if (!strcmp(k, "seat_type")) rc = opt_string(v, k, &nu.seat_type, err);
        else if (!strcmp(k, "traits")) {
            if (json_object_is_type(v, json_type_null)) continue;
            if (!json_object_is_type(v, json_type_object)) {
                rc = hr_err_set(err, HR_EINVAL, "'traits' must be an object");
            } else {
                free(nu.traits_json);
                nu.traits_json =
                    strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
            }
        } else
            rc = hr_err_set(err, HR_EINVAL, "unknown field '%s'", k);
        if (rc) goto fail;
    }
    pthread_mutex_lock(&e->wmu);
    hr_account *a = hr_acctix_get(e->accounts, account);
    if (!a) {
        rc = hr_err_set(err, HR_ENOTFOUND, "no account '%s'", account);
        goto unlock;
    }
    hr_user *old = find_user(a, uid);
    int64_t now = hr_time_now();
    nu.created_at = old ? old->created_at : now;
    nu.updated_at = now;
    if (!(nu.id = strdup(uid))) {
        rc = hr_err_set(err, HR_ENOMEM, "oom");
        goto unlock;
    }
    if (e->store) {
        hr_user_rec r = {account, uid, nu.role, nu.seat_type,
                         nu.traits_json ? nu.traits_json : "{}", nu.created_at, nu.updated_at};
        if ((rc = e->store->ops->put_user(e->store, &r, err))) goto unlock;
    }
    hr_rdlock_write(e->lock);
    if (!old) {
        if (grow((void **)&a->users, sizeof *a->users, a->nusers)) {
            hr_rdlock_write_end(e->lock);
            rc = hr_err_set(err, HR_ENOMEM, "oom");
            goto unlock;
        }
        old = &a->users[a->nusers++];
        memset(old, 0, sizeof *old);
    }
    hr_user prev = *old;
    nu.hist = prev.hist; /* the member's history outlives a rewrite of the user */
    *old = nu;
    hr_rdlock_write_end(e->lock);
    hr_engine_note_member(e, uid, account, now);
    free(prev.id);
    free(prev.role);
    free(prev.seat_type);
    free(prev.traits_json);
    hr_traits_free(prev.tix);
    memset(&nu, 0, sizeof nu);
    int is_new = prev.id == NULL;
    if (created) *created = is_new;
    if (out) user_json(account, old, out);
    pthread_mutex_unlock(&e->wmu);
    /* a new member is an event of its own: prompts and playbooks count it */
    if (is_new) emit_user_added(e, account, uid, now);
    return rc;
unlock:
    pthread_mutex_unlock(&e->wmu);
fail:
    free(nu.id);
    free(nu.role);
    free(nu.seat_type);
    free(nu.traits_json);
    return rc;
}

int hr_engine_get_user(hr_engine *e, const char *account, const char *uid, hr_buf *out) {
    int rc = HR_ENOTFOUND;
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    hr_account *a = hr_acctix_get(e->accounts, account);
    hr_user *u = a ? find_user(a, uid) : NULL;
    if (u) {
        user_json(account, u, out);
        rc = 0;
    }
    hr_rdlock_read_end(e->lock, rs);
    return rc;
}

int hr_engine_has_user(hr_engine *e, const char *account, const char *uid) {
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    hr_account *a = hr_acctix_get(e->accounts, account);
    int has = a && find_user(a, uid);
    hr_rdlock_read_end(e->lock, rs);
    return has;
}

int hr_engine_list_users(hr_engine *e, const char *account, hr_buf *out) {
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    hr_account *a = hr_acctix_get(e->accounts, account);
    if (a) {
        hr_buf_puts(out, "{\"users\":[");
        for (uint32_t i = 0; i < a->nusers; i++) {
            if (i) hr_buf_putc(out, ',');
            user_json(account, &a->users[i], out);
        }
        hr_buf_puts(out, "]}");
    }
    hr_rdlock_read_end(e->lock, rs);
    return a ? 0 : HR_ENOTFOUND;
}

int hr_engine_delete_user(hr_engine *e, const char *account, const char *uid, hr_err *err) {
    int rc = 0;
    pthread_mutex_lock(&e->wmu);
    hr_account *a = hr_acctix_get(e->accounts, account);
    hr_user *u = a ? find_user(a, uid) : NULL;
    if (!u) {
        rc = hr_err_set(err, HR_ENOTFOUND, "no user '%s' in account '%s'", uid, account);
        goto out;
    }
    if (e->store && (rc = hr_ingest_flush_locked(e, err))) goto out;
    if (e->store && (rc = e->store->ops->delete_user(e->store, account, uid, err))) goto out;
    hr_rdlock_write(e->lock);
    hr_user gone = *u;
    *u = a->users[--a->nusers];
    hr_rdlock_write_end(e->lock);
    free(gone.id);
    free(gone.role);
    free(gone.seat_type);
    free(gone.traits_json);
    hr_traits_free(gone.tix);
    hr_hist_free(gone.hist);
out:
    pthread_mutex_unlock(&e->wmu);
    return rc;
}

/* ---- usage, overrides, trials ------------------------------------------ */

/* Looks up account and feature for a mutation; fi is the catalog index. */
static int target(hr_engine *e, const char *account, const char *feature, hr_account **a,
                  int *fi, hr_err *err) {
    if (!(*a = hr_acctix_get(e->accounts, account)))
        return hr_err_set(err, HR_ENOTFOUND, "no account '%s'", account);
    if ((*fi = hr_catalog_feature(e->cat, feature)) < 0)
        return hr_err_set(err, HR_ELIMIT, "unknown feature '%s'", feature);
    return 0;
}

int hr_engine_record_usage(hr_engine *e, const char *account, const char *feature,
                           int64_t value, int replace, const char *idem_key,
                           uint64_t body_hash, int64_t now, int *status, hr_buf *out,
                           hr_err *err) {
    hr_buf key, body;
    hr_buf_init(&key);
    hr_buf_init(&body);
    int rc = 0, intx = 0, ncrossed = 0;
    double crossed[HR_MAX_THRESHOLDS];
    int64_t limit = 0, after = 0;
    hr_account *a;
    int fi = -1; /* set by target() (-O3 cannot tell) */
    *status = 200;
    if (!now) now = hr_time_now();
    pthread_mutex_lock(&e->wmu);
    if (idem_key) {
        /* scoped by account so two tenants' keys never collide */
        hr_buf_printf(&key, "%s\x1fusage\x1f%s", account, idem_key);
        uint64_t h = 0;
        char *prev = NULL;
        int st = 0;
        if (e->store) {
            rc = e->store->ops->idem_get(e->store, key.data, &h, &st, &prev, err);
            if (rc && rc != HR_ENOTFOUND) goto out;
        } else {
            char *mem = hr_map_get(e->idem, key.data);
            rc = mem ? 0 : HR_ENOTFOUND;
            if (mem) { /* stored as "hash\nstatus\nbody" */
                h = strtoull(mem, &mem, 16);
                st = (int)strtol(mem + 1, &mem, 10);
                prev = strdup(mem + 1);
            }
        }
        if (rc == 0) {
            if (h != body_hash)
                rc = hr_err_set(err, HR_ECONFLICT, "Idempotency-Key '%s' was already used "
                                                   "with a different request", idem_key);
            else {
                hr_buf_puts(out, prev ? prev : "{}");
                *status = st;
            }
            free(prev);
            goto out;
        }
        rc = 0;
    }
    if ((rc = target(e, account, feature, &a, &fi, err))) goto out;
    const hr_feature *f = &e->cat->features[fi];
    if (f->type == HR_FEAT_BOOLEAN) {
        rc = hr_err_set(err, HR_ELIMIT, "feature '%s' is boolean: it has no usage", feature);
        goto out;
    }
    if (replace && value < 0) {
        rc = hr_err_set(err, HR_EINVAL, "'set' must be >= 0");
        goto out;
    }
    const char *fname = hr_intern(feature);
    int64_t cur = hr_account_usage(a, f, fname, now);
    int64_t nv = replace ? value : cur + value;
    if (!replace && value > 0 && nv < cur) nv = INT64_MAX; /* saturate */
    if (nv < 0) nv = 0;
    int64_t pstart = f->type == HR_FEAT_METERED ? hr_period_start(f->period, now) : 0;
    hr_feature_state_json(e->cat, a, fi, nv, now, &body);
    if (hr_buf_failed(&body) || hr_buf_failed(&key)) {
        rc = hr_err_set(err, HR_ENOMEM, "oom");
        goto out;
    }
    hr_usage_ent *u = find_usage(a, fname);
    if (!u) { /* make room before the write so applying cannot fail; under
               * the lock, as decisions may be reading the array it moves */
        hr_rdlock_write(e->lock);
        int oom = usage_reserve(a);
        hr_rdlock_write_end(e->lock);
        if (oom) {
            rc = hr_err_set(err, HR_ENOMEM, "oom");
            goto out;
        }
    }
    if (e->store) {
        hr_usage_rec r = {account, feature, nv, pstart, now};
        if (idem_key) {
            if ((rc = e->store->ops->begin(e->store, err))) goto out;
            intx = 1;
        }
        if ((rc = e->store->ops->put_usage(e->store, &r, err))) goto out;
        if (idem_key) {
            hr_idem_rec ir = {key.data, body_hash, 200, body.data, now};
            if ((rc = e->store->ops->idem_put(e->store, &ir, err))) goto out;
            if ((rc = e->store->ops->commit(e->store, err))) goto out;
            intx = 0;
        }
    } else if (idem_key) {
        hr_buf rec;
        hr_buf_init(&rec);
        hr_buf_printf(&rec, "%llx\n200\n", (unsigned long long)body_hash);
        hr_buf_puts(&rec, body.data);
        int perr = 0;
        char *k = strdup(key.data);
        if (!k || hr_buf_failed(&rec)) perr = 1;
        if (!perr) {
            /* the key string is stored inside the value's allocation */
            size_t kl = strlen(k) + 1;
            char *blob = malloc(kl + rec.len + 1);
            if (blob) {
                memcpy(blob, rec.data, rec.len + 1);
                memcpy(blob + rec.len + 1, k, kl);
                hr_map_put(e->idem, blob + rec.len + 1, blob, &perr);
                if (perr) free(blob);
            } else
                perr = 1;
        }
        free(k);
        hr_buf_dispose(&rec);
        if (perr) {
            rc = hr_err_set(err, HR_ENOMEM, "oom");
            goto out;
        }
    }
    hr_rdlock_write(e->lock);
    if (!u) {
        u = &a->usage[a->nusage++];
        u->feature = fname;
        u = usage_arrange(e, a, a->nusage - 1);
    }
    u->value = nv;
    u->period_start = pstart;
    hr_engine_sync_account(e, a);
    hr_rdlock_write_end(e->lock);
    hr_buf_append(out, body.data, body.len);
    {
        /* crossing a threshold of the allocation is an event of its own */
        int mi = e->cat->feature_meter ? e->cat->feature_meter[fi] : -1;
        int64_t m = mi >= 0 ? (int64_t)hr_account_meter_now(e->cat, a, mi, now) : 0;
        limit = hr_account_limit(e->cat, a, fi, now);
        ncrossed = hr_thresholds_crossed(&e->cat->features[fi], cur + m, nv + m, limit, crossed);
        after = nv + m;
    }
out:
    if (intx) e->store->ops->rollback(e->store);
    pthread_mutex_unlock(&e->wmu);
    hr_buf_dispose(&key);
    hr_buf_dispose(&body);
    for (int k = 0; k < ncrossed; k++)
        emit(e, hr_threshold_msg(account, feature, crossed[k], after, limit), now);
    return rc;
}

int hr_engine_usage(hr_engine *e, const char *account, const char *feature, int64_t value,
                    int replace, hr_err *err) {
    hr_buf out;
    hr_buf_init(&out);
    int st;
    int rc = hr_engine_record_usage(e, account, feature, value, replace, NULL, 0, 0, &st, &out,
                                    err);
    hr_buf_dispose(&out);
    return rc;
}

/* Reads an entitlement-like value for feature f from JSON. */
static int ent_value(const hr_feature *f, json_object *v, int64_t *out, hr_err *err) {
    if (f->type == HR_FEAT_BOOLEAN) {
        if (!json_object_is_type(v, json_type_boolean))
            return hr_err_set(err, HR_EINVAL, "'%s' is boolean: value must be true or false",
                              f->key);
        *out = json_object_get_boolean(v) ? 1 : 0;
        return 0;
    }
    if (json_object_is_type(v, json_type_string) &&
        !strcmp(json_object_get_string(v), "unlimited")) {
        *out = HR_UNLIMITED;
        return 0;
    }
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
        return hr_err_set(err, HR_EINVAL,
                          "'%s': value must be an integer >= 0 or \"unlimited\"", f->key);
    *out = json_object_get_int64(v);
    return 0;
}

int hr_engine_put_override(hr_engine *e, const char *account, const char *feature,
                           json_object *value, int64_t expires_at, hr_buf *out, hr_err *err) {
    int rc, fi = -1;
    hr_account *a;
    int64_t v = 0, now = hr_time_now();
    pthread_mutex_lock(&e->wmu);
    if ((rc = target(e, account, feature, &a, &fi, err))) goto out;
    if ((rc = ent_value(&e->cat->features[fi], value, &v, err))) goto out;
    const char *fname = hr_intern(feature);
    hr_ovr_ent *o = find_ovr(a, fname);
    if (!o && grow_live(e, (void **)&a->ovr, sizeof *a->ovr, a->novr)) {
        rc = hr_err_set(err, HR_ENOMEM, "oom");
        goto out;
    }
    if (e->store) {
        hr_override_rec r = {account, feature, v, expires_at, now};
        if ((rc = e->store->ops->put_override(e->store, &r, err))) goto out;
    }
    hr_rdlock_write(e->lock);
    if (!o) {
        o = &a->ovr[a->novr++];
        o->feature = fname;
    }
    o->value = v;
    o->expires_at = expires_at;
    o->created_at = now;
    hr_engine_sync_account(e, a);
    hr_rdlock_write_end(e->lock);
    if (out) hr_feature_state_json(e->cat, a, fi, hr_account_usage(a, &e->cat->features[fi],
                                                                    fname, now), now, out);
out:
    pthread_mutex_unlock(&e->wmu);
    return rc;
}

int hr_engine_delete_override(hr_engine *e, const char *account, const char *feature,
                              hr_err *err) {
    int rc, fi = -1;
    hr_account *a;
    pthread_mutex_lock(&e->wmu);
    if ((rc = target(e, account, feature, &a, &fi, err))) goto out;
    hr_ovr_ent *o = find_ovr(a, hr_intern(feature));
    if (!o) {
        rc = hr_err_set(err, HR_ENOTFOUND, "no override of '%s' for '%s'", feature, account);
        goto out;
    }
    if (e->store && (rc = e->store->ops->delete_override(e->store, account, feature, err)))
        goto out;
    hr_rdlock_write(e->lock);
    *o = a->ovr[--a->novr];
    hr_engine_sync_account(e, a);
    hr_rdlock_write_end(e->lock);
out:
    pthread_mutex_unlock(&e->wmu);
    return rc;
}

static void trial_json(const char *kind, const char *key, int64_t started, int64_t ends,
                       int64_t now, hr_buf *out) {
    hr_buf_puts(out, "{\"kind\":");
    hr_buf_json_str(out, kind);
    hr_buf_puts(out, !strcmp(kind, "plan") ? ",\"plan\":" : ",\"feature\":");
    hr_buf_json_str(out, key);
    hr_buf_puts(out, ",\"started_at\":");
    hr_buf_json_time(out, started);
    hr_buf_puts(out, ",\"ends_at\":");
    hr_buf_json_time(out, ends);
    hr_buf_puts(out, now < ends ? ",\"active\":true}" : ",\"active\":false}");
}

int hr_engine_start_feature_trial(hr_engine *e, const char *account, const char *feature,
                                  int64_t now, hr_buf *out, hr_err *err) {
    int rc, fi = -1;
    hr_account *a;
    if (!now) now = hr_time_now();
    pthread_mutex_lock(&e->wmu);
    if ((rc = target(e, account, feature, &a, &fi, err))) goto out;
    int days = e->cat->feature_trial_days[fi];
    if (days <= 0) {
        rc = hr_err_set(err, HR_ELIMIT, "feature '%s' has no trial", feature);
        goto out;
    }
    const char *fname = hr_intern(feature);
    if (find_ftrial(a, fname)) {
        rc = hr_err_set(err, HR_ECONFLICT, "account '%s' already used its trial of '%s'",
                        account, feature);
        goto out;
    }
    if (grow_live(e, (void **)&a->ftrial, sizeof *a->ftrial, a->nftrial)) {
        rc = hr_err_set(err, HR_ENOMEM, "oom");
        goto out;
    }
    int64_t ends = now + (int64_t)days * 86400;
    if (e->store) {
        hr_ftrial_rec r = {account, feature, now, ends};
        if ((rc = e->store->ops->put_ftrial(e->store, &r, err))) goto out;
    }
    hr_rdlock_write(e->lock);
    a->ftrial[a->nftrial++] = (hr_ftrial_ent){fname, now, ends};
    hr_engine_sync_account(e, a);
    hr_rdlock_write_end(e->lock);
    if (out) trial_json("feature", feature, now, ends, now, out);
out:
    pthread_mutex_unlock(&e->wmu);
    return rc;
}

int hr_engine_start_plan_trial(hr_engine *e, const char *account, const char *plan,
                               int64_t now, hr_buf *out, hr_err *err) {
    int rc = 0;
    if (!now) now = hr_time_now();
    pthread_mutex_lock(&e->wmu);
    hr_account *a = hr_acctix_get(e->accounts, account);
    if (!a) {
        rc = hr_err_set(err, HR_ENOTFOUND, "no account '%s'", account);
        goto out;
    }
    int pi = hr_catalog_plan(e->cat, plan);
    if (pi < 0) {
        rc = hr_err_set(err, HR_ELIMIT, "unknown plan '%s'", plan);
        goto out;
    }
    int days = e->cat->plans[pi].trial_days;
    if (days <= 0) {
        rc = hr_err_set(err, HR_ELIMIT, "plan '%s' has no trial", plan);
        goto out;
    }
    int cur = hr_catalog_plan(e->cat, a->plan);
    if (cur >= 0 && e->cat->plans[pi].tier <= e->cat->plans[cur].tier) {
        rc = hr_err_set(err, HR_ELIMIT, "plan '%s' is not above the account's plan '%s'", plan,
                        a->plan);
        goto out;
    }
    if (a->plan_trial_used) {
        rc = hr_err_set(err, HR_ECONFLICT, "account '%s' already used its plan trial", account);
        goto out;
    }
    hr_account tmp = *a;
    tmp.trial_plan = hr_intern(plan);
    tmp.trial_started_at = now;
    tmp.trial_ends_at = now + (int64_t)days * 86400;
    tmp.plan_trial_used = 1;
    tmp.updated_at = now;
    hr_account_reindex(e->cat, &tmp);
    if ((rc = store_account(e, a->id, &tmp, err))) goto out;
    hr_rdlock_write(e->lock);
    *a = tmp;
    hr_engine_sync_account(e, a);
    hr_rdlock_write_end(e->lock);
    if (out) trial_json("plan", plan, now, tmp.trial_ends_at, now, out);
out:
    pthread_mutex_unlock(&e->wmu);
    return rc;
}

void hr_engine_each_feature(hr_engine *e, hr_feature_fn fn, void *ud) {
    hr_catalog *c = hr_engine_catalog(e);
    if (!c) return;
    for (int i = 0; i < c->nfeatures; i++) fn(ud, c->features[i].key);
    hr_catalog_release(c);
}

int hr_engine_put_account_json(hr_engine *e, const char *id, const char *json, hr_err *err) {
    json_object *doc = NULL;
    size_t off;
    char msg[160];
    int rc = hr_json_decode(json, strlen(json), &doc, &off, msg, sizeof msg);
    if (rc) return hr_err_set(err, rc, "malformed JSON at byte %zu: %s", off, msg);
    rc = hr_engine_put_account(e, id, doc, 0, NULL, NULL, err);
    json_object_put(doc);
    return rc;
}

/* Merges the members of add into the JSON object text base (NULL = {});
 * returns a new object (caller puts it). */
static json_object *merged(const char *base, json_object *add) {
    json_object *o = base ? json_tokener_parse(base) : NULL;
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = json_object_new_object();
    }
    if (o && add && json_object_is_type(add, json_type_object)) {
        json_object_object_foreach(add, k, v) json_object_object_add(o, k, json_object_get(v));
    }
    return o;
}

int hr_engine_join(hr_engine *e, const char *account, const char *user, json_object *account_traits,
                   json_object *user_traits, int64_t now, hr_err *err) {
    (void)now;
    int rc = 0;
    char *acct_traits = NULL, *role = NULL, *seat = NULL, *utraits = NULL;
    int known_user = 0;
    /* what the account and user hold now, copied under the read lock */
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    hr_account *a = hr_acctix_get(e->accounts, account);
    int exists = a != NULL;
    if (a && a->traits_json) acct_traits = strdup(a->traits_json);
    hr_user *u = a && user ? find_user(a, user) : NULL;
    if (u) {
        known_user = 1;
        role = u->role ? strdup(u->role) : NULL;
        seat = u->seat_type ? strdup(u->seat_type) : NULL;
        utraits = u->traits_json ? strdup(u->traits_json) : NULL;
    }
    hr_rdlock_read_end(e->lock, rs);
    json_object *doc = json_object_new_object(), *t = NULL;
    if (!doc) {
        rc = hr_err_set(err, HR_ENOMEM, "out of memory");
        goto out;
    }
    if (!exists || (account_traits && json_object_object_length(account_traits))) {
        /* a new account (first plan), or new traits merged into its own; a
         * `name` trait names the account */
        t = merged(acct_traits, account_traits);
        json_object *name;
        if (t && json_object_object_get_ex(t, "name", &name) &&
            json_object_is_type(name, json_type_string))
            json_object_object_add(doc, "name", json_object_get(name));
        json_object_object_add(doc, "traits", t);
        if ((rc = hr_engine_put_account(e, account, doc, exists, NULL, NULL, err))) goto out;
    }
    if (user && (!known_user || (user_traits && json_object_object_length(user_traits)))) {
        json_object *ud = json_object_new_object();
        if (role) json_object_object_add(ud, "role", json_object_new_string(role));
        if (seat) json_object_object_add(ud, "seat_type", json_object_new_string(seat));
        json_object_object_add(ud, "traits", merged(utraits, user_traits));
        rc = hr_engine_put_user(e, account, user, ud, NULL, NULL, err);
        json_object_put(ud);
    } else if (user) {
        pthread_mutex_lock(&e->wmu);
        hr_engine_note_member(e, user, account, hr_time_now());
        pthread_mutex_unlock(&e->wmu);
    }
out:
    json_object_put(doc);
    free(acct_traits);
    free(role);
    free(seat);
    free(utraits);
    return rc;
}
