/* rules_int.h: what the rule module's files share (not for other modules).
 *
 * Pipeline: lexer.c (tokens with line:column) -> parse.c (AST in a scratch
 * arena) -> check.c (names, facts, static types) -> compile.c (flat bytecode,
 * constants, max stack) -> eval.c (runs it on a stack array, no malloc). */
#ifndef HR_RULES_INT_H
#define HR_RULES_INT_H

#include <stddef.h>
#include <stdint.h>

#include "rules.h"

/* Limits that keep compile recursion and the evaluation stack bounded. */
#define HR_RULE_MAX_NEST 64     /* nested parentheses, calls, prefix operators */
#define HR_RULE_MAX_HEIGHT 256  /* AST height (long chains like a+b+c+...) */
#define HR_RULE_STACK_MAX 128   /* evaluation stack slots (hr_rval) */
#define HR_RULE_MAX_FACTS 256   /* distinct facts per rule */
#define HR_RULE_CACHE 16        /* facts used twice or more, fetched once per run */
#define HR_RULE_DEFAULT_DAYS 400 /* the W window when left out: all kept history */
#define HR_RULE_MAX_DAYS 3650

/* ---- arena: every allocation of a compile, freed at once ---------------- */

typedef struct hr_rule_chunk hr_rule_chunk;
typedef struct hr_rule_arena {
    hr_rule_chunk *head;
} hr_rule_arena;

/* Zeroed memory, or NULL when out of memory. */
void *hr_rule__alloc(hr_rule_arena *a, size_t n);
/* A NUL-terminated copy of s[0..n). */
char *hr_rule__strndup(hr_rule_arena *a, const char *s, size_t n);
void hr_rule__arena_free(hr_rule_arena *a);

/* ---- tokens --------------------------------------------------------------- */

typedef enum {
    TK_EOF, TK_NUM, TK_STR, TK_DUR, TK_IDENT,
    /* keywords */
    TK_TRUE, TK_FALSE, TK_NULL, TK_AND, TK_OR, TK_NOT, TK_IN, TK_CONTAINS,
    TK_STARTS_WITH, TK_ENDS_WITH,
    /* punctuation */
    TK_LPAREN, TK_RPAREN, TK_LBRACKET, TK_RBRACKET, TK_COMMA, TK_DOT,
    TK_OROR, TK_ANDAND, TK_BANG, TK_EQ, TK_NE, TK_LT, TK_LE, TK_GT, TK_GE,
    TK_PLUS, TK_MINUS, TK_STAR, TK_SLASH, TK_PERCENT
} hr_rule_tk;

typedef struct hr_rule_tok {
    hr_rule_tk type;
    size_t off, len;   /* bytes of the token in the source */
    int line, col;     /* 1-based; columns count characters */
    double num;        /* NUM */
    int32_t days;      /* DUR */
    const char *str;   /* STR: decoded, NUL-terminated, in the arena */
    uint32_t slen;
} hr_rule_tok;

typedef struct hr_rule_lexer {
    const char *src;
    size_t len, pos;
    int line, col;
    hr_rule_arena *arena;
    hr_err *err;
} hr_rule_lexer;

void hr_rule__lex_init(hr_rule_lexer *lx, const char *src, size_t len, hr_rule_arena *a,
                       hr_err *err);
/* The next token, or HR_ECONFIG (err set) for a malformed one. */
int hr_rule__lex(hr_rule_lexer *lx, hr_rule_tok *t);
/* How a token is named in "expected X, found Y" messages. */
void hr_rule__tok_describe(const hr_rule_lexer *lx, const hr_rule_tok *t, char *buf, size_t n);
/* Is s[0..n) a word token (identifier or keyword)? */
int hr_rule__tk_is_word(hr_rule_tk t);

/* ---- AST ------------------------------------------------------------------ */

typedef enum {
    N_LIT,   /* val */
    N_DUR,   /* days: only as a window argument */
    N_LIST,  /* kids: literals, only after in / not in */
    N_PATH,  /* name = root ("account"/"user"), path = the rest ("company.size") */
    N_CALL,  /* name(kids...) */
    N_NOT, N_NEG,          /* kids[0] */
    N_AND, N_OR,           /* kids[0..nkids): n-ary, so long chains do not nest */
    N_BIN,                 /* op: arithmetic, comparison, in, contains ...; kids[0], kids[1] */
    N_FACT,                /* after check: fact index */
    N_PURE                 /* after check: op over kids */
} hr_rule_nk;

