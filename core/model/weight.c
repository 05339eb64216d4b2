/* core/model/weight.c — widening bf16 weights to float32 (see weight.h). */
#include "core/model/weight.h"

#include <string.h>

typedef uint16_t mp_u16x8 __attribute__((vector_size(16)));
typedef uint32_t mp_u32x8 __attribute__((vector_size(32)));

/* An AVX2 clone picked at load time (an ifunc); not under ThreadSanitizer,
 * whose instrumented resolver would run before its runtime is up. */
#if defined(__SANITIZE_THREAD__)
#define MP_CLONES
#else
#define MP_CLONES __attribute__((target_clones("avx2", "default")))
#endif

MP_CLONES void mp_bf16_widen(const uint16_t *src, size_t n, float *out) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        mp_u16x8 h;
        memcpy(&h, src + i, sizeof h);
        mp_u32x8 u = __builtin_convertvector(h, mp_u32x8) << 16;
        memcpy(out + i, &u, sizeof u);
    }
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + i, sizeof h);
        uint32_t u = (uint32_t)h << 16;
        memcpy(out + i, &u, sizeof u);
    }
}

void mp_weight_block(const mp_weight *w, size_t ld, size_t row0, size_t nrows, size_t col0, size_t ncols,
                     float *out, size_t ldo) {
    for (size_t r = 0; r < nrows; r++) {
        const size_t at = (row0 + r) * ld + col0;
        if (!w->bf16) {
            memcpy(out + r * ldo, w->f32 + at, ncols * sizeof(float));
        } else if (ncols < 16) { /* one expert's few columns of V: no call per row */
            for (size_t c = 0; c < ncols; c++) {
                uint16_t h;
                memcpy(&h, w->bf16 + at + c, sizeof h);
                uint32_t u = (uint32_t)h << 16;
                memcpy(out + r * ldo + c, &u, sizeof u);
            }
        } else {
            mp_bf16_widen(w->bf16 + at, ncols, out + r * ldo);
        }
    }
}
