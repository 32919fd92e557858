/* test_stats.c: experiment statistics against hand-checked numbers (each
 * worked by hand from the formula in docs/EXPERIMENTS.md and confirmed with
 * scipy), the edge cases that must give null rather than NaN, and the JSON.
 * tests/reference/test_stats_ref.py compares hundreds of random cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "campaigns/stats.h"
#include "headroom.h"

/* |got - want| <= tol (absolute) or tol * |want| (relative), with the line */
static void close_to(double got, double want, double tol, int relative, int line) {
    if (!(fabs(got - want) <= (relative ? tol * fabs(want) : tol)))
        fail_msg("line %d: got %.17g, want %.17g", line, got, want);
}
#define near(a, b, tol) close_to((a), (b), (tol), 0, __LINE__)
#define rel_near(a, b, tol) close_to((a), (b), (tol), 1, __LINE__)

static hr_exp_result run(const hr_exp_arm *arms, int n, const hr_exp_opts *o) {
    hr_exp_result r;
    hr_err err = {0};
    int rc = hr_exp_analyze(arms, n, o, &r, &err);
    if (rc) fail_msg("hr_exp_analyze: %s", err.message);
    assert_int_equal(r.nrows, n);
    return r;
}

/* The JSON as the API writes it: parses, holds no NaN or infinity. */
static json_object *to_json(const hr_exp_result *r, const hr_exp_arm *arms) {
    hr_buf b;
    hr_buf_init(&b);
    hr_buf_putc(&b, '{');
    hr_exp_result_json(r, arms, &b);
    hr_buf_putc(&b, '}');
    assert_false(hr_buf_failed(&b));
    for (const char *bad[] = {"nan", "NaN", "inf", "Inf", "-0,", "-0]"}, **p = bad;
         p < bad + sizeof bad / sizeof *bad; p++)
        if (strstr(b.data, *p)) fail_msg("'%s' in %s", *p, b.data);
    json_object *j = json_tokener_parse(b.data);
    if (!j) fail_msg("not JSON: %s", b.data);
    hr_buf_dispose(&b);
    return j;
}

static json_object *get(json_object *o, const char *path) {
    /* "variants.1.p_value": members and array indexes */
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(o, json_type_array))
            o = json_object_array_get_idx(o, (size_t)atoi(k));
        else if (!json_object_object_get_ex(o, k, &o))
            fail_msg("no %s in JSON (at %s)", path, k);
    }
    return o;
}

static void special_functions(void **state) {
    rel_near(hr_exp_norm_quantile(0.975), 1.959963984540054, 1e-14);
    rel_near(hr_exp_norm_quantile(0.8), 0.8416212335729143, 1e-14);
    rel_near(hr_exp_norm_quantile(0.995), 2.5758293035489004, 1e-14);
    rel_near(hr_exp_norm_quantile(1e-10), -6.3613409024040557, 1e-14);
    assert_true(hr_exp_norm_quantile(0.5) == 0);
    rel_near(hr_exp_norm_cdf(1.96), 0.97500210485177952, 1e-15);
    rel_near(hr_exp_norm_cdf(-3), 0.0013498980316300933, 1e-14);
    for (double p = 1e-12; p < 1; p *= 3.7)
        rel_near(hr_exp_norm_cdf(hr_exp_norm_quantile(p)), p, 1e-13);

    rel_near(hr_exp_chi2_sf(3.841458820694124, 1), 0.05, 1e-13);
    rel_near(hr_exp_chi2_sf(10.827566170662733, 1), 0.001, 1e-12);
    rel_near(hr_exp_chi2_sf(10, 2), exp(-5), 1e-14); /* df 2 is exponential */
    rel_near(hr_exp_chi2_sf(25, 5), 0.00013933379118562629, 1e-12);
    rel_near(hr_exp_chi2_sf(0.5, 3), 0.9188914116546758, 1e-13);
    rel_near(hr_exp_chi2_sf(200, 4), 3.7572767357810602e-42, 1e-11);
    assert_true(hr_exp_chi2_sf(0, 3) == 1);

    /* P(X > Y) by integrating the densities by hand */
    rel_near(hr_exp_beta_beats(1, 1, 1, 1), 0.5, 1e-15);
    rel_near(hr_exp_beta_beats(2, 1, 1, 1), 2.0 / 3, 1e-15); /* int 2x * x */
    rel_near(hr_exp_beta_beats(1, 2, 1, 1), 1.0 / 3, 1e-15); /* int 2(1-x) * x */
    rel_near(hr_exp_beta_beats(3, 1, 1, 1), 0.75, 1e-15);    /* int 3x^2 * x */
    rel_near(hr_exp_beta_beats(2, 1, 1, 2), 5.0 / 6, 1e-15); /* int 2x * (2x - x^2) */
    /* identical posteriors tie, however large */
    rel_near(hr_exp_beta_beats(4001, 36001, 4001, 36001), 0.5, 1e-11);
    rel_near(hr_exp_beta_beats(2500001, 2500001, 2500001, 2500001), 0.5, 1e-11);
    /* P(X > Y) + P(Y > X) = 1 through both forms of the sum */
    static const double shapes[][4] = {{66, 936, 51, 951},      {3, 500, 700, 20},
                                       {1, 1e6, 1, 1e6},        {1e5 + 1, 9e5, 1e5, 9e5 + 1},
                                       {2, 3000001, 4000, 2e6}, {5e6, 2, 4e6, 1e6}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const double *s = shapes[i];
        double a = hr_exp_beta_beats(s[0], s[1], s[2], s[3]);
        double b = hr_exp_beta_beats(s[2], s[3], s[0], s[1]);
        assert_true(a >= 0 && a <= 1);
        near(a + b, 1, 1e-11);
    }
    rel_near(hr_exp_beta_beats(66, 936, 51, 951), 0.92448037890257406, 1e-11); /* scipy quad */
}

