/* tests/cuda/test_cuda_device.c — the CUDA backend is built when nvcc is
 * present and finds the device when one is visible; skips (77) otherwise. */
#include <stdio.h>
#include <string.h>

#include "core/model/backend.h"

int main(void) {
    char desc[256];
    if (!mp_backend_cuda_built()) {
        printf("skipped: no GPU (CUDA backend not built)\n");
        return 77;
    }
    int n = mp_backend_cuda_devices(desc, sizeof desc);
    if (n == 0) {
        printf("skipped: no GPU (%s)\n", desc);
        return 77;
    }
    printf("cuda: %s\n", desc);
    return strstr(desc, "device 0:") ? 0 : 1;
}
