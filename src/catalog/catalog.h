/* catalog.h: headroom.yaml -> an immutable, validated catalog snapshot.
 *
 * A catalog is built once (from YAML, or from JSON for PUT /v1/catalog: the
 * same loader reads both) and never changes; a reload builds a new one and
 * swaps a pointer. Readers hold a reference (hr_catalog_retain/release), so
 * the fields below are read-only and safe to read from any thread without
 * locks. Names (feature, plan, add-on keys) are indexes into these arrays
 * within one snapshot only: never keep an index across snapshots. */
#ifndef HR_CATALOG_H
#define HR_CATALOG_H

#include <stdint.h>

#include "headroom.h"

typedef struct hr_map hr_map;

typedef enum { HR_FEAT_BOOLEAN, HR_FEAT_LIMIT, HR_FEAT_METERED } hr_feature_type;
/* Reset period of a metered feature; NONE for boolean and limit features.
 * Meters also use BILLING_CYCLE (resets on the account's renewal date) and
 * LIFETIME (never resets). */
typedef enum {
    HR_PERIOD_NONE, HR_PERIOD_DAY, HR_PERIOD_WEEK, HR_PERIOD_MONTH, HR_PERIOD_YEAR,
    HR_PERIOD_BILLING_CYCLE, HR_PERIOD_LIFETIME
} hr_period;
/* Billing interval of a price. ONE_TIME only for add-ons. */
typedef enum { HR_INTERVAL_MONTH, HR_INTERVAL_YEAR, HR_INTERVAL_ONE_TIME } hr_interval;

/* Entitlement values, one int64 per feature:
 *   HR_ENT_NONE (feature not mentioned: not in plan), 0/1 for boolean,
 *   a count >= 0 for limit/metered, HR_UNLIMITED. */
#define HR_ENT_NONE (-1)

/* Prices are int64 micro-units of the major currency unit (12 USD =
 * 12000000), exact for prices like 0.002 per unit of overage. */
#define HR_MICROS 1000000LL

#define HR_MAX_THRESHOLDS 8

typedef struct hr_feature {
    char *key;
    char *name;        /* display name; defaults to key */
    hr_feature_type type;
    char *unit;        /* "board"; may be NULL */
    hr_period period;  /* metered only; default month */
    int has_overage;   /* soft limit: allow beyond the limit at a unit price */
    int64_t overage_price; /* micros per unit */
    char *meter;       /* meter name for the metering issue; may be NULL */
    /* fractions of the allocation whose crossing is a headroom.usage_threshold
     * event, ascending: the feature's own `thresholds`, else the catalog's
     * `usage_thresholds`, else 0.8 and 1.0 */
    double thresholds[HR_MAX_THRESHOLDS];
    int nthresholds;
    int own_thresholds; /* written in the feature itself (emitted back) */
} hr_feature;

typedef struct hr_plan_version {
    int version;             /* >= 1 */
    int64_t price;           /* micros per interval; 0 for free */
    hr_interval interval;
    int64_t *ent;            /* nfeatures entries, see HR_ENT_NONE */
} hr_plan_version;

typedef struct hr_plan {
    char *key;
    char *name;
    int tier;                /* file order, 0 = first */
    int contact_sales;       /* no self-serve price: offered as kind contact_sales */
    int trial_days;          /* 0 = no plan trial */
    int nversions;
    hr_plan_version *versions; /* ascending by version; the last is current */
} hr_plan;

typedef struct hr_addon {
    char *key;
    char *name;
    int64_t price;           /* micros per interval (or once for ONE_TIME) */
    hr_interval interval;
    int64_t *grants;         /* nfeatures entries: units granted per quantity
                                (0 = none; for boolean features 1 = unlocks) */
    unsigned char *plans;    /* nplans flags: 1 = that plan may buy it;
                                all 1 when the add-on lists no plans */
    int max_quantity;        /* 0 = no maximum */
} hr_addon;

/* How a meter folds events into one number per account and period. */
typedef enum { HR_AGG_COUNT, HR_AGG_SUM, HR_AGG_MAX, HR_AGG_UNIQUE, HR_AGG_LATEST } hr_aggregate;

/* One clause of a meter's `where`: PATH OP LITERAL, e.g. properties.rows >= 1000.
 * path is dotted from the event's root (properties.x, context.y, userId...). */
typedef enum { HR_OP_EQ, HR_OP_NE, HR_OP_LT, HR_OP_LE, HR_OP_GT, HR_OP_GE } hr_cmp_op;
typedef struct hr_where {
    char *path;
    hr_cmp_op op;
    int is_number;  /* literal kind: number, else string (or true/false as "true"/"false") */
    double number;
    char *string;
} hr_where;

typedef struct hr_meter {
    char *key;
    char *event;            /* event name, or "*" for every track event */
    hr_aggregate aggregate;
    char *property;         /* sum/max/unique/latest: a dotted path (properties.rows,
                               userId); NULL for count */
    hr_period period;       /* DAY, WEEK, MONTH (default), BILLING_CYCLE, LIFETIME */
    int nwhere;             /* clauses joined by && */
    hr_where *where;
} hr_meter;

