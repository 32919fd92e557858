/* campaigns.c: which prompt to show now, and what happened to it.
 *
 * A request for prompts first asks the engine, under its read lock, which
 * campaigns with a matching trigger the account and user qualify for
 * (audience and gate rules); then, under this module's mutex, walks them in
 * priority order through the per-user rules (dismissed within the cooldown,
 * already answered, frequency cap) and the global throttle, assigns the
 * experiment variant and records the exposure. A unit assigned to the
 * holdout is exposed exactly where a prompt would have been shown, and the
 * walk goes on as if nothing had been shown. All state is keyed by strings
 * (campaign key, user, unit) so it survives catalog reloads; the variant a
 * unit saw first is kept, so reweighting does not move exposed units. */
#include "campaigns.h"

#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

enum { K_USER = 0, K_UNIT = 1, K_THROTTLE = 2 };
#define CLOCK_GRACE_MS 2000

/* One state row (see hr_prompt_rec); campaign and key point into name. */
typedef struct pstate {
    int kind;
    int dirty;
    char variant[72];
    char *account;
    int64_t first_ms, dismissed_ms, answered_ms, converted_ms;
    int nshows;
    int64_t shows[HR_MAX_CAP]; /* newest last */
    const char *key;   /* points into name */
    char name[]; /* "campaign\x1f" kind "\x1f" key: the map key */
} pstate;

/* Counts per (campaign, variant). */
typedef struct vcount {
    int64_t exposures, conversions;
    int64_t impressions, clicks, dismissals, trials, converted;
    char name[]; /* "campaign\x1fvariant" */
} vcount;

struct hr_campaigns {
    hr_engine *e;
    hr_store *store;
    pthread_mutex_t mu;
    pthread_mutex_t fmu; /* the store connection: one thread at a time, flushes in order */
    pthread_t th;        /* the background flush (hr_campaigns_start) */
    pthread_mutex_t tmu;
    pthread_cond_t tcv;
    int started, stop;
    hr_map *state;  /* name -> pstate */
    hr_map *counts; /* name -> vcount */
    pstate **dirty;
    size_t ndirty, capdirty;
};

/* ---- state -------------------------------------------------------------- */

