/* track.c: Segment's HTTP Tracking API (track, identify, group, page,
 * screen, batch) and the reads of what it produced (usage series, recent
 * events).
 *
 * Unmodified Segment clients send the write key as the HTTP Basic user name;
 * `writeKey` in the body is accepted too. A batch keeps its good messages and
 * reports the bad ones by index; nothing valid is dropped. group calls make
 * the user a member of the account (creating it on the first plan if
 * needed) before the batch's events are counted, so events in the same
 * batch already reach it. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_int.h"
#include "err.h"
#include "events/meter.h"
#include "events/segment.h"
#include "intern.h"
#include "map.h"
#include "timeutil.h"

/* The write key from "Authorization: Basic base64(key:)" or the body. */
int hr_api_write_key_ok(hr_req *r, json_object *body) {
    if (r->key == HR_KEY_SECRET) return 1;
    const char *want = r->app->write_key;
    if (!want || !*want) return 0;
    const char *h = hr_req_header(r, "Authorization");
    if (h && !strncasecmp(h, "Basic ", 6)) {
        const char *b64 = h + 6;
        while (*b64 == ' ') b64++;
        size_t n = strlen(b64);
        if (n && n < 1024) {
            unsigned char dec[800];
            int len = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)n);
            if (len > 0) {
                /* EVP_DecodeBlock counts padding as bytes: trim them */
                while (len > 0 && n > 0 && b64[n - 1] == '=') len--, n--;
                dec[len] = 0;
                char *colon = strchr((char *)dec, ':');
                if (colon) *colon = 0;
                return hr_key_equal((char *)dec, want);
            }
        }
        return 0; /* a Basic header decides alone: a wrong one is not rescued by the body */
    }
    json_object *wk;
    if (body && json_object_object_get_ex(body, "writeKey", &wk) &&
        json_object_is_type(wk, json_type_string))
        return hr_key_equal(json_object_get_string(wk), want);
    return 0;
}

/* group and identify: membership and traits, before the events count. */
static int side_effects(hr_req *r, const hr_msg *m, hr_err *err) {
    const char *user = m->user_id;
    if (m->type == HR_MSG_GROUP)
        return hr_engine_join(r->app->engine, m->group_id, user, m->traits, NULL, 0, err);
    if (m->type == HR_MSG_IDENTIFY && user && m->account)
        return hr_engine_join(r->app->engine, m->account, user, NULL, m->traits, 0, err);
    if (m->type == HR_MSG_IDENTIFY && user && m->traits) {
        char acct[160];
        if (hr_engine_user_account(r->app->engine, user, acct, sizeof acct) == 0)
            return hr_engine_join(r->app->engine, acct, user, NULL, m->traits, 0, err);
    }
    return 0;
}

void hr_api_seg_ingest(hr_req *r, hr_msg *msgs, int n, int *status, int64_t now_ms,
                       const hr_buf *errs, int nerr) {
    hr_err e = {0};
    for (int i = 0; i < n; i++) {
        if (side_effects(r, &msgs[i], &e)) return hr_api_fail(r, e.code, &e);
        /* (the id's hash and the interned event came with the message:
         * hr_msg_finish, beside other requests, not in the group commit) */
    }
    if (n && hr_engine_ingest(r->app->engine, msgs, n, now_ms, status, &e))
        return hr_api_fail(r, e.code, &e);
    int dup = 0, orphan = 0;
    for (int i = 0; i < n; i++) {
        dup += status[i] == HR_INGEST_DUPLICATE;
        orphan += status[i] == HR_INGEST_NO_ACCOUNT;
    }
    hr_buf_printf(&r->out, "{\"success\":true,\"accepted\":%d,\"duplicates\":%d,"
                           "\"without_account\":%d,\"rejected\":%d,\"errors\":[",
                  n - dup, dup, orphan, nerr);
    hr_buf_append(&r->out, errs->data ? errs->data : "", errs->len);
    hr_buf_puts(&r->out, "]}");
    hr_reply(r, 200);
}

