/* timeutil.c: civil-date arithmetic (Howard Hinnant's days_from_civil
 * algorithm) so nothing depends on the process time zone. */
#define _POSIX_C_SOURCE 200809L
#include "timeutil.h"

#include <ctype.h>
#include <stdio.h>
#include <time.h>

int64_t hr_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

int64_t hr_time_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hr_days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void hr_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)**p)) return -1;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return 0;
}

static int days_in_month(int64_t y, unsigned m) {
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : dm[m - 1];
}

int hr_time_parse(const char *s, int64_t *out) {
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, se = 0;
    if (!s || digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, (unsigned)mo)) return -1;
    int64_t off = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi)) return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &se)) return -1;
            if (*p == '.') {
                p++;
                if (!isdigit((unsigned char)*p)) return -1;
                while (isdigit((unsigned char)*p)) p++;
            }
        }
        if (h > 23 || mi > 59 || se > 60) return -1;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (digits(&p, 2, &oh)) return -1;
            if (*p == ':') p++;
            if (digits(&p, 2, &om) || oh > 23 || om > 59) return -1;
            off = sign * (oh * 3600 + om * 60);
        } else {
            return -1;
        }
    }
    if (*p) return -1;
    *out = hr_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se -
           off;
    return 0;
}

void hr_time_format(int64_t t, char *buf, size_t n) {
    int64_t days = hr_time_days(t);
    int64_t secs = t - days * 86400, y;
    unsigned m, d;
    hr_civil_from_days(days, &y, &m, &d);
    snprintf(buf, n, "%04lld-%02u-%02uT%02d:%02d:%02dZ", (long long)y, m, d, (int)(secs / 3600),
             (int)(secs / 60 % 60), (int)(secs % 60));
}

int64_t hr_time_days(int64_t t) { return t >= 0 ? t / 86400 : -((-t + 86399) / 86400); }

int64_t hr_time_add_months(int64_t t, int n) {
    int64_t days = hr_time_days(t), secs = t - days * 86400, y;
    unsigned m, d;
    hr_civil_from_days(days, &y, &m, &d);
    int64_t mm = (int64_t)m - 1 + n;
    y += mm >= 0 ? mm / 12 : -((-mm + 11) / 12);
    mm = ((mm % 12) + 12) % 12;
    m = (unsigned)mm + 1;
    int dim = days_in_month(y, m);
    if ((int)d > dim) d = (unsigned)dim;
    return hr_days_from_civil(y, m, d) * 86400 + secs;
}

int64_t hr_time_day_start(int64_t t) { return hr_time_days(t) * 86400; }

int64_t hr_time_week_start(int64_t t) {
    int64_t days = hr_time_days(t);
    int64_t dow = ((days % 7) + 7 + 3) % 7; /* 1970-01-01 was a Thursday; Monday = 0 */
    return (days - dow) * 86400;
}

/* The month of the last day asked about, per thread: decisions on metered
 * features ask for it on every call, and it changes once a day. */
static _Thread_local struct { int64_t day, start, next; } month_cache = {INT64_MIN, 0, 0};

int64_t hr_time_month_start(int64_t t) {
    int64_t day = hr_time_days(t);
    if (day != month_cache.day) {
        int64_t y;
        unsigned m, d;
        hr_civil_from_days(day, &y, &m, &d);
        month_cache.start = hr_days_from_civil(y, m, 1) * 86400;
        month_cache.next = hr_time_add_months(month_cache.start, 1);
        month_cache.day = day;
    }
    return month_cache.start;
}

int64_t hr_time_next_month(int64_t month_start) {
    if (month_cache.day != INT64_MIN && month_start == month_cache.start) return month_cache.next;
    return hr_time_add_months(month_start, 1);
}

int64_t hr_time_year_start(int64_t t) {
    int64_t y;
    unsigned m, d;
    hr_civil_from_days(hr_time_days(t), &y, &m, &d);
    return hr_days_from_civil(y, 1, 1) * 86400;
}

int64_t hr_time_mono_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

void hr_time_pace(int64_t *since, int64_t quantum_ns) {
    if (hr_time_mono_ns() - *since < quantum_ns) return;
    nanosleep(&(struct timespec){0, 20000}, NULL);
    *since = hr_time_mono_ns();
}
