/* webhooks.c: the delivery thread. It reads due outbox rows, sends them on
 * one libcurl multi handle (so connections are kept alive and reused
 * across rows), and writes each finished attempt back: the row's new state
 * and a line in the delivery log, many attempts per transaction.
 *
 * The design decision: the row on disk is the only record of what is
 * owed. It stays pending until the outcome of its attempt is committed, and
 * the thread never reads due rows while finished outcomes still wait to be
 * written, so a row is never sent twice at once by this process, and a
 * crash (or a stop, which abandons requests in flight) can only cause a
 * resend with the same webhook-id, never a loss. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "map.h"
#include "timeutil.h"
#include "webhooks.h"

#define RESCAN_MS 1000      /* look for rows another process made due (CLI replay) */
#define STORE_RETRY_MS 200  /* after a failed write of outcomes */
#define MAX_CONCURRENCY 1024
#define MAX_SPARE 1024      /* idle jobs (with their easy handles) kept for reuse */
#define SIG_MAX 512         /* a few secrets' "v1,<44 chars>" */

/* One attempt of one row: a copy of the row (strings in mem), the request
 * and, once finished, the outcome. */
typedef struct job {
    struct job *next;
    CURL *easy;
    struct curl_slist *hdrs;
    char *mem;
    hr_outbox_rec row;       /* after the outcome: the row as it is to be written */
    hr_delivery_rec log;
    char error[CURL_ERROR_SIZE + 64];
    char errbuf[CURL_ERROR_SIZE];
} job;

struct hr_webhooks {
    hr_store *store;
    CURLM *multi;
    pthread_t thread;
    int started;
    atomic_int stop, kicked;

    pthread_mutex_t mu; /* guards policy */
    hr_webhook_policy policy;

    /* owned by the thread */
    hr_map *inflight;        /* row id -> job */
    int ninflight;
    job *done, **done_tail;  /* finished, outcome not yet written */
    int ndone;
    job *spare;
    int nspare;
    hr_outbox_rec *rows;     /* flush scratch */
    hr_delivery_rec *logs;
    int scratch_cap;
    int64_t next_due_ms, last_scan_ms;
    long maxconnects;

    _Atomic uint64_t n_attempts, n_delivered, n_retried, n_dead, n_store_errors;
    atomic_int n_inflight;
};

static const hr_webhook_policy defaults = {5000, 3.0, 7200000, 12, 10000, 64};

static void normalise(hr_webhook_policy *p) {
    if (p->initial_ms <= 0) p->initial_ms = defaults.initial_ms;
    if (!(p->factor >= 1.0)) p->factor = defaults.factor;
    if (p->max_interval_ms <= 0) p->max_interval_ms = defaults.max_interval_ms;
    if (p->max_attempts <= 0) p->max_attempts = defaults.max_attempts;
    if (p->timeout_ms <= 0) p->timeout_ms = defaults.timeout_ms;
    if (p->concurrency <= 0) p->concurrency = defaults.concurrency;
    if (p->concurrency > MAX_CONCURRENCY) p->concurrency = MAX_CONCURRENCY;
}

/* ---- jobs ----------------------------------------------------------------- */

static void job_free(job *j) {
    if (!j) return;
    if (j->easy) curl_easy_cleanup(j->easy);
    curl_slist_free_all(j->hdrs);
    free(j->mem);
    free(j);
}

/* Returns a job to the spare list, its easy handle kept for the next row. */
static void job_recycle(hr_webhooks *w, job *j) {
    curl_slist_free_all(j->hdrs);
    j->hdrs = NULL;
    free(j->mem);
    j->mem = NULL;
    if (w->nspare >= MAX_SPARE) {
        job_free(j);
        return;
    }
    j->next = w->spare;
    w->spare = j;
    w->nspare++;
}

static char *dup_into(char **p, const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = memcpy(*p, s, n);
    *p += n;
    return d;
}

