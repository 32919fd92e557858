/* test_template.c: playbook message templates, table-driven: placeholders
 * with and without blanks, literal braces, missing values, every escape mode
 * against hostile values (quotes, control characters, U+2028, Slack links
 * and mentions, HTML), every compile error with its message and
 * line:column, and JSON bodies (nesting, bare numbers, every result parsed
 * back with json-c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "headroom.h"
#include "jsonbody.h"
#include "playbooks/template.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- a lookup over a table of path -> value ------------------------------- */

typedef struct {
    const char *path, *value;
} kv;

typedef struct {
    const kv *kvs;
    size_t n;
    int calls;
    char asked[256]; /* paths asked, joined by ',' */
} world;

static const char *lookup(void *ud, const char *path) {
    world *w = ud;
    w->calls++;
    size_t used = strlen(w->asked);
    snprintf(w->asked + used, sizeof w->asked - used, "%s%s", used ? "," : "", path);
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->kvs[i].path, path)) return w->kvs[i].value;
    return NULL;
}

static hr_template *compile_ok(const char *text) {
    hr_template *t = NULL;
    hr_err err;
    memset(&err, 0, sizeof err);
    int rc = hr_template_compile(text, strlen(text), &t, &err);
    if (rc) fail_msg("compile '%s': %d %d:%d %s", text, rc, err.line, err.column, err.message);
    assert_non_null(t);
    return t;
}

/* Renders text with one value for every path it names (or the table) and
 * returns a malloc'd copy of the output. */
static char *render_kvs(const char *text, hr_escape esc, const kv *kvs, size_t n) {
    hr_template *t = compile_ok(text);
    world w = {kvs, n, 0, ""};
    hr_buf b;
    hr_buf_init(&b);
    assert_int_equal(hr_template_render(t, esc, lookup, &w, &b), 0);
    hr_template_free(t);
    return hr_buf_steal(&b, NULL);
}

static char *render_one(const char *text, hr_escape esc, const char *value) {
    const kv one[] = {{"v", value}};
    return render_kvs(text, esc, one, 1);
}

/* text must be one JSON value; returns it parsed (caller puts it). */
static json_object *parse_json(const char *text) {
    json_object *o = NULL;
    size_t off;
    char msg[160];
    int rc = hr_json_decode(text, strlen(text), &o, &off, msg, sizeof msg);
    if (rc) fail_msg("not JSON at %zu (%s): %s", off, msg, text);
    return o;
}

/* ---- placeholders -------------------------------------------------------------- */

static const kv acme[] = {
    {"account.name", "Acme"},
    {"account.traits.industry", "fintech"},
    {"signal.value", "12"},
    {"signal.playbook", "seat_growth"},
    {"user.email", "jo@acme.com"},
    {"score", "87"},
    {"playbook", "Seat growth"},
};

static void placeholders(void **state) {
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"{{account.name}} added {{signal.value}} users this week: offer onboarding.",
         "Acme added 12 users this week: offer onboarding."},
        {"{{ account.name }} added {{  signal.value\t}} users", "Acme added 12 users"},
        {"{{\taccount.traits.industry }}", "fintech"},
        {"{{score}}{{playbook}}", "87Seat growth"},
        {"[{{signal.playbook}}] {{user.email}}", "[seat_growth] jo@acme.com"},
        {"no placeholders at all", "no placeholders at all"},
        {"", ""},
        {"{{_x.y_2.Z9}}", ""},
        {"caf\xc3\xa9 {{score}} \xe2\x9c\x93", "caf\xc3\xa9 87 \xe2\x9c\x93"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char *got = render_kvs(cases[i].text, HR_ESC_TEXT, acme, N(acme));
        if (strcmp(got, cases[i].want)) fail_msg("'%s' -> '%s'", cases[i].text, got);
        free(got);
    }
}

