/* check.c: name resolution and static types.
 *
 * Every name is settled here, once: account.x / user.x become ATTR facts
 * (well-known fields to an hr_attr_id, anything else a trait with its path
 * hash), calls become facts (rules.def) or pure functions, feature, add-on,
 * meter and plan names become catalog indexes or errors. Types are checked
 * only where both sides are known: a trait (ANY) is compared with anything,
 * and its run-time type decides (mismatches are simply false or null). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "intern.h"
#include "rules_int.h"

typedef struct {
    const char *src;
    const hr_rule_names *names;
    hr_rule_arena *keep;
    hr_rule_facts *facts;
    hr_err *err;
} checker;

static const struct {
    const char *name, *args;
    hr_rule_type result;
} fact_defs[] = {
#define HR_FACT(id, name, args, result, doc) {name, args, result},
#include "rules.def"
#undef HR_FACT
};

/* Pure functions the evaluator computes. arg: 'n' number, 's' string,
 * 't' timestamp (number of unix seconds or an RFC 3339 string). */
static const struct {
    const char *name;
    int op;
    const char *args;
} pure_defs[] = {
    {"days_since", HR_OP_DAYS_SINCE, "t"}, {"days_until", HR_OP_DAYS_UNTIL, "t"},
    {"now", HR_OP_NOW, ""},                {"min", HR_OP_MIN, "nn"},
    {"max", HR_OP_MAX, "nn"},              {"abs", HR_OP_ABS, "n"},
    {"len", HR_OP_LEN, "s"},
};

static const struct {
    const char *name;
    hr_attr_id id;
    hr_rule_type type;
} account_attrs[] = {
    {"id", HR_ATTR_ID, HR_RT_STR},
    {"name", HR_ATTR_NAME, HR_RT_STR},
    {"plan", HR_ATTR_PLAN, HR_RT_STR},
    {"owner", HR_ATTR_OWNER, HR_RT_STR},
    {"interval", HR_ATTR_INTERVAL, HR_RT_STR},
    {"created_at", HR_ATTR_CREATED_AT, HR_RT_NUM},
    {"renews_at", HR_ATTR_RENEWS_AT, HR_RT_NUM},
    {"trial_plan", HR_ATTR_TRIAL_PLAN, HR_RT_STR},
    {"trial_ends_at", HR_ATTR_TRIAL_ENDS_AT, HR_RT_NUM},
}, user_attrs[] = {
    {"id", HR_ATTR_ID, HR_RT_STR},
    {"role", HR_ATTR_ROLE, HR_RT_STR},
    {"seat_type", HR_ATTR_SEAT_TYPE, HR_RT_STR},
    {"email", HR_ATTR_EMAIL, HR_RT_STR},
    {"created_at", HR_ATTR_CREATED_AT, HR_RT_NUM},
};

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int nomem(checker *c) { return hr_err_set(c->err, HR_ENOMEM, "out of memory"); }

/* ---- messages ---------------------------------------------------------------- */

static const char *type_name(int t) {
    switch (t) {
    case HR_RT_BOOL: return "a boolean";
    case HR_RT_NUM: return "a number";
    case HR_RT_STR: return "a string";
    case HR_RT_NULL: return "null";
    case HR_RT__DUR: return "a duration";
    case HR_RT__LIST: return "a list";
    default: return "a value";
    }
}

static const char *op_name(const hr_rule_node *n) {
    switch (n->kind) {
    case N_NOT: return "!";
    case N_NEG: return "-";
    case N_AND: return "&&";
    case N_OR: return "||";
    default: break;
    }
    switch (n->op) {
    case HR_OP_ADD: return "+";
    case HR_OP_SUB: return "-";
    case HR_OP_MUL: return "*";
    case HR_OP_DIV: return "/";
    case HR_OP_MOD: return "%";
    case HR_OP_EQ: return "==";
    case HR_OP_NE: return "!=";
    case HR_OP_LT: return "<";
    case HR_OP_LE: return "<=";
    case HR_OP_GT: return ">";
    case HR_OP_GE: return ">=";
    case HR_OP_IN: return "in";
    case HR_OP_NOT_IN: return "not in";
    case HR_OP_CONTAINS: return "contains";
    case HR_OP_STARTS_WITH: return "starts_with";
    default: return "ends_with";
    }
}