/* A job holding a copy of r, or NULL on OOM. */
static job *job_for(hr_webhooks *w, const hr_outbox_rec *r) {
    job *j = w->spare;
    if (j) {
        w->spare = j->next;
        w->nspare--;
        curl_easy_reset(j->easy);
    } else {
        if (!(j = calloc(1, sizeof *j))) return NULL;
        if (!(j->easy = curl_easy_init())) {
            free(j);
            return NULL;
        }
    }
    CURL *easy = j->easy;
    memset(j, 0, sizeof *j);
    j->easy = easy;
    const char *s[] = {r->id, r->url, r->secrets, r->body, r->playbook, r->account, r->last_error};
    size_t total = 0;
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) total += s[i] ? strlen(s[i]) + 1 : 0;
    if (!(j->mem = malloc(total ? total : 1))) {
        job_recycle(w, j);
        return NULL;
    }
    char *p = j->mem;
    j->row = *r;
    j->row.id = dup_into(&p, r->id);
    j->row.url = dup_into(&p, r->url);
    j->row.secrets = dup_into(&p, r->secrets);
    j->row.body = dup_into(&p, r->body ? r->body : "");
    j->row.playbook = dup_into(&p, r->playbook);
    j->row.account = dup_into(&p, r->account);
    j->row.last_error = dup_into(&p, r->last_error);
    return j;
}

static size_t sink(char *p, size_t size, size_t n, void *ud) {
    (void)p, (void)ud;
    return size * n; /* the receiver's answer body is not kept */
}

static void finish(hr_webhooks *w, job *j) {
    j->next = NULL;
    *w->done_tail = j;
    w->done_tail = &j->next;
    w->ndone++;
}

/* Classifies a finished attempt and sets the row's next state. code: HTTP
 * status (0: no response); cerr: libcurl's result. */
static void outcome(job *j, const hr_webhook_policy *pol, CURLcode cerr, int code,
                    int64_t retry_after_ms, int64_t now) {
    int retry = 0;
    j->error[0] = '\0';
    if (cerr == CURLE_OK) {
        if (code >= 200 && code < 300) {
            /* delivered */
        } else if (code >= 500 || code == 408 || code == 429) {
            retry = 1;
            snprintf(j->error, sizeof j->error, "HTTP %d", code);
        } else if (code >= 300 && code < 400) {
            snprintf(j->error, sizeof j->error, "HTTP %d: redirects are not followed", code);
        } else {
            snprintf(j->error, sizeof j->error, "HTTP %d", code);
        }
    } else {
        code = 0;
        /* a URL that cannot work will not work later either */
        retry = cerr != CURLE_URL_MALFORMAT && cerr != CURLE_UNSUPPORTED_PROTOCOL;
        if (cerr == CURLE_OPERATION_TIMEDOUT)
            snprintf(j->error, sizeof j->error, "timeout after %lld ms",
                     (long long)pol->timeout_ms);
        else
            snprintf(j->error, sizeof j->error, "%s",
                     j->errbuf[0] ? j->errbuf : curl_easy_strerror(cerr));
    }
    hr_outbox_rec *r = &j->row;
    r->attempts++;
    r->last_code = code;
    r->last_latency_ms = j->log.latency_ms;
    r->last_error = j->error[0] ? j->error : NULL;
    if (!r->last_error) {
        r->status = HR_OUTBOX_DELIVERED;
    } else if (retry && r->attempts < pol->max_attempts) {
        r->status = HR_OUTBOX_PENDING;
        r->next_at_ms = now + hr_webhook_backoff(pol, r->attempts, retry_after_ms);
    } else {
        r->status = HR_OUTBOX_DEAD;
    }
    j->log.msg_id = r->id;
    j->log.attempt = r->attempts;
    j->log.code = code;
    j->log.error = r->last_error;
}

/* Starts the attempt for r; 0, or -1 when out of memory. A row that cannot
 * be signed (bad secret) fails at once, dead, without a request. */