static void placeholder_list(void **state) {
    (void)state;
    hr_template *t = compile_ok("Hi {{user.email}},\n  {{ account.name }} / {{user.email}}"
                                " {{score}} {{ account.name}}");
    assert_int_equal(hr_template_nvars(t), 3);
    assert_string_equal(hr_template_var(t, 0), "user.email");
    assert_string_equal(hr_template_var(t, 1), "account.name");
    assert_string_equal(hr_template_var(t, 2), "score");
    assert_null(hr_template_var(t, 3));
    assert_null(hr_template_var(t, -1));
    int line = 0, col = 0;
    assert_int_equal(hr_template_var_pos(t, 0, &line, &col), 0);
    assert_int_equal(line, 1);
    assert_int_equal(col, 4);
    assert_int_equal(hr_template_var_pos(t, 1, &line, &col), 0); /* first appearance */
    assert_int_equal(line, 2);
    assert_int_equal(col, 3);
    assert_int_equal(hr_template_var_pos(t, 3, &line, &col), HR_EINVAL);

    /* the lookup is asked once per placeholder, in text order */
    world w = {acme, N(acme), 0, ""};
    hr_buf b;
    hr_buf_init(&b);
    assert_int_equal(hr_template_render(t, HR_ESC_TEXT, lookup, &w, &b), 0);
    assert_string_equal(b.data, "Hi jo@acme.com,\n  Acme / jo@acme.com 87 Acme");
    assert_int_equal(w.calls, 5);
    assert_string_equal(w.asked, "user.email,account.name,user.email,score,account.name");
    hr_buf_dispose(&b);
    hr_template_free(t);

    t = compile_ok("just text");
    assert_int_equal(hr_template_nvars(t), 0);
    assert_null(hr_template_var(t, 0));
    hr_template_free(t);
    hr_template_free(NULL);
    assert_int_equal(hr_template_nvars(NULL), 0);
}

/* The value must be valid only until the next call: one shared buffer. */
static const char *reusing_lookup(void *ud, const char *path) {
    static char buf[64];
    (void)ud;
    snprintf(buf, sizeof buf, "<%s>", path);
    return buf;
}

static void lookup_contract(void **state) {
    (void)state;
    hr_template *t = compile_ok("{{a}}-{{b.c}}-{{a}}");
    hr_buf b;
    hr_buf_init(&b);
    assert_int_equal(hr_template_render(t, HR_ESC_TEXT, reusing_lookup, NULL, &b), 0);
    assert_string_equal(b.data, "<a>-<b.c>-<a>");
    hr_buf_reset(&b);
    assert_int_equal(hr_template_render(t, HR_ESC_HTML, reusing_lookup, NULL, &b), 0);
    assert_string_equal(b.data, "&lt;a&gt;-&lt;b.c&gt;-&lt;a&gt;");
    /* bad arguments; a failed buffer */
    assert_int_equal(hr_template_render(NULL, HR_ESC_TEXT, reusing_lookup, NULL, &b), HR_EINVAL);
    assert_int_equal(hr_template_render(t, (hr_escape)42, reusing_lookup, NULL, &b), HR_EINVAL);
    b.failed = 1;
    assert_int_equal(hr_template_render(t, HR_ESC_TEXT, reusing_lookup, NULL, &b), HR_ENOMEM);
    hr_buf_dispose(&b);
    hr_template_free(t);
}

static void literal_braces(void **state) {
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"{{{{v}}", "{{v}}"},
        {"{{{{ not a placeholder }}", "{{ not a placeholder }}"},
        {"{{{{{{v}}", "{{V"},
        {"{{{{{{{{", "{{{{"},
        {"{{{{{", "{{{"},
        {"a { b } c }} d {", "a { b } c }} d {"},
        {"{\"k\": {\"n\": 1}}", "{\"k\": {\"n\": 1}}"},
        {"{{v}}}", "V}"},
        {"{ {{v}} }", "{ V }"},
        {"}}{{v}}{{", NULL}, /* unterminated: see compile_errors */
    };
    for (size_t i = 0; i < N(cases); i++) {
        if (!cases[i].want) continue;
        char *got = render_one(cases[i].text, HR_ESC_TEXT, "V");
        if (strcmp(got, cases[i].want)) fail_msg("'%s' -> '%s'", cases[i].text, got);
        free(got);
    }
    /* the literal "{{" is not a placeholder */
    hr_template *t = compile_ok("{{{{v}} {{ w }}");
    assert_int_equal(hr_template_nvars(t), 1);
    assert_string_equal(hr_template_var(t, 0), "w");
    hr_template_free(t);
}

