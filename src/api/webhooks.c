/* webhooks.c: the webhook outbox over HTTP (webhooks/webhooks.h).
 *
 *   GET  /v1/webhooks/deliveries?status=&limit=   outbox rows, newest first
 *   GET  /v1/webhooks/{id}                        one row with its attempts
 *   POST /v1/webhooks/{id}/replay                 send a delivered or dead row again
 *
 * Reads go to app->pstore, a store connection of the API's own (the
 * delivery thread has another), under app->pstore_mu because the HTTP
 * threads share it. Secrets are never written out. */
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "err.h"
#include "timeutil.h"
#include "webhooks/webhooks.h"

#define DELIVERIES_SHOWN 100

static const char *const status_names[] = {"pending", "delivered", "dead"};

static hr_store *pstore_lock(hr_req *r) {
    if (!r->app->pstore) {
        hr_reply_error(r, 503, "unavailable", "webhooks are not running");
        return NULL;
    }
    pthread_mutex_lock(&r->app->pstore_mu);
    return r->app->pstore;
}

static void pstore_unlock(hr_req *r) { pthread_mutex_unlock(&r->app->pstore_mu); }

/* RFC 3339 UTC with milliseconds, quoted; 0 writes null. */
static void json_time_ms(hr_buf *b, int64_t ms) {
    if (!ms) {
        hr_buf_puts(b, "null");
        return;
    }
    char t[40];
    int64_t s = ms / 1000, frac = ms % 1000;
    if (frac < 0) s--, frac += 1000;
    hr_time_format(s, t, sizeof t);
    size_t n = strlen(t);
    if (n && t[n - 1] == 'Z') t[n - 1] = '\0';
    hr_buf_printf(b, "\"%s.%03dZ\"", t, (int)frac);
}

static void row_json(hr_buf *b, const hr_outbox_rec *o) {
    int st = o->status >= 0 && o->status <= 2 ? o->status : 0;
    hr_buf_puts(b, "{\"id\":");
    hr_buf_json_str(b, o->id);
    hr_buf_puts(b, ",\"url\":");
    hr_buf_json_str(b, o->url);
    hr_buf_puts(b, ",\"status\":");
    hr_buf_json_str(b, status_names[st]);
    hr_buf_puts(b, ",\"attempts\":");
    hr_buf_i64(b, o->attempts);
    hr_buf_puts(b, ",\"created_at\":");
    json_time_ms(b, o->created_ms);
    hr_buf_puts(b, ",\"next_attempt_at\":");
    json_time_ms(b, st == HR_OUTBOX_PENDING ? o->next_at_ms : 0);
    hr_buf_puts(b, ",\"last_code\":");
    if (o->last_code) hr_buf_i64(b, o->last_code);
    else hr_buf_puts(b, "null");
    hr_buf_puts(b, ",\"last_latency_ms\":");
    if (o->attempts) hr_buf_i64(b, o->last_latency_ms);
    else hr_buf_puts(b, "null");
    hr_buf_puts(b, ",\"last_error\":");
    hr_buf_json_str(b, o->last_error);
    hr_buf_puts(b, ",\"playbook\":");
    hr_buf_json_str(b, o->playbook);
    hr_buf_puts(b, ",\"account\":");
    hr_buf_json_str(b, o->account);
}

typedef struct list_ctx {
    hr_buf *out;
    int n;
} list_ctx;

static int list_row(void *ud, const hr_outbox_rec *o) {
    list_ctx *c = ud;
    if (c->n++) hr_buf_putc(c->out, ',');
    row_json(c->out, o);
    hr_buf_putc(c->out, '}');
    return 0;
}

static int one_row(void *ud, const hr_outbox_rec *o) {
    list_ctx *c = ud;
    c->n++;
    row_json(c->out, o); /* left open: the deliveries follow */
    return 1;
}

/* The attempts of one row as JSON objects, oldest first (the store hands
 * them newest first): each object is written to a scratch buffer and the
 * offsets are replayed backwards. */
typedef struct dl_ctx {
    hr_buf tmp;
    size_t off[DELIVERIES_SHOWN + 1];
    int n;
} dl_ctx;

