/* cmd/cmd_collect.c — `monet-probe collect`: top-activating contexts and
 * statistics per expert into a resumable SQLite store (core/store/collect.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/store/collect.h"

static const char *USAGE =
    "usage: monet-probe collect --model DIR --corpus SPEC --out STORE.db [--top-k K] [--max-tokens N]\n"
    "                           [--context-window W] [--batch B] [--shard i/n] [--text-field F]\n"
    "                           [--label F]... [--score F]... [--force-new] [--strict] [--quiet] [--json]\n"
    "  Run the model over a corpus and keep, per router group and expert I,J, the K highest activations\n"
    "  w_ij = sum_h g1[h,I]*g2[h,J] with their document and position, activation statistics and\n"
    "  per-label statistics, in a SQLite store (schema: docs/store.md).\n"
    "  --top-k K           contexts kept per expert (default 32)\n"
    "  --max-tokens N      stop after N tokens (the last document is cut)\n"
    "  --context-window W  forward window in tokens (default min(512, max_position_embeddings))\n"
    "  --batch B           windows per committed transaction (default 64)\n"
    "  --shard i/n         process documents i, i+n, i+2n, ... (combine shards with `merge`)\n"
    "  --text-field F      JSONL/CSV text field (default \"text\")\n"
    "  --label F           categorical label field (domain, lang, ...); repeatable\n"
    "  --score F           numeric label field in [0,1] (toxicity, ...): 10 buckets + Pearson statistics\n"
    "  --force-new         overwrite STORE.db instead of resuming it\n"
    "  --strict            a malformed corpus line is fatal (default: reported, skipped, counted)\n"
    "  Re-running the same command after an interruption resumes from the last committed batch.\n";

static void on_skip(void *ctx, const char *file, size_t line, const char *reason) {
    if (*(int *)ctx) return;
    fprintf(stderr, "monet-probe: %s:%zu: %s (skipped)\n", file, line, reason);
}

int cmd_collect(int argc, char **argv) {
    mp_collect_opts o;
    memset(&o, 0, sizeof o);
    o.shard_n = 1;
    int quiet = 0, json = 0;
    long v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
        if (cli_is_help(a)) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "--model")) {
            if (!(o.model_dir = cli_opt_value("collect", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--corpus")) {
            if (!(o.corpus = cli_opt_value("collect", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--out")) {
            if (!(o.out = cli_opt_value("collect", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--text-field")) {
            if (!(o.text_field = cli_opt_value("collect", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--label") || !strcmp(a, "--score")) {
            if (!(val = cli_opt_value("collect", argc, argv, &i))) return 2;
            if (o.n_labels + o.n_scores >= MP_CORPUS_MAX_LABELS)
                return cli_usage_error("collect", "at most %d --label/--score fields", MP_CORPUS_MAX_LABELS);
            if (!*val || strchr(val, ',')) return cli_usage_error("collect", "bad field name '%s'", val);
            if (a[2] == 'l') o.labels[o.n_labels++] = val;
            else o.scores[o.n_scores++] = val;
        } else if (!strcmp(a, "--top-k")) {
            if (!(val = cli_opt_value("collect", argc, argv, &i))) return 2;
            if (cli_parse_long(val, 1, 1024, &v)) return cli_usage_error("collect", "--top-k needs 1..1024");
            o.top_k = (int)v;
        } else if (!strcmp(a, "--max-tokens")) {
            if (!(val = cli_opt_value("collect", argc, argv, &i))) return 2;
            if (cli_parse_long(val, 1, 1L << 62, &v)) return cli_usage_error("collect", "bad --max-tokens '%s'", val);
            o.max_tokens = v;
        } else if (!strcmp(a, "--context-window")) {
            if (!(val = cli_opt_value("collect", argc, argv, &i))) return 2;
            if (cli_parse_long(val, 1, 1 << 20, &v)) return cli_usage_error("collect", "bad --context-window '%s'", val);
            o.window = (int)v;
        } else if (!strcmp(a, "--batch")) {
            if (!(val = cli_opt_value("collect", argc, argv, &i))) return 2;
            if (cli_parse_long(val, 1, 1 << 24, &v)) return cli_usage_error("collect", "bad --batch '%s'", val);
            o.batch = (int)v;
        } else if (!strcmp(a, "--shard")) {
            if (!(val = cli_opt_value("collect", argc, argv, &i))) return 2;
            int si, sn, end = 0;
            if (sscanf(val, "%d/%d%n", &si, &sn, &end) != 2 || val[end] || sn < 1 || si < 0 || si >= sn || sn > 1000000)
                return cli_usage_error("collect", "--shard needs i/n with 0 <= i < n, got '%s'", val);
            o.shard_i = si;
            o.shard_n = sn;
        } else if (!strcmp(a, "--force-new")) {
            o.force_new = 1;
        } else if (!strcmp(a, "--strict")) {
            o.strict = 1;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else {
            return cli_usage_error("collect", "unknown argument '%s'", a);
        }
    }
    if (!o.model_dir || !o.corpus || !o.out)
        return cli_usage_error("collect", "--model DIR, --corpus SPEC and --out STORE.db are required");
    mp_progress prog;
    mp_progress_start(&prog, quiet ? NULL : stderr, "collect", "tok", o.max_tokens > 0 ? (uint64_t)o.max_tokens : 0);
    o.progress = &prog;
    o.on_skip = on_skip;
    o.on_skip_ctx = &quiet;
    mp_collect_summary s;
    mp_error err;
    mp_error_clear(&err);
    int rc = mp_collect_run(&o, &s, &err);
    if (rc < 0) return cli_exit_error(&err);
    if (!s.already_finished) mp_progress_finish(&prog);
    double rate = s.seconds > 0 ? (double)s.new_tokens / s.seconds : 0;
    double per_ctx = s.n_contexts ? (double)s.store_bytes / (double)s.n_contexts : 0;
    if (json) {
        printf("{\"store\": \"%s\", \"resumed\": %s, \"already_finished\": %s, \"resumed_at_doc\": %llu, "
               "\"documents\": %llu, \"tokens\": %llu, \"new_tokens\": %llu, \"windows\": %llu, \"batches\": %llu, "
               "\"skipped_lines\": %llu, \"tokens_per_s\": %.1f, \"store_bytes\": %lld, \"contexts\": %llu, "
               "\"context_blob_bytes\": %llu, \"topk_rows\": %llu, \"bytes_per_context\": %.1f, \"groups\": [",
               o.out, s.resumed ? "true" : "false", s.already_finished ? "true" : "false",
               (unsigned long long)s.resumed_at_doc, (unsigned long long)s.documents, (unsigned long long)s.tokens,
               (unsigned long long)s.new_tokens, (unsigned long long)s.windows, (unsigned long long)s.batches,
               (unsigned long long)s.skipped_lines, rate, (long long)s.store_bytes, (unsigned long long)s.n_contexts,
               (unsigned long long)s.context_blob_bytes, (unsigned long long)s.topk_rows, per_ctx);
        for (int g = 0; g < s.n_groups; g++)
            printf("%s{\"group\": %d, \"tokens\": %llu, \"active_experts\": %llu}", g ? ", " : "", g,
                   (unsigned long long)s.group_tokens[g], (unsigned long long)s.group_active[g]);
        printf("]}\n");
        return 0;
    }
    if (s.already_finished) printf("store       %s is complete (nothing to do; --force-new to redo)\n", o.out);
    else if (s.resumed) printf("resumed     at document %llu\n", (unsigned long long)s.resumed_at_doc);
    printf("documents   %llu (%llu malformed lines skipped)\n", (unsigned long long)s.documents,
           (unsigned long long)s.skipped_lines);
    printf("tokens      %llu in %llu windows of <= %d, %llu batches", (unsigned long long)s.tokens,
           (unsigned long long)s.windows, s.window, (unsigned long long)s.batches);
    if (!s.already_finished) printf(", %.1f tokens/s this run", rate);
    printf("\n");
    unsigned long long e2 = (unsigned long long)s.E * (unsigned long long)s.E;
    for (int g = 0; g < s.n_groups; g++)
        printf("group %-5d %llu of %llu experts ever active (%.1f%%)\n", g, (unsigned long long)s.group_active[g], e2,
               e2 ? 100.0 * (double)s.group_active[g] / (double)e2 : 0.0);
    printf("store       %s: %.2f MB, %llu top-%d rows, %llu contexts (windows), %.0f store bytes per context, "
           "%.0f zstd bytes per window blob\n",
           o.out, (double)s.store_bytes / 1e6, (unsigned long long)s.topk_rows, s.K, (unsigned long long)s.n_contexts,
           per_ctx, s.n_contexts ? (double)s.context_blob_bytes / (double)s.n_contexts : 0.0);
    return 0;
}
