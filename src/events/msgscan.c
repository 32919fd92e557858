/* msgscan.c: a Segment message read from its JSON text in one pass of
 * yajl's event parser, without a tree. An import spent a third of the
 * server's CPU building json-c trees, reading a dozen members from each and
 * freeing it; this reads the same members as they go by.
 *
 * What is kept: the root's members, and the plain values (strings, numbers,
 * booleans, null) directly under "properties" and "context", which is what
 * meters, sums and the account lookup read. A path that reaches past that
 * (into a nested object, or past a message with more values than fit) gets
 * the json-c tree after all, built from the text once (hr_msg_value).
 * Values read either way are the same: integers print as json-c prints
 * them, decimals keep their text as json-c does. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "err.h"
#include "jsonbody.h"
#include "msg_int.h"

#define SCAN_FIELDS 40
/* json-c's tokener (hr_json_decode) refuses deeper nesting, so do we. */
#define SCAN_DEPTH 64

/* Where a kept value sits. */
enum { P_ROOT, P_PROPERTIES, P_CONTEXT, P_NONE };

typedef struct sfield {
    int parent;       /* P_ROOT, P_PROPERTIES, P_CONTEXT; P_NONE: dropped */
    hr_jv_type kind;
    const char *key;
    const char *str;  /* strings, numbers */
    double num;
} sfield;

struct hr_msg_scan {
    json_object *tree; /* identify and group calls, or built by hr_msg_value */
    int nf, over;      /* over: a value did not fit: only the tree answers */
    sfield f[SCAN_FIELDS];
    size_t cap, used;
    char mem[];        /* the kept keys and strings */
};

/* Root members the message is known by (K_OTHER: any other). */
enum {
    K_OTHER,
#define K_ID(member, name) K_##member,
    HR_MSG_MEMBERS(K_ID)
#undef K_ID
};

typedef struct sstate {
    struct hr_msg_scan *sc;
    hr_msg_fields *mf;
    int depth;           /* 0: before the root; 1: in the root object; ... */
    uint64_t in_array;   /* bit d: the container at depth d is an array */
    hr_jv_type root;     /* the root value's kind */
    int parent;          /* at depth 2: the root member we are in (P_*) */
    const char *key;     /* the current member's key, when kept */
    int top;             /* the current root member (K_*) */
    const char *why;     /* why the parse was cancelled (NULL: out of room) */
    yajl_handle h;
    size_t end;          /* just past the root object */
} sstate;

/* By length first (a constant each: no call for most keys): every root
 * member of every message comes here. */
static int top_key(const char *k, size_t n) {
#define K_MATCH(member, name) \
    if (n == sizeof name - 1 && !memcmp(k, name, n)) return K_##member;
    HR_MSG_MEMBERS(K_MATCH)
#undef K_MATCH
    return K_OTHER;
}

/* A copy of s[0..n) in the scan's memory; NULL when it is full. */
static const char *keep(struct hr_msg_scan *sc, const char *s, size_t n) {
    if (sc->used + n + 1 > sc->cap) return NULL;
    char *p = sc->mem + sc->used;
    memcpy(p, s, n);
    p[n] = 0;
    sc->used += n + 1;
    return p;
}

static hr_mfield *field_for(hr_msg_fields *mf, int top) {
    switch (top) {
#define K_FIELD(member, name) case K_##member: return &mf->member;
        HR_MSG_MEMBERS(K_FIELD)
#undef K_FIELD
    }
    return NULL;
}

