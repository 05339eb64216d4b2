/* analysis/analysis.h — expert scoring from a collect store (docs/analysis.md):
 *
 * Specialization (the paper's criterion, Monet §5 / App. knowledge unlearning):
 * for a label field F (lang, domain, ...) and each expert e of a router group,
 * its routing probability for label c is p_e(c) = measure over the tokens
 * labelled c; e is a specialist of c* = argmax_c p_e(c) when
 * p_e(c*) >= ratio * p_e(c2) (c2 the second most activated label; ratio 2 in
 * the paper) and e was active on at least min_count tokens. Measures:
 *   MEAN_W: mean routing score  sum_{t in c} w_e(t) / n_tokens(c)  (inactive
 *           tokens count 0) — the paper's "routing probability", our default;
 *   FREQ:   activation frequency  n_active_e(c) / n_tokens(c).
 *
 * Correlation: Pearson r between an expert's routing score and a numeric
 * score (toxicity), per token (x = w_e(t), 0 when inactive; y = the token's
 * document score) or per document (x = mean of w_e over the document's
 * tokens), from the store's sufficient statistics.
 *
 * Both stream the store's statistics tables; memory is O(labels) per expert
 * plus the result list. Ownership: results are malloc'ed; *_free releases.
 */
#ifndef MP_ANALYSIS_H
#define MP_ANALYSIS_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"
#include "core/store/store.h"

typedef enum { MP_MEASURE_MEAN_W = 0, MP_MEASURE_FREQ = 1 } mp_measure;

typedef struct mp_spec_opts {
    const char *field;     /* label field, e.g. "lang" */
    mp_measure measure;
    double ratio;          /* skew threshold, paper: 2 */
    int64_t min_count;     /* minimum active tokens of the expert (all labels) */
} mp_spec_opts;

typedef struct mp_spec_expert {
    int group;
    uint32_t expert;       /* flat id i*E + j */
    int label;             /* index into mp_spec_result.labels of the best label */
    double best, second;   /* measure for the best and second label (second 0 when none) */
    double skew;           /* best / second; INFINITY when second == 0 */
    int64_t n_active;      /* active tokens, all labels */
    int specialist;        /* skew >= ratio and n_active >= min_count */
} mp_spec_expert;

typedef struct mp_spec_result {
    int n_groups, E;
    int n_labels;
    char **labels;         /* [n_labels], sorted by name */
    int64_t *label_tokens; /* [n_labels] tokens carrying each label */
    mp_spec_expert *experts; /* every expert with statistics for this field */
    size_t n_experts;
    size_t *specialists;   /* [n_labels * n_groups]: specialist counts */
} mp_spec_result;

/* @return 0, MP_EINPUT (field not collected in this store; < 2 labels) or MP_EIO. */
int mp_specialize(mp_store *st, const mp_spec_opts *opts, mp_spec_result *res, mp_error *err);
void mp_spec_result_free(mp_spec_result *res);

typedef struct mp_corr_expert {
    int group;
    uint32_t expert;
    double r;              /* Pearson correlation (NAN when x has no variance) */
    double n;              /* samples: tokens (per token) or documents (per doc) */
    int64_t n_active;
} mp_corr_expert;

typedef struct mp_corr_result {
    int n_groups, E;
    int per_doc;
    double n;              /* samples */
    double mean_y, sd_y;   /* the score's mean and standard deviation */
    mp_corr_expert *experts; /* every expert with statistics, sorted by r descending (NaN last) */
    size_t n_experts;
} mp_corr_result;

/* @return 0, MP_EINPUT (score field not collected) or MP_EIO. */
int mp_correlate(mp_store *st, const char *field, int per_doc, mp_corr_result *res, mp_error *err);
void mp_corr_result_free(mp_corr_result *res);

/* Router groups and E of the model a store was collected with. */
int mp_analysis_shape(mp_store *st, int *n_groups, int *E, mp_error *err);

/* Pearson r from sufficient statistics (long double, centered). NAN when
 * either variance is 0. Exposed for tests. */
double mp_pearson(double n, double sx, double sy, double sxx, double syy, double sxy);

#endif