static int at(checker *c, const hr_rule_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int at(checker *c, const hr_rule_node *n, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return hr_rule__err(c->err, n->line, n->col, "%s", msg);
}

/* Edit distance, for "did you mean" (short names only). */
static int distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 31 || lb > 31) return 99;
    int row[32];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

typedef struct {
    const char *best;
    int d;
} suggestion;

/* An abbreviation: every letter of word, in order, in cand ("cnt", "count"). */
static int abbreviates(const char *word, const char *cand) {
    if (strlen(word) < 3) return 0;
    for (; *cand && *word; cand++)
        if (*cand == *word) word++;
    return !*word;
}

static void consider(suggestion *s, const char *word, const char *cand) {
    int d = distance(word, cand), limit = strlen(word) <= 4 ? 1 : 2;
    if ((d <= limit || abbreviates(word, cand)) && (!s->best || d < s->d))
        s->best = cand, s->d = d;
}

/* " (did you mean 'x'?)" or "" into buf. */
static const char *hint(const suggestion *s, char *buf, size_t n) {
    if (!s->best) return "";
    snprintf(buf, n, " (did you mean '%s'?)", s->best);
    return buf;
}

static int unknown_in(checker *c, const hr_rule_node *n, const char *what, const char *word,
                      const char *const *list, int nlist) {
    suggestion s = {0};
    char h[96];
    for (int i = 0; i < nlist; i++) consider(&s, word, list[i]);
    return hr_rule__err(c->err, n->line, n->col, "unknown %s '%s'%s", what, word,
                        hint(&s, h, sizeof h));
}

/* ---- facts ------------------------------------------------------------------- */

static int streq(const char *a, const char *b) {
    return a == b || (a && b && !strcmp(a, b));
}

static int same_call(const hr_fact_call *a, const hr_fact_call *b) {
    return a->fact == b->fact && a->scope == b->scope && a->attr == b->attr &&
           a->days == b->days && a->feature == b->feature && a->meter == b->meter &&
           a->addon == b->addon && streq(a->path, b->path) && streq(a->event, b->event) &&
           streq(a->property, b->property);
}

/* The source text of a call for explain: as written, with whitespace runs
 * and comments folded to one space (string literals kept verbatim). */
static char *source_text(checker *c, size_t off, size_t end) {
    char *out = hr_rule__alloc(c->keep, end - off + 1);
    size_t n = 0;
    if (!out) return NULL;
    for (size_t i = off; i < end; i++) {
        char ch = c->src[i];
        if (ch == '"' || ch == '\'') {
            size_t j = i + 1;
            while (j < end && c->src[j] != ch) j += c->src[j] == '\\' ? 2 : 1;
            if (j >= end) j = end - 1;
            memcpy(out + n, c->src + i, j - i + 1);
            n += j - i + 1;
            i = j;
        } else if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' ||
                   (ch == '/' && i + 1 < end && c->src[i + 1] == '/')) {
            while (i < end) {
                if (c->src[i] == '/' && i + 1 < end && c->src[i + 1] == '/')
                    while (i < end && c->src[i] != '\n') i++;
                else if (c->src[i] == ' ' || c->src[i] == '\t' || c->src[i] == '\n' ||
                         c->src[i] == '\r')
                    i++;
                else
                    break;
            }
            i--;
            /* no space right after '(' or before ')' ',' */
            char after = i + 1 < end ? c->src[i + 1] : ')';
            if (n && out[n - 1] != '(' && after != ')' && after != ',') out[n++] = ' ';
        } else {
            out[n++] = ch;
        }
    }
    out[n] = 0;
    return out;
}

/* Records call (deduplicated) and turns n into an N_FACT. */
static int add_fact(checker *c, hr_rule_node *n, const hr_fact_call *call, const char *text,
                    hr_rule_type type) {
    hr_rule_facts *f = c->facts;
    int i;
    for (i = 0; i < f->n; i++)
        if (same_call(&f->calls[i], call)) break;
    if (i == f->n) {
        if (f->n == HR_RULE_MAX_FACTS)
            return at(c, n, "too many facts in one rule (more than %d)", HR_RULE_MAX_FACTS);
        f->calls[i] = *call;
        f->src[i] = text;
        f->n++;
    }
    f->uses[i]++;
    n->kind = N_FACT;
    n->fact = i;
    n->type = type;
    return 0;
}

