/* import.c: `headroom import FILE.jsonl` (or - for stdin): historical events
 * in Segment's format, one message a line, sent to a running headroomd's
 * /v1/import over keep-alive connections.
 *
 * The lines go as they are, in chunks of whole lines under the server's
 * body limit: the server parses each once, reports bad lines by their
 * number in the file (X-Headroom-Import-Line tells it where a chunk
 * starts) and gives a message without a messageId one derived from its
 * text and line. So an interrupted import counts nothing twice: a re-sent
 * chunk is deduplicated, and after each acknowledged chunk the byte offset
 * reached is saved in FILE.import-state, where an interrupted import
 * resumes. On a terminal a progress bar shows rate and ETA. Up to INFLIGHT
 * chunks are on the wire at once (curl multi), so the server parses and
 * commits while this reads on; the state file only moves past a chunk once
 * it and every older one are acknowledged. */
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

/* A chunk of whole lines: under headroomd's default body limit (1 MB). */
#define CHUNK_BYTES (900 * 1024)
/* Chunks on the wire at once: the server commits concurrent requests
 * together (group commit) and parses them on other threads while this
 * process reads on; enough (~21 MB) that it keeps folding while its
 * writer is busy with meters and history (24: +10% over 4 on 10M
 * events). */
#define INFLIGHT 24
#define QUEUE (2 * INFLIGHT) /* sent and answered, waiting for the older ones */
#define ATTEMPTS 5

/* One request: the lines it carries, and where the file stands after them
 * (the state file may only move past it once every older chunk is in). */
typedef struct batch {
    CURL *curl;
    struct curl_slist *hdr;
    hr_buf body, resp;
    long long first, line; /* its first line's number; the last line in it */
    off_t end;
    int active, done, attempt;
    double retry_at;
} batch;

typedef struct importer {
    CURLM *multi;
    char *url, userpwd[600];
    const char *path; /* for messages: the file's name */
    batch q[QUEUE];   /* a ring: oldest at head */
    int head, count, active, tty;
    const char *state;
    long long sent, dups, bad;
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
    if (snprintf(tmp, sizeof tmp, "%s.tmp", state) >= (int)sizeof tmp) return -1;
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    fprintf(f, "%lld %lld\n", (long long)offset, line);
    if (fclose(f)) return -1;
    return rename(tmp, state);
}

