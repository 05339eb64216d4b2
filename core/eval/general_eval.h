/* core/eval/general_eval.h — the driver of `eval general` (the paper's general
 * performance: MMLU, ARC-E/C, WinoGrande, PIQA, SIQA, OpenBookQA, HellaSwag,
 * CommonsenseQA and their average) and `eval mmlu`: loads the data, the model
 * and the mask, scores every task (core/eval/eval_mc, core/eval/mcq) and fills
 * a result table. Printing is the caller's (cmd/eval_general.c).
 *
 * Ownership: the config and its strings are the caller's (borrowed for the
 * call); the output owns its result table (mp_general_out_free).
 */
#ifndef MP_GENERAL_EVAL_H
#define MP_GENERAL_EVAL_H

#include <stdint.h>
#include <stdio.h>

#include "core/eval/eval_result.h"
#include "core/model/backend.h"
#include "core/util/error.h"

typedef struct mp_general_cfg {
    const char *model_dir;         /* checkpoint folder */
    const char *mask_path;         /* expert mask file, NULL = none */
    const char *data_dir;          /* staged data folder (DATA/mmlu, DATA/arc, ...) */
    const char *items_path;        /* NULL, or a file for one JSON line per item */
    int mmlu_only;                 /* 1: `eval mmlu` (names = subjects); 0: the suite (names = tasks) */
    const char *const *names;      /* [n_names] subjects or task names ("arc" = both ARC sets); 0 = all */
    size_t n_names;
    int shots;                     /* few-shot examples (0..MP_MC_MAX_SHOTS) */
    size_t limit;                  /* first N items per task / MMLU subject, 0 = all */
    int batch;                     /* items per engine call and per progress / flush unit (>= 1), one
                                      KV slot each; never changes a score */
    mp_device device;              /* engine device (MP_DEVICE_CPU when zeroed; MP_DEVICE_AUTO) */
    int context;                   /* KV-cache length, 0 = max_position_embeddings */
    int add_bos;                   /* BOS before each prompt */
    int metric_acc;                /* general: 1 = acc everywhere, 0 = acc_norm where the harness reports it */
    FILE *progress;                /* progress stream (stderr), NULL = quiet */
} mp_general_cfg;

typedef struct mp_general_out {
    mp_eval_result res;  /* mmlu: subject, category, supercategory, average rows;
                          * general: task, column ("arc"), average ("general") rows */
    int columns;         /* general: columns in the average (ARC counted once) */
    int all_columns;     /* general: every task ran */
    double average;      /* general: the average; mmlu: accuracy over all questions */
    double average_se;   /* its standard error */
    char fewshot_no_train[160]; /* shots > 0: tasks without a staged train split (shots drawn from the
                                   evaluation split instead), space-separated; "" = none */
    uint64_t tokens_run; /* tokens through the model */
    size_t truncated;    /* prompts cut on the left to fit the context */
    int context;         /* the KV-cache length used */
    double seconds;      /* wall time, loading included */
} mp_general_out;

/* Run the evaluation described by cfg and fill *out (zeroed first; free it with
 * mp_general_out_free whatever the return code).
 * @return 0; MP_EINPUT for an unknown task / subject or a prompt the context
 *         cannot take; MP_EIO for missing data (names --data) or an unwritable
 *         items file; model / forward errors. */
int mp_general_eval(const mp_general_cfg *cfg, mp_general_out *out, mp_error *err);

/* Release the result table (NULL: no-op). */
void mp_general_out_free(mp_general_out *out);

#endif
