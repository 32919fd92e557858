/* rules.h: the rule language (docs/RULES.md) shared by campaigns (audience,
 * gate) and playbooks (signal, value).
 *
 *   account.plan == "free" && count("Board Created", 30d) >= 2
 *     && !trial_used("private_boards") && user.role in ["admin", "owner"]
 *
 * A rule is compiled once (hr_rule_compile: lexing, parsing, name resolution
 * and type checking, every error with its line:column inside the rule text)
 * into a compact program, then evaluated any number of times, from any
 * number of threads, without allocating (hr_rule_eval). The rule module
 * knows nothing of accounts: what the program needs from the world (an
 * attribute, an event count, a feature's usage) it asks through the facts
 * callback of an hr_rule_env, which entitle/ implements over its state and
 * tests implement over plain arrays. Pure functions (days_since, contains,
 * arithmetic) the evaluator computes itself. */
#ifndef HR_RULES_H
#define HR_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "headroom.h"

typedef struct hr_buf hr_buf;

/* A runtime value. Strings are borrowed (from the program or from the env,
 * valid for the evaluation). Timestamps are numbers: unix seconds. */
typedef enum { HR_RV_NULL, HR_RV_BOOL, HR_RV_NUM, HR_RV_STR } hr_rv_type;
typedef struct hr_rval {
    hr_rv_type type;
    int b;           /* BOOL */
    double n;        /* NUM */
    const char *s;   /* STR: not NUL-terminated in general */
    uint32_t len;
} hr_rval;

/* Facts: everything a rule reads from outside. The ids, argument shapes and
 * result types are listed once in rules.def (X-macro HR_FACT(id, name, ...)). */
typedef enum {
#define HR_FACT(id, name, args, result, doc) HR_FACT_##id,
#include "rules.def"
#undef HR_FACT
    HR_FACT__COUNT
} hr_fact_id;

/* Whose fact: account-level (count: every member's events) or the current
 * user's (user.*, user_count ...). Playbook signals have no user: user
 * facts are null there. */
typedef enum { HR_SCOPE_ACCOUNT, HR_SCOPE_USER } hr_rule_scope;

/* Well-known attributes, resolved at compile time so the env need not
 * compare names; anything else under account./user. is a trait
 * (HR_ATTR_TRAIT, looked up by path). */
typedef enum {
    HR_ATTR_TRAIT,
    HR_ATTR_ID, HR_ATTR_NAME, HR_ATTR_PLAN, HR_ATTR_OWNER, HR_ATTR_INTERVAL,
    HR_ATTR_CREATED_AT, HR_ATTR_RENEWS_AT, HR_ATTR_TRIAL_PLAN, HR_ATTR_TRIAL_ENDS_AT,
    HR_ATTR_ROLE, HR_ATTR_SEAT_TYPE, HR_ATTR_EMAIL,
    HR_ATTR__COUNT
} hr_attr_id;

/* One fact request, built at compile time and handed to the env as is.
 * Strings are NUL-terminated and owned by the program. */
typedef struct hr_fact_call {
    hr_fact_id fact;
    hr_rule_scope scope;
    hr_attr_id attr;      /* ATTR: which one */
    const char *path;     /* ATTR trait: dotted path ("company.size") */
    uint64_t path_hash;   /* hr_rule_hash(path): lets the env skip strcmp */
    const char *event;    /* COUNT, ACTIVE_DAYS, SUM, FIRST_SEEN, LAST_SEEN, GROWTH: "*" = any;
                             interned (intern.h): equal names are equal pointers */
    const char *property; /* SUM: property path under properties. */
    int32_t days;         /* windows, in whole days (7d, 2w; 24h = 1d) */
    int32_t feature;      /* USAGE, LIMIT, USAGE_PCT, HAS_FEATURE, TRIAL_*: index in names->features */
    int32_t meter;        /* METER, GROWTH of a meter: index in names->meters, else -1 */
    int32_t addon;        /* HAS_ADDON: index in names->addons */
} hr_fact_call;

typedef struct hr_rule_env {
    /* Fills *out (NULL when unknown or not applicable, e.g. a user fact with
     * no user). Returns 0; a negative HR_E* aborts the evaluation. Called
     * from the evaluating thread only; must not allocate on hot paths. */
    int (*fact)(void *ctx, const hr_fact_call *call, hr_rval *out);
} hr_rule_env;

