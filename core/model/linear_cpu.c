/* core/model/linear_cpu.c — dense projections over float32 or bf16 weights
 * (see linear_cpu.h). */
#include "core/model/linear_cpu.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/util/pool.h"

/* ---- the row kernel ----------------------------------------------------
 * y[r][j] = x[r] . W[j]: for every (r, j) the same operations in the same
 * order whatever n, r, the thread split and the weight's dtype (bf16 ->
 * float32 is exact), so a row's result does not depend on the rows next to
 * it. Two implementations, chosen once per process by the CPU: AVX2 + FMA
 * (four 8-lane fused multiply-add chains over blocks of 32, a scalar fmaf
 * tail, a fixed reduction tree) and a portable one (the same shape, separate
 * multiply and add). Each is self-consistent; they differ from each other in
 * the last bits, which never mix within one process. */

static inline __attribute__((always_inline)) float load1(const float *wf, const uint16_t *wb, int k) {
    if (!wb) return wf[k];
    uint16_t h;
    memcpy(&h, wb + k, sizeof h);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Fixed reduction of the four chains' 32 lanes. */
static inline __attribute__((always_inline)) float reduce32(const float l[32]) {
    float q[8];
    for (int i = 0; i < 8; i++) q[i] = (l[i] + l[8 + i]) + (l[16 + i] + l[24 + i]);
    return ((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]));
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* AVX2 and FMA, decided once (every thread computes the same answer);
 * MP_KERNELS=portable selects the portable kernels (tests run both). */
static int have_avx2_fma(void) {
    static int have = -1;
    int h = __atomic_load_n(&have, __ATOMIC_RELAXED);
    if (h < 0) {
        const char *env = getenv("MP_KERNELS");
        h = !(env && !strcmp(env, "portable")) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        __atomic_store_n(&have, h, __ATOMIC_RELAXED);
    }
    return h;
}

__attribute__((target("avx2,fma"))) static inline __m256 w8_avx2(const float *wf, const uint16_t *wb, int k) {
    if (wb) {
        __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(wb + k));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    return _mm256_loadu_ps(wf + k);
}

/* The end of one (row r, weight row) dot product: the four chains reduced,
 * plus the scalar tail over the last in % 32 elements. */
__attribute__((target("avx2,fma"))) static inline float finish_avx2(__m256 a0, __m256 a1, __m256 a2, __m256 a3,
                                                                    const float *xr, const float *wf,
                                                                    const uint16_t *wb, int k32, int in) {
    float l[32], tail = 0.0f;
    for (int k = k32; k < in; k++) tail = fmaf(xr[k], load1(wf, wb, k), tail);
    if (!k32) return tail; /* narrow rows (an expert's columns of V): no chains */
    _mm256_storeu_ps(l, a0);
    _mm256_storeu_ps(l + 8, a1);
    _mm256_storeu_ps(l + 16, a2);
    _mm256_storeu_ps(l + 24, a3);
    return reduce32(l) + tail;
}

/* One row of x (xa) against one weight row. */
__attribute__((target("avx2,fma"))) static inline float tile1_avx2(const float *xa, const float *wf,
                                                                   const uint16_t *wb, int in) {
    const int k32 = in & ~31;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int k = 0; k < k32; k += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(xa + k), w8_avx2(wf, wb, k), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(xa + k + 8), w8_avx2(wf, wb, k + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(xa + k + 16), w8_avx2(wf, wb, k + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(xa + k + 24), w8_avx2(wf, wb, k + 24), a3);
    }
    return finish_avx2(a0, a1, a2, a3, xa, wf, wb, k32, in);
}

/* Two rows of x (xa, xb) against one weight row, each weight widened once:
 * per row the same operations as tile1_avx2. */
__attribute__((target("avx2,fma"))) static inline void tile2_avx2(float *ya, float *yb, const float *xa,
                                                                  const float *xb, const float *wf,
                                                                  const uint16_t *wb, int in) {
    const int k32 = in & ~31;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int k = 0; k < k32; k += 32) {
        const __m256 w0 = w8_avx2(wf, wb, k), w1 = w8_avx2(wf, wb, k + 8);
        const __m256 w2 = w8_avx2(wf, wb, k + 16), w3 = w8_avx2(wf, wb, k + 24);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(xa + k), w0, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(xa + k + 8), w1, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(xa + k + 16), w2, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(xa + k + 24), w3, a3);
        b0 = _mm256_fmadd_ps(_mm256_loadu_ps(xb + k), w0, b0);
        b1 = _mm256_fmadd_ps(_mm256_loadu_ps(xb + k + 8), w1, b1);
        b2 = _mm256_fmadd_ps(_mm256_loadu_ps(xb + k + 16), w2, b2);
        b3 = _mm256_fmadd_ps(_mm256_loadu_ps(xb + k + 24), w3, b3);
    }
    *ya = finish_avx2(a0, a1, a2, a3, xa, wf, wb, k32, in);
    *yb = finish_avx2(b0, b1, b2, b3, xb, wf, wb, k32, in);
}

