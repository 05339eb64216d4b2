/* cuda/forward.cu — the CUDA forward pass (see forward_cuda.h). The layer
 * loop is forward_chunk of core/model/forward_cpu.c, step for step, with each
 * mp_cpu_* kernel replaced by its mp_cuda_* twin and the OpenBLAS sgemm
 * calls by bf16 cuBLAS GEMMs. Residual adds are folded into the output
 * GEMMs (beta = 1 into the fp32 residual stream x). Everything runs on one
 * stream; the host waits only to copy logits / routing back. */
#include "forward_cuda.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attention.cuh"
#include "common.cuh"
#include "gemm.cuh"
#include "logsoftmax.cuh"
#include "moe.cuh"
#include "rmsnorm.cuh"
#include "rope.cuh"
#include "router.cuh"
#include "weights.h"

struct mp_cuda_state {
    const mp_model *m;
    mp_cuda_weights *w;
    cudaStream_t st;
    cublasHandle_t blas;
    int max_ctx, chunk, pos, cap;
    double threshold;            /* Phi^-1(1 - k/E) */
    /* device buffers */
    float *kcache, *vcache;      /* [L][max_ctx][KV*hd] fp32, keys after RoPE */
    float *rope_cos, *rope_sin;  /* [max_ctx][hd/2] */
    int32_t *ids, *targets;      /* [C] */
    double *lp;                  /* [C] */
    float *x;                    /* [C][d] residual stream */
    bf16 *xn;                    /* [C][d] normed input of the next GEMM */
    float *q;                    /* [C][H*hd] */
    bf16 *att;                   /* [C][H*hd] */
    float *z1, *z2;              /* [C][Hm*E] router logits */
    int32_t *r_cnt, *r_idx;      /* [C*2*Hm], [C*2*Hm][cap] routing of the current group */
    float *r_p;                  /* [C*2*Hm][cap] */
    int *overflow;               /* [1] largest head count above cap (0: none) */
    float *a1, *a2;              /* VD: [C][E*m2] each; HD: a1 [C][E*m] */
    bf16 *y11, *y12, *y21, *y22; /* VD: [C][E*m2]; HD: y21 [C][E*m] */
    bf16 *coef_a, *coef_d;       /* [C][E] */
    float *logits;               /* [C][V] */
    uint32_t *mask_ids;          /* sorted flat ids per group (NULL: no mask) */
    uint8_t *row_any;            /* [R][E] */
    int *mask_off;               /* host [R+1] offsets into mask_ids */
    mp_cuda_steer *steer;        /* device [n_steer] */
    int n_steer;
    /* host staging for the routing record */
    int32_t *h_cnt, *h_idx;
    float *h_p;
};

static int dalloc(void *pp, size_t bytes, size_t *total, mp_error *err) {
    void **p = (void **)pp;
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        *p = NULL;
        return mp_fail(err, MP_ENOMEM, "CUDA: cannot allocate %zu MB (%zu MB allocated so far): %s", bytes >> 20,
                       *total >> 20, cudaGetErrorString(e));
    }
    *total += bytes;
    return 0;
}

static int route_cap(const mp_config *c) {
    int cap = 16 * c->moe_topk;
    if (cap < 128) cap = 128;
    const char *env = getenv("MP_CUDA_ROUTE_CAP");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (!*end && v > 0 && v < (1L << 20)) cap = (int)v;
    }
    return cap < c->moe_experts ? cap : c->moe_experts;
}

