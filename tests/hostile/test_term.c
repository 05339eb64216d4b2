/* tests/hostile/test_term.c — mp_term_escape: terminal control bytes from
 * corpus text and labels never pass raw; printable UTF-8 passes unchanged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util/term.h"

static int failures;

static void expect(const char *in, size_t len, int flags, const char *want) {
    char *out = NULL;
    mp_error err;
    if (mp_term_escape(in, len, flags, &out, &err) < 0 || strcmp(out, want)) {
        printf("FAIL escape(%zu bytes, flags %d) = \"%s\", want \"%s\"\n", len, flags, out ? out : "(null)", want);
        failures++;
    } else {
        printf("ok   \"%s\"\n", want);
    }
    int changed = strlen(want) != len || memcmp(want, in, len);
    if (mp_term_needs_escape(in, len, flags) != changed) {
        printf("FAIL needs_escape(\"%s\") != %d\n", want, changed);
        failures++;
    }
    free(out);
}

int main(void) {
    expect("plain text", 10, 0, "plain text");
    expect("\x1b[31mred\x1b[0m", 12, 0, "\\x1b[31mred\\x1b[0m");
    expect("\x1b]0;title\x07", 10, 0, "\\x1b]0;title\\x07");
    expect("a\rb\bc\x7f", 6, 0, "a\\rb\\x08c\\x7f");
    expect("line1\nline2\t!", 13, 0, "line1\\nline2\\t!");
    expect("line1\nline2\t!", 13, MP_TERM_KEEP_NEWLINE, "line1\nline2\t!");
    expect("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, 0, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    expect("\xc2\x9b" "2J", 4, 0, "\\u009b2J");           /* C1 CSI */
    expect("bad\xff\xc3", 5, 0, "bad\\xff\\xc3");           /* invalid / cut UTF-8 */
    expect("nul\0x", 5, 0, "nul\\x00x");
    expect("", 0, 0, "");
    if (failures) printf("%d failures\n", failures);
    return failures ? 1 : 0;
}
