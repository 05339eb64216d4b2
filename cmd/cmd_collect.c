/* cmd/cmd_collect.c — `monet-probe collect`: top-activating contexts and
 * statistics per expert into a resumable SQLite store (core/store/collect.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/store/collect.h"

static const char *ABOUT =
    "  Run the model over a corpus and keep, per router group and expert I,J, the K highest activations\n"
    "  w_ij = sum_h g1[h,I]*g2[h,J] with their document and position, activation statistics and\n"
    "  per-label statistics, in a SQLite store (schema: docs/store.md); and beside the top-K, per\n"
    "  expert an activation histogram, quantile samples (a few tokens per octave of w) and its best\n"
    "  documents per label value, plus a token -> experts index (read by find, top-contexts --label /\n"
    "  --quantiles, browse and export).";
static const char *FOOTER =
    "Re-running the same command after an interruption resumes from the last committed transaction\n"
    "(every --commit-every windows). --batch only groups windows into engine calls: the store is the\n"
    "same bit for bit at any --batch (before the engine API, --batch meant --commit-every).\n";

/* --shard i/n into mp_collect_opts.shard_i / shard_n */
/* A Slurm job array task as shard i/n: i = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN,
 * n = SLURM_ARRAY_TASK_COUNT; the array must be contiguous (--array=0-3 or 1-4). */
static int slurm_shard(int *si, int *sn, char *msg, size_t cap) {
    const char *names[4] = {"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX",
                            "SLURM_ARRAY_TASK_COUNT"};
    long v[4];
    for (int k = 0; k < 4; k++) {
        const char *e = getenv(names[k]);
        char *end = NULL;
        v[k] = e && *e ? strtol(e, &end, 10) : -1;
        if (!e || !*e || *end || v[k] < 0 || v[k] > 1000000) {
            snprintf(msg, cap, "slurm: %s is %s (run inside an sbatch --array job, or give i/n)", names[k],
                     e && *e ? "not a number in 0..1000000" : "not set");
            return -1;
        }
    }
    if (v[3] < 1 || v[2] - v[1] + 1 != v[3] || v[0] < v[1] || v[0] > v[2]) {
        snprintf(msg, cap, "slurm: the job array must be contiguous (task %ld of %ld..%ld, count %ld)", v[0], v[1],
                 v[2], v[3]);
        return -1;
    }
    *si = (int)(v[0] - v[1]);
    *sn = (int)v[3];
    return 0;
}

static int parse_shard(const char *v, void *dest, char *msg, size_t cap) {
    mp_collect_opts *o = dest;
    int si, sn, end = 0;
    if (!strcmp(v, "slurm")) {
        if (slurm_shard(&si, &sn, msg, cap) < 0) return -1;
        o->shard_i = si;
        o->shard_n = sn;
        return 0;
    }
    if (sscanf(v, "%d/%d%n", &si, &sn, &end) != 2 || v[end] || sn < 1 || si < 0 || si >= sn || sn > 1000000) {
        snprintf(msg, cap, "needs i/n with 0 <= i < n <= 1000000, not '%s'", v);
        return -1;
    }
    o->shard_i = si;
    o->shard_n = sn;
    return 0;
}

/* The --label-field / --score-field lists into o (names checked, total bounded). */
static int take_fields(const cli_list *labels, const cli_list *scores, mp_collect_opts *o) {
    if (labels->n + scores->n > MP_CORPUS_MAX_LABELS)
        return cli_usage_error("collect", "at most %d --label-field/--score-field fields in all", MP_CORPUS_MAX_LABELS);
    for (int k = 0; k < labels->n + scores->n; k++) {
        const char *f = k < labels->n ? labels->v[k] : scores->v[k - labels->n];
        if (!*f || strchr(f, ',')) return cli_usage_error("collect", "bad field name '%s'", f);
        if (k < labels->n) o->labels[o->n_labels++] = f;
        else o->scores[o->n_scores++] = f;
    }
    return 0;
}

static void on_skip(void *ctx, const char *file, size_t line, const char *reason) {
    if (*(int *)ctx) return;
    fprintf(stderr, "monet-probe: %s:%zu: %s (skipped)\n", file, line, reason);
}

