/* test_checkpoint.c: with background checkpoints the writer's connection
 * never checkpoints; the checkpointer's thread copies the log into the
 * database instead. What the database file holds shows which happened: a
 * checkpoint is the only thing that writes table pages into it. */
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

enum { TX = 60, PER_TX = 40 }; /* ~1 KB bodies: ~2.5 MB of rows in all */

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Writes TX transactions of events. */
static void write_events(hr_store *s) {
    static char body[1024];
    memset(body, 'x', sizeof body - 1);
    hr_event_rec ev[PER_TX];
    char ids[PER_TX][24];
    hr_err err = {0};
    int64_t now = hr_time_now_ms();
    for (int t = 0; t < TX; t++) {
        for (int i = 0; i < PER_TX; i++) {
            snprintf(ids[i], sizeof ids[i], "m%d-%d", t, i);
            /* two accounts in turn: a row each, stored as written (a run
             * of one account's would be compressed) */
            ev[i] = (hr_event_rec){ids[i], i % 2 ? "acme" : "acme2", "u", NULL, "track", "E", now, now,
                                   body, 0, 0};
        }
        assert_int_equal(s->ops->put_events(s, ev, PER_TX, &err), 0);
    }
}

/* The database file's size once it reaches at least `want` bytes, or after
 * `ms` milliseconds of waiting: a checkpointer runs in its own time. */
static long db_size_within(const char *path, long want, int ms) {
    long n = file_size(path);
    for (int waited = 0; n < want && waited < ms; waited += 10) {
        struct timespec t = {0, 10000000};
        nanosleep(&t, NULL);
        n = file_size(path);
    }
    return n;
}

static hr_store *open_in(char *dir, char *path, size_t n) {
    assert_non_null(mkdtemp(dir));
    snprintf(path, n, "%s/h.db", dir);
    hr_store *s = NULL;
    hr_err err = {0};
    assert_int_equal(hr_store_sqlite_open(path, 0, &s, &err), 0);
    return s;
}

static void the_checkpointer_copies_the_log(void **state) {
    (void)state;
    char dir[] = "/tmp/hr-ckpt-XXXXXX", path[96], cmd[160];
    hr_store *s = open_in(dir, path, sizeof path);
    hr_err err = {0};
    /* 64 pages (~256 KB) wake the checkpointer */
    assert_int_equal(hr_store_sqlite_background_checkpoints(s, 64, &err), 0);
    write_events(s);
    /* ~2.5 MB written: most of it reaches the database file (generous
     * wait: a loaded CI machine may run the thread late) */
    assert_true(db_size_within(path, 2 * 1024 * 1024, 20000) >= 2 * 1024 * 1024);
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

/* The control: the writer's own checkpoints are off as soon as a
 * checkpointer is started; one that never wakes leaves the whole log
 * outside the database, so the test above says something. */
static void without_a_checkpointer_the_log_stays_in_the_wal(void **state) {
    (void)state;
    char dir[] = "/tmp/hr-ckpt-XXXXXX", path[96], wal[128], cmd[160];
    hr_store *s = open_in(dir, path, sizeof path);
    snprintf(wal, sizeof wal, "%s-wal", path);
    hr_err err = {0};
    assert_int_equal(hr_store_sqlite_background_checkpoints(s, 1 << 30, &err), 0);
    write_events(s);
    assert_true(db_size_within(path, 2 * 1024 * 1024, 300) < 1024 * 1024);
    assert_true(file_size(wal) > 2 * 1024 * 1024);
    hr_store_close(s);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Another connection's commits wake the owner's checkpointer too: on its
 * own, that connection would not checkpoint 2.5 MB (SQLite's threshold is
 * ~40 MB), so the file grows only through the shared thread. */
static void a_second_connection_shares_the_checkpointer(void **state) {
    (void)state;
    char dir[] = "/tmp/hr-ckpt-XXXXXX", path[96], cmd[160];
    hr_store *owner = open_in(dir, path, sizeof path), *s = NULL;
    hr_err err = {0};
    assert_int_equal(hr_store_sqlite_background_checkpoints(owner, 64, &err), 0);
    assert_int_equal(hr_store_sqlite_open(path, 0, &s, &err), 0);
    assert_int_equal(hr_store_sqlite_share_checkpoints(s, owner, &err), 0);
    write_events(s);
    assert_true(db_size_within(path, 2 * 1024 * 1024, 20000) >= 2 * 1024 * 1024);
    hr_store_close(s);
    hr_store_close(owner);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_checkpointer_copies_the_log),
        cmocka_unit_test(without_a_checkpointer_the_log_stays_in_the_wal),
        cmocka_unit_test(a_second_connection_shares_the_checkpointer)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
