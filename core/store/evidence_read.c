/* core/store/evidence_read.c — readers of the evidence tables (evidence_read.h). */
#include "core/store/evidence_read.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

int mp_store_hist(mp_store *st, int grp, uint32_t expert, uint64_t counts[MP_HIST_BINS], mp_error *err) {
    sqlite3_stmt *q = NULL;
    memset(counts, 0, MP_HIST_BINS * sizeof *counts);
    MP_TRY(mp_store_prepare(st, "SELECT bin, n FROM hist WHERE grp=? AND expert=?", &q, err));
    sqlite3_bind_int(q, 1, grp);
    sqlite3_bind_int64(q, 2, expert);
    int rc = 0, step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t b = sqlite3_column_int64(q, 0), c = sqlite3_column_int64(q, 1);
        if (b < 0 || b >= MP_HIST_BINS || c < 0) {
            rc = mp_store_corrupt(st, "hist", err);
            break;
        }
        counts[b] = (uint64_t)c;
    }
    if (rc == 0 && step != SQLITE_DONE) rc = mp_store_sqlerr(st, "hist", err);
    sqlite3_finalize(q);
    return rc;
}

/* Rows (rank-or-octave, w, doc, pos) of a prepared, bound query. */
static int read_hits(mp_store *st, sqlite3_stmt *q, int rank_col, const char *table, mp_store_hit **hits, size_t *n,
                     mp_error *err) {
    mp_store_hit *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0, step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            mp_store_hit *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                rc = mp_fail(err, MP_ENOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        v[cnt].rank = rank_col ? sqlite3_column_int(q, 3) : (int)cnt;
        v[cnt].w = sqlite3_column_double(q, 0);
        v[cnt].doc = (uint64_t)sqlite3_column_int64(q, 1);
        v[cnt].pos = (uint32_t)sqlite3_column_int64(q, 2);
        cnt++;
    }
    if (rc == 0 && step != SQLITE_DONE) rc = mp_store_sqlerr(st, table, err);
    if (rc < 0) {
        free(v);
        return rc;
    }
    *hits = v;
    *n = cnt;
    return 0;
}

int mp_store_qsamples(mp_store *st, int grp, uint32_t expert, mp_store_hit **hits, size_t *n, mp_error *err) {
    sqlite3_stmt *q = NULL;
    *hits = NULL;
    *n = 0;
    MP_TRY(mp_store_prepare(st, "SELECT w, doc, pos, octave FROM qsamples WHERE grp=? AND expert=?"
                                " ORDER BY octave DESC, w DESC, doc, pos", &q, err));
    sqlite3_bind_int(q, 1, grp);
    sqlite3_bind_int64(q, 2, expert);
    int rc = read_hits(st, q, 1, "qsamples", hits, n, err);
    sqlite3_finalize(q);
    for (size_t i = 0; rc == 0 && i < *n; i++)
        if ((*hits)[i].rank < 0 || (*hits)[i].rank >= MP_QBINS) rc = mp_store_corrupt(st, "qsamples", err);
    if (rc < 0) {
        free(*hits);
        *hits = NULL;
        *n = 0;
    }
    return rc;
}

int mp_store_label_topk(mp_store *st, int grp, uint32_t expert, const char *field, const char *value,
                        mp_store_hit **hits, size_t *n, mp_error *err) {
    sqlite3_stmt *q = NULL;
    *hits = NULL;
    *n = 0;
    MP_TRY(mp_store_prepare(st, "SELECT w, doc, pos FROM label_topk WHERE grp=? AND expert=? AND field=? AND value=?"
                                " ORDER BY w DESC, doc, pos", &q, err));
    sqlite3_bind_int(q, 1, grp);
    sqlite3_bind_int64(q, 2, expert);
    sqlite3_bind_text(q, 3, field, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, value, -1, SQLITE_STATIC);
    int rc = read_hits(st, q, 0, "label_topk", hits, n, err);
    sqlite3_finalize(q);
    return rc;
}

int mp_store_label_known(mp_store *st, const char *field, const char *value, mp_error *err) {
    sqlite3_stmt *q = NULL;
    MP_TRY(mp_store_prepare(st, "SELECT 1 FROM label_totals WHERE field=? AND value=?", &q, err));
    sqlite3_bind_text(q, 1, field, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
    int step = sqlite3_step(q), rc = step == SQLITE_ROW ? 1 : step == SQLITE_DONE ? 0 : mp_store_sqlerr(st, "label_totals", err);
    sqlite3_finalize(q);
    return rc;
}

int mp_store_find_token(mp_store *st, int32_t token, int grp, long limit, mp_token_hit **rows, size_t *n,
                        mp_error *err) {
    sqlite3_stmt *q = NULL;
    *rows = NULL;
    *n = 0;
    MP_TRY(mp_store_prepare(st, "SELECT grp, expert, n, max_w FROM token_index WHERE token=?1 AND (?2 < 0 OR grp=?2)"
                                " ORDER BY n DESC, max_w DESC, grp, expert LIMIT ?3", &q, err));
    sqlite3_bind_int64(q, 1, token);
    sqlite3_bind_int(q, 2, grp);
    sqlite3_bind_int64(q, 3, limit > 0 ? limit : -1);
    mp_token_hit *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0, step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            mp_token_hit *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                rc = mp_fail(err, MP_ENOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        int64_t g = sqlite3_column_int64(q, 0), e = sqlite3_column_int64(q, 1), c = sqlite3_column_int64(q, 2);
        if (g < 0 || g > MP_STORE_MAX_GROUPS || e < 0 || e >= (int64_t)MP_STORE_MAX_EXPERTS * MP_STORE_MAX_EXPERTS ||
            c < 0) {
            rc = mp_store_corrupt(st, "token_index", err);
            break;
        }
        v[cnt++] = (mp_token_hit){(int)g, (uint32_t)e, (uint64_t)c, sqlite3_column_double(q, 3)};
    }
    if (rc == 0 && step != SQLITE_DONE) rc = mp_store_sqlerr(st, "token_index", err);
    sqlite3_finalize(q);
    if (rc < 0) {
        free(v);
        return rc;
    }
    *rows = v;
    *n = cnt;
    return 0;
}
