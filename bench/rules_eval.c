/* rules_eval.c: evaluation cost of a typical audience rule against a
 * hand-written C function computing the same answer, measured in the same run.
 *
 *   build/bench/bench_rules_eval
 *
 * The rule (5 clauses, every one reached for most accounts):
 *   account.plan == "free" && count("Board Created", 30d) >= 2 &&
 *   usage_pct("seats") >= 0.8 && account.company_size >= 10 &&
 *   !trial_used("private_boards")
 *
 * The world is a fake env over plain arrays, as entitle/ keeps it: 64
 * accounts (cycled, so branches are not all predicted), each with 50 traits
 * looked up by path hash over a flat array, 20 features with usage, limit and
 * trial flags, and a table of event counts per window. The reference calls
 * the same lookup functions directly (what a programmer would write for this
 * one rule), so the ratio is the cost of the rule engine: fact calls through
 * the env, the interpreter, the value stack.
 *
 * Reads BENCH_EVALS (evaluations per round, default 2000000) and
 * BENCH_ROUNDS (default 5; the best round is reported). Fails (exit 1) if
 * the two disagree on any account or if evaluation allocated. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "headroom.h"
#include "rules/rules.h"

/* ---- counting allocations (see tests/unit/rules/test_rules.c) ----------------- */
#if defined(__SANITIZE_ADDRESS__)
#define HR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HR_ASAN 1
#endif
#endif

static volatile int counting;
static volatile long nallocs;
#ifndef HR_ASAN
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
void *malloc(size_t n) {
    if (counting) nallocs++;
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t m) {
    if (counting) nallocs++;
    return __libc_calloc(n, m);
}
void *realloc(void *p, size_t n) {
    if (counting) nallocs++;
    return __libc_realloc(p, n);
}
void free(void *p) { __libc_free(p); }
#endif

/* ---- the world -------------------------------------------------------------------- */

#define NACCOUNTS 64
#define NTRAITS 50
#define NFEATURES 20
#define NEVENTS 10

typedef struct {
    uint64_t hash;
    const char *path;
    hr_rval v;
} trait;

typedef struct {
    const char *event;
    int days;
    double count;
} event_count;

typedef struct {
    const char *plan;
    trait traits[NTRAITS];
    double usage[NFEATURES], limit[NFEATURES];
    int trial_used[NFEATURES];
    event_count events[NEVENTS * 2];
} account;

static const char *const plans[] = {"free", "pro", "business"};
static const char *features[NFEATURES];
static char trait_names[NTRAITS][24];
static char feature_names[NFEATURES][24];
static const char *const event_names[NEVENTS] = {
    "Signed Up", "Login", "Board Created", "Board Shared", "Card Moved",
    "Comment Added", "File Uploaded", "Invite Sent", "Export Run", "Search Run"};
static account accounts[NACCOUNTS];

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n) {
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (uint32_t)((rng * 2685821657736338717ull) >> 33) % n;
}

static void build_world(void) {
    for (int f = 0; f < NFEATURES; f++) {
        snprintf(feature_names[f], sizeof feature_names[f], "feature_%02d", f);
        features[f] = feature_names[f];
    }
    features[0] = "boards", features[1] = "private_boards", features[7] = "seats";
    for (int t = 0; t < NTRAITS; t++)
        snprintf(trait_names[t], sizeof trait_names[t], "trait_%02d", t);
    strcpy(trait_names[31], "company_size");
    strcpy(trait_names[5], "industry");
    for (int i = 0; i < NACCOUNTS; i++) {
        account *a = &accounts[i];
        /* most accounts reach every clause; some fail early or late */
        a->plan = rnd(8) ? "free" : plans[1 + rnd(2)];
        for (int t = 0; t < NTRAITS; t++) {
            trait *tr = &a->traits[t];
            tr->path = trait_names[t];
            tr->hash = hr_rule_hash(tr->path, strlen(tr->path));
            if (t % 3 == 0)
                tr->v = (hr_rval){.type = HR_RV_STR, .s = "some text", .len = 9};
            else
                tr->v = (hr_rval){.type = HR_RV_NUM, .n = rnd(1000)};
        }
        a->traits[31].v = (hr_rval){.type = HR_RV_NUM, .n = 5 + rnd(200)};
        for (int f = 0; f < NFEATURES; f++) {
            a->limit[f] = 10 + rnd(10);
            a->usage[f] = rnd((uint32_t)a->limit[f] + 1);
            a->trial_used[f] = rnd(10) == 0;
        }
        a->usage[7] = a->limit[7] - rnd(3); /* seats mostly near the limit */
        for (int e = 0; e < NEVENTS; e++) {
            a->events[2 * e] = (event_count){event_names[e], 7, rnd(5)};
            a->events[2 * e + 1] = (event_count){event_names[e], 30, 1 + rnd(9)};
        }
    }
}

/* The lookups, shared by the env and the reference. */
static const hr_rval *trait_find(const account *a, const char *path, uint64_t hash) {
    for (int t = 0; t < NTRAITS; t++)
        if (a->traits[t].hash == hash && !strcmp(a->traits[t].path, path)) return &a->traits[t].v;
    return NULL;
}

