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
/* Iteration: start with *pos = 0; returns 0 at the end. */
int hr_map_next(const hr_map *m, size_t *pos, const char **key, void **val);

#endif