/* Weight rows in blocks of 32 (at most 256 KB of a 2048-wide float32 row
 * block: stays in L2) while every pair of x rows (L1) runs over the block. */
__attribute__((target("avx2,fma"))) static void rows_range_avx2(float *y, const float *x, const mp_weight *w,
                                                                size_t ldw, int n, int in, int outd, int j0,
                                                                int j1) {
    for (int jb = j0; jb < j1; jb += 32) {
        const int je = j1 - jb < 32 ? j1 : jb + 32;
        int r = 0;
        for (; r + 2 <= n; r += 2)
            for (int j = jb; j < je; j++) {
                const float *wf = w->bf16 ? NULL : w->f32 + (size_t)j * ldw;
                const uint16_t *wb = w->bf16 ? w->bf16 + (size_t)j * ldw : NULL;
                tile2_avx2(y + (size_t)r * outd + j, y + (size_t)(r + 1) * outd + j, x + (size_t)r * in,
                           x + (size_t)(r + 1) * in, wf, wb, in);
            }
        if (r < n)
            for (int j = jb; j < je; j++) {
                const float *wf = w->bf16 ? NULL : w->f32 + (size_t)j * ldw;
                const uint16_t *wb = w->bf16 ? w->bf16 + (size_t)j * ldw : NULL;
                y[(size_t)r * outd + j] = tile1_avx2(x + (size_t)r * in, wf, wb, in);
            }
    }
}

/* mp_linear_cols for w a multiple of 8: each expert's w columns as w/8
 * 8-lane FMAs into one accumulator per output row (W1 then W2 per expert), a
 * fixed reduction of its lanes per row. Four rows run side by side (four
 * independent FMA chains sharing each x load); every row's own order is the
 * one-row order, so the grouping changes no bit. Rows k0 .. k1-1. */
__attribute__((target("avx2,fma"))) static void cols_avx2(float *y, const mp_weight *w1, const float *x1,
                                                          const mp_weight *w2, const float *x2, size_t ldw,
                                                          const int32_t *sel, int n_sel, int w, int k0, int k1) {
    int k = k0;
    for (; k + 4 <= k1; k += 4) {
        const float *f1[4], *f2[4];
        const uint16_t *b1[4], *b2[4];
        for (int r = 0; r < 4; r++) {
            const size_t row = (size_t)(k + r) * ldw;
            f1[r] = w1->bf16 ? NULL : w1->f32 + row;
            b1[r] = w1->bf16 ? w1->bf16 + row : NULL;
            f2[r] = x2 && !w2->bf16 ? w2->f32 + row : NULL;
            b2[r] = x2 && w2->bf16 ? w2->bf16 + row : NULL;
        }
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
               a3 = _mm256_setzero_ps();
        for (int e = 0; e < n_sel; e++) {
            const int col = sel[e] * w;
            for (int q = 0; q < w; q += 8) {
                const __m256 u = _mm256_loadu_ps(x1 + (size_t)e * w + q);
                a0 = _mm256_fmadd_ps(u, w8_avx2(f1[0], b1[0], col + q), a0);
                a1 = _mm256_fmadd_ps(u, w8_avx2(f1[1], b1[1], col + q), a1);
                a2 = _mm256_fmadd_ps(u, w8_avx2(f1[2], b1[2], col + q), a2);
                a3 = _mm256_fmadd_ps(u, w8_avx2(f1[3], b1[3], col + q), a3);
                if (x2) {
                    const __m256 v = _mm256_loadu_ps(x2 + (size_t)e * w + q);
                    a0 = _mm256_fmadd_ps(v, w8_avx2(f2[0], b2[0], col + q), a0);
                    a1 = _mm256_fmadd_ps(v, w8_avx2(f2[1], b2[1], col + q), a1);
                    a2 = _mm256_fmadd_ps(v, w8_avx2(f2[2], b2[2], col + q), a2);
                    a3 = _mm256_fmadd_ps(v, w8_avx2(f2[3], b2[3], col + q), a3);
                }
            }
        }
        const __m256 acc[4] = {a0, a1, a2, a3};
        for (int r = 0; r < 4; r++) {
            float l[8];
            _mm256_storeu_ps(l, acc[r]);
            y[k + r] += ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
        }
    }
    for (; k < k1; k++) {
        const size_t row = (size_t)k * ldw;
        const float *f1 = w1->bf16 ? NULL : w1->f32 + row;
        const uint16_t *b1 = w1->bf16 ? w1->bf16 + row : NULL;
        const float *f2 = x2 && !w2->bf16 ? w2->f32 + row : NULL;
        const uint16_t *b2 = x2 && w2->bf16 ? w2->bf16 + row : NULL;
        __m256 acc = _mm256_setzero_ps();
        for (int e = 0; e < n_sel; e++) {
            const int col = sel[e] * w;
            for (int q = 0; q < w; q += 8) {
                acc = _mm256_fmadd_ps(_mm256_loadu_ps(x1 + (size_t)e * w + q), w8_avx2(f1, b1, col + q), acc);
                if (x2) acc = _mm256_fmadd_ps(_mm256_loadu_ps(x2 + (size_t)e * w + q), w8_avx2(f2, b2, col + q), acc);
            }
        }
        float l[8];
        _mm256_storeu_ps(l, acc);
        y[k] += ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
    }
}
#endif

