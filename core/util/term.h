/* core/util/term.h — making untrusted text (corpus documents, labels, store
 * contents) safe to print on a terminal.
 *
 * Text from a corpus or a store may hold ESC sequences that recolor, retitle or
 * rewrite the user's terminal, or CR / backspace that hide what was printed.
 * Before cmd/ prints such text it passes it through mp_term_escape: C0 controls
 * except '\n' and '\t', DEL and the C1 range U+0080..U+009F become visible
 * escapes ("\x1b", "\r", "\u009b"); invalid UTF-8 bytes become "\xHH"; valid
 * UTF-8 text passes unchanged.
 */
#ifndef MP_TERM_H
#define MP_TERM_H

#include <stddef.h>

#include "core/util/error.h"

enum {
    MP_TERM_KEEP_NEWLINE = 1 /* pass '\n' and '\t' through (multi-line context); else escape them */
};

/* Escape len bytes of s into a new NUL-terminated string *out (malloc'ed,
 * caller frees). flags: MP_TERM_KEEP_NEWLINE or 0. @return 0 or MP_ENOMEM. */
int mp_term_escape(const char *s, size_t len, int flags, char **out, mp_error *err);

/* 1 when s (len bytes) would be changed by mp_term_escape. */
int mp_term_needs_escape(const char *s, size_t len, int flags);

#endif /* MP_TERM_H */
