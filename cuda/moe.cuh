/* cuda/moe.cuh — the VD / HD expert mixtures from the compact routing lists
 * (mirror of mp_cpu_expert_up, mp_cpu_moe_vd / mp_cpu_moe_hd's sparse part,
 * mask_correction and steer_correction in core/model/forward_cpu.c).
 *
 * The dense V / B GEMMs that follow are done by the caller (cuda/forward.cu)
 * on the mixed inputs written here; this file owns the sparse part:
 *   alpha_h = sum_i g1[h,i] a_i,  beta_h = sum_j g2[h,j] b_j     (per head)
 *   A_i = sum_h g1[h,i],          D_j = sum_h g2[h,j]
 *   y12_i = sum_h g1[h,i] beta_h  (= sum_j w_ij b_j)
 *   y21_j = sum_h g2[h,j] alpha_h (= sum_i w_ij a_i)
 *   y11_i = A_i a_i,  y22_j = D_j b_j
 * then the mask correction over masked *active* pairs (i,j) of each head,
 * c = g1[h,i] g2[h,j]: A_i -= c, D_j -= c, y12_i -= c b_j, y21_j -= c a_i,
 * and steering (c = +S for each steered expert of the group, active or not).
 * Cost per token: O(active pairs * m2) plus O((Hm*k)^2) index compares;
 * never O(E^2).
 *
 * Work split: one block per token; each distinct touched expert of a factor
 * is computed by exactly one thread (the "owner": its first occurrence in
 * head order, or its first steering entry when it is not active), which
 * sums its contributions in the CPU's order and writes its rows, so the
 * kernel is deterministic and needs no atomics. Rows of untouched experts
 * must be zero on entry (the caller clears the buffers).
 */
#ifndef MP_CUDA_MOE_CUH
#define MP_CUDA_MOE_CUH

#include "common.cuh"

#define MP_CUDA_MAX_MS 32 /* largest per-expert width m/2 (VD) or m (HD) */

/* One steering entry on the device (mirror of mp_steer). */
typedef struct mp_cuda_steer {
    int group, i, j;
    float strength;
} mp_cuda_steer;

typedef struct mp_cuda_moe_args {
    int n, E, Hm, ms, cap, group;     /* ms: m/2 (VD) or m (HD) */
    int vd;                           /* 1: VD, 0: HD */
    const int32_t *cnt, *idx;         /* routing lists (router.cuh layout) */
    const float *p;
    const float *act1;                /* fp32 [n][E*ms]: a_i (VD) or a_i (HD) */
    const float *act2;                /* fp32 [n][E*ms]: b_j (VD); NULL for HD */
    bf16 *y11, *y12, *y21, *y22;      /* bf16 [n][E*ms]; HD uses y21 only */
    bf16 *coef_a, *coef_d;            /* bf16 [n][E]; HD uses coef_d only */
    const uint32_t *mask_ids;         /* sorted flat ids i*E+j masked in this group (NULL: none) */
    int n_mask;
    const uint8_t *row_any;           /* [E]: some (i,*) masked in this group */
    const mp_cuda_steer *steer;       /* all steering entries (filtered by group) */
    int n_steer;
} mp_cuda_moe_args;

/* a[t][c] = relu(a[t][c] + bias[c])^2 in place, n rows of width w. */
int mp_cuda_bias_relu2(float *a, const float *bias, int n, int w, cudaStream_t st, mp_error *err);

/* Write the mixed inputs and coefficients described above.
 * @return 0, MP_EUNSUPPORTED (ms > MP_CUDA_MAX_MS) or MP_EINTERNAL. */
int mp_cuda_moe_mix(const mp_cuda_moe_args *a, cudaStream_t st, mp_error *err);

#endif