static void call_init(hr_fact_call *call, hr_fact_id id, hr_rule_scope scope) {
    memset(call, 0, sizeof *call);
    call->fact = id;
    call->scope = scope;
    call->attr = HR_ATTR_TRAIT;
    call->feature = call->meter = call->addon = -1;
}

static int resolve_path(checker *c, hr_rule_node *n) {
    int is_account = !strcmp(n->name, "account"), is_user = !strcmp(n->name, "user");
    if (!is_account && !is_user) {
        static const char *const roots[] = {"account", "user"};
        suggestion s = {0};
        char h[96];
        for (int i = 0; i < 2; i++) consider(&s, n->name, roots[i]);
        for (int i = 0; i < NELEM(fact_defs); i++)
            if (!strcmp(n->name, fact_defs[i].name) && !n->path)
                return at(c, n, "'%s' is a function: write %s(...)", n->name, n->name);
        for (int i = 0; i < NELEM(pure_defs); i++)
            if (!strcmp(n->name, pure_defs[i].name) && !n->path)
                return at(c, n, "'%s' is a function: write %s(...)", n->name, n->name);
        return at(c, n, "unknown name '%s'%s", n->name, hint(&s, h, sizeof h));
    }
    if (!n->path)
        return at(c, n, "'%s' needs a field, like %s", n->name,
                  is_account ? "account.plan" : "user.role");
    hr_fact_call call;
    call_init(&call, HR_FACT_ATTR, is_account ? HR_SCOPE_ACCOUNT : HR_SCOPE_USER);
    hr_rule_type type = HR_RT_ANY;
    const char *dot = strchr(n->path, '.');
    size_t first = dot ? (size_t)(dot - n->path) : strlen(n->path);
    int nattrs = is_account ? NELEM(account_attrs) : NELEM(user_attrs);
    for (int i = 0; i < nattrs; i++) {
        const char *name = is_account ? account_attrs[i].name : user_attrs[i].name;
        if (strlen(name) != first || memcmp(name, n->path, first)) continue;
        if (dot) {
            char full[64];
            snprintf(full, sizeof full, "%s.%s", n->name, name);
            return hr_rule__err(c->err, n->pline, n->pcol + (int)first + 1,
                                "%s is a %s and has no fields", full,
                                (is_account ? account_attrs[i].type : user_attrs[i].type) ==
                                        HR_RT_NUM
                                    ? "timestamp"
                                    : "string");
        }
        call.attr = is_account ? account_attrs[i].id : user_attrs[i].id;
        type = is_account ? account_attrs[i].type : user_attrs[i].type;
    }
    if (call.attr == HR_ATTR_TRAIT) {
        if (!(call.path = hr_rule__strndup(c->keep, n->path, strlen(n->path)))) return nomem(c);
        call.path_hash = hr_rule_hash(call.path, strlen(call.path));
    }
    size_t tl = strlen(n->name) + 1 + strlen(n->path);
    char *text = hr_rule__alloc(c->keep, tl + 1);
    if (!text) return nomem(c);
    snprintf(text, tl + 1, "%s.%s", n->name, n->path);
    return add_fact(c, n, &call, text, type);
}

static int check(checker *c, hr_rule_node *n);

/* A checked operand that is a value (not a duration or a list). */
static int value(checker *c, hr_rule_node *n) {
    int rc = check(c, n);
    if (rc) return rc;
    if (n->type == HR_RT__DUR)
        return at(c, n, "a duration like 30d is only allowed as a window argument "
                        "(count(\"Login\", 30d))");
    return 0;
}

static int arg_error(checker *c, const hr_rule_node *call, const hr_rule_node *arg, int i,
                     const char *want) {
    return hr_rule__err(c->err, arg->line, arg->col, "%s() argument %d must be %s, got %s",
                        call->name, i + 1, want, type_name(arg->type));
}

static int is_str_lit(const hr_rule_node *n) {
    return n->kind == N_LIT && n->val.type == HR_RV_STR;
}

static int index_of(const char *const *list, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (list[i] && !strcmp(list[i], s)) return i;
    return -1;
}

