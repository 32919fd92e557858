/* emit.c: the catalog as canonical JSON (GET /v1/catalog, and the input of
 * the catalog hash).
 *
 * The output is itself a valid catalog: feeding it back to hr_catalog_parse
 * gives the same content and so the same hash. That is why optional fields
 * are omitted rather than written as null, a contact_sales plan has no
 * price, and older plan versions spell out their full entitlements with
 * null for "not in this version". Keys come out in catalog order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "catalog.h"
#include "catalog_int.h"

void hr_price_fmt(int64_t micros, char *buf, size_t n) {
    const char *sign = micros < 0 ? "-" : "";
    uint64_t u = micros < 0 ? (uint64_t)0 - (uint64_t)micros : (uint64_t)micros;
    uint64_t whole = u / (uint64_t)HR_MICROS, frac = u % (uint64_t)HR_MICROS;
    if (!frac) {
        snprintf(buf, n, "%s%llu", sign, (unsigned long long)whole);
        return;
    }
    char f[8];
    snprintf(f, sizeof f, "%06llu", (unsigned long long)frac);
    for (int i = 5; i > 0 && f[i] == '0'; i--) f[i] = 0;
    snprintf(buf, n, "%s%llu.%s", sign, (unsigned long long)whole, f);
}

/* Starts member k of the object being written: a comma before all but the
 * first (*n counts the members written so far). */
static void member(hr_buf *b, int *n, const char *k) {
    if ((*n)++) hr_buf_putc(b, ',');
    hr_buf_json_key(b, k);
}

static void price(hr_buf *b, int *n, const char *key, int64_t micros) {
    char tmp[40];
    hr_price_fmt(micros, tmp, sizeof tmp);
    member(b, n, key);
    hr_buf_puts(b, tmp);
}

static void str(hr_buf *b, int *n, const char *key, const char *s) {
    member(b, n, key);
    hr_buf_json_str(b, s);
}

static void i64(hr_buf *b, int *n, const char *key, int64_t v) {
    member(b, n, key);
    hr_buf_i64(b, v);
}

static void ent_value(hr_buf *b, const hr_feature *f, int64_t v) {
    if (v == HR_ENT_NONE)
        hr_buf_puts(b, "null");
    else if (f->type == HR_FEAT_BOOLEAN)
        hr_buf_puts(b, v ? "true" : "false");
    else if (v == HR_UNLIMITED)
        hr_buf_json_str(b, "unlimited");
    else
        hr_buf_i64(b, v);
}

/* cur is NULL for the current version; for an older one, features it lacks
 * but the current has are written as null so they are not inherited back. */
static void entitlements(hr_buf *b, int *n, const hr_catalog *c, const int64_t *ent,
                         const int64_t *cur) {
    int m = 0;
    member(b, n, "entitlements");
    hr_buf_putc(b, '{');
    for (int i = 0; i < c->nfeatures; i++) {
        if (ent[i] == HR_ENT_NONE && (!cur || cur[i] == HR_ENT_NONE)) continue;
        member(b, &m, c->features[i].key);
        ent_value(b, &c->features[i], ent[i]);
    }
    hr_buf_putc(b, '}');
}

static void where_num(hr_buf *b, double v);

static void thresholds(hr_buf *b, int *n, const char *key, const double *t, int nt) {
    member(b, n, key);
    hr_buf_putc(b, '[');
    for (int i = 0; i < nt; i++) {
        if (i) hr_buf_putc(b, ',');
        where_num(b, t[i]);
    }
    hr_buf_putc(b, ']');
}

static void features(hr_buf *b, int *n, const hr_catalog *c) {
    static const char *const per[] = {"month", "day", "week", "month", "year"};
    int m = 0;
    member(b, n, "features");
    hr_buf_putc(b, '{');
    for (int i = 0; i < c->nfeatures; i++) {
        const hr_feature *f = &c->features[i];
        int k = 0;
        member(b, &m, f->key);
        hr_buf_putc(b, '{');
        str(b, &k, "name", f->name);
        str(b, &k, "type", hr_feature_type_str(f->type));
        if (f->unit) str(b, &k, "unit", f->unit);
        if (f->type == HR_FEAT_METERED) str(b, &k, "period", per[f->period]);
        if (f->has_overage) {
            int o = 0;
            member(b, &k, "overage");
            hr_buf_putc(b, '{');
            price(b, &o, "price", f->overage_price);
            hr_buf_putc(b, '}');
        }
        if (f->meter) str(b, &k, "meter", f->meter);
        if (f->own_thresholds) thresholds(b, &k, "thresholds", f->thresholds, f->nthresholds);
        hr_buf_putc(b, '}');
    }
    hr_buf_putc(b, '}');
}

