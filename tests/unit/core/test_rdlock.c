/* test_rdlock.c: the reader-slot lock (rdlock.h). Readers on several
 * threads never see a write half applied, and writers get through while
 * readers keep reading; reads nest (also across locks and with a writer
 * waiting); threads beyond the slots read through the rwlock; exiting
 * threads give their slots back; a lock freed and another made (at the
 * same address, often) is not mistaken for the old one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rdlock.h"

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- readers against writers -------------------------------------------- */

#define WORDS 16
#define WRITES 100 /* per writer */

typedef struct shared {
    hr_rdlock *l;
    /* a write sets every word to the next value, one at a time, with
     * pauses: a read that overlaps it sees two values */
    volatile uint64_t w[WORDS];
    _Atomic int stop;
    _Atomic long reads, torn, writes;
    _Atomic int inside; /* writers inside: readers must see 0 */
} shared;

static void *reader(void *p) {
    shared *s = p;
    long n = 0, torn = 0;
    while (!atomic_load(&s->stop)) {
        hr_rdslot *t = hr_rdlock_read(s->l);
        uint64_t v = s->w[0];
        /* every eighth read nests: the inner one must keep the writer out
         * of the rest of the outer one */
        if ((n & 7) == 0) {
            hr_rdslot *t2 = hr_rdlock_read(s->l);
            hr_rdlock_read_end(s->l, t2);
        }
        if (atomic_load(&s->inside)) torn++;
        for (int i = 1; i < WORDS; i++)
            if (s->w[i] != v) torn++;
        hr_rdlock_read_end(s->l, t);
        n++;
        /* some work outside, as a request thread has: with readers always
         * inside, each write waits for preempted readers to run again */
        for (volatile int i = 0; i < 200; i++) {
        }
    }
    atomic_fetch_add(&s->reads, n);
    atomic_fetch_add(&s->torn, torn);
    return NULL;
}

static void *writer(void *p) {
    shared *s = p;
    for (int k = 0; k < WRITES; k++) {
        hr_rdlock_write(s->l);
        atomic_fetch_add(&s->inside, 1);
        uint64_t v = s->w[0] + 1;
        for (int i = 0; i < WORDS; i++) {
            s->w[i] = v;
            if (i == WORDS / 2) sched_yield(); /* a reader would run in the middle */
        }
        atomic_fetch_sub(&s->inside, 1);
        hr_rdlock_write_end(s->l);
        atomic_fetch_add(&s->writes, 1);
    }
    return NULL;
}

static void readers_never_see_half_a_write(void **state) {
    shared *s = calloc(1, sizeof *s);
    assert_non_null(s);
    assert_non_null(s->l = hr_rdlock_new());
    enum { R = 6, W = 2 };
    pthread_t r[R], w[W];
    int64_t t0 = mono_ms();
    for (int i = 0; i < R; i++) assert_int_equal(pthread_create(&r[i], NULL, reader, s), 0);
    for (int i = 0; i < W; i++) assert_int_equal(pthread_create(&w[i], NULL, writer, s), 0);
    /* the writers finish while the readers never stop reading */
    for (int i = 0; i < W; i++) pthread_join(w[i], NULL);
    int64_t took = mono_ms() - t0;
    atomic_store(&s->stop, 1);
    for (int i = 0; i < R; i++) pthread_join(r[i], NULL);
    assert_int_equal(atomic_load(&s->writes), WRITES * W);
    assert_true(s->w[0] == WRITES * W);
    assert_true(atomic_load(&s->reads) > 0);
    assert_int_equal(atomic_load(&s->torn), 0);
    assert_true(took < 30000); /* writers do not starve */
    hr_rdlock_free(s->l);
    free(s);
}

/* ---- a nested read while a writer waits --------------------------------- */

typedef struct nest {
    hr_rdlock *a, *b;
    _Atomic int step, wrote;
} nest;

static void *nest_writer(void *p) {
    nest *x = p;
    while (atomic_load(&x->step) < 1) sched_yield();
    atomic_store(&x->step, 2);
    hr_rdlock_write(x->a); /* waits for the outer read */
    atomic_store(&x->wrote, 1);
    hr_rdlock_write_end(x->a);
    return NULL;
}

