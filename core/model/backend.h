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
 * Batched engine: an engine holds n_slots independent KV caches ("slots").
 * mp_engine_prefill runs B sequences of different lengths in one call, packed
 * with per-sequence offsets, each appended to its own slot, and returns per-
 * token logits, or only the log-probabilities of given target tokens, and/or
 * the sparse routing. Every sequence's results are a pure function of its own
 * tokens and its slot's cache: bit-identical to running the sequences one by
 * one, whatever the batch composition or order (tests/eval_mc, tests/collect,
 * tests/cli check this). The single-sequence calls (mp_engine_forward, _pos,
 * _reset, _rewind) act on slot 0. Mask and steering apply to every slot.
 *
 * Ownership: an engine owns its backend states and borrows the model (and the
 * mask given to mp_engine_set_mask), which must outlive it. A batch's arrays
 * are the caller's.
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

/* One batched call: n_seqs independent sequences packed in ids. Sequence s is
 * ids[off[s] .. off[s+1]) (at least one token), appended to the cache of slot
 * slot[s] (slots distinct within a call; slot NULL: sequence s on slot s).
 * Every output is optional (NULL = not wanted); T = off[n_seqs]:
 *   logits    [T][vocab] for every token, or [n_seqs][vocab] for each
 *             sequence's last token when last_only;
 *   targets   [T] token ids; position t scores targets[t] given tokens up to
 *             and including t (targets[t] < 0: not scored);
 *   logprobs  [T] log softmax(logits_t)[targets[t]] in double (as mp_logprob),
 *             NAN where targets[t] < 0;
 *   is_argmax [T] 1 when targets[t] is the argmax of logits_t (lowest id on
 *             ties), else 0;
 *   routing   [n_seqs] mp_routing (mp_routing_init), sequence s's tokens
 *             appended to routing[s]. */
typedef struct mp_engine_batch {
    size_t n_seqs;
    const int32_t *ids;     /* [off[n_seqs]] */
    const size_t *off;      /* [n_seqs + 1], off[0] = 0, increasing */
    const int *slot;        /* [n_seqs] or NULL */
    float *logits;
    int last_only;
    const int32_t *targets;
    double *logprobs;
    uint8_t *is_argmax;
    mp_routing *routing;
} mp_engine_batch;

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
    /* Batched prefill: sequence s of b on states[b->slot[s]] (slots already
     * checked by the engine); outputs as mp_engine_batch says. */
    int (*prefill)(void *const *states, const mp_engine_batch *b, int vocab, mp_error *err);
    /* Most slots one engine holds on this backend (0 = no limit): each slot is
     * one state here, and a CUDA state carries its own copy of the weights. */
    int max_slots;
    /* dst holds the first n cached tokens of src (as mp_state_copy_cache);
     * NULL where the backend cannot (mp_engine_slot_copy then says so). */
    int (*copy_cache)(void *dst, const void *src, int n, mp_error *err);
} mp_backend_ops;

/* Reference batched prefill through ops->forward, one sequence after the
 * other on its slot's state, log-probabilities and argmax computed on the
 * host from [n][vocab] logits (mp_engine_score_rows). The CPU entry is this;
 * other backends may use it for what they do not fuse.
 * @return 0, MP_ENOMEM or the forward's error. */
int mp_engine_prefill_each(const mp_backend_ops *ops, void *const *states, const mp_engine_batch *b, int vocab,
                           mp_error *err);

/* lp[t] / am[t] for rows t < n of logits [n][vocab] and targets[t] (< 0:
 * NAN / 0); lp or am may be NULL. @return 0 or MP_EINPUT (target >= vocab). */
int mp_engine_score_rows(const float *logits, size_t n, int vocab, const int32_t *targets, double *lp, uint8_t *am,
                         mp_error *err);

/* The CUDA entry, defined in cuda/backend_cuda.c: linked into the CUDA tests
 * and benches, loaded at run time by the CLI (libmonet-probe-cuda.so, see
 * backend.c); weak, so NULL where neither. */
extern const mp_backend_ops mp_cuda_backend_ops __attribute__((weak));

typedef struct mp_engine mp_engine;

/* Create a forward state on dev (resolved with mp_device_resolve first).
 * Arguments as mp_state_create. One slot. @return 0 or the backend's error codes. */
int mp_engine_create(const mp_model *m, mp_device dev, int max_ctx, int max_chunk, mp_engine **out, mp_error *err);
/* As mp_engine_create with n_slots >= 1 KV slots of max_ctx tokens each. A
 * backend may hold fewer (CUDA: 1 for now, see mp_backend_ops.max_slots):
 * mp_engine_slots says how many; callers batch at most that many sequences.
 * @return 0, MP_EINPUT (n_slots < 1) or the backend's error codes. */
int mp_engine_create_slots(const mp_model *m, mp_device dev, int n_slots, int max_ctx, int max_chunk,
                           mp_engine **out, mp_error *err);
/* As mp_engine_create_slots on the backend table ops instead of a device's
 * (reported as cpu): what bench/bench_store.c runs collect on, a backend
 * that routes without a forward. @return 0, MP_EINPUT or ops->create's codes. */
int mp_engine_create_ops(const mp_backend_ops *ops, const mp_model *m, int n_slots, int max_ctx, int max_chunk,
                         mp_engine **out, mp_error *err);
void mp_engine_free(mp_engine *e);

/* KV slots of e (>= 1). */
int mp_engine_slots(const mp_engine *e);
/* Tokens in slot's cache. */
int mp_engine_slot_pos(const mp_engine *e, int slot);
/* Truncate slot's cache to pos tokens (0 = empty, like reset).
 * @return 0 or MP_EINPUT (bad slot, pos beyond the cached tokens). */
int mp_engine_slot_rewind(mp_engine *e, int slot, int pos, mp_error *err);
/* Slot dst holds the first n cached tokens of slot src (a shared prompt
 * prefix computed once): bit for bit what running them on dst from empty
 * gives. @return 1 when copied, 0 when the backend cannot (the caller runs
 * the tokens instead), MP_EINPUT (bad slots, n beyond src's tokens). */
int mp_engine_slot_copy(mp_engine *e, int src, int dst, int n, mp_error *err);
/* Run a batch (see mp_engine_batch). @return 0, MP_EINPUT (bad offsets or
 * slots, id or target out of range, a slot's context full), MP_ENOMEM or the
 * backend's errors; on error the slots' contents are unspecified (rewind
 * them). */
int mp_engine_prefill(mp_engine *e, const mp_engine_batch *b, mp_error *err);

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
