/* test_check_fast.c: hr_engine_check answers the common case (no override,
 * no trial, calendar periods) on a short path of its own and everything
 * else with the full rules; both must give the full decision's answer. Here
 * every field of the verdict is compared with hr_engine_decide's for
 * accounts in every state (add-ons, grandfathered versions, trials active
 * and over, overrides, meters fed by events, usage of an earlier period,
 * plans and add-ons a new catalog no longer has), every kind of feature
 * (boolean, limit, metered by calendar and billing cycle, soft limits, keys
 * of under 4 and over 16 bytes) and several quantities and times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "catalog/catalog.h"
#include "entitle/engine.h"
#include "entitle/entitle_int.h"
#include "events/segment.h"
#include "timeutil.h"
#include "../fixture.h"

#define FEATURES                                                                            \
    "features:\n"                                                                           \
    "  boards: {type: limit, meter: board_count}\n"                                         \
    "  private_boards: {type: boolean}\n"                                                   \
    "  seats: {type: limit}\n"                                                              \
    "  api_calls: {type: metered, period: month, meter: api_calls}\n"                       \
    "  cycle_calls: {type: metered, period: month, meter: cycle_calls}\n"                   \
    "  daily: {type: metered, period: day}\n"                                               \
    "  yearly_exports: {type: metered, period: year}\n"                                     \
    "  storage_gb: {type: limit, overage: {price: 0.5}}\n"                                  \
    "  sso: {type: boolean}\n"                                                              \
    "  ai: {type: boolean}\n"                                                               \
    "  a_feature_with_a_long_name: {type: limit}\n"

#define METERS                                                                              \
    "meters:\n"                                                                             \
    "  board_count: {event: Board Created, aggregate: count, period: lifetime}\n"           \
    "  api_calls: {event: API Called, aggregate: count}\n"                                  \
    "  cycle_calls: {event: Cycle Called, aggregate: count, period: billing_cycle}\n"

static const char yaml[] =
    "currency: USD\n" METERS FEATURES
    "plans:\n"
    "  free: {price: 0, entitlements: {boards: 3, private_boards: false, seats: 3,\n"
    "         api_calls: 1000, cycle_calls: 10, daily: 5, storage_gb: 1, ai: true,\n"
    "         a_feature_with_a_long_name: 2}}\n"
    "  pro: {price: 12, interval: month, trial_days: 14, version: 2,\n"
    "        entitlements: {boards: 50, private_boards: true, seats: 10, api_calls: 100000,\n"
    "                       cycle_calls: 100, daily: 50, yearly_exports: 10, storage_gb: 10},\n"
    "        versions: {1: {price: 10, entitlements: {boards: 20}}}}\n"
    "  business: {price: 360, interval: year, entitlements: {boards: unlimited,\n"
    "             private_boards: true, seats: 50, api_calls: 1000000, storage_gb: 100, sso: true}}\n"
    "  enterprise: {contact_sales: true, entitlements: {boards: unlimited, private_boards: true,\n"
    "               seats: unlimited, api_calls: unlimited, storage_gb: unlimited, sso: true}}\n"
    "addons:\n"
    "  extra_boards: {price: 5, interval: month, grants: {boards: 10}, plans: [free, pro]}\n"
    "  extra_seats: {price: 25, interval: month, grants: {seats: 5}, plans: [pro, business]}\n"
    "  sso_pack: {price: 9, interval: month, grants: {sso: true}}\n"
    "  infinite_storage: {price: 99, interval: month, grants: {storage_gb: 1000}}\n"
    "feature_trials:\n"
    "  private_boards: {days: 14}\n"
    "  sso: {days: 7}\n";

/* The same, without the business plan and the sso_pack add-on: accounts on
 * them keep their names but no longer find them. */
static const char yaml2[] =
    "currency: USD\n" METERS FEATURES
    "plans:\n"
    "  free: {price: 0, entitlements: {boards: 3, private_boards: false, seats: 3,\n"
    "         api_calls: 1000, cycle_calls: 10, daily: 5, storage_gb: 1, ai: true}}\n"
    "  pro: {price: 12, interval: month, version: 2,\n"
    "        entitlements: {boards: 50, private_boards: true, seats: 10, api_calls: 100000,\n"
    "                       cycle_calls: 100, daily: 50, yearly_exports: 10, storage_gb: 10},\n"
    "        versions: {1: {price: 10, entitlements: {boards: 20}}}}\n"
    "addons:\n"
    "  extra_boards: {price: 5, interval: month, grants: {boards: 10}, plans: [free, pro]}\n"
    "  infinite_storage: {price: 99, interval: month, grants: {storage_gb: 1000}}\n";

