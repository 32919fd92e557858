/* compile.c: the checked AST -> a flat program (instructions, constants,
 * fact calls), and the public compile entry point.
 *
 * The program is built in growable scratch arrays, then copied into the
 * rule's own arena so that a compiled rule is a few contiguous blocks and
 * hr_rule_free is one arena release. The maximum stack depth is computed
 * while emitting; eval.c relies on it never exceeding HR_RULE_STACK_MAX. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rules_int.h"

static const struct {
    int pops, pushes;
} op_effect[] = {
#define HR_OP(name, pops, pushes, doc) {pops, pushes},
#include "opcodes.def"
#undef HR_OP
};

typedef struct {
    hr_insn *code;
    int ncode, capcode;
    hr_rval *consts;
    int nconsts, capconsts;
    int depth, max_depth;
    int slot_of[HR_RULE_MAX_FACTS]; /* cache slot + 1 of a fact used twice or more, else 0 */
    int failed;                     /* out of memory, sticky */
} gen;

static int emit(gen *g, int op, uint32_t a, uint32_t b) {
    if (g->ncode == g->capcode) {
        int cap = g->capcode ? g->capcode * 2 : 32;
        hr_insn *c = realloc(g->code, sizeof *c * (size_t)cap);
        if (!c) {
            g->failed = 1;
            return -1;
        }
        g->code = c;
        g->capcode = cap;
    }
    g->code[g->ncode] = (hr_insn){(uint32_t)op, a, b};
    g->depth += op_effect[op].pushes - op_effect[op].pops;
    if (g->depth > g->max_depth) g->max_depth = g->depth;
    return g->ncode++;
}

static uint32_t add_const(gen *g, const hr_rval *v) {
    if (g->nconsts == g->capconsts) {
        int cap = g->capconsts ? g->capconsts * 2 : 16;
        hr_rval *c = realloc(g->consts, sizeof *c * (size_t)cap);
        if (!c) {
            g->failed = 1;
            return 0;
        }
        g->consts = c;
        g->capconsts = cap;
    }
    g->consts[g->nconsts] = *v;
    return (uint32_t)g->nconsts++;
}

static void gen_node(gen *g, const hr_rule_node *n) {
    switch (n->kind) {
    case N_LIT: {
        uint32_t k = add_const(g, &n->val);
        emit(g, HR_OP_CONST, k, 0);
        return;
    }
    case N_FACT:
        if (g->slot_of[n->fact])
            emit(g, HR_OP_FACT_C, (uint32_t)n->fact, (uint32_t)g->slot_of[n->fact] - 1);
        else
            emit(g, HR_OP_FACT, (uint32_t)n->fact, 0);
        return;
    case N_NOT:
        gen_node(g, n->kids[0]);
        emit(g, HR_OP_NOT, 0, 0);
        return;
    case N_NEG:
        gen_node(g, n->kids[0]);
        emit(g, HR_OP_NEG, 0, 0);
        return;
    case N_AND:
    case N_OR: {
        /* a && b && c:  a JFALSE end  b JFALSE end  c TOBOOL  end: */
        int jumps[2] = {HR_OP_JFALSE, HR_OP_JTRUE}, last = -1;
        for (int i = 0; i < n->nkids; i++) {
            gen_node(g, n->kids[i]);
            if (i == n->nkids - 1) break;
            int at = emit(g, jumps[n->kind == N_OR], 0, 0);
            /* chain the jumps through their operand; patched below */
            if (at >= 0) {
                g->code[at].a = last < 0 ? UINT32_MAX : (uint32_t)last;
                last = at;
            }
        }
        /* comparisons and logic already yield booleans; facts may be null */
        const hr_rule_node *tail = n->kids[n->nkids - 1];
        if (tail->type != HR_RT_BOOL || tail->kind == N_FACT || tail->kind == N_LIT)
            emit(g, HR_OP_TOBOOL, 0, 0);
        for (int at = last; at >= 0 && !g->failed;) {
            uint32_t prev = g->code[at].a;
            g->code[at].a = (uint32_t)g->ncode;
            at = prev == UINT32_MAX ? -1 : (int)prev;
        }
        return;
    }
    case N_BIN:
        gen_node(g, n->kids[0]);
        if (n->op == HR_OP_IN || n->op == HR_OP_NOT_IN) {
            const hr_rule_node *l = n->kids[1];
            uint32_t start = (uint32_t)g->nconsts;
            for (int i = 0; i < l->nkids; i++) add_const(g, &l->kids[i]->val);
            emit(g, n->op, start, (uint32_t)l->nkids);
            return;
        }
        gen_node(g, n->kids[1]);
        emit(g, n->op, 0, 0);
        return;
    case N_PURE:
        for (int i = 0; i < n->nkids; i++) gen_node(g, n->kids[i]);
        emit(g, n->op, 0, 0);
        return;
    default: /* unreachable after check */
        g->failed = 1;
        return;
    }
}

