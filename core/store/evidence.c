/* core/store/evidence.c — the evidence accumulators as one unit (see evidence.h):
 * creation, the per-hit and per-document updates, the window references
 * collect must keep or garbage-collect, and the save/load dispatch to hist.c,
 * samples.c and token_index.c. */
#include "core/store/evidence.h"

#include <stdlib.h>
#include <string.h>

int mp_evid_create(int n_groups, uint32_t n_experts, mp_evid **out, mp_error *err) {
    *out = NULL;
    MP_FAIL_IF(n_experts > (1u << 24) || n_groups < 1 || n_groups > 255, err, MP_EINPUT,
               "unsupported shape for the token index: %d groups of %u experts", n_groups, n_experts);
    mp_evid *ev = calloc(1, sizeof *ev);
    if (!ev) return mp_fail(err, MP_ENOMEM, "out of memory");
    size_t ne = (size_t)n_groups * n_experts;
    ev->n_groups = n_groups;
    ev->n_experts = n_experts;
    ev->hist = calloc(ne * MP_HIST_BINS, sizeof *ev->hist);
    ev->hist_dirty = calloc(ne, sizeof *ev->hist_dirty);
    ev->qcut = malloc(ne * MP_QBINS * sizeof *ev->qcut);
    int rc = 0;
    if (ev->qcut) memset(ev->qcut, 0xff, ne * MP_QBINS * sizeof *ev->qcut);
    if (!ev->hist || !ev->hist_dirty || !ev->qcut) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory for the histograms of %zu experts (%.1f MB)", ne,
                     (double)ne * MP_HIST_BINS * sizeof *ev->hist / 1e6);
        goto fail;
    }
    if ((rc = mp_hitsets_init(&ev->qs, MP_SET_BY_HASH, MP_QSAMPLES, err)) < 0 ||
        (rc = mp_hitsets_init(&ev->ls, MP_SET_BY_W, MP_LABEL_TOPK, err)) < 0 ||
        (rc = mp_smap_init(&ev->tok, 2, err)) < 0)
        goto fail;
    *out = ev;
    return 0;
fail:
    mp_evid_free(ev);
    return rc;
}

void mp_evid_free(mp_evid *ev) {
    if (!ev) return;
    free(ev->hist);
    free(ev->hist_dirty);
    free(ev->qcut);
    mp_hitsets_free(&ev->qs);
    mp_hitsets_free(&ev->ls);
    mp_smap_free(&ev->tok);
    free(ev);
}

/* qcut of the sample set s after it changed (or was loaded) */
static void qcut_update(mp_evid *ev, const mp_hitset *s) {
    if (!s || s->n < ev->qs.size) return;
    ev->qcut[(size_t)(s->key >> 4) * MP_QBINS + (size_t)(s->key & 15)] =
        (uint16_t)(mp_sample_hash(s->s[s->n - 1].doc, s->s[s->n - 1].pos) >> 48);
}

int mp_evid_hit(mp_evid *ev, int g, uint32_t e, float w, uint64_t doc, uint32_t pos, int32_t token, mp_error *err) {
    size_t x = (size_t)g * ev->n_experts + e;
    int b = mp_hist_bin(w);
    ev->hist[x * MP_HIST_BINS + (size_t)b]++;
    ev->hist_dirty[x] |= 1u << b;
    mp_topk_slot hit = {w, pos, doc};
    size_t qi = x * MP_QBINS + (size_t)(b / 2);
    if (mp_sample_hash(doc, pos) >> 48 <= ev->qcut[qi]) {
        uint64_t key = (uint64_t)x << 4 | (uint64_t)(b / 2);
        const mp_hitset *set = NULL;
        int changed = mp_hitsets_offer(&ev->qs, key, hit, &set, err);
        if (changed < 0) return changed;
        if (changed) qcut_update(ev, set);
    }
    if (w >= MP_TOKIDX_MIN_W && token >= 0) {
        double *d = mp_smap_get(&ev->tok, (uint64_t)token << 32 | (uint64_t)g << 24 | e, err);
        if (!d) return MP_ENOMEM;
        d[0] += 1;
        if (w > d[1]) d[1] = w;
    }
    return 0;
}

