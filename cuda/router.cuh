/* cuda/router.cuh — Monet's product-key router on the GPU (mirror of
 * mp_router_route, core/model/routing.c), writing compact per-head lists.
 *
 * Layout: list k = (t*2 + f)*Hm + h (as mp_route_group) holds cnt[k]
 * entries idx[k*cap + a], p[k*cap + a], a < cnt[k], in increasing expert
 * index (the CPU order). cap is fixed per state (about k active experts per
 * head are expected, DESIGN.md §2; cap defaults to min(E, max(128, 16k))).
 * A head selecting more than cap experts is not truncated silently: the
 * largest count seen is atomically max'ed into *overflow and the caller
 * turns it into an error (entries past cap are dropped in that case). */
#ifndef MP_CUDA_ROUTER_CUH
#define MP_CUDA_ROUTER_CUH

#include "common.cuh"

/* Route n tokens. z1, z2: fp32 [n][Hm*E] raw router logits; bn*: fp32 [Hm]
 * running statistics; threshold = Phi^-1(1 - k/E) (double).
 * Per (t, f, h): n_i = (z_i - mean)/sqrt(var + 1e-5) in double,
 * thr = min(max_i n_i, threshold), active = {i : n_i >= thr},
 * p_i = softmax over the active set of the raw z_i (double, stored float).
 * @return 0 or MP_EINTERNAL. */
int mp_cuda_route(const float *z1, const float *z2, int n, int Hm, int E, const float *bn1_mean, const float *bn1_var,
                  const float *bn2_mean, const float *bn2_var, double threshold, int cap, int32_t *cnt, int32_t *idx,
                  float *p, int *overflow, cudaStream_t st, mp_error *err);

#endif
