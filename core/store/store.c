/* core/store/store.c — the collect store in SQLite (see store.h, docs/store.md).
 *
 * Schema (version 2; every table readable with the sqlite3 CLI):
 *   meta(key TEXT PRIMARY KEY, value TEXT)
 *       schema_version, monet_probe_version, model_path, model_hash,
 *       config_sha256, tokenizer_sha256, corpus, text_field, label_fields,
 *       score_fields, top_k, window, max_tokens, batch, shard ("i/n" or the
 *       merged shard list "0,1,2/3"), n_groups, moe_experts, moe_groups, n_layers
 *   files(name TEXT PRIMARY KEY, sha256 TEXT, data BLOB)
 *       config.json and tokenizer.model: the store decodes its own contexts
 *   progress(key TEXT PRIMARY KEY, value INTEGER)
 *       next_doc (first document index not yet consumed), documents, tokens,
 *       windows, batches, skipped_lines, finished (0/1)
 *   groups(grp INTEGER PRIMARY KEY, tokens INTEGER, active_experts INTEGER)
 *   expert_stats(grp, expert, n_active, sum_w, sum_w2, max_w)   PK (grp, expert)
 *   topk(grp, expert, w, doc, pos)                              PK (grp, expert, doc, pos)
 *       the K best hits of an expert, no order stored: best first is
 *       ORDER BY w DESC, doc, pos (view topk_ranked adds rank, 0 = best), so a
 *       commit only writes the hits that entered or left a top-K.
 *       w as REAL (the float32 value, exact); doc = global
 *       corpus document index; pos = token position in the document (BOS = 0).
 *       The token lies in window start = pos - pos % window of that document.
 *   windows(id INTEGER PRIMARY KEY, doc, start, n_tokens, ids BLOB) UNIQUE (doc, start)
 *       ids: 1 byte width (2 or 4), then n_tokens little-endian ids of that
 *       width, the whole compressed as one zstd frame (level 3)
 *   docs(doc INTEGER PRIMARY KEY, source TEXT, line INTEGER, labels TEXT)  labels: JSON object
 *   label_totals(field, value, n_tokens, n_docs)                PK (field, value)
 *   label_stats(grp, expert, field, value, n_active, sum_w)     PK (grp, expert, field, value)
 *   score_totals(field PRIMARY KEY, n, sum_y, sum_y2, n_docs, d_sum_y, d_sum_y2)
 *   score_stats(grp, expert, field, sum_x, sum_x2, sum_xy, d_sum_x, d_sum_x2, d_sum_xy)
 *                                                               PK (grp, expert, field)
 *   hist(grp, expert, bin, n)                                   PK (grp, expert, bin)
 *   qsamples(grp, expert, octave, w, doc, pos)                  PK (grp, expert, octave, doc, pos)
 *   label_topk(grp, expert, field, value, w, doc, pos)          PK (grp, expert, field, value, doc, pos)
 *   token_index(token, grp, expert, n, max_w)                   PK (token, grp, expert)
 *       the evidence tables (core/store/evidence.h; version 2)
 * Only windows/docs referenced by a topk, qsamples or label_topk row are kept
 * (mp_store_gc_*).
 */
#include "core/store/store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#include "core/store/evidence.h"
#include "core/util/file.h"

struct mp_store {
    sqlite3 *db;
    char *path;
};

static const char *SCHEMA =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE files(name TEXT PRIMARY KEY, sha256 TEXT NOT NULL, data BLOB NOT NULL);"
    "CREATE TABLE progress(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE groups(grp INTEGER PRIMARY KEY, tokens INTEGER NOT NULL, active_experts INTEGER NOT NULL);"
    "CREATE TABLE expert_stats(grp INTEGER NOT NULL, expert INTEGER NOT NULL, n_active INTEGER NOT NULL,"
    " sum_w REAL NOT NULL, sum_w2 REAL NOT NULL, max_w REAL NOT NULL, PRIMARY KEY(grp, expert)) WITHOUT ROWID;"
    "CREATE TABLE topk(grp INTEGER NOT NULL, expert INTEGER NOT NULL, w REAL NOT NULL,"
    " doc INTEGER NOT NULL, pos INTEGER NOT NULL, PRIMARY KEY(grp, expert, doc, pos)) WITHOUT ROWID;"
    "CREATE VIEW topk_ranked AS SELECT grp, expert, row_number() OVER (PARTITION BY grp, expert"
    " ORDER BY w DESC, doc, pos) - 1 AS rank, w, doc, pos FROM topk;"
    "CREATE TABLE windows(id INTEGER PRIMARY KEY, doc INTEGER NOT NULL, start INTEGER NOT NULL,"
    " n_tokens INTEGER NOT NULL, ids BLOB NOT NULL, UNIQUE(doc, start));"
    "CREATE TABLE docs(doc INTEGER PRIMARY KEY, source TEXT, line INTEGER, labels TEXT NOT NULL);"
    "CREATE TABLE label_totals(field TEXT NOT NULL, value TEXT NOT NULL, n_tokens INTEGER NOT NULL,"
    " n_docs INTEGER NOT NULL, PRIMARY KEY(field, value)) WITHOUT ROWID;"
    "CREATE TABLE label_stats(grp INTEGER NOT NULL, expert INTEGER NOT NULL, field TEXT NOT NULL,"
    " value TEXT NOT NULL, n_active INTEGER NOT NULL, sum_w REAL NOT NULL,"
    " PRIMARY KEY(grp, expert, field, value)) WITHOUT ROWID;"
    "CREATE TABLE score_totals(field TEXT PRIMARY KEY, n REAL NOT NULL, sum_y REAL NOT NULL,"
    " sum_y2 REAL NOT NULL, n_docs REAL NOT NULL, d_sum_y REAL NOT NULL, d_sum_y2 REAL NOT NULL);"
    "CREATE TABLE score_stats(grp INTEGER NOT NULL, expert INTEGER NOT NULL, field TEXT NOT NULL,"
    " sum_x REAL NOT NULL, sum_x2 REAL NOT NULL, sum_xy REAL NOT NULL, d_sum_x REAL NOT NULL,"
    " d_sum_x2 REAL NOT NULL, d_sum_xy REAL NOT NULL, PRIMARY KEY(grp, expert, field)) WITHOUT ROWID;"
    "CREATE TABLE hist(grp INTEGER NOT NULL, expert INTEGER NOT NULL, bin INTEGER NOT NULL, n INTEGER NOT NULL,"
    " PRIMARY KEY(grp, expert, bin)) WITHOUT ROWID;"
    "CREATE TABLE qsamples(grp INTEGER NOT NULL, expert INTEGER NOT NULL, octave INTEGER NOT NULL, w REAL NOT NULL,"
    " doc INTEGER NOT NULL, pos INTEGER NOT NULL, PRIMARY KEY(grp, expert, octave, doc, pos)) WITHOUT ROWID;"
    "CREATE TABLE label_topk(grp INTEGER NOT NULL, expert INTEGER NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL,"
    " w REAL NOT NULL, doc INTEGER NOT NULL, pos INTEGER NOT NULL,"
    " PRIMARY KEY(grp, expert, field, value, doc, pos)) WITHOUT ROWID;"
    "CREATE TABLE token_index(token INTEGER NOT NULL, grp INTEGER NOT NULL, expert INTEGER NOT NULL,"
    " n INTEGER NOT NULL, max_w REAL NOT NULL, PRIMARY KEY(token, grp, expert)) WITHOUT ROWID;";

