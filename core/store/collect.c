/* core/store/collect.c — the collect loop (corpus -> tokenizer -> windows ->
 * batched engine forward with routing, --batch windows per engine call ->
 * accumulators in document and token order -> store, one transaction per
 * --commit-every windows), resume, and the exact merge of shard stores. See collect.h for the semantics and
 * docs/store.md for the store. */
#include "core/store/collect.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/model/checkpoint.h"
#include "core/model/backend.h"
#include "core/model/model.h"
#include "core/util/file.h"
#include "core/util/pipe.h"
#include "core/util/sha256.h"
#include "core/store/evidence.h"
#include "core/store/store.h"
#include "core/text/tokenizer.h"
#include "core/store/topk.h"

#ifndef MP_VERSION
#define MP_VERSION "dev"
#endif

/* ---------------------------------------------------------------- fingerprint */


static int hash_sample(mp_sha256 *h, const char *path, mp_error *err) {
    FILE *f = NULL;
    MP_TRY(mp_file_fopen_regular(path, &f, NULL, err));
    static uint8_t buf[1 << 16];
    long long size = 0;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    mp_sha256_update(h, &size, sizeof size);
    const long long MIB = 1 << 20;
    long long offs[2] = {0, size > MIB ? size - MIB : 0};
    for (int k = 0; k < 2; k++) {
        if (fseek(f, (long)offs[k], SEEK_SET) != 0) break;
        long long left = MIB;
        size_t r;
        while (left > 0 && (r = fread(buf, 1, (size_t)(left < (long long)sizeof buf ? left : (long long)sizeof buf), f)) > 0) {
            mp_sha256_update(h, buf, r);
            left -= (long long)r;
        }
    }
    int bad = ferror(f);
    fclose(f);
    return bad ? mp_fail(err, MP_EIO, "%s: read error", path) : 0;
}

int mp_model_fingerprint(const char *dir, char config_sha[65], char tok_sha[65], char model_hash[65], mp_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    MP_TRY(mp_sha256_file(path, config_sha, err));
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    MP_TRY(mp_sha256_file(path, tok_sha, err));
    mp_sha256 h;
    mp_sha256_init(&h);
    mp_sha256_update(&h, config_sha, 64);
    mp_sha256_update(&h, tok_sha, 64);
    char **names = NULL;
    size_t n = 0;
    MP_TRY(mp_list_safetensors(dir, &names, &n, err));
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        mp_sha256_update(&h, names[i], strlen(names[i]) + 1);
        if ((rc = hash_sample(&h, path, err)) < 0) goto cleanup;
    }
    uint8_t dig[32];
    mp_sha256_final(&h, dig);
    mp_sha256_hex(dig, model_hash);
cleanup:
    mp_free_names(names, n);
    return rc;
}

/* ---------------------------------------------------------------- settings */

#define N_SETTINGS 10
typedef struct settings {
    char kv[N_SETTINGS][2][1024];
} settings;

/* The metadata a resumed run and a merge must agree on, in a fixed order. */
static const char *SETTING_KEYS[N_SETTINGS] = {"model_hash", "corpus",      "text_field", "label_fields",
                                               "score_fields", "top_k",     "window",     "max_tokens",
                                               "shard",        "n_groups"};

static void join(char *out, size_t cap, const char *const *v, int n) {
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i) strncat(out, ",", cap - strlen(out) - 1);
        strncat(out, v[i], cap - strlen(out) - 1);
    }
}

static int settings_read(mp_store *st, settings *s, mp_error *err) {
    for (int k = 0; k < N_SETTINGS; k++) {
        char *v = NULL;
        int r = mp_store_meta_get(st, SETTING_KEYS[k], &v, err);
        if (r < 0) return r;
        snprintf(s->kv[k][0], sizeof s->kv[k][0], "%s", SETTING_KEYS[k]);
        snprintf(s->kv[k][1], sizeof s->kv[k][1], "%s", r ? v : "(missing)");
        free(v);
    }
    return 0;
}

/* Split a comma list; -1 when an element is longer than MP_COLLECT_MAX_FIELD_NAME
 * (never cut silently). */
static int parse_list(const char *s, char out[][128], int max) {
    int n = 0;
    while (s && *s && n < max) {
        const char *c = strchr(s, ',');
        size_t l = c ? (size_t)(c - s) : strlen(s);
        if (l > MP_COLLECT_MAX_FIELD_NAME) return -1;
        snprintf(out[n++], 128, "%.*s", (int)l, s);
        s = c ? c + 1 : NULL;
    }
    return n;
}

/* ---------------------------------------------------------------- the batch */

typedef struct win {
    uint64_t doc;
    uint32_t start, n;
    size_t off;       /* into batch.ids */
    int stored;
    int doc_idx;      /* into batch.docs */
} win;

typedef struct bdoc {
    uint64_t doc;
    char *source, *labels;
    int64_t line;
    int stored;
} bdoc;

typedef struct batch {
    win *w;
    size_t nw, capw;
    int32_t *ids;
    size_t nids, capids;
    bdoc *d;
    size_t nd, capd;
    uint64_t first_doc;
} batch;

static void batch_clear(batch *b) {
    for (size_t i = 0; i < b->nd; i++) {
        free(b->d[i].source);
        free(b->d[i].labels);
    }
    b->nw = b->nids = b->nd = 0;
}

static void batch_free(batch *b) {
    batch_clear(b);
    free(b->w);
    free(b->ids);
    free(b->d);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem, mp_error *err) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *np = realloc(*p, nc * elem);
    if (!np) return mp_fail(err, MP_ENOMEM, "out of memory (batch)");
    *p = np;
    *cap = nc;
    return 0;
}

static win *batch_find(batch *b, uint64_t doc, uint32_t start) {
    size_t lo = 0, hi = b->nw;
    while (lo < hi) { /* windows are appended in (doc, start) order */
        size_t mid = (lo + hi) / 2;
        win *w = &b->w[mid];
        if (w->doc < doc || (w->doc == doc && w->start < start)) lo = mid + 1;
        else hi = mid;
    }
    return lo < b->nw && b->w[lo].doc == doc && b->w[lo].start == start ? &b->w[lo] : NULL;
}

/* A document on its way to the store thread: its label strings (the thread
 * turns them into value ids and scores, in document order) and, once there,
 * those ids until the end of its last window. */
typedef struct pdoc {
    uint64_t index;
    size_t first;  /* 1 when ids[0] is BOS (context only, not counted) */
    int64_t line;
    char *source;  /* for a bad score's message */
    char *val[MP_ACC_MAX_FIELDS]; /* raw label / score strings, NULL when missing */
    int vid[MP_ACC_MAX_FIELDS];
    double sc[MP_ACC_MAX_FIELDS];
} pdoc;

static void pdoc_free(pdoc *d) {
    free(d->source);
    for (int f = 0; f < MP_ACC_MAX_FIELDS; f++) free(d->val[f]);
    memset(d, 0, sizeof *d);
}

/* What the reading thread hands the store thread (core/util/pipe.h), in
 * order: the routing of one engine call, or a commit. */
