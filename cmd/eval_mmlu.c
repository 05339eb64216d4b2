/* cmd/eval_mmlu.c — `monet-probe eval mmlu`: MMLU in lm-evaluation-harness
 * format, accuracy per subject, per category (the paper's 14) and overall.
 * Options here; the run and the report are shared with `eval general`
 * (cmd/eval_general.c, core/eval/general_eval). */
#include "eval_opts.h"

static const char *ABOUT =
    "  MMLU as lm-evaluation-harness prompts it: \"The following are multiple choice questions (with\n"
    "  answers) about {subject}.\\n\\n\", N dev examples, the question, \"A. ...\" to \"D. ...\",\n"
    "  \"Answer:\"; scores the log-likelihood of \" A\" .. \" D\" after one shared prefill.\n"
    "  Accuracy per subject, per category (the paper's 14 MMLU-Pro style categories), per\n"
    "  supercategory, over all questions (the harness's number) and as a subject macro average;\n"
    "  --json OUT is for `eval compare --target CATEGORY`.";

int cmd_eval_mmlu(int argc, char **argv) { return eval_mc_cmd(argc, argv, 1, ABOUT); }
