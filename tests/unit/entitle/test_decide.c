/* test_decide.c: the entitlement decision: every reason, the cheapest
 * upgrade (add-on vs plan both ways), overrides and expiry, grandfathered
 * plan versions, trials once per account, soft limits. Time is passed in, so
 * nothing here depends on the clock. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "entitle/engine.h"
#include "events/segment.h"
#include "timeutil.h"
#include "../fixture.h"

static const char yaml[] =
    "currency: USD\n"
    "features:\n"
    "  boards: {type: limit, unit: board}\n"
    "  private_boards: {type: boolean}\n"
    "  seats: {type: limit, unit: seat}\n"
    "  api_calls: {type: metered, unit: call, period: month}\n"
    "  storage_gb: {type: limit, unit: GB, overage: {price: 0.5}}\n"
    "  sso: {type: boolean}\n"
    "plans:\n"
    "  free: {price: 0, entitlements: {boards: 3, private_boards: false, seats: 3, api_calls: 1000, storage_gb: 1}}\n"
    "  pro: {price: 12, interval: month, trial_days: 14, version: 2,\n"
    "        entitlements: {boards: 50, private_boards: true, seats: 10, api_calls: 100000, storage_gb: 10},\n"
    "        versions: {1: {price: 10, entitlements: {boards: 20}}}}\n"
    "  business: {price: 360, interval: year, entitlements: {boards: unlimited, private_boards: true, seats: 50, api_calls: 1000000, storage_gb: 100, sso: true}}\n"
    "  enterprise: {contact_sales: true, entitlements: {boards: unlimited, private_boards: true, seats: unlimited, api_calls: unlimited, storage_gb: unlimited, sso: true}}\n"
    "addons:\n"
    "  extra_boards: {price: 5, interval: month, grants: {boards: 10}, plans: [free, pro], max_quantity: 5}\n"
    "  extra_seats: {price: 25, interval: month, grants: {seats: 5}, plans: [pro, business]}\n"
    "feature_trials:\n"
    "  private_boards: {days: 14}\n"
    "overrides:\n"
    "  vip: {seats: {value: 99}}\n";

typedef struct fx {
    hr_catalog *cat;
    hr_engine *e;
    int64_t now;
} fx;

static int setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    hr_err err;
    if (hr_catalog_parse(yaml, sizeof yaml - 1, "t.yaml", &f->cat, &err, NULL)) {
        fprintf(stderr, "%s:%d:%d: %s\n", err.file, err.line, err.column, err.message);
        return -1;
    }
    f->e = hr_engine_new(f->cat);
    hr_time_parse("2026-11-22T12:00:00Z", &f->now);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    hr_engine_free(f->e);
    hr_catalog_release(f->cat);
    free(f);
    return 0;
}

static void account(fx *f, const char *id, const char *json) { hr_test_put_account(f->e, id, json); }

static hr_verdict check(fx *f, const char *acct, const char *feat, int64_t qty) {
    hr_verdict v;
    hr_engine_check(f->e, acct, feat, qty, f->now, &v);
    return v;
}

/* The full decision as a json-c object (caller puts it). */
static json_object *decide(fx *f, const char *acct, const char *feat, int64_t qty) {
    char *s = NULL;
    assert_int_equal(hr_engine_check_json(f->e, acct, feat, qty, f->now, &s), 0);
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    free(s);
    return o;
}

static const char *jstr(json_object *o, const char *path) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    json_object *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, ".")) {
        json_object *next = NULL;
        if (json_object_is_type(cur, json_type_array))
            next = json_object_array_get_idx(cur, (size_t)atoi(tok));
        else
            json_object_object_get_ex(cur, tok, &next);
        cur = next;
    }
    return cur ? json_object_get_string(cur) : "(missing)";
}

