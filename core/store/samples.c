/* core/store/samples.c — bounded hit sets per key (mp_hitsets) and the two store
 * tables built from them:
 *   qsamples(grp, expert, octave, w, doc, pos)        quantile samples: per
 *       expert and octave of w, the MP_QSAMPLES hits with the smallest
 *       mp_sample_hash(doc, pos) (then doc, pos): a uniform sample of the
 *       octave's hits that does not depend on the order hits arrive in, so
 *       resume and shard merges pick the same samples. The hash ignores the
 *       expert, so experts tend to sample the same tokens and share windows.
 *   label_topk(grp, expert, field, value, w, doc, pos) per expert and label
 *       value, the MP_LABEL_TOPK best documents of that value, each by its
 *       best token (larger w, then smaller doc, pos).
 * Like topk, a commit writes only the hits that entered a set in its batch
 * (doc >= first_doc) and deletes those that left it and had been written. */
#include "core/store/evidence.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "core/store/store.h"

uint64_t mp_sample_hash(uint64_t doc, uint32_t pos) { return mp_mix64(mp_mix64(doc + 0x9e3779b97f4a7c15ULL) ^ pos); }

/* x before y in the set's order */
static int set_better(int order, const mp_topk_slot *x, const mp_topk_slot *y) {
    if (order == MP_SET_BY_W) return mp_hit_better(x, y);
    uint64_t hx = mp_sample_hash(x->doc, x->pos), hy = mp_sample_hash(y->doc, y->pos);
    if (hx != hy) return hx < hy;
    if (x->doc != y->doc) return x->doc < y->doc;
    return x->pos < y->pos;
}

static int sets_alloc(mp_hitsets *m, size_t cap, mp_error *err) {
    m->e = malloc(cap * sizeof *m->e);
    if (!m->e) return mp_fail(err, MP_ENOMEM, "out of memory (sample sets, %zu entries)", cap);
    for (size_t i = 0; i < cap; i++) {
        m->e[i].key = MP_SMAP_EMPTY;
        m->e[i].n = m->e[i].dirty = 0;
    }
    m->cap = cap;
    m->n = 0;
    return 0;
}

int mp_hitsets_init(mp_hitsets *m, int order, int size, mp_error *err) {
    memset(m, 0, sizeof *m);
    MP_FAIL_IF(size < 1 || size > MP_SET_MAX, err, MP_EINTERNAL, "hit set size %d", size);
    m->order = order;
    m->size = size;
    return sets_alloc(m, 64, err);
}

void mp_hitsets_free(mp_hitsets *m) {
    free(m->e);
    free(m->evicted);
    free(m->evicted_key);
    free(m->dirty_keys);
    memset(m, 0, sizeof *m);
}

static size_t sets_find(const mp_hitsets *m, uint64_t key) {
    size_t mask = m->cap - 1, i = (size_t)mp_mix64(key) & mask;
    while (m->e[i].key != MP_SMAP_EMPTY && m->e[i].key != key) i = (i + 1) & mask;
    return i;
}

static int sets_grow(mp_hitsets *m, mp_error *err) {
    mp_hitsets old = *m;
    if (sets_alloc(m, old.cap * 2, err) < 0) {
        *m = old;
        return MP_ENOMEM;
    }
    for (size_t i = 0; i < old.cap; i++) {
        if (old.e[i].key == MP_SMAP_EMPTY) continue;
        m->e[sets_find(m, old.e[i].key)] = old.e[i];
        m->n++;
    }
    free(old.e);
    return 0;
}

int mp_hitsets_offer(mp_hitsets *m, uint64_t key, mp_topk_slot hit, const mp_hitset **set, mp_error *err) {
    if ((m->n + 1) * 10 > m->cap * 7 && sets_grow(m, err) < 0) return MP_ENOMEM;
    size_t i = sets_find(m, key);
    mp_hitset *s = &m->e[i];
    if (s->key == MP_SMAP_EMPTY) {
        s->key = key;
        s->n = 0;
        m->n++;
    }
    int n = s->n;
    if (n == m->size) {
        if (!set_better(m->order, &hit, &s->s[n - 1])) return 0;
        if (m->n_evicted == m->cap_evicted) {
            size_t nc = m->cap_evicted ? m->cap_evicted * 2 : 256;
            mp_topk_slot *nv = realloc(m->evicted, nc * sizeof *nv);
            if (nv) m->evicted = nv;
            uint64_t *nk = realloc(m->evicted_key, nc * sizeof *nk);
            if (nk) m->evicted_key = nk;
            if (!nv || !nk) return mp_fail(err, MP_ENOMEM, "out of memory (sample evictions)");
            m->cap_evicted = nc;
        }
        m->evicted_key[m->n_evicted] = key;
        m->evicted[m->n_evicted++] = s->s[n - 1];
        n--;
    }
    int j = n;
    while (j > 0 && set_better(m->order, &hit, &s->s[j - 1])) {
        s->s[j] = s->s[j - 1];
        j--;
    }
    s->s[j] = hit;
    s->n = (uint8_t)(n + 1);
    if (!s->dirty) {
        if (m->n_dirty == m->cap_dirty) {
            size_t nc = m->cap_dirty ? m->cap_dirty * 2 : 256;
            uint64_t *nk = realloc(m->dirty_keys, nc * sizeof *nk);
            if (!nk) return mp_fail(err, MP_ENOMEM, "out of memory (changed sample sets)");
            m->dirty_keys = nk;
            m->cap_dirty = nc;
        }
        m->dirty_keys[m->n_dirty++] = key;
        s->dirty = 1;
    }
    if (set) *set = s;
    return 1;
}

