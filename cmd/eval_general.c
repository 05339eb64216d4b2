/* cmd/eval_general.c — `monet-probe eval general` (the paper's "general
 * performance": MMLU, ARC-E/C, WinoGrande, PIQA, SIQA, OpenBookQA, HellaSwag,
 * CommonsenseQA, and their average) and the shared driver of `eval mmlu`
 * (cmd/eval_mmlu.c): argument parsing, model / mask / scorer setup, tables on
 * stdout, JSON result (--json) and per-item records (--items).
 * Prompts and scoring: core/eval_tasks, core/mcq, core/eval_mc; docs/eval.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "cli.h"
#include "core/eval/eval_mc.h"
#include "core/eval/eval_result.h"
#include "core/model/forward.h"
#include "core/util/progress.h"

#define MAX_LIST 64

int eval_mc_main(int argc, char **argv, int mmlu_only, const char *usage);

static const char *GENERAL_USAGE =
    "usage: monet-probe eval general --model DIR [--mask MASK] [--shots N] [--tasks T,...] [--limit N]\n"
    "                                [--json OUT] [--items FILE] [--data DIR] [--metric headline|acc]\n"
    "                                [--batch N] [--context N] [--no-bos] [--quiet]\n"
    "  The paper's general performance: the average over MMLU, ARC (mean of Easy and Challenge),\n"
    "  WinoGrande, PIQA, SIQA, OpenBookQA, HellaSwag and CommonsenseQA, lm-evaluation-harness\n"
    "  prompts and log-likelihood scoring as documented in DATA/<task>/SOURCE.md (docs/eval.md).\n"
    "  --tasks T,...     subset: mmlu arc_easy arc_challenge arc winogrande piqa siqa openbookqa\n"
    "                    hellaswag commonsenseqa (default: all)\n"
    "  --shots N         few-shot examples (default 0); MMLU from dev, others from the same split\n"
    "  --limit N         first N items per task (per subject for MMLU)\n"
    "  --metric M        per-task number in the average: headline = acc_norm where the harness\n"
    "                    reports it (ARC, PIQA, OpenBookQA, HellaSwag), else acc (default); acc = acc\n"
    "  --json OUT        write the result (for `eval compare`); --items FILE: one JSON line per item\n"
    "  --data DIR        shared/data folder (default: $MONET_PROBE_DATA, else ../shared/data)\n"
    "  --batch N         items per progress / flush unit (default 16); never changes a score\n"
    "  --context N       KV-cache length in tokens (default: max_position_embeddings); longer prompts\n"
    "                    lose their first tokens, like the harness\n"
    "  --no-bos          no BOS before each prompt (lm-evaluation-harness < 0.4.5 style)\n";

int cmd_eval_general(int argc, char **argv) { return eval_mc_main(argc, argv, 0, GENERAL_USAGE); }

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
        if (!any++) printf("\n%-36s %6s %8s %9s\n", title, "n", "acc", "acc_norm");
        printf("%-36s %6zu %8.4f", w->name, w->n, w->acc);
        if (isnan(w->acc_norm)) printf(" %9s\n", "-");
        else printf(" %9.4f\n", w->acc_norm);
    }
}

int eval_mc_main(int argc, char **argv, int mmlu_only, const char *usage) {
    const char *cmd = mmlu_only ? "eval mmlu" : "eval general";
    const char *dir = NULL, *mask_path = NULL, *json_path = NULL, *items_path = NULL, *data = NULL;
    const char *names[MAX_LIST];
    char *list_arg = NULL;
    size_t n_names = 0;
    long shots = 0, limit = 0, batch = 16, ctx = 0;
    int quiet = 0, add_bos = 1, metric_acc = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--model")) {
            if (!(dir = cli_opt_value(cmd, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--mask")) {
            if (!(mask_path = cli_opt_value(cmd, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--json")) {
            if (!(json_path = cli_opt_value(cmd, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--items")) {
            if (!(items_path = cli_opt_value(cmd, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--data")) {
            if (!(data = cli_opt_value(cmd, argc, argv, &i))) return 2;
        } else if (!strcmp(a, mmlu_only ? "--subjects" : "--tasks")) {
            if (!(v = cli_opt_value(cmd, argc, argv, &i))) return 2;
            free(list_arg);
            if (!(list_arg = strdup(v)) || split_list(list_arg, names, &n_names)) {
                free(list_arg);
                return cli_usage_error(cmd, "bad %s list '%s'", a, v);
            }
        } else if (!strcmp(a, "--shots")) {
            if (!(v = cli_opt_value(cmd, argc, argv, &i))) return 2;
            if (cli_parse_long(v, 0, 16, &shots)) return cli_usage_error(cmd, "bad --shots '%s' (0..16)", v);
        } else if (!strcmp(a, "--limit")) {
            if (!(v = cli_opt_value(cmd, argc, argv, &i))) return 2;
            if (cli_parse_long(v, 1, 1L << 40, &limit)) return cli_usage_error(cmd, "bad --limit '%s'", v);
        } else if (!strcmp(a, "--batch")) {
            if (!(v = cli_opt_value(cmd, argc, argv, &i))) return 2;
            if (cli_parse_long(v, 1, 1 << 20, &batch)) return cli_usage_error(cmd, "bad --batch '%s'", v);
        } else if (!strcmp(a, "--context")) {
            if (!(v = cli_opt_value(cmd, argc, argv, &i))) return 2;
            if (cli_parse_long(v, 2, 1 << 20, &ctx)) return cli_usage_error(cmd, "bad --context '%s'", v);
        } else if (!mmlu_only && !strcmp(a, "--metric")) {
            if (!(v = cli_opt_value(cmd, argc, argv, &i))) return 2;
            if (!strcmp(v, "acc")) metric_acc = 1;
            else if (!strcmp(v, "headline")) metric_acc = 0;
            else return cli_usage_error(cmd, "bad --metric '%s' (headline or acc)", v);
        } else if (!strcmp(a, "--no-bos")) {
            add_bos = 0;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else {
            free(list_arg);
            return cli_usage_error(cmd, "unknown argument '%s'", a);
        }
    }
    if (!dir) {
        free(list_arg);
        return cli_usage_error(cmd, "--model DIR is required");
    }
    if (!data) data = getenv("MONET_PROBE_DATA");
    if (!data || !*data) data = "../shared/data";

    /* which tasks */
    int run_task[MP_TASK_COUNT] = {0};
    if (mmlu_only) {
        run_task[MP_TASK_MMLU] = 1;
    } else if (n_names == 0) {
        for (int t = 0; t < MP_TASK_COUNT; t++) run_task[t] = 1;
    } else {
        for (size_t k = 0; k < n_names; k++) {
            int t = mp_mc_task_find(names[k]);
            if (!strcmp(names[k], "arc")) {
                run_task[MP_TASK_ARC_EASY] = run_task[MP_TASK_ARC_CHALLENGE] = 1;
            } else if (t < 0) {
                int rc = cli_usage_error(cmd, "unknown task '%s' (mmlu arc_easy arc_challenge arc winogrande piqa "
                                         "siqa openbookqa hellaswag commonsenseqa)", names[k]);
                free(list_arg);
                return rc;
            } else {
                run_task[t] = 1;
            }
        }
    }

    mp_error err;
    mp_error_clear(&err);
    mp_tokenizer *tok = NULL;
    mp_model *m = NULL;
    mp_state *st = NULL;
    mp_mask *mask = NULL;
    mp_mcq *q = NULL;
    FILE *items = NULL;
    mp_eval_result res;
    memset(&res, 0, sizeof res);
    mp_mc_runner run;
    memset(&run, 0, sizeof run);
    mp_mc_set sets[MP_TASK_COUNT];
    memset(sets, 0, sizeof sets);
    mp_progress prog;
    double task_val[MP_TASK_COUNT];
    int rc = 0;
    double t0 = mp_now();
    /* OpenBLAS splits sgemm/sgemv differently per thread count and the float
     * results then differ in the last bits (measured: ~1e-6 in log-likelihoods
     * at OPENBLAS_NUM_THREADS=1 vs 2), so evaluations run BLAS on one thread:
     * every score is bit-identical whatever the environment says. */
    openblas_set_num_threads(1);

    /* load data first: a missing data dir fails before the model loads */
    size_t total = 0;
    if (run_task[MP_TASK_MMLU] &&
        (rc = mp_mmlu_count(data, n_names && mmlu_only ? names : NULL, mmlu_only ? n_names : 0, (size_t)limit,
                            &total, &err)) < 0)
        goto cleanup;
    for (int t = 1; t < MP_TASK_COUNT; t++) {
        if (!run_task[t]) continue;
        if ((rc = mp_mc_load((mp_mc_task)t, data, NULL, NULL, &sets[t], &err)) < 0) goto cleanup;
        total += limit && (size_t)limit < sets[t].n ? (size_t)limit : sets[t].n;
    }
    if ((rc = cli_load_tokenizer(dir, &tok, &err)) < 0) goto cleanup;
    if ((rc = mp_model_load(dir, &m, &err)) < 0) goto cleanup;
    if ((rc = mp_state_create(m, (int)ctx, 0, &st, &err)) < 0) goto cleanup;
    if ((rc = cli_apply_mask(mask_path, m, st, &mask, &err)) < 0) goto cleanup;
    if ((rc = mp_mcq_create(st, m->cfg.vocab_size, &q, &err)) < 0) goto cleanup;
    if (items_path && !(items = fopen(items_path, "wb"))) {
        rc = mp_fail(&err, MP_EIO, "%s: cannot write", items_path);
        goto cleanup;
    }
    if ((rc = mp_eval_result_init(&res, mmlu_only ? "mmlu" : "general", dir, mask_path, "acc", 1, &err)) < 0)
        goto cleanup;
    char settings[256];
    snprintf(settings, sizeof settings, "{\"shots\": %ld, \"limit\": %ld, \"bos\": %s, \"context\": %d, \"metric\": \"%s\"}",
             shots, limit, add_bos ? "true" : "false", mp_state_max_ctx(st), metric_acc ? "acc" : "headline");
    if (!(res.settings_json = strdup(settings))) {
        rc = mp_fail(&err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    run.tok = tok;
    run.q = q;
    run.add_bos = add_bos;
    run.items = items;
    run.batch = (int)batch;
    run.prog = &prog;
    mp_progress_start(&prog, quiet ? NULL : stderr, cmd, "q", total);
    for (int t = 0; t < MP_TASK_COUNT; t++) {
        if (!run_task[t]) continue;
        const mp_mc_task_info *info = mp_mc_task_get((mp_mc_task)t);
        if (t == MP_TASK_MMLU) {
            double a;
            rc = mp_mmlu_run(&run, data, n_names && mmlu_only ? names : NULL, mmlu_only ? n_names : 0, (int)shots,
                             (size_t)limit, &res, &a, &err);
            if (rc < 0) goto cleanup;
            task_val[t] = a;
            if (!mmlu_only && (rc = mp_eval_result_add(&res, "task", "mmlu", mp_eval_result_find(&res, "average", "mmlu")->n,
                                                       a, a, NAN, NAN, &err)) < 0)
                goto cleanup;
            continue;
        }
        mp_mc_score sc = {0};
        if ((rc = mp_mc_run(&run, (mp_mc_task)t, NULL, &sets[t], (size_t)limit, NULL, (int)shots, &sc, &err)) < 0)
            goto cleanup;
        double acc = (double)sc.correct / (double)sc.n;
        double accn = info->has_norm ? (double)sc.correct_norm / (double)sc.n : NAN;
        task_val[t] = info->has_norm && !metric_acc ? accn : acc;
        if ((rc = mp_eval_result_add(&res, "task", info->name, sc.n, task_val[t], acc, accn, NAN, &err)) < 0)
            goto cleanup;
    }
    mp_progress_finish(&prog);
    double secs = mp_now() - t0;
    if (!mmlu_only) {
        /* the paper's columns: MMLU, ARC, WG, PIQA, SIQA, OBQA, HS, CSQA */
        double sum = 0;
        int cols = 0, all = 1;
        size_t n_items = 0;
        for (int t = 0; t < MP_TASK_COUNT; t++) {
            if (!run_task[t]) {
                all = 0;
                continue;
            }
            if (t == MP_TASK_ARC_EASY || t == MP_TASK_ARC_CHALLENGE) continue;
            sum += task_val[t];
            cols++;
        }
        if (run_task[MP_TASK_ARC_EASY] || run_task[MP_TASK_ARC_CHALLENGE]) {
            double arc = run_task[MP_TASK_ARC_EASY] && run_task[MP_TASK_ARC_CHALLENGE]
                             ? (task_val[MP_TASK_ARC_EASY] + task_val[MP_TASK_ARC_CHALLENGE]) / 2
                             : run_task[MP_TASK_ARC_EASY] ? task_val[MP_TASK_ARC_EASY] : task_val[MP_TASK_ARC_CHALLENGE];
            size_t na = 0;
            for (size_t i = 0; i < res.n_rows; i++)
                if (!strcmp(res.rows[i].kind, "task") && !strncmp(res.rows[i].name, "arc_", 4)) na += res.rows[i].n;
            if ((rc = mp_eval_result_add(&res, "column", "arc", na, arc, NAN, NAN, NAN, &err)) < 0) goto cleanup;
            sum += arc;
            cols++;
        }
        for (size_t i = 0; i < res.n_rows; i++)
            if (!strcmp(res.rows[i].kind, "task")) n_items += res.rows[i].n;
        if ((rc = mp_eval_result_add(&res, "average", "general", n_items, sum / cols, NAN, NAN, NAN, &err)) < 0)
            goto cleanup;
        printf("general performance, %ld-shot, model %s, mask %s%s\n", shots, dir, mask_path ? mask_path : "none",
               limit ? " (--limit: a subset)" : "");
        print_rows(&res, "task", "task");
        printf("\naverage over %d columns%s (%s): %.4f\n", cols, all ? " (MMLU, ARC, WinoGrande, PIQA, SIQA, "
               "OpenBookQA, HellaSwag, CommonsenseQA)" : "", metric_acc ? "acc" : "acc_norm where reported, else acc",
               sum / cols);
    } else {
        printf("MMLU %ld-shot, model %s, mask %s%s\n", shots, dir, mask_path ? mask_path : "none",
               limit ? " (--limit: a subset)" : "");
        print_rows(&res, "subject", "subject");
        print_rows(&res, "category", "category (paper, 14)");
        print_rows(&res, "supercategory", "supercategory");
        const mp_eval_row *a = mp_eval_result_find(&res, "average", "mmlu");
        const mp_eval_row *mac = mp_eval_result_find(&res, "average", "mmlu_subject_macro");
        printf("\nMMLU accuracy %.4f over %zu questions (subject macro average %.4f)\n", a->value, a->n, mac->value);
    }
    uint64_t ntok = mp_mcq_tokens_run(q);
    printf("time %.1f s, %llu tokens run (%.0f tok/s)%s", secs, (unsigned long long)ntok, secs > 0 ? ntok / secs : 0.0,
           run.truncated ? "" : "\n");
    if (run.truncated) printf(", %zu prompts cut on the left to fit --context %d\n", run.truncated, mp_state_max_ctx(st));
    if (json_path && (rc = mp_eval_result_save(&res, json_path, &err)) < 0) goto cleanup;
cleanup:
    if (items && fclose(items) != 0 && rc == 0) rc = mp_fail(&err, MP_EIO, "%s: write failed", items_path);
    for (int t = 0; t < MP_TASK_COUNT; t++) mp_mc_set_free(&sets[t]);
    mp_mc_runner_free(&run);
    mp_eval_result_free(&res);
    mp_mcq_free(q);
    mp_state_free(st);
    mp_mask_free(mask);
    mp_model_free(m);
    mp_tokenizer_free(tok);
    free(list_arg);
    return rc < 0 ? cli_exit_error(&err) : 0;
}
