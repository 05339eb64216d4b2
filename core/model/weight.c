/* core/model/weight.c — widening bf16 weights to float32 (see weight.h). */
#include "core/model/weight.h"

#include <cblas.h>
#include <string.h>

#include "core/util/pool.h"

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

static void block_rows(const mp_weight *w, size_t ld, size_t row0, size_t nrows, size_t col0, size_t ncols, float *out,
                       size_t ldo) {
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

typedef struct block_job {
    const mp_weight *w;
    size_t ld, row0, nrows, col0, ncols, ldo;
    float *out;
    int parts;
} block_job;

static void block_part(void *arg, int k) {
    const block_job *j = arg;
    const size_t r0 = j->nrows * (size_t)k / (size_t)j->parts, r1 = j->nrows * (size_t)(k + 1) / (size_t)j->parts;
    block_rows(j->w, j->ld, j->row0 + r0, r1 - r0, j->col0, j->ncols, j->out + r0 * j->ldo, j->ldo);
}

/* Large blocks are split by rows over the worker pool (core/util/pool.h),
 * as many parts as OpenBLAS may use threads: widening is exact, so the split
 * changes nothing but the time (prefill widened on one core while OpenBLAS's
 * other threads waited: 6% of a 1.4B prefill). */
void mp_weight_block(const mp_weight *w, size_t ld, size_t row0, size_t nrows, size_t col0, size_t ncols,
                     float *out, size_t ldo) {
    int T = openblas_get_num_threads();
    if (T > 8) T = 8;
    if (T <= 1 || nrows < (size_t)(4 * T) || nrows * ncols < ((size_t)1 << 17)) {
        block_rows(w, ld, row0, nrows, col0, ncols, out, ldo);
        return;
    }
    block_job j = {w, ld, row0, nrows, col0, ncols, ldo, out, T};
    mp_pool_run(block_part, &j, T);
}
