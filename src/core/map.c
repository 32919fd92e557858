/* map.c: linear probing with the full 64-bit hash kept in the slot, so a
 * miss rarely touches the key, and backward-shift deletion (no tombstones).
 * Slots use the map's own hash (hr_map_hash), not hr_hash, whose values are
 * stored on disk and so cannot change: the map's only lives in memory and
 * is tuned for short keys. Large slot arrays ask for huge pages
 * (hugemem.h). */
#include "map.h"

#include <stdlib.h>
#include <string.h>

#include "hugemem.h"
#include "probe.h"

struct slot {
    uint64_t hash; /* 0 = empty */
    const char *key;
    void *val;
};

struct hr_map {
    struct slot *slots;
    size_t cap, count; /* cap is a power of two */
};

/* Eight bytes per step (a multiply-xorshift mix, as in wyhash/murmur), then
 * a murmur finaliser: ids are short, so this is a few multiplies. */
#define MIX_K 0x9e3779b97f4a7c15ULL

static uint64_t finish(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h ? h : 1; /* 0 marks an empty slot */
}

uint64_t hr_hash(const char *s, size_t n) {
    uint64_t h = 0x243f6a8885a308d3ULL ^ (n * MIX_K), w;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * MIX_K;
        h ^= h >> 29;
    }
    if (n) { /* the tail byte by byte: a variable-length memcpy is a call */
        w = 0;
        for (size_t i = 0; i < n; i++) w |= (uint64_t)(unsigned char)s[i] << (8 * i);
        h = (h ^ w) * MIX_K;
        h ^= h >> 29;
    }
    return finish(h);
}

static struct slot *slots_alloc(size_t cap) { return hr_huge_alloc(cap * sizeof(struct slot)); }

static void slots_free(struct slot *s, size_t cap) { hr_huge_free(s, cap * sizeof(struct slot)); }

hr_map *hr_map_new(size_t expected) {
    hr_map *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    size_t cap = 16;
    while (cap < expected * 2) cap *= 2;
    m->slots = slots_alloc(cap);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    m->cap = cap;
    return m;
}

void hr_map_free(hr_map *m) {
    if (!m) return;
    slots_free(m->slots, m->cap);
    free(m);
}

size_t hr_map_count(const hr_map *m) { return m->count; }

/* A slot keeps the key's length (up to 254) in the top byte of its hash, so
 * equal tags mean equal lengths and memcmp never reads past a shorter key. */
static inline uint64_t tag(uint64_t h, size_t n) {
    uint64_t t = (h & 0x00ffffffffffffffULL) | ((uint64_t)(n < 255 ? n : 255) << 56);
    return t ? t : 1;
}

/* Almost surely the entry: start fetching the value's first lines while
 * the key comparison waits for its own. */
static inline void prefetch_val(const struct slot *s) {
    __builtin_prefetch(s->val);
    __builtin_prefetch((const char *)s->val + 64);
    __builtin_prefetch((const char *)s->val + 128);
}

/* A key's first and last w bytes (w = 8 or 4, n >= w) as two words;
 * keys of under 4 bytes are read byte by byte into the first. */
static inline __attribute__((always_inline)) void ends(const char *k, size_t n, int w,
                                                      uint64_t *a, uint64_t *b) {
    if (w == 8) {
        memcpy(a, k, 8);
        memcpy(b, k + n - 8, 8);
    } else if (w == 4) {
        uint32_t x, y;
        memcpy(&x, k, 4);
        memcpy(&y, k + n - 4, 4);
        *a = x, *b = y;
    } else {
        *a = 0, *b = 0;
        for (size_t i = 0; i < n; i++) *a |= (uint64_t)(unsigned char)k[i] << (8 * i);
    }
}

/* find for keys of up to 16 bytes, w as ends() takes it: the caller's key
 * read once, each candidate's in two loads, no call. */
static inline __attribute__((always_inline)) size_t find_w(const hr_map *m, const char *key,
                                                           size_t n, uint64_t h, int w) {
    h = tag(h, n);
    size_t mask = m->cap - 1, i = h & mask;
    uint64_t a, b, c, d;
    ends(key, n, w, &a, &b);
    for (;; i = (i + 1) & mask) {
        const struct slot *s = &m->slots[i];
        if (!s->hash) return i;
        if (s->hash != h) continue;
        prefetch_val(s);
        ends(s->key, n, w, &c, &d);
        if (((a ^ c) | (b ^ d)) == 0) return i;
    }
}

/* The length's branch stays out of the probe loop (and a map's keys
 * mostly have one length). */
static inline __attribute__((always_inline)) size_t find_short(const hr_map *m, const char *key,
                                                               size_t n, uint64_t h) {
    return n >= 8 ? find_w(m, key, n, h, 8) : n >= 4 ? find_w(m, key, n, h, 4)
                                                     : find_w(m, key, n, h, 0);
}

