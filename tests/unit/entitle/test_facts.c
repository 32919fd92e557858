/* test_facts.c: the rule environment over real accounts: attributes,
 * nested traits, event counts for the account and the user, sums of a
 * property in windows (kept only for the pairs the catalog's rules name,
 * and surviving a restart), members by role, usage against limits. */
#include <math.h>
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
#include "events/segment.h"
#include "rules/rules.h"
#include "store/store.h"
#include "timeutil.h"
#include "../fixture.h"

static const char yaml[] =
    "features:\n"
    "  seats: {type: limit}\n"
    "  sso: {type: boolean}\n"
    "feature_trials: {sso: {days: 14}}\n"
    "meters:\n"
    "  revenue: {event: Order Completed, aggregate: sum, property: properties.revenue}\n"
    "  big: {event: Order Completed, aggregate: sum, property: properties.revenue,"
    " where: 'properties.revenue > 50'}\n"
    "plans:\n"
    "  pro: {entitlements: {seats: 4}}\n"
    "playbooks:\n"
    "  big_spender:\n"
    "    signal: 'sum(\"Order Completed\", \"revenue\", 30d) > 100'\n"
    "    value: 'sum(\"Order Completed\", \"revenue\", 7d)'\n"
    "    message: hi\n"
    "    actions: [{type: task}]\n"
    "  growing:\n"
    "    signal: 'growth(\"revenue\", 7d) > 0'\n"
    "    message: hi\n"
    "    actions: [{type: task}]\n";

static int64_t T0;
static const int64_t DAY = 86400000LL;

static void track(hr_engine *e, const char *user, const char *event, const char *props, int64_t at) {
    char js[400];
    snprintf(js, sizeof js,
             "{\"userId\":\"%s\",\"event\":\"%s\",\"properties\":%s,\"context\":{\"groupId\":\"acme\"}}",
             user, event, props);
    hr_test_ingest(e, js, HR_MSG_TRACK, at);
}

typedef struct q {
    const char *src;
    hr_rval v;
    char s[64];
} q;

static int run(void *ud, const hr_catalog *cat, const struct hr_rule_env *env, void *ctx) {
    q *x = ud;
    const char *fk[16], *pk[8], *mk[8];
    for (int i = 0; i < cat->nfeatures; i++) fk[i] = cat->features[i].key;
    for (int i = 0; i < cat->nplans; i++) pk[i] = cat->plans[i].key;
    for (int i = 0; i < cat->nmeters; i++) mk[i] = cat->meters[i].key;
    hr_rule_names names = {fk, cat->nfeatures, mk, cat->nmeters, NULL, 0, pk, cat->nplans};
    hr_rule *r = NULL;
    hr_err err;
    if (hr_rule_compile(x->src, strlen(x->src), &names, &r, &err)) {
        fprintf(stderr, "%s: %s\n", x->src, err.message);
        return HR_EINVAL;
    }
    int rc = hr_rule_eval(r, env, ctx, T0 + DAY / 2, &x->v);
    if (x->v.type == HR_RV_STR) snprintf(x->s, sizeof x->s, "%.*s", (int)x->v.len, x->v.s);
    hr_rule_free(r);
    return rc;
}

static double num(hr_engine *e, const char *user, const char *src) {
    q x = {src, {0}, ""};
    assert_int_equal(hr_engine_with_rules(e, "acme", user, T0 + DAY / 2, run, &x), 0);
    if (x.v.type == HR_RV_BOOL) return x.v.b;
    if (x.v.type == HR_RV_NULL) return -999;
    assert_int_equal(x.v.type, HR_RV_NUM);
    return x.v.n;
}

static const char *str(hr_engine *e, const char *user, const char *src) {
    static q x;
    x = (q){src, {0}, ""};
    assert_int_equal(hr_engine_with_rules(e, "acme", user, T0 + DAY / 2, run, &x), 0);
    return x.v.type == HR_RV_STR ? x.s : x.v.type == HR_RV_NULL ? "<null>" : "<other>";
}

