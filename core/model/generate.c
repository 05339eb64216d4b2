/* core/model/generate.c — prompt prefill + KV-cached decoding with stop strings
 * (see generate.h): one sequence on an mp_state (mp_generate), or B sequences
 * decoded together on the batched engine's slots (mp_generate_batch); both
 * pick and stop through the same per-sequence step (gen_step). */
#include "core/model/generate.h"

#include <stdlib.h>
#include <string.h>

#include "core/model/backend.h"
#include "core/util/progress.h"

static int append(mp_gen_result *r, size_t *cap, const char *s, size_t n, mp_error *err) {
    if (r->len + n + 1 > *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        while (nc < r->len + n + 1) nc *= 2;
        char *nt = realloc(r->text, nc);
        if (!nt) return mp_fail(err, MP_ENOMEM, "out of memory (generation)");
        r->text = nt;
        *cap = nc;
    }
    memcpy(r->text + r->len, s, n);
    r->len += n;
    r->text[r->len] = '\0';
    return 0;
}

/* Earliest stop string occurrence that ends at or after `from`; -1 if none. */
static long find_stop(const mp_gen_result *r, const mp_gen_opts *o, size_t from) {
    long best = -1;
    for (size_t k = 0; k < o->n_stop; k++) {
        size_t sl = strlen(o->stop[k]);
        if (!sl || sl > r->len) continue;
        size_t start = from >= sl ? from - sl + 1 : 0;
        for (size_t p = start; p + sl <= r->len; p++)
            if (!memcmp(r->text + p, o->stop[k], sl)) {
                if (best < 0 || (long)p < best) best = (long)p;
                break;
            }
    }
    return best;
}

/* Decoding state of one sequence. */
typedef struct gen_seq {
    mp_gen_result *res;
    size_t cap;        /* of res->text */
    int32_t prev;      /* last token (for piece decoding) */
    int k;             /* tokens picked so far */
    int done;
    int32_t next;      /* the token to run next when not done */
} gen_seq;

static int gen_begin(gen_seq *g, mp_gen_result *res, const int32_t *prompt, size_t n_prompt, const mp_gen_opts *o,
                     mp_error *err) {
    memset(res, 0, sizeof *res);
    memset(g, 0, sizeof *g);
    g->res = res;
    res->ids = malloc(((size_t)o->max_new_tokens + 1) * sizeof *res->ids);
    if (!res->ids || append(res, &g->cap, "", 0, err) < 0) return mp_fail(err, MP_ENOMEM, "out of memory (generation)");
    g->prev = prompt[n_prompt - 1];
    res->stop_reason = MP_GEN_STOP_LENGTH;
    return 0;
}

/* Pick the next token from logits [vocab]: EOS, stop strings and the budget
 * end the sequence (g->done); otherwise g->next is the token to run. */
static int gen_step(gen_seq *g, const mp_tokenizer *tok, const mp_gen_opts *opts, mp_sampler *sampler,
                    const float *logits, mp_error *err) {
    mp_gen_result *res = g->res;
    int32_t next = mp_sampler_pick(sampler, logits);
    if (!opts->ignore_eos && next == mp_tokenizer_eos_id(tok)) {
        res->stop_reason = MP_GEN_STOP_EOS;
        g->done = 1;
        return 0;
    }
    res->ids[res->n_ids++] = next;
    char buf[256];
    int n = mp_tokenizer_decode_piece(tok, g->prev, next, buf, sizeof buf);
    size_t before = res->len;
    if (n > 0) MP_TRY(append(res, &g->cap, buf, (size_t)n, err));
    if (n > 0 && opts->on_text) opts->on_text(opts->on_text_ctx, buf, (size_t)n);
    g->prev = next;
    g->next = next;
    long at = find_stop(res, opts, before);
    if (at >= 0) {
        res->len = (size_t)at;
        res->text[res->len] = '\0';
        res->stop_reason = MP_GEN_STOP_STRING;
        g->done = 1;
        return 0;
    }
    if (++g->k == opts->max_new_tokens) g->done = 1;
    return 0;
}

