/* introspect.c: what a compiled rule depends on, for callers that must
 * decide when re-evaluating it can change its answer (playbook sweeps). */
#include "rules_int.h"

hr_rule_clock hr_rule_clock_of(const hr_rule *r) {
    hr_rule_clock k = HR_CLOCK_NONE;
    if (!r) return k;
    for (int i = 0; i < r->ncode; i++)
        if (r->code[i].op == HR_OP_DAYS_SINCE || r->code[i].op == HR_OP_DAYS_UNTIL ||
            r->code[i].op == HR_OP_NOW)
            return HR_CLOCK_CONTINUOUS;
    for (int i = 0; i < r->nfacts; i++) {
        const hr_fact_call *f = &r->facts[i];
        switch (f->fact) {
        case HR_FACT_DAYS_TO_RENEWAL: case HR_FACT_TRIAL_ACTIVE: case HR_FACT_TRIAL_DAYS_LEFT:
        case HR_FACT_HAS_FEATURE: case HR_FACT_LIMIT: case HR_FACT_USAGE: case HR_FACT_USAGE_PCT:
        case HR_FACT_METER:
            return HR_CLOCK_CONTINUOUS; /* trials, overrides and periods end */
        case HR_FACT_ATTR:
            if (f->attr == HR_ATTR_TRIAL_PLAN || f->attr == HR_ATTR_TRIAL_ENDS_AT)
                return HR_CLOCK_CONTINUOUS;
            break;
        case HR_FACT_COUNT: case HR_FACT_ACTIVE_DAYS: case HR_FACT_SUM: case HR_FACT_ACTIVE_USERS:
        case HR_FACT_GROWTH: case HR_FACT_ROLE_ACTIVE_DAYS:
            k = HR_CLOCK_DAILY; /* windows of UTC days slide at midnight */
            break;
        default:
            break;
        }
    }
    return k;
}
