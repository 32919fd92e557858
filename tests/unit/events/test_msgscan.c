/* test_msgscan.c: hr_msg_scan (JSON text, no tree) reads every message as
 * hr_msg_parse reads its json-c tree: the same verdict and error, the same
 * ids, account and time, and the same value at every path a meter or rule
 * may name, including paths that reach past what the scan keeps (then the
 * tree is built on demand). Malformed text gets a clear HR_EPARSE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "events/segment.h"
#include "jsonbody.h"
#include "timeutil.h"

#define NOW 1795000000000LL

static const char *const paths[] = {
    "userId", "anonymousId", "event", "messageId", "type", "timestamp", "name", "groupId",
    "properties", "properties.rows", "properties.plan", "properties.flag", "properties.none",
    "properties.accountId", "properties.a", "properties.a.b", "properties.a.b.c", "properties.list",
    "properties.list.x", "properties.rows.x", "properties.missing", "context.groupId",
    "context.library", "context.library.name", "context.ip", "integrations.x", "integrations",
    "missing", "missing.x", "userId.x", "traits.plan", "properties.p49", "properties.p0",
    "properties.", "", ".", "properties..rows"};

static void same_value(const char *json, const char *path, hr_msg *scanned, hr_msg *parsed) {
    hr_jval a, b;
    assert_int_equal(hr_msg_value(scanned, path, &a), 0);
    assert_int_equal(hr_msg_value(parsed, path, &b), 0);
    if (a.type != b.type) fail_msg("%s at '%s': type %d scanned, %d parsed", json, path, a.type, b.type);
    if ((a.str == NULL) != (b.str == NULL) || (a.str && strcmp(a.str, b.str)))
        fail_msg("%s at '%s': '%s' scanned, '%s' parsed", json, path, a.str ? a.str : "(null)",
                 b.str ? b.str : "(null)");
    if (a.num != b.num) fail_msg("%s at '%s': %g scanned, %g parsed", json, path, a.num, b.num);
}

static void same_str(const char *json, const char *what, const char *a, const char *b) {
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b)))
        fail_msg("%s: %s '%s' scanned, '%s' parsed", json, what, a ? a : "(null)", b ? b : "(null)");
}

/* json through both readers, as the endpoint type says: the same result. */
static void both(const char *json, int type) {
    size_t len = strlen(json);
    hr_msg s, p;
    hr_err es = {0}, ep = {0};
    json_object *o = NULL;
    size_t off;
    char why[160];
    assert_int_equal(hr_json_decode(json, len, &o, &off, why, sizeof why), 0);
    int rs = hr_msg_scan(json, len, type, 0, NOW, &s, &es);
    int rp = hr_msg_parse(o, type, len, 0, NOW, &p, &ep);
    if (rs != rp || (rs && strcmp(es.message, ep.message)))
        fail_msg("%s: scanned %d '%s', parsed %d '%s'", json, rs, es.message, rp, ep.message);
    if (!rs) {
        assert_int_equal(s.type, p.type);
        same_str(json, "messageId", s.message_id, p.message_id);
        same_str(json, "userId", s.user_id, p.user_id);
        same_str(json, "anonymousId", s.anonymous_id, p.anonymous_id);
        same_str(json, "event", s.event, p.event);
        same_str(json, "groupId", s.group_id, p.group_id);
        same_str(json, "account", s.account, p.account);
        assert_int_equal(s.timestamp_ms, p.timestamp_ms);
        assert_true((s.traits == NULL) == (p.traits == NULL));
        assert_ptr_equal(s.text, json);
        for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) same_value(json, paths[i], &s, &p);
    }
    hr_msg_dispose(&s);
    json_object_put(o);
}

