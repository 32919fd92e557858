/* test_ingest.c: events into meters in the engine (no store): dedup by
 * messageId and its 7-day window, account resolution (context, property,
 * membership), periods (late events do not touch the current one), the
 * aggregates as a feature reads them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "entitle/engine.h"
#include "events/segment.h"
#include "store/store.h"
#include "timeutil.h"
#include "../fixture.h"

static const char yaml[] =
    "currency: USD\n"
    "meters:\n"
    "  calls: {event: API Called, aggregate: count}\n"
    "  boards: {event: Board Created, aggregate: count, period: lifetime}\n"
    "  users: {event: '*', aggregate: unique, property: userId}\n"
    "  cycle_calls: {event: API Called, aggregate: count, period: billing_cycle}\n"
    "  added: {event: headroom.user_added, aggregate: count, period: lifetime}\n"
    "features:\n"
    "  api_calls: {type: metered, unit: call, period: month, meter: calls}\n"
    "  board_count: {type: limit, unit: board, meter: boards}\n"
    "plans:\n"
    "  free: {price: 0, entitlements: {api_calls: 5, board_count: 3}}\n";

typedef struct fx {
    hr_catalog *cat;
    hr_engine *e;
    int64_t now_ms;
} fx;

static int setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    hr_err err;
    if (hr_test_engine(yaml, sizeof yaml - 1, &f->cat, &f->e)) return -1;
    int64_t t;
    hr_time_parse("2026-11-22T12:00:00Z", &t);
    f->now_ms = t * 1000;
    assert_int_equal(hr_engine_put_account_json(f->e, "acme", "{\"plan\":\"free\",\"renews_at\":\"2026-12-05T00:00:00Z\"}", &err), 0);
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

/* Ingests one message (JSON) at now_ms; returns its status. */
static int send1(fx *f, const char *json, int64_t now_ms) {
    return hr_test_ingest(f->e, json, -1, now_ms);
}

static int64_t usage(fx *f, const char *feature) {
    hr_verdict v;
    hr_engine_check(f->e, "acme", feature, 0, f->now_ms / 1000, &v);
    return v.usage;
}

static void dedup_and_window(void **state) {
    fx *f = *state;
    const char *m1 = "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"API Called\",\"messageId\":\"m1\",\"context\":{\"groupId\":\"acme\"}}";
    assert_int_equal(send1(f, m1, f->now_ms - 8LL * 86400000), HR_INGEST_OK); /* Nov 14 */
    assert_int_equal(send1(f, m1, f->now_ms - 8LL * 86400000 + 1000), HR_INGEST_DUPLICATE);
    /* eight days later the id has left the 7-day window: a new event */
    assert_int_equal(send1(f, "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"Other\",\"messageId\":\"x\"}", f->now_ms), HR_INGEST_NO_ACCOUNT);
    assert_int_equal(send1(f, m1, f->now_ms), HR_INGEST_OK);
    assert_int_equal(send1(f, m1, f->now_ms), HR_INGEST_DUPLICATE);
    /* no messageId: never deduplicated */
    const char *anon = "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"API Called\",\"properties\":{\"accountId\":\"acme\"}}";
    assert_int_equal(send1(f, anon, f->now_ms), HR_INGEST_OK);
    assert_int_equal(send1(f, anon, f->now_ms), HR_INGEST_OK);
    assert_int_equal(usage(f, "api_calls"), 4); /* m1 twice (8 days apart) + two anonymous */
}

/* One batch repeating its ids: each counts once, the repeats are
 * duplicates (the batch's own id set, by hash, as the window's). */