enum { JOB_WINDOWS, JOB_COMMIT };
typedef struct job {
    int kind;
    /* JOB_WINDOWS: documents queued since the previous job, then the call's
     * windows (copies) with their ids and routing; end_all: every queued
     * document is complete after them */
    pdoc *docs;
    size_t nd, capd;
    win *w;        /* [per_call] */
    size_t nw;
    int32_t *ids;  /* [per_call * W] */
    size_t *off;   /* [per_call + 1] */
    mp_routing *rt; /* [per_call] */
    int end_all;
    /* JOB_COMMIT: the batch (owned by the store thread until the job ran)
     * and the reading thread's counters at its end */
    batch *b;
    int finished;
    uint64_t next_doc, tokens, windows, corpus_tokens, skipped;
} job;

/* Jobs in flight: the reading thread works up to n_jobs - 1 engine calls
 * ahead of the store thread, enough for one whole --commit-every batch, so the
 * forward goes on while a commit (seconds: every dirty expert's rows) runs.
 * Memory: the routing of a batch of windows (1.4B shape: about 3 MB a 512-token
 * window; 64 windows = 192 MB). */
enum { MIN_JOBS = 3, MAX_JOBS = 1026 };

typedef struct run {
    const mp_collect_opts *o;
    mp_store *st;
    mp_acc *acc;
    int W;
    int per_call;     /* windows per engine call */
    /* reading thread: the batch being filled (bufs[cur]), its windows not yet
     * sent to the engine (from pw0), documents not yet handed over */
    batch bufs[2];
    int cur;
    uint64_t commit_job[2]; /* number of the job committing bufs[i] (0: none) */
    size_t pw0;
    pdoc *nd;
    size_t n_nd, cap_nd;
    mp_engine *eng;
    job *jobs;        /* [n_jobs] */
    int n_jobs;
    mp_pipe *pipe;
    uint64_t tokens, windows, next_doc;
    uint64_t corpus_tokens; /* tokens of every document before next_doc, all shards: what --max-tokens caps */
    size_t batch_windows;
    struct mp_corpus *corpus;
    /* store thread: documents whose windows are being accumulated */
    pdoc *wq;
    size_t wq_head, wq_n, wq_cap;
    mp_pairs_buf pairs;
    uint64_t docs, batches;
    double commit_s;  /* store thread: time in this run's commits */
} run;

