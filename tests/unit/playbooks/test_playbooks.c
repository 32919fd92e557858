/* test_playbooks.c: playbooks over an in-memory engine: a signal fires on
 * its rising edge only, not again while it holds, again after it fell and
 * the cooldown passed; a signal that rises inside the cooldown fires once
 * the cooldown is over; the sweep finds time-based signals; messages are
 * rendered; scores; tasks move through the inbox; round robin. */
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
#include "playbooks/playbooks.h"
#include "timeutil.h"
#include "../fixture.h"

static const char yaml[] =
    "features:\n"
    "  seats: {type: limit}\n"
    "plans:\n"
    "  free: {entitlements: {seats: 3}}\n"
    "  pro: {entitlements: {seats: 10}}\n"
    "teams: {ae: [alice, bob]}\n"
    "playbooks:\n"
    "  busy:\n"
    "    signal: 'account.plan != \"free\" && count(\"Login\", 7d) >= 3'\n"
    "    value: 'count(\"Login\", 7d)'\n"
    "    message: \"{{account.name}} logged in {{signal.value}} times ({{account.industry}})\"\n"
    "    actions: [{type: task, assign: owner}]\n"
    "    cooldown: 10d\n"
    "  renewal:\n"
    "    signal: 'days_to_renewal() <= 30'\n"
    "    message: \"{{account.name}} renews soon\"\n"
    "    actions: [{type: task, assign: 'team:ae'}]\n"
    "scoring:\n"
    "  weights: {limit_pressure: 50, big: 50}\n"
    "  facts: {big: 'account.employees >= 100'}\n";

typedef struct fx {
    hr_catalog *cat;
    hr_engine *e;
    hr_playbooks *p;
    int64_t t0;
} fx;

static const int64_t DAY = 86400000LL;

static int setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    hr_err err;
    if (hr_test_engine(yaml, sizeof yaml - 1, &f->cat, &f->e)) return -1;
    int64_t t;
    hr_time_parse("2026-11-22T12:00:00Z", &t);
    f->t0 = t * 1000;
    assert_int_equal(hr_engine_put_account_json(
                         f->e, "acme",
                         "{\"plan\":\"pro\",\"name\":\"Acme\",\"owner\":\"carol\","
                         "\"renews_at\":\"2027-06-01T00:00:00Z\",\"traits\":{\"industry\":\"fin\","
                         "\"employees\":250}}",
                         &err),
                     0);
    assert_int_equal(hr_engine_put_account_json(f->e, "tiny", "{\"plan\":\"free\",\"name\":\"Tiny\","
                                                              "\"renews_at\":\"2026-12-10T00:00:00Z\"}",
                                                &err),
                     0);
    assert_int_equal(hr_playbooks_new(f->e, NULL, NULL, NULL, &f->p, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    hr_playbooks_free(f->p);
    hr_engine_free(f->e);
    hr_catalog_release(f->cat);
    free(f);
    return 0;
}

static void login(fx *f, const char *acct, int64_t at_ms) {
    char js[200];
    snprintf(js, sizeof js, "{\"userId\":\"u1\",\"event\":\"Login\",\"context\":{\"groupId\":\"%s\"}}", acct);
    hr_test_ingest(f->e, js, HR_MSG_TRACK, at_ms);
}

static int eval(fx *f, const char *acct, int64_t at_ms) {
    int fired = 0;
    hr_err err;
    assert_int_equal(hr_playbooks_eval_account(f->p, acct, at_ms, &fired, &err), 0);
    return fired;
}

/* The inbox as JSON (caller puts). */
static json_object *inbox(fx *f, const char *owner, const char *status, int64_t now) {
    hr_buf b;
    hr_err err;
    hr_buf_init(&b);
    assert_int_equal(hr_playbooks_inbox(f->p, owner, status, 100, now, &b, &err), 0);
    json_object *o = json_tokener_parse(b.data);
    hr_buf_dispose(&b);
    json_object *tasks;
    assert_true(json_object_object_get_ex(o, "tasks", &tasks));
    json_object_get(tasks);
    json_object_put(o);
    return tasks;
}

static const char *str_at(json_object *arr, size_t i, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(json_object_array_get_idx(arr, i), key, &v)) return NULL;
    return json_object_get_string(v);
}

static void test_edge_and_cooldown(void **state) {
    fx *f = *state;
    int64_t t = f->t0;
    login(f, "acme", t);
    login(f, "acme", t);
    assert_int_equal(eval(f, "acme", t), 0); /* 2 logins: not yet */
    login(f, "acme", t);
    assert_int_equal(eval(f, "acme", t + 1), 1); /* rises: fires */
    login(f, "acme", t + 2);
    assert_int_equal(eval(f, "acme", t + 3), 0); /* still true: no second firing */
    json_object *tasks = inbox(f, "carol", NULL, t + 3);
    assert_int_equal(json_object_array_length(tasks), 1);
    assert_string_equal(str_at(tasks, 0, "message"), "Acme logged in 3 times (fin)");
    assert_string_equal(str_at(tasks, 0, "playbook"), "busy");
    json_object_put(tasks);
    /* a week later the logins fall out of the window: the signal falls */
    assert_int_equal(eval(f, "acme", t + 8 * DAY), 0);
    /* rises again on day 9: inside the 10-day cooldown, so it waits */
    for (int i = 0; i < 3; i++) login(f, "acme", t + 9 * DAY);
    assert_int_equal(eval(f, "acme", t + 9 * DAY), 0);
    /* ... and fires once the cooldown has passed while it still holds */
    assert_int_equal(eval(f, "acme", t + 10 * DAY + 1000), 1);
    assert_int_equal(eval(f, "acme", t + 10 * DAY + 2000), 0);
    /* the free account never qualifies */
    for (int i = 0; i < 5; i++) login(f, "tiny", t);
    assert_int_equal(eval(f, "tiny", t + 1), 1); /* (renewal in 18 days: that one fires) */
    assert_int_equal(eval(f, "tiny", t + 2), 0);
}

