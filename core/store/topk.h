/* core/store/topk.h — the in-memory accumulators of `collect`: per router group and
 * expert (flat id e = I*E + J) a top-K min-heap of its highest activations,
 * dense activation statistics, and sparse per-(expert, label) statistics.
 *
 * Memory (the public 1.4B shape: 6 groups x 262,144 experts, K = 32):
 *   heaps   16 B per slot  x K x experts  = 805 MB  (calloc: pages that are never
 *                                                    touched are never committed)
 *   count    2 B per expert                =   3 MB
 *   stats   32 B per expert                =  50 MB
 *   dirty    1 B per expert                = 1.6 MB
 *   label statistics: sparse open-addressing maps, 8 B key + 8 B per value +
 *   1 B flag per entry at <= 70% load; one entry per (group, expert, field,
 *   value) that ever fired, e.g. 20 languages x 1.57M experts worst case
 *   = 31M entries x 25 B / 0.7 = 1.1 GB. Never an E^2 x tokens matrix.
 *
 * Ordering (deterministic, independent of timing or batch boundaries): a hit
 * (w, doc, pos) is better than another when w is larger, then when doc is
 * smaller, then when pos is smaller. (doc, pos) is unique per expert, so the
 * top-K set is a pure function of the multiset of hits.
 *
 * Label fields: categorical fields (value strings, e.g. lang=Python) and score
 * fields (numbers, e.g. toxicity=0.87). A score field also feeds its bucket
 * (10 equal-width buckets on [0,1], values clamped, named "0.8-0.9") into the
 * categorical statistics, and Pearson sufficient statistics (see
 * docs/store.md). Labels are per document, so tokens are first summed per
 * document (doc map) and flushed at mp_acc_doc_end.
 *
 * Ownership: mp_acc_create allocates everything; mp_acc_free(NULL) is a no-op.
 */
#ifndef MP_TOPK_H
#define MP_TOPK_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"

#define MP_ACC_MAX_FIELDS 8
#define MP_ACC_MAX_VALUES 4096   /* distinct values per label field */
#define MP_ACC_MAX_K 1024
#define MP_SCORE_BUCKETS 10

typedef struct mp_topk_slot {
    float w;        /* w_ij = sum_h g1[h,i] g2[h,j] */
    uint32_t pos;   /* token position in the document (BOS = 0) */
    uint64_t doc;   /* global corpus document index */
} mp_topk_slot;

typedef struct mp_expert_stat {
    uint64_t n;     /* tokens where the expert is active (w > 0) */
    double sum;     /* sum of w over those tokens */
    double sum2;    /* sum of w^2 */
    float max;      /* largest w */
} mp_expert_stat;

/* Sparse map: uint64 key -> nval doubles, with a dirty flag per entry. */
typedef struct mp_smap {
    uint64_t *keys;     /* [cap], MP_SMAP_EMPTY when free */
    double *vals;       /* [cap][nval] */
    uint8_t *dirty;     /* [cap] */
    size_t cap, n, nval;
} mp_smap;
#define MP_SMAP_EMPTY UINT64_MAX

/* The 64-bit finalizer (MurmurHash3 fmix64) the open-addressing maps of the
 * store hash their keys with, and the quantile samples' order is built on. */
static inline uint64_t mp_mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Per-field value table (interned strings) and per-value totals. */
typedef struct mp_field {
    char *name;
    int is_score;             /* numeric field: buckets + Pearson statistics */
    char **values;            /* [n_values] interned value strings */
    uint64_t *val_tokens;     /* [n_values] tokens of documents with that value */
    uint64_t *val_docs;       /* [n_values] documents with that value */
    int n_values, cap_values;
    /* score fields: per-token (n, sum y, sum y^2) and per-document totals */
    double sc_n, sc_sy, sc_syy, sc_dn, sc_dsy, sc_dsyy;
} mp_field;

typedef struct mp_acc {
    int n_groups, E, K;
    uint32_t n_experts;           /* E^2 */
    mp_topk_slot *slots;          /* [n_groups][n_experts][K], min-heap per expert */
    uint16_t *count;              /* [n_groups][n_experts] filled slots */
    mp_expert_stat *stats;        /* [n_groups][n_experts] */
    uint64_t *group_tokens;       /* [n_groups] tokens processed */
    uint64_t *group_active;       /* [n_groups] experts with n > 0 */
    uint8_t *dirty;               /* [n_groups*n_experts] MP_DIRTY_* bits: changed since the last save */
    uint32_t *dirty_list;         /* flat ids g*n_experts+e of dirty experts */
    size_t n_dirty, cap_dirty;
    mp_topk_slot *evicted;        /* hits pushed out of a heap since the last save */
    uint32_t *evicted_x;          /* their flat expert ids g*n_experts+e */
    size_t n_evicted, cap_evicted;
    int n_fields;
    mp_field fields[MP_ACC_MAX_FIELDS];
    mp_smap label;                /* (g, field, value, e) -> {n_active, sum_w} */
    mp_smap score;                /* (g, field, e) -> {sx, sxx, sxy, d_sx, d_sxx, d_sxy} */
    mp_smap docmap;               /* current document: (g, e) -> {n, sum x, sum x^2, best w, its pos} */
    uint64_t doc_tokens;          /* tokens of the current document so far */
    uint64_t cur_doc;             /* the current document's index (label top-K) */
    struct mp_evid *ev;           /* histograms, quantile samples, label top-K, token index (evidence.h) */
} mp_acc;

