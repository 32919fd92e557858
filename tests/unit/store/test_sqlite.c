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
    int n_meter, n_seen;
    char *meter_key[MAXROWS];
    hr_meter_rec meter[MAXROWS]; /* uniq below, copied */
    uint64_t *meter_uniq[MAXROWS];
    char *seen_id[MAXROWS];
    int64_t seen_at[MAXROWS];
    int n_hist;
    char *hist_key[MAXROWS]; /* "account/user/event" */
    char *hist_days[MAXROWS];
    int64_t hist_first[MAXROWS], hist_last[MAXROWS];
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

static int on_meter(void *ud, const hr_meter_rec *r) {
    seen *v = ud;
    int i = v->n_meter++;
    note(v, 'm');
    if (i >= MAXROWS) return 0;
    /* The borrowed array is a proper uint64 array, aligned. */
    assert_true(r->nuniq == 0 || ((uintptr_t)r->uniq % _Alignof(uint64_t)) == 0);
    v->meter[i] = *r;
    v->meter_key[i] = key2(r->account, r->meter);
    if (r->nuniq) {
        v->meter_uniq[i] = malloc(r->nuniq * sizeof(uint64_t));
        memcpy(v->meter_uniq[i], r->uniq, r->nuniq * sizeof(uint64_t));
    }
    v->meter[i].uniq = v->meter_uniq[i];
    v->meter[i].account = v->meter[i].meter = NULL;
    return 0;
}

static int on_seen(void *ud, const char *message_id, int64_t received_ms) {
    seen *v = ud;
    int i = v->n_seen++;
    note(v, 's');
    if (i >= MAXROWS) return 0;
    v->seen_id[i] = strdup(message_id);
    v->seen_at[i] = received_ms;
    return 0;
}

/* The user column is never NULL: account-level rows come as "". */
static int on_hist(void *ud, const hr_hist_rec *r) {
    seen *v = ud;
    int i = v->n_hist++;
    note(v, 'h');
    assert_non_null(r->account);
    assert_non_null(r->user);
    assert_non_null(r->event);
    assert_non_null(r->days);
    if (i >= MAXROWS) return 0;
    char k[160];
    snprintf(k, sizeof k, "%s/%s/%s", r->account, r->user, r->event);
    v->hist_key[i] = strdup(k);
    v->hist_days[i] = strdup(r->days);
    v->hist_first[i] = r->first_ms;
    v->hist_last[i] = r->last_ms;
    return 0;
}

