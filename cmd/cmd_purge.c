/* cmd/cmd_purge.c — `monet-probe purge`: turn a specialization or correlation
 * criterion into an expert mask file (docs/mask.md) for knowledge unlearning. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"
#include "cli.h"
#include "core/mask.h"

static const char *USAGE =
    "usage: monet-probe purge --store STORE.db (--domain L | --lang L | --label F=L | --toxicity)\n"
    "                         [--threshold X] [--measure mean|freq] [--min-count N]\n"
    "                         [--score-field F] [--per token|doc] --out MASK.json\n"
    "  Emit a mask of the experts to purge and print the masking ratio (masked / groups x E^2).\n"
    "  --domain L / --lang L / --label F=L\n"
    "        specialists of label L in field domain / lang / F: p(L) >= X * p(second label)\n"
    "        (X default 2, the paper's rule; see `specialize --help` for --measure, --min-count)\n"
    "  --toxicity\n"
    "        experts whose Pearson r with the score field (default 'toxicity', per token) is >= X\n"
    "        (X default 0.2; the paper sweeps 0.2, 0.1, 0.05)\n";

static int add_all(mp_mask *mk, const mp_spec_result *r, int label, mp_error *err) {
    for (size_t k = 0; k < r->n_experts; k++) {
        const mp_spec_expert *e = &r->experts[k];
        if (e->specialist && e->label == label)
            MP_TRY(mp_mask_add(mk, e->group, (int)(e->expert / r->E), (int)(e->expert % r->E), err));
    }
    return 0;
}

int cmd_purge(int argc, char **argv) {
    const char *store_path = NULL, *out = NULL, *field = NULL, *label = NULL, *score_field = "toxicity";
    char label_buf[256];
    int toxicity = 0, per_doc = 0, have_threshold = 0;
    double threshold = 0;
    long min_count = 10;
    mp_measure measure = MP_MEASURE_MEAN_W;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is_help(a)) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "--store")) {
            if (!(store_path = cli_opt_value("purge", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--out")) {
            if (!(out = cli_opt_value("purge", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--domain") || !strcmp(a, "--lang")) {
            if (!(label = cli_opt_value("purge", argc, argv, &i))) return 2;
            field = !strcmp(a, "--domain") ? "domain" : "lang";
        } else if (!strcmp(a, "--label")) {
            if (!(v = cli_opt_value("purge", argc, argv, &i))) return 2;
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1] || (size_t)(eq - v) >= sizeof label_buf)
                return cli_usage_error("purge", "--label needs FIELD=LABEL");
            memcpy(label_buf, v, (size_t)(eq - v));
            label_buf[eq - v] = '\0';
            field = label_buf;
            label = eq + 1;
        } else if (!strcmp(a, "--toxicity")) {
            toxicity = 1;
        } else if (!strcmp(a, "--score-field")) {
            if (!(score_field = cli_opt_value("purge", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--per")) {
            if (!(v = cli_opt_value("purge", argc, argv, &i))) return 2;
            if (strcmp(v, "token") && strcmp(v, "doc")) return cli_usage_error("purge", "--per must be token or doc");
            per_doc = !strcmp(v, "doc");
        } else if (!strcmp(a, "--threshold")) {
            if (!(v = cli_opt_value("purge", argc, argv, &i))) return 2;
            if (cli_parse_double(v, -1.0, 1e9, &threshold)) return cli_usage_error("purge", "bad --threshold '%s'", v);
            have_threshold = 1;
        } else if (!strcmp(a, "--measure")) {
            if (!(v = cli_opt_value("purge", argc, argv, &i))) return 2;
            if (strcmp(v, "mean") && strcmp(v, "freq")) return cli_usage_error("purge", "--measure must be mean or freq");
            measure = !strcmp(v, "freq") ? MP_MEASURE_FREQ : MP_MEASURE_MEAN_W;
        } else if (!strcmp(a, "--min-count")) {
            if (!(v = cli_opt_value("purge", argc, argv, &i))) return 2;
            if (cli_parse_long(v, 0, 1L << 62, &min_count)) return cli_usage_error("purge", "bad --min-count");
        } else {
            return cli_usage_error("purge", "unknown argument '%s'", a);
        }
    }
    if (!store_path || !out) return cli_usage_error("purge", "--store STORE.db and --out MASK are required");
    if (!!label + toxicity != 1)
        return cli_usage_error("purge", "give exactly one criterion: --domain, --lang, --label or --toxicity");
    if (!have_threshold) threshold = toxicity ? 0.2 : 2.0;

    mp_error err;
    mp_store *st = NULL;
    mp_mask *mk = NULL;
    char *model_path = NULL;
    char crit[1024];
    int rc = mp_store_open(store_path, MP_STORE_READ, &st, &err);
    int nG = 0, E = 0;
    if (rc == 0) rc = mp_analysis_shape(st, &nG, &E, &err);
    if (rc == 0) rc = mp_mask_create(nG, E, &mk, &err);
    if (rc == 0 && mp_store_meta_get(st, "model_path", &model_path, &err) < 0) rc = err.code;
    if (rc == 0 && toxicity) {
        mp_corr_result r;
        if ((rc = mp_correlate(st, score_field, per_doc, &r, &err)) == 0) {
            for (size_t k = 0; k < r.n_experts && rc == 0; k++)
                if (!isnan(r.experts[k].r) && r.experts[k].r >= threshold && r.experts[k].n_active >= min_count)
                    rc = mp_mask_add(mk, r.experts[k].group, (int)(r.experts[k].expert / E),
                                     (int)(r.experts[k].expert % E), &err);
            mp_corr_result_free(&r);
        }
        snprintf(crit, sizeof crit,
                 "{\"kind\": \"correlation\", \"score_field\": \"%s\", \"per\": \"%s\", \"rule\": \"pearson_r >= "
                 "threshold\", \"threshold\": %g, \"min_count\": %ld, \"store\": \"%s\"}",
                 score_field, per_doc ? "doc" : "token", threshold, min_count, store_path);
    } else if (rc == 0) {
        mp_spec_opts o = {field, measure, threshold, min_count};
        mp_spec_result r;
        if ((rc = mp_specialize(st, &o, &r, &err)) == 0) {
            int c = -1;
            for (int k = 0; k < r.n_labels; k++)
                if (!strcmp(r.labels[k], label)) c = k;
            if (c < 0) {
                size_t o2 = 0;
                char known[256] = "";
                for (int k = 0; k < r.n_labels && o2 < sizeof known - 40; k++)
                    o2 += (size_t)snprintf(known + o2, sizeof known - o2, "%s%s", k ? ", " : "", r.labels[k]);
                rc = mp_fail(&err, MP_EINPUT, "%s: label '%s' has no data in field '%s' (labels: %s)", store_path,
                             label, field, known);
            } else {
                rc = add_all(mk, &r, c, &err);
            }
            mp_spec_result_free(&r);
        }
        snprintf(crit, sizeof crit,
                 "{\"kind\": \"specialist\", \"field\": \"%s\", \"label\": \"%s\", \"measure\": \"%s\", \"rule\": "
                 "\"p(label) >= threshold * p(second label)\", \"threshold\": %g, \"min_count\": %ld, \"store\": \"%s\"}",
                 field, label, measure == MP_MEASURE_FREQ ? "freq" : "mean", threshold, min_count, store_path);
    }
    if (rc == 0) rc = mp_mask_save(mk, NULL, out, model_path, crit, &err);
    if (rc == 0) {
        double total = (double)nG * E * E;
        printf("purge: %zu of %.0f experts masked (%.3f%%) ->  %s\n", mk->count, total, 100.0 * mk->count / total, out);
        for (int g = 0; g < nG; g++)
            printf("  group %d: %zu (%.3f%%)\n", g, mk->per_group[g], 100.0 * mk->per_group[g] / ((double)E * E));
    }
    free(model_path);
    mp_mask_free(mk);
    mp_store_close(st);
    return rc < 0 ? cli_exit_error(&err) : 0;
}
