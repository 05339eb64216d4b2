/* cmd/cmd_sweep.c — `monet-probe sweep RECIPE.yaml`: load a recipe
 * (recipes/recipe.h), build its plan (recipes/plan.h), print it (--dry-run) or
 * run the steps that are not in the cache, then write results.json,
 * results.csv and report.html (recipes/report.h). docs/recipes.md. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "recipes/plan.h"
#include "recipes/recipe.h"
#include "recipes/report.h"

static const char *ABOUT =
    "  Run a whole study from one YAML recipe (docs/recipes.md): collect a store, find the masks\n"
    "  (specialists per target, or experts correlated with a score, per threshold), evaluate the\n"
    "  base model and every mask, and write OUT/results.json, OUT/results.csv, OUT/report.html.\n"
    "  Every step is a monet-probe command whose outputs are cached under OUT/cache/<key>/ (key =\n"
    "  SHA-256 of the command, its input files and the model): a re-run, or a run after a crash or\n"
    "  with an added threshold, only runs what is new (resuming is the default).";
static const char *FOOTER = "Paths in the recipe are relative to the current directory (run from the repository root).\n";

int cmd_sweep(int argc, char **argv) {
    const char *recipe_path = NULL;
    int dry = 0, quiet = 0, resume = 0;
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
        {"--resume", NULL, CLI_FLAG, NULL, &resume, 0, 0, NULL, "", CLI_HIDDEN, NULL, 0}, /* the default */
        CLI_OPT_QUIET(&quiet),
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = "sweep", .synopsis = "RECIPE.yaml [options]", .about = ABOUT, .opts = opts,
                           .pos_name = "RECIPE.yaml", .pos = &recipe_path, .pos_min = 1, .pos_max = 1,
                           .footer = FOOTER};
    int prc = cli_parse(&spec, argc, argv);
    if (prc) return prc == 1 ? 0 : prc;
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
    if (dry) {
        mp_plan_print(p, exe, stdout);
        goto done;
    }
    if (mp_plan_execute(p, exe, quiet ? NULL : stderr, &err) < 0 || mp_report_write(p, exe, &err) < 0) {
        status = cli_exit_error(&err);
        goto done;
    }
    size_t ran = 0;
    for (size_t i = 0; i < p->n_steps; i++) ran += p->steps[i].ran != 0;
    printf("sweep %s: %zu steps, %zu ran, %zu cached\n", r->name, p->n_steps, ran, p->n_steps - ran);
    printf("wrote %s/results.json, %s/results.csv, %s/report.html\n", p->out_dir, p->out_dir, p->out_dir);
done:
    mp_plan_free(p);
    mp_recipe_free(r);
    return status;
}
