/* rdlock.c: the slots' bookkeeping and the write side of hr_rdlock.
 *
 * A thread keeps the slots it claimed (one per lock, up to MAX_CLAIMS
 * locks) for its lifetime, so the read side never claims twice; a pthread
 * key's destructor gives them back when the thread exits. Locks may be
 * freed while threads still remember them, so claims name locks by their
 * never-reused id, and giving a slot back first finds the lock by id in a
 * registry of live locks, under the registry's mutex, which hr_rdlock_free
 * also takes before the lock's memory goes. */
#include "rdlock.h"

#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CLAIMS 8 /* locks a thread keeps a slot in; past that it reads through rw */

_Static_assert(sizeof(hr_rdslot) == 64, "a slot is one cache line");
_Static_assert(offsetof(hr_rdlock, slots) % 64 == 0, "slots start a cache line");
_Static_assert(sizeof(hr_rdlock) % 64 == 0, "aligned_alloc takes a multiple of the alignment");

_Thread_local hr_rdlock_mru hr_rdlock_tls;

typedef struct claim {
    uint64_t id;
    int slot; /* index in the lock's slots; -1: none was free */
} claim;

typedef struct claims {
    int n;
    claim c[MAX_CLAIMS];
} claims;

static _Thread_local claims my_claims;

/* Live locks, for threads giving slots back as they exit. */
typedef struct reg {
    hr_rdlock *l;
    struct reg *next;
} reg;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static reg *live;
static uint64_t next_id = 1; /* under reg_mu */
static pthread_key_t exit_key;
static int have_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

/* reg_mu held */
static hr_rdlock *live_lock(uint64_t id) {
    for (reg *r = live; r; r = r->next)
        if (r->l->id == id) return r->l;
    return NULL;
}

/* reg_mu held: the lock, if still alive, takes back slot of claim c. */
static void give_back(const claim *c) {
    hr_rdlock *l = c->slot >= 0 ? live_lock(c->id) : NULL;
    if (l) atomic_store_explicit(&l->slots[c->slot].owned, 0, memory_order_release);
}

static void thread_gone(void *p) {
    claims *cs = p;
    pthread_mutex_lock(&reg_mu);
    for (int i = 0; i < cs->n; i++) give_back(&cs->c[i]);
    cs->n = 0;
    pthread_mutex_unlock(&reg_mu);
    hr_rdlock_tls = (hr_rdlock_mru){0, NULL};
}

static void make_key(void) {
    /* without the key, exiting threads keep their slots (no memory leaks) */
    have_key = !pthread_key_create(&exit_key, thread_gone);
}

hr_rdlock *hr_rdlock_new(void) {
    hr_rdlock *l = aligned_alloc(64, sizeof *l);
    reg *r = malloc(sizeof *r);
    if (!l || !r) goto fail;
    memset(l, 0, sizeof *l);
    if (pthread_rwlock_init(&l->rw, NULL)) goto fail;
    r->l = l;
    pthread_mutex_lock(&reg_mu);
    l->id = next_id++;
    r->next = live;
    live = r;
    pthread_mutex_unlock(&reg_mu);
    return l;
fail:
    free(l);
    free(r);
    return NULL;
}

void hr_rdlock_free(hr_rdlock *l) {
    if (!l) return;
    reg *gone = NULL;
    pthread_mutex_lock(&reg_mu);
    for (reg **p = &live; *p; p = &(*p)->next)
        if ((*p)->l == l) {
            gone = *p;
            *p = gone->next;
            break;
        }
    pthread_mutex_unlock(&reg_mu);
    free(gone);
    pthread_rwlock_destroy(&l->rw);
    free(l);
}

/* Remembers claim c as this thread's latest lock. */
static hr_rdslot *use(hr_rdlock *l, const claim *c) {
    hr_rdlock_tls.id = l->id;
    hr_rdlock_tls.slot = c->slot >= 0 ? &l->slots[c->slot] : NULL;
    return hr_rdlock_tls.slot;
}

hr_rdslot *hr_rdlock_slot(hr_rdlock *l) {
    claims *cs = &my_claims;
    for (int i = 0; i < cs->n; i++)
        if (cs->c[i].id == l->id) return use(l, &cs->c[i]);
    pthread_once(&exit_once, make_key);
    if (!cs->n && have_key) pthread_setspecific(exit_key, cs);
    if (cs->n == MAX_CLAIMS) { /* forget locks freed since */
        int k = 0;
        pthread_mutex_lock(&reg_mu);
        for (int i = 0; i < cs->n; i++)
            if (live_lock(cs->c[i].id)) cs->c[k++] = cs->c[i];
        pthread_mutex_unlock(&reg_mu);
        cs->n = k;
        /* still full: this thread reads l through rw, without a claim (so
         * until it reads another lock; then this is asked again) */
        if (k == MAX_CLAIMS) return use(l, &(claim){l->id, -1});
    }
    claim c = {l->id, -1};
    for (int i = 0; i < HR_RDLOCK_SLOTS && c.slot < 0; i++) {
        uint32_t unowned = 0;
        if (!atomic_load_explicit(&l->slots[i].owned, memory_order_relaxed) &&
            atomic_compare_exchange_strong(&l->slots[i].owned, &unowned, 1))
            c.slot = i;
    }
    /* published before the slot's first read (seq_cst, as that read's
     * exchange): a writer that could miss the read's count cannot miss
     * this either (hr_rdlock_write) */
    uint32_t top = atomic_load(&l->nslots);
    while (c.slot >= 0 && (uint32_t)c.slot >= top &&
           !atomic_compare_exchange_weak(&l->nslots, &top, (uint32_t)c.slot + 1)) {
    }
    cs->c[cs->n++] = c;
    return use(l, &c);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#endif
}

void hr_rdlock_write(hr_rdlock *l) {
    pthread_rwlock_wrlock(&l->rw);
    atomic_store_explicit(&l->writer, 1, memory_order_seq_cst);
    /* Only the slots ever claimed (threads take the lowest free one).
     * Reads are short (a decision, a JSON answer, a slice of a sweep): spin
     * first; a reader preempted mid-read is waited for by yielding, then
     * by sleeping, so a waiting writer does not take a core from it. */
    uint32_t n = atomic_load_explicit(&l->nslots, memory_order_seq_cst);
    for (uint32_t i = 0; i < n; i++) {
        for (unsigned spins = 0; atomic_load_explicit(&l->slots[i].n, memory_order_seq_cst);
             spins++) {
            if (spins < 1000) {
                cpu_relax();
            } else if (spins < 1100) {
                sched_yield();
            } else {
                struct timespec ts = {0, 20000};
                nanosleep(&ts, NULL);
            }
        }
    }
}

void hr_rdlock_write_end(hr_rdlock *l) {
    /* release: a reader that sees 0 here (acquire) sees the writes too */
    atomic_store_explicit(&l->writer, 0, memory_order_release);
    pthread_rwlock_unlock(&l->rw);
}
