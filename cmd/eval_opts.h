/* cmd/eval_opts.h — option groups the `eval` subcommands (and
 * `toxicity-scorer`) share, defined once on top of cmd/opt.h: the
 * sampling group of
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
/* Parse, run and report `eval mmlu` (mmlu_only; about: its help paragraph) or
 * `eval general` (cmd/eval_general.c). @return the exit status. */
int eval_mc_cmd(int argc, char **argv, int mmlu_only, const char *about);

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

/* The data folder into buf (core/util/data_dir.h: --data, $MONET_PROBE_DATA,
 * ../shared/data here or beside the binary's repository). @return 0, or the
 * exit status after printing the one-line error that says how to set it. */
int eval_data_dir(const char *cmd, const char *given, char *buf, size_t cap);

#endif