static const char *TABLES[] = {"meta", "files", "progress", "groups", "expert_stats", "topk", "windows",
                               "docs", "label_totals", "label_stats", "score_totals", "score_stats",
                               "hist", "qsamples", "label_topk", "token_index"};

/* The library code for the database's last error: a full disk, an I/O error
 * or a lock is the environment's failure (MP_ERESOURCE, exit 3). */
static int sq_code(sqlite3 *db) {
    switch (sqlite3_errcode(db) & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_NOMEM:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY: return MP_ERESOURCE;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return MP_EINPUT;
    default: return MP_EIO;
    }
}

static int sqerr(mp_store *st, mp_error *err, const char *what) {
    return mp_fail(err, sq_code(st->db), "%s: %s: %s", st->path, what, sqlite3_errmsg(st->db));
}

int mp_store_exec(mp_store *st, const char *sql, mp_error *err) {
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = mp_fail(err, sq_code(st->db), "%s: %s", st->path, msg ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

static int prep(mp_store *st, const char *sql, sqlite3_stmt **s, mp_error *err) {
    if (sqlite3_prepare_v2(st->db, sql, -1, s, NULL) != SQLITE_OK) return sqerr(st, err, "prepare");
    return 0;
}

int mp_store_prepare(mp_store *st, const char *sql, sqlite3_stmt **s, mp_error *err) { return prep(st, sql, s, err); }
int mp_store_sqlerr(mp_store *st, const char *what, mp_error *err) { return sqerr(st, err, what); }
int mp_store_corrupt(mp_store *st, const char *table, mp_error *err) {
    return mp_fail(err, MP_EINPUT, "%s: corrupt store: bad row in table %s", st->path, table);
}

/* Validate an existing file: a SQLite database with our tables and version. */
static int validate(mp_store *st, mp_error *err) {
    sqlite3_stmt *s = NULL;
    int rc = 0, found = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT name FROM sqlite_master WHERE type='table'", -1, &s, NULL) != SQLITE_OK)
        return mp_fail(err, MP_EINPUT, "%s: not a monet-probe store (%s)", st->path, sqlite3_errmsg(st->db));
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        const char *n = (const char *)sqlite3_column_text(s, 0);
        for (size_t i = 0; n && i < sizeof TABLES / sizeof *TABLES; i++)
            if (!strcmp(n, TABLES[i])) found |= 1 << i;
    }
    if (step != SQLITE_DONE) {
        rc = mp_fail(err, MP_EINPUT, "%s: not a monet-probe store (%s)", st->path, sqlite3_errmsg(st->db));
        goto cleanup;
    }
    for (size_t i = 0; i < sizeof TABLES / sizeof *TABLES; i++)
        if (!(found & 1 << i)) {
            rc = mp_fail(err, MP_EINPUT, "%s: not a monet-probe store (table '%s' missing)", st->path, TABLES[i]);
            goto cleanup;
        }
    char *v = NULL;
    int r = mp_store_meta_get(st, "schema_version", &v, err);
    if (r < 0) {
        char why[MP_ERRMSG_MAX]; /* never format err->msg into itself */
        snprintf(why, sizeof why, "%s", err ? err->msg : "");
        rc = mp_fail(err, MP_EINPUT, "%s: not a monet-probe store (%.300s)", st->path, why);
        goto cleanup;
    }
    if (r == 0) {
        rc = mp_fail(err, MP_EINPUT, "%s: not a monet-probe store (no schema_version)", st->path);
        goto cleanup;
    }
    if (atoi(v) != MP_STORE_SCHEMA_VERSION)
        rc = mp_fail(err, MP_EINPUT, "%s: store schema version %s, this monet-probe reads version %d (re-run collect)",
                     st->path, v, MP_STORE_SCHEMA_VERSION);
    free(v);
cleanup:
    sqlite3_finalize(s);
    return rc;
}

int mp_store_open(const char *path, int mode, mp_store **out, mp_error *err) {
    *out = NULL;
    struct stat sb;
    int exists = stat(path, &sb) == 0;
    MP_FAIL_IF(mode != MP_STORE_CREATE && !exists, err, MP_EIO, "%s: cannot open store: %s", path, strerror(errno));
    MP_FAIL_IF(mode == MP_STORE_CREATE && exists, err, MP_EINPUT, "%s: already exists", path);
    MP_FAIL_IF(exists && !S_ISREG(sb.st_mode), err, MP_EINPUT, "%s: not a regular file", path);
    mp_store *st = calloc(1, sizeof *st);
    if (!st) return mp_fail(err, MP_ENOMEM, "out of memory");
    int rc = 0;
    st->path = strdup(path);
    if (!st->path) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto fail;
    }
    int flags = mode == MP_STORE_READ ? SQLITE_OPEN_READONLY
                                      : SQLITE_OPEN_READWRITE | (mode == MP_STORE_CREATE ? SQLITE_OPEN_CREATE : 0);
    flags |= SQLITE_OPEN_NOMUTEX; /* one thread at a time uses a store (collect hands it over through its pipe) */
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
        rc = mp_fail(err, MP_EIO, "%s: cannot open store: %s", path, st->db ? sqlite3_errmsg(st->db) : "no memory");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 10000);
    sqlite3_extended_result_codes(st->db, 0);
    if (mode == MP_STORE_CREATE) {
        char ver[128];
        snprintf(ver, sizeof ver, "INSERT INTO meta VALUES('schema_version', '%d');", MP_STORE_SCHEMA_VERSION);
        if ((rc = mp_store_exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", err)) < 0 ||
            (rc = mp_store_exec(st, "BEGIN", err)) < 0 || (rc = mp_store_exec(st, SCHEMA, err)) < 0 ||
            (rc = mp_store_exec(st, ver, err)) < 0 || (rc = mp_store_exec(st, "COMMIT", err)) < 0)
            goto fail;
    } else {
        if ((rc = validate(st, err)) < 0) goto fail;
        if (mode == MP_STORE_WRITE &&
            (rc = mp_store_exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-131072;",
                                err)) < 0)
            goto fail;
    }
    *out = st;
    return 0;
