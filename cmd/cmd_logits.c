/* cmd/cmd_logits.c — `monet-probe logits`: one prefill, the [T x vocab]
 * logits as raw little-endian float32 (row-major) or JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/model/forward.h"

static const char *ABOUT = "  Run one prefill and write the logits of every position.";

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
    cli_model_args ma = {0};
    cli_input_args in = {0};
    const char *format = "raw", *out_path = "-";
    int last = 0;
    cli_list steers = {0};
    const cli_opt opts[] = {
        CLI_OPT_MODEL(&ma, CLI_REQUIRED),
        CLI_OPTS_INPUT(&in),
        {"--format", NULL, CLI_CHOICE_STR, NULL, &format, 0, 0, "raw|json",
         "raw: T*vocab little-endian float32, row-major (default);\n"
         "json: {\"n_tokens\": T, \"vocab_size\": V, \"logits\": [[...], ...]}", 0, NULL, 0},
        CLI_OPT_OUT(&out_path, "FILE", "output file (default: stdout)", 0),
        {"--last", NULL, CLI_FLAG, NULL, &last, 0, 0, NULL, "only the last position's logits (1 x vocab)", 0, NULL, 0},
        CLI_OPT_MASK(&ma),
        {"--steer", NULL, CLI_LIST, "R:I,J=S", &steers, 0, 0, NULL,
         "add S to expert R:I,J's routing weight at every token (see: monet-probe steer --help)", 0, NULL, 0},
        CLI_OPT_DEVICE(&ma),
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = "logits", .about = ABOUT, .opts = opts};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    if (steers.n > CLI_MAX_STEER) return cli_usage_error("logits", "too many --steer options (at most %d)", CLI_MAX_STEER);
    mp_error err;
    mp_error_clear(&err);
    cli_session ses;
    float *logits = NULL;
    FILE *out = NULL;
    int rc = cli_session_open("logits", &ma, &in, &ses, &err);
    if (rc > 0) return rc;
    if (rc < 0) goto cleanup;
    mp_model *m = ses.m;
    mp_engine *st = ses.e;
    const int32_t *ids = ses.ids;
    const size_t n = ses.n;
    if (steers.n && (rc = cli_engine_apply_steering(m, st, steers.v, steers.n, 0, 0, 1, &err)) < 0) goto cleanup;
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
    cli_session_close(&ses);
    return rc < 0 ? cli_exit_error(&err) : 0;
}