/* A where literal number: integers as such, others in the fewest digits
 * that read back as the same double. */
static void where_num(hr_buf *b, double v) {
    char tmp[40];
    if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v) {
        snprintf(tmp, sizeof tmp, "%.0f", v);
    } else {
        for (int p = 1; p <= 17; p++) {
            snprintf(tmp, sizeof tmp, "%.*g", p, v);
            if (strtod(tmp, NULL) == v) break;
        }
    }
    hr_buf_puts(b, tmp);
}

/* The canonical text of a where: normalised paths, " && " between clauses,
 * strings double-quoted; it parses back to the same clauses. */
static void where_str(hr_buf *b, const hr_meter *m) {
    static const char *const ops[] = {"==", "!=", "<", "<=", ">", ">="};
    for (int i = 0; i < m->nwhere; i++) {
        const hr_where *w = &m->where[i];
        if (i) hr_buf_puts(b, " && ");
        hr_buf_puts(b, w->path);
        hr_buf_putc(b, ' ');
        hr_buf_puts(b, ops[w->op]);
        hr_buf_putc(b, ' ');
        if (w->is_number) {
            where_num(b, w->number);
            continue;
        }
        hr_buf_putc(b, '"');
        for (const char *p = w->string; *p; p++) {
            if (*p == '"' || *p == '\\') hr_buf_putc(b, '\\');
            hr_buf_putc(b, *p);
        }
        hr_buf_putc(b, '"');
    }
}

/* Only written when there are meters, so catalogs without them keep the
 * hash they had before meters existed. */
static void meters(hr_buf *b, int *n, const hr_catalog *c) {
    static const char *const aggs[] = {"count", "sum", "max", "unique", "latest"};
    static const char *const per[] = {"month", "day",  "week",         "month",
                                      "year",  "billing_cycle", "lifetime"};
    int m = 0;
    if (!c->nmeters) return;
    member(b, n, "meters");
    hr_buf_putc(b, '{');
    for (int i = 0; i < c->nmeters; i++) {
        const hr_meter *mt = &c->meters[i];
        int k = 0;
        member(b, &m, mt->key);
        hr_buf_putc(b, '{');
        str(b, &k, "event", mt->event);
        str(b, &k, "aggregate", aggs[mt->aggregate]);
        if (mt->property) str(b, &k, "property", mt->property);
        str(b, &k, "period", per[mt->period]);
        if (mt->nwhere) {
            hr_buf w;
            hr_buf_init(&w);
            where_str(&w, mt);
            member(b, &k, "where");
            if (hr_buf_failed(&w) || !w.data)
                b->failed = 1; /* sticky, like the buffer's own failures */
            else
                hr_buf_json_str(b, w.data);
            hr_buf_dispose(&w);
        }
        hr_buf_putc(b, '}');
    }
    hr_buf_putc(b, '}');
}

static void plans(hr_buf *b, int *n, const hr_catalog *c) {
    int m = 0;
    member(b, n, "plans");
    hr_buf_putc(b, '{');
    for (int i = 0; i < c->nplans; i++) {
        const hr_plan *p = &c->plans[i];
        const hr_plan_version *cur = &p->versions[p->nversions - 1];
        int k = 0;
        member(b, &m, p->key);
        hr_buf_putc(b, '{');
        str(b, &k, "name", p->name);
        if (!p->contact_sales) price(b, &k, "price", cur->price);
        str(b, &k, "interval", hr_interval_str(cur->interval));
        i64(b, &k, "trial_days", p->trial_days);
        member(b, &k, "contact_sales");
        hr_buf_puts(b, p->contact_sales ? "true" : "false");
        i64(b, &k, "version", cur->version);
        entitlements(b, &k, c, cur->ent, NULL);
        if (p->nversions > 1) {
            int vs = 0;
            member(b, &k, "versions");
            hr_buf_putc(b, '{');
            for (int v = 0; v < p->nversions - 1; v++) {
                const hr_plan_version *pv = &p->versions[v];
                char num[16];
                int f = 0;
                snprintf(num, sizeof num, "%d", pv->version);
                member(b, &vs, num);
                hr_buf_putc(b, '{');
                price(b, &f, "price", pv->price);
                str(b, &f, "interval", hr_interval_str(pv->interval));
                entitlements(b, &f, c, pv->ent, cur->ent);
                hr_buf_putc(b, '}');
            }
            hr_buf_putc(b, '}');
        }
        hr_buf_putc(b, '}');
    }
    hr_buf_putc(b, '}');
}

