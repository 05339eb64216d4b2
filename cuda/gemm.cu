/* cuda/gemm.cu — cuBLAS GEMM wrapper (see gemm.cuh). */
#include "gemm.cuh"

const char *mp_cublas_status_name(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case CUBLAS_STATUS_MAPPING_ERROR: return "mapping error";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    default: return "unknown cuBLAS status";
    }
}

/* Row-major Y = X op(W) is column-major Y^T = op(W)^T X^T: cuBLAS computes
 * C (N x M, ldc = ldy) = opA(A) (N x K) * B (K x M) with A = W and B = X.
 * Row-major W [N][K] seen column-major is K x N (lda = ldw), so opA = T;
 * row-major W [K][N] seen column-major is N x K, so opA = N. Row-major X
 * [M][K] seen column-major is K x M with ldb = ldx: opB = N. */
int mp_cuda_gemm(cublasHandle_t h, int trans_w, int M, int N, int K, float alpha, const bf16 *X, int ldx,
                 const bf16 *W, int ldw, float beta, float *Y, int ldy, mp_error *err) {
    if (M == 0 || N == 0) return 0;
    CUBLAS_CHECK(cublasGemmEx(h, trans_w ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &alpha, W, CUDA_R_16BF,
                              ldw, X, CUDA_R_16BF, ldx, &beta, Y, CUDA_R_32F, ldy, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT),
                 err);
    return 0;
}
