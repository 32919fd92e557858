/* err.c: the error table, expanded from errors.def. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct row { int code, status; const char *str, *msg; };
static const struct row rows[] = {
#define HR_ERR(n, v, s, c, m) {v, s, c, m},
#include "errors.def"
#undef HR_ERR
};

static const struct row *find(int code) {
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].code == code) return &rows[i];
    return NULL;
}

const char *hr_strerror(int code) {
    const struct row *r = find(code);
    return r ? r->msg : "unknown error";
}

int hr_err_http_status(int code) {
    const struct row *r = find(code);
    return r ? r->status : 500;
}

const char *hr_err_code_str(int code) {
    const struct row *r = find(code);
    return r ? r->str : "internal";
}

void hr_err_clear(hr_err *err) {
    if (err) memset(err, 0, sizeof *err);
}

static void vset(hr_err *err, int code, const char *file, int line, int col,
                 const char *fmt, va_list ap) {
    err->code = code;
    err->line = line;
    err->column = col;
    snprintf(err->file, sizeof err->file, "%s", file ? file : "");
    vsnprintf(err->message, sizeof err->message, fmt, ap);
}

int hr_err_set(hr_err *err, int code, const char *fmt, ...) {
    if (!err) return code;
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, NULL, 0, 0, fmt, ap);
    va_end(ap);
    return code;
}

int hr_err_setpos(hr_err *err, int code, const char *file, int line, int col,
                  const char *fmt, ...) {
    if (!err) return code;
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, file, line, col, fmt, ap);
    va_end(ap);
    return code;
}
