/* test_rules.c: the rule language, table-driven: parsing and precedence
 * (through evaluation of pure expressions), evaluation over a fake env made
 * of plain arrays, every compile error with its message and line:column,
 * explain, the fact list, and that evaluation never allocates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "headroom.h"
#include "rules/rules.h"

/* ---- counting allocations ----------------------------------------------------
 * Outside sanitizer builds the test replaces malloc and friends (glibc allows
 * a program to) with wrappers that forward to glibc's own allocator and
 * count calls while `counting` is set: a malloc+free pair inside eval would
 * leave mallinfo2() unchanged, the counter sees it. Sanitizers bring their
 * own allocator, so there only the mallinfo2-free checks run. */
#if defined(__SANITIZE_ADDRESS__)
#define HR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HR_ASAN 1
#endif
#endif

#ifndef HR_ASAN
static volatile int counting;
static volatile long nallocs;
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

/* ---- the catalog names and the fake world ------------------------------------ */

static const char *const features[] = {"seats", "boards", "private_boards", "api_calls", "sso"};
static const char *const meters[] = {"api_calls", "storage_gb"};
static const char *const addons[] = {"extra_seats", "extra_boards"};
static const char *const plans[] = {"free", "pro", "business"};
static const hr_rule_names names = {features, 5, meters, 2, addons, 2, plans, 3};

#define NOW_S 1700000000 /* 2023-11-14T22:13:20Z */
#define NOW_MS ((int64_t)NOW_S * 1000)
#define DAY 86400

typedef struct {
    const char *path;
    hr_rval v;
} trait;

/* Any fact but ATTR: matched on fact, scope, key (event, or the name of the
 * feature / meter / add-on), days (0 = any) and property. */
typedef struct {
    hr_fact_id fact;
    hr_rule_scope scope;
    const char *key;
    int days;
    const char *property;
    hr_rval v;
} row;

typedef struct {
    const char *id, *name, *plan, *email, *role;
    double created_at, user_created_at, renews_at;
    int has_user;
    const trait *atraits, *utraits;
    int natraits, nutraits;
    const row *rows;
    int nrows;
    int fail; /* HR_FACT id + 1 that fails with HR_EIO */
    int calls;
} world;

/* Initialisers for the tables. */
#define NUM(x) {.type = HR_RV_NUM, .n = (x)}
#define BOOL(x) {.type = HR_RV_BOOL, .b = (x)}
#define STR(x) {.type = HR_RV_STR, .s = (x), .len = sizeof(x) - 1}
#define NUL {.type = HR_RV_NULL}

static hr_rval S(const char *s) {
    return (hr_rval){.type = HR_RV_STR, .s = s, .len = (uint32_t)strlen(s)};
}
static hr_rval N(double n) { return (hr_rval){.type = HR_RV_NUM, .n = n}; }

static const trait *find_trait(const trait *t, int n, const hr_fact_call *c) {
    for (int i = 0; i < n; i++)
        if (hr_rule_hash(t[i].path, strlen(t[i].path)) == c->path_hash &&
            !strcmp(t[i].path, c->path))
            return &t[i];
    return NULL;
}

static const char *key_of(const hr_fact_call *c) {
    if (c->feature >= 0) return features[c->feature];
    if (c->addon >= 0) return addons[c->addon];
    if (c->meter >= 0) return meters[c->meter];
    return c->event;
}

static int world_fact(void *ctx, const hr_fact_call *c, hr_rval *out) {
    world *w = ctx;
    w->calls++;
    if (w->fail == (int)c->fact + 1) return HR_EIO;
    if (c->scope == HR_SCOPE_USER && !w->has_user) return 0;
    if (c->fact == HR_FACT_ATTR) {
        int user = c->scope == HR_SCOPE_USER;
        switch (c->attr) {
        case HR_ATTR_ID: *out = S(w->id); break;
        case HR_ATTR_NAME: *out = S(w->name); break;
        case HR_ATTR_PLAN: *out = S(w->plan); break;
        case HR_ATTR_EMAIL: *out = S(w->email); break;
        case HR_ATTR_ROLE: *out = S(w->role); break;
        case HR_ATTR_CREATED_AT: *out = N(user ? w->user_created_at : w->created_at); break;
        case HR_ATTR_RENEWS_AT: *out = N(w->renews_at); break;
        case HR_ATTR_TRAIT: {
            const trait *t = user ? find_trait(w->utraits, w->nutraits, c)
                                  : find_trait(w->atraits, w->natraits, c);
            if (t) *out = t->v;
            break;
        }
        default: break;
        }
        return 0;
    }
    const char *key = key_of(c);
    for (int i = 0; i < w->nrows; i++) {
        const row *r = &w->rows[i];
        if (r->fact == c->fact && r->scope == c->scope &&
            (!r->key || (key && !strcmp(r->key, key))) && (!r->days || r->days == c->days) &&
            (!r->property || (c->property && !strcmp(r->property, c->property)))) {
            *out = r->v;
            return 0;
        }
    }
    /* events that never happened count 0 */
    if (c->fact == HR_FACT_COUNT || c->fact == HR_FACT_ACTIVE_DAYS) *out = N(0);
    return 0;
}

static const hr_rule_env env = {world_fact};