/* 5.0% holdout vs 6.5% and 4.0%: the textbook z-test, worked by hand. */
static void textbook_two_proportions(void **state) {
    hr_exp_arm arms[] = {
        {"a", 45, 0, 1000, 65}, {"holdout", 10, 1, 1000, 50}, {"b", 45, 0, 1000, 40}};
    hr_exp_result r = run(arms, 3, NULL);
    assert_int_equal(r.control, 1); /* the holdout, though not first */
    const hr_exp_row *a = &r.rows[0], *h = &r.rows[1], *b = &r.rows[2];

    assert_int_equal(h->status, HR_EXP_CONTROL);
    assert_true(h->has_rate && !h->has_lift && !h->has_rel_lift && !h->has_p && !h->has_chance);
    rel_near(h->rate, 0.05, 1e-15);

    /* pooled p = 115/2000, se = sqrt(.0575 * .9425 * 2/1000) = .010411, z = 1.4408 */
    rel_near(a->rate, 0.065, 1e-15);
    rel_near(a->lift, 0.015, 1e-13);
    rel_near(a->p_value, 0.14964310637036851, 1e-12);
    /* unpooled se = sqrt(.05*.95/1000 + .065*.935/1000) = .0104055 */
    rel_near(a->lift_lo, -0.0053944588996780313, 1e-12);
    rel_near(a->lift_hi, 0.03539445889967803, 1e-12);
    /* delta method: se = sqrt(v_a/pc^2 + pa^2 v_c/pc^4) = .237529 around 1.3 - 1 */
    rel_near(a->rel_lift, 0.3, 1e-13);
    rel_near(a->rel_lo, -0.16554817867065325, 1e-12);
    rel_near(a->rel_hi, 0.76554817867065328, 1e-12);
    rel_near(a->chance_to_win, 0.92448037890257406, 1e-11);
    near(b->rel_lift, -0.2, 1e-13);
    assert_true(b->chance_to_win < 0.5);

    /* 8157.73 units per arm for 5% -> 6% at alpha .05, power .8 */
    assert_true(r.has_planned);
    assert_int_equal(r.planned, 8158);
    assert_int_equal(a->status, HR_EXP_COLLECTING);
    assert_int_equal(b->status, HR_EXP_COLLECTING);

    /* 100 exposures expected of 1000 for weight 10, 450 for 45: grossly off */
    assert_true(r.srm_checked && r.srm_flagged);
    assert_true(r.srm_p < 1e-100);

    json_object *j = to_json(&r, arms);
    assert_string_equal(json_object_get_string(get(j, "control")), "holdout");
    assert_int_equal(json_object_get_int64(get(j, "planned_per_variant")), 8158);
    assert_int_equal(json_object_get_int(get(j, "variants.1.weight")), 10);
    assert_true(json_object_is_type(get(j, "variants.1.lift"), json_type_null));
    assert_true(json_object_is_type(get(j, "variants.1.lift_ci"), json_type_null));
    assert_string_equal(json_object_get_string(get(j, "variants.1.status")), "control");
    rel_near(json_object_get_double(get(j, "variants.0.lift_ci.1")), 0.03539445889967803, 1e-13);
    rel_near(json_object_get_double(get(j, "variants.0.p_value")), 0.14964310637036851, 1e-13);
    assert_string_equal(json_object_get_string(get(j, "variants.0.status")), "collecting");
    assert_true(json_object_get_boolean(get(j, "srm.flagged")));
    assert_true(json_object_get_boolean(get(j, "srm.checked")));
    json_object_put(j);
    hr_exp_result_dispose(&r);
    hr_exp_result_dispose(&r); /* idempotent */
}

