/* fuzz_json.c: libFuzzer target for request bodies: the JSON decoder, then
 * the engine's document handling (accounts, users, usage, overrides) that
 * every body reaches. Nothing may crash, leak or trip a sanitizer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "entitle/engine.h"
#include "jsonbody.h"

static const char catalog[] =
    "currency: USD\n"
    "features:\n"
    "  boards: {type: limit, unit: board}\n"
    "  private_boards: {type: boolean}\n"
    "  api_calls: {type: metered, unit: call, period: month}\n"
    "plans:\n"
    "  free: {price: 0, entitlements: {boards: 3, private_boards: false, api_calls: 1000}}\n"
    "  pro: {price: 12, trial_days: 14, entitlements: {boards: 50, private_boards: true, api_calls: 100000}}\n"
    "addons:\n"
    "  extra_boards: {price: 5, grants: {boards: 10}, plans: [free, pro], max_quantity: 5}\n"
    "feature_trials:\n"
    "  private_boards: {days: 14}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static hr_catalog *cat;
    if (!cat && hr_catalog_parse(catalog, sizeof catalog - 1, "fuzz.yaml", &cat, NULL, NULL))
        abort();
    json_object *doc = NULL;
    size_t off;
    char msg[160];
    if (hr_json_decode((const char *)data, size, &doc, &off, msg, sizeof msg)) {
        if (off > size) abort(); /* the offset must point into the body */
        return 0;
    }
    hr_engine *e = hr_engine_new(cat);
    hr_buf out;
    hr_buf_init(&out);
    hr_err err;
    int created;
    hr_engine_put_account(e, "acme", doc, 0, &created, &out, &err);
    hr_engine_put_account(e, "acme", doc, 1, &created, &out, &err);
    hr_engine_put_user(e, "acme", "u1", doc, &created, &out, &err);
    hr_engine_put_override(e, "acme", "boards", doc, 0, &out, &err);
    hr_engine_put_override(e, "acme", "private_boards", doc, 0, &out, &err);
    if (json_object_is_type(doc, json_type_int))
        hr_engine_usage(e, "acme", "boards", json_object_get_int64(doc), 0, &err);
    hr_engine_decide(e, "acme", "boards", 1, 0, NULL, &out);
    hr_engine_entitlements(e, "acme", 0, &out);
    hr_buf_dispose(&out);
    hr_engine_free(e);
    json_object_put(doc);
    return 0;
}
