/* core/eval/eval_mc.h — runs a multiple-choice task (core/eval/eval_tasks prompts,
 * core/eval/mcq scoring) over a set of documents and accumulates acc / acc_norm
 * the way lm-evaluation-harness does: pred = argmax of the summed
 * log-likelihood (first maximum on ties), pred_norm = argmax of loglik divided
 * by the choice's length in characters.
 *
 * Few-shot examples: MMLU takes the first k dev questions (the harness's
 * first_n sampler); the other tasks have no staged train split, so they take
 * the first k documents of the evaluation split other than the item itself
 * (a documented deviation, docs/eval.md).
 *
 * Ownership: the runner borrows tok, q, prog and items; the caller keeps them
 * alive. items (may be NULL) receives one JSON line per item, doubles printed
 * with 17 significant digits so that runs can be compared bit for bit.
 */
#ifndef MP_EVAL_MC_H
#define MP_EVAL_MC_H

#include <stdint.h>
#include <stdio.h>

#include "core/util/error.h"
#include "core/eval/eval_result.h"
#include "core/eval/eval_tasks.h"
#include "core/eval/mcq.h"
#include "core/util/progress.h"
#include "core/text/tokenizer.h"

typedef struct mp_mc_runner {
    const mp_tokenizer *tok;
    mp_mcq *q;
    int add_bos;
    mp_progress *prog;   /* may be NULL; advanced by `batch` items at a time */
    FILE *items;         /* may be NULL; flushed every `batch` items */
    int batch;           /* items per progress / flush unit (>= 1); never changes scores */
    size_t truncated;    /* items whose context was cut on the left (context window) */
    /* private: encoded description + few-shot prefix of the current task */
    char *prefix;
    int32_t *prefix_ids;
    size_t n_prefix_ids;
    size_t pending;
} mp_mc_runner;

typedef struct mp_mc_score {
    size_t n, correct, correct_norm;
} mp_mc_score;

/* Score the first `limit` docs (0 = all) of task. shot_pool/n_shots: few-shot
 * source (MMLU: the dev set; NULL: docs itself, skipping the item).
 * @return 0, MP_EINPUT (a prompt the tokenizer / context cannot take) or a
 *         forward error. */
int mp_mc_run(mp_mc_runner *r, mp_mc_task task, const char *subject, const mp_mc_set *docs, size_t limit,
              const mp_mc_set *shot_pool, int n_shots, mp_mc_score *out, mp_error *err);

/* MMLU over the named subjects (NULL / 0: all 57 of subjects.tsv, in its
 * order): shots from the dev split (first n_shots), the first `limit` test
 * questions per subject. Adds rows to res: "subject" (per subject), "category"
 * (the paper's 14 MMLU-Pro style categories), "supercategory" (STEM,
 * humanities, social sciences, other) and "average" rows "mmlu" (accuracy over
 * all questions, the harness's size-weighted group score) and
 * "mmlu_subject_macro" (mean of subject accuracies). *acc (may be NULL) gets
 * the "mmlu" value. Progress total, when r->prog is set, is up to the caller.
 * @return 0, MP_EINPUT ("unknown MMLU subject ..."), MP_EIO or a scoring error. */
int mp_mmlu_run(mp_mc_runner *r, const char *data_dir, const char *const *subjects, size_t n_subjects, int n_shots,
                size_t limit, mp_eval_result *res, double *acc, mp_error *err);

/* Questions mp_mmlu_run will score (for a progress total), from subjects.tsv. */
int mp_mmlu_count(const char *data_dir, const char *const *subjects, size_t n_subjects, size_t limit, size_t *n,
                  mp_error *err);

/* Release the runner's private buffers (not the borrowed objects). */
void mp_mc_runner_free(mp_mc_runner *r);

#endif
