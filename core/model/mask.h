/* core/model/mask.h — expert masks for knowledge purging (DESIGN.md §2 "Masking").
 *
 * A mask is a set of experts (r, i, j): expert (i,j) of router group r has its
 * routing weight w_ij forced to 0 in every layer of group r. The forward pass
 * applies it as a correction over the masked *active* pairs of each token
 * (never an E x E expansion), see forward_cpu.c.
 *
 * File format (JSON, written by `purge` and `mask merge|invert`, documented in
 * docs/mask.md):
 *   {"format": "monet-probe-mask", "version": 1,
 *    "model": {"path": "...", "moe_experts": E, "n_groups": R},
 *    "criterion": {...free-form, e.g. {"kind": "domain", "label": "python"}},
 *    "groups": [{"group": 0, "layers": [0, 3], "experts": [[I, J], ...]}, ...],
 *    "masked": N, "total": R*E*E, "ratio": N / (R*E*E)}
 * Only "format", "version", "model.moe_experts", "model.n_groups" and
 * "groups[].group/experts" are required to read a mask.
 *
 * Ownership: mp_mask_* allocate and free their own storage; forward states
 * borrow a mask (it must outlive them).
 */
#ifndef MP_MASK_H
#define MP_MASK_H

#include <stddef.h>
#include <stdint.h>

#include "core/model/config.h"
#include "core/util/error.h"

/* Bounds on what a mask file may claim (checked before anything is sized by
 * them; `mask invert` walks all R*E*E experts). */
#define MP_MASK_MAX_EXPERTS 4096           /* model.moe_experts E */
#define MP_MASK_MAX_GROUPS 255             /* model.n_groups R */
#define MP_MASK_MAX_TOTAL (1ull << 28)     /* R*E*E */

typedef struct mp_mask {
    int n_groups, E;
    uint64_t *slots;       /* open-addressing set of keys (r << 40 | i*E + j) + 1; 0 = empty */
    size_t cap, count;
    uint8_t *row_any;      /* [n_groups][E]: 1 when some expert (i, *) of the group is masked */
    size_t *per_group;     /* [n_groups] masked count */
    char *criterion_json;  /* opaque JSON text of "criterion" (owned, may be NULL) */
} mp_mask;

int mp_mask_create(int n_groups, int E, mp_mask **out, mp_error *err);
void mp_mask_free(mp_mask *m);

/* Add expert (r,i,j); adding twice is harmless. @return 0, MP_EINPUT (out of
 * range) or MP_ENOMEM. */
int mp_mask_add(mp_mask *m, int r, int i, int j, mp_error *err);
int mp_mask_contains(const mp_mask *m, int r, int i, int j);

/* Read a mask file and check it fits cfg (same E and number of groups).
 * @return 0, MP_EIO or MP_EINPUT ("<path>: <problem>"). */
int mp_mask_load(const char *path, const mp_config *cfg, mp_mask **out, mp_error *err);
/* The same on n bytes of JSON text in memory; path names it in messages
 * (fuzz/fuzz_mask.c). */
int mp_mask_parse(const char *text, size_t n, const char *path, const mp_config *cfg, mp_mask **out, mp_error *err);

/* Write m as JSON. model_path may be NULL; criterion_json (a JSON value as
 * text) may be NULL. @return 0 or MP_EIO. */
int mp_mask_save(const mp_mask *m, const mp_config *cfg, const char *path, const char *model_path,
                 const char *criterion_json, mp_error *err);

/* Visit every masked expert in (r, i, j) order. @return 0 or MP_ENOMEM. */
typedef void (*mp_mask_visit_fn)(void *ctx, int r, int i, int j);
int mp_mask_foreach(const mp_mask *m, mp_mask_visit_fn fn, void *ctx, mp_error *err);

/* Set algebra over masks of one shape (core/model/mask_ops.c). */
/* *out = the union of masks[0..n); every mask must have the shape of masks[0]
 * (names[k] is used in the error). @return 0, MP_EINPUT or MP_ENOMEM. */
int mp_mask_union(mp_mask *const *masks, const char *const *names, int n, mp_mask **out, mp_error *err);
/* *out = every expert of m's shape that m does not mask. */
int mp_mask_invert(const mp_mask *m, mp_mask **out, mp_error *err);

#endif