static void reasons_ok_limit_notinplan_unknown(void **state) {
    fx *f = *state;
    account(f, "acme", "{\"plan\":\"free\"}");
    assert_int_equal(hr_engine_usage(f->e, "acme", "boards", 2, 1, NULL), 0);
    hr_verdict v = check(f, "acme", "boards", 1);
    assert_true(v.allowed);
    assert_int_equal(v.reason, HR_REASON_OK);
    assert_int_equal(v.usage, 2);
    assert_int_equal(v.limit, 3);
    assert_int_equal(v.remaining, 1);
    v = check(f, "acme", "boards", 2);
    assert_false(v.allowed);
    assert_int_equal(v.reason, HR_REASON_LIMIT_REACHED);
    v = check(f, "acme", "private_boards", 1);
    assert_false(v.allowed);
    assert_int_equal(v.reason, HR_REASON_NOT_IN_PLAN);
    v = check(f, "acme", "sso", 1); /* not mentioned by the plan: not in it */
    assert_int_equal(v.reason, HR_REASON_NOT_IN_PLAN);
    assert_int_equal(check(f, "nobody", "boards", 1).reason, HR_REASON_UNKNOWN_ACCOUNT);
    assert_int_equal(check(f, "acme", "nothing", 1).reason, HR_REASON_UNKNOWN_FEATURE);
}

static void addon_cheaper_then_plan_cheaper(void **state) {
    fx *f = *state;
    account(f, "acme", "{\"plan\":\"free\"}");
    hr_engine_usage(f->e, "acme", "boards", 3, 1, NULL);
    json_object *d = decide(f, "acme", "boards", 1);
    assert_string_equal(jstr(d, "reason"), "limit_reached");
    assert_string_equal(jstr(d, "upgrade.kind"), "addon");
    assert_string_equal(jstr(d, "upgrade.addon"), "extra_boards");
    assert_string_equal(jstr(d, "upgrade.quantity"), "1");
    assert_string_equal(jstr(d, "upgrade.price_delta.amount"), "500");
    assert_string_equal(jstr(d, "upgrade.price_delta.currency"), "USD");
    assert_string_equal(jstr(d, "upgrade.limit_after"), "13");
    assert_string_equal(jstr(d, "alternatives.0.plan"), "pro");
    assert_string_equal(jstr(d, "alternatives.0.price_delta.amount"), "1200");
    assert_string_equal(jstr(d, "alternatives.0.limit_after"), "50");
    /* business is $360/year: compared as $30/month */
    assert_string_equal(jstr(d, "alternatives.1.plan"), "business");
    assert_string_equal(jstr(d, "alternatives.1.price_delta.amount"), "3000");
    assert_string_equal(jstr(d, "alternatives.2.kind"), "contact_sales");
    assert_string_equal(jstr(d, "trial.kind"), "plan");
    assert_string_equal(jstr(d, "trial.plan"), "pro");
    json_object_put(d);
    /* 25 more: three packs ($15, 33 boards) lose to Pro ($12, 50 boards) */
    d = decide(f, "acme", "boards", 25);
    assert_string_equal(jstr(d, "upgrade.kind"), "plan");
    assert_string_equal(jstr(d, "upgrade.plan"), "pro");
    assert_string_equal(jstr(d, "alternatives.0.addon"), "extra_boards");
    assert_string_equal(jstr(d, "alternatives.0.quantity"), "3");
    assert_string_equal(jstr(d, "alternatives.0.price_delta.amount"), "1500");
    json_object_put(d);
    /* 60 more: six packs exceed max_quantity 5, so no add-on is offered */
    d = decide(f, "acme", "boards", 60);
    assert_string_equal(jstr(d, "upgrade.plan"), "business");
    assert_string_equal(jstr(d, "alternatives.0.kind"), "contact_sales");
    json_object_put(d);
}