static void seen_free(seen *v) {
    for (int i = 0; i < MAXROWS; i++) {
        free(v->hist_key[i]);
        free(v->hist_days[i]);
        free(v->meter_key[i]);
        free(v->meter_uniq[i]);
        free(v->seen_id[i]);
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
    hr_store_loader l = {.ud = v,
                         .account = on_account,
                         .user = on_user,
                         .usage = on_usage,
                         .override = on_override,
                         .ftrial = on_ftrial};
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

/* One integer from a query on a second connection (sees committed data). */
static int64_t query_int(fixture *f, const char *sql) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void exec_raw(fixture *f, const char *sql) {
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_close(db);
}

static int on_folded(void *ud, int64_t seq) {
    *(int64_t *)ud = seq;
    return 0;
}

/* folded_seq as a load reports it (its last step). */
static int64_t folded_of(hr_store *s) {
    int64_t seq = -1;
    hr_err err = {0};
    hr_store_loader l = {.ud = &seq, .folded = on_folded};
    if (s->ops->load(s, &l, &err)) fail_msg("load: %s", err.message);
    return seq;
}

/* replay_events: counts rows in [0], keeps the first and last seq. */
static int on_replay(void *ud, const hr_event_rec *r) {
    int64_t *out = ud;
    if (!out[0]++) out[1] = r->seq;
    out[2] = r->seq;
    assert_non_null(r->body);
    return 0;
}

static hr_event_rec event(const char *msg_id, const char *acc, const char *name, int64_t at) {
    hr_event_rec e = {
        .message_id = msg_id,
        .account = acc,
        .user_id = "u1",
        .anonymous_id = NULL,
        .type = "track",
        .event = name,
        .ts_ms = at - 5,
        .received_ms = at,
        .body = "{\"type\":\"track\"}",
    };
    return e;
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
    assert_int_equal(v, 11);
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
    hr_store_loader l = {.ud = &v, .user = on_user, .ftrial = on_ftrial};
    ok(s->ops->load(s, &l, &err), &err);
    assert_string_equal(v.order, "uuf");
    seen_free(&v);

    /* A callback's non-zero return stops the load with that code. */
    v.stop_after = 1;
    hr_store_loader stop = {.ud = &v, .account = on_account, .user = on_user};
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

/* Both later migrations apply in order to a version-1 file. */
typedef struct ev_seen {
    int n, stop_at;
    char *msg[8], *event[8], *body[8], *anon[8];
    int64_t ts[8], received[8];
} ev_seen;

static int on_event(void *ud, const hr_event_rec *r) {
    ev_seen *v = ud;
    int i = v->n++;
    if (v->stop_at && v->n >= v->stop_at) return HR_EINTERNAL;
    if (i >= 8) return 0;
    v->msg[i] = dup_or_null(r->message_id);
    v->event[i] = dup_or_null(r->event);
    v->body[i] = dup_or_null(r->body);
    v->anon[i] = dup_or_null(r->anonymous_id);
    v->ts[i] = r->ts_ms;
    v->received[i] = r->received_ms;
    assert_string_equal(r->type, "track");
    return 0;
}

static void ev_free(ev_seen *v) {
    for (int i = 0; i < 8; i++) {
        free(v->msg[i]);
        free(v->event[i]);
        free(v->body[i]);
        free(v->anon[i]);
    }
    memset(v, 0, sizeof *v);
}

static void test_migrations_from_v1(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    hr_account_rec a = account("acc_1", "pro");
    ok(s->ops->put_account(s, &a, &err), &err);
    hr_store_close(s);
    /* Turn the file back into a version-1 database holding v1 data. */
    exec_raw(f, "DROP TABLE events; DROP TABLE meter_values; DROP TABLE event_hist;"
                "DROP TABLE prompt_state; DROP TABLE prompt_events; DROP TABLE signal_state;"
                "DROP TABLE fired_signals; DROP TABLE tasks; DROP TABLE outbox; DROP TABLE deliveries;"
                "DROP TABLE ingest_state; DROP TABLE account_log;"
                "DELETE FROM schema_migrations WHERE version >= 2");
    assert_int_equal(query_int(f, "SELECT max(version) FROM schema_migrations"), 1);
    
    s = open_store(f);
    assert_int_equal(hr_store_sqlite_schema_version(s), 11);
    hr_event_rec e = event("m1", "acc_1", "Board Created", 1000);
    ok(s->ops->put_events(s, &e, 1, &err), &err);
    hr_meter_rec m = {"acc_1", "boards", 0, 1.0, 1000, NULL, 0};
    ok(s->ops->put_meter(s, &m, &err), &err);
    hr_hist_rec h = {"acc_1", NULL, "Board Created", 1000, 1000, "19700:1"};
    ok(s->ops->put_hists(s, &h, 1, &err), &err);
    seen v = {0};
    load_all(s, &v);
    assert_int_equal(v.n_acc, 1); /* v1 data survived */
    seen_free(&v);
    hr_store_close(s);
    assert_int_equal(query_int(f, "SELECT count(*) FROM sqlite_master WHERE name IN"
                                  " ('events','account_log','meter_values')"),
                     3);
    /* migration 4 dropped migration 2's seen table again */
    assert_int_equal(query_int(f, "SELECT count(*) FROM sqlite_master WHERE name IN"
                                  " ('seen','seen_received')"),
                     0);
    /* migrations 8 and 9 replaced migration 3's history tables */
    assert_int_equal(query_int(f, "SELECT count(*) FROM sqlite_master WHERE name IN"
                                  " ('event_days','event_days_day','event_stats')"),
                     0);
    assert_int_equal(query_int(f, "SELECT count(*) FROM event_hist"), 1);
    assert_int_equal(query_int(f, "SELECT count(*) FROM schema_migrations"), 11);

    /* A version-2 file gets migrations 3 to 9 alone: its logged events
     * were folded when they were written, and get chained per account. */
    exec_raw(f, "DROP TABLE event_hist;"
                "DROP TABLE prompt_state; DROP TABLE prompt_events; DROP TABLE signal_state;"
                "DROP TABLE fired_signals; DROP TABLE tasks; DROP TABLE outbox; DROP TABLE deliveries;"
                "DROP TABLE ingest_state; DROP TABLE account_log; DROP TABLE events;"
                "CREATE TABLE events (seq INTEGER PRIMARY KEY, message_id TEXT, account TEXT,"
                " user_id TEXT, anonymous_id TEXT, type TEXT NOT NULL, event TEXT,"
                " ts_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL, body TEXT NOT NULL);"
                "CREATE INDEX events_account ON events (account, seq);"
                "INSERT INTO events (message_id, account, type, ts_ms, received_ms, body) VALUES"
                " ('m1','acc_1','track',1,1,'{\"n\":1}'), ('m2','acc_2','track',2,2,'{\"n\":2}'),"
                " ('m3','acc_1','track',3,3,'{\"n\":3}');"
                "CREATE TABLE seen (message_id TEXT PRIMARY KEY, received_ms INTEGER);"
                "DELETE FROM schema_migrations WHERE version >= 3");
    s = open_store(f);
    assert_int_equal(hr_store_sqlite_schema_version(s), 11);
    assert_int_equal(folded_of(s), 3);
    ev_seen ev = {0};
    ok(s->ops->recent_events(s, "acc_1", 10, on_event, &ev, &err), &err);
    assert_int_equal(ev.n, 2);
    assert_string_equal(ev.msg[0], "m3");
    assert_string_equal(ev.msg[1], "m1");
    ev_free(&ev);
    hr_store_close(s);
    assert_int_equal(query_int(f, "SELECT count(*) FROM events"), 3);
    assert_int_equal(query_int(f, "SELECT count(*) FROM sqlite_master WHERE name='events_account'"), 0);
    assert_int_equal(query_int(f, "SELECT count(*) FROM event_hist"), 0);
    assert_int_equal(query_int(f, "SELECT count(*) FROM sqlite_master WHERE name='seen'"), 0);
    assert_int_equal(query_int(f, "SELECT count(*) FROM schema_migrations"), 11);
    /* migration 10: the old rows hold one event each */
    assert_int_equal(query_int(f, "SELECT sum(n) FROM events WHERE more IS NULL"), 3);

    /* A version-7 file's history (a row per day, stats apart) becomes one
     * row per (account, user, event): days in order, each after the first
     * as its gap from the one before; sums as numbers; stats without days. */
    exec_raw(f, "DROP TABLE event_hist;"
                "CREATE TABLE event_days (account TEXT NOT NULL, user TEXT NOT NULL,"
                " event TEXT NOT NULL, day INTEGER NOT NULL, count INTEGER NOT NULL,"
                " PRIMARY KEY (account, user, event, day)) WITHOUT ROWID;"
                "CREATE INDEX event_days_day ON event_days (day);"
                "CREATE TABLE event_stats (account TEXT NOT NULL, user TEXT NOT NULL,"
                " event TEXT NOT NULL, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,"
                " PRIMARY KEY (account, user, event)) WITHOUT ROWID;"
                "INSERT INTO event_days VALUES ('acc_1','','A',19705,2), ('acc_1','','A',19700,3),"
                " ('acc_1','','A',19702,1), ('acc_1','u1','A',19700,1), ('acc_2','','B',-3,4),"
                " ('acc_2','','B',2,1), ('acc_1','','sum' || char(31) || 'A' || char(31) || 'rows',19700,2.5);"
                "INSERT INTO event_stats VALUES ('acc_1','','A',100,200), ('acc_1','u1','A',150,150),"
                " ('acc_3','','C',5,6);"
                "ALTER TABLE events DROP COLUMN more_zstd; ALTER TABLE events DROP COLUMN more;"
                "ALTER TABLE events DROP COLUMN n;"
                "DELETE FROM schema_migrations WHERE version >= 8");
    s = open_store(f);
    assert_int_equal(hr_store_sqlite_schema_version(s), 11);
    seen h7 = {0};
    hr_store_loader l7 = {.ud = &h7, .hist = on_hist};
    ok(s->ops->load(s, &l7, &err), &err);
    assert_int_equal(h7.n_hist, 5);
    assert_string_equal(h7.hist_key[0], "acc_1//A");
    assert_string_equal(h7.hist_days[0], "19700:3,2:1,3:2");
    assert_int_equal(h7.hist_first[0], 100);
    assert_int_equal(h7.hist_last[0], 200);
    assert_string_equal(h7.hist_key[1], "acc_1//sum\x1f" "A\x1frows");
    assert_string_equal(h7.hist_days[1], "19700:2.5");
    assert_int_equal(h7.hist_first[1], 0);
    assert_string_equal(h7.hist_key[2], "acc_1/u1/A");
    assert_string_equal(h7.hist_days[2], "19700:1");
    assert_int_equal(h7.hist_first[2], 150);
    assert_string_equal(h7.hist_key[3], "acc_2//B");
    assert_string_equal(h7.hist_days[3], "-3:4,5:1");
    assert_string_equal(h7.hist_key[4], "acc_3//C");
    assert_string_equal(h7.hist_days[4], "");
    assert_int_equal(h7.hist_last[4], 6);
    seen_free(&h7);
    hr_store_close(s);
    assert_int_equal(query_int(f, "SELECT count(*) FROM sqlite_master WHERE name IN"
                                  " ('event_days','event_days_day','event_stats')"),
                     0);
}

static void test_events_seen_recent(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    hr_event_rec ev[6] = {
        event("m1", "acc_1", "A", 1000), event("m2", "acc_2", "B", 1001),
        event(NULL, "acc_1", "C", 1002), /* no message id: logged, not seen */
        event("m3", "acc_1", NULL, 1003), event("m3", "acc_1", "dup", 1004), /* safety net */
        event("m4", NULL, "D", 1005),    /* reached no account */
    };
    ev[3].anonymous_id = "anon_9";
    ok(s->ops->put_events(s, ev, 6, &err), &err);
    ok(s->ops->put_events(s, ev, 0, &err), &err); /* an empty batch is a no-op */
    assert_int_equal(query_int(f, "SELECT count(*) FROM events"), 6);
    /* seen ids are the log's own: events with a message id */
    assert_int_equal(query_int(f, "SELECT count(DISTINCT message_id) FROM events"), 4);
    assert_int_equal(query_int(f, "SELECT min(received_ms) FROM events WHERE message_id='m3'"), 1003);
    assert_int_equal(query_int(f, "SELECT count(*) FROM events WHERE account IS NULL"), 1);

    /* Newest first, at most limit. */
    ev_seen v = {0};
    ok(s->ops->recent_events(s, "acc_1", 3, on_event, &v, &err), &err);
    assert_int_equal(v.n, 3);
    assert_string_equal(v.event[0], "dup");
    assert_null(v.event[1]);
    assert_string_equal(v.msg[1], "m3");
    assert_string_equal(v.anon[1], "anon_9");
    assert_null(v.msg[2]);
    assert_string_equal(v.event[2], "C");
    assert_int_equal(v.received[2], 1002);
    assert_int_equal(v.ts[2], 997);
    assert_string_equal(v.body[2], "{\"type\":\"track\"}");
    assert_null(v.anon[2]);
    ev_free(&v);
    ok(s->ops->recent_events(s, "acc_1", 100, on_event, &v, &err), &err);
    assert_int_equal(v.n, 4);
    assert_string_equal(v.event[3], "A");
    ev_free(&v);
    ok(s->ops->recent_events(s, "acc_1", 0, on_event, &v, &err), &err);
    assert_int_equal(v.n, 0);
    ok(s->ops->recent_events(s, "acc_none", 10, on_event, &v, &err), &err);
    assert_int_equal(v.n, 0);
    /* A callback's non-zero return stops with that code; the statement is reusable. */
    v.stop_at = 2;
    assert_int_equal(s->ops->recent_events(s, "acc_1", 10, on_event, &v, &err), HR_EINTERNAL);
    assert_int_equal(v.n, 2);
    ev_free(&v);

    /* The limit is capped at 1000. */
    static hr_event_rec many[1010];
    for (int i = 0; i < 1010; i++) many[i] = event(NULL, "acc_3", "X", 2000 + i);
    ok(s->ops->put_events(s, many, 1010, &err), &err);
    ok(s->ops->recent_events(s, "acc_3", 5000, on_event, &v, &err), &err);
    assert_int_equal(v.n, 1000);
    assert_int_equal(v.received[0], 2000 + 1009);
    ev_free(&v);

    /* A bad record fails the whole batch when put_events owns the transaction. */
    hr_event_rec bad[3] = {event("m7", "acc_1", "ok", 5000), event("m8", "acc_1", "bad", 5001),
                           event("m9", "acc_1", "ok", 5002)};
    bad[1].type = NULL; /* NOT NULL */
    assert_int_equal(s->ops->put_events(s, bad, 3, &err), HR_ESTORE);
    assert_non_null(strstr(err.message, "put_events"));
    assert_int_equal(query_int(f, "SELECT count(*) FROM events WHERE received_ms >= 5000"), 0);
    assert_int_equal(query_int(f, "SELECT count(*) FROM events WHERE message_id='m7'"), 0);
    hr_store_close(s);
}

static int collect_meter(void *ud, const hr_meter_rec *r) {
    return on_meter(ud, r);
}

static void test_meter_upsert_and_series(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    const uint64_t u1[] = {0x0102030405060708ULL, UINT64_MAX, 0, 0x8000000000000001ULL};
    hr_meter_rec m = {"acc_1", "active_users", 3000, 4, 3500, u1, 4};
    ok(s->ops->put_meter(s, &m, &err), &err);
    /* Little-endian on disk, whatever the host. */
    assert_int_equal(query_int(f, "SELECT length(uniq) FROM meter_values"), 32);
    assert_int_equal(query_int(f, "SELECT hex(substr(uniq, 1, 8)) = '0807060504030201'"
                                  " FROM meter_values"),
                     1);
    /* Upsert: same key, new value, shorter set. */
    const uint64_t u2[] = {42, 7};
    m.value = 2.5;
    m.latest_ms = 3600;
    m.uniq = u2;
    m.nuniq = 2;
    ok(s->ops->put_meter(s, &m, &err), &err);
    assert_int_equal(query_int(f, "SELECT count(*) FROM meter_values"), 1);

    /* Other periods, another meter and account, a plain (non-unique) meter. */
    hr_meter_rec p = {"acc_1", "active_users", 1000, 9, 1100, u1, 4};
    ok(s->ops->put_meter(s, &p, &err), &err);
    p.period_start = 2000;
    p.uniq = NULL;
    p.nuniq = 0;
    ok(s->ops->put_meter(s, &p, &err), &err);
    p.period_start = 4000;
    ok(s->ops->put_meter(s, &p, &err), &err);
    hr_meter_rec o = {"acc_1", "api_calls", 2000, 1, 1, NULL, 0};
    ok(s->ops->put_meter(s, &o, &err), &err);
    o.account = "acc_2";
    o.meter = "active_users";
    ok(s->ops->put_meter(s, &o, &err), &err);

    seen v = {0};
    ok(s->ops->meter_series(s, "acc_1", "active_users", 1000, 4000, collect_meter, &v, &err),
       &err);
    assert_int_equal(v.n_meter, 3);
    assert_int_equal(v.meter[0].period_start, 1000);
    assert_int_equal(v.meter[0].nuniq, 4);
    assert_memory_equal(v.meter_uniq[0], u1, sizeof u1);
    assert_int_equal(v.meter[1].period_start, 2000);
    assert_int_equal(v.meter[1].nuniq, 0);
    assert_null(v.meter[1].uniq);
    assert_int_equal(v.meter[2].period_start, 3000);
    assert_true(v.meter[2].value == 2.5);
    assert_int_equal(v.meter[2].latest_ms, 3600);
    assert_int_equal(v.meter[2].nuniq, 2);
    assert_memory_equal(v.meter_uniq[2], u2, sizeof u2);
    assert_string_equal(v.meter_key[2], "acc_1/active_users");
    seen_free(&v);

    ok(s->ops->meter_series(s, "acc_1", "active_users", 1001, 3000, collect_meter, &v, &err),
       &err);
    assert_int_equal(v.n_meter, 1);
    assert_int_equal(v.meter[0].period_start, 2000);
    seen_free(&v);
    ok(s->ops->meter_series(s, "acc_9", "active_users", 0, 99999, collect_meter, &v, &err),
       &err);
    assert_int_equal(v.n_meter, 0);

    /* Upserting back to no set stores NULL. */
    m.uniq = NULL;
    m.nuniq = 0;
    ok(s->ops->put_meter(s, &m, &err), &err);
    assert_int_equal(query_int(f, "SELECT uniq IS NULL FROM meter_values"
                                  " WHERE account='acc_1' AND meter='active_users'"
                                  " AND period_start=3000"),
                     1);
    hr_store_close(s);
}

typedef struct reenter {
    hr_store *s;
    int inner_rc;
} reenter;

static int reenter_series(void *ud, const hr_meter_rec *r) {
    reenter *x = ud;
    hr_err err = {0};
    x->inner_rc = x->s->ops->meter_series(x->s, r->account, r->meter, 0, 10, reenter_series,
                                          ud, &err);
    return 0;
}

static void test_meter_series_reentry_refused(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    hr_meter_rec m = {"acc_1", "boards", 0, 1, 1, NULL, 0};
    ok(s->ops->put_meter(s, &m, &err), &err);
    reenter x = {s, 0};
    ok(s->ops->meter_series(s, "acc_1", "boards", 0, 10, reenter_series, &x, &err), &err);
    assert_int_equal(x.inner_rc, HR_ESTORE);
    hr_store_close(s);
}

static void test_load_latest_meters_and_seen(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    const uint64_t u[] = {5, 6, 7};
    hr_meter_rec rows[] = {
        {"acc_2", "boards", 2000, 20, 2100, NULL, 0},
        {"acc_1", "seats", 1000, 1, 1100, NULL, 0},
        {"acc_1", "active_users", 3000, 3, 3100, u, 3},
        {"acc_1", "active_users", 1000, 1, 1100, NULL, 0},
        {"acc_2", "boards", 1000, 10, 1100, NULL, 0},
        {"acc_1", "active_users", 2000, 2, 2100, u, 2},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        ok(s->ops->put_meter(s, &rows[i], &err), &err);
    hr_event_rec ev[4] = {event("m1", "acc_1", "A", 100), event("m2", "acc_1", "A", 200),
                          event("m3", "acc_1", "A", 300), event(NULL, "acc_1", "A", 400)};
    ok(s->ops->put_events(s, ev, 4, &err), &err);
    hr_ftrial_rec t = {"acc_1", "sso", 1, 2};
    ok(s->ops->put_ftrial(s, &t, &err), &err);

    seen v = {0};
    hr_store_loader l = {.ud = &v, .ftrial = on_ftrial, .meter = on_meter, .seen = on_seen,
                         .seen_since = 200};
    ok(s->ops->load(s, &l, &err), &err);
    /* Feature trials, then meters, then seen ids. */
    assert_string_equal(v.order, "fmmmss");
    assert_int_equal(v.n_meter, 3);
    assert_string_equal(v.meter_key[0], "acc_1/active_users");
    assert_int_equal(v.meter[0].period_start, 3000);
    assert_true(v.meter[0].value == 3);
    assert_int_equal(v.meter[0].latest_ms, 3100);
    assert_int_equal(v.meter[0].nuniq, 3);
    assert_memory_equal(v.meter_uniq[0], u, sizeof u);
    assert_string_equal(v.meter_key[1], "acc_1/seats");
    assert_int_equal(v.meter[1].period_start, 1000);
    assert_string_equal(v.meter_key[2], "acc_2/boards");
    assert_int_equal(v.meter[2].period_start, 2000);
    assert_true(v.meter[2].value == 20);
    assert_int_equal(v.n_seen, 2);
    int m2 = find(v.seen_id, v.n_seen, "m2"), m3 = find(v.seen_id, v.n_seen, "m3");
    assert_true(m2 >= 0 && m3 >= 0);
    assert_int_equal(v.seen_at[m2], 200);
    assert_int_equal(v.seen_at[m3], 300);
    seen_free(&v);

    /* the start-up replay gets the log past folded_seq, in order */
    ok(s->ops->put_folded_seq(s, 2, &err), &err);
    int64_t folded = folded_of(s);
    assert_int_equal(folded, 2);
    int64_t replayed[4] = {0};
    ok(s->ops->replay_events(s, folded, on_replay, replayed, &err), &err);
    assert_int_equal(replayed[0], 2);
    assert_int_equal(replayed[1], 3);
    assert_int_equal(replayed[2], 4);

    /* seen ids come from the log: pruning raw events forgets them too */
    int deleted = 0;
    ok(s->ops->put_folded_seq(s, 4, &err), &err);
    ok(s->ops->prune_events(s, 300, 1000, &deleted, NULL, &err), &err);
    assert_int_equal(deleted, 2);
    l.seen_since = 0;
    ok(s->ops->load(s, &l, &err), &err);
    assert_int_equal(v.n_seen, 1);
    assert_string_equal(v.seen_id[0], "m3");
    seen_free(&v);
    assert_int_equal(query_int(f, "SELECT count(*) FROM events"), 2);
    hr_store_close(s);
}

/* ---- packed events: one account's run of a commit shares a row ---- */

typedef struct evlog {
    int n;
    int64_t seq[16];
    char *text[16]; /* "id|user|anon|type|event|ts|received|account|body" */
} evlog;

static int on_logged(void *ud, const hr_event_rec *r) {
    evlog *g = ud;
    assert_true(g->n < 16);
    char t[512];
    snprintf(t, sizeof t, "%s|%s|%s|%s|%s|%lld|%lld|%s|%s", r->message_id ? r->message_id : "-",
             r->user_id ? r->user_id : "-", r->anonymous_id ? r->anonymous_id : "-", r->type,
             r->event ? r->event : "-", (long long)r->ts_ms, (long long)r->received_ms,
             r->account ? r->account : "-", r->body);
    g->seq[g->n] = r->seq;
    g->text[g->n++] = strdup(t);
    return 0;
}

static void evlog_free(evlog *g) {
    for (int i = 0; i < g->n; i++) free(g->text[i]);
    g->n = 0;
}

static void test_packed_events(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    hr_event_rec ev[8] = {
        event("p1", "acc_1", "A", 100), event(NULL, "acc_1", "B", 100),
        event("p3", "acc_1", NULL, 100), event("p4", "acc_2", "A", 100),
        event("p5", "acc_2", "headroom.usage_threshold", 100), event("p6", "acc_2", "A", 100),
        event("p7", NULL, "A", 100), event("p8", "acc_1", "A", 101),
    };
    ev[1].user_id = NULL, ev[1].anonymous_id = "anon-1", ev[1].body = "{\"b\":1}";
    ev[1].body_len = 7;
    ev[2].type = "page", ev[2].ts_ms = -12345; /* another type: a row of its own */
    ev[0].ts_ms = 1LL << 50;
    ok(s->ops->put_events(s, ev, 8, &err), &err);
    /* rows: [p1 p2], [p3], [p4], [p5], [p6], [p7], [p8] */
    assert_int_equal(query_int(f, "SELECT count(*) FROM events"), 7);
    assert_int_equal(query_int(f, "SELECT sum(n) FROM events"), 8);
    assert_int_equal(query_int(f, "SELECT max(seq) FROM events"), 8);
    assert_int_equal(query_int(f, "SELECT n FROM events WHERE seq = 2"), 2);
    int64_t last = 0;
    ok(s->ops->last_seq(s, &last, &err), &err);
    assert_int_equal(last, 8);

    /* replay: every event, its own seq, its own fields */
    evlog g = {0};
    ok(s->ops->replay_events(s, 0, on_logged, &g, &err), &err);
    assert_int_equal(g.n, 8);
    for (int i = 0; i < 8; i++) assert_int_equal(g.seq[i], i + 1);
    char want[256];
    snprintf(want, sizeof want, "p1|u1|-|track|A|%lld|100|acc_1|{\"type\":\"track\"}", 1LL << 50);
    assert_string_equal(g.text[0], want);
    assert_string_equal(g.text[1], "-|-|anon-1|track|B|95|100|acc_1|{\"b\":1}");
    assert_string_equal(g.text[2], "p3|u1|-|page|-|-12345|100|acc_1|{\"type\":\"track\"}");
    evlog_free(&g);
    /* from inside a row: its earlier events are skipped */
    ok(s->ops->replay_events(s, 1, on_logged, &g, &err), &err);
    assert_int_equal(g.n, 7);
    assert_int_equal(g.seq[0], 2);
    assert_string_equal(g.text[0], "-|-|anon-1|track|B|95|100|acc_1|{\"b\":1}");
    evlog_free(&g);

    /* recent events: newest first through the rows, cut inside one */
    ok(s->ops->recent_events(s, "acc_1", 3, on_logged, &g, &err), &err);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.seq[0], 8);
    assert_int_equal(g.seq[1], 3);
    assert_int_equal(g.seq[2], 2);
    assert_string_equal(g.text[2], "-|-|anon-1|track|B|95|100|acc_1|{\"b\":1}");
    evlog_free(&g);
    ok(s->ops->recent_events(s, "acc_1", 10, on_logged, &g, &err), &err);
    assert_int_equal(g.n, 4);
    assert_int_equal(g.seq[3], 1);
    evlog_free(&g);

    /* the dedup window's ids, packed ones included */
    seen v = {0};
    hr_store_loader l = {.ud = &v, .seen = on_seen, .seen_since = 0};
    ok(s->ops->load(s, &l, &err), &err);
    assert_int_equal(v.n_seen, 7); /* p2 had no id */
    seen_free(&v);

    /* retention: rows whole, events counted */
    ok(s->ops->put_folded_seq(s, 2, &err), &err);
    int rows = 0;
    int64_t events = 0;
    ok(s->ops->prune_events(s, 1000, 1000, &rows, &events, &err), &err);
    assert_int_equal(rows, 1);
    assert_int_equal(events, 2);
    ok(s->ops->replay_events(s, 0, on_logged, &g, &err), &err);
    assert_int_equal(g.n, 6);
    assert_int_equal(g.seq[0], 3);
    evlog_free(&g);

    /* a damaged row is an error, not a crash or a guess */
    hr_event_rec two[2] = {event("q1", "acc_3", "A", 200), event("q2", "acc_3", "A", 200)};
    ok(s->ops->put_events(s, two, 2, &err), &err);
    hr_store_close(s);
    exec_raw(f, "UPDATE events SET more = substr(more, 1, 5) WHERE n = 2");
    s = open_store(f);
    assert_int_not_equal(s->ops->replay_events(s, 8, on_logged, &g, &err), 0);
    assert_non_null(strstr(err.message, "damaged"));
    evlog_free(&g);
    hr_store_close(s);
}

/* A long run of one account's events is stored as one zstd frame: it
 * reads back as a plain run does, and a damaged frame is an error. */
static void test_packed_events_compressed(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    enum { N = 12 };
    hr_event_rec ev[N];
    char ids[N][8], bodies[N][80];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "z%02d", i + 1);
        snprintf(bodies[i], sizeof bodies[i],
                 "{\"type\":\"track\",\"event\":\"A\",\"properties\":{\"i\":%d}}", i + 1);
        ev[i] = event(ids[i], "acc_z", "A", 300);
        ev[i].body = bodies[i];
    }
    ev[4].user_id = NULL, ev[4].anonymous_id = "anon-5";
    ok(s->ops->put_events(s, ev, N, &err), &err);
    assert_int_equal(query_int(f, "SELECT count(*) FROM events"), 1);
    assert_int_equal(query_int(f, "SELECT n FROM events"), N);
    assert_int_equal(query_int(f, "SELECT more_zstd FROM events"), 1);
    /* the frame is smaller than the bodies alone */
    assert_true(query_int(f, "SELECT length(more) FROM events") < (N - 1) * 60);

    evlog g = {0};
    ok(s->ops->replay_events(s, 0, on_logged, &g, &err), &err);
    assert_int_equal(g.n, N);
    char want[1024];
    for (int i = 0; i < N; i++) {
        assert_int_equal(g.seq[i], i + 1);
        snprintf(want, sizeof want, "z%02d|%s|%s|track|A|295|300|acc_z|%s", i + 1,
                 i == 4 ? "-" : "u1", i == 4 ? "anon-5" : "-", bodies[i]);
        assert_string_equal(g.text[i], want);
    }
    evlog_free(&g);
    ok(s->ops->replay_events(s, 5, on_logged, &g, &err), &err);
    assert_int_equal(g.n, N - 5);
    assert_int_equal(g.seq[0], 6);
    evlog_free(&g);
    ok(s->ops->recent_events(s, "acc_z", 3, on_logged, &g, &err), &err);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.seq[0], N);
    assert_int_equal(g.seq[2], N - 2);
    evlog_free(&g);
    seen v = {0};
    hr_store_loader l = {.ud = &v, .seen = on_seen, .seen_since = 0};
    ok(s->ops->load(s, &l, &err), &err);
    assert_int_equal(v.n_seen, N);
    seen_free(&v);
    hr_store_close(s);

    exec_raw(f, "UPDATE events SET more = substr(more, 1, length(more) - 6)");
    s = open_store(f);
    assert_int_not_equal(s->ops->replay_events(s, 0, on_logged, &g, &err), 0);
    assert_non_null(strstr(err.message, "damaged"));
    evlog_free(&g);
    hr_store_close(s);
    exec_raw(f, "UPDATE events SET more = randomblob(200)");
    s = open_store(f);
    assert_int_not_equal(s->ops->recent_events(s, "acc_z", 5, on_logged, &g, &err), 0);
    assert_non_null(strstr(err.message, "damaged"));
    evlog_free(&g);
    hr_store_close(s);
}

