/* core/model/forward.h — the CPU Monet forward pass: batched prefill over T tokens
 * with a KV cache, so the same call serves prompt processing and incremental
 * decoding (generate). Dense projections use OpenBLAS sgemm (for one token
 * a kernel of its own, also run over B states at once by mp_forward_steps:
 * the batched engine's decoding steps); routing and the expert mixture are sparse (DESIGN.md §2, §5): the
 * U / V expert products run only for the experts the chunk's tokens route
 * to. The environment variable MP_MOE=dense (read by mp_state_create)
 * computes them for all E experts instead, as the official einsum
 * formulation does, for comparison; any value but sparse / dense is
 * MP_EINPUT.
 *
 * Ownership: mp_state_create allocates the KV cache and scratch buffers for
 * one sequence; the state borrows the model, which must outlive it.
 */
#ifndef MP_FORWARD_H
#define MP_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"
#include "core/model/mask.h"
#include "core/model/model.h"
#include "core/model/routing.h"

typedef struct mp_state mp_state;

/* max_ctx: KV cache length in tokens (0 = max_position_embeddings); the
 * cache and scratch are pre-faulted here, so the first forward runs at speed.
 * max_chunk: tokens processed per internal batch (0 = 256); bounds scratch
 * memory, does not change results.
 * @return 0, MP_EINPUT (bad sizes) or MP_ENOMEM. */
int mp_state_create(const mp_model *m, int max_ctx, int max_chunk, mp_state **out, mp_error *err);
void mp_state_free(mp_state *s);

/* Forget the sequence (position back to 0); keeps the buffers. */
void mp_state_reset(mp_state *s);
/* Tokens already in the KV cache. */
int mp_state_pos(const mp_state *s);
int mp_state_max_ctx(const mp_state *s);
/* Truncate the cache back to pos tokens (pos <= current position), e.g. to
 * score several continuations after one shared prompt. */
int mp_state_rewind(mp_state *s, int pos, mp_error *err);
/* dst holds the first n cached tokens of src (same model; the rest of dst is
 * dropped): the same bits as running those tokens on dst from empty, since a
 * cache entry depends only on the tokens before it.
 * @return 0 or MP_EINPUT (other model, n beyond src's tokens or dst's context). */
int mp_state_copy_cache(mp_state *dst, const mp_state *src, int n, mp_error *err);

/* Mask experts in every following forward (NULL: none). The state borrows
 * the mask. @return 0 or MP_EINPUT when the mask is for another shape. */
int mp_state_set_mask(mp_state *s, const mp_mask *mask, mp_error *err);

/* Expert steering: w_ij of expert (group, i, j) gets + strength at every
 * token (on top of the router's weight, after masking), so A_i, D_j and the
 * mixed inputs change exactly as if the router had put that weight there. */
typedef struct mp_steer {
    int group, i, j;
    float strength;
} mp_steer;

/* Steer the following forwards with n entries (copied); n = 0 clears.
 * @return 0, MP_EINPUT (expert out of range) or MP_ENOMEM. */
int mp_state_set_steering(mp_state *s, const mp_steer *list, size_t n, mp_error *err);

/* Run ids[0..n) at positions pos..pos+n-1 and append them to the cache.
 * logits: NULL, or [n][vocab] (last_only = 0), or [vocab] for the last token
 * only (last_only = 1). routing: NULL, or an mp_routing made with
 * mp_routing_init for this model; the n tokens are appended to it.
 * @return 0, MP_EINPUT (id out of range, context full) or MP_ENOMEM. */
int mp_forward(mp_state *s, const int32_t *ids, size_t n, float *logits, int last_only, mp_routing *routing,
               mp_error *err);

/* One decoding step of B distinct states of one model: ids[b] at st[b]'s
 * next position, logits (NULL or [B][vocab]) row b for st[b], routing NULL or
 * [B]. The dense projections, the router and lm_head run as one pass over
 * each weight matrix for the B rows; every state's results are bit-identical
 * to mp_forward(st[b], &ids[b], 1, row b, 1, &routing[b]).
 * @return 0, MP_EINPUT (id out of range, a context full, a state twice),
 *         MP_EINTERNAL (states of different models) or MP_ENOMEM. */
int mp_forward_steps(mp_state *const *st, size_t B, const int32_t *ids, float *logits, mp_routing *routing,
                     mp_error *err);

#endif
