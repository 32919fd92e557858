/* check_inproc.c: the in-process decision (hr_engine_check) against a bare
 * hash-table lookup measured in the same run, and memory per account.
 *
 *   build/bench/bench_check_inproc [CATALOG] [ACCOUNTS]
 *
 * CATALOG defaults to examples/boards/headroom.yaml (relative to the working
 * directory, then to ../ and ../../, so it runs from the repo root or from
 * build/bench); ACCOUNTS defaults to $BENCH_ACCOUNTS, else 1000000. Also
 * reads BENCH_LOOKUPS (timed calls per round, default 4000000) and
 * BENCH_ROUNDS (default 5; the best round is reported).
 *
 * Only the public API of include/headroom.h is used. Accounts follow the
 * `headroom demo-data` mix (60% free, 25% pro, 12% business, 3% enterprise,
 * some with an add-on) with usage of boards, seats, api_calls and storage_gb.
 *
 * Measured, ns per call, best of the rounds:
 *   (a) hr_engine_check, account uniformly random among all, random feature
 *       among boards/seats/private_boards/api_calls, quantity 1, now = 0
 *       (the engine reads the clock, as a typical caller lets it);
 *   (b) the same from a hot set of 1,000 accounts;
 *   (c) the reference: a lookup of a random key in a plain open-addressing
 *       hash table of the same ids (FNV-1a, linear probing, key pointers),
 *       written here, with the same key stream as (a).
 * The key strings and the random streams are prepared before timing: the
 * timed loops only index arrays and call. Memory is the growth of RSS
 * (/proc/self/statm) over loading the accounts, divided by their count. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "headroom.h"

#define ID_LEN 32 /* "acct_000123" + NUL, room for any long */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}
static uint32_t pick(uint32_t n) { return (uint32_t)(rnd() % n); }

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long rss_bytes(void) {
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static void die(const char *what, const hr_err *err) {
    fprintf(stderr, "bench_check_inproc: %s: %s\n", what,
            err && err->message[0] ? err->message : "failed");
    exit(1);
}

/* ---- the reference: a bare open-addressing table ------------------------ */

typedef struct { uint64_t hash; const char *key; void *val; } ref_slot;
typedef struct { ref_slot *slots; size_t mask; } ref_table;

static inline uint64_t ref_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h | 1;
}

static void ref_put(ref_table *t, const char *key, void *val) {
    uint64_t h = ref_hash(key);
    size_t i = h & t->mask;
    while (t->slots[i].hash) i = (i + 1) & t->mask;
    t->slots[i] = (ref_slot){h, key, val};
}

static inline void *ref_get(const ref_table *t, const char *key) {
    uint64_t h = ref_hash(key);
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        const ref_slot *s = &t->slots[i];
        if (!s->hash) return NULL;
        if (s->hash == h && !strcmp(s->key, key)) return s->val;
    }
}

/* ---- main ------------------------------------------------------------------ */

static const char *features[] = {"boards", "seats", "private_boards", "api_calls"};

static const char *default_catalog(void) {
    static const char *tries[] = {"examples/boards/headroom.yaml",
                                  "../examples/boards/headroom.yaml",
                                  "../../examples/boards/headroom.yaml"};
    for (size_t i = 0; i < sizeof tries / sizeof *tries; i++)
        if (access(tries[i], R_OK) == 0) return tries[i];
    return tries[0];
}

typedef struct { const char *account, *feature; } query;

static volatile int64_t sink;

/* ns per hr_engine_check over the query stream q (n entries). */
static double time_check(hr_engine *e, const query *q, size_t n, int64_t now, int *allowed) {
    hr_verdict v;
    int64_t acc = 0;
    int yes = 0;
    double t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        hr_engine_check(e, q[i].account, q[i].feature, 1, now, &v);
        acc += v.remaining;
        yes += v.allowed;
    }
    double t1 = now_ns();
    sink += acc;
    *allowed = yes;
    return (t1 - t0) / (double)n;
}

static double time_ref(const ref_table *t, const query *q, size_t n) {
    uintptr_t acc = 0;
    double t0 = now_ns();
    for (size_t i = 0; i < n; i++) acc += (uintptr_t)ref_get(t, q[i].account);
    double t1 = now_ns();
    sink += (int64_t)acc;
    return (t1 - t0) / (double)n;
}

