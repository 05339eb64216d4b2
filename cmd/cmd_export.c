/* cmd/cmd_export.c — `monet-probe export`: a collect store as expert JSONL or
 * Neuronpedia upload files (analysis/export.h, docs/export.md). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "analysis/export.h"
#include "cli.h"
#include "core/store/model_check.h"

static const char *ABOUT =
    "  Write a store's experts for other tools: --format jsonl (one object per expert: address, layers,\n"
    "  statistics, per-label statistics, top contexts with text, tokens and, with --model, the expert's\n"
    "  weight on every token) or --format neuronpedia (OUT/features.jsonl and OUT/activations.jsonl in\n"
    "  Neuronpedia's Feature / Activation fields). Experts by active-token count, most first.";

/* Open path for writing under a temporary name; *tmp receives that name. */
static FILE *open_tmp(const char *path, char *tmp, size_t cap, mp_error *err) {
    snprintf(tmp, cap, "%s.tmp-export", path);
    FILE *f = fopen(tmp, "w");
    if (!f) mp_fail(err, MP_EIO, "%s: cannot write", tmp);
    return f;
}

/* Close f and rename tmp to path on success, else remove tmp. */
static int finish(FILE *f, const char *tmp, const char *path, int ok, mp_error *err) {
    int bad = !f || fclose(f) != 0;
    if (!ok || bad) {
        remove(tmp);
        return bad && ok ? mp_fail(err, MP_ERESOURCE, "%s: write failed", path) : 0;
    }
    if (rename(tmp, path) != 0) return mp_fail(err, MP_EIO, "%s: cannot rename into place", path);
    return 0;
}

int cmd_export(int argc, char **argv) {
    const char *store = NULL, *out = NULL, *model_dir = NULL, *model_id = "monet";
    int format = 0, quiet = 0, contexts = 32, context_tokens = 16;
    long max_experts = 1000;
    const cli_opt opts[] = {
        CLI_OPT_STORE(&store, CLI_REQUIRED),
        CLI_OPT_QUIET(&quiet),
        {"--format", NULL, CLI_CHOICE, NULL, &format, 0, 0, "jsonl|neuronpedia", "jsonl (default) or neuronpedia", 0,
         NULL, 0},
        CLI_OPT_OUT(&out, "PATH", "jsonl: the file (default stdout); neuronpedia: a directory (created)", 0),
        {"--experts", NULL, CLI_LONG, "N", &max_experts, 0, 1099511627776.0, NULL,
         "experts written, most active first (default 1000; 0 = every active expert)", 0, NULL, 0},
        CLI_OPT_CONTEXTS(&contexts, "contexts per expert (default 32; 0 = all)"),
        CLI_OPT_CONTEXT_TOKENS(&context_tokens, "tokens each side of the activating token (default 16)"),
        {"--model", NULL, CLI_STR, "DIR", &model_dir, 0, 0, NULL,
         "the store's model: adds per-token scores (one forward per context)", 0, NULL, 0},
        {"--model-id", NULL, CLI_STR, "ID", &model_id, 0, 0, NULL, "Neuronpedia modelId (default \"monet\")", 0, NULL,
         0},
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = "export", .about = ABOUT, .opts = opts};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    if (format == MP_EXPORT_NEURONPEDIA && !out) return cli_usage_error("export", "--format neuronpedia needs --out DIR");
    mp_error err;
    mp_error_clear(&err);
    mp_store *st = NULL;
    mp_model *m = NULL;
    mp_engine *e = NULL;
    FILE *f1 = NULL, *f2 = NULL;
    char p1[4200], p2[4200], t1[4300], t2[4300];
    mp_export_summary sum = {0, 0};
    mp_progress prog;
    int rc = mp_store_open(store, MP_STORE_READ, &st, &err);
    if (rc < 0) goto cleanup;
    if (model_dir) {
        mp_store_shape sh;
        if ((rc = mp_store_check_model(st, model_dir, &err)) < 0 || (rc = mp_store_shape_read(st, &sh, &err)) < 0 ||
            (rc = mp_model_load(model_dir, &m, &err)) < 0 ||
            (rc = mp_engine_create(m, MP_DEVICE_AUTO, sh.window, 0, &e, &err)) < 0)
            goto cleanup;
    }
    if (format == MP_EXPORT_NEURONPEDIA) {
        if (mkdir(out, 0777) != 0) {
            struct stat sb;
            if (stat(out, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
                rc = mp_fail(&err, MP_EIO, "%s: cannot create the directory", out);
                goto cleanup;
            }
        }
        snprintf(p1, sizeof p1, "%s/features.jsonl", out);
        snprintf(p2, sizeof p2, "%s/activations.jsonl", out);
        if (!(f1 = open_tmp(p1, t1, sizeof t1, &err)) || !(f2 = open_tmp(p2, t2, sizeof t2, &err))) {
            rc = err.code;
            goto cleanup;
        }
    } else if (out) {
        snprintf(p1, sizeof p1, "%s", out);
        if (!(f1 = open_tmp(p1, t1, sizeof t1, &err))) {
            rc = err.code;
            goto cleanup;
        }
    }
    mp_progress_start(&prog, quiet ? NULL : stderr, "export", "experts", max_experts > 0 ? (uint64_t)max_experts : 0);
    mp_export_opts o = {.format = (mp_export_format)format, .max_experts = (size_t)max_experts, .contexts = contexts,
                        .context_tokens = context_tokens, .model_id = model_id, .engine = e, .model = m,
                        .progress = &prog};
    rc = mp_export(st, &o, f1 ? f1 : stdout, f2, &sum, &err);
    if (rc == 0) mp_progress_finish(&prog);
cleanup:
    if (f1) { /* the files appear under their names only when everything was written */
        int r = finish(f1, t1, p1, rc == 0, &err);
        if (r < 0 && rc == 0) rc = r;
    }
    if (f2) {
        int r = finish(f2, t2, p2, rc == 0, &err);
        if (r < 0 && rc == 0) rc = r;
    }
    mp_engine_free(e);
    mp_model_free(m);
    mp_store_close(st);
    if (rc < 0) return cli_exit_error(&err);
    if (!quiet)
        fprintf(stderr, "monet-probe: exported %zu experts, %zu contexts%s%s\n", sum.experts, sum.contexts,
                out ? " to " : "", out ? out : "");
    return 0;
}