/* find for longer keys (from 255 bytes on, the tag no longer holds the
 * length), out of the short keys' way. */
static __attribute__((noinline)) size_t find_long(const hr_map *m, const char *key, size_t n,
                                                  uint64_t h) {
    h = tag(h, n);
    size_t mask = m->cap - 1, i = h & mask;
    for (;; i = (i + 1) & mask) {
        const struct slot *s = &m->slots[i];
        if (!s->hash) return i;
        if (s->hash != h) continue;
        prefetch_val(s);
        if (n < 255 ? memcmp(s->key, key, n) == 0
                    : strncmp(s->key, key, n) == 0 && s->key[n] == 0)
            return i;
    }
}

/* The slot holding key (n bytes, h its hr_map_hash), else the empty slot
 * where it would go. */
static inline __attribute__((always_inline)) size_t find(const hr_map *m, const char *key,
                                                         size_t n, uint64_t h) {
    return n <= 16 ? find_short(m, key, n, h) : find_long(m, key, n, h);
}

static inline __attribute__((always_inline)) void *get(const hr_map *m, const char *key,
                                                       size_t n) {
    size_t i = find(m, key, n, hr_map_hash(key, n));
    return m->slots[i].hash ? m->slots[i].val : NULL;
}

void *hr_map_getn(const hr_map *m, const char *key, size_t n) { return get(m, key, n); }

void *hr_map_get_hashed(const hr_map *m, const char *key, size_t n, uint64_t h) {
    size_t i = find(m, key, n, h);
    return m->slots[i].hash ? m->slots[i].val : NULL;
}

/* One function, no calls but strlen (and none for keys of up to 16 bytes). */
void *hr_map_get(const hr_map *m, const char *key) { return get(m, key, strlen(key)); }

static int rehash(hr_map *m, size_t cap);

static int grow(hr_map *m) { return rehash(m, m->cap * 2); }

int hr_map_reserve(hr_map *m, size_t n) {
    size_t cap = m->cap;
    while (n * 4 > cap * 3) cap *= 2;
    return cap == m->cap ? 0 : rehash(m, cap);
}

static int rehash(hr_map *m, size_t cap) {
    struct slot *ns = slots_alloc(cap);
    if (!ns) return -1;
    hr_probe_move(ns, cap, m->slots, m->cap, sizeof *ns);
    slots_free(m->slots, m->cap);
    m->slots = ns;
    m->cap = cap;
    return 0;
}

void *hr_map_put(hr_map *m, const char *key, void *val, int *err) {
    if (err) *err = 0;
    if ((m->count + 1) * 4 > m->cap * 3 && grow(m)) {
        if (err) *err = -1;
        return NULL;
    }
    size_t n = strlen(key);
    uint64_t h = hr_map_hash(key, n);
    size_t i = find(m, key, n, h);
    struct slot *s = &m->slots[i];
    void *old = s->hash ? s->val : NULL;
    if (!s->hash) m->count++;
    s->hash = tag(h, n);
    s->key = key;
    s->val = val;
    return old;
}

void *hr_map_del(hr_map *m, const char *key) {
    size_t n = strlen(key);
    size_t i = find(m, key, n, hr_map_hash(key, n));
    if (!m->slots[i].hash) return NULL;
    void *old = m->slots[i].val;
    hr_probe_remove(m->slots, m->cap, sizeof *m->slots, i);
    m->count--;
    return old;
}

int hr_map_next(const hr_map *m, size_t *pos, const char **key, void **val) {
    while (*pos < m->cap) {
        const struct slot *s = &m->slots[(*pos)++];
        if (s->hash) {
            if (key) *key = s->key;
            if (val) *val = s->val;
            return 1;
        }
    }
    return 0;
}

int hr_map_put_many(hr_map *m, const char *const *keys, void *const *vals, size_t n) {
    if (hr_map_reserve(m, m->count + n)) return -1;
    struct slot *tmp = malloc(n * sizeof *tmp + 1), *sorted = NULL;
    int rc = -1;
    if (!tmp) goto out;
    size_t mask = m->cap - 1;
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(keys[i]);
        tmp[i] = (struct slot){tag(hr_map_hash(keys[i], kl), kl), keys[i], vals[i]};
    }
    if (!(sorted = hr_probe_sort_by_home(tmp, n, sizeof *tmp, mask))) goto out;
    for (size_t i = 0; i < n; i++) {
        size_t j = sorted[i].hash & mask;
        while (m->slots[j].hash) j = (j + 1) & mask;
        m->slots[j] = sorted[i];
    }
    m->count += n;
    rc = 0;
out:
    free(tmp);
    free(sorted);
    return rc;
}
