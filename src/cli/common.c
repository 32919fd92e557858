/* common.c: what several subcommands do first: the catalog and the store. */
#include <stdio.h>

#include "catalog/catalog.h"
#include "cli.h"
#include "err.h"
#include "store/store.h"

int hr_cli_open(const char *config, const char *db, hr_catalog **cat, hr_store **store) {
    hr_err err = {0};
    *cat = NULL;
    *store = NULL;
    if (hr_catalog_load_file(config, cat, &err)) {
        char m[1200];
        hr_err_fmt(&err, m, sizeof m);
        fprintf(stderr, "%s\n", m);
        return 1;
    }
    if (hr_store_sqlite_open(db, 0, store, &err)) {
        fprintf(stderr, "headroom: %s: %s\n", db, err.message);
        hr_catalog_release(*cat);
        *cat = NULL;
        return 1;
    }
    return 0;
}
