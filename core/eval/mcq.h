/* core/eval/mcq.h — multiple-choice log-likelihood scoring with KV-cache reuse, the
 * way lm-evaluation-harness scores `loglikelihood` requests.
 *
 * Tokenization (mp_mcq_encode_pair) follows the harness's whole-string split:
 * trailing spaces of the context move to the continuation, then
 *   whole = encode(context + continuation), ctx = encode(context),
 *   cont  = whole[len(ctx):]
 * (BOS prepended to both when add_bos). Encoding " A" on its own would give
 * SentencePiece's dummy-prefix piece U+2581 twice ("▁▁A" or "▁" "▁A"), which
 * the model never sees after "Answer:"; the split gives the ids the model sees
 * in the whole prompt. An empty context becomes [BOS] (or [EOS] without BOS).
 *
 * Scoring (mp_mcq_score) runs the context once, keeps the logits of its last
 * position, and for every continuation rewinds the cache to the end of the
 * context and runs the continuation's first L-1 tokens (a one-token answer
 * such as " A" costs no forward at all). log p sums are in double.
 *
 * Determinism: an item's scores are a pure function of its own tokens. The
 * first `keep` context tokens (a stable prefix such as MMLU's description and
 * few-shot block) are always run as one forward from an empty cache, then the
 * rest of the context as a second forward; when the previous call ran the same
 * `keep` tokens, their cache is reused, which is bit-identical to recomputing
 * it. So scores never depend on which other items ran, their order, --limit or
 * the batch size.
 *
 * Batching (mp_mcq_score_batch): the items of one call run through the
 * batched engine (core/model/backend.h), item k of a chunk on KV slot k, each
 * slot with its own reusable prefix: first every prefix that is not cached,
 * then every rest of context, then round c runs every item's choice c. Each
 * item sees exactly the forwards it would see alone, so its scores are
 * bit-identical at any batch size (tests/eval_mc).
 *
 * Ownership: mp_mcq_create borrows the engine (and through it the model and any
 * mask); both must outlive the scorer. Id arrays from mp_mcq_encode_pair are
 * malloc'ed for the caller.
 */
#ifndef MP_MCQ_H
#define MP_MCQ_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"
#include "core/model/backend.h"
#include "core/text/tokenizer.h"

typedef struct mp_mcq mp_mcq;

typedef struct mp_mcq_result {
    double loglik;   /* sum of log p(continuation token | everything before) */
    int n_tokens;    /* continuation tokens scored */
    int is_greedy;   /* every continuation token is the argmax (lowest id on ties) */
} mp_mcq_result;

/* Split context/continuation into ids as described above.
 * @return 0 with *ctx_ids and *cont_ids malloc'ed (caller frees), MP_EINPUT when
 *         the continuation gets no token, or MP_ENOMEM. */
int mp_mcq_encode_pair(const mp_tokenizer *tok, int add_bos, const char *ctx, size_t ctx_len, const char *cont,
                       size_t cont_len, int32_t **ctx_ids, size_t *n_ctx, int32_t **cont_ids, size_t *n_cont,
                       mp_error *err);

/* Length of the common prefix of two id arrays. */
size_t mp_mcq_common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb);

/* A scorer over e's slots (mp_engine_slots items per engine call).
 * @return 0, or MP_ENOMEM. */
int mp_mcq_create(mp_engine *e, int vocab, mp_mcq **out, mp_error *err);
void mp_mcq_free(mp_mcq *q);
/* Items one engine call scores (the engine's slots). */
int mp_mcq_slots(const mp_mcq *q);

/* One item of a batch: arguments and results of mp_mcq_score. */
typedef struct mp_mcq_item {
    const int32_t *ctx;
    size_t n_ctx, keep;
    const int32_t *const *conts; /* [n_choices] */
    const size_t *n_conts;       /* [n_choices] */
    size_t n_choices;
    mp_mcq_result *out;          /* [n_choices], filled */
    int truncated;               /* set: 1 when the context was cut on the left */
} mp_mcq_item;

/* Score n items, mp_mcq_slots of them per engine round; each item exactly as
 * mp_mcq_score would. @return as mp_mcq_score (the first failing item's error). */
int mp_mcq_score_batch(mp_mcq *q, mp_mcq_item *items, size_t n, mp_error *err);

/* Score n_choices continuations after one context. keep: leading context
 * tokens that form the stable, reusable prefix (clipped to n_ctx - 1; 0 = none).
 * When context + continuation exceed the state's context length, the context is
 * cut on the left per choice like the harness does (each request keeps the last
 * max_ctx tokens of context + continuation[:-1]; *truncated set to 1, prefix
 * reuse off, choices scored one at a time).
 * out: [n_choices]. @return 0, MP_EINPUT (empty continuation, continuation
 * alone longer than the context window) or a forward error. */
int mp_mcq_score(mp_mcq *q, const int32_t *ctx, size_t n_ctx, size_t keep, const int32_t *const *conts,
                 const size_t *n_conts, size_t n_choices, mp_mcq_result *out, int *truncated, mp_error *err);

/* Tokens run through the model so far (contexts not reused + continuations). */
uint64_t mp_mcq_tokens_run(const mp_mcq *q);

#endif
