/* cmd/eval_mmlu.c — `monet-probe eval mmlu`: MMLU in lm-evaluation-harness
 * format, accuracy per subject, per category (the paper's 14) and overall.
 * The driver is shared with `eval general` (cmd/eval_general.c). */
#include "cli.h"

int eval_mc_main(int argc, char **argv, int mmlu_only, const char *usage);

static const char *USAGE =
    "usage: monet-probe eval mmlu --model DIR [--mask MASK] [--shots 0|5] [--subjects S,...] [--limit N]\n"
    "                             [--json OUT] [--items FILE] [--data DIR] [--batch N] [--context N]\n"
    "                             [--no-bos] [--quiet]\n"
    "  MMLU as lm-evaluation-harness prompts it: \"The following are multiple choice questions (with\n"
    "  answers) about {subject}.\\n\\n\", N dev examples, the question, \"A. ...\" to \"D. ...\",\n"
    "  \"Answer:\"; scores the log-likelihood of \" A\" .. \" D\" after one shared prefill.\n"
    "  Accuracy per subject, per category (the paper's 14 MMLU-Pro style categories), per\n"
    "  supercategory, over all questions (the harness's number) and as a subject macro average.\n"
    "  --shots N         dev examples before each question (default 0; the harness uses 5)\n"
    "  --subjects S,...  subset of subjects (names as in DATA/mmlu/subjects.tsv)\n"
    "  --limit N         first N test questions per subject\n"
    "  --json OUT        write the result (for `eval compare --target CATEGORY`)\n"
    "  --items FILE      one JSON line per question (log-likelihoods, prediction)\n"
    "  --data DIR        shared/data folder (default: $MONET_PROBE_DATA, else ../shared/data)\n"
    "  --batch N         questions per progress / flush unit (default 16); never changes a score\n"
    "  --context N       KV-cache length (default max_position_embeddings; longer prompts are cut\n"
    "                    on the left like the harness)\n"
    "  --no-bos          no BOS before each prompt (lm-evaluation-harness < 0.4.5 style)\n";

int cmd_eval_mmlu(int argc, char **argv) { return eval_mc_main(argc, argv, 1, USAGE); }
