/* fixture.h: what the unit tests built on an engine share: a catalog and
 * an engine from YAML, an account put, one Segment message ingested, and a
 * scratch directory for a database. Include after
 * cmocka.h, catalog/catalog.h, entitle/engine.h and events/segment.h. */
#ifndef HR_TEST_FIXTURE_H
#define HR_TEST_FIXTURE_H

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A catalog parsed from yaml and an engine on it; -1 (the error printed)
 * when the catalog is refused. */
static inline int hr_test_engine(const char *yaml, size_t len, hr_catalog **cat, hr_engine **e) {
    hr_err err;
    if (hr_catalog_parse(yaml, len, "t.yaml", cat, &err, NULL)) {
        fprintf(stderr, "%d:%d: %s\n", err.line, err.column, err.message);
        return -1;
    }
    *e = hr_engine_new(*cat);
    return *e ? 0 : -1;
}

/* Creates or replaces account id from its JSON, failing the test if the
 * engine refuses it. */
static inline void hr_test_put_account(hr_engine *e, const char *id, const char *json) {
    hr_err err = {0};
    int rc = hr_engine_put_account_json(e, id, json, &err);
    if (rc) fprintf(stderr, "put %s: %s\n", id, err.message);
    assert_int_equal(rc, 0);
}

/* Ingests one message (JSON text; type -1: from its "type", else an
 * HR_MSG_* kind) received at at_ms; returns its status. */
static inline int hr_test_ingest(hr_engine *e, const char *json, int type, int64_t at_ms) {
    json_object *o = json_tokener_parse(json);
    assert_non_null(o);
    hr_msg m;
    hr_err err = {0};
    int st = -1;
    assert_int_equal(hr_msg_parse(o, type, strlen(json), 0, at_ms, &m, &err), 0);
    assert_int_equal(hr_engine_ingest(e, &m, 1, at_ms, &st, &err), 0);
    json_object_put(o);
    return st;
}

/* A fresh directory for a test's database: dir is a mkdtemp template
 * ("/tmp/hr-x-XXXXXX"), made into the directory's name; path (n bytes)
 * gets the database file's path in it. */
static inline void hr_test_db_dir(char *dir, char *path, size_t n) {
    assert_non_null(mkdtemp(dir));
    snprintf(path, n, "%s/h.db", dir);
}

/* Removes a directory made by hr_test_db_dir, with everything in it. */
static inline void hr_test_rm_dir(const char *dir) {
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

#endif