/* An override from the config file (the API adds its own per account). */
typedef struct hr_cat_override {
    char *account;
    int feature;
    int64_t value;           /* entitlement value as above */
    int64_t expires_at;      /* unix seconds, 0 = never */
} hr_cat_override;

/* Campaigns: in-app upgrade prompts (campaigns/, docs/CAMPAIGNS.md). */
typedef enum {
    HR_TRIG_ON_LOAD, HR_TRIG_PAGE, HR_TRIG_FEATURE_DENIED, HR_TRIG_LIMIT_HIT, HR_TRIG_EVENT,
    HR_TRIG_ELEMENT
} hr_trigger_kind;
typedef enum {
    HR_PROMPT_MODAL, HR_PROMPT_TOOLTIP, HR_PROMPT_BANNER, HR_PROMPT_LOCK_BADGE, HR_PROMPT_CHECKLIST
} hr_prompt_type;
typedef enum { HR_CTA_UPGRADE, HR_CTA_START_TRIAL, HR_CTA_BUY_ADDON, HR_CTA_BOOK_CALL, HR_CTA_URL } hr_cta_action;

/* A text with translations; locales[0] is the default ("" when the text was
 * given without locales). */
typedef struct hr_text {
    int n;
    char **locales, **texts;
} hr_text;

typedef struct hr_content {
    hr_prompt_type type;
    char *anchor;                /* element (data-headroom-feature or id); may be NULL */
    hr_text title, body, cta_label;
    hr_cta_action action;
    char *url;                   /* may be NULL */
    int feature, plan, addon;    /* CTA targets, -1 when not given */
} hr_content;

typedef struct hr_variant {
    char *key;
    double weight;
    int holdout;                 /* sees nothing; the control of the experiment */
    hr_content content;          /* the campaign's content with this variant's changes */
} hr_variant;

typedef struct hr_rule hr_rule;

typedef struct hr_campaign {
    char *key;
    hr_trigger_kind trigger;
    char *trigger_arg;           /* feature key, event name or page pattern; NULL otherwise */
    int trigger_feature;         /* FEATURE_DENIED, LIMIT_HIT, ELEMENT: its index */
    hr_rule *audience, *gate;    /* NULL: everyone */
    int nvariants;               /* >= 1 (one "default" when none are declared) */
    hr_variant *variants;
    int unit_user;               /* experiment unit: the user (else the account) */
    int cap_n;                   /* at most cap_n shows per user per cap_per (0: no cap) */
    int64_t cap_per, cooldown;   /* seconds; cooldown after a dismiss */
    char *goal_event;            /* may be NULL */
    int64_t goal_within;         /* seconds */
    int priority;                /* higher first */
    int64_t starts_at, ends_at;  /* unix s, 0 = open */
    double mde, baseline;        /* experiment planning (relative MDE; 0 = observed baseline) */
} hr_campaign;

/* Playbooks: Signal -> Messaging -> Action for the sales team (playbooks/). */
typedef enum { HR_ACT_TASK, HR_ACT_WEBHOOK } hr_action_kind;
typedef enum {
    HR_PRESET_NONE, HR_PRESET_CRM_OPPORTUNITY, HR_PRESET_SEQUENCE, HR_PRESET_SLACK
} hr_preset;

typedef struct hr_pb_action {
    hr_action_kind kind;
    char *assign;            /* task: "owner" (default), "team:NAME" (round robin) or a rep */
    char *url;               /* webhook */
    char *secrets;           /* webhook: whsec_ secrets, space-separated; may be NULL */
    hr_preset preset;
    char *body;              /* webhook: a JSON body template (text); NULL: the preset's */
} hr_pb_action;

typedef struct hr_playbook {
    char *key;
    const char *ikey;        /* key, interned (hr_intern): compared by address */
    char *name;              /* defaults to key */
    hr_rule *signal;         /* a condition; fires when it becomes true */
    hr_rule *value;          /* shown as signal.value; may be NULL */
    char *message;           /* a template ({{account.name}} ...) */
    int nactions;
    hr_pb_action *actions;
    int64_t cooldown;        /* seconds between firings per account (default 30 days) */
    int enabled;
} hr_playbook;

/* One term of the account score: a built-in fact or a rule, weighted. */
typedef enum {
    HR_SCORE_RULE, HR_SCORE_USAGE_GROWTH_30D, HR_SCORE_ACTIVE_USERS_7D, HR_SCORE_LIMIT_PRESSURE,
    HR_SCORE_DECISION_MAKER_ACTIVE
} hr_score_kind;
typedef struct hr_score_term {
    char *key;
    hr_score_kind kind;
    hr_rule *rule;           /* RULE: true = 1, a number clamped to [0, 1] */
    double weight;
} hr_score_term;

typedef struct hr_team {
    char *key;
    int nreps;
    char **reps;
} hr_team;

/* The most shows a cap or the throttle may allow (the server keeps that
 * many recent show times per user). */