static int cmp_u32(const void *x, const void *y) {
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

static int cmp_window(const void *x, const void *y) {
    const mp_topk_slot *a = x, *b = y;
    if (a->doc != b->doc) return a->doc < b->doc ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* Store the window of batch hit (doc, pos) and its document row, once. */
static int keep_window(run *r, batch *bt, uint64_t doc, uint32_t pos, mp_error *err) {
    uint32_t start = pos - pos % (uint32_t)r->W;
    win *w = batch_find(bt, doc, start);
    MP_FAIL_IF(!w, err, MP_EINTERNAL, "collect: window of document %llu position %u not in the batch",
               (unsigned long long)doc, pos);
    if (w->stored) return 0;
    bdoc *d = &bt->d[w->doc_idx];
    MP_TRY(mp_store_put_window(r->st, w->doc, w->start, bt->ids + w->off, w->n, err));
    if (!d->stored) MP_TRY(mp_store_put_doc(r->st, d->doc, d->source, d->line, d->labels, err));
    w->stored = d->stored = 1;
    return 0;
}

static int commit_batch(run *r, const job *j, mp_error *err);

/* Store thread: commit job j's batch, one transaction (timed). */
static int commit(run *r, const job *j, mp_error *err) {
    double t0 = mp_now();
    int rc = commit_batch(r, j, err);
    r->commit_s += mp_now() - t0;
    return rc;
}

static int commit_batch(run *r, const job *j, mp_error *err) {
    batch *bt = j->b;
    mp_acc *a = r->acc;
    mp_store *st = r->st;
    int rc = 0;
    mp_topk_slot *refs = NULL; /* evidence rows' hits: windows to keep, then windows to collect */
    size_t nrefs = 0, caprefs = 0;
    /* expert order: B-tree inserts in key order */
    if (a->n_dirty) qsort(a->dirty_list, a->n_dirty, sizeof *a->dirty_list, cmp_u32); /* NULL when empty */
    MP_TRY(mp_store_begin(st, err));
    uint64_t first_doc = bt->nw ? bt->first_doc : UINT64_MAX;
    if ((rc = mp_store_save_acc(st, a, 0, first_doc, err)) < 0) goto fail;
    /* windows of this batch that a top-K slot points at */
    for (size_t i = 0; i < a->n_dirty; i++) {
        size_t x = a->dirty_list[i];
        if (!(a->dirty[x] & MP_DIRTY_TOPK)) continue;
        const mp_topk_slot *h = a->slots + x * (size_t)a->K;
        for (int k = 0; k < a->count[x]; k++) {
            if (bt->nw == 0 || h[k].doc < bt->first_doc) continue;
            if ((rc = keep_window(r, bt, h[k].doc, h[k].pos, err)) < 0) goto fail;
        }
    }
    /* ... and a quantile sample or label top-K row */
    if ((rc = mp_evid_new_refs(a->ev, first_doc, &refs, &nrefs, &caprefs, err)) < 0) goto fail;
    for (size_t i = 0; i < nrefs; i++)
        if ((rc = keep_window(r, bt, refs[i].doc, refs[i].pos, err)) < 0) goto fail;
    /* GC: windows of earlier batches that lost a reference, each window once */
    nrefs = 0;
    for (size_t i = 0; i < a->n_evicted; i++) {
        mp_topk_slot e = a->evicted[i];
        if (bt->nw > 0 && e.doc >= bt->first_doc) continue;
        if ((rc = mp_evid_push_ref(&refs, &nrefs, &caprefs, e, err)) < 0) goto fail;
    }
    if ((rc = mp_evid_old_refs(a->ev, first_doc, &refs, &nrefs, &caprefs, err)) < 0) goto fail;
    for (size_t i = 0; i < nrefs; i++) {
        refs[i].pos -= refs[i].pos % (uint32_t)r->W;
        refs[i].w = 0;
    }
    if (nrefs) qsort(refs, nrefs, sizeof *refs, cmp_window);
    size_t nwin = 0; /* distinct windows, in place */
    for (size_t i = 0; i < nrefs; i++)
        if (nwin == 0 || refs[i].doc != refs[nwin - 1].doc || refs[i].pos != refs[nwin - 1].pos) refs[nwin++] = refs[i];
    if ((rc = mp_store_gc_windows(st, a, refs, nwin, r->W, err)) < 0) goto fail;
    r->batches++;
    struct { const char *k; uint64_t v; } pv[] = {
        {"next_doc", j->next_doc}, {"documents", r->docs}, {"tokens", j->tokens}, {"windows", j->windows},
        {"batches", r->batches}, {"corpus_tokens", j->corpus_tokens}, {"skipped_lines", j->skipped},
        {"finished", (uint64_t)j->finished}};
    for (size_t i = 0; i < sizeof pv / sizeof *pv; i++)
        if ((rc = mp_store_progress_set(st, pv[i].k, (int64_t)pv[i].v, err)) < 0) goto fail;
    if ((rc = mp_store_commit(st, err)) < 0) goto fail;
    free(refs);
    mp_acc_clear_dirty(a);
    batch_clear(bt);
    return 0;
fail:
    free(refs);
    mp_store_rollback(st);
    return rc;
}

static char *labels_json(const mp_doc *d) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    for (int i = 0; i < d->n_labels; i++)
        if (d->label_values[i]) cJSON_AddStringToObject(o, d->label_names[i], d->label_values[i]);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static const char *doc_label(const mp_doc *d, const char *name) {
    for (int i = 0; i < d->n_labels; i++)
        if (d->label_names[i] && !strcmp(d->label_names[i], name)) return d->label_values[i];
    return NULL;
}

/* Store thread: label value ids and scores of a document, from its strings. */
static int doc_values(run *r, pdoc *pd, mp_error *err) {
    mp_acc *a = r->acc;
    for (int f = 0; f < a->n_fields; f++) {
        const char *v = pd->val[f];
        pd->vid[f] = -1;
        pd->sc[f] = NAN;
        if (!v) continue;
        if (a->fields[f].is_score) {
            char *end = NULL;
            errno = 0;
            double y = strtod(v, &end);
            if (end == v || *end) continue; /* not a number: missing */
            /* sums of y*y*tokens must stay finite: one 1e308 would turn every
             * statistic of the field into inf/NaN */
            if (!isfinite(y) || fabs(y) > MP_COLLECT_MAX_SCORE)
                return mp_fail(err, MP_EINPUT, "%s:%lld: score field '%.100s' = '%.40s' is %s (allowed: |score| <= %g)",
                               pd->source && *pd->source ? pd->source : "corpus", (long long)pd->line,
                               a->fields[f].name, v, isfinite(y) ? "out of range" : "not finite",
                               MP_COLLECT_MAX_SCORE);
            pd->sc[f] = y;
            char bucket[16];
            mp_score_bucket(y, bucket);
            v = bucket;
            MP_TRY(pd->vid[f] = mp_acc_value_id(a, f, v, err));
        } else {
            MP_TRY(pd->vid[f] = mp_acc_value_id(a, f, v, err));
        }
    }
    return 0;
}

/* A document of another shard under --max-tokens: only its tokens count
 * (up to the budget left), so that every shard stops at the document where
 * one run over the whole corpus would stop. */
static int count_doc(run *r, const mp_doc *d, mp_tokenizer *tok, int64_t budget, int *stop, mp_error *err) {
    int32_t *ids = NULL;
    size_t n = 0;
    int cut;
    MP_TRY(mp_tokenizer_encode_upto(tok, d->text, d->len, 1, budget, &ids, &n, &cut, err));
    int bos = mp_tokenizer_bos_id(tok);
    size_t first = (n > 0 && bos >= 0 && ids[0] == bos) ? 1 : 0;
    free(ids);
    if (n - first >= (size_t)budget) *stop = 1;
    r->corpus_tokens += n - first;
    return 0;
}

/* Reading thread: tokenize d, record its document row and windows in the
 * batch, and queue it for the store thread. Counters (tokens, windows, the
 * token budget) advance here, in document order; the accumulators advance on
 * the store thread (run_windows), in the same order, so nothing depends on
 * how windows are grouped into engine calls or on the thread timing. */
static int enqueue_doc(run *r, const mp_doc *d, mp_tokenizer *tok, int64_t budget, int *stop, mp_error *err) {
    const mp_collect_opts *o = r->o;
    batch *bt = &r->bufs[r->cur];
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = 0;
    char *lj = NULL;
    int cut;
    if ((rc = mp_tokenizer_encode_upto(tok, d->text, d->len, 1, budget, &ids, &n, &cut, err)) < 0) return rc;
    int bos = mp_tokenizer_bos_id(tok);
    size_t first = (n > 0 && bos >= 0 && ids[0] == bos) ? 1 : 0;
    if (budget >= 0 && n - first >= (size_t)budget) {
        n = first + (size_t)budget;
        *stop = 1;
    }
    r->corpus_tokens += n - first;
    if ((rc = grow((void **)&r->nd, &r->cap_nd, r->n_nd + 1, sizeof *r->nd, err)) < 0) goto cleanup;
    pdoc *pd = &r->nd[r->n_nd++];
    memset(pd, 0, sizeof *pd);
    pd->index = d->index;
    pd->first = first;
    pd->line = (int64_t)d->line;
    pd->source = strdup(d->source ? d->source : "");
    int oom = !pd->source;
    for (int f = 0; f < r->acc->n_fields; f++) {
        const char *v = doc_label(d, r->acc->fields[f].name);
        if (v && !(pd->val[f] = strdup(v))) oom = 1;
    }
    if (oom || !(lj = labels_json(d))) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (bt->nw == 0) bt->first_doc = d->index;
    if ((rc = grow((void **)&bt->d, &bt->capd, bt->nd + 1, sizeof *bt->d, err)) < 0) goto cleanup;
    bdoc *bd = &bt->d[bt->nd];
    memset(bd, 0, sizeof *bd);
    bd->doc = d->index;
    bd->line = (int64_t)d->line;
    bd->labels = lj;
    lj = NULL;
    bd->source = strdup(d->source ? d->source : "");
    bt->nd++;
    if (!bd->source) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t start = 0; start < n && n > first; start += (size_t)r->W) {
        size_t len = n - start < (size_t)r->W ? n - start : (size_t)r->W;
        /* keep the window's ids until the batch is committed: a top-K hit stores them */
        if ((rc = grow((void **)&bt->w, &bt->capw, bt->nw + 1, sizeof *bt->w, err)) < 0 ||
            (rc = grow((void **)&bt->ids, &bt->capids, bt->nids + len, sizeof *bt->ids, err)) < 0)
            goto cleanup;
        memcpy(bt->ids + bt->nids, ids + start, len * sizeof *ids);
        bt->w[bt->nw++] = (win){d->index, (uint32_t)start, (uint32_t)len, bt->nids, 0, (int)bt->nd - 1};
        bt->nids += len;
        r->windows++;
        r->batch_windows++;
        size_t counted = len - (start < first ? first - start : 0);
        r->tokens += counted;
        if (o->progress) mp_progress_add(o->progress, counted);
    }
cleanup:
    free(lj);
    free(ids);
    return rc;
}

/* Store thread: fold window w's routing (rt, its tokens ids in order) into
 * the accumulators. */
static int accumulate_window(run *r, const win *w, const int32_t *ids, size_t first, const mp_routing *rt,
                             mp_error *err) {
    int rc = 0;
    for (size_t t = 0; t < w->n; t++) {
        uint32_t pos = w->start + (uint32_t)t;
        if (pos < first) continue;
        mp_acc_token(r->acc);
        for (int g = 0; g < rt->n_groups; g++) {
            mp_expert_weight *pairs = NULL;
            size_t np = 0;
            MP_TRY(mp_route_expert_pairs_into(&rt->groups[g], (int)t, rt->E, &r->pairs, &pairs, &np, err));
            for (size_t k = 0; k < np && rc == 0; k++)
                rc = mp_acc_hit(r->acc, g, (uint32_t)pairs[k].i * (uint32_t)rt->E + (uint32_t)pairs[k].j, pairs[k].w,
                                w->doc, pos, ids[t], err);
            MP_TRY(rc);
        }
    }
    return 0;
}

/* Store thread: the oldest queued document is complete. */
static int end_doc(run *r, mp_error *err) {
    pdoc *pd = &r->wq[r->wq_head];
    int rc = mp_acc_doc_end(r->acc, pd->vid, pd->sc, err);
    pdoc_free(pd);
    r->wq_head++;
    r->docs++;
    return rc;
}

/* Store thread: documents of job j join the queue (their labels become value
 * ids, in document order), then its windows are accumulated in reading order
 * (the documents before a window's own are complete). */
static int run_windows(run *r, job *j, mp_error *err) {
    if (r->wq_head == r->wq_n) r->wq_head = r->wq_n = 0;
    MP_TRY(grow((void **)&r->wq, &r->wq_cap, r->wq_n + j->nd, sizeof *r->wq, err));
    for (size_t i = 0; i < j->nd; i++) {
        r->wq[r->wq_n++] = j->docs[i]; /* the strings move with it */
        memset(&j->docs[i], 0, sizeof j->docs[i]);
        MP_TRY(doc_values(r, &r->wq[r->wq_n - 1], err));
    }
    j->nd = 0;
    for (size_t k = 0; k < j->nw; k++) {
        const win *w = &j->w[k];
        while (r->wq_head < r->wq_n && r->wq[r->wq_head].index < w->doc) MP_TRY(end_doc(r, err));
        MP_FAIL_IF(r->wq_head == r->wq_n || r->wq[r->wq_head].index != w->doc, err, MP_EINTERNAL,
                   "collect: window of document %llu without its document", (unsigned long long)w->doc);
        MP_TRY(accumulate_window(r, w, j->ids + j->off[k], r->wq[r->wq_head].first, &j->rt[k], err));
    }
    if (j->end_all)
        while (r->wq_head < r->wq_n) MP_TRY(end_doc(r, err));
    return 0;
}

/* The store thread's one entry (mp_pipe_fn). */
static int run_job(void *ctx, void *jp, mp_error *err) {
    run *r = ctx;
    job *j = jp;
    return j->kind == JOB_COMMIT ? commit(r, j, err) : run_windows(r, j, err);
}

/* Reading thread: the job struct for the next push, once the store thread is
 * done with its previous use. */
static int next_job(run *r, job **out, mp_error *err) {
    const uint64_t n = mp_pipe_pushed(r->pipe) + 1;
    if (n > (uint64_t)r->n_jobs) MP_TRY(mp_pipe_wait(r->pipe, n - (uint64_t)r->n_jobs, err));
    job *j = &r->jobs[n % (uint64_t)r->n_jobs];
    for (size_t i = 0; i < j->nd; i++) pdoc_free(&j->docs[i]); /* left by a failed job */
    j->nd = j->nw = 0;
    j->end_all = 0;
    j->b = NULL;
    *out = j;
    return 0;
}

/* Reading thread: run every window of the batch not yet sent through the
 * engine, per_call per call (window k of a call on slot k, from an empty
 * cache), and hand each call's routing to the store thread together with the
 * documents queued before it; the last job completes them all. */
static int flush_queue(run *r, mp_error *err) {
    batch *bt = &r->bufs[r->cur];
    size_t w0 = r->pw0;
    do {
        job *j;
        MP_TRY(next_job(r, &j, err));
        j->kind = JOB_WINDOWS;
        /* hand the queued documents over (swap arrays: no copy) */
        pdoc *tp = j->docs;
        size_t tc = j->capd;
        j->docs = r->nd, j->capd = r->cap_nd, j->nd = r->n_nd;
        r->nd = tp, r->cap_nd = tc, r->n_nd = 0;
        size_t nb = bt->nw - w0 < (size_t)r->per_call ? bt->nw - w0 : (size_t)r->per_call;
        j->off[0] = 0;
        for (size_t k = 0; k < nb; k++) {
            const win *w = &bt->w[w0 + k];
            j->w[k] = *w;
            memcpy(j->ids + j->off[k], bt->ids + w->off, w->n * sizeof *j->ids);
            j->off[k + 1] = j->off[k] + w->n;
            MP_TRY(mp_engine_slot_rewind(r->eng, (int)k, 0, err));
            mp_routing_clear(&j->rt[k]);
        }
        j->nw = nb;
        if (nb) {
            mp_engine_batch b = {.n_seqs = nb, .ids = j->ids, .off = j->off, .routing = j->rt};
            MP_TRY(mp_engine_prefill(r->eng, &b, err));
        }
        w0 += nb;
        j->end_all = w0 == bt->nw;
        MP_TRY(mp_pipe_push(r->pipe, j, err));
    } while (w0 < bt->nw);
    r->pw0 = bt->nw;
    return 0;
}

/* Reading thread: hand the batch to the store thread for its commit and go
 * on filling the other one (once its own commit ran). */
static int send_commit(run *r, int finished, mp_error *err) {
    job *j;
    MP_TRY(next_job(r, &j, err));
    j->kind = JOB_COMMIT;
    j->b = &r->bufs[r->cur];
    j->finished = finished;
    j->next_doc = r->next_doc;
    j->tokens = r->tokens;
    j->windows = r->windows;
    j->corpus_tokens = r->corpus_tokens;
    j->skipped = r->corpus ? mp_corpus_skipped(r->corpus) : 0;
    MP_TRY(mp_pipe_push(r->pipe, j, err));
    r->commit_job[r->cur] = mp_pipe_pushed(r->pipe);
    r->cur ^= 1;
    r->pw0 = 0;
    r->batch_windows = 0;
    return r->commit_job[r->cur] ? mp_pipe_wait(r->pipe, r->commit_job[r->cur], err) : 0;
}

/* ---------------------------------------------------------------- run */

static int remove_store(const char *path, mp_error *err) {
    const char *sfx[3] = {"", "-wal", "-shm"};
    char p[4096];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        if (unlink(p) != 0 && errno != ENOENT) return mp_fail(err, MP_EIO, "%s: cannot remove: %s", p, strerror(errno));
    }
    return 0;
}