static void ingest(hr_req *r, int type) {
    int batch = type < 0;
    size_t limit = batch ? HR_BATCH_MAX_BYTES : HR_MSG_MAX_BYTES;
    if (r->body_len > limit)
        return hr_reply_error(r, 413, "payload_too_large", "%s exceeds %s", batch ? "a batch" : "a message",
                              batch ? "500 KB" : "32 KB");
    json_object *doc = hr_req_json(r, 0);
    if (!doc) return;
    hr_msg *msgs = NULL;
    int *status = NULL, n = 0, total = 1;
    hr_buf errs;
    hr_buf_init(&errs);
    int nerr = 0;
    /* the browser SDK: publishable key + verified identity, for that
     * user's own track/page/screen messages only */
    int browser = r->key == HR_KEY_PUBLISHABLE;
    if (browser) {
        if (hr_api_browser_ok(r, NULL, NULL, NULL, NULL, 0)) goto out;
    } else if (!hr_api_write_key_ok(r, doc)) {
        hr_reply_error(r, 401, "unauthorized", "send the write key as the HTTP Basic user name "
                                               "(or 'writeKey' in the body)");
        goto out;
    }
    int64_t now_ms = hr_time_now() * 1000;
    json_object *list = doc, *v;
    int64_t batch_sent = 0;
    if (batch) {
        if (!json_object_object_get_ex(doc, "batch", &list) ||
            !json_object_is_type(list, json_type_array)) {
            hr_reply_error(r, 400, "invalid_request", "'batch' (an array of messages) is required");
            goto out;
        }
        total = (int)json_object_array_length(list);
        if (total > HR_BATCH_MAX_MSGS) {
            hr_reply_error(r, 400, "invalid_request", "a batch holds at most %d messages, not %d",
                           HR_BATCH_MAX_MSGS, total);
            goto out;
        }
        if (json_object_object_get_ex(doc, "sentAt", &v) && json_object_is_type(v, json_type_string))
            hr_time_parse_ms(json_object_get_string(v), &batch_sent);
    }
    msgs = calloc((size_t)total + 1, sizeof *msgs);
    status = calloc((size_t)total + 1, sizeof *status);
    if (!msgs || !status) {
        hr_reply_error(r, 500, "internal", "out of memory");
        goto out;
    }
    for (int i = 0; i < total; i++) {
        json_object *o = batch ? json_object_array_get_idx(list, (size_t)i) : doc;
        /* the text is made once: for the size limit and for the event log */
        size_t size = 0;
        const char *text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &size);
        hr_err e = {0};
        if (hr_msg_parse(o, batch ? -1 : type, batch ? size : r->body_len, batch_sent, now_ms,
                         &msgs[n], &e)) {
            if (nerr++) hr_buf_putc(&errs, ',');
            hr_buf_printf(&errs, "{\"index\":%d,\"message\":", i);
            hr_buf_json_str(&errs, e.message);
            hr_buf_putc(&errs, '}');
            continue;
        }
        if (browser) {
            hr_msg *m = &msgs[n];
            const char *why = NULL;
            if (m->type != HR_MSG_TRACK && m->type != HR_MSG_PAGE && m->type != HR_MSG_SCREEN)
                why = "with the publishable key only track, page and screen are accepted";
            else if (!m->user_id || strcmp(m->user_id, r->id.user))
                why = "with the publishable key userId must be the verified user";
            else if (m->account && strcmp(m->account, r->id.account))
                why = "with the publishable key the account must be the verified one";
            if (why) {
                if (!batch) {
                    hr_reply_error(r, 403, "forbidden", "%s", why);
                    goto out;
                }
                if (nerr++) hr_buf_putc(&errs, ',');
                hr_buf_printf(&errs, "{\"index\":%d,\"message\":", i);
                hr_buf_json_str(&errs, why);
                hr_buf_putc(&errs, '}');
                continue;
            }
            m->account = r->id.account;
        }
        msgs[n].text = text;
        msgs[n].text_len = size;
        n++;
    }
    if (!n) {
        if (!batch) {
            hr_buf_reset(&errs);
            /* one message: its reason is the error */
            hr_err e = {0};
            hr_msg_parse(doc, type, r->body_len, 0, now_ms, &msgs[0], &e);
            hr_reply_error(r, 400, "invalid_request", "%s", e.message);
            goto out;
        }
        if (total) {
            hr_buf_puts(&r->out, "{\"error\":{\"code\":\"invalid_request\",\"message\":"
                                 "\"no valid message in the batch\",\"details\":[");
            hr_buf_append(&r->out, errs.data, errs.len);
            hr_buf_puts(&r->out, "]}}");
            hr_reply(r, 400);
            goto out;
        }
    }
    hr_api_seg_ingest(r, msgs, n, status, now_ms, &errs, nerr);
