/* core/model/sampling.c — seeded sampling and log-probabilities (see sampling.h). */
#include "core/model/sampling.h"

#include <math.h>
#include <stdlib.h>

void mp_rng_seed(mp_rng *r, uint64_t seed) { r->s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull; }

uint64_t mp_rng_next(mp_rng *r) { /* splitmix64 */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double mp_rng_uniform(mp_rng *r) { return (double)(mp_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

int mp_sampler_init(mp_sampler *s, int vocab, double temperature, double top_p, uint64_t seed, mp_error *err) {
    MP_FAIL_IF(!(temperature >= 0), err, MP_EINPUT, "temperature must be >= 0");
    MP_FAIL_IF(!(top_p > 0 && top_p <= 1), err, MP_EINPUT, "top-p must be in (0, 1]");
    s->vocab = vocab;
    s->temperature = temperature;
    s->top_p = top_p;
    mp_rng_seed(&s->rng, seed);
    s->probs = malloc((size_t)vocab * sizeof *s->probs);
    s->order = malloc((size_t)vocab * sizeof *s->order);
    if (!s->probs || !s->order) {
        mp_sampler_free(s);
        return mp_fail(err, MP_ENOMEM, "out of memory (sampler)");
    }
    return 0;
}

void mp_sampler_free(mp_sampler *s) {
    if (!s) return;
    free(s->probs);
    free(s->order);
    s->probs = NULL;
    s->order = NULL;
}

static const float *g_sort_probs; /* qsort has no context argument in C11 */

static int cmp_prob_desc(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    float px = g_sort_probs[x], py = g_sort_probs[y];
    if (px != py) return px > py ? -1 : 1;
    return (x > y) - (x < y);
}

int mp_sampler_pick(mp_sampler *s, const float *logits) {
    int best = 0;
    for (int i = 1; i < s->vocab; i++)
        if (logits[i] > logits[best]) best = i;
    if (s->temperature == 0) return best;
    double mx = logits[best], sum = 0;
    for (int i = 0; i < s->vocab; i++) {
        double p = exp(((double)logits[i] - mx) / s->temperature);
        s->probs[i] = (float)p;
        sum += p;
    }
    for (int i = 0; i < s->vocab; i++) s->probs[i] = (float)(s->probs[i] / sum);
    double u = mp_rng_uniform(&s->rng);
    if (s->top_p >= 1.0) {
        double c = 0;
        for (int i = 0; i < s->vocab; i++) {
            c += s->probs[i];
            if (u < c) return i;
        }
        return best;
    }
    /* nucleus: smallest prefix of ids by descending probability with mass >= top_p.
     * Bisect a probability floor whose kept mass still reaches top_p, so only
     * the few ids above it are sorted (not the whole vocabulary per token). */
    double lo = 0, hi = 0;
    for (int i = 0; i < s->vocab; i++)
        if (s->probs[i] > hi) hi = s->probs[i];
    for (int it = 0; it < 40; it++) {
        double mid = 0.5 * (lo + hi), m = 0;
        for (int i = 0; i < s->vocab; i++)
            if (s->probs[i] >= mid) m += s->probs[i];
        if (m >= s->top_p) lo = mid;
        else hi = mid;
    }
    int n = 0;
    for (int i = 0; i < s->vocab; i++)
        if (s->probs[i] >= lo) s->order[n++] = i;
    g_sort_probs = s->probs;
    qsort(s->order, (size_t)n, sizeof *s->order, cmp_prob_desc);
    double mass = 0;
    int keep = n;
    for (int k = 0; k < n; k++) {
        mass += s->probs[s->order[k]];
        if (mass >= s->top_p) {
            keep = k + 1;
            break;
        }
    }
    double c = 0, r = u * mass; /* renormalized within the nucleus */
    for (int k = 0; k < keep; k++) {
        c += s->probs[s->order[k]];
        if (r < c) return s->order[k];
    }
    return s->order[keep - 1];
}

double mp_logprob(const float *logits, int vocab, int target) {
    double mx = logits[0];
    for (int i = 1; i < vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < vocab; i++) sum += exp((double)logits[i] - mx);
    return (double)logits[target] - mx - log(sum);
}
