/* ytree.c: YAML/JSON text -> a small tree of hr_ynode with positions.
 *
 * We read libfyaml's event stream rather than its document tree: events
 * carry a start mark for every scalar, mapping and sequence (the document
 * API of libfyaml 0.7 exposes marks only for scalars), and building our own
 * tree lets us report duplicate keys with both positions and keep going,
 * where the document builder stops at the first one. libfyaml's own
 * diagnostics are collected through a diag object that never writes to a
 * stream, so the library stays silent and syntax errors come out as
 * name:line:column like ours. Anchors, aliases and tags are rejected: a
 * catalog is plain data, and shared subtrees would make errors point at
 * the wrong place.
 *
 * Two guards against the libfyaml 0.7.12 Debian ships, both found by
 * fuzzing: the text is checked for clean UTF-8 before parsing (bad bytes
 * can make it loop forever), and single-quoted scalars are unescaped here
 * (on runs of '' it leaks and returns the wrong text). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libfyaml.h>

#include "catalog_int.h"
#include "utf8.h"
#include "err.h"
#include "map.h"

/* Deeper than any catalog needs; bounds recursion in hr_ynode_free. */
#define MAX_DEPTH 48
/* A file with thousands of mistakes is not worth listing in full. */
#define MAX_ERRORS 1000

/* ---- error sink ---- */