static const trait acme_traits[] = {
    {"industry", STR("fintech")},
    {"company.size", NUM(120)},
    {"company_size", NUM(12)},
    {"company.name", STR("Acme")},
    {"signup", STR("2023-11-10T22:13:20Z")},
    {"vip", BOOL(1)},
    {"size_text", STR("50")},
    {"nothing", NUL},
};
static const trait jo_traits[] = {
    {"title", STR("CTO")},
};
static const row acme_rows[] = {
    {HR_FACT_COUNT, HR_SCOPE_ACCOUNT, "Board Created", 30, NULL, NUM(3)},
    {HR_FACT_COUNT, HR_SCOPE_ACCOUNT, "Board Created", 7, NULL, NUM(1)},
    {HR_FACT_COUNT, HR_SCOPE_ACCOUNT, "Board Created", 400, NULL, NUM(9)},
    {HR_FACT_COUNT, HR_SCOPE_USER, "Board Created", 7, NULL, NUM(1)},
    {HR_FACT_COUNT, HR_SCOPE_ACCOUNT, "headroom.user_added", 7, NULL, NUM(4)},
    {HR_FACT_ACTIVE_DAYS, HR_SCOPE_ACCOUNT, "*", 7, NULL, NUM(5)},
    {HR_FACT_ACTIVE_DAYS, HR_SCOPE_USER, "*", 7, NULL, NUM(2)},
    {HR_FACT_SUM, HR_SCOPE_ACCOUNT, "Order Completed", 30, "revenue", NUM(1500)},
    {HR_FACT_LAST_SEEN, HR_SCOPE_ACCOUNT, "Login", 0, NULL, NUM(NOW_S - 20 * DAY)},
    {HR_FACT_FIRST_SEEN, HR_SCOPE_USER, "Login", 0, NULL, NUM(NOW_S - 90 * DAY)},
    {HR_FACT_ACTIVE_USERS, HR_SCOPE_ACCOUNT, NULL, 7, NULL, NUM(3)},
    {HR_FACT_USERS, HR_SCOPE_ACCOUNT, NULL, 0, NULL, NUM(8)},
    {HR_FACT_USAGE, HR_SCOPE_ACCOUNT, "seats", 0, NULL, NUM(9)},
    {HR_FACT_LIMIT, HR_SCOPE_ACCOUNT, "seats", 0, NULL, NUM(10)},
    {HR_FACT_USAGE_PCT, HR_SCOPE_ACCOUNT, "seats", 0, NULL, NUM(0.9)},
    {HR_FACT_USAGE, HR_SCOPE_ACCOUNT, "boards", 0, NULL, NUM(2)},
    {HR_FACT_LIMIT, HR_SCOPE_ACCOUNT, "boards", 0, NULL, NUM(3)},
    /* limit("api_calls"): unlimited, null */
    {HR_FACT_METER, HR_SCOPE_ACCOUNT, "api_calls", 0, NULL, NUM(2e6)},
    {HR_FACT_GROWTH, HR_SCOPE_ACCOUNT, "api_calls", 30, NULL, NUM(0.5)},
    {HR_FACT_HAS_FEATURE, HR_SCOPE_ACCOUNT, "sso", 0, NULL, BOOL(1)},
    {HR_FACT_HAS_FEATURE, HR_SCOPE_ACCOUNT, "private_boards", 0, NULL, BOOL(0)},
    {HR_FACT_HAS_ADDON, HR_SCOPE_ACCOUNT, "extra_seats", 0, NULL, BOOL(1)},
    {HR_FACT_TRIAL_USED, HR_SCOPE_ACCOUNT, "private_boards", 0, NULL, BOOL(0)},
    {HR_FACT_TRIAL_ACTIVE, HR_SCOPE_ACCOUNT, "sso", 0, NULL, BOOL(1)},
    {HR_FACT_DAYS_TO_RENEWAL, HR_SCOPE_ACCOUNT, NULL, 0, NULL, NUM(45)},
};

static world acme(void) {
    world w = {0};
    w.id = "acct_1";
    w.name = "Acme";
    w.plan = "free";
    w.email = "jo@acme.com";
    w.role = "admin";
    w.created_at = NOW_S - 100 * DAY;
    w.user_created_at = NOW_S - 5 * DAY;
    w.renews_at = NOW_S + 45 * DAY;
    w.has_user = 1;
    w.atraits = acme_traits;
    w.natraits = sizeof acme_traits / sizeof acme_traits[0];
    w.utraits = jo_traits;
    w.nutraits = 1;
    w.rows = acme_rows;
    w.nrows = sizeof acme_rows / sizeof acme_rows[0];
    return w;
}

static hr_rule *compile_ok(const char *src) {
    hr_rule *r = NULL;
    hr_err err = {0};
    int rc = hr_rule_compile(src, strlen(src), &names, &r, &err);
    if (rc) fail_msg("compile %s: %d:%d: %s", src, err.line, err.column, err.message);
    return r;
}

static int same(const hr_rval *a, const hr_rval *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
    case HR_RV_BOOL: return !a->b == !b->b;
    case HR_RV_NUM: return fabs(a->n - b->n) <= 1e-9 * (fabs(b->n) > 1 ? fabs(b->n) : 1);
    case HR_RV_STR: return a->len == b->len && !memcmp(a->s, b->s, a->len);
    default: return 1;
    }
}

static const char *show(const hr_rval *v, char *buf, size_t n) {
    switch (v->type) {
    case HR_RV_BOOL: snprintf(buf, n, v->b ? "true" : "false"); break;
    case HR_RV_NUM: snprintf(buf, n, "%.17g", v->n); break;
    case HR_RV_STR: snprintf(buf, n, "\"%.*s\"", (int)v->len, v->s); break;
    default: snprintf(buf, n, "null");
    }
    return buf;
}

typedef struct {
    const char *src;
    hr_rval want;
} eval_case;

static void run_cases(const eval_case *cases, size_t n, world *w) {
    for (size_t i = 0; i < n; i++) {
        hr_rule *r = compile_ok(cases[i].src);
        hr_rval got;
        assert_int_equal(hr_rule_eval(r, &env, w, NOW_MS, &got), 0);
        char g[64], e[64];
        if (!same(&got, &cases[i].want))
            fail_msg("%s: got %s, want %s", cases[i].src, show(&got, g, sizeof g),
                     show(&cases[i].want, e, sizeof e));
        hr_rule_free(r);
    }
}

/* ---- parsing: precedence, associativity, every operator ----------------------- */

