/* template.h: message templates for playbooks and webhooks.
 *
 *   "{{account.name}} added {{ signal.value }} users this week: offer onboarding."
 *
 * A template is compiled once (every error with its line:column inside the
 * text) and rendered any number of times, from any number of threads: a
 * compiled template is immutable. Values come from a lookup callback, so
 * this module knows nothing of accounts or signals; the placeholder list
 * lets callers check at load time that every path has a root they serve.
 *
 * Escaping applies to looked-up values only: the template's literal text
 * is written as is (the catalog author controls it, and may mean the '<'
 * of a Slack link or the quote of a JSON document). */
#ifndef HR_TEMPLATE_H
#define HR_TEMPLATE_H

#include <stddef.h>

#include "headroom.h"

typedef struct hr_buf hr_buf;
typedef struct hr_template hr_template;

/* Compiles text (len bytes, need not be NUL-terminated) with {{ path }}
 * placeholders: blanks (space, tab) inside the braces are allowed; a path
 * is dotted identifiers ([A-Za-z_][A-Za-z0-9_]*, joined by '.'), such as
 * account.name, account.traits.industry, signal.value, user.email, score.
 * "{{{{" is a literal "{{"; anything else (a lone '{', "}}") is literal.
 * An unterminated or empty placeholder or a bad path is HR_ECONFIG with
 * err->line/err->column 1-based within text (columns count UTF-8
 * characters, as the catalog and rule positions do). Caller frees *out
 * with hr_template_free. */
int hr_template_compile(const char *text, size_t len, hr_template **out, hr_err *err);
void hr_template_free(hr_template *t);

/* The distinct placeholder paths, in order of first appearance; the
 * strings are owned by t. hr_template_var returns NULL outside 0..nvars-1. */
int hr_template_nvars(const hr_template *t);
const char *hr_template_var(const hr_template *t, int i);
/* Where path i first appears (the position of its "{{"), for errors such
 * as "unknown root 'acount'" at load time. 0, or HR_EINVAL if i is out of range. */
int hr_template_var_pos(const hr_template *t, int i, int *line, int *column);

typedef enum { HR_ESC_TEXT, HR_ESC_JSON, HR_ESC_SLACK, HR_ESC_HTML } hr_escape;

/* Returns the value of path as a NUL-terminated string, or NULL if it has
 * none. The string is borrowed: it must stay valid until the next call of
 * the lookup (renders call it once per placeholder, in text order). */
typedef const char *(*hr_template_lookup)(void *ud, const char *path);

/* Appends the rendered text to out. A missing value (lookup NULL, or the
 * lookup itself NULL) renders as nothing. Values are escaped by esc:
 *   TEXT   as is;
 *   JSON   for the inside of a JSON string literal: '"' and '\' escaped,
 *          control characters, U+2028 and U+2029 as \uXXXX, invalid UTF-8
 *          as \ufffd (so the result is always valid UTF-8);
 *   SLACK  mrkdwn: & < > as &amp; &lt; &gt;, so a value cannot open a link
 *          or a mention (<!channel>, <@U123>, <http://x|y>);
 *   HTML   & < > " ' as entities.
 * Returns 0, HR_EINVAL (no template or an unknown esc) or HR_ENOMEM (out
 * failed). */
int hr_template_render(const hr_template *t, hr_escape esc, hr_template_lookup lookup, void *ud,
                       hr_buf *out);

/* Renders a JSON document whose string values may hold placeholders, e.g.
 *   {"text": "{{account.name}} is hot", "score": "{{score}}"}
 * and appends valid, compact JSON to out: each string value rendered with
 * JSON escaping (its literal text too, since it was decoded from JSON);
 * keys and other values are copied. A string value that is exactly one
 * placeholder whose value is a JSON number (finite), true, false or null is
 * written as that bare value, so numbers stay numbers; a missing value is "".
 * Returns 0; HR_EINVAL if json_text is not JSON (err has the line:column in
 * json_text); HR_ECONFIG if a string value is not a valid template (err's
 * message names the value's JSON pointer, its line:column are within that
 * string); HR_ENOMEM. On error out is left as it was. With a NULL lookup
 * (every value missing) this is the load-time check of a body template. */
int hr_template_render_json_body(const char *json_text, hr_template_lookup lookup, void *ud,
                                 hr_buf *out, hr_err *err);

#endif