static void nested_read_with_writer_waiting(void **state) {
    nest x = {hr_rdlock_new(), hr_rdlock_new(), 0, 0};
    assert_non_null(x.a);
    assert_non_null(x.b);
    pthread_t w;
    assert_int_equal(pthread_create(&w, NULL, nest_writer, &x), 0);
    hr_rdslot *t = hr_rdlock_read(x.a);
    assert_non_null(t); /* this thread has a slot */
    atomic_store(&x.step, 1);
    while (atomic_load(&x.step) < 2) sched_yield();
    /* give the writer time to raise its flag and wait */
    for (int i = 0; i < 100 && !atomic_load(&x.a->writer); i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_true(atomic_load(&x.a->writer));
    /* nested reads of a, and of b inside a, must not wait for the writer */
    hr_rdslot *t2 = hr_rdlock_read(x.a);
    hr_rdslot *tb = hr_rdlock_read(x.b);
    assert_non_null(tb);
    assert_ptr_not_equal(tb, t); /* a slot per lock */
    hr_rdslot *t3 = hr_rdlock_read(x.a);
    hr_rdlock_read_end(x.a, t3);
    hr_rdlock_read_end(x.b, tb);
    hr_rdlock_read_end(x.a, t2);
    assert_int_equal(atomic_load(&x.wrote), 0); /* the outer read still holds it */
    hr_rdlock_read_end(x.a, t);
    pthread_join(w, NULL);
    assert_int_equal(atomic_load(&x.wrote), 1);
    /* a writer on a does not wait for a reader of b */
    tb = hr_rdlock_read(x.b);
    hr_rdlock_write(x.a);
    hr_rdlock_write_end(x.a);
    hr_rdlock_read_end(x.b, tb);
    hr_rdlock_free(x.a);
    hr_rdlock_free(x.b);
}

/* ---- more threads than slots; threads exiting --------------------------- */

typedef struct crowd {
    hr_rdlock *l;
    pthread_barrier_t held, done;
    _Atomic int noslot;
    volatile uint64_t w[2];
    _Atomic int torn;
} crowd;

/* Reads once and holds the read until every thread has read; counts the
 * threads that got no slot. */
static void *crowd_reader(void *p) {
    crowd *c = p;
    hr_rdslot *t = hr_rdlock_read(c->l);
    if (!t) atomic_fetch_add(&c->noslot, 1);
    pthread_barrier_wait(&c->held);
    hr_rdlock_read_end(c->l, t);
    pthread_barrier_wait(&c->done);
    /* then reads against the main thread's writes */
    for (int i = 0; i < 200; i++) {
        t = hr_rdlock_read(c->l);
        if (c->w[0] != c->w[1]) atomic_fetch_add(&c->torn, 1);
        hr_rdlock_read_end(c->l, t);
        if (!(i & 15)) sched_yield();
    }
    return NULL;
}

static void crowd_round(crowd *c, int n, int expect_noslot) {
    pthread_t th[HR_RDLOCK_SLOTS + 16];
    atomic_store(&c->noslot, 0);
    pthread_barrier_init(&c->held, NULL, (unsigned)n);
    pthread_barrier_init(&c->done, NULL, (unsigned)n + 1);
    for (int i = 0; i < n; i++) assert_int_equal(pthread_create(&th[i], NULL, crowd_reader, c), 0);
    pthread_barrier_wait(&c->done);
    for (int k = 0; k < 100; k++) {
        hr_rdlock_write(c->l);
        c->w[0]++;
        sched_yield();
        c->w[1]++;
        hr_rdlock_write_end(c->l);
    }
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&c->held);
    pthread_barrier_destroy(&c->done);
    assert_int_equal(atomic_load(&c->noslot), expect_noslot);
    assert_int_equal(atomic_load(&c->torn), 0);
}

static void more_threads_than_slots_and_exits(void **state) {
    crowd *c = calloc(1, sizeof *c);
    assert_non_null(c);
    assert_non_null(c->l = hr_rdlock_new());
    /* 8 threads too many read through the rwlock, and writers still wait
     * for them */
    crowd_round(c, HR_RDLOCK_SLOTS + 8, 8);
    /* those threads exited: their slots are free again, round after round */
    for (int r = 0; r < 3; r++) crowd_round(c, HR_RDLOCK_SLOTS, 0);
    for (int i = 0; i < HR_RDLOCK_SLOTS; i++) assert_int_equal(atomic_load(&c->l->slots[i].owned), 0);
    hr_rdlock_free(c->l);
    free(c);
}

/* ---- locks freed while threads remember them ---------------------------- */

typedef struct churn {
    hr_rdlock *l;
    _Atomic int go, ready;
    hr_rdslot *got;
} churn;

/* Reads whatever lock c->l is each time it is told to, then exits (after
 * the lock it last read was freed: giving its slot back must not touch it). */
static void *churn_reader(void *p) {
    churn *c = p;
    for (int k = 1; k <= 3; k++) {
        while (atomic_load(&c->go) < k) sched_yield();
        hr_rdslot *t = hr_rdlock_read(c->l);
        c->got = t;
        hr_rdlock_read_end(c->l, t);
        atomic_store(&c->ready, k);
    }
    while (atomic_load(&c->go) < 4) sched_yield();
    return NULL;
}

static void freed_locks_are_not_mistaken(void **state) {
    churn c = {0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, churn_reader, &c), 0);
    for (int k = 1; k <= 3; k++) {
        assert_non_null(c.l = hr_rdlock_new());
        atomic_store(&c.go, k);
        while (atomic_load(&c.ready) < k) sched_yield();
        /* the slot is the new lock's, and claimed */
        assert_true(c.got >= &c.l->slots[0] && c.got < &c.l->slots[HR_RDLOCK_SLOTS]);
        assert_int_equal(atomic_load(&c.got->owned), 1);
        hr_rdlock_free(c.l);
    }
    atomic_store(&c.go, 4);
    pthread_join(th, NULL);
    /* one thread, more locks than it keeps claims for: the rest read
     * through the rwlock, and freeing some makes room again */
    enum { N = 12 };
    hr_rdlock *ls[N];
    int slots = 0;
    for (int i = 0; i < N; i++) {
        assert_non_null(ls[i] = hr_rdlock_new());
        hr_rdslot *t = hr_rdlock_read(ls[i]);
        slots += t != NULL;
        hr_rdlock_read_end(ls[i], t);
        hr_rdlock_write(ls[i]); /* not blocked by this thread's own ended read */
        hr_rdlock_write_end(ls[i]);
    }
    assert_true(slots >= 1 && slots < N);
    for (int i = 0; i < N; i++) hr_rdlock_free(ls[i]);
    hr_rdlock *l = hr_rdlock_new();
    assert_non_null(l);
    hr_rdslot *t = hr_rdlock_read(l);
    assert_non_null(t);
    hr_rdlock_read_end(l, t);
    hr_rdlock_free(l);
}

int main(int argc, char **argv) {
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(readers_never_see_half_a_write),
        cmocka_unit_test(nested_read_with_writer_waiting),
        cmocka_unit_test(more_threads_than_slots_and_exits),
        cmocka_unit_test(freed_locks_are_not_mistaken),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
