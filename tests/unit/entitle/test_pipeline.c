/* test_pipeline.c: the pipelined group commit (a log store of its own):
 * threads send the same message ids at once while others write meters and
 * history behind the log. Each id counts once, in memory and in the log;
 * and an engine reopened on the database without a last flush (as after a
 * kill) comes back to the same values: a flush never writes memory that
 * is ahead of the log it records as folded. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "entitle/engine.h"
#include "events/segment.h"
#include "store/store.h"
#include "timeutil.h"
#include "../fixture.h"

static const char yaml[] =
    "currency: USD\n"
    "meters:\n"
    "  calls: {event: API Called, aggregate: count, period: lifetime}\n"
    "  users: {event: '*', aggregate: unique, property: userId, period: lifetime}\n"
    "features:\n"
    "  api_calls: {type: metered, unit: call, period: month, meter: calls}\n"
    "plans:\n"
    "  free: {price: 0, entitlements: {api_calls: 100000}}\n";

enum { SENDERS = 6, PER = 3000, BATCH = 100 };
#define IDS (SENDERS * PER)
typedef struct shared {
    hr_engine *e;
    int64_t now_ms;
    int ok, dup, failed; /* under mu */
    int stop_flushing;
    pthread_mutex_t mu;
} shared;

typedef struct sender {
    shared *sh;
    int t;
} sender;

/* Sends its own ids and, between them, its neighbour's, which the
 * neighbour sends at about the same moment: every id reaches the engine
 * twice, often in two batches at once, and new ids keep coming. */
static void *send_all(void *ud) {
    sender *sd = ud;
    shared *sh = sd->sh;
    static __thread char text[BATCH][160];
    hr_msg msgs[BATCH];
    int status[BATCH];
    for (int done = 0; done < 2 * PER; done += BATCH) {
        int n = 0;
        for (int k = 0; k < BATCH; k++) {
            int i = (done + k) / 2, owner = (done + k) % 2 ? (sd->t + 1) % SENDERS : sd->t;
            int id = owner * PER + i;
            int len = snprintf(text[k], sizeof text[k],
                               "{\"userId\":\"u%d\",\"event\":\"API Called\",\"messageId\":\"m-%d\","
                               "\"context\":{\"groupId\":\"acme\"}}", id % 7, id);
            hr_err err = {0};
            if (hr_msg_scan(text[k], (size_t)len, HR_MSG_TRACK, 0, sh->now_ms, &msgs[n], &err) == 0) n++;
        }
        hr_err err = {0};
        int rc = hr_engine_ingest(sh->e, msgs, n, sh->now_ms, status, &err);
        pthread_mutex_lock(&sh->mu);
        if (rc) sh->failed++;
        for (int k = 0; !rc && k < n; k++) {
            sh->ok += status[k] == HR_INGEST_OK;
            sh->dup += status[k] == HR_INGEST_DUPLICATE;
        }
        pthread_mutex_unlock(&sh->mu);
        for (int k = 0; k < n; k++) hr_msg_dispose(&msgs[k]);
    }
    return NULL;
}

/* Writes meters and history behind the log, over and over, until most
 * messages are in: the last write then happened amid batches still
 * writing their log (with new ids), and the reopen below starts from it. */
static void *flush_loop(void *ud) {
    shared *sh = ud;
    for (;;) {
        pthread_mutex_lock(&sh->mu);
        int stop = sh->stop_flushing || sh->ok + sh->dup >= 2 * IDS * 6 / 10;
        pthread_mutex_unlock(&sh->mu);
        if (stop) break;
        hr_err err = {0};
        assert_int_equal(hr_engine_flush_derived(sh->e, 0, &err), 0);
    }
    return NULL;
}

static double meter(hr_engine *e, const char *name) {
    double d = -1;
    assert_int_equal(hr_engine_meter_value(e, "acme", name, 0, &d), 0);
    return d;
}

static void each_id_once_and_a_reopen_agrees(void **state) {
    (void)state;
    char dir[] = "/tmp/hr-pipe-XXXXXX", path[64];
    hr_test_db_dir(dir, path, sizeof path);
    hr_catalog *cat = NULL;
    hr_engine *e = NULL;
    assert_int_equal(hr_test_engine(yaml, sizeof yaml - 1, &cat, &e), 0);
    hr_store *s = NULL, *log = NULL;
    hr_err err = {0};
    assert_int_equal(hr_store_sqlite_open(path, 0, &s, &err), 0);
    assert_int_equal(hr_store_sqlite_open(path, 0, &log, &err), 0);
    assert_int_equal(hr_engine_attach_store(e, s, &err), 0);
    hr_engine_set_log_store(e, log);
    hr_test_put_account(e, "acme", "{\"plan\":\"free\"}");

    shared sh = {.e = e, .now_ms = hr_time_now_ms()};
    pthread_mutex_init(&sh.mu, NULL);
    pthread_t th[SENDERS], fl;
    sender sd[SENDERS];
    assert_int_equal(pthread_create(&fl, NULL, flush_loop, &sh), 0);
    for (int t = 0; t < SENDERS; t++) {
        sd[t] = (sender){&sh, t};
        assert_int_equal(pthread_create(&th[t], NULL, send_all, &sd[t]), 0);
    }
    for (int t = 0; t < SENDERS; t++) pthread_join(th[t], NULL);
    pthread_mutex_lock(&sh.mu);
    sh.stop_flushing = 1;
    pthread_mutex_unlock(&sh.mu);
    pthread_join(fl, NULL);

    assert_int_equal(sh.failed, 0);
    assert_int_equal(sh.ok, IDS);
    assert_int_equal(sh.dup, IDS);
    assert_true(meter(e, "calls") == IDS);
    assert_true(meter(e, "users") == 7);
    hr_dedup_stats ds;
    hr_engine_dedup_stats(e, &ds);
    assert_int_equal(ds.ids, IDS);
    int64_t last = 0;
    assert_int_equal(s->ops->last_seq(s, &last, &err), 0);
    assert_int_equal(last, IDS); /* one log row per id */

    /* reopened without a last flush: the stored meters plus the log after
     * them make the same values, nothing counted twice */
    hr_engine_free(e);
    hr_store_close(log);
    hr_store_close(s);
    assert_int_equal(hr_store_sqlite_open(path, 0, &s, &err), 0);
    e = hr_engine_new(cat);
    assert_int_equal(hr_engine_attach_store(e, s, &err), 0);
    assert_true(meter(e, "calls") == IDS);
    assert_true(meter(e, "users") == 7);
    hr_engine_dedup_stats(e, &ds);
    assert_int_equal(ds.ids, IDS);
    hr_engine_free(e);
    hr_store_close(s);
    hr_catalog_release(cat);
    pthread_mutex_destroy(&sh.mu);
    hr_test_rm_dir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(each_id_once_and_a_reopen_agrees)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