static void duplicates_within_a_batch(void **state) {
    fx *f = *state;
    enum { N = 1200 };
    json_object *objs[N];
    hr_msg msgs[N];
    int st[N];
    hr_err err = {0};
    for (int i = 0; i < N; i++) {
        char json[200];
        /* ids 0..599, each twice: the second half repeats the first */
        snprintf(json, sizeof json,
                 "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"API Called\","
                 "\"messageId\":\"batch-%d\",\"context\":{\"groupId\":\"acme\"}}",
                 i % (N / 2));
        assert_non_null(objs[i] = json_tokener_parse(json));
        assert_int_equal(hr_msg_parse(objs[i], -1, strlen(json), 0, f->now_ms, &msgs[i], &err), 0);
    }
    assert_int_equal(hr_engine_ingest(f->e, msgs, N, f->now_ms, st, &err), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(st[i], i < N / 2 ? HR_INGEST_OK : HR_INGEST_DUPLICATE);
    assert_int_equal(usage(f, "api_calls"), N / 2);
    /* and in the next batch too */
    assert_int_equal(send1(f, "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"API Called\","
                              "\"messageId\":\"batch-7\",\"context\":{\"groupId\":\"acme\"}}",
                           f->now_ms),
                     HR_INGEST_DUPLICATE);
    for (int i = 0; i < N; i++) json_object_put(objs[i]);
}

static void membership_and_periods(void **state) {
    fx *f = *state;
    hr_err err = {0};
    assert_int_equal(hr_engine_join(f->e, "acme", "u7", NULL, NULL, 0, &err), 0);
    char acct[64];
    assert_int_equal(hr_engine_user_account(f->e, "u7", acct, sizeof acct), 0);
    assert_string_equal(acct, "acme");
    for (int i = 0; i < 3; i++)
        assert_int_equal(send1(f, "{\"type\":\"track\",\"userId\":\"u7\",\"event\":\"Board Created\"}", f->now_ms), HR_INGEST_OK);
    /* a board from last year still counts: lifetime */
    assert_int_equal(send1(f, "{\"type\":\"track\",\"userId\":\"u7\",\"event\":\"Board Created\",\"timestamp\":\"2025-03-01T00:00:00Z\"}", f->now_ms), HR_INGEST_OK);
    assert_int_equal(usage(f, "board_count"), 4);
    hr_verdict v;
    hr_engine_check(f->e, "acme", "board_count", 1, f->now_ms / 1000, &v);
    assert_int_equal(v.reason, HR_REASON_LIMIT_REACHED);
    /* API calls: this month counts; a late one from October does not */
    assert_int_equal(send1(f, "{\"type\":\"track\",\"userId\":\"u7\",\"event\":\"API Called\"}", f->now_ms), HR_INGEST_OK);
    assert_int_equal(send1(f, "{\"type\":\"track\",\"userId\":\"u7\",\"event\":\"API Called\",\"timestamp\":\"2026-10-30T10:00:00Z\"}", f->now_ms), HR_INGEST_OK);
    assert_int_equal(usage(f, "api_calls"), 1);
    double d;
    assert_int_equal(hr_engine_meter_value(f->e, "acme", "calls", f->now_ms / 1000, &d), 0);
    assert_true(d == 1);
    /* the billing cycle runs from the 5th (renews 5 Dec): Nov 5 - Dec 5 */
    assert_int_equal(hr_engine_meter_value(f->e, "acme", "cycle_calls", f->now_ms / 1000, &d), 0);
    assert_true(d == 1);
    /* unique users across every event: u7 only */
    assert_int_equal(send1(f, "{\"type\":\"track\",\"userId\":\"u8\",\"event\":\"Seen\",\"context\":{\"groupId\":\"acme\"}}", f->now_ms), HR_INGEST_OK);
    assert_int_equal(hr_engine_meter_value(f->e, "acme", "users", f->now_ms / 1000, &d), 0);
    assert_true(d == 2);
    /* the metered feature resets with its meter: the first of next month */
    int64_t dec1;
    hr_time_parse("2026-12-01T00:00:00Z", &dec1);
    assert_int_equal(v.resets_at, 0); /* board_count: a lifetime meter never resets */
    hr_engine_check(f->e, "acme", "api_calls", 1, f->now_ms / 1000, &v);
    assert_int_equal(v.resets_at, dec1);
    assert_int_equal(hr_engine_meter_value(f->e, "acme", "nope", 0, &d), HR_ELIMIT);
    assert_int_equal(hr_engine_meter_value(f->e, "nobody", "calls", 0, &d), HR_ENOTFOUND);
}

static void group_creates_account(void **state) {
    fx *f = *state;
    hr_err err = {0};
    json_object *t = json_tokener_parse("{\"name\":\"New Co\",\"size\":12}");
    assert_int_equal(hr_engine_join(f->e, "newco", "u1", t, NULL, 0, &err), 0);
    json_object_put(t);
    hr_buf out;
    hr_buf_init(&out);
    assert_int_equal(hr_engine_get_account(f->e, "newco", &out), 0);
    assert_non_null(strstr(out.data, "\"name\":\"New Co\""));
    assert_non_null(strstr(out.data, "\"size\":12"));
    assert_non_null(strstr(out.data, "\"plan\":\"free\""));
    hr_buf_dispose(&out);
    assert_true(hr_engine_has_user(f->e, "newco", "u1"));
    /* joining recorded headroom.user_added, once per new member */
    double d;
    assert_int_equal(hr_engine_meter_value(f->e, "newco", "added", 0, &d), 0);
    assert_true(d == 1);
    assert_int_equal(hr_engine_join(f->e, "newco", "u1", NULL, NULL, 0, &err), 0);
    json_object *doc = json_tokener_parse("{\"role\":\"admin\"}");
    assert_int_equal(hr_engine_put_user(f->e, "newco", "u2", doc, NULL, NULL, &err), 0);
    json_object_put(doc);
    assert_int_equal(hr_engine_meter_value(f->e, "newco", "added", 0, &d), 0);
    assert_true(d == 2);
}

static void event_history(void **state) {
    fx *f = *state;
    hr_err err = {0};
    assert_int_equal(hr_engine_join(f->e, "acme", "dm", NULL, NULL, 0, &err), 0);
    int64_t day = 86400000;
    /* a decision maker active on 3 of the last 7 days, 2 boards 40 days ago */
    for (int d = 0; d < 3; d++)
        assert_int_equal(send1(f, "{\"type\":\"track\",\"userId\":\"dm\",\"event\":\"Board Opened\"}",
                               f->now_ms - d * 2 * day), HR_INGEST_OK);
    assert_int_equal(send1(f, "{\"type\":\"track\",\"userId\":\"dm\",\"event\":\"Board Opened\"}", f->now_ms), HR_INGEST_OK);
    for (int i = 0; i < 2; i++)
        assert_int_equal(send1(f, "{\"type\":\"track\",\"userId\":\"x\",\"event\":\"Board Created\",\"context\":{\"groupId\":\"acme\"}}",
                               f->now_ms - 40 * day), HR_INGEST_OK);
    int64_t now = f->now_ms / 1000, n = 0, first, last;
    int active = 0;
    assert_int_equal(hr_engine_event_count(f->e, "acme", NULL, "Board Opened", 7, now, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(hr_engine_event_count(f->e, "acme", NULL, "Board Opened", 1, now, &n), 0);
    assert_int_equal(n, 2); /* today */
    assert_int_equal(hr_engine_active_days(f->e, "acme", "dm", "Board Opened", 7, now, &active), 0);
    assert_int_equal(active, 3);
    assert_int_equal(hr_engine_active_days(f->e, "acme", "dm", "*", 3, now, &active), 0);
    assert_int_equal(active, 2); /* today and two days ago */
    assert_int_equal(hr_engine_event_count(f->e, "acme", NULL, "Board Created", 30, now, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(hr_engine_event_count(f->e, "acme", NULL, "Board Created", 41, now, &n), 0);
    assert_int_equal(n, 2);
    /* "x" is not a member: only the account's history has its events */
    assert_int_equal(hr_engine_event_count(f->e, "acme", "x", "Board Created", 41, now, &n), HR_ENOTFOUND);
    /* the join itself is history: headroom.user_added, but not in "*"; the
     * join is stamped with the real clock, not the test's */
    assert_int_equal(hr_engine_event_count(f->e, "acme", NULL, "headroom.user_added", 7,
                                           hr_time_now(), &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(hr_engine_event_count(f->e, "acme", NULL, "*", 60, now, &n), 0);
    assert_int_equal(n, 6);
    assert_int_equal(hr_engine_event_seen(f->e, "acme", NULL, "Board Created", &first, &last), 0);
    assert_true(first == f->now_ms - 40 * day && last == first);
    assert_int_equal(hr_engine_event_seen(f->e, "acme", "dm", "Board Opened", &first, &last), 0);
    assert_true(first == f->now_ms - 4 * day && last == f->now_ms);
    assert_int_equal(hr_engine_event_seen(f->e, "acme", NULL, "Never", &first, &last), 0);
    assert_true(first == 0 && last == 0);
    assert_int_equal(hr_engine_event_count(f->e, "nobody", NULL, "*", 7, now, &n), HR_ENOTFOUND);
}

/* An engine on the SQLite file at path (opened, loaded, replayed) in *s. */
static hr_engine *on_store(fx *f, const char *path, hr_store **s) {
    hr_err err = {0};
    assert_int_equal(hr_store_sqlite_open(path, 0, s, &err), 0);
    hr_engine *e = hr_engine_new(f->cat);
    assert_int_equal(hr_engine_attach_store(e, *s, &err), 0);
    return e;
}

/* Meters, history, dedup and membership come back from the store. */
static void survives_restart(void **state) {
    fx *f = *state;
    char dir[] = "/tmp/hr-ingest-XXXXXX", path[64];
    hr_test_db_dir(dir, path, sizeof path);
    hr_store *s = NULL;
    hr_err err = {0};
    hr_engine *e = on_store(f, path, &s);
    assert_int_equal(hr_engine_put_account_json(e, "acme", "{\"plan\":\"free\"}", &err), 0);
    assert_int_equal(hr_engine_join(e, "acme", "u1", NULL, NULL, 0, &err), 0);
    hr_engine *keep = f->e;
    f->e = e;
    int64_t now = hr_time_now() * 1000;
    assert_int_equal(send1(f, "{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"API Called\",\"messageId\":\"a\"}", now), HR_INGEST_OK);
    assert_int_equal(send1(f, "{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"Board Created\",\"messageId\":\"b\"}", now - 86400000), HR_INGEST_OK);
    hr_engine_free(e);
    hr_store_close(s);
    f->e = e = on_store(f, path, &s);
    double d;
    assert_int_equal(hr_engine_meter_value(e, "acme", "calls", 0, &d), 0);
    assert_true(d == 1);
    int64_t n;
    int active;
    assert_int_equal(hr_engine_event_count(e, "acme", "u1", "Board Created", 7, 0, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(hr_engine_active_days(e, "acme", NULL, "*", 7, 0, &active), 0);
    assert_int_equal(active, 2);
    assert_int_equal(send1(f, "{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"API Called\",\"messageId\":\"a\"}", now), HR_INGEST_DUPLICATE);
    assert_int_equal(send1(f, "{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"API Called\"}", now), HR_INGEST_OK);
    assert_int_equal(hr_engine_meter_value(e, "acme", "calls", 0, &d), 0);
    assert_true(d == 2); /* reached acme through u1's membership */
    hr_engine_free(e);
    hr_store_close(s);
    f->e = keep;
    hr_test_rm_dir(dir);
}

static void usage_thresholds(void **state) {
    fx *f = *state;
    int64_t n, now = f->now_ms / 1000;
    const char *call = "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"API Called\",\"context\":{\"groupId\":\"acme\"}}";
    for (int i = 0; i < 3; i++) send1(f, call, f->now_ms);
    assert_int_equal(hr_engine_event_count(f->e, "acme", NULL, "headroom.usage_threshold", 1, now, &n), 0);
    assert_int_equal(n, 0); /* 3 of 5 */
    send1(f, call, f->now_ms);
    assert_int_equal(hr_engine_event_count(f->e, "acme", NULL, "headroom.usage_threshold", 1, now, &n), 0);
    assert_int_equal(n, 1); /* 4 of 5: 80% */
    send1(f, call, f->now_ms);
    send1(f, call, f->now_ms);
    assert_int_equal(hr_engine_event_count(f->e, "acme", NULL, "headroom.usage_threshold", 1, now, &n), 0);
    assert_int_equal(n, 2); /* 5 of 5: 100%, once; 6 crosses nothing new */
    /* usage set over the API crosses both at once */
    hr_err err = {0};
    int st;
    hr_buf out;
    hr_buf_init(&out);
    assert_int_equal(hr_engine_record_usage(f->e, "acme", "board_count", 3, 1, NULL, 0, now, &st, &out, &err), 0);
    hr_buf_dispose(&out);
    assert_int_equal(hr_engine_event_count(f->e, "acme", NULL, "headroom.usage_threshold", 1, now, &n), 0);
    assert_int_equal(n, 4);
}

/* usage_thresholds and a feature's own thresholds replace 80% / 100% */
static void configured_thresholds(void **state) {
    fx *f = *state;
    hr_err err = {0};
    /* the fixture's catalog with both lists written in */
    const char *at = strstr(yaml, "board_count: {type: limit,");
    assert_non_null(at);
    int head = (int)(at - yaml) + (int)strlen("board_count: {");
    char text[sizeof yaml + 200];
    snprintf(text, sizeof text, "usage_thresholds: [0.2, 0.6]\n%.*sthresholds: [0.5], %s", head,
             yaml, yaml + head);
    hr_catalog *c = NULL;
    if (hr_catalog_parse(text, strlen(text), "t.yaml", &c, &err, NULL))
        fail_msg("%d:%d: %s", err.line, err.column, err.message);
    assert_int_equal(hr_engine_set_catalog(f->e, c, &err), 0);
    hr_catalog_release(c);
    int64_t n, now = f->now_ms / 1000;
    const char *call = "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"API Called\",\"context\":{\"groupId\":\"acme\"}}";
    send1(f, call, f->now_ms);
    assert_int_equal(hr_engine_event_count(f->e, "acme", NULL, "headroom.usage_threshold", 1, now, &n), 0);
    assert_int_equal(n, 1); /* 1 of 5: 20% */
    send1(f, call, f->now_ms);
    send1(f, call, f->now_ms);
    assert_int_equal(hr_engine_event_count(f->e, "acme", NULL, "headroom.usage_threshold", 1, now, &n), 0);
    assert_int_equal(n, 2); /* 3 of 5: 60% */
    send1(f, call, f->now_ms);
    send1(f, call, f->now_ms);
    assert_int_equal(hr_engine_event_count(f->e, "acme", NULL, "headroom.usage_threshold", 1, now, &n), 0);
    assert_int_equal(n, 2); /* 100% is no longer a threshold */
    int st;
    hr_buf out;
    hr_buf_init(&out);
    assert_int_equal(hr_engine_record_usage(f->e, "acme", "board_count", 2, 1, NULL, 0, now, &st, &out, &err), 0);
    hr_buf_dispose(&out);
    assert_int_equal(hr_engine_event_count(f->e, "acme", NULL, "headroom.usage_threshold", 1, now, &n), 0);
    assert_int_equal(n, 3); /* 2 of 3 boards crosses the feature's own 50% */
}

static void feature_denied(void **state) {
    fx *f = *state;
    hr_err err = {0};
    /* a loop of denials is one event a minute per account, user and feature */
    for (int i = 0; i < 3; i++) hr_engine_note_denied(f->e, "acme", "u1", "sso");
    hr_engine_note_denied(f->e, "acme", "u2", "sso");
    hr_engine_note_denied(f->e, "acme", "u2", "private");
    hr_engine_note_denied(f->e, "nobody", NULL, "sso"); /* logged, reaches no account */
    int64_t n;
    assert_int_equal(hr_engine_event_count(f->e, "acme", NULL, "headroom.feature_denied", 1, 0, &n), 0);
    assert_int_equal(n, 0); /* not until flushed */
    assert_int_equal(hr_engine_flush_internal(f->e, &err), 0);
    assert_int_equal(hr_engine_event_count(f->e, "acme", NULL, "headroom.feature_denied", 1, 0, &n), 0);
    assert_int_equal(n, 3);
    hr_engine_note_denied(f->e, "acme", "u1", "sso"); /* within the minute: throttled */
    assert_int_equal(hr_engine_flush_internal(f->e, &err), 0);
    assert_int_equal(hr_engine_event_count(f->e, "acme", NULL, "headroom.feature_denied", 1, 0, &n), 0);
    assert_int_equal(n, 3);
}

/* Meters follow the log: what was flushed comes from the table, the rest
 * from the replay; deleting an account writes first, so its logged events
 * never come back into a new account of the same id. */
static void replay_after_flush_and_delete(void **state) {
    fx *f = *state;
    char dir[] = "/tmp/hr-replay-XXXXXX", path[64];
    hr_test_db_dir(dir, path, sizeof path);
    hr_store *s = NULL;
    hr_err err = {0};
    hr_engine *keep = f->e;
    f->e = on_store(f, path, &s);
    int64_t now = hr_time_now() * 1000;
    char js[200];
    int id = 0;
#define CALL(acct) \
    (snprintf(js, sizeof js, "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"API Called\"," \
              "\"messageId\":\"r%d\",\"context\":{\"groupId\":\"%s\"}}", id++, acct), \
     assert_int_equal(send1(f, js, now), HR_INGEST_OK))
    hr_test_put_account(f->e, "acme", "{\"plan\":\"free\"}");
    hr_test_put_account(f->e, "globex", "{\"plan\":\"free\"}");
    CALL("acme"), CALL("acme"), CALL("globex");
    assert_int_equal(hr_engine_flush_derived(f->e, 0, &err), 0);
    CALL("acme"), CALL("globex"); /* logged, not yet in the meter table */
    assert_int_equal(hr_engine_delete_account(f->e, "acme", &err), 0);
    hr_test_put_account(f->e, "acme", "{\"plan\":\"free\"}");
    CALL("acme");
#undef CALL
    hr_engine_free(f->e); /* a crash: nothing flushed since the delete */
    hr_store_close(s);
    f->e = on_store(f, path, &s);
    double d = -1;
    assert_int_equal(hr_engine_meter_value(f->e, "acme", "calls", 0, &d), 0);
    assert_true(d == 1); /* only the new account's own */
    assert_int_equal(hr_engine_meter_value(f->e, "globex", "calls", 0, &d), 0);
    assert_true(d == 2); /* from the table: the delete wrote the second too */
    hr_engine_free(f->e);
    hr_store_close(s);
    f->e = keep;
    hr_test_rm_dir(dir);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(dedup_and_window), T(duplicates_within_a_batch), T(membership_and_periods),
        T(group_creates_account),
        T(event_history),       T(survives_restart),     T(usage_thresholds), T(configured_thresholds),
        T(feature_denied),      T(replay_after_flush_and_delete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
