/* idset.c: linear probing over {id, minute} slots, id 0 marking an empty
 * slot (an id of 0 is stored as 1).
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
};

hr_idset *hr_idset_new(void) {
    hr_idset *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cap = 1024;
    s->oldest = UINT32_MAX;
    if (!(s->slots = calloc(s->cap, sizeof *s->slots))) {
        free(s);
        return NULL;
    }
    return s;
}

void hr_idset_free(hr_idset *s) {
    if (!s) return;
    free(s->slots);
    free(s->old);
    free(s);
}

size_t hr_idset_count(const hr_idset *s) { return s->count; }

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
        free(s->old);
        s->old = NULL;
    }
}

/* Moves the entries with minute >= keep_from into a table of cap slots. */
static int rebuild(hr_idset *s, size_t cap, uint32_t keep_from) {
    slot *t = calloc(cap, sizeof *t);
    if (!t) return -1;
    size_t n = 0;
    s->oldest = UINT32_MAX;
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->slots[i].id || s->slots[i].minute < keep_from) continue;
        t[find(t, cap, s->slots[i].id)] = s->slots[i];
        if (s->slots[i].minute < s->oldest) s->oldest = s->slots[i].minute;
        n++;
    }
    free(s->slots);
    s->slots = t;
    s->cap = cap;
    s->count = n;
    return 0;
}

int hr_idset_add(hr_idset *s, uint64_t id, uint32_t minute) {
    if (!id) id = 1;
    slot *o = in_old(s, id);
    if (o) { /* not yet copied: refreshed where it is, copied in time */
        o->minute = minute;
        drain(s, MOVE_SLOTS);
        return 0;
    }
    if (!s->old && (s->count + 1) * 10 > s->cap * 7) {
        slot *t = calloc(s->cap * 2, sizeof *t);
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
