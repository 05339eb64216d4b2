/* cuda/weights.h — an mp_model's weights on the GPU.
 *
 * Matrices (every GEMM operand: attention projections, router W1/W2, expert
 * U/V/B, embeddings, lm_head) are bf16; vectors that feed non-GEMM math stay
 * float32: RMSNorm weights, expert biases (added to the fp32 GEMM output
 * before relu^2) and the router BatchNorm running statistics (the routing
 * threshold is knife-edge sensitive, DESIGN.md §2).
 *
 * Upload converts the host float32 arena of mp_model (core/model/model.h). For
 * bf16 checkpoints this is exact (the arena holds bf16 values widened to
 * f32). Follow-up: upload straight from the safetensors mmap to skip the
 * host f32 arena (docs/cuda.md).
 *
 * Ownership: mp_cuda_weights_upload allocates every device buffer;
 * mp_cuda_weights_free releases them (NULL: no-op). lm_head aliases embed
 * when the model ties its embeddings (freed once). The host model is only
 * read during the upload.
 */
#ifndef MP_CUDA_WEIGHTS_H
#define MP_CUDA_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __CUDACC__
#include <cuda_bf16.h>
typedef __nv_bfloat16 mp_bf16;
#else
typedef uint16_t mp_bf16; /* bf16 bit pattern; same size and layout */
#endif

#ifdef __cplusplus
extern "C" {
#endif
#include "core/util/error.h"
#include "core/model/model.h"

typedef struct mp_cuda_layer {
    float *attn_norm, *ffn_norm;    /* [d] */
    mp_bf16 *wq;                    /* [H*hd][d] */
    mp_bf16 *wk, *wv;               /* [KV*hd][d] */
    mp_bf16 *wo;                    /* [d][H*hd] */
    /* router, only when l % G == 0 (else NULL) */
    mp_bf16 *router_w1, *router_w2; /* [Hm*E][d] */
    float *bn1_mean, *bn1_var;      /* [Hm] */
    float *bn2_mean, *bn2_var;      /* [Hm] */
    /* VD: m2 = m/2, dh = d/2 */
    mp_bf16 *u1, *u2;               /* [E*m2][d] */
    float *u1_bias, *u2_bias;       /* [E*m2] */
    mp_bf16 *v11, *v12, *v21, *v22; /* [dh][E*m2] */
    mp_bf16 *b1, *b2;               /* [E][dh] */
    /* HD */
    mp_bf16 *u;                     /* [E*m][d] */
    float *u_bias;                  /* [E*m] */
    mp_bf16 *v;                     /* [d][E*m] */
    mp_bf16 *b;                     /* [E][d] */
} mp_cuda_layer;

typedef struct mp_cuda_weights {
    mp_bf16 *embed;                 /* [V][d] */
    mp_bf16 *lm_head;               /* [V][d]; == embed when tied */
    float *final_norm;              /* [d] */
    mp_cuda_layer *layers;          /* [L] host array of device pointers */
    int n_layers;
    size_t bytes;                   /* device bytes allocated */
    void **allocs;                  /* every device allocation, for free */
    size_t n_allocs, cap_allocs;
} mp_cuda_weights;

/* Copy m's weights to the current CUDA device (bf16 / f32 as above).
 * @return 0, MP_ENOMEM (host or device memory) or MP_EINTERNAL (CUDA error). */
int mp_cuda_weights_upload(const mp_model *m, mp_cuda_weights **out, mp_error *err);
void mp_cuda_weights_free(mp_cuda_weights *w);

#ifdef __cplusplus
}
#endif

#endif
