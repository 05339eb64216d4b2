/* cuda/forward_cuda.h — the CUDA Monet forward pass, callable from C, with
 * the same semantics as core/model/forward.h's mp_state / mp_forward (batched
 * prefill over a KV cache, rewind, mask, steering, optional routing record),
 * computed in bf16 GEMMs with fp32 accumulation (docs/cuda.md).
 *
 * Compiled only with MP_HAVE_CUDA. Prefer core/model/backend.h (mp_engine), which
 * picks this or the CPU state behind one table.
 *
 * Ownership: mp_cuda_state_create uploads its own device copy of the
 * weights and owns it, the KV cache and every scratch buffer; it borrows the
 * host model (read during create only, kept for its config) and the mask
 * given to set_mask (copied to the device at that call; later changes to the
 * mask are not seen until set_mask is called again).
 */
#ifndef MP_CUDA_FORWARD_CUDA_H
#define MP_CUDA_FORWARD_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "core/util/error.h"
#include "core/model/forward.h"
#include "core/model/mask.h"
#include "core/model/model.h"
#include "core/model/routing.h"

typedef struct mp_cuda_state mp_cuda_state;

/* max_ctx: KV cache length (0 = max_position_embeddings); max_chunk: tokens
 * per internal batch (0 = min(max_ctx, 2048)). The routing list capacity
 * per head is min(E, max(128, 16*moe_topk)), or MP_CUDA_ROUTE_CAP from the
 * environment. @return 0, MP_EINPUT (bad sizes), MP_EUNSUPPORTED (no CUDA
 * device, or a shape the kernels do not handle: head_dim > 256, expert width
 * > 32), MP_ENOMEM (host or device memory) or MP_EINTERNAL (CUDA error). */
int mp_cuda_state_create(const mp_model *m, int max_ctx, int max_chunk, mp_cuda_state **out, mp_error *err);
void mp_cuda_state_free(mp_cuda_state *s);

void mp_cuda_state_reset(mp_cuda_state *s);
int mp_cuda_state_pos(const mp_cuda_state *s);
int mp_cuda_state_max_ctx(const mp_cuda_state *s);
/* @return 0 or MP_EINPUT (pos beyond the cached tokens). */
int mp_cuda_state_rewind(mp_cuda_state *s, int pos, mp_error *err);

/* As mp_state_set_mask. @return 0, MP_EINPUT (other shape), MP_ENOMEM or
 * MP_EINTERNAL. */
int mp_cuda_state_set_mask(mp_cuda_state *s, const mp_mask *mask, mp_error *err);
/* As mp_state_set_steering. @return 0, MP_EINPUT, MP_ENOMEM or MP_EINTERNAL. */
int mp_cuda_state_set_steering(mp_cuda_state *s, const mp_steer *list, size_t n, mp_error *err);

/* As mp_forward: logits NULL, [n][vocab] or [vocab] (last_only); routing
 * NULL or an mp_routing for this model (n tokens appended). @return 0,
 * MP_EINPUT (bad id, context full), MP_EUNSUPPORTED (a router head selected
 * more experts than the list capacity: raise MP_CUDA_ROUTE_CAP), MP_ENOMEM
 * or MP_EINTERNAL. */
int mp_cuda_forward(mp_cuda_state *s, const int32_t *ids, size_t n, float *logits, int last_only, mp_routing *routing,
                    mp_error *err);

/* Run ids[0..n) like mp_cuda_forward and write out[t] = log p(targets[t] |
 * ids[0..t], cache) computed on the device (log-softmax over the vocabulary
 * in double, as mp_logprob), without copying logits to the host.
 * @return as mp_cuda_forward; MP_EINPUT for a target out of range. */
int mp_cuda_forward_logprobs(mp_cuda_state *s, const int32_t *ids, size_t n, const int32_t *targets, double *out,
                             mp_error *err);

#ifdef __cplusplus
}
#endif

#endif
