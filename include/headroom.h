/* headroom.h: the embeddable decision engine.
 *
 * Load a catalog (plans, features, add-ons, trials), hold accounts in memory
 * and ask "may account A use N more of feature F?" in-process, with the
 * cheapest upgrade when the answer is no. headroomd is this library plus HTTP
 * and a store; a C or C++ app can link libheadroom and decide locally.
 *
 * Conventions: functions return 0 or a negative HR_E* code (hr_strerror);
 * calls that parse or validate also fill an hr_err. Handles are opaque;
 * every hr_x_new has an hr_x_free that accepts NULL. Thread safety: an
 * hr_engine may be used from many threads at once. */
#ifndef HEADROOM_H
#define HEADROOM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HR_VERSION "0.1.0"

enum {
#define HR_ERR(name, value, status, code, msg) HR_E##name = value,
#include "../src/core/errors.def"
#undef HR_ERR
};

typedef struct hr_err {
    int code;          /* HR_E* */
    int line, column;  /* 1-based position in file, 0 if none */
    char file[256];
    char message[512];
} hr_err;

const char *hr_strerror(int code);

typedef struct hr_catalog hr_catalog;
typedef struct hr_engine hr_engine;

/* Loads and validates a catalog from a YAML (or JSON) file. On failure
 * returns HR_ECONFIG and err names file:line:column of the first error. */
int hr_catalog_load_file(const char *path, hr_catalog **out, hr_err *err);
void hr_catalog_release(hr_catalog *c);

/* A new engine using catalog c (the engine takes a reference; the caller
 * keeps its own). Accounts are added with hr_engine_put_account_json. */
hr_engine *hr_engine_new(hr_catalog *c);
void hr_engine_free(hr_engine *e);
/* Creates or replaces an account from a JSON document such as
 * {"name":"Acme","plan":"free","addons":{"extra_boards":1}}. */
int hr_engine_put_account_json(hr_engine *e, const char *id, const char *json, hr_err *err);
/* Sets (replace=1) or adds to (replace=0) an account's usage of a feature. */
int hr_engine_usage(hr_engine *e, const char *account, const char *feature, int64_t value,
                    int replace, hr_err *err);

typedef enum {
    HR_REASON_OK,
    HR_REASON_NOT_IN_PLAN,
    HR_REASON_LIMIT_REACHED,
    HR_REASON_TRIAL_ACTIVE,
    HR_REASON_TRIAL_EXPIRED,
    HR_REASON_OVERRIDE,
    HR_REASON_OVERAGE,
    HR_REASON_UNKNOWN_ACCOUNT,
    HR_REASON_UNKNOWN_FEATURE,
} hr_reason;

const char *hr_reason_str(hr_reason r);

#define HR_UNLIMITED INT64_MAX

/* The fast answer, without upgrade suggestions. limit is HR_UNLIMITED for
 * unlimited; for boolean features limit is 1 (on) or 0 (off). */
typedef struct hr_verdict {
    int allowed;
    hr_reason reason;
    int64_t usage, limit, remaining;
    int64_t resets_at;        /* unix seconds, 0 if the feature does not reset */
    int64_t overage_units;    /* with reason overage */
    int64_t overage_cost;     /* minor units of the catalog currency */
} hr_verdict;

/* Decides from memory; now is unix seconds (0 = current time). */
int hr_engine_check(hr_engine *e, const char *account, const char *feature, int64_t quantity,
                    int64_t now, hr_verdict *out);

/* The full decision as the JSON the HTTP API returns (with upgrade, trial and
 * alternatives). Caller frees *json with free(). */
int hr_engine_check_json(hr_engine *e, const char *account, const char *feature,
                         int64_t quantity, int64_t now, char **json);

#ifdef __cplusplus
}
#endif
#endif