out:
    free(msgs);
    free(status);
    hr_buf_dispose(&errs);
    json_object_put(doc);
}

void hr_api_seg_track(hr_req *r) { ingest(r, HR_MSG_TRACK); }
void hr_api_seg_identify(hr_req *r) { ingest(r, HR_MSG_IDENTIFY); }
void hr_api_seg_group(hr_req *r) { ingest(r, HR_MSG_GROUP); }
void hr_api_seg_page(hr_req *r) { ingest(r, HR_MSG_PAGE); }
void hr_api_seg_screen(hr_req *r) { ingest(r, HR_MSG_SCREEN); }
void hr_api_seg_batch(hr_req *r) { ingest(r, -1); }

/* ---- reading -------------------------------------------------------------- */

typedef struct series {
    hr_buf *out;
    int n;
    /* re-bucketing to a coarser granularity (gran != NONE) */
    hr_period gran;
    hr_aggregate agg;
    hr_meter_value cur; /* the open bucket; period_start = its start */
    int open;
} series;

static void emit_point(series *s, int64_t start, double value) {
    if (s->n++) hr_buf_putc(s->out, ',');
    hr_buf_puts(s->out, "{\"period_start\":");
    hr_buf_json_time(s->out, start ? start : 1);
    hr_buf_printf(s->out, ",\"value\":%.17g}", value);
}

static void close_bucket(series *s) {
    if (!s->open) return;
    emit_point(s, s->cur.period_start, s->cur.value);
    hr_meter_value_dispose(&s->cur);
    s->open = 0;
}

static int point(void *ud, const hr_meter_rec *m) {
    series *s = ud;
    if (s->gran == HR_PERIOD_NONE) {
        emit_point(s, m->period_start, m->value);
        return 0;
    }
    int64_t start = hr_meter_period_start(s->gran, m->period_start, 0, 1);
    if (s->open && s->cur.period_start != start) close_bucket(s);
    if (!s->open) {
        hr_meter_value_init(&s->cur, start);
        s->open = 1;
        if (s->agg == HR_AGG_MAX || s->agg == HR_AGG_LATEST) {
            s->cur.value = m->value;
            s->cur.latest_ms = m->latest_ms ? m->latest_ms : 1;
            return 0;
        }
    }
    switch (s->agg) {
    case HR_AGG_COUNT:
    case HR_AGG_SUM: s->cur.value += m->value; break;
    case HR_AGG_MAX:
        if (m->value > s->cur.value) s->cur.value = m->value;
        break;
    case HR_AGG_LATEST:
        if (m->latest_ms >= s->cur.latest_ms) s->cur.value = m->value, s->cur.latest_ms = m->latest_ms;
        break;
    case HR_AGG_UNIQUE: /* the union of the periods' sets */
        for (uint32_t i = 0; i < m->nuniq; i++)
            if (hr_meter_fold(&s->cur, HR_AGG_UNIQUE, 0, m->uniq[i], 0) < 0) return HR_ENOMEM;
        break;
    }
    return 0;
}

static int period_rank(hr_period p) {
    switch (p) {
    case HR_PERIOD_DAY: return 1;
    case HR_PERIOD_WEEK: return 2;
    case HR_PERIOD_MONTH: case HR_PERIOD_BILLING_CYCLE: return 3;
    case HR_PERIOD_YEAR: return 4;
    default: return 5;
    }
}

/* ?meter=api_calls&from=&to=&granularity=day|week|month : the meter's value
 * per period, oldest first; a granularity coarser than the meter's own
 * period folds its periods together (sums, max, latest, union of sets). */
