/* campaigns.c: which prompt to show now, and what happened to it.
 *
 * A request for prompts takes the campaigns of its trigger from an index
 * built once per catalog snapshot, drops those not running and, under this
 * module's mutex, those the user's own state rules out (answered, dismissed
 * within the cooldown, capped); a throttled user gets nothing at once.
 * Only then, under the engine's read lock, are audience and gate evaluated,
 * in priority order and only until the walk has what it may show: the walk
 * (under the mutex again) checks the throttle, assigns the experiment
 * variant and records the exposure and the show. None of the filters has a
 * side effect, so this order answers what rules-first would. A unit
 * assigned to the holdout is exposed exactly where a prompt would have been
 * shown, and the walk goes on as if nothing had been shown. All state is
 * keyed by strings (campaign key, user, unit) so it survives catalog
 * reloads; the variant a unit saw first is kept, so reweighting does not
 * move exposed units. */
#include "campaigns.h"

#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "err.h"
#include "map.h"
#include "rules/rules.h"
#include "stats.h"
#include "timeutil.h"

enum { K_USER = 0, K_UNIT = 1 };
#define CLOCK_GRACE_MS 2000

typedef struct pkey pkey;

/* One state row (see hr_prompt_rec): a user's in one campaign (K_USER) or
 * an experiment unit's (K_UNIT). */
typedef struct pstate {
    struct pstate *next; /* the owner's next row */
    pkey *owner;         /* the user or unit: the row's key */
    int kind;
    int dirty;
    char variant[72];
    char *account;
    int64_t first_ms, dismissed_ms, answered_ms, converted_ms;
    int nshows;
    int64_t shows[HR_MAX_CAP]; /* newest last */
    char campaign[];
} pstate;

/* Everything kept about one key (a user id or an account id), so that a
 * request finds its user's rows and throttle with one hash lookup. */
struct pkey {
    pstate *rows;
    int nshows;                /* the throttle: shows across campaigns, newest last; */
    int64_t shows[HR_MAX_CAP]; /* memory only, rebuilt from the user's rows at load */
    char key[];
};

/* Counts per (campaign, variant). */
typedef struct vcount {
    int64_t exposures, conversions;
    int64_t impressions, clicks, dismissals, trials, converted;
    char name[]; /* "campaign\x1fvariant" */
} vcount;

/* A hash map that grows without a pause: when full it starts a table twice
 * the size and moves a few entries of the old one per insert (a stop-the-
 * world rehash of 200k keys stalls every request for milliseconds). */
typedef struct gmap {
    hr_map *cur, *old;
    size_t cap;  /* cur's slots, as hr_map_new sized them */
    size_t pos;  /* the migration's position in old */
} gmap;

/* The campaigns of one trigger (kind and argument), in priority order. */
typedef struct tgroup {
    hr_trigger_kind kind;
    const char *arg; /* the catalog's */
    int n, cap;
    int *ix;
} tgroup;

/* A catalog's campaigns by trigger, built once per snapshot. */
typedef struct tindex {
    hr_catalog *cat; /* retained */
    int nload;
    int *load;       /* on_load and page campaigns: what a page load weighs */
    size_t *prefix;  /* per load entry: page pattern "lit*" -> strlen(lit) + 1; 0: fnmatch */
    int ngroups;
    tgroup *groups;  /* the other triggers, sorted by kind and argument */
} tindex;

struct hr_campaigns {
    hr_engine *e;
    hr_store *store;
    pthread_mutex_t mu;
    pthread_mutex_t fmu; /* the store connection: one thread at a time, flushes in order */
    pthread_t th;        /* the background flush (hr_campaigns_start) */
    pthread_mutex_t tmu;
    pthread_cond_t tcv;
    int started, stop;
    gmap keys;      /* user or unit id -> pkey */
    hr_map *counts; /* name -> vcount */
    tindex *tix;    /* of the last catalog a request used (under mu) */
    pstate **dirty;
    size_t ndirty, capdirty;
};

/* ---- state -------------------------------------------------------------- */

static size_t map_cap(size_t expected) { /* as hr_map_new sizes it */
    size_t cap = 16;
    while (cap < expected * 2) cap *= 2;
    return cap;
}

static int gmap_init(gmap *g, size_t expected) {
    memset(g, 0, sizeof *g);
    g->cap = map_cap(expected);
    return (g->cur = hr_map_new(expected)) ? 0 : -1;
}

static void *gmap_get(const gmap *g, const char *key) {
    void *v = hr_map_get(g->cur, key);
    return v || !g->old ? v : hr_map_get(g->old, key);
}

/* Moves up to n entries of the old table; -1 when out of memory. */
static int gmap_step(gmap *g, int n) {
    const char *k;
    void *v;
    while (g->old && n-- > 0) {
        size_t at = g->pos;
        if (!hr_map_next(g->old, &g->pos, &k, &v)) {
            hr_map_free(g->old);
            g->old = NULL;
            break;
        }
        int err = 0;
        if (!hr_map_get(g->cur, k)) hr_map_put(g->cur, k, v, &err);
        if (err) { /* this one again next time */
            g->pos = at;
            return -1;
        }
    }
    return 0;
}

/* Adds a key known to be in neither table. */
static int gmap_add(gmap *g, const char *key, void *val) {
    if (!g->old && (hr_map_count(g->cur) + 2) * 4 > g->cap * 3) {
        /* hr_map_new's table is calloc'ed: the kernel zeroes its pages as
         * they are first written, not all at once here */
        size_t n = hr_map_count(g->cur);
        hr_map *nw = hr_map_new(n + 1);
        if (nw) {
            g->old = g->cur;
            g->cur = nw;
            g->cap = map_cap(n + 1);
            g->pos = 0;
        }
    }
    int err = 0;
    hr_map_put(g->cur, key, val, &err);
    /* 4 a put: done long before the new table (twice the entries) fills */
    gmap_step(g, 4);
    return err;
}

static pkey *key_get(hr_campaigns *cs, const char *key, int create) {
    pkey *k = gmap_get(&cs->keys, key);
    if (k || !create) return k;
    size_t n = strlen(key);
    if (!(k = calloc(1, sizeof *k + n + 1))) return NULL;
    memcpy(k->key, key, n + 1);
    if (gmap_add(&cs->keys, k->key, k)) {
        free(k);
        return NULL;
    }
    return k;
}

