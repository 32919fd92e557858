/* meter.c: meter matching, inputs, periods and folding.
 *
 * Billing cycles are counted from the renewal date by adding whole months to
 * the anchor itself (never to the previous boundary), so a cycle anchored on
 * the 31st runs Jan 31, Feb 28, Mar 31 ... and does not drift to the 28th. */
#include "meter.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "timeutil.h"

static int compare(const hr_where *w, const hr_jval *v) {
    if (v->type == HR_JV_ABSENT || v->type == HR_JV_NULL) return w->op == HR_OP_NE;
    int c;
    if (w->is_number) {
        if (v->type != HR_JV_INT && v->type != HR_JV_DOUBLE) return w->op == HR_OP_NE;
        c = v->num < w->number ? -1 : v->num > w->number ? 1 : 0;
    } else {
        const char *s = v->type == HR_JV_BOOL || v->type == HR_JV_STRING ? v->str : NULL;
        if (!s) return w->op == HR_OP_NE;
        c = strcmp(s, w->string ? w->string : "");
        c = c < 0 ? -1 : c > 0;
    }
    switch (w->op) {
    case HR_OP_EQ: return c == 0;
    case HR_OP_NE: return c != 0;
    case HR_OP_LT: return c < 0;
    case HR_OP_LE: return c <= 0;
    case HR_OP_GT: return c > 0;
    case HR_OP_GE: return c >= 0;
    }
    return 0;
}

int hr_meter_matches(const hr_meter *m, hr_msg *msg) {
    if (msg->type != HR_MSG_TRACK || !msg->event) return 0;
    if (!strcmp(m->event, "*")) {
        /* "*" is every event of the product: headroom's own (headroom.*)
         * are not user activity */
        if (!strncmp(msg->event, "headroom.", 9)) return 0;
    } else if (strcmp(m->event, msg->event)) {
        return 0;
    }
    for (int i = 0; i < m->nwhere; i++) {
        hr_jval v;
        if (hr_msg_value(msg, m->where[i].path, &v) || !compare(&m->where[i], &v)) return 0;
    }
    return 1;
}

int hr_meter_input(const hr_meter *m, hr_msg *msg, double *num, uint64_t *uniq) {
    *num = 1;
    *uniq = 0;
    if (m->aggregate == HR_AGG_COUNT) return 0;
    hr_jval v = {HR_JV_ABSENT, NULL, 0};
    if (m->property && hr_msg_value(msg, m->property, &v)) return -1;
    if (v.type == HR_JV_ABSENT || v.type == HR_JV_NULL) return -1;
    if (m->aggregate == HR_AGG_UNIQUE) {
        const char *s = v.str ? v.str : ""; /* numbers and strings alike */
        *uniq = hr_hash(s, strlen(s));
        return 0;
    }
    if (v.type != HR_JV_INT && v.type != HR_JV_DOUBLE) return -1;
    *num = v.num;
    return isfinite(*num) ? 0 : -1;
}

/* The k-th cycle boundary from the anchor. */
static int64_t cycle(int64_t anchor, int k, int months) { return hr_time_add_months(anchor, k * months); }

/* k with cycle(k) <= t < cycle(k + 1). */
static int cycle_index(int64_t t, int64_t anchor, int months) {
    int64_t ay, ty;
    unsigned am, ad, tm, td;
    hr_civil_from_days(hr_time_days(anchor), &ay, &am, &ad);
    hr_civil_from_days(hr_time_days(t), &ty, &tm, &td);
    /* the month difference in whole cycles is off by at most one: correct it */
    int64_t diff = (ty - ay) * 12 + ((int64_t)tm - (int64_t)am);
    int k = (int)((diff >= 0 ? diff : diff - months + 1) / months);
    while (cycle(anchor, k, months) > t) k--;
    while (cycle(anchor, k + 1, months) <= t) k++;
    return k;
}

