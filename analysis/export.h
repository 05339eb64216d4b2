/* analysis/export.h — a collect store as files other tools read
 * (docs/export.md):
 *   jsonl        one JSON object per expert: address, group, layers, statistics,
 *                per-label statistics, its top contexts with decoded text,
 *                tokens and (with an engine) per-token scores;
 *   neuronpedia  Neuronpedia's upload layout: features.jsonl (one Feature per
 *                expert) and activations.jsonl (one Activation per context:
 *                tokens, values, maxValue, maxValueTokenIndex, ...).
 * Experts are taken by active-token count, most first, at most max_experts.
 * The library writes only to the streams the caller gives. */
#ifndef MP_EXPORT_H
#define MP_EXPORT_H

#include <stdio.h>

#include "core/model/backend.h"
#include "core/store/store.h"
#include "core/util/error.h"
#include "core/util/progress.h"

typedef enum { MP_EXPORT_JSONL = 0, MP_EXPORT_NEURONPEDIA } mp_export_format;

typedef struct mp_export_opts {
    mp_export_format format;
    size_t max_experts;   /* 0 = every expert ever active */
    int contexts;         /* per expert; 0 = all stored */
    int context_tokens;   /* tokens each side of the activating one */
    const char *model_id; /* Neuronpedia modelId (default "monet") */
    mp_engine *engine;    /* optional: per-token scores by one forward per context ... */
    const mp_model *model;/* ... of this model (the store's; required with engine) */
    mp_progress *progress;
} mp_export_opts;

typedef struct mp_export_summary {
    size_t experts, contexts;
} mp_export_summary;

/* Write the export: jsonl to out; neuronpedia to out (features) and out2
 * (activations). @return 0, MP_EINPUT (corrupt store), MP_ENOMEM, MP_EIO. */
int mp_export(mp_store *st, const mp_export_opts *o, FILE *out, FILE *out2, mp_export_summary *sum, mp_error *err);

#endif