static pstate *row_find(const pkey *k, const char *campaign, int kind) {
    for (pstate *p = k ? k->rows : NULL; p; p = p->next)
        if (p->kind == kind && !strcmp(p->campaign, campaign)) return p;
    return NULL;
}

static pstate *state_get(hr_campaigns *cs, const char *campaign, int kind, const char *key,
                         int create) {
    pkey *k = key_get(cs, key, create);
    pstate *p = row_find(k, campaign, kind);
    if (p || !create || !k) return p;
    size_t n = strlen(campaign);
    if (!(p = calloc(1, sizeof *p + n + 1))) return NULL;
    memcpy(p->campaign, campaign, n + 1);
    p->kind = kind;
    p->owner = k;
    p->next = k->rows;
    k->rows = p;
    return p;
}

static vcount *count_get(hr_campaigns *cs, const char *campaign, const char *variant) {
    char name[256];
    int n = snprintf(name, sizeof name, "%s\x1f%s", campaign, variant);
    if (n < 0 || (size_t)n >= sizeof name) return NULL;
    vcount *v = hr_map_get(cs->counts, name);
    if (v) return v;
    if (!(v = calloc(1, sizeof *v + (size_t)n + 1))) return NULL;
    memcpy(v->name, name, (size_t)n + 1);
    int err = 0;
    hr_map_put(cs->counts, v->name, v, &err);
    if (err) {
        free(v);
        return NULL;
    }
    return v;
}

static void mark(hr_campaigns *cs, pstate *p) {
    if (p->dirty) return;
    if (cs->ndirty == cs->capdirty) {
        size_t cap = cs->capdirty ? cs->capdirty * 2 : 64;
        pstate **d = realloc(cs->dirty, cap * sizeof *d);
        if (!d) return; /* stays in memory; written with the next change */
        cs->dirty = d;
        cs->capdirty = cap;
    }
    p->dirty = 1;
    cs->dirty[cs->ndirty++] = p;
}

/* Shows within the last `per` ms, of a list of n, newest last. */
static int shows_since(const int64_t *shows, int n, int64_t now, int64_t per_ms) {
    int k = 0;
    for (int i = 0; i < n; i++) k += shows[i] > now - per_ms;
    return k;
}

static void add_show(int64_t *shows, int *n, int64_t now) {
    if (*n == HR_MAX_CAP) {
        memmove(shows, shows + 1, (HR_MAX_CAP - 1) * sizeof shows[0]);
        --*n;
    }
    shows[(*n)++] = now;
}

/* Inserts a show time in order, keeping the newest HR_MAX_CAP. */
static void merge_show(int64_t *shows, int *n, int64_t at) {
    int i = *n;
    if (i == HR_MAX_CAP) {
        if (at <= shows[0]) return;
        memmove(shows, shows + 1, (HR_MAX_CAP - 1) * sizeof shows[0]);
        i = --*n;
    }
    while (i > 0 && shows[i - 1] > at) {
        shows[i] = shows[i - 1];
        i--;
    }
    shows[i] = at;
    ++*n;
}

/* The split of the shows text "t1,t2,..." into p. */
static void parse_shows(pstate *p, const char *s) {
    p->nshows = 0;
    while (s && *s && p->nshows < HR_MAX_CAP) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s) break;
        p->shows[p->nshows++] = v;
        s = *end == ',' ? end + 1 : end;
    }
}

/* ---- assignment --------------------------------------------------------- */

int hr_campaign_assign(const hr_campaign *cp, const char *unit) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s\x1f%s", cp->key, unit);
    if (n < 0) return 0;
    if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
    /* 53 well-mixed bits -> [0, 1) */
    uint64_t h = hr_hash(buf, (size_t)n);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
    double total = 0;
    for (int i = 0; i < cp->nvariants; i++) total += cp->variants[i].weight;
    double at = u * total, acc = 0;
    for (int i = 0; i < cp->nvariants; i++) {
        acc += cp->variants[i].weight;
        if (at < acc && cp->variants[i].weight > 0) return i;
    }
    for (int i = cp->nvariants - 1; i >= 0; i--)
        if (cp->variants[i].weight > 0) return i;
    return 0;
}

static int variant_ix(const hr_campaign *cp, const char *key) {
    for (int i = 0; i < cp->nvariants; i++)
        if (!strcmp(cp->variants[i].key, key)) return i;
    return -1;
}

/* ---- selection ---------------------------------------------------------- */

/* The trigger of a request, parsed. */
typedef struct trig {
    int any;              /* no trigger given: on_load and page */
    hr_trigger_kind kind;
    const char *arg;      /* after the colon */
} trig;

static int parse_trigger(const char *s, trig *t) {
    static const struct { const char *name; hr_trigger_kind kind; int arg; } kinds[] = {
        {"on_load", HR_TRIG_ON_LOAD, 0},         {"page", HR_TRIG_PAGE, 0},
        {"feature_denied", HR_TRIG_FEATURE_DENIED, 1}, {"limit_hit", HR_TRIG_LIMIT_HIT, 1},
        {"event", HR_TRIG_EVENT, 1},             {"element", HR_TRIG_ELEMENT, 1},
    };
    memset(t, 0, sizeof *t);
    if (!s || !*s) {
        t->any = 1;
        return 0;
    }
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strlen(kinds[i].name) != n || strncmp(kinds[i].name, s, n)) continue;
        if (kinds[i].arg != (colon != NULL) || (colon && !colon[1])) return -1;
        t->kind = kinds[i].kind;
        t->arg = colon ? colon + 1 : NULL;
        return 0;
    }
    return -1;
}

/* ---- the campaigns of a trigger ---------------------------------------- */

static int group_cmp(hr_trigger_kind kind, const char *arg, const tgroup *g) {
    if (kind != g->kind) return kind < g->kind ? -1 : 1;
    return strcmp(arg, g->arg);
}

static int group_qcmp(const void *a, const void *b) {
    const tgroup *x = a;
    return group_cmp(x->kind, x->arg, b);
}

