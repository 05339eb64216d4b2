/* core/eval/mcq.c — multiple-choice log-likelihood scoring (see mcq.h): the
 * harness's context/continuation split, one context prefill per item, cache
 * rewinds per continuation, and reuse of a stable prompt prefix. */
#include "core/eval/mcq.h"

#include <stdlib.h>
#include <string.h>

#include "core/eval/eval_tasks.h"
#include "core/model/sampling.h"

struct mp_mcq {
    mp_state *st;
    int vocab;
    int32_t *cache_ids;   /* [cache_cap] the prefix the cache holds as forward(prefix) from empty */
    size_t cache_n, cache_cap;
    float *last;          /* [vocab] logits at the last context position */
    float *buf;           /* [buf_rows][vocab] logits of continuation tokens */
    size_t buf_rows;
    uint64_t tokens_run;
};


int mp_mcq_encode_pair(const mp_tokenizer *tok, int add_bos, const char *ctx, size_t ctx_len, const char *cont,
                       size_t cont_len, int32_t **ctx_ids, size_t *n_ctx, int32_t **cont_ids, size_t *n_cont,
                       mp_error *err) {
    int rc = 0;
    char *whole = NULL;
    int32_t *w = NULL, *c = NULL;
    size_t nw = 0, nc = 0;
    *ctx_ids = *cont_ids = NULL;
    *n_ctx = *n_cont = 0;
    if (ctx_len == 0) {
        /* the harness's empty-context rule: [prefix token] + encode(continuation) */
        int pre = mp_tokenizer_bos_id(tok);
        if (pre < 0) pre = mp_tokenizer_eos_id(tok);
        MP_FAIL_IF(pre < 0, err, MP_EINPUT, "empty context and the tokenizer has neither BOS nor EOS");
        if ((rc = mp_tokenizer_encode(tok, cont, cont_len, 0, &w, &nw, err)) < 0) return rc;
        c = malloc(sizeof *c);
        if (!c) {
            free(w);
            return mp_fail(err, MP_ENOMEM, "out of memory");
        }
        c[0] = pre;
        if (nw == 0) {
            free(w);
            free(c);
            return mp_fail(err, MP_EINPUT, "continuation '%.*s' encodes to no token", (int)cont_len, cont);
        }
        *ctx_ids = c;
        *n_ctx = 1;
        *cont_ids = w;
        *n_cont = nw;
        return 0;
    }
    size_t sp = 0, k; /* trailing whitespace (Python's rstrip() set) moves to the continuation */
    while (sp < ctx_len && (k = mp_py_space_before(ctx, ctx_len - sp))) sp += k;
    size_t cl = ctx_len - sp;
    whole = malloc(ctx_len + cont_len + 1);
    if (!whole) return mp_fail(err, MP_ENOMEM, "out of memory");
    memcpy(whole, ctx, ctx_len);
    memcpy(whole + ctx_len, cont, cont_len);
    if ((rc = mp_tokenizer_encode(tok, whole, ctx_len + cont_len, add_bos, &w, &nw, err)) < 0) goto cleanup;
    if ((rc = mp_tokenizer_encode(tok, ctx, cl, add_bos, &c, &nc, err)) < 0) goto cleanup;
    if (nw <= nc) {
        rc = mp_fail(err, MP_EINPUT, "continuation '%.*s' gets no token of its own after its context", (int)cont_len,
                     cont);
        goto cleanup;
    }
    memmove(w, w + nc, (nw - nc) * sizeof *w);
    *ctx_ids = c;
    *n_ctx = nc;
    *cont_ids = w;
    *n_cont = nw - nc;
    c = w = NULL;
cleanup:
    free(whole);
    free(w);
    free(c);
    return rc;
}

size_t mp_mcq_common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

int mp_mcq_create(mp_state *st, int vocab, mp_mcq **out, mp_error *err) {
    mp_mcq *q = calloc(1, sizeof *q);
    if (!q) return mp_fail(err, MP_ENOMEM, "out of memory");
    q->st = st;
    q->vocab = vocab;
    q->last = malloc((size_t)vocab * sizeof *q->last);
    if (!q->last) {
        mp_mcq_free(q);
        return mp_fail(err, MP_ENOMEM, "out of memory for %d logits", vocab);
    }
    *out = q;
    return 0;
}

void mp_mcq_free(mp_mcq *q) {
    if (!q) return;
    free(q->cache_ids);
    free(q->last);
    free(q->buf);
    free(q);
}

uint64_t mp_mcq_tokens_run(const mp_mcq *q) { return q->tokens_run; }