/* Past the planned 8158 per arm, the verdict follows p < alpha. */
static void status_after_planned_size(void **state) {
    hr_exp_arm arms[] = {{"control", 1, 0, 9000, 450},
                         {"better", 1, 0, 9000, 560},
                         {"same", 1, 0, 9000, 470},
                         {"young", 1, 0, 8157, 600}};
    hr_exp_result r = run(arms, 4, NULL);
    assert_int_equal(r.control, 0);
    assert_int_equal(r.planned, 8158);
    rel_near(r.rows[1].p_value, 0.00036714834042760237, 1e-11);
    rel_near(r.rows[2].p_value, 0.49846555969531459, 1e-11);
    assert_int_equal(r.rows[1].status, HR_EXP_SIGNIFICANT);
    assert_int_equal(r.rows[2].status, HR_EXP_NOT_SIGNIFICANT);
    assert_int_equal(r.rows[3].status, HR_EXP_COLLECTING); /* p tiny, one unit short */
    assert_true(r.rows[3].p_value < 1e-5);
    assert_string_equal(hr_exp_status_str(r.rows[2].status), "not significant");
    json_object *j = to_json(&r, arms);
    assert_string_equal(json_object_get_string(get(j, "variants.1.status")), "significant");
    json_object_put(j);
    hr_exp_result_dispose(&r);

    /* a stricter alpha and more power: a configured baseline of 4%, mde 10% */
    hr_exp_opts o = {.mde = 0.1, .baseline = 0.04, .alpha = 0.01, .power = 0.9};
    r = run(arms, 2, &o);
    assert_int_equal(r.planned, 74834); /* 74833.41 */
    assert_int_equal(r.rows[1].status, HR_EXP_COLLECTING);
    hr_exp_result_dispose(&r);
}

