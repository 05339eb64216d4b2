/* core/eval/passk.h — the unbiased pass@k estimator of Chen et al. 2021
 * ("Evaluating Large Language Models Trained on Code", eq. 1):
 *   pass@k = 1 - C(n-c, k) / C(n, k)
 * for n samples of which c pass, computed as the stable product
 *   1 - prod_{i = n-c+1}^{n} (1 - k / i)
 * (the numpy form of the paper's reference code). */
#ifndef MP_PASSK_H
#define MP_PASSK_H

/* pass@k for one problem. Requires 0 <= c <= n and 1 <= k <= n; returns
 * NAN otherwise. n - c < k gives exactly 1.0; c = 0 gives exactly 0.0. */
double mp_pass_at_k(int n, int c, int k);

/* Mean of mp_pass_at_k over problems (n[i], c[i]); problems with n[i] < k
 * are skipped and counted in *skipped (may be NULL). NAN when none counts. */
double mp_pass_at_k_mean(const int *n, const int *c, int count, int k, int *skipped);

#endif
