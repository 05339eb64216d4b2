/* bench/bench_cuda_forward.c — GPU forward throughput of the CUDA backend on
 * a random Monet built in memory at a public shape (no checkpoint file):
 * forward only, forward + routing record (what collect consumes), and
 * forward with a fraction of each group's experts masked. Prints one JSON
 * line. A benchmark, not a test (run by bench/bench_gpu.sh).
 * usage: bench_cuda_forward [--shape 1.4b|850m] [--batch B] [--seq S]
 *        [--layers L] [--mask-frac F] [--peak-tflops P] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/backend.h"
#include "core/util/progress.h"
#ifndef MP_HAVE_CUDA
int main(void) {
    printf("skipped: no GPU (CUDA backend not built)\n");
    return 77;
}
#else
#include "cuda/forward_cuda.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void) { /* uniform(-1, 1), xorshift64 */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* Random VD model; weight std ~ 1/sqrt(fan_in) (uniform * sqrt(3)/sqrt(fan_in)). */
static mp_model *random_model(const mp_config *c) {
    const size_t d = (size_t)c->hidden_size, V = (size_t)c->vocab_size, L = (size_t)c->n_layers;
    const size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    const size_t E = (size_t)c->moe_experts, Hm = (size_t)c->moe_heads, eu = E * (size_t)(c->moe_dim / 2), dh = d / 2;
    size_t per_layer = 2 * d + qd * d + 2 * kvd * d + d * qd + 2 * eu * d + 2 * eu + 4 * dh * eu + 2 * E * dh;
    size_t router = 2 * Hm * E * d + 4 * Hm;
    size_t total = 2 * V * d + d + L * per_layer + (size_t)c->n_router_groups * router;
    mp_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->cfg = *c;
    m->arena = malloc(total * sizeof(float));
    m->layers = calloc(L, sizeof *m->layers);
    if (!m->arena || !m->layers) return mp_model_free(m), NULL;
    m->arena_floats = total;
    float *p = m->arena;
#define TAKE(ptr, n, scale, mean)                                          \
    do {                                                                   \
        ptr = p;                                                           \
        for (size_t k_ = 0; k_ < (n); k_++) p[k_] = (mean) + (scale) * frand(); \
        p += (n);                                                          \
    } while (0)
#define TAKEW(w, n, scale, mean)                                           \
    do {                                                                   \
        float *q_ = p;                                                     \
        TAKE(q_, n, scale, mean);                                          \
        (w).f32 = q_;                                                      \
    } while (0)
    const float s3 = 1.7320508f;
    TAKEW(m->embed, V * d, 0.5f * s3, 0.0f);
    TAKEW(m->lm_head, V * d, s3 / sqrtf((float)d), 0.0f);
    TAKE(m->final_norm, d, 0.1f, 1.0f);
    for (size_t l = 0; l < L; l++) {
        mp_layer *y = &m->layers[l];
        TAKE(y->attn_norm, d, 0.1f, 1.0f);
        TAKE(y->ffn_norm, d, 0.1f, 1.0f);
        TAKEW(y->wq, qd * d, s3 / sqrtf((float)d), 0.0f);
        TAKEW(y->wk, kvd * d, s3 / sqrtf((float)d), 0.0f);
        TAKEW(y->wv, kvd * d, s3 / sqrtf((float)d), 0.0f);
        TAKEW(y->wo, d * qd, 0.5f * s3 / sqrtf((float)qd), 0.0f);
        if (l % (size_t)c->moe_groups == 0) {
            TAKEW(y->router_w1, Hm * E * d, s3 / sqrtf((float)d), 0.0f);
            TAKEW(y->router_w2, Hm * E * d, s3 / sqrtf((float)d), 0.0f);
            TAKE(y->bn1_mean, Hm, 0.0f, 0.0f); /* z ~ N(0, ~1): about k active per head */
            TAKE(y->bn1_var, Hm, 0.0f, 1.0f);
            TAKE(y->bn2_mean, Hm, 0.0f, 0.0f);
            TAKE(y->bn2_var, Hm, 0.0f, 1.0f);
        }
        TAKEW(y->u1, eu * d, s3 / sqrtf((float)d), 0.0f);
        TAKEW(y->u2, eu * d, s3 / sqrtf((float)d), 0.0f);
        TAKE(y->u1_bias, eu, 0.2f, 0.0f);
        TAKE(y->u2_bias, eu, 0.2f, 0.0f);
        TAKEW(y->v11, dh * eu, 0.1f, 0.0f);
        TAKEW(y->v12, dh * eu, 0.1f, 0.0f);
        TAKEW(y->v21, dh * eu, 0.1f, 0.0f);
        TAKEW(y->v22, dh * eu, 0.1f, 0.0f);
        TAKE(y->b1, E * dh, 0.1f, 0.0f);
        TAKE(y->b2, E * dh, 0.1f, 0.0f);
    }
#undef TAKE
#undef TAKEW
    return m;
}

