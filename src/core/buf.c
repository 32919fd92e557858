/* buf.c: growable buffer with JSON writers; see buf.h. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"

void hr_buf_init(hr_buf *b) { memset(b, 0, sizeof *b); }

void hr_buf_dispose(hr_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

void hr_buf_reset(hr_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = 0;
}

char *hr_buf_steal(hr_buf *b, size_t *len) {
    char *p = b->data;
    if (len) *len = b->len;
    if (!p) p = calloc(1, 1);
    memset(b, 0, sizeof *b);
    return p;
}

int hr_buf_failed(const hr_buf *b) { return b->failed; }

static int reserve(hr_buf *b, size_t extra) {
    if (b->failed) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void hr_buf_append(hr_buf *b, const void *p, size_t n) {
    if (!n) return; /* p may be NULL then */
    if (reserve(b, n)) return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void hr_buf_puts(hr_buf *b, const char *s) { hr_buf_append(b, s, strlen(s)); }

void hr_buf_putc(hr_buf *b, char c) {
    if (reserve(b, 1)) return;
    b->data[b->len++] = c;
    b->data[b->len] = 0;
}

void hr_buf_printf(hr_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        hr_buf_append(b, tmp, (size_t)n);
        return;
    }
    if (reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void hr_buf_i64(hr_buf *b, int64_t v) {
    char tmp[24], *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    hr_buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}

void hr_buf_json_str(hr_buf *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    if (!s) {
        hr_buf_append(b, "null", 4);
        return;
    }
    hr_buf_putc(b, '"');
    const char *run = s;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        hr_buf_append(b, run, (size_t)((const char *)p - run));
        run = (const char *)p + 1;
        switch (c) {
        case '"': hr_buf_append(b, "\\\"", 2); break;
        case '\\': hr_buf_append(b, "\\\\", 2); break;
        case '\n': hr_buf_append(b, "\\n", 2); break;
        case '\r': hr_buf_append(b, "\\r", 2); break;
        case '\t': hr_buf_append(b, "\\t", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            hr_buf_append(b, u, 6);
        }
        }
    }
    hr_buf_puts(b, run);
    hr_buf_putc(b, '"');
}

void hr_buf_json_key(hr_buf *b, const char *k) {
    hr_buf_json_str(b, k);
    hr_buf_putc(b, ':');
}

void hr_buf_json_time(hr_buf *b, int64_t t) {
    if (!t) {
        hr_buf_append(b, "null", 4);
        return;
    }
    char tmp[40];
    hr_time_format(t, tmp, sizeof tmp);
    hr_buf_putc(b, '"');
    hr_buf_puts(b, tmp);
    hr_buf_putc(b, '"');
}
