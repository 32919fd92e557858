/* test_sqlite.c: the SQLite store, through its ops table, against a real
 * database file in a fresh temporary directory per test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "err.h"
#include "store/store.h"

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/hr_store_XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/headroom.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[160];
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static hr_store *open_store(fixture *f) {
    hr_store *s = NULL;
    hr_err err = {0};
    int rc = hr_store_sqlite_open(f->path, 0, &s, &err);
    if (rc) fail_msg("open: %s", err.message);
    assert_non_null(s);
    return s;
}

/* ---- a loader that keeps copies of what it saw ---- */

#define MAXROWS 16

typedef struct seen {
    int n_acc, n_user, n_usage, n_ovr, n_ftr;
    char order[64]; /* one letter per row: a u g o f */
    int norder;
    char *acc_id[MAXROWS], *acc_plan[MAXROWS], *acc_traits[MAXROWS], *acc_addons[MAXROWS];
    char *acc_trial_plan[MAXROWS], *acc_name[MAXROWS], *acc_owner[MAXROWS];
    char *acc_interval[MAXROWS];
    hr_account_rec acc[MAXROWS]; /* integers only; strings above */
    char *user_key[MAXROWS], *user_role[MAXROWS], *user_seat[MAXROWS], *user_traits[MAXROWS];
    hr_user_rec user[MAXROWS];
    char *usage_key[MAXROWS];
    hr_usage_rec usage[MAXROWS];
    char *ovr_key[MAXROWS];
    hr_override_rec ovr[MAXROWS];
    char *ftr_key[MAXROWS];
    hr_ftrial_rec ftr[MAXROWS];
    int stop_after; /* accounts: return HR_EINTERNAL after this many, 0 = never */
} seen;

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

