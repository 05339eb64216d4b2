/* core/eval/multiple_eval.h — MULTIPL-E HumanEval (Cassano et al. 2022) in py,
 * cpp, java, js, lua, php (DESIGN.md §4): the driver behind `eval multipl-e`.
 *
 * Per problem: prompt.strip() -> n completions (cut at the problem's
 * stop_tokens; MultiPL-E and bigcode generate from the stripped prompt) ->
 * program = prompt + completion + "\n" + tests -> run in the
 * sandbox (core/eval/sandbox) with the harness's command for the language ->
 * status ok | fail | timeout | compile error | sandbox error -> unbiased
 * pass@k (core/eval/passk). Also evaluates given completions and the
 * canonical HumanEval solutions (Python) without a model.
 *
 * Generation runs on the batched engine (core/model/backend.h) through
 * core/eval/gen_queue: `batch` (problem, sample) sequences decoded
 * together, each on its own KV slot with its own sampler, token budget and
 * stop strings, so a completion is bit-identical at any batch. The JSONL written to
 * out_path holds only deterministic fields (no timings, relative file names in
 * the programs' messages), so the same config gives the same bytes.
 *
 * Ownership: the config and its strings are borrowed for the call; the output
 * is plain values.
 */
#ifndef MP_MULTIPLE_EVAL_H
#define MP_MULTIPLE_EVAL_H

#include <stdint.h>
#include <stdio.h>

#include "core/model/backend.h"
#include "core/util/error.h"

/* Sample statuses, in report order. */
enum { MP_MULTIPLE_OK, MP_MULTIPLE_FAIL, MP_MULTIPLE_TIMEOUT, MP_MULTIPLE_COMPILE, MP_MULTIPLE_SANDBOX,
       MP_MULTIPLE_STATUS_COUNT };

/* "ok", "fail", "timeout", "compile error", "sandbox error". */
const char *mp_multiple_status_name(int status);

/* The languages, "py|cpp|java|js|lua|php" (option choices). */
#define MP_MULTIPLE_LANGS "py|cpp|java|js|lua|php"

typedef struct mp_multiple_cfg {
    const char *lang;             /* one of MP_MULTIPLE_LANGS */
    const char *model_dir;        /* generate with this checkpoint; NULL = given completions */
    const char *mask_path;        /* expert mask (with model_dir), NULL = none */
    const char *problems_path;    /* MULTIPL-E JSONL; with canonical: plain HumanEval JSONL */
    const char *completions_path; /* JSONL {"name", "completion" | "completions"}, or NULL */
    int canonical;                /* run HumanEval's canonical solutions (py) */
    long limit;                   /* first N problems, < 0 = all */
    int n_samples;                /* completions per problem (model) */
    int max_new;                  /* token budget (capped by the context): new tokens, or prompt + completion
                                     when budget_total */
    int budget_total;             /* 1: max_new counts prompt + completion (MultiPL-E's HF automodel
                                     max_length, bigcode's max_length_generation); 0: new tokens
                                     (MultiPL-E's vLLM max_tokens) */
    uint64_t seed;                /* sample s of problem p uses a seed derived from (seed, p, s) */
    double temperature, top_p;    /* 0 = greedy */
    int batch;                    /* sequences decoded together on the engine's KV slots (0 = 1); never
                                     changes a completion */
    mp_device device;             /* engine backend (zeroed: MP_DEVICE_CPU; MP_DEVICE_AUTO) */
    int jobs;                     /* parallel sandboxes, 0 = number of CPUs */
    double timeout_s;             /* wall-time limit per program step, <= 0 = the language's MultiPL-E
                                     default (mp_multiple_default_timeout) */
    const char *out_path;         /* per-problem JSONL, or NULL */
    FILE *progress;               /* progress stream, NULL = quiet */
} mp_multiple_cfg;

typedef struct mp_multiple_out {
    size_t n_problems, n_programs;
    int have_pass[3];                         /* pass@1, @10, @100 computed (k <= samples of every problem) */
    double pass[3];                           /* unbiased pass@k, mean over problems */
    double pass_se[3];                        /* its bootstrap standard error over problems */
    double pass_multiple[3];                  /* MultiPL-E's pass_k.py figure: problems with n < k count
                                                 as 1.0 (computed for every k) */
    double pass_multiple_se[3];
    int min_n;                                /* fewest samples of any problem */
    double timeout_s;                         /* the per-step limit used */
    long status[MP_MULTIPLE_STATUS_COUNT];    /* samples per status */
    double seconds, gen_seconds, exec_seconds;
    size_t gen_tokens;                        /* tokens generated (model) */
    int batch;                                /* sequences per engine round used (model) */
    const char *device;                       /* the engine's device, "cpu" / "cuda" (static; model) */
    long jobs;                                /* parallel sandboxes used */
} mp_multiple_out;

/* MultiPL-E's per-language execution timeout in seconds (JavaScript 5 s as
 * in its eval_javascript.py; 15 s otherwise). */
double mp_multiple_default_timeout(const char *lang);

/* The k of have_pass / pass: 1, 10, 100. */
extern const int mp_multiple_ks[3];

/* Is the language's toolchain installed (executables on the sandbox's PATH,
 * Java's javatuples.jar)? @return 0, or MP_EUNSUPPORTED naming the missing
 * tool and its Debian package; MP_EINPUT for an unknown language. */
int mp_multiple_check_toolchain(const char *lang, mp_error *err);

/* Run the evaluation. @return 0; MP_EINPUT (malformed JSONL, a completion for
 * no known problem), MP_EIO, MP_EUNSUPPORTED (toolchain), model errors. */
int mp_multiple_eval(const mp_multiple_cfg *cfg, mp_multiple_out *out, mp_error *err);

#endif