static void empty_and_degenerate_arms(void **state) {
    /* nothing counted yet */
    hr_exp_arm none[] = {{"control", 1, 0, 0, 0}, {"a", 1, 0, 0, 0}};
    hr_exp_result r = run(none, 2, NULL);
    assert_false(r.rows[0].has_rate || r.rows[1].has_rate || r.rows[1].has_lift ||
                 r.rows[1].has_rel_lift || r.rows[1].has_p);
    assert_true(r.rows[1].has_chance); /* two uniform priors: a coin toss */
    rel_near(r.rows[1].chance_to_win, 0.5, 1e-15);
    assert_false(r.has_planned); /* no baseline */
    assert_int_equal(r.rows[1].status, HR_EXP_COLLECTING);
    assert_false(r.srm_checked || r.srm_flagged);
    json_object *j = to_json(&r, none);
    assert_true(json_object_is_type(get(j, "planned_per_variant"), json_type_null));
    assert_true(json_object_is_type(get(j, "variants.0.rate"), json_type_null));
    assert_true(json_object_is_type(get(j, "srm.p_value"), json_type_null));
    assert_false(json_object_get_boolean(get(j, "srm.checked")));
    json_object_put(j);
    hr_exp_result_dispose(&r);

    /* no conversions anywhere: no test, no relative lift, no plan */
    hr_exp_arm zero[] = {{"control", 1, 0, 300, 0}, {"a", 1, 0, 310, 0}};
    r = run(zero, 2, NULL);
    assert_true(r.rows[1].has_lift && r.rows[1].lift == 0);
    assert_false(r.rows[1].has_p || r.rows[1].has_rel_lift || r.has_planned);
    j = to_json(&r, zero);
    assert_true(json_object_is_type(get(j, "variants.1.relative_lift"), json_type_null));
    assert_true(json_object_is_type(get(j, "variants.1.relative_lift_ci"), json_type_null));
    assert_true(json_object_is_type(get(j, "variants.1.p_value"), json_type_null));
    json_object_put(j);
    hr_exp_result_dispose(&r);

    /* a variant with conversions against a control without: relative lift
     * has no denominator, the test and the absolute lift do */
    hr_exp_arm ctl0[] = {{"control", 1, 0, 300, 0}, {"a", 1, 0, 310, 12}};
    r = run(ctl0, 2, NULL);
    assert_true(r.rows[1].has_lift && r.rows[1].has_p && !r.rows[1].has_rel_lift);
    assert_true(r.rows[1].chance_to_win > 0.999);
    hr_exp_result_dispose(&r);

    /* everyone converted: the pooled rate is 1, so no test; the lift is 0 */
    hr_exp_arm all[] = {{"control", 1, 0, 300, 300}, {"a", 1, 0, 310, 310}};
    r = run(all, 2, NULL);
    assert_true(r.rows[0].rate == 1 && r.rows[1].rate == 1);
    assert_false(r.rows[1].has_p);
    assert_true(r.rows[1].has_rel_lift && r.rows[1].rel_lift == 0);
    assert_false(r.has_planned); /* a control at 100% leaves nothing to lift */
    json_object_put(to_json(&r, all));
    hr_exp_result_dispose(&r);

    /* an empty variant against a live control */
    hr_exp_arm emptyv[] = {{"control", 1, 0, 100, 5}, {"a", 1, 0, 0, 0}};
    r = run(emptyv, 2, NULL);
    assert_false(r.rows[1].has_rate || r.rows[1].has_lift || r.rows[1].has_p);
    assert_true(r.has_planned);
    assert_int_equal(r.rows[1].status, HR_EXP_COLLECTING);
    j = to_json(&r, emptyv);
    json_object_put(j);
    hr_exp_result_dispose(&r);

    /* one arm: the control alone */
    hr_exp_arm one[] = {{"only", 100, 0, 500, 40}};
    r = run(one, 1, NULL);
    assert_int_equal(r.control, 0);
    assert_int_equal(r.rows[0].status, HR_EXP_CONTROL);
    assert_false(r.srm_checked);
    assert_true(r.has_planned);
    j = to_json(&r, one);
    assert_int_equal(json_object_array_length(get(j, "variants")), 1);
    json_object_put(j);
    hr_exp_result_dispose(&r);

    /* a lift of 20% on 90% would pass 100%: planned for the same drop */
    hr_exp_arm high[] = {{"control", 1, 0, 100, 90}, {"a", 1, 0, 100, 95}};
    r = run(high, 2, NULL);
    assert_true(r.has_planned && r.planned > 0);
    hr_exp_result_dispose(&r);
    hr_exp_opts huge = {.mde = 1.5};
    hr_exp_arm sixty[] = {{"control", 1, 0, 100, 60}, {"a", 1, 0, 100, 65}};
    r = run(sixty, 2, &huge); /* neither 150% up nor down fits in [0, 1] */
    assert_false(r.has_planned);
    hr_exp_result_dispose(&r);
}

static void sample_ratio_mismatch(void **state) {
    /* 50/50 configured, 1000 vs 1200: chi2 = 18.18, p = 2.0e-5 */
    hr_exp_arm skew[] = {{"control", 50, 0, 1000, 100}, {"a", 50, 0, 1200, 120}};
    hr_exp_result r = run(skew, 2, NULL);
    assert_true(r.srm_checked && r.srm_flagged);
    rel_near(r.srm_p, 2.007865612426481e-05, 1e-11);
    hr_exp_result_dispose(&r);

    /* 1000 vs 1090: p = 0.049, suspicious but under the 0.001 bar */
    hr_exp_arm mild[] = {{"control", 50, 0, 1000, 100}, {"a", 50, 0, 1090, 120}};
    r = run(mild, 2, NULL);
    assert_true(r.srm_checked && !r.srm_flagged);
    rel_near(r.srm_p, 0.048992851188441162, 1e-11);
    hr_exp_result_dispose(&r);

    /* three arms, weights 10/45/45: chi2 = 4 on 2 df, p = exp(-2) */
    hr_exp_arm three[] = {{"holdout", 10, 1, 100, 5}, {"a", 45, 0, 480, 30}, {"b", 45, 0, 420, 20}};
    r = run(three, 3, NULL);
    rel_near(r.srm_p, exp(-2), 1e-13);
    hr_exp_result_dispose(&r);

    /* below 8 units in any arm the test waits, however skewed */
    hr_exp_arm few[] = {{"control", 50, 0, 7, 1}, {"a", 50, 0, 900, 2}};
    r = run(few, 2, NULL);
    assert_false(r.srm_checked || r.srm_flagged);
    hr_exp_result_dispose(&r);
    hr_exp_arm eight[] = {{"control", 50, 0, 8, 1}, {"a", 50, 0, 8, 2}};
    r = run(eight, 2, NULL);
    assert_true(r.srm_checked && !r.srm_flagged);
    rel_near(r.srm_p, 1, 1e-15);
    hr_exp_result_dispose(&r);

    /* a paused arm (weight 0) is reported but is not part of the split */
    hr_exp_arm paused[] = {
        {"control", 50, 0, 1000, 100}, {"old", 0, 0, 3, 1}, {"b", 50, 0, 1000, 90}};
    r = run(paused, 3, NULL);
    assert_true(r.srm_checked && !r.srm_flagged);
    rel_near(r.srm_p, 1, 1e-15);
    assert_true(r.rows[1].has_rate);
    hr_exp_result_dispose(&r);
}

