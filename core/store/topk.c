/* core/store/topk.c — per-expert top-K heaps, dense statistics and sparse label
 * statistics for collect (see topk.h for layout, memory and ordering). */
#include "core/store/topk.h"

#include "core/store/evidence.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- sparse map */

static int smap_alloc(mp_smap *m, size_t cap, mp_error *err) {
    m->keys = malloc(cap * sizeof *m->keys);
    m->vals = calloc(cap * m->nval, sizeof *m->vals);
    m->dirty = calloc(cap, 1);
    if (!m->keys || !m->vals || !m->dirty) {
        free(m->keys);
        free(m->vals);
        free(m->dirty);
        m->keys = NULL;
        m->vals = NULL;
        m->dirty = NULL;
        return mp_fail(err, MP_ENOMEM, "out of memory (label statistics, %zu entries)", cap);
    }
    for (size_t i = 0; i < cap; i++) m->keys[i] = MP_SMAP_EMPTY;
    m->cap = cap;
    m->n = 0;
    return 0;
}

int mp_smap_init(mp_smap *m, size_t nval, mp_error *err) {
    memset(m, 0, sizeof *m);
    m->nval = nval;
    return smap_alloc(m, 64, err);
}

void mp_smap_free(mp_smap *m) {
    free(m->keys);
    free(m->vals);
    free(m->dirty);
    memset(m, 0, sizeof *m);
}

static size_t smap_find(const mp_smap *m, uint64_t key) {
    size_t mask = m->cap - 1, i = (size_t)mp_mix64(key) & mask;
    while (m->keys[i] != MP_SMAP_EMPTY && m->keys[i] != key) i = (i + 1) & mask;
    return i;
}

static int smap_grow(mp_smap *m, mp_error *err) {
    mp_smap old = *m;
    if (smap_alloc(m, old.cap * 2, err) < 0) {
        *m = old;
        return MP_ENOMEM;
    }
    for (size_t i = 0; i < old.cap; i++) {
        if (old.keys[i] == MP_SMAP_EMPTY) continue;
        size_t j = smap_find(m, old.keys[i]);
        m->keys[j] = old.keys[i];
        memcpy(m->vals + j * m->nval, old.vals + i * m->nval, m->nval * sizeof *m->vals);
        m->dirty[j] = old.dirty[i];
        m->n++;
    }
    free(old.keys);
    free(old.vals);
    free(old.dirty);
    return 0;
}

double *mp_smap_get(mp_smap *m, uint64_t key, mp_error *err) {
    if ((m->n + 1) * 10 > m->cap * 7 && smap_grow(m, err) < 0) return NULL;
    size_t i = smap_find(m, key);
    if (m->keys[i] == MP_SMAP_EMPTY) {
        m->keys[i] = key;
        m->n++;
    }
    m->dirty[i] = 1;
    return m->vals + i * m->nval;
}

void mp_smap_clear_dirty(mp_smap *m) { memset(m->dirty, 0, m->cap); }

static void smap_reset(mp_smap *m) {
    for (size_t i = 0; i < m->cap; i++) m->keys[i] = MP_SMAP_EMPTY;
    memset(m->vals, 0, m->cap * m->nval * sizeof *m->vals);
    memset(m->dirty, 0, m->cap);
    m->n = 0;
}

/* ---------------------------------------------------------------- accumulators */