static void precedence_and_operators(void **state) {
    static const eval_case cases[] = {
        {"1 + 2 * 3", NUM(7)},
        {"(1 + 2) * 3", NUM(9)},
        {"10 - 4 - 3", NUM(3)},  /* left associative */
        {"100 / 10 / 5", NUM(2)},
        {"2 * 9 % 4", NUM(2)},  /* (2*9)%4 */
        {"7 % 4", NUM(3)},
        {"-7.5 % 2", NUM(-1.5)},
        {"-2 * 3", NUM(-6)},
        {"2 * -3", NUM(-6)},
        {"- (2 + 3)", NUM(-5)},
        {"--2", NUM(2)},
        {"-account.company.size", NUM(-120)},
        {"1 - -1", NUM(2)},
        {"1e3 + 2.5e-1 + 0.75", NUM(1001)},
        {"1E+2", NUM(100)},
        {"true || false && false", BOOL(1)},  /* && binds tighter */
        {"(true || false) && false", BOOL(0)},
        {"false && true || true", BOOL(1)},
        {"!true || true", BOOL(1)},  /* (!true) || true */
        {"!false && false", BOOL(0)},  /* (!false) && false */
        {"!1 == 2", BOOL(1)},  /* !(1 == 2) */
        {"not 1 == 1", BOOL(0)},
        {"!!true", BOOL(1)},
        {"true and not false", BOOL(1)},
        {"false or true", BOOL(1)},
        {"1 + 2 == 3", BOOL(1)},
        {"3 == 1 + 2", BOOL(1)},
        {"2 * 3 > 5 && 1 < 2", BOOL(1)},
        {"1 <= 1 && 1 >= 1 && !(1 < 1) && !(1 > 1) && 1 != 2", BOOL(1)},
        {"'b' > 'a' && 'ab' < 'b' && 'a' < 'ab' && 'a' <= 'a'", BOOL(1)},
        {"2 in [1, 2, 3]", BOOL(1)},
        {"-1 in [1, -1]", BOOL(1)},
        {"4 in [1, 2, 3,]", BOOL(0)},
        {"4 not in [1, 2, 3]", BOOL(1)},
        {"'a' in []", BOOL(0)},
        {"null in [null]", BOOL(1)},
        {"true in [false, true]", BOOL(1)},
        {"1 + 1 in [2]", BOOL(1)},
        {"!2 in [3]", BOOL(1)},  /* !(2 in [3]) */
        {"'abc' contains 'b'", BOOL(1)},
        {"'abc' contains ''", BOOL(1)},
        {"'abc' contains 'abcd'", BOOL(0)},
        {"'abc' starts_with 'ab'", BOOL(1)},
        {"'abc' starts_with 'bc'", BOOL(0)},
        {"'abc' ends_with 'bc'", BOOL(1)},
        {"'abc' ends_with 'xabc'", BOOL(0)},
        {"1 / 0", NUL},
        {"5 % 0 == null", BOOL(1)},
        {"1e308 * 10", NUL},  /* no inf */
        {"null == null", BOOL(1)},
        {"null != 1", BOOL(1)},
        {"null", NUL},
        {"!null", BOOL(1)},
        {"null && true", BOOL(0)},
        {"null || null", BOOL(0)},
        {"true || null", BOOL(1)},
        {"min(3, 4) + max(3, 4) + abs(-2.5)", NUM(9.5)},
        {"len('héllo')", NUM(5)},
        {"now()", NUM(NOW_S)},
        {"days_since(1699913600)", NUM(1)},
        {"days_since('2023-11-13T22:13:20Z')", NUM(1)},
        {"days_since('2023-11-14T10:13:20Z')", NUM(0.5)},
        {"days_until(now() + 2 * 86400)", NUM(2)},
        {"days_since('last tuesday')", NUL},
        {"days_since(null)", NUL},
        {"'\\u00e9' == 'é' && \"a\\\"b\" == 'a\"b' && 'it\\'s' == \"it's\"", BOOL(1)},
        {"'\\ud83d\\ude00' == '😀' && '\\\\' != '/' && '\\/' == '/'", BOOL(1)},
        {"len('a\\tb\\nc')", NUM(5)},
        {"1 // one\n  + 2 // two\n", NUM(3)},
        {"(((((1)))))", NUM(1)},
        {"'x'", STR("x")},
    };
    world w = acme();
    run_cases(cases, sizeof cases / sizeof cases[0], &w);
}

static void result_types(void **state) {
    static const struct {
        const char *src;
        hr_rule_type t;
    } cases[] = {
        {"1 + 2", HR_RT_NUM},
        {"count('x', 7d)", HR_RT_NUM},
        {"true", HR_RT_BOOL},
        {"account.plan == 'free'", HR_RT_BOOL},
        {"has_feature('sso')", HR_RT_BOOL},
        {"account.plan", HR_RT_STR},
        {"account.created_at", HR_RT_NUM},
        {"account.company.size", HR_RT_ANY},
        {"null", HR_RT_NULL},
        {"days_since(user.created_at)", HR_RT_NUM},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hr_rule *r = compile_ok(cases[i].src);
        if (hr_rule_result_type(r) != cases[i].t)
            fail_msg("%s: type %d, want %d", cases[i].src, hr_rule_result_type(r), cases[i].t);
        hr_rule_free(r);
    }
}

/* ---- evaluation over the fake world -------------------------------------------- */

