/* test_webhooks.c: signatures (the Standard Webhooks spec's own vector, key
 * rotation, bad secrets), ids, the backoff, replay on a real SQLite file,
 * and the delivery thread against a small HTTP server on loopback in this
 * process: classification of answers, the signed headers, and a stop that
 * leaves a request in flight pending. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "store/store.h"
#include "timeutil.h"
#include "webhooks/webhooks.h"

#define VEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define VEC_TS 1614265330
#define VEC_BODY "{\"test\": 2432232314}"
#define VEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define VEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static int sign(const char *secrets, char *out, size_t n, hr_err *err) {
    return hr_webhook_sign(secrets, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), out, n, err);
}

static void sign_spec_vector(void **state) {
    (void)state;
    char out[256];
    hr_err err = {0};
    assert_int_equal(sign(VEC_SECRET, out, sizeof out, &err), 0);
    assert_string_equal(out, VEC_SIG);
    /* surrounding blanks are not secrets */
    assert_int_equal(sign("  " VEC_SECRET " ", out, sizeof out, &err), 0);
    assert_string_equal(out, VEC_SIG);
}

/* An independent HMAC: the same result through OpenSSL's one-shot HMAC(). */
static void b64_hmac(const void *key, int klen, const char *msg, char *out) {
    unsigned char md[32];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), key, klen, (const unsigned char *)msg, strlen(msg), md, &mdlen);
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, md, (int)mdlen);
}

static void sign_two_secrets(void **state) {
    (void)state;
    /* "c2VjcmV0LXR3by1ieXRlcw==" is base64 of "secret-two-bytes" */
    char out[256], want2[64], msg[128];
    hr_err err = {0};
    assert_int_equal(sign(VEC_SECRET " whsec_c2VjcmV0LXR3by1ieXRlcw==", out, sizeof out, &err), 0);
    snprintf(msg, sizeof msg, "%s.%d.%s", VEC_ID, VEC_TS, VEC_BODY);
    b64_hmac("secret-two-bytes", 16, msg, want2);
    char want[160];
    snprintf(want, sizeof want, "%s %s", VEC_SIG, want2);
    assert_string_equal(out, want);
    /* padding may be left out */
    char out2[256];
    assert_int_equal(sign(VEC_SECRET " whsec_c2VjcmV0LXR3by1ieXRlcw", out2, sizeof out2, &err), 0);
    assert_string_equal(out2, want);
    /* without the prefix a secret is its own bytes */
    assert_int_equal(sign("plain-key", out, sizeof out, &err), 0);
    b64_hmac("plain-key", 9, msg, want2);
    assert_string_equal(out, want2);
    /* no secret: no signature */
    assert_int_equal(sign(NULL, out, sizeof out, &err), 0);
    assert_string_equal(out, "");
    assert_int_equal(sign("   ", out, sizeof out, &err), 0);
    assert_string_equal(out, "");
}

static void sign_bad_secret(void **state) {
    (void)state;
    char out[256];
    hr_err err = {0};
    assert_int_equal(sign("whsec_not*base64!", out, sizeof out, &err), HR_EINVAL);
    assert_int_equal(err.code, HR_EINVAL);
    assert_string_equal(out, "");
    hr_err_clear(&err);
    /* one bad secret spoils the header: a half-signed request helps nobody */
    assert_int_equal(sign(VEC_SECRET " whsec_a", out, sizeof out, &err), HR_EINVAL);
    assert_string_equal(out, "");
    /* too small a buffer */
    assert_int_equal(sign(VEC_SECRET, out, 20, &err), HR_EINVAL);
}

static void new_ids(void **state) {
    (void)state;
    char a[32], b[32];
    hr_webhook_new_id(a, sizeof a);
    hr_webhook_new_id(b, sizeof b);
    assert_int_equal(strlen(a), 30);
    assert_memory_equal(a, "msg_", 4);
    for (const char *p = a + 4; *p; p++)
        assert_non_null(strchr("0123456789abcdefghjkmnpqrstvwxyz", *p));
    assert_string_not_equal(a, b);
}