int mp_acc_create(int n_groups, int E, int K, int n_fields, const char *const *field_names, const int *is_score,
                  mp_acc **out, mp_error *err) {
    *out = NULL;
    MP_FAIL_IF(K < 1 || K > MP_ACC_MAX_K, err, MP_EINPUT, "--top-k must be in 1..%d", MP_ACC_MAX_K);
    MP_FAIL_IF(n_groups < 1 || n_groups > 255 || E < 1 || E > 65535, err, MP_EINPUT,
               "unsupported shape: %d router groups, %d experts per factor", n_groups, E);
    MP_FAIL_IF(n_fields < 0 || n_fields > MP_ACC_MAX_FIELDS, err, MP_EINPUT, "at most %d label fields",
               MP_ACC_MAX_FIELDS);
    mp_acc *a = calloc(1, sizeof *a);
    if (!a) return mp_fail(err, MP_ENOMEM, "out of memory");
    a->n_groups = n_groups;
    a->E = E;
    a->K = K;
    a->n_experts = (uint32_t)E * (uint32_t)E;
    size_t ne = (size_t)n_groups * a->n_experts;
    a->slots = calloc(ne * (size_t)K, sizeof *a->slots);
    a->count = calloc(ne, sizeof *a->count);
    a->stats = calloc(ne, sizeof *a->stats);
    a->dirty = calloc(ne, 1);
    a->group_tokens = calloc((size_t)n_groups, sizeof *a->group_tokens);
    a->group_active = calloc((size_t)n_groups, sizeof *a->group_active);
    int rc = 0;
    if (!a->slots || !a->count || !a->stats || !a->dirty || !a->group_tokens || !a->group_active) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory for top-%d of %zu experts (%.1f MB)", K, ne,
                     (double)ne * (double)K * sizeof *a->slots / 1e6);
        goto fail;
    }
    if ((rc = mp_smap_init(&a->label, 2, err)) < 0 || (rc = mp_smap_init(&a->score, 6, err)) < 0 ||
        (rc = mp_smap_init(&a->docmap, 5, err)) < 0 || (rc = mp_evid_create(n_groups, a->n_experts, &a->ev, err)) < 0)
        goto fail;
    for (int f = 0; f < n_fields; f++) {
        a->fields[f].name = strdup(field_names[f]);
        a->fields[f].is_score = is_score[f];
        a->n_fields++;
        if (!a->fields[f].name) {
            rc = mp_fail(err, MP_ENOMEM, "out of memory");
            goto fail;
        }
    }
    *out = a;
    return 0;
fail:
    mp_acc_free(a);
    return rc;
}

void mp_acc_free(mp_acc *a) {
    if (!a) return;
    free(a->slots);
    free(a->count);
    free(a->stats);
    free(a->dirty);
    free(a->dirty_list);
    free(a->evicted);
    free(a->evicted_x);
    free(a->group_tokens);
    free(a->group_active);
    for (int f = 0; f < a->n_fields; f++) {
        mp_field *fd = &a->fields[f];
        for (int v = 0; v < fd->n_values; v++) free(fd->values[v]);
        free(fd->values);
        free(fd->val_tokens);
        free(fd->val_docs);
        free(fd->name);
    }
    mp_smap_free(&a->label);
    mp_smap_free(&a->score);
    mp_smap_free(&a->docmap);
    mp_evid_free(a->ev);
    free(a);
}

/* heap order: the root is the worst hit */
static void sift_down(mp_topk_slot *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && mp_hit_better(&h[w], &h[l])) w = l;
        if (r < n && mp_hit_better(&h[w], &h[r])) w = r;
        if (w == i) return;
        mp_topk_slot t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void sift_up(mp_topk_slot *h, int i) {
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!mp_hit_better(&h[p], &h[i])) return;
        mp_topk_slot t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

int mp_acc_offer(mp_acc *a, int g, uint32_t e, mp_topk_slot hit, mp_error *err) {
    size_t x = (size_t)g * a->n_experts + e;
    mp_topk_slot *h = a->slots + x * (size_t)a->K;
    int n = a->count[x];
    if (n < a->K) {
        h[n] = hit;
        a->count[x] = (uint16_t)(n + 1);
        sift_up(h, n);
        return 1;
    }
    if (!mp_hit_better(&hit, &h[0])) return 0;
    if (a->n_evicted == a->cap_evicted) {
        size_t nc = a->cap_evicted ? a->cap_evicted * 2 : 1024;
        mp_topk_slot *nv = realloc(a->evicted, nc * sizeof *nv);
        if (nv) a->evicted = nv;
        uint32_t *nx = realloc(a->evicted_x, nc * sizeof *nx);
        if (nx) a->evicted_x = nx;
        if (!nv || !nx) return mp_fail(err, MP_ENOMEM, "out of memory (evictions)");
        a->cap_evicted = nc;
    }
    a->evicted[a->n_evicted] = h[0];
    a->evicted_x[a->n_evicted++] = (uint32_t)x;
    h[0] = hit;
    sift_down(h, n, 0);
    return 1;
}

