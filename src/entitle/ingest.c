/* ingest.c: product events into meters, durably, with group commit.
 *
 * A request hands its validated messages to hr_engine_ingest and waits.
 * Whoever finds no commit in progress becomes the leader: it takes every
 * job queued so far (its own and other requests'), and under the engine's
 * writer mutex dedups them (message ids seen in the window), folds track
 * events into staged copies of the meter values they touch, appends all to
 * the event log and upserts the values in one transaction (one fsync for
 * many requests), then swaps the staged values into the accounts under the
 * brief exclusive lock. Followers just wait for their job to be marked
 * done. So a 2xx always means durable, and a retry of an acknowledged
 * message counts nothing twice.
 *
 * The same batch carries the event history (history.c: counts per event and
 * day, for the account and the member) and headroom's own events: usage
 * crossing its thresholds (folded in before the commit), and the feature denials
 * the decision path notes (hr_engine_flush_internal). Membership (the
 * account a user's events reach) is kept here too. */
#include <stdio.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "entitle_int.h"
#include "err.h"
#include "idset.h"
#include "intern.h"
#include "log.h"
#include "timeutil.h"

typedef struct hr_ingest_job {
    struct hr_ingest_job *next;
    hr_msg *msgs;
    int n;
    int64_t now_ms;
    int *status; /* per message: HR_INGEST_* */
    int done, rc;
    hr_err err;
} hr_ingest_job;

static uint64_t id_hash(const char *id) { return hr_hash(id, strlen(id)); }
static uint32_t minute_of(int64_t ms) { return ms > 0 ? (uint32_t)(ms / 60000) : 0; }

void hr_ingest_init(hr_engine *e) {
    e->user_acct = hr_map_new(1024);
    e->seen = hr_idset_new();
    pthread_mutex_init(&e->qmu, NULL);
    pthread_cond_init(&e->qcv, NULL);
    e->dedup_window_ms = 7LL * 86400 * 1000;
    e->retention_ms = 90LL * 86400 * 1000;
    pthread_mutex_init(&e->pmu, NULL);
    pthread_mutex_init(&e->imu, NULL);
    pthread_cond_init(&e->icv, NULL);
}

static void dirty_clear(hr_engine *e);
static void spare_free(hr_engine *e);
static void inflight_free_all(hr_engine *e);

void hr_engine_set_log_store(hr_engine *e, hr_store *log) { e->log_store = log; }

void hr_ingest_dispose(hr_engine *e) {
    dirty_clear(e);
    spare_free(e);
    size_t pos = 0;
    void *v;
    while (e->user_acct && hr_map_next(e->user_acct, &pos, NULL, &v)) free(v);
    hr_map_free(e->user_acct);
    hr_idset_free(e->seen);
    inflight_free_all(e);
    pthread_mutex_destroy(&e->imu);
    pthread_cond_destroy(&e->icv);
    pthread_mutex_destroy(&e->qmu);
    pthread_cond_destroy(&e->qcv);
    pthread_mutex_destroy(&e->pmu);
    free(e->denied);
    pos = 0;
    while (e->denied_at && hr_map_next(e->denied_at, &pos, NULL, &v)) free(v);
    hr_map_free(e->denied_at);
}

static void note(hr_engine *e, const char *user, const char *account, int64_t at);

/* Builds the user -> account map from every account's users, the first time
 * an event needs it (writer mutex held). */
static void build_members(hr_engine *e) {
    if (e->members_built) return;
    e->members_built = 1;
    size_t pos = 0;
    hr_acct_slot *s;
    while (hr_acctix_next(e->accounts, &pos, &s)) {
        const hr_account *a = s->acct;
        for (uint32_t i = 0; i < a->nusers; i++)
            note(e, a->users[i].id, a->id, a->users[i].updated_at);
    }
}

void hr_engine_note_member(hr_engine *e, const char *user, const char *account, int64_t at) {
    if (e->members_built) note(e, user, account, at);
}

static void note(hr_engine *e, const char *user, const char *account, int64_t at) {
    hr_membership *m = hr_map_get(e->user_acct, user);
    if (m) {
        if (at >= m->at) m->account = hr_intern(account), m->at = at;
        return;
    }
    size_t n = strlen(user);
    if (!(m = malloc(sizeof *m + n + 1))) return; /* resolution falls back to context */
    memcpy(m->user, user, n + 1);
    m->account = hr_intern(account);
    m->at = at;
    int err = 0;
    hr_map_put(e->user_acct, m->user, m, &err);
    if (err) free(m);
}

int hr_engine_user_account(hr_engine *e, const char *user, char *out, size_t n) {
    pthread_mutex_lock(&e->wmu); /* the membership map is the writers' */
    build_members(e);
    hr_membership *m = hr_map_get(e->user_acct, user);
    if (m) snprintf(out, n, "%s", m->account);
    pthread_mutex_unlock(&e->wmu);
    return m ? 0 : HR_ENOTFOUND;
}