fail:
    mp_store_close(st);
    return rc;
}

void mp_store_close(mp_store *st) {
    if (!st) return;
    if (st->db) sqlite3_close(st->db);
    free(st->path);
    free(st);
}

int mp_store_close_checked(mp_store *st, mp_error *err) {
    if (!st) return 0;
    int rc = 0, busy = 1, logn = -1, done = -2;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &s, NULL) != SQLITE_OK) {
        rc = sqerr(st, err, "checkpoint");
    } else if (sqlite3_step(s) != SQLITE_ROW) {
        rc = sqerr(st, err, "checkpoint");
    } else {
        busy = sqlite3_column_int(s, 0);
        logn = sqlite3_column_int(s, 1);
        done = sqlite3_column_int(s, 2);
        if (busy || logn != done)
            rc = mp_fail(err, MP_ERESOURCE, "%s: checkpoint incomplete (%d of %d pages written back)", st->path, done,
                         logn);
    }
    sqlite3_finalize(s);
    if (rc == 0 && sqlite3_close(st->db) != SQLITE_OK) {
        rc = sqerr(st, err, "close");
        sqlite3_close_v2(st->db);
    } else if (rc < 0) {
        sqlite3_close(st->db);
    }
    st->db = NULL;
    mp_store_close(st);
    return rc;
}

int mp_store_meta_int(mp_store *st, const char *key, long lo, long hi, int required, long *val, mp_error *err) {
    char *v = NULL, *end = NULL;
    int r = mp_store_meta_get(st, key, &v, err);
    if (r < 0) return r;
    if (r == 0) {
        MP_FAIL_IF(required, err, MP_EINPUT, "%s: corrupt store: no '%s' metadata", st->path, key);
        return 0;
    }
    errno = 0;
    long x = strtol(v, &end, 10);
    int bad = end == v || *end || errno || x < lo || x > hi;
    if (bad) {
        int rc = mp_fail(err, MP_EINPUT, "%s: corrupt store: meta '%s' = '%.40s' is not an integer in %ld..%ld",
                         st->path, key, v, lo, hi);
        free(v);
        return rc;
    }
    free(v);
    *val = x;
    return 1;
}

int mp_store_shape_read(mp_store *st, mp_store_shape *sh, mp_error *err) {
    static const struct { const char *key; long hi; } K[6] = {
        {"n_groups", MP_STORE_MAX_GROUPS}, {"moe_experts", MP_STORE_MAX_EXPERTS}, {"moe_groups", MP_STORE_MAX_LAYERS},
        {"n_layers", MP_STORE_MAX_LAYERS}, {"window", MP_STORE_MAX_WINDOW},      {"top_k", MP_ACC_MAX_K}};
    int *dst[6] = {&sh->n_groups, &sh->E, &sh->moe_groups, &sh->n_layers, &sh->window, &sh->top_k};
    for (int k = 0; k < 6; k++) {
        long v = 0;
        MP_TRY(mp_store_meta_int(st, K[k].key, 1, K[k].hi, 1, &v, err));
        *dst[k] = (int)v;
    }
    return 0;
}

int mp_store_lock(const char *path, struct mp_lock **lock, mp_error *err) {
    char lp[4200];
    MP_FAIL_IF(strlen(path) > 4000, err, MP_EINPUT, "%.60s...: store path too long", path);
    snprintf(lp, sizeof lp, "%s.lock", path);
    return mp_lock_acquire(lp, path, lock, err);
}

sqlite3 *mp_store_db(mp_store *st) { return st->db; }
const char *mp_store_path(const mp_store *st) { return st->path; }

