/* entitle_int.h: the engine's in-memory records, shared by engine.c (state,
 * persistence) and decide.c (the decision). Not for use outside entitle/. */
#ifndef HR_ENTITLE_INT_H
#define HR_ENTITLE_INT_H

#include <pthread.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "map.h"
#include "store/store.h"

/* Names (plans, features, add-ons) are interned pointers (intern.h). */
typedef struct hr_usage_ent { const char *feature; int64_t value, period_start; } hr_usage_ent;
typedef struct hr_ovr_ent { const char *feature; int64_t value, expires_at, created_at; } hr_ovr_ent;
typedef struct hr_ftrial_ent { const char *feature; int64_t started_at, ends_at; } hr_ftrial_ent;
typedef struct hr_addon_ent { const char *addon; int32_t qty; } hr_addon_ent;

typedef struct hr_user {
    char *id, *role, *seat_type, *traits_json;
    int64_t created_at, updated_at;
} hr_user;

/* Kept small: 1M accounts must fit in 1 GiB with their usage. */
typedef struct hr_account {
    char *name, *owner, *traits_json;  /* traits kept as JSON text */
    const char *plan, *trial_plan;     /* interned */
    int32_t plan_version;              /* 0 = the plan's current version */
    uint8_t interval;                  /* hr_interval: MONTH or YEAR */
    uint8_t plan_trial_used;
    uint16_t nusage, naddons, novr, nftrial;
    uint32_t nusers;
    int64_t created_at, updated_at, renews_at;
    int64_t trial_started_at, trial_ends_at;
    hr_usage_ent *usage;
    hr_addon_ent *addons;
    hr_ovr_ent *ovr;
    hr_ftrial_ent *ftrial;
    hr_user *users;
    char id[];                         /* the map key lives here */
} hr_account;

struct hr_engine {
    pthread_rwlock_t lock;  /* readers vs. applying a mutation */
    pthread_mutex_t wmu;    /* one writer at a time, across store + apply */
    hr_catalog *cat;        /* swapped under lock (exclusive) */
    hr_map *accounts;       /* id -> hr_account* */
    hr_store *store;        /* borrowed, may be NULL */
    /* in-memory idempotency keys when there is no store */
    hr_map *idem;
};

void hr_account_free(hr_account *a);
int64_t hr_period_start(hr_period p, int64_t now);
int64_t hr_period_next(hr_period p, int64_t start);
/* Usage of feature f now (0 when its metered period has rolled over). */
int64_t hr_account_usage(const hr_account *a, const hr_feature *f, const char *fname, int64_t now);
/* One feature's state (usage against allocation) as JSON, with usage given
 * explicitly so a mutation can describe the state it is about to apply. */
void hr_feature_state_json(const hr_catalog *c, const hr_account *a, int fi, int64_t usage,
                           int64_t now, hr_buf *out);
/* Writes the account as JSON (caller holds the lock). */
void hr_account_json(const hr_catalog *c, const hr_account *a, hr_buf *out);

#endif