/* Allocate accumulators. field_names/is_score: the label fields (n_fields <=
 * MP_ACC_MAX_FIELDS), copied. @return 0, MP_EINPUT (K or sizes out of range)
 * or MP_ENOMEM. */
int mp_acc_create(int n_groups, int E, int K, int n_fields, const char *const *field_names, const int *is_score,
                  mp_acc **out, mp_error *err);
void mp_acc_free(mp_acc *a);

#define MP_DIRTY_STATS 1  /* expert_stats row changed */
#define MP_DIRTY_TOPK 2   /* top-K set changed */

/* Offer one hit to expert e of group g (updates the heap only, not stats).
 * Cheap rejection against the current K-th best. Records evictions.
 * @return 1 when the heap changed, 0 when not, MP_ENOMEM. */
int mp_acc_offer(mp_acc *a, int g, uint32_t e, mp_topk_slot hit, mp_error *err);

/* One active expert of one token (token: its id, for the token index; -1:
 * none): statistics, heap, document map, evidence (evidence.h). */
int mp_acc_hit(mp_acc *a, int g, uint32_t e, float w, uint64_t doc, uint32_t pos, int32_t token, mp_error *err);

/* Count one processed token in every group (call once per token). */
void mp_acc_token(mp_acc *a);

/* Value id of value in field f (interned), or MP_EINPUT past MP_ACC_MAX_VALUES. */
int mp_acc_value_id(mp_acc *a, int f, const char *value, mp_error *err);

/* End of a document: flush the document map into the label maps and each
 * expert's best hit of the document into the label top-K (evidence.h).
 * value_ids[f]: categorical value id of field f, or -1 when the document has
 * none; scores[f]: the numeric value of score field f (NaN when missing).
 * @return 0 or MP_ENOMEM / MP_EINPUT. */
int mp_acc_doc_end(mp_acc *a, const int *value_ids, const double *scores, mp_error *err);

/* Best-first copy of expert e's heap into out[K]; returns the count. */
int mp_acc_sorted(const mp_acc *a, int g, uint32_t e, mp_topk_slot *out);

/* True when x is a better hit than y (larger w, then smaller doc, then pos). */
static inline int mp_hit_better(const mp_topk_slot *x, const mp_topk_slot *y) {
    if (x->w != y->w) return x->w > y->w;
    if (x->doc != y->doc) return x->doc < y->doc;
    return x->pos < y->pos;
}

/* Bucket name of a score ("0.8-0.9"), clamped to [0,1]: writes into buf[16]. */
void mp_score_bucket(double y, char buf[16]);

/* Sparse-map primitives (also used by the store to load/save). */
int mp_smap_init(mp_smap *m, size_t nval, mp_error *err);
void mp_smap_free(mp_smap *m);
/* Pointer to the nval doubles of key (inserted as zeros when absent, marked dirty). */
double *mp_smap_get(mp_smap *m, uint64_t key, mp_error *err);
void mp_smap_clear_dirty(mp_smap *m);

static inline uint64_t mp_label_key(int g, int f, int v, uint32_t e) {
    return (uint64_t)g << 56 | (uint64_t)f << 52 | (uint64_t)v << 32 | e;
}
static inline void mp_label_key_split(uint64_t k, int *g, int *f, int *v, uint32_t *e) {
    *g = (int)(k >> 56);
    *f = (int)(k >> 52 & 15);
    *v = (int)(k >> 32 & 0xfffff);
    *e = (uint32_t)k;
}

/* Mark every expert clean and forget evictions (after a save). */
void mp_acc_clear_dirty(mp_acc *a);

/* Window references, for garbage collection without a (doc, pos) index in the
 * store: wins[0..n) are windows (doc, pos = start, a multiple of W), sorted by
 * doc then start and distinct. mp_windows_mark sets live[k] when hit h points
 * into wins[k]; mp_acc_mark_windows does it for every hit a holds (top-K heaps,
 * quantile samples, label top-K), which are exactly the rows a saved store
 * holds, so a window left unmarked has no row pointing into it. */
void mp_windows_mark(const mp_topk_slot *wins, size_t n, uint32_t W, const mp_topk_slot *h, uint8_t *live);
void mp_acc_mark_windows(const mp_acc *a, const mp_topk_slot *wins, size_t n, uint32_t W, uint8_t *live);

#endif
