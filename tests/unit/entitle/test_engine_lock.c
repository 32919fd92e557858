/* test_engine_lock.c: decisions on several threads while accounts are
 * replaced, through the engine's lock (rdlock.h). A replaced account is
 * copied over in place and its add-on array freed under the write side, so
 * a decision overlapping a write would see a plan without its add-ons (a
 * limit no state has) or read a freed array (AddressSanitizer); a catalog
 * swap (plans and add-ons reordered) re-indexes 3,000 accounts under the
 * write side, and a decision overlapping it would pair the new catalog
 * with old indexes. (With the read side's flag check removed, 4 runs in 5
 * failed here, with up to millions of bad answers.) Readers
 * switch between two engines on every call, come and go in rounds (their
 * slots given back as they exit), and an engine is freed and another made
 * while threads that used it live on. A second test grows an account's
 * arrays (usage entries, overrides) under reading decisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "catalog/catalog.h"
#include "entitle/engine.h"
#include "events/segment.h"
#include "../fixture.h"

static const char yaml[] =
    "currency: USD\n"
    "features:\n"
    "  seats: {type: limit}\n"
    "  boards: {type: limit}\n"
    "plans:\n"
    "  free: {price: 0, entitlements: {seats: 3, boards: 3}}\n"
    "  pro: {price: 12, interval: month, entitlements: {seats: 10, boards: 50}}\n"
    "addons:\n"
    "  extra_seats: {price: 5, interval: month, grants: {seats: 5}, plans: [pro]}\n"
    "  more_boards: {price: 5, interval: month, grants: {boards: 10}, plans: [pro]}\n";

/* The same with plans and add-ons in the other order: swapping catalogs
 * re-indexes every account under the write side, a long write, during
 * which a decision would find the new catalog but the old indexes. */
static const char yaml2[] =
    "currency: USD\n"
    "features:\n"
    "  seats: {type: limit}\n"
    "  boards: {type: limit}\n"
    "plans:\n"
    "  pro: {price: 12, interval: month, entitlements: {seats: 10, boards: 50}}\n"
    "  free: {price: 0, entitlements: {seats: 3, boards: 3}}\n"
    "addons:\n"
    "  more_boards: {price: 5, interval: month, grants: {boards: 10}, plans: [pro]}\n"
    "  extra_seats: {price: 5, interval: month, grants: {seats: 5}, plans: [pro]}\n";

/* The two states a writer alternates between, and the limits each gives. */
static const char *states[2] = {
    "{\"plan\":\"free\"}",
    "{\"plan\":\"pro\",\"addons\":{\"extra_seats\":1,\"more_boards\":1}}"};
static const int64_t seats_of[2] = {3, 15}, boards_of[2] = {3, 60};

#define WRITES 10000 /* per writer */
#define SWAPS 200     /* catalog swaps per round (an even number: it ends on cat[0]) */

typedef struct world {
    hr_engine *e[2];
    hr_catalog *cat[2];
    _Atomic int stop;
    _Atomic long reads, bad, writes;
} world;

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *reader(void *p) {
    world *w = p;
    long n = 0, bad = 0;
    while (!atomic_load(&w->stop)) {
        hr_verdict v;
        int seats = n & 2;
        hr_engine_check(w->e[n & 1], "acct", seats ? "seats" : "boards", 1, 0, &v);
        const int64_t *ok = seats ? seats_of : boards_of;
        if (v.limit != ok[0] && v.limit != ok[1]) bad++;
        n++;
    }
    atomic_fetch_add(&w->reads, n);
    atomic_fetch_add(&w->bad, bad);
    return NULL;
}

typedef struct wjob {
    world *w;
    int which;
} wjob;

static void *writer(void *p) {
    wjob *j = p;
    for (int k = 0; k < WRITES; k++) {
        hr_err err = {0};
        if (hr_engine_put_account_json(j->w->e[j->which], "acct", states[k & 1], &err)) break;
        atomic_fetch_add(&j->w->writes, 1);
    }
    return NULL;
}

/* Swaps engine 0's catalog back and forth. */
static void *swapper(void *p) {
    world *w = p;
    for (int k = 1; k <= SWAPS; k++) {
        hr_err err = {0};
        if (hr_engine_set_catalog(w->e[0], w->cat[k & 1], &err)) break;
        atomic_fetch_add(&w->writes, 1);
    }
    return NULL;
}

/* An engine with the account the readers decide on, and many more for a
 * catalog swap to walk. */
static hr_engine *engine(hr_catalog *c) {
    hr_engine *e = hr_engine_new(c);
    assert_non_null(e);
    hr_test_put_account(e, "acct", states[0]);
    for (int i = 0; i < 3000; i++) {
        char id[16];
        snprintf(id, sizeof id, "f%d", i);
        hr_test_put_account(e, id, states[i & 1]);
    }
    return e;
}

