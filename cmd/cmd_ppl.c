/* cmd/cmd_ppl.c — `monet-probe ppl`: mean negative log-likelihood and
 * perplexity of a text or JSONL corpus, streamed line by line, optionally
 * broken down by a label field (per-language / per-domain perplexity). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/forward.h"
#include "core/progress.h"
#include "core/sampling.h"

static const char *USAGE =
    "usage: monet-probe ppl --model DIR --corpus FILE [--context N] [--text-field F] [--label-field F]\n"
    "                       [--max-docs N] [--mask MASK] [--strict] [--json] [--quiet]\n"
    "                       [--device D]\n"
    "  Perplexity of a corpus: plain text (one document per line) or JSONL (*.jsonl).\n"
    "  Each document is BOS + its tokens, scored in non-overlapping windows of N tokens.\n"
    "  --context N       window length in tokens (default: min(512, max_position_embeddings))\n"
    "  --text-field F    JSONL text field (default \"text\")\n"
    "  --label-field F   JSONL field to break results down by (e.g. lang, domain)\n"
    "  --max-docs N      stop after N documents\n"
    "  --mask MASK       purge the experts listed in a mask file\n"
    "  --strict          a malformed line is fatal (default: reported, skipped, counted)\n"
    "  --json            machine-readable summary on stdout\n"
    CLI_DEVICE_HELP;

typedef struct {
    char *label;
    double nll;
    size_t tokens, docs;
} label_stat;

typedef struct {
    label_stat *v;
    size_t n;
} label_table;

static label_stat *label_get(label_table *t, const char *label) {
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->v[i].label, label)) return &t->v[i];
    label_stat *nv = realloc(t->v, (t->n + 1) * sizeof *nv);
    if (!nv) return NULL;
    t->v = nv;
    label_stat *s = &t->v[t->n];
    memset(s, 0, sizeof *s);
    s->label = strdup(label);
    if (!s->label) return NULL;
    t->n++;
    return s;
}

/* Score one document's ids (BOS included) window by window. */
static int score_doc(mp_engine *st, const int32_t *ids, size_t n, int ctx, int vocab, float *logits, double *nll,
                     size_t *count, mp_error *err) {
    for (size_t start = 0; start + 1 < n; start += (size_t)ctx) {
        size_t len = n - start < (size_t)ctx ? n - start : (size_t)ctx;
        if (len < 2) break;
        mp_engine_reset(st);
        MP_TRY(mp_engine_forward(st, ids + start, len, logits, 0, NULL, err));
        for (size_t t = 0; t + 1 < len; t++) {
            *nll -= mp_logprob(logits + t * (size_t)vocab, vocab, ids[start + t + 1]);
            (*count)++;
        }
    }
    return 0;
}

