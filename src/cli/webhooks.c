/* webhooks.c: `headroom webhooks list|replay`: the webhook outbox of a
 * database, read and replayed from the command line. A replay only marks
 * the row due; a running headroomd picks it up within a second (it rescans
 * for rows other processes made due), or the next one to start does. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store/store.h"
#include "timeutil.h"
#include "webhooks/webhooks.h"

static const char *const status_names[] = {"pending", "delivered", "dead"};

static void usage(void) {
    fprintf(stderr,
            "usage: headroom webhooks list [--status pending|delivered|dead] [--limit N]"
            " [--db PATH]\n"
            "       headroom webhooks replay ID [--db PATH]\n");
}

static void when(int64_t ms, char *buf, size_t n) {
    if (!ms) {
        snprintf(buf, n, "-");
        return;
    }
    hr_time_format(ms / 1000, buf, n);
}

static int print_row(void *ud, const hr_outbox_rec *o) {
    (void)ud;
    char created[32], next[32];
    when(o->created_ms, created, sizeof created);
    when(o->status == HR_OUTBOX_PENDING ? o->next_at_ms : 0, next, sizeof next);
    const char *st = o->status >= 0 && o->status <= 2 ? status_names[o->status] : "?";
    printf("%-30s %-9s %8d %4d %-20s %-20s %s", o->id, st, o->attempts, o->last_code, created,
           next, o->url);
    if (o->last_error) printf("  (%s)", o->last_error);
    putchar('\n');
    return 0;
}

int hr_cmd_webhooks(int argc, char **argv) {
    const char *db = "./headroom.db", *status = NULL;
    long limit = 100;
    static struct option opts[] = {
        {"db", 1, 0, 'd'}, {"status", 1, 0, 's'}, {"limit", 1, 0, 'n'}, {0, 0, 0, 0}};
    int ch, st = -1, rc = 0;
    hr_store *s = NULL;
    hr_err err = {0};
    optind = 1;
    while ((ch = getopt_long(argc, argv, "d:s:n:", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': db = optarg; break;
        case 's': status = optarg; break;
        case 'n': limit = strtol(optarg, NULL, 10); break;
        default: goto usage;
        }
    }
    if (optind >= argc || limit < 1 || limit > 1000000) goto usage;
    const char *verb = argv[optind];
    if (status) {
        for (int i = 0; i < 3; i++)
            if (!strcmp(status, status_names[i])) st = i;
        if (st < 0) goto usage;
    }
    int list = !strcmp(verb, "list");
    if (list ? optind + 1 != argc : strcmp(verb, "replay") || optind + 2 != argc) goto usage;
    if (hr_store_sqlite_open(db, 0, &s, &err)) {
        fprintf(stderr, "headroom: %s: %s\n", db, err.message);
        return 1;
    }
    if (list) {
        printf("%-30s %-9s %8s %4s %-20s %-20s %s\n", "ID", "STATUS", "ATTEMPTS", "CODE", "CREATED",
               "NEXT ATTEMPT", "URL");
        if (s->ops->outbox_list(s, st, (int)limit, print_row, NULL, &err) < 0) {
            fprintf(stderr, "headroom: %s: %s\n", db, err.message);
            rc = 1;
        }
    } else {
        const char *id = argv[optind + 1];
        if (hr_webhooks_replay(s, id, hr_time_now_ms(), &err)) {
            fprintf(stderr, "headroom: %s\n", err.message);
            rc = 1;
        } else {
            printf("%s is pending again, due now\n", id);
        }
    }
    hr_store_close(s);
    return rc;
usage:
    usage();
    return 2;
}