static void test_delete_account_meters_and_events(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    hr_meter_rec m = {"acc_1", "boards", 1000, 1, 1, NULL, 0};
    ok(s->ops->put_meter(s, &m, &err), &err);
    m.account = "acc_10";
    ok(s->ops->put_meter(s, &m, &err), &err);
    hr_event_rec e = event("m1", "acc_1", "A", 100);
    ok(s->ops->put_events(s, &e, 1, &err), &err);
    ok(s->ops->delete_account(s, "acc_1", &err), &err);
    assert_int_equal(query_int(f, "SELECT count(*) FROM meter_values WHERE account='acc_1'"), 0);
    assert_int_equal(query_int(f, "SELECT count(*) FROM meter_values"), 1);
    /* The event log is history: it stays. */
    assert_int_equal(query_int(f, "SELECT count(*) FROM events WHERE account='acc_1'"), 1);
    hr_store_close(s);
}

static void test_events_meters_in_transactions(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    hr_event_rec ev[2] = {event("m1", "acc_1", "A", 100), event("m2", "acc_1", "B", 200)};
    hr_meter_rec m = {"acc_1", "boards", 0, 2, 200, NULL, 0};

    ok(s->ops->begin(s, &err), &err);
    ok(s->ops->put_events(s, ev, 2, &err), &err);
    ok(s->ops->put_meter(s, &m, &err), &err);
    s->ops->rollback(s);
    assert_int_equal(query_int(f, "SELECT count(*) FROM events"), 0);
    assert_int_equal(query_int(f, "SELECT count(*) FROM meter_values"), 0);

    ok(s->ops->begin(s, &err), &err);
    ok(s->ops->put_events(s, ev, 2, &err), &err);
    ok(s->ops->put_meter(s, &m, &err), &err);
    /* put_events joined the caller's transaction: nothing committed yet. */
    assert_int_equal(query_int(f, "SELECT count(*) FROM events"), 0);
    ok(s->ops->commit(s, &err), &err);
    assert_int_equal(query_int(f, "SELECT count(*) FROM events"), 2);
    assert_int_equal(query_int(f, "SELECT count(*) FROM meter_values"), 1);
    hr_store_close(s);
}

