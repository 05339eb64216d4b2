/* core/eval/eval_stats.h — uncertainty for evaluation numbers: bootstrap
 * standard errors (pass@k over problems) and paired comparisons of two runs
 * over the same items (`eval compare`): a paired bootstrap confidence
 * interval of the difference, and McNemar's exact test for 0/1 scores.
 * Resampling uses core/eval/pyrandom seeded with a fixed seed, so a report is
 * reproducible bit for bit.
 *
 * Ownership: inputs are borrowed; outputs are plain values.
 */
#ifndef MP_EVAL_STATS_H
#define MP_EVAL_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"

/* Bootstrap standard error of the mean of x[0..n) (resampling items with
 * replacement, b resamples, sample standard deviation of the resampled means).
 * NAN for n < 2. @return 0 or MP_ENOMEM. */
int mp_bootstrap_se(const double *x, size_t n, int b, uint64_t seed, double *se, mp_error *err);

typedef struct mp_paired {
    double delta;      /* statistic(masked) - statistic(base) */
    double lo, hi;     /* percentile bootstrap interval of delta at `level` */
    double se;         /* bootstrap standard error of delta */
    double p_mcnemar;  /* exact two-sided McNemar p-value (0/1 items), NAN otherwise */
    long discordant[2];/* base right & masked wrong, base wrong & masked right (0/1 items) */
    int distinguishable; /* the interval excludes 0 */
} mp_paired;

/* Paired comparison of two runs over the same n items. Unweighted (wa = wb =
 * NULL): the statistic is the mean (accuracy for 0/1 scores; McNemar's test
 * is added when every item is 0 or 1). Weighted: the statistic is
 * exp(sum a / sum wa) (perplexity from per-document NLL sums and token
 * counts). The bootstrap resamples item indices jointly for both runs.
 * level: e.g. 0.95. @return 0, MP_EINPUT (n < 2, non-finite or negative
 * weights), MP_ENOMEM. */
int mp_paired_compare(const double *a, const double *wa, const double *b, const double *wb, size_t n, int boots,
                      double level, uint64_t seed, mp_paired *out, mp_error *err);

#endif
