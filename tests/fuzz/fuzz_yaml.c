/* fuzz_yaml.c: libFuzzer target for the catalog loader (YAML and JSON).
 *
 * Besides "no crash, no leak", it checks the loader's one promise about
 * output: a catalog that loads serialises to JSON that loads again with the
 * same hash and the same text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hr_catalog *c = NULL, *c2 = NULL;
    hr_err err;
    hr_err_list errs = {0};
    char *json = NULL, *json2 = NULL;

    int rc = hr_catalog_parse((const char *)data, size, "fuzz.yaml", &c, &err, &errs);
    if (rc) {
        /* Every failure names a position or at least a message. */
        if (rc == HR_ECONFIG && (errs.count < 1 || !err.message[0])) abort();
        goto out;
    }
    if (errs.count) abort();
    if (!(json = hr_catalog_to_json(c))) goto out;
    if (hr_catalog_parse(json, strlen(json), "roundtrip.json", &c2, &err, NULL)) abort();
    if (c2->hash != c->hash) abort();
    if (!(json2 = hr_catalog_to_json(c2)) || strcmp(json, json2)) abort();
out:
    free(json);
    free(json2);
    hr_catalog_release(c);
    hr_catalog_release(c2);
    hr_catalog_errors_free(&errs);
    return 0;
}
