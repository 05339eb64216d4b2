/* core/util/file.c — non-blocking regular-file opens, symlink-safe tree
 * removal, fcntl writer locks (see file.h). */
#include "core/util/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t m) {
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a plain file";
}

int mp_file_open_regular(const char *path, int *fd_out, int64_t *size, mp_error *err) {
    *fd_out = -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return mp_fail(err, MP_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return mp_fail(err, MP_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return mp_fail(err, MP_EINPUT, "%s: not a regular file (%s)", path, kind_of(sb.st_mode));
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        return mp_fail(err, MP_EIO, "%s: fcntl: %s", path, strerror(e));
    }
    if (size) *size = (int64_t)sb.st_size;
    *fd_out = fd;
    return 0;
}

int mp_file_fopen_regular(const char *path, FILE **f, int64_t *size, mp_error *err) {
    int fd;
    *f = NULL;
    MP_TRY(mp_file_open_regular(path, &fd, size, err));
    *f = fdopen(fd, "rb");
    if (!*f) {
        close(fd);
        return mp_fail(err, MP_ENOMEM, "%s: fdopen: out of memory", path);
    }
    return 0;
}

int mp_file_read_all(const char *path, size_t max, const char *what, char **buf, size_t *len, mp_error *err) {
    int fd;
    int64_t size;
    *buf = NULL;
    *len = 0;
    MP_TRY(mp_file_open_regular(path, &fd, &size, err));
    int rc = 0;
    char *b = NULL;
    if (size < 0 || (uint64_t)size > max) {
        rc = mp_fail(err, MP_EINPUT, "%s: %lld bytes, more than the limit of %zu for %s", path, (long long)size, max,
                     what);
        goto cleanup;
    }
    b = malloc((size_t)size + 1);
    if (!b) {
        rc = mp_fail(err, MP_ENOMEM, "%s: out of memory (%lld bytes)", path, (long long)size);
        goto cleanup;
    }
    size_t n = 0;
    while (n < (size_t)size) {
        ssize_t r = read(fd, b + n, (size_t)size - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = mp_fail(err, MP_ERESOURCE, "%s: read error: %s", path, strerror(errno));
            goto cleanup;
        }
        if (r == 0) break; /* shrank while reading: take what is there */
        n += (size_t)r;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    b = NULL;
cleanup:
    free(b);
    close(fd);
    return rc;
}

int mp_file_create(const char *path, FILE **f, mp_error *err) {
    *f = NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0666);
    if (fd < 0 && errno == ELOOP)
        return mp_fail(err, MP_EINPUT, "%s: is a symbolic link, refusing to write through it", path);
    if (fd < 0) return mp_fail(err, MP_ERESOURCE, "%s: cannot write: %s", path, strerror(errno));
    *f = fdopen(fd, "wb");
    if (!*f) {
        close(fd);
        return mp_fail(err, MP_ENOMEM, "%s: fdopen: out of memory", path);
    }
    return 0;
}

/* Remove the entries of the open directory dfd (named path in messages). */
static int clear_dir(int dfd, const char *path, int depth, mp_error *err) {
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return mp_fail(err, MP_ERESOURCE, "%s: %s", path, strerror(errno));
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        const char *n = de->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..")) continue;
        struct stat sb;
        if (fstatat(dirfd(d), n, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) continue;
            rc = mp_fail(err, MP_ERESOURCE, "%s/%s: %s", path, n, strerror(errno));
        } else if (S_ISLNK(sb.st_mode)) {
            rc = mp_fail(err, MP_EINPUT, "%s/%s: is a symbolic link, refusing to delete through it", path, n);
        } else if (S_ISDIR(sb.st_mode) && depth > 0) {
            int sub = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            char sp[4096];
            snprintf(sp, sizeof sp, "%s/%s", path, n);
            if (sub < 0) rc = mp_fail(err, MP_ERESOURCE, "%s: %s", sp, strerror(errno));
            else rc = clear_dir(sub, sp, depth - 1, err);
            if (rc == 0 && unlinkat(dirfd(d), n, AT_REMOVEDIR) != 0)
                rc = mp_fail(err, MP_ERESOURCE, "%s: cannot remove: %s", sp, strerror(errno));
        } else if (S_ISREG(sb.st_mode)) {
            if (unlinkat(dirfd(d), n, 0) != 0 && errno != ENOENT)
                rc = mp_fail(err, MP_ERESOURCE, "%s/%s: cannot remove: %s", path, n, strerror(errno));
        } else {
            rc = mp_fail(err, MP_EINPUT, "%s/%s: unexpected entry, refusing to delete it", path, n);
        }
    }
    closedir(d);
    return rc;
}

int mp_remove_tree(const char *path, int depth, mp_error *err) {
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? 0 : mp_fail(err, MP_ERESOURCE, "%s: %s", path, strerror(errno));
    MP_FAIL_IF(S_ISLNK(sb.st_mode), err, MP_EINPUT, "%s: is a symbolic link, refusing to delete through it", path);
    MP_FAIL_IF(!S_ISDIR(sb.st_mode), err, MP_EINPUT, "%s: not a directory, refusing to delete it", path);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP || errno == ENOTDIR)
            return mp_fail(err, MP_EINPUT, "%s: is a symbolic link, refusing to delete through it", path);
        return mp_fail(err, MP_ERESOURCE, "%s: %s", path, strerror(errno));
    }
    MP_TRY(clear_dir(fd, path, depth, err));
    if (rmdir(path) != 0 && errno != ENOENT)
        return mp_fail(err, MP_ERESOURCE, "%s: cannot remove: %s", path, strerror(errno));
    return 0;
}

struct mp_lock {
    int fd;
};

int mp_lock_acquire(const char *lock_path, const char *what, mp_lock **out, mp_error *err) {
    *out = NULL;
    int fd = open(lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0666);
    if (fd < 0) return mp_fail(err, MP_EIO, "%s: cannot open lock file: %s", lock_path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return mp_fail(err, MP_EIO, "%s: lock file is not a regular file", lock_path);
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int e = errno;
        struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        long pid = fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK ? (long)q.l_pid : -1;
        close(fd);
        if (e == EACCES || e == EAGAIN) {
            if (pid > 0)
                return mp_fail(err, MP_ERESOURCE,
                               "%s: locked by another writer (pid %ld, lock file %s); wait for it to finish or stop it",
                               what, pid, lock_path);
            return mp_fail(err, MP_ERESOURCE, "%s: locked by another writer (lock file %s)", what, lock_path);
        }
        return mp_fail(err, MP_EIO, "%s: cannot lock: %s", lock_path, strerror(e));
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && write(fd, buf, (size_t)n) < 0) { /* informational only */
    }
    mp_lock *l = malloc(sizeof *l);
    if (!l) {
        close(fd);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    l->fd = fd;
    *out = l;
    return 0;
}

void mp_lock_release(mp_lock *l) {
    if (!l) return;
    close(l->fd); /* closing the only descriptor drops the fcntl lock */
    free(l);
}
