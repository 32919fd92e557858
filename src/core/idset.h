/* idset.h: a compact set of 64-bit ids (hashes of message ids) with the
 * minute each was added, for deduplication within a time window: 16 bytes
 * an id, no allocation per id. A hash match counts as the same id; with
 * 64-bit hashes a false match is ~1e-13 per message at millions in the
 * window. Not thread-safe; callers lock. */
#ifndef HR_IDSET_H
#define HR_IDSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct hr_idset hr_idset;

hr_idset *hr_idset_new(void);
void hr_idset_free(hr_idset *s);
/* Empties s and keeps its table, for reuse (its limit stays). */
void hr_idset_clear(hr_idset *s);
int hr_idset_has(const hr_idset *s, uint64_t id);
/* Starts loading the slot hr_idset_has(s, id) will read first: a lookup in
 * a large set is a cache miss, which a caller that knows its next ids can
 * overlap with other work. */
void hr_idset_prefetch(const hr_idset *s, uint64_t id);
/* Adds id (or refreshes its minute); 0, or -1 on OOM. */
int hr_idset_add(hr_idset *s, uint64_t id, uint32_t minute);
/* Sizes the table for n ids in all (within the bound, if any), so that
 * adding them does not grow it step by step; 0, or -1 on OOM. */
int hr_idset_reserve(hr_idset *s, size_t n);
/* Drops ids added before `minute`; returns how many were dropped. */
size_t hr_idset_prune(hr_idset *s, uint32_t minute);
size_t hr_idset_count(const hr_idset *s);
/* Bounds the table to at most `bytes` (0: no bound, the default). Once it
 * is that large, adding to a 70%-full table first drops the ids of the
 * oldest minutes, a quarter of them or more, in place. */
void hr_idset_set_max_bytes(hr_idset *s, size_t bytes);
/* Ids dropped by that bound so far; the oldest minute still held (a lower
 * bound; UINT32_MAX when empty); the table's memory in bytes. */
size_t hr_idset_evicted(const hr_idset *s);
uint32_t hr_idset_oldest(const hr_idset *s);
size_t hr_idset_bytes(const hr_idset *s);

#endif
