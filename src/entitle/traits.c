/* traits.c: account and user traits flattened for the rule language.
 *
 * Traits are kept as JSON text (what the API returns); rules read them by
 * dotted path many times per second, so the first read builds a flat,
 * read-only index: one entry per scalar leaf ("company.size" -> 50), its
 * strings in the same allocation, found by the path's hash. Arrays are kept
 * as their JSON text (a string), since the language has no array values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "entitle_int.h"
#include "rules/rules.h"

#define MAX_TRAITS 256 /* leaves indexed per account or user */
#define MAX_PATH 256

typedef struct trait {
    uint64_t hash;
    const char *path;
    hr_rval v;
} trait;

struct hr_traits_ix {
    uint32_t n;
    trait t[];
    /* then the strings */
};

typedef struct builder {
    trait t[MAX_TRAITS];
    const char *str[MAX_TRAITS]; /* value text (STR), borrowed from the json */
    char path[MAX_TRAITS][MAX_PATH];
    uint32_t n;
    size_t bytes;
} builder;

static void walk(builder *b, json_object *o, const char *prefix) {
    json_object_object_foreach(o, k, v) {
        if (b->n == MAX_TRAITS) return;
        char path[MAX_PATH];
        int len = prefix[0] ? snprintf(path, sizeof path, "%s.%s", prefix, k)
                            : snprintf(path, sizeof path, "%s", k);
        if (len < 0 || (size_t)len >= sizeof path) continue;
        if (json_object_is_type(v, json_type_object)) {
            walk(b, v, path);
            continue;
        }
        trait *t = &b->t[b->n];
        memset(t, 0, sizeof *t);
        b->str[b->n] = NULL;
        switch (v ? json_object_get_type(v) : json_type_null) {
        case json_type_null: t->v.type = HR_RV_NULL; break;
        case json_type_boolean:
            t->v.type = HR_RV_BOOL;
            t->v.b = json_object_get_boolean(v);
            break;
        case json_type_int:
        case json_type_double:
            t->v.type = HR_RV_NUM;
            t->v.n = json_object_get_double(v);
            break;
        case json_type_string:
            t->v.type = HR_RV_STR;
            b->str[b->n] = json_object_get_string(v);
            t->v.len = (uint32_t)json_object_get_string_len(v);
            break;
        default: /* array: its JSON text */
            t->v.type = HR_RV_STR;
            b->str[b->n] = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
            t->v.len = (uint32_t)strlen(b->str[b->n]);
            break;
        }
        memcpy(b->path[b->n], path, (size_t)len + 1);
        t->hash = hr_rule_hash(path, (size_t)len);
        b->bytes += (size_t)len + 1 + (b->str[b->n] ? t->v.len + 1 : 0);
        b->n++;
    }
}

static hr_traits_ix *build(const char *json) {
    json_object *o = json_tokener_parse(json);
    hr_traits_ix *ix = NULL;
    builder *b = NULL;
    if (!o || !json_object_is_type(o, json_type_object) || !(b = calloc(1, sizeof *b))) goto out;
    walk(b, o, "");
    if (!(ix = malloc(sizeof *ix + b->n * sizeof(trait) + b->bytes))) goto out;
    ix->n = b->n;
    char *p = (char *)(ix->t + b->n);
    for (uint32_t i = 0; i < b->n; i++) {
        ix->t[i] = b->t[i];
        size_t pl = strlen(b->path[i]) + 1;
        memcpy(p, b->path[i], pl);
        ix->t[i].path = p;
        p += pl;
        if (b->str[i]) {
            memcpy(p, b->str[i], ix->t[i].v.len);
            p[ix->t[i].v.len] = 0;
            ix->t[i].v.s = p;
            p += ix->t[i].v.len + 1;
        }
    }
out:
    free(b);
    json_object_put(o);
    return ix;
}

static hr_traits_ix empty_ix = {0};

const hr_traits_ix *hr_traits_get(hr_traits_ix **slot, const char *traits_json) {
    hr_traits_ix *ix = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (ix) return ix;
    if (!traits_json) return &empty_ix;
    if (!(ix = build(traits_json))) return &empty_ix; /* out of memory: no traits this time */
    hr_traits_ix *expected = NULL;
    if (!__atomic_compare_exchange_n(slot, &expected, ix, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        free(ix); /* another reader published first */
        return expected;
    }
    return ix;
}

void hr_traits_free(hr_traits_ix *ix) {
    if (ix != &empty_ix) free(ix);
}

int hr_traits_find(const hr_traits_ix *ix, const char *path, uint64_t hash, hr_rval *out) {
    for (uint32_t i = 0; i < ix->n; i++)
        if (ix->t[i].hash == hash && !strcmp(ix->t[i].path, path)) {
            *out = ix->t[i].v;
            return 0;
        }
    return -1;
}
