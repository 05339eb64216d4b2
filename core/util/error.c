/* core/util/error.c — filling and formatting mp_error records (see error.h). */
#include "core/util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void mp_error_clear(mp_error *err) {
    if (!err) return;
    err->code = MP_OK;
    err->msg[0] = '\0';
    err->src_file = NULL;
    err->src_line = 0;
}

int mp_fail_at(mp_error *err, int code, const char *file, int line, const char *fmt, ...) {
    if (!err) return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    /* one line, and safe on a terminal: messages quote file contents (label
     * values, JSON strings), so no control byte (ESC, CR, BEL, ...) passes */
    for (char *p = err->msg; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\n' || c == '\r' || c == '\t') *p = ' ';
        else if (c < 0x20 || c == 0x7f) *p = '?';
    }
    err->code = code;
    err->src_file = file;
    err->src_line = line;
    return code;
}

int mp_error_prefix(mp_error *err, const char *fmt, ...) {
    if (!err) return MP_EINTERNAL;
    char prefix[MP_ERRMSG_MAX];
    char old[MP_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    for (char *p = prefix; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    size_t n = strlen(prefix);
    if (n > sizeof err->msg - 3) n = sizeof err->msg - 3;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t room = sizeof err->msg - n - 3;
    size_t ol = strnlen(old, room);
    memcpy(err->msg + n + 2, old, ol);
    err->msg[n + 2 + ol] = '\0';
    return err->code;
}

int mp_exit_code(int code) {
    switch (code) {
    case MP_OK: return 0;
    case MP_EINPUT:
    case MP_EIO:
    case MP_EUNSUPPORTED: return 2;
    case MP_ERESOURCE: return 3;
    default: return 1;
    }
}
