/* core/eval/eval_result.h — the JSON result every `monet-probe eval` writes with
 * --json OUT, and that `eval compare` reads back:
 *   {"format": "monet-probe-eval", "version": 1, "eval": "mmlu",
 *    "model": DIR, "mask": MASK or null, "settings": {free-form},
 *    "metric": "acc", "higher_is_better": true,
 *    "rows": [{"kind": "subject", "name": "anatomy", "n": 135, "value": 0.41,
 *              "acc": 0.41, "acc_norm": null}, ...]}
 * kind groups rows (subject, category, supercategory, task, label, average);
 * value is the headline metric of the row (accuracy, or perplexity for ppl).
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
/* First row of that kind and name, or NULL. */
const mp_eval_row *mp_eval_result_find(const mp_eval_result *r, const char *kind, const char *name);
/* @return 0 or MP_EIO. */
int mp_eval_result_save(const mp_eval_result *r, const char *path, mp_error *err);
/* @return 0, MP_EIO or MP_EINPUT ("<path>: <problem>", with a hint when the
 *         file is not a monet-probe eval result or has another version). */
int mp_eval_result_load(const char *path, mp_eval_result *r, mp_error *err);
void mp_eval_result_free(mp_eval_result *r);

#endif