int mp_store_begin(mp_store *st, mp_error *err) { return mp_store_exec(st, "BEGIN IMMEDIATE", err); }
int mp_store_commit(mp_store *st, mp_error *err) { return mp_store_exec(st, "COMMIT", err); }
void mp_store_rollback(mp_store *st) {
    if (!sqlite3_get_autocommit(st->db)) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

int mp_store_meta_get(mp_store *st, const char *key, char **val, mp_error *err) {
    sqlite3_stmt *s = NULL;
    *val = NULL;
    if (sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key=?", -1, &s, NULL) != SQLITE_OK)
        return sqerr(st, err, "meta");
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rc = 0, step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        *val = strdup(t ? t : "");
        rc = *val ? 1 : mp_fail(err, MP_ENOMEM, "out of memory");
    } else if (step != SQLITE_DONE) {
        rc = sqerr(st, err, "meta");
    }
    sqlite3_finalize(s);
    return rc;
}

static int kv_set(mp_store *st, const char *sql, const char *key, const char *sval, int64_t ival, mp_error *err) {
    sqlite3_stmt *s = NULL;
    MP_TRY(prep(st, sql, &s, err));
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    if (sval) sqlite3_bind_text(s, 2, sval, -1, SQLITE_STATIC);
    else sqlite3_bind_int64(s, 2, ival);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : sqerr(st, err, key);
    sqlite3_finalize(s);
    return rc;
}

int mp_store_meta_set(mp_store *st, const char *key, const char *val, mp_error *err) {
    return kv_set(st, "INSERT OR REPLACE INTO meta VALUES(?, ?)", key, val, 0, err);
}

int mp_store_progress_set(mp_store *st, const char *key, int64_t val, mp_error *err) {
    return kv_set(st, "INSERT OR REPLACE INTO progress VALUES(?, ?)", key, NULL, val, err);
}

int mp_store_progress_find(mp_store *st, const char *key, int64_t *val, int *found, mp_error *err) {
    sqlite3_stmt *s = NULL;
    *found = 0;
    MP_TRY(prep(st, "SELECT value FROM progress WHERE key=?", &s, err));
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int step = sqlite3_step(s), rc = 0;
    if (step == SQLITE_ROW) {
        *val = sqlite3_column_int64(s, 0);
        *found = 1;
    } else if (step != SQLITE_DONE) {
        rc = sqerr(st, err, "progress");
    }
    sqlite3_finalize(s);
    return rc;
}

int mp_store_progress_get(mp_store *st, const char *key, int64_t *val, mp_error *err) {
    int found;
    *val = 0;
    return mp_store_progress_find(st, key, val, &found, err);
}

int mp_store_put_file(mp_store *st, const char *name, const void *data, size_t len, const char *sha256,
                      mp_error *err) {
    sqlite3_stmt *s = NULL;
    MP_TRY(prep(st, "INSERT OR REPLACE INTO files VALUES(?, ?, ?)", &s, err));
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, sha256, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(s, 3, data, len, SQLITE_STATIC);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : sqerr(st, err, "files");
    sqlite3_finalize(s);
    return rc;
}

int mp_store_get_file(mp_store *st, const char *name, void **data, size_t *len, mp_error *err) {
    sqlite3_stmt *s = NULL;
    *data = NULL;
    *len = 0;
    MP_TRY(prep(st, "SELECT data FROM files WHERE name=?", &s, err));
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int step = sqlite3_step(s), rc = 0;
    if (step == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(s, 0);
        void *d = malloc(n ? n : 1);
        if (!d) rc = mp_fail(err, MP_ENOMEM, "out of memory");
        else {
            if (n) memcpy(d, sqlite3_column_blob(s, 0), n);
            *data = d;
            *len = n;
            rc = 1;
        }
    } else if (step != SQLITE_DONE) {
        rc = sqerr(st, err, "files");
    }
    sqlite3_finalize(s);
    return rc;
}

/* ---------------------------------------------------------------- windows, docs */

int mp_store_put_window(mp_store *st, uint64_t doc, uint32_t start, const int32_t *ids, size_t n, mp_error *err) {
    int width = 2;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] > 65535) width = 4;
    size_t raw_len = 1 + n * (size_t)width;
    uint8_t *raw = malloc(raw_len);
    size_t cap = ZSTD_compressBound(raw_len);
    void *z = malloc(cap);
    sqlite3_stmt *s = NULL;
    int rc = 0;
    if (!raw || !z) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    raw[0] = (uint8_t)width;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        for (int b = 0; b < width; b++) raw[1 + i * (size_t)width + (size_t)b] = (uint8_t)(v >> (8 * b));
    }
    size_t zl = ZSTD_compress(z, cap, raw, raw_len, 3);
    if (ZSTD_isError(zl)) {
        rc = mp_fail(err, MP_EINTERNAL, "zstd: %s", ZSTD_getErrorName(zl));
        goto cleanup;
    }
    if ((rc = prep(st, "INSERT OR IGNORE INTO windows(doc, start, n_tokens, ids) VALUES(?, ?, ?, ?)", &s, err)) < 0)
        goto cleanup;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)doc);
    sqlite3_bind_int64(s, 2, start);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)n);
    sqlite3_bind_blob64(s, 4, z, zl, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE) rc = sqerr(st, err, "windows");
cleanup:
    sqlite3_finalize(s);
    free(raw);
    free(z);
    return rc;
}

int mp_store_get_window(mp_store *st, uint64_t doc, uint32_t start, int32_t **ids, size_t *n, mp_error *err) {
    sqlite3_stmt *s = NULL;
    uint8_t *raw = NULL;
    int32_t *v = NULL;
    *ids = NULL;
    *n = 0;
    MP_TRY(prep(st, "SELECT n_tokens, ids FROM windows WHERE doc=? AND start=?", &s, err));
    sqlite3_bind_int64(s, 1, (sqlite3_int64)doc);
    sqlite3_bind_int64(s, 2, start);
    int rc = 0, step = sqlite3_step(s);
    if (step == SQLITE_DONE) goto cleanup;
    if (step != SQLITE_ROW) {
        rc = sqerr(st, err, "windows");
        goto cleanup;
    }
    int64_t cnt = sqlite3_column_int64(s, 0);
    const void *z = sqlite3_column_blob(s, 1);
    size_t zl = (size_t)sqlite3_column_bytes(s, 1);
    unsigned long long rl = z ? ZSTD_getFrameContentSize(z, zl) : ZSTD_CONTENTSIZE_ERROR;
    if (cnt < 0 || cnt > (1 << 24) || rl == ZSTD_CONTENTSIZE_ERROR || rl == ZSTD_CONTENTSIZE_UNKNOWN ||
        rl < 1 || rl > (1ULL << 27)) {
        rc = mp_fail(err, MP_EINPUT, "%s: corrupt window blob (document %llu, start %u)", st->path,
                     (unsigned long long)doc, start);
        goto cleanup;
    }
    raw = malloc((size_t)rl);
    v = malloc(((size_t)cnt ? (size_t)cnt : 1) * sizeof *v);
    if (!raw || !v) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    size_t got = ZSTD_decompress(raw, (size_t)rl, z, zl);
    int width = got >= 1 && !ZSTD_isError(got) ? raw[0] : 0;
    if ((width != 2 && width != 4) || got != 1 + (size_t)cnt * (size_t)width) {
        rc = mp_fail(err, MP_EINPUT, "%s: corrupt window blob (document %llu, start %u)", st->path,
                     (unsigned long long)doc, start);
        goto cleanup;
    }
    for (int64_t i = 0; i < cnt; i++) {
        uint32_t x = 0;
        for (int b = 0; b < width; b++) x |= (uint32_t)raw[1 + (size_t)i * (size_t)width + (size_t)b] << (8 * b);
        v[i] = (int32_t)x;
    }
    *ids = v;
    *n = (size_t)cnt;
    v = NULL;
    rc = 1;
cleanup:
    sqlite3_finalize(s);
    free(raw);
    free(v);
    return rc;
}

