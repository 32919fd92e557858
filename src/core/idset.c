/* idset.c: linear probing over {id, minute} slots, id 0 marking an empty
 * slot (an id of 0 is stored as 1). Pruning rebuilds the table from the
 * entries that stay: once a minute at most, and O(n). */
#include "idset.h"

#include <stdlib.h>

typedef struct slot {
    uint64_t id;
    uint32_t minute;
} slot;

struct hr_idset {
    slot *slots;
    size_t cap, count; /* cap: a power of two */
};

hr_idset *hr_idset_new(void) {
    hr_idset *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cap = 1024;
    if (!(s->slots = calloc(s->cap, sizeof *s->slots))) {
        free(s);
        return NULL;
    }
    return s;
}

void hr_idset_free(hr_idset *s) {
    if (!s) return;
    free(s->slots);
    free(s);
}

size_t hr_idset_count(const hr_idset *s) { return s->count; }

static size_t find(const slot *t, size_t cap, uint64_t id) {
    size_t mask = cap - 1, i = (size_t)(id ^ (id >> 29)) & mask;
    while (t[i].id && t[i].id != id) i = (i + 1) & mask;
    return i;
}

int hr_idset_has(const hr_idset *s, uint64_t id) {
    if (!id) id = 1;
    return s->slots[find(s->slots, s->cap, id)].id != 0;
}

/* Moves the entries with minute >= keep_from into a table of cap slots. */
static int rebuild(hr_idset *s, size_t cap, uint32_t keep_from) {
    slot *t = calloc(cap, sizeof *t);
    if (!t) return -1;
    size_t n = 0;
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->slots[i].id || s->slots[i].minute < keep_from) continue;
        t[find(t, cap, s->slots[i].id)] = s->slots[i];
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
    if ((s->count + 1) * 10 > s->cap * 7 && rebuild(s, s->cap * 2, 0)) return -1;
    slot *e = &s->slots[find(s->slots, s->cap, id)];
    if (!e->id) {
        e->id = id;
        s->count++;
    }
    e->minute = minute;
    return 0;
}

size_t hr_idset_prune(hr_idset *s, uint32_t minute) {
    size_t before = s->count, keep = 0;
    for (size_t i = 0; i < s->cap; i++) keep += s->slots[i].id && s->slots[i].minute >= minute;
    if (keep == before) return 0;
    size_t cap = 1024;
    while (keep * 10 > cap * 7) cap *= 2;
    if (rebuild(s, cap, minute)) return 0; /* keep the old table: still correct */
    return before - s->count;
}
