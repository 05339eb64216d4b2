/* cuda/weights.cu — upload an mp_model to the GPU (see weights.h). Float32
 * host tensors go through a pinned-free staging buffer on the device and are
 * converted to bf16 there by a small kernel, chunk by chunk. */
#include "weights.h"

#include <stdlib.h>
#include <string.h>

#include "common.cuh"

#define STAGE_FLOATS ((size_t)1 << 24) /* 64 MB staging buffer */

static __global__ void f32_to_bf16_kernel(bf16 *dst, const float *src, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = __float2bfloat16_rn(src[i]);
}

typedef struct uploader {
    mp_cuda_weights *w;
    float *stage; /* device [STAGE_FLOATS] */
} uploader;

static int track(mp_cuda_weights *w, void *p, mp_error *err) {
    if (w->n_allocs == w->cap_allocs) {
        size_t cap = w->cap_allocs ? 2 * w->cap_allocs : 64;
        void **a = (void **)realloc(w->allocs, cap * sizeof *a);
        if (!a) {
            cudaFree(p);
            return mp_fail(err, MP_ENOMEM, "out of host memory");
        }
        w->allocs = a;
        w->cap_allocs = cap;
    }
    w->allocs[w->n_allocs++] = p;
    return 0;
}

/* Float32 copy of n host floats (NULL host pointer: *out = NULL). */
static int up_f32(uploader *u, const float *host, size_t n, float **out, mp_error *err) {
    *out = NULL;
    if (!host) return 0;
    void *p = NULL;
    CUDA_CHECK(cudaMalloc(&p, n * sizeof(float)), err);
    MP_TRY(track(u->w, p, err));
    u->w->bytes += n * sizeof(float);
    CUDA_CHECK(cudaMemcpy(p, host, n * sizeof(float), cudaMemcpyHostToDevice), err);
    *out = (float *)p;
    return 0;
}

/* bf16 copy of n host floats, converted on the device in staging chunks. */
static int up_bf16(uploader *u, const float *host, size_t n, mp_bf16 **out, mp_error *err) {
    *out = NULL;
    if (!host) return 0;
    void *p = NULL;
    CUDA_CHECK(cudaMalloc(&p, n * sizeof(bf16)), err);
    MP_TRY(track(u->w, p, err));
    u->w->bytes += n * sizeof(bf16);
    for (size_t off = 0; off < n; off += STAGE_FLOATS) {
        size_t c = n - off < STAGE_FLOATS ? n - off : STAGE_FLOATS;
        CUDA_CHECK(cudaMemcpy(u->stage, host + off, c * sizeof(float), cudaMemcpyHostToDevice), err);
        f32_to_bf16_kernel<<<mp_cdiv(c, 256), 256>>>((bf16 *)p + off, u->stage, c);
        CUDA_LAUNCH_CHECK(err);
    }
    CUDA_CHECK(cudaDeviceSynchronize(), err); /* the staging buffer is reused */
    *out = (mp_bf16 *)p;
    return 0;
}

/* bf16 copy of an n-element host weight matrix: bf16 bits are copied as they
 * are (the checkpoint's own), float32 ones converted as above. Absent: NULL. */
static int up_weight(uploader *u, const mp_weight *w, size_t n, mp_bf16 **out, mp_error *err) {
    *out = NULL;
    if (!w->bf16) return up_bf16(u, w->f32, n, out, err);
    void *p = NULL;
    CUDA_CHECK(cudaMalloc(&p, n * sizeof(bf16)), err);
    MP_TRY(track(u->w, p, err));
    u->w->bytes += n * sizeof(bf16);
    CUDA_CHECK(cudaMemcpy(p, w->bf16, n * sizeof(bf16), cudaMemcpyHostToDevice), err);
    *out = (mp_bf16 *)p;
    return 0;
}