static int start(hr_webhooks *w, const hr_outbox_rec *r, const hr_webhook_policy *pol,
                 int64_t now) {
    job *j = job_for(w, r);
    if (!j) return -1;
    char sig[SIG_MAX], hdr[SIG_MAX + 32];
    hr_err err = {0};
    int64_t ts = now / 1000;
    j->log.at_ms = now;
    if (hr_webhook_sign(j->row.secrets, j->row.id, ts, j->row.body, strlen(j->row.body), sig,
                        sizeof sig, &err)) {
        snprintf(j->errbuf, sizeof j->errbuf, "cannot sign: %.200s", err.message);
        outcome(j, pol, CURLE_URL_MALFORMAT, 0, -1, now);
        finish(w, j);
        return 0;
    }
    struct curl_slist *h = NULL, *t;
#define ADD(s)                                                   \
    do {                                                         \
        if (!(t = curl_slist_append(h, (s)))) goto oom;          \
        h = t;                                                   \
    } while (0)
    ADD("Content-Type: application/json");
    ADD("Expect:"); /* no 100-continue round trip for larger bodies */
    snprintf(hdr, sizeof hdr, "webhook-id: %s", j->row.id);
    ADD(hdr);
    snprintf(hdr, sizeof hdr, "webhook-timestamp: %lld", (long long)ts);
    ADD(hdr);
    if (sig[0]) {
        snprintf(hdr, sizeof hdr, "webhook-signature: %s", sig);
        ADD(hdr);
    }
#undef ADD
    j->hdrs = h;
    CURL *e = j->easy;
    curl_easy_setopt(e, CURLOPT_URL, j->row.url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->row.body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(j->row.body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->hdrs);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "headroom-webhooks/1");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)pol->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, j);
    int oom = 0;
    hr_map_put(w->inflight, j->row.id, j, &oom);
    if (oom) goto oom;
    if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
        hr_map_del(w->inflight, j->row.id);
        goto oom;
    }
    w->ninflight++;
    atomic_fetch_add(&w->n_attempts, 1);
    return 0;
oom:
    curl_slist_free_all(h);
    j->hdrs = NULL;
    job_recycle(w, j);
    return -1;
}

/* Takes the finished transfers off the multi handle; how many. */
static int collect(hr_webhooks *w, const hr_webhook_policy *pol) {
    CURLMsg *m;
    int left, n = 0;
    while ((m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        CURL *e = m->easy_handle;
        CURLcode cerr = m->data.result; /* m is invalid after remove_handle */
        job *j = NULL;
        long code = 0;
        curl_off_t total_us = 0, retry_after = 0;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&j);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total_us);
        curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &retry_after);
        curl_multi_remove_handle(w->multi, e);
        hr_map_del(w->inflight, j->row.id);
        w->ninflight--;
        j->log.latency_ms = (int64_t)(total_us / 1000);
        outcome(j, pol, cerr, (int)code, retry_after > 0 ? (int64_t)retry_after * 1000 : -1,
                hr_time_now_ms());
        finish(w, j);
        n++;
    }
    return n;
}

/* Writes every finished outcome in one transaction; 0, or -1 (they are
 * kept and written again later). */
static int flush(hr_webhooks *w) {
    hr_store *s = w->store;
    hr_err err = {0};
    int n = w->ndone;
    if (!n) return 0;
    if (n > w->scratch_cap) {
        int cap = n < 64 ? 64 : n * 2;
        hr_outbox_rec *rows = realloc(w->rows, (size_t)cap * sizeof *rows);
        if (rows) w->rows = rows;
        hr_delivery_rec *logs = realloc(w->logs, (size_t)cap * sizeof *logs);
        if (logs) w->logs = logs;
        if (!rows || !logs) return -1;
        w->scratch_cap = cap;
    }
    int i = 0;
    for (job *j = w->done; j; j = j->next, i++) w->rows[i] = j->row, w->logs[i] = j->log;
    if (s->ops->begin(s, &err)) goto fail;
    if (s->ops->outbox_put(s, w->rows, n, &err) || s->ops->delivery_put(s, w->logs, n, &err) ||
        s->ops->commit(s, &err)) {
        s->ops->rollback(s);
        goto fail;
    }
    while (w->done) {
        job *j = w->done;
        w->done = j->next;
        if (j->row.status == HR_OUTBOX_DELIVERED) atomic_fetch_add(&w->n_delivered, 1);
        else if (j->row.status == HR_OUTBOX_DEAD) atomic_fetch_add(&w->n_dead, 1);
        else {
            atomic_fetch_add(&w->n_retried, 1);
            if (j->row.next_at_ms < w->next_due_ms) w->next_due_ms = j->row.next_at_ms;
        }
        job_recycle(w, j);
    }
    w->done_tail = &w->done;
    w->ndone = 0;
    return 0;
fail:
    atomic_fetch_add(&w->n_store_errors, 1);
    return -1;
}

typedef struct fetch_ctx {
    hr_webhooks *w;
    const hr_webhook_policy *pol;
    int64_t now;
    int want, seen, started, stopped;
} fetch_ctx;

