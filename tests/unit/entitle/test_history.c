/* test_history.c: the event history's stored form (history.c): one text
 * per (account, user, event) holding its days, written from memory and read
 * back at start-up. Round trips of counts and sums, the horizon, and every
 * malformed text refused rather than half read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entitle/entitle_int.h"

#define TODAY 20400

static void ent_free(hr_hist_ent *he) { free(he->days); }
static void sum_free(hr_sum_ent *se) { free(se->days); }

static char *text_of(const hr_hist_ent *he, const hr_sum_ent *se) {
    hr_buf b;
    hr_buf_init(&b);
    hr_hist_days_text(he, se, &b);
    hr_buf_putc(&b, 0);
    char *s = strdup(b.data);
    hr_buf_dispose(&b);
    return s;
}

static void test_counts_round_trip(void **state) {
    (void)state;
    hr_hist_ent he = {0};
    /* set out of order: the text is in day order, gaps after the first */
    assert_int_equal(hr_hist_set_day(&he, 20305, 2, TODAY), 0);
    assert_int_equal(hr_hist_set_day(&he, 20300, 3, TODAY), 0);
    assert_int_equal(hr_hist_set_day(&he, 20302, 1, TODAY), 0);
    assert_int_equal(hr_hist_set_day(&he, TODAY, UINT32_MAX, TODAY), 0);
    char *t = text_of(&he, NULL);
    assert_string_equal(t, "20300:3,2:1,3:2,95:4294967295");

    hr_hist_ent back = {0};
    assert_int_equal(hr_hist_days_parse(t, TODAY, &back, NULL), 0);
    assert_int_equal(back.n, 4);
    for (uint32_t i = 0; i < 4; i++) {
        assert_int_equal(back.days[i].day, he.days[i].day);
        assert_int_equal(back.days[i].count, he.days[i].count);
    }
    /* parsing into an entry that has days sets them (the row is whole) */
    assert_int_equal(hr_hist_days_parse("20300:7", TODAY, &back, NULL), 0);
    assert_int_equal(back.n, 4);
    assert_int_equal(hr_hist_day_count(&back, 20300), 7);
    free(t);
    ent_free(&he);
    ent_free(&back);

    /* nothing: an empty text, and back */
    hr_hist_ent none = {0};
    t = text_of(&none, NULL);
    assert_string_equal(t, "");
    assert_int_equal(hr_hist_days_parse(t, TODAY, &none, NULL), 0);
    assert_int_equal(hr_hist_days_parse(NULL, TODAY, &none, NULL), 0);
    assert_int_equal(none.n, 0);
    free(t);

    /* a first day before 1970 is negative; the gaps after it are not */
    hr_hist_ent old = {0};
    assert_int_equal(hr_hist_days_parse("-3:4,5:1", 100, &old, NULL), 0);
    assert_int_equal(old.n, 2);
    assert_int_equal(old.days[0].day, -3);
    assert_int_equal(old.days[1].day, 2);
    t = text_of(&old, NULL);
    assert_string_equal(t, "-3:4,5:1");
    free(t);
    ent_free(&old);
}

static void test_sums_round_trip(void **state) {
    (void)state;
    hr_sum_ent se = {0};
    double v[3] = {2.5, 0.1 + 0.2, -1e300};
    for (int i = 0; i < 3; i++) assert_int_equal(hr_hist_sum_set(&se, TODAY - 10 + i, v[i], TODAY), 0);
    char *t = text_of(NULL, &se);
    hr_sum_ent back = {0};
    assert_int_equal(hr_hist_days_parse(t, TODAY, NULL, &back), 0);
    assert_int_equal(back.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(back.days[i].day, TODAY - 10 + i);
        assert_true(back.days[i].sum == v[i]); /* exactly: 17 digits */
    }
    /* a migrated row's integral sum reads as a number too */
    hr_sum_ent mig = {0};
    assert_int_equal(hr_hist_days_parse("20390:3,1:4.0", TODAY, NULL, &mig), 0);
    assert_true(hr_hist_sum_day(&mig, 20391) == 4.0);
    free(t);
    sum_free(&se);
    sum_free(&back);
    sum_free(&mig);
}

static void test_horizon(void **state) {
    (void)state;
    /* days before the horizon (400 days up to today) are left out */
    int32_t first = TODAY - HR_HISTORY_DAYS + 1;
    hr_hist_ent he = {0};
    char t[64];
    snprintf(t, sizeof t, "%d:1,1:2,%d:3", first - 1, HR_HISTORY_DAYS - 1);
    assert_int_equal(hr_hist_days_parse(t, TODAY, &he, NULL), 0);
    assert_int_equal(he.n, 2);
    assert_int_equal(he.days[0].day, first);
    assert_int_equal(he.days[1].day, TODAY);
    ent_free(&he);
}

static void test_malformed(void **state) {
    (void)state;
    static const char *bad_counts[] = {
        "abc",        "1",           "1:",          "1:x",     ":1",
        "1:2;3:4",    "5:1,-1:2",    "1:-2",        "1:+2",    "1:99999999999",
        "1:2,,3:4",   "99999999999:1", "1:2 ",      "1:2,x",
    };
    for (size_t i = 0; i < sizeof bad_counts / sizeof *bad_counts; i++) {
        hr_hist_ent he = {0};
        int rc = hr_hist_days_parse(bad_counts[i], TODAY, &he, NULL);
        if (rc != HR_EINVAL) fail_msg("'%s' read as counts: rc %d", bad_counts[i], rc);
        ent_free(&he);
    }
    static const char *bad_sums[] = {"1:", "1:x", "1:nan", "1:inf", "1:1e400", "1:2.5x"};
    for (size_t i = 0; i < sizeof bad_sums / sizeof *bad_sums; i++) {
        hr_sum_ent se = {0};
        int rc = hr_hist_days_parse(bad_sums[i], TODAY, NULL, &se);
        if (rc != HR_EINVAL) fail_msg("'%s' read as sums: rc %d", bad_sums[i], rc);
        sum_free(&se);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_round_trip),
        cmocka_unit_test(test_sums_round_trip),
        cmocka_unit_test(test_horizon),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
