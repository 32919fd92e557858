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
#include "jsonbody.h"
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

/* Parses and checks one line into m (its object into *o, which the caller
 * puts); on a bad line reports it and returns -1. */
static int parse_line(char *ln, size_t len, long long line, int64_t now_ms, json_object **o,
                      hr_msg *m, hr_buf *errs, int *nerr) {
    size_t off;
    char msg[160];
    hr_err e = {0};
    *o = NULL;
    if (len > HR_MSG_MAX_BYTES) {
        bad_line(errs, nerr, line, "a message is at most 32 KB, this line is %zu bytes", len);
        return -1;
    }
    if (hr_json_decode(ln, len, o, &off, msg, sizeof msg)) {
        bad_line(errs, nerr, line, "malformed JSON at byte %zu: %s", off, msg);
        return -1;
    }
    if (!json_object_is_type(*o, json_type_object)) {
        bad_line(errs, nerr, line, "a line must be a JSON object");
        return -1;
    }
    if (!json_object_object_get_ex(*o, "type", NULL))
        json_object_object_add(*o, "type", json_object_new_string("track"));
    if (hr_msg_parse(*o, -1, len, 0, now_ms, m, &e)) {
        bad_line(errs, nerr, line, "%s", e.message);
        return -1;
    }
    if (!m->message_id) {
        char id[64];
        snprintf(id, sizeof id, "import-%016llx-%lld", (unsigned long long)hr_hash(ln, len), line);
        json_object *v = json_object_new_string(id);
        if (!v || json_object_object_add(*o, "messageId", v)) {
            json_object_put(v);
            bad_line(errs, nerr, line, "out of memory");
            return -1;
        }
        m->message_id = json_object_get_string(v);
    }
    m->text = ln;
    m->text_len = len;
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
    json_object **objs = calloc(nlines, sizeof *objs);
    int *status = calloc(nlines, sizeof *status);
    hr_buf errs;
    hr_buf_init(&errs);
    int n = 0, nerr = 0;
    if (!msgs || !objs || !status) {
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
        if (!parse_line(ln, len, line, now_ms, &objs[n], &msgs[n], &errs, &nerr))
            n++;
        else
            json_object_put(objs[n]), objs[n] = NULL;
    }
    hr_api_seg_ingest(r, msgs, n, status, now_ms, &errs, nerr);
out:
    for (int i = 0; objs && i < n; i++) json_object_put(objs[i]);
    free(msgs);
    free(objs);
    free(status);
    hr_buf_dispose(&errs);
}
