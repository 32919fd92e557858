/* catalog.c: validates the tree of a headroom.yaml and builds the immutable
 * catalog snapshot (meters, features, plans with versions, add-ons, trials
 * and config overrides).
 *
 * Validation never stops at the first mistake: every section is checked and
 * every error recorded with its line:column, so `headroom validate` can list
 * them all; a catalog is only handed out when there were none. Sections are
 * read in dependency order (features, then plans, then add-ons ...) whatever
 * their order in the file, and errors are sorted by position at the end.
 * After an error in a definition (a feature without a type, say) the name is
 * still registered, so its users do not produce a cascade of follow-ups. */
#include "catalog.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "catalog_int.h"
#include "err.h"
#include "intern.h"
#include "intern.h"
#include "playbooks/template.h"
#include "rules/rules.h"
#include "map.h"
#include "timeutil.h"

/* Bounds that keep arithmetic on prices and limits far from overflow. */
#define MAX_PRICE (1000000000LL * HR_MICROS) /* a billion major units */
#define MAX_LIMIT 1000000000000000LL         /* 10^15: beyond that, say unlimited */
#define MAX_SMALL 1000000                    /* days, versions, quantities */
#define MAX_STR 1000
#define MAX_FILE (16 << 20)
#define MAX_WHERE 16                         /* clauses in a meter's where */

typedef struct ctx {
    hr_esink *es;
    hr_catalog *c;
    unsigned char *feat_bad; /* per feature: its definition had an error */
    int no_features;         /* 'features' unusable: do not report unknown ones */
    int no_plans;
    const hr_ynode *first_price; /* earliest price > 0, for "price without currency" */
    int no_meters;           /* 'meters' unusable: do not report unknown ones */
    const char *text;        /* the source, for positions inside a scalar */
    size_t len;
    int oom;
    /* catalog names for compiling rules, made on first use */
    int names_ready;
    const char **fkeys, **mkeys, **akeys, **pkeys;
} ctx;

/* ---- small helpers ---- */

static void bad(ctx *x, const hr_ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void bad(ctx *x, const hr_ynode *n, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hr_esink_add(x->es, n ? n->line : 1, n ? n->col : 1, "%s", msg);
}

static char *xdup(ctx *x, const char *s) {
    char *p = strdup(s);
    if (!p) x->oom = 1;
    return p;
}

static void *xcalloc(ctx *x, size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) x->oom = 1;
    return p;
}

static int is_null(const hr_ynode *n) {
    if (n->kind != HR_Y_SCALAR || n->quoted) return 0;
    const char *s = n->str;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

static int is_map(const hr_ynode *n) { return n && n->kind == HR_Y_MAP; }

/* "a mapping", "a list", "null" or the quoted scalar, for "got ..." */
static const char *got(const hr_ynode *n, char *buf, size_t size) {
    if (n->kind == HR_Y_MAP) return "a mapping";
    if (n->kind == HR_Y_SEQ) return "a list";
    if (is_null(n)) return "nothing";
    char sh[64];
    snprintf(buf, size, "'%s'", hr_yshow(n->str, sh, sizeof sh));
    return buf;
}

/* Plain true/false; 0 ok, -1 not a boolean. */
static int scan_bool(const hr_ynode *n, int *out) {
    if (n->kind != HR_Y_SCALAR || n->quoted) return -1;
    const char *s = n->str;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
        *out = 0;
        return 0;
    }
    return -1;
}

/* A decimal integer with optional sign: 0 ok, -1 not an integer, -2 out of
 * int64 range. */
static int scan_int(const char *s, int64_t *out) {
    int neg = 0;
    uint64_t u = 0;
    if (*s == '+' || *s == '-') neg = *s++ == '-';
    if (*s < '0' || *s > '9') return -1;
    int over = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (u > ((uint64_t)INT64_MAX - d) / 10)
            over = 1;
        else
            u = u * 10 + d;
    }
    if (*s) return -1;
    if (over) return -2;
    *out = neg ? -(int64_t)u : (int64_t)u;
    return 0;
}

/* A decimal number (optionally with exponent) as micros, rounded half up on
 * the seventh decimal, without going through floating point: the digits are
 * kept as text, value = 0.D x 10^E. 0 ok, -1 not a number, -2 negative,
 * -3 too large. */
static int scan_price(const char *s, int64_t *out) {
    char dig[40];
    int nd = 0, neg = 0, point = 0, any = 0;
    long e = 0;
    if (*s == '+' || *s == '-') neg = *s++ == '-';
    for (;; s++) {
        if (*s >= '0' && *s <= '9') {
            any = 1;
            if (nd == 0 && *s == '0') {
                if (point) e--; /* 0.00x: leading zeros of the fraction */
                continue;
            }
            if (nd < (int)sizeof dig) dig[nd++] = *s;
            if (!point) e++;
        } else if (*s == '.' && !point) {
            point = 1;
        } else {
            break;
        }
    }
    if (!any) return -1;
    if (*s == 'e' || *s == 'E') {
        int eneg = 0;
        long x = 0;
        s++;
        if (*s == '+' || *s == '-') eneg = *s++ == '-';
        if (*s < '0' || *s > '9') return -1;
        for (; *s >= '0' && *s <= '9'; s++)
            if (x < 100000) x = x * 10 + (*s - '0');
        e += eneg ? -x : x;
    }
    if (*s) return -1;
    if (nd == 0) {
        *out = 0;
        return 0;
    }
    if (neg) return -2;
    long k = e + 6; /* digits of D that land in the integer part of micros */
    if (k > 19) return -3;
    uint64_t u = 0;
    if (k == 0) u = dig[0] >= '5';
    for (long i = 0; i < k; i++) u = u * 10 + (uint64_t)(i < nd ? dig[i] - '0' : 0);
    if (k > 0 && k < nd && dig[k] >= '5') u++;
    if (u > (uint64_t)INT64_MAX) return -3;
    *out = (int64_t)u;
    return 0;
}

/* Feature, plan and add-on keys appear in URLs and SDK calls. */
static int valid_id(const char *s) {
    size_t n = strlen(s);
    if (!n || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '_' || (i > 0 && (ch == '-' || ch == '.'));
        if (!ok) return 0;
    }
    return 1;
}

/* Strings must survive a trip through JSON and back through the YAML
 * reader, so characters YAML does not allow in a document are refused:
 * C0 and C1 controls (except tab, and line breaks when nl is set), DEL,
 * U+FFFE and U+FFFF. */
static int printable(const char *s, int nl) {
    const unsigned char *p = (const unsigned char *)s;
    for (; *p; p++) {
        if (nl && (*p == '\n' || *p == '\r')) continue;
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f) return 0;
        if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f && p[1] != 0x85) return 0;
        if (p[0] == 0xef && p[1] == 0xbf && (p[2] == 0xbe || p[2] == 0xbf)) return 0;
    }
    return 1;
}

static int check_id(ctx *x, const hr_ynode *k, const char *what) {
    char sh[80];
    if (valid_id(k->str)) return 0;
    bad(x, k, "invalid %s name '%s': use letters, digits, '_', '-' and '.' (at most 64)", what,
        hr_yshow(k->str, sh, sizeof sh));
    return -1;
}

/* Edit distance for "did you mean" hints; short strings only. */
static int distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* "Did you mean": offer candidates one by one, then print the closest
 * (at most 2 edits away) as " (did you mean 'x'?)", or "" if none is. */
typedef struct near {
    const char *s, *pick;
    int best;
} near;

static void near_try(near *h, const char *cand) {
    int d = distance(h->s, cand);
    if (d < h->best && d < (int)strlen(cand)) {
        h->best = d;
        h->pick = cand;
    }
}

static const char *near_str(const near *h, char *buf, size_t size) {
    buf[0] = 0;
    if (h->pick) snprintf(buf, size, " (did you mean '%s'?)", h->pick);
    return buf;
}

static const char *hint(const char *s, const char *const *cands, int n, char *buf, size_t size) {
    near h = {s, NULL, 3};
    for (int i = 0; i < n; i++) near_try(&h, cands[i]);
    return near_str(&h, buf, size);
}

static const char *feature_hint(ctx *x, const char *s, char *buf, size_t size) {
    near h = {s, NULL, 3};
    for (int i = 0; i < x->c->nfeatures; i++) near_try(&h, x->c->features[i].key);
    return near_str(&h, buf, size);
}

/* Picks the known keys of a mapping into vals[] (NULL when absent) and
 * reports the others. in is "in plan 'pro'" style context or NULL. */
static void fields(ctx *x, const hr_ynode *m, const char *const *keys, int nkeys,
                   const hr_ynode **vals, const char *in) {
    char sh[80], hb[96];
    for (int i = 0; i < nkeys; i++) vals[i] = NULL;
    for (int i = 0; i + 1 < m->n; i += 2) {
        const hr_ynode *k = m->kids[i];
        int j = 0;
        while (j < nkeys && strcmp(keys[j], k->str)) j++;
        if (j < nkeys) {
            vals[j] = m->kids[i + 1];
            continue;
        }
        bad(x, k, "unknown key '%s'%s%s%s", hr_yshow(k->str, sh, sizeof sh), in ? " " : "",
            in ? in : "", hint(k->str, keys, nkeys, hb, sizeof hb));
    }
}

static int want_map(ctx *x, const hr_ynode *n, const char *what) {
    char g[96];
    if (is_map(n)) return 0;
    bad(x, n, "expected a mapping for %s, got %s", what, got(n, g, sizeof g));
    return -1;
}

/* An integer in [min, max]; 0 ok, -1 reported. */
static int get_int(ctx *x, const hr_ynode *n, const char *what, int64_t min, int64_t max,
                   int64_t *out) {
    char g[96];
    int64_t v;
    int r = n->kind == HR_Y_SCALAR && !n->quoted ? scan_int(n->str, &v) : -1;
    if (r == -1) {
        bad(x, n, "expected an integer for %s, got %s", what, got(n, g, sizeof g));
        return -1;
    }
    if (r == -2 || v > max) {
        bad(x, n, "%s is too large (at most %lld)", what, (long long)max);
        return -1;
    }
    if (v < min) {
        bad(x, n, "%s must be at least %lld", what, (long long)min);
        return -1;
    }
    *out = v;
    return 0;
}

static int get_bool(ctx *x, const hr_ynode *n, const char *what, int *out) {
    char g[96];
    if (!scan_bool(n, out)) return 0;
    bad(x, n, "expected true or false for %s, got %s", what, got(n, g, sizeof g));
    return -1;
}

/* A non-empty printable string (any scalar but null); nl: line breaks are
 * allowed too. */
static int get_text(ctx *x, const hr_ynode *n, const char *what, int nl, const char **out) {
    char g[96];
    if (n->kind != HR_Y_SCALAR || is_null(n)) {
        bad(x, n, "expected a string for %s, got %s", what, got(n, g, sizeof g));
        return -1;
    }
    if (!*n->str) {
        bad(x, n, "%s must not be empty", what);
        return -1;
    }
    if (strlen(n->str) > MAX_STR) {
        bad(x, n, "%s is too long (at most %d bytes)", what, MAX_STR);
        return -1;
    }
    if (!printable(n->str, nl)) {
        bad(x, n, "%s contains a control character or a non-character", what);
        return -1;
    }
    *out = n->str;
    return 0;
}

static int get_str(ctx *x, const hr_ynode *n, const char *what, const char **out) {
    return get_text(x, n, what, 0, out);
}

static void note_price(ctx *x, const hr_ynode *n, int64_t micros) {
    const hr_ynode *f = x->first_price;
    if (micros > 0 && (!f || n->line < f->line || (n->line == f->line && n->col < f->col)))
        x->first_price = n;
}

/* A price in major units (number or quoted decimal) as micros. */
static int get_price(ctx *x, const hr_ynode *n, const char *what, int64_t *out) {
    char g[96];
    int64_t v = 0;
    int r = n->kind == HR_Y_SCALAR && !is_null(n) ? scan_price(n->str, &v) : -1;
    if (r == -1) {
        bad(x, n, "expected a number for %s, got %s", what, got(n, g, sizeof g));
        return -1;
    }
    if (r == -2) {
        bad(x, n, "negative price: %s must be >= 0", what);
        return -1;
    }
    if (r == -3 || v > MAX_PRICE) {
        bad(x, n, "%s is too large", what);
        return -1;
    }
    note_price(x, n, v);
    *out = v;
    return 0;
}

static int get_interval(ctx *x, const hr_ynode *n, int addon, hr_interval *out) {
    char g[96];
    const char *s = n->kind == HR_Y_SCALAR ? n->str : "";
    if (!strcmp(s, "month")) {
        *out = HR_INTERVAL_MONTH;
    } else if (!strcmp(s, "year")) {
        *out = HR_INTERVAL_YEAR;
    } else if (!strcmp(s, "one_time") && addon) {
        *out = HR_INTERVAL_ONE_TIME;
    } else if (!strcmp(s, "one_time")) {
        bad(x, n, "interval one_time is only for add-ons: a plan is billed per month or year");
        return -1;
    } else {
        bad(x, n, "expected %s for interval, got %s",
            addon ? "month, year or one_time" : "month or year", got(n, g, sizeof g));
        return -1;
    }
    return 0;
}

/* The index maps hold index + 1, so that 0 (NULL) means absent. */
static int lookup(const hr_map *m, const char *key) {
    void *v = m && key ? hr_map_get(m, key) : NULL;
    return v ? (int)(intptr_t)v - 1 : -1;
}

static int feature_ix(const hr_catalog *c, const char *key) { return lookup(c->feature_ix, key); }

static int plan_ix(const hr_catalog *c, const char *key) { return lookup(c->plan_ix, key); }

static void index_put(ctx *x, hr_map *m, const char *key, int i) {
    int err;
    hr_map_put(m, key, (void *)(intptr_t)(i + 1), &err);
    if (err) x->oom = 1;
}

/* ---- sections ---- */

static void currency(ctx *x, const hr_ynode *n) {
    static const char *const zero[] = {"JPY", "KRW", "VND", "CLP", "ISK"};
    static const char *const three[] = {"KWD", "BHD", "OMR", "JOD", "TND"};
    char g[96];
    hr_catalog *c = x->c;
    c->currency_decimals = 2;
    if (!n || is_null(n)) return;
    const char *s = n->kind == HR_Y_SCALAR ? n->str : "";
    if (strlen(s) != 3 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' || s[2] < 'A' ||
        s[2] > 'Z') {
        bad(x, n, "currency must be a 3-letter upper-case ISO 4217 code like USD, got %s",
            got(n, g, sizeof g));
        return;
    }
    c->currency = xdup(x, s);
    for (int i = 0; i < 5; i++) {
        if (!strcmp(s, zero[i])) c->currency_decimals = 0;
        if (!strcmp(s, three[i])) c->currency_decimals = 3;
    }
}

