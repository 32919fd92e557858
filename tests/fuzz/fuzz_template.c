/* fuzz_template.c: libFuzzer target for playbook templates. The input is
 * a template, optionally followed by a NUL byte and a value that the lookup
 * hands out for some paths, beside fixed hostile values; the same bytes
 * are also tried as a JSON body template.
 *
 * Besides "no crash, no leak, no sanitizer report", it checks the module's
 * promises: a failed compile is HR_ECONFIG with a message and a position
 * inside the text; the placeholder list holds distinct dotted names; SLACK
 * and HTML values add no '<' '>' (nor '"' '\'' in HTML) to the output;
 * JSON mode output, between quotes, parses as a JSON string whenever the
 * template's own text is plain, and decodes to the value exactly; a
 * rendered body parses as JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jsonbody.h"
#include "playbooks/template.h"

static const char *const fixed[] = {
    "Acme \"Corp\"\n",
    "<!channel> <http://evil|click> <@U123>",
    "<script>alert('x')</script> & \"",
    "\xe2\x80\xa8\xe2\x80\xa9\x01\x1f\\",
    "42",
    "-1.5e3",
    "true",
    "null",
    "1e999",
    "\xff\xc3(",
    "",
};

typedef struct {
    const char *value; /* from the input */
    unsigned calls;
} ctx;

static const char *lookup(void *ud, const char *path) {
    ctx *c = ud;
    uint64_t h = 1469598103934665603u;
    for (const char *p = path; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211u;
    unsigned pick = (unsigned)((h + c->calls++) % (sizeof fixed / sizeof fixed[0] + 2));
    if (pick == 0) return NULL;
    if (pick == 1) return c->value;
    return fixed[pick - 2];
}

static size_t count(const char *s, size_t n, const char *set) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] && strchr(set, s[i]) != NULL;
    return k;
}

/* Plain: no byte that would mean something inside a JSON string literal
 * or that could join a value's bytes into something else. */
static int plain(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return 0;
    }
    return 1;
}

static int valid_utf8(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                                : c >= 0xf0 && c <= 0xf4                     ? 4
                                                                             : 0;
        if (!k || i + k > n) return 0;
        for (size_t j = 1; j < k; j++)
            if ((p[i + j] & 0xc0) != 0x80) return 0;
        uint32_t cp = k == 1 ? c
                      : k == 2 ? (uint32_t)(c & 0x1f) << 6 | (p[i + 1] & 0x3f)
                      : k == 3 ? (uint32_t)(c & 0x0f) << 12 | (uint32_t)(p[i + 1] & 0x3f) << 6 |
                                     (p[i + 2] & 0x3f)
                               : (uint32_t)(c & 0x07) << 18 | (uint32_t)(p[i + 1] & 0x3f) << 12 |
                                     (uint32_t)(p[i + 2] & 0x3f) << 6 | (p[i + 3] & 0x3f);
        if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k;
    }
    return 1;
}

/* s between quotes must decode as a JSON string; returns it (caller puts). */
static json_object *as_json_string(const char *s, size_t n) {
    hr_buf q;
    hr_buf_init(&q);
    hr_buf_putc(&q, '"');
    if (n) hr_buf_append(&q, s, n); /* s is NULL when nothing was rendered */
    hr_buf_putc(&q, '"');
    if (hr_buf_failed(&q)) abort();
    json_object *o = NULL;
    size_t off;
    char msg[160];
    if (hr_json_decode(q.data, q.len, &o, &off, msg, sizeof msg) ||
        !json_object_is_type(o, json_type_string))
        abort();
    hr_buf_dispose(&q);
    return o;
}