static void test_facts_and_sums(void **state) {
    (void)state;
    int64_t t;
    hr_time_parse("2026-11-22T00:00:00Z", &t);
    T0 = t * 1000;
    char dir[] = "/tmp/hr-facts-XXXXXX", path[64];
    hr_test_db_dir(dir, path, sizeof path);
    hr_catalog *cat;
    hr_err err;
    assert_int_equal(hr_catalog_parse(yaml, sizeof yaml - 1, "t.yaml", &cat, &err, NULL), 0);
    assert_int_equal(cat->nsum_keys, 1);
    hr_store *s;
    assert_int_equal(hr_store_sqlite_open(path, 0, &s, &err), 0);
    hr_engine *e = hr_engine_new(cat);
    assert_int_equal(hr_engine_attach_store(e, s, &err), 0);
    assert_int_equal(hr_engine_put_account_json(e, "acme",
                         "{\"plan\":\"pro\",\"name\":\"Acme\",\"traits\":{\"company\":{\"size\":50},"
                         "\"industry\":\"fintech\"}}", &err), 0);
    json_object *u = json_tokener_parse("{\"role\":\"decision_maker\",\"traits\":{\"email\":\"d@acme.com\"}}");
    assert_int_equal(hr_engine_put_user(e, "acme", "dm", u, NULL, NULL, &err), 0);
    json_object_put(u);
    u = json_tokener_parse("{\"role\":\"member\"}");
    assert_int_equal(hr_engine_put_user(e, "acme", "m1", u, NULL, NULL, &err), 0);
    json_object_put(u);

    track(e, "dm", "Order Completed", "{\"revenue\":40.5}", T0);
    track(e, "m1", "Order Completed", "{\"revenue\":70}", T0 - 10 * DAY);
    track(e, "m1", "Order Completed", "{\"revenue\":\"lots\"}", T0); /* not a number: no sum */
    track(e, "m1", "Order Completed", "{}", T0);
    track(e, "dm", "Login", "{}", T0);
    track(e, "dm", "Login", "{}", T0 - DAY);

    assert_true(num(e, NULL, "sum(\"Order Completed\", \"revenue\", 30d)") == 110.5);
    assert_true(num(e, NULL, "sum(\"Order Completed\", \"revenue\", 7d)") == 40.5);
    /* a sum meter's growth reads the same per-day sums: 40.5 this week, 70 the week before */
    assert_true(fabs(num(e, NULL, "growth(\"revenue\", 7d)") - (40.5 - 70) / 70) < 1e-12);
    assert_true(num(e, NULL, "growth(\"big\", 7d)") == -999); /* where: not in the history */
    assert_true(num(e, "dm", "user_sum(\"Order Completed\", \"revenue\", 30d)") == 40.5);
    assert_true(num(e, "m1", "user_sum(\"Order Completed\", \"properties.revenue\", 30d)") == 70);
    /* a pair no catalog rule names is not kept: 0, not a guess */
    assert_true(num(e, NULL, "sum(\"Order Completed\", \"tax\", 30d)") == 0);
    assert_true(num(e, NULL, "count(\"Order Completed\", 30d)") == 4);
    assert_true(num(e, "m1", "user_count(\"Order Completed\", 7d)") == 2);
    assert_true(num(e, NULL, "role_active_days(\"decision_maker\", 7d)") == 2);
    assert_true(num(e, NULL, "users()") == 2);
    assert_true(num(e, NULL, "usage_pct(\"seats\")") == 0);
    assert_true(num(e, NULL, "account.company.size >= 50") == 1);
    assert_string_equal(str(e, NULL, "account.industry"), "fintech");
    assert_string_equal(str(e, NULL, "account.plan"), "pro");
    assert_string_equal(str(e, "dm", "user.email"), "d@acme.com");
    assert_string_equal(str(e, NULL, "user.role"), "<null>"); /* no user */
    assert_true(num(e, "dm", "days_since(last_seen(\"Login\")) < 1") == 1);
    assert_true(num(e, NULL, "trial_days_left(\"sso\")") == -999); /* no trial: null */
    hr_buf tb;
    hr_buf_init(&tb);
    assert_int_equal(hr_engine_start_feature_trial(e, "acme", "sso", T0 / 1000, &tb, &err), 0);
    hr_buf_dispose(&tb);
    assert_true(num(e, NULL, "trial_days_left(\"sso\")") == 13.5); /* evaluated half a day in */

    /* the sums come back after a restart */
    hr_engine_free(e);
    hr_store_close(s);
    assert_int_equal(hr_store_sqlite_open(path, 0, &s, &err), 0);
    e = hr_engine_new(cat);
    assert_int_equal(hr_engine_attach_store(e, s, &err), 0);
    assert_true(num(e, NULL, "sum(\"Order Completed\", \"revenue\", 30d)") == 110.5);
    assert_true(num(e, "m1", "user_sum(\"Order Completed\", \"revenue\", 30d)") == 70);
    assert_true(num(e, NULL, "count(\"Order Completed\", 30d)") == 4);
    hr_engine_free(e);
    hr_store_close(s);
    hr_catalog_release(cat);
    hr_test_rm_dir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_facts_and_sums)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
