/* compact.c: `headroom compact --db PATH [--days N]`: applies the raw-event
 * retention to a database now (headroomd also does it as it runs), in
 * chunks, and reports how many events went. Meter values are kept. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "store/store.h"
#include "timeutil.h"

int hr_cmd_compact(int argc, char **argv) {
    const char *db = "./headroom.db";
    long days = 90;
    static struct option opts[] = {{"db", 1, 0, 'd'}, {"days", 1, 0, 'n'}, {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "d:n:", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': db = optarg; break;
        case 'n': days = strtol(optarg, NULL, 10); break;
        default: goto usage;
        }
    }
    if (optind != argc || days < 1) goto usage;
    hr_store *s = NULL;
    hr_err err = {0};
    if (hr_store_sqlite_open(db, 0, &s, &err)) {
        fprintf(stderr, "headroom: %s: %s\n", db, err.message);
        return 1;
    }
    long long total = 0;
    int rows = 0, rc = 0;
    int64_t cutoff = hr_time_now_ms() - (int64_t)days * 86400 * 1000, events = 0;
    do {
        if ((rc = s->ops->prune_events(s, cutoff, 10000, &rows, &events, &err))) {
            fprintf(stderr, "headroom: %s: %s\n", db, err.message);
            break;
        }
        total += events;
    } while (rows == 10000);
    hr_store_close(s);
    if (!rc) printf("removed %lld raw events older than %ld days from %s\n", total, days, db);
    return rc ? 1 : 0;
usage:
    fprintf(stderr, "usage: headroom compact [--db PATH] [--days N (default 90)]\n");
    return 2;
}
