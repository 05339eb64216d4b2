/* cuda/moe.cu — expert activations and the sparse VD/HD mixture (see
 * moe.cuh for the equations and the owner scheme). */
#include "moe.cuh"

#define MIX_THREADS 128

static __global__ void bias_relu2_kernel(float *a, const float *bias, size_t total, int w) {
    size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= total) return;
    float u = a[k] + bias[k % (size_t)w];
    a[k] = u > 0 ? u * u : 0.0f;
}

int mp_cuda_bias_relu2(float *a, const float *bias, int n, int w, cudaStream_t st, mp_error *err) {
    size_t total = (size_t)n * w;
    if (total == 0) return 0;
    bias_relu2_kernel<<<mp_cdiv(total, 256), 256, 0, st>>>(a, bias, total, w);
    CUDA_LAUNCH_CHECK(err);
    return 0;
}

/* Position of e in lst[0..c) or -1 (an expert appears at most once per head). */
static __device__ __forceinline__ int find_in(const int32_t *lst, int c, int e) {
    for (int a = 0; a < c; a++)
        if (lst[a] == e) return a;
    return -1;
}

/* Binary search in the sorted masked flat ids of the group. */
static __device__ bool mask_has(const uint32_t *ids, int n, uint32_t key) {
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (ids[mid] < key) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && ids[lo] == key;
}

/* Per-token views of the routing lists. */
typedef struct tok_lists {
    const int32_t *cnt1, *cnt2; /* [Hm] */
    const int32_t *idx1, *idx2; /* [Hm][cap] */
    const float *p1, *p2;       /* [Hm][cap] */
} tok_lists;

/* Factor-1 expert i (VD): A_i, y12_i, y11_i. */
static __device__ void own_factor1(const mp_cuda_moe_args &A, const tok_lists &L, int t, int i, const float *beta) {
    const int Hm = A.Hm, ms = A.ms, cap = A.cap, E = A.E;
    const size_t eu = (size_t)E * ms;
    const float *a1 = A.act1 + (size_t)t * eu, *a2 = A.act2 + (size_t)t * eu;
    float y[MP_CUDA_MAX_MS];
#pragma unroll
    for (int k = 0; k < MP_CUDA_MAX_MS; k++) y[k] = 0.0f;
    float ca = 0.0f;
    for (int h = 0; h < Hm; h++) { /* sum_h g1[h,i] (1, beta_h) */
        int a = find_in(L.idx1 + h * cap, L.cnt1[h], i);
        if (a < 0) continue;
        float pa = L.p1[h * cap + a];
        ca += pa;
#pragma unroll
        for (int k = 0; k < MP_CUDA_MAX_MS; k++)
            if (k < ms) y[k] += pa * beta[h * ms + k];
    }
    if (A.mask_ids && A.row_any[i]) /* masked active pairs (i, j) */
        for (int h = 0; h < Hm; h++) {
            int a = find_in(L.idx1 + h * cap, L.cnt1[h], i);
            if (a < 0) continue;
            float pa = L.p1[h * cap + a];
            for (int b = 0; b < L.cnt2[h]; b++) {
                int j = L.idx2[h * cap + b];
                if (!mask_has(A.mask_ids, A.n_mask, (uint32_t)i * (uint32_t)E + (uint32_t)j)) continue;
                float c = pa * L.p2[h * cap + b];
                ca -= c;
#pragma unroll
                for (int k = 0; k < MP_CUDA_MAX_MS; k++)
                    if (k < ms) y[k] -= c * a2[(size_t)j * ms + k];
            }
        }
    for (int s = 0; s < A.n_steer; s++) { /* w_ij += S */
        const mp_cuda_steer st = A.steer[s];
        if (st.group != A.group || st.i != i) continue;
        float c = st.strength;
        ca += c;
#pragma unroll
        for (int k = 0; k < MP_CUDA_MAX_MS; k++)
            if (k < ms) y[k] += c * a2[(size_t)st.j * ms + k];
    }
    A.coef_a[(size_t)t * E + i] = __float2bfloat16_rn(ca);
    bf16 *y11 = A.y11 + (size_t)t * eu + (size_t)i * ms, *y12 = A.y12 + (size_t)t * eu + (size_t)i * ms;
#pragma unroll
    for (int k = 0; k < MP_CUDA_MAX_MS; k++)
        if (k < ms) {
            y12[k] = __float2bfloat16_rn(y[k]);
            y11[k] = __float2bfloat16_rn(ca * a1[(size_t)i * ms + k]);
        }
}

