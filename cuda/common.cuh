/* cuda/common.cuh — shared by every cuda/*.cu file: the C headers of core/
 * (wrapped in extern "C"), the bf16 type, and the error-check macros.
 *
 * Library rule (STYLE.md 2, 10): CUDA code never exits or prints. Every
 * runtime / cuBLAS call is checked; a failure fills the caller's mp_error
 * with the call text, the CUDA error string and file:line, and the
 * enclosing function returns MP_EINTERNAL (or MP_ENOMEM for allocation
 * failures). Kernel launches are followed by CUDA_LAUNCH_CHECK, which picks
 * up launch-configuration errors (asynchronous faults surface at the next
 * synchronizing call, which is checked too).
 */
#ifndef MP_CUDA_COMMON_CUH
#define MP_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "core/util/error.h"
}

typedef __nv_bfloat16 bf16;

const char *mp_cublas_status_name(cublasStatus_t s);

/* Return from the enclosing int function with MP_EINTERNAL on failure. */
#define CUDA_CHECK(call, err)                                                                                    \
    do {                                                                                                         \
        cudaError_t mp_ce_ = (call);                                                                             \
        if (mp_ce_ != cudaSuccess)                                                                               \
            return mp_fail_at((err), mp_ce_ == cudaErrorMemoryAllocation ? MP_ENOMEM : MP_EINTERNAL, __FILE__,  \
                              __LINE__, "CUDA error in %s: %s", #call, cudaGetErrorString(mp_ce_));             \
    } while (0)

/* After every <<<...>>> launch. */
#define CUDA_LAUNCH_CHECK(err) CUDA_CHECK(cudaGetLastError(), err)

#define CUBLAS_CHECK(call, err)                                                                                  \
    do {                                                                                                         \
        cublasStatus_t mp_bs_ = (call);                                                                          \
        if (mp_bs_ != CUBLAS_STATUS_SUCCESS)                                                                     \
            return mp_fail_at((err), MP_EINTERNAL, __FILE__, __LINE__, "cuBLAS error in %s: %s", #call,         \
                              mp_cublas_status_name(mp_bs_));                                                    \
    } while (0)

static inline unsigned mp_cdiv(size_t a, size_t b) { return (unsigned)((a + b - 1) / b); }

#endif