static int delivery_row(void *ud, const hr_delivery_rec *d) {
    dl_ctx *c = ud;
    if (c->n >= DELIVERIES_SHOWN) return 1;
    c->off[c->n++] = c->tmp.len;
    hr_buf *b = &c->tmp;
    hr_buf_puts(b, "{\"attempt\":");
    hr_buf_i64(b, d->attempt);
    hr_buf_puts(b, ",\"at\":");
    json_time_ms(b, d->at_ms);
    hr_buf_puts(b, ",\"code\":");
    if (d->code) hr_buf_i64(b, d->code);
    else hr_buf_puts(b, "null");
    hr_buf_puts(b, ",\"latency_ms\":");
    hr_buf_i64(b, d->latency_ms);
    hr_buf_puts(b, ",\"error\":");
    hr_buf_json_str(b, d->error);
    hr_buf_putc(b, '}');
    return 0;
}

/* Writes the row with its attempts into r->out and replies 200 (404 for an
 * unknown id). Called with pstore_mu held. */
static void reply_row(hr_req *r, hr_store *s, const char *id) {
    hr_err err = {0};
    list_ctx c = {&r->out, 0};
    dl_ctx d = {.n = 0};
    hr_buf_init(&d.tmp);
    int rc = s->ops->outbox_get(s, id, one_row, &c, &err);
    if (rc < 0) goto fail;
    if (!c.n) {
        hr_reply_error(r, 404, "not_found", "no webhook '%s'", id);
        goto out;
    }
    if ((rc = s->ops->delivery_list(s, id, DELIVERIES_SHOWN, delivery_row, &d, &err)) < 0)
        goto fail;
    d.off[d.n] = d.tmp.len;
    hr_buf_puts(&r->out, ",\"deliveries\":[");
    for (int i = d.n - 1; i >= 0; i--) {
        if (i != d.n - 1) hr_buf_putc(&r->out, ',');
        hr_buf_append(&r->out, d.tmp.data + d.off[i], d.off[i + 1] - d.off[i]);
    }
    hr_buf_puts(&r->out, "]}");
    if (hr_buf_failed(&d.tmp)) {
        hr_reply_error(r, 500, "internal", "out of memory");
        goto out;
    }
    hr_reply(r, 200);
    goto out;
fail:
    hr_api_fail(r, rc, &err);
out:
    hr_buf_dispose(&d.tmp);
}

void hr_api_webhook_deliveries(hr_req *r) {
    const char *st = hr_req_query(r, "status"), *lim = hr_req_query(r, "limit");
    int status = -1, limit = 100;
    if (st) {
        for (int i = 0; i < 3; i++)
            if (!strcmp(st, status_names[i])) status = i;
        if (status < 0) {
            hr_reply_error(r, 400, "invalid_request", "status must be pending, delivered or dead");
            return;
        }
    }
    if (lim) {
        char *end;
        long v = strtol(lim, &end, 10);
        if (*end || end == lim || v < 1 || v > 1000) {
            hr_reply_error(r, 400, "invalid_request", "limit must be 1..1000");
            return;
        }
        limit = (int)v;
    }
    hr_store *s = pstore_lock(r);
    if (!s) return;
    hr_err err = {0};
    list_ctx c = {&r->out, 0};
    hr_buf_puts(&r->out, "{\"webhooks\":[");
    int rc = s->ops->outbox_list(s, status, limit, list_row, &c, &err);
    pstore_unlock(r);
    if (rc < 0) {
        hr_api_fail(r, rc, &err);
        return;
    }
    hr_buf_puts(&r->out, "]}");
    hr_reply(r, 200);
}

void hr_api_webhook_get(hr_req *r) {
    hr_store *s = pstore_lock(r);
    if (!s) return;
    reply_row(r, s, r->params[0]);
    pstore_unlock(r);
}

void hr_api_webhook_replay(hr_req *r) {
    hr_store *s = pstore_lock(r);
    if (!s) return;
    hr_err err = {0};
    int rc = hr_webhooks_replay(s, r->params[0], hr_time_now_ms(), &err);
    if (rc == HR_ENOTFOUND) {
        hr_reply_error(r, 404, "not_found", "no webhook '%s'", r->params[0]);
    } else if (rc) {
        hr_api_fail(r, rc, &err);
    } else {
        if (r->app->webhooks) hr_webhooks_kick(r->app->webhooks);
        reply_row(r, s, r->params[0]);
    }
    pstore_unlock(r);
}
