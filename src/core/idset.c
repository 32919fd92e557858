/* idset.c: linear probing over {id, minute} slots, id 0 marking an empty
 * slot (an id of 0 is stored as 1).
 *
 * With a size limit the table stops doubling there; at 70% load it then
 * drops its oldest minutes in place (evict), so memory stays put while the
 * window the ids cover shortens.
 *
 * Growing does not stop the world: at 70% load a table of twice the size
 * takes the inserts, and every insert moves the entries of a few more slots
 * of the old table into it, so the old one is empty long before the new one
 * fills. (Rebuilding a table of tens of millions of ids at once held
 * ingestion for seconds.) Lookups read both tables meanwhile. Pruning
 * rebuilds the table from the entries that stay, O(n), and only when some
 * entry may have left the window (the oldest minute is tracked). */
#include "idset.h"

#include <stdlib.h>
#include <string.h>

#include "hugemem.h"

#define MOVE_SLOTS 16 /* old slots drained per insert while growing */

typedef struct slot {
    uint64_t id;
    uint32_t minute;
} slot;

struct hr_idset {
    slot *slots;
    size_t cap, count;   /* cap: a power of two; count: both tables */
    slot *old;           /* the table being drained into slots, or NULL */
    size_t ocap, opos;   /* its size, and the first slot not yet drained */
    uint32_t oldest;     /* no entry is older (a bound: refreshes only raise minutes) */
    size_t max_cap;      /* the table never grows past this (0: no limit) */
    size_t evicted;      /* ids dropped to stay within max_cap, ever */
    unsigned rot;        /* the quarter of the hash space a burst drops next */
};

/* Tables on huge pages past 2 MiB: a lookup is a random read, and a
 * growing table's first writes fault a 2 MiB page at a time, not 4 KiB. */
static slot *table_new(size_t cap) { return hr_huge_alloc(cap * sizeof(slot)); }
static void table_free(slot *t, size_t cap) { hr_huge_free(t, cap * sizeof(slot)); }

hr_idset *hr_idset_new(void) {
    hr_idset *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cap = 1024;
    s->oldest = UINT32_MAX;
    if (!(s->slots = table_new(s->cap))) {
        free(s);
        return NULL;
    }
    return s;
}

void hr_idset_free(hr_idset *s) {
    if (!s) return;
    table_free(s->slots, s->cap);
    table_free(s->old, s->ocap);
    free(s);
}

void hr_idset_clear(hr_idset *s) {
    table_free(s->old, s->ocap);
    s->old = NULL, s->ocap = s->opos = 0;
    memset(s->slots, 0, s->cap * sizeof(slot));
    s->count = s->evicted = 0;
    s->oldest = UINT32_MAX;
    s->rot = 0;
}

size_t hr_idset_count(const hr_idset *s) { return s->count; }
size_t hr_idset_evicted(const hr_idset *s) { return s->evicted; }
uint32_t hr_idset_oldest(const hr_idset *s) { return s->oldest; }
size_t hr_idset_bytes(const hr_idset *s) { return (s->cap + (s->old ? s->ocap : 0)) * sizeof(slot); }

void hr_idset_set_max_bytes(hr_idset *s, size_t bytes) {
    /* while doubling into the last size both tables live: 1.5x of it */
    size_t cap = 1024;
    while (cap * 2 * sizeof(slot) * 3 / 2 <= bytes) cap *= 2;
    s->max_cap = bytes ? cap : 0;
}

static size_t find(const slot *t, size_t cap, uint64_t id) {
    size_t mask = cap - 1, i = (size_t)(id ^ (id >> 29)) & mask;
    while (t[i].id && t[i].id != id) i = (i + 1) & mask;
    return i;
}

/* The old table's slot of id if it is not yet drained, else NULL. Drained
 * entries stay where they are (emptying a slot would cut the probe chains
 * through it), so an entry before opos is already in the new table. */
static slot *in_old(const hr_idset *s, uint64_t id) {
    if (!s->old) return NULL;
    size_t i = find(s->old, s->ocap, id);
    return s->old[i].id && i >= s->opos ? &s->old[i] : NULL;
}

void hr_idset_prefetch(const hr_idset *s, uint64_t id) {
    if (!id) id = 1;
    __builtin_prefetch(&s->slots[(size_t)(id ^ (id >> 29)) & (s->cap - 1)]);
}

int hr_idset_has(const hr_idset *s, uint64_t id) {
    if (!id) id = 1;
    return s->slots[find(s->slots, s->cap, id)].id != 0 || in_old(s, id) != NULL;
}

/* Copies the old table's entries from up to n more slots into the new one;
 * frees the old table once all are copied. */
static void drain(hr_idset *s, size_t n) {
    for (; s->old && n && s->opos < s->ocap; n--, s->opos++)
        if (s->old[s->opos].id) s->slots[find(s->slots, s->cap, s->old[s->opos].id)] = s->old[s->opos];
    if (s->old && s->opos == s->ocap) {
        table_free(s->old, s->ocap);
        s->old = NULL;
    }
}

