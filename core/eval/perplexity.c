/* core/eval/perplexity.c — streamed per-label perplexity (see perplexity.h):
 * documents are read in order, their windows queued, run `batch` windows per
 * engine call (one slot each), and the log-probabilities summed back per
 * document in token order, so the sums never depend on the batch. */
#include "core/eval/perplexity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct pdoc {
    char *label;      /* owned copy */
    int32_t *ids;     /* [n] BOS + tokens */
    size_t n;
    size_t n_win;     /* windows not yet scored */
    double nll;
    size_t count;
} pdoc;

typedef struct pwin {
    size_t doc;       /* index into the pending documents */
    size_t start, len;
} pwin;

typedef struct pq {
    pdoc *d;
    size_t nd, capd;
    pwin *w;
    size_t nw, capw;
    /* one engine call */
    int32_t *ids, *tgt;
    double *lp;
    size_t *off;
    int *slot;
} pq;

static int grow(void **p, size_t *cap, size_t need, size_t elem, mp_error *err) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need) nc *= 2;
    void *np = realloc(*p, nc * elem);
    MP_FAIL_IF(!np, err, MP_ENOMEM, "out of memory");
    *p = np;
    *cap = nc;
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

/* Append one document's (nll, tokens) at index n of a pair of growing arrays. */
static int doc_push(double **nll, double **tok, size_t *cap, size_t n, double x, double t, mp_error *err) {
    if (n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        double *a = realloc(*nll, nc * sizeof *a);
        MP_FAIL_IF(!a, err, MP_ENOMEM, "out of memory");
        *nll = a;
        double *b = realloc(*tok, nc * sizeof *b);
        MP_FAIL_IF(!b, err, MP_ENOMEM, "out of memory");
        *tok = b;
        *cap = nc;
    }
    (*nll)[n] = x;
    (*tok)[n] = t;
    return 0;
}

double mp_ppl_stderr(const double *doc_nll, const double *doc_tokens, size_t n) {
    if (n < 2) return NAN;
    double sn = 0, st = 0;
    for (size_t i = 0; i < n; i++) sn += doc_nll[i], st += doc_tokens[i];
    if (st <= 0) return NAN;
    double m = sn / st, ss = 0;
    for (size_t i = 0; i < n; i++) {
        double r = doc_nll[i] - m * doc_tokens[i];
        ss += r * r;
    }
    double se_m = sqrt(ss * (double)n / (double)(n - 1)) / st; /* of the per-token mean NLL */
    return exp(m) * se_m;
}

/* Score every queued window, `per_call` per engine call, then fold the
 * documents into res in reading order. */
static int flush(pq *q, mp_engine *e, int per_call, mp_corpus *c, long max_docs, mp_progress *prog,
                 mp_ppl_result *res, mp_error *err) {
    for (size_t w0 = 0; w0 < q->nw; w0 += (size_t)per_call) {
        size_t nb = q->nw - w0 < (size_t)per_call ? q->nw - w0 : (size_t)per_call, tot = 0;
        q->off[0] = 0;
        for (size_t k = 0; k < nb; k++) {
            const pwin *w = &q->w[w0 + k];
            const int32_t *ids = q->d[w->doc].ids + w->start;
            /* the window's last token is a target only: run len - 1 tokens */
            memcpy(q->ids + tot, ids, (w->len - 1) * sizeof *ids);
            memcpy(q->tgt + tot, ids + 1, (w->len - 1) * sizeof *ids);
            tot += w->len - 1;
            q->off[k + 1] = tot;
            q->slot[k] = (int)k;
            MP_TRY(mp_engine_slot_rewind(e, (int)k, 0, err));
        }
        mp_engine_batch b = {.n_seqs = nb, .ids = q->ids, .off = q->off, .slot = q->slot, .targets = q->tgt,
                             .logprobs = q->lp};
        MP_TRY(mp_engine_prefill(e, &b, err));
        for (size_t k = 0; k < nb; k++) {
            pdoc *d = &q->d[q->w[w0 + k].doc];
            for (size_t t = q->off[k]; t < q->off[k + 1]; t++) d->nll -= q->lp[t];
            d->count += q->off[k + 1] - q->off[k];
        }
    }
    for (size_t i = 0; i < q->nd; i++) {
        pdoc *d = &q->d[i];
        mp_ppl_label *s = label_slot(res, d->label, err);
        if (!s) return MP_ENOMEM;
        MP_TRY(doc_push(&s->doc_nll, &s->doc_tokens, &s->doc_cap, s->docs, d->nll, (double)d->count, err));
        MP_TRY(doc_push(&res->doc_nll, &res->doc_tokens, &res->doc_cap, res->docs, d->nll, (double)d->count, err));
        s->nll += d->nll;
        s->tokens += d->count;
        s->docs++;
        res->nll += d->nll;
        res->tokens += d->count;
        res->docs++;
        if (prog) mp_progress_add(prog, d->count);
        free(d->label);
        free(d->ids);
        d->label = NULL;
        d->ids = NULL;
    }
    if (prog && max_docs < 0) mp_progress_set_fraction(prog, mp_corpus_fraction(c));
    q->nd = q->nw = 0;
    return 0;
}