static void backoff_bounds_and_growth(void **state) {
    (void)state;
    hr_webhook_policy p = {.initial_ms = 1000, .factor = 3, .max_interval_ms = 60000,
                           .max_attempts = 10, .timeout_ms = 1000, .concurrency = 1};
    double prev_mean = 0;
    for (int attempt = 1; attempt <= 8; attempt++) {
        double base = 1000;
        for (int i = 1; i < attempt; i++) base *= 3;
        if (base > 60000) base = 60000;
        int64_t lo = INT64_MAX, hi = 0;
        double sum = 0;
        for (int k = 0; k < 2000; k++) {
            int64_t ms = hr_webhook_backoff(&p, attempt, -1);
            assert_true(ms >= (int64_t)(base * 0.5) && ms < (int64_t)base);
            if (ms < lo) lo = ms;
            if (ms > hi) hi = ms;
            sum += (double)ms;
        }
        /* the jitter spreads over its whole range */
        assert_true(lo < base * 0.55 && hi > base * 0.95);
        double mean = sum / 2000;
        if (base < 60000) assert_true(mean > prev_mean * 2.5); /* grows by the factor */
        else assert_true(mean >= prev_mean * 0.95);             /* then stays at the cap */
        prev_mean = mean;
    }
    /* Retry-After wins when longer, but never past the cap */
    assert_int_equal(hr_webhook_backoff(&p, 1, 5000), 5000);
    assert_true(hr_webhook_backoff(&p, 4, 1000) >= 13500);
    assert_int_equal(hr_webhook_backoff(&p, 1, 3600000), 60000);
    /* far attempts do not overflow */
    assert_true(hr_webhook_backoff(&p, 1000, -1) < 60000);
}

/* ---- a temporary database ---------------------------------------------- */

typedef struct tmpdb {
    char dir[64], path[128];
} tmpdb;

static void tmpdb_make(tmpdb *t) {
    snprintf(t->dir, sizeof t->dir, "/tmp/hr_webhooks_XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/h.db", t->dir);
}

static void tmpdb_remove(tmpdb *t) {
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[160];
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", t->path, suffix[i]);
        unlink(p);
    }
    rmdir(t->dir);
}

static hr_store *open_store(const tmpdb *t) {
    hr_store *s = NULL;
    hr_err err = {0};
    if (hr_store_sqlite_open(t->path, 0, &s, &err)) fail_msg("open: %s", err.message);
    return s;
}

typedef struct got {
    int n;
    int status, attempts, last_code;
    int64_t next_at_ms;
    char last_error[256];
} got;

static int got_row(void *ud, const hr_outbox_rec *r) {
    got *g = ud;
    g->n++;
    g->status = r->status;
    g->attempts = r->attempts;
    g->last_code = r->last_code;
    g->next_at_ms = r->next_at_ms;
    snprintf(g->last_error, sizeof g->last_error, "%s", r->last_error ? r->last_error : "");
    return 0;
}

static got get(hr_store *s, const char *id) {
    got g = {0};
    hr_err err = {0};
    assert_int_equal(s->ops->outbox_get(s, id, got_row, &g, &err), 0);
    return g;
}

static void put(hr_store *s, const char *id, const char *url, int status, int attempts) {
    hr_outbox_rec r = {.id = id, .url = url, .secrets = VEC_SECRET, .body = "{\"n\":1}",
                       .playbook = "pb", .account = "acme", .status = status,
                       .attempts = attempts, .created_ms = hr_time_now_ms(),
                       .next_at_ms = hr_time_now_ms()};
    hr_err err = {0};
    assert_int_equal(s->ops->outbox_put(s, &r, 1, &err), 0);
}

static void replay_resets(void **state) {
    (void)state;
    tmpdb t;
    tmpdb_make(&t);
    hr_store *s = open_store(&t);
    hr_err err = {0};
    put(s, "msg_dead", "http://127.0.0.1:1/", HR_OUTBOX_DEAD, 12);
    put(s, "msg_done", "http://127.0.0.1:1/", HR_OUTBOX_DELIVERED, 3);
    int64_t now = hr_time_now_ms() + 5;
    assert_int_equal(hr_webhooks_replay(s, "msg_dead", now, &err), 0);
    got g = get(s, "msg_dead");
    assert_int_equal(g.n, 1);
    assert_int_equal(g.status, HR_OUTBOX_PENDING);
    assert_int_equal(g.attempts, 0);
    assert_int_equal(g.next_at_ms, now);
    /* the other row is untouched */
    g = get(s, "msg_done");
    assert_int_equal(g.status, HR_OUTBOX_DELIVERED);
    assert_int_equal(g.attempts, 3);
    assert_int_equal(hr_webhooks_replay(s, "msg_nope", now, &err), HR_ENOTFOUND);
    assert_int_equal(err.code, HR_ENOTFOUND);
    hr_store_close(s);
    tmpdb_remove(&t);
}

/* ---- a tiny HTTP server on loopback ------------------------------------- */

