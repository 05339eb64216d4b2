/* core/eval/eval_result.h — the JSON result every `monet-probe eval` writes with
 * --json OUT, and that `eval compare` reads back:
 *   {"format": "monet-probe-eval", "version": 1, "eval": "mmlu",
 *    "model": DIR, "mask": MASK or null, "settings": {free-form},
 *    "metric": "acc", "higher_is_better": true,
 *    "rows": [{"kind": "subject", "name": "anatomy", "n": 135, "value": 0.41,
 *              "value_metric": "acc", "stderr": 0.042, "acc": 0.41, "acc_norm": null,
 *              "extra": null, "items": [1, 0, ...], "item_weights": null}, ...]}
 * kind groups rows (subject, category, supercategory, task, label, average);
 * value is the headline metric of the row (accuracy, or perplexity for ppl);
 * value_metric names it ("acc", "acc_norm", "pass@1", "toxicity_probability",
 * ...; null when not recorded); stderr is its standard error (lm-eval's
 * acc_stderr: sample standard deviation of the per-item scores / sqrt(n);
 * pooled over subtasks for groups; bootstrap for pass@k). items, when present,
 * are the per-item scores behind value in a fixed item order (0/1 for
 * accuracy; per-document NLL sums with item_weights = tokens for perplexity),
 * which `eval compare` pairs across two results. Fields after "extra" are
 * optional on load (results written before them still load).
 *
 * Ownership: the result owns every string and row; mp_eval_result_free
 * releases them (NULL: no-op).
 */
#ifndef MP_EVAL_RESULT_H
#define MP_EVAL_RESULT_H

#include <stddef.h>

#include "core/util/error.h"

#define MP_EVAL_RESULT_FORMAT "monet-probe-eval"
#define MP_EVAL_RESULT_VERSION 1

typedef struct mp_eval_row {
    char *kind, *name;
    size_t n;           /* items (questions, documents) behind the row */
    double value;       /* headline metric */
    double acc, acc_norm; /* NAN when not applicable */
    double extra;       /* ppl: mean NLL; else NAN */
    double se;          /* standard error of value, NAN when unknown */
    char *value_metric; /* which metric value is ("acc", "acc_norm", ...), NULL = not recorded */
    double *items;      /* [n_items] per-item scores behind value (owned), NULL = none */
    double *item_w;     /* [n_items] per-item weights (ppl: tokens), NULL = all 1 */
    size_t n_items;
} mp_eval_row;

typedef struct mp_eval_result {
    char *eval, *model, *mask, *metric;
    char *settings_json; /* a JSON object as text (owned), may be NULL */
    int higher_is_better;
    mp_eval_row *rows;
    size_t n_rows, cap;
} mp_eval_result;

/* @return 0 or MP_ENOMEM. Strings are copied; mask may be NULL. */
int mp_eval_result_init(mp_eval_result *r, const char *eval, const char *model, const char *mask,
                        const char *metric, int higher_is_better, mp_error *err);
int mp_eval_result_add(mp_eval_result *r, const char *kind, const char *name, size_t n, double value, double acc,
                       double acc_norm, double extra, mp_error *err);
/* Annotate the last row added: its standard error, which metric value is
 * (copied; NULL = unchanged) and its per-item scores (copied; items NULL =
 * none; w NULL = unweighted). @return 0, MP_ENOMEM, MP_EINTERNAL (no row). */
int mp_eval_result_annotate(mp_eval_result *r, double se, const char *value_metric, const double *items,
                            const double *w, size_t n_items, mp_error *err);
/* lm-eval's mean_stderr: sample standard deviation (n - 1) of x / sqrt(n); NAN for n < 2. */
double mp_stderr_mean(const double *x, size_t n);
/* The same for a 0/1 score with `hits` ones out of n: sqrt(p (1 - p) / (n - 1)). */
double mp_stderr_binary(size_t hits, size_t n);
/* lm-eval's pooled_sample_stderr for a size-weighted group mean of subtasks. */
double mp_stderr_pooled(const double *se, const size_t *sizes, size_t k);

/* First row of that kind and name, or NULL. */
const mp_eval_row *mp_eval_result_find(const mp_eval_result *r, const char *kind, const char *name);
/* @return 0 or MP_EIO. */
int mp_eval_result_save(const mp_eval_result *r, const char *path, mp_error *err);
/* @return 0, MP_EIO or MP_EINPUT ("<path>: <problem>", with a hint when the
 *         file is not a monet-probe eval result or has another version). */
int mp_eval_result_load(const char *path, mp_eval_result *r, mp_error *err);
void mp_eval_result_free(mp_eval_result *r);

#endif
