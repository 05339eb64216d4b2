/* core/util/readfile.h — read a whole file into memory (the JSONL and prompt
 * files of the evaluations). Ownership: *buf is malloc'ed, the caller frees it. */
#ifndef MP_READFILE_H
#define MP_READFILE_H

#include <stddef.h>

#include "core/util/error.h"

/* Read path ("-" = stdin) into a NUL-terminated buffer; *len excludes the NUL.
 * @return 0, MP_EIO ("<path>: cannot open: <reason>" / read error) or MP_ENOMEM. */
int mp_read_file(const char *path, char **buf, size_t *len, mp_error *err);

#endif
