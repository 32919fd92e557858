/* system.c: health, Prometheus metrics, and the catalog (read, replace,
 * reload). A reload parses and validates the whole new catalog before the
 * engine swaps its pointer, so a bad catalog never replaces a good one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api_int.h"
#include "playbooks/playbooks.h"
#include "webhooks/webhooks.h"
#include "err.h"
#include "timeutil.h"

static const uint64_t lat_bounds_us[HR_LAT_BUCKETS] = {50,    100,    250,    500,
                                                       1000,  2500,   5000,   10000,
                                                       25000, 100000, 500000, 2000000};
static const int status_codes[HR_STATUS_SLOTS - 1] = {200, 201, 204, 304, 400, 401, 403, 404,
                                                      405, 409, 413, 415, 422, 500, 503};

int hr_metrics_status_slot(int status) {
    for (int i = 0; i < HR_STATUS_SLOTS - 1; i++)
        if (status_codes[i] == status) return i;
    return HR_STATUS_SLOTS - 1;
}

void hr_metrics_observe(hr_metrics *m, int route, int status, uint64_t us) {
    int ri = route < 0 ? HR_ROUTE_COUNT : route;
    atomic_fetch_add_explicit(&m->req[ri][hr_metrics_status_slot(status)], 1,
                              memory_order_relaxed);
    int b = 0;
    while (b < HR_LAT_BUCKETS && us > lat_bounds_us[b]) b++;
    atomic_fetch_add_explicit(&m->lat[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->lat_sum_us, us, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->lat_count, 1, memory_order_relaxed);
}

void hr_api_health(hr_req *r) {
    hr_buf_puts(&r->out, "{\"status\":\"ok\",\"version\":\"" HR_VERSION "\",\"accounts\":");
    hr_buf_i64(&r->out, (int64_t)hr_engine_account_count(r->app->engine));
    hr_buf_puts(&r->out, "}");
    hr_reply(r, 200);
}

void hr_api_metrics(hr_req *r) {
    hr_metrics *m = &r->app->metrics;
    hr_buf *b = &r->out;
    hr_buf_puts(b, "# HELP headroom_http_requests_total HTTP requests by route and status.\n"
                   "# TYPE headroom_http_requests_total counter\n");
    for (int ri = 0; ri <= HR_ROUTE_COUNT; ri++) {
        const char *name = ri < HR_ROUTE_COUNT ? hr_routes[ri].name : "unmatched";
        for (int s = 0; s < HR_STATUS_SLOTS; s++) {
            uint64_t v = atomic_load_explicit(&m->req[ri][s], memory_order_relaxed);
            if (!v) continue;
            char st[8];
            if (s < HR_STATUS_SLOTS - 1)
                snprintf(st, sizeof st, "%d", status_codes[s]);
            else
                snprintf(st, sizeof st, "other");
            hr_buf_printf(b, "headroom_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                          name, st, (unsigned long long)v);
        }
    }
    hr_buf_puts(b, "# HELP headroom_http_request_duration_seconds Request latency.\n"
                   "# TYPE headroom_http_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i <= HR_LAT_BUCKETS; i++) {
        cum += atomic_load_explicit(&m->lat[i], memory_order_relaxed);
        if (i < HR_LAT_BUCKETS)
            hr_buf_printf(b, "headroom_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                          (double)lat_bounds_us[i] / 1e6, (unsigned long long)cum);
        else
            hr_buf_printf(b, "headroom_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                          (unsigned long long)cum);
    }
    hr_buf_printf(b, "headroom_http_request_duration_seconds_sum %.6f\n",
                  (double)atomic_load(&m->lat_sum_us) / 1e6);
    hr_buf_printf(b, "headroom_http_request_duration_seconds_count %llu\n",
                  (unsigned long long)atomic_load(&m->lat_count));
    hr_catalog *c = hr_engine_catalog(r->app->engine);
    hr_buf_printf(b, "# HELP headroom_accounts Accounts held in memory.\n"
                     "# TYPE headroom_accounts gauge\nheadroom_accounts %zu\n",
                  hr_engine_account_count(r->app->engine));
    hr_buf_printf(b, "# HELP headroom_catalog_info The loaded catalog version (content hash).\n"
                     "# TYPE headroom_catalog_info gauge\n"
                     "headroom_catalog_info{version=\"%016llx\"} 1\n",
                  (unsigned long long)(c ? c->hash : 0));
    hr_buf_printf(b, "# TYPE headroom_catalog_reloads_total counter\n"
                     "headroom_catalog_reloads_total %llu\n"
                     "# TYPE headroom_catalog_reload_failures_total counter\n"
                     "headroom_catalog_reload_failures_total %llu\n",
                  (unsigned long long)atomic_load(&m->reloads),
                  (unsigned long long)atomic_load(&m->reload_failures));
    hr_dedup_stats ds;
    hr_engine_dedup_stats(r->app->engine, &ds);
    hr_buf_printf(b, "# HELP headroom_dedup_ids messageIds held for deduplication.\n"
                     "# TYPE headroom_dedup_ids gauge\nheadroom_dedup_ids %zu\n"
                     "# TYPE headroom_dedup_bytes gauge\nheadroom_dedup_bytes %zu\n"
                     "# HELP headroom_dedup_evicted_total messageIds dropped early by --dedup-memory.\n"
                     "# TYPE headroom_dedup_evicted_total counter\nheadroom_dedup_evicted_total %zu\n"
                     "# HELP headroom_dedup_window_seconds How far back a retry is still recognised.\n"
                     "# TYPE headroom_dedup_window_seconds gauge\nheadroom_dedup_window_seconds %lld\n",
                  ds.ids, ds.bytes, ds.evicted, (long long)ds.window_s);
    hr_buf_printf(b, "# TYPE headroom_start_time_seconds gauge\nheadroom_start_time_seconds %lld\n",
                  (long long)r->app->started_at);
    if (r->app->playbooks) {
        hr_playbooks_stats ps;
        hr_playbooks_get_stats(r->app->playbooks, &ps);
        hr_buf_printf(b, "# HELP headroom_playbook_sweeps_total Sweeps over every account.\n"
                         "# TYPE headroom_playbook_sweeps_total counter\n"
                         "headroom_playbook_sweeps_total %lld\n"
                         "# HELP headroom_playbook_last_sweep_seconds How long the last sweep took.\n"
                         "# TYPE headroom_playbook_last_sweep_seconds gauge\n"
                         "headroom_playbook_last_sweep_seconds %.3f\n"
                         "# TYPE headroom_playbook_last_sweep_accounts gauge\n"
                         "headroom_playbook_last_sweep_accounts %lld\n"
                         "# HELP headroom_playbook_fired_total Signals fired.\n"
                         "# TYPE headroom_playbook_fired_total counter\n"
                         "headroom_playbook_fired_total %lld\n",
                      (long long)ps.sweeps, (double)ps.last_sweep_ms / 1000.0,
                      (long long)ps.last_sweep_accounts, (long long)ps.fired);
    }
    if (r->app->webhooks) {
        hr_webhook_stats ws;
        hr_webhooks_stats(r->app->webhooks, &ws);
        hr_buf_printf(b, "# HELP headroom_webhook_attempts_total Webhook requests sent.\n"
                         "# TYPE headroom_webhook_attempts_total counter\n"
                         "headroom_webhook_attempts_total %llu\n"
                         "# TYPE headroom_webhook_delivered_total counter\n"
                         "headroom_webhook_delivered_total %llu\n"
                         "# TYPE headroom_webhook_retried_total counter\n"
                         "headroom_webhook_retried_total %llu\n"
                         "# HELP headroom_webhook_dead_total Webhooks given up (dead letters).\n"
                         "# TYPE headroom_webhook_dead_total counter\n"
                         "headroom_webhook_dead_total %llu\n"
                         "# TYPE headroom_webhook_in_flight gauge\n"
                         "headroom_webhook_in_flight %d\n",
                      (unsigned long long)ws.attempts, (unsigned long long)ws.delivered,
                      (unsigned long long)ws.retried, (unsigned long long)ws.dead, ws.in_flight);
    }
    if (c) hr_catalog_release(c);
    hr_reply_type(r, 200, "text/plain; version=0.0.4");
}

void hr_api_catalog_get(hr_req *r) {
    hr_catalog *c = hr_engine_catalog(r->app->engine);
    char *json = c ? hr_catalog_to_json(c) : NULL;
    if (c) {
        snprintf(r->etag, sizeof r->etag, "\"%016llx\"", (unsigned long long)c->hash);
        hr_catalog_release(c);
    }
    if (!json) return hr_reply_error(r, 500, "internal", "cannot serialise the catalog");
    hr_buf_puts(&r->out, json);
    free(json);
    hr_reply(r, 200);
}

void hr_app_account_changed(hr_app *app, const char *account) {
    if (app->playbooks) hr_playbooks_touch(app->playbooks, account);
}

void hr_app_webhook_policy(const hr_catalog *c, hr_webhook_policy *p) {
    memset(p, 0, sizeof *p);
    p->initial_ms = c->wh_initial_ms;
    p->factor = c->wh_factor;
    p->max_interval_ms = c->wh_max_interval_ms;
    p->max_attempts = c->wh_max_attempts;
    p->timeout_ms = c->wh_timeout_ms;
}

int hr_app_reload(hr_app *app, const char *text, size_t len, const char *name, int from_api,
                  hr_err *err, hr_err_list *errs) {
    hr_catalog *c = NULL;
    pthread_mutex_lock(&app->reload_mu);
    int rc = hr_catalog_parse(text, len, name, &c, err, errs);
    if (!rc && from_api && app->store)
        rc = app->store->ops->put_catalog(app->store, text, hr_time_now(), err);
    if (!rc) rc = hr_engine_set_catalog(app->engine, c, err);
    if (!rc && app->webhooks) {
        hr_webhook_policy p;
        hr_app_webhook_policy(c, &p);
        hr_webhooks_set_policy(app->webhooks, &p);
    }
    if (!rc && app->playbooks) hr_playbooks_request_sweep(app->playbooks); /* new signals */
    pthread_mutex_unlock(&app->reload_mu);
    if (c) hr_catalog_release(c);
    atomic_fetch_add(rc ? &app->metrics.reload_failures : &app->metrics.reloads, 1);
    return rc;
}