/* ---- event history ---- */

static void test_history_rows(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    hr_hist_rec r[3] = {
        {"acc_1", NULL, "Board Created", 100, 200, "19700:2"}, /* account level */
        {"acc_1", "u1", "Board Created", 100, 150, "19700:1,1:4"},
        {"acc_1", "u1", HR_SUM_PREFIX "Export\x1frows", 0, 0, "19700:2.5"},
    };
    ok(s->ops->put_hists(s, r, 3, &err), &err);
    ok(s->ops->put_hists(s, r, 0, &err), &err); /* an empty batch is a no-op */
    assert_int_equal(query_int(f, "SELECT count(*) FROM event_hist"), 3);
    /* NULL user is stored as '', so it is a key like any other. */
    assert_int_equal(query_int(f, "SELECT count(*) FROM event_hist WHERE user = ''"), 1);
    assert_int_equal(query_int(f, "SELECT count(*) FROM event_hist WHERE user IS NULL"), 0);

    /* A row is replaced whole ("" and NULL are the same account-level row);
     * no days is an empty text, not NULL. */
    hr_hist_rec again[2] = {{"acc_1", "", "Board Created", 90, 300, "19700:5,7:1"},
                            {"acc_1", "u1", "Board Created", 100, 150, NULL}};
    ok(s->ops->put_hists(s, again, 2, &err), &err);
    assert_int_equal(query_int(f, "SELECT count(*) FROM event_hist"), 3);
    assert_int_equal(query_int(f, "SELECT first_ms FROM event_hist WHERE user = ''"), 90);
    assert_int_equal(query_int(f, "SELECT last_ms FROM event_hist WHERE user = ''"), 300);
    assert_int_equal(query_int(f, "SELECT length(days) FROM event_hist WHERE user = 'u1'"
                                  " AND event = 'Board Created'"),
                     0);

    seen v = {0};
    hr_store_loader l = {.ud = &v, .hist = on_hist};
    ok(s->ops->load(s, &l, &err), &err);
    assert_int_equal(v.n_hist, 3);
    assert_string_equal(v.hist_key[0], "acc_1//Board Created");
    assert_string_equal(v.hist_days[0], "19700:5,7:1");
    assert_int_equal(v.hist_first[0], 90);
    assert_string_equal(v.hist_key[1], "acc_1/u1/Board Created");
    assert_string_equal(v.hist_days[1], "");
    assert_string_equal(v.hist_key[2], "acc_1/u1/" HR_SUM_PREFIX "Export\x1frows");
    assert_string_equal(v.hist_days[2], "19700:2.5");
    seen_free(&v);
    hr_store_close(s);
}