int mp_store_put_doc(mp_store *st, uint64_t doc, const char *source, int64_t line, const char *labels_json,
                     mp_error *err) {
    sqlite3_stmt *s = NULL;
    MP_TRY(prep(st, "INSERT OR IGNORE INTO docs VALUES(?, ?, ?, ?)", &s, err));
    sqlite3_bind_int64(s, 1, (sqlite3_int64)doc);
    sqlite3_bind_text(s, 2, source ? source : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, line);
    sqlite3_bind_text(s, 4, labels_json ? labels_json : "{}", -1, SQLITE_STATIC);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : sqerr(st, err, "docs");
    sqlite3_finalize(s);
    return rc;
}

int mp_store_get_doc(mp_store *st, uint64_t doc, char **labels_json, char **source, int64_t *line, mp_error *err) {
    sqlite3_stmt *s = NULL;
    *labels_json = NULL;
    *source = NULL;
    *line = 0;
    MP_TRY(prep(st, "SELECT labels, source, line FROM docs WHERE doc=?", &s, err));
    sqlite3_bind_int64(s, 1, (sqlite3_int64)doc);
    int rc = 0, step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        const char *l = (const char *)sqlite3_column_text(s, 0), *src = (const char *)sqlite3_column_text(s, 1);
        *labels_json = strdup(l ? l : "{}");
        *source = strdup(src ? src : "");
        *line = sqlite3_column_int64(s, 2);
        rc = *labels_json && *source ? 1 : mp_fail(err, MP_ENOMEM, "out of memory");
    } else if (step != SQLITE_DONE) {
        rc = sqerr(st, err, "docs");
    }
    sqlite3_finalize(s);
    return rc;
}

int mp_store_gc_windows(mp_store *st, const mp_acc *a, const mp_topk_slot *wins, size_t n, int window,
                        mp_error *err) {
    if (n == 0) return 0;
    sqlite3_stmt *s = NULL, *d = NULL;
    uint8_t *live = calloc(n, 1);
    if (!live) return mp_fail(err, MP_ENOMEM, "out of memory (%zu windows)", n);
    mp_acc_mark_windows(a, wins, n, (uint32_t)window, live);
    int rc = 0;
    if ((rc = prep(st, "DELETE FROM windows WHERE doc=?1 AND start=?2", &s, err)) < 0 ||
        (rc = prep(st, "DELETE FROM docs WHERE doc=?1 AND NOT EXISTS (SELECT 1 FROM windows WHERE windows.doc=?1)",
                   &d, err)) < 0)
        goto cleanup;
    for (size_t k = 0; k < n; k++) {
        if (live[k]) continue;
        sqlite3_reset(s);
        sqlite3_bind_int64(s, 1, (sqlite3_int64)wins[k].doc);
        sqlite3_bind_int64(s, 2, wins[k].pos);
        if (sqlite3_step(s) != SQLITE_DONE) {
            rc = sqerr(st, err, "gc");
            goto cleanup;
        }
        if (sqlite3_changes(st->db) == 0) continue;
        sqlite3_reset(d);
        sqlite3_bind_int64(d, 1, (sqlite3_int64)wins[k].doc);
        if (sqlite3_step(d) != SQLITE_DONE) {
            rc = sqerr(st, err, "gc");
            goto cleanup;
        }
    }
cleanup:
    sqlite3_finalize(s);
    sqlite3_finalize(d);
    free(live);
    return rc;
}

int mp_store_gc_all(mp_store *st, const mp_acc *a, int window, mp_error *err) {
    sqlite3_stmt *s = NULL;
    mp_topk_slot *wins = NULL;
    size_t n = 0, cap = 0;
    int rc = prep(st, "SELECT doc, start FROM windows ORDER BY doc, start", &s, err), step;
    while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
        sqlite3_int64 doc = sqlite3_column_int64(s, 0), start = sqlite3_column_int64(s, 1);
        if (doc < 0 || start < 0 || start > UINT32_MAX || start % window) {
            rc = mp_store_corrupt(st, "windows", err);
            break;
        }
        rc = mp_evid_push_ref(&wins, &n, &cap, (mp_topk_slot){0, (uint32_t)start, (uint64_t)doc}, err);
    }
    if (rc == 0 && step != SQLITE_DONE) rc = sqerr(st, err, "windows");
    sqlite3_finalize(s);
    if (rc == 0) rc = mp_store_gc_windows(st, a, wins, n, window, err);
    if (rc == 0) rc = mp_store_exec(st, "DELETE FROM docs WHERE NOT EXISTS (SELECT 1 FROM windows WHERE windows.doc=docs.doc)", err);
    free(wins);
    return rc;
}

int64_t mp_store_file_bytes(const char *path) {
    struct stat sb;
    int64_t total = 0;
    char wal[4096];
    if (stat(path, &sb) == 0) total += sb.st_size;
    snprintf(wal, sizeof wal, "%s-wal", path);
    if (stat(wal, &sb) == 0) total += sb.st_size;
    return total;
}

/* ---------------------------------------------------------------- accumulators */