static int put_model_file(mp_store *st, const char *dir, const char *name, const char *sha, mp_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = NULL;
    MP_TRY(mp_file_fopen_regular(path, &f, NULL, err));
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    int rc = 0;
    do {
        if ((rc = grow((void **)&buf, &cap, len + 65536, 1, err)) < 0) break;
        got = fread(buf + len, 1, 65536, f);
        len += got;
    } while (got > 0);
    if (rc == 0 && ferror(f)) rc = mp_fail(err, MP_EIO, "%s: read error", path);
    fclose(f);
    if (rc == 0) rc = mp_store_put_file(st, name, buf, len, sha, err);
    free(buf);
    return rc;
}

static int write_meta(run *r, const mp_model *m, const settings *s, const char *cfg_sha, const char *tok_sha,
                      mp_error *err) {
    mp_store *st = r->st;
    char buf[64];
    MP_TRY(mp_store_begin(st, err));
    int rc = 0;
    for (int k = 0; k < N_SETTINGS && rc == 0; k++) rc = mp_store_meta_set(st, s->kv[k][0], s->kv[k][1], err);
    snprintf(buf, sizeof buf, "%d", m->cfg.moe_experts);
    if (rc == 0) rc = mp_store_meta_set(st, "moe_experts", buf, err);
    snprintf(buf, sizeof buf, "%d", m->cfg.moe_groups);
    if (rc == 0) rc = mp_store_meta_set(st, "moe_groups", buf, err);
    snprintf(buf, sizeof buf, "%d", m->cfg.n_layers);
    if (rc == 0) rc = mp_store_meta_set(st, "n_layers", buf, err);
    /* meta "batch" keeps its name: windows per transaction (--commit-every) */
    snprintf(buf, sizeof buf, "%d", r->o->commit_every > 0 ? r->o->commit_every : 64);
    if (rc == 0) rc = mp_store_meta_set(st, "batch", buf, err);
    if (rc == 0) rc = mp_store_meta_set(st, "monet_probe_version", MP_VERSION, err);
    if (rc == 0) rc = mp_store_meta_set(st, "model_path", r->o->model_dir, err);
    if (rc == 0) rc = mp_store_meta_set(st, "config_sha256", cfg_sha, err);
    if (rc == 0) rc = mp_store_meta_set(st, "tokenizer_sha256", tok_sha, err);
    if (rc == 0) rc = put_model_file(st, r->o->model_dir, "config.json", cfg_sha, err);
    if (rc == 0) rc = put_model_file(st, r->o->model_dir, "tokenizer.model", tok_sha, err);
    if (rc == 0) rc = mp_store_progress_set(st, "finished", 0, err);
    if (rc == 0) rc = mp_store_commit(st, err);
    if (rc < 0) mp_store_rollback(st);
    return rc;
}

