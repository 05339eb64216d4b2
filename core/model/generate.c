/* core/model/generate.c — prompt prefill + KV-cached decoding with stop strings
 * (see generate.h). */
#include "core/model/generate.h"

#include <stdlib.h>
#include <string.h>

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

int mp_generate(mp_state *st, const mp_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                const mp_gen_opts *opts, mp_sampler *sampler, mp_gen_result *res, mp_error *err) {
    memset(res, 0, sizeof *res);
    MP_FAIL_IF(n_prompt == 0, err, MP_EINPUT, "empty prompt");
    MP_FAIL_IF(n_prompt + (size_t)opts->max_new_tokens > (size_t)mp_state_max_ctx(st), err, MP_EINPUT,
               "prompt of %zu tokens + %d new tokens exceed the %d-token context", n_prompt, opts->max_new_tokens,
               mp_state_max_ctx(st));
    size_t cap = 0, id_cap = (size_t)opts->max_new_tokens + 1;
    float *logits = malloc((size_t)sampler->vocab * sizeof *logits);
    res->ids = malloc(id_cap * sizeof *res->ids);
    int rc = 0;
    if (!logits || !res->ids || append(res, &cap, "", 0, err) < 0) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory (generation)");
        goto cleanup;
    }
    mp_state_reset(st);
    double t0 = mp_now();
    if ((rc = mp_forward(st, prompt, n_prompt, logits, 1, NULL, err)) < 0) goto cleanup;
    double t1 = mp_now();
    res->prefill_s = t1 - t0;
    int prev = prompt[n_prompt - 1];
    res->stop_reason = MP_GEN_STOP_LENGTH;
    for (int k = 0; k < opts->max_new_tokens; k++) {
        int32_t next = mp_sampler_pick(sampler, logits);
        if (!opts->ignore_eos && next == mp_tokenizer_eos_id(tok)) {
            res->stop_reason = MP_GEN_STOP_EOS;
            break;
        }
        res->ids[res->n_ids++] = next;
        char buf[256];
        int n = mp_tokenizer_decode_piece(tok, prev, next, buf, sizeof buf);
        size_t before = res->len;
        if (n > 0 && (rc = append(res, &cap, buf, (size_t)n, err)) < 0) goto cleanup;
        if (n > 0 && opts->on_text) opts->on_text(opts->on_text_ctx, buf, (size_t)n);
        prev = next;
        long at = find_stop(res, opts, before);
        if (at >= 0) {
            res->len = (size_t)at;
            res->text[res->len] = '\0';
            res->stop_reason = MP_GEN_STOP_STRING;
            break;
        }
        if (k + 1 == opts->max_new_tokens) break;
        if ((rc = mp_forward(st, &next, 1, logits, 1, NULL, err)) < 0) goto cleanup;
    }
    res->decode_s = mp_now() - t1;
cleanup:
    free(logits);
    if (rc < 0) mp_gen_result_free(res);
    return rc;
}

void mp_gen_result_free(mp_gen_result *res) {
    if (!res) return;
    free(res->text);
    free(res->ids);
    memset(res, 0, sizeof *res);
}
