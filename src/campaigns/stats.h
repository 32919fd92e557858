/* stats.h: the statistics of a campaign experiment. Given each arm's
 * exposures (distinct units) and conversions, computes rates, lift against
 * the control with 95% (1 - alpha) intervals, the two-proportion z-test,
 * the Bayesian chance to beat the control, a sample-ratio-mismatch check
 * and the planned sample size that guards against peeking. Pure functions
 * of the counts: no I/O, no randomness. docs/EXPERIMENTS.md has every
 * formula and its reference. */
#ifndef HR_CAMPAIGNS_STATS_H
#define HR_CAMPAIGNS_STATS_H

#include <stdint.h>

#include "buf.h"
#include "headroom.h"

/* One arm of the experiment, as counted by the caller. name is borrowed.
 * weight >= 0 is the configured traffic share (any scale); an arm with
 * weight 0 (paused) is reported but left out of the SRM test. The control
 * is the first arm with holdout set, else arm 0. */
typedef struct hr_exp_arm {
    const char *name;
    double weight;
    int holdout;
    int64_t exposures, conversions; /* 0 <= conversions <= exposures */
} hr_exp_arm;

/* A field left 0 takes its default, so `hr_exp_opts o = {0}` is valid. */
typedef struct hr_exp_opts {
    double mde;      /* relative minimum detectable effect, default 0.2 */
    double baseline; /* control rate for planning; <= 0: the observed rate */
    double alpha;    /* two-sided significance level, default 0.05 */
    double power;    /* default 0.8 */
} hr_exp_opts;

typedef enum hr_exp_status {
    HR_EXP_CONTROL,         /* the control's own row */
    HR_EXP_COLLECTING,      /* an arm is below the planned size (or none is known) */
    HR_EXP_SIGNIFICANT,     /* planned size reached and p < alpha */
    HR_EXP_NOT_SIGNIFICANT, /* planned size reached and p >= alpha (or no p) */
} hr_exp_status;

/* One row per arm, in the order given. A value is meaningful only when its
 * has_ flag is set (the JSON writes null otherwise); values are always
 * finite. The control's row has no lift, p-value or chance to win. */
typedef struct hr_exp_row {
    double rate;                     /* has_rate: exposures > 0 */
    double lift, lift_lo, lift_hi;   /* has_lift: rate - control rate, CI */
    double rel_lift, rel_lo, rel_hi; /* has_rel_lift: also control rate > 0 */
    double p_value;                  /* has_p: pooled rate strictly in (0,1) */
    double chance_to_win;            /* has_chance: P(p_arm > p_control) */
    int has_rate, has_lift, has_rel_lift, has_p, has_chance;
    hr_exp_status status;
} hr_exp_row;

typedef struct hr_exp_result {
    int control;     /* index of the control arm */
    int64_t planned; /* units per arm; valid when has_planned */
    int has_planned;
    hr_exp_row *rows; /* nrows entries; owned, hr_exp_result_dispose */
    int nrows;
    double srm_p;                 /* valid when srm_checked */
    int srm_checked, srm_flagged; /* flagged: srm_p < HR_EXP_SRM_ALPHA */
} hr_exp_result;

#define HR_EXP_SRM_ALPHA 0.001
#define HR_EXP_SRM_MIN_UNITS 8

/* Analyses n >= 1 arms (borrowed) with opts (NULL: all defaults) into out.
 * Returns 0, HR_EINVAL (err says which arm or option is wrong) or
 * HR_ENOMEM; on failure out holds nothing to dispose. */
int hr_exp_analyze(const hr_exp_arm *arms, int n, const hr_exp_opts *opts, hr_exp_result *out,
                   hr_err *err);
/* Frees the rows; accepts a zeroed result and may be called twice. */
void hr_exp_result_dispose(hr_exp_result *r);

/* "control", "collecting", "significant" or "not significant" (static). */
const char *hr_exp_status_str(hr_exp_status s);

/* Appends the members `"control":..,"planned_per_variant":..,"variants":[..],
 * "srm":{..}` to an object the caller has opened (and will close); arms are
 * those given to hr_exp_analyze. Never writes NaN or infinities. */
void hr_exp_result_json(const hr_exp_result *r, const hr_exp_arm *arms, hr_buf *out);

/* The special functions, exported for the tests. */
double hr_exp_norm_cdf(double z);
double hr_exp_norm_quantile(double p); /* 0 < p < 1 */
double hr_exp_chi2_sf(double x, double df);
/* P(X > Y) for X ~ Beta(ax, bx), Y ~ Beta(ay, by), integer shapes >= 1. */
double hr_exp_beta_beats(double ax, double bx, double ay, double by);

#endif
