/* meter.h: how events become meter values: which events a meter counts (name
 * and `where`), what each adds (count/sum/max/unique/latest), and the period
 * an event falls in (day, week, month, billing cycle, lifetime).
 *
 * Pure functions plus a small value state; the ingestion path keeps one
 * state per account, meter and period. */
#ifndef HR_METER_H
#define HR_METER_H

#include <stdint.h>

#include "catalog/catalog.h"
#include "segment.h"

/* 1 if meter m counts message msg (a track event of its name, or for "*"
 * any track event except headroom's own headroom.* ones, passing every
 * `where` clause). */
int hr_meter_matches(const hr_meter *m, hr_msg *msg);

/* What msg adds to m: *num for count (1), sum, max and latest (the numeric
 * property); *uniq for unique (a hash of the property's value). Returns 0,
 * or -1 when the property is missing or not usable (the event is not
 * counted). msg is not const: a scanned message may build its tree here
 * (hr_msg_value). */
int hr_meter_input(const hr_meter *m, hr_msg *msg, double *num, uint64_t *uniq);

/* Start (unix seconds) of the period containing t. BILLING_CYCLE is anchored
 * on the account's renewal date (anchor, unix seconds; 0: calendar months)
 * and repeats every cycle_months months (1 or 12). LIFETIME starts at 0. */
int64_t hr_meter_period_start(hr_period p, int64_t t, int64_t anchor, int cycle_months);
/* Start of the period after the one starting at start; INT64_MAX for LIFETIME. */
int64_t hr_meter_period_next(hr_period p, int64_t start, int64_t anchor, int cycle_months);

/* One meter's value in one period. */
typedef struct hr_meter_value {
    int64_t period_start;
    double value;        /* count, sum, max, latest; for unique: the count */
    int64_t latest_ms;   /* latest: the time of the event holding value */
    uint32_t nuniq, capuniq;
    uint64_t *uniq;      /* unique: open-addressing set of value hashes (0 = empty) */
} hr_meter_value;

void hr_meter_value_init(hr_meter_value *v, int64_t period_start);
void hr_meter_value_dispose(hr_meter_value *v);
/* Folds one input in. Returns 1 if the value changed, 0 if not, -1 on OOM. */
int hr_meter_fold(hr_meter_value *v, hr_aggregate agg, double num, uint64_t uniq, int64_t ts_ms);

#endif
