/* fuzz_rules.c: libFuzzer target for the rule language: arbitrary bytes are
 * compiled against a catalog's names; what compiles is evaluated, tested and
 * explained against a fake env.
 *
 * Besides "no crash, no leak, no sanitizer report", it checks the module's
 * promises: a failed compile is HR_ECONFIG with a message and a position
 * inside the text, a compiled rule's value has its static type (or is null),
 * explain writes one key per listed fact, and evaluating twice gives the
 * same answer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "rules/rules.h"

static const char *const features[] = {"seats", "boards", "private_boards", "api_calls", "sso"};
static const char *const meters[] = {"api_calls", "storage_gb"};
static const char *const addons[] = {"extra_seats"};
static const char *const plans[] = {"free", "pro", "business"};
static const hr_rule_names names = {features, 5, meters, 2, addons, 1, plans, 3};

static const char *const strs[] = {"free", "", "fintech", "jo@acme.com", "2023-11-10T22:13:20Z",
                                   "\xc3\xa9t\xc3\xa9"};

/* Values of the declared type (or null), varied by what is asked. */
static int fact(void *ctx, const hr_fact_call *c, hr_rval *v) {
    uint64_t h = c->path_hash ^ (uint64_t)c->fact * 31 ^ (uint64_t)c->days * 7 ^
                 (uint64_t)(c->feature + 2) * 131 ^ (uint64_t)c->attr * 17 ^
                 (c->event ? hr_rule_hash(c->event, strlen(c->event)) : 0);
    int pick = (int)(h % 5);
    (void)ctx;
    if (pick == 0) return 0; /* null */
    if (c->fact == HR_FACT_ATTR) {
        int num = c->attr == HR_ATTR_CREATED_AT || c->attr == HR_ATTR_RENEWS_AT ||
                  c->attr == HR_ATTR_TRIAL_ENDS_AT;
        if (c->attr == HR_ATTR_TRAIT && pick == 1) {
            v->type = HR_RV_BOOL;
            v->b = (int)(h >> 8) & 1;
        } else if (num || (c->attr == HR_ATTR_TRAIT && pick == 2)) {
            v->type = HR_RV_NUM;
            v->n = (double)(h >> 40) - 1e6;
        } else {
            const char *s = strs[(h >> 3) % (sizeof strs / sizeof strs[0])];
            v->type = HR_RV_STR;
            v->s = s;
            v->len = (uint32_t)strlen(s);
        }
        return 0;
    }
    if (c->fact == HR_FACT_HAS_FEATURE || c->fact == HR_FACT_HAS_ADDON ||
        c->fact == HR_FACT_TRIAL_USED || c->fact == HR_FACT_TRIAL_ACTIVE) {
        v->type = HR_RV_BOOL;
        v->b = pick & 1;
        return 0;
    }
    if (pick == 4 && c->fact == HR_FACT_METER) return HR_EIO; /* env errors abort cleanly */
    v->type = HR_RV_NUM;
    v->n = (double)(h % 1000) / (pick == 3 ? 7.0 : 1.0);
    return 0;
}

static int same(const hr_rval *a, const hr_rval *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
    case HR_RV_BOOL: return a->b == b->b;
    case HR_RV_NUM: return a->n == b->n;
    case HR_RV_STR: return a->len == b->len && (!a->len || !memcmp(a->s, b->s, a->len));
    default: return 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hr_rule *r = NULL;
    hr_err err;
    memset(&err, 0, sizeof err);
    int rc = hr_rule_compile((const char *)data, size, &names, &r, &err);
    if (rc) {
        if (rc != HR_ECONFIG && rc != HR_ENOMEM) abort();
        if (r || !err.message[0] || err.line < 1 || err.column < 1) abort();
        size_t lines = 1;
        for (size_t i = 0; i < size; i++) lines += data[i] == '\n';
        if ((size_t)err.line > lines || (size_t)err.column > size + 1) abort();
        return 0;
    }
    const hr_rule_env env = {fact};
    hr_rval v1, v2;
    int e1 = hr_rule_eval(r, &env, NULL, 1700000000000, &v1);
    int e2 = hr_rule_eval(r, &env, NULL, 1700000000000, &v2);
    if (e1 != e2 || (e1 && e1 != HR_EIO)) abort();
    if (!e1) {
        if (!same(&v1, &v2)) abort();
        hr_rule_type t = hr_rule_result_type(r);
        int want = t == HR_RT_BOOL ? HR_RV_BOOL
                   : t == HR_RT_NUM ? HR_RV_NUM
                   : t == HR_RT_STR ? HR_RV_STR
                                    : -1;
        if (want >= 0 && v1.type != (hr_rv_type)want && v1.type != HR_RV_NULL) abort();
        if (t == HR_RT_NULL && v1.type != HR_RV_NULL) abort();
    }
    (void)hr_rule_test(r, &env, NULL, 0);
    (void)hr_rule_eval(r, NULL, NULL, 0, &v1);
    int n = hr_rule_nfacts(r);
    for (int i = 0; i < n; i++)
        if (!hr_rule_fact(r, i)) abort();
    if (hr_rule_fact(r, n)) abort();
    hr_buf out;
    hr_buf_init(&out);
    hr_rule_explain(r, &env, NULL, 0, &out);
    if (out.len < 2 || out.data[0] != '{' || out.data[out.len - 1] != '}') abort();
    hr_buf_dispose(&out);
    hr_rule_free(r);
    return 0;
}