static pstate *state_get(hr_campaigns *cs, const char *campaign, int kind, const char *key,
                         int create) {
    char name[512];
    int n = snprintf(name, sizeof name, "%s\x1f%d\x1f%s", campaign, kind, key);
    if (n < 0 || (size_t)n >= sizeof name) return NULL;
    pstate *p = hr_map_get(cs->state, name);
    if (p || !create) return p;
    if (!(p = calloc(1, sizeof *p + (size_t)n + 1))) return NULL;
    memcpy(p->name, name, (size_t)n + 1);
    p->kind = kind;
    p->key = strchr(strchr(p->name, '\x1f') + 1, '\x1f') + 1;
    int err = 0;
    hr_map_put(cs->state, p->name, p, &err);
    if (err) {
        free(p);
        return NULL;
    }
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

/* Shows within the last `per` ms. */
static int shows_since(const pstate *p, int64_t now, int64_t per_ms) {
    int n = 0;
    for (int i = 0; i < p->nshows; i++) n += p->shows[i] > now - per_ms;
    return n;
}

static void add_show(pstate *p, int64_t now) {
    if (p->nshows == HR_MAX_CAP) {
        memmove(p->shows, p->shows + 1, (HR_MAX_CAP - 1) * sizeof p->shows[0]);
        p->nshows--;
    }
    p->shows[p->nshows++] = now;
}

/* Inserts a show time in order, keeping the newest HR_MAX_CAP. */
static void merge_show(pstate *p, int64_t at) {
    int i = p->nshows;
    if (i == HR_MAX_CAP) {
        if (at <= p->shows[0]) return;
        memmove(p->shows, p->shows + 1, (HR_MAX_CAP - 1) * sizeof p->shows[0]);
        i = --p->nshows;
    }
    while (i > 0 && p->shows[i - 1] > at) {
        p->shows[i] = p->shows[i - 1];
        i--;
    }
    p->shows[i] = at;
    p->nshows++;
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

static int trigger_matches(const hr_campaign *cp, const trig *t, const char *page) {
    if (t->any || t->kind == HR_TRIG_ON_LOAD || t->kind == HR_TRIG_PAGE) {
        if (cp->trigger == HR_TRIG_ON_LOAD) return 1;
        if (cp->trigger == HR_TRIG_PAGE)
            return page && cp->trigger_arg && fnmatch(cp->trigger_arg, page, 0) == 0;
        return 0;
    }
    if (cp->trigger != t->kind) {
        /* a denied feature is also the moment for a campaign on its element */
        if (!(cp->trigger == HR_TRIG_ELEMENT && t->kind == HR_TRIG_FEATURE_DENIED)) return 0;
    }
    return cp->trigger_arg && t->arg && !strcmp(cp->trigger_arg, t->arg);
}

#define MAX_CANDIDATES 256

typedef struct pick {
    const trig *t;
    const char *page;
    int64_t now_ms;
    int n;
    int ix[MAX_CANDIDATES]; /* campaigns whose trigger, dates and rules pass */
} pick;

/* Under the engine's read lock: trigger, dates, audience and gate. */
static int eligible(void *ud, const hr_catalog *cat, const hr_rule_env *env, void *ctx) {
    pick *pk = ud;
    int64_t now_s = pk->now_ms / 1000;
    for (int i = 0; i < cat->ncampaigns && pk->n < MAX_CANDIDATES; i++) {
        const hr_campaign *cp = &cat->campaigns[i];
        if (cp->starts_at && now_s < cp->starts_at) continue;
        if (cp->ends_at && now_s >= cp->ends_at) continue;
        if (!trigger_matches(cp, pk->t, pk->page)) continue;
        if (cp->audience && !hr_rule_test(cp->audience, env, ctx, pk->now_ms)) continue;
        if (cp->gate && !hr_rule_test(cp->gate, env, ctx, pk->now_ms)) continue;
        pk->ix[pk->n++] = i;
    }
    return 0;
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

int hr_campaigns_prompts(hr_campaigns *cs, const hr_prompt_req *q, hr_buf *out, hr_err *err) {
    trig t;
    pick *pk = NULL;
    hr_catalog *cat = NULL;
    int rc = 0, shown = 0;
    if (!q->account) return hr_err_set(err, HR_EINVAL, "account is required");
    if (parse_trigger(q->trigger, &t))
        return hr_err_set(err, HR_EINVAL,
                          "trigger must be on_load, page, feature_denied:F, limit_hit:F, "
                          "event:E or element:F");
    if (!(pk = calloc(1, sizeof *pk))) return hr_err_set(err, HR_ENOMEM, "out of memory");
    pk->t = &t;
    pk->page = q->page;
    pk->now_ms = q->now_ms ? q->now_ms : hr_time_now_ms();
    rc = hr_engine_with_rules(cs->e, q->account, q->user, pk->now_ms, eligible, pk);
    if (rc == HR_ENOTFOUND) {
        rc = hr_err_set(err, HR_ENOTFOUND, "no account '%s'", q->account);
        goto out;
    }
    if (rc) {
        rc = hr_err_set(err, rc, "evaluating campaign rules failed");
        goto out;
    }
    /* the snapshot the candidates came from (a reload in between would
     * only shift indexes: check the keys) */
    cat = hr_engine_catalog(cs->e);
    hr_buf_putc(out, '[');
    int64_t now = pk->now_ms;
    pthread_mutex_lock(&cs->mu);
    pstate *thr = q->user && cat->throttle_n ? state_get(cs, "", K_THROTTLE, q->user, 0) : NULL;
    for (int k = 0; k < pk->n && shown < cat->max_prompts; k++) {
        if (pk->ix[k] >= cat->ncampaigns) break;
        const hr_campaign *cp = &cat->campaigns[pk->ix[k]];
        /* looked up, not created: most candidates are never shown */
        pstate *us = q->user ? state_get(cs, cp->key, K_USER, q->user, 0) : NULL;
        if (us) {
            if (us->answered_ms) continue;
            if (us->dismissed_ms && (!cp->cooldown || now - us->dismissed_ms < cp->cooldown * 1000))
                continue;
            if (cp->cap_n && shows_since(us, now, cp->cap_per * 1000) >= cp->cap_n) continue;
        }
        if (thr && shows_since(thr, now, cat->throttle_per * 1000) >= cat->throttle_n) break;
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
            add_show(us, now);
            mark(cs, us);
        }
        /* the throttle's shows are the union of the user's shows in every
         * campaign: kept in memory only, rebuilt from those rows at load */
        if (q->user && cat->throttle_n &&
            (thr || (thr = state_get(cs, "", K_THROTTLE, q->user, 1))))
            add_show(thr, now);
        char trig_s[300];
        if (t.any || t.kind == HR_TRIG_ON_LOAD || t.kind == HR_TRIG_PAGE)
            snprintf(trig_s, sizeof trig_s, "%s", cp->trigger == HR_TRIG_PAGE ? "page" : "on_load");
        else
            snprintf(trig_s, sizeof trig_s, "%s", q->trigger);
        if (shown++) hr_buf_putc(out, ',');
        prompt_json(out, cat, cp, va, trig_s, q->locale);
    }
    pthread_mutex_unlock(&cs->mu);
    hr_buf_putc(out, ']');
out:
    hr_catalog_release(cat);
    free(pk);
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

/* Rows are copied under the mutex and written outside it, so requests never
 * wait on the disk. fmu, held by the caller, makes the store connection one
 * thread's at a time and keeps flushes in order: rows reach the disk in the
 * order they were copied, and a row changed again meanwhile is dirty again
 * and goes with the next flush. */
static int flush_locked(hr_campaigns *cs, hr_err *err) {
    enum { T_CAMPAIGN, T_KEY, T_SHOWS, T_VARIANT, T_ACCOUNT, NT };
    pthread_mutex_lock(&cs->mu);
    size_t n = cs->ndirty;
    hr_prompt_rec *recs = n ? calloc(n, sizeof *recs) : NULL;
    char **texts = n ? calloc(n * NT, sizeof *texts) : NULL;
    if (n && (!recs || !texts)) {
        pthread_mutex_unlock(&cs->mu);
        free(recs);
        free(texts);
        return hr_err_set(err, HR_ENOMEM, "out of memory");
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        pstate *p = cs->dirty[i];
        char shows[HR_MAX_CAP * 21 + 1], **t = texts + NT * i;
        size_t off = 0;
        shows[0] = 0;
        for (int k = 0; k < p->nshows; k++)
            off += (size_t)snprintf(shows + off, sizeof shows - off, "%s%lld", k ? "," : "",
                                    (long long)p->shows[k]);
        t[T_CAMPAIGN] = strndup(p->name, strcspn(p->name, "\x1f"));
        t[T_KEY] = strdup(p->key);
        t[T_SHOWS] = strdup(shows);
        t[T_VARIANT] = p->variant[0] ? strdup(p->variant) : NULL;
        t[T_ACCOUNT] = p->account ? strdup(p->account) : NULL;
        if (!t[T_CAMPAIGN] || !t[T_KEY] || !t[T_SHOWS] || (p->variant[0] && !t[T_VARIANT]) ||
            (p->account && !t[T_ACCOUNT]))
            rc = HR_ENOMEM;
        recs[i] = (hr_prompt_rec){t[T_CAMPAIGN], p->kind, t[T_KEY], t[T_VARIANT], t[T_ACCOUNT],
                                  p->first_ms, p->dismissed_ms, p->answered_ms, p->converted_ms,
                                  t[T_SHOWS]};
    }
    if (!rc) { /* copied: clean until they change again */
        for (size_t i = 0; i < n; i++) cs->dirty[i]->dirty = 0;
        cs->ndirty = 0;
    }
    pthread_mutex_unlock(&cs->mu);
    if (rc)
        rc = hr_err_set(err, HR_ENOMEM, "out of memory");
    else if (n)
        rc = cs->store->ops->put_prompts(cs->store, recs, (int)n, err);
    if (rc && n && recs[0].campaign) {
        /* not written: dirty again, for the next flush */
        pthread_mutex_lock(&cs->mu);
        for (size_t i = 0; i < n; i++) {
            if (!recs[i].campaign || !recs[i].key) continue;
            pstate *p = state_get(cs, recs[i].campaign, recs[i].kind, recs[i].key, 0);
            if (p) mark(cs, p);
        }
        pthread_mutex_unlock(&cs->mu);
    }
    for (size_t i = 0; i < n * NT; i++) free(texts[i]);
    free(texts);
    free(recs);
    return rc;
}

static int load_state(void *ud, const hr_prompt_rec *r) {
    hr_campaigns *cs = ud;
    pstate *p = state_get(cs, r->campaign, r->kind, r->key, 1);
    if (!p) return HR_ENOMEM;
    snprintf(p->variant, sizeof p->variant, "%s", r->variant ? r->variant : "");
    if (r->account && !(p->account = strdup(r->account))) return HR_ENOMEM;
    p->first_ms = r->first_ms;
    p->dismissed_ms = r->dismissed_ms;
    p->answered_ms = r->answered_ms;
    p->converted_ms = r->converted_ms;
    parse_shows(p, r->shows);
    if (r->kind == K_USER && p->nshows) { /* the user's throttle: every campaign's shows */
        pstate *t = state_get(cs, "", K_THROTTLE, r->key, 1);
        if (!t) return HR_ENOMEM;
        for (int i = 0; i < p->nshows; i++) merge_show(t, p->shows[i]);
    }
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
    if (!cs || !(cs->state = hr_map_new(1024)) || !(cs->counts = hr_map_new(64))) {
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
    while (cs->state && hr_map_next(cs->state, &pos, &k, &v)) {
        pstate *p = v;
        free(p->account);
        free(p);
    }
    pos = 0;
    while (cs->counts && hr_map_next(cs->counts, &pos, &k, &v)) free(v);
    hr_map_free(cs->state);
    hr_map_free(cs->counts);
    free(cs->dirty);
    if (cs->e) {
        pthread_mutex_destroy(&cs->mu);
        pthread_mutex_destroy(&cs->fmu);
        pthread_mutex_destroy(&cs->tmu);
        pthread_cond_destroy(&cs->tcv);
    }
    free(cs);
}
