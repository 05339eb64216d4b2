/* cuda/device.h — CUDA device discovery, callable from C. Compiled only when
 * CMake finds nvcc (MP_HAVE_CUDA); works on machines without a GPU (reports
 * zero devices and the driver's reason). */
#ifndef MP_CUDA_DEVICE_H
#define MP_CUDA_DEVICE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices (0 when none). desc receives a one-line
 * description: device 0's name, memory and compute capability, or why there
 * is no device. */
int mp_cuda_device_count(char *desc, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
