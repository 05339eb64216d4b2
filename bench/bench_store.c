/* bench/bench_store.c — collect with a free forward: what the store side of
 * collect (accumulators, evidence, transactions on the store thread) sustains
 * at a model's shape, i.e. the most collect can reach behind a forward of any
 * speed (a GPU's).
 *
 * It runs the real mp_collect_run over a corpus, on a backend table that only
 * routes: router logits are N(0,1) draws, a deterministic function of (token
 * id, position, group, factor, head, expert), and mp_router_route applies the
 * model's own rule (threshold Phi^-1(1 - k/E), at least one expert per head),
 * which is how a random-weight checkpoint of that shape routes. Trained models
 * route more unevenly; the figure is for the shape, not for a checkpoint.
 * Nothing else is computed (no attention, experts or logits), so the reading
 * thread's share is the tokenizer and these draws.
 *
 * usage: bench_store MODEL_DIR CORPUS OUT.db --max-tokens N [--window W]
 *                    [--text-field F] [--label-field F] [--top-k K]
 * OUT.db is overwritten. Prints one JSON object: tokens, seconds,
 * tokens_per_s, store_thread_s, commit_s, waited_for_store_s (the reading
 * thread's wait: close to seconds when the store is the bound), the shape
 * and the store's size (bench/bench_collect.sh adds the hits per token from
 * the store's expert_stats). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/backend.h"
#include "core/model/routing.h"
#include "core/store/collect.h"
#include "core/store/topk.h"

enum { NORMALS = 1 << 16 };
static float g_normal[NORMALS]; /* N(0,1) draws, filled once (Box-Muller on a fixed LCG) */