static int make_settings(const mp_collect_opts *o, const mp_model *m, int W, const char *hash, settings *s) {
    for (int k = 0; k < N_SETTINGS; k++) snprintf(s->kv[k][0], sizeof s->kv[k][0], "%s", SETTING_KEYS[k]);
    snprintf(s->kv[0][1], 1024, "%s", hash);
    snprintf(s->kv[1][1], 1024, "%s", o->corpus);
    snprintf(s->kv[2][1], 1024, "%s", o->text_field ? o->text_field : "");
    join(s->kv[3][1], 1024, o->labels, o->n_labels);
    join(s->kv[4][1], 1024, o->scores, o->n_scores);
    snprintf(s->kv[5][1], 1024, "%d", o->top_k > 0 ? o->top_k : 32);
    snprintf(s->kv[6][1], 1024, "%d", W);
    snprintf(s->kv[7][1], 1024, "%lld", (long long)o->max_tokens);
    snprintf(s->kv[8][1], 1024, "%d/%d", o->shard_n > 1 ? o->shard_i : 0, o->shard_n > 1 ? o->shard_n : 1);
    snprintf(s->kv[9][1], 1024, "%d", m->cfg.n_router_groups);
    return 0;
}

static int compare_settings(const char *path, const settings *have, const settings *want, const char *hint,
                            mp_error *err) {
    for (int k = 0; k < N_SETTINGS; k++)
        if (strcmp(have->kv[k][1], want->kv[k][1]))
            return mp_fail(err, MP_EINPUT, "%s: was collected with other settings (%s: '%.200s' there, '%.200s' here)%s",
                           path, SETTING_KEYS[k], have->kv[k][1], want->kv[k][1], hint);
    return 0;
}

static int acc_for(const settings *s, mp_acc **out, mp_error *err, int n_groups, int E, int K) {
    char lab[MP_ACC_MAX_FIELDS][128], sco[MP_ACC_MAX_FIELDS][128];
    int nl = parse_list(s->kv[3][1], lab, MP_ACC_MAX_FIELDS), ns = parse_list(s->kv[4][1], sco, MP_ACC_MAX_FIELDS);
    const char *names[MP_ACC_MAX_FIELDS * 2];
    int is_score[MP_ACC_MAX_FIELDS * 2];
    MP_FAIL_IF(nl < 0 || ns < 0, err, MP_EINPUT, "a label or score field name is longer than %d bytes",
               MP_COLLECT_MAX_FIELD_NAME);
    MP_FAIL_IF(nl + ns > MP_ACC_MAX_FIELDS, err, MP_EINPUT, "at most %d label and score fields in all",
               MP_ACC_MAX_FIELDS);
    for (int i = 0; i < nl; i++) names[i] = lab[i], is_score[i] = 0;
    for (int i = 0; i < ns; i++) names[nl + i] = sco[i], is_score[nl + i] = 1;
    return mp_acc_create(n_groups, E, K, nl + ns, names, is_score, out, err);
}

int mp_collect_store_summary(const char *path, mp_collect_summary *sum, mp_error *err) {
    mp_store *st = NULL;
    sqlite3_stmt *q = NULL;
    MP_TRY(mp_store_open(path, MP_STORE_READ, &st, err));
    int rc = 0;
    int64_t v;
    struct { const char *k; uint64_t *dst; } pv[] = {{"documents", &sum->documents}, {"tokens", &sum->tokens},
                                                     {"windows", &sum->windows}, {"batches", &sum->batches},
                                                     {"skipped_lines", &sum->skipped_lines}};
    for (size_t i = 0; i < sizeof pv / sizeof *pv; i++) {
        if ((rc = mp_store_progress_get(st, pv[i].k, &v, err)) < 0) goto cleanup;
        *pv[i].dst = (uint64_t)v;
    }
    sqlite3 *db = mp_store_db(st);
    if (sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM windows), (SELECT coalesce(sum(length(ids)),0) FROM windows),"
                           " (SELECT count(*) FROM topk)", -1, &q, NULL) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_ROW) {
        rc = mp_fail(err, MP_EIO, "%s: %s", path, sqlite3_errmsg(db));
        goto cleanup;
    }
    sum->n_contexts = (uint64_t)sqlite3_column_int64(q, 0);
    sum->context_blob_bytes = (uint64_t)sqlite3_column_int64(q, 1);
    sum->topk_rows = (uint64_t)sqlite3_column_int64(q, 2);
    sqlite3_finalize(q);
    q = NULL;
    if (sqlite3_prepare_v2(db, "SELECT grp, tokens, active_experts FROM groups ORDER BY grp", -1, &q, NULL) != SQLITE_OK) {
        rc = mp_fail(err, MP_EIO, "%s: %s", path, sqlite3_errmsg(db));
        goto cleanup;
    }
    sum->n_groups = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        int g = sqlite3_column_int(q, 0);
        if (g < 0 || g >= 256) continue;
        sum->group_tokens[g] = (uint64_t)sqlite3_column_int64(q, 1);
        sum->group_active[g] = (uint64_t)sqlite3_column_int64(q, 2);
        if (g + 1 > sum->n_groups) sum->n_groups = g + 1;
    }
    sum->store_bytes = mp_store_file_bytes(path);
cleanup:
    sqlite3_finalize(q);
    mp_store_close(st);
    return rc;
}

