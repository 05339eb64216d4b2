/* core/text/utf8.h — UTF-8 validation shared by the corpus readers (and anyone else
 * who must reject malformed text before it reaches the tokenizer or SQLite).
 *
 * Validation is strict RFC 3629: no overlong forms, no UTF-16 surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF. NUL bytes are valid.
 */
#ifndef MP_UTF8_H
#define MP_UTF8_H

#include <stddef.h>

/* Check len bytes of s.
 * @return len when s is valid UTF-8, otherwise the offset of the first byte of
 *         the first invalid or truncated sequence. Never fails. */
size_t mp_utf8_check(const char *s, size_t len);

/* @return 1 when the len bytes of s (1 <= len <= 3) are a proper prefix of a
 *         valid multi-byte sequence (a character still missing its last bytes),
 *         otherwise 0. */
int mp_utf8_is_prefix(const char *s, size_t len);

#endif /* MP_UTF8_H */
