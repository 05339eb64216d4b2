/* cmd/eval_general.c — `monet-probe eval general` (the paper's "general
 * performance": MMLU, ARC-E/C, WinoGrande, PIQA, SIQA, OpenBookQA, HellaSwag,
 * CommonsenseQA, and their average) and the shared report of `eval mmlu`
 * (cmd/eval_mmlu.c): options, the call into core/eval/general_eval, tables on
 * stdout, the JSON result (--json). Prompts and scoring: core/eval; docs/eval.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/eval/eval_mc.h"
#include "core/eval/general_eval.h"
#include "eval_opts.h"

#define MAX_LIST 64

static const char *ABOUT =
    "  The paper's general performance: the average over MMLU, ARC (mean of Easy and Challenge),\n"
    "  WinoGrande, PIQA, SIQA, OpenBookQA, HellaSwag and CommonsenseQA, lm-evaluation-harness\n"
    "  prompts and log-likelihood scoring as documented in DATA/<task>/SOURCE.md (docs/eval.md).";

/* The parsed options of both commands. */
typedef struct eval_mc_args {
    cli_model_args model;      /* --model, --device, --mask */
    const char *list;          /* --subjects / --tasks: comma list, NULL = all */
    const char *json, *items, *data;
    long shots, limit, context;
    int batch, no_bos, metric_acc, quiet;
} eval_mc_args;
#define EVAL_MC_ARGS_INIT {{0}, NULL, NULL, NULL, NULL, 0, 0, 0, 1, 0, 0, 0}

static int eval_mc_main(const char *cmd, const eval_mc_args *a, int mmlu_only);

int cmd_eval_general(int argc, char **argv) { return eval_mc_cmd(argc, argv, 0, ABOUT); }

int eval_mc_cmd(int argc, char **argv, int mmlu_only, const char *about) {
    eval_mc_args a = EVAL_MC_ARGS_INIT;
    const cli_opt opts[] = {
        CLI_OPTS_MODEL(&a.model, CLI_REQUIRED),
        {"--shots", NULL, CLI_LONG, "N", &a.shots, 0, MP_MC_MAX_SHOTS, NULL,
         "few-shot examples before each question (default 0; the harness uses 5 for MMLU);\n"
         "MMLU takes them from dev, the other tasks from the same split", 0, NULL, 0},
        CLI_OPT_LIMIT(&a.limit, "first N items per task (per subject for MMLU; default 0 = all)"),
        EVAL_OPT_JSON_OUT(&a.json),
        {"--items", NULL, CLI_STR, "FILE", &a.items, 0, 0, NULL,
         "one JSON line per item (log-likelihoods, prediction)", 0, NULL, 0},
        CLI_OPT_DATA(&a.data),
        CLI_OPT_BATCH(&a.batch, "items per engine call (one KV cache of --context tokens each) and per\n"
                                "progress / --items flush (default 1); never changes a score"),
        {"--context", NULL, CLI_LONG, "N", &a.context, 2, 1 << 20, NULL,
         "KV-cache length in tokens (default: max_position_embeddings); longer prompts\n"
         "lose their first tokens, like the harness", 0, NULL, 0},
        EVAL_OPT_NO_BOS(&a.no_bos, "no BOS before each prompt (lm-evaluation-harness < 0.4.5 style)"),
        CLI_OPT_QUIET(&a.quiet),
        mmlu_only ? (cli_opt){"--subjects", NULL, CLI_STR, "S,...", &a.list, 0, 0, NULL,
                              "subset of subjects (names as in DATA/mmlu/subjects.tsv)", 0, NULL, 0}
                  : (cli_opt){"--tasks", NULL, CLI_STR, "T,...", &a.list, 0, 0, NULL,
                              "subset: mmlu arc_easy arc_challenge arc winogrande piqa siqa openbookqa\n"
                              "hellaswag commonsenseqa (default: all)", 0, NULL, 0},
        mmlu_only ? (cli_opt)CLI_OPT_END
                  : (cli_opt){"--metric", NULL, CLI_CHOICE, NULL, &a.metric_acc, 0, 0, "headline|acc",
                              "per-task number in the average: headline = acc_norm where the harness\n"
                              "reports it (ARC, PIQA, OpenBookQA, HellaSwag), else acc (default); acc = acc",
                              0, NULL, 0},
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = mmlu_only ? "eval mmlu" : "eval general", .about = about, .opts = opts};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    return eval_mc_main(spec.cmd, &a, mmlu_only);
}