static int resolve_fact_call(checker *c, hr_rule_node *n, int id, hr_rule_scope scope) {
    const char *args = fact_defs[id].args;
    int nargs = (int)strlen(args), required = 0;
    for (int i = 0; i < nargs; i++) required += args[i] != 'W';
    if (n->nkids < required || n->nkids > nargs) {
        char want[48];
        if (required == nargs)
            snprintf(want, sizeof want, "%d argument%s", nargs, nargs == 1 ? "" : "s");
        else
            snprintf(want, sizeof want, "%d or %d arguments", required, nargs);
        return hr_rule__err(c->err, n->oline, n->ocol, "%s() takes %s, got %d", n->name, want,
                            n->nkids);
    }
    const hr_rule_names *names = c->names;
    hr_fact_call call;
    call_init(&call, (hr_fact_id)id, scope);
    if (strchr(args, 'W')) call.days = HR_RULE_DEFAULT_DAYS;
    for (int i = 0; i < n->nkids; i++) {
        hr_rule_node *a = n->kids[i];
        char l = args[i];
        /* has_feature(sso): a bare word where a quoted name belongs */
        if (a->kind == N_PATH && !a->path && l != 'w' && l != 'W')
            return hr_rule__err(c->err, a->line, a->col,
                                "%s() argument %d must be in quotes: %s(\"%s\")", n->name, i + 1,
                                n->name, a->name);
        int rc = check(c, a);
        if (rc) return rc;
        if (l == 'w' || l == 'W') {
            if (a->kind != N_DUR) return arg_error(c, n, a, i, "a window like 30d, 2w or 24h");
            call.days = a->days;
            continue;
        }
        if (!is_str_lit(a)) {
            const char *want = l == 'e'   ? "an event name in quotes (\"*\" for any event)"
                               : l == 'f' ? "a feature key in quotes"
                               : l == 'a' ? "an add-on key in quotes"
                               : l == 'p' ? "a property name in quotes"
                                          : "a meter key or event name in quotes";
            return arg_error(c, n, a, i, want);
        }
        const char *s = a->val.s;
        if (!*s)
            return hr_rule__err(c->err, a->line, a->col, "%s() argument %d is empty", n->name,
                                i + 1);
        switch (l) {
        case 'e':
            /* interned: the engine's history keys are, so lookups compare pointers */
            if (!(call.event = hr_rule__strndup(c->keep, s, a->val.len)) ||
                !(call.event = hr_intern(call.event)))
                return nomem(c);
            break;
        case 'p':
            /* "properties.revenue" and "revenue" name the same property */
            if (!strncmp(s, "properties.", 11) && s[11]) s += 11;
            if (!(call.property = hr_rule__strndup(c->keep, s, strlen(s)))) return nomem(c);
            break;
        case 'f':
            call.feature = names ? index_of(names->features, names->nfeatures, s) : -1;
            if (call.feature < 0)
                return unknown_in(c, a, "feature", s, names ? names->features : NULL,
                                  names ? names->nfeatures : 0);
            break;
        case 'a':
            call.addon = names ? index_of(names->addons, names->naddons, s) : -1;
            if (call.addon < 0)
                return unknown_in(c, a, "add-on", s, names ? names->addons : NULL,
                                  names ? names->naddons : 0);
            break;
        case 'm':
            call.meter = names ? index_of(names->meters, names->nmeters, s) : -1;
            if (call.meter < 0 && id == HR_FACT_METER)
                return unknown_in(c, a, "meter", s, names ? names->meters : NULL,
                                  names ? names->nmeters : 0);
            /* growth() of something that is not a meter: an event's count */
            if (id == HR_FACT_GROWTH &&
                (!(call.event = hr_rule__strndup(c->keep, s, a->val.len)) ||
                 !(call.event = hr_intern(call.event))))
                return nomem(c);
            break;
        }
    }
    char *text = source_text(c, n->off, n->end);
    if (!text) return nomem(c);
    return add_fact(c, n, &call, text, fact_defs[id].result);
}

