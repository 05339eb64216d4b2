/* tests/unit/test_linear_cpu.c — the decode kernels of core/model/linear_cpu:
 * mp_linear_rows and mp_linear_cols against a float64 sum, bit-identical
 * whatever the thread split (1, 2, 4 OpenBLAS threads: the worker pool splits
 * the output rows) and whatever the weight's dtype (bf16 in place vs the same
 * values widened to float32). Run by ctest with the AVX2 kernels and again
 * with MP_KERNELS=portable. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/model/linear_cpu.h"

static unsigned rng = 2024;
static float frand(void) {
    rng = rng * 1103515245u + 12345u;
    return (float)((rng >> 8) % 20001) / 10000.0f - 1.0f;
}

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16); /* truncation: exact value of the bf16 below */
}

static float from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

int main(void) {
    enum { OUT = 1030, IN = 200, E = 96, W = 8, NSEL = 40, NX = 3 };
    const size_t ldv = (size_t)E * W; /* V-like: [OUT][E*W] */
    uint16_t *vb1 = malloc(OUT * ldv * 2), *vb2 = malloc(OUT * ldv * 2), *ub = malloc((size_t)OUT * IN * 2);
    float *vf1 = malloc(OUT * ldv * 4), *vf2 = malloc(OUT * ldv * 4), *uf = malloc((size_t)OUT * IN * 4);
    float x1[NSEL * W], x2[NSEL * W], x[NX * IN];
    int32_t sel[NSEL];
    for (size_t i = 0; i < OUT * ldv; i++) {
        vb1[i] = to_bf16(frand()), vf1[i] = from_bf16(vb1[i]);
        vb2[i] = to_bf16(frand()), vf2[i] = from_bf16(vb2[i]);
    }
    for (size_t i = 0; i < (size_t)OUT * IN; i++) ub[i] = to_bf16(frand()), uf[i] = from_bf16(ub[i]);
    for (int i = 0; i < NSEL * W; i++) x1[i] = frand(), x2[i] = frand();
    for (int i = 0; i < NX * IN; i++) x[i] = frand();
    for (int e = 0; e < NSEL; e++) sel[e] = (e * 7 + 3) % E; /* distinct, out of order */

    mp_weight b1 = {NULL, vb1}, b2 = {NULL, vb2}, f1 = {vf1, NULL}, f2 = {vf2, NULL};
    mp_weight bu = {NULL, ub}, fu = {uf, NULL};
    static float ref_cols[OUT], first_cols[OUT], ref_rows[NX * OUT], first_rows[NX * OUT];
    /* float64 references */
    for (int k = 0; k < OUT; k++) {
        double s = 0;
        for (int e = 0; e < NSEL; e++)
            for (int q = 0; q < W; q++)
                s += (double)x1[e * W + q] * vf1[k * ldv + (size_t)sel[e] * W + q] +
                     (double)x2[e * W + q] * vf2[k * ldv + (size_t)sel[e] * W + q];
        ref_cols[k] = (float)s;
        for (int r = 0; r < NX; r++) {
            double t = 0;
            for (int i = 0; i < IN; i++) t += (double)x[r * IN + i] * uf[(size_t)k * IN + i];
            ref_rows[r * OUT + k] = (float)t;
        }
    }
    const int threads[3] = {1, 2, 4};
    int cols_same = 1, rows_same = 1;
    double cols_err = 0, rows_err = 0;
    for (int ti = 0; ti < 3; ti++) {
        openblas_set_num_threads(threads[ti]);
        for (int dt = 0; dt < 2; dt++) {
            static float y[OUT], yr[NX * OUT];
            for (int k = 0; k < OUT; k++) y[k] = 0.0f;
            mp_linear_cols(y, dt ? &f1 : &b1, x1, dt ? &f2 : &b2, x2, ldv, sel, NSEL, W, OUT);
            mp_linear_rows(yr, x, dt ? &fu : &bu, NX, IN, OUT);
            if (ti == 0 && dt == 0) {
                memcpy(first_cols, y, sizeof y);
                memcpy(first_rows, yr, sizeof yr);
            } else {
                cols_same &= !memcmp(first_cols, y, sizeof y);
                rows_same &= !memcmp(first_rows, yr, sizeof yr);
            }
            for (int k = 0; k < OUT; k++) cols_err = fmax(cols_err, fabs((double)y[k] - ref_cols[k]));
            for (int k = 0; k < NX * OUT; k++) rows_err = fmax(rows_err, fabs((double)yr[k] - ref_rows[k]));
        }
    }
    CHECK(cols_same); /* 1, 2, 4 threads x bf16 / float32: the same bits */
    CHECK(rows_same);
    CHECK(cols_err < 1e-4); /* sums of 640 products of |.| <= 1 */
    CHECK(rows_err < 1e-4);
    printf("mp_linear_cols max |err| %.2e, mp_linear_rows max |err| %.2e vs float64\n", cols_err, rows_err);
    free(vb1), free(vb2), free(ub), free(vf1), free(vf2), free(uf);
    return check_report("test_linear_cpu");
}