static void reads_as_the_tree_does(void **state) {
    (void)state;
    static const char *const track[] = {
        "{\"userId\":\"u1\",\"event\":\"Board Created\",\"messageId\":\"m1\",\"context\":{\"groupId\":\"acme\"},"
        "\"properties\":{\"rows\":1200,\"plan\":\"pro\",\"flag\":true,\"none\":null,\"accountId\":\"x\"}}",
        "{\"userId\":42,\"event\":\"E\",\"properties\":{\"accountId\":\"globex\",\"rows\":1.50}}",
        "{\"userId\":-0,\"event\":\"E\",\"properties\":{\"rows\":-0.0}}",
        "{\"userId\":18446744073709551615,\"event\":\"E\",\"properties\":{\"rows\":1e3}}",
        "{\"userId\":99999999999999999999,\"event\":\"E\",\"properties\":{\"rows\":-99999999999999999999}}",
        "{\"userId\":9223372036854775808,\"event\":\"E\",\"properties\":{\"rows\":1E-3}}",
        "{\"userId\":1.5,\"event\":\"E\"}",
        "{\"userId\":true,\"event\":\"E\"}",
        "{\"userId\":\"\",\"anonymousId\":\"a\",\"event\":\"E\"}",
        "{\"userId\":null,\"anonymousId\":null,\"event\":\"E\"}",
        "{\"userId\":\"u\",\"event\":\"\"}",
        "{\"userId\":\"u\",\"event\":7}",
        "{\"userId\":\"u\",\"event\":\"E\",\"properties\":null,\"context\":null}",
        "{\"userId\":\"u\",\"event\":\"E\",\"properties\":[1,2]}",
        "{\"userId\":\"u\",\"event\":\"E\",\"context\":\"web\"}",
        "{\"userId\":\"u\",\"event\":\"E\",\"traits\":5}",
        /* repeated members: the last one counts */
        "{\"userId\":\"u1\",\"userId\":\"u2\",\"event\":\"E\"}",
        "{\"userId\":\"u\",\"event\":\"E\",\"properties\":{\"accountId\":\"a1\",\"rows\":1},"
        "\"properties\":{\"plan\":\"p\"}}",
        "{\"userId\":\"u\",\"event\":\"E\",\"properties\":{\"accountId\":\"a1\"},\"properties\":null}",
        "{\"userId\":\"u\",\"event\":\"E\",\"context\":{\"groupId\":\"g1\"},\"context\":{\"ip\":\"1\"}}",
        "{\"userId\":\"u\",\"event\":\"E\",\"properties\":{\"rows\":1,\"rows\":2}}",
        /* escapes and UTF-8 */
        "{\"userId\":\"a\\\"b\",\"event\":\"\\u00e9v\\u00e9nement \\ud83d\\ude00\",\"properties\":"
        "{\"plan\":\"line\\nbreak\\t\\/\"}}",
        "{\"userId\":\"\xc3\xa9t\xc3\xa9\",\"event\":\"\xe2\x82\xac\"}",
        /* raw control characters: JSON refuses them, json-c (the live API)
         * takes them, and so does the scan, through json-c */
        "{\"userId\":\"a\x01\",\"event\":\"E\\u0000F\",\"properties\":{\"rows\":\"\t\"}}",
        /* nested values: the tree answers past what the scan keeps */
        "{\"userId\":\"u\",\"event\":\"E\",\"properties\":{\"a\":{\"b\":{\"c\":3}},\"list\":[1,{\"x\":2}]},"
        "\"context\":{\"library\":{\"name\":\"analytics-node\"},\"ip\":\"10.0.0.1\",\"groupId\":7},"
        "\"integrations\":{\"x\":false}}",
        "{\"userId\":\"u\",\"event\":\"E\",\"properties\":{\"a\":[{\"b\":1}],\"rows\":{\"x\":1}}}",
        /* times: skew correction, the original timestamp, the future */
        "{\"userId\":\"u\",\"event\":\"E\",\"timestamp\":\"2026-11-22T10:00:00.250Z\","
        "\"sentAt\":\"2026-11-22T10:00:05Z\"}",
        "{\"userId\":\"u\",\"event\":\"E\",\"originalTimestamp\":\"2026-11-22T10:00:00+02:00\"}",
        "{\"userId\":\"u\",\"event\":\"E\",\"timestamp\":\"2036-01-01T00:00:00Z\"}",
        "{\"userId\":\"u\",\"event\":\"E\",\"timestamp\":1700000000}",
        "{\"userId\":\"u\",\"event\":\"E\",\"timestamp\":\"yesterday\"}",
        /* types */
        "{\"type\":\"identify\",\"userId\":\"u\",\"traits\":{\"plan\":\"pro\"}}",
        "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"E\"}",
        "{\"type\":7,\"userId\":\"u\",\"event\":\"E\"}",
        "{\"userId\":\"u\",\"event\":\"E\",\"name\":\"n\",\"groupId\":\"g\"}",
    };
    static const char *const own[] = {
        "{\"type\":\"group\",\"userId\":\"u\",\"groupId\":\"acme\",\"traits\":{\"plan\":\"pro\"}}",
        "{\"type\":\"group\",\"userId\":\"u\"}",
        "{\"type\":\"identify\",\"userId\":\"u\",\"context\":{\"groupId\":\"acme\"},\"traits\":{\"a\":1}}",
        "{\"type\":\"page\",\"anonymousId\":\"a\",\"name\":\"Pricing\",\"properties\":{\"path\":\"/p\"}}",
        "{\"type\":\"screen\",\"userId\":\"u\"}",
        "{\"type\":\"alias\",\"userId\":\"u\"}",
        "{\"userId\":\"u\",\"event\":\"E\"}",
        "{\"type\":null,\"userId\":\"u\",\"event\":\"E\"}",
        "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"E\",\"messageId\":12}",
    };
    for (size_t i = 0; i < sizeof track / sizeof *track; i++) {
        both(track[i], HR_MSG_TRACK);
        both(track[i], HR_MSG_OWN_TYPE_OR_TRACK);
    }
    for (size_t i = 0; i < sizeof own / sizeof *own; i++) {
        both(own[i], HR_MSG_OWN_TYPE);
        both(own[i], HR_MSG_OWN_TYPE_OR_TRACK);
        both(own[i], HR_MSG_TRACK);
    }
}