static const tgroup *group_find(const tindex *t, hr_trigger_kind kind, const char *arg) {
    int lo = 0, hi = t->ngroups;
    while (lo < hi) {
        int mid = (lo + hi) / 2, c = group_cmp(kind, arg, &t->groups[mid]);
        if (!c) return &t->groups[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

static void tindex_free(tindex *t) {
    if (!t) return;
    for (int i = 0; i < t->ngroups; i++) free(t->groups[i].ix);
    free(t->groups);
    free(t->load);
    free(t->prefix);
    hr_catalog_release(t->cat);
    free(t);
}

/* Appends campaign ix to the group (kind, arg), made if new; groups stay
 * unsorted until the index is complete. */
static int group_add(tindex *t, int *capg, hr_trigger_kind kind, const char *arg, int ix) {
    tgroup *g = NULL;
    for (int i = 0; i < t->ngroups && !g; i++)
        if (t->groups[i].kind == kind && !strcmp(t->groups[i].arg, arg)) g = &t->groups[i];
    if (!g) {
        if (t->ngroups == *capg) {
            int cap = *capg ? *capg * 2 : 16;
            tgroup *ng = realloc(t->groups, (size_t)cap * sizeof *ng);
            if (!ng) return -1;
            t->groups = ng;
            *capg = cap;
        }
        g = &t->groups[t->ngroups++];
        *g = (tgroup){kind, arg, 0, 0, NULL};
    }
    if (g->n == g->cap) {
        int cap = g->cap ? g->cap * 2 : 4;
        int *ni = realloc(g->ix, (size_t)cap * sizeof *ni);
        if (!ni) return -1;
        g->ix = ni;
        g->cap = cap;
    }
    g->ix[g->n++] = ix;
    return 0;
}

/* The length of a page pattern's literal part when it is "literal*" (the
 * usual "/boards/" and a star), + 1; 0 when fnmatch must decide. */
static size_t literal_prefix(const char *pat) {
    size_t n = strcspn(pat, "*?[\\");
    return pat[n] == '*' && !pat[n + 1] ? n + 1 : 0;
}

/* Built once per catalog snapshot: campaigns by trigger, each list in
 * priority order, so a request weighs only its trigger's campaigns. */
static tindex *tindex_new(hr_catalog *cat) {
    tindex *t = calloc(1, sizeof *t);
    int capg = 0;
    if (!t) return NULL;
    t->cat = hr_catalog_retain(cat);
    size_t nc = (size_t)cat->ncampaigns;
    if (nc && (!(t->load = calloc(nc, sizeof *t->load)) ||
               !(t->prefix = calloc(nc, sizeof *t->prefix))))
        goto fail;
    for (int i = 0; i < cat->ncampaigns; i++) {
        const hr_campaign *cp = &cat->campaigns[i];
        if (cp->trigger == HR_TRIG_ON_LOAD || cp->trigger == HR_TRIG_PAGE) {
            if (cp->trigger == HR_TRIG_PAGE) {
                if (!cp->trigger_arg) continue; /* matches no page */
                t->prefix[t->nload] = literal_prefix(cp->trigger_arg);
            }
            t->load[t->nload++] = i;
            continue;
        }
        if (!cp->trigger_arg) continue;
        if (group_add(t, &capg, cp->trigger, cp->trigger_arg, i)) goto fail;
        /* a denied feature is also the moment for a campaign on its element */
        if (cp->trigger == HR_TRIG_ELEMENT &&
            group_add(t, &capg, HR_TRIG_FEATURE_DENIED, cp->trigger_arg, i))
            goto fail;
    }
    if (t->ngroups) qsort(t->groups, (size_t)t->ngroups, sizeof *t->groups, group_qcmp);
    return t;
fail:
    tindex_free(t);
    return NULL;
}

static int page_matches(const hr_campaign *cp, size_t prefix, const char *page) {
    if (!page) return 0;
    if (prefix) return !strncmp(page, cp->trigger_arg, prefix - 1);
    return fnmatch(cp->trigger_arg, page, 0) == 0;
}

static int running(const hr_campaign *cp, int64_t now_s) {
    return !(cp->starts_at && now_s < cp->starts_at) && !(cp->ends_at && now_s >= cp->ends_at);
}

/* The campaigns whose trigger matches and that are running, in priority
 * order, into out (room for the catalog's campaigns). */
static int candidates(const tindex *t, const trig *tr, const char *page, int64_t now_s, int *out) {
    const hr_catalog *cat = t->cat;
    int n = 0;
    if (tr->any || tr->kind == HR_TRIG_ON_LOAD || tr->kind == HR_TRIG_PAGE) {
        for (int j = 0; j < t->nload; j++) {
            const hr_campaign *cp = &cat->campaigns[t->load[j]];
            if (cp->trigger == HR_TRIG_PAGE && !page_matches(cp, t->prefix[j], page)) continue;
            if (running(cp, now_s)) out[n++] = t->load[j];
        }
        return n;
    }
    const tgroup *g = tr->arg ? group_find(t, tr->kind, tr->arg) : NULL;
    for (int j = 0; g && j < g->n; j++)
        if (running(&cat->campaigns[g->ix[j]], now_s)) out[n++] = g->ix[j];
    return n;
}

/* ---- selection ---------------------------------------------------------- */

/* Audience and gate, under the engine's read lock, of the candidates from
 * pos on, until `need` pass: rules run only as far down the priority list
 * as the walk gets. */
typedef struct evalq {
    const hr_catalog *cat; /* the snapshot the candidates index */
    const int *ix;
    int n, pos, need, npass, stale;
    int64_t now_ms;
    int pass[16];
} evalq;

static int eval_rules(void *ud, const hr_catalog *cat, const hr_rule_env *env, void *ctx) {
    evalq *q = ud;
    if (cat != q->cat) { /* reloaded meanwhile: the indexes are another catalog's */
        q->stale = 1;
        return 0;
    }
    while (q->pos < q->n && q->npass < q->need) {
        int i = q->ix[q->pos++];
        const hr_campaign *cp = &cat->campaigns[i];
        if (cp->audience && !hr_rule_test(cp->audience, env, ctx, q->now_ms)) continue;
        if (cp->gate && !hr_rule_test(cp->gate, env, ctx, q->now_ms)) continue;
        q->pass[q->npass++] = i;
    }
    return 0;
}

static int no_rules(void *ud, const hr_catalog *cat, const hr_rule_env *env, void *ctx) {
    (void)ud, (void)cat, (void)env, (void)ctx;
    return 0;
}

/* Whether the user's own state keeps campaign cp away now: answered,
 * dismissed within the cooldown, or capped. */
static int user_blocks(const pstate *us, const hr_campaign *cp, int64_t now) {
    if (!us) return 0;
    if (us->answered_ms) return 1;
    if (us->dismissed_ms && (!cp->cooldown || now - us->dismissed_ms < cp->cooldown * 1000))
        return 1;
    return cp->cap_n && shows_since(us->shows, us->nshows, now, cp->cap_per * 1000) >= cp->cap_n;
}

static int throttled(const pkey *uk, const hr_catalog *cat, int64_t now) {
    return uk && cat->throttle_n &&
           shows_since(uk->shows, uk->nshows, now, cat->throttle_per * 1000) >= cat->throttle_n;
}

static void text_member(hr_buf *b, const char *key, const hr_text *t, const char *locale) {
    hr_buf_putc(b, ',');
    hr_buf_json_key(b, key);
    hr_buf_json_str(b, hr_text_get(t, locale));
}

static const char *const type_names[] = {"modal", "tooltip", "banner", "lock_badge", "checklist"};
static const char *const action_names[] = {"upgrade", "start_trial", "buy_addon", "book_call", "url"};

static void prompt_json(hr_buf *b, const hr_catalog *cat, const hr_campaign *cp,
                        const hr_variant *va, const char *trigger, const char *locale) {
    const hr_content *ct = &va->content;
    char id[256];
    snprintf(id, sizeof id, "%s:%s", cp->key, va->key);
    hr_buf_puts(b, "{\"id\":");
    hr_buf_json_str(b, id);
    hr_buf_puts(b, ",\"campaign\":");
    hr_buf_json_str(b, cp->key);
    hr_buf_puts(b, ",\"variant\":");
    hr_buf_json_str(b, va->key);
    hr_buf_puts(b, ",\"trigger\":");
    hr_buf_json_str(b, trigger);
    hr_buf_puts(b, ",\"content\":{\"type\":");
    hr_buf_json_str(b, type_names[ct->type]);
    hr_buf_puts(b, ",\"anchor\":");
    hr_buf_json_str(b, ct->anchor);
    text_member(b, "title", &ct->title, locale);
    text_member(b, "body", &ct->body, locale);
    hr_buf_puts(b, ",\"cta\":{\"label\":");
    hr_buf_json_str(b, ct->cta_label.n ? hr_text_get(&ct->cta_label, locale) : NULL);
    hr_buf_puts(b, ",\"action\":");
    hr_buf_json_str(b, action_names[ct->action]);
    hr_buf_puts(b, ",\"url\":");
    hr_buf_json_str(b, ct->url);
    hr_buf_puts(b, ",\"feature\":");
    hr_buf_json_str(b, ct->feature >= 0 && ct->feature < cat->nfeatures
                           ? cat->features[ct->feature].key : NULL);
    hr_buf_puts(b, ",\"plan\":");
    hr_buf_json_str(b, ct->plan >= 0 && ct->plan < cat->nplans ? cat->plans[ct->plan].key : NULL);
    hr_buf_puts(b, ",\"addon\":");
    hr_buf_json_str(b, ct->addon >= 0 && ct->addon < cat->naddons ? cat->addons[ct->addon].key
                                                                   : NULL);
    hr_buf_puts(b, "}}}");
}

/* The walk over candidates whose rules passed, under mu: the user's state
 * again (another request may have changed it since), the throttle, the
 * unit's variant and exposure, the show. Returns 1 when the throttle ends
 * the walk. */
static int walk(hr_campaigns *cs, const hr_catalog *cat, const hr_prompt_req *q, const trig *t,
                const int *pass, int npass, int64_t now, int *shown, hr_buf *out) {
    pkey *uk = q->user ? key_get(cs, q->user, 0) : NULL;
    for (int k = 0; k < npass && *shown < cat->max_prompts; k++) {
        const hr_campaign *cp = &cat->campaigns[pass[k]];
        pstate *us = row_find(uk, cp->key, K_USER);
        if (user_blocks(us, cp, now)) continue;
        if (throttled(uk, cat, now)) return 1;
        const char *unit = cp->unit_user ? q->user : q->account;
        if (!unit) continue; /* a per-user experiment needs a user */
        pstate *un = state_get(cs, cp->key, K_UNIT, unit, 1);
        if (!un) continue;
        int vi = un->variant[0] ? variant_ix(cp, un->variant) : -1;
        if (vi < 0) { /* first exposure (or its variant was removed) */
            vi = hr_campaign_assign(cp, unit);
            snprintf(un->variant, sizeof un->variant, "%s", cp->variants[vi].key);
            un->first_ms = now;
            un->converted_ms = 0;
            free(un->account);
            un->account = strdup(q->account);
            vcount *vc = count_get(cs, cp->key, un->variant);
            if (vc) vc->exposures++;
            mark(cs, un);
        }
        const hr_variant *va = &cp->variants[vi];
        if (va->holdout) continue; /* exposed; sees nothing; others may still show */
        if (q->user && (us || (us = state_get(cs, cp->key, K_USER, q->user, 1)))) {
            add_show(us->shows, &us->nshows, now);
            mark(cs, us);
            /* the throttle's shows are the union of the user's shows in
             * every campaign: kept in memory only, rebuilt from the rows
             * at load */
            uk = us->owner;
            add_show(uk->shows, &uk->nshows, now);
        }
        char trig_s[300];
        if (t->any || t->kind == HR_TRIG_ON_LOAD || t->kind == HR_TRIG_PAGE)
            snprintf(trig_s, sizeof trig_s, "%s", cp->trigger == HR_TRIG_PAGE ? "page" : "on_load");
        else
            snprintf(trig_s, sizeof trig_s, "%s", q->trigger);
        if ((*shown)++) hr_buf_putc(out, ',');
        prompt_json(out, cat, cp, va, trig_s, q->locale);
    }
    return 0;
}

/* The cheap filters run first, under mu: the trigger (an index), the
 * dates, the user's answers, dismissals and caps, and the throttle (a
 * throttled user, what most requests are, sees nothing whatever the rules
 * say). Audience and gate run last and lazily, in priority order, only
 * until the walk has what it may show: they are the cost of a request.
 * Every filter before the walk is free of side effects, so this order
 * shows what rules-first would. */
int hr_campaigns_prompts(hr_campaigns *cs, const hr_prompt_req *q, hr_buf *out, hr_err *err) {
    enum { NSTACK = 256 };
    trig t;
    hr_catalog *cat = NULL;
    int rc = 0, shown = 0, stack[NSTACK], *cand = stack, tries = 0;
    if (!q->account) return hr_err_set(err, HR_EINVAL, "account is required");
    if (parse_trigger(q->trigger, &t))
        return hr_err_set(err, HR_EINVAL,
                          "trigger must be on_load, page, feature_denied:F, limit_hit:F, "
                          "event:E or element:F");
    int64_t now = q->now_ms ? q->now_ms : hr_time_now_ms();
    hr_buf_putc(out, '[');
again:
    cat = hr_engine_catalog(cs->e);
    if (cat->ncampaigns > NSTACK) {
        if (cand != stack) free(cand);
        if (!(cand = malloc((size_t)cat->ncampaigns * sizeof *cand))) {
            cand = stack;
            rc = hr_err_set(err, HR_ENOMEM, "out of memory");
            goto out;
        }
    }
    int nc = 0;
    pthread_mutex_lock(&cs->mu);
    if (!cs->tix || cs->tix->cat != cat) {
        tindex *ti = tindex_new(cat);
        if (!ti) {
            pthread_mutex_unlock(&cs->mu);
            rc = hr_err_set(err, HR_ENOMEM, "out of memory");
            goto out;
        }
        tindex_free(cs->tix);
        cs->tix = ti;
    }
    pkey *uk = q->user ? key_get(cs, q->user, 0) : NULL;
    if (cat->max_prompts > 0 && !throttled(uk, cat, now)) {
        int n = candidates(cs->tix, &t, q->page, now / 1000, cand);
        for (int i = 0; i < n; i++) {
            const hr_campaign *cp = &cat->campaigns[cand[i]];
            if (!user_blocks(row_find(uk, cp->key, K_USER), cp, now)) cand[nc++] = cand[i];
        }
    }
    pthread_mutex_unlock(&cs->mu);
    evalq ev = {.cat = cat, .ix = cand, .n = nc, .now_ms = now};
    if (!nc) /* nothing to weigh; the account must still exist */
        rc = hr_engine_with_rules(cs->e, q->account, q->user, now, no_rules, NULL);
    for (int stop = 0; !stop && !rc && shown < cat->max_prompts && ev.pos < ev.n;) {
        ev.npass = 0;
        ev.need = cat->max_prompts - shown;
        if (ev.need > (int)(sizeof ev.pass / sizeof ev.pass[0]))
            ev.need = (int)(sizeof ev.pass / sizeof ev.pass[0]);
        if ((rc = hr_engine_with_rules(cs->e, q->account, q->user, now, eval_rules, &ev))) break;
        if (ev.stale) { /* a reload in between: again with the new snapshot */
            if (!shown && tries++ < 3) {
                hr_catalog_release(cat);
                cat = NULL;
                goto again;
            }
            break;
        }
        pthread_mutex_lock(&cs->mu);
        stop = walk(cs, cat, q, &t, ev.pass, ev.npass, now, &shown, out);
        pthread_mutex_unlock(&cs->mu);
    }
    if (rc == HR_ENOTFOUND) {
        rc = hr_err_set(err, HR_ENOTFOUND, "no account '%s'", q->account);
        goto out;
    }
    if (rc) {
        rc = hr_err_set(err, rc, "evaluating campaign rules failed");
        goto out;
    }
    hr_buf_putc(out, ']');
out:
    if (cand != stack) free(cand);
    hr_catalog_release(cat);
    return rc;
}

/* ---- reported events and conversions ------------------------------------ */

static int flush_locked(hr_campaigns *cs, hr_err *err);

static int convert(hr_campaigns *cs, const hr_campaign *cp, const char *unit, int64_t at_ms) {
    pstate *un = state_get(cs, cp->key, K_UNIT, unit, 0);
    if (!un || !un->variant[0] || un->converted_ms) return 0;
    /* event times are the client's (skew-corrected, to the second): a goal
     * event stamped a moment before the exposure still followed it */
    if (at_ms < un->first_ms - CLOCK_GRACE_MS || at_ms - un->first_ms > cp->goal_within * 1000)
        return 0;
    un->converted_ms = at_ms;
    vcount *vc = count_get(cs, cp->key, un->variant);
    if (vc) vc->conversions++;
    mark(cs, un);
    return 1;
}

int hr_campaigns_event(hr_campaigns *cs, const char *id, const char *type, const char *user,
                       const char *account, int64_t now_ms, hr_err *err) {
    static const char *const types[] = {"impression", "click", "dismiss", "trial_started",
                                        "converted"};
    int ti = -1, rc = 0;
    char campaign[128];
    const char *colon = id ? strchr(id, ':') : NULL;
    for (int i = 0; type && i < 5; i++)
        if (!strcmp(type, types[i])) ti = i;
    if (ti < 0)
        return hr_err_set(err, HR_EINVAL,
                          "type must be impression, click, dismiss, trial_started or converted");
    if (!colon || colon == id || (size_t)(colon - id) >= sizeof campaign || !colon[1])
        return hr_err_set(err, HR_ENOTFOUND, "no prompt '%s'", id ? id : "");
    memcpy(campaign, id, (size_t)(colon - id));
    campaign[colon - id] = 0;
    const char *variant = colon + 1;
    if (!now_ms) now_ms = hr_time_now_ms();
    hr_catalog *cat = hr_engine_catalog(cs->e);
    int ci = hr_catalog_campaign(cat, campaign);
    if (ci < 0 || variant_ix(&cat->campaigns[ci], variant) < 0) {
        rc = hr_err_set(err, HR_ENOTFOUND, "no prompt '%s'", id);
        goto out;
    }
    const hr_campaign *cp = &cat->campaigns[ci];
    pthread_mutex_lock(&cs->mu);
    pstate *us = user ? state_get(cs, campaign, K_USER, user, 1) : NULL;
    if (us) {
        if (ti == 2) us->dismissed_ms = now_ms;
        if (ti == 3 || ti == 4) us->answered_ms = now_ms;
        if (ti >= 2) mark(cs, us);
    }
    if (ti == 4) {
        const char *unit = cp->unit_user ? user : account;
        if (unit) convert(cs, cp, unit, now_ms);
    }
    vcount *vc = count_get(cs, campaign, variant);
    if (vc) {
        int64_t *slot[] = {&vc->impressions, &vc->clicks, &vc->dismissals, &vc->trials,
                           &vc->converted};
        (*slot[ti])++;
    }
    pthread_mutex_unlock(&cs->mu);
    if (cs->store) {
        /* the connection is the flusher's too: one user at a time (fmu) */
        hr_prompt_event_rec r = {campaign, variant, types[ti], user, account, now_ms};
        pthread_mutex_lock(&cs->fmu);
        rc = cs->store->ops->put_prompt_events(cs->store, &r, 1, err);
        /* a dismissal or an answer is acknowledged only once it is on disk */
        if (!rc && ti >= 2) rc = flush_locked(cs, err);
        pthread_mutex_unlock(&cs->fmu);
    }
out:
    hr_catalog_release(cat);
    return rc;
}

/* The engine's hook: goal events that arrived through ingestion. */
static void on_ingested(void *ud, const hr_ingested *evs, int n) {
    hr_campaigns *cs = ud;
    hr_catalog *cat = hr_engine_catalog(cs->e);
    int any = 0;
    for (int c = 0; c < cat->ncampaigns; c++) any |= cat->campaigns[c].goal_event != NULL;
    if (any) {
        pthread_mutex_lock(&cs->mu);
        for (int i = 0; i < n; i++)
            for (int c = 0; c < cat->ncampaigns; c++) {
                const hr_campaign *cp = &cat->campaigns[c];
                if (!cp->goal_event || strcmp(cp->goal_event, evs[i].event)) continue;
                const char *unit = cp->unit_user ? evs[i].user : evs[i].account;
                if (unit) convert(cs, cp, unit, evs[i].at_ms);
            }
        pthread_mutex_unlock(&cs->mu);
    }
    hr_catalog_release(cat);
}

/* ---- results ------------------------------------------------------------ */

int hr_campaigns_results(hr_campaigns *cs, const char *campaign, hr_buf *out, hr_err *err) {
    hr_catalog *cat = hr_engine_catalog(cs->e);
    int ci = hr_catalog_campaign(cat, campaign), rc = 0;
    hr_exp_arm *arms = NULL;
    hr_exp_result res;
    int have_res = 0;
    if (ci < 0) {
        rc = hr_err_set(err, HR_ENOTFOUND, "no campaign '%s'", campaign);
        goto out;
    }
    const hr_campaign *cp = &cat->campaigns[ci];
    if (!(arms = calloc((size_t)cp->nvariants, sizeof *arms))) {
        rc = hr_err_set(err, HR_ENOMEM, "out of memory");
        goto out;
    }
    vcount zero = {0};
    vcount *vcs[64];
    int nv = cp->nvariants < 64 ? cp->nvariants : 64;
    pthread_mutex_lock(&cs->mu);
    for (int i = 0; i < nv; i++) {
        vcount *v = count_get(cs, cp->key, cp->variants[i].key);
        vcs[i] = v ? v : &zero;
        arms[i] = (hr_exp_arm){cp->variants[i].key, cp->variants[i].weight,
                               cp->variants[i].holdout, vcs[i]->exposures, vcs[i]->conversions};
    }
    vcount snap[64];
    for (int i = 0; i < nv; i++) memcpy(&snap[i], vcs[i], sizeof snap[i]);
    pthread_mutex_unlock(&cs->mu);
    hr_exp_opts opts = {.mde = cp->mde, .baseline = cp->baseline, .alpha = 0.05, .power = 0.8};
    if ((rc = hr_exp_analyze(arms, nv, &opts, &res, err))) goto out;
    have_res = 1;
    hr_buf_puts(out, "{\"campaign\":");
    hr_buf_json_str(out, cp->key);
    hr_buf_puts(out, ",\"goal\":");
    if (cp->goal_event) {
        hr_buf_puts(out, "{\"event\":");
        hr_buf_json_str(out, cp->goal_event);
        hr_buf_printf(out, ",\"within_days\":%g}", (double)cp->goal_within / 86400.0);
    } else {
        hr_buf_puts(out, "null");
    }
    hr_buf_putc(out, ',');
    hr_exp_result_json(&res, arms, out);
    hr_buf_puts(out, ",\"events\":[");
    for (int i = 0; i < nv; i++) {
        if (i) hr_buf_putc(out, ',');
        hr_buf_puts(out, "{\"variant\":");
        hr_buf_json_str(out, cp->variants[i].key);
        hr_buf_printf(out,
                      ",\"impressions\":%lld,\"clicks\":%lld,\"dismissals\":%lld,"
                      "\"trials_started\":%lld,\"converted_reported\":%lld}",
                      (long long)snap[i].impressions, (long long)snap[i].clicks,
                      (long long)snap[i].dismissals, (long long)snap[i].trials,
                      (long long)snap[i].converted);
    }
    hr_buf_puts(out, "]}");
out:
    if (have_res) hr_exp_result_dispose(&res);
    free(arms);
    hr_catalog_release(cat);
    return rc;
}

int hr_campaigns_list(hr_campaigns *cs, int64_t now_ms, hr_buf *out) {
    static const char *const trig_names[] = {"on_load", "page", "feature_denied", "limit_hit",
                                             "event", "element"};
    hr_catalog *cat = hr_engine_catalog(cs->e);
    int64_t now_s = (now_ms ? now_ms : hr_time_now_ms()) / 1000;
    hr_buf_puts(out, "{\"campaigns\":[");
    pthread_mutex_lock(&cs->mu);
    for (int i = 0; i < cat->ncampaigns; i++) {
        const hr_campaign *cp = &cat->campaigns[i];
        int64_t exp = 0, conv = 0;
        for (int v = 0; v < cp->nvariants; v++) {
            vcount *vc = count_get(cs, cp->key, cp->variants[v].key);
            if (vc) exp += vc->exposures, conv += vc->conversions;
        }
        const char *status = (cp->ends_at && now_s >= cp->ends_at) ? "ended"
                             : (cp->starts_at && now_s < cp->starts_at) ? "scheduled" : "active";
        if (i) hr_buf_putc(out, ',');
        hr_buf_puts(out, "{\"id\":");
        hr_buf_json_str(out, cp->key);
        hr_buf_puts(out, ",\"status\":");
        hr_buf_json_str(out, status);
        hr_buf_puts(out, ",\"trigger\":");
        char tr[300];
        snprintf(tr, sizeof tr, "%s%s%s", trig_names[cp->trigger], cp->trigger_arg ? ":" : "",
                 cp->trigger_arg ? cp->trigger_arg : "");
        hr_buf_json_str(out, tr);
        hr_buf_printf(out, ",\"priority\":%d,\"variants\":%d,\"exposures\":%lld,\"conversions\":%lld}",
                      cp->priority, cp->nvariants, (long long)exp, (long long)conv);
    }
    pthread_mutex_unlock(&cs->mu);
    hr_buf_puts(out, "]}");
    hr_catalog_release(cat);
    return 0;
}

/* ---- persistence -------------------------------------------------------- */

int hr_campaigns_flush(hr_campaigns *cs, hr_err *err) {
    if (!cs->store) {
        pthread_mutex_lock(&cs->mu);
        for (size_t i = 0; i < cs->ndirty; i++) cs->dirty[i]->dirty = 0;
        cs->ndirty = 0;
        pthread_mutex_unlock(&cs->mu);
        return 0;
    }
    pthread_mutex_lock(&cs->fmu);
    int rc = flush_locked(cs, err);
    pthread_mutex_unlock(&cs->fmu);
    return rc;
}

/* ~200 us of flushing at a time: see hr_time_pace. The store's writer
 * does the same between SQLite steps. */
static void pause_if_long(int64_t *since) { hr_time_pace(since, 200000); }

static int row_cmp(const pstate *x, const pstate *y) {
    int c = strcmp(x->campaign, y->campaign);
    if (c) return c;
    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    return strcmp(x->owner->key, y->owner->key);
}

/* Sorts rows into the table's key order: a merge sort that can pause
 * (tens of thousands of rows take milliseconds). Unsorted when out of
 * memory: slower to write, still right. Campaign, kind and owner never
 * change, so this needs no mutex. */
static void sort_rows(pstate **a, size_t n, int64_t *since) {
    pstate **tmp = n > 1 ? malloc(n * sizeof *tmp) : NULL, **src = a, **dst = tmp;
    if (!tmp) return;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                dst[k++] = row_cmp(src[i], src[j]) <= 0 ? src[i++] : src[j++];
                if (!(k & 1023)) pause_if_long(since);
            }
            while (i < mid) dst[k++] = src[i++];
            while (j < hi) dst[k++] = src[j++];
        }
        pstate **t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, n * sizeof *a);
    free(tmp);
}