int hr_rule_compile(const char *src, size_t len, const hr_rule_names *names, hr_rule **out,
                    hr_err *err) {
    hr_rule_arena scratch = {0};
    hr_rule_facts *facts = NULL;
    hr_rule *r = NULL;
    hr_rule_node *root;
    gen g;
    int rc;

    memset(&g, 0, sizeof g);
    *out = NULL;
    if (!src && len) return hr_err_set(err, HR_EINVAL, "no rule text");
    if (!(r = calloc(1, sizeof *r)) || !(facts = calloc(1, sizeof *facts))) {
        rc = hr_err_set(err, HR_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = hr_rule__parse(src ? src : "", len, &scratch, &root, err))) goto out;
    if ((rc = hr_rule__check(root, src, names, &r->arena, facts, err))) goto out;

    int nslots = 0;
    for (int i = 0; i < facts->n; i++)
        if (facts->uses[i] > 1 && nslots < HR_RULE_CACHE) g.slot_of[i] = ++nslots;
    gen_node(&g, root);
    emit(&g, HR_OP_RET, 0, 0);
    /* each top-level conjunct again as its own program (see hr_rule_share_add) */
    hr_rule_node *const *conj = &root;
    int nconj = 1;
    if (root->kind == N_AND) conj = root->kids, nconj = root->nkids;
    uint32_t *cpc = hr_rule__alloc(&r->arena, sizeof *cpc * (size_t)nconj);
    const char **csrc = hr_rule__alloc(&r->arena, sizeof *csrc * (size_t)nconj);
    int *cslot = hr_rule__alloc(&r->arena, sizeof *cslot * (size_t)nconj);
    if (!cpc || !csrc || !cslot) {
        rc = hr_err_set(err, HR_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < nconj; i++) {
        cpc[i] = (uint32_t)g.ncode;
        cslot[i] = -1;
        if (nconj > 1) {
            gen_node(&g, conj[i]);
            emit(&g, HR_OP_RET, 0, 0);
        } else {
            cpc[i] = 0; /* the whole rule */
        }
        if (!(csrc[i] = hr_rule__strndup(&r->arena, (src ? src : "") + conj[i]->off,
                                         conj[i]->end - conj[i]->off))) {
            rc = hr_err_set(err, HR_ENOMEM, "out of memory");
            goto out;
        }
    }
    r->nconj = nconj, r->conj_pc = cpc, r->conj_src = csrc, r->conj_slot = cslot;
    if (g.failed) {
        rc = hr_err_set(err, HR_ENOMEM, "out of memory");
        goto out;
    }
    if (g.max_depth > HR_RULE_STACK_MAX) {
        rc = hr_rule__err(err, 1, 1, "rule too complex (needs more than %d stack slots)",
                          HR_RULE_STACK_MAX);
        goto out;
    }

    /* copy into the rule's arena */
    hr_insn *code = hr_rule__alloc(&r->arena, sizeof *code * (size_t)g.ncode);
    hr_rval *consts = hr_rule__alloc(&r->arena, sizeof *consts * (size_t)(g.nconsts + 1));
    hr_fact_call *calls = hr_rule__alloc(&r->arena, sizeof *calls * (size_t)(facts->n + 1));
    const char **fsrc = hr_rule__alloc(&r->arena, sizeof *fsrc * (size_t)(facts->n + 1));
    if (!code || !consts || !calls || !fsrc) {
        rc = hr_err_set(err, HR_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(code, g.code, sizeof *code * (size_t)g.ncode);
    for (int i = 0; i < g.nconsts; i++) {
        consts[i] = g.consts[i];
        /* literal strings live in the scratch arena: move them */
        if (consts[i].type == HR_RV_STR &&
            !(consts[i].s = hr_rule__strndup(&r->arena, g.consts[i].s, g.consts[i].len))) {
            rc = hr_err_set(err, HR_ENOMEM, "out of memory");
            goto out;
        }
    }
    memcpy(calls, facts->calls, sizeof *calls * (size_t)facts->n);
    memcpy(fsrc, facts->src, sizeof *fsrc * (size_t)facts->n);
    r->code = code;
    r->ncode = g.ncode;
    r->consts = consts;
    r->nconsts = g.nconsts;
    r->facts = calls;
    r->fact_src = fsrc;
    r->nfacts = facts->n;
    r->max_stack = g.max_depth;
    r->type = root->type == HR_RT__DUR || root->type == HR_RT__LIST ? HR_RT_ANY
                                                                    : (hr_rule_type)root->type;
    *out = r;
    r = NULL;
    rc = 0;
out:
    hr_rule_free(r);
    free(facts);
    free(g.code);
    free(g.consts);
    hr_rule__arena_free(&scratch);
    return rc;
}

void hr_rule_free(hr_rule *r) {
    if (!r) return;
    hr_rule__arena_free(&r->arena);
    free(r);
}

hr_rule_type hr_rule_result_type(const hr_rule *r) { return r->type; }

int hr_rule_nfacts(const hr_rule *r) { return r->nfacts; }

const hr_fact_call *hr_rule_fact(const hr_rule *r, int i) {
    return i >= 0 && i < r->nfacts ? &r->facts[i] : NULL;
}
