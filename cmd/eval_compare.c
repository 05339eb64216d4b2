/* cmd/eval_compare.c — `monet-probe eval compare BASE.json MASKED.json`: a
 * purge report in the layout of the paper's Tables 3, 4, 5 and 11: per row
 * (subject, category, task, label) base, masked and Δ = masked − base, and
 * with --target NAME the Δ of the target against the mean Δ of the other rows
 * of the same kind (MMLU: a category; ppl: a label value; general: a task).
 * Rows that carry per-item scores in both results get a paired comparison
 * (core/eval/eval_stats: paired bootstrap interval, McNemar for accuracy);
 * other rows with standard errors get an unpaired normal interval. Deltas
 * whose interval holds 0 are marked "~" (not distinguishable from zero). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/eval/eval_result.h"
#include "core/eval/eval_stats.h"

static const char *ABOUT =
    "  Base vs masked results written by `eval mmlu|general|ppl|toxicity --json OUT`: per row base,\n"
    "  masked, delta (masked - base); with --target, delta of the target vs the mean delta of the\n"
    "  other rows of its kind. Each delta gets a confidence interval: paired bootstrap over the items\n"
    "  both results scored (and McNemar's exact p for accuracy), else unpaired from the two standard\n"
    "  errors; '~' marks a delta not distinguishable from zero at --level.";

/* Interval of masked - base for one row pair: paired when both carry the same
 * items, else unpaired normal from the standard errors. @return 0, -1 (none), or an error. */
static int row_interval(const mp_eval_row *x, const mp_eval_row *y, int boots, double level, mp_paired *pr,
                        int *paired, mp_error *err) {
    *paired = 0;
    if (x->items && y->items && x->n_items == y->n_items && x->n_items >= 2 && !x->item_w == !y->item_w) {
        *paired = 1;
        return mp_paired_compare(x->items, x->item_w, y->items, y->item_w, x->n_items, boots, level, 1234, pr, err);
    }
    if (isnan(x->se) || isnan(y->se)) return -1;
    memset(pr, 0, sizeof *pr);
    double z = level >= 0.99 ? 2.5758293035489 : level >= 0.95 ? 1.959963984540054 : 1.6448536269514722;
    pr->delta = y->value - x->value;
    pr->se = sqrt(x->se * x->se + y->se * y->se);
    pr->lo = pr->delta - z * pr->se;
    pr->hi = pr->delta + z * pr->se;
    pr->p_mcnemar = NAN;
    pr->distinguishable = pr->lo > 0 || pr->hi < 0;
    return 0;
}

static int kind_seen(const mp_eval_result *r, size_t upto, const char *kind) {
    for (size_t i = 0; i < upto; i++)
        if (!strcmp(r->rows[i].kind, kind)) return 1;
    return 0;
}

int cmd_eval_compare(int argc, char **argv) {
    const char *cmd = "eval compare", *files[2] = {NULL, NULL}, *target = NULL, *kind = NULL, *level_s = "95";
    long boots = 1000;
    const cli_opt opts[] = {
        {"--target", NULL, CLI_STR, "NAME", &target, 0, 0, NULL,
         "the purged domain: an MMLU category (e.g. biology), a ppl label value\n"
         "(e.g. python) or a general task", 0, NULL, 0},
        {"--kind", NULL, CLI_STR, "K", &kind, 0, 0, NULL,
         "rows the target is looked up in (default: category, label, task, subject,\n"
         "supercategory, column: the first that has NAME)", 0, NULL, 0},
        {"--bootstrap", NULL, CLI_LONG, "N", &boots, 100, 100000, NULL,
         "paired bootstrap resamples (default 1000; seed fixed: reports are reproducible)", 0, NULL, 0},
        {"--level", NULL, CLI_CHOICE_STR, NULL, &level_s, 0, 0, "90|95|99", "confidence level in percent (default 95)", 0,
         NULL, 0},
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = cmd, .synopsis = "BASE.json MASKED.json [--target NAME] [--kind K] [--bootstrap N] [--level P]",
                           .about = ABOUT, .opts = opts, .pos_name = "BASE.json MASKED.json", .pos = files,
                           .pos_min = 2, .pos_max = 2};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
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
    const double level = atof(level_s) / 100.0;
    printf("intervals: %s%% paired bootstrap over items (%ld resamples) where both results carry items, else\n"
           "unpaired from the standard errors; p = McNemar exact (accuracy); ~ = not distinguishable from 0\n",
           level_s, boots);
    size_t missing = 0;
    for (size_t i = 0; i < b.n_rows && rc == 0; i++) {
        const char *k = b.rows[i].kind;
        if (kind_seen(&b, i, k)) continue;
        printf("\n%-36s %6s %9s %9s %9s  %-21s %8s\n", k, "n", "base", "masked", "delta", "interval", "p");
        for (size_t j = i; j < b.n_rows && rc == 0; j++) {
            const mp_eval_row *x = &b.rows[j];
            if (strcmp(x->kind, k)) continue;
            const mp_eval_row *y = mp_eval_result_find(&m, k, x->name);
            if (!y) {
                missing++;
                printf("%-36s %6zu %9.4f %9s %9s\n", x->name, x->n, x->value, "-", "-");
                continue;
            }
            int is_t = tkind && !strcmp(k, tkind) && !strcmp(x->name, target);
            mp_paired pr;
            int paired = 0, irc = row_interval(x, y, (int)boots, level, &pr, &paired, &err);
            if (irc < -1) {
                rc = irc;
                break;
            }
            printf("%-36s %6zu %9.4f %9.4f %+9.4f", x->name, x->n, x->value, y->value, y->value - x->value);
            if (irc == 0) {
                char iv[64], pv[16] = "-";
                snprintf(iv, sizeof iv, "[%+.4f, %+.4f]%s", pr.lo, pr.hi, paired ? "" : "u");
                if (!isnan(pr.p_mcnemar)) snprintf(pv, sizeof pv, "%.3g", pr.p_mcnemar);
                printf("  %-21s %8s %s", iv, pv, pr.distinguishable ? " " : "~");
            }
            printf("%s\n", is_t ? "  <- target" : "");
        }
    }
    if (rc < 0) goto cleanup;
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
        const mp_eval_row *tb = mp_eval_result_find(&b, tkind, target), *tm = mp_eval_result_find(&m, tkind, target);
        mp_paired tp;
        int paired = 0;
        if (tb && tm && row_interval(tb, tm, (int)boots, level, &tp, &paired, &err) == 0)
            printf("target delta %s interval [%+.4f, %+.4f]%s\n", paired ? "paired" : "unpaired", tp.lo, tp.hi,
                   tp.distinguishable ? "" : ": not distinguishable from 0");
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