/* A row's record for the store, its texts in one block (*block, the
 * caller frees): one allocation a row, not five. Under mu. */
static int copy_row(const pstate *p, hr_prompt_rec *r, char **block) {
    char shows[HR_MAX_CAP * 21 + 1];
    size_t off = 0;
    shows[0] = 0;
    for (int k = 0; k < p->nshows; k++)
        off += (size_t)snprintf(shows + off, sizeof shows - off, "%s%lld", k ? "," : "",
                                (long long)p->shows[k]);
    size_t lc = strlen(p->campaign) + 1, lk = strlen(p->owner->key) + 1,
           lv = strlen(p->variant) + 1, la = p->account ? strlen(p->account) + 1 : 0;
    char *b = *block = malloc(lc + lk + lv + la + off + 1);
    if (!b) return HR_ENOMEM;
    *r = (hr_prompt_rec){.kind = p->kind, .first_ms = p->first_ms,
                         .dismissed_ms = p->dismissed_ms, .answered_ms = p->answered_ms,
                         .converted_ms = p->converted_ms};
    r->campaign = memcpy(b, p->campaign, lc), b += lc;
    r->key = memcpy(b, p->owner->key, lk), b += lk;
    r->variant = p->variant[0] ? memcpy(b, p->variant, lv) : NULL, b += lv;
    r->account = la ? memcpy(b, p->account, la) : NULL, b += la;
    r->shows = memcpy(b, shows, off + 1);
    return 0;
}