typedef struct server {
    int fd, port;
    pthread_t th;
    atomic_int stop, requests, slow_seen;
    char last_id[64], last_ts[32], last_sig[256], last_ua[64], last_body[256];
    int sig_ok;
} server;

static const char *hdr(const char *req, const char *name, char *out, size_t n) {
    const char *p = req;
    size_t len = strlen(name);
    out[0] = '\0';
    while ((p = strstr(p, "\r\n"))) {
        p += 2;
        if (!strncasecmp(p, name, len) && p[len] == ':') {
            p += len + 1;
            while (*p == ' ') p++;
            size_t k = strcspn(p, "\r\n");
            if (k >= n) k = n - 1;
            memcpy(out, p, k);
            out[k] = '\0';
            return out;
        }
    }
    return NULL;
}

/* One request per connection (Connection: close), answered by path. */
static void serve_one(server *sv, int c) {
    char req[8192];
    size_t got_n = 0;
    char *end = NULL;
    long clen = 0;
    while (got_n < sizeof req - 1) {
        ssize_t k = read(c, req + got_n, sizeof req - 1 - got_n);
        if (k <= 0) return;
        got_n += (size_t)k;
        req[got_n] = '\0';
        if (!end && (end = strstr(req, "\r\n\r\n"))) {
            char v[32];
            clen = hdr(req, "Content-Length", v, sizeof v) ? atol(v) : 0;
        }
        if (end && got_n >= (size_t)(end + 4 - req) + (size_t)clen) break;
    }
    if (!end) return;
    atomic_fetch_add(&sv->requests, 1);
    char path[64] = "";
    sscanf(req, "POST %63s", path);
    if (!strcmp(path, "/ok")) {
        hdr(req, "webhook-id", sv->last_id, sizeof sv->last_id);
        hdr(req, "webhook-timestamp", sv->last_ts, sizeof sv->last_ts);
        hdr(req, "webhook-signature", sv->last_sig, sizeof sv->last_sig);
        hdr(req, "User-Agent", sv->last_ua, sizeof sv->last_ua);
        snprintf(sv->last_body, sizeof sv->last_body, "%.*s", (int)clen, end + 4);
        char want[256];
        hr_err err = {0};
        sv->sig_ok = !hr_webhook_sign(VEC_SECRET, sv->last_id, atoll(sv->last_ts), end + 4,
                                      (size_t)clen, want, sizeof want, &err) &&
                     !strcmp(want, sv->last_sig);
    }
    const char *status = "200 OK";
    if (!strcmp(path, "/bad")) status = "400 Bad Request";
    else if (!strcmp(path, "/err")) status = "500 Internal Server Error";
    else if (!strcmp(path, "/redir")) status = "301 Moved Permanently\r\nLocation: /ok";
    else if (!strcmp(path, "/busy")) status = "429 Too Many Requests\r\nRetry-After: 30";
    else if (!strcmp(path, "/date")) {
        static char when[128];
        time_t t = time(NULL) + 4;
        struct tm tm;
        strftime(when, sizeof when,
                 "503 Service Unavailable\r\nRetry-After: %a, %d %b %Y %H:%M:%S GMT",
                 gmtime_r(&t, &tm));
        status = when;
    } else if (!strcmp(path, "/slow")) {
        atomic_store(&sv->slow_seen, 1);
        while (!atomic_load(&sv->stop)) usleep(10000);
        return;
    }
    char resp[256];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 %s\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", status);
    if (write(c, resp, (size_t)n) < 0) return;
}

static void *serve(void *arg) {
    server *sv = arg;
    while (!atomic_load(&sv->stop)) {
        struct pollfd p = {sv->fd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0) continue;
        int c = accept(sv->fd, NULL, NULL);
        if (c < 0) continue;
        serve_one(sv, c);
        close(c);
    }
    return NULL;
}

static void server_start(server *sv) {
    memset(sv, 0, sizeof *sv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    sv->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(sv->fd >= 0);
    assert_int_equal(bind(sv->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(sv->fd, 64), 0);
    assert_int_equal(getsockname(sv->fd, (struct sockaddr *)&a, &len), 0);
    sv->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&sv->th, NULL, serve, sv), 0);
}

static void server_stop(server *sv) {
    atomic_store(&sv->stop, 1);
    pthread_join(sv->th, NULL);
    close(sv->fd);
}

static int count_pending(void *ud, const hr_outbox_rec *r) {
    (void)r;
    ++*(int *)ud;
    return 0;
}