static void facts_and_examples(void **state) {
    static const eval_case cases[] = {
        /* the examples of docs/RULES.md */
        {"account.plan == \"free\" && count(\"Board Created\", 30d) >= 2 && "
         "!trial_used(\"private_boards\")", BOOL(1)},
        {"usage_pct(\"seats\") >= 0.8", BOOL(1)},
        {"days_since(user.created_at) > 3", BOOL(1)},
        {"days_since(user.created_at)", NUM(5)},
        {"days_to_renewal() <= 60 && growth(\"api_calls\", 30d) >= 0.25", BOOL(1)},
        {"user.role in [\"admin\", \"decision_maker\"]", BOOL(1)},
        {"account.plan != \"free\" && count(\"headroom.user_added\", 7d) >= 3", BOOL(0)},
        {"count(\"headroom.user_added\", 7d) >= 3", BOOL(1)},
        {"user.email ends_with \"@acme.com\"", BOOL(1)},
        {"account.industry contains \"fin\"", BOOL(1)},
        {"account.name starts_with \"A\"", BOOL(1)},
        {"account.company.size >= 50", BOOL(1)},
        {"account.company.name == 'Acme'", BOOL(1)},
        {"user_count(\"Board Created\", 7d) >= 1", BOOL(1)},
        {"active_days(\"*\", 7d) >= 2", BOOL(1)},
        {"user_active_days(\"*\", 7d) >= 2", BOOL(1)},
        {"sum(\"Order Completed\", \"revenue\", 30d) > 1000", BOOL(1)},
        {"sum(\"Order Completed\", \"properties.revenue\", 30d)", NUM(1500)},
        {"active_users(7d) >= 3", BOOL(1)},
        {"users()", NUM(8)},
        {"limit(\"boards\") - usage(\"boards\") <= 1", BOOL(1)},
        {"meter(\"api_calls\") > 1e6", BOOL(1)},
        {"has_feature(\"sso\")", BOOL(1)},
        {"has_feature(\"private_boards\")", BOOL(0)},
        {"has_addon(\"extra_seats\")", BOOL(1)},
        {"trial_active(\"sso\") && !trial_active(\"boards\")", BOOL(1)},
        {"last_seen(\"Login\") != null && days_since(last_seen(\"Login\")) > 14", BOOL(1)},
        {"days_since(user_first_seen('Login'))", NUM(90)},
        {"count('Board Created')", NUM(9)},  /* default window 400d */
        {"count('Board Created', 1w)", NUM(1)},
        {"count('Board Created', 168h)", NUM(1)},
        {"count('Never Happened', 30d)", NUM(0)},
        {"days_since(account.signup)", NUM(4)},
        {"days_until(account.renews_at)", NUM(45)},
        {"account.vip", BOOL(1)},
        {"account.vip && account.plan == 'free'", BOOL(1)},
        {"user.title", STR("CTO")},
        {"usage('seats') / limit('seats')", NUM(0.9)},
        /* null: missing anywhere in a path, unlimited limits, unknown facts */
        {"account.company.size.value", NUL},
        {"account.missing", NUL},
        {"account.missing.deeper >= 50", BOOL(0)},
        {"account.missing < 50", BOOL(0)},
        {"account.missing == null", BOOL(1)},
        {"account.nothing == null", BOOL(1)},
        {"account.missing != 'x'", BOOL(1)},
        {"!account.missing", BOOL(1)},
        {"account.missing + 1", NUL},
        {"-account.missing", NUL},
        {"account.missing contains 'a'", BOOL(0)},
        {"account.missing in ['a']", BOOL(0)},
        {"account.missing not in ['a']", BOOL(1)},
        {"limit('api_calls')", NUL},
        {"limit('api_calls') > 0", BOOL(0)},
        {"last_seen('Logout')", NUL},
        {"days_since(last_seen('Logout'))", NUL},
        {"days_since(last_seen('Logout')) > 14", BOOL(0)},
        {"has_feature('boards')", NUL},
        {"has_feature('boards') || true", BOOL(1)},
        {"true && has_feature('boards')", BOOL(0)},  /* null -> false */
        {"min(account.missing, 1)", NUL},
        {"len(account.company.size)", NUL},
        /* runtime types decide for traits */
        {"account.size_text >= 50", BOOL(0)},
        {"account.size_text == 50", BOOL(0)},
        {"account.size_text == '50'", BOOL(1)},
        {"account.company.size contains '1'", BOOL(0)},
        {"account.company.size * 2", NUM(240)},
        {"account.industry + 1", NUL},
        {"account.company.size in [120, 130]", BOOL(1)},
        {"account.company.size in ['120']", BOOL(0)},
    };
    world w = acme();
    run_cases(cases, sizeof cases / sizeof cases[0], &w);
}

static void user_scope_absent(void **state) {
    static const eval_case cases[] = {
        {"user.role", NUL},
        {"user.role in ['admin']", BOOL(0)},
        {"user.email ends_with '@acme.com'", BOOL(0)},
        {"user_count('Board Created', 7d)", NUL},
        {"user_count('Board Created', 7d) >= 1", BOOL(0)},
        {"user_active_days('*', 7d) < 2", BOOL(0)},
        {"days_since(user.created_at) > 3", BOOL(0)},
        {"user.title == null && account.plan == 'free'", BOOL(1)},
        {"count('Board Created', 7d)", NUM(1)}, /* account facts still work */
    };
    world w = acme();
    w.has_user = 0;
    run_cases(cases, sizeof cases / sizeof cases[0], &w);
}

static void short_circuit_and_cache(void **state) {
    world w = acme();
    hr_rule *r = compile_ok("account.plan == 'pro' && count('Board Created', 30d) > 1");
    w.calls = 0;
    assert_false(hr_rule_test(r, &env, &w, NOW_MS));
    assert_int_equal(w.calls, 1); /* count() never asked */
    hr_rule_free(r);

    r = compile_ok("usage('seats') > 5 || count('x', 1d) > 0 || users() > 1");
    w.calls = 0;
    assert_true(hr_rule_test(r, &env, &w, NOW_MS));
    assert_int_equal(w.calls, 1);
    hr_rule_free(r);

    /* a fact used three times is asked once per evaluation */
    r = compile_ok("usage('seats') > 5 && usage('seats') < 10 && usage('seats') != 7");
    w.calls = 0;
    assert_true(hr_rule_test(r, &env, &w, NOW_MS));
    assert_int_equal(w.calls, 1);
    assert_true(hr_rule_test(r, &env, &w, NOW_MS));
    assert_int_equal(w.calls, 2);
    hr_rule_free(r);
}

/* hr_rule_test answers `fact OP constant` and `fact in [...]` without the
 * interpreter: the same answers as evaluating them, nulls and mixed types
 * included. */