/* Rows are copied under the mutex and written outside it, so requests never
 * wait on the disk; the copy takes the mutex for a few hundred rows at a
 * time, so that a burst of shows (tens of thousands of rows a second)
 * does not hold requests up for milliseconds either. fmu, held by the
 * caller, makes the store connection one thread's at a time and keeps
 * flushes in order: rows reach the disk in the order they were copied, and
 * a row changed again after its copy is dirty again and goes with the next
 * flush. */
static int flush_locked(hr_campaigns *cs, hr_err *err) {
    enum { CHUNK = 256, BATCH = 1024 };
    pthread_mutex_lock(&cs->mu);
    /* the list is ours; its rows stay marked dirty (and so are not listed
     * again) until copied, and a change before the copy goes with it */
    size_t n = cs->ndirty;
    pstate **rows = cs->dirty;
    cs->dirty = NULL;
    cs->ndirty = cs->capdirty = 0;
    pthread_mutex_unlock(&cs->mu);
    if (!n) {
        free(rows);
        return 0;
    }
    /* in the table's key order: neighbouring rows share B-tree pages, so
     * each batch below dirties few of them */
    int64_t since = hr_time_mono_ns();
    sort_rows(rows, n, &since);
    hr_prompt_rec *recs = calloc(n, sizeof *recs);
    char **texts = calloc(n, sizeof *texts);
    size_t ncopied = 0;
    int rc = recs && texts ? 0 : HR_ENOMEM;
    while (!rc && ncopied < n) {
        pthread_mutex_lock(&cs->mu);
        size_t end = ncopied + CHUNK < n ? ncopied + CHUNK : n;
        for (size_t i = ncopied; i < end; i++) {
            if ((rc = copy_row(rows[i], &recs[i], &texts[i]))) break;
            rows[i]->dirty = 0; /* copied: clean until it changes again */
            ncopied++;
        }
        pthread_mutex_unlock(&cs->mu);
        pause_if_long(&since);
    }
    /* a transaction per BATCH rows, so that none takes the store (and the
     * core the requests share) for long */
    size_t written = 0;
    if (rc)
        rc = hr_err_set(err, HR_ENOMEM, "out of memory");
    while (!rc && written < n) {
        int k = n - written < BATCH ? (int)(n - written) : BATCH;
        pause_if_long(&since);
        rc = cs->store->ops->put_prompts(cs->store, recs + written, k, err);
        if (!rc) written += (size_t)k;
    }
    if (rc) { /* not written: dirty again, for the next flush */
        pthread_mutex_lock(&cs->mu);
        for (size_t i = written; i < n; i++) {
            if (i >= ncopied) rows[i]->dirty = 0; /* never copied, so on no list */
            mark(cs, rows[i]); /* a no-op for a row changed (and listed) since */
        }
        pthread_mutex_unlock(&cs->mu);
    }
    for (size_t i = 0; texts && i < n; i++) {
        free(texts[i]);
        if (!(i & 1023)) pause_if_long(&since);
    }
    free(texts);
    free(recs);
    free(rows);
    return rc;
}

