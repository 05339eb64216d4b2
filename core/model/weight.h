/* core/model/weight.h — a weight matrix as the CPU kernels read it: float32,
 * or bf16 read in place from the checkpoint's mapping (a bf16 checkpoint is
 * never widened into a float32 copy: half the memory, nothing to convert at
 * load). bf16 -> float32 is exact (the bf16 bits are the high half of the
 * float32), so a kernel that widens a bf16 row and then computes as on
 * float32 gives the same bits as the float32 path.
 *
 * Ownership: an mp_weight borrows its data (the model's arena or the
 * checkpoint mapping the model keeps open).
 */
#ifndef MP_WEIGHT_H
#define MP_WEIGHT_H

#include <stddef.h>
#include <stdint.h>

typedef struct mp_weight {
    const float *f32;     /* row-major float32, or NULL */
    const uint16_t *bf16; /* row-major bf16 (little-endian bits), or NULL; exactly one is set */
} mp_weight;

/* out[0..n) = float32 of bf16 bits src[0..n) (src may be unaligned). */
void mp_bf16_widen(const uint16_t *src, size_t n, float *out);

/* out[r * ldo + 0..ncols) = W[row0 + r][col0 ..) for r < nrows, W of row
 * stride ld elements (a block of rows and columns, widened when bf16). */
void mp_weight_block(const mp_weight *w, size_t ld, size_t row0, size_t nrows, size_t col0, size_t ncols,
                     float *out, size_t ldo);

/* Bytes of one element (4 or 2). */
static inline size_t mp_weight_elem_size(const mp_weight *w) { return w->bf16 ? 2 : 4; }

#endif