/* Internal static types beyond hr_rule_type. */
#define HR_RT__DUR 100
#define HR_RT__LIST 101

typedef struct hr_rule_node hr_rule_node;
struct hr_rule_node {
    hr_rule_nk kind;
    int op;                /* HR_OP_* for N_BIN / N_PURE */
    int type;              /* hr_rule_type or HR_RT__*, set by check */
    int line, col;         /* start of the node */
    int oline, ocol;       /* the operator or the function name: where type errors point */
    size_t ooff, olen;     /* ... and its text */
    size_t off, end;       /* source span [off, end) */
    int height;
    hr_rval val;           /* N_LIT */
    int32_t days;          /* N_DUR */
    const char *name;      /* N_CALL, N_PATH root (NUL-terminated) */
    const char *path;      /* N_PATH: segments after the root, joined with '.' */
    int pline, pcol;       /* N_PATH: position of the first segment after the root */
    hr_rule_node **kids;
    int nkids;
    int fact;              /* N_FACT */
};

typedef struct hr_rule_parser {
    hr_rule_lexer lx;
    hr_rule_tok tok;  /* current token */
    size_t prev_end;  /* end offset of the previous token */
    int nest;
    hr_rule_arena *arena;
    hr_err *err;
} hr_rule_parser;

/* Parses the whole source into *root (nodes in arena). */
int hr_rule__parse(const char *src, size_t len, hr_rule_arena *arena, hr_rule_node **root,
                   hr_err *err);

/* Error at a 1-based position; returns HR_ECONFIG. */
int hr_rule__err(hr_err *err, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- program ----------------------------------------------------------------- */

typedef enum {
#define HR_OP(name, pops, pushes, doc) HR_OP_##name,
#include "opcodes.def"
#undef HR_OP
    HR_OP__COUNT
} hr_rule_op;

typedef struct hr_insn {
    uint32_t op; /* hr_rule_op */
    uint32_t a, b;
} hr_insn;

struct hr_rule {
    const hr_insn *code;
    const hr_rval *consts;
    const hr_fact_call *facts;
    const char *const *fact_src; /* each fact's source text, for explain */
    int ncode, nconsts, nfacts;
    int max_stack;
    hr_rule_type type;
    /* Top-level conjuncts (the kids of a root &&, else the whole rule), each
     * a program of its own in code[] starting at conj_pc[i], sharing the
     * rule's constants and facts; conj_src is its source text (the key that
     * hr_rule_share_add matches) and conj_slot its memo slot (-1: none). */
    int nconj;
    const uint32_t *conj_pc;
    const char *const *conj_src;
    int *conj_slot;
    hr_rule_arena arena; /* owns everything above */
};

/* What check.c leaves for the code generator. */
typedef struct hr_rule_facts {
    hr_fact_call calls[HR_RULE_MAX_FACTS];
    const char *src[HR_RULE_MAX_FACTS];
    int uses[HR_RULE_MAX_FACTS];
    int n;
} hr_rule_facts;

/* Resolves names into facts and pure functions, and types every node.
 * Fact strings go into the rule's arena. */
int hr_rule__check(hr_rule_node *root, const char *src, const hr_rule_names *names,
                   hr_rule_arena *keep, hr_rule_facts *facts, hr_err *err);

/* Shared by eval.c and compile.c. */
int hr_rule__truthy(const hr_rval *v);
/* Runs r's code from instruction start (0: the whole rule; a conj_pc: one
 * conjunct) to its RET. */
int hr_rule__run(const hr_rule *r, uint32_t start, const hr_rule_env *env, void *ctx,
                 int64_t now_ms, hr_rval *out);
/* Is the program from start truthy (false on an env error)? Common clause
 * shapes skip the interpreter loop. */
int hr_rule__test_at(const hr_rule *r, uint32_t start, const hr_rule_env *env, void *ctx,
                     int64_t now_ms);

#endif
