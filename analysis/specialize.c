/* analysis/specialize.c — the paper's specialist criterion over a store's
 * per-(expert, label) statistics (see analysis.h). */
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"

static int db_fail(mp_store *st, mp_error *err, const char *what) {
    return mp_fail(err, MP_EIO, "%s: %s: %s", mp_store_path(st), what, sqlite3_errmsg(mp_store_db(st)));
}

int mp_analysis_shape(mp_store *st, int *n_groups, int *E, mp_error *err) {
    long g = 0, e = 0; /* bounded: both size allocations */
    MP_TRY(mp_store_meta_int(st, "n_groups", 1, MP_STORE_MAX_GROUPS, 1, &g, err));
    MP_TRY(mp_store_meta_int(st, "moe_experts", 1, MP_STORE_MAX_EXPERTS, 1, &e, err));
    *n_groups = (int)g;
    *E = (int)e;
    return 0;
}

/* Decide one expert from its per-label measures. */
static void decide(mp_spec_expert *e, const double *m, int n_labels, const mp_spec_opts *o) {
    int b = -1;
    double best = -1, second = 0;
    for (int c = 0; c < n_labels; c++) {
        if (m[c] > best) {
            if (b >= 0) second = best;
            best = m[c];
            b = c;
        } else if (m[c] > second) {
            second = m[c];
        }
    }
    e->label = b;
    e->best = best;
    e->second = second;
    e->skew = second > 0 ? best / second : (best > 0 ? INFINITY : 0);
    e->specialist = best > 0 && e->skew >= o->ratio && e->n_active >= o->min_count;
}