int mp_generate(mp_state *st, const mp_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                const mp_gen_opts *opts, mp_sampler *sampler, mp_gen_result *res, mp_error *err) {
    memset(res, 0, sizeof *res);
    MP_FAIL_IF(n_prompt == 0, err, MP_EINPUT, "empty prompt");
    MP_FAIL_IF(n_prompt + (size_t)opts->max_new_tokens > (size_t)mp_state_max_ctx(st), err, MP_EINPUT,
               "prompt of %zu tokens + %d new tokens exceed the %d-token context", n_prompt, opts->max_new_tokens,
               mp_state_max_ctx(st));
    gen_seq g;
    float *logits = malloc((size_t)sampler->vocab * sizeof *logits);
    int rc = gen_begin(&g, res, prompt, n_prompt, opts, err);
    if (rc == 0 && !logits) rc = mp_fail(err, MP_ENOMEM, "out of memory (generation)");
    if (rc < 0) goto cleanup;
    mp_state_reset(st);
    double t0 = mp_now();
    if ((rc = mp_forward(st, prompt, n_prompt, logits, 1, NULL, err)) < 0) goto cleanup;
    double t1 = mp_now();
    res->prefill_s = t1 - t0;
    while (opts->max_new_tokens > 0) {
        if ((rc = gen_step(&g, tok, opts, sampler, logits, err)) < 0) goto cleanup;
        if (g.done) break;
        if ((rc = mp_forward(st, &g.next, 1, logits, 1, NULL, err)) < 0) goto cleanup;
    }
    res->decode_s = mp_now() - t1;
cleanup:
    free(logits);
    if (rc < 0) mp_gen_result_free(res);
    return rc;
}

/* Sequences [0, n) with n <= the engine's slots, sequence k on slot k with
 * options opts[k * each] (each: 0 = one set for all, 1 = one per sequence). */
static int generate_chunk(mp_engine *e, const mp_tokenizer *tok, const int32_t *const *prompts,
                          const size_t *n_prompts, size_t n, const mp_gen_opts *opts, size_t each,
                          mp_sampler *samplers, mp_gen_result *res, gen_seq *g, float *logits, int32_t *ids,
                          size_t *off, int *slot, mp_error *err) {
    for (size_t k = 0; k < n; k++) {
        MP_TRY(gen_begin(&g[k], &res[k], prompts[k], n_prompts[k], &opts[k * each], err));
        MP_TRY(mp_engine_slot_rewind(e, (int)k, 0, err));
    }
    /* prefill: every prompt, logits of its last token */
    size_t tot = 0;
    for (size_t k = 0; k < n; k++) tot += n_prompts[k];
    int32_t *packed = malloc(tot * sizeof *packed);
    MP_FAIL_IF(!packed, err, MP_ENOMEM, "out of memory (generation)");
    off[0] = 0;
    for (size_t k = 0; k < n; k++) {
        memcpy(packed + off[k], prompts[k], n_prompts[k] * sizeof *packed);
        off[k + 1] = off[k] + n_prompts[k];
        slot[k] = (int)k;
    }
    double t0 = mp_now();
    mp_engine_batch b = {.n_seqs = n, .ids = packed, .off = off, .slot = slot, .logits = logits, .last_only = 1};
    int rc = mp_engine_prefill(e, &b, err);
    free(packed);
    MP_TRY(rc);
    double t1 = mp_now();
    for (size_t k = 0; k < n; k++) res[k].prefill_s = t1 - t0;
    /* decode: one token per live sequence per call; logits row x <-> sequence slot[x] */
    size_t live = 0;
    for (size_t k = 0; k < n; k++) {
        const mp_gen_opts *o = &opts[k * each];
        if (o->max_new_tokens > 0) MP_TRY(gen_step(&g[k], tok, o, &samplers[k], logits + k * (size_t)samplers[k].vocab, err));
        else g[k].done = 1;
        if (!g[k].done) live++;
    }
    while (live > 0) {
        size_t x = 0;
        off[0] = 0;
        for (size_t k = 0; k < n; k++) {
            if (g[k].done) continue;
            ids[x] = g[k].next;
            slot[x] = (int)k;
            off[x + 1] = x + 1;
            x++;
        }
        b = (mp_engine_batch){.n_seqs = x, .ids = ids, .off = off, .slot = slot, .logits = logits, .last_only = 1};
        MP_TRY(mp_engine_prefill(e, &b, err));
        live = 0;
        for (size_t r = 0; r < x; r++) {
            size_t k = (size_t)slot[r];
            MP_TRY(gen_step(&g[k], tok, &opts[k * each], &samplers[k], logits + r * (size_t)samplers[k].vocab, err));
            if (!g[k].done) live++;
            else res[k].decode_s = mp_now() - t1;
        }
    }
    for (size_t k = 0; k < n; k++)
        if (res[k].decode_s == 0) res[k].decode_s = mp_now() - t1;
    return 0;
}

