/* tests/cli/test_kvcache.c — the KV cache is exact: logits and routing of a
 * sequence are the same whether it is run in one prefill, in chunks of 3,
 * token by token (decoding), or after a rewind.
 * usage: test_kvcache MODEL_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/forward.h"

enum { T = 23 };

static int run(const mp_model *m, int chunk, int step, float *logits, mp_routing *r) {
    mp_error err;
    mp_state *st = NULL;
    int32_t ids[T];
    for (int i = 0; i < T; i++) ids[i] = (int32_t)((i * 37 + 1) % m->cfg.vocab_size);
    if (mp_state_create(m, T, chunk, &st, &err) < 0) return fprintf(stderr, "%s\n", err.msg), -1;
    const size_t V = (size_t)m->cfg.vocab_size;
    for (int t = 0; t < T; t += step) {
        int n = T - t < step ? T - t : step;
        if (mp_forward(st, ids + t, (size_t)n, logits + (size_t)t * V, 0, r, &err) < 0)
            return fprintf(stderr, "%s\n", err.msg), -1;
    }
    mp_state_free(st);
    return 0;
}

static double max_rel(const float *a, const float *b, size_t n) {
    double mx = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > mx) mx = d;
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    return mx / (scale > 0 ? scale : 1);
}

static int same_routing(const mp_routing *a, const mp_routing *b) {
    for (int g = 0; g < a->n_groups; g++) {
        const mp_route_group *x = &a->groups[g], *y = &b->groups[g];
        if (x->n_tokens != y->n_tokens || x->n_entries != y->n_entries) return 0;
        for (size_t e = 0; e < x->n_entries; e++)
            if (x->idx[e] != y->idx[e] || fabsf(x->p[e] - y->p[e]) > 1e-5f) return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) return fprintf(stderr, "usage: test_kvcache MODEL_DIR\n"), 2;
    mp_error err;
    mp_model *m = NULL;
    if (mp_model_load(argv[1], &m, &err) < 0) return fprintf(stderr, "%s\n", err.msg), 1;
    const size_t V = (size_t)m->cfg.vocab_size;
    float *full = calloc(T * V, sizeof(float)), *other = calloc(T * V, sizeof(float));
    mp_routing r_full, r_other;
    mp_routing_init(&r_full, &m->cfg, &err);
    mp_routing_init(&r_other, &m->cfg, &err);
    int fails = 0;
    if (run(m, 0, T, full, &r_full) < 0) return 1;
    const struct { int chunk, step; const char *name; } cases[] = {
        {3, T, "chunks of 3"}, {0, 1, "token by token"}, {0, 5, "steps of 5"}, {4, 7, "chunk 4, steps of 7"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        mp_routing_clear(&r_other);
        memset(other, 0, T * V * sizeof(float));
        if (run(m, cases[c].chunk, cases[c].step, other, &r_other) < 0) return 1;
        double e = max_rel(other, full, T * V);
        int ok = e <= 1e-5 && same_routing(&r_other, &r_full);
        printf("%-22s max rel logit diff %.2e, routing %s: %s\n", cases[c].name, e,
               same_routing(&r_other, &r_full) ? "identical" : "DIFFERENT", ok ? "ok" : "FAIL");
        fails += !ok;
    }
    /* rewind: score two continuations after a shared prefix */
    mp_state *st = NULL;
    int32_t ids[T];
    for (int i = 0; i < T; i++) ids[i] = (int32_t)((i * 37 + 1) % m->cfg.vocab_size);
    float *last = malloc(V * sizeof(float));
    mp_state_create(m, T, 0, &st, &err);
    mp_forward(st, ids, 10, NULL, 0, NULL, &err);
    int32_t junk[4] = {5, 6, 7, 8};
    mp_forward(st, junk, 4, NULL, 0, NULL, &err);
    int ok_rw = mp_state_rewind(st, 10, &err) == 0 && mp_forward(st, ids + 10, T - 10, last, 1, NULL, &err) == 0;
    double e = ok_rw ? max_rel(last, full + (size_t)(T - 1) * V, V) : 1;
    printf("%-22s max rel logit diff %.2e: %s\n", "rewind", e, ok_rw && e <= 1e-5 ? "ok" : "FAIL");
    fails += !(ok_rw && e <= 1e-5);
    int over = mp_forward(st, ids, 1, NULL, 0, NULL, &err);
    printf("%-22s %s: %s\n", "context full", err.msg, over == MP_EINPUT ? "ok" : "FAIL");
    fails += over != MP_EINPUT;
    mp_state_free(st);
    free(last);
    free(full);
    free(other);
    mp_routing_free(&r_full);
    mp_routing_free(&r_other);
    mp_model_free(m);
    printf("test_kvcache: %s\n", fails ? "FAILED" : "passed");
    return fails ? 1 : 0;
}
