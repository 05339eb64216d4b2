/* core/eval/passk.h — the unbiased pass@k estimator of Chen et al. 2021
 * ("Evaluating Large Language Models Trained on Code", eq. 1):
 *   pass@k = 1 - C(n-c, k) / C(n, k)
 * for n samples of which c pass, computed as the stable product
 *   1 - prod_{i = n-c+1}^{n} (1 - k / i)
 * (the numpy form of the paper's reference code). The per-problem values
 * are bootstrapped over problems for a standard error (core/eval/eval_stats). */
#ifndef MP_PASSK_H
#define MP_PASSK_H

#include "core/util/error.h"

/* pass@k for one problem. Requires 0 <= c <= n and 1 <= k <= n; returns
 * NAN otherwise. n - c < k gives exactly 1.0; c = 0 gives exactly 0.0. */
double mp_pass_at_k(int n, int c, int k);

/* Mean of mp_pass_at_k over problems (n[i], c[i]); problems with n[i] < k
 * are skipped and counted in *skipped (may be NULL). NAN when none counts. */
double mp_pass_at_k_mean(const int *n, const int *c, int count, int k, int *skipped);

/* MultiPL-E's pass_k.py estimator: 1.0 when n - c < k, which includes
 * n < k (a problem with fewer samples than k counts as solved); otherwise
 * mp_pass_at_k. NAN for invalid n, c, k. */
double mp_pass_at_k_multiple(int n, int c, int k);

/* Mean over problems of mp_pass_at_k_multiple, and its bootstrap standard
 * error over problems (b resamples, fixed seed; NAN for fewer than 2
 * problems). @return 0 or MP_ENOMEM. */
int mp_pass_at_k_multiple_mean(const int *n, const int *c, int count, int k, int b, double *mean, double *se,
                               mp_error *err);

#endif
