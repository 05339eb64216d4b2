/* cmd/cmd_experts.c — `monet-probe experts`: browse a collect store's experts
 * by activation statistics, overall or restricted to one label value. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/model/expert_addr.h"
#include "core/store/store.h"

static const char *ABOUT =
    "  List experts with their statistics, best first: count = tokens where the expert is active,\n"
    "  mean = mean activation over those tokens, max = highest activation (w_ij, shown in %).";

int cmd_experts(int argc, char **argv) {
    const char *store = NULL, *sort = "count", *label = NULL;
    long group = -1, limit = 20;
    int json = 0;
    const cli_opt opts[] = {
        CLI_OPT_STORE(&store, CLI_REQUIRED),
        {"--group", NULL, CLI_LONG, "R", &group, 0, 255, NULL, "only router group R (default: all)", 0, NULL, 0},
        {"--sort", NULL, CLI_CHOICE_STR, NULL, &sort, 0, 0, "count|max|mean", "sort key (default count)", 0, NULL, 0},
        CLI_OPT_LABEL_SELECT(&label,
                             "only tokens of documents whose label F is V (e.g. lang=Python, or a score\n"
                             "bucket toxicity=0.8-0.9): count and mean are over those tokens; rate =\n"
                             "count / tokens with that label; share = count / the expert's count"),
        {"--limit", NULL, CLI_LONG, "N", &limit, 1, 1099511627776.0, NULL, "rows to print (default 20)", 0, NULL, 0},
        CLI_OPT_JSON(&json),
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = "experts", .about = ABOUT, .opts = opts};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    mp_error err;
    mp_error_clear(&err);
    mp_store *st = NULL;
    sqlite3_stmt *q = NULL;
    char *field = NULL, *value = NULL, *ev = NULL;
    int rc = 0;
    long E = 0, n_groups = 0;
    double label_tokens = 0;
    if ((rc = mp_store_open(store, MP_STORE_READ, &st, &err)) < 0) goto cleanup;
    sqlite3 *db = mp_store_db(st);
    const char *keys[2] = {"moe_experts", "n_groups"};
    long *dst[2] = {&E, &n_groups};
    for (int k = 0; k < 2; k++) {
        if ((rc = mp_store_meta_get(st, keys[k], &ev, &err)) < 0) goto cleanup;
        if (rc == 0 || cli_parse_long(ev, 1, 1L << 30, dst[k])) {
            rc = mp_fail(&err, MP_EINPUT, "%s: corrupt store: bad metadata '%s'", store, keys[k]);
            goto cleanup;
        }
        free(ev);
        ev = NULL;
    }
    if (group >= n_groups) {
        rc = mp_fail(&err, MP_EINPUT, "%s: unknown router group %ld (the store has groups 0..%ld)", store, group,
                     n_groups - 1);
        goto cleanup;
    }
    if (label) {
        const char *eq = strchr(label, '=');
        field = strndup(label, (size_t)(eq - label));
        value = strdup(eq + 1);
        if (!field || !value) {
            rc = mp_fail(&err, MP_ENOMEM, "out of memory");
            goto cleanup;
        }
        /* the value as stored, matched case-insensitively (an exact match first), like purge */
        if (sqlite3_prepare_v2(db,
                               "SELECT n_tokens, value FROM label_totals WHERE field=?1 AND value=?2 COLLATE NOCASE "
                               "ORDER BY value=?2 DESC LIMIT 1",
                               -1, &q, NULL) != SQLITE_OK) {
            rc = mp_fail(&err, MP_EIO, "%s: %s", store, sqlite3_errmsg(db));
            goto cleanup;
        }
        sqlite3_bind_text(q, 1, field, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_ROW) {
            rc = mp_fail(&err, MP_EINPUT, "%s: no documents with label %s=%s (see: sqlite3 %s 'SELECT * FROM label_totals')",
                         store, field, value, store);
            goto cleanup;
        }
        label_tokens = (double)sqlite3_column_int64(q, 0);
        const unsigned char *stored = sqlite3_column_text(q, 1);
        char *v2 = stored ? strdup((const char *)stored) : NULL;
        if (!v2) {
            rc = mp_fail(&err, MP_ENOMEM, "out of memory");
            goto cleanup;
        }
        free(value);
        value = v2;
        sqlite3_finalize(q);
        q = NULL;
    }
    char sql[1024];
    const char *order = !strcmp(sort, "max") ? "max_w" : !strcmp(sort, "mean") ? "mean" : "cnt";
    if (label)
        snprintf(sql, sizeof sql,
                 "SELECT l.grp, l.expert, l.n_active AS cnt, l.sum_w / l.n_active AS mean, e.max_w, e.n_active "
                 "FROM label_stats l JOIN expert_stats e ON e.grp = l.grp AND e.expert = l.expert "
                 "WHERE l.field = ?1 AND l.value = ?2 AND (?3 < 0 OR l.grp = ?3) AND l.n_active > 0 "
                 "ORDER BY %s DESC, l.grp, l.expert LIMIT ?4",
                 order);
    else
        snprintf(sql, sizeof sql,
                 "SELECT grp, expert, n_active AS cnt, sum_w / n_active AS mean, max_w, n_active FROM expert_stats "
                 "WHERE (?3 < 0 OR grp = ?3) AND n_active > 0 ORDER BY %s DESC, grp, expert LIMIT ?4",
                 order);
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) {
        rc = mp_fail(&err, MP_EIO, "%s: %s", store, sqlite3_errmsg(db));
        goto cleanup;
    }
    if (label) {
        sqlite3_bind_text(q, 1, field, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(q, 3, group);
    sqlite3_bind_int64(q, 4, limit);
    if (json) {
        printf("{\"store\": ");
        cli_json_str(stdout, store);
        printf(", \"sort\": \"%s\", \"experts\": [", sort);
    }
    else if (label)
        printf("%5s %12s %8s %10s %8s %8s %8s %8s\n", "group", "expert", "id", label, "mean", "max", "rate", "share");
    else
        printf("%5s %12s %8s %10s %8s %8s\n", "group", "expert", "id", "count", "mean", "max");
    int step, k = 0;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        int g = sqlite3_column_int(q, 0);
        long e = (long)sqlite3_column_int64(q, 1);
        long long cnt = sqlite3_column_int64(q, 2), tot = sqlite3_column_int64(q, 5);
        double mean = sqlite3_column_double(q, 3), mx = sqlite3_column_double(q, 4);
        char ij[32];
        mp_expert_addr_format(ij, sizeof ij, g, (int)(e / E), (int)(e % E));
        if (json) {
            printf("%s\n {\"expert\": \"%s\", \"group\": %d, \"i\": %ld, \"j\": %ld, \"id\": %ld, \"count\": %lld, "
                   "\"mean\": %.9g, \"max\": %.9g",
                   k ? "," : "", ij, g, e / E, e % E, e, cnt, mean, mx);
            if (label)
                printf(", \"expert_count\": %lld, \"rate\": %.9g, \"share\": %.9g", tot,
                       label_tokens > 0 ? (double)cnt / label_tokens : 0.0, tot ? (double)cnt / (double)tot : 0.0);
            printf("}");
        } else if (label) {
            printf("%5d %12s %8ld %10lld %7.2f%% %7.2f%% %7.2f%% %7.2f%%\n", g, ij, e, cnt, 100 * mean, 100 * mx,
                   label_tokens > 0 ? 100.0 * (double)cnt / label_tokens : 0.0,
                   tot ? 100.0 * (double)cnt / (double)tot : 0.0);
        } else {
            printf("%5d %12s %8ld %10lld %7.2f%% %7.2f%%\n", g, ij, e, cnt, 100 * mean, 100 * mx);
        }
        k++;
    }
    if (step != SQLITE_DONE) {
        rc = mp_fail(&err, MP_EIO, "%s: %s", store, sqlite3_errmsg(db));
        goto cleanup;
    }
    if (json) printf("\n]}\n");
    rc = 0;
cleanup:
    sqlite3_finalize(q);
    free(field);
    free(value);
    free(ev);
    mp_store_close(st);
    return rc < 0 ? cli_exit_error(&err) : 0;
}