static int fetch_row(void *ud, const hr_outbox_rec *r) {
    fetch_ctx *c = ud;
    c->seen++;
    if (hr_map_get(c->w->inflight, r->id)) return 0;
    if (r->next_at_ms > c->now || c->want == 0) {
        /* soonest first: nothing after this row is due earlier */
        c->w->next_due_ms = r->next_at_ms;
        c->stopped = 1;
        return 1;
    }
    if (start(c->w, r, c->pol, c->now)) {
        c->w->next_due_ms = c->now + STORE_RETRY_MS; /* out of memory: try again soon */
        c->stopped = 1;
        return 1;
    }
    c->want--;
    c->started++;
    return 0;
}

/* Starts up to `want` due rows that are not in flight; how many. Also
 * learns when the next row is due. */
static int fetch(hr_webhooks *w, const hr_webhook_policy *pol, int want, int64_t now) {
    hr_store *s = w->store;
    hr_err err = {0};
    /* the rows in flight are still pending on disk and come first: ask for
     * enough to see `want` others */
    int limit = w->ninflight + want + 1;
    fetch_ctx c = {w, pol, now, want, 0, 0, 0};
    int rc = s->ops->outbox_due(s, INT64_MAX, limit, fetch_row, &c, &err);
    if (rc < 0 && !c.stopped) {
        atomic_fetch_add(&w->n_store_errors, 1);
        w->next_due_ms = now + STORE_RETRY_MS;
    } else if (!c.stopped) {
        w->next_due_ms = c.seen >= limit ? now : INT64_MAX;
    }
    return c.started;
}

static void *run(void *arg) {
    hr_webhooks *w = arg;
    hr_webhook_policy pol;
    while (!atomic_load(&w->stop)) {
        pthread_mutex_lock(&w->mu);
        pol = w->policy;
        pthread_mutex_unlock(&w->mu);
        if (w->maxconnects != pol.concurrency) {
            w->maxconnects = pol.concurrency;
            curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, w->maxconnects);
        }
        int running = 0;
        curl_multi_perform(w->multi, &running);
        int finished = collect(w, &pol);
        int64_t now = hr_time_now_ms();
        if (w->ndone) flush(w);
        int room = pol.concurrency - w->ninflight;
        /* never read due rows while outcomes wait to be written: those rows
         * are still pending on disk and would be sent again */
        if (!w->ndone && room > 0 &&
            (atomic_load(&w->kicked) || finished || now >= w->next_due_ms ||
             now - w->last_scan_ms >= RESCAN_MS)) {
            atomic_store(&w->kicked, 0);
            w->last_scan_ms = now;
            int started = fetch(w, &pol, room, now);
            atomic_store(&w->n_inflight, w->ninflight);
            if (started || w->ndone) continue;
        }
        atomic_store(&w->n_inflight, w->ninflight);
        int64_t wait = RESCAN_MS - (now - w->last_scan_ms);
        if (w->ndone) wait = STORE_RETRY_MS;
        else if (pol.concurrency > w->ninflight && w->next_due_ms - now < wait)
            wait = w->next_due_ms - now;
        if (wait < 0) wait = 0;
        if (wait > RESCAN_MS) wait = RESCAN_MS;
        curl_multi_poll(w->multi, NULL, 0, (int)wait, NULL);
    }
    /* what finished is recorded; what is in flight stays pending on disk */
    collect(w, &pol);
    flush(w);
    return NULL;
}

/* ---- the API -------------------------------------------------------------- */

int hr_webhooks_new(hr_store *store, const hr_webhook_policy *policy, hr_webhooks **out,
                    hr_err *err) {
    hr_webhooks *w = NULL;
    int ret = 0;
    *out = NULL;
    if (!store) return hr_err_set(err, HR_EINVAL, "webhooks need a store");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return hr_err_set(err, HR_EINTERNAL, "libcurl initialisation failed");
    if (!(w = calloc(1, sizeof *w))) {
        curl_global_cleanup();
        return hr_err_set(err, HR_ENOMEM, "out of memory");
    }
    w->store = store;
    w->policy = policy ? *policy : defaults;
    normalise(&w->policy);
    pthread_mutex_init(&w->mu, NULL);
    w->done_tail = &w->done;
    w->next_due_ms = 0;
    if (!(w->inflight = hr_map_new((size_t)MAX_CONCURRENCY)) || !(w->multi = curl_multi_init())) {
        ret = hr_err_set(err, HR_ENOMEM, "out of memory");
        goto out;
    }
    *out = w;
out:
    if (ret) hr_webhooks_free(w);
    return ret;
}

int hr_webhooks_start(hr_webhooks *w, hr_err *err) {
    if (w->started) return 0;
    if (pthread_create(&w->thread, NULL, run, w))
        return hr_err_set(err, HR_EINTERNAL, "cannot start the webhook thread");
    w->started = 1;
    return 0;
}

