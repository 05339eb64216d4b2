/* cmd/cmd_ppl.c — `monet-probe ppl`: mean negative log-likelihood and
 * perplexity of any corpus core/text/corpus.h streams, optionally broken down by a
 * label field (per-language / per-domain perplexity); the scoring itself is
 * core/eval/perplexity.c, shared with `eval ppl`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/text/corpus.h"
#include "core/eval/perplexity.h"
#include "core/util/progress.h"

static const char *ABOUT =
    "  Perplexity of a corpus: plain text (one document per line), JSONL, CSV, *.zst or a\n"
    "  directory tree (core/text/corpus.h).\n"
    "  Each document is BOS + its tokens, scored in non-overlapping windows of N tokens.";

int cmd_ppl(int argc, char **argv) {
    cli_ppl_args pa = CLI_PPL_ARGS_INIT;
    int json = 0;
#define JSON_OPT CLI_OPT_JSON(&json)
    const cli_opt opts[] = {CLI_OPTS_PPL(&pa), JSON_OPT, CLI_OPT_END};
    const cli_spec spec = {.cmd = "ppl", .about = ABOUT, .opts = opts};
    int prc = cli_parse(&spec, argc, argv);
    if (prc) return prc == 1 ? 0 : prc;
#undef JSON_OPT
    mp_device dev;
    if (cli_model_device("ppl", &pa.model, &dev)) return 2;
    const char *dir = pa.model.model, *corpus = pa.corpus, *text_field = pa.text_field, *label_field = pa.label_field,
               *mask_path = pa.model.mask;
    long ctx = pa.ctx, max_docs = pa.max_docs;
    int strict = pa.strict, quiet = pa.quiet;
    mp_corpus *c = NULL;
    int open_rc = cli_corpus_open("ppl", corpus, text_field, label_field, strict, &quiet, &c);
    if (open_rc) return open_rc;
    mp_error err;
    mp_error_clear(&err);
    mp_tokenizer *tok = NULL;
    mp_model *m = NULL;
    mp_engine *st = NULL;
    mp_mask *mask = NULL;
    mp_ppl_result r = {0};
    mp_progress prog;
    int rc = 0;
    if ((rc = cli_load_tokenizer(dir, &tok, &err)) < 0) goto cleanup;
    if ((rc = mp_model_load(dir, &m, &err)) < 0) goto cleanup;
    if (!ctx) ctx = m->cfg.max_position_embeddings < 512 ? m->cfg.max_position_embeddings : 512;
    if ((rc = mp_engine_create_slots(m, dev, pa.batch > 1 ? pa.batch : 1, (int)ctx, 0, &st, &err)) < 0) goto cleanup;
    if ((rc = cli_engine_apply_mask(mask_path, m, st, &mask, &err)) < 0) goto cleanup;
    mp_progress_start(&prog, quiet ? NULL : stderr, "ppl", "tok", 0);
    if ((rc = mp_ppl_corpus(st, m->cfg.vocab_size, tok, c, label_field != NULL, (int)ctx, max_docs, pa.batch, &prog, &r,
                            &err)) < 0)
        goto cleanup;
    mp_progress_finish(&prog);
    size_t skipped = mp_corpus_skipped(c), docs = r.docs, total_tok = r.tokens;
    double total_nll = r.nll;
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
            for (size_t i = 0; i < r.n_labels; i++) {
                const mp_ppl_label *s = &r.labels[i];
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
            for (size_t i = 0; i < r.n_labels; i++) {
                const mp_ppl_label *s = &r.labels[i];
                double mn = s->tokens ? s->nll / s->tokens : NAN;
                printf("%-16s %8zu %10zu %10.4f %12.3f\n", s->label, s->docs, s->tokens, mn, exp(mn));
            }
        }
    }
cleanup:
    mp_ppl_result_free(&r);
    mp_corpus_close(c);
    mp_engine_free(st);
    mp_mask_free(mask);
    mp_model_free(m);
    mp_tokenizer_free(tok);
    return rc < 0 ? cli_exit_error(&err) : 0;
}
