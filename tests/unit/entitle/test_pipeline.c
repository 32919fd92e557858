/* test_pipeline.c: the pipelined group commit (a log store of its own):
 * threads send the same message ids at once while others write meters and
 * history behind the log. Each id counts once, in memory and in the log;
 * and an engine reopened on the database without a last flush (as after a
 * kill) comes back to the same values: a flush never writes memory that
 * is ahead of the log it records as folded. */
#include <pthread.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <time.h>
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

/* An engine on a fresh database with a log connection of its own, as
 * headroomd runs it. */
typedef struct piped {
    char dir[32], path[64];
    hr_catalog *cat;
    hr_engine *e;
    hr_store *s, *log;
} piped;

static void piped_open(piped *p, const char *yaml_text, size_t len) {
    hr_err err = {0};
    snprintf(p->dir, sizeof p->dir, "/tmp/hr-pipe-XXXXXX");
    hr_test_db_dir(p->dir, p->path, sizeof p->path);
    assert_int_equal(hr_test_engine(yaml_text, len, &p->cat, &p->e), 0);
    assert_int_equal(hr_store_sqlite_open(p->path, 0, &p->s, &err), 0);
    assert_int_equal(hr_store_sqlite_open(p->path, 0, &p->log, &err), 0);
    assert_int_equal(hr_engine_attach_store(p->e, p->s, &err), 0);
    hr_engine_set_log_store(p->e, p->log);
}

static void piped_close(piped *p) {
    hr_engine_free(p->e);
    hr_store_close(p->log);
    hr_store_close(p->s);
    hr_catalog_release(p->cat);
    hr_test_rm_dir(p->dir);
}

static double meter(hr_engine *e, const char *name) {
    double d = -1;
    assert_int_equal(hr_engine_meter_value(e, "acme", name, 0, &d), 0);
    return d;
}

static void each_id_once_and_a_reopen_agrees(void **state) {
    (void)state;
    piped p;
    piped_open(&p, yaml, sizeof yaml - 1);
    hr_engine *e = p.e;
    hr_store *s = p.s;
    hr_err err = {0};
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
    hr_store_close(p.log);
    hr_store_close(s);
    assert_int_equal(hr_store_sqlite_open(p.path, 0, &s, &err), 0);
    e = hr_engine_new(p.cat);
    assert_int_equal(hr_engine_attach_store(e, s, &err), 0);
    assert_true(meter(e, "calls") == IDS);
    assert_true(meter(e, "users") == 7);
    hr_engine_dedup_stats(e, &ds);
    assert_int_equal(ds.ids, IDS);
    hr_engine_free(e);
    hr_store_close(s);
    hr_catalog_release(p.cat);
    pthread_mutex_destroy(&sh.mu);
    hr_test_rm_dir(p.dir);
}

/* ---- a late event while a flush is still being written ---- */

static const char yaml_monthly[] =
    "currency: USD\n"
    "meters:\n"
    "  calls: {event: API Called, aggregate: count}\n"
    "plans:\n"
    "  free: {price: 0}\n";

typedef struct late {
    hr_engine *e;
    const char *ts; /* the event's timestamp; NULL: flush instead */
    int64_t now_ms;
    int rc;
} late;

static void *late_run(void *ud) {
    late *l = ud;
    hr_err err = {0};
    if (!l->ts) {
        l->rc = hr_engine_flush_derived(l->e, 0, &err);
        return NULL;
    }
    char text[200];
    int len = snprintf(text, sizeof text,
                       "{\"userId\":\"u1\",\"event\":\"API Called\",\"timestamp\":\"%s\","
                       "\"context\":{\"groupId\":\"acme\"}}", l->ts);
    hr_msg m;
    int status = 0;
    l->rc = hr_msg_scan(text, (size_t)len, HR_MSG_TRACK, 0, l->now_ms, &m, &err);
    if (!l->rc) l->rc = hr_engine_ingest(l->e, &m, 1, l->now_ms, &status, &err);
    if (!l->rc) hr_msg_dispose(&m);
    return NULL;
}

static int add_value(void *ud, const hr_meter_rec *r) {
    *(double *)ud += r->value;
    return 0;
}