static int alloc_buffers(mp_cuda_state *s, mp_error *err) {
    const mp_config *c = &s->m->cfg;
    const size_t C = (size_t)s->chunk, d = (size_t)c->hidden_size, hd = (size_t)c->head_dim;
    const size_t qd = (size_t)c->n_heads * hd, kvd = (size_t)c->n_kv_heads * hd;
    const size_t E = (size_t)c->moe_experts, Hm = (size_t)c->moe_heads, mm = (size_t)c->moe_dim;
    const size_t eu = c->decompose == MP_VD ? E * (mm / 2) : E * mm, V = (size_t)c->vocab_size;
    const size_t L = (size_t)c->n_layers, ctx = (size_t)s->max_ctx, lists = C * 2 * Hm, cap = (size_t)s->cap;
    size_t tot = 0;
    MP_TRY(dalloc(&s->kcache, L * ctx * kvd * sizeof(float), &tot, err));
    MP_TRY(dalloc(&s->vcache, L * ctx * kvd * sizeof(float), &tot, err));
    MP_TRY(dalloc(&s->rope_cos, ctx * (hd / 2) * sizeof(float), &tot, err));
    MP_TRY(dalloc(&s->rope_sin, ctx * (hd / 2) * sizeof(float), &tot, err));
    MP_TRY(dalloc(&s->ids, C * sizeof(int32_t), &tot, err));
    MP_TRY(dalloc(&s->targets, C * sizeof(int32_t), &tot, err));
    MP_TRY(dalloc(&s->lp, C * sizeof(double), &tot, err));
    MP_TRY(dalloc(&s->x, C * d * sizeof(float), &tot, err));
    MP_TRY(dalloc(&s->xn, C * d * sizeof(bf16), &tot, err));
    MP_TRY(dalloc(&s->q, C * qd * sizeof(float), &tot, err));
    MP_TRY(dalloc(&s->att, C * qd * sizeof(bf16), &tot, err));
    MP_TRY(dalloc(&s->z1, C * Hm * E * sizeof(float), &tot, err));
    MP_TRY(dalloc(&s->z2, C * Hm * E * sizeof(float), &tot, err));
    MP_TRY(dalloc(&s->r_cnt, lists * sizeof(int32_t), &tot, err));
    MP_TRY(dalloc(&s->r_idx, lists * cap * sizeof(int32_t), &tot, err));
    MP_TRY(dalloc(&s->r_p, lists * cap * sizeof(float), &tot, err));
    MP_TRY(dalloc(&s->overflow, sizeof(int), &tot, err));
    MP_TRY(dalloc(&s->a1, C * eu * sizeof(float), &tot, err));
    MP_TRY(dalloc(&s->y21, C * eu * sizeof(bf16), &tot, err));
    if (c->decompose == MP_VD) {
        MP_TRY(dalloc(&s->a2, C * eu * sizeof(float), &tot, err));
        MP_TRY(dalloc(&s->y11, C * eu * sizeof(bf16), &tot, err));
        MP_TRY(dalloc(&s->y12, C * eu * sizeof(bf16), &tot, err));
        MP_TRY(dalloc(&s->y22, C * eu * sizeof(bf16), &tot, err));
    }
    MP_TRY(dalloc(&s->coef_a, C * E * sizeof(bf16), &tot, err));
    MP_TRY(dalloc(&s->coef_d, C * E * sizeof(bf16), &tot, err));
    MP_TRY(dalloc(&s->logits, C * V * sizeof(float), &tot, err));
    CUDA_CHECK(cudaMemset(s->overflow, 0, sizeof(int)), err);
    s->h_cnt = (int32_t *)malloc(lists * sizeof(int32_t));
    s->h_idx = (int32_t *)malloc(lists * cap * sizeof(int32_t));
    s->h_p = (float *)malloc(lists * cap * sizeof(float));
    if (!s->h_cnt || !s->h_idx || !s->h_p) return mp_fail(err, MP_ENOMEM, "out of host memory");
    /* rotary tables, exactly as mp_state_create builds them */
    float *cs = (float *)malloc(ctx * (hd / 2) * sizeof(float)), *sn = (float *)malloc(ctx * (hd / 2) * sizeof(float));
    if (!cs || !sn) {
        free(cs);
        free(sn);
        return mp_fail(err, MP_ENOMEM, "out of host memory");
    }
    for (size_t p = 0; p < ctx; p++)
        for (size_t i = 0; i < hd / 2; i++) {
            double ang = (double)p * pow(c->rope_theta, -2.0 * (double)i / (double)hd);
            cs[p * (hd / 2) + i] = (float)cos(ang);
            sn[p * (hd / 2) + i] = (float)sin(ang);
        }
    cudaError_t e1 = cudaMemcpy(s->rope_cos, cs, ctx * (hd / 2) * sizeof(float), cudaMemcpyHostToDevice);
    cudaError_t e2 = cudaMemcpy(s->rope_sin, sn, ctx * (hd / 2) * sizeof(float), cudaMemcpyHostToDevice);
    free(cs);
    free(sn);
    CUDA_CHECK(e1, err);
    CUDA_CHECK(e2, err);
    return 0;
}

