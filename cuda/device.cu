/* cuda/device.cu — CUDA device discovery (see device.h). */
#include "device.h"

#include <cuda_runtime.h>
#include <stdio.h>

extern "C" int mp_cuda_device_count(char *desc, size_t cap) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        snprintf(desc, cap, "no CUDA device (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        cudaGetLastError(); /* clear the sticky error */
        return 0;
    }
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
        snprintf(desc, cap, "%d CUDA device(s); properties unavailable", n);
        return n;
    }
    snprintf(desc, cap, "%d CUDA device(s); device 0: %s, %.1f GiB, compute capability %d.%d", n, p.name,
             (double)p.totalGlobalMem / (1024.0 * 1024 * 1024), p.major, p.minor);
    return n;
}