/* ---- meters ---- */

static int meter_ix(const hr_catalog *c, const char *key) { return lookup(c->meter_ix, key); }

static const char *meter_hint(ctx *x, const char *s, char *buf, size_t size) {
    near h = {s, NULL, 3};
    for (int i = 0; i < x->c->nmeters; i++) near_try(&h, x->c->meters[i].key);
    return near_str(&h, buf, size);
}

/* Bytes of the code point cp in UTF-8. */
static size_t utf8_bytes(unsigned long cp) {
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* The bytes a double-quoted escape (e points past the backslash) stands for;
 * *raw gets its length in the source, backslash included. */
static size_t escape_bytes(const unsigned char *e, const unsigned char *end, size_t *raw) {
    int nhex = *e == 'x' ? 2 : *e == 'u' ? 4 : *e == 'U' ? 8 : 0;
    unsigned long cp = 0;
    *raw = 2;
    if (*e == 'N' || *e == '_') return 2; /* U+0085, U+00A0 */
    if (*e == 'L' || *e == 'P') return 3; /* U+2028, U+2029 */
    if (!nhex) return 1;
    for (int i = 1; i <= nhex; i++) {
        unsigned char h = e + i < end ? e[i] : 0;
        int d = h >= '0' && h <= '9'   ? h - '0'
                : h >= 'a' && h <= 'f' ? h - 'a' + 10
                : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                       : -1;
        if (d < 0) return 1;
        cp = cp << 4 | (unsigned long)d;
    }
    *raw = 2 + (size_t)nhex;
    return utf8_bytes(cp);
}

/* Column of byte off of scalar n's value: exact for a scalar on one line
 * (plain, or quoted with its escapes undone), else the scalar's start. */
static int value_col(const ctx *x, const hr_ynode *n, size_t off) {
    if (n->style == HR_YS_BLOCK || !n->src_len || !x->text || n->src_off > x->len ||
        n->src_len > x->len - n->src_off)
        return n->col;
    const unsigned char *r = (const unsigned char *)x->text + n->src_off, *end = r + n->src_len;
    size_t v = 0;
    int col = n->col + (n->style != HR_YS_PLAIN); /* past the opening quote */
    while (v < off && r < end) {
        size_t raw = 1, out = 1;
        int cols = 1;
        if (n->style == HR_YS_SINGLE && r[0] == '\'' && r + 1 < end && r[1] == '\'') {
            raw = 2, cols = 2;
        } else if (n->style == HR_YS_DOUBLE && r[0] == '\\' && r + 1 < end) {
            out = escape_bytes(r + 1, end, &raw);
            cols = (int)raw;
        } else if (r[0] >= 0xc0) {
            raw = out = r[0] >= 0xf0 ? 4 : r[0] >= 0xe0 ? 3 : 2;
        }
        if (raw > (size_t)(end - r)) break;
        r += raw;
        v += out;
        col += cols;
    }
    return col;
}

/* An error at byte off inside scalar n (a meter's where). */
static void bad_at(ctx *x, const hr_ynode *n, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void bad_at(ctx *x, const hr_ynode *n, size_t off, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hr_esink_add(x->es, n->line, value_col(x, n, off), "%s", msg);
}

static int path_char(unsigned char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '$' || ch == '.' || ch >= 0x80;
}

static int path_start(unsigned char ch) {
    return path_char(ch) && ch != '-' && ch != '.' && !(ch >= '0' && ch <= '9');
}

/* A dotted path into an event, normalised: properties.x, context.x,
 * traits.x and the message fields userId, anonymousId and event are kept;
 * anything else is a property (rows -> properties.rows). 0 ok, -1 invalid
 * (why says what is wrong), -2 out of memory. */
static int path_norm(ctx *x, const char *s, size_t n, char **out, char *why, size_t wsz) {
    static const char *const roots[] = {"properties", "context", "traits"};
    static const char *const fields[] = {"userId", "anonymousId", "event"};
    const char *prefix = "properties.";
    size_t seg = 0;

    *out = NULL;
    if (!n || !path_start((unsigned char)s[0])) {
        snprintf(why, wsz, "a path starts with a letter, '_' or '$'");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!path_char((unsigned char)s[i])) {
            snprintf(why, wsz, "use letters, digits, '_', '-' and '$', with '.' between fields");
            return -1;
        }
        if (s[i] == '.' && (i + 1 == n || s[i + 1] == '.')) {
            snprintf(why, wsz, "empty field name after '.'");
            return -1;
        }
    }
    while (seg < n && s[seg] != '.') seg++;
    for (int i = 0; i < 3; i++) {
        if (seg != strlen(fields[i]) || memcmp(s, fields[i], seg)) continue;
        if (seg < n) {
            snprintf(why, wsz, "'%s' is a string and has no fields", fields[i]);
            return -1;
        }
        prefix = "";
    }
    for (int i = 0; i < 3; i++) {
        if (seg != strlen(roots[i]) || memcmp(s, roots[i], seg)) continue;
        if (seg == n) {
            snprintf(why, wsz, "'%s' is an object: name one of its fields, e.g. %s.plan", roots[i],
                     roots[i]);
            return -1;
        }
        prefix = "";
    }
    size_t np = strlen(prefix);
    if (!(*out = malloc(np + n + 1))) {
        x->oom = 1;
        return -2;
    }
    memcpy(*out, prefix, np);
    memcpy(*out + np, s, n);
    (*out)[np + n] = 0;
    return 0;
}

static int is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; }

/* The token at s (up to a blank), printable, for messages. */
static const char *token(const char *s, char *buf, size_t size) {
    char t[40];
    size_t n = 0;
    while (s[n] && !is_blank(s[n]) && n + 1 < sizeof t) n++;
    if (s[n] && !is_blank(s[n])) /* cut short: not inside a UTF-8 sequence */
        while (n && ((unsigned char)s[n] & 0xc0) == 0x80) n--;
    memcpy(t, s, n);
    t[n] = 0;
    return hr_yshow(t, buf, size);
}

/* Said where someone reaches for more than the subset below. */
#define LATER                                                                                      \
    "; where takes PATH OP VALUE clauses joined by && (the full rule language comes later)"

/* A literal number at s: -?digits[.digits][e[+-]digits] (or .digits);
 * its length, 0 if there is none. */
static size_t scan_number(const char *s) {
    size_t i = 0, d = 0;
    if (s[i] == '-') i++;
    while (s[i] >= '0' && s[i] <= '9') i++, d++;
    if (s[i] == '.') {
        i++;
        while (s[i] >= '0' && s[i] <= '9') i++, d++;
    }
    if (!d) return 0;
    if (s[i] == 'e' || s[i] == 'E') {
        size_t j = i + 1;
        if (s[j] == '+' || s[j] == '-') j++;
        if (s[j] < '0' || s[j] > '9') return 0;
        while (s[j] >= '0' && s[j] <= '9') j++;
        i = j;
    }
    return i;
}

/* A meter's where: PATH OP LITERAL clauses joined by &&, the subset of the
 * rule language (src/rules) that meters need before it exists. Errors point
 * at the column inside the scalar; only the first error of a where is
 * reported, as what follows it cannot be read reliably. */
static void where_parse(ctx *x, hr_meter *mt, const hr_ynode *n) {
    static const char *const ops[] = {"==", "!=", "<=", ">=", "<", ">"};
    static const hr_cmp_op opv[] = {HR_OP_EQ, HR_OP_NE, HR_OP_LE, HR_OP_GE, HR_OP_LT, HR_OP_GT};
    hr_where w[MAX_WHERE];
    const char *s = n->str;
    size_t i = 0;
    int nw = 0;
    char why[160], sh[80], sh2[80];

    memset(w, 0, sizeof w);
    for (;;) {
        while (is_blank(s[i])) i++;
        if (nw == MAX_WHERE) {
            bad_at(x, n, i, "where has too many clauses (at most %d)", MAX_WHERE);
            goto out;
        }
        hr_where *c = &w[nw++];

        size_t p0 = i;
        if (!s[i]) {
            bad_at(x, n, i, "where: expected a property path%s", nw > 1 ? " after &&" : "");
            goto out;
        }
        if (!path_start((unsigned char)s[i])) {
            bad_at(x, n, i,
                   "where: expected a property path (e.g. rows or properties.plan), got '%s'" LATER,
                   token(s + i, sh, sizeof sh));
            goto out;
        }
        while (path_char((unsigned char)s[i])) i++;
        int r = path_norm(x, s + p0, i - p0, &c->path, why, sizeof why);
        if (r == -2) goto out;
        if (r) {
            bad_at(x, n, p0, "where: invalid path '%s': %s", token(s + p0, sh, sizeof sh), why);
            goto out;
        }

        while (is_blank(s[i])) i++;
        size_t o0 = i;
        int k = 0;
        while (k < 6 && strncmp(s + i, ops[k], strlen(ops[k]))) k++;
        if (k == 6) {
            if (s[i] == '=')
                bad_at(x, n, i, "where: use == to compare");
            else if (!s[i])
                bad_at(x, n, i, "where: expected an operator (==, !=, <, <=, >, >=) after '%s'",
                       token(s + p0, sh, sizeof sh));
            else
                bad_at(x, n, i,
                       "where: expected an operator (==, !=, <, <=, >, >=), got '%s'" LATER,
                       token(s + i, sh, sizeof sh));
            goto out;
        }
        c->op = opv[k];
        i += strlen(ops[k]);

        while (is_blank(s[i])) i++;
        size_t l0 = i, nl;
        if (s[i] == '\'' || s[i] == '"') {
            char q = s[i++];
            size_t j = 0;
            if (!(c->string = malloc(strlen(s + i) + 1))) {
                x->oom = 1;
                goto out;
            }
            while (s[i] && s[i] != q) {
                if (s[i] == '\\' && (s[i + 1] == q || s[i + 1] == '\\')) i++;
                c->string[j++] = s[i++];
            }
            c->string[j] = 0;
            if (!s[i]) {
                bad_at(x, n, l0, "where: unterminated string: add the closing %c", q);
                goto out;
            }
            i++;
        } else if ((nl = scan_number(s + i)) && !path_char((unsigned char)s[i + nl])) {
            char num[64];
            if (nl >= sizeof num) {
                bad_at(x, n, l0, "where: number is too long");
                goto out;
            }
            memcpy(num, s + i, nl);
            num[nl] = 0;
            c->number = strtod(num, NULL);
            if (c->number > 1e300 || c->number < -1e300) {
                bad_at(x, n, l0, "where: number %s is out of range", num);
                goto out;
            }
            c->is_number = 1;
            i += nl;
        } else if (!strncmp(s + i, "true", 4) || !strncmp(s + i, "false", 5)) {
            size_t wl = s[i] == 't' ? 4 : 5;
            if (path_char((unsigned char)s[i + wl])) goto word;
            if (!(c->string = xdup(x, s[i] == 't' ? "true" : "false"))) goto out;
            i += wl;
        } else if (!s[i]) {
            bad_at(x, n, i, "where: expected a value after '%s'", ops[k]);
            goto out;
        } else {
        word:
            if (path_start((unsigned char)s[i]))
                bad_at(x, n, l0,
                       "where: expected a number, a quoted string, true or false, got '%s' "
                       "(quote text: '%s')",
                       token(s + i, sh, sizeof sh), token(s + i, sh2, sizeof sh2));
            else
                bad_at(x, n, l0,
                       "where: expected a number, a quoted string, true or false, got '%s'",
                       token(s + i, sh, sizeof sh));
            goto out;
        }
        if (!c->is_number && c->op != HR_OP_EQ && c->op != HR_OP_NE) {
            bad_at(x, n, o0, "where: %s compares numbers: use == or != with a string or boolean",
                   ops[k]);
            goto out;
        }

        while (is_blank(s[i])) i++;
        if (!s[i]) break;
        if (s[i] == '&' && s[i + 1] == '&') {
            i += 2;
            continue;
        }
        if (s[i] == '|' && s[i + 1] == '|')
            bad_at(x, n, i, "where: only && joins clauses for now" LATER);
        else
            bad_at(x, n, i, "where: expected && or the end after a value, got '%s'" LATER,
                   token(s + i, sh, sizeof sh));
        goto out;
    }
    if (!(mt->where = xcalloc(x, (size_t)nw, sizeof *mt->where))) goto out;
    memcpy(mt->where, w, (size_t)nw * sizeof *w);
    mt->nwhere = nw;
    nw = 0; /* now owned by the meter */
out:
    for (int j = 0; j < nw; j++) {
        free(w[j].path);
        free(w[j].string);
    }
}

