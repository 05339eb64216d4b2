/* cuda/rmsnorm.cu — RMSNorm and embedding gather (see rmsnorm.cuh). */
#include "rmsnorm.cuh"

#include "reduce.cuh"

#define NORM_THREADS 256

/* One block per token. */
static __global__ void rmsnorm_kernel(bf16 *out, const float *x, int ldx, const float *w, int d, double eps) {
    __shared__ double scratch[32];
    const float *xr = x + (size_t)blockIdx.x * ldx;
    bf16 *o = out + (size_t)blockIdx.x * d;
    double ss = 0;
    for (int i = threadIdx.x; i < d; i += blockDim.x) ss += (double)xr[i] * xr[i];
    ss = mp_block_sum(ss, scratch);
    float r = (float)(1.0 / sqrt(ss / d + eps));
    for (int i = threadIdx.x; i < d; i += blockDim.x) o[i] = __float2bfloat16_rn(xr[i] * r * w[i]);
}

int mp_cuda_rmsnorm(bf16 *out, const float *x, int ldx, const float *w, int n, int d, double eps, cudaStream_t st,
                    mp_error *err) {
    if (n == 0) return 0;
    rmsnorm_kernel<<<n, NORM_THREADS, 0, st>>>(out, x, ldx, w, d, eps);
    CUDA_LAUNCH_CHECK(err);
    return 0;
}

static __global__ void embed_kernel(float *x, const bf16 *embed, const int32_t *ids, int n, int d) {
    size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (size_t)n * d) return;
    size_t t = k / (size_t)d, i = k % (size_t)d;
    x[k] = __bfloat162float(embed[(size_t)ids[t] * d + i]);
}

int mp_cuda_embed(float *x, const bf16 *embed, const int32_t *ids, int n, int d, cudaStream_t st, mp_error *err) {
    if (n == 0) return 0;
    embed_kernel<<<mp_cdiv((size_t)n * d, 256), 256, 0, st>>>(x, embed, ids, n, d);
    CUDA_LAUNCH_CHECK(err);
    return 0;
}
