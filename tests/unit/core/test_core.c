/* test_core.c: time arithmetic, the hash map, JSON writing and decoding. */
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
#include "idset.h"
#include "jsonbody.h"
#include "map.h"
#include "timeutil.h"

static int64_t t(const char *s) {
    int64_t v = 0;
    assert_int_equal(hr_time_parse(s, &v), 0);
    return v;
}

static void time_parse_format(void **state) {
    char buf[40];
    hr_time_format(t("2026-12-01T00:00:00Z"), buf, sizeof buf);
    assert_string_equal(buf, "2026-12-01T00:00:00Z");
    assert_int_equal(t("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(t("2026-12-01"), t("2026-12-01T00:00:00Z"));
    assert_int_equal(t("2026-12-01T02:00:00+02:00"), t("2026-12-01T00:00:00Z"));
    assert_int_equal(t("2026-11-30T19:00:00.123-05:00"), t("2026-12-01T00:00:00Z"));
    int64_t v;
    assert_int_equal(hr_time_parse("2026-02-30", &v), -1);
    assert_int_equal(hr_time_parse("2026-13-01", &v), -1);
    assert_int_equal(hr_time_parse("2026-12-01T00:00", &v), -1); /* no zone */
    assert_int_equal(hr_time_parse("yesterday", &v), -1);
    assert_int_equal(hr_time_parse("2024-02-29", &v), 0);
    assert_int_equal(hr_time_parse("2023-02-29", &v), -1);
}

static void month_arithmetic(void **state) {
    assert_int_equal(hr_time_add_months(t("2026-01-31T10:00:00Z"), 1), t("2026-02-28T10:00:00Z"));
    assert_int_equal(hr_time_add_months(t("2024-01-31T00:00:00Z"), 1), t("2024-02-29T00:00:00Z"));
    assert_int_equal(hr_time_add_months(t("2026-12-15T00:00:00Z"), 1), t("2027-01-15T00:00:00Z"));
    assert_int_equal(hr_time_add_months(t("2026-03-31T00:00:00Z"), -1), t("2026-02-28T00:00:00Z"));
    assert_int_equal(hr_time_month_start(t("2026-11-22T11:00:00Z")), t("2026-11-01"));
    assert_int_equal(hr_time_week_start(t("2026-11-22T11:00:00Z")), t("2026-11-16")); /* a Monday */
    assert_int_equal(hr_time_day_start(t("2026-11-22T23:59:59Z")), t("2026-11-22"));
    assert_int_equal(hr_time_year_start(t("2026-11-22T11:00:00Z")), t("2026-01-01"));
}

static void map_put_get_del(void **state) {
    hr_map *m = hr_map_new(4);
    enum { N = 20000 };
    char **keys = calloc(N, sizeof *keys);
    int err;
    for (int i = 0; i < N; i++) {
        keys[i] = malloc(16);
        snprintf(keys[i], 16, "k%d", i);
        assert_null(hr_map_put(m, keys[i], keys[i], &err));
        assert_int_equal(err, 0);
    }
    assert_int_equal(hr_map_count(m), N);
    for (int i = 0; i < N; i += 2) assert_ptr_equal(hr_map_del(m, keys[i]), keys[i]);
    assert_int_equal(hr_map_count(m), N / 2);
    for (int i = 0; i < N; i++) {
        if (i % 2)
            assert_ptr_equal(hr_map_get(m, keys[i]), keys[i]);
        else
            assert_null(hr_map_get(m, keys[i]));
    }
    size_t pos = 0, seen = 0;
    while (hr_map_next(m, &pos, NULL, NULL)) seen++;
    assert_int_equal(seen, N / 2);
    hr_map_free(m);
    for (int i = 0; i < N; i++) free(keys[i]);
    free(keys);
}

/* Keys of every length around the hash's word boundaries (3, 4, 7, 8, 16,
 * 17), sharing prefixes and suffixes, in a map big enough for its slots to
 * be mapped on huge pages; and hr_key_eq on the same lengths. */
static void map_short_key_hash_and_big_table(void **state) {
    enum { N = 120000 };
    hr_map *m = hr_map_new(N);
    char (*keys)[24] = calloc(N, sizeof *keys);
    int err;
    for (int i = 0; i < N; i++) {
        int len = 1 + i % 20;
        snprintf(keys[i], sizeof keys[i], "%0*d", len, i / 20);
        if ((int)strlen(keys[i]) != len) snprintf(keys[i], sizeof keys[i], "x%dy%d", len, i);
        void *old = hr_map_put(m, keys[i], keys[i], &err);
        assert_int_equal(err, 0);
        if (old) assert_string_equal(old, keys[i]); /* the same string again */
    }
    for (int i = 0; i < N; i++) assert_string_equal(hr_map_get(m, keys[i]), keys[i]);
    assert_null(hr_map_get(m, "000000000000000000000")); /* 21 bytes: none that long */
    assert_null(hr_map_get(m, ""));
    for (size_t n = 0; n <= 20; n++) {
        char x[24], y[24];
        memset(x, 'a', n), memset(y, 'a', n);
        x[n] = y[n] = 0;
        assert_true(hr_key_eq(x, y, n));
        for (size_t j = 0; j < n; j++) {
            y[j] = 'b';
            assert_false(hr_key_eq(x, y, n));
            y[j] = 'a';
        }
    }
    hr_map_free(m);
    free(keys);
}

static void map_prefixes_and_long_keys(void **state) {
    hr_map *m = hr_map_new(4);
    static char keys[6][400];
    int err;
    const char *v[6];
    for (int i = 0; i < 6; i++) {
        /* "a", "aa", ... and two keys past the 255 bytes kept in a slot tag */
        size_t n = i < 4 ? (size_t)i + 1 : 300 + 2 * (size_t)i;
        memset(keys[i], 'a', n);
        keys[i][n] = 0;
        v[i] = keys[i];
        hr_map_put(m, keys[i], (void *)v[i], &err);
    }
    for (int i = 0; i < 6; i++) assert_ptr_equal(hr_map_get(m, keys[i]), v[i]);
    char probe[400];
    memset(probe, 'a', 309);
    probe[309] = 0; /* between the two long keys (308, 310): absent */
    assert_null(hr_map_get(m, probe));
    assert_null(hr_map_getn(m, keys[5], 300));
    const char *many[3] = {"k1", "k22", "k333"};
    void *vals[3] = {(void *)"1", (void *)"2", (void *)"3"};
    assert_int_equal(hr_map_put_many(m, many, vals, 3), 0);
    assert_ptr_equal(hr_map_get(m, "k22"), vals[1]);
    assert_int_equal(hr_map_count(m), 9);
    hr_map_free(m);
}

static void idset_window(void **state) {
    hr_idset *s = hr_idset_new();
    for (uint64_t i = 0; i < 50000; i++) assert_int_equal(hr_idset_add(s, i * 2654435761u, (uint32_t)(i / 1000)), 0);
    assert_int_equal(hr_idset_count(s), 50000);
    assert_true(hr_idset_has(s, 0)); /* 0 is stored as 1 and found as such */
    assert_true(hr_idset_has(s, 49999ull * 2654435761u));
    assert_false(hr_idset_has(s, 7));
    hr_idset_add(s, 5ull * 2654435761u, 49); /* refreshed: survives the prune */
    assert_int_equal(hr_idset_prune(s, 40), 40000 - 1);
    assert_int_equal(hr_idset_count(s), 10001);
    assert_true(hr_idset_has(s, 5ull * 2654435761u));
    assert_false(hr_idset_has(s, 6ull * 2654435761u));
    assert_true(hr_idset_has(s, 45000ull * 2654435761u));
    assert_int_equal(hr_idset_prune(s, 40), 0);
    hr_idset_free(s);
}

/* With a size bound the table stops growing and drops its oldest minutes
 * in place: memory stays put, every id of the newest minutes is still
 * found (the in-place repair leaves no probe chain broken), none dropped
 * is, and a burst within one minute is still bounded. */
/* Reserving sizes the table once, keeping what it holds (also while a
 * growth is half done), and never past the bound. */
static void idset_reserve(void **state) {
    (void)state;
    hr_idset *s = hr_idset_new();
    /* 1024 slots grow to 2048 at the 717th id; 16 old slots are moved per
     * add after that, so at 730 the old table is still draining */
    for (uint64_t i = 0; i < 730; i++) assert_int_equal(hr_idset_add(s, i * 2654435761u, 1), 0);
    size_t before = hr_idset_bytes(s);
    assert_int_equal(hr_idset_reserve(s, 100000), 0);
    assert_true(hr_idset_bytes(s) >= 100000 * 16 * 10 / 7);
    assert_true(hr_idset_bytes(s) > before);
    assert_int_equal(hr_idset_count(s), 730);
    for (uint64_t i = 0; i < 730; i++) assert_true(hr_idset_has(s, i * 2654435761u));
    size_t sized = hr_idset_bytes(s);
    for (uint64_t i = 730; i < 100000; i++)
        assert_int_equal(hr_idset_add(s, i * 2654435761u, 2), 0);
    assert_int_equal(hr_idset_bytes(s), sized); /* no growth on the way */
    assert_int_equal(hr_idset_count(s), 100000);
    assert_int_equal(hr_idset_reserve(s, 10), 0); /* never shrinks */
    assert_int_equal(hr_idset_bytes(s), sized);
    hr_idset_free(s);
    hr_idset *b = hr_idset_new();
    hr_idset_set_max_bytes(b, 1u << 20);
    assert_int_equal(hr_idset_reserve(b, 1000000), 0);
    assert_true(hr_idset_bytes(b) <= 1u << 20);
    hr_idset_free(b);
}

static void idset_bounded(void **state) {
    enum { N = 400000, PER_MIN = 2000 };
    uint64_t *ids = malloc(N * sizeof *ids), x = 88172645463325252ull;
    assert_non_null(ids);
    hr_idset *s = hr_idset_new();
    hr_idset_set_max_bytes(s, 1u << 20); /* 32,768 slots (and half that while growing): ~22,900 ids */
    size_t peak = 0;
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ids[i] = x;
        assert_int_equal(hr_idset_add(s, ids[i], (uint32_t)(i / PER_MIN)), 0);
        if (hr_idset_bytes(s) > peak) peak = hr_idset_bytes(s);
    }
    assert_true(peak <= 1u << 20);
    size_t n = hr_idset_count(s);
    assert_true(n > 15000 && n <= 22937);
    assert_int_equal(hr_idset_evicted(s), N - n);
    uint32_t oldest = hr_idset_oldest(s);
    assert_true(oldest > 100 && oldest < N / PER_MIN);
    size_t found = 0;
    for (int i = 0; i < N; i++) {
        int has = hr_idset_has(s, ids[i]);
        if ((uint32_t)(i / PER_MIN) > oldest) assert_true(has); /* newer than the cut: kept */
        if ((uint32_t)(i / PER_MIN) < oldest) assert_false(has);
        found += has;
    }
    assert_int_equal(found, n);
    /* one minute holding more than the table: a quarter by hash at a time */
    for (int i = 0; i < N; i++) assert_int_equal(hr_idset_add(s, ids[i] ^ 0x5555, 100000), 0);
    assert_true(hr_idset_bytes(s) <= 1u << 20);
    assert_true(hr_idset_count(s) <= 22937);
    assert_true(hr_idset_has(s, ids[N - 1] ^ 0x5555));
    hr_idset_free(s);
    free(ids);
}

/* Growing moves entries a few slots per insert: every id stays found, a
 * re-added id is not counted twice, a refresh reaches the table it is in. */
static void idset_growth(void **state) {
    enum { N = 300000 };
    uint64_t *ids = malloc(N * sizeof *ids), x = 88172645463325252ull;
    assert_non_null(ids);
    hr_idset *s = hr_idset_new();
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ids[i] = x;
        assert_int_equal(hr_idset_add(s, ids[i], (uint32_t)(i / 1000)), 0);
        assert_true(hr_idset_has(s, ids[i]));
        assert_true(hr_idset_has(s, ids[i / 2]));
        if (i % 97 == 0) { /* a retry of an earlier message: same count */
            size_t n = hr_idset_count(s);
            assert_int_equal(hr_idset_add(s, ids[i / 3], (uint32_t)(i / 1000)), 0);
            assert_int_equal(hr_idset_count(s), n);
        }
        assert_int_equal(hr_idset_count(s), (size_t)i + 1);
    }
    for (int i = 0; i < N; i++) assert_true(hr_idset_has(s, ids[i]));
    assert_false(hr_idset_has(s, 12345));
    /* the retries refreshed their minutes; ids[5] is refreshed past the cut */
    assert_int_equal(hr_idset_add(s, ids[5], 1000), 0);
    size_t dropped = hr_idset_prune(s, 250);
    size_t kept = 0;
    for (int i = 0; i < N; i++) kept += hr_idset_has(s, ids[i]);
    assert_int_equal(kept + dropped, N);
    assert_int_equal(hr_idset_count(s), kept);
    assert_true(hr_idset_has(s, ids[5]));
    assert_true(hr_idset_has(s, ids[N - 1]));
    assert_false(hr_idset_has(s, ids[1]));
    hr_idset_free(s);
    free(ids);
}

