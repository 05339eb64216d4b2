/* core/store/evidence_read.h — readers of the evidence tables of a collect store
 * (hist, qsamples, label_topk, token_index; core/store/evidence.h, docs/store.md)
 * for top-contexts, find, browse and export.
 *
 * Ownership: arrays returned are malloc'ed for the caller (NULL when empty).
 */
#ifndef MP_EVIDENCE_READ_H
#define MP_EVIDENCE_READ_H

#include <stddef.h>
#include <stdint.h>

#include "core/store/evidence.h"
#include "core/store/store.h"

/* counts[MP_HIST_BINS] of expert (grp, expert): zeros when never active.
 * @return 0, or the store error. */
int mp_store_hist(mp_store *st, int grp, uint32_t expert, uint64_t counts[MP_HIST_BINS], mp_error *err);

/* Quantile samples of (grp, expert), highest octave first, then by w
 * (descending), doc, pos; hit.rank = the octave (0..MP_QBINS-1). */
int mp_store_qsamples(mp_store *st, int grp, uint32_t expert, mp_store_hit **hits, size_t *n, mp_error *err);

/* Label top-K of (grp, expert) for field = value, best first (rank 0..).
 * An empty result for a value the store never saw is not an error; use
 * mp_store_label_known to tell. */
int mp_store_label_topk(mp_store *st, int grp, uint32_t expert, const char *field, const char *value,
                        mp_store_hit **hits, size_t *n, mp_error *err);
/* 1 when (field, value) is in label_totals, 0 when not. */
int mp_store_label_known(mp_store *st, const char *field, const char *value, mp_error *err);

/* Token index rows of one token id, ordered by n descending, then max_w
 * descending, group, expert; grp < 0: every group. At most limit rows
 * (limit <= 0: all). */
typedef struct mp_token_hit {
    int grp;
    uint32_t expert;
    uint64_t n;
    double max_w;
} mp_token_hit;
int mp_store_find_token(mp_store *st, int32_t token, int grp, long limit, mp_token_hit **rows, size_t *n,
                        mp_error *err);

#endif