static void meter_def(ctx *x, hr_meter *mt, const hr_ynode *v) {
    static const char *const keys[] = {"name",     "description", "event", "aggregate",
                                       "property", "period",      "where"};
    enum { NAME, DESC, EVENT, AGG, PROP, PERIOD, WHERE, NKEYS };
    static const char *const aggs[] = {"count", "sum", "max", "unique", "latest"};
    static const char *const pers[] = {"day", "week", "month", "billing_cycle", "lifetime"};
    static const hr_period perv[] = {HR_PERIOD_DAY, HR_PERIOD_WEEK, HR_PERIOD_MONTH,
                                     HR_PERIOD_BILLING_CYCLE, HR_PERIOD_LIFETIME};
    const hr_ynode *f[NKEYS];
    char in[128], g[96], hb[96], sh[80], why[160];
    const char *s;
    int agg = -1;

    snprintf(in, sizeof in, "in meter '%s'", mt->key);
    mt->period = HR_PERIOD_MONTH;
    if (want_map(x, v, "a meter (e.g. {event: \"API Called\", aggregate: count})")) return;
    fields(x, v, keys, NKEYS, f, in);
    if (f[NAME]) get_str(x, f[NAME], "name", &s);
    if (f[DESC]) get_str(x, f[DESC], "description", &s);
    if (!f[EVENT])
        bad(x, v, "meter '%s' needs an event: an event name, or \"*\" for every track event",
            mt->key);
    else if (!get_str(x, f[EVENT], "event", &s) && !(mt->event = xdup(x, s)))
        return;

    if (!f[AGG]) {
        bad(x, v, "meter '%s' needs an aggregate: count, sum, max, unique or latest", mt->key);
    } else {
        s = f[AGG]->kind == HR_Y_SCALAR ? f[AGG]->str : "";
        for (int i = 0; i < 5 && agg < 0; i++)
            if (!strcmp(s, aggs[i])) agg = i;
        if (agg < 0)
            bad(x, f[AGG], "expected count, sum, max, unique or latest for aggregate, got %s%s",
                got(f[AGG], g, sizeof g), hint(s, aggs, 5, hb, sizeof hb));
        else
            mt->aggregate = (hr_aggregate)agg;
    }
    if (f[PROP] && agg == HR_AGG_COUNT) {
        bad(x, f[PROP], "aggregate count takes no property: meter '%s' counts events", mt->key);
    } else if (f[PROP] && !get_str(x, f[PROP], "property", &s)) {
        int r = path_norm(x, s, strlen(s), &mt->property, why, sizeof why);
        if (r == -2) return;
        if (r) bad(x, f[PROP], "invalid property path '%s': %s", hr_yshow(s, sh, sizeof sh), why);
    } else if (!f[PROP] && agg > 0) {
        bad(x, v, "aggregate %s needs a property (e.g. property: rows) in meter '%s'", aggs[agg],
            mt->key);
    }

    if (f[PERIOD]) {
        int i = 0;
        s = f[PERIOD]->kind == HR_Y_SCALAR ? f[PERIOD]->str : "";
        while (i < 5 && strcmp(s, pers[i])) i++;
        if (i < 5)
            mt->period = perv[i];
        else
            bad(x, f[PERIOD],
                "expected day, week, month, billing_cycle or lifetime for period, got %s%s",
                got(f[PERIOD], g, sizeof g), hint(s, pers, 5, hb, sizeof hb));
    }
    /* A long where may be folded over lines: breaks are blanks to it. */
    if (f[WHERE] && !get_text(x, f[WHERE], "where", 1, &s)) where_parse(x, mt, f[WHERE]);
}

static void meters(ctx *x, const hr_ynode *m) {
    hr_catalog *c = x->c;
    if (!m || is_null(m)) return;
    if (want_map(x, m, "meters")) {
        x->no_meters = 1;
        return;
    }
    int n = m->n / 2;
    if (!(c->meters = xcalloc(x, (size_t)n, sizeof *c->meters))) return;
    for (int i = 0; i < n; i++) {
        const hr_ynode *k = m->kids[2 * i];
        hr_meter *mt = &c->meters[c->nmeters];
        if (!(mt->key = xdup(x, k->str))) return;
        c->nmeters++;
        index_put(x, c->meter_ix, mt->key, i);
        check_id(x, k, "meter");
        meter_def(x, mt, m->kids[2 * i + 1]);
        if (x->oom) return;
    }
}

/* A list of thresholds: fractions of an allocation in (0, 10], ascending,
 * at most HR_MAX_THRESHOLDS; 0 ok, -1 reported. */
static int threshold_list(ctx *x, const hr_ynode *n, const char *what, double *out, int *nout) {
    char g[96];
    if (n->kind != HR_Y_SEQ) {
        bad(x, n, "expected a list of fractions for %s (e.g. [0.8, 1.0]), got %s", what,
            got(n, g, sizeof g));
        return -1;
    }
    if (n->n > HR_MAX_THRESHOLDS) {
        bad(x, n, "%s has %d entries (at most %d)", what, n->n, HR_MAX_THRESHOLDS);
        return -1;
    }
    for (int i = 0; i < n->n; i++) {
        const hr_ynode *v = n->kids[i];
        char *end = NULL;
        double d = v->kind == HR_Y_SCALAR && !v->quoted ? strtod(v->str, &end) : 0;
        if (!end || end == v->str || *end) {
            bad(x, v, "expected a number in %s (a fraction of the allocation: 0.8 is 80%%), got %s",
                what, got(v, g, sizeof g));
            return -1;
        }
        if (!(d > 0 && d <= 10)) {
            bad(x, v, "%s: %s is out of range (a fraction above 0 and at most 10; 0.8 is 80%%)",
                what, v->str);
            return -1;
        }
        if (i && d <= out[i - 1]) {
            bad(x, v, "%s must be in ascending order without repeats", what);
            return -1;
        }
        out[i] = d;
    }
    *nout = n->n;
    return 0;
}

static void feature_def(ctx *x, int fi, const hr_ynode *v) {
    static const char *const keys[] = {"name", "description", "type", "unit",
                                       "period", "overage", "meter", "thresholds"};
    enum { NAME, DESC, TYPE, UNIT, PERIOD, OVERAGE, METER, THRESHOLDS, NKEYS };
    const hr_ynode *f[NKEYS];
    hr_feature *ft = &x->c->features[fi];
    char in[128], g[96], sh[80], hb[96];
    const char *s;

    snprintf(in, sizeof in, "in feature '%s'", ft->key);
    ft->type = HR_FEAT_LIMIT;
    if (want_map(x, v, "a feature (e.g. {type: limit})")) {
        x->feat_bad[fi] = 1;
        return;
    }
    fields(x, v, keys, NKEYS, f, in);
    if (f[NAME] && !get_str(x, f[NAME], "name", &s)) {
        free(ft->name);
        ft->name = xdup(x, s);
    }
    if (f[DESC]) get_str(x, f[DESC], "description", &s);
    if (!f[TYPE]) {
        bad(x, v, "feature '%s' needs a type: boolean, limit or metered", ft->key);
        x->feat_bad[fi] = 1;
    } else {
        s = f[TYPE]->kind == HR_Y_SCALAR ? f[TYPE]->str : "";
        if (!strcmp(s, "boolean")) {
            ft->type = HR_FEAT_BOOLEAN;
        } else if (!strcmp(s, "limit")) {
            ft->type = HR_FEAT_LIMIT;
        } else if (!strcmp(s, "metered")) {
            ft->type = HR_FEAT_METERED;
        } else {
            bad(x, f[TYPE], "expected boolean, limit or metered for type, got %s",
                got(f[TYPE], g, sizeof g));
            x->feat_bad[fi] = 1;
        }
    }
    if (f[UNIT] && !get_str(x, f[UNIT], "unit", &s)) ft->unit = xdup(x, s);
    if (f[THRESHOLDS] && ft->type == HR_FEAT_BOOLEAN && !x->feat_bad[fi])
        bad(x, f[THRESHOLDS], "thresholds are only for limit and metered features ('%s' is boolean)",
            ft->key);
    else if (f[THRESHOLDS] &&
             !threshold_list(x, f[THRESHOLDS], "thresholds", ft->thresholds, &ft->nthresholds))
        ft->own_thresholds = 1;
    if (f[METER] && !get_str(x, f[METER], "meter", &s)) {
        int mi = meter_ix(x->c, s);
        ft->meter = xdup(x, s);
        if (ft->type == HR_FEAT_BOOLEAN && !x->feat_bad[fi])
            bad(x, f[METER], "meter is only for limit and metered features ('%s' is boolean)",
                ft->key);
        else if (mi < 0 && !x->no_meters)
            bad(x, f[METER], "unknown meter '%s' in feature '%s'%s", hr_yshow(s, sh, sizeof sh),
                ft->key, meter_hint(x, s, hb, sizeof hb));
        else
            x->c->feature_meter[fi] = mi;
    }
    ft->period = ft->type == HR_FEAT_METERED ? HR_PERIOD_MONTH : HR_PERIOD_NONE;
    if (f[PERIOD] && ft->type != HR_FEAT_METERED && !x->feat_bad[fi]) {
        bad(x, f[PERIOD], "period is only for metered features ('%s' is %s)", ft->key,
            hr_feature_type_str(ft->type));
    } else if (f[PERIOD]) {
        static const char *const names[] = {"day", "week", "month", "year"};
        static const hr_period per[] = {HR_PERIOD_DAY, HR_PERIOD_WEEK, HR_PERIOD_MONTH,
                                        HR_PERIOD_YEAR};
        s = f[PERIOD]->kind == HR_Y_SCALAR ? f[PERIOD]->str : "";
        int i = 0;
        while (i < 4 && strcmp(s, names[i])) i++;
        if (i < 4)
            ft->period = per[i];
        else
            bad(x, f[PERIOD], "expected day, week, month or year for period, got %s",
                got(f[PERIOD], g, sizeof g));
    }
    if (f[OVERAGE]) {
        static const char *const okeys[] = {"price"};
        const hr_ynode *o[1];
        if (ft->type == HR_FEAT_BOOLEAN) {
            bad(x, f[OVERAGE], "overage is only for limit and metered features ('%s' is boolean)",
                ft->key);
        } else if (!want_map(x, f[OVERAGE], "overage (e.g. {price: 0.5})")) {
            fields(x, f[OVERAGE], okeys, 1, o, in);
            if (!o[0])
                bad(x, f[OVERAGE], "overage needs a price per unit");
            else if (!get_price(x, o[0], "overage price", &ft->overage_price))
                ft->has_overage = 1;
        }
    }
}

static void features(ctx *x, const hr_ynode *m) {
    hr_catalog *c = x->c;
    int n = m && is_map(m) ? m->n / 2 : 0;
    c->features = xcalloc(x, (size_t)n, sizeof *c->features);
    c->feature_trial_days = xcalloc(x, (size_t)n, sizeof *c->feature_trial_days);
    c->feature_meter = xcalloc(x, (size_t)n, sizeof *c->feature_meter);
    x->feat_bad = xcalloc(x, (size_t)n, 1);
    if (x->oom) return;
    for (int i = 0; i < n; i++) c->feature_meter[i] = -1;
    if (!m || is_null(m)) return;
    if (want_map(x, m, "features")) {
        x->no_features = 1;
        return;
    }
    for (int i = 0; i < n; i++) {
        const hr_ynode *k = m->kids[2 * i];
        hr_feature *f = &c->features[c->nfeatures];
        if (!(f->key = xdup(x, k->str)) || !(f->name = xdup(x, k->str))) return;
        c->nfeatures++;
        index_put(x, c->feature_ix, f->key, i);
        if (check_id(x, k, "feature")) x->feat_bad[i] = 1;
        feature_def(x, i, m->kids[2 * i + 1]);
    }
}

/* One entitlement value for feature fi: true/false for boolean features, an
 * integer >= 0 or unlimited otherwise. allow_null: null means "not in plan". */
static int ent_value(ctx *x, int fi, const hr_ynode *n, int allow_null, int64_t *out) {
    const hr_feature *f = &x->c->features[fi];
    char g[96];
    int b;
    if (allow_null && is_null(n)) {
        *out = HR_ENT_NONE;
        return 0;
    }
    if (f->type == HR_FEAT_BOOLEAN) {
        if (!scan_bool(n, &b)) {
            *out = b;
            return 0;
        }
        bad(x, n, "expected true or false for boolean feature '%s', got %s", f->key,
            got(n, g, sizeof g));
        return -1;
    }
    if (n->kind == HR_Y_SCALAR && !strcmp(n->str, "unlimited")) {
        *out = HR_UNLIMITED;
        return 0;
    }
    int64_t v = 0;
    int r = n->kind == HR_Y_SCALAR && !n->quoted ? scan_int(n->str, &v) : -1;
    if (r == -1) {
        bad(x, n, "expected an integer or unlimited for feature '%s', got %s", f->key,
            got(n, g, sizeof g));
        return -1;
    }
    if (r == 0 && v < 0) {
        bad(x, n, "negative limit for feature '%s': use 0 for none or unlimited", f->key);
        return -1;
    }
    if (r == -2 || v > MAX_LIMIT) {
        bad(x, n, "limit for feature '%s' is too large: use unlimited", f->key);
        return -1;
    }
    *out = v;
    return 0;
}

/* Reads an entitlements mapping into ent (nfeatures entries). */
static void entitlements(ctx *x, const hr_ynode *m, int64_t *ent, const char *plan) {
    char sh[80], hb[96];
    if (!m || is_null(m) || want_map(x, m, "entitlements")) return;
    for (int i = 0; i + 1 < m->n; i += 2) {
        const hr_ynode *k = m->kids[i];
        int fi = feature_ix(x->c, k->str);
        if (fi < 0) {
            if (!x->no_features)
                bad(x, k, "unknown feature '%s' in plan '%s'%s", hr_yshow(k->str, sh, sizeof sh),
                    plan, feature_hint(x, k->str, hb, sizeof hb));
            continue;
        }
        if (x->feat_bad[fi]) continue;
        int64_t v;
        if (!ent_value(x, fi, m->kids[i + 1], 1, &v)) ent[fi] = v;
    }
}

static int64_t *new_ents(ctx *x) {
    int n = x->c->nfeatures;
    int64_t *e = xcalloc(x, (size_t)n, sizeof *e);
    if (e)
        for (int i = 0; i < n; i++) e[i] = HR_ENT_NONE;
    return e;
}

/* Older versions of a plan: each inherits price, interval and the
 * entitlements it does not mention from the current version. */
static void plan_versions(ctx *x, hr_plan *p, const hr_ynode *m) {
    static const char *const keys[] = {"description", "price", "interval", "entitlements"};
    enum { DESC, PRICE, INTERVAL, ENTS, NKEYS };
    hr_plan_version *cur = &p->versions[0];
    char in[128], sh[80];
    const char *s;
    snprintf(in, sizeof in, "in a version of plan '%s'", p->key);
    for (int i = 0; i + 1 < m->n; i += 2) {
        const hr_ynode *k = m->kids[i], *v = m->kids[i + 1], *f[NKEYS];
        int64_t num;
        if (scan_int(k->str, &num) || num < 1 || num > MAX_SMALL) {
            bad(x, k, "expected a version number (1, 2 ...) in plan '%s', got '%s'", p->key,
                hr_yshow(k->str, sh, sizeof sh));
            continue;
        }
        if (num >= cur->version) {
            bad(x, k, "version %lld of plan '%s' must be older than the current version %d",
                (long long)num, p->key, cur->version);
            continue;
        }
        int dup = 0;
        for (int j = 1; j < p->nversions; j++) dup |= p->versions[j].version == num;
        if (dup) {
            bad(x, k, "duplicate version %lld in plan '%s'", (long long)num, p->key);
            continue;
        }
        if (want_map(x, v, "a plan version")) continue;
        fields(x, v, keys, NKEYS, f, in);
        if (f[DESC]) get_str(x, f[DESC], "description", &s);
        hr_plan_version *pv = &p->versions[p->nversions];
        pv->version = (int)num;
        pv->price = cur->price;
        pv->interval = cur->interval;
        if (!(pv->ent = xcalloc(x, (size_t)x->c->nfeatures, sizeof *pv->ent))) return;
        p->nversions++;
        if (x->c->nfeatures) memcpy(pv->ent, cur->ent, (size_t)x->c->nfeatures * sizeof *pv->ent);
        if (f[PRICE]) get_price(x, f[PRICE], "price", &pv->price);
        if (f[INTERVAL]) get_interval(x, f[INTERVAL], 0, &pv->interval);
        entitlements(x, f[ENTS], pv->ent, p->key);
    }
}

