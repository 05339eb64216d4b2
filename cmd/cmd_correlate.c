/* cmd/cmd_correlate.c — `monet-probe correlate`: Pearson correlation of each
 * expert's routing score with a numeric score (e.g. toxicity), experts sorted
 * by correlation. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analysis/analysis.h"
#include "cli.h"

static const char *ABOUT =
    "  Pearson r between each expert's routing score and the score F (collected with\n"
    "  `collect --score-field F`), over all scored tokens (--per token: x = w_ij at the token, 0\n"
    "  when inactive; y = its document's score) or documents (--per doc: x = mean w_ij over the\n"
    "  document's tokens). Experts sorted by r, with the number of samples.";

int cmd_correlate(int argc, char **argv) {
    const char *store_path = NULL, *field = NULL;
    int per_doc = 0, json = 0;
    long top = 20, min_count = 1;
    const cli_opt opts[] = {
        CLI_OPT_STORE(&store_path, CLI_REQUIRED),
        CLI_OPT_SCORE_FIELD(&field, CLI_REQUIRED),
        {"--per", NULL, CLI_CHOICE, NULL, &per_doc, 0, 0, "token|doc", "correlate over tokens (default) or documents",
         0, NULL, 0},
        CLI_OPT_MIN_COUNT(&min_count, "list only experts active on >= N tokens (default 1)"),
        CLI_OPT_TOP(&top, "experts listed (default 20; 0 = all)"),
        CLI_OPT_JSON(&json),
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = "correlate", .about = ABOUT, .opts = opts};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
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
