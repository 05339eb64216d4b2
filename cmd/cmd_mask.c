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
    "  show    masked experts per router group, masking ratio, criterion (--list: every I,J)\n"
    "  merge   union of masks for the same model shape\n"
    "  invert  every expert NOT in MASK (e.g. keep only a domain's specialists)\n"
    "  Mask files: docs/mask.md. Ratio = masked / (groups x E^2).\n";

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
        printf(" %d,%d", i, j);
    }
    c->first = 0;
    c->cur = r;
}

static int mask_show(int argc, char **argv) {
    const char *path = NULL;
    int list = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--list")) list = 1;
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (argv[i][0] == '-') return cli_usage_error("mask show", "unknown argument '%s'", argv[i]);
        else if (!path) path = argv[i];
        else return cli_usage_error("mask show", "one MASK file expected");
    }
    if (!path) return cli_usage_error("mask show", "MASK file required");
    mp_error err;
    mp_mask *m = NULL;
    if (mp_mask_load(path, NULL, &m, &err) < 0) return cli_exit_error(&err);
    double total = (double)m->n_groups * m->E * m->E;
    int rc = 0;
    if (json) {
        printf("{\"mask\": \"%s\", \"moe_experts\": %d, \"n_groups\": %d, \"masked\": %zu, \"ratio\": %.8f, "
               "\"criterion\": %s, \"per_group\": [",
               path, m->E, m->n_groups, m->count, m->count / total, m->criterion_json ? m->criterion_json : "null");
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

typedef struct {
    mp_mask *dst;
    mp_error *err;
    int rc;
} add_ctx;

static void add_expert(void *ctx, int r, int i, int j) {
    add_ctx *a = ctx;
    if (a->rc == 0) a->rc = mp_mask_add(a->dst, r, i, j, a->err);
}

static int mask_merge(int argc, char **argv) {
    const char *out = NULL;
    const char *in[256];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out")) {
            if (!(out = cli_opt_value("mask merge", argc, argv, &i))) return 2;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("mask merge", "unknown argument '%s'", argv[i]);
        } else if (n < 256) {
            in[n++] = argv[i];
        } else {
            return cli_usage_error("mask merge", "at most 256 masks");
        }
    }
    if (!out || n < 1) return cli_usage_error("mask merge", "--out OUT and at least one MASK are required");
    mp_error err;
    mp_mask *acc = NULL;
    int rc = 0;
    for (int k = 0; k < n && rc == 0; k++) {
        mp_mask *m = NULL;
        if ((rc = mp_mask_load(in[k], NULL, &m, &err)) < 0) break;
        if (!acc) rc = mp_mask_create(m->n_groups, m->E, &acc, &err);
        else if (acc->E != m->E || acc->n_groups != m->n_groups)
            rc = mp_fail(&err, MP_EINPUT, "%s: mask is for E=%d with %d groups, %s is for E=%d with %d", in[k], m->E,
                         m->n_groups, in[0], acc->E, acc->n_groups);
        add_ctx a = {acc, &err, 0};
        if (rc == 0 && (rc = mp_mask_foreach(m, add_expert, &a, &err)) == 0) rc = a.rc;
        mp_mask_free(m);
    }
    if (rc == 0) rc = mp_mask_save(acc, NULL, out, NULL, "{\"kind\": \"merge\"}", &err);
    if (rc == 0) printf("merged %d masks: %zu experts -> %s\n", n, acc->count, out);
    mp_mask_free(acc);
    return rc < 0 ? cli_exit_error(&err) : 0;
}

static int mask_invert(int argc, char **argv) {
    const char *out = NULL, *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out")) {
            if (!(out = cli_opt_value("mask invert", argc, argv, &i))) return 2;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("mask invert", "unknown argument '%s'", argv[i]);
        } else if (!path) {
            path = argv[i];
        } else {
            return cli_usage_error("mask invert", "one MASK file expected");
        }
    }
    if (!out || !path) return cli_usage_error("mask invert", "MASK and --out OUT are required");
    mp_error err;
    mp_mask *m = NULL, *inv = NULL;
    int rc = mp_mask_load(path, NULL, &m, &err);
    if (rc == 0) rc = mp_mask_create(m->n_groups, m->E, &inv, &err);
    for (int r = 0; rc == 0 && r < m->n_groups; r++)
        for (int i = 0; rc == 0 && i < m->E; i++)
            for (int j = 0; rc == 0 && j < m->E; j++)
                if (!mp_mask_contains(m, r, i, j)) rc = mp_mask_add(inv, r, i, j, &err);
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
    for (int i = 2; i < argc; i++)
        if (cli_is_help(argv[i])) {
            fputs(USAGE, stdout);
            return 0;
        }
    if (!strcmp(argv[1], "show")) return mask_show(argc - 1, argv + 1);
    if (!strcmp(argv[1], "merge")) return mask_merge(argc - 1, argv + 1);
    if (!strcmp(argv[1], "invert")) return mask_invert(argc - 1, argv + 1);
    return cli_usage_error("mask", "unknown action '%s' (show, merge or invert)", argv[1]);
}