static void plan_def(ctx *x, hr_plan *p, const hr_ynode *v) {
    static const char *const keys[] = {"name",          "description", "price",
                                       "interval",      "trial_days",  "contact_sales",
                                       "version",       "versions",    "entitlements"};
    enum { NAME, DESC, PRICE, INTERVAL, TRIAL, CONTACT, VERSION, VERSIONS, ENTS, NKEYS };
    const hr_ynode *f[NKEYS];
    char in[128];
    const char *s;
    int64_t num;

    snprintf(in, sizeof in, "in plan '%s'", p->key);
    if (want_map(x, v, "a plan (e.g. {price: 12, entitlements: {...}})")) return;
    fields(x, v, keys, NKEYS, f, in);
    int nold = f[VERSIONS] && is_map(f[VERSIONS]) ? f[VERSIONS]->n / 2 : 0;
    /* The current version sits at [0] while building, moved last at the end. */
    if (!(p->versions = xcalloc(x, (size_t)nold + 1, sizeof *p->versions))) return;
    hr_plan_version *cur = &p->versions[0];
    if (!(cur->ent = new_ents(x))) return;
    p->nversions = 1;
    cur->version = 1;
    cur->interval = HR_INTERVAL_MONTH;

    if (f[NAME] && !get_str(x, f[NAME], "name", &s)) {
        free(p->name);
        p->name = xdup(x, s);
    }
    if (f[DESC]) get_str(x, f[DESC], "description", &s);
    if (f[CONTACT]) get_bool(x, f[CONTACT], "contact_sales", &p->contact_sales);
    if (f[PRICE] && p->contact_sales)
        bad(x, f[PRICE], "plan '%s' is contact_sales and must not have a price", p->key);
    else if (f[PRICE])
        get_price(x, f[PRICE], "price", &cur->price);
    if (f[INTERVAL]) get_interval(x, f[INTERVAL], 0, &cur->interval);
    if (f[TRIAL] && !get_int(x, f[TRIAL], "trial_days", 0, MAX_SMALL, &num))
        p->trial_days = (int)num;
    if (f[VERSION] && !get_int(x, f[VERSION], "version", 1, MAX_SMALL, &num))
        cur->version = (int)num;
    entitlements(x, f[ENTS], cur->ent, p->key);
    if (f[VERSIONS] && !is_null(f[VERSIONS]) && !want_map(x, f[VERSIONS], "versions"))
        plan_versions(x, p, f[VERSIONS]);

    /* Ascending order, current last (insertion sort: a handful of versions). */
    hr_plan_version c0 = p->versions[0];
    for (int i = 1; i < p->nversions; i++) p->versions[i - 1] = p->versions[i];
    p->versions[p->nversions - 1] = c0;
    for (int i = 1; i < p->nversions - 1; i++) {
        hr_plan_version t = p->versions[i];
        int j = i;
        while (j > 0 && p->versions[j - 1].version > t.version) {
            p->versions[j] = p->versions[j - 1];
            j--;
        }
        p->versions[j] = t;
    }
}

static void plans(ctx *x, const hr_ynode *m) {
    hr_catalog *c = x->c;
    if (!m) {
        hr_esink_add(x->es, 1, 1, "at least one plan is required ('plans' is missing)");
        x->no_plans = 1;
        return;
    }
    if (is_null(m) || (is_map(m) && m->n == 0)) {
        bad(x, m, "at least one plan is required");
        return;
    }
    if (want_map(x, m, "plans")) {
        x->no_plans = 1;
        return;
    }
    int n = m->n / 2;
    if (!(c->plans = xcalloc(x, (size_t)n, sizeof *c->plans))) return;
    for (int i = 0; i < n; i++) {
        const hr_ynode *k = m->kids[2 * i];
        hr_plan *p = &c->plans[c->nplans];
        if (!(p->key = xdup(x, k->str)) || !(p->name = xdup(x, k->str))) return;
        c->nplans++;
        p->tier = i;
        index_put(x, c->plan_ix, p->key, i);
        check_id(x, k, "plan");
        plan_def(x, p, m->kids[2 * i + 1]);
        if (x->oom) return;
    }
}

static void addon_def(ctx *x, hr_addon *a, const hr_ynode *v) {
    static const char *const keys[] = {"name",   "description", "price",       "interval",
                                       "grants", "plans",       "max_quantity"};
    enum { NAME, DESC, PRICE, INTERVAL, GRANTS, PLANS, MAXQ, NKEYS };
    const hr_ynode *f[NKEYS];
    hr_catalog *c = x->c;
    char in[128], sh[80], hb[96], g[96];
    const char *s;
    int64_t num;

    snprintf(in, sizeof in, "in add-on '%s'", a->key);
    a->interval = HR_INTERVAL_MONTH;
    if (!(a->grants = xcalloc(x, (size_t)c->nfeatures, sizeof *a->grants)) ||
        !(a->plans = xcalloc(x, (size_t)c->nplans, 1)))
        return;
    memset(a->plans, 1, (size_t)c->nplans);
    if (want_map(x, v, "an add-on (e.g. {price: 5, grants: {...}})")) return;
    fields(x, v, keys, NKEYS, f, in);
    if (f[NAME] && !get_str(x, f[NAME], "name", &s)) {
        free(a->name);
        a->name = xdup(x, s);
    }
    if (f[DESC]) get_str(x, f[DESC], "description", &s);
    if (f[PRICE]) get_price(x, f[PRICE], "price", &a->price);
    if (f[INTERVAL]) get_interval(x, f[INTERVAL], 1, &a->interval);
    if (f[MAXQ] && !get_int(x, f[MAXQ], "max_quantity", 1, MAX_SMALL, &num))
        a->max_quantity = (int)num;

    int ngrants = 0;
    if (f[GRANTS] && !is_null(f[GRANTS]) && !want_map(x, f[GRANTS], "grants")) {
        const hr_ynode *m = f[GRANTS];
        for (int i = 0; i + 1 < m->n; i += 2) {
            const hr_ynode *k = m->kids[i], *gv = m->kids[i + 1];
            int fi = feature_ix(c, k->str), b;
            ngrants++;
            if (fi < 0) {
                if (!x->no_features)
                    bad(x, k, "unknown feature '%s' in add-on '%s'%s",
                        hr_yshow(k->str, sh, sizeof sh), a->key,
                        feature_hint(x, k->str, hb, sizeof hb));
                continue;
            }
            if (x->feat_bad[fi]) continue;
            if (c->features[fi].type == HR_FEAT_BOOLEAN) {
                if (!scan_bool(gv, &b) && b)
                    a->grants[fi] = 1;
                else
                    bad(x, gv, "a grant of boolean feature '%s' must be true, got %s", k->str,
                        got(gv, g, sizeof g));
            } else {
                char what[128];
                snprintf(what, sizeof what, "the grant of '%s'", k->str);
                if (!get_int(x, gv, what, 1, MAX_LIMIT, &num)) a->grants[fi] = num;
            }
        }
    }
    if (!ngrants && (!f[GRANTS] || is_null(f[GRANTS]) || is_map(f[GRANTS])))
        bad(x, f[GRANTS] ? f[GRANTS] : v, "add-on '%s' grants nothing: add at least one grant",
            a->key);

    if (f[PLANS] && !x->no_plans) {
        const hr_ynode *l = f[PLANS];
        if (l->kind != HR_Y_SEQ) {
            bad(x, l, "expected a list of plans for plans, got %s", got(l, g, sizeof g));
        } else if (!l->n) {
            bad(x, l, "empty plans list: omit 'plans' to offer add-on '%s' on every plan",
                a->key);
        } else {
            memset(a->plans, 0, (size_t)c->nplans);
            for (int i = 0; i < l->n; i++) {
                const hr_ynode *pn = l->kids[i];
                int pi = pn->kind == HR_Y_SCALAR ? plan_ix(c, pn->str) : -1;
                if (pi < 0) {
                    bad(x, pn, "unknown plan %s in add-on '%s'", got(pn, g, sizeof g), a->key);
                } else if (a->plans[pi]) {
                    bad(x, pn, "plan '%s' is listed twice in add-on '%s'", pn->str, a->key);
                } else {
                    a->plans[pi] = 1;
                }
            }
        }
    }
}

static void addons(ctx *x, const hr_ynode *m) {
    hr_catalog *c = x->c;
    if (!m || is_null(m) || want_map(x, m, "addons")) return;
    int n = m->n / 2;
    if (!(c->addons = xcalloc(x, (size_t)n, sizeof *c->addons))) return;
    for (int i = 0; i < n; i++) {
        const hr_ynode *k = m->kids[2 * i];
        hr_addon *a = &c->addons[c->naddons];
        if (!(a->key = xdup(x, k->str)) || !(a->name = xdup(x, k->str))) return;
        c->naddons++;
        index_put(x, c->addon_ix, a->key, i);
        check_id(x, k, "add-on");
        addon_def(x, a, m->kids[2 * i + 1]);
        if (x->oom) return;
    }
}

static void feature_trials(ctx *x, const hr_ynode *m) {
    static const char *const keys[] = {"days"};
    hr_catalog *c = x->c;
    char sh[80], hb[96];
    if (!m || is_null(m) || want_map(x, m, "feature_trials")) return;
    for (int i = 0; i + 1 < m->n; i += 2) {
        const hr_ynode *k = m->kids[i], *v = m->kids[i + 1], *f[1];
        int fi = feature_ix(c, k->str);
        int64_t days;
        if (fi < 0) {
            if (!x->no_features)
                bad(x, k, "unknown feature '%s' in feature_trials%s",
                    hr_yshow(k->str, sh, sizeof sh), feature_hint(x, k->str, hb, sizeof hb));
            continue;
        }
        if (want_map(x, v, "a feature trial (e.g. {days: 14})")) continue;
        fields(x, v, keys, 1, f, "in feature_trials");
        if (!f[0])
            bad(x, v, "feature trial of '%s' needs days", k->str);
        else if (!get_int(x, f[0], "days", 1, MAX_SMALL, &days))
            c->feature_trial_days[fi] = (int)days;
    }
}

static void overrides(ctx *x, const hr_ynode *m) {
    static const char *const keys[] = {"value", "expires_at"};
    hr_catalog *c = x->c;
    char sh[80], hb[96], g[96];
    const char *s;
    if (!m || is_null(m) || want_map(x, m, "overrides")) return;
    int total = 0;
    for (int i = 1; i < m->n; i += 2)
        if (is_map(m->kids[i])) total += m->kids[i]->n / 2;
    if (!(c->overrides = xcalloc(x, (size_t)total, sizeof *c->overrides))) return;
    for (int i = 0; i + 1 < m->n; i += 2) {
        const hr_ynode *ak = m->kids[i], *am = m->kids[i + 1];
        if (!get_str(x, ak, "an account id", &s) && strlen(s) > 128)
            bad(x, ak, "account id is too long (at most 128 bytes)");
        if (want_map(x, am, "an account's overrides (e.g. {seats: {value: 20}})")) continue;
        for (int j = 0; j + 1 < am->n; j += 2) {
            const hr_ynode *k = am->kids[j], *v = am->kids[j + 1], *f[2];
            int fi = feature_ix(c, k->str);
            int64_t val, t = 0;
            if (fi < 0) {
                if (!x->no_features)
                    bad(x, k, "unknown feature '%s' in overrides of '%s'%s",
                        hr_yshow(k->str, sh, sizeof sh), hr_yshow(ak->str, g, sizeof g),
                        feature_hint(x, k->str, hb, sizeof hb));
                continue;
            }
            if (want_map(x, v, "an override (e.g. {value: 20})")) continue;
            fields(x, v, keys, 2, f, "in overrides");
            if (!f[0]) {
                bad(x, v, "override of '%s' needs a value", k->str);
                continue;
            }
            if (x->feat_bad[fi] || ent_value(x, fi, f[0], 0, &val)) continue;
            if (f[1] && !is_null(f[1])) {
                if (f[1]->kind != HR_Y_SCALAR || hr_time_parse(f[1]->str, &t) || t <= 0) {
                    bad(x, f[1], "expected an RFC 3339 timestamp for expires_at, got %s",
                        got(f[1], g, sizeof g));
                    continue;
                }
            }
            hr_cat_override *o = &c->overrides[c->noverrides];
            if (!(o->account = xdup(x, ak->str))) return;
            c->noverrides++;
            o->feature = fi;
            o->value = val;
            o->expires_at = t;
        }
    }
}

/* ---- campaigns and the throttle ---- */

/* "7d", "2w", "24h", "30m", "45s" -> seconds in [min, max]; 0 ok, -1 reported. */
static int get_duration(ctx *x, const hr_ynode *n, const char *what, int64_t min, int64_t max,
                        int64_t *out) {
    char g[96];
    const char *s = n->kind == HR_Y_SCALAR ? n->str : "";
    char *end = NULL;
    errno = 0;
    long long v = *s >= '0' && *s <= '9' ? strtoll(s, &end, 10) : -1;
    int64_t unit = 0;
    if (v >= 0 && end && end[0] && !end[1]) {
        switch (end[0]) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        case 'w': unit = 7 * 86400; break;
        }
    }
    if (!unit || errno || v > max / unit) {
        bad(x, n, "expected a duration for %s (like 7d, 2w, 24h, 30m), got %s", what,
            got(n, g, sizeof g));
        return -1;
    }
    if (v * unit < min || v * unit > max) {
        bad(x, n, "%s must be between %llds and %llds", what, (long long)min, (long long)max);
        return -1;
    }
    *out = v * unit;
    return 0;
}

static void text_free(hr_text *t) {
    for (int i = 0; i < t->n; i++) {
        free(t->locales[i]);
        free(t->texts[i]);
    }
    free(t->locales);
    free(t->texts);
    memset(t, 0, sizeof *t);
}