static void missing_values(void **state) {
    (void)state;
    static const hr_escape modes[] = {HR_ESC_TEXT, HR_ESC_JSON, HR_ESC_SLACK, HR_ESC_HTML};
    for (size_t m = 0; m < N(modes); m++) {
        char *got = render_kvs("[{{account.name}}|{{nope}}|{{score}}]", modes[m], acme, 1);
        assert_string_equal(got, "[Acme||]");
        free(got);
        hr_template *t = compile_ok("a{{x}}b{{ y.z }}c");
        hr_buf b;
        hr_buf_init(&b);
        assert_int_equal(hr_template_render(t, modes[m], NULL, NULL, &b), 0); /* no lookup */
        assert_string_equal(b.data, "abc");
        hr_buf_dispose(&b);
        hr_template_free(t);
    }
    /* empty string and missing look the same */
    char *got = render_one("<{{v}}>", HR_ESC_JSON, "");
    assert_string_equal(got, "<>");
    free(got);
}

/* Text with a NUL byte or cut short: len is what counts. */
static void explicit_length(void **state) {
    (void)state;
    static const char text[] = "a\0b{{v}}c{{oops";
    hr_template *t = NULL;
    hr_err err;
    assert_int_equal(hr_template_compile(text, 9, &t, &err), 0);
    const kv one[] = {{"v", "V"}};
    world w = {one, 1, 0, ""};
    hr_buf b;
    hr_buf_init(&b);
    assert_int_equal(hr_template_render(t, HR_ESC_TEXT, lookup, &w, &b), 0);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "a\0bVc", 5);
    hr_buf_dispose(&b);
    hr_template_free(t);
    assert_int_equal(hr_template_compile(text, sizeof text - 1, &t, &err), HR_ECONFIG);
    assert_null(t);
    assert_int_equal(hr_template_compile("", 0, &t, NULL), 0);
    assert_int_equal(hr_template_nvars(t), 0);
    hr_template_free(t);
    assert_int_equal(hr_template_compile(NULL, 0, &t, NULL), 0);
    hr_template_free(t);
    assert_int_equal(hr_template_compile(NULL, 3, &t, NULL), HR_EINVAL);
    assert_int_equal(hr_template_compile("x", 1, NULL, NULL), HR_EINVAL);
}

/* ---- escaping ------------------------------------------------------------------------ */