enum { S_DEL_HIT, S_INS_TOPK, S_STAT, S_LABEL, S_SCORE, S_GROUP, S_LTOT, S_STOT, S_N };

static int save_expert(mp_store *st, const mp_acc *a, sqlite3_stmt **s, size_t x, int bits, uint64_t first_doc,
                       mp_error *err) {
    int g = (int)(x / a->n_experts);
    uint32_t e = (uint32_t)(x % a->n_experts);
    const mp_topk_slot *h = a->slots + x * (size_t)a->K;
    for (int r = 0; (bits & MP_DIRTY_TOPK) && r < a->count[x]; r++) {
        if (h[r].doc < first_doc) continue; /* written by an earlier commit */
        sqlite3_stmt *q = s[S_INS_TOPK];
        sqlite3_reset(q);
        sqlite3_bind_int(q, 1, g);
        sqlite3_bind_int64(q, 2, e);
        sqlite3_bind_double(q, 3, h[r].w);
        sqlite3_bind_int64(q, 4, (sqlite3_int64)h[r].doc);
        sqlite3_bind_int64(q, 5, h[r].pos);
        if (sqlite3_step(q) != SQLITE_DONE) return sqerr(st, err, "topk");
    }
    if (!(bits & MP_DIRTY_STATS)) return 0;
    const mp_expert_stat *es = &a->stats[x];
    sqlite3_stmt *q = s[S_STAT];
    sqlite3_reset(q);
    sqlite3_bind_int(q, 1, g);
    sqlite3_bind_int64(q, 2, e);
    sqlite3_bind_int64(q, 3, (sqlite3_int64)es->n);
    sqlite3_bind_double(q, 4, es->sum);
    sqlite3_bind_double(q, 5, es->sum2);
    sqlite3_bind_double(q, 6, es->max);
    if (sqlite3_step(q) != SQLITE_DONE) return sqerr(st, err, "expert_stats");
    return 0;
}

int mp_store_save_acc(mp_store *st, const mp_acc *a, int all, uint64_t first_doc, mp_error *err) {
    static const char *SQL[S_N] = {
        "DELETE FROM topk WHERE grp=? AND expert=? AND doc=? AND pos=?",
        "INSERT OR REPLACE INTO topk VALUES(?, ?, ?, ?, ?)",
        "INSERT OR REPLACE INTO expert_stats VALUES(?, ?, ?, ?, ?, ?)",
        "INSERT OR REPLACE INTO label_stats VALUES(?, ?, ?, ?, ?, ?)",
        "INSERT OR REPLACE INTO score_stats VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "INSERT OR REPLACE INTO groups VALUES(?, ?, ?)",
        "INSERT OR REPLACE INTO label_totals VALUES(?, ?, ?, ?)",
        "INSERT OR REPLACE INTO score_totals VALUES(?, ?, ?, ?, ?, ?, ?)",
    };
    sqlite3_stmt *s[S_N] = {0};
    int rc = 0;
    for (int i = 0; i < S_N; i++)
        if ((rc = prep(st, SQL[i], &s[i], err)) < 0) goto cleanup;
    if (all) {
        size_t ne = (size_t)a->n_groups * a->n_experts;
        for (size_t x = 0; x < ne; x++)
            if (a->stats[x].n > 0 && (rc = save_expert(st, a, s, x, MP_DIRTY_STATS | MP_DIRTY_TOPK, 0, err)) < 0)
                goto cleanup;
    } else {
        /* hits that left a top-K since the last commit and had been written */
        for (size_t i = 0; i < a->n_evicted; i++) {
            const mp_topk_slot *ev = &a->evicted[i];
            if (ev->doc >= first_doc) continue;
            sqlite3_stmt *q = s[S_DEL_HIT];
            sqlite3_reset(q);
            sqlite3_bind_int64(q, 1, a->evicted_x[i] / a->n_experts);
            sqlite3_bind_int64(q, 2, a->evicted_x[i] % a->n_experts);
            sqlite3_bind_int64(q, 3, (sqlite3_int64)ev->doc);
            sqlite3_bind_int64(q, 4, ev->pos);
            if (sqlite3_step(q) != SQLITE_DONE) {
                rc = sqerr(st, err, "topk");
                goto cleanup;
            }
        }
        for (size_t i = 0; i < a->n_dirty; i++) {
            uint32_t x = a->dirty_list[i];
            if ((rc = save_expert(st, a, s, x, a->dirty[x], first_doc, err)) < 0) goto cleanup;
        }
    }
    for (size_t i = 0; i < a->label.cap; i++) {
        uint64_t k = a->label.keys[i];
        if (k == MP_SMAP_EMPTY || (!all && !a->label.dirty[i])) continue;
        int g, f, v;
        uint32_t e;
        mp_label_key_split(k, &g, &f, &v, &e);
        const double *d = a->label.vals + i * 2;
        sqlite3_stmt *q = s[S_LABEL];
        sqlite3_reset(q);
        sqlite3_bind_int(q, 1, g);
        sqlite3_bind_int64(q, 2, e);
        sqlite3_bind_text(q, 3, a->fields[f].name, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, a->fields[f].values[v], -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 5, (sqlite3_int64)d[0]);
        sqlite3_bind_double(q, 6, d[1]);
        if (sqlite3_step(q) != SQLITE_DONE) {
            rc = sqerr(st, err, "label_stats");
            goto cleanup;
        }
    }
    for (size_t i = 0; i < a->score.cap; i++) {
        uint64_t k = a->score.keys[i];
        if (k == MP_SMAP_EMPTY || (!all && !a->score.dirty[i])) continue;
        int g, f, v;
        uint32_t e;
        mp_label_key_split(k, &g, &f, &v, &e);
        const double *d = a->score.vals + i * 6;
        sqlite3_stmt *q = s[S_SCORE];
        sqlite3_reset(q);
        sqlite3_bind_int(q, 1, g);
        sqlite3_bind_int64(q, 2, e);
        sqlite3_bind_text(q, 3, a->fields[f].name, -1, SQLITE_STATIC);
        for (int j = 0; j < 6; j++) sqlite3_bind_double(q, 4 + j, d[j]);
        if (sqlite3_step(q) != SQLITE_DONE) {
            rc = sqerr(st, err, "score_stats");
            goto cleanup;
        }
    }
    for (int g = 0; g < a->n_groups; g++) {
        sqlite3_stmt *q = s[S_GROUP];
        sqlite3_reset(q);
        sqlite3_bind_int(q, 1, g);
        sqlite3_bind_int64(q, 2, (sqlite3_int64)a->group_tokens[g]);
        sqlite3_bind_int64(q, 3, (sqlite3_int64)a->group_active[g]);
        if (sqlite3_step(q) != SQLITE_DONE) {
            rc = sqerr(st, err, "groups");
            goto cleanup;
        }
    }
    for (int f = 0; f < a->n_fields; f++) {
        const mp_field *fd = &a->fields[f];
        for (int v = 0; v < fd->n_values; v++) {
            sqlite3_stmt *q = s[S_LTOT];
            sqlite3_reset(q);
            sqlite3_bind_text(q, 1, fd->name, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 2, fd->values[v], -1, SQLITE_STATIC);
            sqlite3_bind_int64(q, 3, (sqlite3_int64)fd->val_tokens[v]);
            sqlite3_bind_int64(q, 4, (sqlite3_int64)fd->val_docs[v]);
            if (sqlite3_step(q) != SQLITE_DONE) {
                rc = sqerr(st, err, "label_totals");
                goto cleanup;
            }
        }
        if (!fd->is_score) continue;
        sqlite3_stmt *q = s[S_STOT];
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, fd->name, -1, SQLITE_STATIC);
        double t[6] = {fd->sc_n, fd->sc_sy, fd->sc_syy, fd->sc_dn, fd->sc_dsy, fd->sc_dsyy};
        for (int j = 0; j < 6; j++) sqlite3_bind_double(q, 2 + j, t[j]);
        if (sqlite3_step(q) != SQLITE_DONE) {
            rc = sqerr(st, err, "score_totals");
            goto cleanup;
        }
    }
    rc = mp_evid_save(st, a, all, first_doc, err);
