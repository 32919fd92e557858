/* test_events.c: Segment message validation (limits, skew correction, the
 * account), meter matching and inputs, periods (month ends, billing cycles
 * on the 31st, leap years, UTC offsets) and folding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/meter.h"
#include "events/segment.h"
#include "timeutil.h"

static int64_t T(const char *s) {
    int64_t v = 0;
    assert_int_equal(hr_time_parse(s, &v), 0);
    return v;
}

static int64_t MS(const char *s) {
    int64_t v = 0;
    assert_int_equal(hr_time_parse_ms(s, &v), 0);
    return v;
}

static int parse(const char *json, int type, hr_msg *m, hr_err *err, json_object **keep) {
    *keep = json_tokener_parse(json);
    assert_non_null(*keep);
    return hr_msg_parse(*keep, type, strlen(json), 0, MS("2026-11-22T12:00:00Z"), m, err);
}

static void track_valid_and_account(void **state) {
    hr_msg m;
    hr_err err = {0};
    json_object *o;
    assert_int_equal(parse("{\"userId\":\"u1\",\"event\":\"Board Created\",\"messageId\":\"m1\","
                           "\"context\":{\"groupId\":\"acme\"},\"properties\":{\"accountId\":\"x\"}}",
                           HR_MSG_TRACK, &m, &err, &o), 0);
    assert_string_equal(m.event, "Board Created");
    assert_string_equal(m.message_id, "m1");
    assert_string_equal(m.account, "acme"); /* context.groupId wins */
    assert_int_equal(m.timestamp_ms, MS("2026-11-22T12:00:00Z"));
    json_object_put(o);
    assert_int_equal(parse("{\"anonymousId\":\"a1\",\"event\":\"E\",\"properties\":{\"accountId\":\"globex\"}}",
                           HR_MSG_TRACK, &m, &err, &o), 0);
    assert_string_equal(m.account, "globex");
    assert_null(m.message_id);
    json_object_put(o);
    assert_int_equal(parse("{\"userId\":42,\"event\":\"E\"}", HR_MSG_TRACK, &m, &err, &o), 0);
    assert_string_equal(m.user_id, "42");
    assert_null(m.account); /* resolved later from the user's group */
    json_object_put(o);
}

