/* cmd/cmd_correlate.c — `monet-probe correlate`: Pearson correlation of each
 * expert's routing score with a numeric score (e.g. toxicity), experts sorted
 * by correlation. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analysis/analysis.h"
#include "cli.h"

static const char *USAGE =
    "usage: monet-probe correlate --store STORE.db --score-field F [--per token|doc] [--min-count N]\n"
    "                             [--top N] [--json]\n"
    "  Pearson r between each expert's routing score and the score F (collected with\n"
    "  `collect --score F`), over all scored tokens (--per token: x = w_ij at the token, 0 when\n"
    "  inactive; y = its document's score) or documents (--per doc: x = mean w_ij over the\n"
    "  document's tokens). Experts sorted by r, with the number of samples.\n"
    "  --min-count N  list only experts active on >= N tokens (default 1)\n"
    "  --top N        experts listed (default 20; 0 = all)\n";

int cmd_correlate(int argc, char **argv) {
    const char *store_path = NULL, *field = NULL;
    int per_doc = 0, json = 0;
    long top = 20, min_count = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is_help(a)) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "--store")) {
            if (!(store_path = cli_opt_value("correlate", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--score-field")) {
            if (!(field = cli_opt_value("correlate", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--per")) {
            if (!(v = cli_opt_value("correlate", argc, argv, &i))) return 2;
            if (!strcmp(v, "token")) per_doc = 0;
            else if (!strcmp(v, "doc")) per_doc = 1;
            else return cli_usage_error("correlate", "--per must be token or doc");
        } else if (!strcmp(a, "--min-count")) {
            if (!(v = cli_opt_value("correlate", argc, argv, &i))) return 2;
            if (cli_parse_long(v, 0, 1L << 62, &min_count)) return cli_usage_error("correlate", "bad --min-count");
        } else if (!strcmp(a, "--top")) {
            if (!(v = cli_opt_value("correlate", argc, argv, &i))) return 2;
            if (cli_parse_long(v, 0, 1L << 30, &top)) return cli_usage_error("correlate", "bad --top");
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else {
            return cli_usage_error("correlate", "unknown argument '%s'", a);
        }
    }
    if (!store_path || !field) return cli_usage_error("correlate", "--store STORE.db and --score-field F are required");
    mp_error err;
    mp_store *st = NULL;
    mp_corr_result r;
    if (mp_store_open(store_path, MP_STORE_READ, &st, &err) < 0) return cli_exit_error(&err);
    if (mp_correlate(st, field, per_doc, &r, &err) < 0) {
        mp_store_close(st);
        return cli_exit_error(&err);
    }
    size_t defined = 0;
    for (size_t k = 0; k < r.n_experts; k++) defined += !isnan(r.experts[k].r);
    if (json) {
        printf("{\"store\": ");
        cli_json_str(stdout, store_path);
        printf(", \"score_field\": ");
        cli_json_str(stdout, field);
        printf(", \"per\": \"%s\", \"samples\": %.0f, \"mean\": %.6g, \"sd\": %.6g, \"experts_with_stats\": %zu, "
               "\"experts_defined\": %zu, \"experts\": [",
               per_doc ? "doc" : "token", r.n, r.mean_y, r.sd_y, r.n_experts, defined);
        long shown = 0;
        for (size_t k = 0; k < r.n_experts; k++) {
            const mp_corr_expert *e = &r.experts[k];
            if (isnan(e->r) || e->n_active < min_count || (top && shown >= top)) continue;
            printf("%s\n {\"group\": %d, \"i\": %u, \"j\": %u, \"r\": %.9g, \"n\": %.0f, \"n_active\": %lld}",
                   shown ? "," : "", e->group, e->expert / r.E, e->expert % r.E, e->r, e->n, (long long)e->n_active);
            shown++;
        }
        printf("\n]}\n");
    } else {
        printf("store %s: Pearson r of routing score vs '%s' per %s, %.0f samples (mean %.4f, sd %.4f)\n", store_path,
               field, per_doc ? "document" : "token", r.n, r.mean_y, r.sd_y);
        printf("%zu experts with statistics, %zu with a defined r\n\n  %-12s %9s %12s\n", r.n_experts, defined,
               "expert", "r", "active tok");
        long shown = 0;
        for (size_t k = 0; k < r.n_experts; k++) {
            const mp_corr_expert *e = &r.experts[k];
            if (isnan(e->r) || e->n_active < min_count || (top && shown >= top)) continue;
            char name[48];
            snprintf(name, sizeof name, "%d:%u,%u", e->group, e->expert / r.E, e->expert % r.E);
            printf("  %-12s %9.4f %12lld\n", name, e->r, (long long)e->n_active);
            shown++;
        }
    }
    mp_corr_result_free(&r);
    mp_store_close(st);
    return 0;
}
