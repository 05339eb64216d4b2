/* cuda/backend_cuda.c — the CUDA entry of the backend table that
 * core/model/backend.h declares (mp_cuda_backend_ops): thin adapters from the
 * table's void* state to cuda/forward_cuda.h. Compiled only with MP_HAVE_CUDA;
 * this is how core reaches the GPU without including a cuda/ header. */
#include "core/model/backend.h"
#include "cuda/device.h"
#include "cuda/forward_cuda.h"

static int cuda_create(const mp_model *m, int max_ctx, int max_chunk, void **st, mp_error *err) {
    mp_cuda_state *s = NULL;
    MP_TRY(mp_cuda_state_create(m, max_ctx, max_chunk, &s, err));
    *st = s;
    return 0;
}
static void cuda_destroy(void *s) { mp_cuda_state_free(s); }
static void cuda_reset(void *s) { mp_cuda_state_reset(s); }
static int cuda_pos(const void *s) { return mp_cuda_state_pos(s); }
static int cuda_max_ctx(const void *s) { return mp_cuda_state_max_ctx(s); }
static int cuda_rewind(void *s, int pos, mp_error *err) { return mp_cuda_state_rewind(s, pos, err); }
static int cuda_set_mask(void *s, const mp_mask *mask, mp_error *err) { return mp_cuda_state_set_mask(s, mask, err); }
static int cuda_set_steering(void *s, const mp_steer *list, size_t n, mp_error *err) {
    return mp_cuda_state_set_steering(s, list, n, err);
}
static int cuda_forward(void *s, const int32_t *ids, size_t n, float *logits, int last_only, mp_routing *routing,
                        mp_error *err) {
    return mp_cuda_forward(s, ids, n, logits, last_only, routing, err);
}

const mp_backend_ops mp_cuda_backend_ops = {"cuda",       mp_cuda_device_count, cuda_create,   cuda_destroy,
                                            cuda_reset,   cuda_pos,             cuda_max_ctx,  cuda_rewind,
                                            cuda_set_mask, cuda_set_steering,   cuda_forward};
