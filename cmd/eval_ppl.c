/* cmd/eval_ppl.c — `monet-probe eval ppl`: perplexity per label (domain,
 * language) over any corpus core/text/corpus.h reads (txt, jsonl, csv, .zst,
 * directory trees), the fast unlearning signal; --json writes an eval result
 * for `eval compare --target LABEL`. (`monet-probe ppl` is the older txt/JSONL
 * command; this one streams every corpus format.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    CLI_PARSE_OR_RETURN(&cspec, argc, argv);
#undef JSON_OPT
    mp_error err;
    mp_error_clear(&err);
    mp_eval_result res;
    memset(&res, 0, sizeof res);
    double t0 = mp_now();
    cli_ppl_run run;
    int rc = cli_ppl_compute(cmd, &pa, &run, &err);
    if (rc > 0) return rc;
    if (rc < 0) goto cleanup;
    const char *dir = pa.model.model, *spec = pa.corpus, *label_field = pa.label_field, *mask_path = pa.model.mask;
    const long ctx = run.ctx, max_docs = pa.max_docs;
    const mp_corpus *c = run.c;
    const mp_ppl_result r = run.r;
    size_t docs = r.docs, total_tok = r.tokens, no_label = r.no_label;
    double total_nll = r.nll;
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
        if (rc == 0) /* per-document NLL sums weighted by tokens: paired bootstrap in `eval compare` */
            rc = mp_eval_result_annotate(&res, mp_ppl_stderr(l->doc_nll, l->doc_tokens, l->docs), "perplexity",
                                         l->doc_nll, l->doc_tokens, l->docs, &err);
    }
    double mn = total_nll / (double)total_tok;
    printf("%-24s %8zu %10zu %10.4f %12.3f\n", "(all)", docs, total_tok, mn, exp(mn));
    double secs = mp_now() - t0;
    printf("time %.1f s (%.0f tok/s)\n", secs, secs > 0 ? total_tok / secs : 0.0);
    if (rc == 0) rc = mp_eval_result_add(&res, "average", "all", docs, exp(mn), NAN, NAN, mn, &err);
    if (rc == 0)
        rc = mp_eval_result_annotate(&res, mp_ppl_stderr(r.doc_nll, r.doc_tokens, r.docs), "perplexity", r.doc_nll,
                                     r.doc_tokens, r.docs, &err);
    if (rc == 0 && json) rc = mp_eval_result_save(&res, json, &err);
cleanup:
    mp_eval_result_free(&res);
    cli_ppl_run_free(&run);
    return rc < 0 ? cli_exit_error(&err) : 0;
}
