/* webhook_load.c: drives the webhook module (src/webhooks) on its own: puts
 * N outbox rows for one URL into a database, then runs the delivery thread
 * until no row is pending, and prints what happened as one JSON line.
 * bench/webhooks.sh uses it for deliveries/s, the integration test
 * (tests/integration/webhooks.test.mjs) for retries, signatures and a
 * restart after SIGKILL (run it again on the same database: rows left
 * pending are sent again with the same ids).
 *
 *   bench_webhook_load --db PATH [--insert N --url URL] [--secrets "whsec_.."]
 *       [--insert-only] [--initial-ms MS] [--factor F] [--max-interval-ms MS]
 *       [--max-attempts N] [--timeout-ms MS] [--concurrency N]
 *       [--max-seconds S] [--durable-full] [--body-bytes B]
 *
 * Exit 0 when nothing is left pending, 1 on an error or after --max-seconds. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "store/store.h"
#include "timeutil.h"
#include "webhooks/webhooks.h"

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int insert(hr_store *s, int n, const char *url, const char *secrets, int body_bytes,
                  hr_err *err) {
    enum { BATCH = 1000 };
    hr_outbox_rec *recs = calloc(BATCH, sizeof *recs);
    char (*ids)[32] = calloc(BATCH, sizeof *ids);
    char *bodies = calloc(BATCH, (size_t)body_bytes + 128);
    int64_t now = hr_time_now_ms();
    int ret = 0;
    if (!recs || !ids || !bodies) {
        ret = hr_err_set(err, HR_ENOMEM, "out of memory");
        goto out;
    }
    for (int done = 0; done < n;) {
        int k = n - done < BATCH ? n - done : BATCH;
        for (int i = 0; i < k; i++) {
            char *b = bodies + (size_t)i * ((size_t)body_bytes + 128);
            hr_webhook_new_id(ids[i], sizeof ids[i]);
            int len = snprintf(b, 128,
                               "{\"type\":\"playbook.fired\",\"n\":%d,"
                               "\"account\":\"acct_%06d\",\"pad\":\"",
                               done + i, (done + i) % 1000);
            memset(b + len, 'x', (size_t)body_bytes);
            strcpy(b + len + body_bytes, "\"}");
            recs[i] = (hr_outbox_rec){.id = ids[i], .url = url, .secrets = secrets, .body = b,
                                      .playbook = "bench", .account = "acme",
                                      .status = HR_OUTBOX_PENDING, .created_ms = now,
                                      .next_at_ms = now};
        }
        if ((ret = s->ops->outbox_put(s, recs, k, err))) goto out;
        done += k;
    }
out:
    free(recs);
    free(ids);
    free(bodies);
    return ret;
}

static int count(void *ud, const hr_outbox_rec *r) {
    (void)r;
    ++*(int *)ud;
    return 0;
}

int main(int argc, char **argv) {
    const char *db = NULL, *url = NULL;
    const char *secrets = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    int n = 0, insert_only = 0, durable_full = 0, body_bytes = 200;
    double max_seconds = 120;
    hr_webhook_policy pol = {5000, 3.0, 7200000, 12, 10000, 64};
    static struct option opts[] = {
        {"db", 1, 0, 'd'},          {"insert", 1, 0, 'n'},       {"url", 1, 0, 'u'},
        {"secrets", 1, 0, 's'},     {"insert-only", 0, 0, 'I'},  {"initial-ms", 1, 0, 'i'},
        {"factor", 1, 0, 'f'},      {"max-interval-ms", 1, 0, 'M'}, {"max-attempts", 1, 0, 'a'},
        {"timeout-ms", 1, 0, 't'},  {"concurrency", 1, 0, 'c'},  {"max-seconds", 1, 0, 'S'},
        {"durable-full", 0, 0, 'F'}, {"body-bytes", 1, 0, 'b'},  {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': db = optarg; break;
        case 'n': n = atoi(optarg); break;
        case 'u': url = optarg; break;
        case 's': secrets = optarg; break;
        case 'I': insert_only = 1; break;
        case 'i': pol.initial_ms = atoll(optarg); break;
        case 'f': pol.factor = atof(optarg); break;
        case 'M': pol.max_interval_ms = atoll(optarg); break;
        case 'a': pol.max_attempts = atoi(optarg); break;
        case 't': pol.timeout_ms = atoll(optarg); break;
        case 'c': pol.concurrency = atoi(optarg); break;
        case 'S': max_seconds = atof(optarg); break;
        case 'F': durable_full = 1; break;
        case 'b': body_bytes = atoi(optarg); break;
        default: goto usage;
        }
    }
    if (!db || optind != argc || n < 0 || body_bytes < 0 || (n > 0 && !url)) goto usage;

    hr_store *ws = NULL, *rs = NULL;
    hr_webhooks *w = NULL;
    hr_err err = {0};
    int rc = 1, pending = -1;
    if (hr_store_sqlite_open(db, durable_full, &ws, &err) ||
        hr_store_sqlite_open(db, 0, &rs, &err)) {
        fprintf(stderr, "webhook_load: %s: %s\n", db, err.message);
        goto out;
    }
    if (n && insert(ws, n, url, secrets, body_bytes, &err)) {
        fprintf(stderr, "webhook_load: insert: %s\n", err.message);
        goto out;
    }
    if (insert_only) {
        printf("{\"inserted\":%d}\n", n);
        rc = 0;
        goto out;
    }
    double t0 = mono_s(), t1 = t0;
    if (hr_webhooks_new(ws, &pol, &w, &err) || hr_webhooks_start(w, &err)) {
        fprintf(stderr, "webhook_load: %s\n", err.message);
        goto out;
    }
    hr_webhooks_kick(w);
    /* done when nothing is pending: outcomes are committed before this
     * connection can see them */
    while ((t1 = mono_s()) - t0 < max_seconds) {
        pending = 0;
        if (rs->ops->outbox_due(rs, INT64_MAX, 1, count, &pending, &err) < 0) {
            fprintf(stderr, "webhook_load: %s\n", err.message);
            goto out;
        }
        if (!pending) break;
        usleep(10000);
    }
    hr_webhook_stats st;
    hr_webhooks_stats(w, &st);
    hr_webhooks_free(w);
    w = NULL;
    double secs = t1 - t0;
    printf("{\"inserted\":%d,\"delivered\":%llu,\"dead\":%llu,\"attempts\":%llu,\"retried\":%llu,"
           "\"store_errors\":%llu,\"pending\":%d,\"seconds\":%.3f,\"per_second\":%.0f}\n",
           n, (unsigned long long)st.delivered, (unsigned long long)st.dead,
           (unsigned long long)st.attempts, (unsigned long long)st.retried,
           (unsigned long long)st.store_errors, pending, secs,
           secs > 0 ? (double)st.delivered / secs : 0.0);
    rc = pending ? 1 : 0;
out:
    hr_webhooks_free(w);
    hr_store_close(rs);
    hr_store_close(ws);
    return rc;
usage:
    fprintf(stderr, "usage: bench_webhook_load --db PATH [--insert N --url URL] [--secrets S]"
                    " [--insert-only] [--initial-ms MS] [--factor F] [--max-interval-ms MS]"
                    " [--max-attempts N] [--timeout-ms MS] [--concurrency N] [--max-seconds S]"
                    " [--durable-full] [--body-bytes B]\n");
    return 2;
}
