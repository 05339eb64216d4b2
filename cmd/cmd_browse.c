/* cmd/cmd_browse.c — `monet-probe browse`: write the expert browser, a static
 * offline HTML site, from a collect store (analysis/browse.h, docs/browse.md);
 * prints what was written, the site's size and the generation time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/browse.h"
#include "core/model/backend.h"
#include "core/model/model.h"
#include "core/store/model_check.h"
#include "cli.h"

static const char *ABOUT =
    "  A self-contained static site (HTML with inline CSS/JS, no network) to open from the file system:\n"
    "  DIR/index.html lists router groups and experts (search, sort by activation count, max activation,\n"
    "  specialization label and skew, toxicity correlation); DIR/experts/g<R>/<I>_<J>.html shows an\n"
    "  expert's top contexts, its activation per label (SVG) and the experts sharing its top-K tokens.";

int cmd_browse(int argc, char **argv) {
    const char *store = NULL;
    mp_browse_opts o;
    mp_browse_opts_default(&o);
    int quiet = 0, rank = -1, no_analysis = 0, contexts = o.contexts, context_tokens = o.context_tokens,
        coact = o.coact;
    long max_experts = (long)o.max_experts, model_experts = (long)o.model_experts;
    const char *model = NULL;
    const cli_opt opts[] = {
        CLI_OPT_STORE(&store, CLI_REQUIRED),
        CLI_OPT_OUT(&o.out_dir, "DIR", "new or empty directory, or a site written before (its pages are replaced)",
                    CLI_REQUIRED),
        {"--specialization", NULL, CLI_STR, "F.json", &o.spec_json, 0, 0, NULL,
         "output of `specialize --json --top 0` (default: computed from the store\n"
         "on its first label field, the paper's rule; --label-field F to choose)", 0, NULL, 0},
        {"--correlation", NULL, CLI_STR, "F.json", &o.corr_json, 0, 0, NULL,
         "output of `correlate --json` (default: computed per token on the store's\n"
         "first score field; --score-field F to choose)", 0, NULL, 0},
        CLI_OPT_LABEL_FIELD(&o.label_field, 0),
        CLI_OPT_SCORE_FIELD(&o.score_field, 0),
        {"--no-analysis", NULL, CLI_FLAG, NULL, &no_analysis, 0, 0, NULL,
         "do not compute what no JSON gives (no specialization / correlation columns)", 0, NULL, 0},
        {"--experts", NULL, CLI_LONG, "N", &max_experts, 0, 1099511627776.0, NULL,
         "experts listed and given a page (default 1000; 0 = every active expert)", 0, NULL, 0},
        {"--rank", NULL, CLI_CHOICE, NULL, &rank, 0, 0, "count|max|mean|skew|toxicity",
         "which N: count (active tokens; the default without --label-field), max,\n"
         "mean (activation), skew (specialists, most skewed first, then as many\n"
         "generalists, listed apart; the default with --label-field), toxicity (highest r first)", 0, NULL, 0},
        CLI_OPT_CONTEXTS(&contexts, "top contexts per page (default 32; 0 = all stored)"),
        CLI_OPT_CONTEXT_TOKENS(&context_tokens, "tokens shown each side of the activating token (default 12)"),
        {"--coact", NULL, CLI_INT, "N", &coact, 0, 1000, NULL, "co-activating experts per page (default 12)", 0, NULL,
         0},
        {"--model", NULL, CLI_STR, "DIR", &model, 0, 0, NULL,
         "the model the store was collected with (checked): shade every shown token by\n"
         "the expert's weight (one forward per context) and add its logit effects\n"
         "(the expert masked vs not, as `effects`) on the first --model-experts pages", 0, NULL, 0},
        {"--model-experts", NULL, CLI_LONG, "N", &model_experts, 0, 1099511627776.0, NULL,
         "pages given the model panels, in ranking order (default 100; 0 = all)", 0, NULL, 0},
        CLI_OPT_QUIET(&quiet),
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = "browse", .about = ABOUT, .opts = opts};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    static const mp_browse_rank RANKS[] = {MP_BROWSE_RANK_COUNT, MP_BROWSE_RANK_MAX, MP_BROWSE_RANK_MEAN,
                                           MP_BROWSE_RANK_SKEW, MP_BROWSE_RANK_CORR};
    o.rank = rank >= 0 ? RANKS[rank] : o.label_field && !no_analysis ? MP_BROWSE_RANK_SKEW : MP_BROWSE_RANK_COUNT;
    if (no_analysis) o.analyze = 0;
    o.max_experts = (size_t)max_experts;
    o.contexts = contexts;
    o.context_tokens = context_tokens;
    o.coact = coact;
    mp_error err;
    mp_error_clear(&err);
    mp_store *st = NULL;
    mp_progress prog;
    mp_browse_summary s;
    mp_model *m = NULL;
    mp_engine *eng = NULL;
    mp_store_shape sh;
    o.model_experts = (size_t)model_experts;
    if (mp_store_open(store, MP_STORE_READ, &st, &err) < 0) return cli_exit_error(&err);
    int rc = 0;
    if (model && ((rc = mp_store_shape_read(st, &sh, &err)) < 0 || (rc = mp_store_check_model(st, model, &err)) < 0 ||
                  (rc = mp_model_load(model, &m, &err)) < 0 ||
                  (rc = mp_engine_create(m, MP_DEVICE_AUTO, sh.window, 0, &eng, &err)) < 0)) {
        mp_engine_free(eng);
        mp_model_free(m);
        mp_store_close(st);
        return cli_exit_error(&err);
    }
    o.model = m;
    o.engine = eng;
    mp_progress_start(&prog, quiet ? NULL : stderr, "browse", "pages", 0);
    o.progress = &prog;
    rc = mp_browse(st, &o, &s, &err);
    mp_store_close(st);
    mp_engine_free(eng);
    mp_model_free(m);
    if (rc < 0) return cli_exit_error(&err);
    mp_progress_finish(&prog);
    printf("site            %s/index.html\n", o.out_dir);
    printf("experts         %zu listed with a page, of %zu ever active\n", s.experts_listed, s.experts_active);
    printf("specialization  %s\n", s.spec_source);
    printf("correlation     %s\n", s.corr_source);
    printf("size            %.2f MB in %d files (expert pages %.2f MB", s.bytes / 1e6, s.n_files, s.page_bytes / 1e6);
    if (s.experts_listed)
        printf("; %.2f MB per 1,000 experts", (double)s.bytes / 1e6 * 1000.0 / (double)s.experts_listed);
    printf(")\n");
    printf("time            %.2f s", s.seconds);
    if (s.experts_listed && s.seconds > 0) printf(" (%.0f pages/s)", (double)s.experts_listed / s.seconds);
    printf("\n");
    return 0;
}
