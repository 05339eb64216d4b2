/* core/eval/general_eval.c — `eval general` / `eval mmlu` driver: task
 * selection, data before model (a missing data folder fails fast), model +
 * mask + scorer setup, the per-task loop and the paper's average over its
 * columns (ARC = mean of Easy and Challenge). See general_eval.h. */
#include "core/eval/general_eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "core/eval/eval_mc.h"
#include "core/eval/eval_model.h"
#include "core/eval/mcq.h"
#include "core/util/progress.h"

/* Which tasks run: mmlu_only, all, or the named ones ("arc" = both sets). */
static int select_tasks(const mp_general_cfg *c, int run_task[MP_TASK_COUNT], mp_error *err) {
    memset(run_task, 0, MP_TASK_COUNT * sizeof *run_task);
    if (c->mmlu_only) {
        run_task[MP_TASK_MMLU] = 1;
        return 0;
    }
    for (int t = 0; t < MP_TASK_COUNT; t++) run_task[t] = c->n_names == 0;
    for (size_t k = 0; k < c->n_names; k++) {
        int t = mp_mc_task_find(c->names[k]);
        if (!strcmp(c->names[k], "arc")) run_task[MP_TASK_ARC_EASY] = run_task[MP_TASK_ARC_CHALLENGE] = 1;
        else if (t < 0)
            return mp_fail(err, MP_EINPUT, "unknown task '%s' (mmlu arc_easy arc_challenge arc winogrande piqa siqa "
                           "openbookqa hellaswag commonsenseqa)", c->names[k]);
        else run_task[t] = 1;
    }
    return 0;
}

/* The paper's columns: MMLU, ARC, WG, PIQA, SIQA, OBQA, HS, CSQA; adds the
 * "column" arc row and the "average" general row. */
static int add_average(const int run_task[MP_TASK_COUNT], const double task_val[MP_TASK_COUNT],
                       const double task_se[MP_TASK_COUNT], mp_general_out *o, mp_error *err) {
    mp_eval_result *res = &o->res;
    double sum = 0, var = 0;
    int cols = 0, all = 1;
    size_t n_items = 0;
    for (int t = 0; t < MP_TASK_COUNT; t++) {
        if (!run_task[t]) {
            all = 0;
            continue;
        }
        if (t == MP_TASK_ARC_EASY || t == MP_TASK_ARC_CHALLENGE) continue;
        sum += task_val[t];
        var += task_se[t] * task_se[t];
        cols++;
    }
    if (run_task[MP_TASK_ARC_EASY] || run_task[MP_TASK_ARC_CHALLENGE]) {
        int both = run_task[MP_TASK_ARC_EASY] && run_task[MP_TASK_ARC_CHALLENGE];
        int one = run_task[MP_TASK_ARC_EASY] ? MP_TASK_ARC_EASY : MP_TASK_ARC_CHALLENGE;
        double arc = both ? (task_val[MP_TASK_ARC_EASY] + task_val[MP_TASK_ARC_CHALLENGE]) / 2 : task_val[one];
        double se = both ? sqrt(task_se[MP_TASK_ARC_EASY] * task_se[MP_TASK_ARC_EASY] +
                                task_se[MP_TASK_ARC_CHALLENGE] * task_se[MP_TASK_ARC_CHALLENGE]) / 2
                         : task_se[one];
        size_t na = 0;
        for (size_t i = 0; i < res->n_rows; i++)
            if (!strcmp(res->rows[i].kind, "task") && !strncmp(res->rows[i].name, "arc_", 4)) na += res->rows[i].n;
        MP_TRY(mp_eval_result_add(res, "column", "arc", na, arc, NAN, NAN, NAN, err));
        MP_TRY(mp_eval_result_annotate(res, se, NULL, NULL, NULL, 0, err));
        sum += arc;
        var += se * se;
        cols++;
    }
    for (size_t i = 0; i < res->n_rows; i++)
        if (!strcmp(res->rows[i].kind, "task")) n_items += res->rows[i].n;
    /* tasks are independent samples: se of a mean of columns = sqrt(sum se^2) / columns */
    MP_TRY(mp_eval_result_add(res, "average", "general", n_items, sum / cols, NAN, NAN, NAN, err));
    MP_TRY(mp_eval_result_annotate(res, sqrt(var) / cols, NULL, NULL, NULL, 0, err));
    o->columns = cols;
    o->all_columns = all;
    o->average = sum / cols;
    o->average_se = sqrt(var) / cols;
    return 0;
}