static void addons_count_toward_limit(void **state) {
    fx *f = *state;
    account(f, "acme", "{\"plan\":\"free\",\"addons\":{\"extra_boards\":2}}");
    hr_engine_usage(f->e, "acme", "boards", 20, 1, NULL);
    hr_verdict v = check(f, "acme", "boards", 3);
    assert_true(v.allowed);
    assert_int_equal(v.limit, 23);
    /* the Pro delta keeps the packs Pro may buy: 12 + 2*5 - 2*5 */
    json_object *d = decide(f, "acme", "boards", 10);
    assert_string_equal(jstr(d, "upgrade.kind"), "addon");
    assert_string_equal(jstr(d, "upgrade.quantity"), "1");
    assert_string_equal(jstr(d, "alternatives.0.plan"), "pro");
    assert_string_equal(jstr(d, "alternatives.0.price_delta.amount"), "1200");
    assert_string_equal(jstr(d, "alternatives.0.limit_after"), "70");
    json_object_put(d);
}

static void add_on_not_on_plan_refused(void **state) {
    fx *f = *state;
    hr_err err = {0};
    assert_int_equal(hr_engine_put_account_json(f->e, "acme", "{\"plan\":\"free\",\"addons\":{\"extra_seats\":1}}", &err), HR_ELIMIT);
    assert_non_null(strstr(err.message, "not available"));
    assert_int_equal(hr_engine_put_account_json(f->e, "acme", "{\"plan\":\"free\",\"addons\":{\"extra_boards\":6}}", &err), HR_ELIMIT);
    assert_int_equal(hr_engine_put_account_json(f->e, "acme", "{\"plan\":\"gold\"}", &err), HR_ELIMIT);
    assert_int_equal(hr_engine_put_account_json(f->e, "acme", "{\"plan\":\"free\",\"color\":1}", &err), HR_EINVAL);
    assert_int_equal(hr_engine_put_account_json(f->e, "bad id!", "{\"plan\":\"free\"}", &err), HR_EINVAL);
}

static void overrides_and_expiry(void **state) {
    fx *f = *state;
    account(f, "acme", "{\"plan\":\"free\"}");
    hr_engine_usage(f->e, "acme", "seats", 3, 1, NULL);
    assert_int_equal(check(f, "acme", "seats", 1).reason, HR_REASON_LIMIT_REACHED);
    json_object *v = json_object_new_int(20);
    hr_err err = {0};
    assert_int_equal(hr_engine_put_override(f->e, "acme", "seats", v, f->now + 86400, NULL, &err), 0);
    hr_verdict r = check(f, "acme", "seats", 5);
    assert_true(r.allowed);
    assert_int_equal(r.reason, HR_REASON_OVERRIDE);
    assert_int_equal(r.limit, 20);
    /* a day later it has expired */
    hr_engine_check(f->e, "acme", "seats", 1, f->now + 86400, &r);
    assert_int_equal(r.reason, HR_REASON_LIMIT_REACHED);
    json_object_put(v);
    /* a boolean override needs a boolean */
    v = json_object_new_int(1);
    assert_int_equal(hr_engine_put_override(f->e, "acme", "private_boards", v, 0, NULL, &err), HR_EINVAL);
    json_object_put(v);
    v = json_object_new_boolean(1);
    assert_int_equal(hr_engine_put_override(f->e, "acme", "private_boards", v, 0, NULL, &err), 0);
    assert_int_equal(check(f, "acme", "private_boards", 1).reason, HR_REASON_OVERRIDE);
    json_object_put(v);
    assert_int_equal(hr_engine_delete_override(f->e, "acme", "private_boards", &err), 0);
    assert_int_equal(check(f, "acme", "private_boards", 1).reason, HR_REASON_NOT_IN_PLAN);
    /* an override from the config file */
    account(f, "vip", "{\"plan\":\"free\"}");
    r = check(f, "vip", "seats", 50);
    assert_true(r.allowed);
    assert_int_equal(r.reason, HR_REASON_OVERRIDE);
    assert_int_equal(r.limit, 99);
}

