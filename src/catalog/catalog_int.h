/* catalog_int.h: internals shared by the catalog's .c files only.
 *
 * The YAML reader (ytree.c) turns text into a small tree of hr_ynode with a
 * 1-based line:column on every node; the validator (catalog.c) walks that
 * tree; errors from both go to one hr_esink so they come out sorted by
 * position. */
#ifndef HR_CATALOG_INT_H
#define HR_CATALOG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"

typedef enum { HR_Y_SCALAR, HR_Y_MAP, HR_Y_SEQ } hr_ykind;
typedef enum { HR_YS_PLAIN, HR_YS_SINGLE, HR_YS_DOUBLE, HR_YS_BLOCK } hr_ystyle;

typedef struct hr_ynode hr_ynode;
struct hr_ynode {
    hr_ykind kind;
    int line, col; /* 1-based */
    int quoted;    /* scalar written quoted or as a block: always a string */
    char *str;     /* scalar text, NUL-terminated (never NULL for scalars) */
    /* Where a scalar's text sits in the source, so errors inside it (a
     * meter's where) can point at a column: style, and for scalars on one
     * line the byte span between the quotes (src_len 0 otherwise). */
    hr_ystyle style;
    size_t src_off, src_len;
    int n, cap;    /* map: kids are key, value, key, value ...; seq: items */
    hr_ynode **kids;
};

/* Collected errors. Allocation failure while recording is sticky in oom. */
typedef struct hr_esink {
    const char *name;
    hr_err *items;
    int count, cap;
    int dropped; /* errors past the cap, not stored */
    int oom;
} hr_esink;

void hr_esink_add(hr_esink *s, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sorts the errors by position, keeping the order of errors at one place. */
void hr_esink_sort(hr_esink *s);
void hr_esink_dispose(hr_esink *s);

/* s made printable and cut to fit buf (n >= 8), for messages. */
const char *hr_yshow(const char *s, char *buf, size_t n);

/* Reads one YAML (or JSON) document into *root (NULL for an empty input).
 * Duplicate keys are reported and dropped (the first wins), so a mapping's
 * keys are unique strings afterwards. Returns 0, HR_ECONFIG when the text
 * cannot be read as YAML at all (the errors are in s), or HR_ENOMEM.
 * Caller frees *root with hr_ynode_free, also on error. */
int hr_ytree_parse(const char *text, size_t len, hr_esink *s, hr_ynode **root);
void hr_ynode_free(hr_ynode *n);

/* The value of a single-quoted scalar from its source text between the
 * quotes ('' escapes, line folding); caller frees. NULL on OOM. */
char *hr_ysq_text(const char *s, size_t n, size_t *len);

/* Writes micros as a major-unit decimal ("12", "0.002") into buf (>= 32). */
void hr_price_fmt(int64_t micros, char *buf, size_t n);

#endif
