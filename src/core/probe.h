/* probe.h: the steps that open-addressing tables with linear probing share
 * (map.c, entitle/acctix.c), over slots of any size whose first 8 bytes
 * are a tag: 0 for an empty slot, else a hash whose low bits give the
 * home slot (tag & (cap - 1)). Callers own the arrays and lock. */
#ifndef HR_PROBE_H
#define HR_PROBE_H

#include <stddef.h>

/* Puts every full slot of src (scap slots of sz bytes) into dst (dcap
 * slots, all empty), each at or after its home. */
void hr_probe_move(void *dst, size_t dcap, const void *src, size_t scap, size_t sz);
/* Empties slot i (full) by backward shift: later slots of its run move up
 * where their homes allow, so no tombstone is needed. The slot left empty
 * is zeroed whole. */
void hr_probe_remove(void *slots, size_t cap, size_t sz, size_t i);

/* The n items of sz bytes at items (each a tag first, as a slot starts),
 * copied in order of the top 16 bits of their home slot in a table of
 * mask + 1 slots: one counting-sort pass, enough to turn a bulk insert's
 * random writes into a front-to-back sweep. A new array (caller frees),
 * NULL on OOM. */
void *hr_probe_sort_by_home(const void *items, size_t n, size_t sz, size_t mask);

#endif
