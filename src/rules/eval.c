/* eval.c: runs a compiled rule, and explains one.
 *
 * The interpreter is a switch over a flat instruction array with its value
 * stack in a fixed array on the C stack, sized by HR_RULE_STACK_MAX (the
 * compiler refuses programs that could need more). Nothing here allocates:
 * strings are borrowed from the program's constants or from the env for the
 * length of the call. Facts used more than once are fetched once per run
 * (cache slots chosen at compile time), so a rule sees one consistent value. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "rules_int.h"
#include "timeutil.h"

uint64_t hr_rule_hash(const char *s, size_t n) {
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

int hr_rule__truthy(const hr_rval *v) {
    switch (v->type) {
    case HR_RV_BOOL: return v->b != 0;
    case HR_RV_NUM: return v->n != 0 && !isnan(v->n);
    case HR_RV_STR: return v->len > 0;
    default: return 0;
    }
}

static int fetch(const hr_rule_env *env, void *ctx, const hr_fact_call *call, hr_rval *v) {
    memset(v, 0, sizeof *v);
    if (!env || !env->fact) return 0;
    int rc = env->fact(ctx, call, v);
    if (rc < 0) return rc;
    /* an env bug must not become a crash here */
    if ((unsigned)v->type > HR_RV_STR || (v->type == HR_RV_STR && !v->s && v->len))
        v->type = HR_RV_NULL;
    return 0;
}

static int str_eq(const hr_rval *a, const hr_rval *b) {
    return a->len == b->len && (!a->len || !memcmp(a->s, b->s, a->len));
}

static int equal(const hr_rval *a, const hr_rval *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
    case HR_RV_BOOL: return !a->b == !b->b;
    case HR_RV_NUM: return a->n == b->n;
    case HR_RV_STR: return str_eq(a, b);
    default: return 1;
    }
}

/* -1, 0, 1 into *c; returns 0 when a and b do not order (null, mixed
 * types, NaN). Strings order bytewise, which is also the order of ISO dates. */
static int order(const hr_rval *a, const hr_rval *b, int *c) {
    if (a->type == HR_RV_NUM && b->type == HR_RV_NUM) {
        if (isnan(a->n) || isnan(b->n)) return 0;
        *c = a->n < b->n ? -1 : a->n > b->n;
        return 1;
    }
    if (a->type == HR_RV_STR && b->type == HR_RV_STR) {
        uint32_t n = a->len < b->len ? a->len : b->len;
        int m = n ? memcmp(a->s, b->s, n) : 0;
        *c = m ? (m < 0 ? -1 : 1) : a->len < b->len ? -1 : a->len > b->len;
        return 1;
    }
    return 0;
}

static int str_op(int op, const hr_rval *a, const hr_rval *b) {
    if (a->type != HR_RV_STR || b->type != HR_RV_STR) return 0;
    if (b->len > a->len) return 0;
    if (!b->len) return 1;
    switch (op) {
    case HR_OP_STARTS_WITH: return !memcmp(a->s, b->s, b->len);
    case HR_OP_ENDS_WITH: return !memcmp(a->s + a->len - b->len, b->s, b->len);
    default: return memmem(a->s, a->len, b->s, b->len) != NULL;
    }
}

/* A timestamp in unix seconds from a number or an RFC 3339 string. */
static int timestamp(const hr_rval *v, double *t) {
    if (v->type == HR_RV_NUM) {
        *t = v->n;
        return isfinite(v->n);
    }
    if (v->type != HR_RV_STR || v->len == 0 || v->len >= 64) return 0;
    char buf[64]; /* hr_time_parse wants a NUL-terminated string */
    memcpy(buf, v->s, v->len);
    buf[v->len] = 0;
    int64_t secs;
    if (hr_time_parse(buf, &secs)) return 0;
    *t = (double)secs;
    return 1;
}