int mp_evid_doc_best(mp_evid *ev, int n_fields, const int *value_ids, int g, uint32_t e, float w, uint64_t doc,
                     uint32_t pos, mp_error *err) {
    mp_topk_slot hit = {w, pos, doc};
    for (int f = 0; f < n_fields; f++)
        if (value_ids[f] >= 0) MP_TRY(mp_hitsets_offer(&ev->ls, mp_label_key(g, f, value_ids[f], e), hit, NULL, err));
    return 0;
}

int mp_evid_push_ref(mp_topk_slot **out, size_t *n, size_t *cap, mp_topk_slot s, mp_error *err) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        mp_topk_slot *nv = realloc(*out, nc * sizeof *nv);
        if (!nv) return mp_fail(err, MP_ENOMEM, "out of memory (window references)");
        *out = nv;
        *cap = nc;
    }
    (*out)[(*n)++] = s;
    return 0;
}

int mp_evid_new_refs(const mp_evid *ev, uint64_t first_doc, mp_topk_slot **out, size_t *n, size_t *cap,
                     mp_error *err) {
    const mp_hitsets *sets[2] = {&ev->qs, &ev->ls};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sets[k]->n_dirty; i++) {
            const mp_hitset *s = mp_hitsets_get(sets[k], sets[k]->dirty_keys[i]);
            if (!s) continue;
            for (int j = 0; j < s->n; j++)
                if (s->s[j].doc >= first_doc) MP_TRY(mp_evid_push_ref(out, n, cap, s->s[j], err));
        }
    return 0;
}

int mp_evid_old_refs(const mp_evid *ev, uint64_t first_doc, mp_topk_slot **out, size_t *n, size_t *cap,
                     mp_error *err) {
    const mp_hitsets *sets[2] = {&ev->qs, &ev->ls};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sets[k]->n_evicted; i++)
            if (sets[k]->evicted[i].doc < first_doc) MP_TRY(mp_evid_push_ref(out, n, cap, sets[k]->evicted[i], err));
    return 0;
}

void mp_evid_mark_windows(const mp_evid *ev, const mp_topk_slot *wins, size_t n, uint32_t W, uint8_t *live) {
    const mp_hitsets *sets[2] = {&ev->qs, &ev->ls};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sets[k]->cap; i++) {
            const mp_hitset *s = &sets[k]->e[i];
            if (s->key == MP_SMAP_EMPTY) continue;
            for (int j = 0; j < s->n; j++) mp_windows_mark(wins, n, W, &s->s[j], live);
        }
}

void mp_evid_clear_dirty(mp_evid *ev, const mp_acc *a) {
    for (size_t i = 0; i < a->n_dirty; i++) ev->hist_dirty[a->dirty_list[i]] = 0;
    mp_hitsets_clear_dirty(&ev->qs);
    mp_hitsets_clear_dirty(&ev->ls);
    mp_smap_clear_dirty(&ev->tok);
}

int mp_evid_save(struct mp_store *st, const mp_acc *a, int all, uint64_t first_doc, mp_error *err) {
    MP_TRY(mp_hist_save(st, a, all, err));
    MP_TRY(mp_samples_save(st, a, all, first_doc, err));
    return mp_tokidx_save(st, a, all, err);
}

int mp_evid_load(struct mp_store *st, mp_acc *a, mp_error *err) {
    MP_TRY(mp_hist_load(st, a, err));
    MP_TRY(mp_samples_load(st, a, err));
    for (size_t i = 0; i < a->ev->qs.cap; i++)
        if (a->ev->qs.e[i].key != MP_SMAP_EMPTY) qcut_update(a->ev, &a->ev->qs.e[i]);
    MP_TRY(mp_tokidx_load(st, a, err));
    mp_hitsets_clear_dirty(&a->ev->qs);
    mp_hitsets_clear_dirty(&a->ev->ls);
    mp_smap_clear_dirty(&a->ev->tok);
    return 0;
}