int mp_collect_run(const mp_collect_opts *o, mp_collect_summary *sum, mp_error *err) {
    run r;
    memset(&r, 0, sizeof r);
    memset(sum, 0, sizeof *sum);
    r.o = o;
    mp_model *m = NULL;
    mp_tokenizer *tok = NULL;
    mp_lock *lock = NULL;
    int rc = 0, blas_before = 0;
    char cfg_sha[65], tok_sha[65], hash[65], path[4096];
    settings want, have;
    MP_FAIL_IF(o->shard_n < 1 || o->shard_i < 0 || o->shard_i >= o->shard_n, err, MP_EINPUT,
               "--shard i/n needs 0 <= i < n");
    MP_FAIL_IF(o->n_labels + o->n_scores > MP_CORPUS_MAX_LABELS, err, MP_EINPUT, "at most %d label fields",
               MP_CORPUS_MAX_LABELS);
    for (int i = 0; i < o->n_labels + o->n_scores; i++) {
        const char *nm = i < o->n_labels ? o->labels[i] : o->scores[i - o->n_labels];
        MP_FAIL_IF(strlen(nm) > MP_COLLECT_MAX_FIELD_NAME, err, MP_EINPUT,
                   "%s field name '%.40s...' is %zu bytes, more than the limit of %d",
                   i < o->n_labels ? "label" : "score", nm, strlen(nm), MP_COLLECT_MAX_FIELD_NAME);
        MP_FAIL_IF(!*nm || strchr(nm, ','), err, MP_EINPUT, "%s field name '%.40s' must be non-empty without ','",
                   i < o->n_labels ? "label" : "score", nm);
    }
    /* one writer per store: held until the end, from before the store exists */
    MP_TRY(mp_store_lock(o->out, &lock, err));
    if ((rc = mp_model_fingerprint(o->model_dir, cfg_sha, tok_sha, hash, err)) < 0 ||
        (rc = mp_model_load(o->model_dir, &m, err)) < 0)
        goto cleanup;
    snprintf(path, sizeof path, "%s/tokenizer.model", o->model_dir);
    if ((rc = mp_tokenizer_load(path, &tok, err)) < 0) goto cleanup;
    const mp_config *c = &m->cfg;
    r.W = o->window > 0 ? o->window : (c->max_position_embeddings < 512 ? c->max_position_embeddings : 512);
    if (r.W > c->max_position_embeddings) {
        rc = mp_fail(err, MP_EINPUT, "--context-window %d exceeds max_position_embeddings %d", r.W,
                     c->max_position_embeddings);
        goto cleanup;
    }
    make_settings(o, m, r.W, hash, &want);

    /* open: new store, or resume an existing one with the same settings */
    struct stat sb;
    if (stat(o->out, &sb) == 0 && o->force_new && (rc = remove_store(o->out, err)) < 0) goto cleanup;
    if (stat(o->out, &sb) == 0) {
        if ((rc = mp_store_open(o->out, MP_STORE_WRITE, &r.st, err)) < 0) {
            mp_error_prefix(err, "cannot resume (use --force-new to overwrite)");
            goto cleanup;
        }
        if ((rc = settings_read(r.st, &have, err)) < 0 ||
            (rc = compare_settings(o->out, &have, &want, "; use --force-new to start over", err)) < 0)
            goto cleanup;
        sum->resumed = 1;
    } else {
        /* initialize under a temporary name and rename: a crash never leaves
         * a half-initialized store under the real name */
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp-new", o->out);
        rc = remove_store(tmp, err);
        if (rc == 0) rc = mp_store_open(tmp, MP_STORE_CREATE, &r.st, err);
        if (rc == 0) rc = write_meta(&r, m, &want, cfg_sha, tok_sha, err);
        /* everything in the main file (disk full: fail here, never rename a
         * store whose content is still in its -wal file) */
        if (rc == 0) rc = mp_store_close_checked(r.st, err);
        else mp_store_close(r.st);
        r.st = NULL;
        if (rc < 0) {
            remove_store(tmp, NULL);
            goto cleanup;
        }
        if (rename(tmp, o->out) != 0) {
            rc = mp_fail(err, MP_EIO, "%s: cannot create: %s", o->out, strerror(errno));
            goto cleanup;
        }
        if ((rc = mp_store_open(o->out, MP_STORE_WRITE, &r.st, err)) < 0) goto cleanup;
    }
    if ((rc = acc_for(&want, &r.acc, err, c->n_router_groups, c->moe_experts, o->top_k > 0 ? o->top_k : 32)) < 0)
        goto cleanup;
    int64_t v, finished = 0;
    if (sum->resumed) {
        if ((rc = mp_store_load_acc(r.st, r.acc, err)) < 0 || (rc = mp_store_progress_get(r.st, "finished", &finished, err)) < 0)
            goto cleanup;
        uint64_t *dst[] = {&r.next_doc, &r.docs, &r.tokens, &r.windows, &r.batches};
        const char *keys[] = {"next_doc", "documents", "tokens", "windows", "batches"};
        for (int i = 0; i < 5; i++) {
            if ((rc = mp_store_progress_get(r.st, keys[i], &v, err)) < 0) goto cleanup;
            *dst[i] = (uint64_t)v;
        }
        int found;
        if ((rc = mp_store_progress_find(r.st, "corpus_tokens", &v, &found, err)) < 0) goto cleanup;
        r.corpus_tokens = found ? (uint64_t)v : r.tokens; /* stores before corpus_tokens: one shard, the same */
        if (!found && r.next_doc > 0 && o->shard_n > 1 && o->max_tokens > 0) {
            rc = mp_fail(err, MP_EINPUT,
                         "%s: made by an older monet-probe whose --max-tokens capped each shard; it cannot resume "
                         "with the whole-corpus cap (use --force-new)", o->out);
            goto cleanup;
        }
        sum->resumed_at_doc = r.next_doc;
        if (finished) {
            sum->already_finished = 1;
            goto summary;
        }
    }
    int slots = o->batch > 1 ? o->batch : 1;
    if ((rc = o->backend ? mp_engine_create_ops(o->backend, m, slots, r.W, 0, &r.eng, err)
                         : mp_engine_create_slots(m, o->device, slots, r.W, 0, &r.eng, err)) < 0)
        goto cleanup;
    r.per_call = mp_engine_slots(r.eng);
    {
        int every = o->commit_every > 0 ? o->commit_every : 64;
        long want = (every + r.per_call - 1) / r.per_call + 2L;
        r.n_jobs = want < MIN_JOBS ? MIN_JOBS : want > MAX_JOBS ? MAX_JOBS : (int)want;
    }
    if (!(r.jobs = calloc((size_t)r.n_jobs, sizeof *r.jobs))) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (int i = 0; i < r.n_jobs; i++) {
        job *j = &r.jobs[i];
        j->w = calloc((size_t)r.per_call, sizeof *j->w);
        j->rt = calloc((size_t)r.per_call, sizeof *j->rt);
        j->ids = malloc((size_t)r.per_call * (size_t)r.W * sizeof *j->ids);
        j->off = malloc(((size_t)r.per_call + 1) * sizeof *j->off);
        if (!j->w || !j->rt || !j->ids || !j->off) {
            rc = mp_fail(err, MP_ENOMEM, "out of memory");
            goto cleanup;
        }
        for (int k = 0; k < r.per_call; k++)
            if ((rc = mp_routing_init(&j->rt[k], c, err)) < 0) goto cleanup;
    }
    /* the store thread: accumulators and commits off the forward's path
     * (MP_COLLECT_PIPELINE=0: the same jobs in order on this thread). It
     * takes a core: BLAS gets the others unless OPENBLAS_NUM_THREADS or
     * OMP_NUM_THREADS says otherwise, in both modes, because the forward's
     * last bits (and so a routing on a threshold's edge) depend on the
     * thread count. On 2 cores: 731 tok/s vs 637 with BLAS on both (median
     * of 3, bench model). */
    const char *pl = getenv("MP_COLLECT_PIPELINE");
    blas_before = openblas_get_num_threads();
    if (!getenv("OPENBLAS_NUM_THREADS") && !getenv("OMP_NUM_THREADS")) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        int want = cores > 1 ? (int)cores - 1 : 1;
        if (want < blas_before) openblas_set_num_threads(want);
    }
    if ((rc = mp_pipe_open(run_job, &r, r.n_jobs, !(pl && !strcmp(pl, "0")), &r.pipe, err)) < 0) goto cleanup;
    mp_corpus_opts co;
    memset(&co, 0, sizeof co);
    co.text_field = o->text_field;
    for (int i = 0; i < o->n_labels; i++) co.label_fields[co.n_label_fields++] = o->labels[i];
    for (int i = 0; i < o->n_scores; i++) co.label_fields[co.n_label_fields++] = o->scores[i];
    co.strict = o->strict;
    co.on_skip = o->on_skip;
    co.on_skip_ctx = o->on_skip_ctx;
    if ((rc = mp_corpus_open(o->corpus, &co, &r.corpus, err)) < 0) goto cleanup;
    if (o->progress) o->progress->done = r.tokens;
    double t0 = mp_now();
    uint64_t tokens0 = r.tokens;
    int stop = o->max_tokens > 0 && r.corpus_tokens >= (uint64_t)o->max_tokens;
    mp_doc d;
    while (!stop) {
        int got = mp_corpus_next(r.corpus, &d, err);
        if (got < 0) {
            rc = got;
            goto cleanup;
        }
        if (got == 0) break;
        if (o->progress && o->max_tokens <= 0) mp_progress_set_fraction(o->progress, mp_corpus_fraction(r.corpus));
        if (d.index < r.next_doc) continue;
        r.next_doc = d.index + 1;
        /* --max-tokens caps the whole corpus: a shard counts the other shards' documents too */
        int64_t budget = o->max_tokens > 0 ? o->max_tokens - (int64_t)r.corpus_tokens : -1;
        int mine = o->shard_n <= 1 || d.index % (uint64_t)o->shard_n == (uint64_t)o->shard_i;
        if (!mine && budget >= 0 && (rc = count_doc(&r, &d, tok, budget, &stop, err)) < 0) goto cleanup;
        if (o->progress && o->max_tokens > 0 && o->shard_n > 1)
            mp_progress_set_fraction(o->progress, (double)r.corpus_tokens / (double)o->max_tokens);
        if (!mine) continue;
        if ((rc = enqueue_doc(&r, &d, tok, budget, &stop, err)) < 0) goto cleanup;
        int commit_now = r.batch_windows >= (size_t)(o->commit_every > 0 ? o->commit_every : 64) && !stop;
        if ((commit_now || r.bufs[r.cur].nw - r.pw0 >= (size_t)r.per_call) && (rc = flush_queue(&r, err)) < 0)
            goto cleanup;
        if (commit_now && (rc = send_commit(&r, 0, err)) < 0) goto cleanup;
    }
    if ((rc = flush_queue(&r, err)) < 0 || (rc = send_commit(&r, 1, err)) < 0 ||
        (rc = mp_pipe_wait(r.pipe, mp_pipe_pushed(r.pipe), err)) < 0)
        goto cleanup;
    mp_pipe_times(r.pipe, &sum->store_thread_s, &sum->waited_s);
    sum->commit_s = r.commit_s;
    mp_pipe_close(r.pipe);
    r.pipe = NULL;
    sum->seconds = mp_now() - t0;
    sum->new_tokens = r.tokens - tokens0;