cleanup:
    for (int i = 0; i < S_N; i++) sqlite3_finalize(s[i]);
    return rc;
}

static int field_index(const mp_acc *a, const char *name) {
    for (int f = 0; f < a->n_fields; f++)
        if (!strcmp(a->fields[f].name, name)) return f;
    return -1;
}

static int corrupt(mp_store *st, mp_error *err, const char *table) {
    return mp_fail(err, MP_EINPUT, "%s: corrupt store: bad row in table %s", st->path, table);
}

int mp_store_load_acc(mp_store *st, mp_acc *a, mp_error *err) {
    sqlite3_stmt *s = NULL;
    int rc = 0, step;
    /* top-K rows */
    if ((rc = prep(st, "SELECT grp, expert, w, doc, pos FROM topk", &s, err)) < 0) goto cleanup;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t g = sqlite3_column_int64(s, 0), e = sqlite3_column_int64(s, 1);
        if (g < 0 || g >= a->n_groups || e < 0 || e >= a->n_experts) {
            rc = corrupt(st, err, "topk");
            goto cleanup;
        }
        mp_topk_slot hit = {(float)sqlite3_column_double(s, 2), (uint32_t)sqlite3_column_int64(s, 4),
                            (uint64_t)sqlite3_column_int64(s, 3)};
        if ((rc = mp_acc_offer(a, (int)g, (uint32_t)e, hit, err)) < 0) goto cleanup;
    }
    if (step != SQLITE_DONE) goto sql_fail;
    sqlite3_finalize(s);
    s = NULL;
    /* dense statistics */
    if ((rc = prep(st, "SELECT grp, expert, n_active, sum_w, sum_w2, max_w FROM expert_stats", &s, err)) < 0)
        goto cleanup;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t g = sqlite3_column_int64(s, 0), e = sqlite3_column_int64(s, 1);
        if (g < 0 || g >= a->n_groups || e < 0 || e >= a->n_experts) {
            rc = corrupt(st, err, "expert_stats");
            goto cleanup;
        }
        mp_expert_stat *es = &a->stats[(size_t)g * a->n_experts + (size_t)e];
        int64_t n = sqlite3_column_int64(s, 2);
        if (es->n == 0 && n > 0) a->group_active[g]++;
        es->n += (uint64_t)n;
        es->sum += sqlite3_column_double(s, 3);
        es->sum2 += sqlite3_column_double(s, 4);
        float mx = (float)sqlite3_column_double(s, 5);
        if (mx > es->max) es->max = mx;
    }
    if (step != SQLITE_DONE) goto sql_fail;
    sqlite3_finalize(s);
    s = NULL;
    if ((rc = prep(st, "SELECT grp, tokens FROM groups", &s, err)) < 0) goto cleanup;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t g = sqlite3_column_int64(s, 0);
        if (g < 0 || g >= a->n_groups) {
            rc = corrupt(st, err, "groups");
            goto cleanup;
        }
        a->group_tokens[g] += (uint64_t)sqlite3_column_int64(s, 1);
    }
    if (step != SQLITE_DONE) goto sql_fail;
    sqlite3_finalize(s);
    s = NULL;
    /* label totals and statistics */
    if ((rc = prep(st, "SELECT field, value, n_tokens, n_docs FROM label_totals ORDER BY field, value", &s, err)) < 0)
        goto cleanup;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        const char *fn = (const char *)sqlite3_column_text(s, 0), *vn = (const char *)sqlite3_column_text(s, 1);
        int f = fn ? field_index(a, fn) : -1;
        if (f < 0 || !vn) {
            rc = corrupt(st, err, "label_totals");
            goto cleanup;
        }
        int v = mp_acc_value_id(a, f, vn, err);
        if ((rc = v) < 0) goto cleanup;
        rc = 0;
        a->fields[f].val_tokens[v] += (uint64_t)sqlite3_column_int64(s, 2);
        a->fields[f].val_docs[v] += (uint64_t)sqlite3_column_int64(s, 3);
    }
    if (step != SQLITE_DONE) goto sql_fail;
    sqlite3_finalize(s);
    s = NULL;
    if ((rc = prep(st, "SELECT grp, expert, field, value, n_active, sum_w FROM label_stats", &s, err)) < 0)
        goto cleanup;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t g = sqlite3_column_int64(s, 0), e = sqlite3_column_int64(s, 1);
        const char *fn = (const char *)sqlite3_column_text(s, 2), *vn = (const char *)sqlite3_column_text(s, 3);
        int f = fn ? field_index(a, fn) : -1;
        if (f < 0 || !vn || g < 0 || g >= a->n_groups || e < 0 || e >= a->n_experts) {
            rc = corrupt(st, err, "label_stats");
            goto cleanup;
        }
        int v = mp_acc_value_id(a, f, vn, err);
        if ((rc = v) < 0) goto cleanup;
        rc = 0;
        double *d = mp_smap_get(&a->label, mp_label_key((int)g, f, v, (uint32_t)e), err);
        if (!d) {
            rc = MP_ENOMEM;
            goto cleanup;
        }
        d[0] += (double)sqlite3_column_int64(s, 4);
        d[1] += sqlite3_column_double(s, 5);
    }
    if (step != SQLITE_DONE) goto sql_fail;
    sqlite3_finalize(s);
    s = NULL;
    if ((rc = prep(st, "SELECT field, n, sum_y, sum_y2, n_docs, d_sum_y, d_sum_y2 FROM score_totals", &s, err)) < 0)
        goto cleanup;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        const char *fn = (const char *)sqlite3_column_text(s, 0);
        int f = fn ? field_index(a, fn) : -1;
        if (f < 0 || !a->fields[f].is_score) {
            rc = corrupt(st, err, "score_totals");
            goto cleanup;
        }
        mp_field *fd = &a->fields[f];
        fd->sc_n += sqlite3_column_double(s, 1);
        fd->sc_sy += sqlite3_column_double(s, 2);
        fd->sc_syy += sqlite3_column_double(s, 3);
        fd->sc_dn += sqlite3_column_double(s, 4);
        fd->sc_dsy += sqlite3_column_double(s, 5);
        fd->sc_dsyy += sqlite3_column_double(s, 6);
    }
    if (step != SQLITE_DONE) goto sql_fail;
    sqlite3_finalize(s);
    s = NULL;
    if ((rc = prep(st, "SELECT grp, expert, field, sum_x, sum_x2, sum_xy, d_sum_x, d_sum_x2, d_sum_xy FROM score_stats",
                   &s, err)) < 0)
        goto cleanup;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t g = sqlite3_column_int64(s, 0), e = sqlite3_column_int64(s, 1);
        const char *fn = (const char *)sqlite3_column_text(s, 2);
        int f = fn ? field_index(a, fn) : -1;
        if (f < 0 || g < 0 || g >= a->n_groups || e < 0 || e >= a->n_experts) {
            rc = corrupt(st, err, "score_stats");
            goto cleanup;
        }
        double *d = mp_smap_get(&a->score, mp_label_key((int)g, f, 0, (uint32_t)e), err);
        if (!d) {
            rc = MP_ENOMEM;
            goto cleanup;
        }
        for (int j = 0; j < 6; j++) d[j] += sqlite3_column_double(s, 3 + j);
    }
    if (step != SQLITE_DONE) goto sql_fail;
    if ((rc = mp_evid_load(st, a, err)) < 0) goto cleanup;
    mp_smap_clear_dirty(&a->label);
    mp_smap_clear_dirty(&a->score);
    a->n_evicted = 0;
    goto cleanup;
