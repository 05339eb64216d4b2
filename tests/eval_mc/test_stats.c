/* tests/eval_mc/test_stats.c — core/eval/eval_stats and the standard errors of
 * core/eval/eval_result on cases with known answers: McNemar's exact p
 * (10 discordant pairs all one way: 2 * 0.5^10), paired bootstrap intervals
 * (identical runs: [0, 0], not distinguishable; all-wrong vs all-right: [1, 1]),
 * perplexity from weighted items (NLL = tokens * log 2 vs log 4: ppl 2 vs 4),
 * lm-eval's acc_stderr and pooled_sample_stderr formulas.
 * usage: test_stats */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/eval/eval_result.h"
#include "core/eval/eval_stats.h"

static int failures = 0;

static void near(const char *what, double got, double want, double tol) {
    if (fabs(got - want) <= tol) return;
    failures++;
    fprintf(stderr, "FAIL %s: got %.17g, want %.17g\n", what, got, want);
}

int main(void) {
    enum { N = 40 };
    double a[N], b[N], w[N], la[N], lb[N];
    mp_paired pr;
    mp_error err;
    /* McNemar: items 0..9 right in base, wrong in masked; the rest agree */
    for (int i = 0; i < N; i++) {
        a[i] = i < 10 ? 1 : (i % 2);
        b[i] = i < 10 ? 0 : (i % 2);
    }
    if (mp_paired_compare(a, NULL, b, NULL, N, 1000, 0.95, 1234, &pr, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    near("mcnemar p", pr.p_mcnemar, 2 * pow(0.5, 10), 1e-15);
    near("discordant b", (double)pr.discordant[0], 10, 0);
    near("discordant c", (double)pr.discordant[1], 0, 0);
    near("delta", pr.delta, -10.0 / N, 1e-15);
    if (!(pr.hi < 0 && pr.distinguishable)) failures++, fprintf(stderr, "FAIL interval [%g, %g] should exclude 0\n", pr.lo, pr.hi);
    /* identical runs */
    mp_paired_compare(a, NULL, a, NULL, N, 1000, 0.95, 1234, &pr, &err);
    near("identical lo", pr.lo, 0, 0);
    near("identical hi", pr.hi, 0, 0);
    near("identical p", pr.p_mcnemar, 1, 0);
    if (pr.distinguishable) failures++, fputs("FAIL identical runs distinguishable\n", stderr);
    /* perplexity: doc i has w_i tokens, NLL w_i log 2 (base) and w_i log 4 (masked) */
    for (int i = 0; i < N; i++) {
        w[i] = 5 + i % 7;
        la[i] = w[i] * log(2.0);
        lb[i] = w[i] * log(4.0);
    }
    mp_paired_compare(la, w, lb, w, N, 500, 0.95, 1, &pr, &err);
    near("ppl delta", pr.delta, 2.0, 1e-12);
    near("ppl lo", pr.lo, 2.0, 1e-12);
    if (!isnan(pr.p_mcnemar)) failures++, fputs("FAIL McNemar on non-binary items\n", stderr);
    /* errors */
    if (mp_paired_compare(a, NULL, b, NULL, 1, 1000, 0.95, 1, &pr, &err) != MP_EINPUT) failures++;
    if (mp_paired_compare(a, w, b, NULL, N, 1000, 0.95, 1, &pr, &err) != MP_EINPUT) failures++;
    /* lm-eval formulas */
    near("acc_stderr binary", mp_stderr_binary(3, 10), sqrt(0.3 * 0.7 / 9), 1e-15);
    double x[4] = {1, 0, 0, 1};
    near("mean_stderr", mp_stderr_mean(x, 4), sqrt((4 * 0.25) / 3) / 2, 1e-15);
    double se[2] = {0.1, 0.2};
    size_t sz[2] = {10, 30};
    near("pooled", mp_stderr_pooled(se, sz, 2), sqrt((9 * 0.01 * 10 + 29 * 0.04 * 30) / 38.0 / 40.0), 1e-15);
    if (failures) return fprintf(stderr, "%d failures\n", failures), 1;
    puts("eval stats: all checks passed");
    return 0;
}
