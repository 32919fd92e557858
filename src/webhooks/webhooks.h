/* webhooks.h: signed webhook delivery that never loses a message.
 *
 * Producers (playbooks) write outbox rows (store.h hr_outbox_rec) in their
 * own transaction, together with whatever else they record, then call
 * hr_webhooks_kick. One delivery thread owns the rest: it reads due rows,
 * sends them with libcurl's multi interface (many at once), signs each per
 * the Standard Webhooks spec (webhook-id, webhook-timestamp,
 * webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">), and
 * records every attempt: 2xx delivers; 5xx, 408, 429, timeouts and
 * connection errors retry with exponential backoff and jitter (Retry-After
 * honoured); other 4xx and running out of attempts dead-letter the row. A
 * row stays pending on disk until an attempt's outcome is recorded, so a
 * crash or restart resends it with the same webhook-id (at-least-once). */
#ifndef HR_WEBHOOKS_H
#define HR_WEBHOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "headroom.h"
#include "store/store.h"

typedef struct hr_webhook_policy {
    int64_t initial_ms;      /* first retry after this (default 5 s) */
    double factor;           /* each next wait multiplied by this (default 3) */
    int64_t max_interval_ms; /* waits never longer (default 2 h) */
    int max_attempts;        /* then dead (default 12) */
    int64_t timeout_ms;      /* per attempt (default 10 s) */
    int concurrency;         /* requests in flight at most (default 64) */
} hr_webhook_policy;

typedef struct hr_webhooks hr_webhooks;

/* store: a connection of its own (borrowed; outlives the result). policy
 * NULL: defaults. Does not start delivering: see hr_webhooks_start. */
int hr_webhooks_new(hr_store *store, const hr_webhook_policy *policy, hr_webhooks **out,
                    hr_err *err);
/* Starts the delivery thread. */
int hr_webhooks_start(hr_webhooks *w, hr_err *err);
/* Stops the thread (attempts in flight are abandoned, their rows stay
 * pending) and frees. Accepts NULL. */
void hr_webhooks_free(hr_webhooks *w);
/* Takes effect for the next attempts (catalog reload). */
void hr_webhooks_set_policy(hr_webhooks *w, const hr_webhook_policy *policy);
/* New rows are due: wake the thread. Cheap; any thread. */
void hr_webhooks_kick(hr_webhooks *w);

/* Counters since hr_webhooks_new (for /metrics and the bench): attempts
 * started, rows that ended delivered or dead, attempts that will be
 * retried, failed writes of outcomes (retried), requests in flight now. */
typedef struct hr_webhook_stats {
    uint64_t attempts, delivered, retried, dead, store_errors;
    int in_flight;
} hr_webhook_stats;
/* Any thread. */
void hr_webhooks_stats(hr_webhooks *w, hr_webhook_stats *out);

/* A new webhook-id ("msg_" + 26 random base32 chars) into out (>= 32 bytes). */
void hr_webhook_new_id(char *out, size_t n);
/* The webhook-signature header value for body: "v1,<b64>" per secret in
 * secrets (whsec_ secrets, space-separated), space-separated. A secret
 * without the whsec_ prefix is used as raw bytes. HR_EINVAL for a secret
 * whose base64 does not decode (or out too small: 48 bytes a secret).
 * secrets NULL or blank: out is "" (the request goes unsigned). */
int hr_webhook_sign(const char *secrets, const char *id, int64_t ts, const char *body,
                    size_t len, char *out, size_t n, hr_err *err);
/* The wait before attempt number `attempt` (1 = the first retry) under
 * policy, with jitter drawn from [0.5, 1.0) of the backoff; retry_after_ms
 * >= 0 (from a Retry-After header) wins when longer, up to max_interval_ms. */
int64_t hr_webhook_backoff(const hr_webhook_policy *p, int attempt, int64_t retry_after_ms);

/* Makes a delivered or dead row pending again, due now, attempts reset
 * (manual replay); the webhook-id stays, so receivers can de-duplicate.
 * HR_ENOTFOUND for an unknown id. Works on any connection (the CLI's). */
int hr_webhooks_replay(hr_store *store, const char *id, int64_t now_ms, hr_err *err);

#endif
