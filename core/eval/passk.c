/* core/eval/passk.c — unbiased pass@k (see passk.h). */
#include "core/eval/passk.h"

#include <math.h>
#include <stdlib.h>

#include "core/eval/eval_stats.h"

double mp_pass_at_k(int n, int c, int k) {
    if (n < 1 || c < 0 || c > n || k < 1 || k > n) return NAN;
    if (n - c < k) return 1.0;
    double prod = 1.0;
    for (int i = n - c + 1; i <= n; i++) prod *= 1.0 - (double)k / (double)i;
    return 1.0 - prod;
}

double mp_pass_at_k_mean(const int *n, const int *c, int count, int k, int *skipped) {
    double sum = 0;
    int used = 0, skip = 0;
    for (int i = 0; i < count; i++) {
        if (n[i] < k) {
            skip++;
            continue;
        }
        sum += mp_pass_at_k(n[i], c[i], k);
        used++;
    }
    if (skipped) *skipped = skip;
    return used ? sum / used : NAN;
}

double mp_pass_at_k_multiple(int n, int c, int k) {
    if (n < 0 || c < 0 || c > n || k < 1) return NAN;
    if (n - c < k) return 1.0;
    return mp_pass_at_k(n, c, k);
}

int mp_pass_at_k_multiple_mean(const int *n, const int *c, int count, int k, int b, double *mean, double *se,
                               mp_error *err) {
    *mean = *se = NAN;
    if (count < 1) return 0;
    double *v = malloc((size_t)count * sizeof *v), sum = 0;
    MP_FAIL_IF(!v, err, MP_ENOMEM, "out of memory");
    for (int i = 0; i < count; i++) sum += v[i] = mp_pass_at_k_multiple(n[i], c[i], k);
    *mean = sum / count;
    int rc = mp_bootstrap_se(v, (size_t)count, b, 1234, se, err);
    free(v);
    return rc;
}
