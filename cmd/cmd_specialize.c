/* cmd/cmd_specialize.c — `monet-probe specialize`: per label, how many
 * experts of each router group are specialists (the paper's Tables 9/10
 * layout) and the top specialists with their scores. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"
#include "cli.h"

static const char *ABOUT =
    "  Domain / language specialists (Monet paper, \u00a75 and the knowledge-unlearning appendix): an\n"
    "  expert is a specialist of label c when its routing probability for c is at least R times\n"
    "  that of the second most activated label (R = 2 in the paper), per router group.";


static int cmp_spec(const void *a, const void *b) {
    const mp_spec_expert *x = *(const mp_spec_expert *const *)a, *y = *(const mp_spec_expert *const *)b;
    if (x->skew != y->skew) return x->skew > y->skew ? -1 : 1; /* INFINITY first */
    if (x->best != y->best) return x->best > y->best ? -1 : 1;
    if (x->group != y->group) return x->group - y->group;
    return (x->expert > y->expert) - (x->expert < y->expert);
}

static void json_skew(double s) {
    if (isinf(s)) printf("null");
    else printf("%.6g", s);
}

int cmd_specialize(int argc, char **argv) {
    const char *store_path = NULL, *field = NULL;
    mp_spec_opts o = {NULL, MP_MEASURE_MEAN_W, 2.0, 10};
    long top = 10, min_count = 10;
    int json = 0, csv = 0, measure_ix = 0;
    const cli_opt opts[] = {
        CLI_OPT_STORE(&store_path, CLI_REQUIRED),
        CLI_OPT_LABEL_FIELD(&field, CLI_REQUIRED),
        {"--measure", NULL, CLI_CHOICE, NULL, &measure_ix, 0, 0, "mean|freq",
         "mean: routing probability = mean routing score w over the label's tokens\n"
         "(inactive tokens count 0; the paper's reading, default);\n"
         "freq: share of the label's tokens where the expert is active", 0, NULL, 0},
        {"--ratio", NULL, CLI_DOUBLE, "R", &o.ratio, 1, 1e9, NULL, "skew threshold (default 2)", 0, NULL, 0},
        CLI_OPT_MIN_COUNT(&min_count, "ignore experts active on fewer than N tokens in all (default 10)"),
        CLI_OPT_TOP(&top, "specialists listed per label (default 10; 0 = all)"),
        CLI_OPT_JSON(&json),
        CLI_OPT_CSV(&csv),
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = "specialize", .about = ABOUT, .opts = opts};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    if (json && csv) return cli_usage_error("specialize", "choose one of --json and --csv");
    o.measure = measure_ix ? MP_MEASURE_FREQ : MP_MEASURE_MEAN_W;
    o.field = field;
    o.min_count = min_count;
    mp_error err;
    mp_store *st = NULL;
    mp_spec_result r;
    if (mp_store_open(store_path, MP_STORE_READ, &st, &err) < 0) return cli_exit_error(&err);
    if (mp_specialize(st, &o, &r, &err) < 0) {
        mp_store_close(st);
        return cli_exit_error(&err);
    }
    /* specialists sorted per label */
    const mp_spec_expert **list = malloc((r.n_experts ? r.n_experts : 1) * sizeof *list);
    if (!list) {
        mp_spec_result_free(&r);
        mp_store_close(st);
        return cli_exit_error(&(mp_error){.code = MP_ENOMEM, .msg = "out of memory"});
    }
    size_t n_spec = 0;
    for (size_t k = 0; k < r.n_experts; k++)
        if (r.experts[k].specialist) list[n_spec++] = &r.experts[k];
    qsort(list, n_spec, sizeof *list, cmp_spec);
    const double total = (double)r.n_groups * r.E * r.E;
    const char *measure = o.measure == MP_MEASURE_FREQ ? "freq" : "mean";
    if (csv) {
        printf("label,group,expert_i,expert_j,flat_id,skew,p_label,p_second,n_active\n");
        for (size_t k = 0; k < n_spec; k++) {
            const mp_spec_expert *e = list[k];
            cli_csv_str(stdout, r.labels[e->label]);
            printf(",%d,%u,%u,%u,%s%.6g,%.6g,%.6g,%lld\n", e->group, e->expert / r.E,
                   e->expert % r.E, e->expert, isinf(e->skew) ? "inf" : "", isinf(e->skew) ? 0.0 : e->skew, e->best,
                   e->second, (long long)e->n_active);
        }
    } else if (json) {
        printf("{\"store\": ");
        cli_json_str(stdout, store_path);
        printf(", \"label_field\": ");
        cli_json_str(stdout, field);
        printf(", \"measure\": \"%s\", \"ratio\": %g, \"min_count\": %ld, \"n_groups\": %d, \"moe_experts\": %d, "
               "\"experts_with_stats\": %zu, \"specialists\": %zu, \"labels\": [",
               measure, o.ratio, min_count, r.n_groups, r.E, r.n_experts, n_spec);
        for (int c = 0; c < r.n_labels; c++) {
            printf("%s\n {\"label\": ", c ? "," : "");
            cli_json_str(stdout, r.labels[c]);
            printf(", \"tokens\": %lld, \"per_group\": [", (long long)r.label_tokens[c]);
            size_t tot = 0;
            for (int g = 0; g < r.n_groups; g++) {
                tot += r.specialists[(size_t)c * r.n_groups + g];
                printf("%s%zu", g ? ", " : "", r.specialists[(size_t)c * r.n_groups + g]);
            }
            printf("], \"total\": %zu, \"ratio_of_experts\": %.8f, \"top\": [", tot, tot / total);
            long shown = 0;
            for (size_t k = 0; k < n_spec; k++) {
                const mp_spec_expert *e = list[k];
                if (e->label != c || (top && shown >= top)) continue;
                printf("%s{\"group\": %d, \"i\": %u, \"j\": %u, \"skew\": ", shown ? ", " : "", e->group,
                       e->expert / r.E, e->expert % r.E);
                json_skew(e->skew);
                printf(", \"p_label\": %.6g, \"p_second\": %.6g, \"n_active\": %lld}", e->best, e->second,
                       (long long)e->n_active);
                shown++;
            }
            printf("]}");
        }
        printf("\n]}\n");
    } else {
        printf("store ");
        cli_term_str(stdout, store_path, 0);
        printf(": label field '");
        cli_term_str(stdout, field, 0);
        printf("', measure %s, specialist = p(best) >= %g x p(second), min %ld active tokens\n", measure, o.ratio,
               min_count);
        printf("%zu of %zu experts with statistics are specialists\n\n%-14s", n_spec, r.n_experts, "label");
        for (int g = 0; g < r.n_groups; g++) printf(" %8s%-2d", "group ", g);
        printf(" %8s %8s\n", "total", "ratio");
        for (int c = 0; c < r.n_labels; c++) {
            size_t tot = 0;
            char *lab = cli_term_dup(r.labels[c], 0);
            printf("%-14s", lab ? lab : "?");
            free(lab);
            for (int g = 0; g < r.n_groups; g++) {
                tot += r.specialists[(size_t)c * r.n_groups + g];
                printf(" %10zu", r.specialists[(size_t)c * r.n_groups + g]);
            }
            printf(" %8zu %7.3f%%\n", tot, 100.0 * tot / total);
        }
        for (int c = 0; c < r.n_labels; c++) {
            printf("\ntop specialists of '");
            cli_term_str(stdout, r.labels[c], 0);
            printf("' (%lld tokens):\n", (long long)r.label_tokens[c]);
            long shown = 0;
            for (size_t k = 0; k < n_spec; k++) {
                const mp_spec_expert *e = list[k];
                if (e->label != c || (top && shown >= top)) continue;
                char skew[32];
                if (isinf(e->skew)) snprintf(skew, sizeof skew, "only here");
                else snprintf(skew, sizeof skew, "%.2fx", e->skew);
                printf("  %d:%u,%u  skew %-10s p=%.4g (second %.4g), active on %lld tokens\n", e->group,
                       e->expert / r.E, e->expert % r.E, skew, e->best, e->second, (long long)e->n_active);
                shown++;
            }
            if (!shown) printf("  (none)\n");
        }
    }
    free(list);
    mp_spec_result_free(&r);
    mp_store_close(st);
    return 0;
}
