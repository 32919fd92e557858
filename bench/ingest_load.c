/* ingest_load.c: the load generator of bench/ingest.sh: POST /v1/batch of
 * "API Called" track messages over keep-alive HTTP/1.1 connections.
 *
 *   build/bench/bench_ingest_load HOST PORT WRITE_KEY EVENTS BATCH CONNS ACCOUNTS
 *
 * One thread, epoll, CONNS connections each with one request in flight
 * (no pipelining), raw sockets and a minimal HTTP/1.1 client (answers must
 * carry Content-Length). Each request carries BATCH messages (the last one
 * what is left of EVENTS), each with a fresh random UUID-like messageId, over
 * ACCOUNTS accounts (acct_000000 ...) via context.groupId: the message of
 * bench/ingest_msg.h, about 300 bytes. The write key goes as the HTTP Basic
 * user name, as Segment's libraries send it. Requests are formatted before
 * being sent, while other connections wait on the server.
 *
 * A request's latency runs from its first byte written to its answer's last
 * byte read. Every answer must be 200 with "accepted" equal to the batch
 * size and no duplicates, orphans or rejects; anything else is printed and
 * the exit status is 1.
 *
 * Prints key=value lines: events, requests, seconds, events_per_s,
 * p50_ms, p90_ms, p99_ms, max_ms, accepted. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ingest_msg.h"

typedef struct conn {
    int fd;
    char *req;
    size_t req_len, req_off;
    char *resp;
    size_t resp_len, resp_cap;
    int batch; /* messages in the request in flight; 0 = idle */
    double t0;
} conn;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *fmt, const char *arg) {
    fprintf(stderr, "bench_ingest_load: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(1);
}

static void b64(const char *in, char *out) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n) v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)in[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long json_int(const char *body, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(body, pat);
    return p ? strtol(p + strlen(pat), NULL, 10) : -1;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: bench_ingest_load HOST PORT WRITE_KEY EVENTS BATCH CONNS ACCOUNTS\n");
        return 2;
    }
    const char *host = argv[1], *port = argv[2], *wk = argv[3];
    long events = strtol(argv[4], NULL, 10);
    int batch = atoi(argv[5]), nconn = atoi(argv[6]), accounts = atoi(argv[7]);
    if (events <= 0 || batch <= 0 || batch > 2500 || nconn <= 0 || accounts <= 0) {
        fprintf(stderr, "bench_ingest_load: bad arguments\n");
        return 2;
    }
    char userpass[256], auth[400];
    snprintf(userpass, sizeof userpass, "%s:", wk);
    b64(userpass, auth);

    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai)) fail("cannot resolve %s", host);
    int ep = epoll_create1(0);
    conn *cs = calloc((size_t)nconn, sizeof *cs);
    size_t body_cap = (size_t)batch * 600 + 256, req_cap = body_cap + 1024;
    char *body = malloc(body_cap);
    for (int i = 0; i < nconn; i++) {
        conn *c = &cs[i];
        c->fd = socket(ai->ai_family, SOCK_STREAM, 0);
        if (c->fd < 0 || connect(c->fd, ai->ai_addr, ai->ai_addrlen)) fail("connect: %s", strerror(errno));
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        c->req = malloc(req_cap);
        c->resp_cap = 65536;
        c->resp = malloc(c->resp_cap);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    freeaddrinfo(ai);

    long nreq_total = (events + batch - 1) / batch;
    double *lat = malloc((size_t)nreq_total * sizeof *lat);
    long sent_events = 0, done_events = 0, nreq = 0, accepted = 0;
    uint64_t seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid() << 20;
    char ts[32];
    hb_now(ts);
    int64_t ts_ms = hb_now(ts);
    double last_ts = now_s(), t_start = last_ts, next_report = t_start + 10;
    (void)ts_ms;
    int active = 0;

    /* Formats the next request on c and starts writing it. */
#define START(c)                                                                                   \
    do {                                                                                           \
        int nb = events - sent_events < batch ? (int)(events - sent_events) : batch;               \
        if (now_s() - last_ts > 0.5) { hb_now(ts); last_ts = now_s(); }                            \
        size_t bl = 0;                                                                             \
        bl += (size_t)snprintf(body + bl, body_cap - bl, "{\"batch\":[");                          \
        hb_msg m;                                                                                  \
        for (int k = 0; k < nb; k++) {                                                             \
            if (k) body[bl++] = ',';                                                               \
            bl += (size_t)hb_message(&seed, accounts, ts, body + bl, body_cap - bl, &m);           \
        }                                                                                          \
        bl += (size_t)snprintf(body + bl, body_cap - bl, "],\"sentAt\":\"%s\"}", ts);              \
        int hl = snprintf((c)->req, req_cap,                                                       \
                          "POST /v1/batch HTTP/1.1\r\nHost: %s:%s\r\nAuthorization: Basic %s\r\n" \
                          "Content-Type: application/json\r\nUser-Agent: bench_ingest_load\r\n"    \
                          "Content-Length: %zu\r\n\r\n",                                           \
                          host, port, auth, bl);                                                   \
        memcpy((c)->req + hl, body, bl);                                                           \
        (c)->req_len = (size_t)hl + bl;                                                            \
        (c)->req_off = 0;                                                                          \
        (c)->resp_len = 0;                                                                         \
        (c)->batch = nb;                                                                           \
        sent_events += nb;                                                                         \
        active++;                                                                                  \
        (c)->t0 = now_s();                                                                         \
    } while (0)

    for (int i = 0; i < nconn && sent_events < events; i++) START(&cs[i]);
    struct epoll_event evs[256];
    while (active > 0) {
        int n = epoll_wait(ep, evs, 256, 30000);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("%s", "no answer from the server for 30 s");
        for (int e = 0; e < n; e++) {
            conn *c = evs[e].data.ptr;
            if (!c->batch) continue;
            /* write what is left of the request */
            while (c->req_off < c->req_len) {
                ssize_t w = write(c->fd, c->req + c->req_off, c->req_len - c->req_off);
                if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                if (w < 0) fail("write: %s", strerror(errno));
                c->req_off += (size_t)w;
            }
            /* read the answer */
            for (;;) {
                if (c->resp_len + 4096 > c->resp_cap) {
                    c->resp_cap *= 2;
                    c->resp = realloc(c->resp, c->resp_cap);
                }
                ssize_t r = read(c->fd, c->resp + c->resp_len, c->resp_cap - c->resp_len - 1);
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                if (r < 0) fail("read: %s", strerror(errno));
                if (r == 0) fail("%s", "the server closed a connection");
                c->resp_len += (size_t)r;
                c->resp[c->resp_len] = 0;
                char *hend = strstr(c->resp, "\r\n\r\n");
                if (!hend) continue;
                *hend = 0;
                char *cl = strcasestr(c->resp, "\r\ncontent-length:");
                size_t hlen = (size_t)(hend - c->resp) + 4;
                if (!cl) fail("answer without Content-Length: %s", c->resp);
                size_t blen = (size_t)strtoul(cl + 17, NULL, 10);
                *hend = '\r';
                if (c->resp_len < hlen + blen) continue;
                if (c->resp_len > hlen + blen) fail("%s", "extra bytes after an answer");
                /* complete */
                double t1 = now_s();
                int status = atoi(c->resp + 9);
                const char *rb = c->resp + hlen;
                long acc = json_int(rb, "accepted");
                if (status != 200 || acc != c->batch || json_int(rb, "duplicates") != 0 ||
                    json_int(rb, "without_account") != 0 || json_int(rb, "rejected") != 0) {
                    fprintf(stderr, "bench_ingest_load: unexpected answer to a batch of %d:\n%s\n",
                            c->batch, c->resp);
                    return 1;
                }
                accepted += acc;
                done_events += c->batch;
                lat[nreq++] = (t1 - c->t0) * 1e3;
                c->batch = 0;
                active--;
                if (t1 >= next_report) {
                    fprintf(stderr, "  ... %ld events in %.0f s (%.0f/s)\n", done_events, t1 - t_start,
                            done_events / (t1 - t_start));
                    next_report += 10;
                }
                if (sent_events < events) {
                    START(c);
                    /* edge-triggered: write now, the socket is writable */
                    while (c->req_off < c->req_len) {
                        ssize_t w = write(c->fd, c->req + c->req_off, c->req_len - c->req_off);
                        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                        if (w < 0) fail("write: %s", strerror(errno));
                        c->req_off += (size_t)w;
                    }
                }
                break;
            }
        }
    }
    double secs = now_s() - t_start;
    qsort(lat, (size_t)nreq, sizeof *lat, cmp_double);
#define PCT(p) lat[(size_t)((p) * (nreq - 1) + 0.5)]
    printf("events=%ld\nrequests=%ld\nseconds=%.3f\nevents_per_s=%.0f\n", done_events, nreq, secs,
           done_events / secs);
    printf("p50_ms=%.2f\np90_ms=%.2f\np99_ms=%.2f\nmax_ms=%.2f\naccepted=%ld\n", PCT(0.50), PCT(0.90),
           PCT(0.99), lat[nreq - 1], accepted);
    for (int i = 0; i < nconn; i++) close(cs[i].fd);
    return 0;
}
