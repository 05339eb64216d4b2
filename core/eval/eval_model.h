/* core/eval/eval_model.h — the model an evaluation runs: tokenizer, weights,
 * the batched engine (core/model/backend.h) that every evaluation's forwards
 * go through (generation: mp_generate_batch; scoring: mp_engine_prefill,
 * core/eval/mcq) and the optional expert mask, opened and closed as one.
 *
 * Ownership: mp_eval_model_open_engine fills every pointer;
 * mp_eval_model_close frees them all (a partly opened one too) and zeroes the
 * struct.
 */
#ifndef MP_EVAL_MODEL_H
#define MP_EVAL_MODEL_H

#include "core/model/backend.h"
#include "core/model/mask.h"
#include "core/model/model.h"
#include "core/text/tokenizer.h"
#include "core/util/error.h"

typedef struct mp_eval_model {
    mp_tokenizer *tok; /* DIR/tokenizer.model */
    mp_model *m;       /* DIR's checkpoint */
    mp_engine *engine; /* batched engine with the mask attached */
    mp_mask *mask;     /* NULL without a mask */
} mp_eval_model;

/* Open dir's tokenizer and checkpoint, an engine of n_slots KV slots of
 * `context` tokens each (0 = max_position_embeddings) on dev (a backend may
 * hold fewer slots: mp_engine_slots) and, when mask_path is non-NULL, the mask
 * attached to it. On failure everything opened so far is closed.
 * @return 0, MP_EIO / MP_EINPUT naming the file, MP_ENOMEM, or
 * MP_EUNSUPPORTED (no CUDA device). */
int mp_eval_model_open_engine(const char *dir, const char *mask_path, int context, mp_device dev, int n_slots,
                              mp_eval_model *em, mp_error *err);

/* Free what em holds (NULL pointers are skipped). */
void mp_eval_model_close(mp_eval_model *em);

#endif
