/* analysis/correlate.c — Pearson correlation of every expert's routing score
 * with a numeric score, per token or per document (see analysis.h).
 *
 * The store keeps sufficient statistics accumulated in double: per score
 * field n, Σy, Σy² over all scored tokens (and the per-document versions),
 * per expert Σx, Σx², Σxy over its active tokens (x = 0 elsewhere, so those
 * sums are complete). r is computed in long double from the centered forms
 * Sxy = Σxy − ΣxΣy/n, Sxx = Σx² − (Σx)²/n, Syy = Σy² − (Σy)²/n. */
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"

double mp_pearson(double n, double sx, double sy, double sxx, double syy, double sxy) {
    if (n < 2) return NAN;
    long double N = n, cxy = (long double)sxy - (long double)sx * sy / N;
    long double cxx = (long double)sxx - (long double)sx * sx / N;
    long double cyy = (long double)syy - (long double)sy * sy / N;
    /* relative floors: variances that are rounding noise mean "constant" */
    if (cxx <= 1e-12L * ((long double)sxx + 1e-300L) || cyy <= 1e-12L * ((long double)syy + 1e-300L)) return NAN;
    long double r = cxy / sqrtl(cxx * cyy);
    if (r > 1) r = 1;
    if (r < -1) r = -1;
    return (double)r;
}

static int cmp_r_desc(const void *a, const void *b) {
    const mp_corr_expert *x = a, *y = b;
    int xn = isnan(x->r), yn = isnan(y->r);
    if (xn != yn) return xn - yn;
    if (!xn && x->r != y->r) return x->r > y->r ? -1 : 1;
    if (x->group != y->group) return x->group - y->group;
    return (x->expert > y->expert) - (x->expert < y->expert);
}

int mp_correlate(mp_store *st, const char *field, int per_doc, mp_corr_result *res, mp_error *err) {
    memset(res, 0, sizeof *res);
    res->per_doc = per_doc;
    MP_TRY(mp_analysis_shape(st, &res->n_groups, &res->E, err));
    sqlite3 *db = mp_store_db(st);
    sqlite3_stmt *s = NULL;
    int rc = 0;
    const char *tot_sql = per_doc ? "SELECT n_docs, d_sum_y, d_sum_y2 FROM score_totals WHERE field = ?1"
                                  : "SELECT n, sum_y, sum_y2 FROM score_totals WHERE field = ?1";
    if (sqlite3_prepare_v2(db, tot_sql, -1, &s, NULL) != SQLITE_OK)
        return mp_fail(err, MP_EIO, "%s: reading score_totals: %s", mp_store_path(st), sqlite3_errmsg(db));
    sqlite3_bind_text(s, 1, field, -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_ROW) {
        sqlite3_finalize(s);
        return mp_fail(err, MP_EINPUT, "%s: no statistics for score field '%s' (collect with --score-field %s)",
                       mp_store_path(st), field, field);
    }
    double n = sqlite3_column_double(s, 0), sy = sqlite3_column_double(s, 1), syy = sqlite3_column_double(s, 2);
    sqlite3_finalize(s);
    s = NULL;
    res->n = n;
    res->mean_y = n > 0 ? sy / n : NAN;
    res->sd_y = n > 1 ? sqrt(fmax(0.0, (syy - sy * sy / n) / (n - 1))) : NAN;
    const char *sql = per_doc
                          ? "SELECT s.grp, s.expert, s.d_sum_x, s.d_sum_x2, s.d_sum_xy, e.n_active FROM score_stats s "
                            "JOIN expert_stats e ON e.grp = s.grp AND e.expert = s.expert WHERE s.field = ?1"
                          : "SELECT s.grp, s.expert, s.sum_x, s.sum_x2, s.sum_xy, e.n_active FROM score_stats s "
                            "JOIN expert_stats e ON e.grp = s.grp AND e.expert = s.expert WHERE s.field = ?1";
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return mp_fail(err, MP_EIO, "%s: reading score_stats: %s", mp_store_path(st), sqlite3_errmsg(db));
    sqlite3_bind_text(s, 1, field, -1, SQLITE_STATIC);
    size_t cap = 0;
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (res->n_experts == cap) {
            cap = cap ? cap * 2 : 4096;
            mp_corr_expert *ne = realloc(res->experts, cap * sizeof *ne);
            if (!ne) {
                rc = mp_fail(err, MP_ENOMEM, "out of memory");
                goto cleanup;
            }
            res->experts = ne;
        }
        mp_corr_expert *e = &res->experts[res->n_experts++];
        e->group = sqlite3_column_int(s, 0);
        e->expert = (uint32_t)sqlite3_column_int64(s, 1);
        e->r = mp_pearson(n, sqlite3_column_double(s, 2), sy, sqlite3_column_double(s, 3), syy,
                          sqlite3_column_double(s, 4));
        e->n = n;
        e->n_active = sqlite3_column_int64(s, 5);
        if (e->group < 0 || e->group >= res->n_groups || e->expert >= (uint32_t)res->E * (uint32_t)res->E) {
            rc = mp_fail(err, MP_EINPUT, "%s: corrupt score_stats row (group %d, expert %u)", mp_store_path(st),
                         e->group, e->expert);
            goto cleanup;
        }
    }
    if (step != SQLITE_DONE) rc = mp_fail(err, MP_EIO, "%s: reading score_stats: %s", mp_store_path(st), sqlite3_errmsg(db));
    else qsort(res->experts, res->n_experts, sizeof *res->experts, cmp_r_desc);
cleanup:
    sqlite3_finalize(s);
    if (rc < 0) mp_corr_result_free(res);
    return rc;
}

void mp_corr_result_free(mp_corr_result *res) {
    if (!res) return;
    free(res->experts);
    memset(res, 0, sizeof *res);
}