static int text_copy(ctx *x, hr_text *dst, const hr_text *src) {
    memset(dst, 0, sizeof *dst);
    if (!src->n) return 0;
    if (!(dst->locales = xcalloc(x, (size_t)src->n, sizeof(char *))) ||
        !(dst->texts = xcalloc(x, (size_t)src->n, sizeof(char *))))
        return -1;
    for (int i = 0; i < src->n; i++) {
        if (!(dst->locales[i] = xdup(x, src->locales[i])) || !(dst->texts[i] = xdup(x, src->texts[i])))
            return -1;
        dst->n = i + 1;
    }
    return 0;
}

/* A string, or a mapping of locale -> string ({en: "..", de: ".."}); the
 * first locale is the fallback. */
static int get_ltext(ctx *x, const hr_ynode *n, const char *what, hr_text *out) {
    const char *s;
    text_free(out);
    if (n->kind == HR_Y_MAP) {
        if (!n->n) {
            bad(x, n, "%s needs at least one locale", what);
            return -1;
        }
        if (!(out->locales = xcalloc(x, (size_t)n->n / 2, sizeof(char *))) ||
            !(out->texts = xcalloc(x, (size_t)n->n / 2, sizeof(char *))))
            return -1;
        for (int i = 0; i + 1 < n->n; i += 2) {
            const hr_ynode *k = n->kids[i];
            size_t kl = strlen(k->str);
            int ok = kl >= 2 && kl <= 16;
            for (size_t j = 0; ok && j < kl; j++)
                ok = (k->str[j] >= 'a' && k->str[j] <= 'z') || (k->str[j] >= 'A' && k->str[j] <= 'Z') ||
                     (k->str[j] == '-' && j > 0);
            if (!ok) {
                bad(x, k, "invalid locale '%s' in %s (use e.g. en, de, pt-BR)", k->str, what);
                continue;
            }
            if (get_text(x, n->kids[i + 1], what, 1, &s)) continue;
            out->locales[out->n] = xdup(x, k->str);
            out->texts[out->n] = xdup(x, s);
            out->n++;
        }
        return out->n ? 0 : -1;
    }
    if (get_text(x, n, what, 1, &s)) return -1;
    if (!(out->locales = xcalloc(x, 1, sizeof(char *))) ||
        !(out->texts = xcalloc(x, 1, sizeof(char *))))
        return -1;
    out->locales[0] = xdup(x, "");
    out->texts[0] = xdup(x, s);
    out->n = 1;
    return 0;
}

const char *hr_text_get(const hr_text *t, const char *locale) {
    if (!t->n) return NULL;
    if (locale && *locale) {
        size_t lang = strcspn(locale, "-_");
        for (int i = 0; i < t->n; i++)
            if (!strcasecmp(t->locales[i], locale)) return t->texts[i];
        for (int i = 0; i < t->n; i++)
            if (strlen(t->locales[i]) == lang && !strncasecmp(t->locales[i], locale, lang))
                return t->texts[i];
    }
    return t->texts[0];
}

static void content_dispose(hr_content *ct) {
    free(ct->anchor);
    free(ct->url);
    text_free(&ct->title);
    text_free(&ct->body);
    text_free(&ct->cta_label);
    memset(ct, 0, sizeof *ct);
}

static int content_copy(ctx *x, hr_content *dst, const hr_content *src) {
    *dst = *src;
    dst->anchor = dst->url = NULL;
    memset(&dst->title, 0, sizeof dst->title);
    memset(&dst->body, 0, sizeof dst->body);
    memset(&dst->cta_label, 0, sizeof dst->cta_label);
    if ((src->anchor && !(dst->anchor = xdup(x, src->anchor))) ||
        (src->url && !(dst->url = xdup(x, src->url))))
        return -1;
    if (text_copy(x, &dst->title, &src->title) || text_copy(x, &dst->body, &src->body) ||
        text_copy(x, &dst->cta_label, &src->cta_label))
        return -1;
    return 0;
}

