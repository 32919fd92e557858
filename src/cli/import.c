/* import.c: `headroom import FILE.jsonl` (or - for stdin): historical events
 * in Segment's format, one message a line, sent to a running headroomd as
 * /v1/batch calls over keep-alive connections.
 *
 * Resumable without double counting: every message keeps (or, when it has
 * none, gets) a messageId derived from its line, so a re-sent batch is
 * deduplicated by the server; and after each acknowledged batch the byte
 * offset reached is saved in FILE.import-state, so an interrupted import
 * starts where it stopped. Bad lines are reported with their numbers and
 * skipped. On a terminal a progress bar shows rate and ETA. Up to INFLIGHT
 * batches are on the wire at once (curl multi), so the server parses and
 * commits while this reads on; the state file only moves past a batch
 * once it and every older one are acknowledged. */
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "err.h"
#include "events/segment.h"
#include "jsonbody.h"
#include "map.h"
#include "timeutil.h"

#define BATCH_MSGS 500
#define BATCH_BYTES (400 * 1024)
/* Batches on the wire at once: the server commits concurrent requests
 * together (group commit) and parses them on other threads while this
 * process reads on. */
#define INFLIGHT 4
#define QUEUE (2 * INFLIGHT) /* sent and answered, waiting for the older ones */
#define ATTEMPTS 5

/* One request: the lines it carries, and where the file stands after them
 * (the state file may only move past it once every older batch is in). */
typedef struct batch {
    CURL *curl;
    hr_buf body, resp;
    int n;
    off_t end;
    long long line;
    int active, done, attempt;
    double retry_at;
} batch;

typedef struct importer {
    CURLM *multi;
    struct curl_slist *hdr;
    char *url, userpwd[600];
    batch q[QUEUE]; /* a ring: oldest at head */
    int head, count, active;
    const char *state;
    long long sent, dups, rejected, bad;
} importer;