int hr_app_prefer_api_catalog(const char *config_path, hr_store *s, hr_catalog **cat) {
    char *text = NULL;
    int64_t at = 0;
    int used = 0;
    hr_err ignore = {0};
    struct stat st;
    if (s->ops->get_catalog(s, &text, &at, &ignore) == 0 && stat(config_path, &st) == 0 &&
        st.st_mtime < at) {
        hr_catalog *api = NULL;
        if (hr_catalog_parse(text, strlen(text), "catalog (set over the API)", &api, &ignore,
                             NULL) == 0) {
            hr_catalog_release(*cat);
            *cat = api;
            used = 1;
        }
    }
    free(text);
    return used;
}

int hr_app_reload_file(hr_app *app, hr_err *err) {
    hr_catalog *c = NULL;
    pthread_mutex_lock(&app->reload_mu);
    int rc = hr_catalog_load_file(app->config_path, &c, err);
    if (!rc) rc = hr_engine_set_catalog(app->engine, c, err);
    if (!rc && app->webhooks) {
        hr_webhook_policy p;
        hr_app_webhook_policy(c, &p);
        hr_webhooks_set_policy(app->webhooks, &p);
    }
    if (!rc && app->playbooks) hr_playbooks_request_sweep(app->playbooks); /* new signals */
    pthread_mutex_unlock(&app->reload_mu);
    if (c) hr_catalog_release(c);
    atomic_fetch_add(rc ? &app->metrics.reload_failures : &app->metrics.reloads, 1);
    return rc;
}

