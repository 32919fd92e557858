/* intern.h: a process-wide table of interned strings. The same text always
 * gives the same pointer, so per-account records can hold names (plans,
 * features, add-ons) as one pointer and compare them by address. Interned
 * strings live until exit. Thread-safe. */
#ifndef HR_INTERN_H
#define HR_INTERN_H

/* Returns the interned copy of s, or NULL on OOM (or if s is NULL). */
const char *hr_intern(const char *s);

#endif
