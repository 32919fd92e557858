/* test_campaigns.c: campaign selection without a store or HTTP: trigger
 * matching, audience and gate, priority, dates, per-user caps and cooldown
 * after a dismissal, the global throttle, holdout exposure, goal
 * conversions, and deterministic weighted assignment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "campaigns/campaigns.h"
#include "catalog/catalog.h"
#include "entitle/engine.h"
#include "events/segment.h"
#include "timeutil.h"
#include "../fixture.h"

static const char yaml[] =
    "features:\n"
    "  boards: {type: limit}\n"
    "  private_boards: {type: boolean}\n"
    "plans:\n"
    "  free: {entitlements: {boards: 3}}\n"
    "  pro: {entitlements: {boards: 50, private_boards: true}}\n"
    "feature_trials: {private_boards: {days: 14}}\n"
    "throttle: {per_user: 2, per: 1d}\n"
    "campaigns:\n"
    "  tip:\n"
    "    trigger: {feature_denied: private_boards}\n"
    "    audience: 'account.plan == \"free\"'\n"
    "    gate: 'count(\"Board Created\", 30d) >= 2'\n"
    "    content: {type: tooltip, title: T, cta: {label: Try, action: start_trial}}\n"
    "    cap: {per_user: 1, per: 7d, cooldown_after_dismiss: 3d}\n"
    "    goal: {event: Plan Upgraded, within: 14d}\n"
    "    priority: 5\n"
    "  low:\n"
    "    trigger: {feature_denied: private_boards}\n"
    "    content: {type: modal, title: Low}\n"
    "    priority: 1\n"
    "  page:\n"
    "    trigger: {page: \"/boards/*\"}\n"
    "    content: {type: banner, title: Page}\n"
    "  ended:\n"
    "    trigger: on_load\n"
    "    ends_at: \"2020-01-01T00:00:00Z\"\n"
    "    content: {type: banner, title: Old}\n"
    "  held:\n"
    "    trigger: {event: Report}\n"
    "    content: {type: banner, title: H}\n"
    "    variants: {on: {weight: 0}, off: {weight: 1, holdout: true}}\n"
    "    goal: {event: Plan Upgraded, within: 1d}\n"
    "  split:\n"
    "    trigger: on_load\n"
    "    unit: user\n"
    "    content: {type: banner, title: S}\n"
    "    variants: {a: {weight: 1}, b: {weight: 1}}\n";

typedef struct fx {
    hr_catalog *cat;
    hr_engine *e;
    hr_campaigns *cs;
    int64_t now_ms;
} fx;

/* For the trigger index and the order of the filters. */
static const char yaml2[] =
    "features:\n"
    "  boards: {type: limit}\n"
    "  private_boards: {type: boolean}\n"
    "plans:\n"
    "  free: {entitlements: {boards: 3}}\n"
    "  pro: {entitlements: {boards: 50, private_boards: true}}\n"
    "throttle: {per_user: 1, per: 1d}\n"
    "campaigns:\n"
    "  elem:\n"
    "    trigger: {element: private_boards}\n"
    "    content: {type: banner, title: E}\n"
    "    priority: 9\n"
    "  held:\n"
    "    trigger: on_load\n"
    "    content: {type: banner, title: H}\n"
    "    variants: {on: {weight: 0}, off: {weight: 1, holdout: true}}\n"
    "    priority: 8\n"
    "  denied:\n"
    "    trigger: {feature_denied: private_boards}\n"
    "    audience: 'account.plan == \"pro\"'\n"
    "    content: {type: modal, title: D}\n"
    "    priority: 5\n"
    "  glob:\n"
    "    trigger: {page: \"/b?ards/*\"}\n"
    "    content: {type: banner, title: G}\n"
    "    priority: 4\n"
    "  pre:\n"
    "    trigger: {page: \"/settings/*\"}\n"
    "    content: {type: banner, title: P}\n"
    "    priority: 3\n"
    "  load:\n"
    "    trigger: on_load\n"
    "    content: {type: banner, title: L}\n"
    "    priority: 1\n";

static int setup_yaml(void **state, const char *text, size_t len) {
    fx *f = calloc(1, sizeof *f);
    hr_err err;
    if (hr_test_engine(text, len, &f->cat, &f->e)) return -1;
    int64_t t;
    hr_time_parse("2026-11-22T12:00:00Z", &t);
    f->now_ms = t * 1000;
    assert_int_equal(hr_engine_put_account_json(f->e, "acme", "{\"plan\":\"free\"}", &err), 0);
    assert_int_equal(hr_engine_put_account_json(f->e, "globex", "{\"plan\":\"pro\"}", &err), 0);
    assert_int_equal(hr_campaigns_new(f->e, NULL, &f->cs, &err), 0);
    *state = f;
    return 0;
}

