/* cuda/reduce.cuh — warp and block reductions shared by the kernels
 * (device-only helpers; no kernels here). Block reductions assume
 * blockDim.x is a multiple of 32 and at most 1024, and that every thread of
 * the block calls them (they contain __syncthreads). */
#ifndef MP_CUDA_REDUCE_CUH
#define MP_CUDA_REDUCE_CUH

#include <math.h>

template <typename T> static __device__ __forceinline__ T mp_warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <typename T> static __device__ __forceinline__ T mp_warp_max(T v) {
    for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum over the block; every thread gets the result. scratch: >= 32 T. */
template <typename T> static __device__ T mp_block_sum(T v, T *scratch) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = mp_warp_sum(v);
    __syncthreads(); /* scratch may still be read by a previous reduction */
    if (lane == 0) scratch[wid] = v;
    __syncthreads();
    T r = lane < nw ? scratch[lane] : (T)0;
    return mp_warp_sum(r);
}

/* Max over the block; every thread gets the result. scratch: >= 32 T. */
template <typename T> static __device__ T mp_block_max(T v, T *scratch) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = mp_warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[wid] = v;
    __syncthreads();
    T r = lane < nw ? scratch[lane] : (T)-INFINITY;
    return mp_warp_max(r);
}

#endif