static void normals_init(void) {
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < NORMALS; i += 2) {
        double u[2];
        for (int k = 0; k < 2; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            u[k] = ((double)(s >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
        }
        double r = sqrt(-2 * log(u[0]));
        g_normal[i] = (float)(r * cos(2 * M_PI * u[1]));
        g_normal[i + 1] = (float)(r * sin(2 * M_PI * u[1]));
    }
}

typedef struct route_state {
    const mp_config *cfg;
    int pos, max_ctx;
    float *z[2];        /* [n][Hm*E] logits of factor 1 and 2 */
    size_t cap;         /* tokens z holds */
    float *zero, *one;  /* [Hm] running statistics: mean 0, variance 1 */
    double threshold;
} route_state;

static void route_destroy(void *p) {
    route_state *s = p;
    if (!s) return;
    free(s->z[0]);
    free(s->z[1]);
    free(s->zero);
    free(s->one);
    free(s);
}

static int route_create(const mp_model *m, int max_ctx, int max_chunk, void **out, mp_error *err) {
    (void)max_chunk;
    route_state *s = calloc(1, sizeof *s);
    int Hm = m->cfg.moe_heads;
    if (s) s->zero = calloc((size_t)Hm, sizeof *s->zero), s->one = malloc((size_t)Hm * sizeof *s->one);
    if (!s || !s->zero || !s->one) {
        route_destroy(s);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    for (int h = 0; h < Hm; h++) s->one[h] = 1;
    s->cfg = &m->cfg;
    s->max_ctx = max_ctx;
    s->threshold = mp_router_threshold(m->cfg.moe_topk, m->cfg.moe_experts);
    *out = s;
    return 0;
}

static void route_reset(void *p) { ((route_state *)p)->pos = 0; }
static int route_pos(const void *p) { return ((const route_state *)p)->pos; }
static int route_max_ctx(const void *p) { return ((const route_state *)p)->max_ctx; }
static int route_rewind(void *p, int pos, mp_error *err) {
    route_state *s = p;
    MP_FAIL_IF(pos < 0 || pos > s->pos, err, MP_EINPUT, "rewind to %d of %d tokens", pos, s->pos);
    s->pos = pos;
    return 0;
}
static int route_set_mask(void *p, const mp_mask *mask, mp_error *err) {
    (void)p, (void)mask;
    return mp_fail(err, MP_EUNSUPPORTED, "bench_store: the routing-only backend has no mask");
}
static int route_set_steering(void *p, const mp_steer *list, size_t n, mp_error *err) {
    (void)p, (void)list, (void)n;
    return mp_fail(err, MP_EUNSUPPORTED, "bench_store: the routing-only backend has no steering");
}

static int route_forward(void *p, const int32_t *ids, size_t n, float *logits, int last_only, mp_routing *rt,
                         mp_error *err) {
    (void)last_only;
    route_state *s = p;
    MP_FAIL_IF(logits, err, MP_EUNSUPPORTED, "bench_store: the routing-only backend computes no logits");
    MP_FAIL_IF(s->pos + (long)n > s->max_ctx, err, MP_EINPUT, "%zu tokens past the context of %d", n, s->max_ctx);
    const int Hm = s->cfg->moe_heads, E = s->cfg->moe_experts;
    const size_t row = (size_t)Hm * (size_t)E;
    if (n > s->cap) {
        for (int f = 0; f < 2; f++) {
            float *z = realloc(s->z[f], n * row * sizeof *z);
            if (!z) return mp_fail(err, MP_ENOMEM, "out of memory");
            s->z[f] = z;
        }
        s->cap = n;
    }
    for (int g = 0; rt && g < rt->n_groups; g++) {
        for (size_t t = 0; t < n; t++)
            for (int f = 0; f < 2; f++) {
                uint64_t key = ((uint64_t)(uint32_t)ids[t] << 32 | (uint64_t)(uint32_t)(s->pos + (int)t)) * 31 +
                               (uint64_t)(g * 2 + f);
                float *z = s->z[f] + t * row;
                for (size_t x = 0; x < row; x++) z[x] = g_normal[mp_mix64(key * 0x100000001b3ULL + x) & (NORMALS - 1)];
            }
        MP_TRY(mp_router_route(s->z[0], s->z[1], (int)n, Hm, E, s->zero, s->one, s->zero, s->one, s->threshold,
                               &rt->groups[g], err));
    }
    s->pos += (int)n;
    return 0;
}

static int route_devices(char *desc, size_t cap) {
    snprintf(desc, cap, "routing only (bench)");
    return 1;
}

static int route_prefill(void *const *states, const mp_engine_batch *b, int vocab, mp_error *err);

static const mp_backend_ops ROUTE_OPS = {"route-only",   route_devices,   route_create,   route_destroy,
                                         route_reset,    route_pos,       route_max_ctx,  route_rewind,
                                         route_set_mask, route_set_steering, route_forward, route_prefill,
                                         0,              NULL};

static int route_prefill(void *const *states, const mp_engine_batch *b, int vocab, mp_error *err) {
    return mp_engine_prefill_each(&ROUTE_OPS, states, b, vocab, err);
}

static int usage(void) {
    fprintf(stderr, "usage: bench_store MODEL_DIR CORPUS OUT.db --max-tokens N [--window W] [--text-field F]\n"
                    "                   [--label-field F] [--top-k K]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 4) return usage();
    mp_collect_opts o = {.model_dir = argv[1], .corpus = argv[2], .out = argv[3], .force_new = 1, .shard_n = 1,
                         .backend = &ROUTE_OPS};
    for (int i = 4; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return usage();
        if (!strcmp(a, "--max-tokens")) o.max_tokens = atoll(v);
        else if (!strcmp(a, "--window")) o.window = atoi(v);
        else if (!strcmp(a, "--text-field")) o.text_field = v;
        else if (!strcmp(a, "--top-k")) o.top_k = atoi(v);
        else if (!strcmp(a, "--label-field") && o.n_labels < MP_CORPUS_MAX_LABELS) o.labels[o.n_labels++] = v;
        else return usage();
        i++;
    }
    if (o.max_tokens <= 0) return usage();
    normals_init();
    mp_collect_summary sum;
    mp_error err = {0};
    if (mp_collect_run(&o, &sum, &err) < 0) {
        fprintf(stderr, "bench_store: %s\n", err.msg);
        return 1;
    }
    printf("{\"tokens\": %llu, \"windows\": %llu, \"seconds\": %.3f, \"tokens_per_s\": %.1f, "
           "\"store_thread_s\": %.3f, \"commit_s\": %.3f, \"waited_for_store_s\": %.3f, \"n_groups\": %d, "
           "\"E\": %d, \"K\": %d, \"window\": %d, \"topk_rows\": %llu, \"store_bytes\": %lld}\n",
           (unsigned long long)sum.tokens, (unsigned long long)sum.windows, sum.seconds,
           sum.seconds > 0 ? (double)sum.new_tokens / sum.seconds : 0.0, sum.store_thread_s, sum.commit_s,
           sum.waited_s, sum.n_groups, sum.E, sum.K, sum.window, (unsigned long long)sum.topk_rows,
           (long long)sum.store_bytes);
    return 0;
}