static int stop_hist(void *ud, const hr_hist_rec *r) {
    (*(int *)ud)++;
    return HR_EINTERNAL;
}

static void test_history_load_order(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    /* Load hands back every row once, after the seen ids, in the order the
     * rows were first written (the engine takes any order). */
    hr_hist_rec r[5] = {
        {"acc_2", NULL, "A", 1, 2, "100:1"}, {"acc_1", "u1", "B", 3, 4, "101:2"},
        {"acc_1", "u1", "A", 5, 6, "100:5,2:3"}, {"acc_1", NULL, "A", 7, 8, "99:6,1:4"},
        {"acc_10", "u1", "A", 9, 10, "120:7"},
    };
    ok(s->ops->put_hists(s, r, 5, &err), &err);
    hr_event_rec e = event("m1", "acc_1", "A", 1000);
    ok(s->ops->put_events(s, &e, 1, &err), &err);
    hr_ftrial_rec tr = {"acc_1", "sso", 1, 2};
    ok(s->ops->put_ftrial(s, &tr, &err), &err);

    seen v = {0};
    hr_store_loader l = {.ud = &v, .ftrial = on_ftrial, .seen = on_seen, .hist = on_hist};
    ok(s->ops->load(s, &l, &err), &err);
    assert_string_equal(v.order, "fshhhhh");
    assert_string_equal(v.hist_key[0], "acc_2//A");
    assert_string_equal(v.hist_key[1], "acc_1/u1/B");
    assert_string_equal(v.hist_key[2], "acc_1/u1/A");
    assert_string_equal(v.hist_key[3], "acc_1//A");
    assert_int_equal(v.hist_first[3], 7);
    assert_int_equal(v.hist_last[3], 8);
    assert_string_equal(v.hist_days[3], "99:6,1:4");
    assert_string_equal(v.hist_key[4], "acc_10/u1/A");
    seen_free(&v);
    /* a rewrite keeps the row where it was */
    hr_hist_rec again = {"acc_2", "", "A", 1, 3, "100:2"};
    ok(s->ops->put_hists(s, &again, 1, &err), &err);
    ok(s->ops->load(s, &l, &err), &err);
    assert_int_equal(v.n_hist, 5);
    assert_string_equal(v.hist_key[0], "acc_2//A");
    assert_string_equal(v.hist_days[0], "100:2");
    assert_int_equal(v.hist_last[0], 3);
    seen_free(&v);

    /* A callback's non-zero return stops the load with that code. */
    int calls = 0;
    hr_store_loader stop = {.ud = &calls, .hist = stop_hist};
    assert_int_equal(s->ops->load(s, &stop, &err), HR_EINTERNAL);
    assert_int_equal(calls, 1);
    hr_store_close(s);
}