static const char *features[] = {"boards",      "private_boards", "seats",
                                 "api_calls",   "cycle_calls",    "daily",
                                 "yearly_exports", "storage_gb",  "sso",
                                 "ai",          "a_feature_with_a_long_name", "nope",
                                 "",            "a_feature_with_a_long_nam"};
#define NFEAT (sizeof features / sizeof *features)

typedef struct fx {
    hr_catalog *cat;
    hr_engine *e;
    int64_t t0; /* unix seconds */
} fx;

static int setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    if (!f || hr_test_engine(yaml, sizeof yaml - 1, &f->cat, &f->e)) return -1;
    hr_time_parse("2026-11-10T12:00:00Z", &f->t0);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    /* every write kept the account index's summaries right */
    assert_int_equal(hr_engine_stale_summaries(f->e), 0);
    hr_engine_free(f->e);
    hr_catalog_release(f->cat);
    free(f);
    return 0;
}

static void put(fx *f, const char *id, const char *json) { hr_test_put_account(f->e, id, json); }

static void usage_at(fx *f, const char *id, const char *feature, int64_t v, int64_t at) {
    hr_err err = {0};
    hr_buf out;
    int st;
    hr_buf_init(&out);
    assert_int_equal(hr_engine_record_usage(f->e, id, feature, v, 1, NULL, 0, at, &st, &out, &err), 0);
    hr_buf_dispose(&out);
}

static void events(fx *f, const char *id, const char *event, int n, int64_t at) {
    for (int i = 0; i < n; i++) {
        char js[256];
        snprintf(js, sizeof js,
                 "{\"userId\":\"u1\",\"event\":\"%s\",\"messageId\":\"%s-%s-%d\","
                 "\"context\":{\"groupId\":\"%s\"}}",
                 event, id, event, i, id);
        hr_test_ingest(f->e, js, HR_MSG_TRACK, at * 1000);
    }
}

static void override(fx *f, const char *id, const char *feature, const char *value, int64_t exp) {
    hr_err err = {0};
    hr_buf out;
    hr_buf_init(&out);
    json_object *v = json_tokener_parse(value);
    assert_int_equal(hr_engine_put_override(f->e, id, feature, v, exp, &out, &err), 0);
    json_object_put(v);
    hr_buf_dispose(&out);
}