sql_fail:
    rc = sqerr(st, err, "load");
cleanup:
    sqlite3_finalize(s);
    return rc;
}

int mp_store_topk(mp_store *st, int grp, uint32_t expert, mp_store_hit **hits, size_t *n, mp_error *err) {
    sqlite3_stmt *s = NULL;
    mp_store_hit *v = NULL;
    size_t cnt = 0, cap = 0;
    *hits = NULL;
    *n = 0;
    MP_TRY(prep(st, "SELECT w, doc, pos FROM topk WHERE grp=? AND expert=? ORDER BY w DESC, doc, pos", &s, err));
    sqlite3_bind_int(s, 1, grp);
    sqlite3_bind_int64(s, 2, expert);
    int rc = 0, step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 32;
            mp_store_hit *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                rc = mp_fail(err, MP_ENOMEM, "out of memory");
                goto cleanup;
            }
            v = nv;
        }
        v[cnt].rank = (int)cnt;
        v[cnt].w = sqlite3_column_double(s, 0);
        v[cnt].doc = (uint64_t)sqlite3_column_int64(s, 1);
        v[cnt].pos = (uint32_t)sqlite3_column_int64(s, 2);
        cnt++;
    }
    if (step != SQLITE_DONE) {
        rc = sqerr(st, err, "topk");
        goto cleanup;
    }
    *hits = v;
    *n = cnt;
    v = NULL;
cleanup:
    free(v);
    sqlite3_finalize(s);
    return rc;
}

int mp_store_expert_stat(mp_store *st, int grp, uint32_t expert, mp_expert_stat *es, mp_error *err) {
    sqlite3_stmt *s = NULL;
    memset(es, 0, sizeof *es);
    MP_TRY(prep(st, "SELECT n_active, sum_w, sum_w2, max_w FROM expert_stats WHERE grp=? AND expert=?", &s, err));
    sqlite3_bind_int(s, 1, grp);
    sqlite3_bind_int64(s, 2, expert);
    int rc = 0, step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        es->n = (uint64_t)sqlite3_column_int64(s, 0);
        es->sum = sqlite3_column_double(s, 1);
        es->sum2 = sqlite3_column_double(s, 2);
        es->max = (float)sqlite3_column_double(s, 3);
        rc = 1;
    } else if (step != SQLITE_DONE) {
        rc = sqerr(st, err, "expert_stats");
    }
    sqlite3_finalize(s);
    return rc;
}