static void clause_fast_path(void **state) {
    static const char *const facts[] = {
        "account.plan", "account.company_size", "account.industry", "account.missing",
        "usage('seats')",
        "count('Board Created', 30d)", "count('Never', 7d)", "account.created_at",
        "user.role", "trial_used('private_boards')", "has_addon('extra_seats')",
    };
    static const char *const tails[] = {
        "== 'free'", "!= 'free'", "== 3", "!= 3", "< 5", "<= 5", "> 5", ">= 5", "== null",
        "!= null", "< 'm'", ">= 'free'", "== true", "!= false", "in ['free', 'pro']",
        "not in ['free', 'pro']", "in [1, 2, 3]", "in [null]", "> -1", "== 0",
    };
    char src[200];
    int ran = 0;
    for (int u = 0; u < 2; u++)
        for (size_t i = 0; i < sizeof facts / sizeof facts[0]; i++)
            for (size_t j = 0; j < sizeof tails / sizeof tails[0]; j++) {
                world w = acme();
                w.has_user = u;
                snprintf(src, sizeof src, "%s %s", facts[i], tails[j]);
                hr_rule *r = NULL;
                hr_err err = {0};
                if (hr_rule_compile(src, strlen(src), &names, &r, &err)) continue; /* type error */
                hr_rval v;
                assert_int_equal(hr_rule_eval(r, &env, &w, NOW_MS, &v), 0);
                int slow = v.type == HR_RV_BOOL ? v.b : -1;
                int fast = hr_rule_test(r, &env, &w, NOW_MS);
                if (fast != slow) fail_msg("%s (user %d): test %d, eval %d", src, u, fast, slow);
                /* an env error: an error from eval, false from test */
                w.fail = (int)hr_rule_fact(r, 0)->fact + 1;
                assert_int_equal(hr_rule_eval(r, &env, &w, NOW_MS, &v), HR_EIO);
                assert_false(hr_rule_test(r, &env, &w, NOW_MS));
                hr_rule_free(r);
                ran++;
            }
    assert_true(ran >= 200); /* most pairs type-check */
}

/* Conjuncts shared across rules run once a round, and every rule answers
 * as it does alone. */
static void shared_conjuncts(void **state) {
    static const char *const srcs[] = {
        "account.plan == 'free' && count('Board Created', 30d) >= 2",
        "count('Board Created', 30d) >= 2 && usage('seats') > 5",
        "account.plan == 'free'",
        "(account.plan == 'free' || users() > 1) && days_to_renewal() <= 60",
        "account.plan == 'pro' && usage('seats') > 5",
        "account.plan == 'free' && !(usage('seats') > 5) && account.plan == 'free'",
        "usage('seats') > 5 && usage('seats') < 10",
        "count('Never Happened', 7d) > 0 && account.plan == 'free'",
        "days_to_renewal()",
        "null && true",
    };
    enum { N = sizeof srcs / sizeof srcs[0] };
    hr_rule *r[N];
    hr_rule_share *sh = hr_rule_share_new();
    assert_non_null(sh);
    for (int i = 0; i < N; i++) {
        r[i] = compile_ok(srcs[i]);
        assert_int_equal(hr_rule_share_add(sh, r[i]), 0);
    }
    /* distinct conjuncts by text: plan == free, count >= 2, usage > 5,
     * (plan || users), renewal <= 60, plan == pro, !(usage > 5),
     * usage < 10, never > 0, days_to_renewal(), null, true */
    assert_int_equal(hr_rule_share_slots(sh), 12);
    uint8_t memo[64];
    for (int plan = 0; plan < 2; plan++) {
        world w = acme();
        if (plan) w.plan = "pro";
        int alone[N];
        w.calls = 0;
        for (int i = 0; i < N; i++) alone[i] = hr_rule_test(r[i], &env, &w, NOW_MS);
        int calls_alone = w.calls;
        memset(memo, 0, sizeof memo);
        w.calls = 0;
        for (int i = 0; i < N; i++)
            assert_int_equal(hr_rule_test_memo(r[i], &env, &w, NOW_MS, memo), alone[i]);
        /* each distinct clause ran once (12 clauses, at most 13 facts) */
        assert_true(w.calls <= 13);
        assert_true(w.calls < calls_alone);
        int calls = w.calls;
        for (int i = 0; i < N; i++) /* the same round again: all from the memo */
            assert_int_equal(hr_rule_test_memo(r[i], &env, &w, NOW_MS, memo), alone[i]);
        assert_int_equal(w.calls, calls);
        for (int i = 0; i < N; i++) /* no memo: as alone */
            assert_int_equal(hr_rule_test_memo(r[i], &env, &w, NOW_MS, NULL), alone[i]);
    }
    hr_rule_share_free(sh);
    for (int i = 0; i < N; i++) hr_rule_free(r[i]);
}

static void env_errors(void **state) {
    world w = acme();
    w.fail = HR_FACT_COUNT + 1;
    hr_rule *r = compile_ok("account.plan == 'free' && count('Board Created', 30d) >= 2");
    hr_rval v;
    assert_int_equal(hr_rule_eval(r, &env, &w, NOW_MS, &v), HR_EIO);
    assert_false(hr_rule_test(r, &env, &w, NOW_MS));
    hr_buf b;
    hr_buf_init(&b);
    assert_int_equal(hr_rule_explain(r, &env, &w, NOW_MS, &b), HR_EIO);
    assert_string_equal(b.data, "{\"account.plan\":\"free\",\"count('Board Created', 30d)\":null}");
    hr_buf_dispose(&b);
    /* no env at all: every fact is null */
    assert_int_equal(hr_rule_eval(r, NULL, NULL, NOW_MS, &v), 0);
    assert_int_equal(v.type, HR_RV_BOOL);
    assert_false(v.b);
    hr_rule_free(r);
}

/* ---- compile errors -------------------------------------------------------------- */

typedef struct {
    const char *src, *msg;
    int line, col;
} err_case;

