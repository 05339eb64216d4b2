/* cmd/eval_opts.h — option groups the `eval` subcommands (and
 * `toxicity-scorer`) share, defined once on top of cmd/opt.h: the
 * multiple-choice group of `eval mmlu` / `eval general`, the sampling group of
 * `eval multipl-e` / `eval toxicity`, the toxicity scorer pair, --json OUT,
 * and the default data folder. */
#ifndef MP_CMD_EVAL_OPTS_H
#define MP_CMD_EVAL_OPTS_H

#include "opt.h"

/* --json OUT: the monet-probe-eval result file (core/eval/eval_result.h). */
#define EVAL_OPT_JSON_OUT(p)                                                                                          \
    {"--json", NULL, CLI_STR, "OUT", (p), 0, 0, NULL, "write the result (monet-probe-eval JSON, for `eval compare`)", \
     0, NULL, 0}
/* --no-bos: sets *p = 1 (the command clears add_bos). */
#define EVAL_OPT_NO_BOS(p, help) {"--no-bos", NULL, CLI_FLAG, NULL, (p), 0, 0, NULL, (help), 0, NULL, 0}

/* ---- `eval mmlu` / `eval general` ------------------------------------------ */
typedef struct eval_mc_args {
    cli_model_args model;      /* --model, --mask (the scorer runs on the CPU state) */
    const char *list;          /* --subjects / --tasks: comma list, NULL = all */
    const char *json, *items, *data;
    long shots, limit, context;
    int batch, no_bos, metric_acc, quiet;
} eval_mc_args;
#define EVAL_MC_ARGS_INIT {{0}, NULL, NULL, NULL, NULL, 0, 0, 0, 16, 0, 0, 0}

#define EVAL_OPTS_MC(a)                                                                                               \
    CLI_OPT_MODEL(&(a)->model, CLI_REQUIRED), CLI_OPT_MASK(&(a)->model),                                              \
        {"--shots", NULL, CLI_LONG, "N", &(a)->shots, 0, 16, NULL,                                                    \
         "few-shot examples before each question (default 0; the harness uses 5 for MMLU);\n"                         \
         "MMLU takes them from dev, the other tasks from the same split", 0, NULL, 0},                                \
        CLI_OPT_LIMIT(&(a)->limit, "first N items per task (per subject for MMLU; default 0 = all)"),                 \
        EVAL_OPT_JSON_OUT(&(a)->json),                                                                                \
        {"--items", NULL, CLI_STR, "FILE", &(a)->items, 0, 0, NULL,                                                   \
         "one JSON line per item (log-likelihoods, prediction)", 0, NULL, 0},                                         \
        CLI_OPT_DATA(&(a)->data),                                                                                     \
        CLI_OPT_BATCH(&(a)->batch, "items per progress / flush unit (default 16); never changes a score"),            \
        {"--context", NULL, CLI_LONG, "N", &(a)->context, 2, 1 << 20, NULL,                                           \
         "KV-cache length in tokens (default: max_position_embeddings); longer prompts\n"                             \
         "lose their first tokens, like the harness", 0, NULL, 0},                                                    \
        EVAL_OPT_NO_BOS(&(a)->no_bos, "no BOS before each prompt (lm-evaluation-harness < 0.4.5 style)"),             \
        CLI_OPT_QUIET(&(a)->quiet)

/* Run `eval mmlu` (mmlu_only) or `eval general` with parsed arguments and print
 * the report (cmd/eval_general.c). @return the exit status. */
int eval_mc_main(const char *cmd, const eval_mc_args *a, int mmlu_only);

/* ---- sampling: `eval multipl-e`, `eval toxicity` ----------------------------- */
typedef struct eval_sampling_args {
    long n, max_new, seed;
    double temperature, top_p;
} eval_sampling_args;

/* dn, dmax, dt, dp, ds: the defaults as help text (string literals). */
#define EVAL_OPTS_SAMPLING(a, dn, dmax, dt, dp, ds)                                                                   \
    {"--n", NULL, CLI_LONG, "N", &(a)->n, 1, 100000, NULL, "samples per prompt (default " dn ")", 0, NULL, 0},        \
        {"--max-tokens", NULL, CLI_LONG, "N", &(a)->max_new, 1, 1 << 20, NULL,                                        \
         "new tokens per completion (default " dmax ", capped by the context)", 0, NULL, 0},                          \
        {"--temperature", NULL, CLI_DOUBLE, "T", &(a)->temperature, 0, 100, NULL,                                     \
         "0 = greedy (default " dt ")", 0, NULL, 0},                                                                  \
        {"--top-p", NULL, CLI_DOUBLE, "P", &(a)->top_p, 1e-9, 1, NULL, "nucleus mass, 0 < P <= 1 (default " dp ")",   \
         0, NULL, 0},                                                                                                 \
        {"--seed", NULL, CLI_LONG, "S", &(a)->seed, 0, 4.6e18, NULL,                                                  \
         "RNG seed (default " ds "); every sample derives a seed of its own, so results\n"                            \
         "do not depend on --limit or the order of work", 0, NULL, 0}

/* ---- toxicity scorer: `eval toxicity`, `toxicity-scorer score` ---------------- */
#define EVAL_OPTS_SCORER(spec, label, fl)                                                                             \
    {"--scorer", NULL, CLI_STR, "SPEC", (spec), 0, 0, NULL,                                                           \
     "roberta:DIR | cmd:COMMAND | builtin:PATH (docs/toxicity.md; `toxicity-scorer train`\n"                          \
     "makes a builtin one)", (fl), NULL, 0},                                                                          \
        {"--positive-label", NULL, CLI_STR, "L", (label), 0, 0, NULL,                                                 \
         "roberta: the toxic label (name or index; default index 1 = LABEL_1)", 0, NULL, 0}

/* The data folder: the --data value, else $MONET_PROBE_DATA when set and
 * non-empty, else ../shared/data. */
const char *eval_data_dir(const char *given);

#endif