static uint32_t utf8_chars(const char *s, uint32_t n) {
    uint32_t c = 0;
    for (uint32_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

/* The top two stack slots (B is the top), only named where they exist. */
#define A (sp - 2)
#define B (sp - 1)
#define SET_BOOL(v, x) (*(v) = (hr_rval){.type = HR_RV_BOOL, .b = (x)})
#define SET_NUM(v, x) (*(v) = (hr_rval){.type = HR_RV_NUM, .n = (x)})
#define SET_NULL(v) (*(v) = (hr_rval){.type = HR_RV_NULL})

/* Numbers that are not finite (overflow, 0 * inf) become null, like
 * division by zero: a rule never sees inf or NaN from arithmetic. */
static void set_num(hr_rval *v, double x) {
    if (isfinite(x))
        SET_NUM(v, x);
    else
        SET_NULL(v);
}

int hr_rule__run(const hr_rule *r, uint32_t start, const hr_rule_env *env, void *ctx,
                 int64_t now_ms, hr_rval *out) {
    hr_rval stack[HR_RULE_STACK_MAX], cache[HR_RULE_CACHE];
    hr_rval *sp = stack; /* the next free slot; the top is sp[-1] */
    uint32_t have = 0;   /* cache slots filled in this run */
    const hr_insn *pc = r->code + start;
    const hr_rval *k = r->consts;
    int rc;
    double x, y, now = (double)now_ms / 1000.0;

    for (;;) {
        const hr_insn *in = pc++;
        switch ((hr_rule_op)in->op) {
        case HR_OP_CONST: *sp++ = k[in->a]; break;
        case HR_OP_FACT:
            if ((rc = fetch(env, ctx, &r->facts[in->a], sp))) return rc;
            sp++;
            break;
        case HR_OP_FACT_C:
            if (!(have & 1u << in->b)) {
                if ((rc = fetch(env, ctx, &r->facts[in->a], &cache[in->b]))) return rc;
                have |= 1u << in->b;
            }
            *sp++ = cache[in->b];
            break;
        case HR_OP_NOT: SET_BOOL(B, !hr_rule__truthy(B)); break;
        case HR_OP_NEG:
            if (B->type == HR_RV_NUM)
                B->n = -B->n;
            else
                SET_NULL(B);
            break;
        case HR_OP_TOBOOL: SET_BOOL(B, hr_rule__truthy(B)); break;
        case HR_OP_ADD: case HR_OP_SUB: case HR_OP_MUL: case HR_OP_DIV: case HR_OP_MOD:
            if (A->type != HR_RV_NUM || B->type != HR_RV_NUM) {
                SET_NULL(A);
            } else {
                x = A->n, y = B->n;
                switch (in->op) {
                case HR_OP_ADD: set_num(A, x + y); break;
                case HR_OP_SUB: set_num(A, x - y); break;
                case HR_OP_MUL: set_num(A, x * y); break;
                case HR_OP_DIV: set_num(A, y == 0 ? NAN : x / y); break;
                default: set_num(A, y == 0 ? NAN : fmod(x, y)); break;
                }
            }
            sp--;
            break;
        case HR_OP_EQ: SET_BOOL(A, equal(A, B)); sp--; break;
        case HR_OP_NE: SET_BOOL(A, !equal(A, B)); sp--; break;
        case HR_OP_LT: case HR_OP_LE: case HR_OP_GT: case HR_OP_GE: {
            int c = 0, ok = order(A, B, &c);
            SET_BOOL(A, ok && (in->op == HR_OP_LT   ? c < 0
                               : in->op == HR_OP_LE ? c <= 0
                               : in->op == HR_OP_GT ? c > 0
                                                    : c >= 0));
            sp--;
            break;
        }
        case HR_OP_IN: case HR_OP_NOT_IN: {
            int found = 0;
            for (uint32_t i = 0; i < in->b && !found; i++) found = equal(B, &k[in->a + i]);
            SET_BOOL(B, found == (in->op == HR_OP_IN));
            break;
        }
        case HR_OP_CONTAINS: case HR_OP_STARTS_WITH: case HR_OP_ENDS_WITH:
            SET_BOOL(A, str_op((int)in->op, A, B));
            sp--;
            break;
        case HR_OP_JFALSE:
            if (!hr_rule__truthy(B)) {
                SET_BOOL(B, 0);
                pc = r->code + in->a;
            } else {
                sp--;
            }
            break;
        case HR_OP_JTRUE:
            if (hr_rule__truthy(B)) {
                SET_BOOL(B, 1);
                pc = r->code + in->a;
            } else {
                sp--;
            }
            break;
        case HR_OP_DAYS_SINCE: case HR_OP_DAYS_UNTIL:
            if (!timestamp(B, &x))
                SET_NULL(B);
            else
                set_num(B, (in->op == HR_OP_DAYS_SINCE ? now - x : x - now) / 86400.0);
            break;
        case HR_OP_NOW: SET_NUM(sp, now); sp++; break;
        case HR_OP_MIN: case HR_OP_MAX:
            if (A->type != HR_RV_NUM || B->type != HR_RV_NUM)
                SET_NULL(A);
            else if ((in->op == HR_OP_MIN) == (B->n < A->n))
                *A = *B;
            sp--;
            break;
        case HR_OP_ABS:
            if (B->type == HR_RV_NUM)
                B->n = fabs(B->n);
            else
                SET_NULL(B);
            break;
        case HR_OP_LEN:
            if (B->type == HR_RV_STR)
                SET_NUM(B, utf8_chars(B->s, B->len));
            else
                SET_NULL(B);
            break;
        case HR_OP_RET: *out = *B; return 0;
        default: return HR_EINTERNAL;
        }
    }
}

#undef A
#undef B

/* The clause shapes that most conditions are made of, `fact OP constant`
 * and `fact in [...]`, answered without the interpreter loop, with the
 * same semantics as running them; anything else runs. */
int hr_rule__test_at(const hr_rule *r, uint32_t start, const hr_rule_env *env, void *ctx,
                     int64_t now_ms) {
    const hr_insn *in = r->code + start;
    hr_rval v;
    int c = 0;
    if (in[0].op == HR_OP_FACT || in[0].op == HR_OP_FACT_C) {
        if ((in[1].op == HR_OP_IN || in[1].op == HR_OP_NOT_IN) && in[2].op == HR_OP_RET) {
            if (fetch(env, ctx, &r->facts[in[0].a], &v)) return 0;
            int found = 0;
            for (uint32_t i = 0; i < in[1].b && !found; i++) found = equal(&v, &r->consts[in[1].a + i]);
            return found == (in[1].op == HR_OP_IN);
        }
        if (in[1].op == HR_OP_CONST && in[2].op >= HR_OP_EQ && in[2].op <= HR_OP_GE &&
            in[3].op == HR_OP_RET) {
            if (fetch(env, ctx, &r->facts[in[0].a], &v)) return 0;
            const hr_rval *k = &r->consts[in[1].a];
            switch (in[2].op) {
            case HR_OP_EQ: return equal(&v, k);
            case HR_OP_NE: return !equal(&v, k);
            case HR_OP_LT: return order(&v, k, &c) && c < 0;
            case HR_OP_LE: return order(&v, k, &c) && c <= 0;
            case HR_OP_GT: return order(&v, k, &c) && c > 0;
            default: return order(&v, k, &c) && c >= 0;
            }
        }
    }
    return !hr_rule__run(r, start, env, ctx, now_ms, &v) && hr_rule__truthy(&v);
}

int hr_rule_eval(const hr_rule *r, const hr_rule_env *env, void *ctx, int64_t now_ms,
                 hr_rval *out) {
    return hr_rule__run(r, 0, env, ctx, now_ms, out);
}

int hr_rule_test(const hr_rule *r, const hr_rule_env *env, void *ctx, int64_t now_ms) {
    return hr_rule__test_at(r, 0, env, ctx, now_ms);
}

/* ---- explain ------------------------------------------------------------------ */

static void json_strn(hr_buf *out, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    hr_buf_putc(out, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        hr_buf_append(out, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': hr_buf_append(out, "\\\"", 2); break;
        case '\\': hr_buf_append(out, "\\\\", 2); break;
        case '\n': hr_buf_append(out, "\\n", 2); break;
        case '\t': hr_buf_append(out, "\\t", 2); break;
        case '\r': hr_buf_append(out, "\\r", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            hr_buf_append(out, u, 6);
        }
        }
    }
    hr_buf_append(out, s + run, n - run);
    hr_buf_putc(out, '"');
}

static void json_num(hr_buf *out, double n) {
    if (!isfinite(n)) {
        hr_buf_puts(out, "null");
    } else if (n == floor(n) && fabs(n) < 9007199254740992.0) {
        hr_buf_i64(out, (int64_t)n);
    } else {
        char tmp[40];
        /* the shortest of %.15g .. %.17g that reads back as the same double */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(tmp, sizeof tmp, "%.*g", prec, n);
            if (strtod(tmp, NULL) == n) break;
        }
        hr_buf_puts(out, tmp);
    }
}

static void json_val(hr_buf *out, const hr_rval *v) {
    switch (v->type) {
    case HR_RV_BOOL: hr_buf_puts(out, v->b ? "true" : "false"); break;
    case HR_RV_NUM: json_num(out, v->n); break;
    case HR_RV_STR: json_strn(out, v->s, v->len); break;
    default: hr_buf_puts(out, "null"); break;
    }
}

int hr_rule_explain(const hr_rule *r, const hr_rule_env *env, void *ctx, int64_t now_ms,
                    hr_buf *out) {
    int first_rc = 0;
    hr_buf_putc(out, '{');
    for (int i = 0; i < r->nfacts; i++) {
        hr_rval v;
        int rc = fetch(env, ctx, &r->facts[i], &v);
        if (rc && !first_rc) first_rc = rc;
        if (i) hr_buf_putc(out, ',');
        json_strn(out, r->fact_src[i], strlen(r->fact_src[i]));
        hr_buf_putc(out, ':');
        /* on an env error the object is still complete, with null */
        json_val(out, rc ? &(hr_rval){.type = HR_RV_NULL} : &v);
    }
    hr_buf_putc(out, '}');
    if (first_rc) return first_rc;
    return hr_buf_failed(out) ? HR_ENOMEM : 0;
}