/* Accounts in the states the decision tells apart; returns their ids. */
static const char **populate(fx *f, int *n) {
    static const char *ids[] = {"free0", "free_full", "free_over", "pro_v1", "pro_v2",
                                "biz_year", "ent", "addons", "addons2", "trial_on",
                                "trial_off", "ftrial_on", "ftrial_off", "ovr", "ovr_gone",
                                "metered", "stale", "cycle", "x", "acct_with_a_long_id_0001",
                                "addon1", "collide", "many", "meter_split",
                                "an_account_id_longer_than_the_forty_bytes_a_slot_holds_01"};
    int64_t t0 = f->t0, day = 86400;
    hr_err err = {0};
    hr_buf out;
    hr_buf_init(&out);
    put(f, "free0", "{\"plan\":\"free\"}");
    put(f, "free_full", "{\"plan\":\"free\"}");
    usage_at(f, "free_full", "boards", 3, t0);
    usage_at(f, "free_full", "seats", 3, t0);
    usage_at(f, "free_full", "storage_gb", 1, t0);
    usage_at(f, "free_full", "a_feature_with_a_long_name", 2, t0);
    put(f, "free_over", "{\"plan\":\"free\"}");
    usage_at(f, "free_over", "seats", 7, t0);
    usage_at(f, "free_over", "storage_gb", 5, t0);
    usage_at(f, "free_over", "daily", 9, t0);
    put(f, "pro_v1", "{\"plan\":\"pro\",\"plan_version\":1}");
    usage_at(f, "pro_v1", "boards", 20, t0);
    put(f, "pro_v2", "{\"plan\":\"pro\"}");
    usage_at(f, "pro_v2", "boards", 20, t0);
    usage_at(f, "pro_v2", "yearly_exports", 4, t0);
    put(f, "biz_year", "{\"plan\":\"business\",\"interval\":\"year\"}");
    usage_at(f, "biz_year", "seats", 50, t0);
    put(f, "ent", "{\"plan\":\"enterprise\"}");
    usage_at(f, "ent", "seats", 1000, t0);
    put(f, "addons", "{\"plan\":\"free\",\"addons\":{\"extra_boards\":2,\"sso_pack\":1}}");
    usage_at(f, "addons", "boards", 22, t0);
    put(f, "addons2", "{\"plan\":\"pro\",\"addons\":{\"extra_seats\":1,\"infinite_storage\":1,"
                      "\"extra_boards\":1}}");
    usage_at(f, "addons2", "seats", 15, t0);
    put(f, "trial_on", "{\"plan\":\"free\"}");
    assert_int_equal(hr_engine_start_plan_trial(f->e, "trial_on", "pro", t0, &out, &err), 0);
    put(f, "trial_off", "{\"plan\":\"free\"}");
    assert_int_equal(hr_engine_start_plan_trial(f->e, "trial_off", "pro", t0 - 30 * day, &out, &err), 0);
    usage_at(f, "trial_off", "boards", 3, t0);
    put(f, "ftrial_on", "{\"plan\":\"free\"}");
    assert_int_equal(hr_engine_start_feature_trial(f->e, "ftrial_on", "private_boards", t0, &out, &err), 0);
    put(f, "ftrial_off", "{\"plan\":\"free\"}");
    assert_int_equal(hr_engine_start_feature_trial(f->e, "ftrial_off", "sso", t0 - 30 * day, &out, &err), 0);
    put(f, "ovr", "{\"plan\":\"free\"}");
    override(f, "ovr", "seats", "20", 0);
    override(f, "ovr", "sso", "true", t0 + 5 * day);
    put(f, "ovr_gone", "{\"plan\":\"free\"}");
    override(f, "ovr_gone", "boards", "\"unlimited\"", t0 - day);
    put(f, "metered", "{\"plan\":\"free\"}");
    events(f, "metered", "Board Created", 2, t0);
    events(f, "metered", "API Called", 3, t0);
    usage_at(f, "metered", "api_calls", 998, t0);
    usage_at(f, "metered", "boards", 1, t0);
    /* API usage of last month, meter values of this one: two periods */
    put(f, "meter_split", "{\"plan\":\"free\"}");
    usage_at(f, "meter_split", "api_calls", 500, t0 - 40 * day);
    events(f, "meter_split", "API Called", 2, t0);
    put(f, "stale", "{\"plan\":\"free\"}");
    usage_at(f, "stale", "api_calls", 1000, t0 - 40 * day);
    usage_at(f, "stale", "daily", 5, t0 - day);
    put(f, "cycle", "{\"plan\":\"pro\",\"renews_at\":\"2026-10-20T00:00:00Z\"}");
    events(f, "cycle", "Cycle Called", 4, t0);
    usage_at(f, "cycle", "cycle_calls", 96, t0);
    put(f, "x", "{\"plan\":\"business\",\"addons\":{\"sso_pack\":1}}");
    /* one add-on bought three times (the decision reads it from the
     * account itself), after having had two */
    put(f, "addon1", "{\"plan\":\"pro\",\"addons\":{\"extra_seats\":1,\"extra_boards\":1}}");
    put(f, "addon1", "{\"plan\":\"pro\",\"addons\":{\"extra_seats\":3}}");
    usage_at(f, "addon1", "seats", 24, t0);
    /* usage entries sit at their features' homes when they can (boards
     * and daily share one here), and on the heap past four */
    put(f, "collide", "{\"plan\":\"pro\"}");
    usage_at(f, "collide", "daily", 50, t0);
    usage_at(f, "collide", "seats", 4, t0);
    usage_at(f, "collide", "boards", 7, t0);
    put(f, "many", "{\"plan\":\"free\"}");
    static const char *uf[] = {"storage_gb", "daily", "seats", "api_calls", "boards",
                               "a_feature_with_a_long_name", "yearly_exports"};
    for (int i = 0; i < 7; i++) usage_at(f, "many", uf[i], i + 1, t0);
    put(f, "an_account_id_longer_than_the_forty_bytes_a_slot_holds_01", "{\"plan\":\"free\"}");
    usage_at(f, "an_account_id_longer_than_the_forty_bytes_a_slot_holds_01", "boards", 3, t0);
    put(f, "acct_with_a_long_id_0001", "{\"plan\":\"pro\"}");
    usage_at(f, "acct_with_a_long_id_0001", "seats", 10, t0);
    hr_buf_dispose(&out);
    *n = (int)(sizeof ids / sizeof *ids);
    return ids;
}

