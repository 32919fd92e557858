/* fuzz_msgscan.c: libFuzzer target, differential: one message's text read
 * by hr_msg_scan (yajl events, no tree) and by hr_msg_parse (json-c's
 * tree) must give the same verdict, error, ids, account, time and value at
 * every path meters read. Text one reader takes as JSON, the other must
 * take too: an imported line is stored as it is and read again by either
 * (the start-up replay, a rule's deep path). The scan hands text yajl
 * refuses to json-c, so the verdicts must agree on every input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "events/segment.h"
#include "jsonbody.h"

static const char *const paths[] = {
    "userId", "event", "messageId", "properties", "properties.rows", "properties.a.b",
    "properties.accountId", "context.groupId", "context.library.name", "integrations.x", "x",
    "properties.", "", "x.y"};

static int same(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > HR_MSG_MAX_BYTES) return 0;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    static const int types[] = {HR_MSG_TRACK, HR_MSG_OWN_TYPE, HR_MSG_OWN_TYPE_OR_TRACK};
    int type = types[size % 3];
    json_object *o = NULL;
    size_t off;
    char why[160];
    int jc = hr_json_decode(text, size, &o, &off, why, sizeof why);
    hr_msg s, p;
    hr_err es = {0}, ep = {0};
    int rs = hr_msg_scan(text, size, type, 0, 1795000000000LL, &s, &es);
    if (rs == HR_ENOMEM) abort();
    /* both take it as JSON, or neither does */
    if ((jc == 0) != (rs != HR_EPARSE)) {
        fprintf(stderr, "json-c %d (%s), scan %d (%s)\n", jc, why, rs, es.message);
        abort();
    }
    if (!jc && rs != HR_EPARSE) {
        int rp = hr_msg_parse(o, type, size, 0, 1795000000000LL, &p, &ep);
        if (rs != rp || (rs && strcmp(es.message, ep.message))) abort();
        if (!rs) {
            if (s.type != p.type || !same(s.message_id, p.message_id) || !same(s.user_id, p.user_id) ||
                !same(s.anonymous_id, p.anonymous_id) || !same(s.event, p.event) ||
                !same(s.group_id, p.group_id) || !same(s.account, p.account) ||
                s.timestamp_ms != p.timestamp_ms)
                abort();
            for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
                hr_jval a, b;
                if (hr_msg_value(&s, paths[i], &a) || hr_msg_value(&p, paths[i], &b)) abort();
                if (a.type != b.type || !same(a.str, b.str) || !(a.num == b.num || (a.num != a.num && b.num != b.num)))
                    abort();
            }
        }
    }
    hr_msg_dispose(&s);
    json_object_put(o);
    free(text);
    return 0;
}
