/* log.h: leveled logging to stderr for the binaries. Library code does not
 * log; only headroomd and the CLI call these. */
#ifndef HR_LOG_H
#define HR_LOG_H

enum { HR_LOG_DEBUG, HR_LOG_INFO, HR_LOG_WARN, HR_LOG_ERROR };

void hr_log_set_level(int level);
/* Parses "debug", "info", "warn", "error"; -1 if unknown. */
int hr_log_level_parse(const char *s);
void hr_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
