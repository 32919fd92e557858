/* fuzz_batch.c: libFuzzer target for the Segment batch decoder: JSON, each
 * message's validation, then ingestion into meters (an engine without a
 * store), as POST /v1/batch does. Nothing may crash, leak or trip a
 * sanitizer, and counts must stay consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "entitle/engine.h"
#include "events/segment.h"
#include "jsonbody.h"

static const char catalog[] =
    "currency: USD\n"
    "meters:\n"
    "  calls: {event: API Called, aggregate: count}\n"
    "  boards: {event: Board Created, aggregate: count, period: lifetime}\n"
    "  users: {event: '*', aggregate: unique, property: userId, period: day}\n"
    "  rows: {event: '*', aggregate: sum, property: rows, period: billing_cycle}\n"
    "  top: {event: '*', aggregate: max, property: rows, period: week}\n"
    "  last: {event: '*', aggregate: latest, property: rows, where: 'rows >= 10'}\n"
    "features:\n"
    "  api_calls: {type: metered, unit: call, period: month, meter: calls}\n"
    "  board_count: {type: limit, unit: board, meter: boards}\n"
    "plans:\n"
    "  free: {price: 0, entitlements: {api_calls: 1000, board_count: 3}}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static hr_catalog *cat;
    if (!cat && hr_catalog_parse(catalog, sizeof catalog - 1, "fuzz.yaml", &cat, NULL, NULL))
        abort();
    json_object *doc = NULL, *list;
    size_t off;
    char msg[160];
    if (hr_json_decode((const char *)data, size, &doc, &off, msg, sizeof msg)) return 0;
    if (!json_object_is_type(doc, json_type_object) ||
        !json_object_object_get_ex(doc, "batch", &list) ||
        !json_object_is_type(list, json_type_array) || json_object_array_length(list) > 64) {
        json_object_put(doc);
        return 0;
    }
    hr_engine *e = hr_engine_new(cat);
    hr_err err = {0};
    hr_engine_put_account_json(e, "acme", "{\"plan\":\"free\",\"renews_at\":\"2026-12-31T00:00:00Z\"}", &err);
    size_t n = json_object_array_length(list), k = 0;
    hr_msg *msgs = calloc(n + 1, sizeof *msgs);
    int *status = calloc(n + 1, sizeof *status);
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(list, i);
        size_t len = 0;
        json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
        if (hr_msg_parse(o, -1, len, 0, 1795000000000LL, &msgs[k], &err) == 0) k++;
    }
    if (k && hr_engine_ingest(e, msgs, (int)k, 1795000000000LL, status, &err) == 0) {
        /* a second time: everything with a messageId is now a duplicate */
        int *again = calloc(k, sizeof *again);
        hr_engine_ingest(e, msgs, (int)k, 1795000000000LL, again, &err);
        for (size_t i = 0; i < k; i++)
            if (msgs[i].message_id && again[i] != HR_INGEST_DUPLICATE) abort();
        free(again);
    }
    hr_verdict v;
    hr_engine_check(e, "acme", "api_calls", 1, 1795000000, &v);
    free(msgs);
    free(status);
    hr_engine_free(e);
    json_object_put(doc);
    return 0;
}