extern "C" int mp_cuda_state_create(const mp_model *m, int max_ctx, int max_chunk, mp_cuda_state **out,
                                    mp_error *err) {
    const mp_config *c = &m->cfg;
    *out = NULL;
    if (max_ctx <= 0) max_ctx = c->max_position_embeddings;
    if (max_chunk <= 0) max_chunk = 2048;
    if (max_chunk > max_ctx) max_chunk = max_ctx;
    MP_FAIL_IF(max_ctx > (1 << 22), err, MP_EINPUT, "context of %d tokens is too long", max_ctx);
    int ndev = 0;
    cudaError_t ce = cudaGetDeviceCount(&ndev);
    if (ce != cudaSuccess || ndev == 0) {
        cudaGetLastError();
        return mp_fail(err, MP_EUNSUPPORTED, "no CUDA device: %s",
                       ce != cudaSuccess ? cudaGetErrorString(ce) : "none found");
    }
    const int ms = c->decompose == MP_VD ? c->moe_dim / 2 : c->moe_dim;
    MP_FAIL_IF(ms > MP_CUDA_MAX_MS, err, MP_EUNSUPPORTED,
               "the CUDA backend supports expert widths up to %d (moe_dim %d, %s)", MP_CUDA_MAX_MS, c->moe_dim,
               mp_decompose_name(c->decompose));
    MP_FAIL_IF(c->head_dim > 256, err, MP_EUNSUPPORTED, "the CUDA backend supports head_dim up to 256, not %d",
               c->head_dim);
    MP_FAIL_IF((size_t)c->moe_experts * (size_t)c->moe_experts > 0xffffffffu, err, MP_EUNSUPPORTED,
               "E = %d is too large for 32-bit expert ids", c->moe_experts);
    mp_cuda_state *s = (mp_cuda_state *)calloc(1, sizeof *s);
    if (!s) return mp_fail(err, MP_ENOMEM, "out of memory");
    s->m = m;
    s->max_ctx = max_ctx;
    s->chunk = max_chunk;
    s->cap = route_cap(c);
    s->threshold = mp_router_threshold(c->moe_topk, c->moe_experts);
    int rc = 0;
    cudaError_t e = cudaStreamCreate(&s->st);
    if (e != cudaSuccess) {
        rc = mp_fail(err, MP_EINTERNAL, "CUDA: cannot create a stream: %s", cudaGetErrorString(e));
        goto fail;
    }
    if (cublasCreate(&s->blas) != CUBLAS_STATUS_SUCCESS || cublasSetStream(s->blas, s->st) != CUBLAS_STATUS_SUCCESS) {
        rc = mp_fail(err, MP_EINTERNAL, "cuBLAS: cannot create a handle");
        goto fail;
    }
    if ((rc = mp_cuda_weights_upload(m, &s->w, err)) < 0) goto fail;
    if ((rc = alloc_buffers(s, err)) < 0) goto fail;
    *out = s;
    return 0;
fail:
    mp_cuda_state_free(s);
    return rc;
}

extern "C" void mp_cuda_state_free(mp_cuda_state *s) {
    if (!s) return;
    void *bufs[] = {s->kcache, s->vcache, s->rope_cos, s->rope_sin, s->ids,   s->targets, s->lp,     s->x,
                    s->xn,     s->q,      s->att,      s->z1,       s->z2,    s->r_cnt,   s->r_idx,  s->r_p,
                    s->overflow, s->a1,   s->a2,       s->y11,      s->y12,   s->y21,     s->y22,    s->coef_a,
                    s->coef_d, s->logits, s->mask_ids, s->row_any,  s->steer};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) cudaFree(bufs[i]);
    if (s->blas) cublasDestroy(s->blas);
    if (s->st) cudaStreamDestroy(s->st);
    mp_cuda_weights_free(s->w);
    free(s->mask_off);
    free(s->h_cnt);
    free(s->h_idx);
    free(s->h_p);
    free(s);
}