/* Waits until no row is pending (up to ms); the number still pending. */
static int wait_settled(hr_store *s, int ms) {
    int n = 0;
    for (int i = 0; i < ms / 20; i++) {
        hr_err err = {0};
        n = 0;
        assert_int_equal(s->ops->outbox_due(s, INT64_MAX, 100, count_pending, &n, &err), 0);
        if (!n) break;
        usleep(20000);
    }
    return n;
}

typedef struct dlog {
    int n, codes[16], attempts[16];
} dlog;

static int dlog_row(void *ud, const hr_delivery_rec *r) {
    dlog *d = ud;
    if (d->n < 16) d->codes[d->n] = r->code, d->attempts[d->n] = r->attempt;
    d->n++;
    return 0;
}

static dlog deliveries(hr_store *s, const char *id) {
    dlog d = {0};
    hr_err err = {0};
    assert_int_equal(s->ops->delivery_list(s, id, 100, dlog_row, &d, &err), 0);
    return d;
}

static void delivery_outcomes(void **state) {
    (void)state;
    tmpdb t;
    tmpdb_make(&t);
    server sv;
    server_start(&sv);
    hr_store *ws = open_store(&t), *rs = open_store(&t);
    char url[7][64];
    const char *paths[] = {"/ok", "/bad", "/err", "/redir", "/busy", NULL, NULL};
    const char *ids[] = {"msg_ok", "msg_bad", "msg_err", "msg_redir", "msg_busy", "msg_refused",
                         "msg_badsecret"};
    for (int i = 0; i < 5; i++)
        snprintf(url[i], sizeof url[i], "http://127.0.0.1:%d%s", sv.port, paths[i]);
    snprintf(url[5], sizeof url[5], "http://127.0.0.1:1/"); /* nothing listens */
    snprintf(url[6], sizeof url[6], "http://127.0.0.1:%d/ok", sv.port);
    for (int i = 0; i < 7; i++) put(rs, ids[i], url[i], HR_OUTBOX_PENDING, 0);
    hr_outbox_rec bad = {.id = "msg_badsecret", .url = url[6], .secrets = "whsec_***", .body = "{}",
                         .created_ms = hr_time_now_ms(), .next_at_ms = hr_time_now_ms()};
    hr_err err = {0};
    assert_int_equal(rs->ops->outbox_put(rs, &bad, 1, &err), 0);

    hr_webhook_policy p = {.initial_ms = 50, .factor = 2, .max_interval_ms = 2000,
                           .max_attempts = 3, .timeout_ms = 2000, .concurrency = 4};
    hr_webhooks *w = NULL;
    assert_int_equal(hr_webhooks_new(ws, &p, &w, &err), 0);
    assert_int_equal(hr_webhooks_start(w, &err), 0);
    hr_webhooks_kick(w);
    /* all but /busy settle quickly (it waits its Retry-After: 30 s, capped at 2 s) */
    assert_int_equal(wait_settled(rs, 10000), 0);
    hr_webhook_stats st;
    hr_webhooks_stats(w, &st);
    hr_webhooks_free(w);

    got g = get(rs, "msg_ok");
    assert_int_equal(g.status, HR_OUTBOX_DELIVERED);
    assert_int_equal(g.attempts, 1);
    assert_int_equal(g.last_code, 200);
    assert_true(sv.sig_ok);
    assert_string_equal(sv.last_id, "msg_ok");
    assert_string_equal(sv.last_ua, "headroom-webhooks/1");
    assert_string_equal(sv.last_body, "{\"n\":1}");
    assert_true(llabs(atoll(sv.last_ts) - hr_time_now()) < 30);

    g = get(rs, "msg_bad"); /* 4xx: dead at once */
    assert_int_equal(g.status, HR_OUTBOX_DEAD);
    assert_int_equal(g.attempts, 1);
    assert_int_equal(g.last_code, 400);
    g = get(rs, "msg_redir"); /* 3xx: not followed, dead */
    assert_int_equal(g.status, HR_OUTBOX_DEAD);
    assert_int_equal(g.attempts, 1);
    assert_int_equal(g.last_code, 301);
    g = get(rs, "msg_err"); /* 5xx: retried until max_attempts */
    assert_int_equal(g.status, HR_OUTBOX_DEAD);
    assert_int_equal(g.attempts, 3);
    dlog d = deliveries(rs, "msg_err");
    assert_int_equal(d.n, 3);
    for (int i = 0; i < 3; i++) assert_int_equal(d.codes[i], 500);
    assert_int_equal(d.attempts[0], 3); /* newest first */
    assert_int_equal(d.attempts[2], 1);
    g = get(rs, "msg_refused"); /* connection errors retry too */
    assert_int_equal(g.status, HR_OUTBOX_DEAD);
    assert_int_equal(g.attempts, 3);
    assert_int_equal(g.last_code, 0);
    assert_true(g.last_error[0] != '\0');
    g = get(rs, "msg_badsecret");
    assert_int_equal(g.status, HR_OUTBOX_DEAD);
    assert_non_null(strstr(g.last_error, "cannot sign"));
    g = get(rs, "msg_busy"); /* 429 with Retry-After: 30, capped at max_interval */
    assert_int_equal(g.status, HR_OUTBOX_DEAD);
    assert_int_equal(g.attempts, 3);
    assert_int_equal(g.last_code, 429);
    assert_int_equal(st.delivered, 1);
    assert_int_equal(st.dead, 6);

    hr_store_close(ws);
    hr_store_close(rs);
    server_stop(&sv);
    tmpdb_remove(&t);
}

