/* history.c: the event history that rules read ("Board Created in the last
 * 30 days", "active on 2+ of the last 7 days"): per account and per member,
 * per event, a count per UTC day for HR_HISTORY_DAYS days, plus first and
 * last seen. Questions are answered from memory in O(days).
 *
 * Days are kept sorted in a small array per event: events arrive in time
 * order almost always, so an update is an append or a change of the last
 * element; a late event inserts in place. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "engine.h"
#include "entitle_int.h"
#include "err.h"
#include "timeutil.h"

void hr_hist_free(hr_hist *h) {
    if (!h) return;
    for (uint32_t i = 0; i < h->n; i++) free(h->ents[i].days);
    free(h->ents);
    for (uint32_t i = 0; i < h->nsums; i++) free(h->sums[i].days);
    free(h->sums);
    free(h);
}

hr_hist_ent *hr_hist_find_interned(const hr_hist *h, const char *event) {
    for (uint32_t i = 0; h && i < h->n; i++)
        if (h->ents[i].event == event) return &h->ents[i];
    return NULL;
}

hr_hist_ent *hr_hist_find(const hr_hist *h, const char *event) {
    for (uint32_t i = 0; h && i < h->n; i++)
        if (h->ents[i].event == event || !strcmp(h->ents[i].event, event)) return &h->ents[i];
    return NULL;
}

hr_hist_ent *hr_hist_get(hr_hist **hp, const char *event) {
    if (!*hp && !(*hp = calloc(1, sizeof **hp))) return NULL;
    hr_hist *h = *hp;
    hr_hist_ent *he = hr_hist_find(h, event);
    if (he) return he;
    hr_hist_ent *p = realloc(h->ents, (h->n + 1) * sizeof *p);
    if (!p) return NULL;
    h->ents = p;
    he = &p[h->n++];
    memset(he, 0, sizeof *he);
    he->event = event;
    return he;
}

/* Index of the first day >= day. */
static uint32_t lower(const hr_hist_ent *he, int32_t day) {
    uint32_t lo = 0, hi = he->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (he->days[mid].day < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

uint32_t hr_hist_day_count(const hr_hist_ent *he, int32_t day) {
    if (!he || !he->n) return 0;
    if (he->days[he->n - 1].day == day) return he->days[he->n - 1].count;
    uint32_t i = lower(he, day);
    return i < he->n && he->days[i].day == day ? he->days[i].count : 0;
}

int hr_hist_set_day(hr_hist_ent *he, int32_t day, uint32_t count, int32_t today) {
    int32_t horizon = today - HR_HISTORY_DAYS + 1;
    if (day < horizon) return 0; /* beyond what rules may ask about */
    uint32_t i = he->n && he->days[he->n - 1].day < day ? he->n : lower(he, day);
    if (i < he->n && he->days[i].day == day) {
        he->days[i].count = count;
        return 0;
    }
    /* drop days past the horizon first: they make room */
    uint32_t old = lower(he, horizon);
    if (old) {
        memmove(he->days, he->days + old, (he->n - old) * sizeof *he->days);
        he->n -= old;
        i -= old;
    }
    if (he->n == he->cap) {
        uint32_t cap = he->cap ? he->cap * 2 : 4;
        hr_day_count *p = realloc(he->days, cap * sizeof *p);
        if (!p) return -1;
        he->days = p;
        he->cap = cap;
    }
    memmove(he->days + i + 1, he->days + i, (he->n - i) * sizeof *he->days);
    he->days[i] = (hr_day_count){day, count};
    he->n++;
    return 0;
}


/* ---- as stored ---- */

static char *put_u64(char *p, uint64_t v) {
    char tmp[20];
    int n = 0;
    do tmp[n++] = (char)('0' + v % 10);
    while (v /= 10);
    while (n) *p++ = tmp[--n];
    return p;
}

void hr_hist_days_text(const hr_hist_ent *he, const hr_sum_ent *se, hr_buf *out) {
    uint32_t n = he ? he->n : se ? se->n : 0;
    int64_t prev = 0;
    for (uint32_t i = 0; i < n; i++) {
        char buf[64], *p = buf;
        int64_t day = he ? he->days[i].day : se->days[i].day, gap = day - prev;
        if (i) *p++ = ',';
        if (gap < 0) *p++ = '-', gap = -gap; /* only a first day before 1970 */
        p = put_u64(p, (uint64_t)gap);
        *p++ = ':';
        if (he)
            p = put_u64(p, he->days[i].count);
        else
            p += snprintf(p, sizeof buf - (size_t)(p - buf), "%.17g", se->days[i].sum);
        hr_buf_append(out, buf, (size_t)(p - buf));
        prev = day;
    }
}

int hr_hist_days_parse(const char *s, int32_t today, hr_hist_ent *he, hr_sum_ent *se) {
    int64_t day = 0;
    for (int first = 1; s && *s; first = 0) {
        char *end;
        long long gap = strtoll(s, &end, 10);
        if (end == s || *end != ':' || (!first && gap < 0) || gap > INT32_MAX || gap < INT32_MIN)
            return HR_EINVAL;
        day += gap;
        if (day > INT32_MAX || day < INT32_MIN) return HR_EINVAL;
        s = end + 1;
        if (he) {
            if (*s < '0' || *s > '9') return HR_EINVAL;
            unsigned long long c = strtoull(s, &end, 10);
            if (c > UINT32_MAX) return HR_EINVAL;
            if (hr_hist_set_day(he, (int32_t)day, (uint32_t)c, today)) return HR_ENOMEM;
        } else {
            double v = strtod(s, &end);
            if (end == s || !isfinite(v)) return HR_EINVAL;
            if (hr_hist_sum_set(se, (int32_t)day, v, today)) return HR_ENOMEM;
        }
        s = end;
        if (*s == ',') s++;
        else if (*s) return HR_EINVAL;
    }
    return 0;
}

/* ---- sums of a property ---- */

hr_sum_ent *hr_hist_sum(hr_hist **hp, const char *key, int create) {
    hr_hist *h = *hp;
    for (uint32_t i = 0; h && i < h->nsums; i++)
        if (h->sums[i].key == key || !strcmp(h->sums[i].key, key)) return &h->sums[i];
    if (!create) return NULL;
    if (!h && !(h = *hp = calloc(1, sizeof *h))) return NULL;
    hr_sum_ent *p = realloc(h->sums, (h->nsums + 1) * sizeof *p);
    if (!p) return NULL;
    h->sums = p;
    memset(&p[h->nsums], 0, sizeof *p);
    p[h->nsums].key = key;
    return &p[h->nsums++];
}

static uint32_t sum_lower(const hr_sum_ent *se, int32_t day) {
    uint32_t lo = 0, hi = se->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (se->days[mid].day < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

double hr_hist_sum_day(const hr_sum_ent *se, int32_t day) {
    if (!se || !se->n) return 0;
    uint32_t i = sum_lower(se, day);
    return i < se->n && se->days[i].day == day ? se->days[i].sum : 0;
}

int hr_hist_sum_set(hr_sum_ent *se, int32_t day, double sum, int32_t today) {
    int32_t horizon = today - HR_HISTORY_DAYS + 1;
    if (day < horizon) return 0;
    uint32_t i = sum_lower(se, day);
    if (i < se->n && se->days[i].day == day) {
        se->days[i].sum = sum;
        return 0;
    }
    uint32_t old = sum_lower(se, horizon);
    if (old) {
        memmove(se->days, se->days + old, (se->n - old) * sizeof *se->days);
        se->n -= old;
        i -= old;
    }
    if (se->n == se->cap) {
        uint32_t cap = se->cap ? se->cap * 2 : 4;
        hr_day_sum *p = realloc(se->days, cap * sizeof *p);
        if (!p) return -1;
        se->days = p;
        se->cap = cap;
    }
    memmove(se->days + i + 1, se->days + i, (se->n - i) * sizeof *se->days);
    se->days[i] = (hr_day_sum){day, sum};
    se->n++;
    return 0;
}

double hr_hist_sum_window(const hr_sum_ent *se, int32_t today, int days) {
    double total = 0;
    int32_t from = today - (days > 0 ? days : 1) + 1;
    for (uint32_t i = se ? sum_lower(se, from) : 0; se && i < se->n && se->days[i].day <= today; i++)
        total += se->days[i].sum;
    return total;
}

/* The history an (account, user) question reads; NULL if none. Caller holds
 * the read lock. */
static const hr_hist *hist_of(hr_engine *e, const char *account, const char *user, int *found) {
    const hr_account *a = hr_acctix_get(e->accounts, account);
    *found = a != NULL;
    if (!a || !user) return a ? a->hist : NULL;
    for (uint32_t i = 0; i < a->nusers; i++)
        if (!strcmp(a->users[i].id, user)) return a->users[i].hist;
    *found = 0;
    return NULL;
}

void hr_hist_window(const hr_hist_ent *he, int32_t today, int days, int64_t *total, int *active) {
    int32_t from = today - (days > 0 ? days : 1) + 1;
    *total = 0;
    *active = 0;
    for (uint32_t i = he ? lower(he, from) : 0; he && i < he->n && he->days[i].day <= today; i++) {
        *total += he->days[i].count;
        *active += he->days[i].count > 0;
    }
}

/* Over the last `days` days up to now: the total count and the number of
 * days with at least one. The one walk both questions share. */
static int window(hr_engine *e, const char *account, const char *user, const char *event, int days,
                  int64_t now, int64_t *total, int *active) {
    if (!now) now = hr_time_now();
    int found;
    *total = 0;
    *active = 0;
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    const hr_hist_ent *he = hr_hist_find(hist_of(e, account, user, &found), event);
    hr_hist_window(he, (int32_t)hr_time_days(now), days, total, active);
    hr_rdlock_read_end(e->lock, rs);
    return found ? 0 : HR_ENOTFOUND;
}

int hr_engine_event_count(hr_engine *e, const char *account, const char *user, const char *event,
                          int days, int64_t now, int64_t *out) {
    int active;
    return window(e, account, user, event, days, now, out, &active);
}

int hr_engine_active_days(hr_engine *e, const char *account, const char *user, const char *event,
                          int days, int64_t now, int *out) {
    int64_t total;
    return window(e, account, user, event, days, now, &total, out);
}

int hr_engine_event_seen(hr_engine *e, const char *account, const char *user, const char *event,
                         int64_t *first_ms, int64_t *last_ms) {
    int found;
    hr_rdslot *rs = hr_rdlock_read(e->lock);
    const hr_hist_ent *he = hr_hist_find(hist_of(e, account, user, &found), event);
    *first_ms = he ? he->first_ms : 0;
    *last_ms = he ? he->last_ms : 0;
    hr_rdlock_read_end(e->lock, rs);
    return found ? 0 : HR_ENOTFOUND;
}

int hr_thresholds_crossed(const hr_feature *f, int64_t before, int64_t after, int64_t limit,
                          double *out) {
    int n = 0;
    if (limit <= 0 || limit == HR_UNLIMITED || after <= before) return 0;
    for (int i = 0; i < f->nthresholds; i++) {
        double at = f->thresholds[i] * (double)limit;
        if ((double)before < at && (double)after >= at) out[n++] = f->thresholds[i];
    }
    return n;
}
