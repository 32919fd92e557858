/* test_retention.c: pruning the raw event log keeps recent events and every
 * meter value; `headroom compact` does the same from the command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "timeutil.h"

static int count_events(void *ud, const hr_event_rec *r) {
    (void)r;
    ++*(int *)ud;
    return 0;
}

static int count_meters(void *ud, const hr_meter_rec *r) {
    (void)r;
    ++*(int *)ud;
    return 0;
}

static void prune_keeps_recent_and_meters(void **state) {
    char dir[] = "/tmp/hr-retention-XXXXXX", path[96], cmd[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/h.db", dir);
    hr_store *s = NULL;
    hr_err err = {0};
    assert_int_equal(hr_store_sqlite_open(path, 0, &s, &err), 0);
    enum { OLD = 25000, NEW = 10 };
    int64_t now = hr_time_now_ms();
    hr_event_rec *ev = calloc(OLD + NEW, sizeof *ev);
    char (*ids)[24] = calloc(OLD + NEW, sizeof *ids);
    for (int i = 0; i < OLD + NEW; i++) {
        snprintf(ids[i], sizeof ids[i], "m%d", i);
        /* received 100 days ago, then now (ms) */
        int64_t at = i < OLD ? now - 100LL * 86400000 : now;
        ev[i] = (hr_event_rec){ids[i], "acme", "u", NULL, "track", "E", at, at, "{}", 0, 2};
    }
    assert_int_equal(s->ops->put_events(s, ev, OLD + NEW, &err), 0);
    hr_meter_rec m = {"acme", "calls", 0, 42, 0, NULL, 0};
    assert_int_equal(s->ops->put_meter(s, &m, &err), 0);
    int deleted = 0;
    int64_t total = 0, events = 0;
    int64_t cutoff = now - 90LL * 86400000;
    /* events not yet folded into the meters stay, however old */
    assert_int_equal(s->ops->prune_events(s, cutoff, 10000, &deleted, &events, &err), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(events, 0);
    int64_t last = 0;
    assert_int_equal(s->ops->last_seq(s, &last, &err), 0);
    assert_int_equal(last, OLD + NEW);
    assert_int_equal(s->ops->put_folded_seq(s, last, &err), 0);
    do {
        assert_int_equal(s->ops->prune_events(s, cutoff, 10000, &deleted, &events, &err), 0);
        total += events;
    } while (deleted == 10000);
    assert_int_equal(total, OLD);
    int n = 0;
    assert_int_equal(s->ops->recent_events(s, "acme", 1000, count_events, &n, &err), 0);
    assert_int_equal(n, NEW);
    n = 0;
    assert_int_equal(s->ops->meter_series(s, "acme", "calls", 0, INT64_MAX, count_meters, &n, &err), 0);
    assert_int_equal(n, 1);
    hr_store_close(s);
    free(ev);
    free(ids);
    /* the CLI on what is left: nothing older than 90 days remains */
    snprintf(cmd, sizeof cmd, "%s/headroom compact --db %s --days 90 > %s/out", HR_BUILD_DIR, path, dir);
    if (access(HR_BUILD_DIR "/headroom", X_OK) == 0) {
        assert_int_equal(system(cmd), 0);
        snprintf(cmd, sizeof cmd, "grep -q 'removed 0 raw events' %s/out", dir);
        assert_int_equal(system(cmd), 0);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static int count_seen(void *ud, const char *id, int64_t at) {
    (void)id;
    int64_t *c = ud;
    c[0]++;
    if (at < c[1]) c[1] = at;
    return 0;
}

/* Start-up reads the dedup window's ids from the log by a binary search on
 * seq: exactly the ids received at or after the cutoff, wherever it falls. */
static void seen_ids_from_the_log(void **state) {
    char dir[] = "/tmp/hr-seen-XXXXXX", path[96], cmd[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/h.db", dir);
    hr_store *s = NULL;
    hr_err err = {0};
    assert_int_equal(hr_store_sqlite_open(path, 0, &s, &err), 0);
    enum { N = 5000 };
    hr_event_rec *ev = calloc(N, sizeof *ev);
    char (*ids)[16] = calloc(N, sizeof *ids);
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "id%d", i);
        ev[i] = (hr_event_rec){i % 7 ? ids[i] : NULL, "acme", "u", NULL, "track", "E", i, 1000 + i, "{}", 0, 0};
    }
    assert_int_equal(s->ops->put_events(s, ev, N, &err), 0);
    static const int64_t cut[] = {0, 1000, 1001, 3499, 3500, 5999, 6000, 99999};
    for (size_t k = 0; k < sizeof cut / sizeof *cut; k++) {
        int64_t c[2] = {0, INT64_MAX};
        hr_store_loader l = {.ud = c, .seen = count_seen, .seen_since = cut[k]};
        assert_int_equal(s->ops->load(s, &l, &err), 0);
        int64_t want = 0;
        for (int i = 0; i < N; i++) want += (i % 7) && 1000 + i >= cut[k];
        if (c[0] != want) fail_msg("cutoff %lld: %lld ids, want %lld", (long long)cut[k], (long long)c[0], (long long)want);
        if (want) assert_true(c[1] >= cut[k]);
    }
    hr_store_close(s);
    free(ev);
    free(ids);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A log whose every event is old keeps its newest row: seqs go on from it,
 * above folded_seq, so a restart replays what comes next. */
static void prune_keeps_the_newest_row(void **state) {
    (void)state;
    char dir[] = "/tmp/hr-retention-XXXXXX", path[96], cmd[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/h.db", dir);
    hr_store *s = NULL;
    hr_err err = {0};
    assert_int_equal(hr_store_sqlite_open(path, 0, &s, &err), 0);
    hr_event_rec ev[3] = {{"a1", "acme", "u", NULL, "track", "E", 1, 1, "{}", 0, 0},
                          {"b1", "beta", "u", NULL, "track", "E", 2, 2, "{}", 0, 0},
                          {"b2", "beta", "u", NULL, "track", "E", 2, 2, "{}", 0, 0}};
    assert_int_equal(s->ops->put_events(s, ev, 3, &err), 0);
    assert_int_equal(s->ops->put_folded_seq(s, 3, &err), 0);
    int rows = 0;
    int64_t events = 0, last = 0;
    assert_int_equal(s->ops->prune_events(s, 1000, 1000, &rows, &events, &err), 0);
    assert_int_equal(rows, 1);
    assert_int_equal(events, 1);
    assert_int_equal(s->ops->last_seq(s, &last, &err), 0);
    assert_int_equal(last, 3);
    hr_event_rec next = {"c1", "acme", "u", NULL, "track", "E", 5, 5, "{}", 0, 0};
    assert_int_equal(s->ops->put_events(s, &next, 1, &err), 0);
    assert_int_equal(s->ops->last_seq(s, &last, &err), 0);
    assert_int_equal(last, 4);
    hr_store_close(s);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(prune_keeps_recent_and_meters),
                                       cmocka_unit_test(prune_keeps_the_newest_row),
                                       cmocka_unit_test(seen_ids_from_the_log)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
