/* core/eval/eval_stats.c — bootstrap and McNemar (see eval_stats.h). */
#include "core/eval/eval_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/eval/pyrandom.h"

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double sd(const double *v, size_t n) {
    double m = 0, ss = 0;
    for (size_t i = 0; i < n; i++) m += v[i];
    m /= (double)n;
    for (size_t i = 0; i < n; i++) ss += (v[i] - m) * (v[i] - m);
    return n > 1 ? sqrt(ss / (double)(n - 1)) : NAN;
}

int mp_bootstrap_se(const double *x, size_t n, int b, uint64_t seed, double *se, mp_error *err) {
    *se = NAN;
    if (n < 2 || b < 2) return 0;
    double *means = malloc((size_t)b * sizeof *means);
    MP_FAIL_IF(!means, err, MP_ENOMEM, "out of memory");
    mp_pyrandom r;
    mp_pyrandom_seed(&r, seed);
    for (int k = 0; k < b; k++) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += x[mp_pyrandom_below(&r, n)];
        means[k] = s / (double)n;
    }
    *se = sd(means, (size_t)b);
    free(means);
    return 0;
}

/* log of the binomial coefficient C(n, k). */
static double log_choose(long n, long k) { return lgamma((double)n + 1) - lgamma((double)k + 1) - lgamma((double)(n - k) + 1); }

/* Exact two-sided McNemar: 2 * P(X <= min(b, c)), X ~ Binomial(b + c, 1/2), capped at 1. */
static double mcnemar(long b, long c) {
    long n = b + c, m = b < c ? b : c;
    if (n == 0) return 1.0;
    double p = 0;
    for (long k = 0; k <= m; k++) p += exp(log_choose(n, k) - (double)n * log(2.0));
    p *= 2;
    return p > 1 ? 1 : p;
}

static double stat(const double *v, const double *w, const size_t *idx, size_t n) {
    double s = 0, sw = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = idx ? idx[i] : i;
        s += v[j];
        sw += w ? w[j] : 1.0;
    }
    return w ? exp(s / sw) : s / sw;
}

int mp_paired_compare(const double *a, const double *wa, const double *b, const double *wb, size_t n, int boots,
                      double level, uint64_t seed, mp_paired *out, mp_error *err) {
    memset(out, 0, sizeof *out);
    out->p_mcnemar = NAN;
    MP_FAIL_IF(n < 2, err, MP_EINPUT, "paired comparison needs at least 2 items, got %zu", n);
    MP_FAIL_IF(boots < 10 || !(level > 0 && level < 1), err, MP_EINPUT, "bootstrap: %d resamples at level %g", boots,
               level);
    MP_FAIL_IF(!wa != !wb, err, MP_EINPUT, "paired comparison: weights in only one run");
    int binary = !wa;
    for (size_t i = 0; i < n; i++) {
        MP_FAIL_IF(!isfinite(a[i]) || !isfinite(b[i]), err, MP_EINPUT, "item %zu: non-finite score", i);
        MP_FAIL_IF(wa && (!(wa[i] >= 0) || !(wb[i] >= 0)), err, MP_EINPUT, "item %zu: negative weight", i);
        binary &= (a[i] == 0 || a[i] == 1) && (b[i] == 0 || b[i] == 1);
    }
    out->delta = stat(b, wb, NULL, n) - stat(a, wa, NULL, n);
    if (binary) {
        for (size_t i = 0; i < n; i++) {
            out->discordant[0] += a[i] == 1 && b[i] == 0;
            out->discordant[1] += a[i] == 0 && b[i] == 1;
        }
        out->p_mcnemar = mcnemar(out->discordant[0], out->discordant[1]);
    }
    size_t *idx = malloc(n * sizeof *idx);
    double *d = malloc((size_t)boots * sizeof *d);
    if (!idx || !d) {
        free(idx);
        free(d);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    mp_pyrandom r;
    mp_pyrandom_seed(&r, seed);
    for (int k = 0; k < boots; k++) {
        for (size_t i = 0; i < n; i++) idx[i] = mp_pyrandom_below(&r, n);
        d[k] = stat(b, wb, idx, n) - stat(a, wa, idx, n);
    }
    out->se = sd(d, (size_t)boots);
    qsort(d, (size_t)boots, sizeof *d, cmp_double);
    double tail = (1 - level) / 2;
    size_t lo = (size_t)floor(tail * (boots - 1)), hi = (size_t)ceil((1 - tail) * (boots - 1));
    out->lo = d[lo];
    out->hi = d[hi];
    out->distinguishable = out->lo > 0 || out->hi < 0;
    free(idx);
    free(d);
    return 0;
}