int main(int argc, char **argv) {
    const char *shape = "1.4b";
    int batch = 8, seq = 2048, layers = 0;
    double mask_frac = 0.15, peak = 989.0; /* H100 SXM dense bf16 TFLOP/s */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--shape")) shape = argv[i + 1];
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seq")) seq = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--layers")) layers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--mask-frac")) mask_frac = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--peak-tflops")) peak = atof(argv[i + 1]);
        else return fprintf(stderr, "bench_cuda_forward: unknown option %s\n", argv[i]), 2;
    }
    char desc[256];
    if (mp_backend_cuda_devices(desc, sizeof desc) == 0) {
        printf("skipped: no GPU (%s)\n", desc);
        return 77;
    }
    mp_config c;
    memset(&c, 0, sizeof c);
    c.vocab_size = 32000;
    c.n_layers = 24;
    c.rms_norm_eps = 1e-6;
    c.rope_theta = 10000.0;
    c.max_position_embeddings = 4096;
    c.bos_token_id = 1;
    c.eos_token_id = 2;
    c.moe_experts = 512;
    c.moe_heads = 8;
    c.moe_topk = 8;
    c.moe_groups = 4;
    c.decompose = MP_VD;
    if (!strcmp(shape, "1.4b")) {
        c.hidden_size = 2048, c.n_heads = 16, c.moe_dim = 16;
    } else if (!strcmp(shape, "850m")) { /* assumed public VD-850M shape: check its config.json */
        c.hidden_size = 1536, c.n_heads = 12, c.moe_dim = 12;
    } else {
        return fprintf(stderr, "bench_cuda_forward: --shape 1.4b or 850m\n"), 2;
    }
    if (layers > 0) c.n_layers = layers;
    c.n_kv_heads = c.n_heads;
    c.head_dim = c.hidden_size / c.n_heads;
    c.n_router_groups = (c.n_layers + c.moe_groups - 1) / c.moe_groups;
    snprintf(c.torch_dtype, sizeof c.torch_dtype, "bfloat16");
    setenv("MP_CUDA_ROUTE_CAP", "512", 0); /* random routers: never fail on a crowded head */
    mp_error err;
    mp_model *m = random_model(&c);
    mp_cuda_state *s = NULL;
    mp_mask *mask = NULL;
    mp_routing routing = {0};
    if (!m) return fprintf(stderr, "bench_cuda_forward: out of memory\n"), 1;
    if (mp_cuda_state_create(m, seq, seq, &s, &err) < 0 || mp_routing_init(&routing, &c, &err) < 0 ||
        mp_mask_create(c.n_router_groups, c.moe_experts, &mask, &err) < 0)
        return fprintf(stderr, "bench_cuda_forward: %s\n", err.msg), 1;
    for (int r = 0; r < c.n_router_groups; r++) /* mask_frac of each group's E^2 experts, spread evenly */
        for (long f = 0; f < (long)c.moe_experts * c.moe_experts; f++)
            if (fmod((double)f * 0.6180339887, 1.0) < mask_frac &&
                mp_mask_add(mask, r, (int)(f / c.moe_experts), (int)(f % c.moe_experts), &err) < 0)
                return fprintf(stderr, "bench_cuda_forward: %s\n", err.msg), 1;
    int32_t *ids = malloc((size_t)seq * sizeof *ids);
    float *last = malloc((size_t)c.vocab_size * sizeof *last);
    if (!ids || !last) return 1;
    double secs[3] = {0, 0, 0};
    for (int mode = -1; mode < 3; mode++) { /* -1: warm-up; 0 forward, 1 + routing, 2 masked */
        int rc = mp_cuda_state_set_mask(s, mode == 2 ? mask : NULL, &err);
        double t0 = mp_now();
        for (int b = 0; rc == 0 && b < (mode < 0 ? 1 : batch); b++) {
            for (int t = 0; t < seq; t++) ids[t] = (int32_t)((t * 7919 + b * 104729 + 1) % c.vocab_size);
            mp_cuda_state_reset(s);
            if (mode == 1) mp_routing_clear(&routing);
            rc = mp_cuda_forward(s, ids, (size_t)seq, last, 1, mode == 1 ? &routing : NULL, &err);
        }
        if (rc < 0) return fprintf(stderr, "bench_cuda_forward: %s\n", err.msg), 1;
        if (mode >= 0) secs[mode] = mp_now() - t0;
    }
    /* dense GEMM FLOPs per token (lm_head of the last token only, attention scores excluded) */
    const double d = c.hidden_size, E = c.moe_experts, eu = E * (c.moe_dim / 2), Hm = c.moe_heads;
    double per_layer = 2 * (4 * d * d + 2 * eu * d + 4 * (d / 2) * eu + 2 * E * (d / 2));
    double flops_tok = c.n_layers * per_layer + c.n_router_groups * 2 * (2 * Hm * E * d);
    double toks = (double)batch * seq;
    printf("{\"shape\": \"%s\", \"layers\": %d, \"batch\": %d, \"seq\": %d, \"device\": \"%s\", "
           "\"forward_tokens_per_s\": %.1f, \"collect_tokens_per_s\": %.1f, \"collect_vs_forward\": %.3f, "
           "\"masked_frac\": %.3f, \"masked_experts\": %zu, \"masked_tokens_per_s\": %.1f, \"masked_slowdown\": %.3f, "
           "\"gemm_tflops\": %.1f, \"peak_tflops\": %.0f, \"gemm_vs_peak\": %.3f}\n",
           shape, c.n_layers, batch, seq, desc, toks / secs[0], toks / secs[1], secs[0] / secs[1], mask_frac,
           mask->count, toks / secs[2], secs[2] / secs[0], flops_tok * toks / secs[0] / 1e12, peak,
           flops_tok * toks / secs[0] / 1e12 / peak);
    free(ids);
    free(last);
    mp_mask_free(mask);
    mp_routing_free(&routing);
    mp_cuda_state_free(s);
    mp_model_free(m);
    return 0;
}
#endif
