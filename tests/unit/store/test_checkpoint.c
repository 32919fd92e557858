/* test_checkpoint.c: with background checkpoints the writer's connection
 * never checkpoints, and the log still stays short: the checkpointer's
 * thread copies it into the database and the writer starts it over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store/store.h"
#include "timeutil.h"

enum { TX = 60, PER_TX = 40 }; /* ~1 KB bodies: ~2.5 MB of log in all */

/* Writes TX transactions of events; returns the log's size at the end. */
static long write_and_measure(hr_store *s, const char *path) {
    static char body[1024];
    memset(body, 'x', sizeof body - 1);
    char wal[128];
    snprintf(wal, sizeof wal, "%s-wal", path);
    hr_event_rec ev[PER_TX];
    char ids[PER_TX][24];
    hr_err err = {0};
    int64_t now = hr_time_now_ms();
    for (int t = 0; t < TX; t++) {
        for (int i = 0; i < PER_TX; i++) {
            snprintf(ids[i], sizeof ids[i], "m%d-%d", t, i);
            ev[i] = (hr_event_rec){ids[i], "acme", "u", NULL, "track", "E", now, now, body, 0};
        }
        assert_int_equal(s->ops->put_events(s, ev, PER_TX, &err), 0);
        /* give a checkpointer a moment, as the time between commits does */
        struct timespec ms = {0, 2000000};
        nanosleep(&ms, NULL);
    }
    struct stat st;
    assert_int_equal(stat(wal, &st), 0);
    return (long)st.st_size;
}

static hr_store *open_in(char *dir, char *path, size_t n) {
    assert_non_null(mkdtemp(dir));
    snprintf(path, n, "%s/h.db", dir);
    hr_store *s = NULL;
    hr_err err = {0};
    assert_int_equal(hr_store_sqlite_open(path, 0, &s, &err), 0);
    return s;
}

static void the_log_stays_short(void **state) {
    (void)state;
    char dir[] = "/tmp/hr-ckpt-XXXXXX", path[96], cmd[160];
    hr_store *s = open_in(dir, path, sizeof path);
    hr_err err = {0};
    /* 64 pages (~256 KB) wake the checkpointer */
    assert_int_equal(hr_store_sqlite_background_checkpoints(s, 64, &err), 0);
    long wal = write_and_measure(s, path);
    assert_true(wal < 1536 * 1024); /* ~2.5 MB written */
    int64_t last = 0;
    assert_int_equal(s->ops->last_seq(s, &last, &err), 0);
    assert_int_equal(last, TX * PER_TX);
    hr_store_close(s); /* stops the thread */
    /* everything is there after a reopen */
    assert_int_equal(hr_store_sqlite_open(path, 0, &s, &err), 0);
    assert_int_equal(s->ops->last_seq(s, &last, &err), 0);
    assert_int_equal(last, TX * PER_TX);
    hr_store_close(s);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* The control: the same writes with the writer's own checkpoints turned
 * off and no checkpointer leave the whole log behind, so the bound above
 * says something. */
static void without_a_checkpointer_the_log_grows(void **state) {
    (void)state;
    char dir[] = "/tmp/hr-ckpt-XXXXXX", path[96], cmd[160];
    hr_store *s = open_in(dir, path, sizeof path);
    hr_err err = {0};
    /* a checkpointer that never wakes: the writer's own checkpoints are
     * off as soon as one is started */
    assert_int_equal(hr_store_sqlite_background_checkpoints(s, 1 << 30, &err), 0);
    long wal = write_and_measure(s, path);
    assert_true(wal > 2 * 1024 * 1024);
    hr_store_close(s);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(the_log_stays_short),
                                       cmocka_unit_test(without_a_checkpointer_the_log_grows)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
