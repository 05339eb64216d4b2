/* core/util/readfile.c — whole-file reads (see readfile.h). */
#include "core/util/readfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mp_read_file(const char *path, char **buf, size_t *len, mp_error *err) {
    const int is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) return mp_fail(err, MP_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = (size_t)1 << 16, n = 0;
    char *b = malloc(cap + 1);
    int rc = 0;
    while (b) {
        if (n == cap) {
            char *nb = realloc(b, 2 * cap + 1);
            if (!nb) break;
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (!b || n == cap) rc = mp_fail(err, MP_ENOMEM, "out of memory"); /* n == cap only when realloc failed */
    else if (ferror(f)) rc = mp_fail(err, MP_EIO, "%s: read error", path);
    if (!is_stdin) fclose(f);
    if (rc < 0) {
        free(b);
        return rc;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}
