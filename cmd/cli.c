/* cmd/cli.c — argument and error helpers for the subcommands (see cli.h). */
#include "cli.h"
#include "core/model/expert_addr.h"
#include "core/util/term.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cli_exit_error(const mp_error *err) {
    fprintf(stderr, "monet-probe: %s\n", err->msg[0] ? err->msg : "unknown error");
    return mp_exit_code(err->code);
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "monet-probe: %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see: monet-probe %s --help)\n", cmd);
    return 2;
}

int cli_is_help(const char *s) { return !strcmp(s, "-h") || !strcmp(s, "--help"); }

int cli_parse_long(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end != '\0' || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int cli_parse_ids(const char *s, int32_t **ids, size_t *n, mp_error *err) {
    size_t cap = 16, cnt = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) return mp_fail(err, MP_ENOMEM, "out of memory");
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == ',') p++;
        if (!*p) break;
        char *end = NULL;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > INT32_MAX) {
            free(v);
            return mp_fail(err, MP_EINPUT, "--ids: '%.40s' is not a non-negative token id", p);
        }
        if (cnt == cap) {
            cap *= 2;
            int32_t *nv = realloc(v, cap * sizeof *nv);
            if (!nv) { free(v); return mp_fail(err, MP_ENOMEM, "out of memory"); }
            v = nv;
        }
        v[cnt++] = (int32_t)x;
        p = end;
        if (*p && *p != ',' && *p != ' ' && *p != '\t' && *p != '\n') {
            free(v);
            return mp_fail(err, MP_EINPUT, "--ids: unexpected character '%c' (expected comma-separated ids)", *p);
        }
    }
    if (cnt == 0) { free(v); return mp_fail(err, MP_EINPUT, "--ids: no token ids given"); }
    *ids = v;
    *n = cnt;
    return 0;
}

int cli_load_tokenizer(const char *model_dir, mp_tokenizer **tok, mp_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.model", model_dir);
    return mp_tokenizer_load(path, tok, err);
}

int cli_get_ids(const char *model_dir, const char *ids_arg, const char *text_arg, int bos, int32_t **ids,
                size_t *n, mp_error *err) {
    if (ids_arg) return cli_parse_ids(ids_arg, ids, n, err);
    mp_tokenizer *tok = NULL;
    MP_TRY(cli_load_tokenizer(model_dir, &tok, err));
    int rc = mp_tokenizer_encode(tok, text_arg, strlen(text_arg), bos, ids, n, err);
    mp_tokenizer_free(tok);
    if (rc == 0 && *n == 0) {
        free(*ids);
        return mp_fail(err, MP_EINPUT, "--text: the text encodes to no tokens");
    }
    return rc;
}

/* Parse the --expert list ("[R:]I,J[=S]") into list[0..*cnt) (capacity
 * CLI_MAX_STEER * 8) and say exactly what is changed (stderr, unless quiet). */
static int build_steering(const mp_model *m, const char **args, int n, int have_strength, double strength, int quiet,
                          mp_steer *list, size_t *cnt_out, mp_error *err) {
    const mp_config *c = &m->cfg;
    size_t cnt = 0;
    for (int k = 0; k < n; k++) {
        char addr[128];
        snprintf(addr, sizeof addr, "%s", args[k]);
        double s = strength;
        char *eq = strchr(addr, '=');
        if (eq) {
            *eq = '\0';
            char *end;
            s = strtod(eq + 1, &end);
            if (end == eq + 1 || *end) return mp_fail(err, MP_EINPUT, "--expert '%s': bad strength after '='", args[k]);
        } else if (!have_strength) {
            return mp_fail(err, MP_EINPUT, "--expert '%s': no strength (use --strength S or ADDR=S)", args[k]);
        }
        mp_expert_addr x;
        MP_TRY(mp_expert_addr_parse_one(addr, c->moe_experts, c->n_router_groups, &x, err));
        if (cnt == CLI_MAX_STEER * 8) return mp_fail(err, MP_EINPUT, "too many steered experts");
        list[cnt++] = (mp_steer){x.group, x.i, x.j, (float)s};
        if (!quiet) {
            int a, b;
            mp_config_group_layers(c, x.group, &a, &b);
            fprintf(stderr, "monet-probe: steering expert %d:%d,%d (flat %lld): w += %g at every token, layers %d-%d\n",
                    x.group, x.i, x.j, (long long)x.i * c->moe_experts + x.j, s, a, b);
        }
    }
    *cnt_out = cnt;
    return 0;
}

