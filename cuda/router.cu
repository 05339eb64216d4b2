/* cuda/router.cu — routing kernel (see router.cuh). One block per
 * (token, factor, head). Thread tid owns the contiguous index range
 * [tid*per, (tid+1)*per) of the E experts, so an exclusive scan of the
 * per-thread counts gives every selected expert its slot in index order,
 * exactly the order the CPU appends them. */
#include "router.cuh"

#include "reduce.cuh"

#define ROUTER_THREADS 256

static __global__ void route_kernel(const float *z1, const float *z2, int Hm, int E, const float *bn1_mean,
                                    const float *bn1_var, const float *bn2_mean, const float *bn2_var, double threshold,
                                    int cap, int32_t *cnt, int32_t *idx, float *p, int *overflow) {
    __shared__ double dscratch[32];
    __shared__ int offs[ROUTER_THREADS + 1];
    const int k = blockIdx.x; /* (t*2 + f)*Hm + h */
    const int h = k % Hm, f = (k / Hm) % 2, t = k / (2 * Hm);
    const float *z = (f ? z2 : z1) + ((size_t)t * Hm + h) * E;
    const double mean = f ? bn2_mean[h] : bn1_mean[h];
    const double var = f ? bn2_var[h] : bn1_var[h];
    const double inv_std = 1.0 / sqrt(var + 1e-5);
    const int per = (E + ROUTER_THREADS - 1) / ROUTER_THREADS;
    const int lo = threadIdx.x * per, hi = min(lo + per, E);

    double nmax = -INFINITY;
    for (int i = lo; i < hi; i++) nmax = fmax(nmax, ((double)z[i] - mean) * inv_std);
    nmax = mp_block_max(nmax, dscratch);
    const double thr = nmax < threshold ? nmax : threshold;

    int mine = 0;
    double zmax = -INFINITY;
    for (int i = lo; i < hi; i++)
        if (((double)z[i] - mean) * inv_std >= thr) {
            mine++;
            zmax = fmax(zmax, (double)z[i]);
        }
    zmax = mp_block_max(zmax, dscratch);
    offs[threadIdx.x + 1] = mine;
    __syncthreads();
    if (threadIdx.x == 0) {
        offs[0] = 0;
        for (int j = 1; j <= ROUTER_THREADS; j++) offs[j] += offs[j - 1];
    }
    __syncthreads();
    const int total = offs[ROUTER_THREADS];

    double sum = 0;
    for (int i = lo; i < hi; i++)
        if (((double)z[i] - mean) * inv_std >= thr) sum += exp((double)z[i] - zmax);
    sum = mp_block_sum(sum, dscratch);

    int slot = offs[threadIdx.x];
    for (int i = lo; i < hi; i++)
        if (((double)z[i] - mean) * inv_std >= thr) {
            if (slot < cap) {
                idx[(size_t)k * cap + slot] = i;
                p[(size_t)k * cap + slot] = (float)(exp((double)z[i] - zmax) / sum);
            }
            slot++;
        }
    if (threadIdx.x == 0) {
        cnt[k] = total < cap ? total : cap;
        if (total > cap) atomicMax(overflow, total);
    }
}

int mp_cuda_route(const float *z1, const float *z2, int n, int Hm, int E, const float *bn1_mean, const float *bn1_var,
                  const float *bn2_mean, const float *bn2_var, double threshold, int cap, int32_t *cnt, int32_t *idx,
                  float *p, int *overflow, cudaStream_t st, mp_error *err) {
    if (n == 0) return 0;
    route_kernel<<<(unsigned)n * 2 * (unsigned)Hm, ROUTER_THREADS, 0, st>>>(
        z1, z2, Hm, E, bn1_mean, bn1_var, bn2_mean, bn2_var, threshold, cap, cnt, idx, p, overflow);
    CUDA_LAUNCH_CHECK(err);
    return 0;
}