static void compile_errors(void **state) {
    static const err_case cases[] = {
        /* lexical */
        {"", "empty rule", 1, 1},
        {"  // just a comment\n", "empty rule", 1, 1},
        {"account.plan == \"free", "unterminated string", 1, 17},
        {"account.plan == 'free\n'", "unterminated string", 1, 17},
        {"'a\\qb'", "unknown escape '\\q'", 1, 3},
        {"'\\u12'", "\\u needs four hex digits", 1, 2},
        {"'\\ud800'", "lone surrogate", 1, 2},
        {"'\\u0000'", "\\u0000", 1, 2},
        {"'a\tb\x01'", "control character", 1, 5},
        {"'\xff'", "invalid UTF-8", 1, 2},
        {"1 # 2", "unexpected character '#'", 1, 3},
        {"1 é 2", "unexpected character 'é'", 1, 3},
        {"a = 1", "unexpected '=' (compare with '==')", 1, 3},
        {"true & false", "did you mean '&&'", 1, 6},
        {"true | false", "did you mean '||'", 1, 6},
        {"12abc > 1", "invalid number '12abc'", 1, 1},
        {"1.5d", "invalid number '1.5d'", 1, 1},
        {"count('x', 25h) > 1", "'25h' is not a whole number of days", 1, 12},
        {"count('x', 0d) > 1", "at least 1 day", 1, 12},
        {"count('x', 9999d) > 1", "longer than 3650 days", 1, 12},
        {"1e999 > 1", "out of range", 1, 1},
        /* syntax */
        {"account.plan ==", "expected an expression, found the end of the rule", 1, 16},
        {"(1 + 2", "expected ')' to close '(' at 1:1, found the end of the rule", 1, 7},
        {"1 + 2)", "expected an operator or the end of the rule, found ')'", 1, 6},
        {"account.plan 'free'",
         "expected an operator or the end of the rule, found string 'free'", 1, 14},
        {"count('x', 7d", "expected ',' or ')' to close 'count(' at 1:6", 1, 14},
        {"count('x',)", "expected an argument after ','", 1, 11},
        {"account.", "expected a field name after '.', found the end of the rule", 1, 9},
        {"account.1", "expected a field name after '.'", 1, 9},
        {"1 < 2 < 3", "comparisons do not chain", 1, 7},
        {"a == b != c", "comparisons do not chain", 1, 8},
        {"1 not 2", "expected 'in' after 'not', found number 2", 1, 7},
        {"1 in 2", "expected a list after 'in'", 1, 6},
        {"1 in [account.plan]", "expected a literal", 1, 7},
        {"1 in [1 2]", "expected ',' or ']' in the list", 1, 9},
        {"[1, 2]", "a list is only allowed after 'in'", 1, 1},
        {"1 in [-'x']", "expected a number after '-', found string 'x'", 1, 8},
        /* names */
        {"cnt('Board Created', 30d) > 1", "unknown function 'cnt' (did you mean 'count'?)", 1, 1},
        {"lower(user.email) == 'x'", "unknown function 'lower'", 1, 1},
        {"foo > 1", "unknown name 'foo'", 1, 1},
        {"acount.plan == 'free'", "unknown name 'acount' (did you mean 'account'?)", 1, 1},
        {"users > 1", "'users' is a function: write users(...)", 1, 1},
        {"account == 1", "'account' needs a field, like account.plan", 1, 1},
        {"user", "'user' needs a field, like user.role", 1, 1},
        {"account.plan.tier == 'x'", "account.plan is a string and has no fields", 1, 14},
        {"has_feature('sets')", "unknown feature 'sets' (did you mean 'seats'?)", 1, 13},
        {"usage('nope') > 1", "unknown feature 'nope'", 1, 7},
        {"has_addon('extra')", "unknown add-on 'extra'", 1, 11},
        {"meter('api') > 1", "unknown meter 'api'", 1, 7},
        {"account.plan == 'fre'", "unknown plan 'fre' (did you mean 'free'?)", 1, 17},
        {"'enterprise' != account.plan", "unknown plan 'enterprise'", 1, 1},
        {"account.plan in ['free', 'pr']", "unknown plan 'pr'", 1, 26},
        {"account.trial_plan == 'gold'", "unknown plan 'gold'", 1, 23},
        /* arguments */
        {"count() > 1", "count() takes 1 or 2 arguments, got 0", 1, 1},
        {"count('a', 1d, 2d) > 1", "count() takes 1 or 2 arguments, got 3", 1, 1},
        {"users(7d)", "users() takes 0 arguments, got 1", 1, 1},
        {"growth('api_calls')", "growth() takes 2 arguments, got 1", 1, 1},
        {"sum('Order', 30d)",
         "sum() argument 2 must be a property name in quotes, got a duration", 1, 14},
        {"count('x', 30) > 1",
         "count() argument 2 must be a window like 30d, 2w or 24h, got a number", 1, 12},
        {"count(account.plan, 30d) > 1", "count() argument 1 must be an event name in quotes",
         1, 7},
        {"count('', 30d) > 1", "count() argument 1 is empty", 1, 7},
        {"has_feature(sso)", "has_feature() argument 1 must be in quotes: has_feature(\"sso\")",
         1, 13},
        {"usage(1) > 1", "usage() argument 1 must be a feature key in quotes, got a number", 1, 7},
        {"days_since(true)", "days_since() argument 1 must be a timestamp", 1, 12},
        {"days_since()", "days_since() takes 1 argument, got 0", 1, 1},
        {"min(1)", "min() takes 2 arguments, got 1", 1, 1},
        {"abs('x')", "abs() argument 1 must be a number, got a string", 1, 5},
        {"len(1)", "len() argument 1 must be a string, got a number", 1, 5},
        {"30d > 1", "a duration like 30d is only allowed as a window argument", 1, 1},
        {"days_since(7d)", "a duration like 30d is only allowed", 1, 12},
        /* types */
        {"account.plan == 1", "'==' compares a string with a number", 1, 14},
        {"1 != 'x'", "'!=' compares a number with a string", 1, 3},
        {"has_feature('sso') == 'yes'", "'==' compares a boolean with a string", 1, 20},
        {"count('x', 7d) < 'a'", "'<' compares a number with a string", 1, 16},
        {"true < 1", "'<' needs numbers or strings, got a boolean", 1, 1},
        {"usage('seats') > null", "'>' with null is always false", 1, 18},
        {"account.plan + 1", "'+' needs numbers, got a string", 1, 1},
        {"1 * true", "'*' needs numbers, got a boolean", 1, 5},
        {"-'x' == 1", "'-' needs a number, got a string", 1, 2},
        {"-account.plan", "'-' needs a number, got a string", 1, 2},
        {"count('x', 7d) && true", "'&&' needs booleans, got a number", 1, 1},
        {"true || account.plan", "'||' needs booleans, got a string", 1, 9},
        {"!usage('seats')", "'!' needs a boolean, got a number", 1, 2},
        {"account.plan contains 1", "'contains' needs strings, got a number", 1, 23},
        {"1 starts_with 'a'", "'starts_with' needs strings, got a number", 1, 1},
        {"account.created_at ends_with 'x'", "'ends_with' needs strings, got a number", 1, 1},
        {"account.plan in ['free', 1]", "'in' compares a string with a number", 1, 26},
        {"1 not in ['a']", "'not in' compares a number with a string", 1, 11},
        /* positions on later lines: columns count characters */
        {"account.plan == \"free\"\n  && count(\"Board Created\", 30d) >= 2\n  && cnt(\"x\") > 1",
         "unknown function 'cnt'", 3, 6},
        {"// audience\naccount.plan == 'free' &&\n\t(usage('seats') >\n\t 'many')",
         "'>' compares a number with a string", 3, 18},
        {"'é' == 'é' &&\n  'ü' == 1", "'==' compares a string with a number", 2, 7},
        {"(1 +\n", "expected an expression, found the end of the rule", 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const err_case *c = &cases[i];
        hr_rule *r = (hr_rule *)1;
        hr_err err;
        memset(&err, 0, sizeof err);
        int rc = hr_rule_compile(c->src, strlen(c->src), &names, &r, &err);
        if (rc != HR_ECONFIG) fail_msg("%s: compiled (rc %d), want \"%s\"", c->src, rc, c->msg);
        assert_null(r);
        assert_int_equal(err.code, HR_ECONFIG);
        if (!strstr(err.message, c->msg))
            fail_msg("%s: message \"%s\", want \"%s\"", c->src, err.message, c->msg);
        if (c->line && (err.line != c->line || err.column != c->col))
            fail_msg("%s: at %d:%d, want %d:%d (%s)", c->src, err.line, err.column, c->line,
                     c->col, err.message);
    }
}

static void nesting_limits(void **state) {
    char src[4096];
    hr_err err;
    hr_rule *r;
    /* 64 levels of parentheses compile, 65 do not */
    for (int depth = 64; depth <= 65; depth++) {
        size_t n = 0;
        for (int i = 0; i < depth; i++) src[n++] = '(';
        src[n++] = '1';
        for (int i = 0; i < depth; i++) src[n++] = ')';
        int rc = hr_rule_compile(src, n, &names, &r, &err);
        if (depth == 64) {
            assert_int_equal(rc, 0);
            hr_rule_free(r);
        } else {
            assert_int_equal(rc, HR_ECONFIG);
            assert_non_null(strstr(err.message, "nested too deeply"));
            assert_int_equal(err.column, 65);
        }
    }
    /* a long && chain is flat, a long + chain is bounded */
    size_t n = 0;
    for (int i = 0; i < 400; i++)
        n += (size_t)snprintf(src + n, sizeof src - n, "%strue", i ? "&&" : "");
    assert_int_equal(hr_rule_compile(src, n, &names, &r, &err), 0);
    assert_true(hr_rule_test(r, &env, NULL, NOW_MS));
    hr_rule_free(r);
    n = 0;
    for (int i = 0; i < 400; i++)
        n += (size_t)snprintf(src + n, sizeof src - n, "%s1", i ? "+" : "");
    assert_int_equal(hr_rule_compile(src, n, &names, &r, &err), HR_ECONFIG);
    assert_non_null(strstr(err.message, "too complex"));
    n = 0;
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(src + n, sizeof src - n, "%s1", i ? "+" : "");
    assert_int_equal(hr_rule_compile(src, n, &names, &r, &err), 0);
    hr_rval v;
    assert_int_equal(hr_rule_eval(r, NULL, NULL, NOW_MS, &v), 0);
    assert_true(v.type == HR_RV_NUM && v.n == 200);
    hr_rule_free(r);
    /* deep right nesting within the limits fits the evaluation stack */
    n = 0;
    for (int i = 0; i < 63; i++) n += (size_t)snprintf(src + n, sizeof src - n, "1+(");
    src[n++] = '1';
    for (int i = 0; i < 63; i++) src[n++] = ')';
    assert_int_equal(hr_rule_compile(src, n, &names, &r, &err), 0);
    assert_int_equal(hr_rule_eval(r, NULL, NULL, NOW_MS, &v), 0);
    assert_true(v.type == HR_RV_NUM && v.n == 64);
    hr_rule_free(r);
    /* the source need not be NUL-terminated */
    assert_int_equal(hr_rule_compile("1 + 2 garbage", 5, &names, &r, &err), 0);
    assert_int_equal(hr_rule_eval(r, NULL, NULL, NOW_MS, &v), 0);
    assert_true(v.n == 3);
    hr_rule_free(r);
}

/* ---- facts listing and explain ------------------------------------------------- */

static void fact_listing(void **state) {
    hr_rule *r = compile_ok(
        "account.plan == 'free' && count(\"Board Created\", 30d) >= 2 && "
        "account.company.size >= 50 && count('Board Created', 30d) < 100 && "
        "user_count('Board Created', 30d) > 0 && usage_pct('seats') >= 0.8 && "
        "growth('api_calls', 2w) > 0 && growth('Signed Up', 7d) > 0 && has_addon('extra_boards') "
        "&& sum('Order Completed', 'properties.revenue') > 0 && user.title == 'CTO' && "
        "account.plan != 'pro'");
    assert_int_equal(hr_rule_nfacts(r), 10); /* the repeated count() and account.plan once */
    const hr_fact_call *f = hr_rule_fact(r, 0);
    assert_int_equal(f->fact, HR_FACT_ATTR);
    assert_int_equal(f->scope, HR_SCOPE_ACCOUNT);
    assert_int_equal(f->attr, HR_ATTR_PLAN);
    assert_null(f->path);
    f = hr_rule_fact(r, 1);
    assert_int_equal(f->fact, HR_FACT_COUNT);
    assert_string_equal(f->event, "Board Created");
    assert_int_equal(f->days, 30);
    assert_int_equal(f->feature, -1);
    f = hr_rule_fact(r, 2);
    assert_int_equal(f->attr, HR_ATTR_TRAIT);
    assert_string_equal(f->path, "company.size");
    assert_true(f->path_hash == hr_rule_hash("company.size", 12));
    f = hr_rule_fact(r, 3);
    assert_int_equal(f->fact, HR_FACT_COUNT);
    assert_int_equal(f->scope, HR_SCOPE_USER);
    f = hr_rule_fact(r, 4);
    assert_int_equal(f->fact, HR_FACT_USAGE_PCT);
    assert_int_equal(f->feature, 0);
    f = hr_rule_fact(r, 5);
    assert_int_equal(f->fact, HR_FACT_GROWTH);
    assert_int_equal(f->meter, 0);
    assert_int_equal(f->days, 14);
    f = hr_rule_fact(r, 6);
    assert_int_equal(f->meter, -1);
    assert_string_equal(f->event, "Signed Up");
    f = hr_rule_fact(r, 7);
    assert_int_equal(f->fact, HR_FACT_HAS_ADDON);
    assert_int_equal(f->addon, 1);
    f = hr_rule_fact(r, 8);
    assert_int_equal(f->fact, HR_FACT_SUM);
    assert_string_equal(f->property, "revenue");
    assert_int_equal(f->days, 400);
    f = hr_rule_fact(r, 9);
    assert_int_equal(f->scope, HR_SCOPE_USER);
    assert_string_equal(f->path, "title");
    assert_null(hr_rule_fact(r, 10));
    assert_null(hr_rule_fact(r, -1));
    hr_rule_free(r);
}

static void explain(void **state) {
    world w = acme();
    hr_rule *r = compile_ok(
        "account.plan == \"free\" && count(\"Board Created\",30d) >= 2\n"
        "  && count( 'Board Created' , // the same fact\n 30d ) < 100\n"
        "  || usage_pct(\"seats\") >= 0.8 && account.company.size > 0 && user.email != null\n"
        "  || limit('api_calls') == null || days_since(user.created_at) > 1.5 || account.vip");
    hr_buf b;
    hr_buf_init(&b);
    assert_int_equal(hr_rule_explain(r, &env, &w, NOW_MS, &b), 0);
    assert_string_equal(b.data,
                        "{\"account.plan\":\"free\",\"count(\\\"Board Created\\\",30d)\":3,"
                        "\"usage_pct(\\\"seats\\\")\":0.9,\"account.company.size\":120,"
                        "\"user.email\":\"jo@acme.com\",\"limit('api_calls')\":null,"
                        "\"user.created_at\":1699568000,\"account.vip\":true}");
    hr_buf_dispose(&b);
    hr_rule_free(r);

    /* source text keeps what was written, folds whitespace and comments */
    r = compile_ok("count(  'A\"  b' ,\n\t7d\t) > 1 && sum('Order', 'x') > 1");
    hr_buf_init(&b);
    assert_int_equal(hr_rule_explain(r, &env, &w, NOW_MS, &b), 0);
    assert_string_equal(b.data, "{\"count('A\\\"  b', 7d)\":0,\"sum('Order', 'x')\":null}");
    hr_buf_dispose(&b);
    hr_rule_free(r);

    /* no facts: an empty object */
    r = compile_ok("1 < 2");
    hr_buf_init(&b);
    assert_int_equal(hr_rule_explain(r, &env, &w, NOW_MS, &b), 0);
    assert_string_equal(b.data, "{}");
    hr_buf_dispose(&b);
    hr_rule_free(r);
}

/* ---- no allocation while evaluating ------------------------------------------------ */

static void eval_does_not_allocate(void **state) {
    world w = acme();
    hr_rule *r = compile_ok(
        "account.plan == \"free\" && count(\"Board Created\", 30d) >= 2 && "
        "usage_pct(\"seats\") >= 0.8 && account.company_size >= 10 && "
        "!trial_used(\"private_boards\") && user.role in ['admin', 'owner'] && "
        "days_since(account.signup) > 3 && user.email ends_with '@acme.com' && "
        "usage('seats') > 1 && usage('seats') < 100");
    int hits = 0;
    hits += hr_rule_test(r, &env, &w, NOW_MS); /* warm up */
#ifndef HR_ASAN
    struct mallinfo2 before = mallinfo2();
    nallocs = 0;
    counting = 1;
#endif
    for (int i = 0; i < 10000; i++) hits += hr_rule_test(r, &env, &w, NOW_MS);
#ifndef HR_ASAN
    counting = 0;
    struct mallinfo2 after = mallinfo2();
    assert_int_equal(nallocs, 0);
    assert_int_equal(after.uordblks, before.uordblks);
    /* the counter works: compiling allocates */
    counting = 1;
    hr_rule_free(compile_ok("1 + 1"));
    counting = 0;
    assert_true(nallocs > 0);
#endif
    assert_int_equal(hits, 10001);
    hr_rule_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(precedence_and_operators),
        cmocka_unit_test(result_types),
        cmocka_unit_test(facts_and_examples),
        cmocka_unit_test(user_scope_absent),
        cmocka_unit_test(short_circuit_and_cache),
        cmocka_unit_test(shared_conjuncts),
        cmocka_unit_test(clause_fast_path),
        cmocka_unit_test(env_errors),
        cmocka_unit_test(compile_errors),
        cmocka_unit_test(nesting_limits),
        cmocka_unit_test(fact_listing),
        cmocka_unit_test(explain),
        cmocka_unit_test(eval_does_not_allocate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