/* One value (a container as its kind) where the parse stands. */
static void put(sstate *st, hr_jv_type kind, const char *s, size_t n, double num) {
    struct hr_msg_scan *sc = st->sc;
    int parent;
    if (st->depth == 0) {
        st->root = kind;
        return;
    }
    if (st->depth == 1) {
        parent = P_ROOT;
    } else if (st->depth == 2 && st->parent != P_NONE && !(st->in_array >> 2 & 1)) {
        parent = st->parent;
    } else {
        return;
    }
    if (!st->key) { /* its key did not fit */
        sc->over = 1;
        return;
    }
    const char *str = s && (kind == HR_JV_STRING || kind == HR_JV_INT || kind == HR_JV_DOUBLE)
                          ? keep(sc, s, n) : kind == HR_JV_BOOL ? s : NULL;
    if (s && !str) sc->over = 1;
    if (parent == P_ROOT) {
        hr_mfield *f = field_for(st->mf, st->top);
        if (f) *f = (hr_mfield){kind, str};
    } else if (parent == P_CONTEXT && !strcmp(st->key, "groupId")) {
        st->mf->context_group_id = (hr_mfield){kind, str};
    } else if (parent == P_PROPERTIES && !strcmp(st->key, "accountId")) {
        st->mf->properties_account_id = (hr_mfield){kind, str};
    }
    if (sc->nf == SCAN_FIELDS || (s && !str)) {
        sc->over = 1;
        return;
    }
    sc->f[sc->nf++] = (sfield){parent, kind, st->key, str, num};
}

static int on_null(void *ud) {
    put(ud, HR_JV_NULL, NULL, 0, 0);
    return 1;
}

static int on_bool(void *ud, int b) {
    put(ud, HR_JV_BOOL, b ? "true" : "false", b ? 4 : 5, 0);
    return 1;
}

/* A number's text, classified as json-c does: with '.', 'e' or 'E' a
 * double (its text kept), else an integer (printed as int64, or uint64
 * past INT64_MAX; out of range clamps, as strtoll and strtoull do). */
static int on_number(void *ud, const char *s, size_t n) {
    sstate *st = ud;
    char small[64], *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf) return 0; /* why stays NULL: out of memory */
    memcpy(buf, s, n);
    buf[n] = 0;
    int rc = 1;
    if (memchr(s, '.', n) || memchr(s, 'e', n) || memchr(s, 'E', n)) {
        double d = strtod(buf, NULL);
        if (!isfinite(d)) {
            st->why = "NaN and Infinity are not JSON numbers";
            rc = 0;
        } else {
            put(st, HR_JV_DOUBLE, s, n, d);
        }
    } else {
        char text[24];
        int len;
        double d;
        if (buf[0] == '-') {
            long long v = strtoll(buf, NULL, 10);
            len = snprintf(text, sizeof text, "%lld", v);
            d = (double)v;
        } else {
            unsigned long long v = strtoull(buf, NULL, 10);
            len = v <= INT64_MAX ? snprintf(text, sizeof text, "%lld", (long long)v)
                                 : snprintf(text, sizeof text, "%llu", v);
            d = (double)v;
        }
        put(st, HR_JV_INT, text, (size_t)len, d);
    }
    if (buf != small) free(buf);
    return rc;
}

static int on_string(void *ud, const unsigned char *s, size_t n) {
    put(ud, HR_JV_STRING, (const char *)s, n, 0);
    return 1;
}

/* Into a container: it is a value of its parent, then a level of its own. */
static int open_container(sstate *st, hr_jv_type kind) {
    put(st, kind, NULL, 0, 0);
    if (st->depth == 1)
        st->parent = kind != HR_JV_OBJECT        ? P_NONE
                     : st->top == K_properties ? P_PROPERTIES
                     : st->top == K_context    ? P_CONTEXT
                                               : P_NONE;
    if (++st->depth > SCAN_DEPTH) {
        st->why = "nested deeper than 64 levels";
        return 0;
    }
    if (kind == HR_JV_ARRAY) st->in_array |= 1ULL << (st->depth & 63);
    else st->in_array &= ~(1ULL << (st->depth & 63));
    st->key = NULL;
    return 1;
}

static int on_start_map(void *ud) { return open_container(ud, HR_JV_OBJECT); }
static int on_start_array(void *ud) { return open_container(ud, HR_JV_ARRAY); }

static int on_end(void *ud) {
    sstate *st = ud;
    if (--st->depth == 0) st->end = yajl_get_bytes_consumed(st->h);
    st->key = NULL;
    return 1;
}

/* Only JSON's white space after the root? (yajl misses some trailing data,
 * an unterminated string for one.) */