int64_t hr_meter_period_start(hr_period p, int64_t t, int64_t anchor, int cycle_months) {
    switch (p) {
    case HR_PERIOD_DAY: return hr_time_day_start(t);
    case HR_PERIOD_WEEK: return hr_time_week_start(t);
    case HR_PERIOD_YEAR: return hr_time_year_start(t);
    case HR_PERIOD_LIFETIME: return 0;
    case HR_PERIOD_BILLING_CYCLE:
        if (!anchor) return hr_time_month_start(t);
        if (cycle_months < 1) cycle_months = 1;
        return cycle(anchor, cycle_index(t, anchor, cycle_months), cycle_months);
    case HR_PERIOD_MONTH:
    default: return hr_time_month_start(t);
    }
}

int64_t hr_meter_period_next(hr_period p, int64_t start, int64_t anchor, int cycle_months) {
    switch (p) {
    case HR_PERIOD_DAY: return start + 86400;
    case HR_PERIOD_WEEK: return start + 7 * 86400;
    case HR_PERIOD_YEAR: return hr_time_add_months(start, 12);
    case HR_PERIOD_LIFETIME: return INT64_MAX;
    case HR_PERIOD_BILLING_CYCLE:
        if (!anchor) return hr_time_add_months(start, 1);
        if (cycle_months < 1) cycle_months = 1;
        return cycle(anchor, cycle_index(start, anchor, cycle_months) + 1, cycle_months);
    case HR_PERIOD_MONTH:
    default: return hr_time_next_month(start);
    }
}

void hr_meter_value_init(hr_meter_value *v, int64_t period_start) {
    memset(v, 0, sizeof *v);
    v->period_start = period_start;
}

void hr_meter_value_dispose(hr_meter_value *v) {
    free(v->uniq);
    memset(v, 0, sizeof *v);
}

/* Adds h to the set; 1 if new, 0 if present, -1 on OOM. */
static int set_add(hr_meter_value *v, uint64_t h) {
    if (!h) h = 1; /* 0 marks an empty slot */
    if ((v->nuniq + 1) * 4 > v->capuniq * 3) {
        uint32_t cap = v->capuniq ? v->capuniq * 2 : 8;
        uint64_t *ns = calloc(cap, sizeof *ns);
        if (!ns) return -1;
        for (uint32_t i = 0; i < v->capuniq; i++) {
            if (!v->uniq[i]) continue;
            uint32_t j = (uint32_t)v->uniq[i] & (cap - 1);
            while (ns[j]) j = (j + 1) & (cap - 1);
            ns[j] = v->uniq[i];
        }
        free(v->uniq);
        v->uniq = ns;
        v->capuniq = cap;
    }
    uint32_t j = (uint32_t)h & (v->capuniq - 1);
    while (v->uniq[j]) {
        if (v->uniq[j] == h) return 0;
        j = (j + 1) & (v->capuniq - 1);
    }
    v->uniq[j] = h;
    v->nuniq++;
    return 1;
}

int hr_meter_fold(hr_meter_value *v, hr_aggregate agg, double num, uint64_t uniq, int64_t ts_ms) {
    switch (agg) {
    case HR_AGG_COUNT: v->value += 1; return 1;
    case HR_AGG_SUM: v->value += num; return num != 0;
    case HR_AGG_MAX:
        if (v->latest_ms && num <= v->value) return 0;
        v->value = num;
        v->latest_ms = ts_ms ? ts_ms : 1; /* marks "has a value" */
        return 1;
    case HR_AGG_LATEST:
        /* by the event's own time: a late event does not overwrite a newer one */
        if (v->latest_ms && ts_ms < v->latest_ms) return 0;
        v->value = num;
        v->latest_ms = ts_ms;
        return 1;
    case HR_AGG_UNIQUE: {
        int r = set_add(v, uniq);
        if (r > 0) v->value = v->nuniq;
        return r;
    }
    }
    return 0;
}
