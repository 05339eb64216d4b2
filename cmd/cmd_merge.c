/* cmd/cmd_merge.c — `monet-probe merge OUT.db SHARD.db...`: combine the
 * stores of `collect --shard i/n` runs exactly (core/store/collect.h). */
#include <stdio.h>

#include "cli.h"
#include "core/store/collect.h"

static const char *ABOUT =
    "  Combine finished shard stores of `collect --shard i/n` into one store: exact top-K union (same\n"
    "  ordering: higher w first, then lower document, then lower position), counts added, sums added in\n"
    "  argument order. Refuses stores of another model or other settings, overlapping or unfinished shards.";

int cmd_merge(int argc, char **argv) {
    const char *files[1024];
    int n = 0, force = 0, partial = 0, json = 0;
    const cli_opt opts[] = {
        {"--force", NULL, CLI_FLAG, NULL, &force, 0, 0, NULL, "overwrite OUT.db (never one of the inputs)", 0, NULL, 0},
        {"--partial", NULL, CLI_FLAG, NULL, &partial, 0, 0, NULL,
         "accept an incomplete set of shards (default: every shard i/n must be given)", 0, NULL, 0},
        CLI_OPT_JSON(&json),
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = "merge", .synopsis = "[--force] [--partial] [--json] OUT.db SHARD.db...", .about = ABOUT,
                           .opts = opts, .pos_name = "OUT.db SHARD.db", .pos = files, .pos_min = 2,
                           .pos_max = 1024, .pos_n = &n};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    if (n < 2) return cli_usage_error("merge", "give OUT.db and at least one SHARD.db");
    mp_error err;
    mp_error_clear(&err);
    mp_collect_summary s;
    if (mp_collect_merge(files[0], files + 1, n - 1, (force ? MP_MERGE_FORCE : 0) | (partial ? MP_MERGE_PARTIAL : 0), &s, &err) < 0) return cli_exit_error(&err);
    if (json) {
        printf("{\"store\": ");
        cli_json_str(stdout, files[0]);
        printf(", \"inputs\": %d, \"documents\": %llu, \"tokens\": %llu, \"store_bytes\": %lld, "
               "\"contexts\": %llu, \"topk_rows\": %llu}\n",
               n - 1, (unsigned long long)s.documents, (unsigned long long)s.tokens, (long long)s.store_bytes,
               (unsigned long long)s.n_contexts, (unsigned long long)s.topk_rows);
        return 0;
    }
    printf("merged      %d stores into %s\n", n - 1, files[0]);
    printf("documents   %llu, tokens %llu\n", (unsigned long long)s.documents, (unsigned long long)s.tokens);
    for (int g = 0; g < s.n_groups; g++)
        printf("group %-5d %llu experts ever active\n", g, (unsigned long long)s.group_active[g]);
    printf("store       %.2f MB, %llu top-%d rows, %llu contexts\n", (double)s.store_bytes / 1e6,
           (unsigned long long)s.topk_rows, s.K, (unsigned long long)s.n_contexts);
    return 0;
}