static int load_state(void *ud, const hr_prompt_rec *r) {
    hr_campaigns *cs = ud;
    if (r->kind != K_USER && r->kind != K_UNIT) return 0; /* migration 5's throttle rows */
    pstate *p = state_get(cs, r->campaign, r->kind, r->key, 1);
    if (!p) return HR_ENOMEM;
    snprintf(p->variant, sizeof p->variant, "%s", r->variant ? r->variant : "");
    free(p->account);
    p->account = NULL;
    if (r->account && !(p->account = strdup(r->account))) return HR_ENOMEM;
    p->first_ms = r->first_ms;
    p->dismissed_ms = r->dismissed_ms;
    p->answered_ms = r->answered_ms;
    p->converted_ms = r->converted_ms;
    parse_shows(p, r->shows);
    /* the user's throttle: every campaign's shows */
    for (int i = 0; r->kind == K_USER && i < p->nshows; i++)
        merge_show(p->owner->shows, &p->owner->nshows, p->shows[i]);
    if (r->kind == K_UNIT && p->variant[0]) {
        vcount *vc = count_get(cs, r->campaign, p->variant);
        if (!vc) return HR_ENOMEM;
        vc->exposures++;
        vc->conversions += p->converted_ms != 0;
    }
    return 0;
}

static int load_counts(void *ud, const char *campaign, const char *variant, const char *type,
                       int64_t n) {
    hr_campaigns *cs = ud;
    vcount *vc = count_get(cs, campaign, variant);
    if (!vc) return HR_ENOMEM;
    if (!strcmp(type, "impression")) vc->impressions += n;
    else if (!strcmp(type, "click")) vc->clicks += n;
    else if (!strcmp(type, "dismiss")) vc->dismissals += n;
    else if (!strcmp(type, "trial_started")) vc->trials += n;
    else if (!strcmp(type, "converted")) vc->converted += n;
    return 0;
}

