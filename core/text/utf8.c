/* core/text/utf8.c — strict UTF-8 validation (see utf8.h). */
#include "core/text/utf8.h"

/* The shape of a sequence that starts with byte c: its continuation bytes
 * (*need) and the allowed range of its second byte [*lo, *hi] (excluding
 * overlong forms, surrogates and code points above U+10FFFF).
 * @return 0 when c cannot start a multi-byte sequence. */
static int lead_byte(unsigned c, size_t *need, unsigned *lo, unsigned *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        *need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        *need = 2;
        if (c == 0xE0) *lo = 0xA0; /* overlong */
        if (c == 0xED) *hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        *need = 3;
        if (c == 0xF0) *lo = 0x90; /* overlong */
        if (c == 0xF4) *hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0; /* continuation byte, C0/C1, F5..FF */
    }
    return 1;
}

size_t mp_utf8_check(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned lo, hi; /* allowed range of the second byte */
        if (!lead_byte(p[i], &need, &lo, &hi)) return i;
        if (len - i <= need) return i;   /* truncated sequence */
        if (p[i + 1] < lo || p[i + 1] > hi) return i;
        for (size_t k = 2; k <= need; k++)
            if ((p[i + k] & 0xC0) != 0x80) return i;
        i += need + 1;
    }
    return len;
}

int mp_utf8_is_prefix(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t need;
    unsigned lo, hi;
    if (len < 1 || len > 3 || !lead_byte(p[0], &need, &lo, &hi)) return 0;
    if (len > need) return 0; /* that long it would be complete */
    if (len >= 2 && (p[1] < lo || p[1] > hi)) return 0;
    for (size_t k = 2; k < len; k++)
        if ((p[k] & 0xC0) != 0x80) return 0;
    return 1;
}
