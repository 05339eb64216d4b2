/* tests/cuda/test_cuda_parity.c — the CUDA forward pass against the CPU
 * reference (STYLE.md 8, 9, 12) on a tiny random checkpoint:
 *   logits (prefill, several chunk sizes), routing active sets and weights,
 *   masked logits (mask built from experts that are really active), steered
 *   logits, KV-cache decode == prefill and rewind on the GPU, and (VD/HD)
 *   device log-softmax against mp_logprob.
 * usage: test_cuda_parity MODEL_DIR
 * Prints "skipped: no GPU" and exits 77 when no CUDA device is visible.
 *
 * Tolerances (why): the GPU keeps weights and every GEMM input in bf16 (8
 * significant bits, unit roundoff 2^-9 ~ 2e-3) with fp32 accumulation; the
 * CPU is fp32 throughout. Each layer rounds its GEMM inputs once or twice,
 * so the relative error of the residual stream grows to a few 1e-3 per
 * layer; logits are compared as max |gpu - cpu| <= 3e-2 * max |cpu| (about
 * ten bf16 roundoffs of headroom) plus NMSE <= 1e-3. Routing is a threshold
 * on bf16-perturbed logits, so a few active sets may differ at knife-edge
 * margins: at most 2% of the (token, factor, head) lists, counted and
 * printed; where the sets agree the weights agree within 1e-2 (absolute,
 * weights are probabilities). GPU decode vs GPU prefill runs the same
 * kernels on different GEMM shapes (cuBLAS may pick other algorithms), so
 * it gets a tighter 1e-2 * max |logit|.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/backend.h"
#include "core/model/forward.h"
#include "core/model/mask.h"
#include "core/model/routing.h"
#include "core/model/sampling.h"
#ifdef MP_HAVE_CUDA
#include "cuda/forward_cuda.h"
#endif
#include "tests/common/test_check.h"

enum { T = 29 };

/* max |a-b| <= rel * max|ref| and NMSE <= nmse_tol; prints the first
 * mismatches with their index (non-finite values count as mismatches). */
static int compare(const char *what, const float *gpu, const float *ref, size_t n, double rel, double nmse_tol) {
    double scale = 0, err = 0, se = 0, sr = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
        sr += (double)ref[i] * ref[i];
    }
    int shown = 0, bad = 0;
    const double tol = rel * (scale > 0 ? scale : 1);
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)gpu[i] - ref[i]);
        if (!isfinite(gpu[i])) d = INFINITY;
        se += d * d;
        if (d > err) err = d;
        if (d > tol) {
            bad++;
            if (shown++ < 5) fprintf(stderr, "  %s[%zu]: gpu %.6g cpu %.6g\n", what, i, gpu[i], ref[i]);
        }
    }
    double nmse = sr > 0 ? se / sr : se;
    printf("%-28s max|err| %.3g (tol %.3g, scale %.3g) nmse %.3g, %d over tol\n", what, err, tol, scale, nmse, bad);
    CHECK(bad == 0 && nmse <= nmse_tol, "%s: %d values over tolerance, nmse %.3g", what, bad, nmse);
    return bad == 0;
}

static void make_ids(const mp_model *m, int32_t *ids) {
    for (int i = 0; i < T; i++) ids[i] = (int32_t)((i * 37 + 5) % m->cfg.vocab_size);
}

/* Logits (and routing when r) of ids on dev, one mp_engine_forward call per
 * `step` tokens, chunk size `chunk`. */
static int run(const mp_model *m, mp_device dev, int chunk, int step, const mp_mask *mask, const mp_steer *steer,
               size_t n_steer, float *logits, mp_routing *r) {
    mp_error err;
    mp_error_clear(&err);
    mp_engine *e = NULL;
    int32_t ids[T];
    make_ids(m, ids);
    const size_t V = (size_t)m->cfg.vocab_size;
    int rc = mp_engine_create(m, dev, T, chunk, &e, &err);
    if (rc == 0 && mask) rc = mp_engine_set_mask(e, mask, &err);
    if (rc == 0 && n_steer) rc = mp_engine_set_steering(e, steer, n_steer, &err);
    for (int t = 0; rc == 0 && t < T; t += step) {
        int n = T - t < step ? T - t : step;
        rc = mp_engine_forward(e, ids + t, (size_t)n, logits + (size_t)t * V, 0, r, &err);
    }
    if (rc < 0) fprintf(stderr, "%s: %s\n", mp_device_name(dev), err.msg);
    mp_engine_free(e);
    return rc;
}

