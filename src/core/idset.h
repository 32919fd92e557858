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
int hr_idset_has(const hr_idset *s, uint64_t id);
/* Adds id (or refreshes its minute); 0, or -1 on OOM. */
int hr_idset_add(hr_idset *s, uint64_t id, uint32_t minute);
/* Drops ids added before `minute`; returns how many were dropped. */
size_t hr_idset_prune(hr_idset *s, uint32_t minute);
size_t hr_idset_count(const hr_idset *s);

#endif
