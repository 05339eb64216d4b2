/* core/store/evidence.h — the evidence collect keeps beside the top-K, so that a
 * claim about an expert can be checked against more than its 32 best tokens:
 *
 *   histogram   per expert, hits counted in MP_HIST_BINS fixed log-spaced bins
 *               of w (half octaves; hist.c). Store table `hist`, sparse.
 *   quantile    per expert and octave of w (MP_QBINS sample bins = histogram
 *   samples     bins 2s and 2s+1), the MP_QSAMPLES hits with the smallest hash
 *               of (document, position) (samples.c). Table `qsamples`.
 *   label top-K per expert and label value, the MP_LABEL_TOPK best documents
 *               of that value, each by its best token (samples.c). Table
 *               `label_topk`.
 *   token index per activating token id and expert, the count and max of the
 *               hits with w >= MP_TOKIDX_MIN_W (token_index.c). Table
 *               `token_index`.
 *
 * Every one is a pure function of the multiset of hits (sums, or a bounded
 * set under a total order), so a resumed run and a merge of shards give the
 * same tables as one uninterrupted run, bit for bit (counts; the sets are
 * exact unions). docs/store.md has the schema and the bounds.
 *
 * The accumulators hang off mp_acc (topk.h: a->ev) and are driven by it:
 * mp_acc_hit -> mp_evid_hit, mp_acc_doc_end -> mp_evid_doc_best,
 * mp_store_save_acc / mp_store_load_acc -> mp_evid_save / mp_evid_load.
 *
 * Ownership: mp_evid_create allocates everything; mp_evid_free(NULL) is a no-op.
 */
#ifndef MP_EVIDENCE_H
#define MP_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"
#include "core/store/topk.h"

#define MP_HIST_BINS 32       /* half-octave bins of w; bin MP_HIST_ONE starts at w = 1 */
#define MP_HIST_ONE 24
#define MP_QBINS (MP_HIST_BINS / 2) /* sample bins: octaves */
#define MP_QSAMPLES 4         /* samples per (expert, octave) */
#define MP_LABEL_TOPK 4       /* best documents per (expert, label value) */
#define MP_SET_MAX 4          /* slots of a hit set: max(MP_QSAMPLES, MP_LABEL_TOPK) */
#define MP_TOKIDX_MIN_W 0.125 /* hits below this w are not indexed by token (2^-3: bin 18's lower edge) */

/* Histogram bin of w > 0: bin b >= 1 is [edge(b), edge(b+1)) with
 * edge(b) = 2^((b - MP_HIST_ONE) / 2); bin 0 also takes everything below
 * edge(1) and the last bin everything above. Exact (frexp, one comparison
 * with sqrt 2), so every build bins the same float the same way. */
int mp_hist_bin(float w);
/* Lower edge of bin b (0 for bin 0). */
double mp_hist_edge(int b);

/* Hash that orders quantile samples (smaller first; then doc, then pos). */
uint64_t mp_sample_hash(uint64_t doc, uint32_t pos);

/* A bounded set of hits per 64-bit key, best first (samples.c). */
enum { MP_SET_BY_HASH = 0, MP_SET_BY_W = 1 };
typedef struct mp_hitset {
    uint64_t key;                 /* MP_SMAP_EMPTY when free */
    uint8_t n, dirty;
    mp_topk_slot s[MP_SET_MAX];   /* [n], best first */
} mp_hitset;
typedef struct mp_hitsets {
    mp_hitset *e;                 /* [cap] open addressing */
    size_t cap, n;
    int order, size;              /* MP_SET_BY_*, slots per set (<= MP_SET_MAX) */
    mp_topk_slot *evicted;        /* hits pushed out since the last clear */
    uint64_t *evicted_key;        /* their set keys */
    size_t n_evicted, cap_evicted;
    uint64_t *dirty_keys;         /* keys of the sets changed since the last clear (a commit
                                     touches these, never the whole map) */
    size_t n_dirty, cap_dirty;
} mp_hitsets;
int mp_hitsets_init(mp_hitsets *m, int order, int size, mp_error *err);
void mp_hitsets_free(mp_hitsets *m);
/* Offer hit to the set of key; when it changed and set is not NULL, *set is
 * that set (valid until the next offer). @return 1 changed, 0 not, MP_ENOMEM. */
int mp_hitsets_offer(mp_hitsets *m, uint64_t key, mp_topk_slot hit, const mp_hitset **set, mp_error *err);
void mp_hitsets_clear_dirty(mp_hitsets *m);
/* The set of key (NULL when absent). */
const mp_hitset *mp_hitsets_get(const mp_hitsets *m, uint64_t key);