static int start(importer *im, batch *b) {
    hr_buf_reset(&b->resp);
    if (!b->curl && !(b->curl = curl_easy_init())) return -1;
    char h[64];
    snprintf(h, sizeof h, "X-Headroom-Import-Line: %lld", b->first);
    curl_slist_free_all(b->hdr);
    if (!(b->hdr = curl_slist_append(NULL, "Content-Type: application/x-ndjson")) ||
        !curl_slist_append(b->hdr, h))
        return -1;
    curl_easy_setopt(b->curl, CURLOPT_URL, im->url);
    curl_easy_setopt(b->curl, CURLOPT_HTTPHEADER, b->hdr);
    curl_easy_setopt(b->curl, CURLOPT_USERPWD, im->userpwd);
    curl_easy_setopt(b->curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(b->curl, CURLOPT_WRITEDATA, &b->resp);
    curl_easy_setopt(b->curl, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(b->curl, CURLOPT_POSTFIELDS, b->body.data);
    curl_easy_setopt(b->curl, CURLOPT_POSTFIELDSIZE, (long)b->body.len);
    curl_easy_setopt(b->curl, CURLOPT_PRIVATE, b);
    if (curl_multi_add_handle(im->multi, b->curl) != CURLM_OK) return -1;
    b->active = 1;
    im->active++;
    return 0;
}

/* An answer: counted when acknowledged (bad lines printed with their
 * numbers); a connection error or 5xx is retried later (the ids make that
 * safe); a refusal ends the import. */
static int finish(importer *im, batch *b, CURLcode cc) {
    long status = 0;
    curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(im->multi, b->curl);
    b->active = 0;
    im->active--;
    if (cc == CURLE_OK && status == 200) {
        json_object *r = json_tokener_parse(b->resp.data ? b->resp.data : "");
        json_object *v, *errs;
        long long acc = 0, dups = 0;
        if (json_object_object_get_ex(r, "accepted", &v)) acc = json_object_get_int64(v);
        if (json_object_object_get_ex(r, "duplicates", &v)) dups = json_object_get_int64(v);
        if (json_object_object_get_ex(r, "errors", &errs)) {
            for (size_t i = 0, n = json_object_array_length(errs); i < n; i++) {
                json_object *e = json_object_array_get_idx(errs, i), *ln, *msg;
                json_object_object_get_ex(e, "line", &ln);
                json_object_object_get_ex(e, "message", &msg);
                fprintf(stderr, "%s%s:%lld: %s\n", im->tty ? "\r" : "", im->path,
                        (long long)json_object_get_int64(ln), json_object_get_string(msg));
                im->bad++;
            }
        }
        json_object_put(r);
        im->sent += acc + dups;
        im->dups += dups;
        b->done = 1;
        return 0;
    }
    if (cc == CURLE_OK && status >= 400 && status < 500 && status != 408 && status != 429) {
        fprintf(stderr, "\nheadroom import: the server refused a chunk (%ld): %s\n", status,
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

/* Drives the transfers until the queue has room for one more chunk (need
 * 1) or is empty (need 0); saves the state past every answered chunk at
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
            b->done = 0, b->attempt = 0, b->retry_at = 0;
            hr_buf_reset(&b->body);
            im->head = (im->head + 1) % QUEUE;
            im->count--;
        }
        if (need ? im->count < QUEUE && im->active < INFLIGHT : !im->count) return 0;
        curl_multi_poll(im->multi, NULL, 0, 100, NULL);
    }
}

/* Sends lines [first, last] (the bytes in data, ending at file offset end)
 * once the queue has room. */
static int send_chunk(importer *im, const char *data, size_t len, long long first, long long last,
                      off_t end) {
    if (pump(im, 1)) return -1;
    batch *b = &im->q[(im->head + im->count) % QUEUE];
    im->count++;
    hr_buf_reset(&b->body);
    hr_buf_append(&b->body, data, len);
    if (b->body.len != len) return -1; /* out of memory */
    b->first = first;
    b->line = last;
    b->end = end;
    return start(im, b);
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
        printf("imported %lld events (%lld already there, %lld bad lines skipped) from %lld lines "
               "in %.1fs, %.0f events/s\n",
               im->sent - im->dups, im->dups, im->bad, line, el, rate);
}

static long long count_lines(const char *p, size_t n) {
    long long k = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))); p++) k++;
    return k;
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
    long long line = 0; /* lines read so far */
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
    im.state = statep;
    im.path = is_stdin ? "stdin" : path;
    hr_buf u;
    hr_buf_init(&u);
    hr_buf_printf(&u, "%s/v1/import", url);
    im.url = u.data;
    im.multi = curl_multi_init();
    snprintf(im.userpwd, sizeof im.userpwd, "%s:", key);
    int tty = im.tty = isatty(fileno(stderr)), rc = 0, eof = 0;
    double t0 = now_s(), last = 0;
    /* buf holds [0, have): whole lines go out in chunks, the tail waits */
    size_t cap = 2 * CHUNK_BYTES, have = 0;
    char *buf = malloc(cap);
    if (!buf || !im.multi) {
        fprintf(stderr, "headroom import: out of memory\n");
        rc = -1;
        goto done;
    }
    while (!eof || have) {
        if (!eof && have < CHUNK_BYTES) {
            size_t got = fread(buf + have, 1, cap - have, in);
            have += got;
            if (got == 0) {
                if (ferror(in)) {
                    perror(path);
                    rc = -1;
                    goto done;
                }
                eof = 1;
            }
            continue;
        }
        size_t look = have < CHUNK_BYTES ? have : CHUNK_BYTES, len;
        char *nl = look ? memrchr(buf, '\n', look) : NULL;
        if (nl) {
            len = (size_t)(nl - buf) + 1;
        } else if (eof) {
            len = have; /* the last line, without its newline */
        } else {
            /* no line end in a whole chunk: far over 32 KB; skip to its end */
            char *e;
            while (!(e = memchr(buf, '\n', have))) {
                offset += (off_t)have;
                if (!(have = fread(buf, 1, cap, in))) {
                    eof = 1;
                    break;
                }
            }
            fprintf(stderr, "%s%s:%lld: a message is at most 32 KB, this line is longer\n",
                    tty ? "\r" : "", im.path, line + 1);
            im.bad++;
            line++;
            size_t skip = e ? (size_t)(e - buf) + 1 : have;
            offset += (off_t)skip;
            memmove(buf, buf + skip, have - skip);
            have -= skip;
            continue;
        }
        long long n = count_lines(buf, len) + (buf[len - 1] != '\n');
        offset += (off_t)len;
        if (send_chunk(&im, buf, len, line + 1, line + n, offset)) {
            rc = -1;
            goto done;
        }
        line += n;
        memmove(buf, buf + len, have - len);
        have -= len;
        if (tty && now_s() - last > 0.2) {
            last = now_s();
            progress(&im, line, offset, total, t0, tty, 0);
        }
    }
    if (!(rc = pump(&im, 0))) save_state(statep, offset, line);
done:
    progress(&im, line, offset, total, t0, tty, 1);
    free(buf);
    if (!is_stdin) fclose(in);
    for (int i = 0; i < QUEUE; i++) {
        if (im.q[i].curl) {
            if (im.q[i].active) curl_multi_remove_handle(im.multi, im.q[i].curl);
            curl_easy_cleanup(im.q[i].curl);
        }
        curl_slist_free_all(im.q[i].hdr);
        hr_buf_dispose(&im.q[i].body);
        hr_buf_dispose(&im.q[i].resp);
    }
    if (im.multi) curl_multi_cleanup(im.multi);
    hr_buf_dispose(&u);
    return rc ? 1 : 0;
usage:
    fprintf(stderr, "usage: headroom import [--url URL] [--key WRITE_KEY] [--restart] FILE.jsonl|-\n"
                    "  sends Segment-format lines to headroomd's /v1/import; resumes an interrupted\n"
                    "  import from FILE.import-state (--restart ignores it); the write key also from\n"
                    "  HEADROOM_WRITE_KEY, the URL from HEADROOM_URL\n");
    return 2;
}
