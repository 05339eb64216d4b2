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
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
#undef JSON_OPT
    mp_error err;
    mp_error_clear(&err);
    cli_ppl_run run;
    int rc = cli_ppl_compute("ppl", &pa, &run, &err);
    if (rc > 0) return rc;
    if (rc < 0) goto cleanup;
    const char *corpus = pa.corpus, *label_field = pa.label_field;
    const mp_ppl_result r = run.r;
    const long ctx = run.ctx;
    size_t skipped = mp_corpus_skipped(run.c), docs = r.docs, total_tok = r.tokens;
    double total_nll = r.nll;
    double rate = run.rate;
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
    cli_ppl_run_free(&run);
    return rc < 0 ? cli_exit_error(&err) : 0;
}
