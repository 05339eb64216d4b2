/* core/store/collect.h — `collect`: stream a corpus through the model and keep, per
 * router group and expert, the K highest activations w_ij with their
 * (document, position), activation statistics and per-label statistics, in a
 * crash-safe, resumable SQLite store (core/store/store.h); and `merge`, which
 * combines shard stores exactly.
 *
 * Processing: each document is tokenized as BOS + ids and run in
 * non-overlapping windows of `window` tokens (the KV cache is reset per
 * window, like `ppl`). The BOS token is fed to the model but never counted:
 * its routing is identical in every document and would flood every top-K.
 * Every other token counts, for every router group.
 *
 * Batches and resume: a batch ends at the first document end after `batch`
 * windows; it is committed in one transaction (dirty experts' top-K rows and
 * statistics, new windows, GC of windows no top-K row references, and the
 * corpus position next_doc). Re-running the same command resumes after the
 * last committed document. Statistics are absolute values accumulated in
 * double in token order, and reloaded exactly (SQLite REAL is IEEE double),
 * so a resumed run is bit-identical to an uninterrupted one, whatever the
 * batch size.
 *
 * Library code: prints nothing; progress goes through the mp_progress given
 * in the options and skipped corpus lines through opts.on_skip.
 */
#ifndef MP_COLLECT_H
#define MP_COLLECT_H

#include <stddef.h>
#include <stdint.h>

#include "core/model/backend.h"
#include "core/text/corpus.h"
#include "core/util/error.h"
#include "core/util/progress.h"

#define MP_COLLECT_MAX_FIELD_NAME 127   /* bytes in a label / score field name (longer: error) */
#define MP_COLLECT_MAX_SCORE 1e15        /* |score| allowed; larger or non-finite: error */

typedef struct mp_collect_opts {
    const char *model_dir;
    const char *corpus;          /* corpus SPEC (core/text/corpus.h) */
    const char *out;             /* store path */
    const char *text_field;      /* NULL = corpus default */
    const char *labels[MP_CORPUS_MAX_LABELS]; /* categorical label fields */
    int n_labels;
    const char *scores[MP_CORPUS_MAX_LABELS]; /* numeric label fields (e.g. toxicity in [0,1]) */
    int n_scores;
    int top_k;                   /* K (default 32) */
    int64_t max_tokens;          /* 0 = whole corpus */
    int window;                  /* 0 = min(512, max_position_embeddings) */
    int commit_every;            /* windows per committed transaction (0 = 64); store meta "batch" */
    int batch;                   /* windows per engine call, one KV slot each (0 = 1); never changes the store */
    mp_device device;            /* engine device (MP_DEVICE_CPU when zeroed; MP_DEVICE_AUTO) */
    const mp_backend_ops *backend; /* NULL: device's; else this table (bench/bench_store.c) */
    int shard_i, shard_n;        /* shard_n = 1: no sharding */
    int force_new;               /* overwrite an existing store */
    int strict;                  /* malformed corpus line is an error */
    mp_corpus_skip_fn on_skip;
    void *on_skip_ctx;
    mp_progress *progress;       /* may be NULL */
} mp_collect_opts;

typedef struct mp_collect_summary {
    int resumed;                 /* 1 when an existing store was continued */
    int already_finished;        /* 1 when the store was complete: nothing done */
    uint64_t resumed_at_doc;     /* next_doc found in the store */
    uint64_t documents, tokens, windows, batches, skipped_lines;
    uint64_t new_tokens;         /* tokens processed by this invocation */
    double seconds;              /* wall time of this invocation's processing */
    double store_thread_s;       /* of which the store thread (accumulators, commits) was busy */
    double commit_s;             /* of which in commits (SQLite transactions; the rest: accumulators) */
    double waited_s;             /* and the reading thread (tokenizer, forward) waited for it */
    int n_groups, E, K, window;
    uint64_t group_tokens[256], group_active[256];
    int64_t store_bytes;         /* database + WAL file */
    uint64_t n_contexts, context_blob_bytes, topk_rows;
} mp_collect_summary;

/* Run (or resume) a collection. @return 0, MP_EINPUT ("<store>: was collected
 * with other settings ...", bad corpus, ...), MP_EIO or MP_ENOMEM. On error the
 * store keeps its last committed batch. */
int mp_collect_run(const mp_collect_opts *o, mp_collect_summary *sum, mp_error *err);

/* Merge finished shard stores into a new store out (must not exist unless
 * MP_MERGE_FORCE; never one of the inputs). Refuses stores of another model or
 * other settings, overlapping or unfinished shards, and an incomplete set of
 * shards unless MP_MERGE_PARTIAL. Top-K: exact union with the same ordering;
 * counts exact; sums added in argument order (equal to a single run's up to
 * rounding). @return 0, MP_EINPUT or MP_EIO. */
enum { MP_MERGE_FORCE = 1, MP_MERGE_PARTIAL = 2 };
int mp_collect_merge(const char *out, const char *const *inputs, int n_inputs, int flags, mp_collect_summary *sum,
                     mp_error *err);

/* Fill the store-derived fields of sum (sizes, contexts, groups) from path. */
int mp_collect_store_summary(const char *path, mp_collect_summary *sum, mp_error *err);

/* Fingerprint of a checkpoint: sha256 of config.json, of tokenizer.model and
 * model_hash = sha256 over both digests and a sample of each *.safetensors file
 * (name, size, first and last MiB). Writes three hex strings [65]. */
int mp_model_fingerprint(const char *dir, char config_sha[65], char tok_sha[65], char model_hash[65], mp_error *err);

#endif
