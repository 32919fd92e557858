/* errfmt.c: an hr_err as the one line tools print, "file:line:column:
 * message", the form editors and CI annotations jump to. */
#include <stdio.h>

#include "err.h"

int hr_err_fmt(const hr_err *e, char *buf, size_t n) {
    const char *msg = e->message[0] ? e->message : hr_strerror(e->code);
    if (e->file[0] && e->line > 0)
        return snprintf(buf, n, "%s:%d:%d: %s", e->file, e->line, e->column, msg);
    if (e->file[0]) return snprintf(buf, n, "%s: %s", e->file, msg);
    if (e->line > 0) return snprintf(buf, n, "%d:%d: %s", e->line, e->column, msg);
    return snprintf(buf, n, "%s", msg);
}
