/* core/store/store.h — the collect store: one SQLite file (WAL mode) holding the run
 * metadata, per-expert top-K hits, activation and label statistics, and the
 * zstd-compressed token windows the top-K hits point at. The schema is in the
 * header of core/store/store.c and in docs/store.md.
 *
 * Writers commit one transaction per batch (mp_store_begin / mp_store_commit):
 * a crash at any moment leaves the store at the last committed batch.
 *
 * Ownership: mp_store_open allocates the handle, mp_store_close (NULL: no-op)
 * closes the database. Strings and arrays returned by the readers are
 * malloc'ed for the caller unless stated otherwise.
 */
#ifndef MP_STORE_H
#define MP_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"
#include "core/store/topk.h"

#define MP_STORE_SCHEMA_VERSION 2 /* 2: hist, qsamples, label_topk, token_index */

typedef struct mp_store mp_store;
typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;

enum { MP_STORE_READ = 0, MP_STORE_CREATE = 1, MP_STORE_WRITE = 2 };

/* Open path. READ: existing store, read-only. WRITE: existing store, read-write.
 * CREATE: path must not exist; creates the schema. READ/WRITE validate the
 * file: a SQLite database with the monet-probe tables and this schema version.
 * @return 0, MP_EIO (cannot open) or MP_EINPUT ("<path>: not a monet-probe
 *         store ...", "<path>: schema version N, expected 1 ...") */
int mp_store_open(const char *path, int mode, mp_store **out, mp_error *err);
void mp_store_close(mp_store *st);

sqlite3 *mp_store_db(mp_store *st);        /* borrowed, valid until close */
const char *mp_store_path(const mp_store *st);

/* Prepare one statement on the store (*s: finalize it). @return 0 or the
 * mapped SQLite error ("<path>: prepare: <message>"). */
int mp_store_prepare(mp_store *st, const char *sql, sqlite3_stmt **s, mp_error *err);
/* The store's last SQLite error as an mp_error: "<path>: <what>: <message>",
 * MP_ERESOURCE for a full disk / I/O / lock, MP_EINPUT for corruption. */
int mp_store_sqlerr(mp_store *st, const char *what, mp_error *err);
/* MP_EINPUT "<path>: corrupt store: bad row in table <table>". */
int mp_store_corrupt(mp_store *st, const char *table, mp_error *err);

/* Run an SQL script (no results). @return 0 or MP_EIO with the SQLite message. */
int mp_store_exec(mp_store *st, const char *sql, mp_error *err);
int mp_store_begin(mp_store *st, mp_error *err);
int mp_store_commit(mp_store *st, mp_error *err);
void mp_store_rollback(mp_store *st);

/* Metadata (table meta). get: 1 with *val malloc'ed, 0 when absent, <0 error. */
int mp_store_meta_get(mp_store *st, const char *key, char **val, mp_error *err);
int mp_store_meta_set(mp_store *st, const char *key, const char *val, mp_error *err);
/* Bounds on the shape metadata a store may claim. Every size read from a
 * store is checked against these before it sizes an allocation or a loop. */
#define MP_STORE_MAX_GROUPS 255         /* n_groups (router groups) */
#define MP_STORE_MAX_EXPERTS 4096       /* moe_experts E (E*E experts per group) */
#define MP_STORE_MAX_WINDOW (1 << 24)   /* window, tokens */
#define MP_STORE_MAX_LAYERS 4096        /* n_layers, moe_groups */

/* Integer metadata key within [lo, hi]. @return 1 with *val, 0 when absent
 * (allowed only when !required), MP_EINPUT "<store>: corrupt store: meta
 * '<key>' = '<text>' is not an integer in <lo>..<hi>" or "...: no '<key>'
 * metadata". */
int mp_store_meta_int(mp_store *st, const char *key, long lo, long hi, int required, long *val, mp_error *err);

/* The shape every reader needs, bounds-checked (see MP_STORE_MAX_*). */
typedef struct mp_store_shape {
    int n_groups, E, moe_groups, n_layers, window, top_k;
} mp_store_shape;
int mp_store_shape_read(mp_store *st, mp_store_shape *sh, mp_error *err);