static void grandfathered_versions(void **state) {
    fx *f = *state;
    account(f, "old", "{\"plan\":\"pro\",\"plan_version\":1}");
    account(f, "new", "{\"plan\":\"pro\"}");
    assert_int_equal(check(f, "old", "boards", 21).reason, HR_REASON_LIMIT_REACHED);
    assert_int_equal(check(f, "old", "boards", 20).reason, HR_REASON_OK);
    assert_int_equal(check(f, "new", "boards", 50).reason, HR_REASON_OK);
    /* v1 inherits what it does not mention from the current version */
    assert_int_equal(check(f, "old", "seats", 10).reason, HR_REASON_OK);
    /* a PATCH that does not change the plan keeps the version */
    hr_err err = {0};
    json_object *p = json_tokener_parse("{\"name\":\"Old Co\"}");
    assert_int_equal(hr_engine_put_account(f->e, "old", p, 1, NULL, NULL, &err), 0);
    json_object_put(p);
    assert_int_equal(check(f, "old", "boards", 21).reason, HR_REASON_LIMIT_REACHED);
    /* v1 paid $10: the Business delta is 30 - 10 */
    hr_engine_usage(f->e, "old", "boards", 20, 1, NULL);
    json_object *d = decide(f, "old", "boards", 1);
    assert_string_equal(jstr(d, "upgrade.kind"), "addon");
    assert_string_equal(jstr(d, "alternatives.0.plan"), "business");
    assert_string_equal(jstr(d, "alternatives.0.price_delta.amount"), "2000");
    json_object_put(d);
    assert_int_equal(hr_engine_put_account_json(f->e, "x", "{\"plan\":\"pro\",\"plan_version\":7}", &err), HR_ELIMIT);
}

static void feature_trial_once(void **state) {
    fx *f = *state;
    account(f, "acme", "{\"plan\":\"free\"}");
    json_object *d = decide(f, "acme", "private_boards", 1);
    assert_string_equal(jstr(d, "trial.kind"), "feature");
    assert_string_equal(jstr(d, "trial.feature"), "private_boards");
    assert_string_equal(jstr(d, "trial.days"), "14");
    json_object_put(d);
    hr_err err = {0};
    assert_int_equal(hr_engine_start_feature_trial(f->e, "acme", "private_boards", f->now, NULL, &err), 0);
    assert_int_equal(check(f, "acme", "private_boards", 1).reason, HR_REASON_TRIAL_ACTIVE);
    assert_int_equal(hr_engine_start_feature_trial(f->e, "acme", "private_boards", f->now, NULL, &err), HR_ECONFLICT);
    assert_int_equal(hr_engine_start_feature_trial(f->e, "acme", "boards", f->now, NULL, &err), HR_ELIMIT);
    hr_verdict v;
    hr_engine_check(f->e, "acme", "private_boards", 1, f->now + 14 * 86400, &v);
    assert_false(v.allowed);
    assert_int_equal(v.reason, HR_REASON_TRIAL_EXPIRED);
    /* and no second feature trial is offered */
    char *s;
    hr_engine_check_json(f->e, "acme", "private_boards", 1, f->now + 14 * 86400, &s);
    assert_null(strstr(s, "\"kind\":\"feature\""));
    free(s);
}

static void plan_trial_once(void **state) {
    fx *f = *state;
    account(f, "acme", "{\"plan\":\"free\"}");
    hr_engine_usage(f->e, "acme", "boards", 3, 1, NULL);
    hr_err err = {0};
    assert_int_equal(hr_engine_start_plan_trial(f->e, "acme", "business", f->now, NULL, &err), HR_ELIMIT);
    assert_int_equal(hr_engine_start_plan_trial(f->e, "acme", "pro", f->now, NULL, &err), 0);
    hr_verdict v = check(f, "acme", "boards", 10);
    assert_true(v.allowed);
    assert_int_equal(v.reason, HR_REASON_TRIAL_ACTIVE);
    assert_int_equal(v.limit, 50);
    assert_int_equal(hr_engine_start_plan_trial(f->e, "acme", "pro", f->now, NULL, &err), HR_ECONFLICT);
    hr_engine_check(f->e, "acme", "boards", 1, f->now + 15 * 86400, &v);
    assert_int_equal(v.reason, HR_REASON_TRIAL_EXPIRED);
    char *s;
    hr_engine_check_json(f->e, "acme", "boards", 1, f->now + 15 * 86400, &s);
    assert_null(strstr(s, "\"trial\":{"));
    free(s);
}

