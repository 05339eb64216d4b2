/* core/eval/passk.c — unbiased pass@k (see passk.h). */
#include "core/eval/passk.h"

#include <math.h>

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
