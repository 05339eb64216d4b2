/* core/backend.h — which compute backends this build has and can use now.
 * The CPU backend is always present; CUDA only when built with nvcc and a
 * device is visible. */
#ifndef MP_BACKEND_H
#define MP_BACKEND_H

#include <stddef.h>

/* 1 when this binary was built with the CUDA backend. */
int mp_backend_cuda_built(void);
/* Usable CUDA devices (0 when none or not built); desc says which or why. */
int mp_backend_cuda_devices(char *desc, size_t cap);

#endif