/* The decision summary in the account index (acctix.h) of account id. */
static const hr_acct_sum *summary_of(fx *f, const char *id) {
    hr_acctix_key k;
    hr_acctix_key_of(id, &k);
    const hr_acct_slot *s = hr_acctix_find(f->e->accounts, &k);
    assert_non_null(s);
    return &s->sum;
}

/* Every field of hr_engine_check's verdict against the full decision's. */
static void compare_all(fx *f, const char **ids, int n) {
    static const int64_t qty[] = {0, 1, 2, 3, 1000000, -1};
    int64_t day = 86400, nows[] = {f->t0, f->t0 + 20 * day, f->t0 + 400 * day, f->t0 - 40 * day};
    long compared = 0;
    for (int i = 0; i < n + 1; i++) {
        const char *id = i < n ? ids[i] : "nobody";
        for (size_t k = 0; k < NFEAT; k++)
            for (size_t q = 0; q < sizeof qty / sizeof *qty; q++)
                for (size_t t = 0; t < sizeof nows / sizeof *nows; t++) {
                    hr_verdict fast, full;
                    hr_buf out;
                    hr_buf_init(&out);
                    memset(&fast, 0x5a, sizeof fast);
                    assert_int_equal(hr_engine_check(f->e, id, features[k], qty[q], nows[t], &fast), 0);
                    assert_int_equal(hr_engine_decide(f->e, id, features[k], qty[q] < 0 ? 0 : qty[q],
                                                      nows[t], &full, &out),
                                     0);
                    hr_buf_dispose(&out);
                    if (fast.allowed != full.allowed || fast.reason != full.reason ||
                        fast.usage != full.usage || fast.limit != full.limit ||
                        fast.remaining != full.remaining || fast.resets_at != full.resets_at ||
                        fast.overage_units != full.overage_units ||
                        fast.overage_cost != full.overage_cost)
                        fail_msg("%s %s qty %lld at %lld: check (%d %s u%lld l%lld r%lld "
                                 "reset %lld ov %lld/%lld) vs decide (%d %s u%lld l%lld r%lld "
                                 "reset %lld ov %lld/%lld)",
                                 id, features[k], (long long)qty[q], (long long)nows[t],
                                 fast.allowed, hr_reason_str(fast.reason), (long long)fast.usage,
                                 (long long)fast.limit, (long long)fast.remaining,
                                 (long long)fast.resets_at, (long long)fast.overage_units,
                                 (long long)fast.overage_cost, full.allowed,
                                 hr_reason_str(full.reason), (long long)full.usage,
                                 (long long)full.limit, (long long)full.remaining,
                                 (long long)full.resets_at, (long long)full.overage_units,
                                 (long long)full.overage_cost);
                    compared++;
                }
    }
    assert_true(compared > 1000);
}

static void check_equals_full_decision(void **state) {
    fx *f = *state;
    int n;
    const char **ids = populate(f, &n);
    compare_all(f, ids, n);
    /* the common path did answer: a plain account on a limit feature */
    hr_verdict v;
    hr_engine_check(f->e, "free_full", "boards", 1, f->t0, &v);
    assert_int_equal(v.reason, HR_REASON_LIMIT_REACHED);
    assert_int_equal(v.usage, 3);
    hr_engine_check(f->e, "metered", "api_calls", 1, f->t0, &v);
    assert_int_equal(v.usage, 1001); /* 998 set + 3 counted by the meter */
    assert_int_equal(v.reason, HR_REASON_LIMIT_REACHED);
    /* now = 0: the clock; a plain account answers as at any time */
    hr_engine_check(f->e, "free_full", "seats", 1, 0, &v);
    assert_int_equal(v.reason, HR_REASON_LIMIT_REACHED);
    /* which accounts the summary alone decides */
    static const char *plain[] = {"free0", "free_full", "free_over", "pro_v2", "addon1",
                                  "stale", "x", "metered", "cycle"};
    static const char *not_plain[] = {"addons2", "trial_on", "ftrial_on", "ovr",
                                      "collide", "many", "meter_split"};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
        if (!summary_of(f, plain[i])->plain) fail_msg("%s is not plain", plain[i]);
    for (size_t i = 0; i < sizeof not_plain / sizeof *not_plain; i++)
        assert_int_equal(summary_of(f, not_plain[i])->plain, 0);
    /* a meter's value and the API usage of the same period, added up */
    const hr_acct_sum *ms = summary_of(f, "metered");
    int found = 0;
    for (int h = 0; h < 4; h++)
        if (ms->ufi[h] && ms->uval[h] == 1001) found = 1; /* api_calls: 998 + 3 */
    assert_true(found);
    /* and change with the account */
    hr_err err = {0};
    assert_int_equal(hr_engine_delete_override(f->e, "ovr", "seats", &err), 0);
    assert_int_equal(summary_of(f, "ovr")->plain, 0);
    assert_int_equal(hr_engine_delete_override(f->e, "ovr", "sso", &err), 0);
    assert_int_equal(summary_of(f, "ovr")->plain, 1);
    put(f, "addons2", "{\"plan\":\"pro\",\"addons\":{\"extra_boards\":4}}");
    assert_int_equal(summary_of(f, "addons2")->plain, 1);
    assert_int_equal(summary_of(f, "addons2")->addon_qty, 4);
    assert_int_equal(hr_engine_stale_summaries(f->e), 0);
    compare_all(f, ids, n);
}