/* The UTC day of a time in milliseconds (floor of ms/1000, then of days). */
static int32_t day_of_ms(int64_t ms) {
    return (int32_t)hr_time_days(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
}

static int cycle_months(const hr_account *a) { return a->interval == HR_INTERVAL_YEAR ? 12 : 1; }

static hr_mval_ent *find_mval(const hr_account *a, const char *meter) {
    for (uint16_t i = 0; i < a->nmvals; i++)
        if (!strcmp(a->mvals[i].meter, meter)) return &a->mvals[i];
    return NULL;
}

double hr_account_meter_now(const hr_catalog *c, const hr_account *a, int mi, int64_t now) {
    const hr_meter *m = &c->meters[mi];
    const hr_mval_ent *mv = find_mval(a, m->key);
    if (!mv) return 0;
    int64_t start = hr_meter_period_start(m->period, now, a->renews_at, cycle_months(a));
    return mv->v.period_start == start ? mv->v.value : 0;
}

/* Copies a stored value into v (rebuilding a unique meter's set). */
static int set_from_rec(hr_meter_value *v, const hr_meter_rec *r) {
    hr_meter_value_init(v, r->period_start);
    for (uint32_t i = 0; i < r->nuniq; i++)
        if (hr_meter_fold(v, HR_AGG_UNIQUE, 0, r->uniq[i], 0) < 0) return HR_ENOMEM;
    v->value = r->value;
    v->latest_ms = r->latest_ms;
    return 0;
}

int hr_account_load_meter(hr_account *a, const hr_meter_rec *r) {
    const char *meter = hr_intern(r->meter);
    if (!meter) return HR_ENOMEM;
    hr_mval_ent *mv = find_mval(a, meter);
    if (!mv) {
        hr_mval_ent *p = realloc(a->mvals, (a->nmvals + 1u) * sizeof *p);
        if (!p) return HR_ENOMEM;
        a->mvals = p;
        mv = &p[a->nmvals++];
        mv->meter = meter;
        hr_meter_value_init(&mv->v, 0);
    } else if (mv->v.period_start > r->period_start) {
        return 0;
    }
    hr_meter_value_dispose(&mv->v);
    return set_from_rec(&mv->v, r);
}

/* The history owner of a stored row: the account, or one of its members. */
static hr_hist **owner_of_row(hr_account *a, const char *user) {
    if (!user || !*user) return &a->hist;
    for (uint32_t i = 0; i < a->nusers; i++)
        if (!strcmp(a->users[i].id, user)) return &a->users[i].hist;
    return NULL; /* a member since removed */
}

int hr_account_load_hist(hr_account *a, const hr_hist_rec *r, int32_t today) {
    hr_hist **owner = owner_of_row(a, r->user);
    if (!owner || !r->event) return 0;
    int rc;
    if (!strncmp(r->event, HR_SUM_PREFIX, sizeof HR_SUM_PREFIX - 1)) {
        const char *key = hr_intern(r->event + sizeof HR_SUM_PREFIX - 1);
        hr_sum_ent *se = key ? hr_hist_sum(owner, key, 1) : NULL;
        rc = se ? hr_hist_days_parse(r->days, today, NULL, se) : HR_ENOMEM;
    } else {
        const char *ev = hr_intern(r->event);
        hr_hist_ent *he = ev ? hr_hist_get(owner, ev) : NULL;
        if (!he) return HR_ENOMEM;
        he->first_ms = r->first_ms;
        he->last_ms = r->last_ms;
        rc = hr_hist_days_parse(r->days, today, he, NULL);
    }
    if (rc == HR_EINVAL) { /* one bad row costs its days, not the start */
        hr_log(HR_LOG_WARN, "event history of %s/%s/%s: unreadable days, skipped", a->id,
               r->user ? r->user : "", r->event);
        rc = 0;
    }
    return rc;
}

int hr_ingest_load_seen(hr_engine *e, const char *id, int64_t at_ms) {
    return hr_idset_add(e->seen, id_hash(id), minute_of(at_ms)) ? HR_ENOMEM : 0;
}

int hr_engine_meter_value(hr_engine *e, const char *account, const char *meter, int64_t now,
                          double *out) {
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    const hr_account *a = hr_acctix_get(e->accounts, account);
    int mi = hr_catalog_meter(e->cat, meter);
    int rc = !a ? HR_ENOTFOUND : mi < 0 ? HR_ELIMIT : 0;
    if (!rc) *out = hr_account_meter_now(e->cat, a, mi, now ? now : hr_time_now());
    hr_rdlock_read_end(e->lock, rs);
    return rc;
}

/* ---- one batch, under the writer mutex --------------------------------- */

/* An index over one of a batch's arrays: each slot holds a position + 1
 * (0: empty); open addressing, linear probing, at most half full. Keys are
 * compared through the array, so nothing is copied or formatted: with
 * thousands of events in a group commit, a scan per event (or a printed
 * key per history day) was most of the fold. */
typedef struct bindex {
    uint32_t *slot;
    size_t mask;  /* the table's capacity - 1 */
    size_t alloc; /* slots allocated (a kept batch's table may be larger) */
    size_t n;
} bindex;

static uint64_t mix3(uint64_t a, uint64_t b, uint64_t c) {
    uint64_t h = a * 0x9E3779B97F4A7C15ull ^ b * 0xC2B2AE3D27D4EB4Full ^ c * 0x165667B19E3779F9ull;
    h ^= h >> 31;
    h *= 0xD6E8FEB86659FD93ull;
    return h ^ (h >> 32);
}

/* Makes room for one more entry; rehash(ud, x) re-adds the array's entries
 * to the emptied table. -1 on OOM. */
static int bindex_reserve(bindex *x, void (*rehash)(void *ud, bindex *x), void *ud) {
    if (x->slot && (x->n + 1) * 2 <= x->mask + 1) return 0;
    size_t cap = x->slot ? (x->mask + 1) * 2 : 256;
    uint32_t *p = calloc(cap, sizeof *p);
    if (!p) return -1;
    free(x->slot);
    x->slot = p;
    x->mask = cap - 1;
    x->alloc = cap;
    x->n = 0;
    if (rehash) rehash(ud, x);
    return 0;
}

/* Sizes an empty index for n entries at once: a group commit knows how
 * many messages it folds, and growing by doubling rehashed every entry
 * again at each step, each time into fresh pages. */
static int bindex_presize(bindex *x, size_t n) {
    size_t cap = 256;
    while (cap < (n + 1) * 2) cap *= 2;
    if (x->slot && x->alloc >= cap) { /* a kept batch's: emptied */
        memset(x->slot, 0, cap * sizeof *x->slot);
    } else {
        free(x->slot);
        if (!(x->slot = calloc(cap, sizeof *x->slot))) return -1;
        x->alloc = cap;
    }
    x->mask = cap - 1;
    x->n = 0;
    return 0;
}

/* A meter value being changed by this batch. */
typedef struct staged {
    hr_account *a;
    const char *meter; /* interned */
    int64_t ps;        /* the period */
    hr_meter_value v;  /* owned copy; after apply, what it replaced */
    int current;       /* replaces the account's in-memory value after commit */
} staged;

/* A message id the dedup window learns from a batch: its hash, and when. */
typedef struct seen_id {
    uint64_t h;
    int64_t at;
} seen_id;

/* A batch folded into memory whose log write may still be under way (the
 * pipelined group commit): later batches check its ids, which reach
 * e->seen once its commit has landed (drain_inflight). */
typedef struct hr_inflight {
    struct hr_inflight *next;
    hr_idset *bseen;    /* its new ids' hashes (NULL: none) */
    seen_id *new_seen;
    size_t nseen;
    int64_t now_ms;
    int64_t seq;        /* its log's newest seq, once written */
    int state;          /* 0: writing; 1: durable; -1: the write failed (imu) */
} hr_inflight;

static void inflight_free(hr_inflight *f) {
    hr_idset_free(f->bseen);
    free(f->new_seen);
    free(f);
}

/* At the end: no ingestion runs now, every log write has ended. */
static void inflight_free_all(hr_engine *e) {
    while (e->inflight) {
        hr_inflight *f = e->inflight;
        e->inflight = f->next;
        inflight_free(f);
    }
    e->inflight_tail = NULL;
}

typedef struct batch {
    staged *st;
    size_t nst, capst;
    hr_event_rec *ev;
    size_t nev, capev;
    seen_id *new_seen;  /* new ids (id_hash), when */
    size_t nseen, capseen;
    hr_idset *bseen;    /* new_seen's hashes (a batch may repeat an id) */
    /* st by (account, meter, period); the current one by (account, meter) */
    bindex stx, curx;
    /* history increments: one per (owner, event, day, sum or count) */
    struct hstage *hs;
    size_t nhs, caphs;
    bindex hsx;
    /* headroom's own messages made during the batch (thresholds) */
    json_object **own;
    hr_msg *ownmsg;
    size_t nown;
    int replay; /* events from the log at start-up: no dedup, not logged again */
} batch;

/* An event's count on one day, for an account or a member, as this batch
 * leaves it (absolute: the store keeps values, not increments). */
typedef struct hstage {
    hr_hist **owner;
    const hr_account *a;
    const char *user, *event; /* user "" at account level */
    int32_t day;
    uint32_t count;
    int is_sum;   /* event is a sum key "EVENT\x1fPROPERTY"; sum holds the day's sum */
    double sum;
    int64_t first_ms, last_ms;
} hstage;

/* The slot of (a, meter, period) in b->stx: empty, or holding its entry. */
static uint32_t *st_slot(batch *b, const hr_account *a, const char *meter, int64_t ps) {
    bindex *x = &b->stx;
    for (size_t i = mix3((uintptr_t)a, (uintptr_t)meter, (uint64_t)ps) & x->mask;; i = (i + 1) & x->mask) {
        const staged *t = x->slot[i] ? &b->st[x->slot[i] - 1] : NULL;
        if (!t || (t->a == a && t->meter == meter && t->ps == ps)) return &x->slot[i];
    }
}

/* The slot of (a, meter) in b->curx: empty, or holding its current value. */
static uint32_t *cur_slot(batch *b, const hr_account *a, const char *meter) {
    bindex *x = &b->curx;
    for (size_t i = mix3((uintptr_t)a, (uintptr_t)meter, 1) & x->mask;; i = (i + 1) & x->mask) {
        const staged *t = x->slot[i] ? &b->st[x->slot[i] - 1] : NULL;
        if (!t || (t->a == a && t->meter == meter)) return &x->slot[i];
    }
}

static void st_rehash(void *ud, bindex *x) {
    batch *b = ud;
    for (size_t i = 0; i < b->nst; i++, x->n++)
        *st_slot(b, b->st[i].a, b->st[i].meter, b->st[i].ps) = (uint32_t)i + 1;
}

static void cur_rehash(void *ud, bindex *x) {
    batch *b = ud;
    for (size_t i = 0; i < b->nst; i++)
        if (b->st[i].current) *cur_slot(b, b->st[i].a, b->st[i].meter) = (uint32_t)i + 1, x->n++;
}

/* The slot of (owner, event, day, count or sum) in b->hsx. */
static uint32_t *hs_slot(batch *b, hr_hist **owner, const char *event, int32_t day, int is_sum) {
    bindex *x = &b->hsx;
    uint64_t k = (uint64_t)(uint32_t)day << 1 | (uint64_t)is_sum;
    for (size_t i = mix3((uintptr_t)owner, (uintptr_t)event, k) & x->mask;; i = (i + 1) & x->mask) {
        const hstage *h = x->slot[i] ? &b->hs[x->slot[i] - 1] : NULL;
        if (!h || (h->owner == owner && h->event == event && h->day == day && h->is_sum == is_sum))
            return &x->slot[i];
    }
}

static void hs_rehash(void *ud, bindex *x) {
    batch *b = ud;
    for (size_t i = 0; i < b->nhs; i++, x->n++)
        *hs_slot(b, b->hs[i].owner, b->hs[i].event, b->hs[i].day, b->hs[i].is_sum) = (uint32_t)i + 1;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap * 2 : 64;
    while (c < need) c *= 2;
    void *np = realloc(*p, c * elem);
    if (!np) return -1;
    *p = np;
    *cap = c;
    return 0;
}

/* ---- what changed since meters and history were last written ----------- */

/* A meter value changed since the last flush. A live one is the account's
 * latest period, read from the account when written; an older period's
 * value (a late event's, or one a newer period replaced) is owned here. */
typedef struct hr_dmeter {
    const hr_account *a; /* found by pointer, then the id checked: an
                            account that went may leave its address to
                            another before the flush */
    const char *account; /* the id, copied into the set */
    const char *meter;   /* interned */
    int64_t ps;
    int live;
    hr_meter_value v;    /* when !live */
} hr_dmeter;

/* An event's days (or a sum's) changed since the last flush; the row is
 * written whole from the owner's history. */
typedef struct hr_dhist {
    const hr_account *a;
    const char *uid;           /* the member's id string when marked ("" at
                                  account level): with a, event and is_sum
                                  the key; it stays put while users move */
    const char *account, *user; /* the ids, copied into the set */
    const char *event;          /* interned: the event, or the sum key */
    int is_sum;
} hr_dhist;

/* The user of an account-level change: one address, as the key compares
 * addresses. */
static const char no_user[] = "";

/* Ids copied for a change set, in blocks that never move. */
typedef struct idblock {
    struct idblock *next;
    size_t used, cap;
    char text[];
} idblock;

/* What changed since the last flush: two arrays, each with an open
 * addressing index (position + 1, at most half full) keyed by pointers, so
 * tracking a change formats, hashes and compares no strings but the id
 * of the one candidate. Owned by the engine, then by the flush taking it. */
typedef struct hr_dirty hr_dirty;
struct hr_dirty {
    hr_dmeter *m;
    size_t nm, capm, mmask;
    uint32_t *mslot;
    hr_dhist *h;
    size_t nh, caph, hmask;
    uint32_t *hslot;
    idblock *ids;
};

static void dirty_free(hr_dirty *d) {
    if (!d) return;
    for (size_t i = 0; i < d->nm; i++)
        if (!d->m[i].live) hr_meter_value_dispose(&d->m[i].v);
    for (idblock *b = d->ids, *next; b; b = next) next = b->next, free(b);
    free(d->m);
    free(d->mslot);
    free(d->h);
    free(d->hslot);
    free(d);
}

/* The engine's change set, made on first use with room for as many
 * changes as the last flush had (growing by doubling copied the arrays
 * into fresh pages under the mutex, each time). NULL on OOM. */
static hr_dirty *dirty_of(hr_engine *e) {
    if (e->dirty) return e->dirty;
    hr_dirty *d = calloc(1, sizeof *d);
    size_t m = 256, h = 256;
    while (m < 2 * e->dmeters_hint) m *= 2;
    while (h < 2 * e->dhist_hint) h *= 2;
    if (!d || !(d->mslot = calloc(m, sizeof *d->mslot)) || !(d->hslot = calloc(h, sizeof *d->hslot)) ||
        grow((void **)&d->m, &d->capm, e->dmeters_hint + 1, sizeof *d->m) ||
        grow((void **)&d->h, &d->caph, e->dhist_hint + 1, sizeof *d->h)) {
        dirty_free(d);
        return NULL;
    }
    d->mmask = m - 1, d->hmask = h - 1;
    return e->dirty = d;
}

static size_t dirty_count(const hr_engine *e) {
    return e->dirty ? e->dirty->nm + e->dirty->nh : 0;
}

/* s copied into d's blocks; prev: an earlier copy to reuse if equal (the
 * entries of one account mostly come in a run). NULL on OOM. */
static const char *dirty_copy(hr_dirty *d, const char *s, const char *prev) {
    if (prev && !strcmp(prev, s)) return prev;
    size_t n = strlen(s) + 1;
    idblock *b = d->ids;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (!(b = malloc(sizeof *b + cap))) return NULL;
        b->next = d->ids, b->used = 0, b->cap = cap;
        d->ids = b;
    }
    char *c = memcpy(b->text + b->used, s, n);
    b->used += n;
    return c;
}

static uint64_t dm_hash(const hr_account *a, const char *meter, int64_t ps) {
    return mix3((uintptr_t)a, (uintptr_t)meter, (uint64_t)ps);
}

static uint64_t dh_hash(const hr_account *a, const char *uid, const char *event, int is_sum) {
    return mix3((uintptr_t)a, (uintptr_t)uid ^ (uint64_t)is_sum, (uintptr_t)event);
}

static uint32_t *dm_slot(hr_dirty *d, const hr_account *a, const char *meter, int64_t ps) {
    for (size_t i = dm_hash(a, meter, ps) & d->mmask;; i = (i + 1) & d->mmask) {
        const hr_dmeter *t = d->mslot[i] ? &d->m[d->mslot[i] - 1] : NULL;
        if (!t || (t->a == a && t->meter == meter && t->ps == ps && !strcmp(t->account, a->id)))
            return &d->mslot[i];
    }
}

