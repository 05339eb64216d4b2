/* tests/eval_code/test_passk.c — the unbiased pass@k estimator (core/eval/passk)
 * against values computed independently: exact binomial ratios in closed form
 * and the edge cases of Chen et al. 2021's definition. */
#include <math.h>
#include <stdio.h>

#include "core/eval/passk.h"

static int failures;

static void check(const char *what, double got, double want, double tol) {
    if (!(fabs(got - want) <= tol)) {
        fprintf(stderr, "FAIL %s: got %.17g, want %.17g\n", what, got, want);
        failures++;
    }
}

/* 1 - C(n-c,k)/C(n,k) with exact double products of small binomials */
static double binom(int n, int k) {
    if (k < 0 || k > n) return 0;
    double r = 1;
    for (int i = 1; i <= k; i++) r = r * (n - k + i) / i;
    return r;
}

int main(void) {
    check("n=200 c=10 k=1", mp_pass_at_k(200, 10, 1), 0.05, 1e-15);
    check("n=20 c=5 k=1", mp_pass_at_k(20, 5, 1), 0.25, 1e-15);
    /* n=10 c=3 k=5: 1 - C(7,5)/C(10,5) = 1 - 21/252 = 11/12 */
    check("n=10 c=3 k=5", mp_pass_at_k(10, 3, 5), 11.0 / 12.0, 1e-14);
    check("c=0", mp_pass_at_k(10, 0, 5), 0.0, 0);
    check("n-c<k -> 1", mp_pass_at_k(10, 6, 5), 1.0, 0);
    check("c=n", mp_pass_at_k(7, 7, 1), 1.0, 0);
    check("n=1 c=1", mp_pass_at_k(1, 1, 1), 1.0, 0);
    check("n=1 c=0", mp_pass_at_k(1, 0, 1), 0.0, 0);
    /* pass@100 of 200 samples with 2 correct: 1 - C(198,100)/C(200,100) = 1 - (100*99)/(200*199) */
    check("n=200 c=2 k=100", mp_pass_at_k(200, 2, 100), 1.0 - (100.0 * 99.0) / (200.0 * 199.0), 1e-14);
    for (int n = 1; n <= 30; n++)
        for (int c = 0; c <= n; c++)
            for (int k = 1; k <= n; k++) {
                double want = 1.0 - binom(n - c, k) / binom(n, k);
                char what[64];
                snprintf(what, sizeof what, "n=%d c=%d k=%d", n, c, k);
                check(what, mp_pass_at_k(n, c, k), want, 1e-12);
            }
    check("k>n -> NaN", isnan(mp_pass_at_k(5, 1, 6)) ? 1 : 0, 1, 0);
    check("c>n -> NaN", isnan(mp_pass_at_k(5, 6, 1)) ? 1 : 0, 1, 0);
    int n[3] = {20, 20, 5}, c[3] = {5, 0, 5}, skipped = -1;
    check("mean pass@1", mp_pass_at_k_mean(n, c, 3, 1, NULL), (0.25 + 0 + 1) / 3, 1e-15);
    check("mean pass@10 skips n<10", mp_pass_at_k_mean(n, c, 3, 10, &skipped),
          (mp_pass_at_k(20, 5, 10) + 0) / 2, 1e-15);
    check("skipped", skipped, 1, 0);
    /* MultiPL-E pass_k.py: estimator(n, c, k) = 1.0 when n - c < k, so n < k counts as solved */
    check("multiple n<k c=0 -> 1", mp_pass_at_k_multiple(5, 0, 10), 1.0, 0);
    check("multiple n>=k = unbiased", mp_pass_at_k_multiple(20, 5, 10), mp_pass_at_k(20, 5, 10), 0);
    double mean, se;
    mp_error err;
    if (mp_pass_at_k_multiple_mean(n, c, 3, 10, 1000, &mean, &se, &err)) failures++;
    check("multiple mean pass@10 counts n<k as 1", mean, (mp_pass_at_k(20, 5, 10) + 0 + 1) / 3, 1e-15);
    /* bootstrap se of a mean of three values is near the analytic sd/sqrt(n) (within 15%) */
    double v[3] = {mp_pass_at_k(20, 5, 10), 0, 1}, m = (v[0] + v[1] + v[2]) / 3, ss = 0;
    for (int i = 0; i < 3; i++) ss += (v[i] - m) * (v[i] - m);
    double plug = sqrt(ss / 3) / sqrt(3.0); /* the bootstrap estimates the plug-in (divide by n) sd */
    check("bootstrap se ~ plug-in se", fabs(se - plug) < 0.15 * plug ? 1 : 0, 1, 0);
    if (failures) {
        fprintf(stderr, "%d pass@k checks failed\n", failures);
        return 1;
    }
    printf("pass@k: all checks passed\n");
    return 0;
}
