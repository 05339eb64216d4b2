/* cmd/cmd_purge.c — `monet-probe purge`: turn a specialization or correlation
 * criterion into an expert mask file (docs/mask.md) for knowledge unlearning. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "analysis/analysis.h"
#include "cli.h"
#include "core/model/mask.h"

static const char *ABOUT =
    "  Emit a mask of the experts to purge and print the masking ratio (masked / groups x E^2).\n"
    "  Exactly one criterion: --domain L / --lang L / --label F=L (the specialists of label L in\n"
    "  field domain / lang / F: p(L) >= X * p(second label), X default 2, the paper's rule), or\n"
    "  --toxicity (experts whose Pearson r with the score field, per token by default, is >= X;\n"
    "  X default 0.2; the paper sweeps 0.2, 0.1, 0.05).";

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
    char label_buf[256], found_label[256];
    int toxicity = 0, per_doc = 0, have_threshold = 0, explicit_field = 0;
    double threshold = 0;
    long min_count = 10;
    mp_measure measure = MP_MEASURE_MEAN_W;
    const char *domain = NULL, *lang = NULL, *select = NULL;
    int measure_ix = 0;
    const cli_opt opts[] = {
        CLI_OPT_STORE(&store_path, CLI_REQUIRED),
        CLI_OPT_OUT(&out, "MASK.json", "the mask file to write (docs/mask.md)", CLI_REQUIRED),
        {"--domain", NULL, CLI_STR, "L", &domain, 0, 0, NULL, "specialists of label L in the field 'domain'", 0, NULL,
         0},
        {"--lang", NULL, CLI_STR, "L", &lang, 0, 0, NULL, "specialists of label L in the field 'lang'", 0, NULL, 0},
        CLI_OPT_LABEL_SELECT(&select, "specialists of label L in the field F"),
        {"--toxicity", NULL, CLI_FLAG, NULL, &toxicity, 0, 0, NULL, "experts correlated with the score field", 0, NULL,
         0},
        {"--threshold", NULL, CLI_DOUBLE, "X", &threshold, -1, 1e9, NULL,
         "skew ratio (default 2) or Pearson r (default 0.2) threshold", 0, NULL, 0},
        {"--measure", NULL, CLI_CHOICE, NULL, &measure_ix, 0, 0, "mean|freq", "specialization measure (specialize --help)",
         0, NULL, 0},
        CLI_OPT_MIN_COUNT(&min_count, "ignore experts active on fewer than N tokens (default 10)"),
        {"--score-field", NULL, CLI_STR, "F", &score_field, 0, 0, NULL, "score field for --toxicity (default toxicity)",
         0, NULL, 0},
        {"--per", NULL, CLI_CHOICE, NULL, &per_doc, 0, 0, "token|doc", "correlate per token (default) or document", 0,
         NULL, 0},
        CLI_OPT_END,
    };
    threshold = NAN;
    const cli_spec spec = {.cmd = "purge", .about = ABOUT, .opts = opts};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    if (!!domain + !!lang + !!select > 1)
        return cli_usage_error("purge", "give one of --domain, --lang and --label");
    measure = measure_ix ? MP_MEASURE_FREQ : MP_MEASURE_MEAN_W;
    have_threshold = !isnan(threshold);
    if (domain || lang) {
        field = domain ? "domain" : "lang";
        label = domain ? domain : lang;
    } else if (select) {
        const char *eq = strchr(select, '=');
        if (!eq[1] || (size_t)(eq - select) >= sizeof label_buf)
            return cli_usage_error("purge", "--label needs FIELD=LABEL");
        memcpy(label_buf, select, (size_t)(eq - select));
        label_buf[eq - select] = '\0';
        field = label_buf;
        label = eq + 1;
        explicit_field = 1;
    }
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
        /* --domain / --lang: the named field first, then the other one and every
         * label field of the store, so `--domain python` works on a store of
         * language-labelled code; label values match case-insensitively */
        const char *fields[16];
        int nf = 0;
        char *meta_fields = NULL;
        fields[nf++] = field;
        if (!explicit_field) {
            fields[nf++] = strcmp(field, "domain") ? "domain" : "lang";
            if (mp_store_meta_get(st, "label_fields", &meta_fields, &err) > 0)
                for (char *tok = strtok(meta_fields, ","); tok && nf < 16; tok = strtok(NULL, ","))
                    if (strcmp(tok, "domain") && strcmp(tok, "lang")) fields[nf++] = tok;
        }
        mp_spec_opts o = {NULL, measure, threshold, min_count};
        char tried[512] = "";
        size_t tl = 0;
        const char *used = NULL, *used_label = NULL;
        for (int f = 0; f < nf && !used && rc == 0; f++) {
            mp_spec_result r;
            o.field = fields[f];
            mp_error ferr;
            if (mp_specialize(st, &o, &r, &ferr) < 0) { /* field not collected here: try the next */
                if (ferr.code != MP_EINPUT) rc = mp_fail(&err, ferr.code, "%s", ferr.msg);
                size_t pl = strlen(store_path); /* why this field cannot serve, without the store's name */
                const char *why = !strncmp(ferr.msg, store_path, pl) && !strncmp(ferr.msg + pl, ": ", 2)
                                      ? ferr.msg + pl + 2 : ferr.msg;
                if (strncmp(why, "no statistics for label field", 29) && tl < sizeof tried)
                    tl += (size_t)snprintf(tried + tl, sizeof tried - tl, "%s%s", tl ? "; " : "", why);
                continue;
            }
            int c = -1;
            for (int k = 0; k < r.n_labels; k++)
                if (!strcmp(r.labels[k], label) || (c < 0 && !strcasecmp(r.labels[k], label))) c = k;
            if (c >= 0) {
                used = fields[f];
                snprintf(found_label, sizeof found_label, "%s", r.labels[c]);
                used_label = found_label;
                rc = add_all(mk, &r, c, &err);
            } else {
                tl += (size_t)snprintf(tried + tl, tl < sizeof tried ? sizeof tried - tl : 0, "%s%s: ", tl ? "; " : "",
                                       fields[f]);
                for (int k = 0; k < r.n_labels && tl + 40 < sizeof tried; k++)
                    tl += (size_t)snprintf(tried + tl, sizeof tried - tl, "%s%s", k ? ", " : "", r.labels[k]);
            }
            mp_spec_result_free(&r);
        }
        if (rc == 0 && !used)
            rc = mp_fail(&err, MP_EINPUT, "%s: no label '%s' in the collected label fields (%s)", store_path, label,
                         tl ? tried : "none collected: use collect --label FIELD");
        if (rc == 0) {
            cJSON *cj = cJSON_CreateObject();
            cJSON_AddStringToObject(cj, "kind", "specialist");
            cJSON_AddStringToObject(cj, "field", used);
            cJSON_AddStringToObject(cj, "label", used_label);
            cJSON_AddStringToObject(cj, "measure", measure == MP_MEASURE_FREQ ? "freq" : "mean");
            cJSON_AddStringToObject(cj, "rule", "p(label) >= threshold * p(second label)");
            cJSON_AddNumberToObject(cj, "threshold", threshold);
            cJSON_AddNumberToObject(cj, "min_count", (double)min_count);
            cJSON_AddStringToObject(cj, "store", store_path);
            char *t = cJSON_PrintUnformatted(cj);
            snprintf(crit, sizeof crit, "%s", t ? t : "null");
            free(t);
            cJSON_Delete(cj);
            if (strcmp(used, field) || strcmp(used_label, label))
                printf("purge: label '%s' found as %s=%s\n", label, used, used_label);
        }
        free(meta_fields);
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