#define HR_MAX_CAP 16

struct hr_catalog {
    int refs;                /* atomic; see retain/release */
    char *currency;          /* ISO 4217, upper case */
    int currency_decimals;   /* 2 for USD/EUR, 0 for JPY ... */
    int nfeatures;
    hr_feature *features;
    int nplans;
    hr_plan *plans;          /* tier order */
    int naddons;
    hr_addon *addons;
    int *feature_trial_days; /* nfeatures entries, 0 = no feature trial */
    int noverrides;
    hr_cat_override *overrides;
    hr_map *feature_ix, *plan_ix, *addon_ix; /* key -> index + 1 (as pointer) */
    uint64_t hash;           /* of the canonical content: catalog version/ETag */
    char *source_path;       /* file it came from, or NULL */
    int nmeters;
    hr_meter *meters;        /* file order */
    hr_map *meter_ix;        /* key -> index + 1 */
    int *feature_meter;      /* nfeatures entries: the meter feeding it, -1 if none */
    int ncampaigns;
    hr_campaign *campaigns;  /* by priority (higher first), then file order */
    hr_map *campaign_ix;     /* key -> index + 1 */
    int throttle_n;          /* at most throttle_n prompts per user per throttle_per */
    int64_t throttle_per;    /* seconds (0: no throttle) */
    int max_prompts;         /* per GET /v1/prompts (default 1) */
    char *campaigns_json, *throttle_json; /* as written, for hr_catalog_to_json */
    int nplaybooks;
    hr_playbook *playbooks;  /* file order */
    hr_map *playbook_ix;     /* key -> index + 1 */
    int signal_slots;        /* memo bytes for hr_rule_test_memo over the signals */
    int nscore;
    hr_score_term *score;
    int nteams;
    hr_team *teams;
    /* webhooks: retry policy (0 = the default of webhooks.h) */
    int64_t wh_initial_ms, wh_max_interval_ms, wh_timeout_ms;
    double wh_factor;
    int wh_max_attempts;
    char *playbooks_json, *webhooks_json, *scoring_json, *teams_json;
    /* (event, property) pairs some rule sums ("EVENT\x1fPROPERTY"):
     * ingestion keeps per-day sums of exactly these */
    int nsum_keys;
    char **sum_keys;
    /* usage_thresholds as written (0: not written) */
    double thresholds[HR_MAX_THRESHOLDS];
    int nthresholds;
};

/* The key of a per-day sum of an event's property (under properties.) in
 * the history and in sum_keys: "EVENT\x1fPROPERTY". 0, or -1 when it does
 * not fit in n. */
int hr_sum_key(const char *event, const char *property, char *buf, size_t n);
/* That key for a sum meter whose amounts the history can answer for: a
 * property under properties. and no where clause; else -1. */
int hr_meter_sum_key(const hr_meter *m, char *buf, size_t n);

/* Parses YAML or JSON text. name is used in error positions ("headroom.yaml").
 * On failure returns HR_ECONFIG with the first error in err; when errs is not
 * NULL every error found is also appended there (caller frees with
 * hr_catalog_errors_free). */
typedef struct hr_err_list {
    int count;
    hr_err *items;
} hr_err_list;

int hr_catalog_parse(const char *text, size_t len, const char *name, hr_catalog **out,
                     hr_err *err, hr_err_list *errs);
int hr_catalog_load_file_all(const char *path, hr_catalog **out, hr_err *err, hr_err_list *errs);
void hr_catalog_errors_free(hr_err_list *errs);

hr_catalog *hr_catalog_retain(hr_catalog *c);
/* hr_catalog_release (headroom.h) drops a reference and frees at zero. */

/* Index lookups; -1 if absent. */
int hr_catalog_feature(const hr_catalog *c, const char *key);
int hr_catalog_plan(const hr_catalog *c, const char *key);
int hr_catalog_addon(const hr_catalog *c, const char *key);
int hr_catalog_meter(const hr_catalog *c, const char *key);
int hr_catalog_campaign(const hr_catalog *c, const char *key);
int hr_catalog_playbook(const hr_catalog *c, const char *key);
/* The text for locale ("de-CH" falls back to "de", then the default);
 * never NULL for a text that has one. */
const char *hr_text_get(const hr_text *t, const char *locale);
/* The plan's version v, or its current version when v <= 0 or v is unknown. */
const hr_plan_version *hr_catalog_plan_version(const hr_catalog *c, int plan, int v);
/* Price per month in micros (year / 12; ONE_TIME as is). */
int64_t hr_catalog_monthly(int64_t price, hr_interval iv);
/* Micros -> minor units of the catalog currency, rounded half up. */
int64_t hr_catalog_minor(const hr_catalog *c, int64_t micros);
const char *hr_interval_str(hr_interval iv);
const char *hr_feature_type_str(hr_feature_type t);

/* Serialises the catalog as JSON (GET /v1/catalog); caller frees. */
char *hr_catalog_to_json(const hr_catalog *c);

#endif
