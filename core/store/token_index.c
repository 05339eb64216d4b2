/* core/store/token_index.c — the token -> experts index:
 *   token_index(token, grp, expert, n, max_w)   PK (token, grp, expert)
 * n = hits of the expert on that activating token id with w >= MP_TOKIDX_MIN_W,
 * max_w = the largest such w. The filter is per hit, so the table is a plain
 * sum (exact under resume and merge); and since the w of one token add up to
 * the number of router heads Hm in each group, at most Hm / MP_TOKIDX_MIN_W
 * (= 8 Hm) experts per group enter it per token, whatever the corpus.
 * Accumulated in a sparse map (key token << 32 | grp << 24 | expert). */
#include "core/store/evidence.h"

#include <sqlite3.h>
#include <stdlib.h>

#include "core/store/store.h"

typedef struct keyidx {
    uint64_t k;
    size_t i;
} keyidx;

static int cmp_keyidx(const void *x, const void *y) {
    const keyidx *a = x, *b = y;
    return (a->k > b->k) - (a->k < b->k);
}

int mp_tokidx_save(mp_store *st, const mp_acc *a, int all, mp_error *err) {
    const mp_smap *m = &a->ev->tok;
    sqlite3_stmt *q = NULL;
    MP_TRY(mp_store_prepare(st, "INSERT OR REPLACE INTO token_index VALUES(?, ?, ?, ?, ?)", &q, err));
    int rc = 0;
    /* changed entries in key order = primary-key order (token, grp, expert) */
    size_t nd = 0;
    keyidx *idx = NULL;
    for (size_t i = 0; i < m->cap; i++) nd += m->keys[i] != MP_SMAP_EMPTY && (all || m->dirty[i]);
    if (nd && !(idx = malloc(nd * sizeof *idx))) {
        sqlite3_finalize(q);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    nd = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] != MP_SMAP_EMPTY && (all || m->dirty[i])) idx[nd++] = (keyidx){m->keys[i], i};
    if (nd) qsort(idx, nd, sizeof *idx, cmp_keyidx);
    for (size_t j = 0; j < nd && rc == 0; j++) {
        size_t i = idx[j].i;
        uint64_t k = m->keys[i];
        const double *d = m->vals + i * 2;
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, (sqlite3_int64)(k >> 32));
        sqlite3_bind_int(q, 2, (int)(k >> 24 & 255));
        sqlite3_bind_int64(q, 3, (sqlite3_int64)(k & 0xffffff));
        sqlite3_bind_int64(q, 4, (sqlite3_int64)d[0]);
        sqlite3_bind_double(q, 5, d[1]);
        if (sqlite3_step(q) != SQLITE_DONE) rc = mp_store_sqlerr(st, "token_index", err);
    }
    free(idx);
    sqlite3_finalize(q);
    return rc;
}

int mp_tokidx_load(mp_store *st, mp_acc *a, mp_error *err) {
    mp_smap *m = &a->ev->tok;
    sqlite3_stmt *q = NULL;
    MP_TRY(mp_store_prepare(st, "SELECT token, grp, expert, n, max_w FROM token_index", &q, err));
    int rc = 0, step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t t = sqlite3_column_int64(q, 0), g = sqlite3_column_int64(q, 1), e = sqlite3_column_int64(q, 2),
                n = sqlite3_column_int64(q, 3);
        double mx = sqlite3_column_double(q, 4);
        if (t < 0 || t > INT32_MAX || g < 0 || g >= a->n_groups || e < 0 || e >= a->n_experts || n < 1) {
            rc = mp_store_corrupt(st, "token_index", err);
            break;
        }
        double *d = mp_smap_get(m, (uint64_t)t << 32 | (uint64_t)g << 24 | (uint64_t)e, err);
        if (!d) {
            rc = MP_ENOMEM;
            break;
        }
        d[0] += (double)n;
        if (mx > d[1]) d[1] = mx;
    }
    if (rc == 0 && step != SQLITE_DONE) rc = mp_store_sqlerr(st, "token_index", err);
    sqlite3_finalize(q);
    return rc;
}
