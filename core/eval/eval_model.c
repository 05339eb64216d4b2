/* core/eval/eval_model.c — open / close an evaluation's model and engine (eval_model.h). */
#include "core/eval/eval_model.h"

#include <stdio.h>
#include <string.h>

int mp_eval_model_open_engine(const char *dir, const char *mask_path, int context, mp_device dev, int n_slots,
                              mp_eval_model *em, mp_error *err) {
    char path[4096];
    int rc;
    memset(em, 0, sizeof *em);
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    if ((rc = mp_tokenizer_load(path, &em->tok, err)) < 0 || (rc = mp_model_load(dir, &em->m, err)) < 0 ||
        (rc = mp_engine_create_slots(em->m, dev, n_slots, context, 0, &em->engine, err)) < 0)
        goto fail;
    if (mask_path && ((rc = mp_mask_load(mask_path, &em->m->cfg, &em->mask, err)) < 0 ||
                      (rc = mp_engine_set_mask(em->engine, em->mask, err)) < 0))
        goto fail;
    return 0;
fail:
    mp_eval_model_close(em);
    return rc;
}

void mp_eval_model_close(mp_eval_model *em) {
    if (!em) return;
    mp_engine_free(em->engine);
    mp_mask_free(em->mask);
    mp_model_free(em->m);
    mp_tokenizer_free(em->tok);
    memset(em, 0, sizeof *em);
}