/* Split a comma list in place. */
static int split_list(char *s, const char **out, size_t *n) {
    *n = 0;
    for (char *save = NULL, *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_LIST) return -1;
        out[(*n)++] = t;
    }
    return *n ? 0 : -1;
}

static void print_rows(const mp_eval_result *res, const char *kind, const char *title) {
    int any = 0;
    for (size_t i = 0; i < res->n_rows; i++) {
        const mp_eval_row *w = &res->rows[i];
        if (strcmp(w->kind, kind)) continue;
        if (!any++) printf("\n%-36s %6s %8s %9s %8s\n", title, "n", "acc", "acc_norm", "stderr");
        printf("%-36s %6zu %8.4f", w->name, w->n, w->acc);
        if (isnan(w->acc_norm)) printf(" %9s", "-");
        else printf(" %9.4f", w->acc_norm);
        printf(" %8.4f (%s)\n", w->se, w->value_metric ? w->value_metric : "-");
    }
}

static void print_report(const mp_general_cfg *c, const mp_general_out *o) {
    const mp_eval_result *res = &o->res;
    const char *mask = c->mask_path ? c->mask_path : "none", *subset = c->limit ? " (--limit: a subset)" : "";
    if (!c->mmlu_only) {
        printf("general performance, %d-shot, model %s, mask %s%s\n", c->shots, c->model_dir, mask, subset);
        if (o->fewshot_no_train[0])
            printf("few-shot: no train split staged for %s: shots drawn from the evaluation split (item excluded)\n",
                   o->fewshot_no_train);
        print_rows(res, "task", "task");
        printf("\naverage over %d columns%s (%s): %.4f +- %.4f (stderr)\n", o->columns,
               o->all_columns ? " (MMLU, ARC, WinoGrande, PIQA, SIQA, OpenBookQA, HellaSwag, CommonsenseQA)" : "",
               c->metric_acc ? "acc" : "acc_norm where reported, else acc", o->average, o->average_se);
    } else {
        printf("MMLU %d-shot, model %s, mask %s%s\n", c->shots, c->model_dir, mask, subset);
        print_rows(res, "subject", "subject");
        print_rows(res, "category", "category (paper, 14)");
        print_rows(res, "supercategory", "supercategory");
        const mp_eval_row *a = mp_eval_result_find(res, "average", "mmlu");
        const mp_eval_row *mac = mp_eval_result_find(res, "average", "mmlu_subject_macro");
        printf("\nMMLU accuracy %.4f +- %.4f (stderr) over %zu questions (subject macro average %.4f +- %.4f)\n",
               a->value, a->se, a->n, mac->value, mac->se);
    }
    double secs = o->seconds;
    printf("time %.1f s, %llu tokens run (%.0f tok/s)%s", secs, (unsigned long long)o->tokens_run,
           secs > 0 ? o->tokens_run / secs : 0.0, o->truncated ? "" : "\n");
    if (o->truncated) printf(", %zu prompts cut on the left to fit --context %d\n", o->truncated, o->context);
}

static int eval_mc_main(const char *cmd, const eval_mc_args *a, int mmlu_only) {
    const char *names[MAX_LIST];
    size_t n_names = 0;
    char *list = NULL;
    if (a->list && (!(list = strdup(a->list)) || split_list(list, names, &n_names))) {
        free(list);
        return cli_usage_error(cmd, "bad %s list '%s'", mmlu_only ? "--subjects" : "--tasks", a->list);
    }
    char data_dir[4096];
    int drc = eval_data_dir(cmd, a->data, data_dir, sizeof data_dir);
    if (drc) {
        free(list);
        return drc;
    }
    mp_device dev;
    if (cli_model_device(cmd, &a->model, &dev)) {
        free(list);
        return 2;
    }
    mp_general_cfg c = {
        .model_dir = a->model.model,
        .mask_path = a->model.mask,
        .data_dir = data_dir,
        .items_path = a->items,
        .mmlu_only = mmlu_only,
        .names = names,
        .n_names = n_names,
        .shots = (int)a->shots,
        .limit = (size_t)a->limit,
        .batch = a->batch,
        .device = dev,
        .context = (int)a->context,
        .add_bos = !a->no_bos,
        .metric_acc = a->metric_acc,
        .progress = a->quiet ? NULL : stderr,
    };
    mp_error err;
    mp_error_clear(&err);
    mp_general_out o;
    int rc = mp_general_eval(&c, &o, &err);
    if (rc == 0) print_report(&c, &o);
    if (rc == 0 && a->json) rc = mp_eval_result_save(&o.res, a->json, &err);
    mp_general_out_free(&o);
    free(list);
    return rc < 0 ? cli_exit_error(&err) : 0;
}