/* Active sets per (group, token, factor, head): count lists whose sets
 * differ; where equal, the max weight difference. */
static void compare_routing(const mp_routing *gpu, const mp_routing *cpu) {
    size_t lists = 0, differ = 0;
    double werr = 0;
    for (int g = 0; g < cpu->n_groups; g++) {
        const mp_route_group *a = &gpu->groups[g], *b = &cpu->groups[g];
        CHECK(a->n_tokens == b->n_tokens, "group %d: %d tokens on the GPU, %d on the CPU", g, a->n_tokens, b->n_tokens);
        if (a->n_tokens != b->n_tokens) return;
        for (int t = 0; t < b->n_tokens; t++)
            for (int f = 0; f < 2; f++)
                for (int h = 0; h < b->Hm; h++) {
                    const int32_t *ia, *ib;
                    const float *pa, *pb;
                    int na = mp_route_get(a, t, f, h, &ia, &pa), nb = mp_route_get(b, t, f, h, &ib, &pb);
                    lists++;
                    if (na != nb || memcmp(ia, ib, (size_t)na * sizeof *ia)) {
                        if (differ++ < 5)
                            fprintf(stderr, "  routing differs: group %d token %d factor %d head %d (%d vs %d experts)\n",
                                    g, t, f, h, na, nb);
                        continue;
                    }
                    for (int k = 0; k < na; k++)
                        if (fabs((double)pa[k] - pb[k]) > werr) werr = fabs((double)pa[k] - pb[k]);
                }
    }
    printf("%-28s %zu of %zu lists differ (knife-edge), max weight err %.3g\n", "routing", differ, lists, werr);
    CHECK(differ <= lists / 50, "routing: %zu of %zu active sets differ (> 2%%)", differ, lists);
    CHECK(werr <= 1e-2, "routing weights differ by %.3g > 1e-2", werr);
}

/* A mask of the two heaviest experts of tokens 0..5 in group 0 (active, so
 * the correction really runs) and one expert of the last group. */
static int build_mask(const mp_model *m, const mp_routing *r, mp_mask **out) {
    mp_error err;
    MP_TRY(mp_mask_create(m->cfg.n_router_groups, m->cfg.moe_experts, out, &err));
    for (int g = 0; g < r->n_groups; g += r->n_groups > 1 ? r->n_groups - 1 : 1)
        for (int t = 0; t < 6; t++) {
            mp_expert_weight *pairs = NULL;
            size_t np = 0;
            MP_TRY(mp_route_expert_pairs(&r->groups[g], t, &pairs, &np, &err));
            for (size_t k = 0; k < np && k < 2; k++) MP_TRY(mp_mask_add(*out, g, pairs[k].i, pairs[k].j, &err));
            free(pairs);
        }
    return 0;
}

