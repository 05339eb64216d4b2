/* cuda/rope.cuh — rotary position embedding, HF rotate-half convention
 * (mirror of mp_cpu_rope). */
#ifndef MP_CUDA_ROPE_CUH
#define MP_CUDA_ROPE_CUH

#include "common.cuh"

/* In place on n rows (stride ld) of `heads` heads of size hd at positions
 * pos0..pos0+n-1: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) over the
 * two halves. cos_t/sin_t: device [max_ctx][hd/2], the same float tables the
 * CPU state builds (computed in double, rounded to float).
 * @return 0 or MP_EINTERNAL. */
int mp_cuda_rope(float *x, int n, int heads, int hd, int ld, int pos0, const float *cos_t, const float *sin_t,
                 cudaStream_t st, mp_error *err);

#endif
