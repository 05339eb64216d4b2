/* analysis/context.h — one top-K context of a collect store, ready to show:
 * the stored window of token ids (what collect ran the forward on), the
 * activating token, the shown range around it, each shown token's text, and
 * optionally the expert's routing weight on every shown token, recomputed by
 * one forward over the window (the store keeps ids, not per-token routing:
 * docs/store.md). Used by top-contexts and export.
 *
 * Ownership: mp_context owns ids, pieces (and each piece) and scores;
 * mp_context_free releases them. */
#ifndef MP_CONTEXT_H
#define MP_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "core/model/backend.h"
#include "core/model/routing.h"
#include "core/store/store.h"
#include "core/text/tokenizer.h"
#include "core/util/error.h"

typedef struct mp_context {
    int32_t *ids;         /* the whole window [n] */
    size_t n;
    size_t t;             /* the activating token (index into ids) */
    size_t from, to;      /* shown tokens [from, to) */
    char **pieces;        /* [to - from] decoded text of each shown token, valid UTF-8 (a byte-fallback
                           * character on the token that completes it, U+FFFD for stray bytes) */
    double *scores;       /* [to - from] after mp_context_score, else NULL */
} mp_context;

/* Load the context of the hit (doc, pos) from a store with window W, showing
 * `show` tokens each side. @return 0, MP_EINPUT (corrupt store: no window),
 * MP_ENOMEM. */
int mp_context_load(mp_store *st, const mp_tokenizer *tok, int W, uint64_t doc, uint32_t pos, int show,
                    mp_context *c, mp_error *err);

/* Fill c->scores with expert (g, i, j)'s w_ij on every shown token: the
 * engine is reset and run over c->ids; routing is the caller's scratch
 * (mp_routing_init'ed for the engine's model). */
int mp_context_score(mp_engine *e, mp_routing *routing, mp_context *c, int g, int i, int j, mp_error *err);

/* The shown pieces [a, b) (indices into the shown range) joined into a new
 * string; oneline: '\n' '\t' '\r' written as \n \t \r. NULL when out of memory. */
char *mp_context_join(const mp_context *c, size_t a, size_t b, int oneline);

void mp_context_free(mp_context *c);

#endif