static double event_count_find(const account *a, const char *event, int days) {
    for (int e = 0; e < NEVENTS * 2; e++)
        if (a->events[e].days == days && !strcmp(a->events[e].event, event))
            return a->events[e].count;
    return 0;
}

static int fact(void *ctx, const hr_fact_call *c, hr_rval *v) {
    const account *a = ctx;
    switch (c->fact) {
    case HR_FACT_ATTR:
        if (c->attr == HR_ATTR_PLAN) {
            *v = (hr_rval){.type = HR_RV_STR, .s = a->plan, .len = (uint32_t)strlen(a->plan)};
        } else if (c->attr == HR_ATTR_TRAIT) {
            const hr_rval *t = trait_find(a, c->path, c->path_hash);
            if (t) *v = *t;
        }
        return 0;
    case HR_FACT_COUNT:
        v->type = HR_RV_NUM;
        v->n = event_count_find(a, c->event, c->days);
        return 0;
    case HR_FACT_USAGE_PCT:
        if (a->limit[c->feature] > 0) {
            v->type = HR_RV_NUM;
            v->n = a->usage[c->feature] / a->limit[c->feature];
        }
        return 0;
    case HR_FACT_TRIAL_USED:
        v->type = HR_RV_BOOL;
        v->b = a->trial_used[c->feature];
        return 0;
    default: return 0;
    }
}

/* The reference: the same rule written by hand over the same data. */
static uint64_t company_size_hash;
__attribute__((noinline)) static int by_hand(const account *a) {
    if (strcmp(a->plan, "free")) return 0;
    if (!(event_count_find(a, "Board Created", 30) >= 2)) return 0;
    if (!(a->limit[7] > 0 && a->usage[7] / a->limit[7] >= 0.8)) return 0;
    const hr_rval *size = trait_find(a, "company_size", company_size_hash);
    if (!size || size->type != HR_RV_NUM || !(size->n >= 10)) return 0;
    return !a->trial_used[1];
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long env_long(const char *name, long dflt) {
    const char *s = getenv(name);
    return s && *s ? strtol(s, NULL, 10) : dflt;
}

int main(void) {
    static const char rule_src[] =
        "account.plan == \"free\" && count(\"Board Created\", 30d) >= 2 && "
        "usage_pct(\"seats\") >= 0.8 && account.company_size >= 10 && "
        "!trial_used(\"private_boards\")";
    long evals = env_long("BENCH_EVALS", 2000000), rounds = env_long("BENCH_ROUNDS", 5);
    if (evals < NACCOUNTS) evals = NACCOUNTS;
    if (rounds < 1) rounds = 1;
    build_world();
    company_size_hash = hr_rule_hash("company_size", 12);

    hr_rule_names names = {features, NFEATURES, NULL, 0, NULL, 0, plans, 3};
    hr_rule *r = NULL;
    hr_err err;
    if (hr_rule_compile(rule_src, sizeof rule_src - 1, &names, &r, &err)) {
        fprintf(stderr, "bench_rules_eval: %d:%d: %s\n", err.line, err.column, err.message);
        return 1;
    }
    hr_rule_env env = {fact};
    int agree = 0, hits = 0;
    for (int i = 0; i < NACCOUNTS; i++) {
        int x = hr_rule_test(r, &env, &accounts[i], 0), y = by_hand(&accounts[i]);
        agree += x == y;
        hits += x;
    }
    if (agree != NACCOUNTS) {
        fprintf(stderr, "bench_rules_eval: the rule and the reference disagree\n");
        return 1;
    }

    double best_rule = 1e18, best_ref = 1e18;
    volatile int sink = 0;
    for (long round = 0; round < rounds; round++) {
        int s = 0;
        counting = 1;
        double t0 = now_ns();
        for (long i = 0; i < evals; i++)
            s += hr_rule_test(r, &env, &accounts[i & (NACCOUNTS - 1)], 1700000000000);
        double t1 = now_ns();
        counting = 0;
        for (long i = 0; i < evals; i++) s += by_hand(&accounts[i & (NACCOUNTS - 1)]);
        double t2 = now_ns();
        sink += s;
        if ((t1 - t0) / (double)evals < best_rule) best_rule = (t1 - t0) / (double)evals;
        if ((t2 - t1) / (double)evals < best_ref) best_ref = (t2 - t1) / (double)evals;
    }
    (void)sink;
    printf("rules_eval: 5-clause rule  %.0f ns/eval  (hand-written C: %.0f ns, ratio %.2fx)  "
           "allocations: %ld\n",
           best_rule, best_ref, best_rule / best_ref, (long)nallocs);
    printf("  %d of %d accounts match; %ld evaluations per round, best of %ld rounds%s\n", hits,
           NACCOUNTS, evals, rounds,
#ifdef HR_ASAN
           " (sanitizer build: allocations not counted)"
#else
           ""
#endif
    );
    hr_rule_free(r);
    if (nallocs) {
        fprintf(stderr, "bench_rules_eval: evaluation allocated %ld times\n", (long)nallocs);
        return 1;
    }
    return 0;
}