int main(int argc, char **argv) {
    char desc[256];
    if (!mp_backend_cuda_built()) {
        printf("skipped: no GPU (CUDA backend not built)\n");
        return 77;
    }
    if (mp_backend_cuda_devices(desc, sizeof desc) == 0) {
        printf("skipped: no GPU (%s)\n", desc);
        return 77;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: test_cuda_parity MODEL_DIR\n");
        return 2;
    }
    printf("cuda: %s\n", desc);
    mp_error err;
    mp_model *m = NULL;
    if (mp_model_load(argv[1], &m, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const mp_config *c = &m->cfg;
    printf("model: %s, d=%d, L=%d, E=%d, Hm=%d, k=%d, G=%d\n", mp_decompose_name(c->decompose), c->hidden_size,
           c->n_layers, c->moe_experts, c->moe_heads, c->moe_topk, c->moe_groups);
    const size_t V = (size_t)c->vocab_size, NL = (size_t)T * V;
    float *cpu = malloc(NL * sizeof *cpu), *gpu = malloc(NL * sizeof *gpu), *cpu_m = malloc(NL * sizeof *cpu_m);
    float *gpu2 = malloc(NL * sizeof *gpu2);
    mp_routing rc_cpu = {0}, rc_gpu = {0};
    mp_mask *mask = NULL;
    if (!cpu || !gpu || !cpu_m || !gpu2 || mp_routing_init(&rc_cpu, c, &err) < 0 || mp_routing_init(&rc_gpu, c, &err) < 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }

    /* 1. logits and routing, one prefill */
    if (run(m, MP_DEVICE_CPU, 0, T, NULL, NULL, 0, cpu, &rc_cpu) < 0 ||
        run(m, MP_DEVICE_CUDA, 0, T, NULL, NULL, 0, gpu, &rc_gpu) < 0)
        return 1;
    compare("logits (prefill)", gpu, cpu, NL, 3e-2, 1e-3);
    compare_routing(&rc_gpu, &rc_cpu);

    /* 2. several chunk sizes on the GPU (chunk 7: five chunks, last partial) */
    if (run(m, MP_DEVICE_CUDA, 7, T, NULL, NULL, 0, gpu2, NULL) < 0) return 1;
    compare("logits (chunk 7)", gpu2, cpu, NL, 3e-2, 1e-3);

    /* 3. KV cache: decode token by token == prefill, on the GPU */
    if (run(m, MP_DEVICE_CUDA, 0, 1, NULL, NULL, 0, gpu2, NULL) < 0) return 1;
    compare("decode vs prefill (gpu)", gpu2, gpu, NL, 1e-2, 1e-4);

    /* 4. masked logits: mask experts that are active */
    if (build_mask(m, &rc_cpu, &mask) < 0) return 1;
    printf("mask: %zu experts\n", mask->count);
    if (run(m, MP_DEVICE_CPU, 0, T, mask, NULL, 0, cpu_m, NULL) < 0 ||
        run(m, MP_DEVICE_CUDA, 0, T, mask, NULL, 0, gpu2, NULL) < 0)
        return 1;
    double moved = 0;
    for (size_t i = 0; i < NL; i++) moved = fmax(moved, fabs((double)cpu_m[i] - cpu[i]));
    printf("%-28s max |masked - unmasked| on the CPU %.3g\n", "mask effect", moved);
    CHECK(moved > 0, "the mask does not change the CPU logits: the test mask is not exercised");
    compare("logits (masked)", gpu2, cpu_m, NL, 3e-2, 1e-3);

    /* 5. steering (an inactive-or-active expert of every group) */
    mp_steer steer[2] = {{0, 1, 2, 0.5f}, {c->n_router_groups - 1, 3 % c->moe_experts, 0, -0.25f}};
    if (run(m, MP_DEVICE_CPU, 0, T, NULL, steer, 2, cpu_m, NULL) < 0 ||
        run(m, MP_DEVICE_CUDA, 0, T, NULL, steer, 2, gpu2, NULL) < 0)
        return 1;
    compare("logits (steered)", gpu2, cpu_m, NL, 3e-2, 1e-3);

#ifdef MP_HAVE_CUDA
    /* 6. rewind, then device log-softmax against mp_logprob of CPU logits */
    {
        int32_t ids[T], tg[T];
        make_ids(m, ids);
        for (int i = 0; i < T; i++) tg[i] = ids[(i + 1) % T];
        double lp[T];
        mp_cuda_state *s = NULL;
        int r = mp_cuda_state_create(m, T, 0, &s, &err);
        if (r == 0) r = mp_cuda_forward(s, ids, T / 2, NULL, 0, NULL, &err);
        if (r == 0) r = mp_cuda_state_rewind(s, 0, &err);
        if (r == 0) r = mp_cuda_forward_logprobs(s, ids, T, tg, lp, &err);
        CHECK(r == 0, "cuda logprobs: %s", err.msg);
        double worst = 0, scale = 0;
        for (int t = 0; r == 0 && t < T; t++) {
            double ref = mp_logprob(cpu + (size_t)t * V, (int)V, tg[t]);
            worst = fmax(worst, fabs(lp[t] - ref));
            scale = fmax(scale, fabs(cpu[(size_t)t * V]));
        }
        for (size_t i = 0; i < NL; i++) scale = fmax(scale, fabs(cpu[i]));
        /* log p moves by at most 2 * max logit error */
        printf("%-28s max|err| %.3g (tol %.3g)\n", "target logprobs", worst, 2 * 3e-2 * scale);
        CHECK(worst <= 2 * 3e-2 * scale, "logprobs differ by %.3g", worst);
        mp_cuda_state_free(s);
    }
#endif

    mp_mask_free(mask);
    mp_routing_free(&rc_cpu);
    mp_routing_free(&rc_gpu);
    free(cpu);
    free(gpu);
    free(gpu2);
    free(cpu_m);
    mp_model_free(m);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