/* The names a rule may refer to, from the catalog (borrowed during
 * compile). Unknown features, meters or add-ons are compile errors. */
typedef struct hr_rule_names {
    const char *const *features; int nfeatures;
    const char *const *meters;   int nmeters;
    const char *const *addons;   int naddons;
    const char *const *plans;    int nplans; /* plan literals compared with account.plan are checked */
} hr_rule_names;

typedef enum { HR_RT_ANY, HR_RT_BOOL, HR_RT_NUM, HR_RT_STR, HR_RT_NULL } hr_rule_type;

typedef struct hr_rule hr_rule;

/* Compiles src (len bytes, need not be NUL-terminated). On error returns
 * HR_ECONFIG with err->line/err->column 1-based within src and a message
 * naming the problem ("unknown function 'cnt'", "'==' compares a number
 * with a string", "unknown feature 'sets'"). Caller frees with hr_rule_free. */
int hr_rule_compile(const char *src, size_t len, const hr_rule_names *names, hr_rule **out,
                    hr_err *err);
void hr_rule_free(hr_rule *r);

/* The static type of the whole rule (BOOL for conditions; NUM for playbook
 * `value:` expressions). */
hr_rule_type hr_rule_result_type(const hr_rule *r);

/* Evaluates r. now_ms: the time rules see (days_since, windows). Returns 0,
 * or the env's negative error. No allocation. */
int hr_rule_eval(const hr_rule *r, const hr_rule_env *env, void *ctx, int64_t now_ms,
                 hr_rval *out);
/* Truthiness of the result: false, null, 0 and "" are false. Errors are false. */
int hr_rule_test(const hr_rule *r, const hr_rule_env *env, void *ctx, int64_t now_ms);

/* The facts the rule reads, in source order without duplicates (for
 * incremental evaluation: a playbook re-runs only when one of these can
 * have changed). */
int hr_rule_nfacts(const hr_rule *r);
const hr_fact_call *hr_rule_fact(const hr_rule *r, int i);
/* Evidence: each fact's source text and current value as a JSON object
 * {"count(\"Board Created\", 30d)": 3, "account.plan": "free"} appended to out. */
int hr_rule_explain(const hr_rule *r, const hr_rule_env *env, void *ctx, int64_t now_ms,
                    hr_buf *out);

/* How the rule's answer can change with time alone, with no event and no
 * write: NONE (it cannot), DAILY (day windows slide at UTC midnight),
 * CONTINUOUS (clock functions, renewals, trials, overrides, periods). */
typedef enum { HR_CLOCK_NONE, HR_CLOCK_DAILY, HR_CLOCK_CONTINUOUS } hr_rule_clock;
hr_rule_clock hr_rule_clock_of(const hr_rule *r);

/* Shared conjuncts. Rules that run together against one environment (every
 * playbook's signal for one account) often repeat whole clauses:
 * account.plan != "free", count("API Called", 7d) >= 1000. hr_rule_share_add
 * gives each top-level conjunct of r (the operands of a root &&, else the
 * whole rule) a memo slot, the same slot for the same source text across the
 * share's rules. hr_rule_test_memo then answers like hr_rule_test, running
 * each slot's clause at most once per round: memo holds
 * hr_rule_share_slots() bytes, zeroed by the caller when a round starts (a
 * new account), and only valid while the facts cannot change (one lock
 * hold). A rule belongs to at most one share (its slots live in the rule);
 * the share itself may be freed once its rules are added. NULL memo: no
 * sharing. */
typedef struct hr_rule_share hr_rule_share;
hr_rule_share *hr_rule_share_new(void);
void hr_rule_share_free(hr_rule_share *s);
int hr_rule_share_add(hr_rule_share *s, hr_rule *r); /* 0 or HR_ENOMEM */
int hr_rule_share_slots(const hr_rule_share *s);
int hr_rule_test_memo(const hr_rule *r, const hr_rule_env *env, void *ctx, int64_t now_ms,
                      uint8_t *memo);

/* The hash the compiler stores in hr_fact_call.path_hash (FNV-1a 64). */
uint64_t hr_rule_hash(const char *s, size_t n);

#endif