static void addons(hr_buf *b, int *n, const hr_catalog *c) {
    int m = 0;
    member(b, n, "addons");
    hr_buf_putc(b, '{');
    for (int i = 0; i < c->naddons; i++) {
        const hr_addon *a = &c->addons[i];
        int k = 0, g = 0, all = 1;
        member(b, &m, a->key);
        hr_buf_putc(b, '{');
        str(b, &k, "name", a->name);
        price(b, &k, "price", a->price);
        str(b, &k, "interval", hr_interval_str(a->interval));
        member(b, &k, "grants");
        hr_buf_putc(b, '{');
        for (int f = 0; f < c->nfeatures; f++) {
            if (!a->grants[f]) continue;
            member(b, &g, c->features[f].key);
            if (c->features[f].type == HR_FEAT_BOOLEAN)
                hr_buf_puts(b, "true");
            else
                hr_buf_i64(b, a->grants[f]);
        }
        hr_buf_putc(b, '}');
        for (int p = 0; p < c->nplans; p++) all &= a->plans[p];
        if (!all) {
            int first = 1;
            member(b, &k, "plans");
            hr_buf_putc(b, '[');
            for (int p = 0; p < c->nplans; p++) {
                if (!a->plans[p]) continue;
                if (!first) hr_buf_putc(b, ',');
                first = 0;
                hr_buf_json_str(b, c->plans[p].key);
            }
            hr_buf_putc(b, ']');
        }
        if (a->max_quantity) i64(b, &k, "max_quantity", a->max_quantity);
        hr_buf_putc(b, '}');
    }
    hr_buf_putc(b, '}');
}

static void trials(hr_buf *b, int *n, const hr_catalog *c) {
    int m = 0;
    member(b, n, "feature_trials");
    hr_buf_putc(b, '{');
    for (int f = 0; f < c->nfeatures; f++) {
        int k = 0;
        if (!c->feature_trial_days[f]) continue;
        member(b, &m, c->features[f].key);
        hr_buf_putc(b, '{');
        i64(b, &k, "days", c->feature_trial_days[f]);
        hr_buf_putc(b, '}');
    }
    hr_buf_putc(b, '}');
}

static void overrides(hr_buf *b, int *n, const hr_catalog *c) {
    int m = 0, k = 0;
    member(b, n, "overrides");
    hr_buf_putc(b, '{');
    for (int i = 0; i < c->noverrides; i++) {
        const hr_cat_override *o = &c->overrides[i];
        int v = 0;
        /* Entries of one account are adjacent: they come from one mapping. */
        if (i == 0 || strcmp(c->overrides[i - 1].account, o->account) != 0) {
            if (i) hr_buf_putc(b, '}');
            member(b, &m, o->account);
            hr_buf_putc(b, '{');
            k = 0;
        }
        member(b, &k, c->features[o->feature].key);
        hr_buf_putc(b, '{');
        member(b, &v, "value");
        ent_value(b, &c->features[o->feature], o->value);
        if (o->expires_at) {
            member(b, &v, "expires_at");
            hr_buf_json_time(b, o->expires_at);
        }
        hr_buf_putc(b, '}');
    }
    if (c->noverrides) hr_buf_putc(b, '}');
    hr_buf_putc(b, '}');
}

char *hr_catalog_to_json(const hr_catalog *c) {
    hr_buf b;
    int n = 0;
    if (!c) return NULL;
    hr_buf_init(&b);
    hr_buf_putc(&b, '{');
    str(&b, &n, "currency", c->currency);
    meters(&b, &n, c);
    features(&b, &n, c);
    if (c->nthresholds) thresholds(&b, &n, "usage_thresholds", c->thresholds, c->nthresholds);
    plans(&b, &n, c);
    addons(&b, &n, c);
    trials(&b, &n, c);
    overrides(&b, &n, c);
    /* campaigns and the throttle as written (their rules are source text) */
    if (c->throttle_json) {
        member(&b, &n, "throttle");
        hr_buf_puts(&b, c->throttle_json);
    }
    if (c->campaigns_json) {
        member(&b, &n, "campaigns");
        hr_buf_puts(&b, c->campaigns_json);
    }
    const char *raw[][2] = {{"teams", c->teams_json}, {"playbooks", c->playbooks_json},
                            {"scoring", c->scoring_json}, {"webhooks", c->webhooks_json}};
    for (int i = 0; i < 4; i++)
        if (raw[i][1]) {
            member(&b, &n, raw[i][0]);
            hr_buf_puts(&b, raw[i][1]);
        }
    hr_buf_putc(&b, '}');
    if (hr_buf_failed(&b)) {
        hr_buf_dispose(&b);
        return NULL;
    }
    return hr_buf_steal(&b, NULL);
}
