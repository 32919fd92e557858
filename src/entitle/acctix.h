/* acctix.h: the engine's accounts by id (an open-addressing table), each
 * slot holding beside the id a summary of what the common decision reads of
 * the account. A decision on a random account among a million then costs
 * one memory round trip (the slot's two lines, fetched together) instead
 * of two in a row (a slot, then the account it points to). The accounts
 * themselves stay where they are: pointers to them remain valid.
 *
 * The engine writes the summary (engine.c, hr_engine_sync_account) after
 * every change to what it mirrors, under its write lock; a slot whose
 * summary is not `plain` sends the decision to the account itself. Not
 * thread-safe; the engine locks. Borrows the accounts (never frees them). */
#ifndef HR_ACCTIX_H
#define HR_ACCTIX_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "map.h"

struct hr_account;
typedef struct hr_acctix hr_acctix;

/* Ids of up to this many bytes are kept in the slot (UUIDs fit); longer
 * ones are compared through the account. */
#define HR_ACCTIX_KEY 40
#define HR_ACCTIX_HOMES 4 /* = HR_USAGE_INLINE */

/* A copy of the account's decision fields; meaningful only when plain:
 * no overrides, feature trials or plan trial, at most one add-on, and each
 * feature's usage (API usage plus its meter's value) expressible as one
 * value that counts always, or in one calendar period from a start that
 * fits 32 bits, with no two such features sharing a home (hr_ftab.uhome).
 * Each is kept here at its feature's home, whatever its place in the
 * account. */
typedef struct hr_acct_sum {
    int64_t uval[HR_ACCTIX_HOMES];    /* the usage of each home's feature */
    uint32_t ustart[HR_ACCTIX_HOMES]; /* ... counted while uper starts here */
    int32_t plan_version;
    int32_t addon_qty;
    int16_t prow;                     /* plan_ix + 1: the plan's row in hr_ftab */
    int16_t addon_ix;                 /* the one add-on's index, -1 if absent */
    uint8_t ufi[HR_ACCTIX_HOMES];     /* ... its feature's index + 1; 0: none */
    uint8_t uper[HR_ACCTIX_HOMES];    /* ... its hr_period; NONE: counts always */
    uint8_t plain;
    uint8_t naddons;
} hr_acct_sum;

/* Two cache lines, aligned in the table. */
typedef struct hr_acct_slot {
    uint64_t tag;                      /* hash and length; 0 = empty */
    char key[HR_ACCTIX_KEY];           /* the id's first bytes (all, when it fits) */
    struct hr_account *acct;
    hr_acct_sum sum;
} hr_acct_slot;

/* An id as the index probes with it: its length, its first 16 bytes
 * zero-padded as two words (ids of up to 16 bytes compare as those, with
 * the slot's key, which is zero-padded too) and its hash. */
typedef struct hr_acctix_key {
    const char *id;
    size_t n;
    uint64_t w[2];
    uint64_t h;
} hr_acctix_key;

/* Fills k for id: inline, a few instructions for ids of up to 16 bytes
 * (one 16-byte load, masked, when it stays within the page; see
 * hr_key_len). k borrows id. */
static inline void hr_acctix_key_of(const char *id, hr_acctix_key *k) {
    size_t n = hr_key_len(id);
    k->id = id, k->n = n;
    hr_key16(id, n, k->w);
    k->h = n > 16 ? hr_hash(id, n) : hr_map_mix(k->w[0], k->w[1], n);
}

hr_acctix *hr_acctix_new(size_t expected); /* NULL on OOM */
void hr_acctix_free(hr_acctix *ix);       /* accepts NULL; accounts not freed */
size_t hr_acctix_count(const hr_acctix *ix);

/* The slot of k's id, NULL if absent. Starts fetching the slot's second
 * line (and the next slot) before comparing the first. */
const hr_acct_slot *hr_acctix_find(const hr_acctix *ix, const hr_acctix_key *k);

/* The table as the inline lookup reads it (fields private to acctix.c). */
struct hr_acctix {
    hr_acct_slot *slots;
    size_t cap, count; /* cap is a power of two */
};

/* A slot's tag for a key: its hash, its length (up to 255) in the top byte. */
static inline uint64_t hr_acctix_tag(uint64_t h, size_t n) {
    uint64_t t = (h & 0x00ffffffffffffffULL) | ((uint64_t)(n < 255 ? n : 255) << 56);
    return t ? t : 1;
}

/* For an id of up to 16 bytes with tag t: the index of the slot holding
 * it, else of the empty slot where it would go. Its key compares as two
 * zero-padded words, no call. */
static inline size_t hr_acctix_probe16(const hr_acctix *ix, const hr_acctix_key *k, uint64_t t) {
    size_t mask = ix->cap - 1, i = t & mask;
    for (;; i = (i + 1) & mask) {
        const hr_acct_slot *s = &ix->slots[i];
        if (!s->tag) return i;
        if (s->tag != t) continue;
        uint64_t c, d;
        memcpy(&c, s->key, 8);
        memcpy(&d, s->key + 8, 8);
        if (((k->w[0] ^ c) | (k->w[1] ^ d)) == 0) return i;
    }
}

/* hr_acctix_find, inline for the decision: ids of up to 16 bytes (most)
 * cost no call; longer ones go to hr_acctix_find. */
static inline const hr_acct_slot *hr_acctix_find_fast(const hr_acctix *ix,
                                                      const hr_acctix_key *k) {
    if (k->n > 16) return hr_acctix_find(ix, k);
    uint64_t t = hr_acctix_tag(k->h, k->n);
    const char *home = (const char *)&ix->slots[t & (ix->cap - 1)];
    __builtin_prefetch(home + 64);
    __builtin_prefetch(home + 128);
    const hr_acct_slot *s = &ix->slots[hr_acctix_probe16(ix, k, t)];
    return s->tag ? s : NULL;
}

struct hr_account *hr_acctix_get(const hr_acctix *ix, const char *id);
/* The summary of id's slot, for the engine to rewrite; NULL if absent. */
hr_acct_sum *hr_acctix_sum(hr_acctix *ix, const char *id);
/* Inserts a (keyed by a->id) or replaces the account of that id, whose
 * summary is cleared (not plain) until rewritten; returns the previous
 * account or NULL. *err = -1 on OOM. */
struct hr_account *hr_acctix_put(hr_acctix *ix, struct hr_account *a, int *err);
struct hr_account *hr_acctix_del(hr_acctix *ix, const char *id); /* the removed, or NULL */
/* Room for n accounts in all; 0, or -1 on OOM. */
int hr_acctix_reserve(hr_acctix *ix, size_t n);
/* Inserts n accounts whose ids are not in the table and are distinct,
 * sorted by home slot first: the table is written front to back. */
int hr_acctix_put_many(hr_acctix *ix, struct hr_account *const *as, size_t n);
/* Iteration: *pos = 0 first; returns 0 at the end. Any insert or delete
 * may move slots. */
int hr_acctix_next(hr_acctix *ix, size_t *pos, hr_acct_slot **s);

#endif
