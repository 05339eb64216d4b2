/* cmd/eval_mmlu.c — `monet-probe eval mmlu`: MMLU in lm-evaluation-harness
 * format, accuracy per subject, per category (the paper's 14) and overall.
 * Options here; the run and the report are shared with `eval general`
 * (cmd/eval_general.c, core/eval/general_eval). */
#include "cli.h"
#include "eval_opts.h"

static const char *ABOUT =
    "  MMLU as lm-evaluation-harness prompts it: \"The following are multiple choice questions (with\n"
    "  answers) about {subject}.\\n\\n\", N dev examples, the question, \"A. ...\" to \"D. ...\",\n"
    "  \"Answer:\"; scores the log-likelihood of \" A\" .. \" D\" after one shared prefill.\n"
    "  Accuracy per subject, per category (the paper's 14 MMLU-Pro style categories), per\n"
    "  supercategory, over all questions (the harness's number) and as a subject macro average;\n"
    "  --json OUT is for `eval compare --target CATEGORY`.";

int cmd_eval_mmlu(int argc, char **argv) {
    eval_mc_args a = EVAL_MC_ARGS_INIT;
    const cli_opt opts[] = {
        EVAL_OPTS_MC(&a),
        {"--subjects", NULL, CLI_STR, "S,...", &a.list, 0, 0, NULL,
         "subset of subjects (names as in DATA/mmlu/subjects.tsv)", 0, NULL, 0},
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = "eval mmlu", .about = ABOUT, .opts = opts};
    int prc = cli_parse(&spec, argc, argv);
    if (prc) return prc == 1 ? 0 : prc;
    return eval_mc_main(spec.cmd, &a, 1);
}