const mp_hitset *mp_hitsets_get(const mp_hitsets *m, uint64_t key) {
    const mp_hitset *s = &m->e[sets_find(m, key)];
    return s->key == key ? s : NULL;
}

void mp_hitsets_clear_dirty(mp_hitsets *m) {
    for (size_t i = 0; i < m->n_dirty; i++) m->e[sets_find(m, m->dirty_keys[i])].dirty = 0;
    m->n_dirty = 0;
    m->n_evicted = 0;
}

/* ---------------------------------------------------------------- store tables */

static int field_index(const mp_acc *a, const char *name) {
    for (int f = 0; f < a->n_fields; f++)
        if (!strcmp(a->fields[f].name, name)) return f;
    return -1;
}

static int step_done(mp_store *st, sqlite3_stmt *q, const char *table, mp_error *err) {
    return sqlite3_step(q) == SQLITE_DONE ? 0 : mp_store_sqlerr(st, table, err);
}

/* bind the set's identity: (grp, expert, octave) or (grp, expert, field, value) */
static void bind_key(sqlite3_stmt *q, const mp_acc *a, int label, uint64_t key) {
    if (!label) {
        size_t x = (size_t)(key >> 4);
        sqlite3_bind_int(q, 1, (int)(x / a->n_experts));
        sqlite3_bind_int64(q, 2, (sqlite3_int64)(x % a->n_experts));
        sqlite3_bind_int(q, 3, (int)(key & 15));
        return;
    }
    int g, f, v;
    uint32_t e;
    mp_label_key_split(key, &g, &f, &v, &e);
    sqlite3_bind_int(q, 1, g);
    sqlite3_bind_int64(q, 2, e);
    sqlite3_bind_text(q, 3, a->fields[f].name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, a->fields[f].values[v], -1, SQLITE_STATIC);
}

typedef struct sortkey {
    uint64_t k;   /* the set key in primary-key order */
    uint64_t key; /* the set key */
} sortkey;

static int cmp_sortkey(const void *x, const void *y) {
    const sortkey *a = x, *b = y;
    return (a->k > b->k) - (a->k < b->k);
}

/* A set key in the order of its table's primary key: (grp, expert, octave)
 * is already; (grp, field, value, expert) becomes (grp, expert, field, value). */
static uint64_t pk_order(uint64_t key, int label) {
    if (!label) return key;
    int g, f, v;
    uint32_t e;
    mp_label_key_split(key, &g, &f, &v, &e);
    return (uint64_t)g << 56 | (uint64_t)e << 24 | (uint64_t)f << 20 | (uint64_t)(v & 0xfffff);
}