void hr_webhooks_free(hr_webhooks *w) {
    if (!w) return;
    if (w->started) {
        atomic_store(&w->stop, 1);
        curl_multi_wakeup(w->multi);
        pthread_join(w->thread, NULL);
    }
    if (w->inflight) {
        size_t pos = 0;
        const char *k;
        void *v;
        while (hr_map_next(w->inflight, &pos, &k, &v)) {
            job *j = v;
            curl_multi_remove_handle(w->multi, j->easy);
            job_free(j);
        }
        hr_map_free(w->inflight);
    }
    for (job *j = w->done, *n; j; j = n) n = j->next, job_free(j);
    for (job *j = w->spare, *n; j; j = n) n = j->next, job_free(j);
    if (w->multi) curl_multi_cleanup(w->multi);
    free(w->rows);
    free(w->logs);
    pthread_mutex_destroy(&w->mu);
    free(w);
    curl_global_cleanup();
}

void hr_webhooks_set_policy(hr_webhooks *w, const hr_webhook_policy *policy) {
    hr_webhook_policy p = policy ? *policy : defaults;
    normalise(&p);
    pthread_mutex_lock(&w->mu);
    w->policy = p;
    pthread_mutex_unlock(&w->mu);
    hr_webhooks_kick(w);
}

void hr_webhooks_kick(hr_webhooks *w) {
    if (!w) return;
    atomic_store(&w->kicked, 1);
    curl_multi_wakeup(w->multi);
}

void hr_webhooks_stats(hr_webhooks *w, hr_webhook_stats *out) {
    out->attempts = atomic_load(&w->n_attempts);
    out->delivered = atomic_load(&w->n_delivered);
    out->retried = atomic_load(&w->n_retried);
    out->dead = atomic_load(&w->n_dead);
    out->store_errors = atomic_load(&w->n_store_errors);
    out->in_flight = atomic_load(&w->n_inflight);
}

/* ---- replay --------------------------------------------------------------- */

typedef struct replay_ctx {
    job *copy; /* a job used only as a holder of the row's strings */
} replay_ctx;

static int replay_row(void *ud, const hr_outbox_rec *r) {
    replay_ctx *c = ud;
    const char *s[] = {r->id, r->url, r->secrets, r->body, r->playbook, r->account, r->last_error};
    size_t total = 0;
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) total += s[i] ? strlen(s[i]) + 1 : 0;
    if (!(c->copy = calloc(1, sizeof *c->copy)) || !(c->copy->mem = malloc(total ? total : 1)))
        return HR_ENOMEM;
    char *p = c->copy->mem;
    hr_outbox_rec *d = &c->copy->row;
    *d = *r;
    d->id = dup_into(&p, r->id);
    d->url = dup_into(&p, r->url);
    d->secrets = dup_into(&p, r->secrets);
    d->body = dup_into(&p, r->body);
    d->playbook = dup_into(&p, r->playbook);
    d->account = dup_into(&p, r->account);
    d->last_error = dup_into(&p, r->last_error);
    return 1;
}

int hr_webhooks_replay(hr_store *s, const char *id, int64_t now_ms, hr_err *err) {
    replay_ctx c = {NULL};
    int ret, began = 0;
    /* one transaction, so the delivery thread cannot write an older
     * outcome between the read and the write */
    if ((ret = s->ops->begin(s, err))) goto out;
    began = 1;
    ret = s->ops->outbox_get(s, id, replay_row, &c, err);
    if (ret == HR_ENOMEM || (c.copy && !c.copy->mem)) {
        ret = hr_err_set(err, HR_ENOMEM, "out of memory");
        goto out;
    }
    if (ret < 0) goto out;
    if (!c.copy) {
        ret = hr_err_set(err, HR_ENOTFOUND, "no webhook '%s'", id);
        goto out;
    }
    c.copy->row.status = HR_OUTBOX_PENDING;
    c.copy->row.attempts = 0;
    c.copy->row.next_at_ms = now_ms;
    if ((ret = s->ops->outbox_put(s, &c.copy->row, 1, err))) goto out;
    if ((ret = s->ops->commit(s, err))) goto out;
    began = 0;
out:
    if (ret && began) s->ops->rollback(s);
    if (c.copy) free(c.copy->mem);
    free(c.copy);
    return ret;
}