int mp_specialize(mp_store *st, const mp_spec_opts *o, mp_spec_result *res, mp_error *err) {
    memset(res, 0, sizeof *res);
    sqlite3 *db = mp_store_db(st);
    sqlite3_stmt *s = NULL;
    double *m = NULL;
    int rc = 0;
    MP_TRY(mp_analysis_shape(st, &res->n_groups, &res->E, err));
    /* labels of the field and their token counts */
    if (sqlite3_prepare_v2(db, "SELECT value, n_tokens FROM label_totals WHERE field = ?1 ORDER BY value", -1, &s,
                           NULL) != SQLITE_OK)
        return db_fail(st, err, "reading label_totals");
    sqlite3_bind_text(s, 1, o->field, -1, SQLITE_STATIC);
    size_t cap = 0;
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if ((size_t)res->n_labels == cap) {
            cap = cap ? cap * 2 : 16;
            char **nl = realloc(res->labels, cap * sizeof *nl);
            int64_t *nt = nl ? realloc(res->label_tokens, cap * sizeof *nt) : NULL;
            if (nl) res->labels = nl;
            if (nt) res->label_tokens = nt;
            if (!nl || !nt) {
                rc = mp_fail(err, MP_ENOMEM, "out of memory");
                goto cleanup;
            }
        }
        const char *lv = (const char *)sqlite3_column_text(s, 0);
        if (!lv) { /* NULL despite NOT NULL: a hand-edited or damaged store */
            rc = mp_fail(err, MP_EINPUT, "%s: corrupt store: NULL value in label_totals (field '%.100s')",
                         mp_store_path(st), o->field);
            goto cleanup;
        }
        res->labels[res->n_labels] = strdup(lv);
        res->label_tokens[res->n_labels] = sqlite3_column_int64(s, 1);
        if (!res->labels[res->n_labels++]) {
            rc = mp_fail(err, MP_ENOMEM, "out of memory");
            goto cleanup;
        }
    }
    if (step != SQLITE_DONE) {
        rc = db_fail(st, err, "reading label_totals");
        goto cleanup;
    }
    sqlite3_finalize(s);
    s = NULL;
    if (res->n_labels == 0) {
        rc = mp_fail(err, MP_EINPUT, "%s: no statistics for label field '%s' (collect with --label-field %s)",
                     mp_store_path(st), o->field, o->field);
        goto cleanup;
    }
    if (res->n_labels < 2) {
        rc = mp_fail(err, MP_EINPUT, "%s: label field '%s' has a single value ('%s'): nothing to contrast",
                     mp_store_path(st), o->field, res->labels[0]);
        goto cleanup;
    }
    res->specialists = calloc((size_t)res->n_labels * (size_t)res->n_groups, sizeof *res->specialists);
    m = calloc((size_t)res->n_labels, sizeof *m);
    if (!res->specialists || !m) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    /* stream per-expert label statistics, grouped by expert */
    const char *sql =
        "SELECT l.grp, l.expert, l.value, l.n_active, l.sum_w, e.n_active FROM label_stats l "
        "JOIN expert_stats e ON e.grp = l.grp AND e.expert = l.expert WHERE l.field = ?1 ORDER BY l.grp, l.expert";
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        rc = db_fail(st, err, "reading label_stats");
        goto cleanup;
    }
    sqlite3_bind_text(s, 1, o->field, -1, SQLITE_STATIC);
    size_t ecap = 0;
    mp_spec_expert cur = {.group = -1};
    for (;;) {
        step = sqlite3_step(s);
        int g = step == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
        uint32_t ex = step == SQLITE_ROW ? (uint32_t)sqlite3_column_int64(s, 1) : 0;
        if (cur.group >= 0 && (step != SQLITE_ROW || g != cur.group || ex != cur.expert)) {
            decide(&cur, m, res->n_labels, o);
            if (res->n_experts == ecap) {
                ecap = ecap ? ecap * 2 : 1024;
                mp_spec_expert *ne = realloc(res->experts, ecap * sizeof *ne);
                if (!ne) {
                    rc = mp_fail(err, MP_ENOMEM, "out of memory");
                    goto cleanup;
                }
                res->experts = ne;
            }
            res->experts[res->n_experts++] = cur;
            if (cur.specialist && cur.group < res->n_groups)
                res->specialists[(size_t)cur.label * res->n_groups + (size_t)cur.group]++;
            memset(m, 0, (size_t)res->n_labels * sizeof *m);
            cur.group = -1;
        }
        if (step == SQLITE_DONE) break;
        if (step != SQLITE_ROW) {
            rc = db_fail(st, err, "reading label_stats");
            goto cleanup;
        }
        if (g < 0 || g >= res->n_groups || ex >= (uint32_t)res->E * (uint32_t)res->E) {
            rc = mp_fail(err, MP_EINPUT, "%s: corrupt label_stats row (group %d, expert %u)", mp_store_path(st), g, ex);
            goto cleanup;
        }
        cur.group = g;
        cur.expert = ex;
        cur.n_active = sqlite3_column_int64(s, 5);
        const char *v = (const char *)sqlite3_column_text(s, 2);
        int lo = 0, hi = res->n_labels - 1, c = -1;
        while (v && lo <= hi) { /* labels are sorted: binary search */
            int mid = (lo + hi) / 2, cmp = strcmp(res->labels[mid], v);
            if (!cmp) {
                c = mid;
                break;
            }
            if (cmp < 0) lo = mid + 1;
            else hi = mid - 1;
        }
        if (c < 0 || res->label_tokens[c] <= 0) continue;
        double num = o->measure == MP_MEASURE_FREQ ? (double)sqlite3_column_int64(s, 3) : sqlite3_column_double(s, 4);
        m[c] = num / (double)res->label_tokens[c];
    }
cleanup:
    sqlite3_finalize(s);
    free(m);
    if (rc < 0) mp_spec_result_free(res);
    return rc;
}

void mp_spec_result_free(mp_spec_result *res) {
    if (!res) return;
    for (int i = 0; i < res->n_labels; i++) free(res->labels[i]);
    free(res->labels);
    free(res->label_tokens);
    free(res->experts);
    free(res->specialists);
    memset(res, 0, sizeof *res);
}