static int key_in(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

/* Content fields present in n change ct (a copy of the campaign's content
 * for a variant, or zeroed for the campaign). */
static void content_parse(ctx *x, hr_content *ct, const hr_ynode *n, const char *campaign) {
    static const char *const keys[] = {"type", "anchor", "title", "body", "cta"};
    static const char *const types[] = {"modal", "tooltip", "banner", "lock_badge", "checklist"};
    static const char *const ckeys[] = {"label", "action", "url", "feature", "plan", "addon"};
    static const char *const actions[] = {"upgrade", "start_trial", "buy_addon", "book_call", "url"};
    const hr_ynode *f[5], *cf[6];
    const char *s;
    char in[128], hb[96], sh[80];
    snprintf(in, sizeof in, "in the content of campaign '%s'", campaign);
    if (want_map(x, n, "content (e.g. {type: modal, title: ..., body: ...})")) return;
    fields(x, n, keys, 5, f, in);
    if (f[0] && !get_str(x, f[0], "content type", &s)) {
        int t = key_in(s, types, 5);
        if (t < 0)
            bad(x, f[0], "unknown content type '%s': use modal, tooltip, banner, lock_badge or checklist%s",
                hr_yshow(s, sh, sizeof sh), hint(s, types, 5, hb, sizeof hb));
        else
            ct->type = (hr_prompt_type)t;
    }
    if (f[1] && !get_str(x, f[1], "anchor", &s)) {
        free(ct->anchor);
        ct->anchor = xdup(x, s);
    }
    if (f[2]) get_ltext(x, f[2], "title", &ct->title);
    if (f[3]) get_ltext(x, f[3], "body", &ct->body);
    if (!f[4]) return;
    if (want_map(x, f[4], "cta (e.g. {label: Upgrade, action: upgrade})")) return;
    fields(x, f[4], ckeys, 6, cf, "in cta");
    if (cf[0]) get_ltext(x, cf[0], "cta label", &ct->cta_label);
    if (cf[1] && !get_str(x, cf[1], "cta action", &s)) {
        int a = key_in(s, actions, 5);
        if (a < 0)
            bad(x, cf[1], "unknown cta action '%s': use upgrade, start_trial, buy_addon, book_call or url%s",
                hr_yshow(s, sh, sizeof sh), hint(s, actions, 5, hb, sizeof hb));
        else
            ct->action = (hr_cta_action)a;
    }
    if (cf[2] && !get_str(x, cf[2], "cta url", &s)) {
        if (strncmp(s, "https://", 8) && strncmp(s, "http://", 7) && s[0] != '/')
            bad(x, cf[2], "cta url must be http(s):// or a path starting with '/'");
        else {
            free(ct->url);
            ct->url = xdup(x, s);
        }
    }
    if (cf[3] && !get_str(x, cf[3], "cta feature", &s)) {
        int fi = feature_ix(x->c, s);
        if (fi < 0 && !x->no_features)
            bad(x, cf[3], "unknown feature '%s'%s", hr_yshow(s, sh, sizeof sh),
                feature_hint(x, s, hb, sizeof hb));
        ct->feature = fi;
    }
    if (cf[4] && !get_str(x, cf[4], "cta plan", &s)) {
        int pi = plan_ix(x->c, s);
        if (pi < 0 && !x->no_plans) bad(x, cf[4], "unknown plan '%s'", hr_yshow(s, sh, sizeof sh));
        ct->plan = pi;
    }
    if (cf[5] && !get_str(x, cf[5], "cta addon", &s)) {
        int ai = lookup(x->c->addon_ix, s);
        if (ai < 0) bad(x, cf[5], "unknown add-on '%s'", hr_yshow(s, sh, sizeof sh));
        ct->addon = ai;
    }
}

/* The column of (line, col) of a rule inside scalar n, for errors. */
static void rule_error(ctx *x, const hr_ynode *n, const char *what, const hr_err *e) {
    const char *s = n->str;
    int line = e->line > 0 ? e->line : 1, col = e->column > 0 ? e->column : 1;
    if (line == 1 && n->style != HR_YS_BLOCK) {
        size_t off = 0;
        for (int c = 1; c < col && s[off]; c++) off++;
        hr_esink_add(x->es, n->line, value_col(x, n, off), "%s: %s", what, e->message);
        return;
    }
    /* a block scalar: its node is at its first line of text, whose
     * indentation the text was stripped of */
    int l = n->line + line - 1, indent = 0;
    if (n->style == HR_YS_BLOCK && x->text) {
        const char *p = x->text, *end = x->text + x->len;
        for (int k = 1; k < n->line && p < end; p++)
            if (*p == '\n') k++;
        while (p < end && *p == ' ') p++, indent++;
    }
    hr_esink_add(x->es, l, (n->style == HR_YS_BLOCK ? indent : n->col - 1) + col, "%s: %s", what,
                 e->message);
}

static hr_rule *rule_get(ctx *x, const hr_ynode *n, const char *what, int want_bool) {
    char g[96];
    hr_rule *r = NULL;
    hr_err e;
    if (n->kind != HR_Y_SCALAR || is_null(n) || !*n->str) {
        bad(x, n, "expected a rule (a string like 'account.plan == \"free\"') for %s, got %s",
            what, got(n, g, sizeof g));
        return NULL;
    }
    if (!x->names_ready) {
        hr_catalog *c = x->c;
        x->names_ready = 1;
        x->fkeys = xcalloc(x, (size_t)c->nfeatures, sizeof(char *));
        x->mkeys = xcalloc(x, (size_t)c->nmeters, sizeof(char *));
        x->akeys = xcalloc(x, (size_t)c->naddons, sizeof(char *));
        x->pkeys = xcalloc(x, (size_t)c->nplans, sizeof(char *));
        if (x->oom) return NULL;
        for (int i = 0; i < c->nfeatures; i++) x->fkeys[i] = c->features[i].key;
        for (int i = 0; i < c->nmeters; i++) x->mkeys[i] = c->meters[i].key;
        for (int i = 0; i < c->naddons; i++) x->akeys[i] = c->addons[i].key;
        for (int i = 0; i < c->nplans; i++) x->pkeys[i] = c->plans[i].key;
    }
    hr_rule_names names = {x->fkeys, x->c->nfeatures, x->mkeys, x->c->nmeters,
                           x->akeys, x->c->naddons,   x->pkeys, x->no_plans ? 0 : x->c->nplans};
    int rc = hr_rule_compile(n->str, strlen(n->str), &names, &r, &e);
    if (rc == HR_ENOMEM) {
        x->oom = 1;
        return NULL;
    }
    if (rc) {
        rule_error(x, n, what, &e);
        return NULL;
    }
    if (want_bool && hr_rule_result_type(r) != HR_RT_BOOL && hr_rule_result_type(r) != HR_RT_ANY) {
        bad(x, n, "%s must be a condition (true or false), not a value", what);
        hr_rule_free(r);
        return NULL;
    }
    return r;
}

/* A node as JSON, for the canonical catalog: plain scalars that read as
 * numbers, booleans or null keep their type. */
static void yjson(hr_buf *b, const hr_ynode *n) {
    if (n->kind == HR_Y_MAP) {
        hr_buf_putc(b, '{');
        for (int i = 0; i + 1 < n->n; i += 2) {
            if (i) hr_buf_putc(b, ',');
            hr_buf_json_key(b, n->kids[i]->str);
            yjson(b, n->kids[i + 1]);
        }
        hr_buf_putc(b, '}');
    } else if (n->kind == HR_Y_SEQ) {
        hr_buf_putc(b, '[');
        for (int i = 0; i < n->n; i++) {
            if (i) hr_buf_putc(b, ',');
            yjson(b, n->kids[i]);
        }
        hr_buf_putc(b, ']');
    } else if (is_null(n)) {
        hr_buf_puts(b, "null");
    } else {
        int bv;
        int64_t iv;
        if (!n->quoted && !scan_bool(n, &bv))
            hr_buf_puts(b, bv ? "true" : "false");
        else if (!n->quoted && scan_int(n->str, &iv) == 0)
            hr_buf_i64(b, iv);
        else
            hr_buf_json_str(b, n->str);
    }
}

static char *yjson_dup(ctx *x, const hr_ynode *n) {
    hr_buf b;
    hr_buf_init(&b);
    yjson(&b, n);
    if (hr_buf_failed(&b)) {
        hr_buf_dispose(&b);
        x->oom = 1;
        return NULL;
    }
    return hr_buf_steal(&b, NULL);
}

static void trigger_parse(ctx *x, hr_campaign *cp, const hr_ynode *n) {
    static const char *const kinds[] = {"on_load", "page", "feature_denied", "limit_hit", "event",
                                        "element"};
    char g[96], sh[80], hb[96];
    const char *s;
    if (n->kind == HR_Y_SCALAR && !is_null(n)) {
        if (!strcmp(n->str, "on_load")) {
            cp->trigger = HR_TRIG_ON_LOAD;
            return;
        }
        bad(x, n, "expected on_load or a mapping like {feature_denied: sso} for trigger, got %s",
            got(n, g, sizeof g));
        return;
    }
    if (n->kind != HR_Y_MAP || n->n != 2) {
        bad(x, n, "expected one of on_load, {page: \"/x/*\"}, {feature_denied: F}, {limit_hit: F}, "
                  "{event: E}, {element: F} for trigger, got %s", got(n, g, sizeof g));
        return;
    }
    const hr_ynode *k = n->kids[0], *v = n->kids[1];
    int t = key_in(k->str, kinds + 1, 5);
    if (t < 0) {
        bad(x, k, "unknown trigger '%s'%s", hr_yshow(k->str, sh, sizeof sh),
            hint(k->str, kinds, 6, hb, sizeof hb));
        return;
    }
    cp->trigger = (hr_trigger_kind)(t + 1);
    if (get_str(x, v, "the trigger", &s)) return;
    if (!(cp->trigger_arg = xdup(x, s))) return;
    if (cp->trigger == HR_TRIG_PAGE && s[0] != '/')
        bad(x, v, "a page pattern starts with '/' (e.g. \"/boards/*\")");
    if (cp->trigger == HR_TRIG_FEATURE_DENIED || cp->trigger == HR_TRIG_LIMIT_HIT ||
        cp->trigger == HR_TRIG_ELEMENT) {
        cp->trigger_feature = feature_ix(x->c, s);
        if (cp->trigger_feature < 0 && !x->no_features)
            bad(x, v, "unknown feature '%s'%s", hr_yshow(s, sh, sizeof sh),
                feature_hint(x, s, hb, sizeof hb));
        else if (cp->trigger == HR_TRIG_LIMIT_HIT && cp->trigger_feature >= 0 &&
                 x->c->features[cp->trigger_feature].type == HR_FEAT_BOOLEAN)
            bad(x, v, "limit_hit needs a limit or metered feature; '%s' is on/off (use feature_denied)", s);
    }
}

static void campaign_def(ctx *x, hr_campaign *cp, const hr_ynode *v) {
    static const char *const keys[] = {"trigger", "audience", "gate",     "content", "variants",
                                       "unit",    "cap",      "goal",     "priority", "starts_at",
                                       "ends_at", "experiment", "enabled"};
    enum { TRIGGER, AUDIENCE, GATE, CONTENT, VARIANTS, UNIT, CAP, GOAL, PRIORITY, STARTS, ENDS,
           EXPERIMENT, ENABLED, NK };
    const hr_ynode *f[NK];
    char in[128], g[96];
    const char *s;
    int64_t iv;
    hr_content base = {.feature = -1, .plan = -1, .addon = -1};
    snprintf(in, sizeof in, "in campaign '%s'", cp->key);
    cp->trigger_feature = -1;
    cp->goal_within = 14 * 86400;
    cp->mde = 0.2;
    if (want_map(x, v, "a campaign")) return;
    fields(x, v, keys, NK, f, in);
    if (!f[TRIGGER])
        bad(x, v, "campaign '%s' needs a trigger (on_load, {page: ...}, {feature_denied: ...} ...)",
            cp->key);
    else
        trigger_parse(x, cp, f[TRIGGER]);
    if (f[AUDIENCE]) cp->audience = rule_get(x, f[AUDIENCE], "audience", 1);
    if (f[GATE]) cp->gate = rule_get(x, f[GATE], "gate", 1);
    if (x->oom) return;
    if (!f[CONTENT])
        bad(x, v, "campaign '%s' needs content ({type, title, body, cta})", cp->key);
    else
        content_parse(x, &base, f[CONTENT], cp->key);
    if (x->oom) goto out;
    if (f[CONTENT] && !base.title.n && !base.body.n)
        bad(x, f[CONTENT], "the content of campaign '%s' needs a title or a body", cp->key);
    if ((base.type == HR_PROMPT_TOOLTIP || base.type == HR_PROMPT_LOCK_BADGE) && !base.anchor) {
        /* a tooltip at a feature's element: the trigger's feature by default */
        if (cp->trigger_feature >= 0 && cp->trigger_arg)
            base.anchor = xdup(x, cp->trigger_arg);
        else if (f[CONTENT])
            bad(x, f[CONTENT], "a %s needs an anchor (the element it points at)",
                base.type == HR_PROMPT_TOOLTIP ? "tooltip" : "lock_badge");
    }
    if (base.action == HR_CTA_START_TRIAL && base.feature < 0 && cp->trigger_feature >= 0)
        base.feature = cp->trigger_feature;
    if (f[CONTENT] && base.action == HR_CTA_START_TRIAL && base.feature >= 0 &&
        x->c->feature_trial_days && !x->c->feature_trial_days[base.feature])
        bad(x, f[CONTENT], "cta start_trial: feature '%s' has no trial in feature_trials",
            x->c->features[base.feature].key);
    if (f[CONTENT] && base.action == HR_CTA_START_TRIAL && base.feature < 0)
        bad(x, f[CONTENT], "cta start_trial needs a feature (cta: {feature: ...}) or a feature trigger");
    if (f[VARIANTS] && !is_null(f[VARIANTS])) {
        const hr_ynode *m = f[VARIANTS];
        if (want_map(x, m, "variants (e.g. {a: {weight: 50}, b: {weight: 50}})")) goto out;
        if (!m->n) {
            bad(x, m, "variants is empty");
            goto out;
        }
        if (!(cp->variants = xcalloc(x, (size_t)m->n / 2, sizeof *cp->variants))) goto out;
        double total = 0;
        int nhold = 0;
        for (int i = 0; i + 1 < m->n; i += 2) {
            static const char *const vkeys[] = {"weight", "holdout", "content"};
            const hr_ynode *k = m->kids[i], *vv = m->kids[i + 1], *vf[3];
            hr_variant *va = &cp->variants[cp->nvariants];
            if (check_id(x, k, "variant")) continue;
            if (!(va->key = xdup(x, k->str))) goto out;
            cp->nvariants++;
            if (content_copy(x, &va->content, &base)) goto out;
            va->weight = 1;
            if (is_null(vv)) continue;
            if (want_map(x, vv, "a variant ({weight: 50})")) continue;
            fields(x, vv, vkeys, 3, vf, "in a variant");
            if (vf[0] && !get_int(x, vf[0], "weight", 0, 1000000, &iv)) va->weight = (double)iv;
            if (vf[1]) get_bool(x, vf[1], "holdout", &va->holdout);
            if (vf[2]) {
                if (va->holdout)
                    bad(x, vf[2], "a holdout variant shows nothing: it takes no content");
                else
                    content_parse(x, &va->content, vf[2], cp->key);
            }
            total += va->weight;
            nhold += va->holdout;
        }
        if (cp->nvariants && total <= 0) bad(x, m, "variant weights add up to 0");
        if (nhold > 1) bad(x, m, "at most one variant may be the holdout");
        if (cp->nvariants && nhold == cp->nvariants) bad(x, m, "every variant is a holdout: nothing would be shown");
    } else {
        if (!(cp->variants = xcalloc(x, 1, sizeof *cp->variants)) ||
            !(cp->variants[0].key = xdup(x, "default")))
            goto out;
        cp->nvariants = 1;
        cp->variants[0].weight = 1;
        if (content_copy(x, &cp->variants[0].content, &base)) goto out;
    }
    if (f[UNIT] && !get_str(x, f[UNIT], "unit", &s)) {
        if (!strcmp(s, "user"))
            cp->unit_user = 1;
        else if (strcmp(s, "account"))
            bad(x, f[UNIT], "unit is account or user, got '%s'", s);
    }
    if (f[CAP] && !want_map(x, f[CAP], "cap ({per_user: 3, per: 7d, cooldown_after_dismiss: 14d})")) {
        static const char *const ck[] = {"per_user", "per", "cooldown_after_dismiss"};
        const hr_ynode *cf[3];
        fields(x, f[CAP], ck, 3, cf, "in cap");
        if (cf[0] && !get_int(x, cf[0], "cap per_user", 1, HR_MAX_CAP, &iv)) cp->cap_n = (int)iv;
        if (cf[1]) get_duration(x, cf[1], "cap per", 60, 366 * 86400LL, &cp->cap_per);
        if (cf[2]) get_duration(x, cf[2], "cooldown_after_dismiss", 0, 3660 * 86400LL, &cp->cooldown);
        if (cp->cap_n && !cp->cap_per) cp->cap_per = 366 * 86400LL; /* "3 times" = ever, as far as kept */
        if (!cf[0] && cf[1]) bad(x, cf[1], "cap per needs per_user (how many shows per period)");
    }
    if (f[GOAL] && !want_map(x, f[GOAL], "goal ({event: \"Plan Upgraded\", within: 14d})")) {
        static const char *const gk[] = {"event", "within"};
        const hr_ynode *gf[2];
        fields(x, f[GOAL], gk, 2, gf, "in goal");
        if (!gf[0])
            bad(x, f[GOAL], "goal needs an event");
        else if (!get_str(x, gf[0], "goal event", &s))
            cp->goal_event = xdup(x, s);
        if (gf[1]) get_duration(x, gf[1], "goal within", 3600, 366 * 86400LL, &cp->goal_within);
    }
    if (f[PRIORITY] && !get_int(x, f[PRIORITY], "priority", -1000000, 1000000, &iv))
        cp->priority = (int)iv;
    int64_t t = 0;
    if (f[STARTS] && !is_null(f[STARTS])) {
        if (f[STARTS]->kind != HR_Y_SCALAR || hr_time_parse(f[STARTS]->str, &t) || t <= 0)
            bad(x, f[STARTS], "expected an RFC 3339 timestamp for starts_at, got %s",
                got(f[STARTS], g, sizeof g));
        else
            cp->starts_at = t;
    }
    if (f[ENDS] && !is_null(f[ENDS])) {
        if (f[ENDS]->kind != HR_Y_SCALAR || hr_time_parse(f[ENDS]->str, &t) || t <= 0)
            bad(x, f[ENDS], "expected an RFC 3339 timestamp for ends_at, got %s", got(f[ENDS], g, sizeof g));
        else if (cp->starts_at && t <= cp->starts_at)
            bad(x, f[ENDS], "ends_at is not after starts_at");
        else
            cp->ends_at = t;
    }
    if (f[EXPERIMENT] && !want_map(x, f[EXPERIMENT], "experiment ({mde: 0.2, baseline: 0.05})")) {
        static const char *const ek[] = {"mde", "baseline"};
        const hr_ynode *ef[2];
        char *end;
        fields(x, f[EXPERIMENT], ek, 2, ef, "in experiment");
        for (int i = 0; i < 2; i++) {
            if (!ef[i]) continue;
            double d = ef[i]->kind == HR_Y_SCALAR ? strtod(ef[i]->str, &end) : -1;
            if (ef[i]->kind != HR_Y_SCALAR || *end || !(d > 0 && d < (i ? 1 : 10)))
                bad(x, ef[i], "experiment %s must be a number in (0, %d)", ek[i], i ? 1 : 10);
            else if (i)
                cp->baseline = d;
            else
                cp->mde = d;
        }
    }
    int en = 1;
    if (f[ENABLED] && !get_bool(x, f[ENABLED], "enabled", &en) && !en) cp->ends_at = 1;
out:
    content_dispose(&base);
}

static void campaign_free(hr_campaign *cp) {
    free(cp->key);
    free(cp->trigger_arg);
    hr_rule_free(cp->audience);
    hr_rule_free(cp->gate);
    for (int i = 0; i < cp->nvariants; i++) {
        free(cp->variants[i].key);
        content_dispose(&cp->variants[i].content);
    }
    free(cp->variants);
    free(cp->goal_event);
}

static void campaigns(ctx *x, const hr_ynode *m, const hr_ynode *throttle) {
    hr_catalog *c = x->c;
    int64_t iv;
    c->max_prompts = 1;
    if (throttle && !is_null(throttle) &&
        !want_map(x, throttle, "throttle ({per_user: 1, per: 1d})")) {
        static const char *const tk[] = {"per_user", "per", "per_request"};
        const hr_ynode *tf[3];
        fields(x, throttle, tk, 3, tf, "in throttle");
        if (tf[0] && !get_int(x, tf[0], "throttle per_user", 1, HR_MAX_CAP, &iv)) c->throttle_n = (int)iv;
        if (tf[1]) get_duration(x, tf[1], "throttle per", 60, 366 * 86400LL, &c->throttle_per);
        if (tf[2] && !get_int(x, tf[2], "throttle per_request", 1, 10, &iv)) c->max_prompts = (int)iv;
        if (c->throttle_n && !c->throttle_per) c->throttle_per = 86400;
        if (!(c->throttle_json = yjson_dup(x, throttle))) return;
    }
    if (!(c->campaign_ix = hr_map_new(16))) {
        x->oom = 1;
        return;
    }
    if (!m || is_null(m)) return;
    if (want_map(x, m, "campaigns")) return;
    if (!(c->campaigns_json = yjson_dup(x, m))) return;
    if (!(c->campaigns = xcalloc(x, (size_t)m->n / 2, sizeof *c->campaigns))) return;
    for (int i = 0; i + 1 < m->n; i += 2) {
        const hr_ynode *k = m->kids[i];
        if (check_id(x, k, "campaign")) continue;
        hr_campaign *cp = &c->campaigns[c->ncampaigns];
        if (!(cp->key = xdup(x, k->str))) return;
        c->ncampaigns++;
        campaign_def(x, cp, m->kids[i + 1]);
        if (x->oom) return;
    }
    /* stable by priority: insertion sort (campaign lists are short) */
    for (int i = 1; i < c->ncampaigns; i++) {
        hr_campaign t = c->campaigns[i];
        int j = i;
        while (j > 0 && c->campaigns[j - 1].priority < t.priority) {
            c->campaigns[j] = c->campaigns[j - 1];
            j--;
        }
        c->campaigns[j] = t;
    }
    for (int i = 0; i < c->ncampaigns; i++) index_put(x, c->campaign_ix, c->campaigns[i].key, i);
}
/* ---- playbooks, webhooks, scoring, teams -------------------------------- */

static void action_parse(ctx *x, hr_pb_action *ac, const hr_ynode *n, const char *pb) {
    static const char *const keys[] = {"type", "assign", "url", "secret", "secrets", "preset",
                                       "body"};
    static const char *const presets[] = {"crm_opportunity", "sequence_enrollment", "slack"};
    const hr_ynode *f[7];
    const char *s;
    char in[128], sh[80], hb[96];
    snprintf(in, sizeof in, "in an action of playbook '%s'", pb);
    if (want_map(x, n, "an action ({type: task} or {type: webhook, url: ...})")) return;
    fields(x, n, keys, 7, f, in);
    if (!f[0]) {
        bad(x, n, "an action needs a type (task or webhook)");
        return;
    }
    if (get_str(x, f[0], "action type", &s)) return;
    if (!strcmp(s, "task"))
        ac->kind = HR_ACT_TASK;
    else if (!strcmp(s, "webhook"))
        ac->kind = HR_ACT_WEBHOOK;
    else {
        bad(x, f[0], "unknown action type '%s': use task or webhook", hr_yshow(s, sh, sizeof sh));
        return;
    }
    if (ac->kind == HR_ACT_TASK) {
        for (int i = 2; i < 7; i++)
            if (f[i]) bad(x, f[i], "'%s' is for webhook actions", keys[i]);
        if (f[1] && !get_str(x, f[1], "assign", &s)) {
            if (!strncmp(s, "team:", 5)) {
                int found = 0;
                for (int t = 0; t < x->c->nteams; t++) found |= !strcmp(x->c->teams[t].key, s + 5);
                if (!found) bad(x, f[1], "unknown team '%s' (declare it under teams:)", s + 5);
            }
            ac->assign = xdup(x, s);
        }
        return;
    }
    if (f[1]) bad(x, f[1], "'assign' is for task actions");
    if (!f[2])
        bad(x, n, "a webhook action needs a url");
    else if (!get_str(x, f[2], "url", &s)) {
        if (strncmp(s, "http://", 7) && strncmp(s, "https://", 8))
            bad(x, f[2], "a webhook url starts with http:// or https://");
        else
            ac->url = xdup(x, s);
    }
    if (f[3] && f[4]) bad(x, f[4], "give secret or secrets, not both");
    hr_buf sb;
    hr_buf_init(&sb);
    const hr_ynode *sn = f[3] ? f[3] : f[4];
    if (sn) {
        int nsec = sn->kind == HR_Y_SEQ ? sn->n : 1;
        if (nsec < 1 || nsec > 2) bad(x, sn, "one secret, or two while rotating");
        for (int i = 0; i < nsec && i < 2; i++) {
            const hr_ynode *v = sn->kind == HR_Y_SEQ ? sn->kids[i] : sn;
            if (get_str(x, v, "webhook secret", &s)) continue;
            if (strchr(s, ' ') || strlen(s) < 8) {
                bad(x, v, "a webhook secret is at least 8 characters without spaces (whsec_...)");
                continue;
            }
            if (sb.len) hr_buf_putc(&sb, ' ');
            hr_buf_puts(&sb, s);
        }
        if (sb.len) ac->secrets = xdup(x, sb.data);
    }
    hr_buf_dispose(&sb);
    if (f[5] && !get_str(x, f[5], "preset", &s)) {
        int pi = key_in(s, presets, 3);
        if (pi < 0)
            bad(x, f[5], "unknown preset '%s': use crm_opportunity, sequence_enrollment or slack%s",
                hr_yshow(s, sh, sizeof sh), hint(s, presets, 3, hb, sizeof hb));
        else
            ac->preset = (hr_preset)(pi + 1);
    }
    if (f[6]) {
        if (f[6]->kind == HR_Y_MAP || f[6]->kind == HR_Y_SEQ)
            ac->body = yjson_dup(x, f[6]);
        else
            bad(x, f[6], "body is a JSON object template, e.g. {text: \"{{message}}\"}");
    }
}

static void playbook_def(ctx *x, hr_playbook *pb, const hr_ynode *v) {
    static const char *const keys[] = {"name", "signal", "value", "message", "actions",
                                       "cooldown", "enabled"};
    const hr_ynode *f[7];
    const char *s;
    char in[128];
    snprintf(in, sizeof in, "in playbook '%s'", pb->key);
    pb->cooldown = 30 * 86400LL;
    pb->enabled = 1;
    if (want_map(x, v, "a playbook ({signal, message, actions})")) return;
    fields(x, v, keys, 7, f, in);
    if (f[0] && !get_str(x, f[0], "name", &s)) pb->name = xdup(x, s);
    if (!f[1])
        bad(x, v, "playbook '%s' needs a signal (a rule)", pb->key);
    else
        pb->signal = rule_get(x, f[1], "signal", 1);
    if (x->oom) return;
    if (f[2]) {
        pb->value = rule_get(x, f[2], "value", 0);
        if (pb->value && hr_rule_result_type(pb->value) == HR_RT_BOOL)
            bad(x, f[2], "value is a number or a text shown as signal.value, not a condition");
    }
    if (x->oom) return;
    if (!f[3])
        bad(x, v, "playbook '%s' needs a message", pb->key);
    else if (!get_text(x, f[3], "message", 1, &s)) {
        hr_template *t = NULL;
        hr_err e;
        int rc = hr_template_compile(s, strlen(s), &t, &e);
        if (rc == HR_ENOMEM) {
            x->oom = 1;
            return;
        }
        if (rc)
            rule_error(x, f[3], "message", &e);
        else {
            static const char *const roots[] = {"account", "user", "signal", "playbook", "score",
                                                "message", "rep"};
            for (int i = 0; i < hr_template_nvars(t); i++) {
                const char *var = hr_template_var(t, i);
                size_t rl = strcspn(var, ".");
                int ok = 0;
                for (int r = 0; r < 7; r++) ok |= strlen(roots[r]) == rl && !strncmp(roots[r], var, rl);
                if (!ok)
                    bad(x, f[3], "message: unknown placeholder '{{%s}}' (use account., user., "
                                 "signal., playbook, score)", var);
            }
            pb->message = xdup(x, s);
        }
        hr_template_free(t);
    }
    if (!f[4] || is_null(f[4]))
        bad(x, v, "playbook '%s' needs actions (e.g. [{type: task, assign: owner}])", pb->key);
    else if (f[4]->kind != HR_Y_SEQ || !f[4]->n)
        bad(x, f[4], "actions is a list of {type: task | webhook, ...}");
    else if ((pb->actions = xcalloc(x, (size_t)f[4]->n, sizeof *pb->actions))) {
        for (int i = 0; i < f[4]->n; i++) {
            action_parse(x, &pb->actions[pb->nactions++], f[4]->kids[i], pb->key);
            if (x->oom) return;
        }
    }
    if (f[5]) get_duration(x, f[5], "cooldown", 0, 3660 * 86400LL, &pb->cooldown);
    if (f[6]) get_bool(x, f[6], "enabled", &pb->enabled);
}

static void playbook_free(hr_playbook *pb) {
    free(pb->key);
    free(pb->name);
    hr_rule_free(pb->signal);
    hr_rule_free(pb->value);
    free(pb->message);
    for (int i = 0; i < pb->nactions; i++) {
        free(pb->actions[i].assign);
        free(pb->actions[i].url);
        free(pb->actions[i].secrets);
        free(pb->actions[i].body);
    }
    free(pb->actions);
}

static void teams(ctx *x, const hr_ynode *m) {
    hr_catalog *c = x->c;
    if (!m || is_null(m)) return;
    if (want_map(x, m, "teams ({ae: [rep1, rep2]})")) return;
    if (!(c->teams_json = yjson_dup(x, m))) return;
    if (!(c->teams = xcalloc(x, (size_t)m->n / 2, sizeof *c->teams))) return;
    for (int i = 0; i + 1 < m->n; i += 2) {
        const hr_ynode *k = m->kids[i], *v = m->kids[i + 1];
        if (check_id(x, k, "team")) continue;
        if (v->kind != HR_Y_SEQ || !v->n) {
            bad(x, v, "team '%s' is a list of reps (e.g. [alice, bob])", k->str);
            continue;
        }
        hr_team *t = &c->teams[c->nteams++];
        if (!(t->key = xdup(x, k->str)) || !(t->reps = xcalloc(x, (size_t)v->n, sizeof(char *))))
            return;
        for (int j = 0; j < v->n; j++) {
            const char *s;
            if (get_str(x, v->kids[j], "a rep", &s)) continue;
            if (!(t->reps[t->nreps++] = xdup(x, s))) return;
        }
    }
}

static void scoring(ctx *x, const hr_ynode *m) {
    static const char *const keys[] = {"weights", "facts"};
    static const char *const builtin[] = {"usage_growth_30d", "active_users_7d", "limit_pressure",
                                          "decision_maker_active"};
    hr_catalog *c = x->c;
    const hr_ynode *f[2];
    char sh[80], hb[96];
    if (!m || is_null(m)) return;
    if (want_map(x, m, "scoring ({weights: {...}, facts: {...}})")) return;
    if (!(c->scoring_json = yjson_dup(x, m))) return;
    fields(x, m, keys, 2, f, "in scoring");
    const hr_ynode *w = f[0], *facts = f[1];
    if (facts && !is_null(facts) && want_map(x, facts, "scoring facts ({name: 'rule'})")) facts = NULL;
    if (!w || is_null(w)) {
        bad(x, m, "scoring needs weights ({usage_growth_30d: 30, ...})");
        return;
    }
    if (want_map(x, w, "scoring weights")) return;
    if (!(c->score = xcalloc(x, (size_t)w->n / 2, sizeof *c->score))) return;
    for (int i = 0; i + 1 < w->n; i += 2) {
        const hr_ynode *k = w->kids[i];
        int64_t wt;
        if (get_int(x, w->kids[i + 1], "a weight", 0, 1000000, &wt)) continue;
        hr_score_term *t = &c->score[c->nscore];
        int b = key_in(k->str, builtin, 4);
        const hr_ynode *rule = NULL;
        for (int j = 0; facts && j + 1 < facts->n; j += 2)
            if (!strcmp(facts->kids[j]->str, k->str)) rule = facts->kids[j + 1];
        if (b < 0 && !rule) {
            bad(x, k, "unknown score fact '%s': a built-in (usage_growth_30d, active_users_7d, "
                      "limit_pressure, decision_maker_active) or one under scoring.facts%s",
                hr_yshow(k->str, sh, sizeof sh), hint(k->str, builtin, 4, hb, sizeof hb));
            continue;
        }
        if (!(t->key = xdup(x, k->str))) return;
        c->nscore++;
        t->weight = (double)wt;
        t->kind = b >= 0 ? (hr_score_kind)(b + 1) : HR_SCORE_RULE;
        if (rule) {
            t->kind = HR_SCORE_RULE;
            t->rule = rule_get(x, rule, "a score fact", 0);
            if (x->oom) return;
        }
    }
    for (int j = 0; facts && j + 1 < facts->n; j += 2) {
        int used = 0;
        for (int i = 0; i < c->nscore; i++) used |= !strcmp(c->score[i].key, facts->kids[j]->str);
        if (!used) bad(x, facts->kids[j], "score fact '%s' has no weight", facts->kids[j]->str);
    }
}

static void webhooks_cfg(ctx *x, const hr_ynode *m) {
    static const char *const keys[] = {"retry", "timeout"};
    static const char *const rk[] = {"initial", "factor", "max_interval", "max_attempts"};
    hr_catalog *c = x->c;
    const hr_ynode *f[2], *r[4];
    int64_t v;
    if (!m || is_null(m)) return;
    if (want_map(x, m, "webhooks ({retry: {...}, timeout: 10s})")) return;
    if (!(c->webhooks_json = yjson_dup(x, m))) return;
    fields(x, m, keys, 2, f, "in webhooks");
    if (f[1] && !get_duration(x, f[1], "timeout", 1, 300, &v)) c->wh_timeout_ms = v * 1000;
    if (!f[0] || want_map(x, f[0], "retry ({initial: 5s, factor: 3, max_interval: 2h, max_attempts: 12})"))
        return;
    fields(x, f[0], rk, 4, r, "in webhooks.retry");
    if (r[0] && !get_duration(x, r[0], "retry initial", 1, 86400, &v)) c->wh_initial_ms = v * 1000;
    if (r[1]) {
        char *end;
        double d = r[1]->kind == HR_Y_SCALAR ? strtod(r[1]->str, &end) : 0;
        if (r[1]->kind != HR_Y_SCALAR || *end || !(d >= 1 && d <= 10))
            bad(x, r[1], "retry factor is a number from 1 to 10");
        else
            c->wh_factor = d;
    }
    if (r[2] && !get_duration(x, r[2], "retry max_interval", 1, 7 * 86400, &v))
        c->wh_max_interval_ms = v * 1000;
    if (r[3] && !get_int(x, r[3], "retry max_attempts", 1, 100, &v)) c->wh_max_attempts = (int)v;
}

static void playbooks(ctx *x, const hr_ynode *m) {
    hr_catalog *c = x->c;
    if (!(c->playbook_ix = hr_map_new(16))) {
        x->oom = 1;
        return;
    }
    if (!m || is_null(m)) return;
    if (want_map(x, m, "playbooks")) return;
    if (!(c->playbooks_json = yjson_dup(x, m))) return;
    if (!(c->playbooks = xcalloc(x, (size_t)m->n / 2, sizeof *c->playbooks))) return;
    for (int i = 0; i + 1 < m->n; i += 2) {
        const hr_ynode *k = m->kids[i];
        if (check_id(x, k, "playbook")) continue;
        hr_playbook *pb = &c->playbooks[c->nplaybooks];
        if (!(pb->key = xdup(x, k->str))) return;
        c->nplaybooks++;
        if (!(pb->ikey = hr_intern(pb->key))) {
            x->oom = 1;
            return;
        }
        playbook_def(x, pb, m->kids[i + 1]);
        if (x->oom) return;
        index_put(x, c->playbook_ix, pb->key, c->nplaybooks - 1);
    }
}

/* The sums rules ask for, once each. */
static void sum_keys_of(ctx *x, const hr_rule *r) {
    hr_catalog *c = x->c;
    for (int i = 0; r && i < hr_rule_nfacts(r); i++) {
        const hr_fact_call *f = hr_rule_fact(r, i);
        char key[600];
        if (f->fact == HR_FACT_GROWTH && f->meter >= 0 && f->meter < c->nmeters) {
            /* growth() of a sum meter reads the same per-day sums */
            if (hr_meter_sum_key(&c->meters[f->meter], key, sizeof key)) continue;
        } else if (f->fact != HR_FACT_SUM || !f->event || !f->property) {
            continue;
        } else {
            if (hr_sum_key(f->event, f->property, key, sizeof key)) continue;
        }
        int seen = 0;
        for (int k = 0; k < c->nsum_keys; k++) seen |= !strcmp(c->sum_keys[k], key);
        if (seen) continue;
        char **p = realloc(c->sum_keys, (size_t)(c->nsum_keys + 1) * sizeof *p);
        if (!p || !(p[c->nsum_keys] = xdup(x, key))) {
            if (p) c->sum_keys = p;
            x->oom = 1;
            return;
        }
        c->sum_keys = p;
        c->nsum_keys++;
    }
}

int hr_sum_key(const char *event, const char *property, char *buf, size_t n) {
    int w = snprintf(buf, n, "%s\x1f%s", event, property);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

int hr_meter_sum_key(const hr_meter *m, char *buf, size_t n) {
    if (m->aggregate != HR_AGG_SUM || m->nwhere || !m->property ||
        strncmp(m->property, "properties.", 11) || !m->property[11])
        return -1;
    return hr_sum_key(m->event, m->property + 11, buf, n);
}

static void collect_sums(ctx *x) {
    hr_catalog *c = x->c;
    for (int i = 0; i < c->ncampaigns; i++) {
        sum_keys_of(x, c->campaigns[i].audience);
        sum_keys_of(x, c->campaigns[i].gate);
    }
    for (int i = 0; i < c->nplaybooks; i++) {
        sum_keys_of(x, c->playbooks[i].signal);
        sum_keys_of(x, c->playbooks[i].value);
    }
    for (int i = 0; i < c->nscore; i++) sum_keys_of(x, c->score[i].rule);
}

/* The signals run together for each account: their shared clauses are
 * evaluated once an account (hr_rule_share_add). */
static void share_signals(ctx *x) {
    hr_catalog *c = x->c;
    hr_rule_share *s = hr_rule_share_new();
    for (int i = 0; s && i < c->nplaybooks; i++)
        if (hr_rule_share_add(s, c->playbooks[i].signal)) {
            x->oom = 1;
            break;
        }
    if (!s) x->oom = 1;
    c->signal_slots = hr_rule_share_slots(s);
    hr_rule_share_free(s);
}

/* The catalog's default thresholds, given to every feature without its own. */
static void usage_thresholds(ctx *x, const hr_ynode *n) {
    hr_catalog *c = x->c;
    static const double dflt[] = {0.8, 1.0};
    if (n && !is_null(n))
        threshold_list(x, n, "usage_thresholds", c->thresholds, &c->nthresholds);
    for (int i = 0; i < c->nfeatures; i++) {
        hr_feature *f = &c->features[i];
        if (f->own_thresholds) continue;
        if (c->nthresholds) {
            memcpy(f->thresholds, c->thresholds, sizeof c->thresholds);
            f->nthresholds = c->nthresholds;
        } else {
            memcpy(f->thresholds, dflt, sizeof dflt);
            f->nthresholds = 2;
        }
    }
}

static void build(ctx *x, const hr_ynode *root) {
    static const char *const keys[] = {"currency",  "features",  "plans",    "addons",
                                       "feature_trials", "overrides", "meters", "campaigns",
                                       "throttle", "playbooks", "webhooks", "scoring", "teams",
                                       "usage_thresholds"};
    /* Sections read elsewhere (keys, server: headroomd): accepted. */
    static const char *const reserved[] = {"identity", "keys", "server"};
    static const char *const all[] = {"currency",  "features",  "plans",    "addons",
                                      "feature_trials", "overrides", "meters", "campaigns",
                                      "throttle",  "playbooks", "webhooks", "scoring",
                                      "identity",  "keys",      "server", "teams",
                                      "usage_thresholds"};
    enum { CURRENCY, FEATURES, PLANS, ADDONS, TRIALS, OVERRIDES, METERS, CAMPAIGNS, THROTTLE,
           PLAYBOOKS, WEBHOOKS, SCORING, TEAMS, THRESHOLDS, NKEYS };
    const hr_ynode *f[NKEYS] = {0};
    char sh[80], hb[96], g[96];

    if (!root || is_null(root)) {
        hr_esink_add(x->es, 1, 1, "the catalog is empty: at least one plan is required");
        currency(x, NULL);
        features(x, NULL);
        return;
    }
    if (!is_map(root)) {
        bad(x, root, "expected a mapping at the top level, got %s", got(root, g, sizeof g));
        currency(x, NULL);
        features(x, NULL);
        return;
    }
    for (int i = 0; i + 1 < root->n; i += 2) {
        const hr_ynode *k = root->kids[i];
        int j = 0;
        while (j < NKEYS && strcmp(keys[j], k->str)) j++;
        if (j < NKEYS) {
            f[j] = root->kids[i + 1];
            continue;
        }
        int r = 0;
        while (r < 3 && strcmp(reserved[r], k->str)) r++;
        if (r == 3)
            bad(x, k, "unknown key '%s'%s", hr_yshow(k->str, sh, sizeof sh),
                hint(k->str, all, 17, hb, sizeof hb));
    }
    currency(x, f[CURRENCY]);
    meters(x, f[METERS]); /* before features, which name them */
    if (x->oom) return;
    features(x, f[FEATURES]);
    if (x->oom) return;
    usage_thresholds(x, f[THRESHOLDS]);
    plans(x, f[PLANS]);
    if (x->oom) return;
    addons(x, f[ADDONS]);
    if (x->oom) return;
    feature_trials(x, f[TRIALS]);
    overrides(x, f[OVERRIDES]);
    if (x->oom) return;
    campaigns(x, f[CAMPAIGNS], f[THROTTLE]);
    if (x->oom) return;
    teams(x, f[TEAMS]); /* before playbooks, whose tasks name them */
    if (x->oom) return;
    playbooks(x, f[PLAYBOOKS]);
    if (x->oom) return;
    scoring(x, f[SCORING]);
    if (x->oom) return;
    webhooks_cfg(x, f[WEBHOOKS]);
    if (x->oom) return;
    collect_sums(x);
    share_signals(x);
    if (x->oom) return;
    if (x->first_price && !x->c->currency && !(f[CURRENCY] && !is_null(f[CURRENCY])))
        bad(x, x->first_price, "price without currency: add e.g. 'currency: USD' at the top");
}

/* ---- lifecycle ---- */

static void catalog_free(hr_catalog *c) {
    if (!c) return;
    for (int i = 0; i < c->nfeatures; i++) {
        hr_feature *f = &c->features[i];
        free(f->key);
        free(f->name);
        free(f->unit);
        free(f->meter);
    }
    free(c->features);
    for (int i = 0; i < c->nplans; i++) {
        hr_plan *p = &c->plans[i];
        for (int v = 0; v < p->nversions; v++) free(p->versions[v].ent);
        free(p->versions);
        free(p->key);
        free(p->name);
    }
    free(c->plans);
    for (int i = 0; i < c->naddons; i++) {
        hr_addon *a = &c->addons[i];
        free(a->key);
        free(a->name);
        free(a->grants);
        free(a->plans);
    }
    free(c->addons);
    for (int i = 0; i < c->noverrides; i++) free(c->overrides[i].account);
    free(c->overrides);
    free(c->feature_trial_days);
    for (int i = 0; i < c->nmeters; i++) {
        hr_meter *m = &c->meters[i];
        for (int j = 0; j < m->nwhere; j++) {
            free(m->where[j].path);
            free(m->where[j].string);
        }
        free(m->where);
        free(m->key);
        free(m->event);
        free(m->property);
    }
    free(c->meters);
    free(c->feature_meter);
    hr_map_free(c->meter_ix);
    for (int i = 0; i < c->ncampaigns; i++) campaign_free(&c->campaigns[i]);
    free(c->campaigns);
    hr_map_free(c->campaign_ix);
    free(c->campaigns_json);
    free(c->throttle_json);
    for (int i = 0; i < c->nplaybooks; i++) playbook_free(&c->playbooks[i]);
    free(c->playbooks);
    hr_map_free(c->playbook_ix);
    for (int i = 0; i < c->nscore; i++) {
        free(c->score[i].key);
        hr_rule_free(c->score[i].rule);
    }
    free(c->score);
    for (int i = 0; i < c->nteams; i++) {
        for (int j = 0; j < c->teams[i].nreps; j++) free(c->teams[i].reps[j]);
        free(c->teams[i].reps);
        free(c->teams[i].key);
    }
    free(c->teams);
    for (int i = 0; i < c->nsum_keys; i++) free(c->sum_keys[i]);
    free(c->sum_keys);
    free(c->playbooks_json);
    free(c->webhooks_json);
    free(c->scoring_json);
    free(c->teams_json);
    hr_map_free(c->feature_ix);
    hr_map_free(c->plan_ix);
    hr_map_free(c->addon_ix);
    free(c->currency);
    free(c->source_path);
    free(c);
}

static void list_push(hr_err_list *errs, const hr_err *items, int n) {
    if (!errs || n <= 0) return;
    hr_err *p = realloc(errs->items, (size_t)(errs->count + n) * sizeof *p);
    if (!p) return; /* err still carries the first error */
    memcpy(p + errs->count, items, (size_t)n * sizeof *p);
    errs->items = p;
    errs->count += n;
}

int hr_catalog_parse(const char *text, size_t len, const char *name, hr_catalog **out,
                     hr_err *err, hr_err_list *errs) {
    hr_esink es = {.name = name ? name : "catalog"};
    hr_ynode *root = NULL;
    hr_catalog *c = NULL;
    char *json = NULL;
    hr_err first;
    int rc;

    *out = NULL;
    hr_err_clear(err);
    hr_err_clear(&first);
    rc = hr_ytree_parse(text, len, &es, &root);
    if (rc == HR_ENOMEM) goto out;
    if (!(c = calloc(1, sizeof *c)) || !(c->feature_ix = hr_map_new(16)) ||
        !(c->plan_ix = hr_map_new(16)) || !(c->addon_ix = hr_map_new(16)) ||
        !(c->meter_ix = hr_map_new(16))) {
        rc = HR_ENOMEM;
        goto out;
    }
    c->refs = 1;
    c->currency_decimals = 2;
    if (rc == 0) {
        ctx x = {.es = &es, .c = c, .text = text, .len = text ? len : 0};
        build(&x, root);
        free(x.feat_bad);
        free(x.fkeys);
        free(x.mkeys);
        free(x.akeys);
        free(x.pkeys);
        if (x.oom) rc = HR_ENOMEM;
    }
    if (es.oom) rc = HR_ENOMEM;
    if (!rc && (es.count || es.dropped)) rc = HR_ECONFIG;
    if (rc) goto out;
    /* The hash of the canonical JSON: the same content in any layout,
     * YAML or JSON, gets the same catalog version. */
    if (!(json = hr_catalog_to_json(c))) {
        rc = HR_ENOMEM;
        goto out;
    }
    c->hash = hr_hash(json, strlen(json));
out:
    if (rc == HR_ENOMEM) {
        hr_err_setpos(&first, HR_ENOMEM, es.name, 0, 0, "out of memory while loading the catalog");
        list_push(errs, &first, 1);
    } else if (rc) {
        hr_esink_sort(&es);
        first = es.items[0];
        list_push(errs, es.items, es.count);
        if (es.dropped) {
            hr_err more;
            hr_err_setpos(&more, HR_ECONFIG, es.name, 0, 0, "too many errors: %d more not shown",
                          es.dropped);
            list_push(errs, &more, 1);
        }
    }
    if (rc && err) *err = first;
    if (rc)
        catalog_free(c);
    else
        *out = c;
    free(json);
    hr_ynode_free(root);
    hr_esink_dispose(&es);
    return rc;
}

int hr_catalog_load_file_all(const char *path, hr_catalog **out, hr_err *err, hr_err_list *errs) {
    FILE *f = NULL;
    char *text = NULL;
    size_t len = 0, cap = 0;
    hr_err e; /* errors before parsing; the parser reports its own */
    int rc = 0, parsed = 0;

    *out = NULL;
    hr_err_clear(&e);
    if (!(f = fopen(path, "rb"))) {
        rc = hr_err_setpos(&e, HR_EIO, path, 0, 0, "cannot open: %s", strerror(errno));
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_FILE) {
                rc = hr_err_setpos(&e, HR_ECONFIG, path, 0, 0, "file is larger than %d MB",
                                   MAX_FILE >> 20);
                goto out;
            }
            cap = cap ? cap * 2 : 65536;
            char *p = realloc(text, cap);
            if (!p) {
                rc = hr_err_setpos(&e, HR_ENOMEM, path, 0, 0, "out of memory reading the file");
                goto out;
            }
            text = p;
        }
        size_t n = fread(text + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    if (ferror(f)) {
        rc = hr_err_setpos(&e, HR_EIO, path, 0, 0, "cannot read: %s", strerror(errno));
        goto out;
    }
    parsed = 1;
    if ((rc = hr_catalog_parse(text, len, path, out, err, errs))) goto out;
    if (!((*out)->source_path = strdup(path))) {
        hr_catalog_release(*out);
        *out = NULL;
        parsed = 0;
        rc = hr_err_setpos(&e, HR_ENOMEM, path, 0, 0, "out of memory");
    }
out:
    if (rc && !parsed) {
        if (err) *err = e;
        list_push(errs, &e, 1);
    }
    if (f) fclose(f);
    free(text);
    return rc;
}

int hr_catalog_load_file(const char *path, hr_catalog **out, hr_err *err) {
    return hr_catalog_load_file_all(path, out, err, NULL);
}

void hr_catalog_errors_free(hr_err_list *errs) {
    if (!errs) return;
    free(errs->items);
    errs->items = NULL;
    errs->count = 0;
}

hr_catalog *hr_catalog_retain(hr_catalog *c) {
    if (c) __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    return c;
}

void hr_catalog_release(hr_catalog *c) {
    /* acq_rel: the last owner must see every other owner's reads done. */
    if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0) catalog_free(c);
}

/* ---- lookups ---- */

int hr_catalog_feature(const hr_catalog *c, const char *key) {
    return c ? lookup(c->feature_ix, key) : -1;
}

int hr_catalog_plan(const hr_catalog *c, const char *key) {
    return c ? lookup(c->plan_ix, key) : -1;
}

int hr_catalog_addon(const hr_catalog *c, const char *key) {
    return c ? lookup(c->addon_ix, key) : -1;
}

int hr_catalog_campaign(const hr_catalog *c, const char *key) {
    return c->campaign_ix ? lookup(c->campaign_ix, key) : -1;
}

int hr_catalog_playbook(const hr_catalog *c, const char *key) {
    return c->playbook_ix ? lookup(c->playbook_ix, key) : -1;
}

int hr_catalog_meter(const hr_catalog *c, const char *key) {
    return c ? lookup(c->meter_ix, key) : -1;
}

const hr_plan_version *hr_catalog_plan_version(const hr_catalog *c, int plan, int v) {
    if (!c || plan < 0 || plan >= c->nplans || !c->plans[plan].nversions) return NULL;
    const hr_plan *p = &c->plans[plan];
    if (v > 0)
        for (int i = 0; i < p->nversions; i++)
            if (p->versions[i].version == v) return &p->versions[i];
    return &p->versions[p->nversions - 1];
}

int64_t hr_catalog_monthly(int64_t price, hr_interval iv) {
    if (iv != HR_INTERVAL_YEAR) return price;
    return price >= 0 ? (price + 6) / 12 : -((-price + 5) / 12);
}

int64_t hr_catalog_minor(const hr_catalog *c, int64_t micros) {
    int dec = c ? c->currency_decimals : 2;
    int64_t div = 1;
    for (int i = dec; i < 6; i++) div *= 10;
    /* floor((micros + div/2) / div): half up, also below zero */
    int64_t n = micros + div / 2, q = n / div;
    if (n % div && n < 0) q--;
    return q;
}

const char *hr_interval_str(hr_interval iv) {
    switch (iv) {
    case HR_INTERVAL_MONTH: return "month";
    case HR_INTERVAL_YEAR: return "year";
    case HR_INTERVAL_ONE_TIME: return "one_time";
    }
    return "month";
}

const char *hr_feature_type_str(hr_feature_type t) {
    switch (t) {
    case HR_FEAT_BOOLEAN: return "boolean";
    case HR_FEAT_LIMIT: return "limit";
    case HR_FEAT_METERED: return "metered";
    }
    return "limit";
}