typedef struct mp_evid {
    int n_groups;
    uint32_t n_experts;           /* E^2 */
    uint64_t *hist;               /* [n_groups*n_experts][MP_HIST_BINS] counts (calloc) */
    uint32_t *hist_dirty;         /* [n_groups*n_experts] bit b: bin b changed since the last save */
    mp_hitsets qs;                /* key (x << 4 | octave), x = g*n_experts + e; by hash */
    uint16_t *qcut;               /* [n_groups*n_experts*MP_QBINS] top 16 bits of the worst sample's
                                     hash in set (x, octave), 0xFFFF while not full: a hit whose
                                     hash is above it cannot enter, and skips the set lookup */
    mp_hitsets ls;                /* key mp_label_key(g, f, v, e); by w */
    mp_smap tok;                  /* key token << 32 | g << 24 | e -> {n, max w} */
} mp_evid;

/* @return 0, MP_EINPUT (more than 2^24 experts per group) or MP_ENOMEM. */
int mp_evid_create(int n_groups, uint32_t n_experts, mp_evid **out, mp_error *err);
void mp_evid_free(mp_evid *ev);

/* One active expert x = g*n_experts + e on one token: histogram, quantile
 * samples, token index. @return 0 or MP_ENOMEM. */
int mp_evid_hit(mp_evid *ev, int g, uint32_t e, float w, uint64_t doc, uint32_t pos, int32_t token, mp_error *err);

/* End of a document: its best hit (w, pos) for expert e of group g, offered
 * to the label top-K of each field f with a value (value_ids[f] >= 0). */
int mp_evid_doc_best(mp_evid *ev, int n_fields, const int *value_ids, int g, uint32_t e, float w, uint64_t doc,
                     uint32_t pos, mp_error *err);

/* Hits that a saved sample or label row points at and whose window must be
 * kept: those of changed sets with doc >= first_doc (appended to *out).
 * And the hits pushed out of a set since the last clear with doc < first_doc
 * (windows to garbage-collect). Both grow *out (malloc'ed, caller frees). */
int mp_evid_new_refs(const mp_evid *ev, uint64_t first_doc, mp_topk_slot **out, size_t *n, size_t *cap,
                     mp_error *err);
int mp_evid_old_refs(const mp_evid *ev, uint64_t first_doc, mp_topk_slot **out, size_t *n, size_t *cap,
                     mp_error *err);

/* mp_windows_mark (topk.h) for every hit of the quantile-sample and label
 * top-K sets. */
void mp_evid_mark_windows(const mp_evid *ev, const mp_topk_slot *wins, size_t n, uint32_t W, uint8_t *live);

/* Write the changed rows (all = 1: every row; merge) of hist, qsamples,
 * label_topk and token_index inside the caller's transaction (sets: the hits
 * that entered, doc >= first_doc, and left, doc < first_doc, like topk); add a store's
 * rows into the accumulators (resume, merge). Field names and values come
 * from a's label fields. @return 0, MP_EIO/MP_ERESOURCE, MP_ENOMEM, or
 * MP_EINPUT "<store>: corrupt store: bad row in table T". */
struct mp_store;
int mp_evid_save(struct mp_store *st, const mp_acc *a, int all, uint64_t first_doc, mp_error *err);
int mp_evid_load(struct mp_store *st, mp_acc *a, mp_error *err);
/* the per-table halves (hist.c, samples.c, token_index.c) */
int mp_hist_save(struct mp_store *st, const mp_acc *a, int all, mp_error *err);
int mp_hist_load(struct mp_store *st, mp_acc *a, mp_error *err);
int mp_samples_save(struct mp_store *st, const mp_acc *a, int all, uint64_t first_doc, mp_error *err);
int mp_samples_load(struct mp_store *st, mp_acc *a, mp_error *err);
int mp_tokidx_save(struct mp_store *st, const mp_acc *a, int all, mp_error *err);
int mp_tokidx_load(struct mp_store *st, mp_acc *a, mp_error *err);

/* Append s to the growing array *out (MP_ENOMEM). */
int mp_evid_push_ref(mp_topk_slot **out, size_t *n, size_t *cap, mp_topk_slot s, mp_error *err);

/* Forget changes (after a save): dirty experts' histogram bits (the dirty
 * list of a), dirty sets, evictions, dirty token entries. */
void mp_evid_clear_dirty(mp_evid *ev, const mp_acc *a);

#endif
