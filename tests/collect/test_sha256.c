/* tests/collect/test_sha256.c — print "HEX  PATH" for each file argument, like
 * sha256sum, using core/util/sha256 (compared with coreutils by check_collect.py). */
#include <stdio.h>

#include "core/util/sha256.h"

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        char hex[65];
        mp_error err;
        mp_error_clear(&err);
        if (mp_sha256_file(argv[i], hex, &err) < 0) {
            fprintf(stderr, "test_sha256: %s\n", err.msg);
            return 1;
        }
        printf("%s  %s\n", hex, argv[i]);
    }
    return 0;
}
