/* analysis/effects.h — an expert's logit effects by ablation: over its top
 * contexts from a collect store, the next-token log-probabilities after the
 * activating token with the model as is and with that one expert masked
 * (w_ij = 0 in every layer of its group, the mask machinery). effect(v) =
 * mean over contexts of log p(v) - log p_masked(v): positive = the expert
 * promotes v, negative = it suppresses v. */
#ifndef MP_EFFECTS_H
#define MP_EFFECTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/model/backend.h"
#include "core/model/model.h"
#include "core/store/store.h"
#include "core/util/error.h"

#define MP_EFFECTS_MAX_TOP 100

typedef struct mp_effect_token {
    int32_t id;
    double effect; /* mean Δ log-prob (nats) */
} mp_effect_token;

typedef struct mp_effects {
    size_t contexts;                                /* contexts averaged over */
    int n;                                          /* entries in each list */
    mp_effect_token promoted[MP_EFFECTS_MAX_TOP];   /* largest effect first */
    mp_effect_token suppressed[MP_EFFECTS_MAX_TOP]; /* most negative first */
    double *mean;                                   /* [vocab] all effects (owned; mp_effects_free) */
    int vocab;
} mp_effects;

/* Effects of expert (g, i, j) over at most max_contexts of its stored top
 * contexts (0 = all), top entries each way. The engine (of model m, max_ctx >=
 * the store's window) is left unmasked. @return 0, MP_EINPUT (no contexts,
 * bad address), MP_ENOMEM. */
int mp_effects_compute(mp_store *st, const mp_model *m, mp_engine *e, int g, int i, int j, int max_contexts, int top,
                       mp_effects *out, mp_error *err);
void mp_effects_free(mp_effects *fx);

#endif
