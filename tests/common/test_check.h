/* tests/common/test_check.h — the failure counter and check macros of the C
 * tests that print a message per failed check (tests/unit/check.h is the
 * unit tests' variant): CHECK(cond, fmt, ...) counts and reports a failure
 * ("FAIL file:line: message") and goes on; TRY(expr) returns 1 from the
 * calling function when expr is negative, printing the mp_error named `err`
 * in scope. A test ends with `return failures != 0;` after its summary line. */
#ifndef MP_TEST_CHECK_H
#define MP_TEST_CHECK_H

#include <stdio.h>

static int failures = 0;

#define CHECK(cond, ...)                                     \
    do {                                                     \
        if (!(cond)) {                                       \
            failures++;                                      \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                    \
            fputc('\n', stderr);                             \
        }                                                    \
    } while (0)

#define TRY(expr)                                                                \
    do {                                                                         \
        if ((expr) < 0) return fprintf(stderr, "%s: %s\n", #expr, err.msg), 1; \
    } while (0)

#endif