int cmd_collect(int argc, char **argv) {
    mp_collect_opts o;
    memset(&o, 0, sizeof o);
    o.shard_n = 1;
    int quiet = 0, json = 0;
    cli_list labels = {0}, scores = {0};
    cli_model_args dev_arg = {0};
    long max_tokens = 0;
    const cli_opt table[] = {
        {"--model", NULL, CLI_STR, "DIR", &o.model_dir, 0, 0, NULL,
         "checkpoint folder: config.json, *.safetensors, tokenizer.model", CLI_REQUIRED, NULL, 0},
        CLI_OPT_CORPUS(&o.corpus, CLI_REQUIRED),
        CLI_OPT_OUT(&o.out, "STORE.db", "the store (created, or resumed when it exists)", CLI_REQUIRED),
        {"--top-k", NULL, CLI_INT, "K", &o.top_k, 1, 1024, NULL, "contexts kept per expert (default 32)", 0, NULL, 0},
        {"--max-tokens", NULL, CLI_LONG, "N", &max_tokens, 1, 4.6e18, NULL,
         "stop after N tokens of the corpus (the last document is cut; with --shard,\n"
         "N counts every shard's documents: the shards merge to the unsharded store)", 0, NULL, 0},
        {"--context-window", NULL, CLI_INT, "W", &o.window, 1, 1 << 20, NULL,
         "forward window in tokens (default min(512, max_position_embeddings))", 0, NULL, 0},
        CLI_OPT_DEVICE(&dev_arg),
        CLI_OPT_BATCH(&o.batch, "windows per engine call, one KV cache of W tokens each (default 1)"),
        {"--commit-every", NULL, CLI_INT, "N", &o.commit_every, 1, 1 << 24, NULL,
         "windows per committed transaction (default 64; resume granularity)", 0, NULL, 0},
        {"--shard", NULL, CLI_CUSTOM, "i/n", &o, 0, 0, NULL,
         "process documents i, i+n, i+2n, ... (combine shards with `merge`); `slurm`:\n"
         "this job array task's i/n (docs/scale.md)", 0, parse_shard, 0},
        CLI_OPT_TEXT_FIELD(&o.text_field),
        {"--label-field", "--label", CLI_LIST, "F", &labels, 0, 0, NULL,
         "categorical label field (domain, lang, ...)", CLI_DEPRECATED, NULL, 0},
        {"--score-field", "--score", CLI_LIST, "F", &scores, 0, 0, NULL,
         "numeric label field in [0,1] (toxicity, ...): 10 buckets + Pearson statistics", CLI_DEPRECATED, NULL, 0},
        {"--force-new", NULL, CLI_FLAG, NULL, &o.force_new, 0, 0, NULL, "overwrite STORE.db instead of resuming it", 0,
         NULL, 0},
        CLI_OPT_STRICT(&o.strict),
        CLI_OPT_QUIET(&quiet),
        CLI_OPT_JSON(&json),
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = "collect", .about = ABOUT, .opts = table, .footer = FOOTER};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    int prc;
    if ((prc = take_fields(&labels, &scores, &o))) return prc;
    if (cli_model_device("collect", &dev_arg, &o.device)) return 2;
    o.max_tokens = max_tokens;
    mp_progress prog;
    /* a shard's own tokens are a share of --max-tokens: collect reports the whole corpus's fraction instead */
    mp_progress_start(&prog, quiet ? NULL : stderr, "collect", "tok",
                      o.max_tokens > 0 && o.shard_n <= 1 ? (uint64_t)o.max_tokens : 0);
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
               "\"context_blob_bytes\": %llu, \"topk_rows\": %llu, \"bytes_per_context\": %.1f, \"seconds\": %.3f, "
               "\"store_thread_s\": %.3f, \"commit_s\": %.3f, \"waited_for_store_s\": %.3f, \"groups\": [",
               o.out, s.resumed ? "true" : "false", s.already_finished ? "true" : "false",
               (unsigned long long)s.resumed_at_doc, (unsigned long long)s.documents, (unsigned long long)s.tokens,
               (unsigned long long)s.new_tokens, (unsigned long long)s.windows, (unsigned long long)s.batches,
               (unsigned long long)s.skipped_lines, rate, (long long)s.store_bytes, (unsigned long long)s.n_contexts,
               (unsigned long long)s.context_blob_bytes, (unsigned long long)s.topk_rows, per_ctx, s.seconds,
               s.store_thread_s, s.commit_s, s.waited_s);
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
    if (!s.already_finished)
        printf(", %.1f tokens/s this run (store thread busy %.1f s, %.1f s of it in commits; the forward waited "
               "%.1f s for it)", rate, s.store_thread_s, s.commit_s, s.waited_s);
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