/* The body is the catalog as JSON (the same shape as headroom.yaml). */
void hr_api_catalog_put(hr_req *r) {
    hr_err err = {0};
    hr_err_list errs = {0};
    if (!r->body_len) return hr_reply_error(r, 400, "invalid_request", "a JSON body is required");
    /* malformed JSON is a bad request (with its byte offset), not a bad catalog */
    json_object *probe = hr_req_json(r, 0);
    if (!probe) return;
    json_object_put(probe);
    int rc = hr_app_reload(r->app, r->body, r->body_len, "catalog", 1, &err, &errs);
    if (rc) {
        /* every problem, each with its position in the body */
        hr_buf_puts(&r->out, "{\"error\":{\"code\":");
        hr_buf_json_str(&r->out, hr_err_code_str(rc));
        hr_buf_puts(&r->out, ",\"message\":");
        char first[900];
        hr_err_fmt(&err, first, sizeof first);
        hr_buf_json_str(&r->out, first);
        hr_buf_puts(&r->out, ",\"details\":[");
        for (int i = 0; i < errs.count; i++) {
            if (i) hr_buf_putc(&r->out, ',');
            hr_buf_puts(&r->out, "{\"line\":");
            hr_buf_i64(&r->out, errs.items[i].line);
            hr_buf_puts(&r->out, ",\"column\":");
            hr_buf_i64(&r->out, errs.items[i].column);
            hr_buf_puts(&r->out, ",\"message\":");
            hr_buf_json_str(&r->out, errs.items[i].message);
            hr_buf_putc(&r->out, '}');
        }
        hr_buf_puts(&r->out, "]}}");
        hr_catalog_errors_free(&errs);
        hr_reply(r, hr_err_http_status(rc));
        return;
    }
    hr_catalog_errors_free(&errs);
    hr_api_catalog_get(r);
}