static int setup(void **state) { return setup_yaml(state, yaml, sizeof yaml - 1); }
static int setup2(void **state) { return setup_yaml(state, yaml2, sizeof yaml2 - 1); }

static int teardown(void **state) {
    fx *f = *state;
    hr_campaigns_free(f->cs);
    hr_engine_free(f->e);
    hr_catalog_release(f->cat);
    free(f);
    return 0;
}

/* The campaign keys served, joined by ',' ("" for none). */
static const char *serve(fx *f, const char *acct, const char *user, const char *trigger,
                         const char *page, int64_t at_ms) {
    static char out[256];
    hr_buf b;
    hr_err err;
    hr_buf_init(&b);
    hr_prompt_req q = {acct, user, trigger, page, NULL, at_ms};
    assert_int_equal(hr_campaigns_prompts(f->cs, &q, &b, &err), 0);
    json_object *arr = json_tokener_parse(b.data);
    assert_non_null(arr);
    out[0] = 0;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *p = json_object_array_get_idx(arr, i), *c;
        json_object_object_get_ex(p, "campaign", &c);
        if (i) strcat(out, ",");
        strcat(out, json_object_get_string(c));
    }
    json_object_put(arr);
    hr_buf_dispose(&b);
    return out;
}

static void track(fx *f, const char *acct, const char *user, const char *event, int64_t at_ms) {
    char js[256];
    snprintf(js, sizeof js,
             "{\"type\":\"track\",\"userId\":\"%s\",\"event\":\"%s\",\"context\":{\"groupId\":\"%s\"}}",
             user, event, acct);
    hr_test_ingest(f->e, js, -1, at_ms);
}

static void test_gate_audience_priority(void **state) {
    fx *f = *state;
    int64_t t = f->now_ms;
    /* before the aha moment only the lower campaign qualifies */
    assert_string_equal(serve(f, "acme", "u1", "feature_denied:private_boards", NULL, t), "low");
    track(f, "acme", "u1", "Board Created", t);
    track(f, "acme", "u1", "Board Created", t);
    /* now the higher priority wins; one prompt per request */
    assert_string_equal(serve(f, "acme", "u2", "feature_denied:private_boards", NULL, t + 1), "tip");
    /* audience: not for pro */
    assert_string_equal(serve(f, "globex", "g1", "feature_denied:private_boards", NULL, t), "low");
    /* other triggers */
    assert_string_equal(serve(f, "acme", "u3", "limit_hit:boards", NULL, t), "");
    assert_string_equal(serve(f, "acme", "u4", "page", "/boards/42", t), "page");
    /* a page view is also a load: on_load campaigns qualify */
    assert_string_equal(serve(f, "acme", "u5", "page", "/settings", t), "split");
}

static void test_cap_cooldown_throttle(void **state) {
    fx *f = *state;
    int64_t t = f->now_ms, day = 86400000LL;
    hr_err err;
    track(f, "acme", "u1", "Board Created", t);
    track(f, "acme", "u1", "Board Created", t);
    assert_string_equal(serve(f, "acme", "u1", "feature_denied:private_boards", NULL, t), "tip");
    /* cap 1 per 7d: the next one down the list */
    assert_string_equal(serve(f, "acme", "u1", "feature_denied:private_boards", NULL, t + 1), "low");
    /* throttle 2 per day across campaigns */
    assert_string_equal(serve(f, "acme", "u1", "feature_denied:private_boards", NULL, t + 2), "");
    /* a week and a day later the cap and the throttle have passed */
    assert_string_equal(serve(f, "acme", "u1", "feature_denied:private_boards", NULL, t + 8 * day),
                        "tip");
    /* dismissed: away for the 3-day cooldown, back after it (cap permitting) */
    assert_int_equal(hr_campaigns_event(f->cs, "tip:default", "dismiss", "u1", "acme", t + 8 * day, &err), 0);
    assert_string_equal(serve(f, "acme", "u1", "feature_denied:private_boards", NULL, t + 10 * day), "low");
    assert_string_equal(serve(f, "acme", "u1", "feature_denied:private_boards", NULL, t + 16 * day), "tip");
    /* answered (trial started): never again */
    assert_int_equal(hr_campaigns_event(f->cs, "tip:default", "trial_started", "u1", "acme", t + 16 * day, &err), 0);
    assert_string_equal(serve(f, "acme", "u1", "feature_denied:private_boards", NULL, t + 30 * day), "low");
    /* bad input */
    assert_int_equal(hr_campaigns_event(f->cs, "tip:zzz", "click", "u1", "acme", t, &err), HR_ENOTFOUND);
    assert_int_equal(hr_campaigns_event(f->cs, "tip:default", "wave", "u1", "acme", t, &err), HR_EINVAL);
}

static void test_dates(void **state) {
    fx *f = *state;
    /* "ended" never shows; "split" (on_load) does */
    assert_string_equal(serve(f, "acme", "u1", "on_load", NULL, f->now_ms), "split");
}