/* More plain values than the scan keeps: what it kept still answers, and
 * a miss is answered by the tree, not taken for "absent". */
static void many_properties(void **state) {
    (void)state;
    char json[4096];
    int n = snprintf(json, sizeof json, "{\"userId\":\"u\",\"event\":\"E\",\"properties\":{");
    for (int i = 0; i < 50; i++)
        n += snprintf(json + n, sizeof json - (size_t)n, "%s\"p%d\":%d", i ? "," : "", i, i);
    snprintf(json + n, sizeof json - (size_t)n, "}}");
    both(json, HR_MSG_TRACK);
    hr_msg m;
    hr_err err = {0};
    hr_jval v;
    assert_int_equal(hr_msg_scan(json, strlen(json), HR_MSG_TRACK, 0, NOW, &m, &err), 0);
    assert_int_equal(hr_msg_value(&m, "properties.p49", &v), 0);
    assert_int_equal(v.type, HR_JV_INT);
    assert_string_equal(v.str, "49");
    assert_true(v.num == 49);
    hr_msg_dispose(&m);
}

/* An id as long as an id may be, and one byte longer. */
static void long_ids(void **state) {
    (void)state;
    char json[1024], id[300];
    for (int len = 256; len <= 257; len++) {
        memset(id, 'x', (size_t)len);
        id[len] = 0;
        snprintf(json, sizeof json, "{\"userId\":\"%s\",\"event\":\"E\"}", id);
        both(json, HR_MSG_TRACK);
    }
}

static void malformed(void **state) {
    (void)state;
    static const struct { const char *json; const char *want; } cases[] = {
        {"{\"userId\":\"u\",", "malformed JSON at byte"},
        {"{\"userId\":'u'}", "malformed JSON at byte"},
        {"{\"userId\":\"u\"} x", "malformed JSON at byte"},
        {"{\"userId\":\"u\",}", "malformed JSON at byte"},
        {"{\"userId\":\"\xff\"}", "malformed JSON at byte"},
        {"{\"n\":NaN}", "malformed JSON at byte"},
        {"{\"n\":Infinity}", "malformed JSON at byte"},
        {"{\"n\":1e400}", "NaN and Infinity are not JSON numbers"},
        {"{\"n\":-1e999}", "NaN and Infinity are not JSON numbers"},
        {"", "malformed JSON at byte"},
        {"   ", "malformed JSON at byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        hr_msg m;
        hr_err err = {0};
        int rc = hr_msg_scan(cases[i].json, strlen(cases[i].json), HR_MSG_TRACK, 0, NOW, &m, &err);
        if (rc != HR_EPARSE || !strstr(err.message, cases[i].want))
            fail_msg("'%s': %d '%s'", cases[i].json, rc, err.message);
        hr_msg_dispose(&m);
    }
    /* deeper than json-c's 64 levels */
    char deep[200] = "{\"userId\":\"u\",\"event\":\"E\",\"properties\":";
    size_t n = strlen(deep);
    for (int i = 0; i < 70; i++) deep[n++] = '[';
    for (int i = 0; i < 70; i++) deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = 0;
    hr_msg m;
    hr_err err = {0};
    assert_int_equal(hr_msg_scan(deep, n, HR_MSG_TRACK, 0, NOW, &m, &err), HR_EPARSE);
    assert_non_null(strstr(err.message, "malformed JSON at byte"));
    hr_msg_dispose(&m);
    /* valid JSON that is not an object */
    static const char *const not_objects[] = {"[1,2]", "\"x\"", "5", "null"};
    for (size_t i = 0; i < sizeof not_objects / sizeof *not_objects; i++) {
        assert_int_equal(hr_msg_scan(not_objects[i], strlen(not_objects[i]), HR_MSG_TRACK, 0, NOW,
                                     &m, &err), HR_EINVAL);
        assert_string_equal(err.message, "a message must be a JSON object");
        hr_msg_dispose(&m);
    }
    /* too large */
    size_t big = HR_MSG_MAX_BYTES + 10;
    char *b = malloc(big + 1);
    assert_non_null(b);
    memset(b, ' ', big);
    memcpy(b, "{\"userId\":\"u\",\"event\":\"E\"}", 26);
    b[big] = 0;
    assert_int_equal(hr_msg_scan(b, big, HR_MSG_TRACK, 0, NOW, &m, &err), HR_EINVAL);
    assert_non_null(strstr(err.message, "the limit is 32 KB"));
    hr_msg_dispose(&m);
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_as_the_tree_does),
        cmocka_unit_test(many_properties),
        cmocka_unit_test(long_ids),
        cmocka_unit_test(malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