static uint32_t *dh_slot(hr_dirty *d, const hr_account *a, const char *uid, const char *event,
                         int is_sum) {
    for (size_t i = dh_hash(a, uid, event, is_sum) & d->hmask;; i = (i + 1) & d->hmask) {
        const hr_dhist *t = d->hslot[i] ? &d->h[d->hslot[i] - 1] : NULL;
        if (!t || (t->a == a && t->uid == uid && t->event == event && t->is_sum == is_sum &&
                   !strcmp(t->account, a->id) && !strcmp(t->user, uid)))
            return &d->hslot[i];
    }
}

/* Room for one more entry in an index of n entries (doubling it, all
 * entries placed again, past half full); -1 on OOM. Placing compares no
 * keys: the entries are distinct, and an entry's account or member may
 * have gone since. */
static int dirty_room(hr_dirty *d, int hist) {
    size_t n = hist ? d->nh : d->nm, *mask = hist ? &d->hmask : &d->mmask;
    uint32_t **slot = hist ? &d->hslot : &d->mslot;
    if (2 * (n + 1) <= *mask + 1) return 0;
    uint32_t *old = *slot, *fresh = calloc(2 * (*mask + 1), sizeof *fresh);
    if (!fresh) return -1;
    *slot = fresh, *mask = 2 * (*mask + 1) - 1;
    for (size_t i = 0; i < n; i++) {
        size_t k = (hist ? dh_hash(d->h[i].a, d->h[i].uid, d->h[i].event, d->h[i].is_sum)
                         : dm_hash(d->m[i].a, d->m[i].meter, d->m[i].ps)) & *mask;
        while (fresh[k]) k = (k + 1) & *mask;
        fresh[k] = (uint32_t)i + 1;
    }
    free(old);
    return 0;
}

static hr_dmeter *dmeter_get(hr_engine *e, const hr_account *a, const char *meter, int64_t ps,
                             int create) {
    hr_dirty *d = create ? dirty_of(e) : e->dirty;
    if (!d) return NULL;
    uint32_t *slot = dm_slot(d, a, meter, ps);
    if (*slot || !create) return *slot ? &d->m[*slot - 1] : NULL;
    if (dirty_room(d, 0) || grow((void **)&d->m, &d->capm, d->nm + 1, sizeof *d->m)) return NULL;
    const char *id = dirty_copy(d, a->id, d->nm ? d->m[d->nm - 1].account : NULL);
    if (!id) return NULL;
    hr_dmeter *t = &d->m[d->nm];
    *t = (hr_dmeter){.a = a, .account = id, .meter = meter, .ps = ps};
    hr_meter_value_init(&t->v, ps);
    *dm_slot(d, a, meter, ps) = (uint32_t)++d->nm;
    return t;
}

static int dhist_mark(hr_engine *e, const hr_account *a, const char *uid, const char *event,
                      int is_sum) {
    hr_dirty *d = dirty_of(e);
    if (!d) return -1;
    if (*dh_slot(d, a, uid, event, is_sum)) return 0;
    if (dirty_room(d, 1) || grow((void **)&d->h, &d->caph, d->nh + 1, sizeof *d->h)) return -1;
    const hr_dhist *prev = d->nh ? &d->h[d->nh - 1] : NULL;
    const char *id = dirty_copy(d, a->id, prev ? prev->account : NULL);
    const char *user = id ? dirty_copy(d, uid, prev ? prev->user : NULL) : NULL;
    if (!user) return -1;
    d->h[d->nh] = (hr_dhist){a, uid, id, user, event, is_sum};
    *dh_slot(d, a, uid, event, is_sum) = (uint32_t)++d->nh;
    return 0;
}

static void dirty_clear(hr_engine *e) {
    dirty_free(e->dirty);
    e->dirty = NULL;
}

static int load_one(void *ud, const hr_meter_rec *r) { return set_from_rec(ud, r); }

static int writing_value(hr_engine *e, const hr_account *a, const char *meter, int64_t ps,
                         hr_meter_value *v);

/* The staged value of (a, meter) for the period starting at ps: from memory
 * (the latest period) or, for a late event's older period, the change set,
 * a flush being written or the store, the first time this batch touches it. NULL on OOM or a store error (in err). */
static staged *stage(hr_engine *e, batch *b, hr_account *a, const char *meter, int64_t ps,
                     hr_err *err) {
    if (bindex_reserve(&b->stx, st_rehash, b) || bindex_reserve(&b->curx, cur_rehash, b) ||
        grow((void **)&b->st, &b->capst, b->nst + 1, sizeof *b->st)) {
        hr_err_set(err, HR_ENOMEM, "out of memory");
        return NULL;
    }
    uint32_t *slot = st_slot(b, a, meter, ps);
    if (*slot) return &b->st[*slot - 1];
    staged *s = &b->st[b->nst];
    memset(s, 0, sizeof *s);
    s->a = a;
    s->meter = meter;
    s->ps = ps;
    hr_meter_value_init(&s->v, ps);
    const hr_mval_ent *mv = find_mval(a, meter);
    const hr_dmeter *d = mv && mv->v.period_start == ps ? NULL : dmeter_get(e, a, meter, ps, 0);
    /* a later period than any staged for the same meter supersedes them
     * (the latest staged one is the current one, if any is) */
    uint32_t *cur = cur_slot(b, a, meter);
    int latest = (!mv || ps >= mv->v.period_start) && !(*cur && b->st[*cur - 1].ps > ps);
    /* an older period: changed since the last flush, else as a flush
     * still being written has it, else in the store */
    int found = 0;
    const hr_meter_value *from = mv && mv->v.period_start == ps ? &mv->v
                                 : d && !d->live                 ? &d->v
                                                                 : NULL;
    if (from) {
        s->v = *from;
        s->v.uniq = NULL;
        if (from->capuniq) {
            if (!(s->v.uniq = malloc(from->capuniq * sizeof *s->v.uniq))) {
                hr_err_set(err, HR_ENOMEM, "out of memory");
                return NULL;
            }
            memcpy(s->v.uniq, from->uniq, from->capuniq * sizeof *s->v.uniq);
        }
    } else if (!latest && (found = writing_value(e, a, meter, ps, &s->v)) < 0) {
        hr_err_set(err, HR_ENOMEM, "out of memory");
        hr_meter_value_dispose(&s->v);
        return NULL;
    } else if (!latest && !found && e->store &&
               e->store->ops->meter_series(e->store, a->id, meter, ps, ps + 1, load_one, &s->v,
                                           err)) {
        hr_meter_value_dispose(&s->v);
        return NULL;
    }
    if (latest) {
        if (*cur) b->st[*cur - 1].current = 0;
        else b->curx.n++;
        *cur = (uint32_t)b->nst + 1;
    }
    s->current = latest;
    *slot = (uint32_t)b->nst + 1;
    b->stx.n++;
    b->nst++;
    return s;
}

/* The batch's stage of (owner, event, day), counts or sums, made from what
 * memory holds the first time. NULL on OOM. */
static hstage *hstage_get(batch *b, hr_hist **owner, const hr_account *a, const char *user,
                          const char *event, int32_t day, int is_sum) {
    if (bindex_reserve(&b->hsx, hs_rehash, b) ||
        grow((void **)&b->hs, &b->caphs, b->nhs + 1, sizeof *b->hs))
        return NULL;
    uint32_t *slot = hs_slot(b, owner, event, day, is_sum);
    if (*slot) return &b->hs[*slot - 1];
    hstage *h = &b->hs[b->nhs];
    memset(h, 0, sizeof *h);
    h->owner = owner;
    h->a = a;
    h->user = user;
    h->event = event;
    h->day = day;
    h->is_sum = is_sum;
    /* from what memory holds (the writer mutex keeps it still) */
    if (is_sum)
        h->sum = hr_hist_sum_day(hr_hist_sum(owner, event, 0), day);
    else
        h->count = hr_hist_day_count(hr_hist_find(*owner, event), day);
    *slot = (uint32_t)++b->nhs;
    b->hsx.n++;
    return h;
}

/* +1 for event on the day of ts_ms in owner's history. */
static int hist_add(batch *b, hr_hist **owner, const hr_account *a, const char *user,
                    const char *event, int64_t ts_ms) {
    hstage *h = hstage_get(b, owner, a, user, event, day_of_ms(ts_ms), 0);
    if (!h) return -1;
    h->count++;
    if (!h->first_ms || ts_ms < h->first_ms) h->first_ms = ts_ms;
    if (ts_ms > h->last_ms) h->last_ms = ts_ms;
    return 0;
}

/* + value to the day's sum of key (interned "EVENT\x1fPROPERTY") in owner. */
static int sum_add(batch *b, hr_hist **owner, const hr_account *a, const char *user,
                   const char *key, int64_t ts_ms, double value) {
    hstage *h = hstage_get(b, owner, a, user, key, day_of_ms(ts_ms), 1);
    if (!h) return -1;
    h->sum += value;
    return 0;
}

/* The sums rules ask for: the message's numeric properties summed per day,
 * for the account and the member. */
static int sums(hr_engine *e, batch *b, hr_account *a, hr_user *u, hr_msg *m) {
    const hr_catalog *c = e->cat;
    size_t evl = strlen(m->event);
    for (int k = 0; k < c->nsum_keys; k++) {
        const char *key = c->sum_keys[k], *sep = strchr(key, '\x1f');
        if (!sep) continue;
        size_t kl = (size_t)(sep - key);
        int any = kl == 1 && key[0] == '*';
        if (!(any ? strncmp(m->event, "headroom.", 9) != 0 : kl == evl && !strncmp(key, m->event, evl)))
            continue;
        char path[300];
        snprintf(path, sizeof path, "properties.%s", sep + 1);
        hr_jval v;
        if (hr_msg_value(m, path, &v)) return -1;
        if (v.type != HR_JV_INT && v.type != HR_JV_DOUBLE) continue;
        double x = v.num;
        if (!isfinite(x)) continue;
        const char *ik = hr_intern(key);
        if (!ik || sum_add(b, &a->hist, a, no_user, ik, m->timestamp_ms, x) ||
            (u && sum_add(b, &u->hist, a, u->id, ik, m->timestamp_ms, x)))
            return -1;
    }
    return 0;
}

/* A track event into the history of its account and, for a member, of the
 * user; "*" counts every product event (not headroom's own). */
static int history(hr_engine *e, batch *b, hr_account *a, hr_msg *m) {
    static const char *any;
    if (!any) any = hr_intern("*"); /* under the writer mutex: set once */
    const char *ev = m->ievent ? m->ievent : hr_intern(m->event);
    int product = strncmp(m->event, "headroom.", 9) != 0;
    if (!ev || !any) return -1;
    if (hist_add(b, &a->hist, a, no_user, ev, m->timestamp_ms) ||
        (product && hist_add(b, &a->hist, a, no_user, any, m->timestamp_ms)))
        return -1;
    hr_user *member = NULL;
    for (uint32_t i = 0; m->user_id && i < a->nusers; i++) {
        hr_user *u = &a->users[i];
        if (strcmp(u->id, m->user_id)) continue;
        if (hist_add(b, &u->hist, a, u->id, ev, m->timestamp_ms) ||
            (product && hist_add(b, &u->hist, a, u->id, any, m->timestamp_ms)))
            return -1;
        member = u;
        break;
    }
    return e->cat->nsum_keys ? sums(e, b, a, member, m) : 0;
}

