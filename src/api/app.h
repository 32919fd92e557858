/* app.h: what the API handlers share: the engine, the store, the keys and
 * the metrics. One hr_app per headroomd process. */
#ifndef HR_APP_H
#define HR_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "entitle/engine.h"
#include "http/auth.h"
#include "http/http.h"
#include "store/store.h"

enum {
#define ROUTE(m, p, h, a) HR_ROUTE_##h,
#include "routes.def"
#undef ROUTE
    HR_ROUTE_COUNT
};

enum { HR_ACCESS_PUBLIC, HR_ACCESS_SECRET, HR_ACCESS_BROWSER, HR_ACCESS_OFREP, HR_ACCESS_WRITE };

typedef struct hr_route {
    const char *method, *pattern, *name;
    void (*handler)(hr_req *r);
    int access;
} hr_route;

extern const hr_route hr_routes[HR_ROUTE_COUNT];

#define ROUTE(m, p, h, a) void hr_api_##h(hr_req *r);
#include "routes.def"
#undef ROUTE

/* Latency histogram upper bounds in microseconds. */
#define HR_LAT_BUCKETS 12
/* Status codes counted per route; anything else counts as "other". */
#define HR_STATUS_SLOTS 16

typedef struct hr_metrics {
    _Atomic uint64_t req[HR_ROUTE_COUNT + 1][HR_STATUS_SLOTS];
    _Atomic uint64_t lat[HR_LAT_BUCKETS + 1];
    _Atomic uint64_t lat_sum_us, lat_count;
    _Atomic uint64_t reloads, reload_failures;
} hr_metrics;

struct hr_campaigns;
struct hr_playbooks;
struct hr_webhooks;

struct hr_app {
    hr_engine *engine;
    struct hr_campaigns *campaigns;
    struct hr_playbooks *playbooks;
    struct hr_webhooks *webhooks;
    hr_store *pstore;                /* for the webhook API's reads (under pstore_mu) */
    pthread_mutex_t pstore_mu;
    const char *demo_dir;            /* --demo-app: served at /demo/ (NULL: off) */
    hr_store *store;
    const char *config_path;
    hr_auth_cfg auth;
    const char *ofrep_account_field; /* context field naming the account */
    const char *write_key;           /* Segment write key; NULL: sk_ only */
    const char *cors_origins;        /* origins whose pages may call us ("*": any); NULL: none */
    int ofrep_poll_ms;
    size_t max_body;
    int64_t started_at;
    pthread_mutex_t reload_mu;
    hr_metrics metrics;
};

/* Records one finished request. route -1 = unmatched. */
void hr_metrics_observe(hr_metrics *m, int route, int status, uint64_t micros);
int hr_metrics_status_slot(int status);

/* Replaces the catalog with text (YAML or JSON). from_api: also store it so
 * a restart keeps it. On failure the old catalog stays and err says why. */
int hr_app_reload(hr_app *app, const char *text, size_t len, const char *name, int from_api,
                  hr_err *err, hr_err_list *errs);
/* The catalog to start with is the file at config_path, unless a catalog set
 * over the API (stored in s) is newer than the file: then *cat (loaded from
 * the file) is replaced by that one and 1 is returned, else 0. */
int hr_app_prefer_api_catalog(const char *config_path, hr_store *s, hr_catalog **cat);
/* The webhook retry policy the catalog sets (its zeros: the defaults). */
struct hr_webhook_policy;
void hr_app_webhook_policy(const hr_catalog *c, struct hr_webhook_policy *p);
/* An account was written over the API (playbooks re-evaluate it). */
void hr_app_account_changed(hr_app *app, const char *account);
/* Reads config_path again (SIGHUP). */
int hr_app_reload_file(hr_app *app, hr_err *err);

#endif