int cmd_ppl(int argc, char **argv) {
    const char *dir = NULL, *corpus = NULL, *text_field = "text", *label_field = NULL, *mask_path = NULL;
    long ctx = 0, max_docs = -1;
    int json = 0, strict = 0, quiet = 0;
    mp_device dev = MP_DEVICE_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is_help(a)) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "--model")) {
            if (!(dir = cli_opt_value("ppl", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--corpus")) {
            if (!(corpus = cli_opt_value("ppl", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--text-field")) {
            if (!(text_field = cli_opt_value("ppl", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--label-field")) {
            if (!(label_field = cli_opt_value("ppl", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--context")) {
            if (!(v = cli_opt_value("ppl", argc, argv, &i))) return 2;
            if (cli_parse_long(v, 2, 1 << 20, &ctx)) return cli_usage_error("ppl", "bad --context '%s'", v);
        } else if (!strcmp(a, "--max-docs")) {
            if (!(v = cli_opt_value("ppl", argc, argv, &i))) return 2;
            if (cli_parse_long(v, 1, 1L << 40, &max_docs)) return cli_usage_error("ppl", "bad --max-docs '%s'", v);
        } else if (!strcmp(a, "--mask")) {
            if (!(mask_path = cli_opt_value("ppl", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--device")) {
            if (!(v = cli_opt_value("ppl", argc, argv, &i)) || cli_parse_device("ppl", v, &dev)) return 2;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--strict")) {
            strict = 1;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else {
            return cli_usage_error("ppl", "unknown argument '%s'", a);
        }
    }
    if (!dir || !corpus) return cli_usage_error("ppl", "--model DIR and --corpus FILE are required");
    size_t cl = strlen(corpus);
    int is_jsonl = cl > 6 && !strcmp(corpus + cl - 6, ".jsonl");
    if (label_field && !is_jsonl) return cli_usage_error("ppl", "--label-field needs a JSONL corpus (*.jsonl)");

    mp_error err;
    mp_error_clear(&err);
    mp_tokenizer *tok = NULL;
    mp_model *m = NULL;
    mp_engine *st = NULL;
    mp_mask *mask = NULL;
    float *logits = NULL;
    char *line = NULL;
    size_t line_cap = 0, lineno = 0, skipped = 0, docs = 0;
    label_table labels = {0};
    double total_nll = 0;
    size_t total_tok = 0;
    mp_progress prog;
    int rc = 0;
    FILE *f = fopen(corpus, "rb");
    if (!f) {
        rc = mp_fail(&err, MP_EIO, "%s: cannot open: %s", corpus, strerror(errno));
        goto cleanup;
    }
    if ((rc = cli_load_tokenizer(dir, &tok, &err)) < 0) goto cleanup;
    if ((rc = mp_model_load(dir, &m, &err)) < 0) goto cleanup;
    if (!ctx) ctx = m->cfg.max_position_embeddings < 512 ? m->cfg.max_position_embeddings : 512;
    if ((rc = mp_engine_create(m, dev, (int)ctx, 0, &st, &err)) < 0) goto cleanup;
    if ((rc = cli_engine_apply_mask(mask_path, m, st, &mask, &err)) < 0) goto cleanup;
    const int V = m->cfg.vocab_size;
    logits = malloc((size_t)ctx * (size_t)V * sizeof *logits);
    if (!logits) {
        rc = mp_fail(&err, MP_ENOMEM, "out of memory for %ld x %d logits", ctx, V);
        goto cleanup;
    }
    mp_progress_start(&prog, quiet ? NULL : stderr, "ppl", "tok", 0);
    ssize_t len;
    while ((max_docs < 0 || (long)docs < max_docs) && (len = getline(&line, &line_cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0) continue;
        const char *text = line, *label = "all";
        cJSON *obj = NULL;
        if (is_jsonl) {
            obj = cJSON_ParseWithLength(line, (size_t)len);
            const cJSON *tv = obj ? cJSON_GetObjectItemCaseSensitive(obj, text_field) : NULL;
            const cJSON *lv = obj && label_field ? cJSON_GetObjectItemCaseSensitive(obj, label_field) : NULL;
            const char *why = !obj ? "not valid JSON"
                              : !cJSON_IsString(tv) ? "missing string text field"
                              : (label_field && !cJSON_IsString(lv)) ? "missing string label field" : NULL;
            if (why) {
                cJSON_Delete(obj);
                if (strict) {
                    rc = mp_fail(&err, MP_EINPUT, "%s:%zu: %s", corpus, lineno, why);
                    goto cleanup;
                }
                if (!quiet) fprintf(stderr, "monet-probe: %s:%zu: %s (skipped)\n", corpus, lineno, why);
                skipped++;
                continue;
            }
            text = tv->valuestring;
            if (label_field) label = lv->valuestring;
        }
        int32_t *ids = NULL;
        size_t n = 0;
        rc = mp_tokenizer_encode(tok, text, strlen(text), 1, &ids, &n, &err);
        double nll = 0;
        size_t cnt = 0;
        if (rc == 0) rc = score_doc(st, ids, n, (int)ctx, V, logits, &nll, &cnt, &err);
        free(ids);
        label_stat *ls = rc == 0 ? label_get(&labels, label) : NULL;
        cJSON_Delete(obj);
        if (rc < 0) goto cleanup;
        if (!ls) {
            rc = mp_fail(&err, MP_ENOMEM, "out of memory");
            goto cleanup;
        }
        ls->nll += nll;
        ls->tokens += cnt;
        ls->docs++;
        total_nll += nll;
        total_tok += cnt;
        docs++;
        mp_progress_add(&prog, cnt);
    }
    mp_progress_finish(&prog);
    if (total_tok == 0) {
        rc = mp_fail(&err, MP_EINPUT, "%s: no tokens to score (%zu documents, %zu skipped lines)", corpus, docs, skipped);
        goto cleanup;
    }
    double rate = mp_progress_rate(&prog);
    if (json) {
        printf("{\"corpus\": ");
        cli_json_str(stdout, corpus);
        printf(", \"documents\": %zu, \"skipped_lines\": %zu, \"tokens\": %zu, \"mean_nll\": %.6f, "
               "\"perplexity\": %.4f, \"context\": %ld, \"tokens_per_s\": %.1f",
               docs, skipped, total_tok, total_nll / total_tok, exp(total_nll / total_tok), ctx, rate);
        if (label_field) {
            printf(", \"label_field\": ");
            cli_json_str(stdout, label_field);
            printf(", \"labels\": {");
            for (size_t i = 0; i < labels.n; i++) {
                label_stat *s = &labels.v[i];
                printf("%s", i ? ", " : "");
                cli_json_str(stdout, s->label);
                double mn = s->tokens ? s->nll / s->tokens : NAN;
                printf(": {\"documents\": %zu, \"tokens\": %zu, \"mean_nll\": %.6f, \"perplexity\": %.4f}", s->docs,
                       s->tokens, mn, exp(mn));
            }
            printf("}");
        }
        printf("}\n");
    } else {
        printf("corpus      %s (%zu documents, %zu malformed lines skipped)\n", corpus, docs, skipped);
        printf("tokens      %zu scored, context %ld\n", total_tok, ctx);
        printf("mean NLL    %.4f nats/token\nperplexity  %.3f\nspeed       %.1f tokens/s\n", total_nll / total_tok,
               exp(total_nll / total_tok), rate);
        if (label_field) {
            printf("\n%-16s %8s %10s %10s %12s\n", label_field, "docs", "tokens", "mean NLL", "perplexity");
            for (size_t i = 0; i < labels.n; i++) {
                label_stat *s = &labels.v[i];
                double mn = s->tokens ? s->nll / s->tokens : NAN;
                printf("%-16s %8zu %10zu %10.4f %12.3f\n", s->label, s->docs, s->tokens, mn, exp(mn));
            }
        }
    }
cleanup:
    if (f) fclose(f);
    for (size_t i = 0; i < labels.n; i++) free(labels.v[i].label);
    free(labels.v);
    free(line);
    free(logits);
    mp_engine_free(st);
    mp_mask_free(mask);
    mp_model_free(m);
    mp_tokenizer_free(tok);
    return rc < 0 ? cli_exit_error(&err) : 0;
}
