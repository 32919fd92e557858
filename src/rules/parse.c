/* parse.c: tokens -> AST, by precedence climbing.
 *
 * Binding powers, low to high: || (1), && (2), ! (3, prefix), comparisons
 * with in / contains / starts_with / ends_with (4, non-associative), + - (5),
 * * / % (6), unary - (7). Recursion happens only for nesting (parentheses,
 * call arguments, prefix operators), which is capped at HR_RULE_MAX_NEST;
 * left-associative chains are built in a loop but still make the tree
 * taller, so the tree's height is capped too (check.c and compile.c recurse
 * over it). && and || chains are flattened into one n-ary node instead. */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "rules_int.h"

enum { P_OR = 1, P_AND, P_NOT, P_CMP, P_ADD, P_MUL, P_UNARY };

static int nomem(hr_rule_parser *p) { return hr_err_set(p->err, HR_ENOMEM, "out of memory"); }

static int next(hr_rule_parser *p) {
    p->prev_end = p->tok.off + p->tok.len;
    return hr_rule__lex(&p->lx, &p->tok);
}

static int unexpected(hr_rule_parser *p, const char *expected) {
    char found[64];
    hr_rule__tok_describe(&p->lx, &p->tok, found, sizeof found);
    return hr_rule__err(p->err, p->tok.line, p->tok.col, "expected %s, found %s", expected, found);
}

