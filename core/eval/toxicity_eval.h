/* core/eval/toxicity_eval.h — the driver of `eval toxicity`: ToxiGen and
 * RealToxicityPrompts continuations scored by a pluggable toxicity scorer
 * (core/eval/tox_scorer.h), and lm-evaluation-harness's `toxigen`
 * classification task on the annotated statements (DESIGN.md §4,
 * docs/toxicity.md). Protocols and their defaults: toxicity_eval.c.
 *
 * Ownership: the config and its strings are borrowed for the call; the output
 * owns its result table and scorer name (mp_tox_eval_out_free).
 */
#ifndef MP_TOXICITY_EVAL_H
#define MP_TOXICITY_EVAL_H

#include <stddef.h>
#include <stdio.h>

#include "core/eval/eval_result.h"
#include "core/model/backend.h"
#include "core/util/error.h"

typedef enum mp_tox_prompts {
    MP_TOX_PROMPTS_TOXIGEN,   /* ToxiGen prompt files */
    MP_TOX_PROMPTS_RTP,       /* RealToxicityPrompts (DecodingTrust sample) */
    MP_TOX_PROMPTS_ANNOTATED, /* lm-eval `toxigen`: classify the annotated statements, no scorer */
} mp_tox_prompts;
/* Option choices, in mp_tox_prompts order. */
#define MP_TOX_PROMPTS_CHOICES "toxigen|rtp|toxigen-annotated"

typedef struct mp_tox_eval_cfg {
    const char *model_dir;      /* checkpoint folder */
    const char *mask_path;      /* expert mask, NULL = none */
    const char *data_dir;       /* DATA/toxigen, DATA/realtoxicityprompts */
    mp_tox_prompts prompts;
    int reproduction;           /* toxigen: open-instruct's protocol instead of the paper's */
    const char *scorer_spec;    /* roberta:DIR | cmd:COMMAND | builtin:PATH (not for ANNOTATED) */
    const char *positive_label; /* roberta's toxic label, NULL = index 1 */
    long limit;                 /* first N prompts per file (statements for ANNOTATED), <= 0 = all */
    long per_group;             /* reproduction: prompts per group */
    long n, max_new, seed;      /* samples per prompt, new tokens, RNG seed: < 0 = the protocol's */
    double temperature, top_p;  /* < 0 = the protocol's */
    int add_bos;                /* BOS before each prompt */
    int batch;                  /* sequences (statements) per engine round, one KV slot each (0 = 1);
                                   never changes a result */
    mp_device device;           /* engine backend (zeroed: MP_DEVICE_CPU; MP_DEVICE_AUTO) */
    const char *out_path;       /* one JSON line per continuation / statement, or NULL */
    FILE *progress;             /* progress stream, NULL = quiet */
} mp_tox_eval_cfg;

/* Fill the fields left negative with the protocol's settings (rtp: 25 x 20
 * tokens, T 1, top-p 0.9; toxigen: 1 greedy sample of 30 tokens, 512 for
 * reproduction; seed 1). */
void mp_tox_eval_defaults(mp_tox_eval_cfg *c);

typedef struct mp_tox_eval_out {
    mp_eval_result res;  /* toxigen: "group" (per file), "label" (hate/neutral), reproduction "average" rows:
                          *   n = continuations, value = toxic share, extra = mean score;
                          * rtp: "expected_max_toxicity" (n = prompts, extra = mean score) and
                          *   "toxicity_probability" rows per file, challenging, all;
                          * annotated: one "task" row (acc, acc_norm) */
    const char *protocol;  /* "ToxiGen paper", ... (static) */
    char *scorer_name;     /* owned; NULL for annotated */
    size_t n_items;        /* continuations / statements */
    size_t total_tokens;   /* generated tokens */
    size_t clipped;        /* prompts whose token budget was clipped to the context */
    size_t unscored;       /* rtp: empty / whitespace-only continuations (no score, DecodingTrust) */
    size_t unscored_prompts; /* rtp: prompts left out because none of their continuations got a score */
    int context;           /* the model's context */
    double gen_seconds, score_seconds;
    int batch;             /* sequences per engine round used */
    const char *device;    /* the engine's device, "cpu" / "cuda" (static) */
    /* annotated */
    char split_path[4200]; /* the annotated split read */
    size_t split_rows;     /* its rows */
    double hateful, said_yes; /* share of targets / predictions that are "Yes" */
} mp_tox_eval_out;

/* Run the evaluation (defaults applied by the caller). *out is zeroed first;
 * free it with mp_tox_eval_out_free whatever the return code.
 * @return 0; MP_EINPUT (bad scorer, empty prompt, greedy with n > 1, ...),
 *         MP_EIO (missing data, names --data), model / scorer errors. */
int mp_tox_eval(const mp_tox_eval_cfg *cfg, mp_tox_eval_out *out, mp_error *err);

void mp_tox_eval_out_free(mp_tox_eval_out *out);

#endif
