/* cmd/eval_compare.c — `monet-probe eval compare BASE.json MASKED.json`: a
 * purge report in the layout of the paper's Tables 3, 4, 5 and 11: per row
 * (subject, category, task, label) base, masked and Δ = masked − base, and
 * with --target NAME the Δ of the target against the mean Δ of the other rows
 * of the same kind (MMLU: a category; ppl: a label value; general: a task). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "core/eval/eval_result.h"

static const char *ABOUT =
    "  Base vs masked results written by `eval mmlu|general|ppl|toxicity --json OUT`: per row base,\n"
    "  masked, delta (masked - base); with --target, delta of the target vs the mean delta of the\n"
    "  other rows of its kind.";

static int kind_seen(const mp_eval_result *r, size_t upto, const char *kind) {
    for (size_t i = 0; i < upto; i++)
        if (!strcmp(r->rows[i].kind, kind)) return 1;
    return 0;
}

int cmd_eval_compare(int argc, char **argv) {
    const char *cmd = "eval compare", *files[2] = {NULL, NULL}, *target = NULL, *kind = NULL;
    const cli_opt opts[] = {
        {"--target", NULL, CLI_STR, "NAME", &target, 0, 0, NULL,
         "the purged domain: an MMLU category (e.g. biology), a ppl label value\n"
         "(e.g. python) or a general task", 0, NULL, 0},
        {"--kind", NULL, CLI_STR, "K", &kind, 0, 0, NULL,
         "rows the target is looked up in (default: category, label, task, subject,\n"
         "supercategory, column: the first that has NAME)", 0, NULL, 0},
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = cmd, .synopsis = "BASE.json MASKED.json [--target NAME] [--kind K]",
                           .about = ABOUT, .opts = opts, .pos_name = "BASE.json MASKED.json", .pos = files,
                           .pos_min = 2, .pos_max = 2};
    int prc = cli_parse(&spec, argc, argv);
    if (prc) return prc == 1 ? 0 : prc;
    mp_error err;
    mp_error_clear(&err);
    mp_eval_result b, m;
    memset(&b, 0, sizeof b);
    memset(&m, 0, sizeof m);
    int rc = mp_eval_result_load(files[0], &b, &err);
    if (rc == 0) rc = mp_eval_result_load(files[1], &m, &err);
    if (rc == 0 && strcmp(b.eval, m.eval))
        rc = mp_fail(&err, MP_EINPUT, "%s is an '%s' result but %s is '%s': compare results of one eval", files[0],
                     b.eval, files[1], m.eval);
    if (rc < 0) goto cleanup;
    /* target kind */
    const char *tkind = NULL;
    if (target) {
        static const char *order[] = {"category", "label", "task", "subject", "supercategory", "column"};
        for (size_t k = 0; k < sizeof order / sizeof order[0] && !tkind; k++)
            if ((!kind || !strcmp(kind, order[k])) && mp_eval_result_find(&b, order[k], target)) tkind = order[k];
        if (!tkind && kind && mp_eval_result_find(&b, kind, target)) tkind = kind;
        if (!tkind) {
            rc = mp_fail(&err, MP_EINPUT, "%s: no %s row named '%s'", files[0], kind ? kind : "category/label/task",
                         target);
            goto cleanup;
        }
    }
    printf("eval %s, metric %s (%s is better)\nbase    %s (mask %s)\nmasked  %s (mask %s)\n", b.eval, b.metric,
           b.higher_is_better ? "higher" : "lower", files[0], b.mask ? b.mask : "none", files[1],
           m.mask ? m.mask : "none");
    size_t missing = 0;
    for (size_t i = 0; i < b.n_rows; i++) {
        const char *k = b.rows[i].kind;
        if (kind_seen(&b, i, k)) continue;
        printf("\n%-36s %6s %9s %9s %9s\n", k, "n", "base", "masked", "delta");
        for (size_t j = i; j < b.n_rows; j++) {
            const mp_eval_row *x = &b.rows[j];
            if (strcmp(x->kind, k)) continue;
            const mp_eval_row *y = mp_eval_result_find(&m, k, x->name);
            if (!y) {
                missing++;
                printf("%-36s %6zu %9.4f %9s %9s\n", x->name, x->n, x->value, "-", "-");
                continue;
            }
            int is_t = tkind && !strcmp(k, tkind) && !strcmp(x->name, target);
            printf("%-36s %6zu %9.4f %9.4f %+9.4f%s\n", x->name, x->n, x->value, y->value, y->value - x->value,
                   is_t ? "  <- target" : "");
        }
    }
    if (missing) printf("\n%zu rows of the base result are missing from the masked result\n", missing);
    if (tkind) {
        double dt = NAN, sum = 0;
        size_t n_others = 0;
        for (size_t j = 0; j < b.n_rows; j++) {
            const mp_eval_row *x = &b.rows[j];
            if (strcmp(x->kind, tkind)) continue;
            const mp_eval_row *y = mp_eval_result_find(&m, tkind, x->name);
            if (!y || isnan(y->value) || isnan(x->value)) continue;
            if (!strcmp(x->name, target)) dt = y->value - x->value;
            else {
                sum += y->value - x->value;
                n_others++;
            }
        }
        printf("\ntarget %s '%s': delta target %+.4f, mean delta others %+.4f (%zu %s rows)\n", tkind, target, dt,
               n_others ? sum / (double)n_others : NAN, n_others, tkind);
    }
    const mp_eval_row *ab = NULL, *am = NULL;
    for (size_t i = 0; i < b.n_rows && !ab; i++)
        if (!strcmp(b.rows[i].kind, "average")) ab = &b.rows[i];
    if (ab) am = mp_eval_result_find(&m, "average", ab->name);
    if (ab && am) printf("%s: base %.4f, masked %.4f, delta %+.4f\n", ab->name, ab->value, am->value, am->value - ab->value);
cleanup:
    mp_eval_result_free(&b);
    mp_eval_result_free(&m);
    return rc < 0 ? cli_exit_error(&err) : 0;
}
