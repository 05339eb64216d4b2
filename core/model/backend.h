/* core/model/backend.h — which compute backends this build has and can use now,
 * and the one small backend table the commands go through (STYLE.md 8):
 * an mp_engine is either the CPU reference state (core/model/forward.h) or the
 * CUDA state (cuda/forward_cuda.h), with the same operations and semantics.
 * core declares the table; cuda/backend_cuda.c defines the CUDA entry
 * (mp_cuda_backend_ops) when the build has nvcc. core includes no cuda/ header.
 *
 * The CPU backend is always present; CUDA only when built with nvcc
 * (MP_HAVE_CUDA) and a device is visible.
 *
 * Ownership: an engine owns its backend state and borrows the model (and the
 * mask given to mp_engine_set_mask), which must outlive it.
 */
#ifndef MP_BACKEND_H
#define MP_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"
#include "core/model/forward.h"
#include "core/model/mask.h"
#include "core/model/model.h"
#include "core/model/routing.h"

/* 1 when this binary was built with the CUDA backend. */
int mp_backend_cuda_built(void);
/* Usable CUDA devices (0 when none or not built); desc says which or why. */
int mp_backend_cuda_devices(char *desc, size_t cap);

typedef enum mp_device { MP_DEVICE_AUTO = -1, MP_DEVICE_CPU = 0, MP_DEVICE_CUDA = 1 } mp_device;

/* "cpu", "cuda" or "auto". @return 0 or MP_EINPUT. */
int mp_device_parse(const char *s, mp_device *out, mp_error *err);
const char *mp_device_name(mp_device d);

/* Resolve a request: AUTO (or NULL env default) -> cuda when a device is
 * present, else cpu; the environment variable MP_DEVICE (cpu|cuda|auto)
 * replaces AUTO when set. CUDA without a device fails.
 * @return 0, MP_EINPUT (bad MP_DEVICE) or MP_EUNSUPPORTED
 *         ("no CUDA device: <reason>"). */
int mp_device_resolve(mp_device req, mp_device *out, mp_error *err);

/* The backend table: one entry per device, same contract as core/model/forward.h. */
typedef struct mp_backend_ops {
    const char *name;
    /* usable devices of this kind (0 when none); desc says which or why */
    int (*devices)(char *desc, size_t cap);
    int (*create)(const mp_model *m, int max_ctx, int max_chunk, void **state, mp_error *err);
    void (*destroy)(void *state);
    void (*reset)(void *state);
    int (*pos)(const void *state);
    int (*max_ctx)(const void *state);
    int (*rewind)(void *state, int pos, mp_error *err);
    int (*set_mask)(void *state, const mp_mask *mask, mp_error *err);
    int (*set_steering)(void *state, const mp_steer *list, size_t n, mp_error *err);
    int (*forward)(void *state, const int32_t *ids, size_t n, float *logits, int last_only, mp_routing *routing,
                   mp_error *err);
} mp_backend_ops;

#ifdef MP_HAVE_CUDA
/* The CUDA entry, defined in cuda/backend_cuda.c (the build-time hook). */
extern const mp_backend_ops mp_cuda_backend_ops;
#endif

typedef struct mp_engine mp_engine;

/* Create a forward state on dev (resolved with mp_device_resolve first).
 * Arguments as mp_state_create. @return 0 or the backend's error codes. */
int mp_engine_create(const mp_model *m, mp_device dev, int max_ctx, int max_chunk, mp_engine **out, mp_error *err);
void mp_engine_free(mp_engine *e);

mp_device mp_engine_device(const mp_engine *e);
void mp_engine_reset(mp_engine *e);
int mp_engine_pos(const mp_engine *e);
int mp_engine_max_ctx(const mp_engine *e);
int mp_engine_rewind(mp_engine *e, int pos, mp_error *err);
int mp_engine_set_mask(mp_engine *e, const mp_mask *mask, mp_error *err);
int mp_engine_set_steering(mp_engine *e, const mp_steer *list, size_t n, mp_error *err);
int mp_engine_forward(mp_engine *e, const int32_t *ids, size_t n, float *logits, int last_only, mp_routing *routing,
                      mp_error *err);
/* The CPU state behind e (device cpu), for code that still takes an
 * mp_state (core/model/generate); NULL on other devices. */
mp_state *mp_engine_cpu_state(mp_engine *e);

#endif