/* Retry-After as an HTTP date: the retry waits until then. */
static void retry_after_date(void **state) {
    (void)state;
    tmpdb t;
    tmpdb_make(&t);
    server sv;
    server_start(&sv);
    hr_store *ws = open_store(&t), *rs = open_store(&t);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/date", sv.port);
    put(rs, "msg_date", url, HR_OUTBOX_PENDING, 0);
    hr_webhook_policy p = {.initial_ms = 50, .factor = 2, .max_interval_ms = 60000,
                           .max_attempts = 5, .timeout_ms = 2000, .concurrency = 4};
    hr_webhooks *w = NULL;
    hr_err err = {0};
    assert_int_equal(hr_webhooks_new(ws, &p, &w, &err), 0);
    assert_int_equal(hr_webhooks_start(w, &err), 0);
    got g = {0};
    for (int i = 0; i < 300 && g.attempts == 0; i++) {
        usleep(10000);
        g = get(rs, "msg_date");
    }
    hr_webhooks_free(w);
    assert_int_equal(g.attempts, 1);
    assert_int_equal(g.status, HR_OUTBOX_PENDING);
    assert_int_equal(g.last_code, 503);
    /* 4 s ahead at whole seconds: at least 3 s away, far past the 50 ms backoff */
    int64_t wait = g.next_at_ms - hr_time_now_ms();
    assert_true(wait > 2500 && wait <= 4500);
    hr_store_close(ws);
    hr_store_close(rs);
    server_stop(&sv);
    tmpdb_remove(&t);
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A stop abandons the request in flight: its row stays pending, unlogged. */
static void stop_leaves_pending(void **state) {
    (void)state;
    tmpdb t;
    tmpdb_make(&t);
    server sv;
    server_start(&sv);
    hr_store *ws = open_store(&t), *rs = open_store(&t);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", sv.port);
    put(rs, "msg_slow", url, HR_OUTBOX_PENDING, 0);
    hr_webhook_policy p = {.initial_ms = 50, .factor = 2, .max_interval_ms = 1000,
                           .max_attempts = 3, .timeout_ms = 30000, .concurrency = 4};
    hr_webhooks *w = NULL;
    hr_err err = {0};
    assert_int_equal(hr_webhooks_new(ws, &p, &w, &err), 0);
    assert_int_equal(hr_webhooks_start(w, &err), 0);
    for (int i = 0; i < 500 && !atomic_load(&sv.slow_seen); i++) usleep(10000);
    assert_true(atomic_load(&sv.slow_seen));
    hr_webhook_stats st;
    hr_webhooks_stats(w, &st);
    assert_int_equal(st.in_flight, 1);
    int64_t t0 = mono_ms();
    hr_webhooks_free(w);
    assert_true(mono_ms() - t0 < 1000);
    got g = get(rs, "msg_slow");
    assert_int_equal(g.status, HR_OUTBOX_PENDING);
    assert_int_equal(g.attempts, 0);
    assert_int_equal(deliveries(rs, "msg_slow").n, 0);
    hr_store_close(ws);
    hr_store_close(rs);
    server_stop(&sv);
    tmpdb_remove(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sign_spec_vector),     cmocka_unit_test(sign_two_secrets),
        cmocka_unit_test(sign_bad_secret),      cmocka_unit_test(new_ids),
        cmocka_unit_test(backoff_bounds_and_growth), cmocka_unit_test(replay_resets),
        cmocka_unit_test(delivery_outcomes),    cmocka_unit_test(retry_after_date),
        cmocka_unit_test(stop_leaves_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