/* The portable mp_linear_cols: the same shape with separate multiply and add. */
static void cols_portable(float *y, const mp_weight *w1, const float *x1, const mp_weight *w2, const float *x2,
                          size_t ldw, const int32_t *sel, int n_sel, int w, int k0, int k1) {
    for (int k = k0; k < k1; k++) {
        const size_t row = (size_t)k * ldw;
        const float *f1 = w1->bf16 ? NULL : w1->f32 + row;
        const uint16_t *b1 = w1->bf16 ? w1->bf16 + row : NULL;
        const float *f2 = x2 && !w2->bf16 ? w2->f32 + row : NULL;
        const uint16_t *b2 = x2 && w2->bf16 ? w2->bf16 + row : NULL;
        float l[8] = {0};
        for (int e = 0; e < n_sel; e++) {
            const int col = sel[e] * w;
            for (int q = 0; q < w; q++) {
                float p = x1[(size_t)e * w + q] * load1(f1, b1, col + q);
                l[q % 8] += p;
                if (x2) {
                    p = x2[(size_t)e * w + q] * load1(f2, b2, col + q);
                    l[q % 8] += p;
                }
            }
        }
        y[k] += ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
    }
}

/* Parts a large product splits into: as many as OpenBLAS may use threads
 * (openblas_get_num_threads), at most 8; run by core/util/pool. */
static int split_parts(void) {
    const int T = openblas_get_num_threads();
    return T > 8 ? 8 : T;
}

typedef struct cols_job {
    float *y;
    const mp_weight *w1, *w2;
    const float *x1, *x2;
    size_t ldw;
    const int32_t *sel;
    int n_sel, w, outd, parts;
} cols_job;

static void cols_range(const cols_job *j, int k0, int k1) {
#if defined(__x86_64__) || defined(__i386__)
    if (j->w % 8 == 0 && have_avx2_fma()) {
        cols_avx2(j->y, j->w1, j->x1, j->w2, j->x2, j->ldw, j->sel, j->n_sel, j->w, k0, k1);
        return;
    }
#endif
    cols_portable(j->y, j->w1, j->x1, j->w2, j->x2, j->ldw, j->sel, j->n_sel, j->w, k0, k1);
}

/* Part k of parts of the output rows, in multiples of 4 (the kernel's row
 * group; any split gives the same bits). */
static void cols_part(void *arg, int k) {
    const cols_job *j = arg;
    const int groups = (j->outd + 3) / 4;
    int k0 = (int)((long)groups * k / j->parts) * 4, k1 = (int)((long)groups * (k + 1) / j->parts) * 4;
    if (k1 > j->outd) k1 = j->outd;
    cols_range(j, k0, k1);
}

/* Large products split by output rows over the worker pool like the row
 * kernel (each y[k] computed by one thread in the same order). */
void mp_linear_cols(float *y, const mp_weight *w1, const float *x1, const mp_weight *w2, const float *x2,
                    size_t ldw, const int32_t *sel, int n_sel, int w, int outd) {
    cols_job job = {y, w1, w2, x1, x2, ldw, sel, n_sel, w, outd, 1};
    const int T = split_parts();
    const double macs = (double)outd * n_sel * w * (x2 ? 2 : 1);
    if (T <= 1 || macs < (double)(1 << 18) || outd < 8 * T) {
        cols_range(&job, 0, outd);
        return;
    }
    job.parts = T;
    mp_pool_run(cols_part, &job, T);
}

