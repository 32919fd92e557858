/* log.c: one line per message, RFC 3339 time first, so logs sort and grep. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "timeutil.h"

static int min_level = HR_LOG_INFO;

void hr_log_set_level(int level) { min_level = level; }

int hr_log_level_parse(const char *s) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

void hr_log(int level, const char *fmt, ...) {
    static const char *tags[] = {"debug", "info", "warn", "error"};
    if (level < min_level) return;
    char ts[40], line[2048];
    hr_time_format(hr_time_now(), ts, sizeof ts);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %s %s\n", ts, tags[level], line);
}
