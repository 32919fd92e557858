/* import.c: POST /v1/import, the bulk path behind `headroom import`:
 * Segment messages as JSON lines (application/x-ndjson), parsed once, here.
 *
 * The client sends a file's lines as they are, a chunk at a time, and says
 * in X-Headroom-Import-Line which line of the file the chunk starts at, so
 * that bad lines are reported by their number in the file and a message
 * without a messageId gets a stable one ("import-HASH-LINE", from its text
 * and line number): a chunk sent again after an interruption counts nothing
 * twice. A line without "type" is a track event (exports from analytics
 * tools often leave it out). Bad lines are skipped and reported; the good
 * ones are ingested as one batch (group commit, dedup, meters, history), so
 * a 200 means every good line is durable. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "err.h"
#include "events/segment.h"
#include "map.h"
#include "timeutil.h"

/* Line numbers past this would overflow counting on through a body. */
#define HR_IMPORT_LINE_MAX 1000000000000000LL

/* One bad line, as {"line":N,"message":"..."}. */
__attribute__((format(printf, 4, 5)))
static void bad_line(hr_buf *errs, int *nerr, long long line, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if ((*nerr)++) hr_buf_putc(errs, ',');
    hr_buf_printf(errs, "{\"line\":%lld,\"message\":", line);
    hr_buf_json_str(errs, msg);
    hr_buf_putc(errs, '}');
}

/* Reads and checks one line into m (without a json-c tree: hr_msg_scan);
 * on a bad line reports it and returns -1. m is disposed by the caller
 * either way. */
static int parse_line(char *ln, size_t len, long long line, int64_t now_ms, hr_msg *m,
                      hr_buf *errs, int *nerr) {
    hr_err e = {0};
    if (len > HR_MSG_MAX_BYTES) {
        bad_line(errs, nerr, line, "a message is at most 32 KB, this line is %zu bytes", len);
        return -1;
    }
    if (hr_msg_scan(ln, len, HR_MSG_OWN_TYPE_OR_TRACK, 0, now_ms, m, &e)) {
        bad_line(errs, nerr, line, "%s", e.code == HR_EINVAL && !strcmp(e.message, "a message must be a JSON object")
                                             ? "a line must be a JSON object" : e.message);
        return -1;
    }
    if (!m->message_id) { /* "import-" + 16 hex digits + "-" + at most 16 digits */
        char *id = hr_msg_room(m, 48);
        if (!id) {
            bad_line(errs, nerr, line, "out of memory");
            return -1;
        }
        snprintf(id, 48, "import-%016llx-%lld", (unsigned long long)hr_hash(ln, len), line);
        m->message_id = id;
        m->id_hash = hr_hash(id, strlen(id)); /* as hr_msg_finish does for a sent id */
    }
    return 0;
}

void hr_api_seg_import(hr_req *r) {
    if (!hr_api_write_key_ok(r, NULL))
        return hr_reply_error(r, 401, "unauthorized",
                              "send the write key as the HTTP Basic user name (or the secret key)");
    long long first = 1;
    const char *h = hr_req_header(r, "X-Headroom-Import-Line");
    if (h) {
        char *end;
        first = strtoll(h, &end, 10);
        if (end == h || *end || first < 1 || first > HR_IMPORT_LINE_MAX)
            return hr_reply_error(r, 400, "invalid_request",
                                  "X-Headroom-Import-Line must be a line number (1 or more, at most 10^15)");
    }
    size_t nlines = 1;
    for (const char *p = r->body; (p = memchr(p, '\n', r->body_len - (size_t)(p - r->body))); p++)
        nlines++;
    hr_msg *msgs = calloc(nlines, sizeof *msgs);
    int *status = calloc(nlines, sizeof *status);
    hr_buf errs;
    hr_buf_init(&errs);
    int n = 0, nerr = 0;
    if (!msgs || !status) {
        hr_reply_error(r, 500, "internal", "out of memory");
        goto out;
    }
    int64_t now_ms = hr_time_now() * 1000;
    char *p = r->body, *end = r->body + r->body_len;
    for (long long line = first; p < end; line++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl ? nl : end;
        size_t len = (size_t)(stop - p);
        if (len && p[len - 1] == '\r') len--;
        p[len] = 0; /* the line is the stored text: end it */
        char *ln = p;
        p = nl ? nl + 1 : end;
        if (!len) continue;
        if (!parse_line(ln, len, line, now_ms, &msgs[n], &errs, &nerr))
            n++;
        else
            hr_msg_dispose(&msgs[n]);
    }
    hr_api_seg_ingest(r, msgs, n, status, now_ms, &errs, nerr);
out:
    for (int i = 0; msgs && i < n; i++) hr_msg_dispose(&msgs[i]);
    free(msgs);
    free(status);
    hr_buf_dispose(&errs);
}
