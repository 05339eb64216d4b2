/* cmd/cmd_browse.c — `monet-probe browse`: write the expert browser, a static
 * offline HTML site, from a collect store (analysis/browse.h, docs/browse.md);
 * prints what was written, the site's size and the generation time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/browse.h"
#include "cli.h"

static const char *USAGE =
    "usage: monet-probe browse --store STORE.db --out DIR [--specialization SPEC.json] [--correlation CORR.json]\n"
    "                          [--experts N] [--rank count|max|mean|skew|toxicity] [--contexts N]\n"
    "                          [--context-tokens N] [--coact N] [--label-field F] [--score-field F]\n"
    "                          [--no-analysis] [--quiet]\n"
    "  A self-contained static site (HTML with inline CSS/JS, no network) to open from the file system:\n"
    "  DIR/index.html lists router groups and experts (search, sort by activation count, max activation,\n"
    "  specialization label and skew, toxicity correlation); DIR/experts/g<R>/<I>_<J>.html shows an\n"
    "  expert's top contexts, its activation per label (SVG) and the experts sharing its top-K tokens.\n"
    "  --out DIR                 new or empty directory, or a site written before (its pages are replaced)\n"
    "  --specialization F.json   output of `specialize --json --top 0` (default: computed from the store\n"
    "                            on its first label field, the paper's rule; --label-field F to choose)\n"
    "  --correlation F.json      output of `correlate --json` (default: computed per token on the store's\n"
    "                            first score field; --score-field F to choose)\n"
    "  --no-analysis             do not compute what no JSON gives (no specialization / correlation columns)\n"
    "  --experts N               experts listed and given a page (default 1000; 0 = every active expert)\n"
    "  --rank R                  which N: count (active tokens, default), max, mean (activation),\n"
    "                            skew (specialists, most skewed first), toxicity (highest r first)\n"
    "  --contexts N              top contexts per page (default 32; 0 = all stored)\n"
    "  --context-tokens N        tokens shown each side of the activating token (default 12)\n"
    "  --coact N                 co-activating experts per page (default 12)\n"
    "  --quiet                   no progress\n";

int cmd_browse(int argc, char **argv) {
    const char *store = NULL;
    mp_browse_opts o;
    mp_browse_opts_default(&o);
    int quiet = 0;
    long v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
        if (cli_is_help(a)) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "--store")) {
            if (!(store = cli_opt_value("browse", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--out")) {
            if (!(o.out_dir = cli_opt_value("browse", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--specialization")) {
            if (!(o.spec_json = cli_opt_value("browse", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--correlation")) {
            if (!(o.corr_json = cli_opt_value("browse", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--label-field")) {
            if (!(o.label_field = cli_opt_value("browse", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--score-field")) {
            if (!(o.score_field = cli_opt_value("browse", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--no-analysis")) {
            o.analyze = 0;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--rank")) {
            if (!(val = cli_opt_value("browse", argc, argv, &i))) return 2;
            if (!strcmp(val, "count")) o.rank = MP_BROWSE_RANK_COUNT;
            else if (!strcmp(val, "max")) o.rank = MP_BROWSE_RANK_MAX;
            else if (!strcmp(val, "mean")) o.rank = MP_BROWSE_RANK_MEAN;
            else if (!strcmp(val, "skew")) o.rank = MP_BROWSE_RANK_SKEW;
            else if (!strcmp(val, "toxicity")) o.rank = MP_BROWSE_RANK_CORR;
            else return cli_usage_error("browse", "--rank must be count, max, mean, skew or toxicity");
        } else if (!strcmp(a, "--experts")) {
            if (!(val = cli_opt_value("browse", argc, argv, &i))) return 2;
            if (cli_parse_long(val, 0, 1L << 40, &v)) return cli_usage_error("browse", "bad --experts '%s'", val);
            o.max_experts = (size_t)v;
        } else if (!strcmp(a, "--contexts")) {
            if (!(val = cli_opt_value("browse", argc, argv, &i))) return 2;
            if (cli_parse_long(val, 0, 1 << 20, &v)) return cli_usage_error("browse", "bad --contexts '%s'", val);
            o.contexts = (int)v;
        } else if (!strcmp(a, "--context-tokens")) {
            if (!(val = cli_opt_value("browse", argc, argv, &i))) return 2;
            if (cli_parse_long(val, 0, 4096, &v)) return cli_usage_error("browse", "bad --context-tokens '%s'", val);
            o.context_tokens = (int)v;
        } else if (!strcmp(a, "--coact")) {
            if (!(val = cli_opt_value("browse", argc, argv, &i))) return 2;
            if (cli_parse_long(val, 0, 1000, &v)) return cli_usage_error("browse", "bad --coact '%s'", val);
            o.coact = (int)v;
        } else {
            return cli_usage_error("browse", "unknown argument '%s'", a);
        }
    }
    if (!store || !o.out_dir) return cli_usage_error("browse", "--store STORE.db and --out DIR are required");
    mp_error err;
    mp_error_clear(&err);
    mp_store *st = NULL;
    mp_progress prog;
    mp_browse_summary s;
    if (mp_store_open(store, MP_STORE_READ, &st, &err) < 0) return cli_exit_error(&err);
    mp_progress_start(&prog, quiet ? NULL : stderr, "browse", "pages", 0);
    o.progress = &prog;
    int rc = mp_browse(st, &o, &s, &err);
    mp_store_close(st);
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