/* Swaps the engine to the catalog in y (len bytes); every summary must
 * then be right and every verdict the full decision's. */
static void reload_and_compare(fx *f, const char *y, size_t len, const char **ids, int n) {
    hr_catalog *c = NULL;
    hr_err err = {0};
    if (hr_catalog_parse(y, len, "reload.yaml", &c, &err, NULL))
        fail_msg("%d:%d: %s", err.line, err.column, err.message);
    assert_int_equal(hr_engine_set_catalog(f->e, c, &err), 0);
    hr_catalog_release(c);
    assert_int_equal(hr_engine_stale_summaries(f->e), 0);
    compare_all(f, ids, n);
}

static void after_catalog_swap(void **state) {
    fx *f = *state;
    int n;
    const char **ids = populate(f, &n);
    reload_and_compare(f, yaml2, sizeof yaml2 - 1, ids, n);
}

/* A reload with the same features and plans but a new version of pro: the
 * summaries are kept (nothing they name moved), and accounts bought on
 * version 2 are now grandfathered, which the decision sees by comparing
 * versions. */
static void after_new_plan_version(void **state) {
    fx *f = *state;
    int n;
    const char **ids = populate(f, &n);
    char *y3 = strdup(yaml);
    assert_non_null(y3);
    char *v = strstr(y3, "version: 2");
    assert_non_null(v);
    v[9] = '3';
    char *b = strstr(y3, "boards: 50");
    assert_non_null(b);
    memcpy(b, "boards: 60", 10);
    /* version 2 stays in the catalog, as its own entry */
    const char *v1 = "versions: {1: {price: 10, entitlements: {boards: 20}}}";
    char *at = strstr(y3, v1);
    assert_non_null(at);
    *at = 0;
    hr_buf y;
    hr_buf_init(&y);
    hr_buf_printf(&y, "%sversions: {1: {price: 10, entitlements: {boards: 20}}, "
                      "2: {price: 12, entitlements: {boards: 50}}}%s", y3, at + strlen(v1));
    free(y3);
    reload_and_compare(f, y.data, y.len, ids, n);
    hr_buf_dispose(&y);
    hr_verdict v2;
    hr_engine_check(f->e, "pro_v2", "boards", 1, f->t0, &v2);
    assert_int_equal(v2.limit, 50); /* its version's, not the new one's 60 */
}

/* A reload that keeps the features' names and the plans but changes what
 * feeds them (a meter's period, a feature's meter, a feature's type):
 * every summary that counted those must be rewritten. */
static void after_meter_change(void **state) {
    fx *f = *state;
    int n;
    const char **ids = populate(f, &n);
    static const struct { const char *from, *to; } edits[] = {
        {"api_calls: {event: API Called, aggregate: count}",
         "api_calls: {event: API Called, aggregate: count, period: day}"},
        {"boards: {type: limit, meter: board_count}", "boards: {type: limit}"},
        {"daily: {type: metered, period: day}", "daily: {type: metered, period: week}"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        hr_buf y;
        hr_buf_init(&y);
        const char *at = strstr(yaml, edits[i].from);
        assert_non_null(at);
        hr_buf_printf(&y, "%.*s%s%s", (int)(at - yaml), yaml, edits[i].to,
                      at + strlen(edits[i].from));
        reload_and_compare(f, y.data, y.len, ids, n);
        hr_buf_dispose(&y);
    }
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {T(check_equals_full_decision), T(after_catalog_swap),
                                       T(after_new_plan_version), T(after_meter_change)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
