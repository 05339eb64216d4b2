/* core/eval/perplexity.c — streamed per-label perplexity (see perplexity.h). */
#include "core/eval/perplexity.h"

#include <stdlib.h>
#include <string.h>

#include "core/model/sampling.h"

/* NLL of ids[1..n) given their prefixes, window by window. */
static int score_doc(mp_engine *st, const int32_t *ids, size_t n, int ctx, int vocab, float *logits, double *nll,
                     size_t *count, mp_error *err) {
    for (size_t start = 0; start + 1 < n; start += (size_t)ctx) {
        size_t len = n - start < (size_t)ctx ? n - start : (size_t)ctx;
        if (len < 2) break;
        mp_engine_reset(st);
        MP_TRY(mp_engine_forward(st, ids + start, len, logits, 0, NULL, err));
        for (size_t t = 0; t + 1 < len; t++) {
            *nll -= mp_logprob(logits + t * (size_t)vocab, vocab, ids[start + t + 1]);
            (*count)++;
        }
    }
    return 0;
}

static mp_ppl_label *label_slot(mp_ppl_result *r, const char *label, mp_error *err) {
    for (size_t k = 0; k < r->n_labels; k++)
        if (!strcmp(r->labels[k].label, label)) return &r->labels[k];
    mp_ppl_label *nl = realloc(r->labels, (r->n_labels + 1) * sizeof *nl);
    if (!nl) {
        mp_fail(err, MP_ENOMEM, "out of memory");
        return NULL;
    }
    r->labels = nl;
    mp_ppl_label *s = &nl[r->n_labels];
    memset(s, 0, sizeof *s);
    if (!(s->label = strdup(label))) {
        mp_fail(err, MP_ENOMEM, "out of memory");
        return NULL;
    }
    r->n_labels++;
    return s;
}

int mp_ppl_corpus(mp_engine *st, int vocab, const mp_tokenizer *tok, mp_corpus *c, int group_by_label, int ctx,
                  long max_docs, mp_progress *prog, mp_ppl_result *res, mp_error *err) {
    memset(res, 0, sizeof *res);
    MP_FAIL_IF(ctx < 2 || ctx > mp_engine_max_ctx(st), err, MP_EINPUT, "context %d does not fit the engine (%d)", ctx,
               mp_engine_max_ctx(st));
    float *logits = malloc((size_t)ctx * (size_t)vocab * sizeof *logits);
    if (!logits) return mp_fail(err, MP_ENOMEM, "out of memory for %d x %d logits", ctx, vocab);
    int rc = 0;
    mp_doc doc;
    while ((max_docs < 0 || (long)res->docs < max_docs) && (rc = mp_corpus_next(c, &doc, err)) > 0) {
        const char *label = "all";
        if (group_by_label) {
            label = doc.n_labels ? doc.label_values[0] : NULL;
            if (!label) {
                res->no_label++;
                label = "(none)";
            }
        }
        int32_t *ids = NULL;
        size_t n = 0, cnt = 0;
        double nll = 0;
        rc = mp_tokenizer_encode(tok, doc.text, doc.len, 1, &ids, &n, err);
        if (rc == 0) rc = score_doc(st, ids, n, ctx, vocab, logits, &nll, &cnt, err);
        free(ids);
        if (rc < 0) break;
        mp_ppl_label *s = label_slot(res, label, err);
        if (!s) {
            rc = MP_ENOMEM;
            break;
        }
        s->nll += nll;
        s->tokens += cnt;
        s->docs++;
        res->nll += nll;
        res->tokens += cnt;
        res->docs++;
        if (prog && max_docs < 0) mp_progress_set_fraction(prog, mp_corpus_fraction(c));
        if (prog) mp_progress_add(prog, cnt);
    }
    free(logits);
    if (rc < 0) {
        mp_ppl_result_free(res);
        return rc;
    }
    return 0;
}

void mp_ppl_result_free(mp_ppl_result *res) {
    if (!res) return;
    for (size_t k = 0; k < res->n_labels; k++) free(res->labels[k].label);
    free(res->labels);
    memset(res, 0, sizeof *res);
}
