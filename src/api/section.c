/* section.c: one entry of a catalog section (a playbook, a campaign) read,
 * written or deleted over the API. A write becomes part of the catalog: the
 * current catalog with that entry changed is validated and swapped in like
 * PUT /v1/catalog (and stored, so a restart keeps it). */
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "err.h"

/* The current catalog as json-c (caller puts) and its section object
 * (created empty when absent). */
static json_object *catalog_doc(hr_req *r, const char *section, json_object **sec) {
    hr_catalog *c = hr_engine_catalog(r->app->engine);
    char *text = hr_catalog_to_json(c);
    hr_catalog_release(c);
    json_object *doc = text ? json_tokener_parse(text) : NULL;
    free(text);
    if (!doc) return NULL;
    if (!json_object_object_get_ex(doc, section, sec)) {
        *sec = json_object_new_object();
        json_object_object_add(doc, section, *sec);
    }
    return doc;
}

void hr_api_section_list(hr_req *r, const char *section) {
    json_object *sec, *doc = catalog_doc(r, section, &sec);
    if (!doc) return hr_reply_error(r, 500, "internal", "out of memory");
    hr_buf_printf(&r->out, "{\"%s\":[", section);
    int n = 0;
    json_object_object_foreach(sec, k, v) {
        if (n++) hr_buf_putc(&r->out, ',');
        hr_buf_puts(&r->out, "{\"id\":");
        hr_buf_json_str(&r->out, k);
        hr_buf_puts(&r->out, ",\"definition\":");
        hr_buf_puts(&r->out, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        hr_buf_putc(&r->out, '}');
    }
    hr_buf_puts(&r->out, "]}");
    json_object_put(doc);
    hr_reply(r, 200);
}

static void entry_reply(hr_req *r, const char *section, const char *what, int status) {
    json_object *sec, *v, *doc = catalog_doc(r, section, &sec);
    if (!doc) return hr_reply_error(r, 500, "internal", "out of memory");
    if (!json_object_object_get_ex(sec, r->params[0], &v)) {
        json_object_put(doc);
        return hr_reply_error(r, 404, "not_found", "no %s '%s'", what, r->params[0]);
    }
    hr_buf_puts(&r->out, "{\"id\":");
    hr_buf_json_str(&r->out, r->params[0]);
    hr_buf_puts(&r->out, ",\"definition\":");
    hr_buf_puts(&r->out, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    hr_buf_putc(&r->out, '}');
    json_object_put(doc);
    hr_reply(r, status);
}

void hr_api_section_get(hr_req *r, const char *section, const char *what) {
    entry_reply(r, section, what, 200);
}

/* Validates and swaps in doc; replies with the errors when it is refused. */
static int reload(hr_req *r, json_object *doc) {
    hr_err err = {0};
    hr_err_list errs = {0};
    size_t len;
    const char *text = json_object_to_json_string_length(doc, JSON_C_TO_STRING_PLAIN, &len);
    int rc = hr_app_reload(r->app, text, len, "catalog", 1, &err, &errs);
    if (rc) {
        /* positions would point into the generated catalog: messages only */
        hr_buf_puts(&r->out, "{\"error\":{\"code\":");
        hr_buf_json_str(&r->out, hr_err_code_str(rc));
        hr_buf_puts(&r->out, ",\"message\":");
        hr_buf_json_str(&r->out, err.message);
        hr_buf_puts(&r->out, ",\"details\":[");
        for (int i = 0; i < errs.count; i++) {
            if (i) hr_buf_putc(&r->out, ',');
            hr_buf_puts(&r->out, "{\"message\":");
            hr_buf_json_str(&r->out, errs.items[i].message);
            hr_buf_putc(&r->out, '}');
        }
        hr_buf_puts(&r->out, "]}}");
        hr_reply(r, hr_err_http_status(rc));
    }
    hr_catalog_errors_free(&errs);
    return rc;
}

void hr_api_section_put(hr_req *r, const char *section, const char *what) {
    json_object *body = hr_req_json(r, 0);
    if (!body) return;
    if (!json_object_is_type(body, json_type_object)) {
        json_object_put(body);
        return hr_reply_error(r, 400, "invalid_request", "the body is a %s object", what);
    }
    json_object *sec, *old, *doc = catalog_doc(r, section, &sec);
    if (!doc) {
        json_object_put(body);
        return hr_reply_error(r, 500, "internal", "out of memory");
    }
    int existed = json_object_object_get_ex(sec, r->params[0], &old);
    json_object_object_add(sec, r->params[0], body); /* takes body */
    int rc = reload(r, doc);
    json_object_put(doc);
    if (!rc) entry_reply(r, section, what, existed ? 200 : 201);
}

void hr_api_section_delete(hr_req *r, const char *section, const char *what) {
    json_object *sec, *old, *doc = catalog_doc(r, section, &sec);
    if (!doc) return hr_reply_error(r, 500, "internal", "out of memory");
    if (!json_object_object_get_ex(sec, r->params[0], &old)) {
        json_object_put(doc);
        return hr_reply_error(r, 404, "not_found", "no %s '%s'", what, r->params[0]);
    }
    json_object_object_del(sec, r->params[0]);
    if (!json_object_object_length(sec)) json_object_object_del(doc, section);
    if (!reload(r, doc)) hr_reply_empty(r, 204);
    json_object_put(doc);
}
