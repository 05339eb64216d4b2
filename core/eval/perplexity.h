/* core/eval/perplexity.h — perplexity of a streamed corpus, per label: each
 * document is BOS + its tokens, scored in non-overlapping windows of ctx
 * tokens (the first token of a window is context only). Shared by `ppl` and
 * `eval ppl`.
 *
 * Ownership: mp_ppl_result's arrays are malloc'ed; mp_ppl_result_free
 * releases them. The engine, tokenizer and corpus are borrowed.
 */
#ifndef MP_PERPLEXITY_H
#define MP_PERPLEXITY_H

#include <stddef.h>

#include "core/text/corpus.h"
#include "core/util/error.h"
#include "core/model/backend.h"
#include "core/util/progress.h"
#include "core/text/tokenizer.h"

typedef struct mp_ppl_label {
    char *label;        /* label value; "all" when not grouping; "(none)" when missing */
    double nll;         /* summed negative log-likelihood (nats) */
    size_t tokens, docs;
    double *doc_nll, *doc_tokens; /* [docs] per document, in corpus order (paired comparisons) */
    size_t doc_cap;
} mp_ppl_label;

typedef struct mp_ppl_result {
    mp_ppl_label *labels; /* in order of first appearance */
    size_t n_labels;
    double nll;
    size_t tokens, docs;
    size_t no_label;      /* documents without the label (grouped as "(none)") */
    double *doc_nll, *doc_tokens; /* [docs] every document, in corpus order */
    size_t doc_cap;
} mp_ppl_result;

/* Standard error of a perplexity exp(Σnll / Σtokens) over n documents (delta
 * method for the ratio estimator of the per-token NLL); NAN when n < 2. */
double mp_ppl_stderr(const double *doc_nll, const double *doc_tokens, size_t n);

/* Score documents of c until its end or max_docs (< 0: no limit), grouped by
 * the document's first label value when group_by_label. vocab: the model's
 * vocabulary size (unused; kept for callers); ctx <= the engine's context.
 * batch: windows per engine call (capped by mp_engine_slots; < 1 = 1); the
 * results are bit-identical at every batch. prog may be NULL.
 * @return 0, or the corpus / forward error (MP_EINPUT, MP_EIO, MP_ENOMEM). */
int mp_ppl_corpus(mp_engine *e, int vocab, const mp_tokenizer *tok, mp_corpus *c, int group_by_label, int ctx,
                  long max_docs, int batch, mp_progress *prog, mp_ppl_result *res, mp_error *err);
void mp_ppl_result_free(mp_ppl_result *res);

#endif