static int resolve_call(checker *c, hr_rule_node *n) {
    for (int i = 0; i < NELEM(pure_defs); i++) {
        if (strcmp(n->name, pure_defs[i].name)) continue;
        const char *args = pure_defs[i].args;
        int nargs = (int)strlen(args);
        if (n->nkids != nargs)
            return hr_rule__err(c->err, n->oline, n->ocol, "%s() takes %d argument%s, got %d",
                                n->name, nargs, nargs == 1 ? "" : "s", n->nkids);
        for (int k = 0; k < nargs; k++) {
            hr_rule_node *a = n->kids[k];
            int rc = value(c, a), t = a->type;
            if (rc) return rc;
            if (t == HR_RT_ANY || t == HR_RT_NULL) continue;
            if (args[k] == 'n' && t != HR_RT_NUM) return arg_error(c, n, a, k, "a number");
            if (args[k] == 's' && t != HR_RT_STR) return arg_error(c, n, a, k, "a string");
            if (args[k] == 't' && t != HR_RT_NUM && t != HR_RT_STR)
                return arg_error(c, n, a, k,
                                 "a timestamp (unix seconds or an RFC 3339 string)");
        }
        n->kind = N_PURE;
        n->op = pure_defs[i].op;
        n->type = HR_RT_NUM;
        return 0;
    }
    for (int i = 1; i < NELEM(fact_defs); i++)
        if (!strcmp(n->name, fact_defs[i].name))
            return resolve_fact_call(c, n, i, HR_SCOPE_ACCOUNT);
    /* user_count(...) and friends: the same fact about the current user */
    if (!strncmp(n->name, "user_", 5)) {
        static const hr_fact_id scoped[] = {HR_FACT_COUNT, HR_FACT_ACTIVE_DAYS, HR_FACT_SUM,
                                            HR_FACT_FIRST_SEEN, HR_FACT_LAST_SEEN};
        for (int i = 0; i < NELEM(scoped); i++)
            if (!strcmp(n->name + 5, fact_defs[scoped[i]].name))
                return resolve_fact_call(c, n, scoped[i], HR_SCOPE_USER);
    }
    suggestion s = {0};
    char h[96];
    for (int i = 0; i < NELEM(pure_defs); i++) consider(&s, n->name, pure_defs[i].name);
    for (int i = 1; i < NELEM(fact_defs); i++) consider(&s, n->name, fact_defs[i].name);
    static const char *const user_names[] = {"user_count", "user_active_days", "user_sum",
                                             "user_first_seen", "user_last_seen"};
    for (int i = 0; i < NELEM(user_names); i++) consider(&s, n->name, user_names[i]);
    return hr_rule__err(c->err, n->oline, n->ocol, "unknown function '%s'%s", n->name,
                        hint(&s, h, sizeof h));
}

/* account.plan or account.trial_plan compared with a string literal: the
 * literal must name a plan of the catalog. */
static int is_plan_attr(const checker *c, const hr_rule_node *n) {
    if (n->kind != N_FACT) return 0;
    const hr_fact_call *f = &c->facts->calls[n->fact];
    return f->fact == HR_FACT_ATTR && f->scope == HR_SCOPE_ACCOUNT &&
           (f->attr == HR_ATTR_PLAN || f->attr == HR_ATTR_TRIAL_PLAN);
}

static int check_plan(checker *c, const hr_rule_node *lit) {
    const hr_rule_names *nm = c->names;
    if (!nm || nm->nplans <= 0 || !is_str_lit(lit)) return 0;
    if (index_of(nm->plans, nm->nplans, lit->val.s) >= 0) return 0;
    return unknown_in(c, lit, "plan", lit->val.s, nm->plans, nm->nplans);
}

static int concrete(int t) { return t == HR_RT_BOOL || t == HR_RT_NUM || t == HR_RT_STR; }