static hr_rule_node *node_at(hr_rule_parser *p, hr_rule_nk kind, const hr_rule_tok *t) {
    hr_rule_node *n = hr_rule__alloc(p->arena, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->line = n->oline = t->line;
    n->col = n->ocol = t->col;
    n->off = t->off;
    n->end = t->off + t->len;
    n->ooff = t->off;
    n->olen = t->len;
    n->height = 1;
    return n;
}

static int set_kids(hr_rule_parser *p, hr_rule_node *n, hr_rule_node **kids, int nkids) {
    n->kids = hr_rule__alloc(p->arena, sizeof *kids * (size_t)(nkids ? nkids : 1));
    if (!n->kids) return nomem(p);
    if (nkids) memcpy(n->kids, kids, sizeof *kids * (size_t)nkids);
    n->nkids = nkids;
    for (int i = 0; i < nkids; i++)
        if (kids[i]->height + 1 > n->height) n->height = kids[i]->height + 1;
    if (n->height > HR_RULE_MAX_HEIGHT)
        return hr_rule__err(p->err, n->oline, n->ocol,
                            "expression too complex (more than %d levels of operators)",
                            HR_RULE_MAX_HEIGHT);
    return 0;
}

/* A growable array of node pointers in the arena (call arguments, lists,
 * &&/|| operands). */
typedef struct {
    hr_rule_node **v;
    int n, cap;
} nodes;

static int push(hr_rule_parser *p, nodes *ns, hr_rule_node *x) {
    if (ns->n == ns->cap) {
        int cap = ns->cap ? ns->cap * 2 : 4;
        hr_rule_node **v = hr_rule__alloc(p->arena, sizeof *v * (size_t)cap);
        if (!v) return nomem(p);
        if (ns->n) memcpy(v, ns->v, sizeof *v * (size_t)ns->n);
        ns->v = v;
        ns->cap = cap;
    }
    ns->v[ns->n++] = x;
    return 0;
}

static int enter(hr_rule_parser *p) {
    if (++p->nest > HR_RULE_MAX_NEST)
        return hr_rule__err(p->err, p->tok.line, p->tok.col,
                            "rule nested too deeply (more than %d levels)", HR_RULE_MAX_NEST);
    return 0;
}

static int expr(hr_rule_parser *p, int minprec, hr_rule_node **out);

/* literal := ["-"] NUMBER | STRING | true | false | null */
static int literal(hr_rule_parser *p, hr_rule_node **out) {
    hr_rule_tok t = p->tok;
    int neg = 0, rc;
    if (t.type == TK_MINUS) {
        neg = 1;
        if ((rc = next(p))) return rc;
        if (p->tok.type != TK_NUM) return unexpected(p, "a number after '-'");
    }
    hr_rule_node *n = node_at(p, N_LIT, &t);
    if (!n) return nomem(p);
    switch (p->tok.type) {
    case TK_NUM: n->val.type = HR_RV_NUM, n->val.n = neg ? -p->tok.num : p->tok.num; break;
    case TK_STR:
        n->val.type = HR_RV_STR, n->val.s = p->tok.str, n->val.len = p->tok.slen;
        break;
    case TK_TRUE: case TK_FALSE: n->val.type = HR_RV_BOOL, n->val.b = p->tok.type == TK_TRUE; break;
    case TK_NULL: n->val.type = HR_RV_NULL; break;
    default: return -1; /* the caller checked */
    }
    n->end = p->tok.off + p->tok.len;
    *out = n;
    return next(p);
}

static int is_literal_start(hr_rule_tk t) {
    return t == TK_NUM || t == TK_STR || t == TK_TRUE || t == TK_FALSE || t == TK_NULL ||
           t == TK_MINUS;
}

/* list := "[" [ literal { "," literal } [","] ] "]" */
static int list(hr_rule_parser *p, hr_rule_node **out) {
    hr_rule_node *n = node_at(p, N_LIST, &p->tok);
    nodes items = {0};
    int rc;
    if (!n) return nomem(p);
    if ((rc = next(p))) return rc;
    while (p->tok.type != TK_RBRACKET) {
        hr_rule_node *x;
        if (!is_literal_start(p->tok.type))
            return unexpected(p, items.n ? "a literal (number, string, true, false, null) or ']'"
                                         : "a literal (number, string, true, false, null)");
        if ((rc = literal(p, &x)) || (rc = push(p, &items, x))) return rc;
        if (p->tok.type == TK_COMMA) {
            if ((rc = next(p))) return rc;
        } else if (p->tok.type != TK_RBRACKET) {
            return unexpected(p, "',' or ']' in the list");
        }
    }
    n->end = p->tok.off + p->tok.len;
    if ((rc = set_kids(p, n, items.v, items.n))) return rc;
    *out = n;
    return next(p);
}

/* call := NAME "(" [ expr { "," expr } ] ")"   (the name is already read) */
static int call(hr_rule_parser *p, hr_rule_node *n) {
    nodes args = {0};
    int rc, open_line = p->tok.line, open_col = p->tok.col;
    if ((rc = enter(p)) || (rc = next(p))) return rc;
    while (p->tok.type != TK_RPAREN) {
        hr_rule_node *x;
        if ((rc = expr(p, 0, &x)) || (rc = push(p, &args, x))) return rc;
        if (p->tok.type == TK_COMMA) {
            if ((rc = next(p))) return rc;
            if (p->tok.type == TK_RPAREN) return unexpected(p, "an argument after ','");
        } else if (p->tok.type != TK_RPAREN) {
            char what[96];
            snprintf(what, sizeof what, "',' or ')' to close '%s(' at %d:%d", n->name, open_line,
                     open_col);
            return unexpected(p, what);
        }
    }
    p->nest--;
    n->kind = N_CALL;
    n->end = p->tok.off + p->tok.len;
    if ((rc = set_kids(p, n, args.v, args.n))) return rc;
    return next(p);
}

/* path := NAME { "." WORD }   (the name is already read) */
static int path(hr_rule_parser *p, hr_rule_node *n) {
    char buf[512];
    size_t len = 0;
    int rc;
    n->kind = N_PATH;
    while (p->tok.type == TK_DOT) {
        if ((rc = next(p))) return rc;
        if (!hr_rule__tk_is_word(p->tok.type)) return unexpected(p, "a field name after '.'");
        if (!len) n->pline = p->tok.line, n->pcol = p->tok.col;
        if (len + p->tok.len + 1 >= sizeof buf)
            return hr_rule__err(p->err, p->tok.line, p->tok.col, "field path too long");
        if (len) buf[len++] = '.';
        memcpy(buf + len, p->lx.src + p->tok.off, p->tok.len);
        len += p->tok.len;
        n->end = p->tok.off + p->tok.len;
        if ((rc = next(p))) return rc;
    }
    if (len && !(n->path = hr_rule__strndup(p->arena, buf, len))) return nomem(p);
    return 0;
}

static int primary(hr_rule_parser *p, hr_rule_node **out) {
    int rc;
    hr_rule_tok t = p->tok;
    switch (t.type) {
    case TK_NUM: case TK_STR: case TK_TRUE: case TK_FALSE: case TK_NULL:
        return literal(p, out);
    case TK_DUR: {
        hr_rule_node *n = node_at(p, N_DUR, &t);
        if (!n) return nomem(p);
        n->days = t.days;
        *out = n;
        return next(p);
    }
    case TK_LBRACKET:
        return hr_rule__err(p->err, t.line, t.col,
                            "a list is only allowed after 'in' (user.role in [\"admin\", "
                            "\"owner\"])");
    case TK_LPAREN: {
        hr_rule_node *inner;
        if ((rc = enter(p)) || (rc = next(p)) || (rc = expr(p, 0, &inner))) return rc;
        if (p->tok.type != TK_RPAREN) {
            char what[64];
            snprintf(what, sizeof what, "')' to close '(' at %d:%d", t.line, t.col);
            return unexpected(p, what);
        }
        p->nest--;
        /* the parentheses belong to the node's source text */
        inner->off = t.off;
        inner->line = t.line, inner->col = t.col;
        inner->end = p->tok.off + p->tok.len;
        *out = inner;
        return next(p);
    }
    case TK_IDENT: {
        hr_rule_node *n = node_at(p, N_PATH, &t);
        if (!n || !(n->name = hr_rule__strndup(p->arena, p->lx.src + t.off, t.len)))
            return nomem(p);
        if ((rc = next(p))) return rc;
        *out = n;
        return p->tok.type == TK_LPAREN ? call(p, n) : path(p, n);
    }
    default: return unexpected(p, "an expression");
    }
}

static int infix_prec(hr_rule_tk t) {
    switch (t) {
    case TK_OROR: case TK_OR: return P_OR;
    case TK_ANDAND: case TK_AND: return P_AND;
    case TK_EQ: case TK_NE: case TK_LT: case TK_LE: case TK_GT: case TK_GE: case TK_IN:
    case TK_NOT: case TK_CONTAINS: case TK_STARTS_WITH: case TK_ENDS_WITH:
        return P_CMP;
    case TK_PLUS: case TK_MINUS: return P_ADD;
    case TK_STAR: case TK_SLASH: case TK_PERCENT: return P_MUL;
    default: return 0;
    }
}

static int binop(hr_rule_tk t) {
    switch (t) {
    case TK_EQ: return HR_OP_EQ;
    case TK_NE: return HR_OP_NE;
    case TK_LT: return HR_OP_LT;
    case TK_LE: return HR_OP_LE;
    case TK_GT: return HR_OP_GT;
    case TK_GE: return HR_OP_GE;
    case TK_IN: return HR_OP_IN;
    case TK_CONTAINS: return HR_OP_CONTAINS;
    case TK_STARTS_WITH: return HR_OP_STARTS_WITH;
    case TK_ENDS_WITH: return HR_OP_ENDS_WITH;
    case TK_PLUS: return HR_OP_ADD;
    case TK_MINUS: return HR_OP_SUB;
    case TK_STAR: return HR_OP_MUL;
    case TK_SLASH: return HR_OP_DIV;
    default: return HR_OP_MOD;
    }
}

/* The operand of a prefix operator: '!' / 'not' take a comparison
 * (!a == b is !(a == b)), '-' takes a unary. */
static int prefix(hr_rule_parser *p, hr_rule_node **out) {
    hr_rule_tok t = p->tok;
    hr_rule_node *x, *n;
    int rc, isnot = t.type == TK_BANG || t.type == TK_NOT;
    if ((rc = enter(p)) || (rc = next(p)) || (rc = expr(p, isnot ? P_CMP : P_UNARY, &x)))
        return rc;
    p->nest--;
    if (!isnot && x->kind == N_LIT && x->val.type == HR_RV_NUM) {
        /* fold -5 so lists and constants see a plain number */
        x->val.n = -x->val.n;
        x->off = t.off, x->line = t.line, x->col = t.col;
        *out = x;
        return 0;
    }
    if (!(n = node_at(p, isnot ? N_NOT : N_NEG, &t))) return nomem(p);
    n->end = x->end;
    *out = n;
    return set_kids(p, n, &x, 1);
}

static int expr(hr_rule_parser *p, int minprec, hr_rule_node **out) {
    hr_rule_node *left;
    int rc, compared = 0;
    hr_rule_tk t = p->tok.type;
    rc = t == TK_BANG || t == TK_NOT || t == TK_MINUS ? prefix(p, &left) : primary(p, &left);
    if (rc) return rc;
    for (;;) {
        hr_rule_tok op = p->tok;
        int prec = infix_prec(op.type);
        if (!prec || prec < minprec) break;
        hr_rule_node *right, *n;
        if (prec == P_CMP) {
            if (compared)
                return hr_rule__err(p->err, op.line, op.col,
                                    "comparisons do not chain: use && or parentheses before "
                                    "'%.*s'", (int)op.len, p->lx.src + op.off);
            compared = 1;
            int negate = op.type == TK_NOT;
            if ((rc = next(p))) return rc;
            if (negate && p->tok.type != TK_IN) return unexpected(p, "'in' after 'not'");
            if (negate && (rc = next(p))) return rc;
            if (negate || op.type == TK_IN) {
                if (p->tok.type != TK_LBRACKET)
                    return unexpected(p, "a list after 'in', like [\"admin\", \"owner\"]");
                rc = list(p, &right);
            } else {
                rc = expr(p, P_ADD, &right);
            }
            if (rc) return rc;
            if (!(n = node_at(p, N_BIN, &op))) return nomem(p);
            n->op = negate ? HR_OP_NOT_IN : binop(op.type);
        } else if (prec == P_AND || prec == P_OR) {
            hr_rule_nk kind = prec == P_AND ? N_AND : N_OR;
            if ((rc = next(p)) || (rc = expr(p, prec + 1, &right))) return rc;
            if (left->kind == kind && left->end == left->kids[left->nkids - 1]->end) {
                /* extend the chain a && b && c (not a parenthesised (a && b)) */
                nodes ns = {left->kids, left->nkids, left->nkids};
                if ((rc = push(p, &ns, right))) return rc;
                left->kids = ns.v;
                left->nkids = ns.n;
                left->end = right->end;
                if (right->height + 1 > left->height) left->height = right->height + 1;
                if (left->height > HR_RULE_MAX_HEIGHT)
                    return hr_rule__err(p->err, op.line, op.col,
                                        "expression too complex (more than %d levels of "
                                        "operators)", HR_RULE_MAX_HEIGHT);
                continue;
            }
            if (!(n = node_at(p, kind, &op))) return nomem(p);
        } else {
            if ((rc = next(p)) || (rc = expr(p, prec + 1, &right))) return rc;
            if (!(n = node_at(p, N_BIN, &op))) return nomem(p);
            n->op = binop(op.type);
        }
        hr_rule_node *kids[2] = {left, right};
        n->line = left->line, n->col = left->col, n->off = left->off, n->end = right->end;
        if ((rc = set_kids(p, n, kids, 2))) return rc;
        left = n;
    }
    *out = left;
    return 0;
}

int hr_rule__parse(const char *src, size_t len, hr_rule_arena *arena, hr_rule_node **root,
                   hr_err *err) {
    hr_rule_parser p;
    memset(&p, 0, sizeof p);
    p.arena = arena;
    p.err = err;
    hr_rule__lex_init(&p.lx, src, len, arena, err);
    int rc = hr_rule__lex(&p.lx, &p.tok);
    if (rc) return rc;
    if (p.tok.type == TK_EOF) return hr_rule__err(err, 1, 1, "empty rule");
    if ((rc = expr(&p, 0, root))) return rc;
    if (p.tok.type != TK_EOF) return unexpected(&p, "an operator or the end of the rule");
    return 0;
}
