/* map.h: an open-addressing hash map from NUL-terminated string keys to
 * pointers. The map borrows keys: each key must outlive its entry (store it
 * inside the value). Not thread-safe; callers lock. */
#ifndef HR_MAP_H
#define HR_MAP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__has_feature) /* clang's way of saying a sanitizer is on */
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define HR_NO_WIDE_READS 1
#endif
#endif

typedef struct hr_map hr_map;

/* A key of up to 16 bytes as two words that between them hold every byte
 * (wyhash's reads: for 4 to 16 bytes, four 4-byte loads placed by the
 * length, no branch on it), so two keys of the same length are equal
 * exactly when their words are. */
static inline void hr_key_words(const char *s, size_t n, uint64_t *a, uint64_t *b) {
    if (n >= 4) {
        size_t d = (n >> 3) << 2;
        uint32_t w0, w1, w2, w3;
        memcpy(&w0, s, 4), memcpy(&w1, s + d, 4), memcpy(&w2, s + n - 4, 4),
            memcpy(&w3, s + n - 4 - d, 4);
        *a = (uint64_t)w0 << 32 | w1;
        *b = (uint64_t)w2 << 32 | w3;
    } else {
        *a = n ? (uint64_t)(unsigned char)s[0] << 16 | (uint64_t)(unsigned char)s[n >> 1] << 8 |
                     (unsigned char)s[n - 1]
               : 0;
        *b = 0;
    }
}

/* strlen for the short keys of hot paths (ids, feature names): one 16-byte
 * load and a compare when the key lies within a page, no call. Reading past
 * the terminator stays inside the page, so it cannot fault; sanitizer
 * builds, which would flag it, call strlen (as does a build with
 * -DHR_NO_WIDE_READS, for valgrind's memcheck). */
static inline size_t hr_key_len(const char *s) {
#if defined(__SSE2__) && !defined(__SANITIZE_ADDRESS__) && !defined(HR_NO_WIDE_READS)
    if (((uintptr_t)s & 4095) <= 4096 - 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
        unsigned z = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128()));
        if (z) return (size_t)__builtin_ctz(z);
    }
#endif
    return strlen(s);
}

/* A key's first min(n, 16) bytes, zero-padded, as two words (a key of up to
 * 16 bytes compares whole as these): one 16-byte load, masked, when it
 * stays within the page (as hr_key_len), else a copy. */
static inline void hr_key16(const char *s, size_t n, uint64_t w[2]) {
    if (n > 16) n = 16;
#if defined(__SSE2__) && !defined(__SANITIZE_ADDRESS__) && !defined(HR_NO_WIDE_READS)
    if (((uintptr_t)s & 4095) <= 4096 - 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i at = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        v = _mm_and_si128(v, _mm_cmplt_epi8(at, _mm_set1_epi8((char)n)));
        _mm_storeu_si128((__m128i *)(void *)w, v);
        return;
    }
#endif
    w[0] = w[1] = 0;
    memcpy(w, s, n);
}

/* Whether two keys of the same length n are equal; no call for n <= 16. */
static inline int hr_key_eq(const char *x, const char *y, size_t n) {
    if (n > 16) return memcmp(x, y, n) == 0;
    uint64_t a, b, c, d;
    hr_key_words(x, n, &a, &b);
    hr_key_words(y, n, &c, &d);
    return ((a ^ c) | (b ^ d)) == 0;
}

hr_map *hr_map_new(size_t expected);
void hr_map_free(hr_map *m); /* values are not freed */
uint64_t hr_hash(const char *s, size_t n); /* stable: its values are stored */

/* The map's own hash of a key's words (hr_key_words). Never 0. */
static inline uint64_t hr_map_mix(uint64_t a, uint64_t b, size_t n) {
    uint64_t h = (a ^ 0x243f6a8885a308d3ULL) * 0x9e3779b97f4a7c15ULL;
    h ^= (h >> 29) ^ ((b ^ ((uint64_t)n << 56)) * 0xc2b2ae3d27d4eb4fULL);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h ? h : 1;
}

/* The map's own hash, inline for lookups on hot paths: keys of up to 16
 * bytes (ids, names) are read as two words, no loop and no branch on their
 * length. It may change between versions (in memory only; never store
 * it). Never 0. */
static inline uint64_t hr_map_hash(const char *s, size_t n) {
    if (n > 16) return hr_hash(s, n);
    uint64_t a, b;
    hr_key_words(s, n, &a, &b);
    return hr_map_mix(a, b, n);
}
void *hr_map_get(const hr_map *m, const char *key);
void *hr_map_getn(const hr_map *m, const char *key, size_t n);
/* As hr_map_getn, with h = hr_map_hash(key, n) computed by the caller
 * (before taking its lock, say). */
void *hr_map_get_hashed(const hr_map *m, const char *key, size_t n, uint64_t h);
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