extern "C" void mp_cuda_state_reset(mp_cuda_state *s) { s->pos = 0; }
extern "C" int mp_cuda_state_pos(const mp_cuda_state *s) { return s->pos; }
extern "C" int mp_cuda_state_max_ctx(const mp_cuda_state *s) { return s->max_ctx; }

extern "C" int mp_cuda_state_rewind(mp_cuda_state *s, int pos, mp_error *err) {
    MP_FAIL_IF(pos < 0 || pos > s->pos, err, MP_EINPUT, "cannot rewind the KV cache to %d (holds %d tokens)", pos,
               s->pos);
    s->pos = pos;
    return 0;
}

typedef struct mask_fill {
    uint32_t *ids;
    int *off; /* counts per group, turned into offsets */
    size_t n;
    int E;
} mask_fill;

static void mask_visit(void *ctx, int r, int i, int j) {
    mask_fill *f = (mask_fill *)ctx;
    f->ids[f->n++] = (uint32_t)i * (uint32_t)f->E + (uint32_t)j;
    f->off[r + 1]++;
}

static void drop_mask(mp_cuda_state *s) {
    cudaFree(s->mask_ids);
    cudaFree(s->row_any);
    free(s->mask_off);
    s->mask_ids = NULL;
    s->row_any = NULL;
    s->mask_off = NULL;
}

extern "C" int mp_cuda_state_set_mask(mp_cuda_state *s, const mp_mask *mask, mp_error *err) {
    const mp_config *c = &s->m->cfg;
    MP_FAIL_IF(mask && (mask->E != c->moe_experts || mask->n_groups != c->n_router_groups), err, MP_EINPUT,
               "mask is for E=%d with %d router groups, the model has E=%d with %d", mask->E, mask->n_groups,
               c->moe_experts, c->n_router_groups);
    drop_mask(s);
    if (!mask || !mask->count) return 0;
    const int R = c->n_router_groups, E = c->moe_experts;
    mask_fill f = {NULL, NULL, 0, E};
    f.ids = (uint32_t *)malloc(mask->count * sizeof(uint32_t));
    f.off = (int *)calloc((size_t)R + 1, sizeof(int));
    size_t tot = 0;
    int rc = 0;
    cudaError_t e1, e2;
    if (!f.ids || !f.off) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto done;
    }
    /* (r, i, j) order: ids are sorted within each group */
    if ((rc = mp_mask_foreach(mask, mask_visit, &f, err)) < 0) goto done;
    for (int r = 0; r < R; r++) f.off[r + 1] += f.off[r];
    if ((rc = dalloc(&s->mask_ids, f.n * sizeof(uint32_t), &tot, err)) < 0) goto done;
    if ((rc = dalloc(&s->row_any, (size_t)R * E, &tot, err)) < 0) goto done;
    e1 = cudaMemcpy(s->mask_ids, f.ids, f.n * sizeof(uint32_t), cudaMemcpyHostToDevice);
    e2 = cudaMemcpy(s->row_any, mask->row_any, (size_t)R * E, cudaMemcpyHostToDevice);
    if (e1 != cudaSuccess || e2 != cudaSuccess) {
        rc = mp_fail(err, MP_EINTERNAL, "CUDA: copying the mask: %s",
                     cudaGetErrorString(e1 != cudaSuccess ? e1 : e2));
        goto done;
    }
    s->mask_off = f.off;
    f.off = NULL;
done:
    free(f.ids);
    free(f.off);
    if (rc < 0) drop_mask(s);
    return rc;
}