int main(int argc, char **argv) {
    const char *catalog = argc > 1 && argv[1][0] ? argv[1] : default_catalog();
    const char *env_n = getenv("BENCH_ACCOUNTS"), *env_l = getenv("BENCH_LOOKUPS"),
               *env_r = getenv("BENCH_ROUNDS");
    long n = argc > 2 ? atol(argv[2]) : env_n && *env_n ? atol(env_n) : 1000000;
    long lookups = env_l && *env_l ? atol(env_l) : 4000000;
    int rounds = env_r && *env_r ? atoi(env_r) : 5;
    const size_t hot_n = 1000;
    if (n < (long)hot_n || lookups < 1 || rounds < 1) {
        fprintf(stderr, "usage: bench_check_inproc [CATALOG] [ACCOUNTS >= 1000]\n");
        return 2;
    }

    hr_err err = {0};
    hr_catalog *cat = NULL;
    if (hr_catalog_load_file(catalog, &cat, &err)) die(catalog, &err);
    hr_engine *e = hr_engine_new(cat);
    if (!e) die("hr_engine_new", NULL);

    /* ---- load: RSS before and after, nothing else allocated in between */
    static const char *plans[] = {"free", "pro", "business", "enterprise"};
    static const char *addons[] = {"extra_boards", "extra_seats", "more_storage"};
    static const char *usage_f[] = {"boards", "seats", "api_calls", "storage_gb"};
    static const int64_t cap[4][4] = {/* boards, seats, api_calls, storage_gb */
                                      {3, 3, 1000, 1},
                                      {50, 10, 100000, 10},
                                      {200, 50, 1000000, 100},
                                      {200, 200, 200, 200}};
    long rss0 = rss_bytes();
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        char id[ID_LEN], json[256];
        snprintf(id, sizeof id, "acct_%06ld", i + 1);
        uint32_t r = pick(100);
        int pi = r < 60 ? 0 : r < 85 ? 1 : r < 97 ? 2 : 3;
        /* one in eight buys an add-on its plan offers */
        static const int offer[4][3] = {{0, 2, -1}, {0, 1, 2}, {1, 2, -1}, {2, -1, -1}};
        static const uint32_t noffer[4] = {2, 3, 2, 1};
        int ai = pick(8) == 0 ? offer[pi][pick(noffer[pi])] : -1;
        if (ai >= 0)
            snprintf(json, sizeof json,
                     "{\"name\":\"Acme Inc %ld\",\"plan\":\"%s\",\"addons\":{\"%s\":%u}}", i + 1,
                     plans[pi], addons[ai], 1 + pick(2));
        else
            snprintf(json, sizeof json, "{\"name\":\"Acme Inc %ld\",\"plan\":\"%s\"}", i + 1,
                     plans[pi]);
        if (hr_engine_put_account_json(e, id, json, &err)) die(json, &err);
        for (int f = 0; f < 4; f++) {
            int64_t c = cap[pi][f];
            int64_t v = pick(4) == 0 ? c : (int64_t)pick((uint32_t)c + 1);
            if (hr_engine_usage(e, id, usage_f[f], v, 1, &err)) die(usage_f[f], &err);
        }
    }
    double t1 = now_ns();
    long rss1 = rss_bytes();
    double per_account = (double)(rss1 - rss0) / (double)n;

    /* ---- the key strings and the streams (not timed) */
    char *ids = malloc((size_t)n * ID_LEN);
    query *qa = malloc((size_t)lookups * sizeof *qa), *qb = malloc((size_t)lookups * sizeof *qb);
    size_t *hot = malloc(hot_n * sizeof *hot);
    if (!ids || !qa || !qb || !hot) die("out of memory", NULL);
    for (long i = 0; i < n; i++) snprintf(ids + (size_t)i * ID_LEN, ID_LEN, "acct_%06ld", i + 1);
    for (size_t i = 0; i < hot_n; i++) hot[i] = pick((uint32_t)n);
    for (long i = 0; i < lookups; i++) {
        qa[i].account = ids + (size_t)pick((uint32_t)n) * ID_LEN;
        qa[i].feature = features[pick(4)];
        qb[i].account = ids + hot[pick((uint32_t)hot_n)] * ID_LEN;
        qb[i].feature = features[pick(4)];
    }
    /* the reference table: same ids, each key its own allocation like an
     * account record, values pointing at them */
    ref_table rt;
    size_t cap_ref = 16;
    while (cap_ref < (size_t)n * 2) cap_ref *= 2;
    rt.slots = calloc(cap_ref, sizeof *rt.slots);
    rt.mask = cap_ref - 1;
    if (!rt.slots) die("out of memory", NULL);
    for (long i = 0; i < n; i++) {
        char *k = strdup(ids + (size_t)i * ID_LEN);
        if (!k) die("out of memory", NULL);
        ref_put(&rt, k, k);
    }
    /* sanity: every stream key is found, and check answers for real */
    for (long i = 0; i < 1000 && i < lookups; i++)
        if (!ref_get(&rt, qa[i].account)) die("reference table lost a key", NULL);
    hr_verdict v;
    hr_engine_check(e, qa[0].account, "boards", 1, 0, &v);
    if (v.reason == HR_REASON_UNKNOWN_ACCOUNT || v.reason == HR_REASON_UNKNOWN_FEATURE)
        die("hr_engine_check does not know the loaded accounts", NULL);

    /* ---- timing: rounds interleaved, best of each */
    double best_a = 1e18, best_b = 1e18, best_c = 1e18, best_b_now = 1e18;
    int yes_a = 0, yes_b = 0;
    int64_t fixed_now = (int64_t)time(NULL);
    for (int r = 0; r < rounds; r++) {
        double x;
        if ((x = time_ref(&rt, qa, (size_t)lookups)) < best_c) best_c = x;
        if ((x = time_check(e, qa, (size_t)lookups, 0, &yes_a)) < best_a) best_a = x;
        if ((x = time_check(e, qb, (size_t)lookups, 0, &yes_b)) < best_b) best_b = x;
        if ((x = time_check(e, qb, (size_t)lookups, fixed_now, &yes_b)) < best_b_now)
            best_b_now = x;
    }

    time_t wall = time(NULL);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&wall));
    char load[64] = "?";
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        double l1, l5, l15;
        if (fscanf(lf, "%lf %lf %lf", &l1, &l5, &l15) == 3)
            snprintf(load, sizeof load, "%.2f %.2f %.2f", l1, l5, l15);
        fclose(lf);
    }
    printf("== check (in-process) %s, %ld accounts, %ld calls x %d rounds (best), load %s ==\n",
           when, n, lookups, rounds, load);
    printf("catalog %s; loaded in %.1f s (%.1f us/account incl. usage)\n", catalog,
           (t1 - t0) / 1e9, (t1 - t0) / 1e3 / (double)n);
    printf("(a) hr_engine_check, random account of %ld:  %8.1f ns  (%.0f%% allowed)\n", n, best_a,
           100.0 * yes_a / (double)lookups);
    printf("(b) hr_engine_check, hot set of %zu:       %8.1f ns\n", hot_n, best_b);
    printf("    (b) with the caller passing now:       %8.1f ns\n", best_b_now);
    printf("(c) reference: bare hash lookup, random:   %8.1f ns\n", best_c);
    printf("ratio (a)/(c): %.2fx   (b)/(c): %.2fx\n", best_a / best_c, best_b / best_c);
    printf("memory: %.0f bytes/account (RSS %+.1f MiB over %ld accounts)\n", per_account,
           (double)(rss1 - rss0) / 1048576.0, n);
    printf("goal (a) <= 250 ns: %s (%.1f ns)\n", best_a <= 250 ? "MET" : "NOT MET", best_a);
    printf("goal (b) <= 50 ns: %s (%.1f ns)\n", best_b <= 50 ? "MET" : "NOT MET", best_b);
    printf("goal memory <= 1 KiB/account: %s (%.0f B)\n", per_account <= 1024 ? "MET" : "NOT MET",
           per_account);

    /* no frees of the tables: the process ends here */
    hr_engine_free(e);
    hr_catalog_release(cat);
    return 0;
}
