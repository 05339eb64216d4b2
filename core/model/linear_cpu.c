/* core/model/linear_cpu.c — dense projections over float32 or bf16 weights
 * (see linear_cpu.h). */
#include "core/model/linear_cpu.h"

#include <cblas.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

typedef float mp_v8 __attribute__((vector_size(32)));
typedef uint16_t mp_u16x8 __attribute__((vector_size(16)));
typedef uint32_t mp_u32x8 __attribute__((vector_size(32)));

/* *v = 8 weights of a row at k, widened when bf16 (exact). */
static inline __attribute__((always_inline)) void load8(mp_v8 *v, const float *wf, const uint16_t *wb, int k) {
    if (wb) {
        mp_u16x8 h;
        memcpy(&h, wb + k, sizeof h);
        mp_u32x8 u = __builtin_convertvector(h, mp_u32x8) << 16;
        memcpy(v, &u, sizeof *v);
    } else {
        memcpy(v, wf + k, sizeof *v);
    }
}

static inline __attribute__((always_inline)) float load1(const float *wf, const uint16_t *wb, int k) {
    if (!wb) return wf[k];
    uint16_t h;
    memcpy(&h, wb + k, sizeof h);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Output rows [j0, j1) for the n rows of x: each weight row is read once for
 * up to 4 rows of x (then again from cache). Two 8-lane partial sums over
 * blocks of 16, a scalar tail, a fixed reduction tree, no FMA: the AVX2 clone
 * and the default (SSE2) one give the same bits (lane-wise IEEE mul and add).
 * bf (a constant after inlining): the weights are bf16. */
static inline __attribute__((always_inline)) void rows_body(float *y, const float *x, const mp_weight *w,
                                                            size_t ldw, int n, int in, int outd, int j0, int j1,
                                                            const int bf) {
    const int k16 = in & ~15;
    for (int j = j0; j < j1; j++) {
        const float *wf = bf ? NULL : w->f32 + (size_t)j * ldw;
        const uint16_t *wb = bf ? w->bf16 + (size_t)j * ldw : NULL;
        for (int r0 = 0; r0 < n; r0 += 4) {
            const int nr = n - r0 < 4 ? n - r0 : 4;
            const float *xr = x + (size_t)r0 * in;
            mp_v8 a0[4] = {{0}}, a1[4] = {{0}};
            for (int k = 0; k < k16; k += 16) {
                mp_v8 w0, w1;
                load8(&w0, wf, wb, k);
                load8(&w1, wf, wb, k + 8);
                for (int r = 0; r < nr; r++) {
                    mp_v8 x0, x1;
                    memcpy(&x0, xr + (size_t)r * in + k, sizeof x0);
                    memcpy(&x1, xr + (size_t)r * in + k + 8, sizeof x1);
                    mp_v8 p0 = x0 * w0, p1 = x1 * w1;
                    a0[r] += p0;
                    a1[r] += p1;
                }
            }
            for (int r = 0; r < nr; r++) {
                float tail = 0.0f;
                for (int k = k16; k < in; k++) {
                    float p = xr[(size_t)r * in + k] * load1(wf, wb, k);
                    tail += p;
                }
                mp_v8 a = a0[r] + a1[r];
                y[(size_t)(r0 + r) * outd + j] =
                    (((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))) + tail;
            }
        }
    }
}

__attribute__((target_clones("avx2", "default"))) static void rows_range(float *y, const float *x,
                                                                          const mp_weight *w, size_t ldw, int n,
                                                                          int in, int outd, int j0, int j1) {
    if (w->bf16) rows_body(y, x, w, ldw, n, in, outd, j0, j1, 1);
    else rows_body(y, x, w, ldw, n, in, outd, j0, j1, 0);
}

typedef struct rows_job {
    float *y;
    const float *x;
    const mp_weight *w;
    size_t ldw;
    int n, in, outd, j0, j1;
} rows_job;

static void *rows_worker(void *arg) {
    rows_job *j = arg;
    rows_range(j->y, j->x, j->w, j->ldw, j->n, j->in, j->outd, j->j0, j->j1);
    return NULL;
}

/* A large W is split by output rows over the threads OpenBLAS may use
 * (openblas_get_num_threads, at most 8): each y[r][j] is still computed by
 * one thread in the order above, so the split changes no bit. Small matrices
 * stay on the calling thread. */
void mp_linear_rows_ld(float *y, const float *x, const mp_weight *w, size_t ldw, int n, int in, int outd) {
    int T = openblas_get_num_threads();
    if (T > 8) T = 8;
    if (T <= 1 || (size_t)outd * (size_t)in < ((size_t)1 << 21) || outd < 2 * T) {
        rows_range(y, x, w, ldw, n, in, outd, 0, outd);
        return;
    }
    pthread_t tid[8];
    rows_job jobs[8];
    int started[8] = {0};
    for (int k = 0; k < T; k++) {
        jobs[k] = (rows_job){y, x, w, ldw, n, in, outd, (int)((long)outd * k / T), (int)((long)outd * (k + 1) / T)};
        if (k > 0) started[k] = pthread_create(&tid[k], NULL, rows_worker, &jobs[k]) == 0;
    }
    rows_worker(&jobs[0]);
    for (int k = 1; k < T; k++) {
        if (started[k]) pthread_join(tid[k], NULL);
        else rows_worker(&jobs[k]); /* no thread: do its share here */
    }
}

void mp_linear_rows(float *y, const float *x, const mp_weight *w, int n, int in, int outd) {
    mp_linear_rows_ld(y, x, w, (size_t)in, n, in, outd);
}

static void gemm_f32(float *y, int ldy, const float *x, int ldx, const float *w, int ldw, int n, int in, int outd,
                     float beta) {
    if (n == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, outd, in, 1.0f, w, ldw, x, 1, beta, y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, outd, in, 1.0f, x, ldx, w, ldw, beta, y, ldy);
}

void mp_linear(float *y, int ldy, const float *x, int ldx, const mp_weight *w, int ldw, int n, int in, int outd,
               float beta, float *scratch, size_t scratch_n) {
    if (!w->bf16) {
        gemm_f32(y, ldy, x, ldx, w->f32, ldw, n, in, outd, beta);
        return;
    }
    size_t rows = scratch_n / (size_t)in;
    if (rows < 1) rows = 1; /* mp_state_create sizes scratch_n >= every in */
    for (int j0 = 0; j0 < outd;) {
        const int nj = (size_t)(outd - j0) < rows ? outd - j0 : (int)rows;
        mp_weight_block(w, (size_t)ldw, (size_t)j0, (size_t)nj, 0, (size_t)in, scratch);
        gemm_f32(y + j0, ldy, x, ldx, scratch, in, n, in, nj, beta);
        j0 += nj;
    }
}
