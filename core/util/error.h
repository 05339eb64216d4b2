/* core/util/error.h — the error record every library function fills.
 *
 * Library code (core/, analysis/, cuda/) never prints or exits: a failing
 * function returns a negative MP_E* code and writes a one-line message into
 * the caller's mp_error. cmd/ prints "monet-probe: <message>" and exits with
 * mp_exit_code(code): 2 for bad input (MP_EINPUT, MP_EIO, MP_EUNSUPPORTED),
 * 3 when the environment failed (MP_ERESOURCE: disk full, write or read
 * error, lock held by another process), 1 otherwise. docs/exit-codes.md.
 *
 * Two control-flow macros, no more (STYLE.md 3):
 *   MP_TRY(expr)                    propagate a negative return code
 *   MP_FAIL_IF(cond, err, code, fmt, ...) fill err and return code
 * Both assume an `int rc` is NOT needed; they return from the function.
 * In functions that own resources use `rc = mp_fail(err, code, ...)` then
 * `goto cleanup` instead.
 */
#ifndef MP_ERROR_H
#define MP_ERROR_H

#include <stddef.h>

enum {
    MP_OK = 0,
    MP_EINPUT = -1,    /* malformed or inconsistent user input (exit 2) */
    MP_EIO = -2,       /* I/O failure on an existing file (exit 2: names the file) */
    MP_ENOMEM = -3,    /* allocation failed (exit 1) */
    MP_EINTERNAL = -4, /* bug or unsupported situation (exit 1) */
    MP_EUNSUPPORTED = -5, /* valid input we do not handle, e.g. no GPU (exit 2) */
    MP_ERESOURCE = -6     /* the environment failed, not the input: disk full, write/read
                             error, store locked by another writer (exit 3) */
};

#define MP_ERRMSG_MAX 512

typedef struct mp_error {
    int code;                   /* last code written, MP_OK if none */
    char msg[MP_ERRMSG_MAX];    /* one line, no trailing newline */
    const char *src_file;       /* where the error was raised (debugging) */
    int src_line;
} mp_error;

/* Reset an error record to "no error". err may be NULL. */
void mp_error_clear(mp_error *err);

/* Fill err (may be NULL) with a printf-style message (newlines and tabs become
 * spaces, other control bytes '?': the line is safe to print); returns code so that
 * callers can write `return mp_fail(err, MP_EINPUT, "%s: bad", path);`. */
#define mp_fail(err, code, ...) mp_fail_at((err), (code), __FILE__, __LINE__, __VA_ARGS__)
int mp_fail_at(mp_error *err, int code, const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* Prefix an existing message: "<prefix>: <old message>". Returns err->code. */
int mp_error_prefix(mp_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Process exit status for a library return code: 0, 1, 2 or 3. */
int mp_exit_code(int code);

#define MP_TRY(expr)                      \
    do {                                  \
        int mp_try_rc_ = (expr);          \
        if (mp_try_rc_ < 0) return mp_try_rc_; \
    } while (0)

#define MP_FAIL_IF(cond, err, code, ...)                    \
    do {                                                    \
        if (cond) return mp_fail((err), (code), __VA_ARGS__); \
    } while (0)

#endif /* MP_ERROR_H */