static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* Bring the cache to exactly forward(ctx[0..keep)) from empty. */
static int load_prefix(mp_mcq *q, const int32_t *ctx, size_t keep, mp_error *err) {
    if (keep > 0 && q->cache_n == keep && !memcmp(q->cache_ids, ctx, keep * sizeof *ctx))
        return mp_state_rewind(q->st, (int)keep, err);
    mp_state_reset(q->st);
    q->cache_n = 0;
    if (keep == 0) return 0;
    MP_TRY(mp_forward(q->st, ctx, keep, NULL, 0, NULL, err));
    q->tokens_run += keep;
    if (keep > q->cache_cap) {
        int32_t *n = realloc(q->cache_ids, keep * sizeof *n);
        MP_FAIL_IF(!n, err, MP_ENOMEM, "out of memory");
        q->cache_ids = n;
        q->cache_cap = keep;
    }
    memcpy(q->cache_ids, ctx, keep * sizeof *ctx);
    q->cache_n = keep;
    return 0;
}

int mp_mcq_score(mp_mcq *q, const int32_t *ctx, size_t n_ctx, size_t keep, const int32_t *const *conts,
                 const size_t *n_conts, size_t n_choices, mp_mcq_result *out, int *truncated, mp_error *err) {
    const size_t max_ctx = (size_t)mp_state_max_ctx(q->st);
    size_t max_cont = 0;
    if (truncated) *truncated = 0;
    MP_FAIL_IF(n_ctx == 0, err, MP_EINPUT, "empty context");
    for (size_t c = 0; c < n_choices; c++) {
        MP_FAIL_IF(n_conts[c] == 0, err, MP_EINPUT, "choice %zu: empty continuation", c);
        if (n_conts[c] > max_cont) max_cont = n_conts[c];
    }
    MP_FAIL_IF(max_cont > max_ctx, err, MP_EINPUT, "a %zu-token continuation does not fit the %zu-token context",
               max_cont, max_ctx);
    /* the harness cuts each (context, continuation) request on its own:
     * inp = (ctx + cont)[-(max_length + 1):][:-1], so a short choice keeps more
     * context than a long one; such items are scored one choice at a time */
    if (n_ctx + max_cont - 1 > max_ctx) {
        if (truncated) *truncated = 1;
        for (size_t c = 0; c < n_choices; c++) {
            size_t cut = n_ctx + n_conts[c] - 1 > max_ctx ? n_ctx + n_conts[c] - 1 - max_ctx : 0;
            MP_TRY(mp_mcq_score(q, ctx + cut, n_ctx - cut, 0, conts + c, n_conts + c, 1, out + c, NULL, err));
        }
        return 0;
    }
    if (keep >= n_ctx) keep = n_ctx - 1;
    if (max_cont > 1 && max_cont - 1 > q->buf_rows) {
        float *nb = realloc(q->buf, (max_cont - 1) * (size_t)q->vocab * sizeof *nb);
        MP_FAIL_IF(!nb, err, MP_ENOMEM, "out of memory for %zu x %d logits", max_cont - 1, q->vocab);
        q->buf = nb;
        q->buf_rows = max_cont - 1;
    }
    MP_TRY(load_prefix(q, ctx, keep, err));
    MP_TRY(mp_forward(q->st, ctx + keep, n_ctx - keep, q->last, 1, NULL, err));
    q->tokens_run += n_ctx - keep;
    const int V = q->vocab;
    for (size_t c = 0; c < n_choices; c++) {
        const int32_t *t = conts[c];
        size_t L = n_conts[c];
        MP_FAIL_IF(t[0] < 0 || t[0] >= V, err, MP_EINPUT, "continuation token %d outside the vocabulary", t[0]);
        double lp = mp_logprob(q->last, V, t[0]);
        int greedy = argmax(q->last, V) == t[0];
        if (L > 1) {
            MP_TRY(mp_state_rewind(q->st, (int)n_ctx, err));
            MP_TRY(mp_forward(q->st, t, L - 1, q->buf, 0, NULL, err));
            q->tokens_run += L - 1;
            for (size_t k = 1; k < L; k++) {
                const float *row = q->buf + (k - 1) * (size_t)V;
                MP_FAIL_IF(t[k] < 0 || t[k] >= V, err, MP_EINPUT, "continuation token %d outside the vocabulary",
                           t[k]);
                lp += mp_logprob(row, V, t[k]);
                if (argmax(row, V) != t[k]) greedy = 0;
            }
        }
        out[c].loglik = lp;
        out[c].n_tokens = (int)L;
        out[c].is_greedy = greedy;
    }
    return 0;
}
