/* lexer.c: rule text -> tokens, each with its line:column, plus the arena
 * that holds everything a compile allocates.
 *
 * Columns count characters, not bytes (a UTF-8 continuation byte does not
 * advance them), as the catalog's positions do. Durations are whole days by
 * the time they leave here (24h = 1d; 25h is an error), so nothing later
 * deals in hours. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rules_int.h"
#include "utf8.h"

/* ---- arena ---------------------------------------------------------------- */

struct hr_rule_chunk {
    hr_rule_chunk *next;
    size_t used, cap;
    max_align_t data[];
};

void *hr_rule__alloc(hr_rule_arena *a, size_t n) {
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    hr_rule_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 4096 ? n : 4096;
        if (!(c = malloc(sizeof *c + cap))) return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *hr_rule__strndup(hr_rule_arena *a, const char *s, size_t n) {
    char *p = hr_rule__alloc(a, n + 1);
    if (p) {
        if (n) memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

void hr_rule__arena_free(hr_rule_arena *a) {
    while (a->head) {
        hr_rule_chunk *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

int hr_rule__err(hr_err *err, int line, int col, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return hr_err_setpos(err, HR_ECONFIG, NULL, line, col, "%s", msg);
}

/* ---- characters ------------------------------------------------------------ */

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_word_start(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static int is_word(int c) { return is_word_start(c) || is_digit(c); }

static int peek(const hr_rule_lexer *lx, size_t ahead) {
    return lx->pos + ahead < lx->len ? (unsigned char)lx->src[lx->pos + ahead] : -1;
}

static void advance(hr_rule_lexer *lx) {
    unsigned char c = (unsigned char)lx->src[lx->pos++];
    if (c == '\n') {
        lx->line++;
        lx->col = 1;
    } else if ((c & 0xc0) != 0x80) {
        lx->col++;
    }
}

static void advance_n(hr_rule_lexer *lx, size_t n) {
    while (n-- && lx->pos < lx->len) advance(lx);
}

static size_t utf8_put(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A character for a message: printable ASCII as is, a valid UTF-8
 * sequence as is, anything else as a byte value. */
static void show_char(const hr_rule_lexer *lx, char *buf, size_t n) {
    const unsigned char *p = (const unsigned char *)lx->src + lx->pos;
    size_t u = hr_utf8_decode(p, lx->len - lx->pos, NULL);
    if (p[0] >= 0x20 && p[0] < 0x7f)
        snprintf(buf, n, "'%c'", p[0]);
    else if (u > 1)
        snprintf(buf, n, "'%.*s'", (int)u, (const char *)p);
    else
        snprintf(buf, n, "byte 0x%02x", p[0]);
}

/* ---- tokens ---------------------------------------------------------------- */

void hr_rule__lex_init(hr_rule_lexer *lx, const char *src, size_t len, hr_rule_arena *a,
                       hr_err *err) {
    memset(lx, 0, sizeof *lx);
    lx->src = src;
    lx->len = len;
    lx->line = lx->col = 1;
    lx->arena = a;
    lx->err = err;
}

static const struct {
    const char *word;
    hr_rule_tk type;
} keywords[] = {
    {"true", TK_TRUE},   {"false", TK_FALSE},       {"null", TK_NULL},
    {"and", TK_AND},     {"or", TK_OR},             {"not", TK_NOT},
    {"in", TK_IN},       {"contains", TK_CONTAINS}, {"starts_with", TK_STARTS_WITH},
    {"ends_with", TK_ENDS_WITH},
};

int hr_rule__tk_is_word(hr_rule_tk t) {
    return t == TK_IDENT || (t >= TK_TRUE && t <= TK_ENDS_WITH);
}

/* The value of four hex digits at pos + at, or -1. */
static long hex4(const hr_rule_lexer *lx, size_t at) {
    long v = 0;
    for (size_t k = at; k < at + 4; k++) {
        int h = peek(lx, k), d = is_digit(h) ? h - '0'
                                 : (h | 0x20) >= 'a' && (h | 0x20) <= 'f' ? (h | 0x20) - 'a' + 10
                                                                          : -1;
        if (d < 0) return -1;
        v = v << 4 | d;
    }
    return v;
}

static int lex_string(hr_rule_lexer *lx, hr_rule_tok *t) {
    int quote = peek(lx, 0);
    /* decoded text is never longer than the source text */
    char *out = hr_rule__alloc(lx->arena, lx->len - lx->pos + 1);
    if (!out) return hr_err_set(lx->err, HR_ENOMEM, "out of memory");
    size_t n = 0;
    advance(lx);
    for (;;) {
        int c = peek(lx, 0);
        if (c < 0 || c == '\n' || c == '\r')
            return hr_rule__err(lx->err, t->line, t->col, "unterminated string");
        if (c == quote) {
            advance(lx);
            break;
        }
        if (c == '\\') {
            int el = lx->line, ec = lx->col, e = peek(lx, 1);
            switch (e) {
            case '"': case '\'': case '\\': case '/': out[n++] = (char)e; break;
            case 'n': out[n++] = '\n'; break;
            case 't': out[n++] = '\t'; break;
            case 'r': out[n++] = '\r'; break;
            case 'u': {
                long cp = hex4(lx, 2), lo;
                size_t used = 6;
                if (cp < 0)
                    return hr_rule__err(lx->err, el, ec, "\\u needs four hex digits (\\u00e9)");
                /* a UTF-16 surrogate pair, as JSON writes characters beyond U+FFFF */
                if (cp >= 0xd800 && cp <= 0xdbff && peek(lx, 6) == '\\' && peek(lx, 7) == 'u' &&
                    (lo = hex4(lx, 8)) >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    used = 12;
                }
                if (cp >= 0xd800 && cp <= 0xdfff)
                    return hr_rule__err(lx->err, el, ec, "\\u escape is a lone surrogate");
                if (cp == 0)
                    return hr_rule__err(lx->err, el, ec, "strings cannot contain \\u0000");
                n += utf8_put(out + n, (uint32_t)cp);
                advance_n(lx, used);
                continue;
            }
            default:
                if (e < 0) return hr_rule__err(lx->err, t->line, t->col, "unterminated string");
                if (e > 0x20 && e < 0x7f)
                    return hr_rule__err(lx->err, el, ec,
                                        "unknown escape '\\%c' in string (use \\\\ for a "
                                        "backslash)", e);
                return hr_rule__err(lx->err, el, ec, "unknown escape in string");
            }
            advance_n(lx, 2);
            continue;
        }
        size_t u = hr_utf8_decode((const unsigned char *)lx->src + lx->pos, lx->len - lx->pos, NULL);
        if (u == 0 || (c < 0x20 && c != '\t'))
            return hr_rule__err(lx->err, lx->line, lx->col,
                                u == 0 ? "invalid UTF-8 in string"
                                       : "control character in string (use \\n or \\t)");
        memcpy(out + n, lx->src + lx->pos, u);
        n += u;
        advance_n(lx, u);
    }
    out[n] = 0;
    t->type = TK_STR;
    t->str = out;
    t->slen = (uint32_t)n;
    return 0;
}

static int lex_number(hr_rule_lexer *lx, hr_rule_tok *t) {
    size_t start = lx->pos, i = 0;
    int integer = 1;
    while (is_digit(peek(lx, i))) i++;
    if (peek(lx, i) == '.' && is_digit(peek(lx, i + 1))) {
        integer = 0;
        i++;
        while (is_digit(peek(lx, i))) i++;
    }
    if ((peek(lx, i) == 'e' || peek(lx, i) == 'E') &&
        (is_digit(peek(lx, i + 1)) ||
         ((peek(lx, i + 1) == '+' || peek(lx, i + 1) == '-') && is_digit(peek(lx, i + 2))))) {
        integer = 0;
        i += 2;
        while (is_digit(peek(lx, i))) i++;
    }
    int unit = peek(lx, i);
    if (integer && (unit == 'd' || unit == 'w' || unit == 'h') && !is_word(peek(lx, i + 1)) &&
        peek(lx, i + 1) != '.') {
        double v = 0;
        for (size_t k = 0; k < i; k++) v = v * 10 + (lx->src[start + k] - '0');
        double days = unit == 'd' ? v : unit == 'w' ? v * 7 : v / 24;
        int shown = (int)(i + 1);
        if (unit == 'h' && days != floor(days))
            return hr_rule__err(lx->err, t->line, t->col,
                                "'%.*s' is not a whole number of days (windows count days: "
                                "24h, 48h ...)", shown, lx->src + start);
        if (days < 1)
            return hr_rule__err(lx->err, t->line, t->col, "a window must be at least 1 day");
        if (days > HR_RULE_MAX_DAYS)
            return hr_rule__err(lx->err, t->line, t->col,
                                "window '%.*s' is longer than %d days", shown, lx->src + start,
                                HR_RULE_MAX_DAYS);
        t->type = TK_DUR;
        t->days = (int32_t)days;
        advance_n(lx, i + 1);
        return 0;
    }
    if (is_word(unit) || unit == '.') {
        size_t j = i;
        while (is_word(peek(lx, j)) || peek(lx, j) == '.') j++;
        return hr_rule__err(lx->err, t->line, t->col, "invalid number '%.*s'",
                            (int)(j > 40 ? 40 : j), lx->src + start);
    }
    char buf[64];
    if (i >= sizeof buf)
        return hr_rule__err(lx->err, t->line, t->col, "number too long");
    memcpy(buf, lx->src + start, i);
    buf[i] = 0;
    /* strtod after checking the shape ourselves: the text is plain C syntax */
    t->num = strtod(buf, NULL);
    if (!isfinite(t->num))
        return hr_rule__err(lx->err, t->line, t->col, "number '%s' is out of range", buf);
    t->type = TK_NUM;
    advance_n(lx, i);
    return 0;
}

static void skip_space(hr_rule_lexer *lx) {
    for (;;) {
        int c = peek(lx, 0);
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            advance(lx);
        } else if (c == '/' && peek(lx, 1) == '/') {
            while (lx->pos < lx->len && lx->src[lx->pos] != '\n') advance(lx);
        } else {
            return;
        }
    }
}

int hr_rule__lex(hr_rule_lexer *lx, hr_rule_tok *t) {
    skip_space(lx);
    memset(t, 0, sizeof *t);
    t->off = lx->pos;
    t->line = lx->line;
    t->col = lx->col;
    int c = peek(lx, 0), rc = 0;
    if (c < 0) {
        t->type = TK_EOF;
        return 0;
    }
    if (is_digit(c)) {
        rc = lex_number(lx, t);
    } else if (c == '"' || c == '\'') {
        rc = lex_string(lx, t);
    } else if (is_word_start(c)) {
        size_t i = 0;
        while (is_word(peek(lx, i))) i++;
        t->type = TK_IDENT;
        for (size_t k = 0; k < sizeof keywords / sizeof keywords[0]; k++)
            if (strlen(keywords[k].word) == i && !memcmp(keywords[k].word, lx->src + lx->pos, i))
                t->type = keywords[k].type;
        advance_n(lx, i);
    } else {
        int c1 = peek(lx, 1), two = 1;
        switch (c) {
        case '(': t->type = TK_LPAREN; break;
        case ')': t->type = TK_RPAREN; break;
        case '[': t->type = TK_LBRACKET; break;
        case ']': t->type = TK_RBRACKET; break;
        case ',': t->type = TK_COMMA; break;
        case '.': t->type = TK_DOT; break;
        case '+': t->type = TK_PLUS; break;
        case '-': t->type = TK_MINUS; break;
        case '*': t->type = TK_STAR; break;
        case '/': t->type = TK_SLASH; break;
        case '%': t->type = TK_PERCENT; break;
        case '<': t->type = c1 == '=' ? (two = 2, TK_LE) : TK_LT; break;
        case '>': t->type = c1 == '=' ? (two = 2, TK_GE) : TK_GT; break;
        case '!': t->type = c1 == '=' ? (two = 2, TK_NE) : TK_BANG; break;
        case '=':
            if (c1 != '=')
                return hr_rule__err(lx->err, t->line, t->col,
                                    "unexpected '=' (compare with '==')");
            t->type = TK_EQ, two = 2;
            break;
        case '&':
        case '|':
            if (c1 != c)
                return hr_rule__err(lx->err, t->line, t->col,
                                    "unexpected '%c' (did you mean '%c%c'?)", c, c, c);
            t->type = c == '&' ? TK_ANDAND : TK_OROR, two = 2;
            break;
        default: {
            char shown[24];
            show_char(lx, shown, sizeof shown);
            return hr_rule__err(lx->err, t->line, t->col, "unexpected character %s", shown);
        }
        }
        advance_n(lx, (size_t)two);
    }
    t->len = lx->pos - t->off;
    return rc;
}

void hr_rule__tok_describe(const hr_rule_lexer *lx, const hr_rule_tok *t, char *buf, size_t n) {
    switch (t->type) {
    case TK_EOF: snprintf(buf, n, "the end of the rule"); return;
    case TK_STR: snprintf(buf, n, "string %.*s%s", t->len > 24 ? 24 : (int)t->len,
                          lx->src + t->off, t->len > 24 ? "..." : ""); return;
    case TK_NUM: snprintf(buf, n, "number %.*s", (int)t->len, lx->src + t->off); return;
    case TK_DUR: snprintf(buf, n, "duration %.*s", (int)t->len, lx->src + t->off); return;
    default:
        snprintf(buf, n, "'%.*s'", t->len > 32 ? 32 : (int)t->len, lx->src + t->off);
    }
}
