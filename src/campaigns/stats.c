/* stats.c: the numbers behind GET /v1/campaigns/{id}/results.
 *
 * Every statistic is a closed form of the counts, so the same counts always
 * give the same answer: the chance to beat the control is Evan Miller's
 * exact sum (no Monte Carlo), summed outward from its largest term by a
 * term ratio so large experiments cost little, and the special functions
 * (normal quantile, chi-square tail, log-beta) are written here to double
 * precision rather than pulled from a numerics library. Anything that
 * cannot be computed is flagged absent, never NaN; the formulas and their
 * references are in docs/EXPERIMENTS.md. */
#include "stats.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "err.h"

#define LN_SQRT_2PI 0.918938533204672741780329736406L /* log(sqrt(2 pi)) */
#define SQRT_2PI 2.50662827463100050241576528481

/* ---- special functions ---- */

double hr_exp_norm_cdf(double z) { return 0.5 * erfc(-z / M_SQRT2); }

/* Acklam's rational approximation (relative error 1.15e-9) polished by one
 * Halley step against erfc, which brings it to double precision. */
double hr_exp_norm_quantile(double p) {
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                               -2.759285104469687e+02, 1.383577518672690e+02,
                               -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                               -1.556989798598866e+02, 6.680131188771972e+01,
                               -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                               -2.400758277161838e+00, -2.549732539343734e+00,
                               4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                               3.754408661907416e+00};
    if (!(p > 0 && p < 1)) return p == 0 ? -HUGE_VAL : p == 1 ? HUGE_VAL : NAN;
    /* the upper half by symmetry, so the Halley step works on a small tail */
    if (p > 0.5) return -hr_exp_norm_quantile(1 - p);
    double x, q, r;
    if (p < 0.02425) {
        q = sqrt(-2 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else {
        q = p - 0.5;
        r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }
    double e = hr_exp_norm_cdf(x) - p;
    double u = e * SQRT_2PI * exp(x * x / 2);
    return x - u / (1 + x * u / 2);
}

/* Regularized upper incomplete gamma Q(a, x): the series for P below
 * x = a + 1, Lentz's continued fraction above (Numerical Recipes 6.2). */
static double gamma_q(double a, double x) {
    if (!(x > 0)) return 1;
    double lpre = -x + a * log(x) - lgamma(a);
    if (x < a + 1) {
        double ap = a, del = 1 / a, sum = del;
        for (int i = 0; i < 100000; i++) {
            ap += 1;
            del *= x / ap;
            sum += del;
            if (fabs(del) < fabs(sum) * 1e-17) break;
        }
        return 1 - sum * exp(lpre);
    }
    const double tiny = DBL_MIN / DBL_EPSILON;
    double bb = x + 1 - a, cc = 1 / tiny, dd = 1 / bb, h = dd;
    for (int i = 1; i < 100000; i++) {
        double an = -i * (i - a);
        bb += 2;
        dd = an * dd + bb;
        if (fabs(dd) < tiny) dd = tiny;
        cc = bb + an / cc;
        if (fabs(cc) < tiny) cc = tiny;
        dd = 1 / dd;
        double del = dd * cc;
        h *= del;
        if (fabs(del - 1) < 1e-16) break;
    }
    return exp(lpre) * h;
}

double hr_exp_chi2_sf(double x, double df) { return gamma_q(df / 2, x / 2); }

/* lgamma(x) - Stirling's approximation, for x >= 10: the asymptotic series
 * to x^-13, whose first omitted term is below 1e-17 there. */
static long double stirling_corr(long double x) {
    long double x2 = 1 / (x * x);
    return (1.0L / 12 +
            x2 * (-1.0L / 360 +
                  x2 * (1.0L / 1260 +
                        x2 * (-1.0L / 1680 +
                              x2 * (1.0L / 1188 + x2 * (-691.0L / 360360 + x2 * (1.0L / 156))))))) /
           x;
}

/* log B(a, b). lgamma(a) + lgamma(b) - lgamma(a + b) cancels badly when a
 * and b are large (millions of units), so large arguments go through
 * Stirling with the corrections kept apart (as R's lbeta does), and in
 * long double: the callers subtract several of these values of size
 * ~units, and double would lose ~1e-16 * units of the result. */
static long double lbeta(long double a, long double b) {
    long double p = a < b ? a : b, q = a < b ? b : a;
    if (p >= 10) {
        long double corr = stirling_corr(p) + stirling_corr(q) - stirling_corr(p + q);
        return -0.5L * logl(q) + LN_SQRT_2PI + corr + (p - 0.5L) * logl(p / (p + q)) +
               q * log1pl(-p / (p + q));
    }
    if (q >= 10) {
        long double corr = stirling_corr(q) - stirling_corr(p + q);
        return lgammal(p) + corr + p - p * logl(p + q) + (q - 0.5L) * log1pl(-p / (p + q));
    }
    return lgammal(p) + lgammal(q) - lgammal(p + q);
}

/* Evan Miller's P(p_B > p_A) = sum_{i=0}^{aB-1} B(aA+i, bA+bB) /
 * ((bB+i) B(1+i, bB) B(aA, bA)). The terms rise then fall (the ratio of
 * consecutive terms crosses 1 once), so the sum starts at the largest term,
 * computed directly, and walks outward by the ratio; it stops when the
 * terms left could not add 1e-17 of the total. */
static double miller_sum(double aA, double bA, double aB, double bB) {
    const double eps = 1e-17;
    double last = aB - 1;
    double t = (aA * bB - aA - bA - bB) / (bA + 1); /* ratio >= 1 while i <= t */
    double m = t >= 0 ? floor(t) + 1 : 0;
    if (m > last) m = last;
    long double lt = lbeta(aA + m, bA + bB) - logl(bB + m) - lbeta(1 + m, bB) - lbeta(aA, bA);
    double s = 1, rel = 1;
    for (double i = m; i < last; i++) {
        rel *= (aA + i) * (bB + i) / ((i + 1) * (aA + bA + bB + i)); /* term i+1 */
        s += rel;
        if (rel * (last - i - 1) <= eps * s) break;
    }
    rel = 1;
    for (double i = m - 1; i >= 0; i--) {
        rel /= (aA + i) * (bB + i) / ((i + 1) * (aA + bA + bB + i)); /* term i */
        s += rel;
        if (rel * i <= eps * s) break;
    }
    double p = (double)expl(lt + logl(s));
    return p > 1 ? 1 : p;
}

/* Miller's sum for X over Y has ax terms; the same probability read on
 * 1 - p (1 - Y > 1 - X, failures instead of successes) has by terms, so
 * take the shorter. */
double hr_exp_beta_beats(double ax, double bx, double ay, double by) {
    if (ax <= by) return miller_sum(ay, by, ax, bx);
    return miller_sum(bx, ax, by, ay);
}

/* ---- the analysis ---- */

static const hr_exp_opts defaults = {.mde = 0.2, .baseline = 0, .alpha = 0.05, .power = 0.8};

static int resolve_opts(const hr_exp_opts *in, hr_exp_opts *o, hr_err *err) {
    *o = defaults;
    if (!in) return 0;
    if (in->mde != 0) o->mde = in->mde;
    if (in->alpha != 0) o->alpha = in->alpha;
    if (in->power != 0) o->power = in->power;
    o->baseline = in->baseline;
    if (!(o->mde > 0 && isfinite(o->mde)))
        return hr_err_set(err, HR_EINVAL, "minimum detectable effect must be a positive number");
    if (!(o->alpha > 0 && o->alpha < 1))
        return hr_err_set(err, HR_EINVAL, "alpha must be between 0 and 1");
    /* below 0.5 the sample-size formula's two terms would cancel */
    if (!(o->power >= 0.5 && o->power < 1))
        return hr_err_set(err, HR_EINVAL, "power must be at least 0.5 and below 1");
    if (isnan(o->baseline) || o->baseline >= 1)
        return hr_err_set(err, HR_EINVAL, "baseline rate must be below 1");
    return 0;
}

/* Units per arm for a pooled two-sided z-test at level alpha to reach
 * `power` against a relative change of mde from p1 (Fleiss, Levin & Paik
 * 2003, without continuity correction). A lift that would reach a rate of
 * 1 is planned as the same relative drop. Returns 0 if there is no answer. */
static int planned_size(double p1, const hr_exp_opts *o, int64_t *out) {
    double p2 = p1 * (1 + o->mde);
    if (!(p2 < 1)) p2 = p1 * (1 - o->mde);
    if (!(p1 > 0 && p1 < 1 && p2 >= 0)) return 0;
    double za = -hr_exp_norm_quantile(o->alpha / 2), zb = hr_exp_norm_quantile(o->power);
    double pbar = (p1 + p2) / 2;
    double num = za * sqrt(2 * pbar * (1 - pbar)) + zb * sqrt(p1 * (1 - p1) + p2 * (1 - p2));
    double n = num * num / ((p2 - p1) * (p2 - p1));
    if (!(n < 9e15)) return 0; /* a baseline so small no experiment can plan for it */
    *out = (int64_t)ceil(n);
    return 1;
}

/* The comparison of arm v against control c (both borrowed). */
static void compare(hr_exp_row *r, const hr_exp_arm *v, const hr_exp_arm *c, double z) {
    double nv = (double)v->exposures, xv = (double)v->conversions;
    double nc = (double)c->exposures, xc = (double)c->conversions;
    r->chance_to_win = hr_exp_beta_beats(1 + xv, 1 + nv - xv, 1 + xc, 1 + nc - xc);
    r->has_chance = 1;
    if (nv <= 0 || nc <= 0) return;
    double pv = xv / nv, pc = xc / nc, d = pv - pc;
    double var_v = pv * (1 - pv) / nv, var_c = pc * (1 - pc) / nc;
    double se = sqrt(var_v + var_c); /* unpooled: the interval makes no null assumption */
    r->lift = d;
    r->lift_lo = d - z * se;
    r->lift_hi = d + z * se;
    r->has_lift = 1;
    double pool = (xv + xc) / (nv + nc);
    if (pool > 0 && pool < 1) {
        double sp = sqrt(pool * (1 - pool) * (1 / nv + 1 / nc));
        r->p_value = erfc(fabs(d / sp) / M_SQRT2);
        if (r->p_value > 1) r->p_value = 1;
        r->has_p = 1;
    }
    if (pc > 0) {
        /* delta method for pv / pc with independent arms */
        double rse = sqrt(var_v / (pc * pc) + pv * pv * var_c / (pc * pc * pc * pc));
        r->rel_lift = pv / pc - 1;
        r->rel_lo = r->rel_lift - z * rse;
        r->rel_hi = r->rel_lift + z * rse;
        r->has_rel_lift = 1;
    }
}

/* Chi-square goodness of fit of the exposures against the weights, over
 * the arms with a weight; only once each has HR_EXP_SRM_MIN_UNITS. */
static void srm_check(const hr_exp_arm *arms, int n, hr_exp_result *out) {
    int k = 0;
    double units = 0, wsum = 0;
    for (int i = 0; i < n; i++) {
        if (arms[i].weight <= 0) continue;
        if (arms[i].exposures < HR_EXP_SRM_MIN_UNITS) return;
        k++;
        units += (double)arms[i].exposures;
        wsum += arms[i].weight;
    }
    if (k < 2) return;
    double chi2 = 0;
    for (int i = 0; i < n; i++) {
        if (arms[i].weight <= 0) continue;
        double e = units * arms[i].weight / wsum, dev = (double)arms[i].exposures - e;
        chi2 += dev * dev / e;
    }
    out->srm_p = hr_exp_chi2_sf(chi2, k - 1);
    out->srm_checked = 1;
    out->srm_flagged = out->srm_p < HR_EXP_SRM_ALPHA;
}

int hr_exp_analyze(const hr_exp_arm *arms, int n, const hr_exp_opts *opts, hr_exp_result *out,
                   hr_err *err) {
    hr_exp_opts o;
    int rc;
    *out = (hr_exp_result){0};
    if (!arms || n < 1) return hr_err_set(err, HR_EINVAL, "an experiment needs at least one arm");
    if ((rc = resolve_opts(opts, &o, err))) return rc;
    out->control = -1;
    for (int i = 0; i < n; i++) {
        const hr_exp_arm *a = &arms[i];
        if (!a->name) return hr_err_set(err, HR_EINVAL, "arm %d has no name", i);
        if (!(a->weight >= 0 && isfinite(a->weight)))
            return hr_err_set(err, HR_EINVAL, "arm '%s': weight must be a non-negative number",
                              a->name);
        if (a->exposures < 0 || a->conversions < 0 || a->conversions > a->exposures)
            return hr_err_set(err, HR_EINVAL,
                              "arm '%s': %lld conversions and %lld exposures (need 0 <= "
                              "conversions <= exposures)",
                              a->name, (long long)a->conversions, (long long)a->exposures);
        if (a->holdout && out->control < 0) out->control = i;
    }
    if (out->control < 0) out->control = 0;
    if (!(out->rows = calloc((size_t)n, sizeof *out->rows)))
        return hr_err_set(err, HR_ENOMEM, "out of memory");
    out->nrows = n;

    const hr_exp_arm *c = &arms[out->control];
    double p1 = o.baseline > 0     ? o.baseline
                : c->exposures > 0 ? (double)c->conversions / (double)c->exposures
                                   : 0;
    out->has_planned = planned_size(p1, &o, &out->planned);

    double z = -hr_exp_norm_quantile(o.alpha / 2);
    for (int i = 0; i < n; i++) {
        hr_exp_row *r = &out->rows[i];
        const hr_exp_arm *a = &arms[i];
        if (a->exposures > 0) {
            r->rate = (double)a->conversions / (double)a->exposures;
            r->has_rate = 1;
        }
        if (i == out->control) {
            r->status = HR_EXP_CONTROL;
            continue;
        }
        compare(r, a, c, z);
        /* the verdict waits for the planned size in both arms: stopping at the
         * first p < alpha would inflate false positives (peeking) */
        if (!out->has_planned || a->exposures < out->planned || c->exposures < out->planned)
            r->status = HR_EXP_COLLECTING;
        else if (r->has_p && r->p_value < o.alpha)
            r->status = HR_EXP_SIGNIFICANT;
        else
            r->status = HR_EXP_NOT_SIGNIFICANT;
    }
    srm_check(arms, n, out);
    return 0;
}

void hr_exp_result_dispose(hr_exp_result *r) {
    if (!r) return;
    free(r->rows);
    r->rows = NULL;
    r->nrows = 0;
}

const char *hr_exp_status_str(hr_exp_status s) {
    switch (s) {
    case HR_EXP_CONTROL: return "control";
    case HR_EXP_COLLECTING: return "collecting";
    case HR_EXP_SIGNIFICANT: return "significant";
    case HR_EXP_NOT_SIGNIFICANT: return "not significant";
    }
    return "collecting";
}

/* ---- JSON ---- */

static void num(hr_buf *b, int has, double v) {
    if (!has || !isfinite(v)) {
        hr_buf_puts(b, "null");
        return;
    }
    if (v == 0) v = 0; /* no "-0" */
    hr_buf_printf(b, "%.15g", v);
}

static void interval(hr_buf *b, int has, double lo, double hi) {
    if (!has || !isfinite(lo) || !isfinite(hi)) {
        hr_buf_puts(b, "null");
        return;
    }
    hr_buf_putc(b, '[');
    num(b, 1, lo);
    hr_buf_putc(b, ',');
    num(b, 1, hi);
    hr_buf_putc(b, ']');
}

void hr_exp_result_json(const hr_exp_result *r, const hr_exp_arm *arms, hr_buf *out) {
    hr_buf_json_key(out, "control");
    hr_buf_json_str(out, r->nrows > 0 ? arms[r->control].name : NULL);
    hr_buf_puts(out, ",\"planned_per_variant\":");
    if (r->has_planned)
        hr_buf_i64(out, r->planned);
    else
        hr_buf_puts(out, "null");
    hr_buf_puts(out, ",\"variants\":[");
    for (int i = 0; i < r->nrows; i++) {
        const hr_exp_row *w = &r->rows[i];
        if (i) hr_buf_putc(out, ',');
        hr_buf_puts(out, "{\"variant\":");
        hr_buf_json_str(out, arms[i].name);
        hr_buf_puts(out, ",\"weight\":");
        num(out, 1, arms[i].weight);
        hr_buf_puts(out, ",\"exposures\":");
        hr_buf_i64(out, arms[i].exposures);
        hr_buf_puts(out, ",\"conversions\":");
        hr_buf_i64(out, arms[i].conversions);
        hr_buf_puts(out, ",\"rate\":");
        num(out, w->has_rate, w->rate);
        hr_buf_puts(out, ",\"lift\":");
        num(out, w->has_lift, w->lift);
        hr_buf_puts(out, ",\"lift_ci\":");
        interval(out, w->has_lift, w->lift_lo, w->lift_hi);
        hr_buf_puts(out, ",\"relative_lift\":");
        num(out, w->has_rel_lift, w->rel_lift);
        hr_buf_puts(out, ",\"relative_lift_ci\":");
        interval(out, w->has_rel_lift, w->rel_lo, w->rel_hi);
        hr_buf_puts(out, ",\"p_value\":");
        num(out, w->has_p, w->p_value);
        hr_buf_puts(out, ",\"chance_to_win\":");
        num(out, w->has_chance, w->chance_to_win);
        hr_buf_puts(out, ",\"status\":");
        hr_buf_json_str(out, hr_exp_status_str(w->status));
        hr_buf_putc(out, '}');
    }
    hr_buf_puts(out, "],\"srm\":{\"p_value\":");
    num(out, r->srm_checked, r->srm_p);
    hr_buf_printf(out, ",\"flagged\":%s,\"checked\":%s}", r->srm_flagged ? "true" : "false",
                  r->srm_checked ? "true" : "false");
}
