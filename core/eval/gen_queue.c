/* core/eval/gen_queue.c — the evaluations' generation queue (gen_queue.h):
 * per-slot prompt copies, options and samplers, one mp_generate_batch_each
 * call per round, results handed back in order. */
#include "core/eval/gen_queue.h"

#include <stdlib.h>
#include <string.h>

#include "core/model/sampling.h"

struct mp_gen_queue {
    mp_engine *e;
    const mp_tokenizer *tok;
    int vocab;
    mp_gen_done_fn done;
    void *ctx;
    size_t n, cap;         /* queued sequences, slots per round */
    int32_t **ids;         /* [cap] owned prompt copies */
    size_t *n_ids;         /* [cap] */
    size_t *ids_cap;       /* [cap] capacity of ids[k] */
    mp_gen_opts *opts;     /* [cap] */
    mp_sampler *samplers;  /* [cap] the first n initialized */
    mp_gen_result *res;    /* [cap] */
    size_t *tag;           /* [cap] */
    size_t tokens;
};

int mp_gen_queue_create(mp_engine *e, const mp_tokenizer *tok, int vocab, mp_gen_done_fn done, void *ctx,
                        mp_gen_queue **out, mp_error *err) {
    *out = NULL;
    mp_gen_queue *q = calloc(1, sizeof *q);
    MP_FAIL_IF(!q, err, MP_ENOMEM, "out of memory");
    q->e = e;
    q->tok = tok;
    q->vocab = vocab;
    q->done = done;
    q->ctx = ctx;
    q->cap = (size_t)mp_engine_slots(e);
    q->ids = calloc(q->cap, sizeof *q->ids);
    q->n_ids = calloc(q->cap, sizeof *q->n_ids);
    q->ids_cap = calloc(q->cap, sizeof *q->ids_cap);
    q->opts = calloc(q->cap, sizeof *q->opts);
    q->samplers = calloc(q->cap, sizeof *q->samplers);
    q->res = calloc(q->cap, sizeof *q->res);
    q->tag = calloc(q->cap, sizeof *q->tag);
    if (!q->ids || !q->n_ids || !q->ids_cap || !q->opts || !q->samplers || !q->res || !q->tag) {
        mp_gen_queue_free(q);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    *out = q;
    return 0;
}

/* Drop the queued sequences' samplers. */
static void drop(mp_gen_queue *q) {
    for (size_t k = 0; k < q->n; k++) mp_sampler_free(&q->samplers[k]);
    q->n = 0;
}

void mp_gen_queue_free(mp_gen_queue *q) {
    if (!q) return;
    if (q->samplers) drop(q);
    for (size_t k = 0; q->ids && k < q->cap; k++) free(q->ids[k]);
    free(q->ids);
    free(q->n_ids);
    free(q->ids_cap);
    free(q->opts);
    free(q->samplers);
    free(q->res);
    free(q->tag);
    free(q);
}

int mp_gen_queue_flush(mp_gen_queue *q, mp_error *err) {
    if (q->n == 0) return 0;
    int rc = mp_generate_batch_each(q->e, q->tok, (const int32_t *const *)q->ids, q->n_ids, q->n, q->opts,
                                    q->samplers, q->res, err);
    for (size_t k = 0; k < q->n; k++) {
        if (rc == 0) {
            q->tokens += q->res[k].n_ids;
            rc = q->done(q->ctx, q->tag[k], &q->res[k], err);
        }
        mp_gen_result_free(&q->res[k]); /* a no-op after a failed mp_generate_batch_each */
    }
    drop(q);
    return rc;
}

int mp_gen_queue_add(mp_gen_queue *q, const int32_t *prompt, size_t n, const mp_gen_opts *opts,
                     const mp_gen_sampling *sampling, size_t tag, mp_error *err) {
    MP_FAIL_IF(n == 0, err, MP_EINPUT, "empty prompt");
    size_t k = q->n;
    if (n > q->ids_cap[k]) {
        int32_t *nb = realloc(q->ids[k], n * sizeof *nb);
        MP_FAIL_IF(!nb, err, MP_ENOMEM, "out of memory for a %zu-token prompt", n);
        q->ids[k] = nb;
        q->ids_cap[k] = n;
    }
    MP_TRY(mp_sampler_init(&q->samplers[k], q->vocab, sampling->temperature, sampling->top_p, sampling->seed, err));
    memcpy(q->ids[k], prompt, n * sizeof *prompt);
    q->n_ids[k] = n;
    q->opts[k] = *opts;
    q->tag[k] = tag;
    q->n++;
    return q->n == q->cap ? mp_gen_queue_flush(q, err) : 0;
}

size_t mp_gen_queue_tokens(const mp_gen_queue *q) { return q->tokens; }