/* Moves the entries with minute >= keep_from into a table of cap slots. */
static int rebuild(hr_idset *s, size_t cap, uint32_t keep_from) {
    slot *t = table_new(cap);
    if (!t) return -1;
    size_t n = 0;
    s->oldest = UINT32_MAX;
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->slots[i].id || s->slots[i].minute < keep_from) continue;
        t[find(t, cap, s->slots[i].id)] = s->slots[i];
        if (s->slots[i].minute < s->oldest) s->oldest = s->slots[i].minute;
        n++;
    }
    table_free(s->slots, s->cap);
    s->slots = t;
    s->cap = cap;
    s->count = n;
    return 0;
}

int hr_idset_reserve(hr_idset *s, size_t n) {
    size_t cap = s->cap;
    while (n * 10 > cap * 7) cap *= 2;
    if (s->max_cap && cap > s->max_cap) cap = s->max_cap;
    if (cap <= s->cap) return 0;
    drain(s, SIZE_MAX); /* one table to move from */
    return rebuild(s, cap, 0);
}

/* Removes every entry with minute < cut from a table, in place: empties
 * them, then re-inserts the rest cluster by cluster from an empty slot, so
 * that no probe chain is left broken (each entry moves to the first free
 * slot from its home, never past where it was). */
static size_t drop_before(slot *t, size_t cap, uint32_t cut, unsigned quarter, uint32_t *oldest) {
    size_t n = 0, start = 0, mask = cap - 1;
    for (size_t i = 0; i < cap; i++)
        if (t[i].id && (t[i].minute < cut || (quarter && (t[i].id >> 62) + 1 == quarter)))
            t[i].id = 0, n++;
    while (start < cap && t[start].id) start++; /* the table is never full */
    *oldest = UINT32_MAX;
    for (size_t k = 1; k <= cap; k++) {
        size_t j = (start + k) & mask;
        if (!t[j].id) continue;
        slot e = t[j];
        t[j].id = 0;
        t[find(t, cap, e.id)] = e;
        if (e.minute < *oldest) *oldest = e.minute;
    }
    return n;
}

/* The table is at its limit: drops the oldest minutes, at least a quarter
 * of the ids (a whole minute goes at once, so sometimes more). */
static void evict(hr_idset *s) {
    drain(s, SIZE_MAX);
    uint32_t lo = UINT32_MAX, hi = 0;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i].id) {
            if (s->slots[i].minute < lo) lo = s->slots[i].minute;
            if (s->slots[i].minute > hi) hi = s->slots[i].minute;
        }
    if (lo > hi) return;
    /* counts per minute, in buckets when the span is long */
    enum { NB = 4096 };
    size_t *hist = calloc(NB, sizeof *hist);
    uint64_t span = (uint64_t)hi - lo + 1, width = (span + NB - 1) / NB;
    uint32_t cut = hi; /* without the histogram: keep only the newest minute */
    if (hist) {
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i].id) hist[(s->slots[i].minute - lo) / width]++;
        size_t want = s->count / 4, sum = 0, b = 0;
        while (b < NB && sum < want) sum += hist[b++];
        cut = (uint32_t)(lo + b * width);
        if (cut > hi) cut = hi;
        free(hist);
    }
    size_t n = drop_before(s->slots, s->cap, cut, 0, &s->oldest);
    /* a burst inside one minute: a quarter of the hash space at a time */
    for (int k = 0; k < 4 && s->count - n > s->cap * 6 / 10; k++)
        n += drop_before(s->slots, s->cap, 0, 1 + (s->rot++ & 3), &s->oldest);
    s->count -= n;
    s->evicted += n;
}

int hr_idset_add(hr_idset *s, uint64_t id, uint32_t minute) {
    if (!id) id = 1;
    slot *o = in_old(s, id);
    if (o) { /* not yet copied: refreshed where it is, copied in time */
        o->minute = minute;
        drain(s, MOVE_SLOTS);
        return 0;
    }
    if (!s->old && (s->count + 1) * 10 > s->cap * 7 && s->max_cap && s->cap * 2 > s->max_cap &&
        !hr_idset_has(s, id))
        evict(s);
    if (!s->old && (s->count + 1) * 10 > s->cap * 7) {
        slot *t = table_new(s->cap * 2);
        if (!t) return -1;
        s->old = s->slots, s->ocap = s->cap, s->opos = 0;
        s->slots = t, s->cap *= 2;
    }
    slot *e = &s->slots[find(s->slots, s->cap, id)];
    if (!e->id) {
        e->id = id;
        s->count++;
    }
    e->minute = minute;
    if (minute < s->oldest) s->oldest = minute;
    drain(s, MOVE_SLOTS);
    return 0;
}

size_t hr_idset_prune(hr_idset *s, uint32_t minute) {
    /* nothing can have left the window: no scan of millions of slots under
     * the caller's lock */
    if (minute <= s->oldest) return 0;
    drain(s, SIZE_MAX); /* one table to scan and rebuild */
    size_t before = s->count, keep = 0;
    uint32_t oldest = UINT32_MAX;
    for (size_t i = 0; i < s->cap; i++) {
        const slot *e = &s->slots[i];
        if (!e->id) continue;
        if (e->minute < oldest) oldest = e->minute;
        keep += e->minute >= minute;
    }
    s->oldest = oldest;
    if (keep == before) return 0;
    size_t cap = 1024;
    while (keep * 10 > cap * 7) cap *= 2;
    if (rebuild(s, cap, minute)) return 0; /* keep the old table: still correct */
    return before - s->count;
}