static void sleep_ms(int ms) {
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* October's value leaves memory when November's events arrive, and a flush
 * takes it to write; a late October event folded before that write
 * commits (another connection holds SQLite's lock meanwhile) counts on from
 * the flush's value, not from the store's older one. */
static void a_late_event_counts_on_from_a_flush_being_written(void **state) {
    (void)state;
    piped p;
    piped_open(&p, yaml_monthly, sizeof yaml_monthly - 1);
    hr_engine *e = p.e;
    hr_store *s = p.s;
    hr_err err = {0};
    hr_test_put_account(e, "acme", "{\"plan\":\"free\"}");
    /* last month's 10th and 20th, this month's 1st (now: no flush is due
     * between the batches) */
    int64_t now = hr_time_now_ms();
    time_t t = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_mday = 1, tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    int64_t this1 = (int64_t)timegm(&tm);
    tm.tm_mon -= 1;
    int64_t last1 = (int64_t)timegm(&tm);
    char ts[3][32];
    int64_t at[3] = {last1 + 9 * 86400, this1, last1 + 19 * 86400};
    for (int i = 0; i < 3; i++) {
        time_t x = (time_t)at[i];
        strftime(ts[i], sizeof ts[i], "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&x, &tm));
    }
    late a = {e, ts[0], now, 0}, b = {e, ts[1], now, 0};
    late_run(&a);
    late_run(&b); /* last month's value leaves memory for the change set */
    assert_int_equal(a.rc | b.rc, 0);
    double prev = 0, cur = 0;
    assert_int_equal(s->ops->meter_series(s, "acme", "calls", last1, last1 + 1, add_value, &prev, &err), 0);
    assert_true(prev == 0); /* not written yet */

    sqlite3 *lock = NULL;
    assert_int_equal(sqlite3_open(p.path, &lock), SQLITE_OK);
    assert_int_equal(sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    pthread_t tf, tl;
    late fl = {e, NULL, now, 0}, lt = {e, ts[2], now, 0};
    assert_int_equal(pthread_create(&tf, NULL, late_run, &fl), 0);
    sleep_ms(150); /* the flush has taken last month and waits for the lock */
    assert_int_equal(pthread_create(&tl, NULL, late_run, &lt), 0);
    sleep_ms(300); /* the late event is folded; its log waits too */
    assert_int_equal(sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(lock);
    pthread_join(tf, NULL);
    pthread_join(tl, NULL);
    assert_int_equal(fl.rc | lt.rc, 0);
    assert_int_equal(hr_engine_flush_derived(e, 0, &err), 0);

    assert_int_equal(s->ops->meter_series(s, "acme", "calls", last1, last1 + 1, add_value, &prev, &err), 0);
    assert_int_equal(s->ops->meter_series(s, "acme", "calls", this1, this1 + 1, add_value, &cur, &err), 0);
    assert_true(prev == 2);
    assert_true(cur == 1);
    piped_close(&p);
}

/* ---- the change set, with many accounts and periods ---- */

static const char yaml_many[] =
    "currency: USD\n"
    "meters:\n"
    "  calls: {event: API Called, aggregate: count}\n"
    "  users: {event: '*', aggregate: unique, property: userId}\n"
    "plans:\n"
    "  free: {price: 0}\n";

enum { ACCTS = 300, MONTHS = 3, PER_MONTH = 4 };

/* 300 accounts, each with events in the last three months, the newest
 * month first (the older ones arrive late), a round over every account at
 * a time, in batches of 100 with a flush behind the log after every
 * seventh: the change set grows past its first size, each older period is
 * found in it again by later batches, and it is taken while batches fold.
 * The stored values are then the counts of what was sent. */
static void many_accounts_and_periods_are_written_as_sent(void **state) {
    (void)state;
    piped p;
    piped_open(&p, yaml_many, sizeof yaml_many - 1);
    hr_engine *e = p.e;
    hr_store *s = p.s;
    hr_err err = {0};
    char id[32];
    for (int a = 0; a < ACCTS; a++) {
        snprintf(id, sizeof id, "acct-%03d", a);
        hr_test_put_account(e, id, "{\"plan\":\"free\"}");
    }
    int64_t now = hr_time_now_ms();
    time_t t = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_mday = 1, tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    int64_t month1[MONTHS]; /* month1[0]: this month's first second */
    for (int m = 0; m < MONTHS; m++) {
        struct tm x = tm;
        x.tm_mon -= m;
        month1[m] = (int64_t)timegm(&x);
    }
    static char text[100][256];
    hr_msg msgs[100];
    int status[100], n = 0, batches = 0;
    for (int m = 0; m < MONTHS; m++)
        for (int k = 0; k < PER_MONTH; k++)
            for (int a = 0; a < ACCTS; a++) {
                /* account a, month m: users u0..u(a % 3) */
                char ts[32];
                time_t at = (time_t)(month1[m] + 3600 * (k + 1));
                strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&at, &tm));
                int len = snprintf(text[n], sizeof text[n],
                                   "{\"userId\":\"u%d\",\"event\":\"API Called\",\"timestamp\":\"%s\","
                                   "\"messageId\":\"%d-%d-%d\",\"context\":{\"groupId\":\"acct-%03d\"}}",
                                   k % (a % 3 + 1), ts, a, m, k, a);
                assert_int_equal(hr_msg_scan(text[n], (size_t)len, HR_MSG_TRACK, 0, now, &msgs[n], &err), 0);
                if (++n < 100) continue;
                assert_int_equal(hr_engine_ingest(e, msgs, n, now, status, &err), 0);
                for (int i = 0; i < n; i++) assert_int_equal(status[i], HR_INGEST_OK), hr_msg_dispose(&msgs[i]);
                n = 0;
                if (++batches % 7 == 0) assert_int_equal(hr_engine_flush_derived(e, 0, &err), 0);
            }
    assert_int_equal(n, 0); /* 300 * 3 * 4 is whole batches */
    assert_int_equal(hr_engine_flush_derived(e, 0, &err), 0);
    for (int a = 0; a < ACCTS; a++) {
        snprintf(id, sizeof id, "acct-%03d", a);
        for (int m = 0; m < MONTHS; m++) {
            double calls = 0, users = 0;
            assert_int_equal(s->ops->meter_series(s, id, "calls", month1[m], month1[m] + 1, add_value, &calls, &err), 0);
            assert_int_equal(s->ops->meter_series(s, id, "users", month1[m], month1[m] + 1, add_value, &users, &err), 0);
            assert_true(calls == PER_MONTH);
            assert_true(users == a % 3 + 1);
        }
    }
    piped_close(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_id_once_and_a_reopen_agrees),
        cmocka_unit_test(a_late_event_counts_on_from_a_flush_being_written),
        cmocka_unit_test(many_accounts_and_periods_are_written_as_sent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