static void check_template(const char *text, size_t len, const char *value) {
    hr_template *t = NULL;
    hr_err err;
    memset(&err, 0, sizeof err);
    int rc = hr_template_compile(text, len, &t, &err);
    if (rc) {
        if (rc != HR_ECONFIG && rc != HR_ENOMEM) abort();
        if (t || err.code != rc || !err.message[0] || err.line < 1 || err.column < 1) abort();
        size_t lines = 1;
        for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
        if ((size_t)err.line > lines || (size_t)err.column > len + 1) abort();
        return;
    }
    int n = hr_template_nvars(t);
    for (int i = 0; i < n; i++) {
        const char *p = hr_template_var(t, i);
        int line, col;
        if (!p || !*p || *p == '.' || p[strlen(p) - 1] == '.' || strstr(p, "..")) abort();
        if (strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") !=
            strlen(p))
            abort();
        for (int j = 0; j < i; j++)
            if (!strcmp(p, hr_template_var(t, j))) abort();
        if (hr_template_var_pos(t, i, &line, &col) || line < 1 || col < 1) abort();
    }
    if (hr_template_var(t, n) || hr_template_var(t, -1)) abort();

    /* the template's own text: every value missing */
    hr_buf lit, out;
    hr_buf_init(&lit);
    hr_buf_init(&out);
    if (hr_template_render(t, HR_ESC_TEXT, NULL, NULL, &lit)) abort();
    for (int esc = HR_ESC_TEXT; esc <= HR_ESC_HTML; esc++) {
        ctx c = {value, 0};
        hr_buf_reset(&out);
        if (hr_template_render(t, (hr_escape)esc, lookup, &c, &out)) abort();
        if (out.len < lit.len) abort();
        if (esc == HR_ESC_SLACK && count(out.data, out.len, "<>") != count(lit.data, lit.len, "<>"))
            abort();
        if (esc == HR_ESC_HTML &&
            count(out.data, out.len, "<>\"'") != count(lit.data, lit.len, "<>\"'"))
            abort();
        if (esc == HR_ESC_JSON && plain(lit.data, lit.len))
            json_object_put(as_json_string(out.data, out.len));
    }
    hr_buf_dispose(&lit);
    hr_buf_dispose(&out);
    hr_template_free(t);
}

/* The value alone, JSON-escaped, decodes back to itself when it is UTF-8
 * and to valid UTF-8 always. */
static const char *the_value(void *ud, const char *path) {
    (void)path;
    return ud;
}

static void check_value(const char *value) {
    hr_template *t = NULL;
    if (hr_template_compile("{{v}}", 5, &t, NULL)) abort();
    hr_buf out;
    hr_buf_init(&out);
    if (hr_template_render(t, HR_ESC_JSON, the_value, (void *)value, &out)) abort();
    json_object *o = as_json_string(out.data, out.len);
    size_t n = strlen(value), glen = (size_t)json_object_get_string_len(o);
    const char *got = json_object_get_string(o);
    if (!valid_utf8((const unsigned char *)got, glen)) abort();
    if (valid_utf8((const unsigned char *)value, n) && (glen != n || memcmp(got, value, n)))
        abort();
    json_object_put(o);
    hr_buf_dispose(&out);
    hr_template_free(t);
}

static void check_body(const char *text, const char *value) {
    hr_buf out;
    hr_buf_init(&out);
    hr_err err;
    memset(&err, 0, sizeof err);
    ctx c = {value, 0};
    int rc = hr_template_render_json_body(text, lookup, &c, &out, &err);
    if (rc) {
        if (rc != HR_EINVAL && rc != HR_ECONFIG && rc != HR_ENOMEM) abort();
        if (err.code != rc || !err.message[0] || out.len) abort();
    } else {
        json_object *o = NULL;
        size_t off;
        char msg[160];
        if (hr_json_decode(out.data, out.len, &o, &off, msg, sizeof msg)) abort();
        json_object_put(o);
    }
    hr_buf_dispose(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* template, then (after the last NUL) the value */
    const char *text = (const char *)data;
    size_t tlen = size;
    const uint8_t *nul = size ? memrchr(data, 0, size) : NULL;
    char *value = NULL, *body = NULL;
    if (nul) {
        tlen = (size_t)(nul - data);
        value = strndup((const char *)nul + 1, size - tlen - 1);
    } else {
        value = strdup("v<>\"'&\\\n");
    }
    body = strndup(text, tlen);
    if (!value || !body) abort();
    check_template(text, tlen, value);
    check_value(value);
    check_body(body, value);
    free(value);
    free(body);
    return 0;
}
