/* share.c: conjuncts shared across rules (rules.h hr_rule_share_*).
 *
 * The playbooks' signals for one account are evaluated together, and they
 * repeat clauses: a plan test, a count over a window. Each distinct
 * conjunct (by its source text) gets one memo slot, so a round evaluates it
 * once whatever the number of rules that name it. The slots are stored in
 * the rules; the share is only the text -> slot table used while adding. A
 * catalog has at most a few hundred conjuncts, so the table is a list. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rules_int.h"

struct hr_rule_share {
    const char **src; /* borrowed from the rules' arenas */
    int n, cap;
};

hr_rule_share *hr_rule_share_new(void) { return calloc(1, sizeof(hr_rule_share)); }

void hr_rule_share_free(hr_rule_share *s) {
    if (!s) return;
    free(s->src);
    free(s);
}

int hr_rule_share_slots(const hr_rule_share *s) { return s ? s->n : 0; }

static int slot_of(hr_rule_share *s, const char *src) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->src[i], src)) return i;
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 32;
        const char **p = realloc(s->src, sizeof *p * (size_t)cap);
        if (!p) return -1;
        s->src = p, s->cap = cap;
    }
    s->src[s->n] = src;
    return s->n++;
}

int hr_rule_share_add(hr_rule_share *s, hr_rule *r) {
    for (int i = 0; r && i < r->nconj; i++) {
        int k = slot_of(s, r->conj_src[i]);
        if (k < 0) return HR_ENOMEM;
        r->conj_slot[i] = k;
    }
    return 0;
}

/* memo[slot]: 0 not yet run this round, 1 false, 2 true */
int hr_rule_test_memo(const hr_rule *r, const hr_rule_env *env, void *ctx, int64_t now_ms,
                      uint8_t *memo) {
    if (!memo) return hr_rule_test(r, env, ctx, now_ms);
    for (int i = 0; i < r->nconj; i++) {
        int k = r->conj_slot[i];
        uint8_t m = k >= 0 ? memo[k] : 0;
        if (!m) {
            m = hr_rule__test_at(r, r->conj_pc[i], env, ctx, now_ms) ? 2 : 1;
            if (k >= 0) memo[k] = m;
        }
        if (m == 1) return 0;
    }
    return 1;
}
