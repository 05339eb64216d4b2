/* cuda/rmsnorm.cuh — RMSNorm (mirror of mp_cpu_rmsnorm) and the embedding
 * gather that starts the residual stream. */
#ifndef MP_CUDA_RMSNORM_CUH
#define MP_CUDA_RMSNORM_CUH

#include "common.cuh"

/* out[t][i] = bf16(x[t][i] * r_t * w[i]), r_t = 1/sqrt(mean_i x[t][i]^2 + eps)
 * with the sum of squares in double as on the CPU. x: fp32 [n][d] rows of
 * stride ldx; out: bf16 [n][d] (the input of the next GEMM).
 * @return 0 or MP_EINTERNAL. */
int mp_cuda_rmsnorm(bf16 *out, const float *x, int ldx, const float *w, int n, int d, double eps, cudaStream_t st,
                    mp_error *err);

/* x[t][:] = embed[ids[t]][:] widened to fp32; ids on the device. */
int mp_cuda_embed(float *x, const bf16 *embed, const int32_t *ids, int n, int d, cudaStream_t st, mp_error *err);

#endif
