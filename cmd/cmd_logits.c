/* cmd/cmd_logits.c — `monet-probe logits`: one prefill, the [T x vocab]
 * logits as raw little-endian float32 (row-major) or JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/model/forward.h"

static const char *USAGE =
    "usage: monet-probe logits --model DIR (--ids 1,450,... | --text TEXT [--bos]) [--format raw|json]\n"
    "                          [--out FILE] [--last] [--mask MASK] [--steer [R:]I,J=S ...] [--device D]\n"
    "  Run one prefill and write the logits of every position.\n"
    "  --ids LIST      comma-separated token ids\n"
    "  --text TEXT     text encoded with DIR/tokenizer.model (--bos prepends BOS)\n"
    "  --format raw    T*vocab little-endian float32, row-major (default)\n"
    "  --format json   {\"n_tokens\": T, \"vocab_size\": V, \"logits\": [[...], ...]}\n"
    "  --out FILE      output file (default: stdout)\n"
    "  --last          only the last position's logits (1 x vocab)\n"
    "  --mask MASK     purge the experts listed in a mask file (w_ij = 0 in their group)\n"
    "  --steer A=S     add S to expert A's routing weight at every token (see: monet-probe steer --help)\n"
    CLI_DEVICE_HELP;

static int write_raw(FILE *f, const float *v, size_t n) {
    /* explicit little-endian bytes, independent of host byte order */
    unsigned char buf[4096];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        buf[k++] = (unsigned char)u;
        buf[k++] = (unsigned char)(u >> 8);
        buf[k++] = (unsigned char)(u >> 16);
        buf[k++] = (unsigned char)(u >> 24);
        if (k == sizeof buf) {
            if (fwrite(buf, 1, k, f) != k) return -1;
            k = 0;
        }
    }
    return (k && fwrite(buf, 1, k, f) != k) ? -1 : 0;
}

int cmd_logits(int argc, char **argv) {
    const char *dir = NULL, *ids_arg = NULL, *text = NULL, *format = "raw", *out_path = "-", *mask_path = NULL;
    int bos = 0, last = 0, n_steer = 0;
    mp_device dev = MP_DEVICE_AUTO;
    const char *steer[CLI_MAX_STEER];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "--model")) {
            if (!(dir = cli_opt_value("logits", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--ids")) {
            if (!(ids_arg = cli_opt_value("logits", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--text")) {
            if (!(text = cli_opt_value("logits", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--format")) {
            if (!(format = cli_opt_value("logits", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--out")) {
            if (!(out_path = cli_opt_value("logits", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--steer")) {
            if (!(steer[n_steer] = cli_opt_value("logits", argc, argv, &i))) return 2;
            if (++n_steer == CLI_MAX_STEER) return cli_usage_error("logits", "too many --steer options");
        } else if (!strcmp(a, "--mask")) {
            if (!(mask_path = cli_opt_value("logits", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--device")) {
            const char *v = cli_opt_value("logits", argc, argv, &i);
            if (!v || cli_parse_device("logits", v, &dev)) return 2;
        } else if (!strcmp(a, "--bos")) {
            bos = 1;
        } else if (!strcmp(a, "--last")) {
            last = 1;
        } else {
            return cli_usage_error("logits", "unknown argument '%s'", a);
        }
    }
    if (!dir) return cli_usage_error("logits", "--model DIR is required");
    if (!ids_arg == !text) return cli_usage_error("logits", "give exactly one of --ids or --text");
    if (strcmp(format, "raw") && strcmp(format, "json"))
        return cli_usage_error("logits", "--format must be raw or json, not '%s'", format);

    mp_error err;
    mp_error_clear(&err);
    int32_t *ids = NULL;
    size_t n = 0;
    mp_model *m = NULL;
    mp_engine *st = NULL;
    mp_mask *mask = NULL;
    float *logits = NULL;
    FILE *out = NULL;
    int rc = 0;
    if ((rc = cli_get_ids(dir, ids_arg, text, bos, &ids, &n, &err)) < 0) goto cleanup;
    if ((rc = mp_model_load(dir, &m, &err)) < 0) goto cleanup;
    if ((rc = mp_engine_create(m, dev, (int)n, 0, &st, &err)) < 0) goto cleanup;
    if ((rc = cli_engine_apply_mask(mask_path, m, st, &mask, &err)) < 0) goto cleanup;
    if (n_steer && (rc = cli_engine_apply_steering(m, st, steer, n_steer, 0, 0, 1, &err)) < 0) goto cleanup;
    const size_t V = (size_t)m->cfg.vocab_size, rows = last ? 1 : n;
    logits = malloc(rows * V * sizeof *logits);
    if (!logits) {
        rc = mp_fail(&err, MP_ENOMEM, "out of memory for %zu x %zu logits", rows, V);
        goto cleanup;
    }
    if ((rc = mp_engine_forward(st, ids, n, logits, last, NULL, &err)) < 0) goto cleanup;
    out = strcmp(out_path, "-") ? fopen(out_path, "wb") : stdout;
    if (!out) {
        rc = mp_fail(&err, MP_EIO, "%s: cannot open for writing", out_path);
        goto cleanup;
    }
    int werr = 0;
    if (!strcmp(format, "raw")) {
        werr = write_raw(out, logits, rows * V);
    } else {
        fprintf(out, "{\"n_tokens\": %zu, \"vocab_size\": %zu, \"last_only\": %s, \"logits\": [", n, V,
                last ? "true" : "false");
        for (size_t t = 0; t < rows; t++) {
            fputs(t ? ",\n[" : "\n[", out);
            for (size_t v = 0; v < V; v++) fprintf(out, "%s%.9g", v ? ", " : "", logits[t * V + v]);
            fputc(']', out);
        }
        fputs("]}\n", out);
    }
    if (werr || fflush(out) != 0 || ferror(out)) rc = mp_fail(&err, MP_EIO, "%s: write failed", out_path);
cleanup:
    if (out && out != stdout && fclose(out) != 0 && rc == 0) rc = mp_fail(&err, MP_EIO, "%s: write failed", out_path);
    free(logits);
    mp_engine_free(st);
    mp_mask_free(mask);
    mp_model_free(m);
    free(ids);
    return rc < 0 ? cli_exit_error(&err) : 0;
}