static void metered_resets_each_month(void **state) {
    fx *f = *state;
    account(f, "acme", "{\"plan\":\"free\"}");
    hr_err err = {0};
    int st;
    hr_buf out;
    hr_buf_init(&out);
    assert_int_equal(hr_engine_record_usage(f->e, "acme", "api_calls", 1000, 1, NULL, 0, f->now, &st, &out, &err), 0);
    hr_buf_dispose(&out);
    hr_verdict v = check(f, "acme", "api_calls", 1);
    assert_int_equal(v.reason, HR_REASON_LIMIT_REACHED);
    int64_t dec1;
    hr_time_parse("2026-12-01T00:00:00Z", &dec1);
    assert_int_equal(v.resets_at, dec1);
    hr_engine_check(f->e, "acme", "api_calls", 1, dec1, &v);
    assert_true(v.allowed);
    assert_int_equal(v.usage, 0);
    /* booleans have no usage */
    assert_int_equal(hr_engine_usage(f->e, "acme", "private_boards", 1, 0, &err), HR_ELIMIT);
}

static void soft_limit_overage(void **state) {
    fx *f = *state;
    account(f, "acme", "{\"plan\":\"free\"}");
    hr_engine_usage(f->e, "acme", "storage_gb", 1, 1, NULL);
    hr_verdict v = check(f, "acme", "storage_gb", 4);
    assert_true(v.allowed);
    assert_int_equal(v.reason, HR_REASON_OVERAGE);
    assert_int_equal(v.overage_units, 4);
    assert_int_equal(v.overage_cost, 200); /* 4 GB at $0.50 */
    json_object *d = decide(f, "acme", "storage_gb", 4);
    assert_string_equal(jstr(d, "overage.cost.amount"), "200");
    assert_string_equal(jstr(d, "upgrade.plan"), "pro");
    json_object_put(d);
}

static void usage_increment_idempotent(void **state) {
    fx *f = *state;
    account(f, "acme", "{\"plan\":\"free\"}");
    hr_err err = {0};
    int st;
    hr_buf out;
    hr_buf_init(&out);
    for (int i = 0; i < 3; i++)
        assert_int_equal(hr_engine_record_usage(f->e, "acme", "boards", 1, 0, "k1", 42, f->now, &st, &out, &err), 0);
    assert_int_equal(check(f, "acme", "boards", 0).usage, 1);
    assert_int_equal(hr_engine_record_usage(f->e, "acme", "boards", 1, 0, "k1", 43, f->now, &st, &out, &err), HR_ECONFLICT);
    assert_int_equal(hr_engine_record_usage(f->e, "acme", "boards", -5, 0, "k2", 44, f->now, &st, &out, &err), 0);
    assert_int_equal(check(f, "acme", "boards", 0).usage, 0); /* never below zero */
    hr_buf_dispose(&out);
}

static void options_during_trial_priced_from_paid(void **state) {
    fx *f = *state;
    account(f, "acme", "{\"plan\":\"free\"}");
    hr_err err = {0};
    assert_int_equal(hr_engine_start_plan_trial(f->e, "acme", "pro", f->now, NULL, &err), 0);
    hr_engine_usage(f->e, "acme", "boards", 50, 1, NULL);
    /* 13 more: on the trial's 50 two packs would look enough, but the
     * account pays for free's 3: it needs six, over max_quantity */
    json_object *d = decide(f, "acme", "boards", 13);
    assert_string_equal(jstr(d, "upgrade.kind"), "plan");
    assert_string_equal(jstr(d, "upgrade.plan"), "business");
    assert_null(strstr(json_object_to_json_string(d), "extra_boards"));
    /* the plan trial is used: no trial_days on the options */
    assert_null(strstr(json_object_to_json_string(d), "trial_days"));
    json_object_put(d);
    /* same or lower tier trials are refused and do not use the trial */
    account(f, "bob", "{\"plan\":\"pro\"}");
    assert_int_equal(hr_engine_start_plan_trial(f->e, "bob", "pro", f->now, NULL, &err), HR_ELIMIT);
}

