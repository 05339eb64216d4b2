/* core/backend.c — backend discovery (see backend.h). */
#include "backend.h"

#include <stdio.h>

#ifdef MP_HAVE_CUDA
#include "cuda/device.h"
#endif

int mp_backend_cuda_built(void) {
#ifdef MP_HAVE_CUDA
    return 1;
#else
    return 0;
#endif
}

int mp_backend_cuda_devices(char *desc, size_t cap) {
#ifdef MP_HAVE_CUDA
    return mp_cuda_device_count(desc, cap);
#else
    snprintf(desc, cap, "CUDA backend not built (nvcc not found at configure time)");
    return 0;
#endif
}