/* The background flush: once a second, at nice 10, so that a burst of
 * first shows does not take the request threads' core. */
static void *flusher(void *arg) {
    hr_campaigns *cs = arg;
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    prctl(PR_SET_TIMERSLACK, 1000UL); /* its pauses (hr_time_pace) end on time */
    pthread_mutex_lock(&cs->tmu);
    while (!cs->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&cs->tcv, &cs->tmu, &ts);
        if (cs->stop) break;
        pthread_mutex_unlock(&cs->tmu);
        hr_err err = {0};
        hr_campaigns_flush(cs, &err); /* a failure keeps the rows dirty: the next one retries */
        pthread_mutex_lock(&cs->tmu);
    }
    pthread_mutex_unlock(&cs->tmu);
    return NULL;
}

int hr_campaigns_start(hr_campaigns *cs, hr_err *err) {
    if (pthread_create(&cs->th, NULL, flusher, cs))
        return hr_err_set(err, HR_EINTERNAL, "cannot start the campaigns flush thread");
    cs->started = 1;
    return 0;
}

int hr_campaigns_new(hr_engine *e, hr_store *store, hr_campaigns **out, hr_err *err) {
    hr_campaigns *cs = calloc(1, sizeof *cs);
    int rc = 0;
    *out = NULL;
    if (!cs || gmap_init(&cs->keys, 1024) || !(cs->counts = hr_map_new(64))) {
        rc = hr_err_set(err, HR_ENOMEM, "out of memory");
        goto fail;
    }
    cs->e = e;
    cs->store = store;
    pthread_mutex_init(&cs->mu, NULL);
    pthread_mutex_init(&cs->fmu, NULL);
    pthread_mutex_init(&cs->tmu, NULL);
    pthread_cond_init(&cs->tcv, NULL);
    if (store && (rc = store->ops->load_prompts(store, load_state, load_counts, cs, err))) {
        if (rc == HR_ENOMEM) hr_err_set(err, HR_ENOMEM, "out of memory loading campaign state");
        goto fail;
    }
    if (hr_engine_add_ingest_hook(e, on_ingested, cs)) {
        rc = hr_err_set(err, HR_ENOMEM, "too many ingest hooks");
        cs->e = NULL;
        goto fail;
    }
    *out = cs;
    return 0;
fail:
    hr_campaigns_free(cs);
    return rc;
}

