/* core/store/model_check.c — compare a store's model_hash with a checkpoint (model_check.h). */
#include "core/store/model_check.h"

#include <stdlib.h>
#include <string.h>

#include "core/store/collect.h"

int mp_store_check_model(mp_store *st, const char *model_dir, mp_error *err) {
    char c1[65], t1[65], h1[65];
    MP_TRY(mp_model_fingerprint(model_dir, c1, t1, h1, err));
    char *hash = NULL;
    int r = mp_store_meta_get(st, "model_hash", &hash, err);
    if (r < 0) return r;
    int rc = 0;
    if (r == 0 || strcmp(hash, h1))
        rc = mp_fail(err, MP_EINPUT, "%s: was collected with another model (model hash %.12s..., %s has %.12s...)",
                     mp_store_path(st), hash ? hash : "?", model_dir, h1);
    free(hash);
    return rc;
}
