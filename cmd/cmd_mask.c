/* cmd/cmd_mask.c — `monet-probe mask show|merge|invert`: inspect and combine
 * expert mask files (format: docs/mask.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/model/mask.h"

static const char *USAGE =
    "usage: monet-probe mask show MASK [--list] [--json]\n"
    "       monet-probe mask merge --out OUT MASK1 MASK2 [...]\n"
    "       monet-probe mask invert MASK --out OUT\n"
    "  show    masked experts per router group, masking ratio, criterion (--list: every R:I,J)\n"
    "  merge   union of masks for the same model shape\n"
    "  invert  every expert NOT in MASK (e.g. keep only a domain's specialists)\n"
    "  Mask files: docs/mask.md. Ratio = masked / (groups x E^2). `mask ACTION --help` for its options.\n";

typedef struct {
    int json, first;
    int cur;
} list_ctx;

static void print_expert(void *ctx, int r, int i, int j) {
    list_ctx *c = ctx;
    if (c->json) {
        printf("%s[%d, %d, %d]", c->first ? "" : ", ", r, i, j);
    } else {
        if (r != c->cur) printf("%sgroup %d:", c->cur >= 0 ? "\n" : "", r);
        printf(" %d:%d,%d", r, i, j);
    }
    c->first = 0;
    c->cur = r;
}

static int mask_show(int argc, char **argv) {
    const char *path = NULL;
    int list = 0, json = 0;
    const cli_opt opts[] = {
        {"--list", NULL, CLI_FLAG, NULL, &list, 0, 0, NULL, "every masked expert (R:I,J)", 0, NULL, 0},
        CLI_OPT_JSON(&json),
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = "mask show", .about = "  Masked experts per router group, masking ratio, criterion.",
                           .opts = opts, .pos_name = "MASK", .pos = &path, .pos_min = 1, .pos_max = 1};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    mp_error err;
    mp_mask *m = NULL;
    if (mp_mask_load(path, NULL, &m, &err) < 0) return cli_exit_error(&err);
    double total = (double)m->n_groups * m->E * m->E;
    int rc = 0;
    if (json) {
        printf("{\"mask\": ");
        cli_json_str(stdout, path);
        printf(", \"moe_experts\": %d, \"n_groups\": %d, \"masked\": %zu, \"ratio\": %.8f, "
               "\"criterion\": %s, \"per_group\": [",
               m->E, m->n_groups, m->count, m->count / total, m->criterion_json ? m->criterion_json : "null");
        for (int r = 0; r < m->n_groups; r++) printf("%s%zu", r ? ", " : "", m->per_group[r]);
        printf("]");
        if (list) {
            printf(", \"experts\": [");
            list_ctx c = {1, 1, -1};
            rc = mp_mask_foreach(m, print_expert, &c, &err);
            printf("]");
        }
        printf("}\n");
    } else {
        printf("mask       %s\nmodel      E=%d (%lld experts per group), %d router groups\n", path, m->E,
               (long long)m->E * m->E, m->n_groups);
        printf("criterion  %s\nmasked     %zu of %.0f experts (%.3f%%)\n", m->criterion_json ? m->criterion_json : "-",
               m->count, total, 100.0 * m->count / total);
        for (int r = 0; r < m->n_groups; r++)
            printf("  group %-3d %zu (%.3f%% of the group)\n", r, m->per_group[r],
                   100.0 * m->per_group[r] / ((double)m->E * m->E));
        if (list) {
            list_ctx c = {0, 1, -1};
            rc = mp_mask_foreach(m, print_expert, &c, &err);
            printf("\n");
        }
    }
    mp_mask_free(m);
    return rc < 0 ? cli_exit_error(&err) : 0;
}

static const cli_opt *out_opts(const char **out) {
    static cli_opt opts[2];
    opts[0] = (cli_opt)CLI_OPT_OUT(out, "OUT", "the mask file written", CLI_REQUIRED);
    opts[1] = (cli_opt)CLI_OPT_END;
    return opts;
}

static int mask_merge(int argc, char **argv) {
    const char *out = NULL;
    const char *in[256];
    int n = 0;
    const cli_spec spec = {.cmd = "mask merge", .about = "  The union of masks for the same model shape.",
                           .opts = out_opts(&out), .pos_name = "MASK", .pos = in, .pos_min = 1, .pos_max = 256,
                           .pos_n = &n};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    mp_error err;
    mp_mask *masks[256] = {0}, *acc = NULL;
    int rc = 0;
    for (int k = 0; k < n && rc == 0; k++) rc = mp_mask_load(in[k], NULL, &masks[k], &err);
    if (rc == 0) rc = mp_mask_union(masks, in, n, &acc, &err);
    if (rc == 0) rc = mp_mask_save(acc, NULL, out, NULL, "{\"kind\": \"merge\"}", &err);
    if (rc == 0) printf("merged %d masks: %zu experts -> %s\n", n, acc->count, out);
    for (int k = 0; k < n; k++) mp_mask_free(masks[k]);
    mp_mask_free(acc);
    return rc < 0 ? cli_exit_error(&err) : 0;
}

static int mask_invert(int argc, char **argv) {
    const char *out = NULL, *path = NULL;
    const cli_spec spec = {.cmd = "mask invert",
                           .about = "  Every expert NOT in MASK (e.g. keep only a domain's specialists).",
                           .opts = out_opts(&out), .pos_name = "MASK", .pos = &path, .pos_min = 1, .pos_max = 1};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    mp_error err;
    mp_mask *m = NULL, *inv = NULL;
    int rc = mp_mask_load(path, NULL, &m, &err);
    if (rc == 0) rc = mp_mask_invert(m, &inv, &err);
    if (rc == 0) rc = mp_mask_save(inv, NULL, out, NULL, "{\"kind\": \"invert\"}", &err);
    if (rc == 0) printf("inverted %s: %zu experts -> %s\n", path, inv->count, out);
    mp_mask_free(m);
    mp_mask_free(inv);
    return rc < 0 ? cli_exit_error(&err) : 0;
}

int cmd_mask(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "show")) return mask_show(argc - 1, argv + 1);
    if (!strcmp(argv[1], "merge")) return mask_merge(argc - 1, argv + 1);
    if (!strcmp(argv[1], "invert")) return mask_invert(argc - 1, argv + 1);
    return cli_usage_error("mask", "unknown action '%s' (show, merge or invert)", argv[1]);
}