static void escape_modes(void **state) {
    (void)state;
    static const struct {
        hr_escape esc;
        const char *value, *want;
    } cases[] = {
        /* TEXT: as is */
        {HR_ESC_TEXT, "say \"hi\"\n<!channel> & <b>", "say \"hi\"\n<!channel> & <b>"},
        /* JSON: inside a string literal */
        {HR_ESC_JSON, "say \"hi\" \\o/", "say \\\"hi\\\" \\\\o/"},
        {HR_ESC_JSON, "l1\nl2\r\t.", "l1\\u000al2\\u000d\\u0009."},
        {HR_ESC_JSON, "\x01\x08\x0c\x1b\x1f\x7f", "\\u0001\\u0008\\u000c\\u001b\\u001f\x7f"},
        {HR_ESC_JSON, "a\xe2\x80\xa8" "b\xe2\x80\xa9" "c", "a\\u2028b\\u2029c"},
        {HR_ESC_JSON, "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xa7", "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xa7"},
        {HR_ESC_JSON, "bad \xff \xc3( \xe2\x80 \xed\xa0\x80 \xc0\xaf end",
         "bad \\ufffd \\ufffd( \\ufffd\\ufffd \\ufffd\\ufffd\\ufffd \\ufffd\\ufffd end"},
        /* 0xf5..0xff start nothing, even before continuation bytes */
        {HR_ESC_JSON, "\xff\x8b\x9a|\xf5\x80\x80\x80|\xf8\x88\x80\x80\x80",
         "\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd\\ufffd|"
         "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd"},
        {HR_ESC_JSON, "\",\"admin\":true,\"x\":\"", "\\\",\\\"admin\\\":true,\\\"x\\\":\\\""},
        {HR_ESC_JSON, "</script><!channel>", "</script><!channel>"},
        /* SLACK: & < > only, so no links, mentions or channel pings */
        {HR_ESC_SLACK, "<!channel> look", "&lt;!channel&gt; look"},
        {HR_ESC_SLACK, "<http://evil|click>", "&lt;http://evil|click&gt;"},
        {HR_ESC_SLACK, "hi <@U123> and <#C42|general> <!here>",
         "hi &lt;@U123&gt; and &lt;#C42|general&gt; &lt;!here&gt;"},
        {HR_ESC_SLACK, "R&D &amp; \"q\" 'a' *b* _i_", "R&amp;D &amp;amp; \"q\" 'a' *b* _i_"},
        /* HTML: & < > " ' */
        {HR_ESC_HTML, "<img src=x onerror='alert(1)'>", "&lt;img src=x onerror=&#39;alert(1)&#39;&gt;"},
        {HR_ESC_HTML, "\"><script>alert(\"x\")</script>",
         "&quot;&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"},
        {HR_ESC_HTML, "Q&A", "Q&amp;A"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char *got = render_one("{{v}}", cases[i].esc, cases[i].value);
        if (strcmp(got, cases[i].want))
            fail_msg("case %zu (mode %d): '%s' -> '%s', want '%s'", i, cases[i].esc,
                     cases[i].value, got, cases[i].want);
        free(got);
    }
}

/* The template's own text is the author's: never escaped. */
static void literals_as_is(void **state) {
    (void)state;
    char *got = render_one("<!here> <{{v}}|\"link\"> & ", HR_ESC_SLACK, "<!channel>");
    assert_string_equal(got, "<!here> <&lt;!channel&gt;|\"link\"> & ");
    free(got);
    got = render_one("<b title=\"{{v}}\">{{v}}</b>", HR_ESC_HTML, "\" onclick=\"x");
    assert_string_equal(got, "<b title=\"&quot; onclick=&quot;x\">&quot; onclick=&quot;x</b>");
    free(got);
    got = render_one("{\"text\": \"{{v}}\"}\n", HR_ESC_JSON, "a\"b");
    assert_string_equal(got, "{\"text\": \"a\\\"b\"}\n");
    free(got);
}

/* Whatever the value, JSON mode output is the inside of a valid string
 * literal that decodes back to the value (invalid UTF-8 as U+FFFD). */
static void json_mode_round_trip(void **state) {
    (void)state;
    static const struct {
        const char *value, *decoded;
    } cases[] = {
        {"plain", "plain"},
        {"\"\\\"\\\\\"", "\"\\\"\\\\\""},
        {"line\nbreak\r\n\ttab\x01\x1f", "line\nbreak\r\n\ttab\x01\x1f"},
        {"\xe2\x80\xa8\xe2\x80\xa9", "\xe2\x80\xa8\xe2\x80\xa9"},
        {"\xff\xfe", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xf0\x9f\x98", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xfe\xbf\xbf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"\\u0000 \\", "\\u0000 \\"},
        {"\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char *got = render_one("\"{{v}}\"", HR_ESC_JSON, cases[i].value);
        json_object *o = parse_json(got);
        assert_true(json_object_is_type(o, json_type_string));
        if (strcmp(json_object_get_string(o), cases[i].decoded))
            fail_msg("case %zu: %s -> '%s'", i, got, json_object_get_string(o));
        json_object_put(o);
        free(got);
    }
    /* every byte value in one string */
    char all[256];
    for (int c = 1; c < 256; c++) all[c - 1] = (char)c;
    all[255] = 0;
    char *got = render_one("\"{{v}}\"", HR_ESC_JSON, all);
    json_object_put(parse_json(got));
    free(got);
}

/* ---- compile errors ------------------------------------------------------------------ */

static void compile_errors(void **state) {
    (void)state;
    static const struct {
        const char *text;
        int line, col;
        const char *msg;
    } cases[] = {
        {"Hi {{account.name", 1, 4, "unterminated placeholder: '{{' without '}}'"},
        {"ok {{a}}\nthen {{ b }", 2, 6, "unterminated placeholder: '{{' without '}}'"},
        {"}}{{v}}{{", 1, 8, "unterminated placeholder: '{{' without '}}'"},
        {"{{", 1, 1, "unterminated placeholder: '{{' without '}}'"},
        {"{{{{{{", 1, 5, "unterminated placeholder: '{{' without '}}'"},
        {"x {{}}", 1, 3, "empty placeholder"},
        {"\n\n  {{   }}", 3, 3, "empty placeholder"},
        {"{{\t \t}}", 1, 1, "empty placeholder"},
        {"{{ account..name }}", 1, 12, "bad placeholder path: expected a name, not '.'"},
        {"{{ .name }}", 1, 4, "bad placeholder path: expected a name, not '.'"},
        {"{{ 1abc }}", 1, 4, "bad placeholder path: expected a name, not '1'"},
        {"{{ account.2 }}", 1, 12, "bad placeholder path: expected a name, not '2'"},
        {"{{ account. }}", 1, 12, "bad placeholder path: expected a name, not ' '"},
        {"{{account.}}", 1, 11, "bad placeholder path: expected a name before '}}'"},
        {"{{{name}}}", 1, 3, "bad placeholder path: expected a name, not '{'"},
        {"{{ a b }}", 1, 6, "bad placeholder path: unexpected 'b'"},
        {"{{ a-b }}", 1, 5, "bad placeholder path: unexpected '-'"},
        {"{{ account.name | upper }}", 1, 17, "bad placeholder path: unexpected '|'"},
        {"{{ a\n}}", 1, 5, "bad placeholder path: unexpected byte 0x0a"},
        {"{{ a {{ b }}", 1, 6, "bad placeholder path: unexpected '{'"},
        {"ok\r\n{{ .a }}", 2, 4, "bad placeholder path: expected a name, not '.'"},
        /* columns count characters, not bytes */
        {"h\xc3\xa9llo \xe2\x9c\x93 {{ \xc3\xa9t\xc3\xa9 }}", 1, 12,
         "bad placeholder path: expected a name, not byte 0xc3"},
        {"\xf0\x9f\x98\x80{{}}", 1, 2, "empty placeholder"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        hr_template *t = (hr_template *)1;
        hr_err err;
        memset(&err, 0, sizeof err);
        int rc = hr_template_compile(cases[i].text, strlen(cases[i].text), &t, &err);
        if (rc != HR_ECONFIG || t || err.code != HR_ECONFIG || err.line != cases[i].line ||
            err.column != cases[i].col || strcmp(err.message, cases[i].msg))
            fail_msg("case %zu '%s': rc %d, %d:%d '%s'; want %d:%d '%s'", i, cases[i].text, rc,
                     err.line, err.column, err.message, cases[i].line, cases[i].col,
                     cases[i].msg);
        /* err may be NULL */
        assert_int_equal(hr_template_compile(cases[i].text, strlen(cases[i].text), &t, NULL),
                         HR_ECONFIG);
        assert_null(t);
    }
}

/* ---- JSON bodies --------------------------------------------------------------------- */

static const kv hostile[] = {
    {"account.name", "Acme \"Corp\"\n<!channel>"},
    {"score", "87"},
    {"signal.value", "-1.5e3"},
    {"flag", "true"},
    {"none", "null"},
    {"user.email", "jo@acme.com"},
    {"evil", "\",\"admin\":true,\"x\":\""},
};

/* Renders a body; checks the result is JSON; returns it (caller frees). */
static char *body_ok(const char *json, const kv *kvs, size_t n) {
    world w = {kvs, n, 0, ""};
    hr_buf b;
    hr_buf_init(&b);
    hr_err err;
    memset(&err, 0, sizeof err);
    int rc = hr_template_render_json_body(json, lookup, &w, &b, &err);
    if (rc) fail_msg("body %s: %d %d:%d %s", json, rc, err.line, err.column, err.message);
    json_object_put(parse_json(b.data));
    return hr_buf_steal(&b, NULL);
}

static void json_body(void **state) {
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"{\"text\": \"{{account.name}} is hot\", \"score\": \"{{score}}\"}",
         "{\"text\":\"Acme \\\"Corp\\\"\\u000a<!channel> is hot\",\"score\":87}"},
        /* nested objects and arrays; other values copied */
        {"{\"blocks\": [{\"type\": \"section\", \"text\": {\"type\": \"mrkdwn\", \"text\": "
         "\"*{{ account.name }}*\"}}, {\"n\": [1, 2.50, -0.0, 1e3, true, false, null, []]}],"
         " \"meta\": {\"who\": \"{{user.email}}\", \"deep\": [[[\"{{score}}\"]]]}}",
         "{\"blocks\":[{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":"
         "\"*Acme \\\"Corp\\\"\\u000a<!channel>*\"}},{\"n\":[1,2.50,-0.0,1e3,true,false,null,[]]}],"
         "\"meta\":{\"who\":\"jo@acme.com\",\"deep\":[[[87]]]}}"},
        /* bare values only for exactly one placeholder */
        {"[\"{{signal.value}}\", \"{{ flag }}\", \"{{none}}\", \" {{score}}\", \"{{score}}{{score}}\","
         " \"x{{score}}\", \"{{missing}}\", \"{{evil}}\"]",
         "[-1.5e3,true,null,\" 87\",\"8787\",\"x87\",\"\",\"\\\",\\\"admin\\\":true,\\\"x\\\":\\\"\"]"},
        /* a top-level scalar */
        {" \"{{score}}\" ", "87"},
        {"\"hi {{user.email}}\"", "\"hi jo@acme.com\""},
        {"42", "42"},
        {"[]", "[]"},
        {"{}", "{}"},
        /* keys are copied, not rendered */
        {"{\"{{score}}\": \"{{score}}\"}", "{\"{{score}}\":87}"},
        /* the literal text of a string is encoded again */
        {"{\"t\": \"q\\\" b\\\\ n\\n t\\t \\u2028 \\u0001 \\/ {{{{x}} }}\"}",
         "{\"t\":\"q\\\" b\\\\ n\\u000a t\\u0009 \\u2028 \\u0001 / {{x}} }}\"}"},
        {"{\"k\\u2029\\\"\": 1}", "{\"k\\u2029\\\"\":1}"},
        {"{\"big\": 18446744073709551615, \"neg\": -9223372036854775808}",
         "{\"big\":18446744073709551615,\"neg\":-9223372036854775808}"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char *got = body_ok(cases[i].in, hostile, N(hostile));
        if (strcmp(got, cases[i].want))
            fail_msg("case %zu: %s\n  -> %s\n  want %s", i, cases[i].in, got, cases[i].want);
        free(got);
    }
    /* the lookup is asked once per placeholder, bare or not */
    world w = {hostile, N(hostile), 0, ""};
    hr_buf b;
    hr_buf_init(&b);
    assert_int_equal(hr_template_render_json_body(
                         "{\"a\": [\"{{evil}}\", \"{{score}}\", \"x{{score}}\", \"{{nope}}\"]}",
                         lookup, &w, &b, NULL),
                     0);
    assert_int_equal(w.calls, 4);
    assert_string_equal(w.asked, "evil,score,score,nope");
    hr_buf_dispose(&b);
    /* a NUL inside a string survives */
    char *got = body_ok("[\"a\\u0000b{{score}}\"]", hostile, N(hostile));
    assert_string_equal(got, "[\"a\\u0000b87\"]");
    free(got);
}

/* Only JSON's own scalars pass bare; everything else stays a string. */
static void json_body_scalars(void **state) {
    (void)state;
    static const struct {
        const char *value;
        int bare;
    } cases[] = {
        {"0", 1}, {"-0", 1}, {"42", 1}, {"-1.5", 1}, {"1e10", 1}, {"1E-2", 1}, {"2.5e+3", 1},
        {"true", 1}, {"false", 1}, {"null", 1}, {"123456789012345678901234567890", 1},
        {"1e-400", 1},
        {"", 0}, {"01", 0}, {"1.", 0}, {".5", 0}, {"+1", 0}, {" 42", 0}, {"42 ", 0},
        {"1e", 0}, {"1e+", 0}, {"-", 0}, {"0x10", 0}, {"NaN", 0}, {"Infinity", 0},
        {"-Infinity", 0}, {"1e999", 0}, {"True", 0}, {"nul", 0}, {"nulls", 0}, {"1,5", 0},
        {"[1]", 0}, {"{}", 0}, {"\"x\"", 0}, {"1\n", 0},
    };
    for (size_t i = 0; i < N(cases); i++) {
        const kv one[] = {{"v", cases[i].value}};
        char *got = body_ok("[\"{{v}}\"]", one, 1);
        json_object *o = parse_json(got);
        json_object *e = json_object_array_get_idx(o, 0);
        int is_str = json_object_is_type(e, json_type_string);
        if (is_str == cases[i].bare) fail_msg("'%s' -> %s", cases[i].value, got);
        if (is_str) assert_string_equal(json_object_get_string(e), cases[i].value);
        json_object_put(o);
        free(got);
    }
}

static void json_body_errors(void **state) {
    (void)state;
    static const struct {
        const char *in;
        int rc, line, col;
        const char *msg;
    } cases[] = {
        {"{\"a\": 1,\n  \"b\": }", HR_EINVAL, 2, 8, "invalid JSON"},
        {"{} x", HR_EINVAL, 1, 4, "invalid JSON"},
        {"", HR_EINVAL, 1, 1, "invalid JSON: empty body"},
        {"[1, 2", HR_EINVAL, 1, 6, "invalid JSON: unexpected end of input"},
        {"{\"a\" 1}", HR_EINVAL, 1, 6, "invalid JSON"},
        {"[NaN]", HR_EINVAL, 0, 0, "invalid JSON"},
        {"{\"blocks\": [{\"text\": \"hi {{ account.name\"}]}", HR_ECONFIG, 1, 4,
         "string at /blocks/0/text: unterminated placeholder: '{{' without '}}'"},
        {"{\"a/b~c\": \"line\\n{{ x y }}\"}", HR_ECONFIG, 2, 6,
         "string at /a~1b~0c: bad placeholder path: unexpected 'y'"},
        {"\"{{}}\"", HR_ECONFIG, 1, 1, "string at the top level: empty placeholder"},
        {"{\"ok\": \"{{a}}\", \"bad\": [\"fine\", \"{{1}}\"]}", HR_ECONFIG, 1, 3,
         "string at /bad/1: bad placeholder path: expected a name, not '1'"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        hr_buf b;
        hr_buf_init(&b);
        hr_buf_puts(&b, "keep");
        hr_err err;
        memset(&err, 0, sizeof err);
        world w = {hostile, N(hostile), 0, ""};
        int rc = hr_template_render_json_body(cases[i].in, lookup, &w, &b, &err);
        if (rc != cases[i].rc || err.code != rc ||
            strncmp(err.message, cases[i].msg, strlen(cases[i].msg)) ||
            (cases[i].line && (err.line != cases[i].line || err.column != cases[i].col)))
            fail_msg("case %zu %s: rc %d, %d:%d '%s'", i, cases[i].in, rc, err.line, err.column,
                     err.message);
        assert_string_equal(b.data, "keep"); /* out left as it was */
        hr_buf_dispose(&b);
        /* err may be NULL */
        hr_buf_init(&b);
        assert_int_equal(hr_template_render_json_body(cases[i].in, lookup, &w, &b, NULL),
                         cases[i].rc);
        hr_buf_dispose(&b);
    }
    hr_buf b;
    hr_buf_init(&b);
    assert_int_equal(hr_template_render_json_body(NULL, lookup, NULL, &b, NULL), HR_EINVAL);
    hr_buf_dispose(&b);
}

/* A NULL lookup: every value missing; the load-time check of a body. */
static void json_body_validate(void **state) {
    (void)state;
    hr_buf b;
    hr_buf_init(&b);
    hr_err err;
    assert_int_equal(hr_template_render_json_body(
                         "{\"text\": \"{{account.name}} is hot\", \"n\": \"{{score}}\", \"k\": 1}",
                         NULL, NULL, &b, &err),
                     0);
    assert_string_equal(b.data, "{\"text\":\" is hot\",\"n\":\"\",\"k\":1}");
    hr_buf_dispose(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(placeholders),
        cmocka_unit_test(placeholder_list),
        cmocka_unit_test(lookup_contract),
        cmocka_unit_test(literal_braces),
        cmocka_unit_test(missing_values),
        cmocka_unit_test(explicit_length),
        cmocka_unit_test(escape_modes),
        cmocka_unit_test(literals_as_is),
        cmocka_unit_test(json_mode_round_trip),
        cmocka_unit_test(compile_errors),
        cmocka_unit_test(json_body),
        cmocka_unit_test(json_body_scalars),
        cmocka_unit_test(json_body_errors),
        cmocka_unit_test(json_body_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
