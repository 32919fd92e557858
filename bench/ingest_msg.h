/* ingest_msg.h: the "API Called" track message shared by bench/ingest_load.c
 * (which sends it to headroomd in POST /v1/batch) and bench/ingest_ref.c
 * (which inserts the same rows straight into SQLite), so that both sides
 * handle rows of the same size and the same random-looking message ids.
 *
 * A message is about 300 bytes, like a real Segment client's:
 *   {"type":"track","event":"API Called","userId":"user_000042_3",
 *    "messageId":"9f3c1a2e-5b7d-4e01-8c6a-0d2f4b6e8a1c",
 *    "timestamp":"2026-11-22T12:00:00.123Z",
 *    "context":{"groupId":"acct_000042","library":{"name":"analytics-node",
 *    "version":"6.2.0"},"ip":"10.0.3.7"},
 *    "properties":{"endpoint":"/v1/boards/1234","method":"GET","status":200,
 *    "duration_ms":37}} */
#ifndef HR_BENCH_INGEST_MSG_H
#define HR_BENCH_INGEST_MSG_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

static inline uint64_t hb_rand(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A UUID-looking id of 128 random bits: 36 characters plus NUL. */
static inline void hb_uuid(uint64_t *s, char out[37]) {
    uint64_t a = hb_rand(s), b = hb_rand(s);
    snprintf(out, 37, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
             (unsigned)a & 0xfff, ((unsigned)(b >> 48) & 0x3fff) | 0x8000,
             (unsigned long long)(b & 0xffffffffffffull));
}

/* "acct_000042": the accounts the benchmark creates, 0 .. accounts-1. */
static inline void hb_account(int i, char out[16]) { snprintf(out, 16, "acct_%06d", i); }

/* Now as RFC 3339 with milliseconds (UTC) and as unix ms. */
static inline int64_t hb_now(char out[32]) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int ms = (int)(ts.tv_nsec / 1000000);
    char day[16];
    strftime(day, sizeof day, "%Y-%m-%d", &tm);
    snprintf(out, 32, "%.10sT%02u:%02u:%02u.%03uZ", day, (unsigned)tm.tm_hour % 24u,
             (unsigned)tm.tm_min % 60u, (unsigned)tm.tm_sec % 61u, (unsigned)ms % 1000u);
    return (int64_t)ts.tv_sec * 1000 + ms;
}

typedef struct hb_msg {
    char id[37], account[16], user[24];
    int len; /* of the JSON text written */
} hb_msg;

/* Writes one message's JSON into out (cap >= 512) with a fresh id; the
 * account is uniformly random among `accounts`. Returns its length. */
static inline int hb_message(uint64_t *s, int accounts, const char *ts, char *out, size_t cap,
                             hb_msg *m) {
    uint64_t r = hb_rand(s);
    int acct = (int)(r % (uint64_t)accounts);
    hb_uuid(s, m->id);
    hb_account(acct, m->account);
    snprintf(m->user, sizeof m->user, "user_%06d_%d", acct, (int)((r >> 32) % 5));
    m->len = snprintf(out, cap,
                      "{\"type\":\"track\",\"event\":\"API Called\",\"userId\":\"%s\","
                      "\"messageId\":\"%s\",\"timestamp\":\"%s\","
                      "\"context\":{\"groupId\":\"%s\",\"library\":{\"name\":\"analytics-node\","
                      "\"version\":\"6.2.0\"},\"ip\":\"10.0.%d.%d\"},"
                      "\"properties\":{\"endpoint\":\"/v1/boards/%d\",\"method\":\"%s\","
                      "\"status\":200,\"duration_ms\":%d}}",
                      m->user, m->id, ts, m->account, (int)((r >> 40) & 255), (int)((r >> 48) & 255),
                      (int)((r >> 8) % 10000), (r >> 56) & 1 ? "GET" : "POST",
                      (int)((r >> 20) % 400) + 3);
    return m->len;
}

#endif
