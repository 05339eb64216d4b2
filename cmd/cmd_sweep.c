/* cmd/cmd_sweep.c — `monet-probe sweep RECIPE.yaml`: load a recipe
 * (recipes/recipe.h), build its plan (recipes/plan.h), print it (--dry-run) or
 * run the steps that are not in the cache, then write results.json,
 * results.csv and report.html (recipes/report.h). docs/recipes.md. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "recipes/plan.h"
#include "recipes/recipe.h"
#include "recipes/report.h"
#include "recipes/slurm.h"
#include "core/util/readfile.h"

static const char *ABOUT =
    "  Run a whole study from one YAML recipe (docs/recipes.md): collect a store, find the masks\n"
    "  (specialists per target, or experts correlated with a score, per threshold), evaluate the\n"
    "  base model and every mask, and write OUT/results.json, OUT/results.csv, OUT/report.html.\n"
    "  Every step is a monet-probe command whose outputs are cached under OUT/cache/<key>/ (key =\n"
    "  SHA-256 of the command, its input files and the model): a re-run, or a run after a crash or\n"
    "  with an added threshold, only runs what is new (resuming is the default).\n"
    "  Executors (docs/scale.md): local (default; -j N runs independent steps at once) and slurm\n"
    "  (each step an sbatch job with afterok dependencies, a sharded collect a job array + merge,\n"
    "  a last job writes the report); --status shows each step's state and writes the report\n"
    "  once every step is done.";
static const char *FOOTER = "Paths in the recipe are relative to the current directory (run from the repository root).\n";

/* The command the last Slurm job runs: this sweep with its recipe and overrides, --status. */
static char **report_argv(const char *exe, const char *recipe, const mp_recipe_overrides *ov, const char *out) {
    char **v = calloc(16 + 2 * (size_t)ov->n_sets, sizeof *v), lim[32];
    size_t n = 0;
    if (!v) return NULL;
    const char *fixed[] = {exe, "sweep", recipe, "--out", out};
    for (size_t i = 0; i < 5; i++) v[n++] = (char *)fixed[i];
    if (ov->model) v[n++] = "--model", v[n++] = (char *)ov->model;
    if (ov->data) v[n++] = "--data", v[n++] = (char *)ov->data;
    if (ov->limit > 0) {
        snprintf(lim, sizeof lim, "%ld", ov->limit);
        v[n++] = "--limit";
        v[n++] = strdup(lim); /* the only owned string: freed by free_report_argv */
    }
    for (size_t i = 0; i < ov->n_sets; i++) v[n++] = "--set", v[n++] = (char *)ov->sets[i];
    if (ov->allow_commands) v[n++] = "--allow-commands";
    v[n++] = "--status";
    return v;
}

static void free_report_argv(char **v) {
    for (size_t i = 0; v && v[i]; i++)
        if (i > 0 && !strcmp(v[i - 1], "--limit")) free(v[i]);
    free(v);
}

/* The results table on stdout, from OUT/results.json's summary: one row per
 * evaluation × mask with Δ target and Δ others. */
static void print_table(const char *out_dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/results.json", out_dir);
    char *txt = NULL;
    size_t len = 0;
    mp_error e;
    if (mp_read_file(path, &txt, &len, &e) < 0) return;
    cJSON *root = cJSON_ParseWithLength(txt, len);
    free(txt);
    cJSON *summ = cJSON_GetObjectItem(root, "summary"), *o;
    if (cJSON_GetArraySize(summ) > 0) {
        printf("%-10s %-24s %8s %9s %12s %12s\n", "eval", "mask", "masked", "ratio", "delta target", "delta others");
        cJSON_ArrayForEach(o, summ) {
            const char *ev = cJSON_GetStringValue(cJSON_GetObjectItem(o, "eval"));
            const char *tg = cJSON_GetStringValue(cJSON_GetObjectItem(o, "target"));
            cJSON *th = cJSON_GetObjectItem(o, "threshold"), *mx = cJSON_GetObjectItem(o, "masked_experts"),
                  *ra = cJSON_GetObjectItem(o, "masking_ratio"), *dt = cJSON_GetObjectItem(o, "delta_target"),
                  *dot = cJSON_GetObjectItem(o, "delta_others");
            char mask[64], d1[32], d2[32];
            char *safe = cli_term_dup(tg ? tg : "?", 0);
            snprintf(mask, sizeof mask, "%.40s@%g", safe ? safe : "?", cJSON_IsNumber(th) ? th->valuedouble : NAN);
            free(safe);
            snprintf(d1, sizeof d1, cJSON_IsNumber(dt) ? "%+.4f" : "-", cJSON_IsNumber(dt) ? dt->valuedouble : 0);
            snprintf(d2, sizeof d2, cJSON_IsNumber(dot) ? "%+.4f" : "-", cJSON_IsNumber(dot) ? dot->valuedouble : 0);
            printf("%-10s %-24s %8.0f %8.3f%% %12s %12s\n", ev ? ev : "?", mask,
                   cJSON_IsNumber(mx) ? mx->valuedouble : 0, cJSON_IsNumber(ra) ? 100 * ra->valuedouble : 0, d1, d2);
        }
    }
    cJSON_Delete(root);
}