static int rest_is_space(const char *text, size_t from, size_t len) {
    for (size_t i = from; i < len; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') return 0;
    return 1;
}

static int on_key(void *ud, const unsigned char *s, size_t n) {
    sstate *st = ud;
    st->key = NULL;
    if (st->depth == 1) {
        st->key = keep(st->sc, (const char *)s, n);
        st->top = st->key ? top_key(st->key, n) : K_OTHER;
        if (!st->key) st->sc->over = 1;
        /* a repeated "properties" or "context" replaces the earlier one, as
         * in json-c: what was kept of it no longer counts */
        int old = st->top == K_properties ? P_PROPERTIES : st->top == K_context ? P_CONTEXT : P_NONE;
        for (int i = 0; old != P_NONE && i < st->sc->nf; i++)
            if (st->sc->f[i].parent == old) st->sc->f[i].parent = P_NONE;
        if (old == P_PROPERTIES) st->mf->properties_account_id = (hr_mfield){HR_JV_ABSENT, NULL};
        if (old == P_CONTEXT) st->mf->context_group_id = (hr_mfield){HR_JV_ABSENT, NULL};
    } else if (st->depth == 2 && st->parent != P_NONE) {
        st->key = keep(st->sc, (const char *)s, n);
        if (!st->key) st->sc->over = 1;
    }
    return 1;
}

static const yajl_callbacks callbacks = {
    on_null, on_bool, NULL, NULL, on_number, on_string,
    on_start_map, on_key, on_end, on_start_array, on_end,
};

/* The message as hr_msg_parse reads it, from its json-c tree (identify and
 * group calls, whose traits are stored; text yajl refused). */
static int parse_tree(const char *text, size_t len, int type, int64_t batch_sent_at_ms,
                      int64_t now_ms, hr_msg *out, hr_err *err) {
    json_object *o = NULL;
    size_t off;
    char msg[160];
    int rc = hr_json_decode(text, len, &o, &off, msg, sizeof msg);
    if (rc) return hr_err_set(err, rc, "malformed JSON at byte %zu: %s", off, msg);
    struct hr_msg_scan *sc = out->scan;
    rc = hr_msg_parse(o, type, len, batch_sent_at_ms, now_ms, out, err);
    sc->tree = o; /* owned, also on error */
    out->scan = sc;
    out->text = text;
    out->text_len = len;
    return rc;
}

int hr_msg_scan(const char *text, size_t len, int type, int64_t batch_sent_at_ms, int64_t now_ms,
                hr_msg *out, hr_err *err) {
    memset(out, 0, sizeof *out);
    struct hr_msg_scan *sc = malloc(sizeof *sc + len + 64);
    if (!sc) return hr_err_set(err, HR_ENOMEM, "out of memory");
    sc->tree = NULL;
    sc->nf = sc->over = 0;
    sc->cap = len + 64;
    sc->used = 0;
    out->scan = sc;
    hr_msg_fields mf;
    memset(&mf, 0, sizeof mf);
    sstate st = {.sc = sc, .mf = &mf, .root = HR_JV_ABSENT, .parent = P_NONE};
    /* yajl takes vertical tabs and form feeds as white space; JSON and
     * json-c do not */
    if (memchr(text, '\v', len) || memchr(text, '\f', len))
        return parse_tree(text, len, type, batch_sent_at_ms, now_ms, out, err);
    yajl_handle h = yajl_alloc(&callbacks, NULL, &st);
    if (!h) return hr_err_set(err, HR_ENOMEM, "out of memory");
    st.h = h;
    yajl_status ys = yajl_parse(h, (const unsigned char *)text, len);
    if (ys == yajl_status_ok) ys = yajl_complete_parse(h);
    yajl_free(h);
    if (ys == yajl_status_client_canceled && !st.why) return hr_err_set(err, HR_ENOMEM, "out of memory");
    /* Not a well-formed object to yajl: json-c decides, in its words, as
     * for a message of the live API (it also takes raw control characters
     * in strings, and yajl misses trailing data after a top-level string).
     * Rare, and both readers then agree on every text. */
    if (ys != yajl_status_ok || st.root != HR_JV_OBJECT || !rest_is_space(text, st.end, len))
        return parse_tree(text, len, type, batch_sent_at_ms, now_ms, out, err);
    int t = type >= 0 ? type
            : mf.type.kind == HR_JV_STRING ? hr_msg_type_parse(mf.type.s)
            : type == HR_MSG_OWN_TYPE_OR_TRACK ? HR_MSG_TRACK /* none, or null */
                                                : -1;
    if (t == HR_MSG_IDENTIFY || t == HR_MSG_GROUP)
        return parse_tree(text, len, type, batch_sent_at_ms, now_ms, out, err);
    out->text = text;
    out->text_len = len;
    return hr_msg_finish(&mf, type, len, batch_sent_at_ms, now_ms, out, err);
}

char *hr_msg_room(hr_msg *m, size_t n) {
    struct hr_msg_scan *sc = m->scan;
    if (!sc || sc->used + n > sc->cap) return NULL;
    sc->used += n;
    return sc->mem + sc->used - n;
}

void hr_msg_prefetch(const hr_msg *m) {
    const char *p = (const char *)m->scan;
    if (!p) return;
    /* the fields a lookup walks; the keys follow in mem */
    size_t n = offsetof(struct hr_msg_scan, f) + (size_t)m->scan->nf * sizeof(sfield);
    for (size_t off = 0; off < n && off < 1024; off += 64) __builtin_prefetch(p + off);
}

void hr_msg_dispose(hr_msg *m) {
    if (!m->scan) return;
    json_object_put(m->scan->tree);
    free(m->scan);
    memset(m, 0, sizeof *m);
}

/* The last kept value named key[0..n) under parent (a repeated member: the
 * last one counts, as in json-c). */
static const sfield *find(const struct hr_msg_scan *sc, int parent, const char *key, size_t n) {
    for (int i = sc->nf - 1; i >= 0; i--) {
        const sfield *f = &sc->f[i];
        if (f->parent == parent && !strncmp(f->key, key, n) && !f->key[n]) return f;
    }
    return NULL;
}

/* 1 with *out answered from what the scan kept, 0 when only the tree can
 * answer. */
static int scan_value(const struct hr_msg_scan *sc, const char *path, hr_jval *out) {
    *out = (hr_jval){HR_JV_ABSENT, NULL, 0};
    /* not all kept: what was kept may be an earlier copy of a repeated member */
    if (sc->over) return 0;
    size_t len = strlen(path);
    if (!len || path[len - 1] == '.') return 0; /* names an object itself */
    const char *dot = strchr(path, '.');
    size_t n = dot ? (size_t)(dot - path) : strlen(path);
    const sfield *f = find(sc, P_ROOT, path, n);
    if (f && dot) {
        /* a member of a scalar is not there; of an object, kept or not */
        if (f->kind != HR_JV_OBJECT) return 1;
        int parent = n == 10 && !strncmp(path, "properties", 10) ? P_PROPERTIES
                     : n == 7 && !strncmp(path, "context", 7)    ? P_CONTEXT
                                                                 : P_NONE;
        if (parent == P_NONE) return 0;
        path = dot + 1;
        dot = strchr(path, '.');
        n = dot ? (size_t)(dot - path) : strlen(path);
        f = find(sc, parent, path, n);
        if (f && dot) return f->kind != HR_JV_OBJECT;
    }
    if (!f) return 1;
    if (f->kind == HR_JV_OBJECT || f->kind == HR_JV_ARRAY) return 0;
    if (f->kind != HR_JV_NULL) *out = (hr_jval){f->kind, f->str, f->num};
    return 1;
}

int hr_msg_value(hr_msg *m, const char *path, hr_jval *out) {
    if (!m->msg && m->scan && scan_value(m->scan, path, out)) return 0;
    if (!m->msg && m->scan && m->text) {
        json_object *o = NULL;
        size_t off;
        char why[160];
        int rc = hr_json_decode(m->text, m->text_len, &o, &off, why, sizeof why);
        if (rc == HR_ENOMEM) return rc;
        /* valid to yajl, not to json-c: the value is not there for either */
        if (rc) {
            *out = (hr_jval){HR_JV_ABSENT, NULL, 0};
            return 0;
        }
        m->scan->tree = m->msg = o;
    }
    hr_json_value_at(m->msg, path, out);
    if (out->type == HR_JV_NULL) out->type = HR_JV_ABSENT;
    return 0;
}