void hr_esink_add(hr_esink *s, int line, int col, const char *fmt, ...) {
    if (s->count >= MAX_ERRORS) {
        s->dropped++;
        return;
    }
    if (s->count == s->cap) {
        int cap = s->cap ? s->cap * 2 : 8;
        hr_err *p = realloc(s->items, (size_t)cap * sizeof *p);
        if (!p) {
            s->oom = 1;
            return;
        }
        s->items = p;
        s->cap = cap;
    }
    hr_err *e = &s->items[s->count++];
    memset(e, 0, sizeof *e);
    e->code = HR_ECONFIG;
    e->line = line;
    e->column = col;
    snprintf(e->file, sizeof e->file, "%s", s->name ? s->name : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

static int before(const hr_err *a, const hr_err *b) {
    return a->line < b->line || (a->line == b->line && a->column < b->column);
}

void hr_esink_sort(hr_esink *s) {
    /* Insertion sort: stable, and the list is short and nearly sorted. */
    for (int i = 1; i < s->count; i++) {
        hr_err tmp = s->items[i];
        int j = i;
        while (j > 0 && before(&tmp, &s->items[j - 1])) {
            s->items[j] = s->items[j - 1];
            j--;
        }
        s->items[j] = tmp;
    }
}

void hr_esink_dispose(hr_esink *s) {
    free(s->items);
    s->items = NULL;
    s->count = s->cap = 0;
}

/* ---- nodes ---- */

void hr_ynode_free(hr_ynode *n) {
    if (!n) return;
    for (int i = 0; i < n->n; i++) hr_ynode_free(n->kids[i]);
    free(n->kids);
    free(n->str);
    free(n);
}

static hr_ynode *node_new(hr_ykind kind, int line, int col) {
    hr_ynode *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->line = line;
    n->col = col;
    return n;
}

static int add_kid(hr_ynode *p, hr_ynode *k) {
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 4;
        hr_ynode **kids = realloc(p->kids, (size_t)cap * sizeof *kids);
        if (!kids) return -1;
        p->kids = kids;
        p->cap = cap;
    }
    p->kids[p->n++] = k;
    return 0;
}

/* ---- building from events ---- */

struct builder {
    const char *text; /* the whole input, for single-quoted scalars */
    size_t len;
    hr_esink *s;
    hr_ynode *root;
    hr_ynode *stack[MAX_DEPTH];
    int depth;
    int ndocs;
    int fatal; /* stop reading: the tree cannot be trusted */
    int oom;
};

char *hr_ysq_text(const char *s, size_t n, size_t *olen) {
    char *o = malloc(n + 1);
    size_t i = 0, j = 0;
    if (!o) return NULL;
    while (i < n) {
        if (s[i] == '\'' && i + 1 < n && s[i + 1] == '\'') {
            o[j++] = '\'';
            i += 2;
        } else if (s[i] == '\n' || s[i] == '\r') {
            /* Fold: drop the line's trailing blanks and the next lines'
             * indentation; one break is a space, n + 1 breaks are n newlines. */
            size_t nb = 0;
            while (j && (o[j - 1] == ' ' || o[j - 1] == '\t')) j--;
            for (;;) {
                i += s[i] == '\r' && i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
                nb++;
                while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
                if (i >= n || (s[i] != '\n' && s[i] != '\r')) break;
            }
            if (nb == 1)
                o[j++] = ' ';
            else
                while (--nb) o[j++] = '\n';
        } else {
            o[j++] = s[i++];
        }
    }
    o[j] = 0;
    *olen = j;
    return o;
}

/* The scalar's text, owned by the caller. Single-quoted scalars are read
 * from the source: libfyaml 0.7.12's fy_token_get_text leaks a buffer and
 * returns the wrong text for runs of '' escapes ('a''''b' gives a'''). */
static char *scalar_text(struct builder *b, struct fy_token *t, size_t *len) {
    if (fy_token_scalar_style(t) == FYSS_SINGLE_QUOTED) {
        const struct fy_mark *s = fy_token_start_mark(t), *e = fy_token_end_mark(t);
        if (s && e && s->input_pos >= 1 && s->input_pos <= e->input_pos &&
            e->input_pos < b->len && b->text[s->input_pos - 1] == '\'' &&
            b->text[e->input_pos] == '\'')
            return hr_ysq_text(b->text + s->input_pos, e->input_pos - s->input_pos, len);
    }
    const char *p = fy_token_get_text(t, len);
    if (!p) *len = 0;
    char *o = malloc(*len + 1);
    if (!o) return NULL;
    if (*len) memcpy(o, p, *len);
    o[*len] = 0;
    return o;
}

const char *hr_yshow(const char *s, char *buf, size_t n) {
    size_t j = 0;
    for (; *s && j + 4 < n; s++) buf[j++] = (unsigned char)*s < 0x20 ? '?' : *s;
    if (*s) {
        /* do not cut a UTF-8 sequence in two */
        while (j && ((unsigned char)buf[j - 1] & 0xc0) == 0x80) j--;
        if (j && ((unsigned char)buf[j - 1] & 0xc0) == 0xc0) j--;
        buf[j++] = '.';
        buf[j++] = '.';
        buf[j++] = '.';
    }
    buf[j] = 0;
    return buf;
}

/* Records the source span of a scalar written on one line: what lies
 * between the quotes, or the plain text itself. */
static void scalar_span(struct builder *b, struct fy_token *t, hr_ynode *n) {
    const struct fy_mark *s = fy_token_start_mark(t), *e = fy_token_end_mark(t);
    if (!s || !e || s->line != e->line || s->input_pos > e->input_pos || e->input_pos > b->len ||
        n->style == HR_YS_BLOCK)
        return;
    n->src_off = s->input_pos;
    n->src_len = e->input_pos - s->input_pos;
}

/* The event's position, 1-based. Empty (null) scalars have no mark in
 * libfyaml; they take the position of their key, or of their container. */
static void event_pos(struct builder *b, struct fy_event *e, int *line, int *col) {
    const struct fy_mark *m = fy_event_start_mark(e);
    if (m && m->line >= 0 && m->column >= 0) {
        *line = m->line + 1;
        *col = m->column + 1;
        /* A quoted scalar's mark is past the opening quote: point at the quote. */
        if (e->type == FYET_SCALAR && *col > 1) {
            enum fy_scalar_style st = fy_token_scalar_style(e->scalar.value);
            if (st == FYSS_SINGLE_QUOTED || st == FYSS_DOUBLE_QUOTED) (*col)--;
        }
        return;
    }
    *line = *col = 1;
    if (b->depth) {
        hr_ynode *top = b->stack[b->depth - 1];
        const hr_ynode *ref = top->kind == HR_Y_MAP && top->n % 2 ? top->kids[top->n - 1] : top;
        *line = ref->line;
        *col = ref->col;
    }
}

static void attach(struct builder *b, hr_ynode *n) {
    if (!b->depth) {
        if (b->root) {
            hr_ynode_free(n); /* cannot happen with one document; be safe */
            return;
        }
        b->root = n;
        return;
    }
    if (add_kid(b->stack[b->depth - 1], n)) {
        hr_ynode_free(n);
        b->oom = b->fatal = 1;
    }
}

/* Drops duplicate and non-scalar keys, reporting each; the first wins. */
static void dedupe(struct builder *b, hr_ynode *m) {
    int npairs = m->n / 2, w = 0, check = 1;
    hr_map *seen = NULL;
    char sh[80];
    if (npairs > 8 && !(seen = hr_map_new((size_t)npairs))) {
        b->oom = b->fatal = 1;
        return;
    }
    for (int i = 0; i + 1 < m->n; i += 2) {
        hr_ynode *k = m->kids[i], *v = m->kids[i + 1];
        const hr_ynode *first = NULL;
        if (k->kind != HR_Y_SCALAR) {
            hr_esink_add(b->s, k->line, k->col, "expected a plain key, got a %s",
                         k->kind == HR_Y_MAP ? "mapping" : "list");
            goto drop;
        }
        if (check && seen) {
            first = hr_map_get(seen, k->str);
        } else if (check) {
            for (int j = 0; j < w && !first; j += 2)
                if (strcmp(m->kids[j]->str, k->str) == 0) first = m->kids[j];
        }
        if (first) {
            hr_esink_add(b->s, k->line, k->col, "duplicate key '%s' (first at %d:%d)",
                         hr_yshow(k->str, sh, sizeof sh), first->line, first->col);
            goto drop;
        }
        if (seen) {
            int err;
            hr_map_put(seen, k->str, k, &err);
            if (err) {
                /* Out of memory: keep the pairs, give up on the check. */
                b->oom = b->fatal = 1;
                hr_map_free(seen);
                seen = NULL;
                check = 0;
            }
        }
        m->kids[w++] = k;
        m->kids[w++] = v;
        continue;
    drop:
        hr_ynode_free(k);
        hr_ynode_free(v);
    }
    if (m->n % 2) m->kids[w++] = m->kids[m->n - 1]; /* never from the parser */
    m->n = w;
    hr_map_free(seen);
}

static void unsupported(struct builder *b, int line, int col, struct fy_token *anchor,
                        struct fy_token *tag) {
    if (anchor) hr_esink_add(b->s, line, col, "anchors and aliases are not supported");
    if (tag) hr_esink_add(b->s, line, col, "tags are not supported");
}

static void on_event(struct builder *b, struct fy_event *e) {
    int line, col;
    hr_ynode *n = NULL;
    switch (e->type) {
    case FYET_DOCUMENT_START:
        if (++b->ndocs > 1) {
            event_pos(b, e, &line, &col);
            hr_esink_add(b->s, line, col, "expected a single YAML document");
            b->fatal = 1;
        }
        return;
    case FYET_ALIAS:
        event_pos(b, e, &line, &col);
        hr_esink_add(b->s, line, col, "anchors and aliases are not supported");
        /* Stand in a null so the mapping keeps its key/value shape. */
        if (!(n = node_new(HR_Y_SCALAR, line, col)) || !(n->str = calloc(1, 1))) goto oom;
        attach(b, n);
        return;
    case FYET_SCALAR: {
        size_t len = 0;
        enum fy_scalar_style st = fy_token_scalar_style(e->scalar.value);
        event_pos(b, e, &line, &col);
        unsupported(b, line, col, e->scalar.anchor, e->scalar.tag);
        if (!(n = node_new(HR_Y_SCALAR, line, col)) ||
            !(n->str = scalar_text(b, e->scalar.value, &len)))
            goto oom;
        n->quoted = st != FYSS_PLAIN && st != FYSS_ANY;
        n->style = st == FYSS_SINGLE_QUOTED   ? HR_YS_SINGLE
                   : st == FYSS_DOUBLE_QUOTED ? HR_YS_DOUBLE
                   : n->quoted                ? HR_YS_BLOCK
                                              : HR_YS_PLAIN;
        scalar_span(b, e->scalar.value, n);
        if (strlen(n->str) != len)
            hr_esink_add(b->s, line, col, "NUL character in a string");
        attach(b, n);
        return;
    }
    case FYET_MAPPING_START:
    case FYET_SEQUENCE_START: {
        int map = e->type == FYET_MAPPING_START;
        event_pos(b, e, &line, &col);
        if (map)
            unsupported(b, line, col, e->mapping_start.anchor, e->mapping_start.tag);
        else
            unsupported(b, line, col, e->sequence_start.anchor, e->sequence_start.tag);
        if (b->depth == MAX_DEPTH) {
            hr_esink_add(b->s, line, col, "nesting too deep (more than %d levels)", MAX_DEPTH);
            b->fatal = 1;
            return;
        }
        if (!(n = node_new(map ? HR_Y_MAP : HR_Y_SEQ, line, col))) goto oom;
        attach(b, n);
        if (!b->fatal) b->stack[b->depth++] = n;
        return;
    }
    case FYET_MAPPING_END:
    case FYET_SEQUENCE_END:
        if (!b->depth) return;
        n = b->stack[--b->depth];
        if (n->kind == HR_Y_MAP) dedupe(b, n);
        return;
    default:
        return;
    }
oom:
    hr_ynode_free(n);
    b->oom = b->fatal = 1;
}


/* YAML allows only printable characters in a stream, and libfyaml 0.7 can
 * loop forever on some invalid UTF-8 (upstream issue #101), so the text is
 * checked before the parser sees it. Columns count characters. */
static int check_text(hr_esink *s, const char *text, size_t n) {
    const unsigned char *p = (const unsigned char *)text;
    int line = 1, col = 1;
    for (size_t i = 0; i < n;) {
        uint32_t c = 0;
        size_t len = hr_utf8_decode(p + i, n - i, &c);
        if (!len) {
            hr_esink_add(s, line, col, "invalid UTF-8 (byte 0x%02x)", p[i]);
            return -1;
        }
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f ||
            (c >= 0x80 && c <= 0x9f && c != 0x85) || c == 0xfffe || c == 0xffff) {
            hr_esink_add(s, line, col, "invalid character U+%04X", (unsigned)c);
            return -1;
        }
        i += len;
        if (c == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return 0;
}

/* libfyaml must never print: errors are collected, anything else dropped. */
static void diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len) {}

int hr_ytree_parse(const char *text, size_t len, hr_esink *s, hr_ynode **root) {
    struct builder b = {.text = text, .len = text ? len : 0, .s = s};
    struct fy_diag *diag = NULL;
    struct fy_parser *p = NULL;
    struct fy_event *e;
    struct fy_diag_cfg dc;
    struct fy_parse_cfg pc = {0};
    int rc = 0, before = s->count;

    *root = NULL;
    if (check_text(s, text, text ? len : 0)) {
        rc = HR_ECONFIG;
        goto out;
    }
    fy_diag_cfg_default(&dc);
    dc.fp = NULL;
    dc.output_fn = diag_discard;
    dc.colorize = false;
    if (!(diag = fy_diag_create(&dc))) {
        rc = HR_ENOMEM;
        goto out;
    }
    fy_diag_set_collect_errors(diag, true);
    pc.flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2;
    pc.diag = diag;
    if (!(p = fy_parser_create(&pc)) || fy_parser_set_string(p, text ? text : "", text ? len : 0)) {
        rc = HR_ENOMEM;
        goto out;
    }
    while (!b.fatal && (e = fy_parser_parse(p))) {
        on_event(&b, e);
        fy_parser_event_free(p, e);
    }
    if (b.oom) {
        rc = HR_ENOMEM;
        goto out;
    }
    if (fy_parser_get_stream_error(p)) {
        void *it = NULL;
        struct fy_diag_error *de;
        while ((de = fy_diag_errors_iterate(diag, &it))) {
            if (de->type < FYET_ERROR) continue;
            hr_esink_add(s, de->line > 0 ? de->line : 1, de->column > 0 ? de->column : 1,
                         "invalid YAML: %s", de->msg ? de->msg : "syntax error");
        }
        b.fatal = 1;
    }
    if (b.fatal) {
        if (s->count == before && !s->dropped) hr_esink_add(s, 1, 1, "invalid YAML");
        rc = HR_ECONFIG;
    }
out:
    if (rc)
        hr_ynode_free(b.root);
    else
        *root = b.root;
    if (p) fy_parser_destroy(p);
    if (diag) fy_diag_destroy(diag);
    return rc;
}
