/* core/model/sampling.h — token selection from logits (greedy, temperature, top-p)
 * with a seeded, platform-independent RNG, and log-probabilities for scoring.
 * Results depend only on the logits and the seed. */
#ifndef MP_SAMPLING_H
#define MP_SAMPLING_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"

typedef struct mp_rng {
    uint64_t s;
} mp_rng;

void mp_rng_seed(mp_rng *r, uint64_t seed);
uint64_t mp_rng_next(mp_rng *r);
double mp_rng_uniform(mp_rng *r); /* [0, 1) */

typedef struct mp_sampler {
    int vocab;
    double temperature;  /* 0 = greedy (argmax, lowest id on ties) */
    double top_p;        /* nucleus mass in (0, 1] */
    mp_rng rng;
    float *probs;        /* [vocab] scratch, owned */
    int32_t *order;      /* [vocab] scratch, owned */
} mp_sampler;

int mp_sampler_init(mp_sampler *s, int vocab, double temperature, double top_p, uint64_t seed, mp_error *err);
void mp_sampler_free(mp_sampler *s);
/* Pick the next token id from logits [vocab]. */
int mp_sampler_pick(mp_sampler *s, const float *logits);

/* log softmax(logits)[target], computed in double. */
double mp_logprob(const float *logits, int vocab, int target);

#endif