static char *key2(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static void note(seen *v, char c) {
    if (v->norder < (int)sizeof v->order - 1) v->order[v->norder++] = c;
}

static int on_account(void *ud, const hr_account_rec *r) {
    seen *v = ud;
    int i = v->n_acc++;
    note(v, 'a');
    if (v->stop_after && v->n_acc >= v->stop_after) return HR_EINTERNAL;
    if (i >= MAXROWS) return 0;
    v->acc[i] = *r;
    v->acc_id[i] = dup_or_null(r->id);
    v->acc_name[i] = dup_or_null(r->name);
    v->acc_plan[i] = dup_or_null(r->plan);
    v->acc_owner[i] = dup_or_null(r->owner);
    v->acc_interval[i] = dup_or_null(r->interval);
    v->acc_traits[i] = dup_or_null(r->traits_json);
    v->acc_addons[i] = dup_or_null(r->addons_json);
    v->acc_trial_plan[i] = dup_or_null(r->trial_plan);
    return 0;
}

static int on_user(void *ud, const hr_user_rec *r) {
    seen *v = ud;
    int i = v->n_user++;
    note(v, 'u');
    if (i >= MAXROWS) return 0;
    v->user[i] = *r;
    v->user_key[i] = key2(r->account, r->id);
    v->user_role[i] = dup_or_null(r->role);
    v->user_seat[i] = dup_or_null(r->seat_type);
    v->user_traits[i] = dup_or_null(r->traits_json);
    return 0;
}

static int on_usage(void *ud, const hr_usage_rec *r) {
    seen *v = ud;
    int i = v->n_usage++;
    note(v, 'g');
    if (i >= MAXROWS) return 0;
    v->usage[i] = *r;
    v->usage_key[i] = key2(r->account, r->feature);
    return 0;
}

static int on_override(void *ud, const hr_override_rec *r) {
    seen *v = ud;
    int i = v->n_ovr++;
    note(v, 'o');
    if (i >= MAXROWS) return 0;
    v->ovr[i] = *r;
    v->ovr_key[i] = key2(r->account, r->feature);
    return 0;
}

static int on_ftrial(void *ud, const hr_ftrial_rec *r) {
    seen *v = ud;
    int i = v->n_ftr++;
    note(v, 'f');
    if (i >= MAXROWS) return 0;
    v->ftr[i] = *r;
    v->ftr_key[i] = key2(r->account, r->feature);
    return 0;
}

static void seen_free(seen *v) {
    for (int i = 0; i < MAXROWS; i++) {
        free(v->acc_id[i]);
        free(v->acc_name[i]);
        free(v->acc_plan[i]);
        free(v->acc_owner[i]);
        free(v->acc_interval[i]);
        free(v->acc_traits[i]);
        free(v->acc_addons[i]);
        free(v->acc_trial_plan[i]);
        free(v->user_key[i]);
        free(v->user_role[i]);
        free(v->user_seat[i]);
        free(v->user_traits[i]);
        free(v->usage_key[i]);
        free(v->ovr_key[i]);
        free(v->ftr_key[i]);
    }
    memset(v, 0, sizeof *v);
}

static void load_all(hr_store *s, seen *v) {
    hr_store_loader l = {v, on_account, on_user, on_usage, on_override, on_ftrial, NULL};
    hr_err err = {0};
    int rc = s->ops->load(s, &l, &err);
    if (rc) fail_msg("load: %s", err.message);
}

static int find(char *const *keys, int n, const char *k) {
    for (int i = 0; i < n && i < MAXROWS; i++)
        if (keys[i] && strcmp(keys[i], k) == 0) return i;
    return -1;
}

static hr_account_rec account(const char *id, const char *plan) {
    hr_account_rec r = {
        .id = id,
        .name = "Acme Inc",
        .plan = plan,
        .owner = "owner@acme.test",
        .plan_version = 3,
        .interval = "month",
        .created_at = 1700000000,
        .updated_at = 1700000100,
        .renews_at = 1702592000,
        .traits_json = "{\"region\":\"eu\"}",
        .addons_json = "{\"extra_boards\":1}",
        .trial_plan = NULL,
        .trial_started_at = 0,
        .trial_ends_at = 0,
        .plan_trial_used = 0,
    };
    return r;
}

static void ok(int rc, const hr_err *err) {
    if (rc) fail_msg("rc %d: %s", rc, err->message);
}

static void put_children(hr_store *s, const char *acc) {
    hr_err err = {0};
    hr_user_rec u = {acc, "u1", "admin", "full", "{\"x\":1}", 10, 11};
    ok(s->ops->put_user(s, &u, &err), &err);
    u.id = "u2";
    u.traits_json = NULL;
    ok(s->ops->put_user(s, &u, &err), &err);
    hr_usage_rec g = {acc, "boards", 5, 1000, 1001};
    ok(s->ops->put_usage(s, &g, &err), &err);
    hr_override_rec o = {acc, "boards", 50, 0, 1002};
    ok(s->ops->put_override(s, &o, &err), &err);
    hr_ftrial_rec t = {acc, "sso", 2000, 3000};
    ok(s->ops->put_ftrial(s, &t, &err), &err);
}

/* ---- tests ---- */

static void test_open_migrate_reopen(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    assert_string_equal(s->ops->name, "sqlite");
    int v = hr_store_sqlite_schema_version(s);
    assert_true(v >= 1);
    hr_store_close(s);

    s = open_store(f);
    assert_int_equal(hr_store_sqlite_schema_version(s), v);
    hr_store_close(s);
    hr_store_close(NULL);

    /* WAL mode is a property of the file; every migration recorded once. */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*), max(version) FROM schema_migrations",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), v);
    assert_int_equal(sqlite3_column_int(st, 1), v);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_open_durable_full_and_bad_path(void **state) {
    fixture *f = *state;
    hr_store *s = NULL;
    hr_err err = {0};
    ok(hr_store_sqlite_open(f->path, 1, &s, &err), &err);
    hr_store_close(s);

    char bad[200];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.db", f->dir);
    s = (hr_store *)0x1;
    assert_int_equal(hr_store_sqlite_open(bad, 0, &s, &err), HR_ESTORE);
    assert_null(s);
    assert_non_null(strstr(err.message, "sqlite open"));
}

static void test_account_roundtrip(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    hr_account_rec a = account("acc_1", "pro");
    a.trial_plan = "business";
    a.trial_started_at = 1700000200;
    a.trial_ends_at = 1701209800;
    a.plan_trial_used = 1;
    ok(s->ops->put_account(s, &a, &err), &err);
    hr_account_rec b = account("acc_2", "free");
    b.name = b.owner = b.interval = NULL;
    b.traits_json = b.addons_json = NULL;
    ok(s->ops->put_account(s, &b, &err), &err);

    seen v = {0};
    load_all(s, &v);
    assert_int_equal(v.n_acc, 2);
    int i = find(v.acc_id, v.n_acc, "acc_1");
    assert_true(i >= 0);
    assert_string_equal(v.acc_name[i], "Acme Inc");
    assert_string_equal(v.acc_plan[i], "pro");
    assert_string_equal(v.acc_owner[i], "owner@acme.test");
    assert_int_equal(v.acc[i].plan_version, 3);
    assert_string_equal(v.acc_interval[i], "month");
    assert_int_equal(v.acc[i].created_at, 1700000000);
    assert_int_equal(v.acc[i].updated_at, 1700000100);
    assert_int_equal(v.acc[i].renews_at, 1702592000);
    assert_string_equal(v.acc_traits[i], "{\"region\":\"eu\"}");
    assert_string_equal(v.acc_addons[i], "{\"extra_boards\":1}");
    assert_string_equal(v.acc_trial_plan[i], "business");
    assert_int_equal(v.acc[i].trial_started_at, 1700000200);
    assert_int_equal(v.acc[i].trial_ends_at, 1701209800);
    assert_int_equal(v.acc[i].plan_trial_used, 1);

    /* NULL text comes back NULL, except the JSON columns which read "{}". */
    i = find(v.acc_id, v.n_acc, "acc_2");
    assert_true(i >= 0);
    assert_null(v.acc_name[i]);
    assert_null(v.acc_owner[i]);
    assert_null(v.acc_interval[i]);
    assert_null(v.acc_trial_plan[i]);
    assert_string_equal(v.acc_traits[i], "{}");
    assert_string_equal(v.acc_addons[i], "{}");
    assert_int_equal(v.acc[i].plan_trial_used, 0);
    seen_free(&v);
    hr_store_close(s);
}

static void test_children_roundtrip_and_order(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    /* Children first: no foreign keys, the engine may write in any order. */
    put_children(s, "acc_1");
    hr_account_rec a = account("acc_1", "pro");
    ok(s->ops->put_account(s, &a, &err), &err);

    seen v = {0};
    load_all(s, &v);
    assert_string_equal(v.order, "auugof");
    assert_int_equal(v.n_user, 2);
    int i = find(v.user_key, v.n_user, "acc_1/u1");
    assert_true(i >= 0);
    assert_string_equal(v.user_role[i], "admin");
    assert_string_equal(v.user_seat[i], "full");
    assert_string_equal(v.user_traits[i], "{\"x\":1}");
    assert_int_equal(v.user[i].created_at, 10);
    assert_int_equal(v.user[i].updated_at, 11);
    i = find(v.user_key, v.n_user, "acc_1/u2");
    assert_true(i >= 0);
    assert_string_equal(v.user_traits[i], "{}");

    assert_int_equal(v.n_usage, 1);
    assert_string_equal(v.usage_key[0], "acc_1/boards");
    assert_int_equal(v.usage[0].value, 5);
    assert_int_equal(v.usage[0].period_start, 1000);
    assert_int_equal(v.usage[0].updated_at, 1001);

    assert_int_equal(v.n_ovr, 1);
    assert_string_equal(v.ovr_key[0], "acc_1/boards");
    assert_int_equal(v.ovr[0].value, 50);
    assert_int_equal(v.ovr[0].expires_at, 0);
    assert_int_equal(v.ovr[0].created_at, 1002);

    assert_int_equal(v.n_ftr, 1);
    assert_string_equal(v.ftr_key[0], "acc_1/sso");
    assert_int_equal(v.ftr[0].started_at, 2000);
    assert_int_equal(v.ftr[0].ends_at, 3000);
    seen_free(&v);

    /* NULL callbacks skip their table. */
    hr_store_loader l = {&v, NULL, on_user, NULL, NULL, on_ftrial, NULL};
    ok(s->ops->load(s, &l, &err), &err);
    assert_string_equal(v.order, "uuf");
    seen_free(&v);

    /* A callback's non-zero return stops the load with that code. */
    v.stop_after = 1;
    hr_store_loader stop = {&v, on_account, on_user, NULL, NULL, NULL, NULL};
    assert_int_equal(s->ops->load(s, &stop, &err), HR_EINTERNAL);
    assert_string_equal(v.order, "a");
    seen_free(&v);
    hr_store_close(s);
}

static void test_deletes(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    put_children(s, "acc_1");
    ok(s->ops->delete_user(s, "acc_1", "u1", &err), &err);
    ok(s->ops->delete_user(s, "acc_1", "nobody", &err), &err); /* absent: still 0 */
    ok(s->ops->delete_override(s, "acc_1", "boards", &err), &err);
    ok(s->ops->delete_override(s, "acc_1", "boards", &err), &err);
    seen v = {0};
    load_all(s, &v);
    assert_int_equal(v.n_user, 1);
    assert_string_equal(v.user_key[0], "acc_1/u2");
    assert_int_equal(v.n_ovr, 0);
    assert_int_equal(v.n_usage, 1);
    seen_free(&v);
    hr_store_close(s);
}

static void test_upserts(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    hr_account_rec a = account("acc_1", "free");
    ok(s->ops->put_account(s, &a, &err), &err);
    a.plan = "pro";
    a.plan_version = 4;
    a.trial_plan = "business";
    ok(s->ops->put_account(s, &a, &err), &err);
    a.trial_plan = NULL; /* an upsert writes every column, NULLs included */
    a.updated_at = 42;
    ok(s->ops->put_account(s, &a, &err), &err);

    put_children(s, "acc_1");
    hr_user_rec u = {"acc_1", "u1", "member", "viewer", NULL, 10, 99};
    ok(s->ops->put_user(s, &u, &err), &err);
    hr_usage_rec g = {"acc_1", "boards", 7, 2000, 2001};
    ok(s->ops->put_usage(s, &g, &err), &err);
    hr_override_rec o = {"acc_1", "boards", 60, 9999, 2002};
    ok(s->ops->put_override(s, &o, &err), &err);
    hr_ftrial_rec t = {"acc_1", "sso", 4000, 5000};
    ok(s->ops->put_ftrial(s, &t, &err), &err);

    seen v = {0};
    load_all(s, &v);
    assert_int_equal(v.n_acc, 1);
    assert_string_equal(v.acc_plan[0], "pro");
    assert_int_equal(v.acc[0].plan_version, 4);
    assert_null(v.acc_trial_plan[0]);
    assert_int_equal(v.acc[0].updated_at, 42);
    assert_int_equal(v.n_user, 2);
    int i = find(v.user_key, v.n_user, "acc_1/u1");
    assert_true(i >= 0);
    assert_string_equal(v.user_role[i], "member");
    assert_string_equal(v.user_seat[i], "viewer");
    assert_string_equal(v.user_traits[i], "{}");
    assert_int_equal(v.user[i].updated_at, 99);
    assert_int_equal(v.n_usage, 1);
    assert_int_equal(v.usage[0].value, 7);
    assert_int_equal(v.usage[0].period_start, 2000);
    assert_int_equal(v.n_ovr, 1);
    assert_int_equal(v.ovr[0].value, 60);
    assert_int_equal(v.ovr[0].expires_at, 9999);
    assert_int_equal(v.n_ftr, 1);
    assert_int_equal(v.ftr[0].started_at, 4000);
    assert_int_equal(v.ftr[0].ends_at, 5000);
    seen_free(&v);
    hr_store_close(s);
}

static void test_delete_account_cascades(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    const char *ids[] = {"acc_1", "acc_10", "acc_2"}; /* acc_1 is a prefix of acc_10 */
    for (int i = 0; i < 3; i++) {
        hr_account_rec a = account(ids[i], "pro");
        ok(s->ops->put_account(s, &a, &err), &err);
        put_children(s, ids[i]);
    }
    ok(s->ops->delete_account(s, "acc_1", &err), &err);
    ok(s->ops->delete_account(s, "acc_none", &err), &err);

    seen v = {0};
    load_all(s, &v);
    assert_int_equal(v.n_acc, 2);
    assert_int_equal(find(v.acc_id, v.n_acc, "acc_1"), -1);
    assert_int_equal(v.n_user, 4);
    assert_int_equal(v.n_usage, 2);
    assert_int_equal(v.n_ovr, 2);
    assert_int_equal(v.n_ftr, 2);
    assert_int_equal(find(v.user_key, v.n_user, "acc_1/u1"), -1);
    assert_true(find(v.user_key, v.n_user, "acc_10/u1") >= 0);
    assert_int_equal(find(v.usage_key, v.n_usage, "acc_1/boards"), -1);
    assert_int_equal(find(v.ovr_key, v.n_ovr, "acc_1/boards"), -1);
    assert_int_equal(find(v.ftr_key, v.n_ftr, "acc_1/sso"), -1);
    seen_free(&v);

    /* Inside an explicit transaction the cascade belongs to it. */
    ok(s->ops->begin(s, &err), &err);
    ok(s->ops->delete_account(s, "acc_2", &err), &err);
    s->ops->rollback(s);
    load_all(s, &v);
    assert_int_equal(v.n_acc, 2);
    assert_int_equal(v.n_user, 4);
    seen_free(&v);
    hr_store_close(s);
}

static void test_idempotency(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    uint64_t h = 0;
    int status = 0;
    char *body = NULL;
    assert_int_equal(s->ops->idem_get(s, "k1", &h, &status, &body, &err), HR_ENOTFOUND);
    assert_null(body);

    const uint64_t big = 0xF23456789ABCDEF1ULL; /* top bit set */
    hr_idem_rec r = {"acct:k1", big, 201, "{\"ok\":true}", 1700000000};
    ok(s->ops->idem_put(s, &r, &err), &err);
    ok(s->ops->idem_get(s, "acct:k1", &h, &status, &body, &err), &err);
    assert_true(h == big);
    assert_int_equal(status, 201);
    assert_string_equal(body, "{\"ok\":true}");
    free(body);
    body = NULL;

    r.request_hash = UINT64_MAX;
    r.status = 409;
    r.body = NULL;
    ok(s->ops->idem_put(s, &r, &err), &err);
    ok(s->ops->idem_get(s, "acct:k1", &h, &status, &body, &err), &err);
    assert_true(h == UINT64_MAX);
    assert_int_equal(status, 409);
    assert_string_equal(body, ""); /* a NULL body reads as "" */
    free(body);
    body = NULL;

    /* Keys are exact: another scope is another key. */
    assert_int_equal(s->ops->idem_get(s, "other:k1", &h, &status, &body, &err), HR_ENOTFOUND);
    hr_store_close(s);

    s = open_store(f);
    ok(s->ops->idem_get(s, "acct:k1", &h, NULL, NULL, &err), &err);
    assert_true(h == UINT64_MAX);
    hr_store_close(s);
}

static void test_catalog_latest_wins(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    char *text = NULL;
    int64_t at = 0;
    assert_int_equal(s->ops->get_catalog(s, &text, &at, &err), HR_ENOTFOUND);
    assert_null(text);
    ok(s->ops->put_catalog(s, "plans: {a: 1}", 100, &err), &err);
    ok(s->ops->put_catalog(s, "plans: {b: 2}", 50, &err), &err); /* newest, older clock */
    ok(s->ops->get_catalog(s, &text, &at, &err), &err);
    assert_string_equal(text, "plans: {b: 2}");
    assert_int_equal(at, 50);
    free(text);
    hr_store_close(s);

    /* History is kept. */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM catalog", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 2);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_transactions(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    hr_account_rec a = account("acc_rolled_back", "pro");
    ok(s->ops->begin(s, &err), &err);
    assert_int_equal(s->ops->begin(s, &err), HR_ESTORE); /* no nesting */
    ok(s->ops->put_account(s, &a, &err), &err);
    hr_usage_rec g = {"acc_rolled_back", "boards", 1, 0, 0};
    ok(s->ops->put_usage(s, &g, &err), &err);
    s->ops->rollback(s);
    s->ops->rollback(s); /* harmless without a transaction */

    seen v = {0};
    load_all(s, &v);
    assert_int_equal(v.n_acc, 0);
    assert_int_equal(v.n_usage, 0);
    seen_free(&v);

    assert_int_equal(s->ops->commit(s, &err), HR_ESTORE);
    ok(s->ops->begin(s, &err), &err);
    a.id = "acc_committed";
    ok(s->ops->put_account(s, &a, &err), &err);
    /* Reads inside the transaction see its writes. */
    load_all(s, &v);
    assert_int_equal(v.n_acc, 1);
    seen_free(&v);
    ok(s->ops->commit(s, &err), &err);
    hr_store_close(s);

    s = open_store(f);
    load_all(s, &v);
    assert_int_equal(v.n_acc, 1);
    assert_string_equal(v.acc_id[0], "acc_committed");
    seen_free(&v);

    /* Closing with a transaction open discards it. */
    ok(s->ops->begin(s, &err), &err);
    a.id = "acc_abandoned";
    ok(s->ops->put_account(s, &a, &err), &err);
    hr_store_close(s);
    s = open_store(f);
    load_all(s, &v);
    assert_int_equal(v.n_acc, 1);
    seen_free(&v);
    hr_store_close(s);
}

static void test_durable_across_reopen(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    hr_account_rec a = account("acc_1", "pro");
    ok(s->ops->put_account(s, &a, &err), &err);
    put_children(s, "acc_1");
    ok(s->ops->put_catalog(s, "x", 1, &err), &err);
    hr_idem_rec r = {"k", 1, 200, "b", 2};
    ok(s->ops->idem_put(s, &r, &err), &err);
    hr_store_close(s);

    s = open_store(f);
    seen v = {0};
    load_all(s, &v);
    assert_int_equal(v.n_acc, 1);
    assert_int_equal(v.n_user, 2);
    assert_int_equal(v.n_usage, 1);
    assert_int_equal(v.n_ovr, 1);
    assert_int_equal(v.n_ftr, 1);
    seen_free(&v);
    char *text = NULL;
    ok(s->ops->get_catalog(s, &text, NULL, &err), &err);
    assert_string_equal(text, "x");
    free(text);
    hr_store_close(s);
}

static void test_newer_schema_refused(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    int v = hr_store_sqlite_schema_version(s);
    hr_store_close(s);

    sqlite3 *db = NULL;
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO schema_migrations VALUES (%d, 0)", v + 1);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    hr_err err = {0};
    s = (hr_store *)0x1;
    assert_int_equal(hr_store_sqlite_open(f->path, 0, &s, &err), HR_ESTORE);
    assert_null(s);
    assert_int_equal(err.code, HR_ESTORE);
    assert_non_null(strstr(err.message, "newer"));
}

static void test_sqlite_error_reported(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    hr_account_rec a = account(NULL, "pro"); /* id is NOT NULL */
    assert_int_equal(s->ops->put_account(s, &a, &err), HR_ESTORE);
    assert_int_equal(err.code, HR_ESTORE);
    assert_non_null(strstr(err.message, "put_account"));
    assert_non_null(strstr(err.message, "NOT NULL"));
    /* The statement is reusable after a failure. */
    a.id = "acc_1";
    ok(s->ops->put_account(s, &a, &err), &err);
    hr_store_close(s);
}

#define BULK 100000
#define BATCH 10000

static int count_account(void *ud, const hr_account_rec *r) {
    (*(int *)ud)++;
    return r->id && r->plan ? 0 : HR_EINTERNAL;
}

static void test_bulk_100k(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    char id[32];
    hr_account_rec a = account(id, "pro");
    for (int i = 0; i < BULK; i++) {
        if (i % BATCH == 0) ok(s->ops->begin(s, &err), &err);
        snprintf(id, sizeof id, "acc_%07d", i);
        ok(s->ops->put_account(s, &a, &err), &err);
        if (i % BATCH == BATCH - 1) ok(s->ops->commit(s, &err), &err);
    }
    hr_store_close(s);

    s = open_store(f);
    int n = 0;
    hr_store_loader l = {.ud = &n, .account = count_account};
    ok(s->ops->load(s, &l, &err), &err);
    assert_int_equal(n, BULK);
    hr_store_close(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_migrate_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_durable_full_and_bad_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_children_roundtrip_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upserts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_account_cascades, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog_latest_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_error_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_100k, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
