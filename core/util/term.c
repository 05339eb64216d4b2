/* core/util/term.c — escaping untrusted text for terminal output (see term.h). */
#include "core/util/term.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4) and its code point, or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp) {
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len;
    uint32_t c, min;
    if ((s[0] & 0xE0) == 0xC0) len = 2, c = s[0] & 0x1F, min = 0x80;
    else if ((s[0] & 0xF0) == 0xE0) len = 3, c = s[0] & 0x0F, min = 0x800;
    else if ((s[0] & 0xF8) == 0xF0) len = 4, c = s[0] & 0x07, min = 0x10000;
    else return 0;
    if (len > n) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        c = c << 6 | (s[k] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return len;
}

/* Bytes to write for the sequence at s (escaped or not) into o (may be NULL);
 * *adv gets the input bytes consumed. */
static size_t one(const unsigned char *s, size_t n, int flags, char *o, size_t *adv) {
    uint32_t cp;
    size_t l = utf8_seq(s, n, &cp);
    char tmp[16];
    size_t w;
    if (l == 0) {
        *adv = 1;
        w = (size_t)snprintf(tmp, sizeof tmp, "\\x%02x", s[0]);
    } else {
        *adv = l;
        if ((cp == '\n' || cp == '\t') && (flags & MP_TERM_KEEP_NEWLINE)) {
            w = 1;
            tmp[0] = (char)cp;
        } else if (cp == '\n') {
            w = 2, memcpy(tmp, "\\n", 2);
        } else if (cp == '\t') {
            w = 2, memcpy(tmp, "\\t", 2);
        } else if (cp == '\r') {
            w = 2, memcpy(tmp, "\\r", 2);
        } else if (cp < 0x20 || cp == 0x7F) {
            w = (size_t)snprintf(tmp, sizeof tmp, "\\x%02x", (unsigned)cp);
        } else if (cp >= 0x80 && cp <= 0x9F) {
            w = (size_t)snprintf(tmp, sizeof tmp, "\\u%04x", (unsigned)cp);
        } else {
            if (o) memcpy(o, s, l);
            return l;
        }
    }
    if (o) memcpy(o, tmp, w);
    return w;
}

int mp_term_needs_escape(const char *s, size_t len, int flags) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t adv, w = one(p + i, len - i, flags, NULL, &adv);
        if (w != adv || (adv == 1 && w == 1 && (p[i] == '\n' || p[i] == '\t') && !(flags & MP_TERM_KEEP_NEWLINE)))
            return 1;
        i += adv;
    }
    return 0;
}

int mp_term_escape(const char *s, size_t len, int flags, char **out, mp_error *err) {
    const unsigned char *p = (const unsigned char *)s;
    size_t total = 0;
    *out = NULL;
    for (size_t i = 0; i < len;) {
        size_t adv;
        total += one(p + i, len - i, flags, NULL, &adv);
        i += adv;
    }
    char *o = malloc(total + 1);
    if (!o) return mp_fail(err, MP_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        size_t adv;
        k += one(p + i, len - i, flags, o + k, &adv);
        i += adv;
    }
    o[k] = '\0';
    *out = o;
    return 0;
}
