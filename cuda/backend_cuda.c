/* cuda/backend_cuda.c — the CUDA entry of the backend table that
 * core/model/backend.h declares (mp_cuda_backend_ops): thin adapters from the
 * table's void* state to cuda/forward_cuda.h. Compiled only with MP_HAVE_CUDA;
 * this is how core reaches the GPU without including a cuda/ header.
 *
 * Batched prefill: each slot is one mp_cuda_state, which uploads its own copy
 * of the weights, so a CUDA engine holds one slot for now (max_slots = 1) and
 * callers batch one sequence per call; target log-probabilities are computed
 * on the device (mp_cuda_forward_logprobs), everything else goes through the
 * reference loop (mp_engine_prefill_each). A fused multi-slot path is future
 * work. Not run on a GPU in the session that wrote it. */
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

static int cuda_prefill(void *const *states, const mp_engine_batch *b, int vocab, mp_error *err) {
    int device_lp = b->logprobs && !b->is_argmax && !b->logits && !b->routing;
    for (size_t t = 0; device_lp && t < b->off[b->n_seqs]; t++)
        if (b->targets[t] < 0) device_lp = 0;
    if (!device_lp) return mp_engine_prefill_each(&mp_cuda_backend_ops, states, b, vocab, err);
    for (size_t s = 0; s < b->n_seqs; s++) {
        size_t o = b->off[s];
        MP_TRY(mp_cuda_forward_logprobs(states[b->slot ? (size_t)b->slot[s] : s], b->ids + o, b->off[s + 1] - o,
                                        b->targets + o, b->logprobs + o, err));
    }
    return 0;
}

const mp_backend_ops mp_cuda_backend_ops = {"cuda",        mp_cuda_device_count, cuda_create,  cuda_destroy,
                                            cuda_reset,    cuda_pos,             cuda_max_ctx, cuda_rewind,
                                            cuda_set_mask, cuda_set_steering,    cuda_forward, cuda_prefill,
                                            1,             NULL};