extern "C" int mp_cuda_state_set_steering(mp_cuda_state *s, const mp_steer *list, size_t n, mp_error *err) {
    const mp_config *c = &s->m->cfg;
    for (size_t k = 0; k < n; k++)
        MP_FAIL_IF(list[k].group < 0 || list[k].group >= c->n_router_groups || list[k].i < 0 ||
                       list[k].i >= c->moe_experts || list[k].j < 0 || list[k].j >= c->moe_experts,
                   err, MP_EINPUT, "steered expert %d:%d,%d is out of range (%d groups, E=%d)", list[k].group,
                   list[k].i, list[k].j, c->n_router_groups, c->moe_experts);
    cudaFree(s->steer);
    s->steer = NULL;
    s->n_steer = 0;
    if (!n) return 0;
    mp_cuda_steer *h = (mp_cuda_steer *)malloc(n * sizeof *h);
    if (!h) return mp_fail(err, MP_ENOMEM, "out of memory");
    for (size_t k = 0; k < n; k++) h[k] = (mp_cuda_steer){list[k].group, list[k].i, list[k].j, list[k].strength};
    size_t tot = 0;
    int rc = dalloc(&s->steer, n * sizeof *h, &tot, err);
    if (rc == 0) {
        cudaError_t e = cudaMemcpy(s->steer, h, n * sizeof *h, cudaMemcpyHostToDevice);
        if (e != cudaSuccess) rc = mp_fail(err, MP_EINTERNAL, "CUDA: copying steering: %s", cudaGetErrorString(e));
    }
    free(h);
    if (rc < 0) {
        cudaFree(s->steer);
        s->steer = NULL;
        return rc;
    }
    s->n_steer = (int)n;
    return 0;
}

/* Copy the current group's device lists for n tokens into g (appended). */
static int routing_copy_back(mp_cuda_state *s, int n, mp_route_group *g, mp_error *err) {
    const int Hm = s->m->cfg.moe_heads;
    const size_t lists = (size_t)n * 2 * Hm, cap = (size_t)s->cap;
    CUDA_CHECK(cudaMemcpyAsync(s->h_cnt, s->r_cnt, lists * sizeof(int32_t), cudaMemcpyDeviceToHost, s->st), err);
    CUDA_CHECK(cudaMemcpyAsync(s->h_idx, s->r_idx, lists * cap * sizeof(int32_t), cudaMemcpyDeviceToHost, s->st), err);
    CUDA_CHECK(cudaMemcpyAsync(s->h_p, s->r_p, lists * cap * sizeof(float), cudaMemcpyDeviceToHost, s->st), err);
    int ovf = 0;
    CUDA_CHECK(cudaMemcpyAsync(&ovf, s->overflow, sizeof(int), cudaMemcpyDeviceToHost, s->st), err);
    CUDA_CHECK(cudaStreamSynchronize(s->st), err);
    MP_FAIL_IF(ovf > 0, err, MP_EUNSUPPORTED,
               "a router head selected %d experts, more than the CUDA list capacity %d (set MP_CUDA_ROUTE_CAP)", ovf,
               s->cap);
    /* compact into a temporary group in the mp_route_group layout */
    mp_route_group tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.n_tokens = n;
    tmp.Hm = Hm;
    tmp.off = (int32_t *)malloc((lists + 1) * sizeof(int32_t));
    size_t total = 0;
    for (size_t k = 0; k < lists; k++) total += (size_t)s->h_cnt[k];
    tmp.idx = (int32_t *)malloc((total ? total : 1) * sizeof(int32_t));
    tmp.p = (float *)malloc((total ? total : 1) * sizeof(float));
    int rc = 0;
    if (!tmp.off || !tmp.idx || !tmp.p) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory (routing record)");
    } else {
        size_t e = 0;
        tmp.off[0] = 0;
        for (size_t k = 0; k < lists; k++) {
            for (int a = 0; a < s->h_cnt[k]; a++, e++) {
                tmp.idx[e] = s->h_idx[k * cap + (size_t)a];
                tmp.p[e] = s->h_p[k * cap + (size_t)a];
            }
            tmp.off[k + 1] = (int32_t)e;
        }
        tmp.n_entries = e;
        rc = mp_route_group_append(g, &tmp, err);
    }
    free(tmp.off);
    free(tmp.idx);
    free(tmp.p);
    return rc;
}

