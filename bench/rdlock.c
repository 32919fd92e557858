/* rdlock.c: the engine's lock (src/core/rdlock.h) against a glibc
 * pthread_rwlock, one thread, uncontended: ns per read (enter + leave) and
 * per write (enter + leave, one reader slot claimed, as in a server where
 * one thread reads).
 *
 *   build/bench/bench_rdlock [CALLS]   (default 10000000, 3 rounds)
 *
 * This is the lock's own cost; what it does to decisions is measured by
 * bench_check_inproc. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "rdlock.h"

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000000;
    pthread_rwlock_t rw;
    hr_rdlock *l = hr_rdlock_new();
    if (n < 1 || !l || pthread_rwlock_init(&rw, NULL)) return 1;
    hr_rdslot *s = hr_rdlock_read(l); /* claims this thread's slot */
    hr_rdlock_read_end(l, s);
    for (int r = 0; r < 3; r++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) {
            pthread_rwlock_rdlock(&rw);
            pthread_rwlock_unlock(&rw);
        }
        double t1 = now_ns();
        for (long i = 0; i < n; i++) {
            s = hr_rdlock_read(l);
            hr_rdlock_read_end(l, s);
        }
        double t2 = now_ns();
        for (long i = 0; i < n; i++) {
            pthread_rwlock_wrlock(&rw);
            pthread_rwlock_unlock(&rw);
        }
        double t3 = now_ns();
        for (long i = 0; i < n; i++) {
            hr_rdlock_write(l);
            hr_rdlock_write_end(l);
        }
        double t4 = now_ns();
        printf("read: rwlock %.1f ns, rdlock %.1f ns; write: rwlock %.1f ns, rdlock %.1f ns\n",
               (t1 - t0) / n, (t2 - t1) / n, (t3 - t2) / n, (t4 - t3) / n);
    }
    pthread_rwlock_destroy(&rw);
    hr_rdlock_free(l);
    return 0;
}
