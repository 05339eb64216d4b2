/* core/store/hist.c — the activation histogram of every expert: the fixed
 * half-octave bins of w (mp_hist_bin, mp_hist_edge) and the store table
 * hist(grp, expert, bin, n), sparse (bins with n > 0), written for the bins
 * that changed since the last commit. See evidence.h and docs/store.md. */
#include "core/store/evidence.h"

#include <math.h>
#include <sqlite3.h>

#include "core/store/store.h"

#define SQRT2 1.4142135623730951

int mp_hist_bin(float w) {
    if (!(w > 0)) return 0;
    int ex = 0;
    double m = frexp((double)w, &ex); /* w = m * 2^ex, m in [0.5, 1): log2 w in [ex-1, ex) */
    long b = 2L * (ex - 1) + (2 * m >= SQRT2) + MP_HIST_ONE;
    return b < 0 ? 0 : b >= MP_HIST_BINS ? MP_HIST_BINS - 1 : (int)b;
}

double mp_hist_edge(int b) {
    if (b <= 0) return 0;
    int k = b - MP_HIST_ONE; /* edge = 2^(k/2) */
    return k % 2 == 0 ? ldexp(1.0, k / 2) : ldexp(SQRT2, (k - 1) / 2); /* k - 1 even: exact halving */
}

int mp_hist_save(mp_store *st, const mp_acc *a, int all, mp_error *err) {
    const mp_evid *ev = a->ev;
    sqlite3_stmt *q = NULL;
    MP_TRY(mp_store_prepare(st, "INSERT OR REPLACE INTO hist VALUES(?, ?, ?, ?)", &q, err));
    int rc = 0;
    size_t ne = (size_t)a->n_groups * a->n_experts, n = all ? ne : a->n_dirty;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t x = all ? i : a->dirty_list[i];
        uint32_t bits = all ? UINT32_MAX : ev->hist_dirty[x];
        for (int b = 0; b < MP_HIST_BINS && rc == 0; b++) {
            uint64_t c = ev->hist[x * MP_HIST_BINS + (size_t)b];
            if (!(bits >> b & 1) || c == 0) continue;
            sqlite3_reset(q);
            sqlite3_bind_int(q, 1, (int)(x / a->n_experts));
            sqlite3_bind_int64(q, 2, (sqlite3_int64)(x % a->n_experts));
            sqlite3_bind_int(q, 3, b);
            sqlite3_bind_int64(q, 4, (sqlite3_int64)c);
            if (sqlite3_step(q) != SQLITE_DONE) rc = mp_store_sqlerr(st, "hist", err);
        }
    }
    sqlite3_finalize(q);
    return rc;
}

int mp_hist_load(mp_store *st, mp_acc *a, mp_error *err) {
    mp_evid *ev = a->ev;
    sqlite3_stmt *q = NULL;
    MP_TRY(mp_store_prepare(st, "SELECT grp, expert, bin, n FROM hist", &q, err));
    int rc = 0, step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t g = sqlite3_column_int64(q, 0), e = sqlite3_column_int64(q, 1), b = sqlite3_column_int64(q, 2),
                c = sqlite3_column_int64(q, 3);
        if (g < 0 || g >= a->n_groups || e < 0 || e >= a->n_experts || b < 0 || b >= MP_HIST_BINS || c < 0) {
            rc = mp_store_corrupt(st, "hist", err);
            break;
        }
        ev->hist[((size_t)g * a->n_experts + (size_t)e) * MP_HIST_BINS + (size_t)b] += (uint64_t)c;
    }
    if (rc == 0 && step != SQLITE_DONE) rc = mp_store_sqlerr(st, "hist", err);
    sqlite3_finalize(q);
    return rc;
}
