/* tests/forward/test_weights_inplace.c — bf16 weights read in place from the
 * checkpoint mapping (the default) against every matrix widened to float32 at
 * load (MP_WEIGHTS=f32, the previous behaviour), on one checkpoint:
 *  - the load: in place means no float32 copy of the matrices (arena holds
 *    only the vectors), f32 means nothing in place;
 *  - a prefill of T tokens, every position's logits: within 1e-6 relative
 *    (the widened blocks feed sgemm, whose rounding may depend on the block
 *    width; lm_head spans several widening blocks when vocab * d >
 *    MP_LINEAR_SCRATCH), routing identical;
 *  - decoding from an empty cache (the row kernels, which widen bf16 in
 *    registers): logits bit-identical, alone and as a 3-sequence
 *    mp_forward_steps;
 *  - the same under MP_MOE=dense (the V GEMMs through mp_linear).
 * usage: test_weights_inplace MODEL_DIR [--narrow-last-group]
 *   MODEL_DIR a BF16 checkpoint whose lm_head spans several widening blocks;
 *   --narrow-last-group: instead, one whose E is not a multiple of the
 *   experts per widened group of V columns (sparse_down's last group is
 *   narrower). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/forward.h"
#include "core/model/linear_cpu.h"

#include "tests/common/test_check.h"

enum { T = 37, STEPS = 5, B = 3 };

static int load(const char *dir, const char *mode, mp_model **m, mp_error *err) {
    if (mode) setenv("MP_WEIGHTS", mode, 1);
    else unsetenv("MP_WEIGHTS");
    int rc = mp_model_load(dir, m, err);
    unsetenv("MP_WEIGHTS");
    return rc;
}

static double max_rel(const float *a, const float *b, size_t n, size_t *n_diff) {
    double worst = 0, scale = 0;
    *n_diff = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)b[i]));
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&a[i], &b[i], sizeof a[i])) (*n_diff)++;
        const double e = fabs((double)a[i] - (double)b[i]) / (scale > 0 ? scale : 1);
        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e; /* a NaN on either side fails */
    }
    return worst;
}

static int run_case(const mp_model *in, const mp_model *f32, const char *moe) {
    mp_error err;
    const size_t V = (size_t)in->cfg.vocab_size;
    int32_t ids[T + STEPS];
    for (int t = 0; t < T + STEPS; t++) ids[t] = (int32_t)((t * 7919 + 13) % (int)V);
    float *la = malloc(T * V * sizeof *la), *lb = malloc(T * V * sizeof *lb);
    float *sa = malloc(B * V * sizeof *sa), *sb = malloc(V * sizeof *sb);
    mp_state *a = NULL, *b = NULL;
    mp_state *batch[B] = {0};
    mp_routing ra, rb;
    if (!la || !lb || !sa || !sb) return fprintf(stderr, "out of memory\n"), 1;
    TRY(mp_routing_init(&ra, &in->cfg, &err));
    TRY(mp_routing_init(&rb, &f32->cfg, &err));
    TRY(mp_state_create(in, 128, 16, &a, &err)); /* chunks of 16: several prefill chunks */
    TRY(mp_state_create(f32, 128, 16, &b, &err));
    TRY(mp_forward(a, ids, T, la, 0, &ra, &err));
    TRY(mp_forward(b, ids, T, lb, 0, &rb, &err));
    size_t nd;
    double rel = max_rel(la, lb, T * V, &nd);
    printf("%s prefill: %d tokens x %zu logits, max relative difference %.3g, %zu values differ\n", moe, T, V, rel,
           nd);
    CHECK(rel <= 1e-6, "%s prefill logits differ by %.3g relative", moe, rel);
    for (int g = 0; g < ra.n_groups; g++) {
        const mp_route_group *x = &ra.groups[g], *y = &rb.groups[g];
        CHECK(x->n_entries == y->n_entries && !memcmp(x->idx, y->idx, x->n_entries * sizeof *x->idx),
              "%s prefill routing of group %d differs", moe, g);
    }
    /* decoding from an empty cache, one token at a time on both models, bit
     * for bit (after a prefill the caches may differ in the last bits: the
     * widened blocks' sgemm need not round as the whole matrix's) */
    int same = 1;
    mp_state_reset(a);
    mp_state_reset(b);
    for (int k = 0; k < STEPS + 8; k++) {
        TRY(mp_forward(a, &ids[k], 1, la, 1, NULL, &err));
        TRY(mp_forward(b, &ids[k], 1, lb, 1, NULL, &err));
        if (memcmp(la, lb, V * sizeof *la)) same = 0;
    }
    printf("%s decode: %d steps, logits %s\n", moe, STEPS + 8, same ? "bit-identical" : "DIFFER");
    CHECK(same, "%s decoding logits differ between in-place bf16 and float32 weights", moe);
    /* B sequences stepped together on the in-place model = each alone on the float32 one */
    int32_t step_ids[B];
    for (int s = 0; s < B; s++) {
        TRY(mp_state_create(in, 64, 16, &batch[s], &err));
        for (int t = 0; t < 4 + s; t++) TRY(mp_forward(batch[s], ids + s + t, 1, NULL, 1, NULL, &err));
        step_ids[s] = ids[10 + s];
    }
    TRY(mp_forward_steps(batch, B, step_ids, sa, NULL, &err));
    for (int s = 0; s < B; s++) {
        mp_state_reset(b);
        for (int t = 0; t < 4 + s; t++) TRY(mp_forward(b, ids + s + t, 1, NULL, 1, NULL, &err));
        TRY(mp_forward(b, &step_ids[s], 1, sb, 1, NULL, &err));
        CHECK(!memcmp(sa + (size_t)s * V, sb, V * sizeof *sb),
              "%s: sequence %d of a batched step differs from stepping it alone on float32 weights", moe, s);
        mp_state_free(batch[s]);
    }
    mp_state_free(a);
    mp_state_free(b);
    mp_routing_free(&ra);
    mp_routing_free(&rb);
    free(la);
    free(lb);
    free(sa);
    free(sb);
    return 0;
}