/* Resolves, dedups and folds one message; appends it to the batch log. */
static int fold_msg(hr_engine *e, batch *b, hr_msg *m, int64_t now_ms, int *status, hr_err *err) {
    *status = HR_INGEST_OK;
    if (m->message_id && !b->replay) {
        /* ids are known by their 64-bit hash, in the batch as in e->seen */
        uint64_t h = m->id_hash ? m->id_hash : id_hash(m->message_id);
        int dup = hr_idset_has(e->seen, h) || (b->bseen && hr_idset_has(b->bseen, h));
        /* and in the batches still writing their log (linked under wmu) */
        for (const hr_inflight *f = e->inflight; f && !dup; f = f->next)
            dup = f->bseen && hr_idset_has(f->bseen, h);
        if (dup) {
            *status = HR_INGEST_DUPLICATE;
            return 0;
        }
        if ((!b->bseen && !(b->bseen = hr_idset_new())) || hr_idset_add(b->bseen, h, 0) ||
            grow((void **)&b->new_seen, &b->capseen, b->nseen + 1, sizeof *b->new_seen))
            return hr_err_set(err, HR_ENOMEM, "out of memory");
        b->new_seen[b->nseen++] = (seen_id){h, now_ms};
    }
    /* the account: the message's own, else the group the user last joined */
    const char *acct = m->account;
    if (!acct && m->user_id) {
        build_members(e);
        hr_membership *mb = hr_map_get(e->user_acct, m->user_id);
        if (mb) acct = mb->account;
    }
    hr_account *a = acct ? hr_acctix_get(e->accounts, acct) : NULL;
    if (!a) *status = HR_INGEST_NO_ACCOUNT;
    if (b->replay) goto fold;
    if (grow((void **)&b->ev, &b->capev, b->nev + 1, sizeof *b->ev))
        return hr_err_set(err, HR_ENOMEM, "out of memory");
    /* the text lives in the message's json-c object until the batch ends
     * (its request waits for it): no copy */
    const char *body = m->text ? m->text : json_object_to_json_string_ext(m->msg, JSON_C_TO_STRING_PLAIN);
    if (!body) return hr_err_set(err, HR_ENOMEM, "out of memory");
    b->ev[b->nev++] = (hr_event_rec){m->message_id, a ? a->id : acct, m->user_id, m->anonymous_id,
                                     hr_msg_type_str(m->type), m->ievent ? m->ievent : m->event,
                                     m->timestamp_ms, now_ms,
                                     body, 0, m->text ? m->text_len : 0};
fold:
    if (!a || m->type != HR_MSG_TRACK) return 0;
    if (history(e, b, a, m)) return hr_err_set(err, HR_ENOMEM, "out of memory");
    const hr_catalog *c = e->cat;
    for (int mi = 0; mi < c->nmeters; mi++) {
        const hr_meter *mt = &c->meters[mi];
        double num;
        uint64_t uh;
        if (!hr_meter_matches(mt, m) || hr_meter_input(mt, m, &num, &uh)) continue;
        int64_t ps = hr_meter_period_start(mt->period, m->timestamp_ms / 1000, a->renews_at,
                                           cycle_months(a));
        staged *s = stage(e, b, a, e->mnames[mi], ps, err);
        if (!s) return err->code ? err->code : HR_ENOMEM;
        if (hr_meter_fold(&s->v, mt->aggregate, num, uh, m->timestamp_ms) < 0)
            return hr_err_set(err, HR_ENOMEM, "out of memory");
    }
    return 0;
}

/* The set's hashes, compactly, for the store; caller frees. */
static uint64_t *compact_set(const hr_meter_value *v) {
    uint64_t *out = malloc((v->nuniq + 1) * sizeof *out);
    uint32_t k = 0;
    for (uint32_t i = 0; out && i < v->capuniq; i++)
        if (v->uniq[i]) out[k++] = v->uniq[i];
    return out;
}

/* The batch's part of the log, in one transaction: meters and history
 * follow it within a second (hr_ingest_flush_locked). */
static int persist(hr_engine *e, batch *b, int64_t *seq, hr_err *err) {
    hr_store *s = e->log_store ? e->log_store : e->store;
    if (!s || !b->nev) return 0;
    int rc = s->ops->begin(s, err);
    if (!rc) rc = s->ops->put_events(s, b->ev, (int)b->nev, err);
    if (!rc) rc = s->ops->last_seq(s, seq, err);
    if (!rc) rc = s->ops->commit(s, err);
    if (rc) s->ops->rollback(s);
    return rc;
}

/* After the commit: staged latest values replace the accounts' own, all
 * under the exclusive lock (an account's array may move). */
static int apply(hr_engine *e, batch *b, int64_t now_ms) {
    int rc = 0;
    hr_rdlock_write(e->lock);
    for (size_t i = 0; i < b->nst; i++) {
        staged *st = &b->st[i];
        if (!st->current) continue;
        hr_mval_ent *mv = find_mval(st->a, st->meter);
        if (!mv) {
            hr_mval_ent *p = realloc(st->a->mvals, (st->a->nmvals + 1u) * sizeof *p);
            if (!p) {
                rc = HR_ENOMEM; /* durable all the same: a restart loads it */
                continue;
            }
            st->a->mvals = p;
            mv = &p[st->a->nmvals++];
            mv->meter = st->meter;
            hr_meter_value_init(&mv->v, 0);
        }
        hr_meter_value old = mv->v;
        mv->v = st->v;
        st->v = old; /* the old one is freed with the batch */
    }
    /* decisions read meter values from the account index's summary (an
     * account's staged values mostly follow one another) */
    const hr_account *synced = NULL;
    for (size_t i = 0; i < b->nst; i++)
        if (b->st[i].current && b->st[i].a != synced)
            hr_engine_sync_account(e, synced = b->st[i].a);
    int32_t today = day_of_ms(now_ms);
    for (size_t i = 0; i < b->nhs; i++) {
        const hstage *h = &b->hs[i];
        if (h->is_sum) {
            hr_sum_ent *se = hr_hist_sum(h->owner, h->event, 1);
            if (!se || hr_hist_sum_set(se, h->day, h->sum, today)) rc = HR_ENOMEM;
            continue;
        }
        hr_hist_ent *he = hr_hist_get(h->owner, h->event);
        if (!he || hr_hist_set_day(he, h->day, h->count, today)) {
            rc = HR_ENOMEM;
            continue;
        }
        if (!he->first_ms || h->first_ms < he->first_ms) he->first_ms = h->first_ms;
        if (h->last_ms > he->last_ms) he->last_ms = h->last_ms;
    }
    hr_rdlock_write_end(e->lock);
    return rc;
}

/* What a batch holds besides its arrays; they are left as they are. */
static void batch_empty(batch *b) {
    for (size_t i = 0; i < b->nst; i++) hr_meter_value_dispose(&b->st[i].v);
    free(b->new_seen);
    hr_idset_free(b->bseen);
    for (size_t i = 0; i < b->nown; i++) json_object_put(b->own[i]);
    free(b->own);
    free(b->ownmsg);
}

static void batch_free_arrays(batch *b) {
    free(b->st);
    free(b->ev);
    free(b->hs);
    free(b->hsx.slot);
    free(b->stx.slot);
    free(b->curx.slot);
}

static void batch_free(batch *b) {
    batch_empty(b);
    batch_free_arrays(b);
}

/* A finished batch's arrays go to the next batch (e->spare, imu): fresh
 * memory costs the fold a page fault per 4 KiB under the writer mutex (the
 * first read maps the zero page, the write copies it and shoots down the
 * other cores' TLBs), and a group commit of 20,000 events touches some
 * megabytes. One is kept; another batch's are freed. */
static void batch_keep(hr_engine *e, batch *b) {
    batch_empty(b);
    batch arrays = {.st = b->st, .capst = b->capst, .ev = b->ev, .capev = b->capev, .hs = b->hs,
                    .caphs = b->caphs, .stx = b->stx, .curx = b->curx, .hsx = b->hsx};
    batch *k = NULL;
    pthread_mutex_lock(&e->imu);
    if (!e->spare && (k = malloc(sizeof *k))) *k = arrays, e->spare = k;
    pthread_mutex_unlock(&e->imu);
    if (!k) batch_free_arrays(&arrays);
}

/* What batch_keep and drain_inflight kept for the next batch. */
static void spare_free(hr_engine *e) {
    if (e->spare) batch_free_arrays(e->spare);
    free(e->spare);
    e->spare = NULL;
    hr_idset_free(e->spare_seen);
    e->spare_seen = NULL;
}

/* The kept arrays, if any, for a new batch (wmu held). */
static void batch_start(hr_engine *e, batch *b) {
    memset(b, 0, sizeof *b);
    pthread_mutex_lock(&e->imu);
    if (e->spare) *b = *e->spare, free(e->spare), e->spare = NULL;
    pthread_mutex_unlock(&e->imu);
}

/* How long ago, in seconds, the oldest id the index still holds was seen
 * (the configured window while nothing was evicted). */
static int64_t dedup_span(const hr_engine *e, int64_t now_ms) {
    uint32_t oldest = hr_idset_oldest(e->seen);
    if (!hr_idset_evicted(e->seen) || oldest == UINT32_MAX) return e->dedup_window_ms / 1000;
    int64_t span = now_ms / 1000 - (int64_t)oldest * 60;
    return span < 0 ? 0 : span;
}

static void remember_seen(hr_engine *e, const seen_id *ids, size_t n, int64_t now_ms) {
    size_t evicted = hr_idset_evicted(e->seen);
    for (size_t i = 0; i < n; i++) {
        /* a later id's slot loading meanwhile: each is a miss in a window
         * of millions */
        if (i + 8 < n) hr_idset_prefetch(e->seen, ids[i + 8].h);
        /* on OOM the store still has it: a restart reloads it */
        hr_idset_add(e->seen, ids[i].h, minute_of(ids[i].at));
    }
    /* the memory bound shortened the window: say so, once an hour */
    if (hr_idset_evicted(e->seen) != evicted && now_ms - e->dedup_warned_ms >= 3600000) {
        e->dedup_warned_ms = now_ms;
        hr_log(HR_LOG_WARN, "the messageId index is at its memory bound (%zu MiB, %zu ids): retries "
               "are now recognised for %lld s instead of %lld days; raise --dedup-memory",
               hr_idset_bytes(e->seen) >> 20, hr_idset_count(e->seen),
               (long long)dedup_span(e, now_ms), (long long)(e->dedup_window_ms / 86400000));
    }
}

/* Lands the batches whose log write has ended, oldest first, up to one
 * still writing (with wait: until none is): their ids join the dedup
 * window, folded_seq moves past them. wmu held. */
