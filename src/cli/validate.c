/* validate.c: `headroom validate FILE`: every error, one per line, as
 * file:line:column: message, so editors can jump to them. */
#include <stdio.h>

#include "catalog/catalog.h"
#include "cli.h"
#include "err.h"

int hr_cmd_validate(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: headroom validate FILE\n");
        return 2;
    }
    hr_catalog *c = NULL;
    hr_err err = {0};
    hr_err_list errs = {0};
    int rc = hr_catalog_load_file_all(argv[1], &c, &err, &errs);
    if (rc) {
        char line[1200];
        if (!errs.count) {
            hr_err_fmt(&err, line, sizeof line);
            fprintf(stderr, "%s\n", line);
        }
        for (int i = 0; i < errs.count; i++) {
            hr_err_fmt(&errs.items[i], line, sizeof line);
            fprintf(stderr, "%s\n", line);
        }
        fprintf(stderr, "%d error%s\n", errs.count ? errs.count : 1,
                errs.count == 1 || !errs.count ? "" : "s");
        hr_catalog_errors_free(&errs);
        return 1;
    }
    printf("%s: ok (%d features, %d plans, %d add-ons, version %016llx)\n", argv[1],
           c->nfeatures, c->nplans, c->naddons, (unsigned long long)c->hash);
    hr_catalog_errors_free(&errs);
    hr_catalog_release(c);
    return 0;
}