static void decisions_never_see_half_a_write(void **state) {
    hr_catalog *cat = NULL, *cat2 = NULL;
    hr_err err;
    assert_int_equal(hr_catalog_parse(yaml, sizeof yaml - 1, "t.yaml", &cat, &err, NULL), 0);
    assert_int_equal(hr_catalog_parse(yaml2, sizeof yaml2 - 1, "t2.yaml", &cat2, &err, NULL), 0);
    world w = {{engine(cat), engine(cat)}, {cat, cat2}, 0, 0, 0, 0};
    enum { R = 4 };
    for (int round = 0; round < 3; round++) {
        pthread_t r[R], wr[2], sw;
        wjob jobs[2] = {{&w, 0}, {&w, 1}};
        atomic_store(&w.stop, 0);
        atomic_store(&w.writes, 0);
        int64_t t0 = mono_ms();
        for (int i = 0; i < R; i++) assert_int_equal(pthread_create(&r[i], NULL, reader, &w), 0);
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&wr[i], NULL, writer, &jobs[i]), 0);
        assert_int_equal(pthread_create(&sw, NULL, swapper, &w), 0);
        /* the writers get through while the readers never stop */
        for (int i = 0; i < 2; i++) pthread_join(wr[i], NULL);
        pthread_join(sw, NULL);
        int64_t took = mono_ms() - t0;
        atomic_store(&w.stop, 1);
        for (int i = 0; i < R; i++) pthread_join(r[i], NULL); /* they exit: slots back */
        assert_int_equal(atomic_load(&w.writes), 2 * WRITES + SWAPS);
        assert_true(took < 60000);
        if (round == 1) { /* a new engine where the readers' last one was */
            hr_engine_free(w.e[0]);
            w.e[0] = engine(cat);
        }
    }
    assert_true(atomic_load(&w.reads) > 0);
    assert_int_equal(atomic_load(&w.bad), 0);
    /* this thread, too, decides on a freed engine's successor */
    hr_verdict v;
    hr_engine_check(w.e[1], "acct", "seats", 1, 0, &v);
    hr_engine_free(w.e[1]);
    w.e[1] = engine(cat);
    assert_int_equal(hr_engine_check(w.e[1], "acct", "seats", 1, 0, &v), 0);
    assert_int_equal(v.limit, 3);
    hr_engine_free(w.e[0]);
    hr_engine_free(w.e[1]);
    hr_catalog_release(cat);
    hr_catalog_release(cat2);
}

/* ---- arrays that grow under a reading decision ------------------------- */

/* An account gains usage entries (inline, then on the heap) and overrides
 * one feature at a time, each a realloc that may move the array, while
 * decisions read it: an account with overrides takes the full decision,
 * which walks them. Under AddressSanitizer (whose realloc always moves) a
 * grow outside the write side shows as a use after free. */
#define NGROW 24
#define GROW_ACCOUNTS 10

typedef struct gworld {
    hr_engine *e;
    _Atomic int cur, stop, started;
    _Atomic long reads;
} gworld;

static const char *gfeature(int i) {
    static char names[NGROW][8];
    if (!names[i][0]) snprintf(names[i], sizeof names[i], "f%02d", i);
    return names[i];
}

static void *greader(void *p) {
    gworld *w = p;
    long n = 0;
    char id[16];
    while (!atomic_load(&w->stop)) {
        hr_verdict v;
        snprintf(id, sizeof id, "g%d", atomic_load(&w->cur));
        hr_engine_check(w->e, id, gfeature((int)(n % NGROW)), 1, 0, &v);
        if (n++ == 0) atomic_fetch_add(&w->started, 1);
    }
    atomic_fetch_add(&w->reads, n);
    return NULL;
}

static void arrays_grow_under_the_write_side(void **state) {
    (void)state;
    static char yaml_g[4096];
    size_t o = (size_t)snprintf(yaml_g, sizeof yaml_g, "currency: USD\nfeatures:\n");
    for (int i = 0; i < NGROW; i++)
        o += (size_t)snprintf(yaml_g + o, sizeof yaml_g - o, "  %s: {type: limit}\n", gfeature(i));
    o += (size_t)snprintf(yaml_g + o, sizeof yaml_g - o,
                          "plans:\n  free: {price: 0, entitlements: {f00: 3}}\n");
    hr_catalog *cat = NULL;
    hr_err err = {0};
    assert_int_equal(hr_catalog_parse(yaml_g, o, "g.yaml", &cat, &err, NULL), 0);
    gworld w = {.e = hr_engine_new(cat)};
    assert_non_null(w.e);
    char id[16];
    for (int k = 0; k < GROW_ACCOUNTS; k++) {
        snprintf(id, sizeof id, "g%d", k);
        hr_test_put_account(w.e, id, "{\"plan\":\"free\"}");
    }
    enum { R = 3 };
    pthread_t r[R];
    for (int i = 0; i < R; i++) assert_int_equal(pthread_create(&r[i], NULL, greader, &w), 0);
    while (atomic_load(&w.started) < R) sched_yield(); /* the writes overlap reads */
    json_object *five = json_object_new_int(5);
    for (int k = 0; k < GROW_ACCOUNTS; k++) {
        snprintf(id, sizeof id, "g%d", k);
        atomic_store(&w.cur, k);
        for (int i = 0; i < NGROW; i++) {
            hr_buf out;
            int st;
            hr_buf_init(&out);
            assert_int_equal(hr_engine_record_usage(w.e, id, gfeature(i), i, 1, NULL, 0, 0, &st,
                                                    &out, &err),
                             0);
            assert_int_equal(hr_engine_put_override(w.e, id, gfeature(NGROW - 1 - i), five, 0,
                                                    &out, &err),
                             0);
            hr_buf_dispose(&out);
        }
    }
    json_object_put(five);
    atomic_store(&w.stop, 1);
    for (int i = 0; i < R; i++) pthread_join(r[i], NULL);
    assert_true(atomic_load(&w.reads) > 0);
    /* and every entry landed where the decision finds it */
    hr_verdict v;
    assert_int_equal(hr_engine_check(w.e, "g0", "f07", 1, 0, &v), 0);
    assert_int_equal(v.usage, 7);
    assert_int_equal(v.limit, 5);
    hr_engine_free(w.e);
    hr_catalog_release(cat);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decisions_never_see_half_a_write),
        cmocka_unit_test(arrays_grow_under_the_write_side),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