static void dotted_account_ids_refused(void **state) {
    fx *f = *state;
    hr_err err = {0};
    assert_int_equal(hr_engine_put_account_json(f->e, "corp.acme", "{\"plan\":\"free\"}", &err), HR_EINVAL);
    assert_int_equal(hr_engine_put_account_json(f->e, "corp_acme", "{\"plan\":\"free\"}", &err), 0);
    /* strict JSON */
    assert_int_equal(hr_engine_put_account_json(f->e, "x", "{'plan':'free'}", &err), HR_EPARSE);
    assert_int_equal(hr_engine_put_account_json(f->e, "x", "{\"plan\":\"free\",}", &err), HR_EPARSE);
}

static void idempotency_forgotten_with_account(void **state) {
    fx *f = *state;
    account(f, "acme", "{\"plan\":\"free\"}");
    hr_err err = {0};
    int st;
    hr_buf out;
    hr_buf_init(&out);
    assert_int_equal(hr_engine_record_usage(f->e, "acme", "boards", 2, 0, "k", 7, f->now, &st, &out, &err), 0);
    assert_int_equal(hr_engine_delete_account(f->e, "acme", &err), 0);
    account(f, "acme", "{\"plan\":\"free\"}");
    assert_int_equal(hr_engine_record_usage(f->e, "acme", "boards", 2, 0, "k", 7, f->now, &st, &out, &err), 0);
    assert_int_equal(check(f, "acme", "boards", 0).usage, 2);
    hr_buf_dispose(&out);
}

/* The start-up load: accounts in and out of id order, several rows per
 * account in the other tables; every row must reach its account. */
static void load_from_store_any_order(void **state) {
    fx *f = *state;
    char dir[] = "/tmp/hr-decide-XXXXXX", path[64];
    hr_test_db_dir(dir, path, sizeof path);
    hr_store *s = NULL;
    hr_err err = {0};
    assert_int_equal(hr_store_sqlite_open(path, 0, &s, &err), 0);
    const char *ids[] = {"b1", "b2", "a9", "b3", "c1", "a1", "b4"}; /* a run, then strays */
    for (int i = 0; i < 7; i++) {
        hr_account_rec r = {.id = ids[i], .plan = "free", .interval = "month",
                            .traits_json = "{}", .addons_json = "{}"};
        assert_int_equal(s->ops->put_account(s, &r, &err), 0);
        for (int u = 0; u < 2; u++) {
            char uid[16];
            snprintf(uid, sizeof uid, "%s_u%d", ids[i], u);
            hr_user_rec ur = {ids[i], uid, "member", NULL, "{}", 0, 0};
            assert_int_equal(s->ops->put_user(s, &ur, &err), 0);
        }
        hr_usage_rec us = {ids[i], "boards", i + 1, 0, 0};
        assert_int_equal(s->ops->put_usage(s, &us, &err), 0);
        hr_usage_rec ss = {ids[i], "seats", 10 * (i + 1), 0, 0};
        assert_int_equal(s->ops->put_usage(s, &ss, &err), 0);
    }
    hr_engine *e = hr_engine_new(f->cat);
    assert_int_equal(hr_engine_attach_store(e, s, &err), 0);
    assert_int_equal(hr_engine_account_count(e), 7);
    for (int i = 0; i < 7; i++) {
        hr_verdict v;
        hr_engine_check(e, ids[i], "boards", 0, f->now, &v);
        assert_int_equal(v.usage, i + 1);
        hr_engine_check(e, ids[i], "seats", 0, f->now, &v);
        assert_int_equal(v.usage, 10 * (i + 1));
        char uid[16];
        snprintf(uid, sizeof uid, "%s_u1", ids[i]);
        assert_true(hr_engine_has_user(e, ids[i], uid));
    }
    hr_engine_free(e);
    hr_store_close(s);
    hr_test_rm_dir(dir);
}

