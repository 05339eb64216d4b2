/* cmd/cmd_merge.c — `monet-probe merge OUT.db SHARD.db...`: combine the
 * stores of `collect --shard i/n` runs exactly (core/store/collect.h). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "core/store/collect.h"

static const char *USAGE =
    "usage: monet-probe merge [--force] [--json] OUT.db SHARD.db...\n"
    "  Combine finished shard stores of `collect --shard i/n` into one store: exact top-K union (same\n"
    "  ordering: higher w first, then lower document, then lower position), counts added, sums added in\n"
    "  argument order. Refuses stores of another model or other settings, overlapping or unfinished shards.\n"
    "  --force   overwrite OUT.db\n";

int cmd_merge(int argc, char **argv) {
    const char *files[1024];
    int n = 0, force = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "--force")) {
            force = 1;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("merge", "unknown argument '%s'", a);
        } else {
            if (n == 1024) return cli_usage_error("merge", "at most 1023 input stores");
            files[n++] = a;
        }
    }
    if (n < 2) return cli_usage_error("merge", "give OUT.db and at least one SHARD.db");
    mp_error err;
    mp_error_clear(&err);
    mp_collect_summary s;
    if (mp_collect_merge(files[0], files + 1, n - 1, force, &s, &err) < 0) return cli_exit_error(&err);
    if (json) {
        printf("{\"store\": \"%s\", \"inputs\": %d, \"documents\": %llu, \"tokens\": %llu, \"store_bytes\": %lld, "
               "\"contexts\": %llu, \"topk_rows\": %llu}\n",
               files[0], n - 1, (unsigned long long)s.documents, (unsigned long long)s.tokens, (long long)s.store_bytes,
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