int cli_engine_apply_steering(const mp_model *m, mp_engine *e, const char **args, int n, int have_strength,
                              double strength, int quiet, mp_error *err) {
    mp_steer list[CLI_MAX_STEER * 8];
    size_t cnt = 0;
    MP_TRY(build_steering(m, args, n, have_strength, strength, quiet, list, &cnt, err));
    return mp_engine_set_steering(e, list, cnt, err);
}

int cli_engine_apply_mask(const char *path, const mp_model *m, mp_engine *e, mp_mask **mask, mp_error *err) {
    *mask = NULL;
    if (!path) return 0;
    MP_TRY(mp_mask_load(path, &m->cfg, mask, err));
    return mp_engine_set_mask(e, *mask, err);
}

int cli_parse_device(const char *cmd, const char *s, mp_device *out) {
    mp_error err;
    mp_error_clear(&err);
    if (mp_device_parse(s, out, &err) < 0) return cli_usage_error(cmd, "--device must be cpu, cuda or auto, not '%s'", s);
    return 0;
}

int cli_model_device(const char *cmd, const cli_model_args *a, mp_device *out) {
    *out = MP_DEVICE_AUTO;
    return a->device ? cli_parse_device(cmd, a->device, out) : 0;
}

int cli_input_check(const char *cmd, const cli_input_args *in) {
    if (!in->ids == !in->text) return cli_usage_error(cmd, "give exactly one of --ids or --text");
    return 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (!len || len > n || (len == 2 && s[0] < 0xc2) || (len == 4 && s[0] > 0xf4)) return 0;
    for (size_t k = 1; k < len; k++)
        if ((s[k] & 0xc0) != 0x80) return 0;
    if (len == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))) return 0; /* overlong, surrogate */
    if (len == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))) return 0;
    return len;
}

void cli_json_strn(FILE *f, const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    for (size_t i = 0; s && i < n;) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\' || c < 0x20 || c == 0x7f) {
            if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
            else if (c == '\n') fputs("\\n", f);
            else if (c == '\t') fputs("\\t", f);
            else if (c == '\r') fputs("\\r", f);
            else fprintf(f, "\\u%04x", c);
            i++;
            continue;
        }
        size_t len = utf8_len(s + i, n - i);
        if (!len) {
            fputs("\\ufffd", f); /* invalid UTF-8 byte: JSON text must be UTF-8 */
            i++;
            continue;
        }
        fwrite(s + i, 1, len, f);
        i += len;
    }
    fputc('"', f);
}

void cli_json_str(FILE *f, const char *s) { cli_json_strn(f, s, s ? strlen(s) : 0); }

char *cli_term_dup(const char *s, int flags) {
    char *safe = NULL;
    mp_error err;
    if (mp_term_escape(s ? s : "", s ? strlen(s) : 0, flags, &safe, &err) < 0) return NULL;
    return safe;
}

void cli_term_str(FILE *f, const char *s, int flags) {
    if (!s) return;
    size_t n = strlen(s);
    if (!mp_term_needs_escape(s, n, flags)) {
        fwrite(s, 1, n, f);
        return;
    }
    char *safe = cli_term_dup(s, flags);
    fputs(safe ? safe : "(unprintable)", f);
    free(safe);
}

void cli_csv_str(FILE *f, const char *s) {
    char *safe = cli_term_dup(s, 0);
    const char *t = safe ? safe : "";
    if (!strpbrk(t, ",\"\n\r")) {
        fputs(t, f);
    } else {
        fputc('"', f);
        for (; *t; t++) {
            if (*t == '"') fputc('"', f);
            fputc(*t, f);
        }
        fputc('"', f);
    }
    free(safe);
}

static void cli_on_skip(void *ctx, const char *file, size_t line, const char *reason) {
    if (!*(const int *)ctx) fprintf(stderr, "monet-probe: %s:%zu: %s (skipped)\n", file, line, reason);
}