int cmd_sweep(int argc, char **argv) {
    const char *recipe_path = NULL;
    int dry = 0, quiet = 0, resume = 0, n_par = 1, executor = 0, status_only = 0, json = 0;
    mp_slurm_opts so = {0};
    cli_list sbatch_args = {0};
    char **rargv = NULL;
    mp_recipe_overrides ov = {0};
    cli_list sets = {0};
    mp_recipe *r = NULL;
    mp_plan *p = NULL;
    mp_error err = {0};
    int status = 0;
    const cli_opt opts[] = {
        {"--dry-run", NULL, CLI_FLAG, NULL, &dry, 0, 0, NULL,
         "print the plan: steps, cached or to run, and the equivalent commands", 0, NULL, 0},
        CLI_OPT_MODEL(&ov, 0),
        CLI_OPT_DATA(&ov.data),
        CLI_OPT_OUT(&ov.out, "DIR", "output directory (default: the recipe's 'out', else runs/NAME)", 0),
        {"--limit", NULL, CLI_LONG, "N", &ov.limit, 1, 1099511627776.0, NULL,
         "set every evaluation's limit (ppl: max_docs) to N, for quick runs", 0, NULL, 0},
        {"--set", NULL, CLI_LIST, "KEY=VAL", &sets, 0, 0, NULL,
         "override a recipe value: --set criterion.thresholds=[0.2,0.1]\n"
         "--set evals.0.limit=50 --set collect.max_tokens=0 (VAL is YAML)", 0, NULL, 0},
        {"--allow-commands", NULL, CLI_FLAG, NULL, &ov.allow_commands, 0, 0, NULL,
         "allow a recipe's shell commands (toxicity scorer: \"cmd:...\", run by /bin/sh outside the sandbox)", 0,
         NULL, 0},
        {"-j", "--jobs", CLI_INT, "N", &n_par, 1, 1024, NULL,
         "local executor: run up to N independent steps (and collect shards) at once (default 1)", 0, NULL, 0},
        {"--shards", NULL, CLI_LONG, "N", &ov.shards, 1, MP_RECIPE_MAX_SHARDS, NULL,
         "run the collect as N shard jobs and an exact merge (the recipe's collect.shards)", 0, NULL, 0},
        {"--executor", NULL, CLI_CHOICE, "E", &executor, 0, 0, "local|slurm",
         "local (default): steps run here; slurm: each step an sbatch job (docs/scale.md)", 0, NULL, 0},
        {"--partition", NULL, CLI_STR, "P", &so.partition, 0, 0, NULL, "slurm: sbatch --partition", 0, NULL, 0},
        {"--gres", NULL, CLI_STR, "G", &so.gres, 0, 0, NULL,
         "slurm: sbatch --gres for the steps that run the model (collect shards, evaluations), e.g. gpu:1", 0, NULL, 0},
        {"--time", NULL, CLI_STR, "T", &so.time, 0, 0, NULL, "slurm: sbatch --time of every job", 0, NULL, 0},
        {"--account", NULL, CLI_STR, "A", &so.account, 0, 0, NULL, "slurm: sbatch --account", 0, NULL, 0},
        {"--sbatch-arg", NULL, CLI_LIST, "ARG", &sbatch_args, 0, 0, NULL,
         "slurm: one more sbatch argument for every job: --sbatch-arg=--qos=high", 0, NULL, 0},
        {"--status", NULL, CLI_FLAG, NULL, &status_only, 0, 0, NULL,
         "show each step's state (cache, recorded Slurm jobs, squeue/sacct) and write the report\n"
         "once every step is done; runs nothing", 0, NULL, 0},
        CLI_OPT_JSON(&json),
        {"--resume", NULL, CLI_FLAG, NULL, &resume, 0, 0, NULL, "", CLI_HIDDEN, NULL, 0}, /* the default */
        CLI_OPT_QUIET(&quiet),
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = "sweep", .synopsis = "RECIPE.yaml [options]", .about = ABOUT, .opts = opts,
                           .pos_name = "RECIPE.yaml", .pos = &recipe_path, .pos_min = 1, .pos_max = 1,
                           .footer = FOOTER};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    ov.sets = sets.v;
    ov.n_sets = (size_t)sets.n;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) snprintf(exe, sizeof exe, "%s", "/proc/self/exe");
    else exe[n] = 0;
    if (mp_recipe_load(recipe_path, &ov, &r, &err) < 0 || mp_plan_build(r, &p, &err) < 0) {
        status = cli_exit_error(&err);
        goto done;
    }
    if (mp_plan_claim_out(p, 0, &err) < 0) {
        status = cli_exit_error(&err);
        goto done;
    }
    if (json && !status_only) {
        status = cli_usage_error("sweep", "--json goes with --status");
        goto done;
    }
    so.extra = sbatch_args.v;
    so.n_extra = (size_t)sbatch_args.n;
    if (status_only) {
        int all_done = 0, n_failed = 0;
        if (mp_slurm_status(p, json, stdout, &all_done, &n_failed, &err) < 0) {
            status = cli_exit_error(&err);
            goto done;
        }
        if (all_done) { /* every output exists: the report (what the last Slurm job runs) */
            for (size_t i = 0; i < p->n_steps; i++) p->steps[i].cached = 1;
            if (mp_report_write(p, exe, NULL, &err) < 0) {
                status = cli_exit_error(&err);
                goto done;
            }
            if (!json) {
                print_table(p->out_dir);
                printf("wrote %s/results.json, %s/results.csv, %s/report.html\n", p->out_dir, p->out_dir, p->out_dir);
            }
        }
        goto done;
    }
    if (executor == 1) {
        if (!(rargv = report_argv(exe, recipe_path, &ov, p->out_dir))) {
            mp_fail(&err, MP_ENOMEM, "out of memory");
            status = cli_exit_error(&err);
            goto done;
        }
        so.report_argv = rargv;
        int n_jobs = 0;
        if (dry) {
            mp_plan_print(p, exe, stdout);
            if (mp_slurm_submit(p, exe, &so, 1, stdout, &n_jobs, &err) < 0) {
                status = cli_exit_error(&err);
                goto done;
            }
            printf("# %d jobs\n", n_jobs);
            goto done;
        }
        if (mp_plan_preflight(p, &err) < 0 || mp_slurm_submit(p, exe, &so, 0, stdout, &n_jobs, &err) < 0) {
            status = cli_exit_error(&err);
            goto done;
        }
        size_t left = 0;
        char done_path[4200];
        for (size_t i = 0; i < p->n_steps; i++) {
            snprintf(done_path, sizeof done_path, "%s/DONE", p->steps[i].dir);
            left += access(done_path, F_OK) != 0;
        }
        if (left == 0) { /* everything was cached: the report now, as the local executor */
            for (size_t i = 0; i < p->n_steps; i++) p->steps[i].cached = 1;
            if (mp_report_write(p, exe, NULL, &err) < 0) {
                status = cli_exit_error(&err);
                goto done;
            }
            printf("sweep %s: %zu steps, all cached: nothing submitted\n", r->name, p->n_steps);
            print_table(p->out_dir);
            printf("wrote %s/results.json, %s/results.csv, %s/report.html\n", p->out_dir, p->out_dir, p->out_dir);
            goto done;
        }
        printf("sweep %s: %d jobs submitted for %zu of %zu steps (jobs in %s/slurm/jobs.tsv, logs in %s/slurm/logs/);"
               " the last job writes the report; follow with: monet-probe sweep %s --out %s --status\n",
               r->name, n_jobs, left, p->n_steps, p->out_dir, p->out_dir, recipe_path, p->out_dir);
        goto done;
    }
    if (dry) {
        /* the plan, then what the check before step 1 finds on this machine (a real run refuses then) */
        mp_plan_print(p, exe, stdout);
        if (mp_plan_preflight(p, &err) < 0) {
            const char *why = strstr(err.msg, "before step 1: ");
            printf("check before step 1: a run would not start: %s\n", why ? why + 15 : err.msg);
        }
        else printf("check before step 1: ok (model, data files, toolchains)\n");
        goto done;
    }
    if (mp_plan_preflight(p, &err) < 0) {
        status = cli_exit_error(&err);
        goto done;
    }
    /* progress (a redrawn line with the inner command's progress) only on a terminal */
    FILE *progress = !quiet && isatty(fileno(stderr)) ? stderr : NULL;
    if (mp_plan_execute(p, exe, n_par, progress, &err) < 0) {
        /* keep what finished: a partial report with the failure marked, then the error */
        mp_error rerr = {0};
        if (p->n_steps && mp_report_write(p, exe, err.msg, &rerr) == 0) {
            print_table(p->out_dir);
            printf("partial report (sweep failed): %s/results.json, %s/report.html\n", p->out_dir, p->out_dir);
        }
        fflush(stdout);
        status = cli_exit_error(&err);
        goto done;
    }
    if (mp_report_write(p, exe, NULL, &err) < 0) {
        status = cli_exit_error(&err);
        goto done;
    }
    size_t ran = 0;
    for (size_t i = 0; i < p->n_steps; i++) ran += p->steps[i].ran != 0;
    printf("sweep %s: %zu steps, %zu ran, %zu cached\n", r->name, p->n_steps, ran, p->n_steps - ran);
    print_table(p->out_dir);
    printf("wrote %s/results.json, %s/results.csv, %s/report.html\n", p->out_dir, p->out_dir, p->out_dir);
done:
    free_report_argv(rargv);
    mp_plan_free(p);
    mp_recipe_free(r);
    return status;
}