/* The portable kernel: the same shape with separate multiply and add. */
static void rows_range_portable(float *y, const float *x, const mp_weight *w, size_t ldw, int n, int in, int outd,
                                int j0, int j1) {
    const int k32 = in & ~31;
    for (int j = j0; j < j1; j++) {
        const float *wf = w->bf16 ? NULL : w->f32 + (size_t)j * ldw;
        const uint16_t *wb = w->bf16 ? w->bf16 + (size_t)j * ldw : NULL;
        for (int r = 0; r < n; r++) {
            const float *xr = x + (size_t)r * in;
            float l[32] = {0}, tail = 0.0f;
            for (int k = 0; k < k32; k += 32)
                for (int i = 0; i < 32; i++) {
                    float p = xr[k + i] * load1(wf, wb, k + i);
                    l[i] += p;
                }
            for (int k = k32; k < in; k++) {
                float p = xr[k] * load1(wf, wb, k);
                tail += p;
            }
            y[(size_t)r * outd + j] = k32 ? reduce32(l) + tail : tail;
        }
    }
}

static void rows_range(float *y, const float *x, const mp_weight *w, size_t ldw, int n, int in, int outd, int j0,
                       int j1) {
#if defined(__x86_64__) || defined(__i386__)
    if (have_avx2_fma()) {
        rows_range_avx2(y, x, w, ldw, n, in, outd, j0, j1);
        return;
    }
#endif
    rows_range_portable(y, x, w, ldw, n, in, outd, j0, j1);
}

typedef struct rows_job {
    float *y;
    const float *x;
    const mp_weight *w;
    size_t ldw;
    int n, in, outd, parts;
} rows_job;

/* Part k of parts of the output rows. */
static void rows_part(void *arg, int k) {
    const rows_job *j = arg;
    const int j0 = (int)((long)j->outd * k / j->parts), j1 = (int)((long)j->outd * (k + 1) / j->parts);
    rows_range(j->y, j->x, j->w, j->ldw, j->n, j->in, j->outd, j0, j1);
}

/* A large W is split by output rows into as many parts as OpenBLAS may use
 * threads (openblas_get_num_threads, at most 8), run by the worker pool
 * (core/util/pool.h): each y[r][j] is still computed by one thread in the
 * order above, so the split changes no bit. Small matrices stay on the
 * calling thread. */
void mp_linear_rows_ld(float *y, const float *x, const mp_weight *w, size_t ldw, int n, int in, int outd) {
    const int T = split_parts();
    if (T <= 1 || (size_t)outd * (size_t)in < ((size_t)1 << 21) || outd < 2 * T) {
        rows_range(y, x, w, ldw, n, in, outd, 0, outd);
        return;
    }
    rows_job job = {y, x, w, ldw, n, in, outd, T};
    mp_pool_run(rows_part, &job, T);
}

void mp_linear_rows(float *y, const float *x, const mp_weight *w, int n, int in, int outd) {
    mp_linear_rows_ld(y, x, w, (size_t)in, n, in, outd);
}

static void gemm_f32(float *y, int ldy, const float *x, int ldx, const float *w, int ldw, int n, int in, int outd,
                     float beta) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, outd, in, 1.0f, x, ldx, w, ldw, beta, y, ldy);
}

void mp_linear(float *y, int ldy, const float *x, int ldx, const mp_weight *w, int ldw, int n, int in, int outd,
               float beta, float *scratch, size_t scratch_n) {
    if (n == 1) { /* the row kernel: the same bits whatever the dtype and the shape of the call */
        if (beta == 0.0f) {
            mp_linear_rows_ld(y, x, w, (size_t)ldw, 1, in, outd);
            return;
        }
        float part[256];
        for (int j0 = 0; j0 < outd; j0 += 256) {
            const int nj = outd - j0 < 256 ? outd - j0 : 256;
            const mp_weight wj = mp_weight_at(w, (size_t)j0 * (size_t)ldw);
            mp_linear_rows_ld(part, x, &wj, (size_t)ldw, 1, in, nj);
            for (int j = 0; j < nj; j++) y[j0 + j] = beta * y[j0 + j] + part[j];
        }
        return;
    }
    if (!w->bf16) {
        gemm_f32(y, ldy, x, ldx, w->f32, ldw, n, in, outd, beta);
        return;
    }
    size_t rows = scratch_n / (size_t)in;
    if (rows < 1) rows = 1; /* mp_state_create sizes scratch_n >= every in */
    for (int j0 = 0; j0 < outd;) {
        const int nj = (size_t)(outd - j0) < rows ? outd - j0 : (int)rows;
        mp_weight_block(w, (size_t)ldw, (size_t)j0, (size_t)nj, 0, (size_t)in, scratch, (size_t)in);
        gemm_f32(y + j0, ldy, x, ldx, scratch, in, n, in, nj, beta);
        j0 += nj;
    }
}