/* Decisions from two threads while the main thread changes plans, deletes
 * and recreates accounts (freeing them) and swaps catalogs: a reader must
 * always see an account whole (free or pro, never a half-written one) and
 * never memory freed under it (ASan builds check that). Exercises
 * hr_engine_check's read side (the engine's read lock, the short path and
 * the full one) against every kind of writer. */
typedef struct rd {
    hr_engine *e;
    int64_t now;
    atomic_int *stop;
    atomic_long calls;
    long bad;
} rd;

static void *reader(void *p) {
    rd *r = p;
    char id[16];
    for (long i = 0; !atomic_load(r->stop); i++) {
        snprintf(id, sizeof id, "c%ld", i % 64);
        hr_verdict v;
        hr_engine_check(r->e, id, "boards", 1, r->now, &v);
        if (v.reason != HR_REASON_UNKNOWN_ACCOUNT && v.limit != 3 && v.limit != 50) r->bad++;
        hr_engine_check(r->e, id, i % 2 ? "seats" : "nope", 1, 0, &v);
        atomic_fetch_add(&r->calls, 1);
    }
    return NULL;
}

static void readers_during_writes(void **state) {
    fx *f = *state;
    hr_err err = {0};
    char id[16];
    for (int i = 0; i < 64; i++) {
        snprintf(id, sizeof id, "c%d", i);
        assert_int_equal(hr_engine_put_account_json(f->e, id, "{\"plan\":\"free\"}", &err), 0);
    }
    atomic_int stop = 0;
    rd r[2] = {{f->e, f->now, &stop, 0, 0}, {f->e, f->now, &stop, 0, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, reader, &r[i]), 0);
    /* on a busy machine the readers may start late: write only once both read */
    while (!atomic_load(&r[0].calls) || !atomic_load(&r[1].calls)) sched_yield();
    for (int k = 0; k < 3000; k++) {
        snprintf(id, sizeof id, "c%d", k % 64);
        if (k % 7 == 0) {
            assert_int_equal(hr_engine_delete_account(f->e, id, &err), 0);
            assert_int_equal(hr_engine_put_account_json(f->e, id, "{\"plan\":\"free\"}", &err), 0);
        } else {
            assert_int_equal(hr_engine_put_account_json(f->e, id, k % 2 ? "{\"plan\":\"pro\"}"
                                                                        : "{\"plan\":\"free\"}",
                                                        &err),
                             0);
        }
        if (k % 500 == 0) {
            hr_catalog *c2 = NULL;
            assert_int_equal(hr_catalog_parse(yaml, sizeof yaml - 1, "t.yaml", &c2, &err, NULL), 0);
            assert_int_equal(hr_engine_set_catalog(f->e, c2, &err), 0);
            hr_catalog_release(c2);
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].bad, 0);
        assert_true(atomic_load(&r[i].calls) > 0);
    }
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(reasons_ok_limit_notinplan_unknown), T(addon_cheaper_then_plan_cheaper),
        T(addons_count_toward_limit),          T(add_on_not_on_plan_refused),
        T(overrides_and_expiry),               T(grandfathered_versions),
        T(feature_trial_once),                 T(plan_trial_once),
        T(metered_resets_each_month),          T(soft_limit_overage),
        T(usage_increment_idempotent),         T(options_during_trial_priced_from_paid),
        T(dotted_account_ids_refused),         T(idempotency_forgotten_with_account),
        T(load_from_store_any_order),          T(readers_during_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