static void test_sweep_round_robin_inbox(void **state) {
    fx *f = *state;
    int64_t t = f->t0;
    int fired = 0;
    hr_err err;
    /* tiny renews on 2026-12-10: within 30 days; acme in June */
    assert_int_equal(hr_playbooks_sweep(f->p, t, &fired, &err), 0);
    assert_int_equal(fired, 1);
    /* 2027-05-15: acme's renewal comes within 30 days */
    int64_t later;
    hr_time_parse("2027-05-15T00:00:00Z", &later);
    fired = 0;
    assert_int_equal(hr_playbooks_sweep(f->p, later * 1000, &fired, &err), 0);
    assert_int_equal(fired, 1);
    json_object *tasks = inbox(f, NULL, NULL, later * 1000);
    assert_int_equal(json_object_array_length(tasks), 2);
    /* round robin over team ae; ranked by score: acme (big) first */
    assert_string_equal(str_at(tasks, 0, "account"), "acme");
    assert_string_equal(str_at(tasks, 0, "owner"), "bob");
    assert_string_equal(str_at(tasks, 1, "owner"), "alice");
    char id[64];
    snprintf(id, sizeof id, "%s", str_at(tasks, 0, "id"));
    json_object_put(tasks);
    /* claim, snooze, complete */
    hr_buf b;
    hr_buf_init(&b);
    assert_int_equal(hr_playbooks_task_action(f->p, id, "claim", "dana", 0, later * 1000, &b, &err), 0);
    hr_buf_reset(&b);
    tasks = inbox(f, "dana", "claimed", later * 1000);
    assert_int_equal(json_object_array_length(tasks), 1);
    json_object_put(tasks);
    assert_int_equal(hr_playbooks_task_action(f->p, id, "snooze", NULL, later * 1000 + DAY, later * 1000, &b, &err), 0);
    tasks = inbox(f, "dana", NULL, later * 1000);
    assert_int_equal(json_object_array_length(tasks), 0); /* snoozed: out of the open list */
    json_object_put(tasks);
    tasks = inbox(f, "dana", NULL, later * 1000 + 2 * DAY);
    assert_int_equal(json_object_array_length(tasks), 1); /* back after the snooze */
    json_object_put(tasks);
    assert_int_equal(hr_playbooks_task_action(f->p, id, "complete", NULL, 0, later * 1000, &b, &err), 0);
    assert_int_equal(hr_playbooks_task_action(f->p, id, "claim", NULL, 0, later * 1000, &b, &err), HR_ECONFLICT);
    assert_int_equal(hr_playbooks_task_action(f->p, id, "wave", NULL, 0, later * 1000, &b, &err), HR_EINVAL);
    assert_int_equal(hr_playbooks_task_action(f->p, "task_nope", "claim", NULL, 0, later * 1000, &b, &err), HR_ENOTFOUND);
    hr_buf_dispose(&b);
}

static void test_scores_and_dry_run(void **state) {
    fx *f = *state;
    hr_err err;
    hr_buf b;
    assert_true(hr_playbooks_score(f->p, "acme") < 0); /* never evaluated */
    eval(f, "acme", f->t0);
    eval(f, "tiny", f->t0);
    /* acme: big (50), no limit pressure: 50; tiny: 0 */
    assert_true(hr_playbooks_score(f->p, "acme") > 49.9 && hr_playbooks_score(f->p, "acme") < 50.1);
    assert_true(hr_playbooks_score(f->p, "tiny") < 0.1);
    hr_buf_init(&b);
    hr_playbooks_top(f->p, 10, &b);
    assert_non_null(strstr(b.data, "{\"accounts\":[{\"id\":\"acme\""));
    hr_buf_reset(&b);
    assert_int_equal(hr_playbooks_dry_run(f->p, "renewal", 10, f->t0, &b, &err), 0);
    json_object *o = json_tokener_parse(b.data), *m;
    assert_true(json_object_object_get_ex(o, "matches", &m));
    assert_int_equal(json_object_array_length(m), 1); /* tiny */
    json_object_put(o);
    assert_int_equal(hr_playbooks_dry_run(f->p, "nope", 10, f->t0, &b, &err), HR_ENOTFOUND);
    /* a deleted account leaves the ranking once it is evaluated (a write touches it) */
    assert_int_equal(hr_engine_delete_account(f->e, "acme", &err), 0);
    assert_int_equal(hr_playbooks_eval_account(f->p, "acme", f->t0, NULL, &err), HR_ENOTFOUND);
    assert_true(hr_playbooks_score(f->p, "acme") < 0);
    hr_buf_reset(&b);
    hr_playbooks_top(f->p, 10, &b);
    assert_null(strstr(b.data, "\"acme\""));
    assert_non_null(strstr(b.data, "\"tiny\""));
    hr_buf_dispose(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_edge_and_cooldown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_round_robin_inbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scores_and_dry_run, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
