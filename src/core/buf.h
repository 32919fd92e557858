/* buf.h: a growable byte buffer for building responses and JSON text.
 * Allocation failure is sticky: appends become no-ops and hr_buf_failed()
 * reports it once at the end, so builders need not check every call. */
#ifndef HR_BUF_H
#define HR_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct hr_buf {
    char *data; /* NUL-terminated while len < cap; owned */
    size_t len, cap;
    int failed;
} hr_buf;

void hr_buf_init(hr_buf *b);
void hr_buf_dispose(hr_buf *b);
void hr_buf_reset(hr_buf *b);
/* Hands the bytes to the caller (free with free()); the buffer is emptied. */
char *hr_buf_steal(hr_buf *b, size_t *len);
int hr_buf_failed(const hr_buf *b);

void hr_buf_append(hr_buf *b, const void *p, size_t n);
void hr_buf_puts(hr_buf *b, const char *s);
void hr_buf_putc(hr_buf *b, char c);
void hr_buf_printf(hr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hr_buf_i64(hr_buf *b, int64_t v);
/* A JSON string literal with quotes; NULL writes null. */
void hr_buf_json_str(hr_buf *b, const char *s);
/* `"key":` */
void hr_buf_json_key(hr_buf *b, const char *k);
/* RFC 3339 UTC timestamp string from unix seconds, quoted; 0 writes null. */
void hr_buf_json_time(hr_buf *b, int64_t t);

#endif