static void test_delete_account_history(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    const char *ids[] = {"acc_1", "acc_10"}; /* acc_1 is a prefix of acc_10 */
    for (int i = 0; i < 2; i++) {
        hr_hist_rec r[2] = {{ids[i], NULL, "A", 1, 2, "10:1"}, {ids[i], "u1", "A", 1, 2, "10:1"}};
        ok(s->ops->put_hists(s, r, 2, &err), &err);
    }
    ok(s->ops->delete_account(s, "acc_1", &err), &err);
    assert_int_equal(query_int(f, "SELECT count(*) FROM event_hist WHERE account='acc_1'"), 0);
    assert_int_equal(query_int(f, "SELECT count(*) FROM event_hist"), 2);

    /* Inside an explicit transaction the cascade belongs to it. */
    ok(s->ops->begin(s, &err), &err);
    ok(s->ops->delete_account(s, "acc_10", &err), &err);
    s->ops->rollback(s);
    assert_int_equal(query_int(f, "SELECT count(*) FROM event_hist"), 2);
    hr_store_close(s);
}

static void test_history_transactions(void **state) {
    fixture *f = *state;
    hr_store *s = open_store(f);
    hr_err err = {0};
    hr_hist_rec r[2] = {{"acc_1", NULL, "A", 1, 2, "10:1"}, {"acc_1", "u1", "A", 1, 2, "10:1"}};

    /* Inside the caller's transaction: rolled back with it. */
    ok(s->ops->begin(s, &err), &err);
    ok(s->ops->put_hists(s, r, 2, &err), &err);
    s->ops->rollback(s);
    assert_int_equal(query_int(f, "SELECT count(*) FROM event_hist"), 0);

    /* ... and committed with it, not before. */
    ok(s->ops->begin(s, &err), &err);
    ok(s->ops->put_hists(s, r, 2, &err), &err);
    assert_int_equal(query_int(f, "SELECT count(*) FROM event_hist"), 0);
    ok(s->ops->commit(s, &err), &err);
    assert_int_equal(query_int(f, "SELECT count(*) FROM event_hist"), 2);

    /* On its own, a batch with a bad record writes none of it. */
    hr_hist_rec bad[3] = {{"acc_2", NULL, "A", 1, 2, "10:1"},
                          {"acc_2", NULL, NULL, 1, 2, "10:1"}, /* event is NOT NULL */
                          {"acc_2", NULL, "C", 1, 2, "10:1"}};
    assert_int_equal(s->ops->put_hists(s, bad, 3, &err), HR_ESTORE);
    assert_int_equal(err.code, HR_ESTORE);
    assert_non_null(strstr(err.message, "put_hists"));
    assert_non_null(strstr(err.message, "NOT NULL"));
    assert_int_equal(query_int(f, "SELECT count(*) FROM event_hist WHERE account='acc_2'"), 0);
    /* No transaction is left open, and the statement is reusable. */
    ok(s->ops->put_hists(s, bad, 1, &err), &err);
    assert_int_equal(query_int(f, "SELECT count(*) FROM event_hist WHERE account='acc_2'"), 1);

    /* Inside the caller's transaction a failure is the caller's to undo. */
    ok(s->ops->begin(s, &err), &err);
    assert_int_equal(s->ops->put_hists(s, &bad[1], 1, &err), HR_ESTORE);
    s->ops->rollback(s);
    hr_store_close(s);

    /* Durable across reopen. */
    s = open_store(f);
    seen v = {0};
    hr_store_loader l = {.ud = &v, .hist = on_hist};
    ok(s->ops->load(s, &l, &err), &err);
    assert_int_equal(v.n_hist, 3);
    seen_free(&v);
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
        cmocka_unit_test_setup_teardown(test_migrations_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_seen_recent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meter_upsert_and_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meter_series_reentry_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_latest_meters_and_seen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_account_meters_and_events, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_events_meters_in_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_load_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_account_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_packed_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_packed_events_compressed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_100k, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
