/* core/util/file.h — opening untrusted paths safely, symlink-safe deletion and
 * exclusive writer locks.
 *
 * Every file monet-probe reads as a whole (config.json, tokenizer.model,
 * safetensors, masks, vocab files) is opened with mp_file_open_regular: the
 * open never blocks (O_NONBLOCK, so a FIFO or a device given by mistake cannot
 * hang the process) and anything that is not a regular file is refused.
 *
 * Ownership: mp_file_open_* hand the caller an fd / FILE it must close;
 * mp_lock_acquire allocates an mp_lock that mp_lock_release (NULL: no-op)
 * unlocks and frees.
 */
#ifndef MP_FILE_H
#define MP_FILE_H

#include <stdint.h>
#include <stdio.h>

#include "core/util/error.h"

/* Open path read-only without blocking, refuse non-regular files, then switch
 * the descriptor back to blocking reads. *size (may be NULL) gets the size.
 * @return 0, MP_EIO ("<path>: cannot open: <strerror>") or MP_EINPUT
 *         ("<path>: not a regular file (a FIFO|directory|device ...)"). */
int mp_file_open_regular(const char *path, int *fd, int64_t *size, mp_error *err);

/* The same, as a stdio stream ("rb"). */
int mp_file_fopen_regular(const char *path, FILE **f, int64_t *size, mp_error *err);

/* Read a whole regular file of at most max bytes into *buf (malloc'ed, NUL
 * appended, not counted in *len). @return 0, MP_EIO, MP_EINPUT (not regular;
 * "<path>: N bytes, more than the limit of M for <what>"), MP_ENOMEM or
 * MP_ERESOURCE (read error). */
int mp_file_read_all(const char *path, size_t max, const char *what, char **buf, size_t *len, mp_error *err);

/* Create or truncate path for writing ("wb") without following a symbolic link
 * at its last component (O_NOFOLLOW: a planted link cannot redirect the write
 * onto another file). @return 0, MP_EINPUT ("<path>: is a symbolic link,
 * refusing to write through it") or MP_ERESOURCE ("<path>: cannot write: ..."). */
int mp_file_create(const char *path, FILE **f, mp_error *err);

/* Remove the directory path and, depth levels down, its sub-directories, but
 * only regular files inside them. Never follows a symbolic link: the
 * directories are opened with O_NOFOLLOW and entries removed with unlinkat
 * relative to their parent, so a symlink (at path or inside) is an error
 * (MP_EINPUT "<path>: is a symbolic link, refusing to delete through it") and
 * nothing outside path is touched. A missing path is not an error.
 * @return 0, MP_EINPUT or MP_ERESOURCE. */
int mp_remove_tree(const char *path, int depth, mp_error *err);

/* An exclusive advisory lock (fcntl F_SETLK on a lock file, with our pid written
 * in it) serializing writers of one store. */
typedef struct mp_lock mp_lock;

/* Take the write lock on lock_path (created if absent; never a symlink).
 * what names the protected object in messages. @return 0, MP_ERESOURCE
 * ("<what>: locked by another writer (pid N) ...") or MP_EIO. */
int mp_lock_acquire(const char *lock_path, const char *what, mp_lock **out, mp_error *err);
void mp_lock_release(mp_lock *l);

#endif /* MP_FILE_H */
