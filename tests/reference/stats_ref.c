/* stats_ref.c: a thin driver for checking src/campaigns/stats.c against an
 * independent implementation (test_stats_ref.py, on scipy). Reads one case
 * a line from stdin:
 *     mde baseline alpha power  name weight holdout exposures conversions ...
 * (names without spaces; a 0 option takes its default) and prints for each
 * a JSON object: the result as the API writes it, or {"error":code,...}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "headroom.h"
#include "campaigns/stats.h"

enum { MAX_ARMS = 64 };

/* One line into opts and arms (names point into line); the arm count or -1. */
static int parse(char *line, hr_exp_opts *o, hr_exp_arm *arms) {
    char *save = NULL, *tok[5];
    double v[4];
    for (int i = 0; i < 4; i++) {
        char *t = strtok_r(i ? NULL : line, " \t\r\n", &save);
        if (!t) return -1;
        v[i] = strtod(t, NULL);
    }
    *o = (hr_exp_opts){.mde = v[0], .baseline = v[1], .alpha = v[2], .power = v[3]};
    int n = 0;
    for (;;) {
        int k = 0;
        while (k < 5 && (tok[k] = strtok_r(NULL, " \t\r\n", &save))) k++;
        if (k == 0) return n;
        if (k < 5 || n == MAX_ARMS) return -1;
        arms[n++] = (hr_exp_arm){.name = tok[0],
                                 .weight = strtod(tok[1], NULL),
                                 .holdout = atoi(tok[2]),
                                 .exposures = strtoll(tok[3], NULL, 10),
                                 .conversions = strtoll(tok[4], NULL, 10)};
    }
}

int main(void) {
    char line[16384];
    hr_exp_arm arms[MAX_ARMS];
    hr_buf out;
    hr_buf_init(&out);
    while (fgets(line, sizeof line, stdin)) {
        hr_exp_opts o;
        hr_exp_result r;
        hr_err err = {0};
        int n = parse(line, &o, arms);
        hr_buf_reset(&out);
        if (n < 0) {
            hr_buf_puts(&out, "{\"error\":\"bad input line\"}");
        } else if (hr_exp_analyze(arms, n, &o, &r, &err)) {
            hr_buf_printf(&out, "{\"error\":%d,\"message\":", err.code);
            hr_buf_json_str(&out, err.message);
            hr_buf_putc(&out, '}');
        } else {
            hr_buf_putc(&out, '{');
            hr_exp_result_json(&r, arms, &out);
            hr_buf_putc(&out, '}');
            hr_exp_result_dispose(&r);
        }
        if (hr_buf_failed(&out)) return 1;
        printf("%s\n", out.data);
        fflush(stdout);
    }
    hr_buf_dispose(&out);
    return 0;
}
