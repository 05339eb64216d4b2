/* cuda/attention.cu — fused causal attention (see attention.cuh).
 *
 * Grid (ceil(n/ATT_WARPS), H); block ATT_WARPS warps; warp w owns query
 * t = blockIdx.x*ATT_WARPS + w. The block walks key tiles of ATT_TILE keys,
 * staged in shared memory (rows padded to hd+1 floats: no bank conflicts
 * when lanes read different keys). In a tile, lane j scores key k0+j, the
 * warp takes the tile max, rescales its running (max m, sum l, output o)
 * and accumulates o += sum_j p_j V_j with lane owning dims lane, lane+32, ...
 * Scores, exponentials and accumulators are fp32 (the CPU reference sums
 * the softmax denominator in double; the difference is far below bf16).
 * Follow-up for speed: tensor-core (mma) tiles of Q and K; see docs/cuda.md. */
#include "attention.cuh"

#include "reduce.cuh"

#define ATT_WARPS 8
#define ATT_TILE 32
#define ATT_MAX_HD 256
#define ATT_DPL (ATT_MAX_HD / 32) /* output dims per lane */

static __global__ void attention_kernel(bf16 *att, const float *q, const float *K, const float *V, int n, int pos0,
                                        int H, int KV, int hd, float scale) {
    extern __shared__ float smem[];
    const int ld = hd + 1;
    float *Ks = smem;                      /* [ATT_TILE][hd+1] */
    float *Vs = Ks + ATT_TILE * ld;        /* [ATT_TILE][hd+1] */
    float *Qs = Vs + ATT_TILE * ld;        /* [ATT_WARPS][hd] */
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int h = blockIdx.y, kvh = h / (H / KV);
    const int qd = H * hd, kvd = KV * hd;
    const int t = blockIdx.x * ATT_WARPS + w;
    const bool valid = t < n;
    const int len = pos0 + t + 1; /* keys 0..pos0+t */
    int last_t = (blockIdx.x + 1) * ATT_WARPS;
    if (last_t > n) last_t = n;
    const int S = pos0 + last_t; /* keys any query of the block needs */

    float *qs = Qs + w * hd;
    for (int i = lane; i < hd; i += 32) qs[i] = valid ? q[(size_t)t * qd + (size_t)h * hd + i] : 0.0f;
    float o[ATT_DPL];
#pragma unroll
    for (int r = 0; r < ATT_DPL; r++) o[r] = 0.0f;
    float m = -INFINITY, l = 0.0f;

    for (int k0 = 0; k0 < S; k0 += ATT_TILE) {
        __syncthreads(); /* previous tile fully consumed */
        for (int e = threadIdx.x; e < ATT_TILE * hd; e += blockDim.x) {
            int j = e / hd, i = e % hd, key = k0 + j;
            float kv = 0.0f, vv = 0.0f;
            if (key < S) {
                kv = K[(size_t)key * kvd + (size_t)kvh * hd + i];
                vv = V[(size_t)key * kvd + (size_t)kvh * hd + i];
            }
            Ks[j * ld + i] = kv;
            Vs[j * ld + i] = vv;
        }
        __syncthreads();
        if (!valid || k0 >= len) continue; /* warp-uniform */
        const int key = k0 + lane;
        float s = -INFINITY;
        if (key < len) {
            const float *kr = Ks + lane * ld;
            float dot = 0.0f;
            for (int i = 0; i < hd; i++) dot += qs[i] * kr[i];
            s = dot * scale;
        }
        const float m_new = fmaxf(m, mp_warp_max(s)); /* finite: key k0 < len is valid */
        const float corr = expf(m - m_new);           /* 0 on the first tile (m = -inf) */
        const float p = key < len ? expf(s - m_new) : 0.0f;
        l = l * corr + mp_warp_sum(p);
#pragma unroll
        for (int r = 0; r < ATT_DPL; r++) o[r] *= corr;
        for (int j = 0; j < ATT_TILE; j++) {
            const float pj = __shfl_sync(0xffffffffu, p, j);
            if (pj == 0.0f) continue; /* warp-uniform: pj is the same in every lane */
            const float *vr = Vs + j * ld;
#pragma unroll
            for (int r = 0; r < ATT_DPL; r++) {
                const int i = lane + 32 * r;
                if (i < hd) o[r] += pj * vr[i];
            }
        }
        m = m_new;
    }
    if (!valid) return;
    const float inv = 1.0f / l;
#pragma unroll
    for (int r = 0; r < ATT_DPL; r++) {
        const int i = lane + 32 * r;
        if (i < hd) att[(size_t)t * qd + (size_t)h * hd + i] = __float2bfloat16_rn(o[r] * inv);
    }
}

int mp_cuda_attention(bf16 *att, const float *q, const float *K, const float *V, int n, int pos0, int H, int KV,
                      int hd, cudaStream_t st, mp_error *err) {
    if (hd > ATT_MAX_HD)
        return mp_fail(err, MP_EUNSUPPORTED, "CUDA attention supports head_dim <= %d, the model has %d", ATT_MAX_HD,
                       hd);
    if (n == 0) return 0;
    const size_t smem = (size_t)(2 * ATT_TILE * (hd + 1) + ATT_WARPS * hd) * sizeof(float);
    if (smem > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
                   err);
    dim3 grid(mp_cdiv((size_t)n, ATT_WARPS), (unsigned)H);
    const float scale = (float)(1.0 / sqrt((double)hd));
    attention_kernel<<<grid, ATT_WARPS * 32, smem, st>>>(att, q, K, V, n, pos0, H, KV, hd, scale);
    CUDA_LAUNCH_CHECK(err);
    return 0;
}
