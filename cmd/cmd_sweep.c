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

static const char *USAGE =
    "usage: monet-probe sweep RECIPE.yaml [--dry-run] [--model DIR] [--out DIR] [--limit N]\n"
    "                         [--set KEY=VALUE]... [--quiet]\n"
    "  Run a whole study from one YAML recipe (docs/recipes.md): collect a store, find the masks\n"
    "  (specialists per target, or experts correlated with a score, per threshold), evaluate the\n"
    "  base model and every mask, and write OUT/results.json, OUT/results.csv, OUT/report.html.\n"
    "  Every step is a monet-probe command whose outputs are cached under OUT/cache/<key>/ (key =\n"
    "  SHA-256 of the command, its input files and the model): a re-run, or a run after a crash or\n"
    "  with an added threshold, only runs what is new (resuming is the default).\n"
    "  --dry-run       print the plan: steps, cached or to run, and the equivalent commands\n"
    "  --model DIR     use another checkpoint (e.g. a public Monet model)\n"
    "  --out DIR       output directory (default: the recipe's 'out', else runs/NAME)\n"
    "  --limit N       set every evaluation's limit (ppl: max_docs) to N, for quick runs\n"
    "  --set KEY=VAL   override a recipe value: --set criterion.thresholds=[0.2,0.1]\n"
    "                  --set evals.0.limit=50 --set collect.max_tokens=0 (VAL is YAML)\n"
    "  --quiet         no progress lines\n"
    "  Paths in the recipe are relative to the current directory (run from the repository root).\n";

int cmd_sweep(int argc, char **argv) {
    const char *recipe_path = NULL, *v;
    int dry = 0, quiet = 0;
    mp_recipe_overrides ov = {0};
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    mp_recipe *r = NULL;
    mp_plan *p = NULL;
    mp_error err = {0};
    int status = 0;
    if (!sets) return 1;
    ov.sets = sets;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(USAGE, stdout);
            goto done;
        } else if (!strcmp(a, "--dry-run")) {
            dry = 1;
        } else if (!strcmp(a, "--resume")) {
            /* the default: kept for scripts that say it */
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--model")) {
            if (!(ov.model = cli_opt_value("sweep", argc, argv, &i))) { status = 2; goto done; }
        } else if (!strcmp(a, "--out")) {
            if (!(ov.out = cli_opt_value("sweep", argc, argv, &i))) { status = 2; goto done; }
        } else if (!strcmp(a, "--set")) {
            if (!(v = cli_opt_value("sweep", argc, argv, &i))) { status = 2; goto done; }
            sets[ov.n_sets++] = v;
        } else if (!strcmp(a, "--limit")) {
            if (!(v = cli_opt_value("sweep", argc, argv, &i))) { status = 2; goto done; }
            if (cli_parse_long(v, 1, 1L << 40, &ov.limit)) {
                status = cli_usage_error("sweep", "bad --limit '%s'", v);
                goto done;
            }
        } else if (a[0] == '-' && a[1]) {
            status = cli_usage_error("sweep", "unknown option '%s'", a);
            goto done;
        } else if (!recipe_path) {
            recipe_path = a;
        } else {
            status = cli_usage_error("sweep", "one recipe at a time ('%s')", a);
            goto done;
        }
    }
    if (!recipe_path) {
        status = cli_usage_error("sweep", "missing RECIPE.yaml");
        goto done;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) snprintf(exe, sizeof exe, "%s", "/proc/self/exe");
    else exe[n] = 0;
    if (mp_recipe_load(recipe_path, &ov, &r, &err) < 0 || mp_plan_build(r, &p, &err) < 0) {
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
    free(sets);
    return status;
}
