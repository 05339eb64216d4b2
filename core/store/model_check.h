/* core/store/model_check.h — is this the model a store was collected with?
 * Readers that run the model over stored windows (top-contexts --model,
 * effects, export --model) check it first: the store's model_hash against
 * the checkpoint's fingerprint (core/store/collect.h). */
#ifndef MP_MODEL_CHECK_H
#define MP_MODEL_CHECK_H

#include "core/store/store.h"
#include "core/util/error.h"

/* @return 0 when model_dir is the store's model, MP_EINPUT "<store>: was
 * collected with another model (...)" otherwise, or the fingerprint's error. */
int mp_store_check_model(mp_store *st, const char *model_dir, mp_error *err);

#endif