static int generate_batch(mp_engine *e, const mp_tokenizer *tok, const int32_t *const *prompts, const size_t *n_prompts,
                          size_t n, const mp_gen_opts *opts, size_t each, mp_sampler *samplers, mp_gen_result *res,
                          mp_error *err) {
    memset(res, 0, n * sizeof *res);
    const size_t max_ctx = (size_t)mp_engine_max_ctx(e);
    for (size_t k = 0; k < n; k++) {
        MP_FAIL_IF(n_prompts[k] == 0, err, MP_EINPUT, "empty prompt");
        const int max_new = opts[k * each].max_new_tokens;
        MP_FAIL_IF(max_new < 0, err, MP_EINPUT, "negative token budget (%d)", max_new);
        MP_FAIL_IF(n_prompts[k] + (size_t)max_new > max_ctx, err, MP_EINPUT,
                   "prompt of %zu tokens + %d new tokens exceed the %zu-token context", n_prompts[k], max_new, max_ctx);
    }
    if (n == 0) return 0;
    const size_t S = (size_t)mp_engine_slots(e), V = (size_t)samplers[0].vocab;
    gen_seq *g = calloc(S, sizeof *g);
    float *logits = malloc(S * V * sizeof *logits);
    int32_t *ids = malloc(S * sizeof *ids);
    size_t *off = malloc((S + 1) * sizeof *off);
    int *slot = malloc(S * sizeof *slot);
    int rc = 0;
    if (!g || !logits || !ids || !off || !slot) rc = mp_fail(err, MP_ENOMEM, "out of memory (generation)");
    for (size_t i = 0; rc == 0 && i < n; i += S) {
        size_t c = n - i < S ? n - i : S;
        rc = generate_chunk(e, tok, prompts + i, n_prompts + i, c, opts + i * each, each, samplers + i, res + i, g,
                            logits, ids, off, slot, err);
    }
    free(g);
    free(logits);
    free(ids);
    free(off);
    free(slot);
    if (rc < 0)
        for (size_t k = 0; k < n; k++) mp_gen_result_free(&res[k]);
    return rc;
}

int mp_generate_batch(mp_engine *e, const mp_tokenizer *tok, const int32_t *const *prompts, const size_t *n_prompts,
                      size_t n, const mp_gen_opts *opts, mp_sampler *samplers, mp_gen_result *res, mp_error *err) {
    return generate_batch(e, tok, prompts, n_prompts, n, opts, 0, samplers, res, err);
}

int mp_generate_batch_each(mp_engine *e, const mp_tokenizer *tok, const int32_t *const *prompts,
                           const size_t *n_prompts, size_t n, const mp_gen_opts *opts, mp_sampler *samplers,
                           mp_gen_result *res, mp_error *err) {
    return generate_batch(e, tok, prompts, n_prompts, n, opts, 1, samplers, res, err);
}

void mp_gen_result_free(mp_gen_result *res) {
    if (!res) return;
    free(res->text);
    free(res->ids);
    memset(res, 0, sizeof *res);
}