static void invalid_messages(void **state) {
    static const struct { const char *json; int type; const char *msg; } cases[] = {
        {"{\"event\":\"E\"}", HR_MSG_TRACK, "userId"},
        {"{\"userId\":\"u\"}", HR_MSG_TRACK, "needs 'event'"},
        {"{\"userId\":\"u\"}", HR_MSG_GROUP, "groupId"},
        {"{\"userId\":\"u\",\"event\":7.5}", HR_MSG_TRACK, "'event' must be a string"},
        {"{\"userId\":\"u\",\"event\":\"E\",\"properties\":[]}", HR_MSG_TRACK, "'properties' must be an object"},
        {"{\"userId\":\"u\",\"event\":\"E\",\"timestamp\":\"yesterday\"}", HR_MSG_TRACK, "ISO 8601"},
        {"{\"userId\":\"u\",\"event\":\"E\",\"timestamp\":\"2026-11-24T12:00:01Z\"}", HR_MSG_TRACK, "future"},
        {"{\"userId\":\"u\",\"type\":\"identify\"}", HR_MSG_TRACK, "endpoint"},
        {"{\"userId\":\"u\",\"type\":\"alias\"}", -1, "'type' must be"},
        {"[1]", -1, "JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        hr_msg m;
        hr_err err = {0};
        json_object *o;
        int rc = parse(cases[i].json, cases[i].type, &m, &err, &o);
        if (rc != HR_EINVAL || !strstr(err.message, cases[i].msg))
            fail_msg("case %zu (%s): rc %d, message '%s'", i, cases[i].json, rc, err.message);
        json_object_put(o);
    }
    /* 32 KB per message */
    hr_msg m;
    hr_err err = {0};
    json_object *o = json_tokener_parse("{\"userId\":\"u\",\"event\":\"E\"}");
    assert_int_equal(hr_msg_parse(o, HR_MSG_TRACK, HR_MSG_MAX_BYTES + 1, 0, 0, &m, &err), HR_EINVAL);
    assert_non_null(strstr(err.message, "32 KB"));
    json_object_put(o);
}

static void clock_skew_corrected(void **state) {
    hr_msg m;
    hr_err err = {0};
    /* the client's clock is 1 hour fast: sentAt 13:00 by its clock at our 12:00 */
    json_object *o = json_tokener_parse(
        "{\"userId\":\"u\",\"event\":\"E\",\"timestamp\":\"2026-11-22T12:30:00.250Z\","
        "\"sentAt\":\"2026-11-22T13:00:00Z\"}");
    assert_int_equal(hr_msg_parse(o, HR_MSG_TRACK, 100, 0, MS("2026-11-22T12:00:00Z"), &m, &err), 0);
    assert_int_equal(m.timestamp_ms, MS("2026-11-22T11:30:00.250Z"));
    json_object_put(o);
    /* the batch's sentAt when the message has none; offsets in timestamps */
    o = json_tokener_parse("{\"userId\":\"u\",\"event\":\"E\",\"timestamp\":\"2026-11-22T14:00:00+02:00\"}");
    assert_int_equal(hr_msg_parse(o, HR_MSG_TRACK, 100, MS("2026-11-22T12:00:00Z"),
                                  MS("2026-11-22T12:00:05Z"), &m, &err), 0);
    assert_int_equal(m.timestamp_ms, MS("2026-11-22T12:00:05Z"));
    json_object_put(o);
    /* late events keep their own time */
    o = json_tokener_parse("{\"userId\":\"u\",\"event\":\"E\",\"timestamp\":\"2026-10-31T23:59:59Z\"}");
    assert_int_equal(hr_msg_parse(o, HR_MSG_TRACK, 100, 0, MS("2026-11-22T12:00:00Z"), &m, &err), 0);
    assert_int_equal(m.timestamp_ms, MS("2026-10-31T23:59:59Z"));
    json_object_put(o);
}

static void meters_match_and_inputs(void **state) {
    hr_where big = {"properties.rows", HR_OP_GE, 1, 1000, NULL};
    hr_where plan = {"properties.plan", HR_OP_EQ, 0, 0, "pro"};
    hr_meter count = {"exports", "Export Finished", HR_AGG_COUNT, NULL, HR_PERIOD_MONTH, 0, NULL};
    hr_meter sum = {"rows", "Export Finished", HR_AGG_SUM, "properties.rows", HR_PERIOD_MONTH, 0, NULL};
    hr_meter bigc = {"big", "Export Finished", HR_AGG_COUNT, NULL, HR_PERIOD_MONTH, 1, &big};
    hr_meter pro = {"pro", "*", HR_AGG_COUNT, NULL, HR_PERIOD_MONTH, 1, &plan};
    hr_meter users = {"au", "*", HR_AGG_UNIQUE, "userId", HR_PERIOD_MONTH, 0, NULL};
    hr_msg m;
    hr_err err = {0};
    json_object *o;
    assert_int_equal(parse("{\"userId\":\"u1\",\"event\":\"Export Finished\",\"properties\":"
                           "{\"rows\":1500,\"plan\":\"pro\"}}", HR_MSG_TRACK, &m, &err, &o), 0);
    double num;
    uint64_t uh;
    assert_true(hr_meter_matches(&count, &m));
    assert_true(hr_meter_matches(&bigc, &m));
    assert_true(hr_meter_matches(&pro, &m));
    assert_int_equal(hr_meter_input(&sum, &m, &num, &uh), 0);
    assert_true(num == 1500);
    assert_int_equal(hr_meter_input(&users, &m, &num, &uh), 0);
    assert_true(uh != 0);
    json_object_put(o);
    assert_int_equal(parse("{\"userId\":\"u1\",\"event\":\"Export Finished\",\"properties\":{\"rows\":\"many\"}}",
                           HR_MSG_TRACK, &m, &err, &o), 0);
    assert_false(hr_meter_matches(&bigc, &m)); /* a string is not >= 1000 */
    assert_false(hr_meter_matches(&pro, &m));  /* no plan property */
    assert_int_equal(hr_meter_input(&sum, &m, &num, &uh), -1);
    json_object_put(o);
    assert_int_equal(parse("{\"userId\":\"u1\",\"event\":\"Board Created\"}", HR_MSG_TRACK, &m, &err, &o), 0);
    assert_false(hr_meter_matches(&count, &m));
    json_object_put(o);
    assert_int_equal(parse("{\"userId\":\"u1\",\"groupId\":\"acme\"}", HR_MSG_GROUP, &m, &err, &o), 0);
    assert_false(hr_meter_matches(&users, &m)); /* only track events are metered */
    assert_string_equal(m.account, "acme");
    json_object_put(o);
}

static void periods(void **state) {
    /* calendar month ends and leap years */
    assert_int_equal(hr_meter_period_start(HR_PERIOD_MONTH, T("2024-02-29T23:59:59Z"), 0, 1), T("2024-02-01"));
    assert_int_equal(hr_meter_period_next(HR_PERIOD_MONTH, T("2024-02-01"), 0, 1), T("2024-03-01"));
    assert_int_equal(hr_meter_period_start(HR_PERIOD_DAY, T("2026-11-22T02:00:00+03:00"), 0, 1), T("2026-11-21"));
    assert_int_equal(hr_meter_period_start(HR_PERIOD_WEEK, T("2026-11-22T12:00:00Z"), 0, 1), T("2026-11-16"));
    assert_int_equal(hr_meter_period_start(HR_PERIOD_LIFETIME, T("2026-11-22"), 0, 1), 0);
    assert_true(hr_meter_period_next(HR_PERIOD_LIFETIME, 0, 0, 1) == INT64_MAX);
    /* billing cycles anchored on the 31st: Jan 31, Feb 28 (29 in 2028), Mar 31 */
    int64_t anchor = T("2026-01-31T09:00:00Z");
    assert_int_equal(hr_meter_period_start(HR_PERIOD_BILLING_CYCLE, T("2026-02-15"), anchor, 1), T("2026-01-31T09:00:00Z"));
    assert_int_equal(hr_meter_period_start(HR_PERIOD_BILLING_CYCLE, T("2026-02-28T10:00:00Z"), anchor, 1), T("2026-02-28T09:00:00Z"));
    assert_int_equal(hr_meter_period_next(HR_PERIOD_BILLING_CYCLE, T("2026-02-28T09:00:00Z"), anchor, 1), T("2026-03-31T09:00:00Z"));
    assert_int_equal(hr_meter_period_start(HR_PERIOD_BILLING_CYCLE, T("2028-02-29T12:00:00Z"), anchor, 1), T("2028-02-29T09:00:00Z"));
    /* a renewal date in the future still anchors the cycles before it */
    int64_t renew = T("2026-12-05T00:00:00Z");
    assert_int_equal(hr_meter_period_start(HR_PERIOD_BILLING_CYCLE, T("2026-11-22"), renew, 1), T("2026-11-05"));
    assert_int_equal(hr_meter_period_start(HR_PERIOD_BILLING_CYCLE, T("2026-11-22"), renew, 12), T("2025-12-05"));
    assert_int_equal(hr_meter_period_next(HR_PERIOD_BILLING_CYCLE, T("2025-12-05"), renew, 12), T("2026-12-05"));
    /* exactly on a boundary: the new cycle */
    assert_int_equal(hr_meter_period_start(HR_PERIOD_BILLING_CYCLE, T("2026-11-05"), renew, 1), T("2026-11-05"));
}

static void folding(void **state) {
    hr_meter_value v;
    hr_meter_value_init(&v, 0);
    assert_int_equal(hr_meter_fold(&v, HR_AGG_COUNT, 1, 0, 0), 1);
    assert_int_equal(hr_meter_fold(&v, HR_AGG_COUNT, 1, 0, 0), 1);
    assert_true(v.value == 2);
    hr_meter_value_init(&v, 0);
    hr_meter_fold(&v, HR_AGG_SUM, 2.5, 0, 0);
    hr_meter_fold(&v, HR_AGG_SUM, 4, 0, 0);
    assert_true(v.value == 6.5);
    hr_meter_value_init(&v, 0);
    hr_meter_fold(&v, HR_AGG_MAX, -3, 0, 10);
    assert_true(v.value == -3); /* the first value counts even when negative */
    assert_int_equal(hr_meter_fold(&v, HR_AGG_MAX, -5, 0, 11), 0);
    hr_meter_fold(&v, HR_AGG_MAX, 7, 0, 12);
    assert_true(v.value == 7);
    hr_meter_value_init(&v, 0);
    hr_meter_fold(&v, HR_AGG_LATEST, 5, 0, 2000);
    assert_int_equal(hr_meter_fold(&v, HR_AGG_LATEST, 9, 0, 1000), 0); /* late: older */
    assert_true(v.value == 5);
    hr_meter_fold(&v, HR_AGG_LATEST, 9, 0, 3000);
    assert_true(v.value == 9);
    hr_meter_value_init(&v, 0);
    for (int i = 0; i < 1000; i++) hr_meter_fold(&v, HR_AGG_UNIQUE, 0, (uint64_t)(i % 100) * 7919 + 1, 0);
    assert_true(v.value == 100);
    hr_meter_value_dispose(&v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(track_valid_and_account), cmocka_unit_test(invalid_messages),
        cmocka_unit_test(clock_skew_corrected),    cmocka_unit_test(meters_match_and_inputs),
        cmocka_unit_test(periods),                 cmocka_unit_test(folding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