static int check_bin(checker *c, hr_rule_node *n) {
    hr_rule_node *a = n->kids[0], *b = n->kids[1];
    const char *op = op_name(n);
    int rc;
    if ((rc = value(c, a))) return rc;
    if (n->op == HR_OP_IN || n->op == HR_OP_NOT_IN) {
        for (int i = 0; i < b->nkids; i++) {
            hr_rule_node *e = b->kids[i];
            int t = e->val.type == HR_RV_NUM ? HR_RT_NUM
                    : e->val.type == HR_RV_STR ? HR_RT_STR
                    : e->val.type == HR_RV_BOOL ? HR_RT_BOOL
                                                : HR_RT_NULL;
            e->type = t;
            if (concrete(a->type) && concrete(t) && t != a->type)
                return hr_rule__err(c->err, e->line, e->col, "'%s' compares %s with %s", op,
                                    type_name(a->type), type_name(t));
            if (is_plan_attr(c, a) && (rc = check_plan(c, e))) return rc;
        }
        b->type = HR_RT__LIST;
        n->type = HR_RT_BOOL;
        return 0;
    }
    if ((rc = value(c, b))) return rc;
    int ta = a->type, tb = b->type;
    switch (n->op) {
    case HR_OP_ADD: case HR_OP_SUB: case HR_OP_MUL: case HR_OP_DIV: case HR_OP_MOD:
        if (ta != HR_RT_NUM && ta != HR_RT_ANY)
            return at(c, a, "'%s' needs numbers, got %s", op, type_name(ta));
        if (tb != HR_RT_NUM && tb != HR_RT_ANY)
            return at(c, b, "'%s' needs numbers, got %s", op, type_name(tb));
        n->type = HR_RT_NUM;
        return 0;
    case HR_OP_EQ: case HR_OP_NE:
        if (concrete(ta) && concrete(tb) && ta != tb)
            return hr_rule__err(c->err, n->oline, n->ocol, "'%s' compares %s with %s", op,
                                type_name(ta), type_name(tb));
        if (is_plan_attr(c, a) && (rc = check_plan(c, b))) return rc;
        if (is_plan_attr(c, b) && (rc = check_plan(c, a))) return rc;
        break;
    case HR_OP_LT: case HR_OP_LE: case HR_OP_GT: case HR_OP_GE:
        for (int i = 0; i < 2; i++) {
            hr_rule_node *x = n->kids[i];
            if (x->type == HR_RT_NULL)
                return at(c, x, "'%s' with null is always false (test == null instead)", op);
            if (x->type == HR_RT_BOOL)
                return at(c, x, "'%s' needs numbers or strings, got %s", op, type_name(x->type));
        }
        if (concrete(ta) && concrete(tb) && ta != tb)
            return hr_rule__err(c->err, n->oline, n->ocol, "'%s' compares %s with %s", op,
                                type_name(ta), type_name(tb));
        break;
    default: /* contains, starts_with, ends_with */
        for (int i = 0; i < 2; i++) {
            hr_rule_node *x = n->kids[i];
            if (x->type != HR_RT_STR && x->type != HR_RT_ANY)
                return at(c, x, "'%s' needs strings, got %s", op, type_name(x->type));
        }
        break;
    }
    n->type = HR_RT_BOOL;
    return 0;
}

static int check(checker *c, hr_rule_node *n) {
    int rc;
    switch (n->kind) {
    case N_LIT:
        n->type = n->val.type == HR_RV_NUM    ? HR_RT_NUM
                  : n->val.type == HR_RV_STR  ? HR_RT_STR
                  : n->val.type == HR_RV_BOOL ? HR_RT_BOOL
                                              : HR_RT_NULL;
        return 0;
    case N_DUR: n->type = HR_RT__DUR; return 0;
    case N_LIST: n->type = HR_RT__LIST; return 0; /* only reached through check_bin */
    case N_PATH: return resolve_path(c, n);
    case N_CALL: return resolve_call(c, n);
    case N_NOT:
    case N_AND:
    case N_OR:
        for (int i = 0; i < n->nkids; i++) {
            hr_rule_node *x = n->kids[i];
            if ((rc = value(c, x))) return rc;
            if (x->type == HR_RT_NUM || x->type == HR_RT_STR)
                return at(c, x,
                          "'%s' needs %s, got %s (compare it: x > 0, x != \"\", x == null)",
                          op_name(n), n->kind == N_NOT ? "a boolean" : "booleans",
                          type_name(x->type));
        }
        n->type = HR_RT_BOOL;
        return 0;
    case N_NEG:
        if ((rc = value(c, n->kids[0]))) return rc;
        if (n->kids[0]->type != HR_RT_NUM && n->kids[0]->type != HR_RT_ANY)
            return at(c, n->kids[0], "'%s' needs a number, got %s", "-",
                      type_name(n->kids[0]->type));
        n->type = HR_RT_NUM;
        return 0;
    case N_BIN: return check_bin(c, n);
    default: return 0; /* N_FACT, N_PURE: already checked */
    }
}

int hr_rule__check(hr_rule_node *root, const char *src, const hr_rule_names *names,
                   hr_rule_arena *keep, hr_rule_facts *facts, hr_err *err) {
    checker c = {src, names, keep, facts, err};
    int rc = value(&c, root);
    if (rc) return rc;
    if (root->type == HR_RT__LIST) return at(&c, root, "a list cannot be a rule");
    return 0;
}
