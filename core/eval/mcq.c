/* core/eval/mcq.c — multiple-choice log-likelihood scoring (see mcq.h): the
 * harness's context/continuation split, one context prefill per item, cache
 * rewinds per continuation, and reuse of a stable prompt prefix (held by a
 * slot, or computed once per engine call and copied to the other slots). */
#include "core/eval/mcq.h"

#include <stdlib.h>
#include <string.h>

#include "core/eval/eval_tasks.h"
#include "core/model/sampling.h"

typedef struct mcq_slot {
    int32_t *cache_ids;   /* [cache_cap] the prefix the slot holds as forward(prefix) from empty */
    size_t cache_n, cache_cap;
} mcq_slot;

struct mp_mcq {
    mp_engine *e;
    int vocab;
    int n_slots;
    mcq_slot *slot;       /* [n_slots] */
    float *last;          /* [n_slots][vocab] logits at each item's last context position */
    /* one engine call: packed ids, targets, offsets, slots, scores */
    int32_t *ids, *tgt;
    double *lp;
    uint8_t *am;
    size_t cap;
    size_t *off;          /* [n_slots + 1] */
    int *seq_slot;        /* [n_slots] */
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

int mp_mcq_create(mp_engine *e, int vocab, mp_mcq **out, mp_error *err) {
    *out = NULL;
    mp_mcq *q = calloc(1, sizeof *q);
    if (!q) return mp_fail(err, MP_ENOMEM, "out of memory");
    q->e = e;
    q->vocab = vocab;
    q->n_slots = mp_engine_slots(e);
    q->slot = calloc((size_t)q->n_slots, sizeof *q->slot);
    q->last = malloc((size_t)q->n_slots * (size_t)vocab * sizeof *q->last);
    q->off = malloc(((size_t)q->n_slots + 1) * sizeof *q->off);
    q->seq_slot = malloc((size_t)q->n_slots * sizeof *q->seq_slot);
    if (!q->slot || !q->last || !q->off || !q->seq_slot) {
        mp_mcq_free(q);
        return mp_fail(err, MP_ENOMEM, "out of memory for %d x %d logits", q->n_slots, vocab);
    }
    *out = q;
    return 0;
}

void mp_mcq_free(mp_mcq *q) {
    if (!q) return;
    for (int k = 0; q->slot && k < q->n_slots; k++) free(q->slot[k].cache_ids);
    free(q->slot);
    free(q->last);
    free(q->ids);
    free(q->tgt);
    free(q->lp);
    free(q->am);
    free(q->off);
    free(q->seq_slot);
    free(q);
}

uint64_t mp_mcq_tokens_run(const mp_mcq *q) { return q->tokens_run; }
int mp_mcq_slots(const mp_mcq *q) { return q->n_slots; }

static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* Room for `need` packed tokens of one engine call. */
static int reserve(mp_mcq *q, size_t need, mp_error *err) {
    if (need <= q->cap) return 0;
    size_t nc = q->cap ? q->cap : 1024;
    while (nc < need) nc *= 2;
    int32_t *ids = realloc(q->ids, nc * sizeof *ids);
    if (ids) q->ids = ids;
    int32_t *tgt = realloc(q->tgt, nc * sizeof *tgt);
    if (tgt) q->tgt = tgt;
    double *lp = realloc(q->lp, nc * sizeof *lp);
    if (lp) q->lp = lp;
    uint8_t *am = realloc(q->am, nc * sizeof *am);
    if (am) q->am = am;
    MP_FAIL_IF(!ids || !tgt || !lp || !am, err, MP_ENOMEM, "out of memory for %zu tokens", nc);
    q->cap = nc;
    return 0;
}

/* Per item of a chunk: the context after left truncation. */
typedef struct eff {
    const int32_t *ctx;
    size_t n_ctx, keep;
} eff;

/* Check an item and apply the harness's truncation. */
static int prepare(const mp_mcq *q, mp_mcq_item *it, eff *f, mp_error *err) {
    const size_t max_ctx = (size_t)mp_engine_max_ctx(q->e);
    size_t max_cont = 0;
    it->truncated = 0;
    MP_FAIL_IF(it->n_ctx == 0, err, MP_EINPUT, "empty context");
    for (size_t c = 0; c < it->n_choices; c++) {
        MP_FAIL_IF(it->n_conts[c] == 0, err, MP_EINPUT, "choice %zu: empty continuation", c);
        if (it->n_conts[c] > max_cont) max_cont = it->n_conts[c];
        for (size_t k = 0; k < it->n_conts[c]; k++)
            MP_FAIL_IF(it->conts[c][k] < 0 || it->conts[c][k] >= q->vocab, err, MP_EINPUT,
                       "continuation token %d outside the vocabulary", it->conts[c][k]);
    }
    MP_FAIL_IF(max_cont > max_ctx, err, MP_EINPUT, "a %zu-token continuation does not fit the %zu-token context",
               max_cont, max_ctx);
    f->ctx = it->ctx;
    f->n_ctx = it->n_ctx;
    f->keep = it->keep;
    /* the harness keeps the last max_length tokens of context + continuation[:-1] */
    if (f->n_ctx + max_cont - 1 > max_ctx) {
        size_t cut = f->n_ctx + max_cont - 1 - max_ctx;
        f->ctx += cut;
        f->n_ctx -= cut;
        f->keep = 0;
        it->truncated = 1;
    }
    if (f->keep >= f->n_ctx) f->keep = f->n_ctx - 1;
    return 0;
}

/* Add ids[0..n) (targets tg, may be NULL) as the next sequence of the call. */
static int push(mp_mcq *q, size_t *ns, int slot, const int32_t *ids, size_t n, const int32_t *tg, mp_error *err) {
    size_t at = q->off[*ns];
    MP_TRY(reserve(q, at + n, err));
    memcpy(q->ids + at, ids, n * sizeof *ids);
    if (tg) memcpy(q->tgt + at, tg, n * sizeof *tg);
    q->seq_slot[*ns] = slot;
    q->off[++*ns] = at + n;
    return 0;
}

/* Score items [0, n) with n <= n_slots, item k on slot k. */
static int score_chunk(mp_mcq *q, mp_mcq_item *items, size_t n, mp_error *err) {
    eff f[64];
    const int V = q->vocab;
    size_t ns = 0, max_choices = 0;
    for (size_t k = 0; k < n; k++) {
        MP_TRY(prepare(q, &items[k], &f[k], err));
        if (items[k].n_choices > max_choices) max_choices = items[k].n_choices;
    }
    /* 1. the stable prefix: reused when the slot holds it, copied from a slot
     * of this chunk that holds or computes the same one (once per distinct
     * prefix), else one forward from empty */
    int from[64]; /* slot to copy the prefix from, -1: none */
    q->off[0] = 0;
    for (size_t k = 0; k < n; k++) {
        mcq_slot *s = &q->slot[k];
        size_t keep = f[k].keep;
        from[k] = -1;
        if (keep > 0 && s->cache_n == keep && !memcmp(s->cache_ids, f[k].ctx, keep * sizeof *f[k].ctx)) {
            MP_TRY(mp_engine_slot_rewind(q->e, (int)k, (int)keep, err));
            continue;
        }
        MP_TRY(mp_engine_slot_rewind(q->e, (int)k, 0, err));
        s->cache_n = 0;
        if (keep == 0) continue;
        if (keep > s->cache_cap) {
            int32_t *nb = realloc(s->cache_ids, keep * sizeof *nb);
            MP_FAIL_IF(!nb, err, MP_ENOMEM, "out of memory");
            s->cache_ids = nb;
            s->cache_cap = keep;
        }
        memcpy(s->cache_ids, f[k].ctx, keep * sizeof *f[k].ctx);
        for (size_t j = 0; j < k && from[k] < 0; j++)
            if (from[j] < 0 && f[j].keep == keep && !memcmp(f[j].ctx, f[k].ctx, keep * sizeof *f[k].ctx))
                from[k] = (int)j; /* j holds it already or computes it in this call */
        if (from[k] >= 0) continue;
        MP_TRY(push(q, &ns, (int)k, f[k].ctx, keep, NULL, err));
        q->tokens_run += keep;
    }
    mp_engine_batch b = {.ids = q->ids, .off = q->off, .slot = q->seq_slot};
    b.n_seqs = ns;
    MP_TRY(mp_engine_prefill(q->e, &b, err));
    ns = 0; /* copies, or where the backend cannot copy, forwards */
    for (size_t k = 0; k < n; k++) {
        if (from[k] < 0) continue;
        int copied = mp_engine_slot_copy(q->e, from[k], (int)k, (int)f[k].keep, err);
        MP_TRY(copied);
        if (copied) continue;
        MP_TRY(push(q, &ns, (int)k, f[k].ctx, f[k].keep, NULL, err));
        q->tokens_run += f[k].keep;
    }
    b.n_seqs = ns;
    MP_TRY(mp_engine_prefill(q->e, &b, err));
    for (size_t k = 0; k < n; k++) q->slot[k].cache_n = f[k].keep; /* now held by forward(prefix) */
    /* 2. the rest of each context: logits of its last position */
    ns = 0;
    for (size_t k = 0; k < n; k++) {
        MP_TRY(push(q, &ns, (int)k, f[k].ctx + f[k].keep, f[k].n_ctx - f[k].keep, NULL, err));
        q->tokens_run += f[k].n_ctx - f[k].keep;
    }
    b = (mp_engine_batch){.n_seqs = ns, .ids = q->ids, .off = q->off, .slot = q->seq_slot, .logits = q->last,
                          .last_only = 1};
    MP_TRY(mp_engine_prefill(q->e, &b, err));
    for (size_t k = 0; k < n; k++) {
        const float *last = q->last + k * (size_t)V;
        int best = argmax(last, V);
        for (size_t c = 0; c < items[k].n_choices; c++) {
            int32_t t0 = items[k].conts[c][0];
            items[k].out[c].loglik = mp_logprob(last, V, t0);
            items[k].out[c].n_tokens = (int)items[k].n_conts[c];
            items[k].out[c].is_greedy = best == t0;
        }
    }
    /* 3. round c: every item's choice c (when longer than one token) after its context */
    for (size_t c = 0; c < max_choices; c++) {
        ns = 0;
        for (size_t k = 0; k < n; k++) {
            if (c >= items[k].n_choices || items[k].n_conts[c] < 2) continue;
            const int32_t *t = items[k].conts[c];
            size_t L = items[k].n_conts[c];
            MP_TRY(mp_engine_slot_rewind(q->e, (int)k, (int)f[k].n_ctx, err));
            MP_TRY(push(q, &ns, (int)k, t, L - 1, t + 1, err));
            q->tokens_run += L - 1;
        }
        if (ns == 0) continue;
        b = (mp_engine_batch){.n_seqs = ns, .ids = q->ids, .off = q->off, .slot = q->seq_slot, .targets = q->tgt,
                              .logprobs = q->lp, .is_argmax = q->am};
        MP_TRY(mp_engine_prefill(q->e, &b, err));
        for (size_t x = 0; x < ns; x++) {
            mp_mcq_result *r = &items[q->seq_slot[x]].out[c];
            for (size_t t = q->off[x]; t < q->off[x + 1]; t++) {
                r->loglik += q->lp[t];
                if (!q->am[t]) r->is_greedy = 0;
            }
        }
    }
    return 0;
}

/* Whether an item overflows the context: the harness then cuts each
 * (context, continuation) request on its own from the left,
 * inp = (ctx + cont)[-(max_length + 1):][:-1], so a short choice keeps more
 * context than a long one. Such an item is scored as one single-choice item
 * per choice (prepare's cut of a single choice is exactly that request's). */
static int overflows(const mp_mcq *q, const mp_mcq_item *it) {
    size_t max_cont = 0;
    for (size_t c = 0; c < it->n_choices; c++)
        if (it->n_conts[c] > max_cont) max_cont = it->n_conts[c];
    return it->n_choices > 1 && it->n_ctx + max_cont - 1 > (size_t)mp_engine_max_ctx(q->e);
}

static int score_items(mp_mcq *q, mp_mcq_item *items, size_t n, mp_error *err) {
    size_t per = (size_t)q->n_slots < 64 ? (size_t)q->n_slots : 64;
    for (size_t i = 0; i < n; i += per) {
        int rc = score_chunk(q, items + i, n - i < per ? n - i : per, err);
        if (rc < 0) { /* the slots' caches are unknown now */
            for (int k = 0; k < q->n_slots; k++) q->slot[k].cache_n = 0;
            return rc;
        }
    }
    return 0;
}

int mp_mcq_score_batch(mp_mcq *q, mp_mcq_item *items, size_t n, mp_error *err) {
    size_t total = 0, split = 0;
    for (size_t k = 0; k < n; k++) {
        int o = overflows(q, &items[k]);
        total += o ? items[k].n_choices : 1;
        split += (size_t)o;
    }
    if (!split) return score_items(q, items, n, err);
    mp_mcq_item *x = malloc(total * sizeof *x);
    MP_FAIL_IF(!x, err, MP_ENOMEM, "out of memory");
    size_t m = 0;
    for (size_t k = 0; k < n; k++) {
        if (!overflows(q, &items[k])) {
            x[m++] = items[k];
            continue;
        }
        for (size_t c = 0; c < items[k].n_choices; c++)
            x[m++] = (mp_mcq_item){items[k].ctx, items[k].n_ctx, 0, items[k].conts + c, items[k].n_conts + c, 1,
                                   items[k].out + c, 0};
    }
    int rc = score_items(q, x, m, err);
    m = 0;
    for (size_t k = 0; k < n && rc == 0; k++) {
        if (!overflows(q, &items[k])) {
            items[k].truncated = x[m++].truncated;
            continue;
        }
        items[k].truncated = 1;
        m += items[k].n_choices;
    }
    free(x);
    return rc;
}

int mp_mcq_score(mp_mcq *q, const int32_t *ctx, size_t n_ctx, size_t keep, const int32_t *const *conts,
                 const size_t *n_conts, size_t n_choices, mp_mcq_result *out, int *truncated, mp_error *err) {
    mp_mcq_item it = {ctx, n_ctx, keep, conts, n_conts, n_choices, out, 0};
    if (truncated) *truncated = 0;
    int rc = mp_mcq_score_batch(q, &it, 1, err);
    if (truncated) *truncated = it.truncated;
    return rc;
}
