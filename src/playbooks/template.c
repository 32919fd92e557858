/* template.c: {{ path }} templates for playbook messages and webhook bodies.
 *
 * A compiled template is a list of segments, each either literal bytes or
 * a reference to one of the distinct placeholder paths; every string lives
 * in one pool allocated at compile time (it never needs more bytes than the
 * text: "{{a}}" takes five bytes of text and two of pool), so rendering
 * reads only immutable memory and may run on many threads at once.
 *
 * The design decision to know: escaping is applied to looked-up values and
 * never to the template's own text, except in JSON bodies, where the
 * literal text was itself decoded from a JSON string and must be encoded
 * again. */
#include "template.h"
#include "utf8.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "jsonbody.h"

typedef struct {
    size_t off, len; /* literal: bytes in pool */
    int var;         /* index into vars, or -1 for a literal */
} seg;

typedef struct {
    const char *path; /* in pool, NUL-terminated */
    int line, col;
} var;

struct hr_template {
    char *pool;
    seg *segs;
    var *vars;
    int nsegs, nvars;
};

/* ---- characters ------------------------------------------------------------ */

static int is_name_start(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static int is_name(int c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
static int is_blank(int c) { return c == ' ' || c == '\t'; }

/* ---- escaping ---------------------------------------------------------------- */

static void put_json(hr_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
    while (p < end) {
        unsigned char c = *p;
        const char *rep = NULL;
        size_t skip = 1;
        char u[6];
        if (c >= 0x80) {
            size_t k = hr_utf8_decode(p, (size_t)(end - p), NULL);
            if (k == 3 && c == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
                /* valid JSON, but a line break to JavaScript before ES2019 */
                rep = p[2] == 0xa8 ? "\\u2028" : "\\u2029";
                skip = 3;
            } else if (k == 0) {
                rep = "\\ufffd";
            } else {
                p += k;
                continue;
            }
        } else if (c == '"') {
            rep = "\\\"";
        } else if (c == '\\') {
            rep = "\\\\";
        } else if (c < 0x20) {
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
        } else {
            p++;
            continue;
        }
        hr_buf_append(b, run, (size_t)(p - run));
        if (rep)
            hr_buf_puts(b, rep);
        else
            hr_buf_append(b, u, 6);
        p += skip;
        run = p;
    }
    hr_buf_append(b, run, (size_t)(p - run));
}

/* SLACK and HTML: byte-wise entity replacement. */
static void put_entities(hr_buf *b, const char *s, size_t n, int html) {
    const char *run = s, *end = s + n;
    for (const char *p = s; p < end; p++) {
        const char *rep;
        switch (*p) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = html ? "&quot;" : NULL; break;
        case '\'': rep = html ? "&#39;" : NULL; break;
        default: rep = NULL;
        }
        if (!rep) continue;
        hr_buf_append(b, run, (size_t)(p - run));
        hr_buf_puts(b, rep);
        run = p + 1;
    }
    hr_buf_append(b, run, (size_t)(end - run));
}

static void put_value(hr_buf *b, hr_escape esc, const char *s, size_t n) {
    switch (esc) {
    case HR_ESC_JSON: put_json(b, s, n); break;
    case HR_ESC_SLACK: put_entities(b, s, n, 0); break;
    case HR_ESC_HTML: put_entities(b, s, n, 1); break;
    default: hr_buf_append(b, s, n);
    }
}

/* ---- compiling --------------------------------------------------------------- */

/* A position in the text; moves forward only, so tracking costs O(len). */
typedef struct {
    const char *text;
    size_t pos;
    int line, col;
} cursor;

static void seek(cursor *c, size_t to) {
    for (; c->pos < to; c->pos++) {
        unsigned char ch = (unsigned char)c->text[c->pos];
        if (ch == '\n') {
            if (c->line < INT_MAX) c->line++;
            c->col = 1;
        } else if ((ch & 0xc0) != 0x80 && c->col < INT_MAX) {
            c->col++;
        }
    }
}

static int error_at(hr_err *err, cursor *c, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int error_at(hr_err *err, cursor *c, size_t at, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    seek(c, at);
    return hr_err_setpos(err, HR_ECONFIG, NULL, c->line, c->col, "%s", msg);
}

/* "'x'" for a printable character, "byte 0x0a" for anything else. */
static const char *describe(unsigned char ch, char *buf, size_t n) {
    if (ch >= 0x20 && ch < 0x7f)
        snprintf(buf, n, "'%c'", ch);
    else
        snprintf(buf, n, "byte 0x%02x", ch);
    return buf;
}

static int grow(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return 0;
    if (*cap > INT_MAX / 2) return -1;
    int cap2 = *cap ? *cap * 2 : 8;
    void *q = realloc(*p, (size_t)cap2 * elem);
    if (!q) return -1;
    *p = q;
    *cap = cap2;
    return 0;
}

typedef struct {
    hr_template *t;
    size_t used;    /* bytes of pool in use */
    size_t lit_off; /* start of the literal being collected */
    int segcap, varcap;
} builder;

static void lit_add(builder *b, const char *s, size_t n) {
    if (n) memcpy(b->t->pool + b->used, s, n);
    b->used += n;
}

static int lit_flush(builder *b) {
    if (b->used == b->lit_off) return 0;
    hr_template *t = b->t;
    if (grow((void **)&t->segs, &b->segcap, t->nsegs + 1, sizeof *t->segs)) return -1;
    t->segs[t->nsegs++] = (seg){b->lit_off, b->used - b->lit_off, -1};
    b->lit_off = b->used;
    return 0;
}

static int var_add(builder *b, const char *path, size_t n, int line, int col) {
    hr_template *t = b->t;
    int v = 0;
    while (v < t->nvars && !(strlen(t->vars[v].path) == n && !memcmp(t->vars[v].path, path, n)))
        v++;
    if (v == t->nvars) {
        if (grow((void **)&t->vars, &b->varcap, t->nvars + 1, sizeof *t->vars)) return -1;
        char *p = t->pool + b->used;
        memcpy(p, path, n);
        p[n] = 0;
        b->used += n + 1;
        t->vars[t->nvars++] = (var){p, line, col};
    }
    if (grow((void **)&t->segs, &b->segcap, t->nsegs + 1, sizeof *t->segs)) return -1;
    t->segs[t->nsegs++] = (seg){0, 0, v};
    b->lit_off = b->used;
    return 0;
}

/* The placeholder whose "{{" is at open; its "}}" is at close. */
static int placeholder(builder *b, cursor *c, size_t open, size_t close, hr_err *err) {
    const char *s = c->text;
    char ch[16];
    seek(c, open);
    int line = c->line, col = c->col;
    size_t i = open + 2;
    while (i < close && is_blank(s[i])) i++;
    if (i == close) return error_at(err, c, open, "empty placeholder");
    size_t start = i;
    for (;;) {
        if (i == close)
            return error_at(err, c, i, "bad placeholder path: expected a name before '}}'");
        if (!is_name_start((unsigned char)s[i]))
            return error_at(err, c, i, "bad placeholder path: expected a name, not %s",
                            describe((unsigned char)s[i], ch, sizeof ch));
        while (i < close && is_name((unsigned char)s[i])) i++;
        if (i == close || s[i] != '.') break;
        i++;
    }
    size_t end = i;
    while (i < close && is_blank(s[i])) i++;
    if (i < close)
        return error_at(err, c, i, "bad placeholder path: unexpected %s",
                        describe((unsigned char)s[i], ch, sizeof ch));
    if (lit_flush(b) || var_add(b, s + start, end - start, line, col))
        return hr_err_set(err, HR_ENOMEM, "out of memory");
    return 0;
}

static size_t find_close(const char *s, size_t from, size_t len) {
    for (size_t i = from; i + 1 < len; i++) {
        const char *p = memchr(s + i, '}', len - 1 - i);
        if (!p) break;
        i = (size_t)(p - s);
        if (s[i + 1] == '}') return i;
    }
    return len;
}

int hr_template_compile(const char *text, size_t len, hr_template **out, hr_err *err) {
    int rc = 0;
    builder b = {0};
    cursor c = {text, 0, 1, 1};
    size_t i = 0;
    if (!out) return hr_err_set(err, HR_EINVAL, "no output");
    *out = NULL;
    if (!text && len) return hr_err_set(err, HR_EINVAL, "no text");
    if (!(b.t = calloc(1, sizeof *b.t)) || !(b.t->pool = malloc(len + 1))) {
        rc = hr_err_set(err, HR_ENOMEM, "out of memory");
        goto out;
    }
    while (i < len) {
        const char *p = memchr(text + i, '{', len - i);
        size_t k = p ? (size_t)(p - text) : len;
        if (k + 1 >= len || text[k + 1] != '{') { /* no brace, or a lone one */
            size_t n = k < len ? k + 1 - i : len - i;
            lit_add(&b, text + i, n);
            i += n;
            continue;
        }
        lit_add(&b, text + i, k - i);
        if (k + 3 < len && text[k + 2] == '{' && text[k + 3] == '{') {
            lit_add(&b, "{{", 2);
            i = k + 4;
            continue;
        }
        size_t close = find_close(text, k + 2, len);
        if (close == len) {
            rc = error_at(err, &c, k, "unterminated placeholder: '{{' without '}}'");
            goto out;
        }
        if ((rc = placeholder(&b, &c, k, close, err))) goto out;
        i = close + 2;
    }
    if (lit_flush(&b)) rc = hr_err_set(err, HR_ENOMEM, "out of memory");
out:
    if (rc) {
        hr_template_free(b.t);
        return rc;
    }
    *out = b.t;
    return 0;
}

void hr_template_free(hr_template *t) {
    if (!t) return;
    free(t->pool);
    free(t->segs);
    free(t->vars);
    free(t);
}

int hr_template_nvars(const hr_template *t) { return t ? t->nvars : 0; }

const char *hr_template_var(const hr_template *t, int i) {
    return t && i >= 0 && i < t->nvars ? t->vars[i].path : NULL;
}

int hr_template_var_pos(const hr_template *t, int i, int *line, int *column) {
    if (!t || i < 0 || i >= t->nvars) return HR_EINVAL;
    if (line) *line = t->vars[i].line;
    if (column) *column = t->vars[i].col;
    return 0;
}

/* ---- rendering --------------------------------------------------------------- */

/* Literals are escaped too when they came out of a decoded JSON string. */
static void render(const hr_template *t, hr_escape esc, int escape_literals,
                   hr_template_lookup lookup, void *ud, hr_buf *out) {
    for (int i = 0; i < t->nsegs; i++) {
        const seg *s = &t->segs[i];
        if (s->var < 0) {
            if (escape_literals)
                put_value(out, esc, t->pool + s->off, s->len);
            else
                hr_buf_append(out, t->pool + s->off, s->len);
            continue;
        }
        const char *v = lookup ? lookup(ud, t->vars[s->var].path) : NULL;
        if (v) put_value(out, esc, v, strlen(v));
    }
}

int hr_template_render(const hr_template *t, hr_escape esc, hr_template_lookup lookup, void *ud,
                       hr_buf *out) {
    if (!t || !out || (unsigned)esc > HR_ESC_HTML) return HR_EINVAL;
    render(t, esc, 0, lookup, ud, out);
    return hr_buf_failed(out) ? HR_ENOMEM : 0;
}

/* ---- JSON bodies ------------------------------------------------------------- */

/* A value that may stand bare in JSON: true, false, null or a finite
 * number in JSON's own grammar (no '+', no leading zeros, no blanks). */
static int is_json_scalar(const char *s) {
    if (!strcmp(s, "true") || !strcmp(s, "false") || !strcmp(s, "null")) return 1;
    const char *p = s;
#define DIGIT(c) ((c) >= '0' && (c) <= '9')
    if (*p == '-') p++;
    if (*p == '0')
        p++;
    else if (DIGIT(*p))
        while (DIGIT(*p)) p++;
    else
        return 0;
    if (*p == '.') {
        if (!DIGIT(p[1])) return 0;
        for (p++; DIGIT(*p);) p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!DIGIT(*p)) return 0;
        while (DIGIT(*p)) p++;
    }
#undef DIGIT
    return !*p && isfinite(strtod(s, NULL)); /* 1e999 is JSON's grammar, not a number */
}

typedef struct {
    hr_template_lookup lookup;
    void *ud;
    hr_buf *out;
    hr_buf ptr; /* JSON pointer of the value being written, for errors */
    hr_err *err;
} walker;

static void ptr_push(hr_buf *p, const char *key) {
    hr_buf_putc(p, '/');
    for (; *key; key++) {
        if (*key == '~')
            hr_buf_append(p, "~0", 2);
        else if (*key == '/')
            hr_buf_append(p, "~1", 2);
        else
            hr_buf_putc(p, *key);
    }
}

static void ptr_pop(hr_buf *p, size_t len) {
    p->len = len;
    if (p->data) p->data[len] = 0;
}

static int walk_string(walker *w, json_object *o) {
    hr_template *t = NULL;
    hr_err e;
    hr_err_clear(&e);
    int rc = hr_template_compile(json_object_get_string(o), (size_t)json_object_get_string_len(o),
                                 &t, &e);
    if (rc) {
        if (rc == HR_ECONFIG)
            return hr_err_setpos(w->err, rc, NULL, e.line, e.column, "string at %s: %s",
                                 w->ptr.len ? w->ptr.data : "the top level", e.message);
        return hr_err_set(w->err, rc, "%s", e.message);
    }
    if (t->nsegs == 1 && t->segs[0].var == 0) { /* exactly one placeholder */
        const char *v = w->lookup ? w->lookup(w->ud, t->vars[0].path) : NULL;
        if (v && is_json_scalar(v)) {
            hr_buf_puts(w->out, v);
        } else {
            hr_buf_putc(w->out, '"');
            if (v) put_json(w->out, v, strlen(v));
            hr_buf_putc(w->out, '"');
        }
    } else {
        hr_buf_putc(w->out, '"');
        render(t, HR_ESC_JSON, 1, w->lookup, w->ud, w->out);
        hr_buf_putc(w->out, '"');
    }
    hr_template_free(t);
    return 0;
}

static int walk(walker *w, json_object *o) {
    int rc = 0;
    size_t mark = w->ptr.len;
    switch (json_object_get_type(o)) {
    case json_type_string: return walk_string(w, o);
    case json_type_array:
        hr_buf_putc(w->out, '[');
        for (size_t i = 0, n = json_object_array_length(o); i < n && !rc; i++) {
            if (i) hr_buf_putc(w->out, ',');
            hr_buf_printf(&w->ptr, "/%zu", i);
            rc = walk(w, json_object_array_get_idx(o, i));
            ptr_pop(&w->ptr, mark);
        }
        hr_buf_putc(w->out, ']');
        return rc;
    case json_type_object: {
        int first = 1;
        hr_buf_putc(w->out, '{');
        json_object_object_foreach(o, k, v) {
            if (rc) break;
            if (!first) hr_buf_putc(w->out, ',');
            first = 0;
            /* our writer, not hr_buf_json_key: keys get the same U+2028 and
             * UTF-8 treatment as values */
            hr_buf_putc(w->out, '"');
            put_json(w->out, k, strlen(k));
            hr_buf_append(w->out, "\":", 2);
            ptr_push(&w->ptr, k);
            rc = walk(w, v);
            ptr_pop(&w->ptr, mark);
        }
        hr_buf_putc(w->out, '}');
        return rc;
    }
    case json_type_null: hr_buf_append(w->out, "null", 4); return 0;
    default: /* numbers and booleans: json-c keeps a double's source text */
        hr_buf_puts(w->out, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        return 0;
    }
}

int hr_template_render_json_body(const char *json_text, hr_template_lookup lookup, void *ud,
                                 hr_buf *out, hr_err *err) {
    if (!json_text || !out) return hr_err_set(err, HR_EINVAL, "no JSON text");
    json_object *doc = NULL;
    size_t len = strlen(json_text), off = 0, mark = out->len;
    char msg[160];
    int rc = hr_json_decode(json_text, len, &doc, &off, msg, sizeof msg);
    if (rc == HR_ENOMEM) return hr_err_set(err, rc, "out of memory");
    if (rc) {
        cursor c = {json_text, 0, 1, 1};
        seek(&c, off < len ? off : len);
        return hr_err_setpos(err, HR_EINVAL, NULL, c.line, c.col, "invalid JSON: %s", msg);
    }
    walker w = {lookup, ud, out, {0}, err};
    hr_buf_init(&w.ptr);
    rc = walk(&w, doc);
    if (!rc && (hr_buf_failed(out) || hr_buf_failed(&w.ptr)))
        rc = hr_err_set(err, HR_ENOMEM, "out of memory");
    if (rc && !hr_buf_failed(out)) ptr_pop(out, mark);
    hr_buf_dispose(&w.ptr);
    json_object_put(doc);
    return rc;
}