static int mark_dirty(mp_acc *a, size_t x, int bits, mp_error *err) {
    if (a->dirty[x]) {
        a->dirty[x] |= (uint8_t)bits;
        return 0;
    }
    if (a->n_dirty == a->cap_dirty) {
        size_t nc = a->cap_dirty ? a->cap_dirty * 2 : 1024;
        uint32_t *nv = realloc(a->dirty_list, nc * sizeof *nv);
        if (!nv) return mp_fail(err, MP_ENOMEM, "out of memory (dirty list)");
        a->dirty_list = nv;
        a->cap_dirty = nc;
    }
    a->dirty[x] = (uint8_t)bits;
    a->dirty_list[a->n_dirty++] = (uint32_t)x;
    return 0;
}

int mp_acc_hit(mp_acc *a, int g, uint32_t e, float w, uint64_t doc, uint32_t pos, int32_t token, mp_error *err) {
    size_t x = (size_t)g * a->n_experts + e;
    mp_expert_stat *s = &a->stats[x];
    if (s->n == 0) a->group_active[g]++;
    s->n++;
    s->sum += w;
    s->sum2 += (double)w * w;
    if (w > s->max) s->max = w;
    mp_topk_slot hit = {w, pos, doc};
    int changed = mp_acc_offer(a, g, e, hit, err);
    if (changed < 0) return changed;
    MP_TRY(mark_dirty(a, x, changed ? MP_DIRTY_STATS | MP_DIRTY_TOPK : MP_DIRTY_STATS, err));
    MP_TRY(mp_evid_hit(a->ev, g, e, w, doc, pos, token, err));
    if (a->n_fields > 0) {
        double *d = mp_smap_get(&a->docmap, (uint64_t)g << 32 | e, err);
        if (!d) return MP_ENOMEM;
        d[0] += 1;
        d[1] += w;
        d[2] += (double)w * w;
        if (d[0] == 1 || w > d[3] || (w == d[3] && pos < d[4])) d[3] = w, d[4] = pos; /* the document's best hit */
        a->cur_doc = doc;
    }
    return 0;
}

void mp_acc_token(mp_acc *a) {
    for (int g = 0; g < a->n_groups; g++) a->group_tokens[g]++;
    a->doc_tokens++;
}

int mp_acc_value_id(mp_acc *a, int f, const char *value, mp_error *err) {
    mp_field *fd = &a->fields[f];
    for (int v = fd->n_values - 1; v >= 0; v--)
        if (!strcmp(fd->values[v], value)) return v;
    MP_FAIL_IF(fd->n_values >= MP_ACC_MAX_VALUES, err, MP_EINPUT,
               "label field '%s' has more than %d distinct values (is it an id, not a label?)", fd->name,
               MP_ACC_MAX_VALUES);
    if (fd->n_values == fd->cap_values) {
        int nc = fd->cap_values ? fd->cap_values * 2 : 16;
        char **nv = realloc(fd->values, (size_t)nc * sizeof *nv);
        if (nv) fd->values = nv;
        uint64_t *nt = realloc(fd->val_tokens, (size_t)nc * sizeof *nt);
        if (nt) fd->val_tokens = nt;
        uint64_t *nd = realloc(fd->val_docs, (size_t)nc * sizeof *nd);
        if (nd) fd->val_docs = nd;
        if (!nv || !nt || !nd) return mp_fail(err, MP_ENOMEM, "out of memory");
        fd->cap_values = nc;
    }
    char *s = strdup(value);
    if (!s) return mp_fail(err, MP_ENOMEM, "out of memory");
    fd->values[fd->n_values] = s;
    fd->val_tokens[fd->n_values] = 0;
    fd->val_docs[fd->n_values] = 0;
    return fd->n_values++;
}

void mp_score_bucket(double y, char buf[16]) {
    double f = floor(y * MP_SCORE_BUCKETS); /* clamp before the int conversion (UB out of range) */
    int b = !(f == f) || f < 0 ? 0 : f >= MP_SCORE_BUCKETS ? MP_SCORE_BUCKETS - 1 : (int)f;
    snprintf(buf, 16, "%.1f-%.1f", (double)b / MP_SCORE_BUCKETS, (double)(b + 1) / MP_SCORE_BUCKETS);
}

