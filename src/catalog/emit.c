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

static void price(hr_buf *b, const char *key, int64_t micros) {
    char tmp[40];
    hr_price_fmt(micros, tmp, sizeof tmp);
    hr_buf_json_key(b, key);
    hr_buf_puts(b, tmp);
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
static void entitlements(hr_buf *b, const hr_catalog *c, const int64_t *ent, const int64_t *cur) {
    int first = 1;
    hr_buf_json_key(b, "entitlements");
    hr_buf_putc(b, '{');
    for (int i = 0; i < c->nfeatures; i++) {
        if (ent[i] == HR_ENT_NONE && (!cur || cur[i] == HR_ENT_NONE)) continue;
        if (!first) hr_buf_putc(b, ',');
        first = 0;
        hr_buf_json_key(b, c->features[i].key);
        ent_value(b, &c->features[i], ent[i]);
    }
    hr_buf_putc(b, '}');
}

static void features(hr_buf *b, const hr_catalog *c) {
    hr_buf_json_key(b, "features");
    hr_buf_putc(b, '{');
    for (int i = 0; i < c->nfeatures; i++) {
        const hr_feature *f = &c->features[i];
        if (i) hr_buf_putc(b, ',');
        hr_buf_json_key(b, f->key);
        hr_buf_putc(b, '{');
        hr_buf_json_key(b, "name");
        hr_buf_json_str(b, f->name);
        hr_buf_putc(b, ',');
        hr_buf_json_key(b, "type");
        hr_buf_json_str(b, hr_feature_type_str(f->type));
        if (f->unit) {
            hr_buf_putc(b, ',');
            hr_buf_json_key(b, "unit");
            hr_buf_json_str(b, f->unit);
        }
        if (f->type == HR_FEAT_METERED) {
            static const char *const per[] = {"month", "day", "week", "month", "year"};
            hr_buf_putc(b, ',');
            hr_buf_json_key(b, "period");
            hr_buf_json_str(b, per[f->period]);
        }
        if (f->has_overage) {
            hr_buf_putc(b, ',');
            hr_buf_json_key(b, "overage");
            hr_buf_putc(b, '{');
            price(b, "price", f->overage_price);
            hr_buf_putc(b, '}');
        }
        if (f->meter) {
            hr_buf_putc(b, ',');
            hr_buf_json_key(b, "meter");
            hr_buf_json_str(b, f->meter);
        }
        hr_buf_putc(b, '}');
    }
    hr_buf_putc(b, '}');
}

static void plans(hr_buf *b, const hr_catalog *c) {
    hr_buf_json_key(b, "plans");
    hr_buf_putc(b, '{');
    for (int i = 0; i < c->nplans; i++) {
        const hr_plan *p = &c->plans[i];
        const hr_plan_version *cur = &p->versions[p->nversions - 1];
        if (i) hr_buf_putc(b, ',');
        hr_buf_json_key(b, p->key);
        hr_buf_putc(b, '{');
        hr_buf_json_key(b, "name");
        hr_buf_json_str(b, p->name);
        hr_buf_putc(b, ',');
        if (!p->contact_sales) {
            price(b, "price", cur->price);
            hr_buf_putc(b, ',');
        }
        hr_buf_json_key(b, "interval");
        hr_buf_json_str(b, hr_interval_str(cur->interval));
        hr_buf_putc(b, ',');
        hr_buf_json_key(b, "trial_days");
        hr_buf_i64(b, p->trial_days);
        hr_buf_putc(b, ',');
        hr_buf_json_key(b, "contact_sales");
        hr_buf_puts(b, p->contact_sales ? "true" : "false");
        hr_buf_putc(b, ',');
        hr_buf_json_key(b, "version");
        hr_buf_i64(b, cur->version);
        hr_buf_putc(b, ',');
        entitlements(b, c, cur->ent, NULL);
        if (p->nversions > 1) {
            hr_buf_putc(b, ',');
            hr_buf_json_key(b, "versions");
            hr_buf_putc(b, '{');
            for (int v = 0; v < p->nversions - 1; v++) {
                const hr_plan_version *pv = &p->versions[v];
                char num[16];
                snprintf(num, sizeof num, "%d", pv->version);
                if (v) hr_buf_putc(b, ',');
                hr_buf_json_key(b, num);
                hr_buf_putc(b, '{');
                price(b, "price", pv->price);
                hr_buf_putc(b, ',');
                hr_buf_json_key(b, "interval");
                hr_buf_json_str(b, hr_interval_str(pv->interval));
                hr_buf_putc(b, ',');
                entitlements(b, c, pv->ent, cur->ent);
                hr_buf_putc(b, '}');
            }
            hr_buf_putc(b, '}');
        }
        hr_buf_putc(b, '}');
    }
    hr_buf_putc(b, '}');
}

static void addons(hr_buf *b, const hr_catalog *c) {
    hr_buf_json_key(b, "addons");
    hr_buf_putc(b, '{');
    for (int i = 0; i < c->naddons; i++) {
        const hr_addon *a = &c->addons[i];
        int first = 1, all = 1;
        if (i) hr_buf_putc(b, ',');
        hr_buf_json_key(b, a->key);
        hr_buf_putc(b, '{');
        hr_buf_json_key(b, "name");
        hr_buf_json_str(b, a->name);
        hr_buf_putc(b, ',');
        price(b, "price", a->price);
        hr_buf_putc(b, ',');
        hr_buf_json_key(b, "interval");
        hr_buf_json_str(b, hr_interval_str(a->interval));
        hr_buf_putc(b, ',');
        hr_buf_json_key(b, "grants");
        hr_buf_putc(b, '{');
        for (int f = 0; f < c->nfeatures; f++) {
            if (!a->grants[f]) continue;
            if (!first) hr_buf_putc(b, ',');
            first = 0;
            hr_buf_json_key(b, c->features[f].key);
            if (c->features[f].type == HR_FEAT_BOOLEAN)
                hr_buf_puts(b, "true");
            else
                hr_buf_i64(b, a->grants[f]);
        }
        hr_buf_putc(b, '}');
        for (int p = 0; p < c->nplans; p++) all &= a->plans[p];
        if (!all) {
            first = 1;
            hr_buf_putc(b, ',');
            hr_buf_json_key(b, "plans");
            hr_buf_putc(b, '[');
            for (int p = 0; p < c->nplans; p++) {
                if (!a->plans[p]) continue;
                if (!first) hr_buf_putc(b, ',');
                first = 0;
                hr_buf_json_str(b, c->plans[p].key);
            }
            hr_buf_putc(b, ']');
        }
        if (a->max_quantity) {
            hr_buf_putc(b, ',');
            hr_buf_json_key(b, "max_quantity");
            hr_buf_i64(b, a->max_quantity);
        }
        hr_buf_putc(b, '}');
    }
    hr_buf_putc(b, '}');
}

static void trials(hr_buf *b, const hr_catalog *c) {
    int first = 1;
    hr_buf_json_key(b, "feature_trials");
    hr_buf_putc(b, '{');
    for (int f = 0; f < c->nfeatures; f++) {
        if (!c->feature_trial_days[f]) continue;
        if (!first) hr_buf_putc(b, ',');
        first = 0;
        hr_buf_json_key(b, c->features[f].key);
        hr_buf_putc(b, '{');
        hr_buf_json_key(b, "days");
        hr_buf_i64(b, c->feature_trial_days[f]);
        hr_buf_putc(b, '}');
    }
    hr_buf_putc(b, '}');
}

static void overrides(hr_buf *b, const hr_catalog *c) {
    hr_buf_json_key(b, "overrides");
    hr_buf_putc(b, '{');
    for (int i = 0; i < c->noverrides; i++) {
        const hr_cat_override *o = &c->overrides[i];
        /* Entries of one account are adjacent: they come from one mapping. */
        int open = i == 0 || strcmp(c->overrides[i - 1].account, o->account) != 0;
        if (open) {
            if (i) hr_buf_puts(b, "},");
            hr_buf_json_key(b, o->account);
            hr_buf_putc(b, '{');
        } else {
            hr_buf_putc(b, ',');
        }
        hr_buf_json_key(b, c->features[o->feature].key);
        hr_buf_putc(b, '{');
        hr_buf_json_key(b, "value");
        ent_value(b, &c->features[o->feature], o->value);
        if (o->expires_at) {
            hr_buf_putc(b, ',');
            hr_buf_json_key(b, "expires_at");
            hr_buf_json_time(b, o->expires_at);
        }
        hr_buf_putc(b, '}');
    }
    if (c->noverrides) hr_buf_putc(b, '}');
    hr_buf_putc(b, '}');
}

char *hr_catalog_to_json(const hr_catalog *c) {
    hr_buf b;
    if (!c) return NULL;
    hr_buf_init(&b);
    hr_buf_putc(&b, '{');
    hr_buf_json_key(&b, "currency");
    hr_buf_json_str(&b, c->currency);
    hr_buf_putc(&b, ',');
    features(&b, c);
    hr_buf_putc(&b, ',');
    plans(&b, c);
    hr_buf_putc(&b, ',');
    addons(&b, c);
    hr_buf_putc(&b, ',');
    trials(&b, c);
    hr_buf_putc(&b, ',');
    overrides(&b, c);
    hr_buf_putc(&b, '}');
    if (hr_buf_failed(&b)) {
        hr_buf_dispose(&b);
        return NULL;
    }
    return hr_buf_steal(&b, NULL);
}