void hr_campaigns_free(hr_campaigns *cs) {
    if (!cs) return;
    if (cs->started) {
        pthread_mutex_lock(&cs->tmu);
        cs->stop = 1;
        pthread_cond_signal(&cs->tcv);
        pthread_mutex_unlock(&cs->tmu);
        pthread_join(cs->th, NULL);
        hr_err ignore = {0};
        hr_campaigns_flush(cs, &ignore); /* what the last second showed */
    }
    if (cs->e) hr_engine_remove_ingest_hook(cs->e, on_ingested, cs);
    size_t pos = 0;
    const char *k;
    void *v;
    /* every key once: cur's, then those of a table still being moved */
    for (int t = 0; t < 2; t++) {
        hr_map *m = t ? cs->keys.old : cs->keys.cur;
        for (pos = 0; m && hr_map_next(m, &pos, &k, &v);) {
            if (t && hr_map_get(cs->keys.cur, k)) continue;
            pkey *pk = v;
            for (pstate *p = pk->rows, *nx; p; p = nx) {
                nx = p->next;
                free(p->account);
                free(p);
            }
            free(pk);
        }
    }
    hr_map_free(cs->keys.cur);
    hr_map_free(cs->keys.old);
    pos = 0;
    while (cs->counts && hr_map_next(cs->counts, &pos, &k, &v)) free(v);
    hr_map_free(cs->counts);
    tindex_free(cs->tix);
    free(cs->dirty);
    if (cs->e) {
        pthread_mutex_destroy(&cs->mu);
        pthread_mutex_destroy(&cs->fmu);
        pthread_mutex_destroy(&cs->tmu);
        pthread_cond_destroy(&cs->tcv);
    }
    free(cs);
}
