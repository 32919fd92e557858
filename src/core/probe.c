/* probe.c: see probe.h. Slots are copied whole with memcpy; the tag is
 * read through memcpy too, so slots need no particular alignment. */
#include "probe.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline uint64_t tag_at(const char *slots, size_t sz, size_t i) {
    uint64_t t;
    memcpy(&t, slots + i * sz, sizeof t);
    return t;
}

void hr_probe_move(void *dst, size_t dcap, const void *src, size_t scap, size_t sz) {
    char *d = dst;
    const char *s = src;
    for (size_t i = 0; i < scap; i++) {
        uint64_t t = tag_at(s, sz, i);
        if (!t) continue;
        size_t j = t & (dcap - 1);
        while (tag_at(d, sz, j)) j = (j + 1) & (dcap - 1);
        memcpy(d + j * sz, s + i * sz, sz);
    }
}

void hr_probe_remove(void *slots, size_t cap, size_t sz, size_t i) {
    char *s = slots;
    size_t mask = cap - 1, j = i;
    for (;;) {
        memset(s + i * sz, 0, sizeof(uint64_t)); /* the hole */
        for (;;) {
            j = (j + 1) & mask;
            uint64_t t = tag_at(s, sz, j);
            if (!t) goto done;
            size_t home = t & mask;
            /* can slot j move to i? only if home is not cyclically in (i, j] */
            if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) break;
        }
        memcpy(s + i * sz, s + j * sz, sz);
        i = j;
    }
done:
    memset(s + i * sz, 0, sz);
}

void *hr_probe_sort_by_home(const void *items, size_t n, size_t sz, size_t mask) {
    const char *in = items;
    char *out = malloc(n * sz + 1);
    size_t *count = calloc(65536, sizeof *count);
    if (!out || !count) {
        free(out);
        free(count);
        return NULL;
    }
    int shift = 0;
    while ((mask >> shift) > 65535) shift++;
    for (size_t i = 0; i < n; i++) count[(tag_at(in, sz, i) & mask) >> shift]++;
    for (size_t b = 0, sum = 0; b < 65536; b++) {
        size_t c = count[b];
        count[b] = sum;
        sum += c;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(out + count[(tag_at(in, sz, i) & mask) >> shift]++ * sz, in + i * sz, sz);
    free(count);
    return out;
}
