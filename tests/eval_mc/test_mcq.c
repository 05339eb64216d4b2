/* tests/eval_mc/test_mcq.c — core/eval/mcq on a tiny checkpoint:
 *  - each choice's log-likelihood equals a full forward of context +
 *    continuation from an empty cache (tolerance: chunking changes float sums);
 *  - scores are bit-identical whatever ran before (prefix reuse vs a fresh
 *    scorer) and with a different chunk size is not required;
 *  - batched scoring (mp_mcq_score_batch over an engine with several slots,
 *    items in another order, chunks of 3) is bit-identical to one by one;
 *  - writes the ids and log-likelihoods as JSON for check_eval_mc.py to compare
 *    against the float64 reference (tests/ref/monet_ref.py).
 * usage: test_mcq MODEL_DIR OUT_JSON */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/backend.h"
#include "core/model/forward.h"
#include "core/eval/mcq.h"
#include "core/model/sampling.h"
#include "core/text/tokenizer.h"

#include "tests/common/test_check.h"

typedef struct {
    const char *ctx, *prefix;
    const char *conts[4];
    int n;
} tcase;

static const tcase CASES[] = {
    {"The following are questions about biology.\n\nWhat is a cell?\nA. x\nB. y\nAnswer:",
     "The following are questions about biology.\n\n", {" A", " B", " C", " D"}, 4},
    {"The following are questions about biology.\n\nWhich organ pumps blood?\nA. x\nB. y\nAnswer:",
     "The following are questions about biology.\n\n", {" A", " B", " C", " D"}, 4},
    {"Question: Which is the most likely effect of this increase in rotation?\nAnswer:", "",
     {" Planetary density will decrease.", " Planetary days will become shorter.", " Gravity.", " é ü"}, 4},
    {"Sarah was a much better surgeon than Maria so Maria", "", {" always got the easier cases."}, 1},
};

