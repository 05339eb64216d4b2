/* bench/bench_forward.c — CPU prefill throughput of mp_forward on a
 * checkpoint (load time excluded): best of R repetitions of T tokens,
 * optionally with an expert mask applied.
 * usage: bench_forward MODEL_DIR T R [MASK.json]  -> prints one JSON line. */
#include <stdio.h>
#include <stdlib.h>

#include "core/model/forward.h"
#include "core/util/progress.h"

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: bench_forward MODEL_DIR TOKENS REPS [MASK]\n");
        return 2;
    }
    int T = atoi(argv[2]), R = atoi(argv[3]);
    mp_error err;
    mp_model *m = NULL;
    mp_state *st = NULL;
    double t_load = mp_now();
    int rc = mp_model_load(argv[1], &m, &err);
    t_load = mp_now() - t_load;
    if (rc < 0 || mp_state_create(m, T, 0, &st, &err) < 0) {
        fprintf(stderr, "bench_forward: %s\n", err.msg);
        return 1;
    }
    mp_mask *mask = NULL;
    if (argc == 5 && (mp_mask_load(argv[4], &m->cfg, &mask, &err) < 0 || mp_state_set_mask(st, mask, &err) < 0)) {
        fprintf(stderr, "bench_forward: %s\n", err.msg);
        return 1;
    }
    int32_t *ids = malloc((size_t)T * sizeof *ids);
    float *logits = malloc((size_t)m->cfg.vocab_size * sizeof *logits);
    for (int i = 0; i < T; i++) ids[i] = (int32_t)((i * 7919u + 13u) % (unsigned)m->cfg.vocab_size);
    double best = 1e30;
    for (int r = 0; r < R; r++) {
        mp_state_reset(st);
        double t0 = mp_now();
        if (mp_forward(st, ids, (size_t)T, logits, 1, NULL, &err) < 0) {
            fprintf(stderr, "bench_forward: %s\n", err.msg);
            return 1;
        }
        double dt = mp_now() - t0;
        if (dt < best) best = dt;
    }
    printf("{\"tokens\": %d, \"best_s\": %.4f, \"tokens_per_s\": %.1f, \"load_s\": %.3f, \"params\": %zu}\n", T,
           best, T / best, t_load, m->n_params);
    free(ids);
    free(logits);
    mp_state_free(st);
    mp_mask_free(mask);
    mp_model_free(m);
    return 0;
}
