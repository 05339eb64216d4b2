/* cmd/eval_multiple.c — `monet-probe eval multipl-e`: options, the call into
 * core/eval/multiple_eval (MULTIPL-E HumanEval pass@k in py, cpp, java, js,
 * lua, php; programs run in core/eval/sandbox) and the report on stdout. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "core/eval/multiple_eval.h"
#include "core/eval/sandbox.h"
#include "eval_opts.h"

static const char *SYNOPSIS =
    "--model DIR --lang py|cpp|java|js|lua|php [options]\n"
    "       monet-probe eval multipl-e --lang L --completions FILE [options]   (no model)\n"
    "       monet-probe eval multipl-e --lang py --canonical HumanEval.jsonl    (no model)";
static const char *ABOUT =
    "  MULTIPL-E HumanEval: generate completions cut at each problem's stop_tokens, run\n"
    "  prompt + completion + \"\\n\" + tests in a sandbox (private capped tmpfs run folder and /tmp, no\n"
    "  network, own IPC namespace, memory cgroup, rlimits, read-only filesystem, unprivileged uid; see\n"
    "  docs/sandbox.md), report unbiased pass@k.\n"
    "  The harness samples n=20 at T=0.2 for pass@1 and T=0.8 for pass@10/100.";

int cmd_eval_multiple(int argc, char **argv) {
    const char *cmd = "eval multipl-e";
    cli_model_args ma = {0};
    const char *lang = NULL, *data = NULL, *problems = NULL, *out_path = NULL, *completions = NULL, *canonical = NULL;
    long limit = -1, jobs = 0;
    double timeout = 0;
    int quiet = 0, budget_new = 0, batch = 1;
    eval_sampling_args sa = {.n = 1, .max_new = 512, .seed = 1, .temperature = 0, .top_p = 0.95};
    const cli_opt opts[] = {
        CLI_OPT_MODEL(&ma, 0),
        {"--lang", NULL, CLI_CHOICE_STR, NULL, &lang, 0, 0, MP_MULTIPLE_LANGS, "the language", CLI_REQUIRED, NULL, 0},
        {"--problems", NULL, CLI_STR, "FILE", &problems, 0, 0, NULL,
         "problems JSONL (default DATA/multipl-e/humaneval-<lang>-reworded.jsonl)", 0, NULL, 0},
        CLI_OPT_DATA(&data),
        CLI_OPT_LIMIT(&limit, "first N problems only"),
        EVAL_OPTS_SAMPLING(&sa, "1", "512", "0", "0.95", "1"),
        CLI_OPT_DEVICE(&ma),
        CLI_OPT_MASK(&ma),
        CLI_OPT_BATCH(&batch, "sequences (problem x sample) decoded together, one KV slot each (default 1);\n"
                              "never changes a completion"),
        {"--jobs", NULL, CLI_LONG, "N", &jobs, 1, 256, NULL, "parallel sandboxes (default: number of CPUs)", 0, NULL,
         0},
        {"--timeout", NULL, CLI_DOUBLE, "S", &timeout, 0.1, 3600, NULL,
         "wall-time limit per program step in seconds (default: MultiPL-E's, 5 for js, else 15)", 0, NULL, 0},
        {"--budget", NULL, CLI_CHOICE, NULL, &budget_new, 0, 0, "total|new",
         "what --max-tokens counts: total = prompt + completion (default; MultiPL-E's HF\n"
         "automodel max_length and bigcode's max_length_generation), new = new tokens\n"
         "(MultiPL-E's vLLM max_tokens)", 0, NULL, 0},
        CLI_OPT_OUT(&out_path, "FILE", "per-problem results as JSONL", 0),
        {"--completions", NULL, CLI_STR, "FILE", &completions, 0, 0, NULL,
         "JSONL {\"name\", \"completion\" | \"completions\": [...]}: evaluate these", 0, NULL, 0},
        {"--canonical", NULL, CLI_STR, "FILE", &canonical, 0, 0, NULL,
         "plain (gunzipped) HumanEval JSONL: run the canonical solutions (py)", 0, NULL, 0},
        CLI_OPT_QUIET(&quiet),
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = cmd, .synopsis = SYNOPSIS, .about = ABOUT, .opts = opts};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    if (!!ma.model + !!completions + !!canonical != 1)
        return cli_usage_error(cmd, "give exactly one of --model DIR, --completions FILE, --canonical FILE");
    if (canonical && strcmp(lang, "py"))
        return cli_usage_error(cmd, "--canonical runs HumanEval's Python solutions: use --lang py");
    if (ma.mask && !ma.model) return cli_usage_error(cmd, "--mask needs --model");
    mp_device dev;
    if (cli_model_device(cmd, &ma, &dev)) return 2;

    mp_error err;
    mp_error_clear(&err);
    struct stat sb;
    if (data && !problems && stat(data, &sb) == 0 && S_ISREG(sb.st_mode)) { /* the old meaning of --data */
        fprintf(stderr, "monet-probe: %s: --data FILE is the old spelling of --problems FILE (still accepted)\n", cmd);
        problems = data;
        data = NULL;
    }
    char data_buf[4096], problems_buf[4200];
    if (!problems && !canonical) {
        int drc = eval_data_dir(cmd, data, data_buf, sizeof data_buf);
        if (drc) return drc;
        snprintf(problems_buf, sizeof problems_buf, "%s/multipl-e/humaneval-%s-reworded.jsonl", data_buf, lang);
        problems = problems_buf;
    }
    data = problems;
    mp_multiple_cfg c = {
        .lang = lang,
        .model_dir = ma.model,
        .mask_path = ma.mask,
        .problems_path = canonical ? canonical : data,
        .completions_path = completions,
        .canonical = canonical != NULL,
        .limit = limit,
        .n_samples = (int)sa.n,
        .max_new = (int)sa.max_new,
        .budget_total = !budget_new,
        .seed = (uint64_t)sa.seed,
        .batch = batch,
        .device = dev,
        .temperature = sa.temperature,
        .top_p = sa.top_p,
        .jobs = (int)jobs,
        .timeout_s = timeout,
        .out_path = out_path,
        .progress = quiet ? NULL : stderr,
    };
    mp_multiple_out o;
    if (mp_multiple_eval(&c, &o, &err) < 0) return cli_exit_error(&err);
    const char *src = ma.model ? ma.model : completions ? completions : canonical;
    if (ma.model) {
        printf("multipl-e %s: %zu problems, model %s, %ld samples per problem%s\n", lang, o.n_problems, src, sa.n,
               sa.temperature == 0 ? " (greedy)" : "");
        printf("sampling: temperature %g, top-p %g, seed %ld, token budget %ld %s, mask %s\n", sa.temperature,
               sa.top_p, sa.seed, sa.max_new,
               budget_new ? "new tokens (MultiPL-E vLLM max_tokens)"
                          : "prompt + completion (MultiPL-E HF max_length / bigcode max_length_generation)",
               ma.mask ? ma.mask : "none");
        printf("prompt: prompt.strip() (MultiPL-E / bigcode); program = prompt + completion + \"\\n\" + tests\n");
    } else {
        printf("multipl-e %s: %zu problems, %zu given completions from %s\n", lang, o.n_problems, o.n_programs, src);
    }
    for (int q = 0; q < 3; q++) {
        if (o.have_pass[q]) printf("pass@%d: %.6f +- %.6f (stderr, bootstrap over problems)\n", mp_multiple_ks[q],
                                   o.pass[q], o.pass_se[q]);
        else if (o.n_problems)
            printf("pass@%d: n/a (a problem has %d < %d samples); MultiPL-E's pass_k.py would report %.6f +- %.6f, "
                   "counting such problems as 1.0\n", mp_multiple_ks[q], o.min_n, mp_multiple_ks[q],
                   o.pass_multiple[q], o.pass_multiple_se[q]);
    }
    printf("status:");
    for (int s = 0; s < MP_MULTIPLE_STATUS_COUNT; s++)
        printf("%s %s %ld", s ? "," : "", mp_multiple_status_name(s), o.status[s]);
    printf("\n");
    printf("wall time: %.2f s (generation %.2f s, execution %.2f s with %ld parallel sandboxes)\n", o.seconds,
           o.gen_seconds, o.exec_seconds, o.jobs);
    if (ma.model)
        printf("generated: %zu tokens, %.1f tokens/s, --batch %d on %s\n", o.gen_tokens,
               o.gen_seconds > 0 ? (double)o.gen_tokens / o.gen_seconds : 0.0, o.batch, o.device);
    printf("timeout: %g s per program step\n", o.timeout_s);
    printf("sandbox: %s\n", mp_sandbox_isolation());
    return 0;
}