static int save_sets(mp_store *st, const mp_acc *a, const mp_hitsets *m, int label, int all, uint64_t first_doc,
                     mp_error *err) {
    static const char *DEL[2] = {"DELETE FROM qsamples WHERE grp=? AND expert=? AND octave=? AND doc=? AND pos=?",
                                 "DELETE FROM label_topk WHERE grp=? AND expert=? AND field=? AND value=? AND doc=?"
                                 " AND pos=?"};
    static const char *INS[2] = {"INSERT OR REPLACE INTO qsamples VALUES(?, ?, ?, ?, ?, ?)",
                                 "INSERT OR REPLACE INTO label_topk VALUES(?, ?, ?, ?, ?, ?, ?)"};
    const char *table = label ? "label_topk" : "qsamples";
    sqlite3_stmt *del = NULL, *ins = NULL;
    sortkey *order = NULL;
    int rc = 0, nk = label ? 4 : 3;
    if ((rc = mp_store_prepare(st, DEL[label], &del, err)) < 0 || (rc = mp_store_prepare(st, INS[label], &ins, err)) < 0)
        goto cleanup;
    for (size_t i = 0; !all && i < m->n_evicted && rc == 0; i++) {
        if (m->evicted[i].doc >= first_doc) continue; /* never written */
        sqlite3_reset(del);
        bind_key(del, a, label, m->evicted_key[i]);
        sqlite3_bind_int64(del, nk + 1, (sqlite3_int64)m->evicted[i].doc);
        sqlite3_bind_int64(del, nk + 2, m->evicted[i].pos);
        rc = step_done(st, del, table, err);
    }
    /* changed sets in primary-key order: B-tree inserts close to each other */
    size_t nd = all ? m->n : m->n_dirty;
    if (nd && !(order = malloc(nd * sizeof *order))) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    nd = 0;
    if (all) {
        for (size_t i = 0; i < m->cap; i++)
            if (m->e[i].key != MP_SMAP_EMPTY) order[nd++] = (sortkey){pk_order(m->e[i].key, label), m->e[i].key};
    } else {
        for (size_t i = 0; i < m->n_dirty; i++) order[nd++] = (sortkey){pk_order(m->dirty_keys[i], label), m->dirty_keys[i]};
    }
    if (nd) qsort(order, nd, sizeof *order, cmp_sortkey);
    for (size_t oi = 0; oi < nd && rc == 0; oi++) {
        const mp_hitset *s = mp_hitsets_get(m, order[oi].key);
        if (!s) continue;
        for (int k = 0; k < s->n && rc == 0; k++) {
            if (!all && s->s[k].doc < first_doc) continue; /* written by an earlier commit */
            sqlite3_reset(ins);
            bind_key(ins, a, label, s->key);
            sqlite3_bind_double(ins, nk + 1, s->s[k].w);
            sqlite3_bind_int64(ins, nk + 2, (sqlite3_int64)s->s[k].doc);
            sqlite3_bind_int64(ins, nk + 3, s->s[k].pos);
            rc = step_done(st, ins, table, err);
        }
    }
cleanup:
    free(order);
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    return rc;
}

int mp_samples_save(mp_store *st, const mp_acc *a, int all, uint64_t first_doc, mp_error *err) {
    MP_TRY(save_sets(st, a, &a->ev->qs, 0, all, first_doc, err));
    return save_sets(st, a, &a->ev->ls, 1, all, first_doc, err);
}

int mp_samples_load(mp_store *st, mp_acc *a, mp_error *err) {
    mp_evid *ev = a->ev;
    sqlite3_stmt *q = NULL;
    int rc = 0, step;
    MP_TRY(mp_store_prepare(st, "SELECT grp, expert, octave, w, doc, pos FROM qsamples", &q, err));
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t g = sqlite3_column_int64(q, 0), e = sqlite3_column_int64(q, 1), o = sqlite3_column_int64(q, 2);
        mp_topk_slot hit = {(float)sqlite3_column_double(q, 3), (uint32_t)sqlite3_column_int64(q, 5),
                            (uint64_t)sqlite3_column_int64(q, 4)};
        if (g < 0 || g >= a->n_groups || e < 0 || e >= a->n_experts || o != mp_hist_bin(hit.w) / 2 || !(hit.w > 0)) {
            rc = mp_store_corrupt(st, "qsamples", err);
            break;
        }
        uint64_t x = (uint64_t)g * a->n_experts + (uint64_t)e;
        if ((rc = mp_hitsets_offer(&ev->qs, x << 4 | (uint64_t)o, hit, NULL, err)) < 0) break;
        rc = 0;
    }
    if (rc == 0 && step != SQLITE_DONE) rc = mp_store_sqlerr(st, "qsamples", err);
    sqlite3_finalize(q);
    q = NULL;
    if (rc < 0) return rc;
    MP_TRY(mp_store_prepare(st, "SELECT grp, expert, field, value, w, doc, pos FROM label_topk", &q, err));
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t g = sqlite3_column_int64(q, 0), e = sqlite3_column_int64(q, 1);
        const char *fn = (const char *)sqlite3_column_text(q, 2), *vn = (const char *)sqlite3_column_text(q, 3);
        int f = fn ? field_index(a, fn) : -1;
        mp_topk_slot hit = {(float)sqlite3_column_double(q, 4), (uint32_t)sqlite3_column_int64(q, 6),
                            (uint64_t)sqlite3_column_int64(q, 5)};
        if (f < 0 || !vn || g < 0 || g >= a->n_groups || e < 0 || e >= a->n_experts) {
            rc = mp_store_corrupt(st, "label_topk", err);
            break;
        }
        int v = mp_acc_value_id(a, f, vn, err);
        if ((rc = v) < 0) break;
        if ((rc = mp_hitsets_offer(&ev->ls, mp_label_key((int)g, f, v, (uint32_t)e), hit, NULL, err)) < 0) break;
        rc = 0;
    }
    if (rc == 0 && step != SQLITE_DONE) rc = mp_store_sqlerr(st, "label_topk", err);
    sqlite3_finalize(q);
    return rc;
}