static size_t collect(char *p, size_t sz, size_t n, void *ud) {
    hr_buf_append(ud, p, sz * n);
    return sz * n;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int save_state(const char *state, off_t offset, long long line) {
    if (!state) return 0;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", state);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    fprintf(f, "%lld %lld\n", (long long)offset, line);
    if (fclose(f)) return -1;
    return rename(tmp, state);
}

static batch *open_batch(importer *im) { return &im->q[(im->head + im->count - 1) % QUEUE]; }

static int start(importer *im, batch *b) {
    hr_buf_reset(&b->resp);
    if (!b->curl && !(b->curl = curl_easy_init())) return -1;
    curl_easy_setopt(b->curl, CURLOPT_URL, im->url);
    curl_easy_setopt(b->curl, CURLOPT_HTTPHEADER, im->hdr);
    curl_easy_setopt(b->curl, CURLOPT_USERPWD, im->userpwd);
    curl_easy_setopt(b->curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(b->curl, CURLOPT_WRITEDATA, &b->resp);
    curl_easy_setopt(b->curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(b->curl, CURLOPT_POSTFIELDS, b->body.data);
    curl_easy_setopt(b->curl, CURLOPT_POSTFIELDSIZE, (long)b->body.len);
    curl_easy_setopt(b->curl, CURLOPT_PRIVATE, b);
    if (curl_multi_add_handle(im->multi, b->curl) != CURLM_OK) return -1;
    b->active = 1;
    im->active++;
    return 0;
}

/* An answer: counted when acknowledged; a connection error or 5xx is
 * retried later (the ids make that safe); a refusal ends the import. */
static int finish(importer *im, batch *b, CURLcode cc) {
    long status = 0;
    curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(im->multi, b->curl);
    b->active = 0;
    im->active--;
    if (cc == CURLE_OK && status == 200) {
        json_object *r = json_tokener_parse(b->resp.data ? b->resp.data : "");
        json_object *v;
        if (json_object_object_get_ex(r, "duplicates", &v)) im->dups += json_object_get_int64(v);
        if (json_object_object_get_ex(r, "rejected", &v)) im->rejected += json_object_get_int64(v);
        json_object_put(r);
        im->sent += b->n;
        b->done = 1;
        return 0;
    }
    if (cc == CURLE_OK && status >= 400 && status < 500 && status != 408 && status != 429) {
        fprintf(stderr, "\nheadroom import: the server refused a batch (%ld): %s\n", status,
                b->resp.data ? b->resp.data : "");
        return -1;
    }
    if (++b->attempt >= ATTEMPTS) {
        fprintf(stderr, "\nheadroom import: %s: giving up after %d attempts (%s)\n", im->url,
                ATTEMPTS, cc == CURLE_OK ? "server error" : curl_easy_strerror(cc));
        return -1;
    }
    b->retry_at = now_s() + (double)(1u << (b->attempt - 1));
    return 0;
}

/* Drives the transfers until the queue has room for one more batch (need
 * 1) or is empty (need 0); saves the state past every answered batch at
 * the head. */
static int pump(importer *im, int need) {
    for (;;) {
        int running;
        curl_multi_perform(im->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(im->multi, &left)))
            if (msg->msg == CURLMSG_DONE) {
                batch *b = NULL;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&b);
                if (finish(im, b, msg->data.result)) return -1;
            }
        double t = now_s();
        for (int i = 0; i < im->count; i++) {
            batch *b = &im->q[(im->head + i) % QUEUE];
            if (!b->done && !b->active && b->retry_at > 0 && b->retry_at <= t && im->active < INFLIGHT &&
                start(im, b))
                return -1;
        }
        while (im->count && im->q[im->head].done) {
            batch *b = &im->q[im->head];
            save_state(im->state, b->end, b->line);
            b->done = 0, b->n = 0, b->attempt = 0, b->retry_at = 0;
            hr_buf_reset(&b->body);
            im->head = (im->head + 1) % QUEUE;
            im->count--;
        }
        if (need ? im->count < QUEUE && im->active < INFLIGHT : !im->count) return 0;
        curl_multi_poll(im->multi, NULL, 0, 100, NULL);
    }
}

/* Sends the batch being filled (an empty one leaves the queue); with more
 * to come, waits for room and opens the next. */
static int send_open(importer *im, off_t end, long long line, int more) {
    batch *b = open_batch(im);
    if (!b->n) {
        im->count--;
    } else {
        hr_buf_puts(&b->body, "]}");
        b->end = end;
        b->line = line;
        if (start(im, b)) return -1;
    }
    if (pump(im, more)) return -1;
    if (more) im->count++; /* the next, empty */
    return 0;
}

static void progress(const importer *im, long long line, off_t done, off_t total, double t0, int tty,
                     int final) {
    double el = now_s() - t0, rate = el > 0 ? (double)im->sent / el : 0;
    if (!tty && !final) return;
    if (tty) {
        char bar[31];
        double frac = total > 0 ? (double)done / (double)total : 0;
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        double eta = rate > 0 && total > 0 && frac > 0 ? el * (1 - frac) / frac : 0;
        fprintf(stderr, "\r[%s] %5.1f%%  %lld events  %.0f/s  ETA %.0fs   ", bar, frac * 100,
                im->sent, rate, eta);
        if (final) fputc('\n', stderr);
    }
    if (final)
        printf("imported %lld events (%lld already there, %lld refused by the server, %lld bad "
               "lines skipped) from %lld lines in %.1fs, %.0f events/s\n",
               im->sent - im->dups - im->rejected, im->dups, im->rejected, im->bad, line, el, rate);
}

int hr_cmd_import(int argc, char **argv) {
    const char *url = getenv("HEADROOM_URL"), *key = getenv("HEADROOM_WRITE_KEY");
    int restart = 0;
    static struct option opts[] = {{"url", 1, 0, 'u'}, {"key", 1, 0, 'k'},
                                   {"restart", 0, 0, 'r'}, {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "u:k:r", opts, NULL)) != -1) {
        switch (ch) {
        case 'u': url = optarg; break;
        case 'k': key = optarg; break;
        case 'r': restart = 1; break;
        default: goto usage;
        }
    }
    if (argc - optind != 1 || !key) goto usage;
    if (!url) url = "http://127.0.0.1:8080";
    const char *path = argv[optind];
    int is_stdin = !strcmp(path, "-");
    FILE *in = is_stdin ? stdin : fopen(path, "r");
    if (!in) {
        perror(path);
        return 1;
    }
    char state[4096];
    const char *statep = NULL;
    long long line = 0;
    off_t offset = 0, total = 0;
    if (!is_stdin) {
        snprintf(state, sizeof state, "%s.import-state", path);
        statep = state;
        struct stat st;
        if (fstat(fileno(in), &st) == 0) total = st.st_size;
        FILE *sf = restart ? NULL : fopen(state, "r");
        long long off = 0;
        if (sf && fscanf(sf, "%lld %lld", &off, &line) == 2 && off > 0 && off <= total &&
            fseeko(in, off, SEEK_SET) == 0) {
            offset = off;
            fprintf(stderr, "headroom import: resuming at line %lld (%s)\n", line + 1, state);
        } else {
            line = 0;
        }
        if (sf) fclose(sf);
    }
    importer im;
    memset(&im, 0, sizeof im);
    for (int i = 0; i < QUEUE; i++) hr_buf_init(&im.q[i].body), hr_buf_init(&im.q[i].resp);
    im.count = 1; /* the batch being filled */
    im.state = statep;
    hr_buf u;
    hr_buf_init(&u);
    hr_buf_printf(&u, "%s/v1/batch", url);
    im.url = u.data;
    im.multi = curl_multi_init();
    snprintf(im.userpwd, sizeof im.userpwd, "%s:", key);
    im.hdr = curl_slist_append(NULL, "Content-Type: application/json");
    int tty = isatty(fileno(stderr)), rc = 0;
    double t0 = now_s(), last = 0;
    char *ln = NULL;
    size_t cap = 0;
    ssize_t n;
    int64_t now_ms = hr_time_now() * 1000;
    while ((n = getline(&ln, &cap, in)) >= 0) {
        line++;
        off_t end = offset + n;
        while (n > 0 && (ln[n - 1] == '\n' || ln[n - 1] == '\r')) ln[--n] = 0;
        if (n == 0) {
            offset = end;
            continue;
        }
        json_object *o = NULL;
        size_t eoff;
        char msg[160];
        hr_err err = {0};
        hr_msg m;
        const char *why = NULL;
        if (hr_json_decode(ln, (size_t)n, &o, &eoff, msg, sizeof msg)) {
            fprintf(stderr, "%s%s:%lld: malformed JSON at byte %zu: %s\n", tty ? "\r" : "", path,
                    line, eoff, msg);
            im.bad++;
        } else if (!json_object_is_type(o, json_type_object)) {
            why = "a line must be a JSON object";
        } else {
            /* lines exported from an analytics tool may leave out "type" */
            if (!json_object_object_get_ex(o, "type", NULL))
                json_object_object_add(o, "type", json_object_new_string("track"));
            if (hr_msg_parse(o, -1, (size_t)n, 0, now_ms, &m, &err)) why = err.message;
        }
        if (why) {
            fprintf(stderr, "%s%s:%lld: %s\n", tty ? "\r" : "", path, line, why);
            im.bad++;
        } else if (o) {
            if (!m.message_id) { /* stable per line: a resumed import re-sends the same id */
                char id[64];
                snprintf(id, sizeof id, "import-%016llx-%lld",
                         (unsigned long long)hr_hash(ln, (size_t)n), line);
                json_object_object_add(o, "messageId", json_object_new_string(id));
            }
            size_t len = 0;
            const char *txt = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
            batch *b = open_batch(&im);
            if (b->n && (b->n >= BATCH_MSGS || b->body.len + len + 2 > BATCH_BYTES)) {
                if ((rc = send_open(&im, offset, line - 1, 1))) {
                    json_object_put(o);
                    goto done;
                }
                b = open_batch(&im);
            }
            hr_buf_puts(&b->body, b->n ? "," : "{\"batch\":[");
            hr_buf_append(&b->body, txt, len);
            b->n++;
        }
        json_object_put(o);
        offset = end;
        if (tty && now_s() - last > 0.2) {
            last = now_s();
            progress(&im, line, offset, total, t0, tty, 0);
        }
    }
    if (!(rc = send_open(&im, offset, line, 0)))
        save_state(statep, offset, line); /* past trailing blank or bad lines */
done:
    progress(&im, line, offset, total, t0, tty, 1);
    free(ln);
    if (!is_stdin) fclose(in);
    for (int i = 0; i < QUEUE; i++) {
        if (im.q[i].curl) {
            if (im.q[i].active) curl_multi_remove_handle(im.multi, im.q[i].curl);
            curl_easy_cleanup(im.q[i].curl);
        }
        hr_buf_dispose(&im.q[i].body);
        hr_buf_dispose(&im.q[i].resp);
    }
    curl_multi_cleanup(im.multi);
    curl_slist_free_all(im.hdr);
    hr_buf_dispose(&u);
    return rc ? 1 : 0;
usage:
    fprintf(stderr, "usage: headroom import [--url URL] [--key WRITE_KEY] [--restart] FILE.jsonl|-\n"
                    "  sends Segment-format lines to headroomd's /v1/batch; resumes an interrupted\n"
                    "  import from FILE.import-state (--restart ignores it); the write key also from\n"
                    "  HEADROOM_WRITE_KEY, the URL from HEADROOM_URL\n");
    return 2;
}