static void drain_inflight(hr_engine *e, int wait) {
    pthread_mutex_lock(&e->imu);
    if (e->flush_failed && !e->fold_stuck) {
        e->fold_stuck = 2;
        hr_log(HR_LOG_ERROR, "writing meters and history behind the log failed: they are no "
               "longer written; a restart rebuilds them from the event log");
    }
    hr_inflight *f;
    while ((f = e->inflight)) {
        while (wait && !f->state) pthread_cond_wait(&e->icv, &e->imu);
        if (!f->state) break;
        if (!(e->inflight = f->next)) e->inflight_tail = NULL;
        if (f->state > 0) {
            remember_seen(e, f->new_seen, f->nseen, f->now_ms);
            if (f->seq > e->folded_seq) e->folded_seq = f->seq;
            if (!e->spare_seen && f->bseen) { /* for the next batch (see batch_keep) */
                hr_idset_clear(f->bseen);
                e->spare_seen = f->bseen, f->bseen = NULL;
            }
        } else if (!e->fold_stuck) {
            /* its events count in memory but are not in the log (their
             * requests failed): memory must not be written as the truth */
            e->fold_stuck = 2;
            hr_log(HR_LOG_ERROR, "writing the event log failed after a batch was applied in memory: "
                   "meters and history are no longer written; a restart rebuilds them from the log");
        }
        inflight_free(f);
    }
    pthread_mutex_unlock(&e->imu);
}

void hr_engine_set_dedup_memory(hr_engine *e, size_t bytes) {
    pthread_mutex_lock(&e->wmu);
    hr_idset_set_max_bytes(e->seen, bytes);
    pthread_mutex_unlock(&e->wmu);
}

void hr_engine_dedup_stats(hr_engine *e, hr_dedup_stats *out) {
    pthread_mutex_lock(&e->wmu);
    drain_inflight(e, 0);
    out->ids = hr_idset_count(e->seen);
    out->bytes = hr_idset_bytes(e->seen);
    out->evicted = hr_idset_evicted(e->seen);
    out->window_s = dedup_span(e, hr_time_now_ms());
    pthread_mutex_unlock(&e->wmu);
}

/* Drops message ids older than the dedup window, in memory and in the
 * store, at most once a minute: this bounds the index by the window. */
static void prune_seen(hr_engine *e, int64_t now_ms) {
    if (now_ms - e->last_prune_ms < 60000) return;
    e->last_prune_ms = now_ms;
    int64_t cutoff = now_ms - e->dedup_window_ms;
    hr_idset_prune(e->seen, minute_of(cutoff));
    hr_err ignore;
    if (!e->store) return;
    /* (history rows drop days past the horizon whenever they are rewritten,
     * and the load skips them) */
    /* retention: thin the raw log in chunks, for at most ~200 ms a minute so
     * ingestion (waiting on the writer mutex) barely notices */
    if (!e->retention_ms) return;
    int64_t t0 = hr_time_now_ms();
    int deleted = 0;
    do {
        if (e->store->ops->prune_events(e->store, now_ms - e->retention_ms, 10000, &deleted, NULL,
                                        &ignore))
            break;
    } while (deleted == 10000 && hr_time_now_ms() - t0 < 200);
}

void hr_engine_set_dedup_window(hr_engine *e, int days) {
    pthread_mutex_lock(&e->wmu);
    e->dedup_window_ms = (int64_t)(days > 0 ? days : 1) * 86400 * 1000;
    if (e->retention_ms && e->retention_ms < e->dedup_window_ms) e->retention_ms = e->dedup_window_ms;
    pthread_mutex_unlock(&e->wmu);
}

void hr_engine_set_retention(hr_engine *e, int days) {
    pthread_mutex_lock(&e->wmu);
    /* the log is where seen ids come back from: it keeps the dedup window */
    int64_t ms = days > 0 ? (int64_t)days * 86400 * 1000 : 0;
    if (ms && ms < e->dedup_window_ms) ms = e->dedup_window_ms;
    e->retention_ms = ms;
    pthread_mutex_unlock(&e->wmu);
}

json_object *hr_internal_msg(const char *event, const char *account, const char *user,
                             json_object *props, const char *message_id) {
    json_object *o = json_object_new_object(), *ctx = json_object_new_object();
    if (!o || !ctx) {
        json_object_put(o);
        json_object_put(ctx);
        json_object_put(props);
        return NULL;
    }
    json_object_object_add(o, "type", json_object_new_string("track"));
    json_object_object_add(o, "event", json_object_new_string(event));
    if (user)
        json_object_object_add(o, "userId", json_object_new_string(user));
    else
        json_object_object_add(o, "anonymousId", json_object_new_string("headroom"));
    if (message_id) json_object_object_add(o, "messageId", json_object_new_string(message_id));
    json_object_object_add(ctx, "groupId", json_object_new_string(account));
    json_object_object_add(o, "context", ctx);
    if (props) json_object_object_add(o, "properties", props);
    return o;
}

json_object *hr_threshold_msg(const char *account, const char *feature, double threshold,
                              int64_t usage, int64_t limit) {
    json_object *props = json_object_new_object();
    if (props) {
        json_object_object_add(props, "feature", json_object_new_string(feature));
        json_object_object_add(props, "threshold", json_object_new_double(threshold));
        json_object_object_add(props, "usage", json_object_new_int64(usage));
        json_object_object_add(props, "limit", json_object_new_int64(limit));
    }
    return hr_internal_msg("headroom.usage_threshold", account, NULL, props, NULL);
}

/* headroom.usage_threshold when this batch moves a feature fed by a meter
 * across one of its thresholds (80% and 100% unless configured); folded
 * into the same batch. */
static int thresholds(hr_engine *e, batch *b, int64_t now_ms, hr_err *err) {
    const hr_catalog *c = e->cat;
    int64_t now = now_ms / 1000;
    size_t nst = b->nst; /* the values staged by the messages themselves */
    for (size_t i = 0; c->feature_meter && i < nst; i++) {
        staged *st = &b->st[i];
        if (!st->current) continue;
        int mi = hr_catalog_meter(c, st->meter);
        const hr_meter *m = mi >= 0 ? &c->meters[mi] : NULL;
        if (!m || st->v.period_start != hr_meter_period_start(m->period, now, st->a->renews_at,
                                                              cycle_months(st->a)))
            continue;
        for (int fi = 0; fi < c->nfeatures; fi++) {
            if (c->feature_meter[fi] != mi) continue;
            int64_t manual = hr_account_usage(st->a, &c->features[fi], e->fnames[fi], now);
            int64_t before = manual + (int64_t)hr_account_meter_now(c, st->a, mi, now);
            int64_t after = manual + (int64_t)st->v.value;
            double crossed[HR_MAX_THRESHOLDS];
            int64_t limit = hr_account_limit(c, st->a, fi, now);
            int n = hr_thresholds_crossed(&c->features[fi], before, after, limit, crossed);
            for (int k = 0; k < n; k++) {
                json_object *o =
                    hr_threshold_msg(st->a->id, c->features[fi].key, crossed[k], after, limit);
                json_object **own = realloc(b->own, (b->nown + 1) * sizeof *own);
                hr_msg *om = own ? realloc(b->ownmsg, (b->nown + 1) * sizeof *om) : NULL;
                if (own) b->own = own;
                if (om) b->ownmsg = om;
                if (!o || !own || !om) {
                    json_object_put(o);
                    return hr_err_set(err, HR_ENOMEM, "out of memory");
                }
                b->own[b->nown] = o;
                hr_err perr = {0};
                int status;
                if (hr_msg_parse(o, -1, 0, 0, now_ms, &b->ownmsg[b->nown], &perr) == 0) {
                    b->nown++;
                    int rc = fold_msg(e, b, &b->ownmsg[b->nown - 1], now_ms, &status, err);
                    if (rc) return rc;
                } else {
                    json_object_put(o);
                }
            }
        }
    }
    return 0;
}

int hr_engine_add_ingest_hook(hr_engine *e, hr_ingest_hook fn, void *ud) {
    int rc = 0;
    pthread_mutex_lock(&e->wmu);
    if (e->nhooks == HR_MAX_HOOKS)
        rc = HR_ENOMEM;
    else
        e->hooks[e->nhooks] = fn, e->hook_uds[e->nhooks++] = ud;
    pthread_mutex_unlock(&e->wmu);
    return rc;
}

void hr_engine_remove_ingest_hook(hr_engine *e, hr_ingest_hook fn, void *ud) {
    pthread_mutex_lock(&e->wmu);
    for (int i = 0; i < e->nhooks; i++)
        if (e->hooks[i] == fn && e->hook_uds[i] == ud) {
            for (int j = i + 1; j < e->nhooks; j++)
                e->hooks[j - 1] = e->hooks[j], e->hook_uds[j - 1] = e->hook_uds[j];
            e->nhooks--;
            break;
        }
    pthread_mutex_unlock(&e->wmu);
}

/* Tells the hook which product events the batch made durable. */
static void run_hook(hr_engine *e, const batch *b) {
    if (!e->nhooks || !b->nev) return;
    hr_ingested *evs = malloc(b->nev * sizeof *evs);
    int n = 0;
    if (!evs) return;
    for (size_t i = 0; i < b->nev; i++) {
        const hr_event_rec *r = &b->ev[i];
        if (!r->account || !r->event || !r->type || strcmp(r->type, "track")) continue;
        evs[n++] = (hr_ingested){r->event, r->account, r->user_id, r->ts_ms};
    }
    for (int h = 0; n && h < e->nhooks; h++) e->hooks[h](e->hook_uds[h], evs, n);
    free(evs);
}

/* Changed meter values or history rows past which a group commit writes
 * them itself (headroomd's timer writes them every second): bounds their
 * memory, the replay after a crash, and how long a write holds the
 * database's one writer, which the event log waits for. An import gets
 * here; its rows change once each, so smaller writes cost nothing extra,
 * and at ~40 ms one is shorter than what the requests in flight fold
 * meanwhile: a 10M import went from 251k to 303k events/s at 25,000
 * (400,000: a write of ~350 ms, the pipeline idle for most of it). Live
 * traffic, which changes the same rows again and again, stays under it. */
#define DIRTY_MAX 25000
/* A group commit or flush slower than this says where its time went (the
 * log), for whoever chases a stall. */
#define SLOW_BATCH_NS 1000000000LL

/* After apply: which meter values and history days the batch changed, to
 * be written by the next flush (writer mutex held). */