int mp_general_eval(const mp_general_cfg *c, mp_general_out *out, mp_error *err) {
    const int mmlu_only = c->mmlu_only;
    const char *const *subjects = c->n_names && mmlu_only ? c->names : NULL;
    const size_t n_subjects = mmlu_only ? c->n_names : 0;
    mp_eval_model em = {0};
    mp_mcq *q = NULL;
    FILE *items = NULL;
    mp_mc_runner run;
    mp_mc_set sets[MP_TASK_COUNT];
    mp_progress prog;
    int run_task[MP_TASK_COUNT];
    double task_val[MP_TASK_COUNT] = {0}, task_se[MP_TASK_COUNT] = {0};
    mp_mc_set train[MP_TASK_COUNT];
    int rc = 0;
    double t0 = mp_now();
    memset(out, 0, sizeof *out);
    memset(&run, 0, sizeof run);
    memset(sets, 0, sizeof sets);
    memset(train, 0, sizeof train);
    MP_TRY(select_tasks(c, run_task, err));
    /* OpenBLAS splits sgemm/sgemv differently per thread count and the float
     * results then differ in the last bits (measured: ~1e-6 in log-likelihoods
     * at OPENBLAS_NUM_THREADS=1 vs 2), so evaluations run BLAS on one thread:
     * every score is bit-identical whatever the environment says. */
    openblas_set_num_threads(1);

    /* load data first: a missing data dir fails before the model loads */
    size_t total = 0;
    if (run_task[MP_TASK_MMLU] &&
        (rc = mp_mmlu_count(c->data_dir, subjects, n_subjects, c->limit, &total, err)) < 0)
        goto cleanup;
    for (int t = 1; t < MP_TASK_COUNT; t++) {
        if (!run_task[t]) continue;
        if ((rc = mp_mc_load((mp_mc_task)t, c->data_dir, NULL, NULL, &sets[t], err)) < 0) goto cleanup;
        if (c->shots > 0 && mp_mc_task_get((mp_mc_task)t)->train &&
            (rc = mp_mc_load((mp_mc_task)t, c->data_dir, NULL, "train", &train[t], err)) < 0)
            goto cleanup;
        if (c->shots > 0 && !mp_mc_task_get((mp_mc_task)t)->train) {
            size_t l = strlen(out->fewshot_no_train);
            snprintf(out->fewshot_no_train + l, sizeof out->fewshot_no_train - l, "%s%s", l ? " " : "",
                     mp_mc_task_get((mp_mc_task)t)->name);
        }
        total += c->limit && c->limit < sets[t].n ? c->limit : sets[t].n;
    }
    if ((rc = mp_eval_model_open_engine(c->model_dir, c->mask_path, c->context, c->device,
                                        c->batch > 1 ? c->batch : 1, &em, err)) < 0)
        goto cleanup;
    if ((rc = mp_mcq_create(em.engine, em.m->cfg.vocab_size, &q, err)) < 0) goto cleanup;
    if (c->items_path && !(items = fopen(c->items_path, "wb"))) {
        rc = mp_fail(err, MP_EIO, "%s: cannot write", c->items_path);
        goto cleanup;
    }
    if ((rc = mp_eval_result_init(&out->res, mmlu_only ? "mmlu" : "general", c->model_dir, c->mask_path, "acc", 1,
                                  err)) < 0)
        goto cleanup;
    out->context = mp_engine_max_ctx(em.engine);
    /* settings: few-shot source per task (train split, MMLU dev first_n, or the
     * evaluation split when no train split is staged) */
    char settings[2048], fs[1200] = "";
    for (int t = 0; t < MP_TASK_COUNT && c->shots > 0; t++) {
        if (!run_task[t]) continue;
        const mp_mc_task_info *ti = mp_mc_task_get((mp_mc_task)t);
        size_t l = strlen(fs);
        snprintf(fs + l, sizeof fs - l, "%s\"%s\": \"%s\"", l ? ", " : "", ti->name,
                 t == MP_TASK_MMLU ? "dev (first_n)"
                 : ti->train ? (ti->fewshot_extra ? "train (Random(1234).sample k+1, item dropped)"
                                                  : "train (Random(1234).sample k)")
                             : "evaluation split: train split not staged (Random(1234).sample k+1, item dropped)");
    }
    snprintf(settings, sizeof settings,
             "{\"shots\": %d, \"limit\": %zu, \"bos\": %s, \"context\": %d, \"metric\": \"%s\", "
             "\"fewshot_source\": {%s}, \"fewshot_train_missing\": \"%s\"}",
             c->shots, c->limit, c->add_bos ? "true" : "false", out->context, c->metric_acc ? "acc" : "headline", fs,
             out->fewshot_no_train);
    if (!(out->res.settings_json = strdup(settings))) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    run.tok = em.tok;
    run.q = q;
    run.add_bos = c->add_bos;
    run.items = items;
    run.batch = c->batch;
    run.prog = &prog;
    mp_progress_start(&prog, c->progress, mmlu_only ? "eval mmlu" : "eval general", "q", total);
    for (int t = 0; t < MP_TASK_COUNT; t++) {
        if (!run_task[t]) continue;
        const mp_mc_task_info *info = mp_mc_task_get((mp_mc_task)t);
        if (t == MP_TASK_MMLU) {
            double a;
            rc = mp_mmlu_run(&run, c->data_dir, subjects, n_subjects, c->shots, c->limit, &out->res, &a, err);
            if (rc < 0) goto cleanup;
            task_val[t] = a;
            const mp_eval_row *mr = mp_eval_result_find(&out->res, "average", "mmlu");
            task_se[t] = mr->se;
            out->average = a;
            out->average_se = mr->se;
            if (!mmlu_only) {
                double se = mr->se, *items = NULL;
                size_t ni = mr->n_items;
                if (ni && !(items = malloc(ni * sizeof *items))) {
                    rc = mp_fail(err, MP_ENOMEM, "out of memory");
                    goto cleanup;
                }
                if (ni) memcpy(items, mr->items, ni * sizeof *items); /* rows may move on add */
                rc = mp_eval_result_add(&out->res, "task", "mmlu", mr->n, a, a, NAN, NAN, err);
                if (rc == 0) rc = mp_eval_result_annotate(&out->res, se, "acc", items, NULL, ni, err);
                free(items);
                if (rc < 0) goto cleanup;
            }
            continue;
        }
        mp_mc_score sc = {0};
        rc = mp_mc_run(&run, (mp_mc_task)t, NULL, &sets[t], c->limit, train[t].n ? &train[t] : NULL, c->shots, &sc,
                       err);
        if (rc < 0) {
            mp_mc_score_free(&sc);
            goto cleanup;
        }
        double acc = (double)sc.correct / (double)sc.n;
        double accn = info->has_norm ? (double)sc.correct_norm / (double)sc.n : NAN;
        int use_norm = info->has_norm && !c->metric_acc;
        task_val[t] = use_norm ? accn : acc;
        task_se[t] = mp_stderr_binary(use_norm ? sc.correct_norm : sc.correct, sc.n);
        rc = mp_eval_result_add(&out->res, "task", info->name, sc.n, task_val[t], acc, accn, NAN, err);
        if (rc == 0)
            rc = mp_eval_result_annotate(&out->res, task_se[t], use_norm ? "acc_norm" : "acc",
                                         use_norm ? sc.hit_norm : sc.hit, NULL, sc.n, err);
        mp_mc_score_free(&sc);
        if (rc < 0) goto cleanup;
    }
    mp_progress_finish(&prog);
    out->seconds = mp_now() - t0;
    if (!mmlu_only && (rc = add_average(run_task, task_val, task_se, out, err)) < 0) goto cleanup;
    out->tokens_run = mp_mcq_tokens_run(q);
    out->truncated = run.truncated;
cleanup:
    if (items && fclose(items) != 0 && rc == 0) rc = mp_fail(err, MP_EIO, "%s: write failed", c->items_path);
    for (int t = 0; t < MP_TASK_COUNT; t++) {
        mp_mc_set_free(&sets[t]);
        mp_mc_set_free(&train[t]);
    }
    mp_mc_runner_free(&run);
    mp_mcq_free(q);
    mp_eval_model_close(&em);
    return rc;
}

void mp_general_out_free(mp_general_out *out) {
    if (out) mp_eval_result_free(&out->res);
}
