/* acctix.c: linear probing over 128-byte slots, with backward-shift
 * deletion (no tombstones), grown at three quarters full. A slot's tag is
 * the key's hash (hr_acctix_key_of) with the id's length in its top byte,
 * so a probe compares ids only when tag and length agree, and ids of up to
 * 16 bytes compare as two zero-padded words, without a call. Large tables
 * ask for huge pages (hugemem.h). */
#include "acctix.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "entitle_int.h"
#include "hugemem.h"
#include "probe.h"

static_assert(sizeof(hr_acct_slot) == 128, "an account slot is two cache lines");
static_assert(HR_ACCTIX_HOMES == HR_USAGE_INLINE, "a summary mirrors the inline usage");

#define tag_of hr_acctix_tag

static hr_acct_slot *slots_alloc(size_t cap) { return hr_huge_alloc(cap * sizeof(hr_acct_slot)); }

static void slots_free(hr_acct_slot *s, size_t cap) { hr_huge_free(s, cap * sizeof *s); }

hr_acctix *hr_acctix_new(size_t expected) {
    hr_acctix *ix = calloc(1, sizeof *ix);
    if (!ix) return NULL;
    size_t cap = 16;
    while (cap * 3 < expected * 4) cap *= 2;
    if (!(ix->slots = slots_alloc(cap))) {
        free(ix);
        return NULL;
    }
    ix->cap = cap;
    return ix;
}

void hr_acctix_free(hr_acctix *ix) {
    if (!ix) return;
    slots_free(ix->slots, ix->cap);
    free(ix);
}

size_t hr_acctix_count(const hr_acctix *ix) { return ix->count; }

/* Whether slot s (whose tag says its id has n bytes, n > 16) holds id. */
static inline int holds(const hr_acct_slot *s, const char *id, size_t n) {
    if (n <= HR_ACCTIX_KEY) return memcmp(s->key, id, n) == 0;
    if (n < 255) return memcmp(s->acct->id, id, n) == 0;
    return strcmp(s->acct->id, id) == 0;
}

/* The slot holding k's id, else the empty slot where it would go. */
static size_t find(const hr_acctix *ix, const hr_acctix_key *k, uint64_t t) {
    if (k->n <= 16) return hr_acctix_probe16(ix, k, t); /* the common id */
    size_t mask = ix->cap - 1, i = t & mask;
    for (;; i = (i + 1) & mask) {
        const hr_acct_slot *s = &ix->slots[i];
        if (!s->tag || (s->tag == t && holds(s, k->id, k->n))) return i;
    }
}

const hr_acct_slot *hr_acctix_find(const hr_acctix *ix, const hr_acctix_key *k) {
    uint64_t t = tag_of(k->h, k->n);
    /* the summary's line, and the next slot's tag (a third of ids sit past
     * their home at half full), while the probe waits for the tag's */
    const char *home = (const char *)&ix->slots[t & (ix->cap - 1)];
    __builtin_prefetch(home + 64);
    __builtin_prefetch(home + 128);
    size_t i = find(ix, k, t);
    return ix->slots[i].tag ? &ix->slots[i] : NULL;
}

static size_t find_id(const hr_acctix *ix, const char *id, hr_acctix_key *k) {
    hr_acctix_key_of(id, k);
    return find(ix, k, tag_of(k->h, k->n));
}

hr_account *hr_acctix_get(const hr_acctix *ix, const char *id) {
    hr_acctix_key k;
    size_t i = find_id(ix, id, &k);
    return ix->slots[i].tag ? ix->slots[i].acct : NULL;
}

hr_acct_sum *hr_acctix_sum(hr_acctix *ix, const char *id) {
    hr_acctix_key k;
    size_t i = find_id(ix, id, &k);
    return ix->slots[i].tag ? &ix->slots[i].sum : NULL;
}

/* Fills the empty slot s with a (tag t, id n bytes). */
static void fill(hr_acct_slot *s, hr_account *a, size_t n, uint64_t t) {
    memset(s, 0, sizeof *s);
    s->tag = t;
    memcpy(s->key, a->id, n < HR_ACCTIX_KEY ? n : HR_ACCTIX_KEY);
    s->acct = a;
    s->sum.addon_ix = -1;
}

static int rehash(hr_acctix *ix, size_t cap) {
    hr_acct_slot *ns = slots_alloc(cap);
    if (!ns) return -1;
    hr_probe_move(ns, cap, ix->slots, ix->cap, sizeof *ns);
    slots_free(ix->slots, ix->cap);
    ix->slots = ns;
    ix->cap = cap;
    return 0;
}

int hr_acctix_reserve(hr_acctix *ix, size_t n) {
    size_t cap = ix->cap;
    while (n * 4 > cap * 3) cap *= 2;
    return cap == ix->cap ? 0 : rehash(ix, cap);
}

hr_account *hr_acctix_put(hr_acctix *ix, hr_account *a, int *err) {
    if (err) *err = 0;
    if (hr_acctix_reserve(ix, ix->count + 1)) {
        if (err) *err = -1;
        return NULL;
    }
    hr_acctix_key k;
    hr_acct_slot *s = &ix->slots[find_id(ix, a->id, &k)];
    hr_account *old = s->tag ? s->acct : NULL;
    if (!s->tag) ix->count++;
    fill(s, a, k.n, tag_of(k.h, k.n));
    return old;
}

hr_account *hr_acctix_del(hr_acctix *ix, const char *id) {
    hr_acctix_key k;
    size_t i = find_id(ix, id, &k);
    if (!ix->slots[i].tag) return NULL;
    hr_account *old = ix->slots[i].acct;
    hr_probe_remove(ix->slots, ix->cap, sizeof *ix->slots, i);
    ix->count--;
    return old;
}

int hr_acctix_next(hr_acctix *ix, size_t *pos, hr_acct_slot **s) {
    while (*pos < ix->cap) {
        hr_acct_slot *x = &ix->slots[(*pos)++];
        if (x->tag) {
            *s = x;
            return 1;
        }
    }
    return 0;
}

typedef struct pending {
    uint64_t tag;
    hr_account *a;
} pending;

int hr_acctix_put_many(hr_acctix *ix, hr_account *const *as, size_t n) {
    if (hr_acctix_reserve(ix, ix->count + n)) return -1;
    pending *tmp = malloc(n * sizeof *tmp + 1), *sorted = NULL;
    int rc = -1;
    if (!tmp) goto out;
    size_t mask = ix->cap - 1;
    for (size_t i = 0; i < n; i++) {
        hr_acctix_key k;
        hr_acctix_key_of(as[i]->id, &k);
        tmp[i] = (pending){tag_of(k.h, k.n), as[i]};
    }
    if (!(sorted = hr_probe_sort_by_home(tmp, n, sizeof *tmp, mask))) goto out;
    for (size_t i = 0; i < n; i++) {
        /* the ids are read in hash order, at random: ask for them early */
        if (i + 8 < n) __builtin_prefetch(sorted[i + 8].a->id);
        size_t j = sorted[i].tag & mask;
        while (ix->slots[j].tag) j = (j + 1) & mask;
        fill(&ix->slots[j], sorted[i].a, strlen(sorted[i].a->id), sorted[i].tag);
    }
    ix->count += n;
    rc = 0;
out:
    free(tmp);
    free(sorted);
    return rc;
}