static void track_changes(hr_engine *e, batch *b) {
    if (!e->store) return;
    for (size_t i = 0; i < b->nst; i++) {
        staged *st = &b->st[i];
        if (!st->current) { /* an older period: its value is kept here */
            hr_dmeter *d = dmeter_get(e, st->a, st->meter, st->ps, 1);
            if (!d) {
                e->fold_stuck = 1;
                continue;
            }
            hr_meter_value_dispose(&d->v);
            d->v = st->v;
            d->live = 0;
            hr_meter_value_init(&st->v, 0);
            continue;
        }
        /* st->v is what the account held: a live period it replaced keeps
         * its last value here */
        if (st->v.period_start != st->ps) {
            hr_dmeter *old = dmeter_get(e, st->a, st->meter, st->v.period_start, 0);
            if (old && old->live) {
                old->v = st->v;
                old->live = 0;
                hr_meter_value_init(&st->v, 0);
            }
        }
        hr_dmeter *d = dmeter_get(e, st->a, st->meter, st->ps, 1);
        if (!d) {
            e->fold_stuck = 1;
            continue;
        }
        if (!d->live) {
            hr_meter_value_dispose(&d->v);
            hr_meter_value_init(&d->v, st->ps);
            d->live = 1;
        }
    }
    for (size_t i = 0; i < b->nhs; i++) {
        const hstage *h = &b->hs[i];
        /* consecutive stages are mostly one key's days: mark it once */
        const hstage *p = i ? &b->hs[i - 1] : NULL;
        if (p && p->owner == h->owner && p->event == h->event && p->is_sum == h->is_sum) continue;
        if (dhist_mark(e, h->a, h->user, h->event, h->is_sum)) e->fold_stuck = 1;
    }
}

/* ---- meters and history behind the log ---------------------------------- */

#define FLUSH_ROWS 512

/* The name a row is stored under: the event, or "sum\x1f" + the sum key. */
static int stored_name_cmp(const hr_dhist *a, const hr_dhist *b) {
    if (a->event == b->event && a->is_sum == b->is_sum) return 0; /* interned */
    const char *pa = a->is_sum ? HR_SUM_PREFIX : "", *pb = b->is_sum ? HR_SUM_PREFIX : "";
    const char *ea = a->event, *eb = b->event;
    for (;;) {
        unsigned char ca = (unsigned char)(*pa ? *pa : *ea), cb = (unsigned char)(*pb ? *pb : *eb);
        if (ca != cb || !ca) return (ca > cb) - (ca < cb);
        if (*pa) pa++; else ea++;
        if (*pb) pb++; else eb++;
    }
}

/* Within an account: event_hist's (user, stored name) */
static int dhist_cmp(const void *x, const void *y) {
    const hr_dhist *a = *(const hr_dhist *const *)x, *b = *(const hr_dhist *const *)y;
    int c = strcmp(a->user, b->user);
    return c ? c : stored_name_cmp(a, b);
}

/* Within an account: meter_values' (meter, period_start) */
static int dmeter_cmp(const void *x, const void *y) {
    const hr_dmeter *a = *(const hr_dmeter *const *)x, *b = *(const hr_dmeter *const *)y;
    int c = a->meter == b->meter ? 0 : strcmp(a->meter, b->meter); /* interned */
    return c ? c : (a->ps > b->ps) - (a->ps < b->ps);
}

/* What a flush writes, taken from memory at one moment: the changed meter
 * values and history rows (encoded), and the change set they came from
 * (which owns the ids the rows point at). Written later, maybe on another
 * thread, without the writer mutex. */
typedef struct hr_snap {
    hr_dirty *dirty;
    hr_meter_rec *m;
    size_t nm;
    uint32_t *rec_of;     /* each of dirty's meter entries' row in m (UINT32_MAX: none) */
    struct hr_snap *next; /* e->writing: the next older flush being written */
    hr_hist_rec *h;
    size_t nh;
    size_t *at;     /* each history row's name and days in text (offsets) */
    hr_buf text;
} snap;

static void snap_free(snap *sn) {
    for (size_t i = 0; sn->m && i < sn->nm; i++) free((void *)sn->m[i].uniq);
    free(sn->m);
    free(sn->rec_of);
    free(sn->h);
    free(sn->at);
    hr_buf_dispose(&sn->text);
    dirty_free(sn->dirty);
    memset(sn, 0, sizeof *sn);
}

/* (a, meter, ps) as a flush still being written has it, into v, the
 * newest such flush first: until its commit the store holds an older
 * value, and a late event folded meanwhile would count from that (wmu
 * held). 1: found, 0: not, -1: OOM. */
static int writing_value(hr_engine *e, const hr_account *a, const char *meter, int64_t ps,
                         hr_meter_value *v) {
    int found = 0;
    pthread_mutex_lock(&e->imu);
    for (const snap *sn = e->writing; sn && !found; sn = sn->next) {
        uint32_t slot = sn->dirty && sn->dirty->nm ? *dm_slot(sn->dirty, a, meter, ps) : 0;
        uint32_t r = slot ? sn->rec_of[slot - 1] : UINT32_MAX;
        if (r != UINT32_MAX) found = set_from_rec(v, &sn->m[r]) ? -1 : 1;
    }
    pthread_mutex_unlock(&e->imu);
    return found;
}

/* An account's entries in a flush being sorted. */
typedef struct agroup {
    const char *account;
    size_t n, at;
} agroup;

static int agroup_cmp(const void *x, const void *y) {
    return strcmp((*(const agroup *const *)x)->account, (*(const agroup *const *)y)->account);
}

/* Pointers to the n entries (size bytes each, their account id at
 * acct_at) in their table's key order, account first, so the writes walk
 * the b-tree forwards: grouped by account (by the id's copy: one account's
 * entries mostly share it), the groups sorted, then each group's few
 * entries by cmp. A flush of hundreds of thousands of entries from a few
 * thousand accounts sorts under the writer mutex: one sort of them all
 * followed two pointers into the heap per comparison. NULL on OOM. */
static void **sorted(void *ents, size_t n, size_t size, size_t acct_at,
                     int (*cmp)(const void *, const void *)) {
    size_t cap = 64, ng = 0;
    while (cap < 2 * n) cap *= 2;
    void **out = malloc((n ? n : 1) * sizeof *out);
    uint32_t *gid = malloc((n ? n : 1) * sizeof *gid), *ix = calloc(cap, sizeof *ix);
    agroup *gs = malloc((n ? n : 1) * sizeof *gs), **order = malloc((n ? n : 1) * sizeof *order);
    if (!out || !gid || !ix || !gs || !order) {
        free(out);
        out = NULL;
        goto out;
    }
    for (size_t k = 0; k < n; k++) {
        const char *acct = *(const char *const *)(void *)((char *)ents + k * size + acct_at);
        uint32_t g = k && gs[gid[k - 1]].account == acct ? gid[k - 1] + 1 : 0;
        for (size_t i = mix3((uintptr_t)acct, 0, 0) & (cap - 1); !g; i = (i + 1) & (cap - 1)) {
            if (!ix[i]) gs[ng] = (agroup){acct, 0, 0}, ix[i] = (uint32_t)++ng;
            if (gs[ix[i] - 1].account == acct) g = ix[i];
        }
        gs[g - 1].n++;
        gid[k] = g - 1;
    }
    for (size_t i = 0; i < ng; i++) order[i] = &gs[i];
    qsort(order, ng, sizeof *order, agroup_cmp);
    size_t at = 0;
    for (size_t i = 0; i < ng; i++) order[i]->at = at, at += order[i]->n, order[i]->n = 0;
    for (size_t k = 0; k < n; k++) {
        agroup *g = &gs[gid[k]];
        out[g->at + g->n++] = (char *)ents + k * size;
    }
    for (size_t i = 0; i < ng; i++)
        if (gs[i].n > 1) qsort(out + gs[i].at, gs[i].n, sizeof *out, cmp);
out:
    free(gid);
    free(ix);
    free(gs);
    free(order);
    return out;
}

/* Takes what changed since the last flush out of memory, into sn (the
 * engine starts tracking afresh). wmu held. */
