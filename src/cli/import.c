/* import.c: `headroom import FILE.jsonl` (or - for stdin): historical events
 * in Segment's format, one message a line, sent to a running headroomd as
 * /v1/batch calls over one keep-alive connection.
 *
 * Resumable without double counting: every message keeps (or, when it has
 * none, gets) a messageId derived from its line, so a re-sent batch is
 * deduplicated by the server; and after each acknowledged batch the byte
 * offset reached is saved in FILE.import-state, so an interrupted import
 * starts where it stopped. Bad lines are reported with their numbers and
 * skipped. On a terminal a progress bar shows rate and ETA. */
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

typedef struct importer {
    CURL *curl;
    struct curl_slist *hdr;
    char *url;
    hr_buf body, resp;
    int nbatch;
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

/* Sends the pending batch; 0 when the server acknowledged it. */
static int flush(importer *im) {
    if (!im->nbatch) return 0;
    hr_buf_puts(&im->body, "]}");
    for (int attempt = 0; attempt < 5; attempt++) {
        hr_buf_reset(&im->resp);
        curl_easy_setopt(im->curl, CURLOPT_POSTFIELDS, im->body.data);
        curl_easy_setopt(im->curl, CURLOPT_POSTFIELDSIZE, (long)im->body.len);
        CURLcode cc = curl_easy_perform(im->curl);
        long status = 0;
        curl_easy_getinfo(im->curl, CURLINFO_RESPONSE_CODE, &status);
        if (cc == CURLE_OK && status == 200) {
            json_object *r = json_tokener_parse(im->resp.data ? im->resp.data : "");
            json_object *v;
            if (json_object_object_get_ex(r, "duplicates", &v)) im->dups += json_object_get_int64(v);
            if (json_object_object_get_ex(r, "rejected", &v)) im->rejected += json_object_get_int64(v);
            json_object_put(r);
            im->sent += im->nbatch;
            im->nbatch = 0;
            hr_buf_reset(&im->body);
            return 0;
        }
        if (cc == CURLE_OK && status >= 400 && status < 500 && status != 408 && status != 429) {
            fprintf(stderr, "\nheadroom import: the server refused a batch (%ld): %s\n", status,
                    im->resp.data ? im->resp.data : "");
            return -1;
        }
        /* a connection error or 5xx: wait and retry (the ids make it safe) */
        sleep(1u << attempt);
    }
    fprintf(stderr, "\nheadroom import: %s: giving up after 5 attempts\n", im->url);
    return -1;
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
    hr_buf_init(&im.body);
    hr_buf_init(&im.resp);
    hr_buf u;
    hr_buf_init(&u);
    hr_buf_printf(&u, "%s/v1/batch", url);
    im.url = u.data;
    im.curl = curl_easy_init();
    char userpwd[600];
    snprintf(userpwd, sizeof userpwd, "%s:", key);
    im.hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(im.curl, CURLOPT_URL, im.url);
    curl_easy_setopt(im.curl, CURLOPT_HTTPHEADER, im.hdr);
    curl_easy_setopt(im.curl, CURLOPT_USERPWD, userpwd);
    curl_easy_setopt(im.curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(im.curl, CURLOPT_WRITEDATA, &im.resp);
    curl_easy_setopt(im.curl, CURLOPT_TIMEOUT, 60L);
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
            if (im.nbatch && (im.nbatch >= BATCH_MSGS || im.body.len + len + 2 > BATCH_BYTES)) {
                if ((rc = flush(&im))) {
                    json_object_put(o);
                    goto done;
                }
                save_state(statep, offset, line - 1);
            }
            hr_buf_puts(&im.body, im.nbatch ? "," : "{\"batch\":[");
            hr_buf_append(&im.body, txt, len);
            im.nbatch++;
        }
        json_object_put(o);
        offset = end;
        if (tty && now_s() - last > 0.2) {
            last = now_s();
            progress(&im, line, offset, total, t0, tty, 0);
        }
    }
    if ((rc = flush(&im)) == 0) save_state(statep, offset, line);
done:
    progress(&im, line, offset, total, t0, tty, 1);
    free(ln);
    if (!is_stdin) fclose(in);
    curl_slist_free_all(im.hdr);
    curl_easy_cleanup(im.curl);
    hr_buf_dispose(&im.body);
    hr_buf_dispose(&im.resp);
    hr_buf_dispose(&u);
    return rc ? 1 : 0;
usage:
    fprintf(stderr, "usage: headroom import [--url URL] [--key WRITE_KEY] [--restart] FILE.jsonl|-\n"
                    "  sends Segment-format lines to headroomd's /v1/batch; resumes an interrupted\n"
                    "  import from FILE.import-state (--restart ignores it); the write key also from\n"
                    "  HEADROOM_WRITE_KEY, the URL from HEADROOM_URL\n");
    return 2;
}