int cli_corpus_open(const char *cmd, const char *spec, const char *text_field, const char *label_field, int strict,
                    const int *quiet, mp_corpus **c) {
    struct stat sb;
    int is_dir = stat(spec, &sb) == 0 && S_ISDIR(sb.st_mode);
    if (is_dir && label_field && strcmp(label_field, "ext") && strcmp(label_field, "parent") &&
        strcmp(label_field, "stem"))
        return cli_usage_error(cmd, "--label-field for a directory is ext, parent or stem, not '%s'", label_field);
    mp_corpus_opts o;
    memset(&o, 0, sizeof o);
    o.text_field = text_field;
    o.strict = strict;
    o.on_skip = cli_on_skip;
    o.on_skip_ctx = (void *)quiet;
    if (is_dir) {
        o.dir_label = label_field;
    } else if (label_field) {
        o.label_fields[0] = label_field;
        o.n_label_fields = 1;
    }
    mp_error err;
    mp_error_clear(&err);
    return mp_corpus_open(spec, &o, c, &err) < 0 ? cli_exit_error(&err) : 0;
}

int cli_session_open(const char *cmd, const cli_model_args *ma, const cli_input_args *in, cli_session *s,
                     mp_error *err) {
    memset(s, 0, sizeof *s);
    mp_device dev;
    if (cli_input_check(cmd, in) || cli_model_device(cmd, ma, &dev)) return 2;
    MP_TRY(cli_get_ids(ma->model, in->ids, in->text, !in->no_bos, &s->ids, &s->n, err));
    MP_TRY(mp_model_load(ma->model, &s->m, err));
    MP_TRY(mp_engine_create(s->m, dev, (int)s->n, 0, &s->e, err));
    return cli_engine_apply_mask(ma->mask, s->m, s->e, &s->mask, err);
}

void cli_session_close(cli_session *s) {
    mp_engine_free(s->e);
    mp_mask_free(s->mask);
    mp_model_free(s->m);
    free(s->ids);
    memset(s, 0, sizeof *s);
}

int cli_ppl_compute(const char *cmd, const cli_ppl_args *pa, cli_ppl_run *run, mp_error *err) {
    memset(run, 0, sizeof *run);
    mp_device dev;
    if (cli_model_device(cmd, &pa->model, &dev)) return 2;
    int quiet = pa->quiet;
    int rc = cli_corpus_open(cmd, pa->corpus, pa->text_field, pa->label_field, pa->strict, &quiet, &run->c);
    if (rc) return rc;
    mp_tokenizer *tok = NULL;
    mp_model *m = NULL;
    mp_engine *e = NULL;
    mp_mask *mask = NULL;
    mp_progress prog;
    /* OpenBLAS splits sgemm/sgemv differently per thread count and the float
     * results then differ in the last bits (~1e-6 in log-likelihoods at 1 vs 2
     * threads), so scoring runs BLAS on one thread: bit-identical everywhere. */
    openblas_set_num_threads(1);
    run->ctx = pa->ctx;
    if ((rc = cli_load_tokenizer(pa->model.model, &tok, err)) < 0 || (rc = mp_model_load(pa->model.model, &m, err)) < 0)
        goto done;
    if (!run->ctx) run->ctx = m->cfg.max_position_embeddings < 512 ? m->cfg.max_position_embeddings : 512;
    if ((rc = mp_engine_create_slots(m, dev, pa->batch > 1 ? pa->batch : 1, (int)run->ctx, 0, &e, err)) < 0 ||
        (rc = cli_engine_apply_mask(pa->model.mask, m, e, &mask, err)) < 0)
        goto done;
    mp_progress_start(&prog, quiet ? NULL : stderr, cmd, "tok", 0);
    if ((rc = mp_ppl_corpus(e, m->cfg.vocab_size, tok, run->c, pa->label_field != NULL, (int)run->ctx, pa->max_docs,
                            pa->batch, &prog, &run->r, err)) < 0)
        goto done;
    mp_progress_finish(&prog);
    run->rate = mp_progress_rate(&prog);
    if (run->r.tokens == 0)
        rc = mp_fail(err, MP_EINPUT, "%s: no tokens to score (%zu documents, %zu skipped records)", pa->corpus,
                     run->r.docs, mp_corpus_skipped(run->c));
done:
    mp_engine_free(e);
    mp_mask_free(mask);
    mp_model_free(m);
    mp_tokenizer_free(tok);
    return rc;
}

void cli_ppl_run_free(cli_ppl_run *run) {
    mp_ppl_result_free(&run->r);
    mp_corpus_close(run->c);
    memset(run, 0, sizeof *run);
}