static void control_choice(void **state) {
    /* the first holdout is the control; a second is compared like a variant */
    hr_exp_arm arms[] = {{"a", 80, 0, 7000, 800}, {"h1", 10, 1, 900, 90}, {"h2", 10, 1, 950, 80}};
    hr_exp_result r = run(arms, 3, NULL);
    assert_int_equal(r.control, 1);
    assert_int_equal(r.rows[1].status, HR_EXP_CONTROL);
    assert_true(r.rows[2].has_lift);
    hr_exp_result_dispose(&r);
}

static void invalid_input(void **state) {
    hr_exp_result r;
    hr_err err = {0};
    hr_exp_arm ok[] = {{"control", 1, 0, 10, 1}};
    assert_int_equal(hr_exp_analyze(ok, 0, NULL, &r, &err), HR_EINVAL);
    assert_null(r.rows);
    hr_exp_arm over[] = {{"control", 1, 0, 10, 11}};
    assert_int_equal(hr_exp_analyze(over, 1, NULL, &r, &err), HR_EINVAL);
    assert_non_null(strstr(err.message, "'control'"));
    hr_exp_arm neg[] = {{"control", -1, 0, 10, 1}};
    assert_int_equal(hr_exp_analyze(neg, 1, NULL, &r, &err), HR_EINVAL);
    hr_exp_arm nanw[] = {{"control", NAN, 0, 10, 1}};
    assert_int_equal(hr_exp_analyze(nanw, 1, NULL, &r, &err), HR_EINVAL);
    hr_exp_arm noname[] = {{NULL, 1, 0, 10, 1}};
    assert_int_equal(hr_exp_analyze(noname, 1, NULL, &r, &err), HR_EINVAL);
    static const hr_exp_opts bad[] = {{.mde = -0.1},    {.alpha = 1.5},  {.power = 0.3},
                                      {.power = 1},     {.baseline = 1}, {.baseline = NAN},
                                      {.mde = INFINITY}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err = (hr_err){0};
        assert_int_equal(hr_exp_analyze(ok, 1, &bad[i], &r, &err), HR_EINVAL);
        assert_true(err.message[0] != 0);
        hr_exp_result_dispose(&r); /* harmless after a failure */
    }
    assert_int_equal(hr_exp_analyze(ok, 1, NULL, &r, NULL), 0); /* err may be NULL */
    hr_exp_result_dispose(&r);
}

/* Large experiments stay finite and fast (the sum starts at its peak). */
static void large_counts(void **state) {
    hr_exp_arm arms[] = {{"control", 1, 0, 1000000000, 500000000},
                         {"a", 1, 0, 1000000000, 500010000},
                         {"b", 1, 0, 1000000000, 1},
                         {"c", 1, 0, 1000000000, 1000000000}};
    hr_exp_result r = run(arms, 4, NULL);
    assert_true(r.rows[1].chance_to_win > 0.6 && r.rows[1].chance_to_win < 0.7);
    near(r.rows[2].chance_to_win, 0, 1e-15);
    near(r.rows[3].chance_to_win, 1, 1e-15);
    assert_true(r.rows[3].has_p && r.rows[3].p_value == 0);
    json_object *j = to_json(&r, arms);
    json_object_put(j);
    hr_exp_result_dispose(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(special_functions),
        cmocka_unit_test(textbook_two_proportions),
        cmocka_unit_test(status_after_planned_size),
        cmocka_unit_test(empty_and_degenerate_arms),
        cmocka_unit_test(sample_ratio_mismatch),
        cmocka_unit_test(control_choice),
        cmocka_unit_test(invalid_input),
        cmocka_unit_test(large_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
