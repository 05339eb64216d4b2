/* core/model/generate.h — text generation shared by `generate`, `steer` and the
 * evaluations (MULTIPL-E, toxicity): prefill a prompt, decode with the KV
 * cache, stop at EOS, a stop string, or a token budget.
 *
 * mp_generate_batch decodes B sequences at once on the batched engine
 * (core/model/backend.h): one prefill call for the prompts, then one call per
 * step with one token of every sequence still running, each on its own KV
 * slot, each stopping on its own. A sequence's tokens and text are exactly
 * mp_generate's for the same prompt and sampler state, at any B.
 *
 * Ownership: the caller owns the state / engine (its context must hold
 * prompt + max_new_tokens), the tokenizer and the samplers; mp_gen_result's buffers are
 * malloc'ed for the caller (mp_gen_result_free).
 */
#ifndef MP_GENERATE_H
#define MP_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"
#include "core/model/backend.h"
#include "core/model/forward.h"
#include "core/model/sampling.h"
#include "core/text/tokenizer.h"

/* Called with the bytes each new token adds to the continuation, as they are
 * produced (streaming). With stop strings the streamed text may run past the
 * final, cut text. */
typedef void (*mp_gen_text_fn)(void *ctx, const char *bytes, size_t n);

typedef struct mp_gen_opts {
    int max_new_tokens;
    const char *const *stop;  /* stop strings (may be NULL): generation ends as soon as the decoded
                                 continuation contains one; the text is cut before it */
    size_t n_stop;
    int ignore_eos;           /* 1: do not stop at the model's EOS */
    mp_gen_text_fn on_text;   /* optional streaming callback */
    void *on_text_ctx;
} mp_gen_opts;

enum { MP_GEN_STOP_LENGTH = 0, MP_GEN_STOP_EOS = 1, MP_GEN_STOP_STRING = 2 };

typedef struct mp_gen_result {
    char *text;               /* continuation text (NUL-terminated), cut before a stop string */
    size_t len;
    int32_t *ids;             /* generated ids (including the tokens of a stop string) */
    size_t n_ids;
    int stop_reason;          /* MP_GEN_STOP_* */
    double prefill_s;         /* wall time of the prompt prefill */
    double decode_s;          /* wall time of the decoding steps after it */
} mp_gen_result;

/* Reset st, prefill prompt[0..n_prompt), then pick tokens with sampler.
 * @return 0, MP_EINPUT (empty prompt, context too small) or MP_ENOMEM. */
int mp_generate(mp_state *st, const mp_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                const mp_gen_opts *opts, mp_sampler *sampler, mp_gen_result *res, mp_error *err);
/* Generate for n prompts (prompts[k][0..n_prompts[k])) on e, at most
 * mp_engine_slots(e) at a time, sequence k sampling with samplers[k] (one
 * per sequence: each keeps its own RNG stream) into res[k]. prefill_s is the
 * time of the prefill call that included the sequence, decode_s until it
 * stopped. opts->on_text streams every sequence's bytes as produced (useful
 * with n = 1). @return 0, MP_EINPUT (empty prompt, context too small) or
 * MP_ENOMEM; on error every res[k] is freed. */
int mp_generate_batch(mp_engine *e, const mp_tokenizer *tok, const int32_t *const *prompts, const size_t *n_prompts,
                      size_t n, const mp_gen_opts *opts, mp_sampler *samplers, mp_gen_result *res, mp_error *err);
/* As mp_generate_batch with options of its own per sequence: sequence k
 * stops and is budgeted by opts[k] (opts: [n]), e.g. MULTIPL-E's problems,
 * each with its stop strings and token budget, decoded together.
 * @return as mp_generate_batch. */
int mp_generate_batch_each(mp_engine *e, const mp_tokenizer *tok, const int32_t *const *prompts,
                           const size_t *n_prompts, size_t n, const mp_gen_opts *opts, mp_sampler *samplers,
                           mp_gen_result *res, mp_error *err);
void mp_gen_result_free(mp_gen_result *res);

#endif