static void json_writer_escapes(void **state) {
    hr_buf b;
    hr_buf_init(&b);
    hr_buf_json_str(&b, "a\"b\\c\n\x01");
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
    hr_buf_reset(&b);
    hr_buf_i64(&b, INT64_MIN);
    assert_string_equal(b.data, "-9223372036854775808");
    hr_buf_dispose(&b);
}

static void json_decode_offsets(void **state) {
    json_object *o;
    size_t off;
    char msg[160];
    assert_int_equal(hr_json_decode("{\"a\":1}", 7, &o, &off, msg, sizeof msg), 0);
    json_object_put(o);
    assert_int_equal(hr_json_decode("{\"a\":}", 6, &o, &off, msg, sizeof msg), HR_EPARSE);
    assert_int_equal(off, 5);
    assert_int_equal(hr_json_decode("{\"a\":1", 6, &o, &off, msg, sizeof msg), HR_EPARSE);
    assert_int_equal(off, 6);
    assert_int_equal(hr_json_decode("{} x", 4, &o, &off, msg, sizeof msg), HR_EPARSE);
    assert_int_equal(off, 3);
    assert_int_equal(hr_json_decode("  ", 2, &o, &off, msg, sizeof msg), HR_EPARSE);
    /* large integers stay exact */
    assert_int_equal(hr_json_decode("9007199254740993", 16, &o, &off, msg, sizeof msg), 0);
    assert_true(json_object_get_int64(o) == 9007199254740993LL);
    json_object_put(o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(time_parse_format), cmocka_unit_test(month_arithmetic),
        cmocka_unit_test(map_put_get_del),   cmocka_unit_test(json_writer_escapes),
        cmocka_unit_test(map_prefixes_and_long_keys), cmocka_unit_test(map_short_key_hash_and_big_table), cmocka_unit_test(idset_window),
        cmocka_unit_test(idset_growth),
        cmocka_unit_test(idset_reserve), cmocka_unit_test(idset_bounded),
        cmocka_unit_test(json_decode_offsets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
