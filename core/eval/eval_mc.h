/* core/eval/eval_mc.h — runs a multiple-choice task (core/eval/eval_tasks prompts,
 * core/eval/mcq scoring) over a set of documents and accumulates acc / acc_norm
 * the way lm-evaluation-harness does: pred = argmax of the summed
 * log-likelihood (first maximum on ties), pred_norm = argmax of loglik divided
 * by the choice's length in characters.
 *
 * Few-shot examples, as lm-evaluation-harness v0.4.9.2 draws them: MMLU takes
 * the first k dev questions (first_n sampler); the other tasks draw with one
 * random.Random(1234) per task, carried across the documents in evaluation
 * order (core/eval/pyrandom): rnd.sample(pool, k) from the train split, or
 * rnd.sample(pool, k + 1) minus the item itself, first k kept, when the task's
 * YAML has no test_split (SIQA, PIQA, WinoGrande, HellaSwag, CommonsenseQA).
 * Without a staged train split (PIQA, WinoGrande, HellaSwag, CommonsenseQA)
 * the pool is the evaluation split itself with the k + 1 draw (what the
 * harness does when fewshot split = evaluated split); callers report it.
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
#include "core/eval/pyrandom.h"
#include "core/util/progress.h"
#include "core/text/tokenizer.h"

#define MP_MC_MAX_SHOTS 32 /* 25-shot ARC-Challenge (Open LLM Leaderboard) fits */

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
    double *hit, *hit_norm; /* [n] per-item 0/1 for acc and acc_norm (owned; mp_mc_score_free) */
    size_t cap;
} mp_mc_score;

void mp_mc_score_free(mp_mc_score *s);

/* The few-shot sampler of one task run (described above). */
typedef struct mp_mc_sampler {
    mp_pyrandom rnd;          /* random.Random(1234), carried across documents */
    const mp_mc_set *pool;    /* borrowed */
    int from_eval, first_n, extra;
} mp_mc_sampler;

/* shot_pool NULL: draw from docs itself. Borrows docs / shot_pool. */
void mp_mc_sampler_init(mp_mc_sampler *s, mp_mc_task task, const mp_mc_set *docs, const mp_mc_set *shot_pool);
/* Shots for document i of docs (call for i = 0, 1, ... in order: the RNG state
 * carries over). shots[MP_MC_MAX_SHOTS] receives shallow copies (borrowing the pool's
 * strings), *k their number (< n_shots when the harness's k draw held the item).
 * @return 0, MP_EINPUT (more shots than the pool holds, n_shots > MP_MC_MAX_SHOTS). */
int mp_mc_sampler_pick(mp_mc_sampler *s, const mp_mc_set *docs, size_t i, int n_shots, mp_mc_doc *shots, int *k,
                       mp_error *err);

/* Score the first `limit` docs (0 = all) of task. shot_pool/n_shots: few-shot
 * pool (MMLU: the dev set, first n; others: the train split, random; NULL:
 * docs itself, random k + 1 draw minus the item). out is added to (zero it
 * first; free with mp_mc_score_free).
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
 * "mmlu_subject_macro" (mean of subject accuracies), each with its standard
 * error (subjects: lm-eval's acc_stderr; groups: lm-eval's pooled stderr) and
 * the per-question scores. *acc (may be NULL) gets
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