static int upload_layer(uploader *u, const mp_config *c, const mp_layer *y, mp_cuda_layer *g, mp_error *err) {
    const size_t d = (size_t)c->hidden_size, hd = (size_t)c->head_dim;
    const size_t qd = (size_t)c->n_heads * hd, kvd = (size_t)c->n_kv_heads * hd;
    const size_t E = (size_t)c->moe_experts, Hm = (size_t)c->moe_heads, m = (size_t)c->moe_dim;
    MP_TRY(up_f32(u, y->attn_norm, d, &g->attn_norm, err));
    MP_TRY(up_f32(u, y->ffn_norm, d, &g->ffn_norm, err));
    MP_TRY(up_weight(u, &y->wq, qd * d, &g->wq, err));
    MP_TRY(up_weight(u, &y->wk, kvd * d, &g->wk, err));
    MP_TRY(up_weight(u, &y->wv, kvd * d, &g->wv, err));
    MP_TRY(up_weight(u, &y->wo, d * qd, &g->wo, err));
    MP_TRY(up_weight(u, &y->router_w1, Hm * E * d, &g->router_w1, err));
    MP_TRY(up_weight(u, &y->router_w2, Hm * E * d, &g->router_w2, err));
    MP_TRY(up_f32(u, y->bn1_mean, Hm, &g->bn1_mean, err));
    MP_TRY(up_f32(u, y->bn1_var, Hm, &g->bn1_var, err));
    MP_TRY(up_f32(u, y->bn2_mean, Hm, &g->bn2_mean, err));
    MP_TRY(up_f32(u, y->bn2_var, Hm, &g->bn2_var, err));
    if (c->decompose == MP_VD) {
        const size_t eu = E * (m / 2), dh = d / 2;
        MP_TRY(up_weight(u, &y->u1, eu * d, &g->u1, err));
        MP_TRY(up_weight(u, &y->u2, eu * d, &g->u2, err));
        MP_TRY(up_f32(u, y->u1_bias, eu, &g->u1_bias, err));
        MP_TRY(up_f32(u, y->u2_bias, eu, &g->u2_bias, err));
        MP_TRY(up_weight(u, &y->v11, dh * eu, &g->v11, err));
        MP_TRY(up_weight(u, &y->v12, dh * eu, &g->v12, err));
        MP_TRY(up_weight(u, &y->v21, dh * eu, &g->v21, err));
        MP_TRY(up_weight(u, &y->v22, dh * eu, &g->v22, err));
        MP_TRY(up_bf16(u, y->b1, E * dh, &g->b1, err));
        MP_TRY(up_bf16(u, y->b2, E * dh, &g->b2, err));
    } else {
        const size_t eu = E * m;
        MP_TRY(up_weight(u, &y->u, eu * d, &g->u, err));
        MP_TRY(up_f32(u, y->u_bias, eu, &g->u_bias, err));
        MP_TRY(up_weight(u, &y->v, d * eu, &g->v, err));
        MP_TRY(up_bf16(u, y->b, E * d, &g->b, err));
    }
    return 0;
}

static int upload_all(uploader *u, const mp_model *m, mp_error *err) {
    const mp_config *c = &m->cfg;
    const size_t V = (size_t)c->vocab_size, d = (size_t)c->hidden_size;
    mp_cuda_weights *w = u->w;
    MP_TRY(up_weight(u, &m->embed, V * d, &w->embed, err));
    if (m->cfg.tie_word_embeddings) w->lm_head = w->embed;
    else MP_TRY(up_weight(u, &m->lm_head, V * d, &w->lm_head, err));
    MP_TRY(up_f32(u, m->final_norm, d, &w->final_norm, err));
    for (int l = 0; l < c->n_layers; l++) MP_TRY(upload_layer(u, c, &m->layers[l], &w->layers[l], err));
    return 0;
}

extern "C" int mp_cuda_weights_upload(const mp_model *m, mp_cuda_weights **out, mp_error *err) {
    *out = NULL;
    mp_cuda_weights *w = (mp_cuda_weights *)calloc(1, sizeof *w);
    if (!w) return mp_fail(err, MP_ENOMEM, "out of host memory");
    w->n_layers = m->cfg.n_layers;
    w->layers = (mp_cuda_layer *)calloc((size_t)m->cfg.n_layers, sizeof *w->layers);
    uploader u = {w, NULL};
    int rc = 0;
    cudaError_t ce;
    if (!w->layers) {
        rc = mp_fail(err, MP_ENOMEM, "out of host memory");
        goto cleanup;
    }
    ce = cudaMalloc((void **)&u.stage, STAGE_FLOATS * sizeof(float));
    if (ce != cudaSuccess) {
        rc = mp_fail(err, MP_ENOMEM, "CUDA: cannot allocate the upload staging buffer: %s", cudaGetErrorString(ce));
        goto cleanup;
    }
    rc = upload_all(&u, m, err);
    if (rc < 0) mp_error_prefix(err, "uploading the weights to the GPU (%zu MB so far)", w->bytes >> 20);
cleanup:
    cudaFree(u.stage);
    if (rc < 0) {
        mp_cuda_weights_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

extern "C" void mp_cuda_weights_free(mp_cuda_weights *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_allocs; i++) cudaFree(w->allocs[i]);
    free(w->allocs);
    free(w->layers);
    free(w);
}