/* Expert mixture of layer l for n tokens, added into s->x. */
static int moe_layer(mp_cuda_state *s, const mp_cuda_layer *y, int l, int n, mp_error *err) {
    const mp_config *c = &s->m->cfg;
    const int d = c->hidden_size, dh = d / 2, E = c->moe_experts, vd = c->decompose == MP_VD;
    const int ms = vd ? c->moe_dim / 2 : c->moe_dim, eu = E * ms, g = l / c->moe_groups;
    cublasHandle_t hb = s->blas;
    /* expert activations a = relu(U x + c)^2 (mp_cpu_expert_up) */
    MP_TRY(mp_cuda_linear(hb, s->a1, s->xn, vd ? y->u1 : y->u, n, d, eu, 0.0f, err));
    MP_TRY(mp_cuda_bias_relu2(s->a1, vd ? y->u1_bias : y->u_bias, n, eu, s->st, err));
    if (vd) {
        MP_TRY(mp_cuda_linear(hb, s->a2, s->xn, y->u2, n, d, eu, 0.0f, err));
        MP_TRY(mp_cuda_bias_relu2(s->a2, y->u2_bias, n, eu, s->st, err));
    }
    /* untouched experts' rows must be zero (moe.cuh) */
    const size_t ybytes = (size_t)n * eu * sizeof(bf16), cbytes = (size_t)n * E * sizeof(bf16);
    CUDA_CHECK(cudaMemsetAsync(s->y21, 0, ybytes, s->st), err);
    CUDA_CHECK(cudaMemsetAsync(s->coef_d, 0, cbytes, s->st), err);
    if (vd) {
        CUDA_CHECK(cudaMemsetAsync(s->y11, 0, ybytes, s->st), err);
        CUDA_CHECK(cudaMemsetAsync(s->y12, 0, ybytes, s->st), err);
        CUDA_CHECK(cudaMemsetAsync(s->y22, 0, ybytes, s->st), err);
        CUDA_CHECK(cudaMemsetAsync(s->coef_a, 0, cbytes, s->st), err);
    }
    mp_cuda_moe_args a;
    memset(&a, 0, sizeof a);
    a.n = n;
    a.E = E;
    a.Hm = c->moe_heads;
    a.ms = ms;
    a.cap = s->cap;
    a.group = g;
    a.vd = vd;
    a.cnt = s->r_cnt;
    a.idx = s->r_idx;
    a.p = s->r_p;
    a.act1 = s->a1;
    a.act2 = vd ? s->a2 : NULL;
    a.y11 = s->y11;
    a.y12 = s->y12;
    a.y21 = s->y21;
    a.y22 = s->y22;
    a.coef_a = s->coef_a;
    a.coef_d = s->coef_d;
    if (s->mask_ids && s->mask_off[g + 1] > s->mask_off[g]) {
        a.mask_ids = s->mask_ids + s->mask_off[g];
        a.n_mask = s->mask_off[g + 1] - s->mask_off[g];
        a.row_any = s->row_any + (size_t)g * E;
    }
    a.steer = s->steer;
    a.n_steer = s->n_steer;
    MP_TRY(mp_cuda_moe_mix(&a, s->st, err));
    if (vd) { /* top = V11 y11 + V12 y12 + B1^T A; bottom = V21 y21 + V22 y22 + B2^T D */
        float *top = s->x, *bot = s->x + dh;
        MP_TRY(mp_cuda_gemm(hb, 1, n, dh, eu, 1.0f, s->y11, eu, y->v11, eu, 1.0f, top, d, err));
        MP_TRY(mp_cuda_gemm(hb, 1, n, dh, eu, 1.0f, s->y12, eu, y->v12, eu, 1.0f, top, d, err));
        MP_TRY(mp_cuda_gemm(hb, 0, n, dh, E, 1.0f, s->coef_a, E, y->b1, dh, 1.0f, top, d, err));
        MP_TRY(mp_cuda_gemm(hb, 1, n, dh, eu, 1.0f, s->y21, eu, y->v21, eu, 1.0f, bot, d, err));
        MP_TRY(mp_cuda_gemm(hb, 1, n, dh, eu, 1.0f, s->y22, eu, y->v22, eu, 1.0f, bot, d, err));
        MP_TRY(mp_cuda_gemm(hb, 0, n, dh, E, 1.0f, s->coef_d, E, y->b2, dh, 1.0f, bot, d, err));
    } else { /* sum_j V_j y_j + B^T D */
        MP_TRY(mp_cuda_gemm(hb, 1, n, d, eu, 1.0f, s->y21, eu, y->v, eu, 1.0f, s->x, d, err));
        MP_TRY(mp_cuda_gemm(hb, 0, n, d, E, 1.0f, s->coef_d, E, y->b, d, 1.0f, s->x, d, err));
    }
    return 0;
}

