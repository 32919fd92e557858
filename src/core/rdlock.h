/* rdlock.h: a readers-writer lock whose read side costs one exchange on a
 * cache line of the reader thread's own ("big-reader" lock), for data read
 * on every decision and written rarely.
 *
 * Each thread that reads claims one of HR_RDLOCK_SLOTS padded slots once
 * per lock (remembered per thread, keyed by the lock's unique id); a read
 * counts itself in that slot and then checks the writer flag. A writer
 * takes the inner pthread rwlock exclusively, raises the flag and waits
 * until every slot is empty. Readers that see the flag, and threads that
 * found no free slot, use the rwlock's read side instead.
 *
 * Reads may nest on one thread (the slot counts), also across locks.
 * Writes do not nest, and a thread holding the write side must not read
 * (as with pthread_rwlock). A reader must not wait for a thread that is
 * itself waiting to read: once a writer waits, new reads block (the lock
 * prefers writers), unlike glibc's default rwlock.
 *
 * The struct is in the header only so that the read side can be inlined;
 * its fields are private to rdlock.c. */
#ifndef HR_RDLOCK_H
#define HR_RDLOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define HR_RDLOCK_SLOTS 64

/* One reader thread's slot: a line of its own, so readers never share one. */
typedef struct hr_rdslot {
    _Atomic uint32_t n;     /* reads this slot's thread holds; written by it only */
    _Atomic uint32_t owned; /* claimed by a thread */
    char pad[56];
} hr_rdslot;

typedef struct hr_rdlock {
    /* line 0: read by every read, written by writers only */
    _Atomic uint32_t writer; /* a writer holds rw and waits for, or has, the data */
    _Atomic uint32_t nslots; /* slots below this were ever claimed: writers scan those */
    uint64_t id; /* unique in the process, never reused; 0 never names a lock */
    char pad1[48];
    pthread_rwlock_t rw; /* writers against each other and against slow readers */
    char pad2[64 - sizeof(pthread_rwlock_t) % 64];
    hr_rdslot slots[HR_RDLOCK_SLOTS];
} hr_rdlock;

/* What a thread remembers of the lock it used last (rdlock.c fills it). */
typedef struct hr_rdlock_mru {
    uint64_t id;
    hr_rdslot *slot; /* NULL: no slot for this thread, read through rw */
} hr_rdlock_mru;
extern _Thread_local hr_rdlock_mru hr_rdlock_tls;

/* A new lock (64-byte aligned); NULL on OOM. Caller frees with hr_rdlock_free. */
hr_rdlock *hr_rdlock_new(void);
/* No thread may hold or wait for l. Accepts NULL. */
void hr_rdlock_free(hr_rdlock *l);

/* The calling thread's slot in l, claimed on first use; NULL if all are
 * taken. The slow path of hr_rdlock_read. */
hr_rdslot *hr_rdlock_slot(hr_rdlock *l);

/* Takes the read side; pass what it returns to hr_rdlock_read_end. */
static inline hr_rdslot *hr_rdlock_read(hr_rdlock *l) {
    hr_rdslot *s = hr_rdlock_tls.id == l->id ? hr_rdlock_tls.slot : hr_rdlock_slot(l);
    if (__builtin_expect(!s, 0)) goto slow;
    uint32_t held = atomic_load_explicit(&s->n, memory_order_relaxed);
    /* seq_cst exchange, then seq_cst load of the flag; the writer stores the
     * flag (seq_cst), then loads each slot (seq_cst). In the single order of
     * the four, either this load sees the flag or the writer's load sees
     * this count, so a reader and a writer are never both inside. A nested
     * read (held > 0) needs no check: the writer already waits for us. */
    atomic_exchange_explicit(&s->n, held + 1, memory_order_seq_cst);
    if (__builtin_expect(!held && atomic_load_explicit(&l->writer, memory_order_seq_cst), 0)) {
        atomic_store_explicit(&s->n, 0, memory_order_release);
        goto slow;
    }
    return s;
slow:
    pthread_rwlock_rdlock(&l->rw);
    return NULL;
}

/* Leaves the read side; s: what hr_rdlock_read returned. The release store
 * orders this read's loads before the writer's stores (it acquires). */
static inline void hr_rdlock_read_end(hr_rdlock *l, hr_rdslot *s) {
    if (__builtin_expect(!s, 0)) {
        pthread_rwlock_unlock(&l->rw);
        return;
    }
    atomic_store_explicit(&s->n, atomic_load_explicit(&s->n, memory_order_relaxed) - 1,
                          memory_order_release);
}

/* Takes the write side: one writer at a time; waits for the reads in
 * progress to end (spinning, then yielding) while new ones wait for it. */
void hr_rdlock_write(hr_rdlock *l);
void hr_rdlock_write_end(hr_rdlock *l);

#endif
