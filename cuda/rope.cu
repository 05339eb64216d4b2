/* cuda/rope.cu — rotate-half RoPE (see rope.cuh). One thread per
 * (token, head, pair i < hd/2). */
#include "rope.cuh"

static __global__ void rope_kernel(float *x, int n, int heads, int hd, int ld, int pos0, const float *cos_t,
                                   const float *sin_t) {
    const int half = hd / 2;
    size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (size_t)n * heads * half) return;
    int i = (int)(k % half);
    int h = (int)((k / half) % heads);
    int t = (int)(k / ((size_t)half * heads));
    float *v = x + (size_t)t * ld + (size_t)h * hd;
    float cs = cos_t[(size_t)(pos0 + t) * half + i], sn = sin_t[(size_t)(pos0 + t) * half + i];
    float x1 = v[i], x2 = v[i + half];
    v[i] = x1 * cs - x2 * sn;
    v[i + half] = x2 * cs + x1 * sn;
}

int mp_cuda_rope(float *x, int n, int heads, int hd, int ld, int pos0, const float *cos_t, const float *sin_t,
                 cudaStream_t st, mp_error *err) {
    size_t total = (size_t)n * heads * (hd / 2);
    if (total == 0) return 0;
    rope_kernel<<<mp_cdiv(total, 256), 256, 0, st>>>(x, n, heads, hd, ld, pos0, cos_t, sin_t);
    CUDA_LAUNCH_CHECK(err);
    return 0;
}