int main(int argc, char **argv) {
    if (argc != 3) return fprintf(stderr, "usage: test_mcq MODEL_DIR OUT_JSON\n"), 2;
    mp_error err;
    mp_model *m = NULL;
    mp_tokenizer *tok = NULL;
    mp_state *st2 = NULL;
    mp_engine *e = NULL, *e2 = NULL, *eb = NULL;
    mp_mcq *q = NULL, *q2 = NULL, *qb = NULL;
    char tp[4096];
    snprintf(tp, sizeof tp, "%s/tokenizer.model", argv[1]);
    if (mp_model_load(argv[1], &m, &err) || mp_tokenizer_load(tp, &tok, &err) || mp_state_create(m, 0, 0, &st2, &err) ||
        mp_engine_create(m, MP_DEVICE_CPU, 0, 0, &e, &err) || mp_engine_create(m, MP_DEVICE_CPU, 0, 0, &e2, &err) ||
        mp_engine_create_slots(m, MP_DEVICE_CPU, 3, 0, 0, &eb, &err) || mp_mcq_create(e, m->cfg.vocab_size, &q, &err) ||
        mp_mcq_create(eb, m->cfg.vocab_size, &qb, &err))
        return fprintf(stderr, "setup: %s\n", err.msg), 1;
    const int V = m->cfg.vocab_size;
    float *logits = malloc((size_t)512 * V * sizeof *logits);
    FILE *out = fopen(argv[2], "w");
    if (!logits || !out) return fprintf(stderr, "setup: out of memory or %s\n", argv[2]), 1;
    fputs("[", out);
    int first = 1;
    static double ll0[8][4];
    enum { NC = (int)(sizeof CASES / sizeof CASES[0]) };
    for (int pass = 0; pass < 2; pass++) {
        /* pass 0: cases in order with one scorer (prefix reuse across case 0 -> 1);
         * pass 1: each case on a fresh scorer, in reverse order: must be bit-identical */
        for (int ci = 0; ci < (int)(sizeof CASES / sizeof CASES[0]); ci++) {
            int k = pass ? (int)(sizeof CASES / sizeof CASES[0]) - 1 - ci : ci;
            const tcase *c = &CASES[k];
            int32_t *ctx_ids = NULL, *cont_ids[4] = {0};
            size_t n_ctx = 0, n_cont[4] = {0};
            for (int j = 0; j < c->n; j++) {
                int32_t *x;
                size_t nx;
                if (mp_mcq_encode_pair(tok, 1, c->ctx, strlen(c->ctx), c->conts[j], strlen(c->conts[j]), &x, &nx,
                                       &cont_ids[j], &n_cont[j], &err))
                    return fprintf(stderr, "encode: %s\n", err.msg), 1;
                if (j == 0) ctx_ids = x, n_ctx = nx;
                else free(x);
            }
            size_t keep = 0;
            if (*c->prefix) {
                int32_t *p;
                size_t np;
                mp_tokenizer_encode(tok, c->prefix, strlen(c->prefix), 1, &p, &np, &err);
                keep = mp_mcq_common_prefix(p, np, ctx_ids, n_ctx);
                free(p);
                CHECK(keep > 1, "case %d: prefix keeps %zu tokens", k, keep);
            }
            mp_mcq_result res[4];
            mp_mcq *use = q;
            if (pass) {
                mp_mcq_free(q2);
                q2 = NULL;
                if (mp_mcq_create(e2, V, &q2, &err)) return 1;
                use = q2;
            }
            if (mp_mcq_score(use, ctx_ids, n_ctx, keep, (const int32_t *const *)cont_ids, n_cont, (size_t)c->n, res,
                             NULL, &err))
                return fprintf(stderr, "score: %s\n", err.msg), 1;
            for (int j = 0; j < c->n; j++) {
                if (pass) {
                    CHECK(memcmp(&res[j].loglik, &ll0[k][j], sizeof(double)) == 0,
                          "case %d choice %d: %.17g with a fresh scorer vs %.17g after other items", k, j,
                          res[j].loglik, ll0[k][j]);
                    continue;
                }
                ll0[k][j] = res[j].loglik;
                /* brute force: one forward over ctx + cont from an empty cache */
                size_t T = n_ctx + n_cont[j];
                int32_t *all = malloc(T * sizeof *all);
                memcpy(all, ctx_ids, n_ctx * sizeof *all);
                memcpy(all + n_ctx, cont_ids[j], n_cont[j] * sizeof *all);
                mp_state_reset(st2);
                if (mp_forward(st2, all, T - 1, logits, 0, NULL, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
                double lp = 0;
                int greedy = 1;
                for (size_t t = n_ctx - 1; t + 1 < T; t++) {
                    const float *row = logits + t * (size_t)V;
                    lp += mp_logprob(row, V, all[t + 1]);
                    int am = 0;
                    for (int v = 1; v < V; v++)
                        if (row[v] > row[am]) am = v;
                    greedy &= am == all[t + 1];
                }
                CHECK(fabs(lp - res[j].loglik) <= 1e-4 * (1 + fabs(lp)), "case %d choice %d: %.9g vs full forward %.9g",
                      k, j, res[j].loglik, lp);
                CHECK(res[j].n_tokens == (int)n_cont[j], "case %d: token count", k);
                CHECK(res[j].is_greedy == greedy, "case %d choice %d: is_greedy %d vs %d", k, j, res[j].is_greedy,
                      greedy);
                fprintf(out, "%s\n {\"ids\": [", first ? "" : ",");
                first = 0;
                for (size_t t = 0; t < T; t++) fprintf(out, "%s%d", t ? ", " : "", all[t]);
                fprintf(out, "], \"n_ctx\": %zu, \"loglik\": %.17g}", n_ctx, res[j].loglik);
                free(all);
            }
            free(ctx_ids);
            for (int j = 0; j < c->n; j++) free(cont_ids[j]);
        }
    }
    fputs("\n]\n", out);
    fclose(out);
    /* batched: every case twice (reverse order, then in order) through 3 slots,
     * so chunks mix cases and slots hold other prefixes: bit-identical */
    {
        int32_t *ctx_ids[2 * NC], *cont_ids[2 * NC][4];
        size_t n_ctx[2 * NC], n_cont[2 * NC][4];
        mp_mcq_result res[2 * NC][4];
        mp_mcq_item items[2 * NC];
        memset(cont_ids, 0, sizeof cont_ids);
        for (int x = 0; x < 2 * NC; x++) {
            int k = x < NC ? NC - 1 - x : x - NC;
            const tcase *c = &CASES[k];
            for (int j = 0; j < c->n; j++) {
                int32_t *xi;
                size_t nx;
                if (mp_mcq_encode_pair(tok, 1, c->ctx, strlen(c->ctx), c->conts[j], strlen(c->conts[j]), &xi, &nx,
                                       &cont_ids[x][j], &n_cont[x][j], &err))
                    return fprintf(stderr, "encode: %s\n", err.msg), 1;
                if (j == 0) ctx_ids[x] = xi, n_ctx[x] = nx;
                else free(xi);
            }
            size_t keep = 0;
            if (*c->prefix) {
                int32_t *p;
                size_t np;
                mp_tokenizer_encode(tok, c->prefix, strlen(c->prefix), 1, &p, &np, &err);
                keep = mp_mcq_common_prefix(p, np, ctx_ids[x], n_ctx[x]);
                free(p);
            }
            items[x] = (mp_mcq_item){ctx_ids[x], n_ctx[x], keep, (const int32_t *const *)cont_ids[x], n_cont[x],
                                     (size_t)c->n, res[x], 0};
        }
        CHECK(mp_mcq_slots(qb) == 3, "batched scorer has %d slots", mp_mcq_slots(qb));
        if (mp_mcq_score_batch(qb, items, 2 * NC, &err)) return fprintf(stderr, "batch: %s\n", err.msg), 1;
        for (int x = 0; x < 2 * NC; x++) {
            int k = x < NC ? NC - 1 - x : x - NC;
            for (int j = 0; j < CASES[k].n; j++) {
                CHECK(memcmp(&res[x][j].loglik, &ll0[k][j], sizeof(double)) == 0,
                      "batched item %d (case %d) choice %d: %.17g vs one by one %.17g", x, k, j, res[x][j].loglik,
                      ll0[k][j]);
                free(cont_ids[x][j]);
            }
            free(ctx_ids[x]);
        }
    }
    /* errors: empty continuation, too long */
    int32_t one = 1, *pc = &one;
    size_t zero = 0;
    mp_mcq_result r;
    CHECK(mp_mcq_score(q, &one, 1, 0, (const int32_t *const *)&pc, &zero, 1, &r, NULL, &err) == MP_EINPUT,
          "empty continuation accepted");
    /* over-long prompts: each choice keeps the last max_ctx tokens of its own
     * context + continuation[:-1] (the harness's per-request cut), so a 1-token
     * choice keeps more context than a 6-token one */
    {
        const int L = 16;
        mp_state *sts = NULL; /* the reference forward */
        mp_engine *es = NULL, *es3 = NULL;
        mp_mcq *qs = NULL, *qs3 = NULL;
        if (mp_state_create(m, L, 0, &sts, &err) || mp_engine_create(m, MP_DEVICE_CPU, L, 0, &es, &err) ||
            mp_engine_create_slots(m, MP_DEVICE_CPU, 3, L, 0, &es3, &err) || mp_mcq_create(es, V, &qs, &err) ||
            mp_mcq_create(es3, V, &qs3, &err))
            return fprintf(stderr, "setup short: %s\n", err.msg), 1;
        int32_t ctx[24], c1[1] = {7 % V}, c6[6];
        for (int i = 0; i < 24; i++) ctx[i] = (100 + 37 * i) % V;
        for (int i = 0; i < 6; i++) c6[i] = (11 + 53 * i) % V;
        const int32_t *cs[2] = {c1, c6};
        size_t ns[2] = {1, 6};
        mp_mcq_result rr[2];
        int trunc = 0;
        if (mp_mcq_score(qs, ctx, 24, 0, cs, ns, 2, rr, &trunc, &err)) return fprintf(stderr, "score short: %s\n", err.msg), 1;
        CHECK(trunc == 1, "truncation not reported");
        for (int j = 0; j < 2; j++) {
            int32_t all[32];
            size_t T = 24 + ns[j];
            memcpy(all, ctx, 24 * sizeof *all);
            memcpy(all + 24, cs[j], ns[j] * sizeof *all);
            const int32_t *inp = all + (T - (size_t)L - 1); /* (ctx + cont)[-(L+1):][:-1] */
            mp_state_reset(sts);
            if (mp_forward(sts, inp, (size_t)L, logits, 0, NULL, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
            double lp = 0;
            for (size_t t = (size_t)L - ns[j]; t < (size_t)L; t++) lp += mp_logprob(logits + t * (size_t)V, V, inp[t + 1]);
            CHECK(fabs(lp - rr[j].loglik) <= 1e-4 * (1 + fabs(lp)), "truncated choice %d: %.9g vs per-request cut %.9g",
                  j, rr[j].loglik, lp);
        }
        /* the batched path: the overflowing item next to a fitting one, on 3 slots */
        mp_mcq_result rb[2], rf[1];
        const int32_t *c1only[1] = {c1};
        size_t n1[1] = {1};
        mp_mcq_item items[2] = {{ctx, 24, 0, cs, ns, 2, rb, 0}, {ctx + 14, 10, 0, c1only, n1, 1, rf, 0}};
        if (mp_mcq_score_batch(qs3, items, 2, &err)) return fprintf(stderr, "batch short: %s\n", err.msg), 1;
        CHECK(items[0].truncated == 1 && items[1].truncated == 0 && rb[0].loglik == rr[0].loglik &&
                  rb[1].loglik == rr[1].loglik,
              "batched per-request truncation differs from one by one");
        mp_mcq_free(qs);
        mp_mcq_free(qs3);
        mp_engine_free(es);
        mp_engine_free(es3);
        mp_state_free(sts);
    }
    free(logits);
    mp_mcq_free(q);
    mp_mcq_free(q2);
    mp_mcq_free(qb);
    mp_engine_free(e);
    mp_engine_free(e2);
    mp_engine_free(eb);
    mp_state_free(st2);
    mp_tokenizer_free(tok);
    mp_model_free(m);
    printf("test_mcq: %d failures\n", failures);
    return failures ? 1 : 0;
}
