/* timeutil.h: unix-second time helpers in UTC (RFC 3339 in and out,
 * calendar periods). All times in headroom are int64 unix seconds, 0 = unset. */
#ifndef HR_TIMEUTIL_H
#define HR_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

int64_t hr_time_now(void);
/* Unix milliseconds, wall clock. */
int64_t hr_time_now_ms(void);
/* CLOCK_MONOTONIC in ns. */
int64_t hr_time_mono_ns(void);
/* Background threads share the request threads' cores. Left alone, the
 * scheduler runs one a whole tick (4 ms at HZ=250) at a time while every
 * request waits, and sched_yield does not hand the core over (a thread
 * that had its fair share is not picked); so once quantum_ns of work have
 * passed since *since, sleep a moment and restart *since. */
void hr_time_pace(int64_t *since, int64_t quantum_ns);
/* Parses "2026-12-01", "2026-12-01T00:00:00Z", "...T00:00:00.123+02:00".
 * Returns 0 and sets *out, or -1 if s is not such a timestamp. */
int hr_time_parse(const char *s, int64_t *out);
/* "2026-12-01T00:00:00Z" into buf (at least 21 bytes). */
void hr_time_format(int64_t t, char *buf, size_t n);
/* Days since 1970-01-01 for a civil date, and back. */
int64_t hr_days_from_civil(int64_t y, unsigned m, unsigned d);
void hr_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);
/* The UTC day of t, as days since 1970-01-01 (rounded down, also before 1970). */
int64_t hr_time_days(int64_t t);
/* t plus n calendar months, the day clamped to the month's end (Jan 31 + 1 = Feb 28/29). */
int64_t hr_time_add_months(int64_t t, int n);
/* Start of the UTC day / ISO week (Monday) / month / year containing t. */
int64_t hr_time_day_start(int64_t t);
int64_t hr_time_week_start(int64_t t);
int64_t hr_time_month_start(int64_t t);
int64_t hr_time_year_start(int64_t t);
/* The start of the month after the one starting at month_start. */
int64_t hr_time_next_month(int64_t month_start);

#endif
