/* cmd/eval_ppl.c — `monet-probe eval ppl`: perplexity per label (domain,
 * language) over any corpus core/text/corpus.h reads (txt, jsonl, csv, .zst,
 * directory trees), the fast unlearning signal; --json writes an eval result
 * for `eval compare --target LABEL`. (`monet-probe ppl` is the older txt/JSONL
 * command; this one streams every corpus format.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "cli.h"
#include "core/text/corpus.h"
#include "core/eval/eval_result.h"
#include "core/model/backend.h"
#include "core/eval/perplexity.h"
#include "core/util/progress.h"

static const char *ABOUT =
    "  Perplexity per label over a corpus (txt, jsonl, csv, *.zst, or a directory tree; see\n"
    "  core/text/corpus.h). Each document is BOS + its tokens, scored in non-overlapping windows.";

int cmd_eval_ppl(int argc, char **argv) {
    const char *cmd = "eval ppl";
    cli_ppl_args pa = CLI_PPL_ARGS_INIT;
    const char *json = NULL;
#define JSON_OPT                                                                                                      \
    {"--json", NULL, CLI_STR, "OUT", &json, 0, 0, NULL, "write the result (for `eval compare --target LABEL`)", 0,    \
     NULL, 0}
    const cli_opt opts[] = {CLI_OPTS_PPL(&pa), JSON_OPT, CLI_OPT_END};
    const cli_spec cspec = {.cmd = "eval ppl", .about = ABOUT, .opts = opts};
    int prc = cli_parse(&cspec, argc, argv);
    if (prc) return prc == 1 ? 0 : prc;
#undef JSON_OPT
    mp_device dev;
    if (cli_model_device(cmd, &pa.model, &dev)) return 2;
    const char *dir = pa.model.model, *spec = pa.corpus, *text_field = pa.text_field,
               *label_field = pa.label_field, *mask_path = pa.model.mask;
    long ctx = pa.ctx, max_docs = pa.max_docs;
    int strict = pa.strict, quiet = pa.quiet;
    mp_corpus *c = NULL;
    int open_rc = cli_corpus_open(cmd, spec, text_field, label_field, strict, &quiet, &c);
    if (open_rc) return open_rc;
    mp_error err;
    mp_error_clear(&err);
    mp_tokenizer *tok = NULL;
    mp_model *m = NULL;
    mp_engine *st = NULL;
    mp_mask *mask = NULL;
    mp_ppl_result r = {0};
    mp_eval_result res;
    memset(&res, 0, sizeof res);
    mp_progress prog;
    int rc = 0;
    double t0 = mp_now();
    /* OpenBLAS splits sgemm/sgemv differently per thread count and the float
     * results then differ in the last bits (measured: ~1e-6 in log-likelihoods
     * at OPENBLAS_NUM_THREADS=1 vs 2), so evaluations run BLAS on one thread:
     * every score is bit-identical whatever the environment says. */
    openblas_set_num_threads(1);
    if ((rc = cli_load_tokenizer(dir, &tok, &err)) < 0) goto cleanup;
    if ((rc = mp_model_load(dir, &m, &err)) < 0) goto cleanup;
    if (!ctx) ctx = m->cfg.max_position_embeddings < 512 ? m->cfg.max_position_embeddings : 512;
    if ((rc = mp_engine_create_slots(m, dev, pa.batch > 1 ? pa.batch : 1, (int)ctx, 0, &st, &err)) < 0) goto cleanup;
    if ((rc = cli_engine_apply_mask(mask_path, m, st, &mask, &err)) < 0) goto cleanup;
    mp_progress_start(&prog, quiet ? NULL : stderr, cmd, "tok", 0);
    rc = mp_ppl_corpus(st, m->cfg.vocab_size, tok, c, label_field != NULL, (int)ctx, max_docs, pa.batch, &prog, &r, &err);
    if (rc < 0) goto cleanup;
    mp_progress_finish(&prog);
    size_t docs = r.docs, total_tok = r.tokens, no_label = r.no_label;
    double total_nll = r.nll;
    if (total_tok == 0) {
        rc = mp_fail(&err, MP_EINPUT, "%s: no tokens to score (%zu documents, %zu skipped records)", spec, docs,
                     mp_corpus_skipped(c));
        goto cleanup;
    }
    if ((rc = mp_eval_result_init(&res, "ppl", dir, mask_path, "perplexity", 0, &err)) < 0) goto cleanup;
    char settings[512];
    snprintf(settings, sizeof settings, "{\"context\": %ld, \"max_docs\": %ld, \"skipped\": %zu, \"label_field\": \"%s\"}",
             ctx, max_docs, mp_corpus_skipped(c), label_field && !strpbrk(label_field, "\"\\") ? label_field : "");
    if (!(res.settings_json = strdup(settings))) {
        rc = mp_fail(&err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    printf("corpus %s: %zu documents, %zu tokens scored, %zu malformed records skipped, context %ld, mask %s\n",
           spec, docs, total_tok, mp_corpus_skipped(c), ctx, mask_path ? mask_path : "none");
    if (no_label) printf("%zu documents had no %s (grouped as \"(none)\")\n", no_label, label_field);
    printf("\n%-24s %8s %10s %10s %12s\n", label_field ? label_field : "label", "docs", "tokens", "mean NLL",
           "perplexity");
    for (size_t k = 0; k < r.n_labels && rc == 0; k++) {
        const mp_ppl_label *l = &r.labels[k];
        double mn = l->tokens ? l->nll / (double)l->tokens : NAN;
        printf("%-24s %8zu %10zu %10.4f %12.3f\n", l->label, l->docs, l->tokens, mn, exp(mn));
        rc = mp_eval_result_add(&res, "label", l->label, l->docs, exp(mn), NAN, NAN, mn, &err);
    }
    double mn = total_nll / (double)total_tok;
    printf("%-24s %8zu %10zu %10.4f %12.3f\n", "(all)", docs, total_tok, mn, exp(mn));
    double secs = mp_now() - t0;
    printf("time %.1f s (%.0f tok/s)\n", secs, secs > 0 ? total_tok / secs : 0.0);
    if (rc == 0) rc = mp_eval_result_add(&res, "average", "all", docs, exp(mn), NAN, NAN, mn, &err);
    if (rc == 0 && json) rc = mp_eval_result_save(&res, json, &err);
cleanup:
    mp_ppl_result_free(&r);
    mp_eval_result_free(&res);
    mp_engine_free(st);
    mp_mask_free(mask);
    mp_model_free(m);
    mp_tokenizer_free(tok);
    mp_corpus_close(c);
    return rc < 0 ? cli_exit_error(&err) : 0;
}