/* One chunk of n tokens at positions s->pos.. (forward_chunk of the CPU).
 * Logits stay on the device in s->logits: [n][V], or [1][V] (last_only). */
static int forward_chunk(mp_cuda_state *s, const int32_t *ids, int n, int want_logits, int last_only,
                         mp_routing *routing, mp_error *err) {
    const mp_config *c = &s->m->cfg;
    const mp_cuda_weights *w = s->w;
    const int d = c->hidden_size, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    const int E = c->moe_experts, Hm = c->moe_heads, pos0 = s->pos;
    cublasHandle_t hb = s->blas;
    CUDA_CHECK(cudaMemsetAsync(s->overflow, 0, sizeof(int), s->st), err);
    CUDA_CHECK(cudaMemcpyAsync(s->ids, ids, (size_t)n * sizeof(int32_t), cudaMemcpyHostToDevice, s->st), err);
    MP_TRY(mp_cuda_embed(s->x, w->embed, s->ids, n, d, s->st, err));
    for (int l = 0; l < c->n_layers; l++) {
        const mp_cuda_layer *y = &w->layers[l];
        MP_TRY(mp_cuda_rmsnorm(s->xn, s->x, d, y->attn_norm, n, d, c->rms_norm_eps, s->st, err));
        float *kl = s->kcache + (size_t)l * s->max_ctx * kvd, *vl = s->vcache + (size_t)l * s->max_ctx * kvd;
        float *kn = kl + (size_t)pos0 * kvd, *vn = vl + (size_t)pos0 * kvd; /* the new rows of the cache */
        MP_TRY(mp_cuda_linear(hb, s->q, s->xn, y->wq, n, d, qd, 0.0f, err));
        MP_TRY(mp_cuda_linear(hb, kn, s->xn, y->wk, n, d, kvd, 0.0f, err));
        MP_TRY(mp_cuda_linear(hb, vn, s->xn, y->wv, n, d, kvd, 0.0f, err));
        MP_TRY(mp_cuda_rope(s->q, n, c->n_heads, hd, qd, pos0, s->rope_cos, s->rope_sin, s->st, err));
        MP_TRY(mp_cuda_rope(kn, n, c->n_kv_heads, hd, kvd, pos0, s->rope_cos, s->rope_sin, s->st, err));
        MP_TRY(mp_cuda_attention(s->att, s->q, kl, vl, n, pos0, c->n_heads, c->n_kv_heads, hd, s->st, err));
        MP_TRY(mp_cuda_linear(hb, s->x, s->att, y->wo, n, qd, d, 1.0f, err)); /* x += Wo att */

        MP_TRY(mp_cuda_rmsnorm(s->xn, s->x, d, y->ffn_norm, n, d, c->rms_norm_eps, s->st, err));
        if (l % c->moe_groups == 0) {
            MP_TRY(mp_cuda_linear(hb, s->z1, s->xn, y->router_w1, n, d, Hm * E, 0.0f, err));
            MP_TRY(mp_cuda_linear(hb, s->z2, s->xn, y->router_w2, n, d, Hm * E, 0.0f, err));
            MP_TRY(mp_cuda_route(s->z1, s->z2, n, Hm, E, y->bn1_mean, y->bn1_var, y->bn2_mean, y->bn2_var,
                                 s->threshold, s->cap, s->r_cnt, s->r_idx, s->r_p, s->overflow, s->st, err));
            if (routing) MP_TRY(routing_copy_back(s, n, &routing->groups[l / c->moe_groups], err));
        }
        MP_TRY(moe_layer(s, y, l, n, err));
    }
    int ovf = 0;
    CUDA_CHECK(cudaMemcpyAsync(&ovf, s->overflow, sizeof(int), cudaMemcpyDeviceToHost, s->st), err);
    CUDA_CHECK(cudaStreamSynchronize(s->st), err);
    if (ovf > 0)
        return mp_fail(err, MP_EUNSUPPORTED,
                       "a router head selected %d experts, more than the CUDA list capacity %d (set "
                       "MP_CUDA_ROUTE_CAP)", ovf, s->cap);
    s->pos += n;
    if (!want_logits) return 0;
    const int rows = last_only ? 1 : n;
    const float *xf = s->x + (size_t)(n - rows) * d;
    MP_TRY(mp_cuda_rmsnorm(s->xn, xf, d, w->final_norm, rows, d, c->rms_norm_eps, s->st, err));
    MP_TRY(mp_cuda_linear(hb, s->logits, s->xn, w->lm_head, rows, d, c->vocab_size, 0.0f, err));
    return 0;
}