/* Exclusive writer lock of the store at path: lock file "<path>.lock", held
 * from before the store is created or opened for writing until released.
 * A second writer gets MP_ERESOURCE "<path>: locked by another writer (pid N,
 * ...)". The lock file stays beside the store (harmless, reused). */
struct mp_lock;
int mp_store_lock(const char *path, struct mp_lock **lock, mp_error *err);

/* Checkpoint the WAL into the main file, then close; unlike mp_store_close,
 * reports a failure (disk full: MP_ERESOURCE) so that a new store is never
 * renamed into place incomplete. Closes st in every case. */
int mp_store_close_checked(mp_store *st, mp_error *err);

/* Integer counters (table progress); get returns 0 and sets *val (0 when absent). */
int mp_store_progress_get(mp_store *st, const char *key, int64_t *val, mp_error *err);
/* As mp_store_progress_get, with *found = 0 (and *val untouched) when the key is absent. */
int mp_store_progress_find(mp_store *st, const char *key, int64_t *val, int *found, mp_error *err);
int mp_store_progress_set(mp_store *st, const char *key, int64_t val, mp_error *err);

/* Files kept in the store (tokenizer.model, config.json). */
int mp_store_put_file(mp_store *st, const char *name, const void *data, size_t len, const char *sha256,
                      mp_error *err);
/* 1 with *data (malloc'ed) and *len, 0 when absent, <0 on error. */
int mp_store_get_file(mp_store *st, const char *name, void **data, size_t *len, mp_error *err);

/* Token windows: ids compressed with zstd. put is INSERT OR IGNORE (dedup by
 * (doc, start)). get: 1 found, 0 absent, <0 error (MP_EINPUT: corrupt blob). */
int mp_store_put_window(mp_store *st, uint64_t doc, uint32_t start, const int32_t *ids, size_t n, mp_error *err);
int mp_store_get_window(mp_store *st, uint64_t doc, uint32_t start, int32_t **ids, size_t *n, mp_error *err);
int mp_store_put_doc(mp_store *st, uint64_t doc, const char *source, int64_t line, const char *labels_json,
                     mp_error *err);
/* labels JSON of a stored document; 1 found, 0 absent. */
int mp_store_get_doc(mp_store *st, uint64_t doc, char **labels_json, char **source, int64_t *line, mp_error *err);

/* Garbage collection, decided in memory (the store has no (doc, pos) index
 * to ask): of the distinct windows wins[0..n) (doc, pos = start; sorted by
 * doc, then start), drop each one no hit of a points into (a holds exactly
 * the hits the saved rows hold: mp_acc_mark_windows), and the document row of
 * a document left without a window. */
int mp_store_gc_windows(mp_store *st, const mp_acc *a, const mp_topk_slot *wins, size_t n, int window,
                        mp_error *err);
/* Drop every window no hit of a points into, and the documents left without
 * one (merge: a holds every hit the store's rows hold). */
int mp_store_gc_all(mp_store *st, const mp_acc *a, int window, mp_error *err);

/* Write the accumulators: the dirty experts' statistics, the top-K hits that
 * entered (doc >= first_doc: this batch) or left (evicted, doc < first_doc)
 * a heap since the last save, the dirty label/score entries, every group and
 * label total. all = 1: every expert that has data, all its hits (merge).
 * Does not clear the dirty marks. */
int mp_store_save_acc(mp_store *st, const mp_acc *a, int all, uint64_t first_doc, mp_error *err);
/* Add the store's accumulators into a (heaps: offered; sums: added). Used to
 * resume (a empty) and to merge shards (a holding earlier shards). Nothing is
 * marked dirty. */
int mp_store_load_acc(mp_store *st, mp_acc *a, mp_error *err);

/* One top-K row. */
typedef struct mp_store_hit {
    int rank;
    double w;
    uint64_t doc;
    uint32_t pos;
} mp_store_hit;
/* Rows of (grp, expert), best first. *hits malloc'ed (NULL when none). */
int mp_store_topk(mp_store *st, int grp, uint32_t expert, mp_store_hit **hits, size_t *n, mp_error *err);
/* 1 with *s filled, 0 when the expert was never active. */
int mp_store_expert_stat(mp_store *st, int grp, uint32_t expert, mp_expert_stat *s, mp_error *err);

/* Size of the database file plus its -wal file, in bytes. */
int64_t mp_store_file_bytes(const char *path);

#endif
