/* err.h: error codes (one table, errors.def) and the error buffer that
 * parse, validate and store calls fill in. Library code never prints. */
#ifndef HR_ERR_H
#define HR_ERR_H

#include "headroom.h"

/* Fills err (which may be NULL) with code and a printf-style message;
 * returns code so callers can write `return hr_err_set(err, HR_EINVAL, ...)`. */
int hr_err_set(hr_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* As hr_err_set, with a file position (line and column are 1-based). */
int hr_err_setpos(hr_err *err, int code, const char *file, int line, int col,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void hr_err_clear(hr_err *err);
/* HTTP status and the short machine code ("invalid_request") for an error. */
int hr_err_http_status(int code);
const char *hr_err_code_str(int code);
/* "file:line:column: message" (parts without a value are left out) into
 * buf; returns what snprintf returns. */
int hr_err_fmt(const hr_err *e, char *buf, size_t n);

#endif
