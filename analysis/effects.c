/* analysis/effects.c — logit effects of an expert by ablation (effects.h). */
#include "analysis/effects.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/mask.h"

/* log-softmax of x[V] into out[V], in double. */
static void log_softmax(const float *x, int V, double *out) {
    double mx = x[0], s = 0;
    for (int v = 1; v < V; v++) mx = x[v] > mx ? x[v] : mx;
    for (int v = 0; v < V; v++) s += exp((double)x[v] - mx);
    double lse = mx + log(s);
    for (int v = 0; v < V; v++) out[v] = (double)x[v] - lse;
}

static int cmp_desc(const void *a, const void *b) {
    const mp_effect_token *x = a, *y = b;
    if (x->effect != y->effect) return x->effect > y->effect ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

int mp_effects_compute(mp_store *st, const mp_model *m, mp_engine *e, int g, int i, int j, int max_contexts, int top,
                       mp_effects *out, mp_error *err) {
    memset(out, 0, sizeof *out);
    const mp_config *c = &m->cfg;
    MP_FAIL_IF(g < 0 || g >= c->n_router_groups || i < 0 || j < 0 || i >= c->moe_experts || j >= c->moe_experts, err,
               MP_EINPUT, "expert %d:%d,%d is not in the model (%d groups, E=%d)", g, i, j, c->n_router_groups,
               c->moe_experts);
    if (top < 1) top = 1;
    if (top > MP_EFFECTS_MAX_TOP) top = MP_EFFECTS_MAX_TOP;
    mp_store_shape sh;
    MP_TRY(mp_store_shape_read(st, &sh, err));
    const int V = c->vocab_size;
    mp_store_hit *hits = NULL;
    size_t nh = 0;
    MP_TRY(mp_store_topk(st, g, (uint32_t)(i * sh.E + j), &hits, &nh, err));
    if (max_contexts > 0 && (size_t)max_contexts < nh) nh = (size_t)max_contexts;
    mp_mask *mask = NULL;
    float *logits = malloc((size_t)V * sizeof *logits);
    double *lp = malloc((size_t)V * sizeof *lp), *lq = malloc((size_t)V * sizeof *lq);
    out->mean = calloc((size_t)V, sizeof *out->mean);
    out->vocab = V;
    int rc = 0;
    if (!logits || !lp || !lq || !out->mean) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto done;
    }
    if (!nh) {
        rc = mp_fail(err, MP_EINPUT, "%s: expert %d:%d,%d has no stored contexts", mp_store_path(st), g, i, j);
        goto done;
    }
    if ((rc = mp_mask_create(c->n_router_groups, c->moe_experts, &mask, err)) < 0 ||
        (rc = mp_mask_add(mask, g, i, j, err)) < 0)
        goto done;
    for (size_t k = 0; k < nh; k++) {
        int32_t *ids = NULL;
        size_t n = 0;
        uint32_t start = hits[k].pos - hits[k].pos % (uint32_t)sh.window;
        int r = mp_store_get_window(st, hits[k].doc, start, &ids, &n, err);
        if (r < 0 || r == 0 || hits[k].pos - start >= n) {
            free(ids);
            rc = r < 0 ? r
                       : mp_fail(err, MP_EINPUT, "%s: corrupt store: no window for document %llu position %u",
                                 mp_store_path(st), (unsigned long long)hits[k].doc, hits[k].pos);
            goto done;
        }
        size_t upto = hits[k].pos - start + 1; /* the prefix through the activating token */
        for (int pass = 0; pass < 2 && rc == 0; pass++) {
            mp_engine_reset(e);
            if ((rc = mp_engine_set_mask(e, pass ? mask : NULL, err)) < 0 ||
                (rc = mp_engine_forward(e, ids, upto, logits, 1, NULL, err)) < 0)
                break;
            log_softmax(logits, V, pass ? lq : lp);
        }
        free(ids);
        if (rc < 0) goto done;
        for (int v = 0; v < V; v++) out->mean[v] += lp[v] - lq[v];
        out->contexts++;
    }
    for (int v = 0; v < V; v++) out->mean[v] /= (double)out->contexts;
    mp_effect_token *all = malloc((size_t)V * sizeof *all);
    if (!all) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto done;
    }
    for (int v = 0; v < V; v++) all[v] = (mp_effect_token){v, out->mean[v]};
    qsort(all, (size_t)V, sizeof *all, cmp_desc);
    out->n = top < V ? top : V;
    for (int k = 0; k < out->n; k++) {
        out->promoted[k] = all[k];
        out->suppressed[k] = all[V - 1 - k];
    }
    free(all);
done:
    if (e) mp_engine_set_mask(e, NULL, err);
    mp_mask_free(mask);
    free(hits);
    free(logits);
    free(lp);
    free(lq);
    if (rc < 0) mp_effects_free(out);
    return rc < 0 ? rc : 0;
}

void mp_effects_free(mp_effects *fx) {
    free(fx->mean);
    fx->mean = NULL;
}