summary:
    mp_store_close(r.st);
    r.st = NULL;
    sum->n_groups = c->n_router_groups;
    sum->E = c->moe_experts;
    sum->K = r.acc->K;
    sum->window = r.W;
    rc = mp_collect_store_summary(o->out, sum, err);
cleanup:
    mp_pipe_close(r.pipe); /* first: the store thread may still run queued jobs (a commit is whole or absent) */
    if (blas_before > 0) openblas_set_num_threads(blas_before);
    if (r.corpus) mp_corpus_close(r.corpus);
    for (int i = 0; i < 2; i++) batch_free(&r.bufs[i]);
    mp_acc_free(r.acc);
    mp_store_close(r.st);
    for (int i = 0; r.jobs && i < r.n_jobs; i++) {
        job *j = &r.jobs[i];
        for (int k = 0; j->rt && k < r.per_call; k++) mp_routing_free(&j->rt[k]);
        for (size_t k = 0; k < j->nd; k++) pdoc_free(&j->docs[k]);
        free(j->docs);
        free(j->w);
        free(j->rt);
        free(j->ids);
        free(j->off);
    }
    free(r.jobs);
    for (size_t k = 0; k < r.n_nd; k++) pdoc_free(&r.nd[k]);
    free(r.nd);
    for (size_t k = r.wq_head; k < r.wq_n; k++) pdoc_free(&r.wq[k]);
    free(r.wq);
    mp_pairs_buf_free(&r.pairs);
    mp_engine_free(r.eng);
    mp_tokenizer_free(tok);
    mp_model_free(m);
    mp_lock_release(lock);
    return rc;
}

/* ---------------------------------------------------------------- merge */

static int attach_exec(mp_store *st, const char *path, const char *sql, mp_error *err) {
    sqlite3 *db = mp_store_db(st);
    sqlite3_stmt *a = NULL;
    if (sqlite3_prepare_v2(db, "ATTACH DATABASE ? AS src", -1, &a, NULL) != SQLITE_OK)
        return mp_fail(err, MP_EIO, "%s: %s", path, sqlite3_errmsg(db));
    sqlite3_bind_text(a, 1, path, -1, SQLITE_STATIC);
    int ok = sqlite3_step(a) == SQLITE_DONE;
    sqlite3_finalize(a);
    if (!ok) return mp_fail(err, MP_EIO, "%s: cannot attach: %s", path, sqlite3_errmsg(db));
    int rc = mp_store_exec(st, sql, err);
    sqlite3_exec(db, "DETACH DATABASE src", NULL, NULL, NULL);
    return rc;
}

/* "0,2/3" -> bit set of shard indices (n <= 64 for merging) and n. */
static int parse_shards(const char *s, uint64_t *set, int *n) {
    const char *slash = strchr(s, '/');
    if (!slash) return -1;
    *n = atoi(slash + 1);
    *set = 0;
    if (*n < 1 || *n > 64) return -1;
    for (const char *p = s; p < slash;) {
        char *end;
        long i = strtol(p, &end, 10);
        if (end == p || i < 0 || i >= *n) return -1;
        *set |= 1ULL << i;
        p = *end == ',' ? end + 1 : end;
        if (end == slash) break;
    }
    return 0;
}

