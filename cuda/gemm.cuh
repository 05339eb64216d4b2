/* cuda/gemm.cuh — row-major GEMMs on cuBLAS, the CUDA twin of mp_cpu_linear
 * and the cblas_sgemm calls of core/model/forward_cpu.c.
 *
 * All GEMMs take bf16 A/B and write float32 C with float32 accumulation
 * (cublasGemmEx, CUBLAS_COMPUTE_32F; tensor cores on sm_80+):
 *   Y[M][N] (ldy) = alpha * X[M][K] (ldx) * op(W) + beta * Y
 * where op(W) = W^T for W row-major [N][K] (nn.Linear, trans_w = 1)
 *       op(W) = W   for W row-major [K][N] (trans_w = 0).
 */
#ifndef MP_CUDA_GEMM_CUH
#define MP_CUDA_GEMM_CUH

#include "common.cuh"

/* @return 0 or MP_EINTERNAL (cuBLAS error, message in err). */
int mp_cuda_gemm(cublasHandle_t h, int trans_w, int M, int N, int K, float alpha, const bf16 *X, int ldx,
                 const bf16 *W, int ldw, float beta, float *Y, int ldy, mp_error *err);

/* y[M][N] = x[M][K] W^T with W [N][K]: the linear layer (beta = 0 or 1). */
static inline int mp_cuda_linear(cublasHandle_t h, float *y, const bf16 *x, const bf16 *w, int M, int in, int outd,
                                 float beta, mp_error *err) {
    return mp_cuda_gemm(h, 1, M, outd, in, 1.0f, x, in, w, in, beta, y, outd, err);
}

#endif