static void test_holdout_and_conversion(void **state) {
    fx *f = *state;
    int64_t t = f->now_ms;
    hr_buf b;
    hr_err err;
    assert_string_equal(serve(f, "acme", "u1", "event:Report", NULL, t), "");
    track(f, "acme", "u1", "Plan Upgraded", t + 1000);
    /* exposed in the holdout, converted within the window */
    hr_buf_init(&b);
    assert_int_equal(hr_campaigns_results(f->cs, "held", &b, &err), 0);
    json_object *r = json_tokener_parse(b.data), *vars, *v, *x;
    assert_true(json_object_object_get_ex(r, "variants", &vars));
    v = json_object_array_get_idx(vars, 1);
    json_object_object_get_ex(v, "variant", &x);
    assert_string_equal(json_object_get_string(x), "off");
    json_object_object_get_ex(v, "exposures", &x);
    assert_int_equal(json_object_get_int(x), 1);
    json_object_object_get_ex(v, "conversions", &x);
    assert_int_equal(json_object_get_int(x), 1);
    json_object_put(r);
    hr_buf_dispose(&b);
    /* a goal event after the window does not count */
    assert_string_equal(serve(f, "globex", "g1", "event:Report", NULL, t), "");
    track(f, "globex", "g1", "Plan Upgraded", t + 2 * 86400000LL);
    hr_buf_init(&b);
    assert_int_equal(hr_campaigns_results(f->cs, "held", &b, &err), 0);
    r = json_tokener_parse(b.data);
    json_object_object_get_ex(r, "variants", &vars);
    json_object_object_get_ex(json_object_array_get_idx(vars, 1), "conversions", &x);
    assert_int_equal(json_object_get_int(x), 1);
    json_object_put(r);
    hr_buf_dispose(&b);
}

static void test_assignment(void **state) {
    fx *f = *state;
    int ci = hr_catalog_campaign(f->cat, "split");
    assert_true(ci >= 0);
    const hr_campaign *cp = &f->cat->campaigns[ci];
    int n[2] = {0, 0};
    char id[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(id, sizeof id, "user-%d", i);
        int v = hr_campaign_assign(cp, id);
        assert_int_equal(v, hr_campaign_assign(cp, id)); /* deterministic */
        n[v]++;
    }
    /* 50/50 within 1% */
    assert_true(n[0] > 49500 && n[0] < 50500);
    /* a weight of 0 gets nobody */
    const hr_campaign *held = &f->cat->campaigns[hr_catalog_campaign(f->cat, "held")];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "acct-%d", i);
        assert_string_equal(held->variants[hr_campaign_assign(held, id)].key, "off");
    }
}

static void test_index_and_order(void **state) {
    fx *f = *state;
    int64_t t = f->now_ms;
    hr_buf b;
    hr_err err;
    /* a denied feature is also the moment for its element's campaign */
    assert_string_equal(serve(f, "acme", "u1", "feature_denied:private_boards", NULL, t), "elem");
    assert_string_equal(serve(f, "acme", "u2", "element:private_boards", NULL, t), "elem");
    assert_string_equal(serve(f, "globex", "g1", "limit_hit:boards", NULL, t), "");
    /* a holdout is exposed and the walk goes on down the list; a pattern
     * with '?' (fnmatch) and a "literal*" one (a prefix) */
    assert_string_equal(serve(f, "acme", "u3", "page", "/boards/1", t), "glob");
    assert_string_equal(serve(f, "acme", "u4", "page", "/settings/team", t), "pre");
    assert_string_equal(serve(f, "acme", "u5", "page", "/settingsx", t), "load");
    assert_string_equal(serve(f, "acme", "u6", NULL, NULL, t), "load");
    /* throttled: nothing, whatever the rules; an unknown account is still
     * an error */
    assert_string_equal(serve(f, "acme", "u1", "on_load", NULL, t + 1), "");
    hr_buf_init(&b);
    hr_prompt_req q = {"nobody", "u1", "on_load", NULL, NULL, t + 1};
    assert_int_equal(hr_campaigns_prompts(f->cs, &q, &b, &err), HR_ENOTFOUND);
    hr_buf_dispose(&b);
    /* the per-user state survives the state table growing many times over */
    char user[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(user, sizeof user, "many-%d", i);
        assert_string_equal(serve(f, "acme", user, "on_load", NULL, t), "load");
    }
    for (int i = 0; i < 20000; i++) {
        snprintf(user, sizeof user, "many-%d", i);
        assert_string_equal(serve(f, "acme", user, "on_load", NULL, t + 1), "");
    }
    /* a day later the throttle has passed */
    assert_string_equal(serve(f, "acme", "many-7", "on_load", NULL, t + 86400001LL), "load");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gate_audience_priority, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap_cooldown_throttle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_holdout_and_conversion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assignment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_and_order, setup2, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
