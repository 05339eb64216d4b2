/* core/model/linear_cpu.h — the CPU forward's dense projections y = x W^T
 * (W row-major [out][in], nn.Linear layout) over float32 or bf16 weights
 * (weight.h): OpenBLAS sgemm / sgemv, bf16 widened block by block into a
 * caller's scratch first; and a kernel of its own for a few rows (decoding),
 * which reads each weight row once for all of them and widens bf16 in
 * registers. The row kernels come in an AVX2+FMA and a portable form, chosen
 * once per process by the CPU (MP_KERNELS=portable forces the portable one);
 * each is self-consistent, they differ from each other in the last bits.
 */
#ifndef MP_LINEAR_CPU_H
#define MP_LINEAR_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "core/model/weight.h"

/* Floats of scratch mp_linear wants for bf16 weights (float32 needs none). */
#define MP_LINEAR_SCRATCH ((size_t)1 << 20)

/* y[r][j] = x[r] . W[j] for n rows (y [n][outd], x [n][in], W [outd][in]
 * dense), as one pass over W split by output rows over up to 8 threads.
 * Every y[r][j] is computed by the same operations in the same order
 * whatever n, r, the thread count and the weight's dtype: a row's result does
 * not depend on the rows next to it (decoding B sequences together is
 * bit-identical to decoding them one by one). */
void mp_linear_rows(float *y, const float *x, const mp_weight *w, int n, int in, int outd);
/* The same over W of row stride ldw >= in (e.g. one expert's columns of V). */
void mp_linear_rows_ld(float *y, const float *x, const mp_weight *w, size_t ldw, int n, int in, int outd);

/* y[k] += sum over e < n_sel of W1[k][col_e .. col_e + w) . x1[e] (+ the same
 * with W2 and x2 when x2), for k < outd: the expert products of one token,
 * col_e = sel[e] * w, x1 / x2 [n_sel][w], W of row stride ldw. Reads each row
 * of W front to back (the hardware prefetches it), where one expert's
 * columns at a time would miss the cache on every row. For every k the same
 * operations in the same order whatever the dtype. */
void mp_linear_cols(float *y, const mp_weight *w1, const float *x1, const mp_weight *w2, const float *x2,
                    size_t ldw, const int32_t *sel, int n_sel, int w, int outd);

/* y = x W^T + beta y: y [n][outd] of row stride ldy, x [n][in] of stride ldx,
 * W [outd][in] of row stride ldw. n == 1 runs the row kernel (as
 * mp_linear_rows: the result does not depend on the dtype or on how the call
 * is cut), n > 1 sgemm; a bf16 W is widened into scratch[0..scratch_n)
 * (scratch_n >= in; unused for n == 1 or float32) a block of rows at a time,
 * each block one sgemm. */
void mp_linear(float *y, int ldy, const float *x, int ldx, const mp_weight *w, int ldw, int n, int in, int outd,
               float beta, float *scratch, size_t scratch_n);

/* The weight starting `elems` elements further (a column or row offset). */
static inline mp_weight mp_weight_at(const mp_weight *w, size_t elems) {
    mp_weight r = {w->f32 ? w->f32 + elems : NULL, w->bf16 ? w->bf16 + elems : NULL};
    return r;
}

#endif