int main(int argc, char **argv) {
    const int narrow = argc == 3 && !strcmp(argv[2], "--narrow-last-group");
    if (argc != 2 && !narrow) return fprintf(stderr, "usage: test_weights_inplace MODEL_DIR [--narrow-last-group]\n"), 2;
    mp_error err;
    mp_model *in = NULL, *f32 = NULL;
    TRY(load(argv[1], NULL, &in, &err));
    TRY(load(argv[1], "f32", &f32, &err));
    const size_t V = (size_t)in->cfg.vocab_size, d = (size_t)in->cfg.hidden_size;
    if (narrow) { /* sparse_down widens G = scratch / (2 * d/2 * m/2) experts' columns at a time */
        const size_t E = (size_t)in->cfg.moe_experts, G = MP_LINEAR_SCRATCH / (d * (size_t)(in->cfg.moe_dim / 2));
        CHECK(G < E && E % G != 0, "fixture: E=%zu is a multiple of the group of %zu experts", E, G);
    } else {
        CHECK(V * d > MP_LINEAR_SCRATCH, "fixture too small: lm_head (%zu) fits one widening block", V * d);
    }
    CHECK(in->has_bf16 && in->embed.bf16 && in->layers[0].u1.bf16 && in->layers[0].wq.bf16,
          "BF16 matrices are not read in place");
    CHECK(in->inplace_bytes > 0 && in->arena_floats * 4 < in->inplace_bytes / 10,
          "in place: %zu bytes in place, %zu float32 in the arena", in->inplace_bytes, in->arena_floats * 4);
    CHECK(!f32->has_bf16 && f32->inplace_bytes == 0 && f32->embed.f32 && !f32->embed.bf16,
          "MP_WEIGHTS=f32 left matrices in place");
    printf("in place: %zu bytes of bf16 matrices mapped, %zu bytes of float32 vectors; MP_WEIGHTS=f32: %zu bytes\n",
           in->inplace_bytes, in->arena_floats * 4, f32->arena_floats * 4);
    mp_model *bad = NULL;
    setenv("MP_WEIGHTS", "fp8", 1);
    CHECK(mp_model_load(argv[1], &bad, &err) == MP_EINPUT && strstr(err.msg, "MP_WEIGHTS"),
          "MP_WEIGHTS=fp8 was not refused: %s", err.msg);
    unsetenv("MP_WEIGHTS");
    if (run_case(in, f32, "sparse")) return 1;
    setenv("MP_MOE", "dense", 1); /* read by mp_state_create */
    if (run_case(in, f32, "dense")) return 1;
    unsetenv("MP_MOE");
    mp_model_free(in);
    mp_model_free(f32);
    if (failures) return fprintf(stderr, "%d failure(s)\n", failures), 1;
    printf("ok\n");
    return 0;
}