int mp_ppl_corpus(mp_engine *e, int vocab, const mp_tokenizer *tok, mp_corpus *c, int group_by_label, int ctx,
                  long max_docs, int batch, mp_progress *prog, mp_ppl_result *res, mp_error *err) {
    (void)vocab;
    memset(res, 0, sizeof *res);
    MP_FAIL_IF(ctx < 2 || ctx > mp_engine_max_ctx(e), err, MP_EINPUT, "context %d does not fit the engine (%d)", ctx,
               mp_engine_max_ctx(e));
    int per_call = batch < 1 ? 1 : batch;
    if (per_call > mp_engine_slots(e)) per_call = mp_engine_slots(e);
    pq q;
    memset(&q, 0, sizeof q);
    size_t cap = (size_t)per_call * (size_t)ctx;
    q.ids = malloc(cap * sizeof *q.ids);
    q.tgt = malloc(cap * sizeof *q.tgt);
    q.lp = malloc(cap * sizeof *q.lp);
    q.off = malloc(((size_t)per_call + 1) * sizeof *q.off);
    q.slot = malloc((size_t)per_call * sizeof *q.slot);
    int rc = 0;
    if (!q.ids || !q.tgt || !q.lp || !q.off || !q.slot) rc = mp_fail(err, MP_ENOMEM, "out of memory");
    long read = 0;
    mp_doc doc;
    while (rc == 0 && (max_docs < 0 || read < max_docs) && (rc = mp_corpus_next(c, &doc, err)) > 0) {
        rc = 0;
        read++;
        const char *label = "all";
        if (group_by_label) {
            label = doc.n_labels ? doc.label_values[0] : NULL;
            if (!label) {
                res->no_label++;
                label = "(none)";
            }
        }
        if ((rc = grow((void **)&q.d, &q.capd, q.nd + 1, sizeof *q.d, err)) < 0) break;
        pdoc *d = &q.d[q.nd];
        memset(d, 0, sizeof *d);
        if (!(d->label = strdup(label))) {
            rc = mp_fail(err, MP_ENOMEM, "out of memory");
            break;
        }
        q.nd++;
        if ((rc = mp_tokenizer_encode(tok, doc.text, doc.len, 1, &d->ids, &d->n, err)) < 0) break;
        /* non-overlapping windows of ctx tokens; the first token of each is context only */
        for (size_t start = 0; start + 1 < d->n; start += (size_t)ctx) {
            size_t len = d->n - start < (size_t)ctx ? d->n - start : (size_t)ctx;
            if (len < 2) break;
            if ((rc = grow((void **)&q.w, &q.capw, q.nw + 1, sizeof *q.w, err)) < 0) break;
            q.w[q.nw++] = (pwin){q.nd - 1, start, len};
        }
        if (rc == 0 && q.nw >= (size_t)per_call) rc = flush(&q, e, per_call, c, max_docs, prog, res, err);
    }
    if (rc == 0) rc = flush(&q, e, per_call, c, max_docs, prog, res, err);
    for (size_t i = 0; i < q.nd; i++) {
        free(q.d[i].label);
        free(q.d[i].ids);
    }
    free(q.d);
    free(q.w);
    free(q.ids);
    free(q.tgt);
    free(q.lp);
    free(q.off);
    free(q.slot);
    if (rc < 0) {
        mp_ppl_result_free(res);
        return rc;
    }
    return 0;
}

void mp_ppl_result_free(mp_ppl_result *res) {
    if (!res) return;
    for (size_t k = 0; k < res->n_labels; k++) {
        free(res->labels[k].label);
        free(res->labels[k].doc_nll);
        free(res->labels[k].doc_tokens);
    }
    free(res->doc_nll);
    free(res->doc_tokens);
    free(res->labels);
    memset(res, 0, sizeof *res);
}
