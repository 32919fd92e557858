/* jsonbody.c: json-c's tokener keeps integers exact (int64) where other
 * parsers turn them into doubles; we add the offset reporting and refuse
 * trailing data, which json_tokener_parse silently ignores. */
#include "jsonbody.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "headroom.h"

static size_t skip_ws(const char *s, size_t i, size_t n) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++;
    return i;
}

/* json-c accepts NaN and Infinity even in strict mode; JSON has neither. */
static int all_finite(json_object *o) {
    switch (json_object_get_type(o)) {
    case json_type_double: return isfinite(json_object_get_double(o));
    case json_type_array:
        for (size_t i = 0, n = json_object_array_length(o); i < n; i++)
            if (!all_finite(json_object_array_get_idx(o, i))) return 0;
        return 1;
    case json_type_object: {
        json_object_object_foreach(o, k, v) {
            (void)k;
            if (!all_finite(v)) return 0;
        }
        return 1;
    }
    default: return 1;
    }
}

/* One tokener per thread, reset for each body: creating one per request
 * costs more than parsing a small body. Freed when its thread exits. */
static pthread_key_t tok_key;
static pthread_once_t tok_once = PTHREAD_ONCE_INIT;

static void tok_free(void *t) { json_tokener_free(t); }
static void tok_init(void) { pthread_key_create(&tok_key, tok_free); }

static json_tokener *thread_tokener(void) {
    pthread_once(&tok_once, tok_init);
    json_tokener *t = pthread_getspecific(tok_key);
    if (!t && (t = json_tokener_new_ex(64)) && pthread_setspecific(tok_key, t)) {
        json_tokener_free(t);
        t = NULL;
    }
    return t;
}

int hr_json_decode(const char *body, size_t len, json_object **out, size_t *offset, char *msg,
                   size_t msglen) {
    *out = NULL;
    *offset = 0;
    size_t start = skip_ws(body, 0, len);
    if (start == len) {
        snprintf(msg, msglen, "empty body");
        return HR_EPARSE;
    }
    if (len > (size_t)1 << 30) {
        snprintf(msg, msglen, "body too large");
        return HR_EPARSE;
    }
    /* json-c's strict mode still takes 'single-quoted' strings: refuse a
     * quote outside a string before it sees one */
    for (size_t i = start, in = 0; i < len; i++) {
        if (in) {
            if (body[i] == '\\') i++;
            else if (body[i] == '"') in = 0;
        } else if (body[i] == '"') {
            in = 1;
        } else if (body[i] == '\'') {
            *offset = i;
            snprintf(msg, msglen, "strings take double quotes, not single quotes");
            return HR_EPARSE;
        }
    }
    json_tokener *tok = thread_tokener();
    if (!tok) {
        snprintf(msg, msglen, "out of memory");
        return HR_ENOMEM;
    }
    json_tokener_reset(tok);
    /* strict: no single quotes, trailing commas or NaN that other JSON
     * parsers would refuse; and valid UTF-8 only */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error je = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (je == json_tokener_continue) {
        /* a top-level number ends only at a delimiter: give it one */
        o = json_tokener_parse_ex(tok, " ", 1);
        je = json_tokener_get_error(tok);
        end = len;
    }
    int rc = 0;
    if (je == json_tokener_success) {
        end = skip_ws(body, end, len);
        if (end < len) {
            *offset = end;
            snprintf(msg, msglen, "unexpected data after the value");
            rc = HR_EPARSE;
        }
    } else if (je == json_tokener_continue) {
        *offset = len;
        snprintf(msg, msglen, "unexpected end of input");
        rc = HR_EPARSE;
    } else {
        *offset = end;
        snprintf(msg, msglen, "%s", json_tokener_error_desc(je));
        rc = HR_EPARSE;
    }
    /* json-c stops at a NUL byte as if the text ended there */
    if (!rc && memchr(body, 0, len)) {
        *offset = (size_t)((const char *)memchr(body, 0, len) - body);
        snprintf(msg, msglen, "NUL byte in body");
        rc = HR_EPARSE;
    }
    if (!rc && !all_finite(o)) {
        *offset = 0;
        snprintf(msg, msglen, "NaN and Infinity are not JSON numbers");
        rc = HR_EPARSE;
    }
    if (rc)
        json_object_put(o);
    else
        *out = o;
    return rc;
}