int mp_acc_doc_end(mp_acc *a, const int *value_ids, const double *scores, mp_error *err) {
    double T = (double)a->doc_tokens;
    if (a->doc_tokens == 0 || a->n_fields == 0) goto done;
    for (int f = 0; f < a->n_fields; f++) {
        mp_field *fd = &a->fields[f];
        int v = value_ids[f];
        if (v >= 0) {
            fd->val_tokens[v] += a->doc_tokens;
            fd->val_docs[v]++;
        }
        if (fd->is_score && scores[f] == scores[f]) {
            double y = scores[f];
            fd->sc_n += T;
            fd->sc_sy += y * T;
            fd->sc_syy += y * y * T;
            fd->sc_dn += 1;
            fd->sc_dsy += y;
            fd->sc_dsyy += y * y;
        }
    }
    /* one pass over the document's experts, in map order: every global key
     * receives exactly one addition per document, so the result does not
     * depend on the map's iteration order */
    for (size_t i = 0; i < a->docmap.cap; i++) {
        uint64_t k = a->docmap.keys[i];
        if (k == MP_SMAP_EMPTY) continue;
        const double *d = a->docmap.vals + i * 5;
        int g = (int)(k >> 32);
        uint32_t e = (uint32_t)k;
        MP_TRY(mp_evid_doc_best(a->ev, a->n_fields, value_ids, g, e, (float)d[3], a->cur_doc, (uint32_t)d[4], err));
        for (int f = 0; f < a->n_fields; f++) {
            if (value_ids[f] >= 0) {
                double *l = mp_smap_get(&a->label, mp_label_key(g, f, value_ids[f], e), err);
                if (!l) return MP_ENOMEM;
                l[0] += d[0];
                l[1] += d[1];
            }
            if (a->fields[f].is_score && scores[f] == scores[f]) {
                double y = scores[f], xm = d[1] / T;
                double *s = mp_smap_get(&a->score, mp_label_key(g, f, 0, e), err);
                if (!s) return MP_ENOMEM;
                s[0] += d[1];
                s[1] += d[2];
                s[2] += y * d[1];
                s[3] += xm;
                s[4] += xm * xm;
                s[5] += y * xm;
            }
        }
    }
done:
    smap_reset(&a->docmap);
    a->doc_tokens = 0;
    return 0;
}

static int cmp_best(const void *x, const void *y) {
    const mp_topk_slot *a = x, *b = y;
    return mp_hit_better(a, b) ? -1 : mp_hit_better(b, a) ? 1 : 0;
}

int mp_acc_sorted(const mp_acc *a, int g, uint32_t e, mp_topk_slot *out) {
    size_t x = (size_t)g * a->n_experts + e;
    int n = a->count[x];
    memcpy(out, a->slots + x * (size_t)a->K, (size_t)n * sizeof *out);
    qsort(out, (size_t)n, sizeof *out, cmp_best);
    return n;
}

void mp_acc_clear_dirty(mp_acc *a) {
    mp_evid_clear_dirty(a->ev, a);
    for (size_t i = 0; i < a->n_dirty; i++) a->dirty[a->dirty_list[i]] = 0;
    a->n_dirty = 0;
    a->n_evicted = 0;
    mp_smap_clear_dirty(&a->label);
    mp_smap_clear_dirty(&a->score);
}

void mp_windows_mark(const mp_topk_slot *wins, size_t n, uint32_t W, const mp_topk_slot *h, uint8_t *live) {
    if (n == 0 || h->doc < wins[0].doc || h->doc > wins[n - 1].doc) return;
    uint32_t start = h->pos - h->pos % W;
    size_t lo = 0, hi = n; /* first window not before (h->doc, start) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (wins[mid].doc < h->doc || (wins[mid].doc == h->doc && wins[mid].pos < start)) lo = mid + 1;
        else hi = mid;
    }
    if (lo < n && wins[lo].doc == h->doc && wins[lo].pos == start) live[lo] = 1;
}

void mp_acc_mark_windows(const mp_acc *a, const mp_topk_slot *wins, size_t n, uint32_t W, uint8_t *live) {
    if (n == 0) return;
    size_t ne = (size_t)a->n_groups * a->n_experts;
    for (size_t x = 0; x < ne; x++) {
        const mp_topk_slot *h = a->slots + x * (size_t)a->K;
        for (int r = 0; r < a->count[x]; r++) mp_windows_mark(wins, n, W, &h[r], live);
    }
    mp_evid_mark_windows(a->ev, wins, n, W, live);
}