/* Factor-2 expert j: D_j, y21_j and (VD) y22_j. */
static __device__ void own_factor2(const mp_cuda_moe_args &A, const tok_lists &L, int t, int j, const float *alpha) {
    const int Hm = A.Hm, ms = A.ms, cap = A.cap, E = A.E;
    const size_t eu = (size_t)E * ms;
    const float *a1 = A.act1 + (size_t)t * eu;
    float y[MP_CUDA_MAX_MS];
#pragma unroll
    for (int k = 0; k < MP_CUDA_MAX_MS; k++) y[k] = 0.0f;
    float cd = 0.0f;
    for (int h = 0; h < Hm; h++) { /* sum_h g2[h,j] (1, alpha_h) */
        int b = find_in(L.idx2 + h * cap, L.cnt2[h], j);
        if (b < 0) continue;
        float pb = L.p2[h * cap + b];
        cd += pb;
#pragma unroll
        for (int k = 0; k < MP_CUDA_MAX_MS; k++)
            if (k < ms) y[k] += pb * alpha[h * ms + k];
    }
    if (A.mask_ids)
        for (int h = 0; h < Hm; h++) {
            int b = find_in(L.idx2 + h * cap, L.cnt2[h], j);
            if (b < 0) continue;
            float pb = L.p2[h * cap + b];
            for (int a = 0; a < L.cnt1[h]; a++) {
                int i = L.idx1[h * cap + a];
                if (!A.row_any[i] || !mask_has(A.mask_ids, A.n_mask, (uint32_t)i * (uint32_t)E + (uint32_t)j)) continue;
                float c = L.p1[h * cap + a] * pb;
                cd -= c;
#pragma unroll
                for (int k = 0; k < MP_CUDA_MAX_MS; k++)
                    if (k < ms) y[k] -= c * a1[(size_t)i * ms + k];
            }
        }
    for (int s = 0; s < A.n_steer; s++) {
        const mp_cuda_steer st = A.steer[s];
        if (st.group != A.group || st.j != j) continue;
        float c = st.strength;
        cd += c;
#pragma unroll
        for (int k = 0; k < MP_CUDA_MAX_MS; k++)
            if (k < ms) y[k] += c * a1[(size_t)st.i * ms + k];
    }
    A.coef_d[(size_t)t * E + j] = __float2bfloat16_rn(cd);
    bf16 *y21 = A.y21 + (size_t)t * eu + (size_t)j * ms;
#pragma unroll
    for (int k = 0; k < MP_CUDA_MAX_MS; k++)
        if (k < ms) y21[k] = __float2bfloat16_rn(y[k]);
    if (A.vd) {
        const float *a2 = A.act2 + (size_t)t * eu;
        bf16 *y22 = A.y22 + (size_t)t * eu + (size_t)j * ms;
#pragma unroll
        for (int k = 0; k < MP_CUDA_MAX_MS; k++)
            if (k < ms) y22[k] = __float2bfloat16_rn(cd * a2[(size_t)j * ms + k]);
    }
}

/* One block per token. Shared: alpha [Hm][ms], beta [Hm][ms]. */
static __global__ void moe_mix_kernel(mp_cuda_moe_args A) {
    extern __shared__ float sh[];
    const int t = blockIdx.x, Hm = A.Hm, ms = A.ms, cap = A.cap;
    const size_t eu = (size_t)A.E * ms;
    tok_lists L;
    L.cnt1 = A.cnt + (size_t)(t * 2 + 0) * Hm;
    L.cnt2 = A.cnt + (size_t)(t * 2 + 1) * Hm;
    L.idx1 = A.idx + (size_t)(t * 2 + 0) * Hm * cap;
    L.idx2 = A.idx + (size_t)(t * 2 + 1) * Hm * cap;
    L.p1 = A.p + (size_t)(t * 2 + 0) * Hm * cap;
    L.p2 = A.p + (size_t)(t * 2 + 1) * Hm * cap;
    float *alpha = sh, *beta = sh + Hm * ms;
    const float *a1 = A.act1 + (size_t)t * eu;
    const float *a2 = A.vd ? A.act2 + (size_t)t * eu : NULL;
    for (int u = threadIdx.x; u < Hm * ms; u += blockDim.x) { /* head mixtures, CPU order */
        const int h = u / ms, k = u % ms;
        float s = 0.0f;
        for (int a = 0; a < L.cnt1[h]; a++) s += L.p1[h * cap + a] * a1[(size_t)L.idx1[h * cap + a] * ms + k];
        alpha[u] = s;
        if (a2) {
            s = 0.0f;
            for (int b = 0; b < L.cnt2[h]; b++) s += L.p2[h * cap + b] * a2[(size_t)L.idx2[h * cap + b] * ms + k];
            beta[u] = s;
        }
    }
    __syncthreads();
    const int per_f = Hm * cap + A.n_steer; /* active slots, then steering entries */
    for (int u = threadIdx.x; u < 2 * per_f; u += blockDim.x) {
        const int f = u / per_f, r = u % per_f;
        if (f == 0 && !A.vd) continue;
        const int32_t *cnt = f ? L.cnt2 : L.cnt1, *idx = f ? L.idx2 : L.idx1;
        int e;
        bool owner = true;
        if (r < Hm * cap) {
            const int h = r / cap, a = r % cap;
            if (a >= cnt[h]) continue;
            e = idx[h * cap + a];
            for (int h2 = 0; h2 < h && owner; h2++) owner = find_in(idx + h2 * cap, cnt[h2], e) < 0;
        } else {
            const int s = r - Hm * cap;
            const mp_cuda_steer st = A.steer[s];
            if (st.group != A.group) continue;
            e = f ? st.j : st.i;
            for (int h2 = 0; h2 < Hm && owner; h2++) owner = find_in(idx + h2 * cap, cnt[h2], e) < 0;
            for (int s2 = 0; s2 < s && owner; s2++)
                owner = !(A.steer[s2].group == A.group && (f ? A.steer[s2].j : A.steer[s2].i) == e);
        }
        if (!owner) continue;
        if (f == 0) own_factor1(A, L, t, e, beta);
        else own_factor2(A, L, t, e, alpha);
    }
}

int mp_cuda_moe_mix(const mp_cuda_moe_args *a, cudaStream_t st, mp_error *err) {
    if (a->ms > MP_CUDA_MAX_MS)
        return mp_fail(err, MP_EUNSUPPORTED, "CUDA expert mixture supports per-expert width <= %d, the model has %d",
                       MP_CUDA_MAX_MS, a->ms);
    if (a->n == 0) return 0;
    const size_t smem = (size_t)2 * a->Hm * a->ms * sizeof(float);
    if (smem > 48 * 1024)
        return mp_fail(err, MP_EUNSUPPORTED, "CUDA expert mixture: moe_heads * width = %d is too large",
                       a->Hm * a->ms);
    moe_mix_kernel<<<a->n, MIX_THREADS, smem, st>>>(*a);
    CUDA_LAUNCH_CHECK(err);
    return 0;
}
