/* fuzz/fuzz_mask.c — libFuzzer target: mask file parsing (mp_mask_parse) on
 * arbitrary bytes, then the walks `mask show|invert` do over a parsed mask
 * (bounded by MP_MASK_MAX_* whatever the file claims). */
#include <stdint.h>

#include "core/model/mask.h"

static size_t visited;
static void visit(void *ctx, int r, int i, int j) {
    (void)ctx, (void)r, (void)i, (void)j;
    visited++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mp_mask *m = NULL;
    mp_error err;
    if (mp_mask_parse((const char *)data, size, "fuzz/mask.json", NULL, &m, &err) == 0) {
        mp_mask_foreach(m, visit, NULL, &err);
        /* the first rows of what invert would visit */
        for (int i = 0; i < m->E && i < 16; i++)
            for (int j = 0; j < m->E && j < 16; j++) (void)mp_mask_contains(m, 0, i, j);
        mp_mask_free(m);
    }
    return 0;
}