static int snap_take(hr_engine *e, snap *sn, hr_err *err) {
    memset(sn, 0, sizeof *sn);
    hr_buf_init(&sn->text);
    hr_dirty *ch = sn->dirty = e->dirty;
    e->dirty = NULL;
    size_t nm = ch ? ch->nm : 0, nh = ch ? ch->nh : 0;
    e->dmeters_hint = nm, e->dhist_hint = nh;
    hr_dmeter **dm = nm ? (hr_dmeter **)sorted(ch->m, nm, sizeof *ch->m, offsetof(hr_dmeter, account),
                                               dmeter_cmp)
                        : NULL;
    hr_dhist **dh = nh ? (hr_dhist **)sorted(ch->h, nh, sizeof *ch->h, offsetof(hr_dhist, account),
                                             dhist_cmp)
                       : NULL;
    int rc = 0;
    if ((nm && (!dm || !(sn->m = calloc(nm, sizeof *sn->m)) ||
                !(sn->rec_of = malloc(nm * sizeof *sn->rec_of)))) ||
        (nh && (!dh || !(sn->h = calloc(nh, sizeof *sn->h)) || !(sn->at = calloc(nh, 2 * sizeof *sn->at))))) {
        rc = hr_err_set(err, HR_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nm; i++) sn->rec_of[i] = UINT32_MAX;
    for (size_t i = 0; i < nm; i++) {
        const hr_dmeter *d = dm[i];
        const hr_account *a = hr_acctix_get(e->accounts, d->account);
        const hr_mval_ent *mv = a && d->live ? find_mval(a, d->meter) : NULL;
        const hr_meter_value *val = d->live ? (mv && mv->v.period_start == d->ps ? &mv->v : NULL)
                                            : &d->v;
        if (!a || !val) continue; /* the account went */
        uint64_t *set = val->nuniq ? compact_set(val) : NULL;
        if (val->nuniq && !set) {
            rc = hr_err_set(err, HR_ENOMEM, "out of memory");
            goto out;
        }
        sn->rec_of[d - ch->m] = (uint32_t)sn->nm;
        sn->m[sn->nm++] = (hr_meter_rec){d->account, d->meter, d->ps, val->value, val->latest_ms, set,
                                         val->nuniq};
    }
    for (size_t i = 0; i < nh; i++) {
        const hr_dhist *h = dh[i];
        hr_account *a = hr_acctix_get(e->accounts, h->account);
        hr_hist **owner = a ? owner_of_row(a, h->user) : NULL;
        if (!owner) continue; /* the account or member went */
        const hr_hist_ent *he = h->is_sum ? NULL : hr_hist_find_interned(*owner, h->event);
        const hr_sum_ent *se = h->is_sum ? hr_hist_sum(owner, h->event, 0) : NULL;
        if (!he && !se) continue;
        hr_buf *t = &sn->text;
        size_t name = t->len;
        if (se) { /* the stored name, "sum\x1f" + the key */
            hr_buf_puts(t, HR_SUM_PREFIX);
            hr_buf_puts(t, h->event);
            hr_buf_putc(t, 0);
        }
        size_t days = t->len;
        hr_hist_days_text(he, se, t);
        hr_buf_putc(t, 0); /* an empty list still needs its text */
        sn->at[2 * sn->nh] = se ? name : SIZE_MAX, sn->at[2 * sn->nh + 1] = days;
        sn->h[sn->nh++] = (hr_hist_rec){h->account, h->user, h->event, he ? he->first_ms : 0,
                                        he ? he->last_ms : 0, NULL};
    }
    if (hr_buf_failed(&sn->text)) rc = hr_err_set(err, HR_ENOMEM, "out of memory");
    /* the text is whole now: point the rows into it */
    for (size_t i = 0; !rc && i < sn->nh; i++) {
        if (sn->at[2 * i] != SIZE_MAX) sn->h[i].event = sn->text.data + sn->at[2 * i];
        sn->h[i].days = sn->text.data + sn->at[2 * i + 1];
    }
out:
    free(dm);
    free(dh);
    e->last_flush_ms = hr_time_now_ms();
    return rc;
}

/* Writes sn and folded_seq in one transaction on s. */
static int snap_write(hr_store *s, const snap *sn, int64_t folded_seq, hr_err *err) {
    int rc = s->ops->begin(s, err);
    for (size_t i = 0; i < sn->nm && !rc; i++) rc = s->ops->put_meter(s, &sn->m[i], err);
    for (size_t i = 0; i < sn->nh && !rc; i += FLUSH_ROWS)
        rc = s->ops->put_hists(s, sn->h + i, (int)(sn->nh - i < FLUSH_ROWS ? sn->nh - i : FLUSH_ROWS), err);
    if (!rc) rc = s->ops->put_folded_seq(s, folded_seq, err);
    if (!rc) rc = s->ops->commit(s, err);
    if (rc) s->ops->rollback(s);
    return rc;
}

/* Nothing to write, or writing stopped (wmu held); says why once. */
static int nothing_to_flush(hr_engine *e) {
    if (e->fold_stuck == 1) {
        e->fold_stuck = 2;
        hr_log(HR_LOG_ERROR, "meters and history are no longer written (out of memory tracking "
               "their changes); a restart rebuilds them from the event log");
    }
    return !e->store || e->fold_stuck || (!dirty_count(e) && e->flushed_seq == e->folded_seq);
}

int hr_ingest_flush_locked(hr_engine *e, hr_err *err) {
    /* memory as the log has it: no batch still writing its log; and no
     * flush behind the log still to write an older snapshot over this one
     * (turns are handed out under wmu: none start meanwhile) */
    drain_inflight(e, 1);
    pthread_mutex_lock(&e->imu);
    while (e->log_turn != e->log_next) pthread_cond_wait(&e->icv, &e->imu);
    pthread_mutex_unlock(&e->imu);
    if (nothing_to_flush(e)) {
        e->last_flush_ms = hr_time_now_ms();
        return 0;
    }
    snap sn;
    int rc = snap_take(e, &sn, err);
    if (!rc) rc = snap_write(e->store, &sn, e->folded_seq, err);
    if (!rc) {
        e->flushed_seq = e->folded_seq;
    } else if (!e->dirty) {
        /* still tracked: the next flush tries again (wmu was held: nothing
         * changed meanwhile) */
        e->dirty = sn.dirty;
        sn.dirty = NULL;
    }
    snap_free(&sn);
    return rc;
}

/* A flush behind the log (pipelined): the snapshot is taken now, under
 * wmu, and written in the log's order, after the batches folded before it
 * and before those folded after: folded_seq is then the log's newest seq,
 * and nobody waits for the writing under wmu. */
typedef struct behind {
    snap sn;
    uint64_t turn;
    int taken;
} behind;

/* wmu held. */
static void behind_take(hr_engine *e, behind *bh) {
    hr_err err = {0};
    bh->taken = 0;
    if (nothing_to_flush(e)) {
        e->last_flush_ms = hr_time_now_ms();
        return;
    }
    if (snap_take(e, &bh->sn, &err)) {
        e->fold_stuck = 2;
        hr_log(HR_LOG_ERROR, "writing meters and history: %s; they are no longer written, a "
               "restart rebuilds them from the event log", err.message);
        snap_free(&bh->sn);
        return;
    }
    e->flushed_seq = e->folded_seq;
    bh->turn = e->log_next++;
    bh->taken = 1;
    pthread_mutex_lock(&e->imu);
    bh->sn.next = e->writing;
    e->writing = &bh->sn;
    pthread_mutex_unlock(&e->imu);
}

/* Without wmu: waits for the turn, writes, passes the turn on. */
static int behind_write(hr_engine *e, behind *bh, hr_err *err) {
    if (!bh->taken) return 0;
    pthread_mutex_lock(&e->imu);
    while (e->log_turn != bh->turn) pthread_cond_wait(&e->icv, &e->imu);
    pthread_mutex_unlock(&e->imu);
    int64_t seq = 0;
    int rc = e->log_store->ops->last_seq(e->log_store, &seq, err);
    if (!rc) rc = snap_write(e->log_store, &bh->sn, seq, err);
    pthread_mutex_lock(&e->imu);
    if (rc) e->flush_failed = 1; /* drain_inflight stops the writing */
    /* in the store now (or never): stage reads it there */
    for (snap **p = &e->writing; *p; p = &(*p)->next)
        if (*p == &bh->sn) {
            *p = bh->sn.next;
            break;
        }
    e->log_turn++;
    pthread_cond_broadcast(&e->icv);
    pthread_mutex_unlock(&e->imu);
    snap_free(&bh->sn);
    bh->taken = 0;
    return rc;
}

int hr_engine_flush_derived(hr_engine *e, int64_t max_age_ms, hr_err *err) {
    pthread_mutex_lock(&e->wmu);
    int rc = 0, due = !max_age_ms || hr_time_now_ms() - e->last_flush_ms >= max_age_ms;
    int64_t t0 = hr_time_mono_ns();
    size_t n = dirty_count(e);
    behind bh = {0};
    if (due && e->log_store) {
        drain_inflight(e, 0);
        behind_take(e, &bh);
    } else if (due) {
        rc = hr_ingest_flush_locked(e, err);
    }
    int64_t ns = hr_time_mono_ns() - t0;
    pthread_mutex_unlock(&e->wmu);
    if (bh.taken) rc = behind_write(e, &bh, err);
    if (ns > SLOW_BATCH_NS) /* ingestion waited for it */
        hr_log(HR_LOG_WARN, "writing %zu changed meter values and history days took %lld ms", n,
               (long long)ns / 1000000);
    return rc;
}

/* The queue's next leader may start (qbusy cleared). */
static void release_lead(hr_engine *e) {
    pthread_mutex_lock(&e->qmu);
    e->qbusy = 0;
    pthread_cond_broadcast(&e->qcv);
    pthread_mutex_unlock(&e->qmu);
}

/* Runs the queued jobs as one batch; sets each job's rc and statuses, and
 * releases the lead. Pipelined (a log store of its own): the batch folds
 * into memory under wmu and becomes visible there, the lead passes on, and
 * its log write (in fold order) overlaps the next batch's fold; the jobs
 * end when the write has committed. Else all of it under wmu. */
static void run_batch(hr_engine *e, hr_ingest_job *jobs) {
    batch b;
    hr_err err = {0};
    int rc = 0, arc = 0;
    int64_t t[6];
    t[0] = hr_time_mono_ns();
    pthread_mutex_lock(&e->wmu);
    t[1] = hr_time_mono_ns();
    batch_start(e, &b);
    int pipelined = e->log_store != NULL;
    int64_t now_ms = jobs->now_ms;
    drain_inflight(e, 0);
    /* the tracked changes stay small between headroomd's flushes; an
     * application without that timer flushes here, before this batch
     * reaches memory (a flush writes memory as the log has it): behind
     * the log when pipelined, written below before this batch's log */
    behind bh = {0};
    if ((e->dirty && (e->dirty->nm > DIRTY_MAX || e->dirty->nh > DIRTY_MAX)) ||
        now_ms - e->last_flush_ms > 60000) {
        hr_err ferr = {0};
        if (pipelined)
            behind_take(e, &bh);
        else if (hr_ingest_flush_locked(e, &ferr))
            hr_log(HR_LOG_WARN, "writing meters and history: %s", ferr.message);
    }
    size_t total = 0;
    for (hr_ingest_job *j = jobs; j; j = j->next) total += (size_t)j->n;
    /* the batch's indexes sized once, for its messages (an event stages a
     * value per meter it feeds and history for its account and user: most
     * repeat an account's) */
    b.bseen = e->spare_seen, e->spare_seen = NULL;
    if (bindex_presize(&b.stx, total) || bindex_presize(&b.curx, total) ||
        bindex_presize(&b.hsx, 2 * total) || (!b.bseen && !(b.bseen = hr_idset_new())) ||
        hr_idset_reserve(b.bseen, total) || grow((void **)&b.ev, &b.capev, total, sizeof *b.ev) ||
        grow((void **)&b.new_seen, &b.capseen, total, sizeof *b.new_seen))
        rc = hr_err_set(&err, HR_ENOMEM, "out of memory");
    for (hr_ingest_job *j = jobs; j && !rc; j = j->next)
        for (int i = 0; i < j->n && !rc; i++) {
            /* the dedup window's slot of a later message, loading meanwhile */
            if (i + 8 < j->n && j->msgs[i + 8].id_hash) hr_idset_prefetch(e->seen, j->msgs[i + 8].id_hash);
            if (i + 4 < j->n) hr_msg_prefetch(&j->msgs[i + 4]);
            rc = fold_msg(e, &b, &j->msgs[i], j->now_ms, &j->status[i], &err);
        }
    if (!rc) rc = thresholds(e, &b, now_ms, &err);
    hr_inflight *f = NULL;
    uint64_t turn = 0;
    if (!rc && !(f = calloc(1, sizeof *f))) rc = hr_err_set(&err, HR_ENOMEM, "out of memory");
    if (!rc) {
        /* visible from now on; durable, and answered, once its log commits */
        if (apply(e, &b, now_ms)) {
            e->fold_stuck = 1; /* memory misses a change: a restart replays it */
            arc = HR_ENOMEM;
        }
        track_changes(e, &b);
        prune_seen(e, now_ms);
        f->bseen = b.bseen, f->new_seen = b.new_seen, f->nseen = b.nseen, f->now_ms = now_ms;
        b.bseen = NULL, b.new_seen = NULL;
        if (e->inflight_tail)
            e->inflight_tail->next = f;
        else
            e->inflight = f;
        e->inflight_tail = f;
        turn = e->log_next++;
    }
    t[2] = hr_time_mono_ns();
    if (pipelined) {
        pthread_mutex_unlock(&e->wmu);
        release_lead(e);
    }
    if (bh.taken) {
        hr_err ferr = {0};
        if (behind_write(e, &bh, &ferr)) hr_log(HR_LOG_WARN, "writing meters and history: %s", ferr.message);
    }
    t[3] = t[4] = hr_time_mono_ns();
    if (f) {
        /* the log, in fold order: after the batches folded before this one */
        pthread_mutex_lock(&e->imu);
        while (e->log_turn != turn) pthread_cond_wait(&e->icv, &e->imu);
        pthread_mutex_unlock(&e->imu);
        t[3] = hr_time_mono_ns();
        int64_t seq = 0;
        rc = persist(e, &b, &seq, &err);
        pthread_mutex_lock(&e->imu);
        f->seq = seq;
        f->state = rc ? -1 : 1; /* f belongs to drain_inflight from here */
        e->log_turn++;
        pthread_cond_broadcast(&e->icv);
        pthread_mutex_unlock(&e->imu);
        if (!rc && arc) rc = hr_err_set(&err, arc, "out of memory (after commit)");
        t[4] = hr_time_mono_ns();
    }
    if (!pipelined) {
        drain_inflight(e, 0);
        pthread_mutex_unlock(&e->wmu);
        release_lead(e);
    }
    t[5] = hr_time_mono_ns();
    if (t[5] - t[0] > SLOW_BATCH_NS)
        hr_log(HR_LOG_WARN, "a group commit of %zu events took %lld ms: waiting for the writer %lld, "
               "folding %lld, waiting for its turn %lld, committing the log %lld",
               b.nev, (long long)(t[5] - t[0]) / 1000000, (long long)(t[1] - t[0]) / 1000000,
               (long long)(t[2] - t[1]) / 1000000, (long long)(t[3] - t[2]) / 1000000,
               (long long)(t[4] - t[3]) / 1000000);
    if (!rc) run_hook(e, &b);
    batch_keep(e, &b);
    for (hr_ingest_job *j = jobs; j; j = j->next) {
        j->rc = rc;
        j->err = err;
    }
}

int hr_engine_ingest(hr_engine *e, hr_msg *msgs, int n, int64_t now_ms, int *status, hr_err *err) {
    hr_ingest_job job = {NULL, msgs, n, now_ms ? now_ms : hr_time_now() * 1000, status, 0, 0, {0}};
    pthread_mutex_lock(&e->qmu);
    if (e->qtail)
        e->qtail->next = &job;
    else
        e->qhead = &job;
    e->qtail = &job;
    while (!job.done) {
        /* (a job taken by a batch that is still writing its log is in no
         * queue: it waits for that batch) */
        if (e->qbusy || !e->qhead) {
            pthread_cond_wait(&e->qcv, &e->qmu);
            continue;
        }
        /* lead: take everything queued so far, commit it as one batch
         * (run_batch passes the lead on as soon as it may) */
        hr_ingest_job *jobs = e->qhead;
        e->qhead = e->qtail = NULL;
        e->qbusy = 1;
        pthread_mutex_unlock(&e->qmu);
        run_batch(e, jobs);
        pthread_mutex_lock(&e->qmu);
        for (hr_ingest_job *j = jobs; j; j = j->next) j->done = 1;
        pthread_cond_broadcast(&e->qcv);
    }
    pthread_mutex_unlock(&e->qmu);
    if (job.rc && err) *err = job.err;
    return job.rc;
}

/* A product that checks a premium feature in a loop would otherwise fill
 * the stream: the same (account, user, feature) is recorded once a minute. */
#define HR_DENIED_EVERY_MS 60000

void hr_engine_note_denied(hr_engine *e, const char *account, const char *user,
                           const char *feature) {
    if (!account || !feature) return;
    char key[330];
    snprintf(key, sizeof key, "%s\x1f%s\x1f%s", account, user ? user : "", feature);
    int64_t now = hr_time_now_ms();
    pthread_mutex_lock(&e->pmu);
    if (!e->denied_at && !(e->denied_at = hr_map_new(64))) goto out;
    int64_t *last = hr_map_get(e->denied_at, key);
    if (last && now - *last < HR_DENIED_EVERY_MS) goto out;
    if (!last) {
        size_t kl = strlen(key) + 1;
        char *blob = malloc(sizeof(int64_t) + kl); /* the time, then the key */
        if (!blob) goto out;
        memcpy(blob + sizeof(int64_t), key, kl);
        int err = 0;
        hr_map_put(e->denied_at, blob + sizeof(int64_t), blob, &err);
        if (err) {
            free(blob);
            goto out;
        }
        last = (int64_t *)(void *)blob;
    }
    *last = now;
    if (e->ndenied == e->capdenied && e->capdenied < 10000) {
        size_t cap = e->capdenied ? e->capdenied * 2 : 64;
        if (cap > 10000) cap = 10000;
        hr_denied *p = realloc(e->denied, cap * sizeof *p);
        if (p) e->denied = p, e->capdenied = cap;
    }
    if (e->ndenied < e->capdenied) {
        hr_denied *d = &e->denied[e->ndenied++];
        snprintf(d->account, sizeof d->account, "%s", account);
        snprintf(d->user, sizeof d->user, "%s", user ? user : "");
        snprintf(d->feature, sizeof d->feature, "%s", feature);
        d->at_ms = now;
    }
out:
    pthread_mutex_unlock(&e->pmu);
}

/* Forgets throttle entries older than the throttle (pmu held). */
static void prune_denied_at(hr_engine *e, int64_t now) {
    if (!e->denied_at) return;
    size_t pos = 0, n = 0;
    const char *k;
    void *v;
    char **old = malloc(hr_map_count(e->denied_at) * sizeof *old + 1);
    if (!old) return;
    while (hr_map_next(e->denied_at, &pos, &k, &v))
        if (now - *(int64_t *)v >= HR_DENIED_EVERY_MS) old[n++] = v;
    for (size_t i = 0; i < n; i++) {
        hr_map_del(e->denied_at, old[i] + sizeof(int64_t));
        free(old[i]);
    }
    free(old);
}

#define FLUSH_CHUNK 256

int hr_engine_flush_internal(hr_engine *e, hr_err *err) {
    pthread_mutex_lock(&e->pmu);
    prune_denied_at(e, hr_time_now_ms());
    hr_denied *list = e->denied;
    size_t n = e->ndenied;
    e->denied = NULL;
    e->ndenied = e->capdenied = 0;
    pthread_mutex_unlock(&e->pmu);
    if (!n) {
        free(list);
        return 0;
    }
    int rc = 0;
    json_object **objs = calloc(n, sizeof *objs);
    hr_msg *msgs = calloc(n, sizeof *msgs);
    int *status = calloc(n, sizeof *status);
    size_t k = 0;
    if (!objs || !msgs || !status) {
        rc = hr_err_set(err, HR_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *props = json_object_new_object();
        if (props) json_object_object_add(props, "feature", json_object_new_string(list[i].feature));
        objs[k] = hr_internal_msg("headroom.feature_denied", list[i].account,
                                  list[i].user[0] ? list[i].user : NULL, props, NULL);
        hr_err perr = {0};
        if (objs[k] && hr_msg_parse(objs[k], -1, 0, 0, list[i].at_ms, &msgs[k], &perr) == 0)
            k++;
        else
            json_object_put(objs[k]);
    }
    /* a few hundred at a time, with a pause between: each commit applies
     * under the engine's write lock, which every decision waits for, and a
     * second's worth (up to 10,000) in one go held them for milliseconds */
    int64_t since = hr_time_mono_ns();
    for (size_t off = 0; off < k && !rc; off += FLUSH_CHUNK) {
        size_t m = k - off < FLUSH_CHUNK ? k - off : FLUSH_CHUNK;
        rc = hr_engine_ingest(e, msgs + off, (int)m, hr_time_now_ms(), status + off, err);
        hr_time_pace(&since, 0);
    }
out:
    for (size_t i = 0; objs && i < k; i++) json_object_put(objs[i]);
    free(objs);
    free(msgs);
    free(status);
    free(list);
    return rc;
}

/* The start-up replay: the log's events past folded_seq, folded a chunk at
 * a time exactly as their batches were (minus dedup, thresholds and
 * hooks, which ran then). */
#define REPLAY_CHUNK 4096

typedef struct replay {
    hr_engine *e;
    hr_msg msgs[REPLAY_CHUNK];
    char *ids[REPLAY_CHUNK]; /* the row's account, user and body: the row's
                                text lives only until the next row */
    int n;
    int64_t seq, count;
    hr_err *err;
} replay;

static int replay_fold(replay *r) {
    hr_engine *e = r->e;
    batch b;
    memset(&b, 0, sizeof b);
    b.replay = 1;
    int rc = 0, status;
    int64_t now_ms = hr_time_now_ms();
    for (int i = 0; i < r->n && !rc; i++) rc = fold_msg(e, &b, &r->msgs[i], now_ms, &status, r->err);
    if (!rc) {
        if (apply(e, &b, now_ms)) rc = hr_err_set(r->err, HR_ENOMEM, "out of memory replaying the event log");
        track_changes(e, &b);
        e->folded_seq = r->seq;
    }
    batch_free(&b);
    for (int i = 0; i < r->n; i++) hr_msg_dispose(&r->msgs[i]), free(r->ids[i]);
    r->count += r->n;
    r->n = 0;
    return rc;
}

static int replay_row(void *ud, const hr_event_rec *ev) {
    replay *r = ud;
    r->seq = ev->seq;
    if (!ev->account || !ev->type || strcmp(ev->type, "track") || !ev->body) return 0;
    size_t al = strlen(ev->account), ul = ev->user_id ? strlen(ev->user_id) : 0;
    size_t bl = strlen(ev->body);
    char *ids = malloc(al + ul + bl + 3);
    if (!ids) return hr_err_set(r->err, HR_ENOMEM, "out of memory");
    char *body = ids + al + ul + 2;
    memcpy(body, ev->body, bl + 1);
    hr_err perr = {0};
    hr_msg *m = &r->msgs[r->n];
    /* read as the import reads it (the same values, from the same reader);
     * the type is the row's: a /v1/track body need not say it */
    if (hr_msg_scan(body, bl, HR_MSG_TRACK, 0, ev->received_ms, m, &perr)) {
        hr_msg_dispose(m); /* logged, so once valid: nothing to fold */
        free(ids);
        return 0;
    }
    /* as it was folded: the account it reached, the time it was given */
    memcpy(ids, ev->account, al + 1);
    if (ev->user_id) memcpy(ids + al + 1, ev->user_id, ul + 1);
    m->account = ids;
    m->user_id = ev->user_id ? ids + al + 1 : NULL;
    m->timestamp_ms = ev->ts_ms;
    r->ids[r->n++] = ids;
    return r->n == REPLAY_CHUNK ? replay_fold(r) : 0;
}

/* From folded_seq as the load read it, with the meters (a writer in
 * another process may have moved it since). */
int hr_ingest_replay(hr_engine *e, hr_err *err) {
    hr_store *s = e->store;
    int64_t from = e->folded_seq, t0 = hr_time_now_ms();
    int rc = 0;
    replay *r = calloc(1, sizeof *r);
    if (!r) return hr_err_set(err, HR_ENOMEM, "out of memory");
    r->e = e;
    r->err = err;
    r->seq = from;
    rc = s->ops->replay_events(s, from, replay_row, r, err);
    if (!rc && r->n) rc = replay_fold(r);
    for (int i = 0; i < r->n; i++) hr_msg_dispose(&r->msgs[i]), free(r->ids[i]);
    if (!rc) {
        e->folded_seq = r->seq;
        if (r->count)
            hr_log(HR_LOG_INFO, "replayed %lld events past the stored meters in %lld ms",
                   (long long)r->count, (long long)(hr_time_now_ms() - t0));
    }
    free(r);
    return rc;
}
