/* tests/unit/check.h — minimal assertion macros: print file:line and the
 * failing expression, count failures, exit non-zero at the end. */
#ifndef MP_TEST_CHECK_H
#define MP_TEST_CHECK_H
#include <stdio.h>

static int check_failures = 0, check_count = 0;

#define CHECK(cond)                                                            \
    do {                                                                       \
        check_count++;                                                         \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures++;                                                  \
        }                                                                      \
    } while (0)

#define CHECK_CLOSE(a, b, tol)                                                 \
    do {                                                                       \
        double ca_ = (a), cb_ = (b);                                           \
        check_count++;                                                         \
        if (!(ca_ - cb_ <= (tol) && cb_ - ca_ <= (tol))) {                     \
            fprintf(stderr, "%s:%d: %s = %.17g, expected %.17g (tol %g)\n", __FILE__, __LINE__, #a, ca_, cb_, (double)(tol)); \
            check_failures++;                                                  \
        }                                                                      \
    } while (0)

static int check_report(const char *name) {
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}
#endif