static int check_input(const mp_cuda_state *s, const int32_t *ids, size_t n, mp_routing *routing, mp_error *err) {
    const mp_config *c = &s->m->cfg;
    MP_FAIL_IF(n == 0, err, MP_EINPUT, "no tokens to run");
    MP_FAIL_IF((size_t)s->pos + n > (size_t)s->max_ctx, err, MP_EINPUT,
               "context full: %d cached + %zu new tokens exceed the %d-token context", s->pos, n, s->max_ctx);
    for (size_t i = 0; i < n; i++)
        MP_FAIL_IF(ids[i] < 0 || ids[i] >= c->vocab_size, err, MP_EINPUT,
                   "token id %d at position %zu is outside the vocabulary (0..%d)", ids[i], i, c->vocab_size - 1);
    MP_FAIL_IF(routing && (routing->n_groups != c->n_router_groups || routing->Hm != c->moe_heads), err,
               MP_EINTERNAL, "routing record was made for another model");
    return 0;
}

extern "C" int mp_cuda_forward(mp_cuda_state *s, const int32_t *ids, size_t n, float *logits, int last_only,
                               mp_routing *routing, mp_error *err) {
    MP_TRY(check_input(s, ids, n, routing, err));
    const size_t V = (size_t)s->m->cfg.vocab_size;
    for (size_t done = 0; done < n;) {
        int cn = (int)(n - done < (size_t)s->chunk ? n - done : (size_t)s->chunk);
        int last_chunk = done + (size_t)cn == n;
        float *lg = NULL;
        if (logits && !last_only) lg = logits + done * V;
        else if (logits && last_chunk) lg = logits;
        MP_TRY(forward_chunk(s, ids + done, cn, lg != NULL, last_only, routing, err));
        if (lg) {
            size_t rows = last_only ? 1 : (size_t)cn;
            CUDA_CHECK(cudaMemcpyAsync(lg, s->logits, rows * V * sizeof(float), cudaMemcpyDeviceToHost, s->st), err);
            CUDA_CHECK(cudaStreamSynchronize(s->st), err);
        }
        done += (size_t)cn;
    }
    return 0;
}

extern "C" int mp_cuda_forward_logprobs(mp_cuda_state *s, const int32_t *ids, size_t n, const int32_t *targets,
                                        double *out, mp_error *err) {
    MP_TRY(check_input(s, ids, n, NULL, err));
    const int V = s->m->cfg.vocab_size;
    for (size_t i = 0; i < n; i++)
        MP_FAIL_IF(targets[i] < 0 || targets[i] >= V, err, MP_EINPUT,
                   "target id %d at position %zu is outside the vocabulary (0..%d)", targets[i], i, V - 1);
    for (size_t done = 0; done < n;) {
        int cn = (int)(n - done < (size_t)s->chunk ? n - done : (size_t)s->chunk);
        MP_TRY(forward_chunk(s, ids + done, cn, 1, 0, NULL, err));
        CUDA_CHECK(cudaMemcpyAsync(s->targets, targets + done, (size_t)cn * sizeof(int32_t), cudaMemcpyHostToDevice,
                                   s->st),
                   err);
        MP_TRY(mp_cuda_target_logprobs(s->lp, s->logits, s->targets, cn, V, s->st, err));
        CUDA_CHECK(cudaMemcpyAsync(out + done, s->lp, (size_t)cn * sizeof(double), cudaMemcpyDeviceToHost, s->st),
                   err);
        CUDA_CHECK(cudaStreamSynchronize(s->st), err);
        done += (size_t)cn;
    }
    return 0;
}