int mp_collect_merge(const char *out, const char *const *inputs, int n_inputs, int flags, mp_collect_summary *sum,
                     mp_error *err) {
    memset(sum, 0, sizeof *sum);
    MP_FAIL_IF(n_inputs < 1, err, MP_EINPUT, "merge: no input stores");
    const int force = flags & MP_MERGE_FORCE;
    struct stat ob, ib;
    if (stat(out, &ob) == 0)
        for (int i = 0; i < n_inputs; i++)
            if (stat(inputs[i], &ib) == 0 && ib.st_dev == ob.st_dev && ib.st_ino == ob.st_ino)
                return mp_fail(err, MP_EINPUT, "%s: the output is also input %d: merge into a new file", out, i + 1);
    settings first, cur;
    mp_store *st = NULL, *o = NULL;
    mp_acc *acc = NULL;
    char tmp[4096];
    int rc = 0, shard_n = 0;
    uint64_t shard_set = 0, tot[4] = {0, 0, 0, 0}, skipped = 0, next_doc = 0, corpus_tokens = 0;
    long E = 0, K = 0, W = 0, G = 0;
    mp_lock *lock = NULL;
    int made_tmp = 0;
    snprintf(tmp, sizeof tmp, "%s.tmp-new", out);
    struct stat sb;
    if (stat(out, &sb) == 0 && !force) return mp_fail(err, MP_EINPUT, "%s: already exists (use --force)", out);
    MP_TRY(mp_store_lock(out, &lock, err));
    for (int i = 0; i < n_inputs; i++) {
        if ((rc = mp_store_open(inputs[i], MP_STORE_READ, &st, err)) < 0) goto cleanup;
        if ((rc = settings_read(st, i ? &cur : &first, err)) < 0) goto cleanup;
        if (i) {
            char save[1024];
            memcpy(save, cur.kv[8][1], sizeof save);
            memcpy(cur.kv[8][1], first.kv[8][1], sizeof save); /* shards differ by design */
            if ((rc = compare_settings(inputs[i], &cur, &first, " (differs from the first store)", err)) < 0)
                goto cleanup;
            memcpy(cur.kv[8][1], save, sizeof save);
        }
        int64_t fin = 0, v;
        if ((rc = mp_store_progress_get(st, "finished", &fin, err)) < 0) goto cleanup;
        if (!fin) {
            rc = mp_fail(err, MP_EINPUT, "%s: collection not finished (re-run its collect command to complete it)",
                         inputs[i]);
            goto cleanup;
        }
        uint64_t set;
        int n;
        if (parse_shards(i ? cur.kv[8][1] : first.kv[8][1], &set, &n) < 0) {
            rc = mp_fail(err, MP_EINPUT, "%s: corrupt store: bad shard '%s'", inputs[i], i ? cur.kv[8][1] : first.kv[8][1]);
            goto cleanup;
        }
        if (i && n != shard_n) {
            rc = mp_fail(err, MP_EINPUT, "%s: shard of %d, the first store is a shard of %d", inputs[i], n, shard_n);
            goto cleanup;
        }
        if (shard_set & set) {
            rc = mp_fail(err, MP_EINPUT, "%s: overlaps shards already merged (%s)", inputs[i], i ? cur.kv[8][1] : "");
            goto cleanup;
        }
        shard_n = n;
        shard_set |= set;
        if (i == 0) {
            /* every size bounded before it sizes the accumulators */
            mp_store_shape sh;
            if ((rc = mp_store_shape_read(st, &sh, err)) < 0) goto cleanup;
            E = sh.E, K = sh.top_k, W = sh.window, G = sh.moe_groups;
            if ((rc = acc_for(&first, &acc, err, sh.n_groups, (int)E, (int)K)) < 0) goto cleanup;
        }
        if ((rc = mp_store_load_acc(st, acc, err)) < 0) goto cleanup;
        const char *pk[4] = {"documents", "tokens", "windows", "batches"};
        for (int k = 0; k < 4; k++) {
            if ((rc = mp_store_progress_get(st, pk[k], &v, err)) < 0) goto cleanup;
            tot[k] += (uint64_t)v;
        }
        if ((rc = mp_store_progress_get(st, "skipped_lines", &v, err)) < 0) goto cleanup;
        if ((uint64_t)v > skipped) skipped = (uint64_t)v; /* every shard reads the whole corpus */
        if ((rc = mp_store_progress_get(st, "next_doc", &v, err)) < 0) goto cleanup;
        if ((uint64_t)v > next_doc) next_doc = (uint64_t)v;
        if ((rc = mp_store_progress_get(st, "corpus_tokens", &v, err)) < 0) goto cleanup;
        if ((uint64_t)v > corpus_tokens) corpus_tokens = (uint64_t)v; /* each shard counts the whole corpus */
        mp_store_close(st);
        st = NULL;
    }
    if (!(flags & MP_MERGE_PARTIAL)) {
        for (int i = 0; i < shard_n; i++)
            if (!(shard_set >> i & 1)) {
                rc = mp_fail(err, MP_EINPUT,
                             "merge: shard %d/%d is missing (%d of %d shards given); pass --partial to write a store "
                             "of the shards given", i, shard_n, __builtin_popcountll(shard_set), shard_n);
                goto cleanup;
            }
    }
    char shard[1100] = "";
    for (int i = 0; i < shard_n; i++)
        if (shard_set >> i & 1) snprintf(shard + strlen(shard), sizeof shard - strlen(shard), "%s%d", shard[0] ? "," : "", i);
    snprintf(shard + strlen(shard), sizeof shard - strlen(shard), "/%d", shard_n);

    if ((rc = remove_store(tmp, err)) < 0) goto cleanup;
    made_tmp = 1;
    if ((rc = mp_store_open(tmp, MP_STORE_CREATE, &o, err)) < 0) goto cleanup;
    if ((rc = attach_exec(o, inputs[0],
                          "BEGIN; INSERT OR REPLACE INTO meta SELECT * FROM src.meta;"
                          " INSERT OR REPLACE INTO files SELECT * FROM src.files; COMMIT;",
                          err)) < 0)
        goto cleanup;
    if ((rc = mp_store_begin(o, err)) < 0) goto cleanup;
    if ((rc = mp_store_meta_set(o, "shard", shard, err)) < 0 || (rc = mp_store_save_acc(o, acc, 1, 0, err)) < 0 ||
        (rc = mp_store_commit(o, err)) < 0) {
        mp_store_rollback(o);
        goto cleanup;
    }
    for (int i = 0; i < n_inputs; i++)
        if ((rc = attach_exec(o, inputs[i],
                              "BEGIN; INSERT OR IGNORE INTO windows(doc, start, n_tokens, ids)"
                              " SELECT doc, start, n_tokens, ids FROM src.windows ORDER BY doc, start;"
                              " INSERT OR IGNORE INTO docs SELECT * FROM src.docs; COMMIT;",
                              err)) < 0)
            goto cleanup;
    if ((rc = mp_store_begin(o, err)) < 0) goto cleanup;
    const char *pk[4] = {"documents", "tokens", "windows", "batches"};
    for (int k = 0; k < 4 && rc == 0; k++) rc = mp_store_progress_set(o, pk[k], (int64_t)tot[k], err);
    if (rc == 0) rc = mp_store_progress_set(o, "skipped_lines", (int64_t)skipped, err);
    if (rc == 0) rc = mp_store_progress_set(o, "next_doc", (int64_t)next_doc, err);
    if (rc == 0) rc = mp_store_progress_set(o, "corpus_tokens", (int64_t)corpus_tokens, err);
    if (rc == 0) rc = mp_store_progress_set(o, "finished", 1, err);
    if (rc == 0) rc = mp_store_gc_all(o, acc, (int)W, err);
    if (rc == 0) rc = mp_store_commit(o, err);
    if (rc < 0) {
        mp_store_rollback(o);
        goto cleanup;
    }
    rc = mp_store_close_checked(o, err); /* disk full: fail before the rename */
    o = NULL;
    if (rc < 0) {
        remove_store(tmp, NULL);
        goto cleanup;
    }
    if (force && (rc = remove_store(out, err)) < 0) goto cleanup;
    if (rename(tmp, out) != 0) {
        rc = mp_fail(err, MP_EIO, "%s: cannot create: %s", out, strerror(errno));
        goto cleanup;
    }
    sum->n_groups = acc->n_groups;
    sum->E = (int)E;
    sum->K = (int)K;
    sum->window = (int)W;
    rc = mp_collect_store_summary(out, sum, err);
cleanup:
    if (rc < 0 && made_tmp) { /* a failed merge leaves nothing behind */
        mp_store_close(o);
        o = NULL;
        remove_store(tmp, NULL);
    }
    (void)G;
    mp_acc_free(acc);
    mp_store_close(st);
    mp_store_close(o);
    mp_lock_release(lock);
    return rc;
}
