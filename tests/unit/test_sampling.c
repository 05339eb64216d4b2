/* tests/unit/test_sampling.c — greedy/temperature/top-p selection and
 * log-probabilities. */
#include <math.h>

#include "check.h"
#include "core/model/sampling.h"

int main(void) {
    float logits[5] = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f};
    mp_sampler s;
    mp_error err;
    CHECK(mp_sampler_init(&s, 5, 0.0, 1.0, 1, &err) == 0);
    CHECK(mp_sampler_pick(&s, logits) == 1); /* greedy: lowest id among ties */
    mp_sampler_free(&s);

    /* top-p 0.5 keeps only the two tied best tokens (each ~0.4) */
    CHECK(mp_sampler_init(&s, 5, 1.0, 0.5, 7, &err) == 0);
    int counts[5] = {0};
    for (int i = 0; i < 2000; i++) counts[mp_sampler_pick(&s, logits)]++;
    CHECK(counts[0] == 0 && counts[2] == 0 && counts[4] == 0);
    CHECK(counts[1] > 800 && counts[3] > 800);
    mp_sampler_free(&s);

    /* full sampling follows softmax within sampling error */
    CHECK(mp_sampler_init(&s, 5, 1.0, 1.0, 11, &err) == 0);
    int c2[5] = {0};
    const int N = 20000;
    for (int i = 0; i < N; i++) c2[mp_sampler_pick(&s, logits)]++;
    double z = exp(1) + 2 * exp(3) + exp(2) + exp(-1);
    CHECK_CLOSE((double)c2[2] / N, exp(2) / z, 0.015);
    CHECK_CLOSE((double)c2[0] / N, exp(1) / z, 0.01);
    mp_sampler_free(&s);

    /* same seed, same sequence */
    mp_sampler a, b;
    mp_sampler_init(&a, 5, 0.9, 0.95, 42, &err);
    mp_sampler_init(&b, 5, 0.9, 0.95, 42, &err);
    int same = 1;
    for (int i = 0; i < 100; i++) same &= mp_sampler_pick(&a, logits) == mp_sampler_pick(&b, logits);
    CHECK(same);
    mp_sampler_free(&a);
    mp_sampler_free(&b);

    CHECK_CLOSE(mp_logprob(logits, 5, 2), 2.0 - log(z), 1e-9);
    CHECK(mp_sampler_init(&s, 5, -1.0, 1.0, 1, &err) == MP_EINPUT);
    CHECK(mp_sampler_init(&s, 5, 1.0, 0.0, 1, &err) == MP_EINPUT);
    return check_report("test_sampling");
}