void hr_api_usage_series(hr_req *r) {
    const char *meter = hr_req_query(r, "meter"), *from = hr_req_query(r, "from"),
               *to = hr_req_query(r, "to"), *g = hr_req_query(r, "granularity");
    int64_t f = 0, t = INT64_MAX;
    if (!meter) return hr_reply_error(r, 400, "invalid_request", "'meter' is required");
    if ((from && hr_time_parse(from, &f)) || (to && hr_time_parse(to, &t)))
        return hr_reply_error(r, 400, "invalid_request", "'from' and 'to' must be RFC 3339 times");
    double now_v;
    int rc = hr_engine_meter_value(r->app->engine, r->params[0], meter, 0, &now_v);
    if (rc == HR_ENOTFOUND) return hr_reply_error(r, 404, "not_found", "no account '%s'", r->params[0]);
    if (rc) return hr_reply_error(r, 422, "unprocessable", "unknown meter '%s'", meter);
    series s = {&r->out, 0, HR_PERIOD_NONE, HR_AGG_COUNT, {0}, 0};
    if (g) {
        static const char *names[] = {"day", "week", "month"};
        static const hr_period per[] = {HR_PERIOD_DAY, HR_PERIOD_WEEK, HR_PERIOD_MONTH};
        int gi = -1;
        for (int i = 0; i < 3; i++)
            if (!strcmp(g, names[i])) gi = i;
        if (gi < 0) return hr_reply_error(r, 400, "invalid_request", "granularity must be day, week or month");
        hr_catalog *c = hr_engine_catalog(r->app->engine);
        int mi = hr_catalog_meter(c, meter);
        if (mi < 0) { /* the catalog changed under the request */
            hr_catalog_release(c);
            return hr_reply_error(r, 422, "unprocessable", "unknown meter '%s'", meter);
        }
        const hr_meter *m = &c->meters[mi];
        int native = period_rank(m->period), want = period_rank(per[gi]);
        s.agg = m->aggregate;
        hr_catalog_release(c);
        /* a lifetime meter has one value whatever the granularity */
        if (want < native && m->period != HR_PERIOD_LIFETIME)
            return hr_reply_error(r, 400, "invalid_request", "granularity '%s' is finer than the "
                                  "meter's own period", g);
        if (want > native) s.gran = per[gi]; /* (a billing cycle ranks as a month) */
    }
    hr_buf_puts(&r->out, "{\"account\":");
    hr_buf_json_str(&r->out, r->params[0]);
    hr_buf_puts(&r->out, ",\"meter\":");
    hr_buf_json_str(&r->out, meter);
    hr_buf_printf(&r->out, ",\"current\":%.17g,\"points\":[", now_v);
    hr_err e = {0};
    /* the table follows the log by up to a second: bring it up to date */
    if (r->app->store && hr_engine_flush_derived(r->app->engine, 0, &e)) {
        hr_meter_value_dispose(&s.cur);
        return hr_api_fail(r, e.code, &e);
    }
    if (r->app->store &&
        r->app->store->ops->meter_series(r->app->store, r->params[0], meter, f, t, point, &s, &e)) {
        hr_meter_value_dispose(&s.cur);
        return hr_api_fail(r, e.code, &e);
    }
    close_bucket(&s);
    hr_buf_puts(&r->out, "]}");
    hr_reply(r, 200);
}

static int event_row(void *ud, const hr_event_rec *ev) {
    series *s = ud;
    if (s->n++) hr_buf_putc(s->out, ',');
    hr_buf_puts(s->out, ev->body); /* stored as JSON text */
    return 0;
}

/* ?limit=N : the account's newest raw events, for debugging integrations. */
void hr_api_events_recent(hr_req *r) {
    const char *l = hr_req_query(r, "limit");
    int limit = l ? atoi(l) : 50;
    if (limit < 1 || limit > 1000) return hr_reply_error(r, 400, "invalid_request", "limit must be 1..1000");
    hr_buf_puts(&r->out, "{\"events\":[");
    series s = {.out = &r->out, .gran = HR_PERIOD_NONE};
    hr_err e = {0};
    if (r->app->store &&
        r->app->store->ops->recent_events(r->app->store, r->params[0], limit, event_row, &s, &e))
        return hr_api_fail(r, e.code, &e);
    hr_buf_puts(&r->out, "]}");
    hr_reply(r, 200);
}
