/* map.h: an open-addressing hash map from NUL-terminated string keys to
 * pointers. The map borrows keys: each key must outlive its entry (store it
 * inside the value). Not thread-safe; callers lock. */
#ifndef HR_MAP_H
#define HR_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct hr_map hr_map;

hr_map *hr_map_new(size_t expected);
void hr_map_free(hr_map *m); /* values are not freed */
uint64_t hr_hash(const char *s, size_t n);
void *hr_map_get(const hr_map *m, const char *key);
void *hr_map_getn(const hr_map *m, const char *key, size_t n);
/* Inserts or replaces; returns the previous value (or NULL). *err set on OOM. */
void *hr_map_put(hr_map *m, const char *key, void *val, int *err);
void *hr_map_del(hr_map *m, const char *key);
size_t hr_map_count(const hr_map *m);
/* Inserts n new entries (keys not yet in the map, all distinct) at once:
 * sorted by home slot first, so the table is written front to back instead
 * of at random, several times faster for large n. 0, or -1 on OOM. */
int hr_map_put_many(hr_map *m, const char *const *keys, void *const *vals, size_t n);
/* Grows the table once for n entries in all; 0, or -1 on OOM. */
int hr_map_reserve(hr_map *m, size_t n);
/* Iteration: start with *pos = 0; returns 0 at the end. */
int hr_map_next(const hr_map *m, size_t *pos, const char **key, void **val);

#endif
