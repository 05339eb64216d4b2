/* core/model/forward_cpu.c — the readable CPU reference forward pass of Monet
 * (DESIGN.md §2): RMSNorm, RoPE (HF rotate-half), causal GQA attention over a
 * KV cache, the product-key router shared by each group of moe_groups layers,
 * and the VD / HD expert mixtures computed from the sparse routing without
 * ever forming the E x E expert matrix. Dense projections are OpenBLAS sgemm
 * over a chunk of tokens. */
#include "core/model/forward.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/mask.h"

struct mp_state {
    const mp_model *m;
    int max_ctx, chunk, pos;
    double threshold;          /* Phi^-1(1 - k/E) */
    float *kcache, *vcache;    /* [L][max_ctx][KV*hd], keys after RoPE */
    float *rope_cos, *rope_sin;/* [max_ctx][hd/2] */
    /* scratch for one chunk of C tokens */
    float *x, *xn, *tmp;       /* [C][d] residual stream, normed input, block output */
    float *q, *att;            /* [C][H*hd] */
    float *k, *v;              /* [C][KV*hd] */
    float *scores;             /* [C][max_ctx] */
    float *z1, *z2;            /* [C][Hm*E] router logits */
    float *a1, *a2;            /* VD: [C][E*m/2] each; HD: a1 is [C][E*m] */
    float *y11, *y12, *y21, *y22; /* VD: [C][E*m/2]; HD uses y21 as [C][E*m] */
    float *coef_a, *coef_d;    /* [C][E]: A_i = sum_h g1[h,i], D_j = sum_h g2[h,j] */
    float *alpha, *beta;       /* [m] per-head mixtures */
    mp_route_group cur;        /* routing of the current group for the chunk */
    const mp_mask *mask;       /* borrowed; NULL = no experts masked */
    mp_steer *steer;           /* owned copy of the steering list */
    size_t n_steer;
    int cur_group;             /* router group of the layer being computed */
};

static void *xcalloc(size_t n, size_t size, int *fail) {
    void *p = calloc(n ? n : 1, size);
    if (!p) *fail = 1;
    return p;
}

int mp_state_create(const mp_model *m, int max_ctx, int max_chunk, mp_state **out, mp_error *err) {
    const mp_config *c = &m->cfg;
    if (max_ctx <= 0) max_ctx = c->max_position_embeddings;
    if (max_chunk <= 0) max_chunk = 256;
    if (max_chunk > max_ctx) max_chunk = max_ctx;
    MP_FAIL_IF(max_ctx > (1 << 22), err, MP_EINPUT, "context of %d tokens is too long", max_ctx);
    mp_state *s = calloc(1, sizeof *s);
    if (!s) return mp_fail(err, MP_ENOMEM, "out of memory");
    s->m = m;
    s->max_ctx = max_ctx;
    s->chunk = max_chunk;
    s->threshold = mp_router_threshold(c->moe_topk, c->moe_experts);
    const size_t C = (size_t)max_chunk, d = (size_t)c->hidden_size, hd = (size_t)c->head_dim;
    const size_t qd = (size_t)c->n_heads * hd, kvd = (size_t)c->n_kv_heads * hd;
    const size_t E = (size_t)c->moe_experts, Hm = (size_t)c->moe_heads, mm = (size_t)c->moe_dim;
    const size_t eu = c->decompose == MP_VD ? E * (mm / 2) : E * mm;
    int fail = 0;
    s->kcache = xcalloc((size_t)c->n_layers * (size_t)max_ctx * kvd, sizeof(float), &fail);
    s->vcache = xcalloc((size_t)c->n_layers * (size_t)max_ctx * kvd, sizeof(float), &fail);
    s->rope_cos = xcalloc((size_t)max_ctx * hd / 2, sizeof(float), &fail);
    s->rope_sin = xcalloc((size_t)max_ctx * hd / 2, sizeof(float), &fail);
    s->x = xcalloc(C * d, sizeof(float), &fail);
    s->xn = xcalloc(C * d, sizeof(float), &fail);
    s->tmp = xcalloc(C * d, sizeof(float), &fail);
    s->q = xcalloc(C * qd, sizeof(float), &fail);
    s->att = xcalloc(C * qd, sizeof(float), &fail);
    s->k = xcalloc(C * kvd, sizeof(float), &fail);
    s->v = xcalloc(C * kvd, sizeof(float), &fail);
    s->scores = xcalloc(C * (size_t)max_ctx, sizeof(float), &fail);
    s->z1 = xcalloc(C * Hm * E, sizeof(float), &fail);
    s->z2 = xcalloc(C * Hm * E, sizeof(float), &fail);
    s->a1 = xcalloc(C * eu, sizeof(float), &fail);
    s->y21 = xcalloc(C * eu, sizeof(float), &fail);
    if (c->decompose == MP_VD) {
        s->a2 = xcalloc(C * eu, sizeof(float), &fail);
        s->y11 = xcalloc(C * eu, sizeof(float), &fail);
        s->y12 = xcalloc(C * eu, sizeof(float), &fail);
        s->y22 = xcalloc(C * eu, sizeof(float), &fail);
    }
    s->coef_a = xcalloc(C * E, sizeof(float), &fail);
    s->coef_d = xcalloc(C * E, sizeof(float), &fail);
    s->alpha = xcalloc(mm, sizeof(float), &fail);
    s->beta = xcalloc(mm, sizeof(float), &fail);
    if (fail) {
        mp_state_free(s);
        return mp_fail(err, MP_ENOMEM, "out of memory allocating the KV cache and buffers for %d tokens", max_ctx);
    }
    /* rotary tables: inv_freq_i = theta^(-2i/hd), angle = pos * inv_freq_i */
    for (size_t p = 0; p < (size_t)max_ctx; p++)
        for (size_t i = 0; i < hd / 2; i++) {
            double ang = (double)p * pow(c->rope_theta, -2.0 * (double)i / (double)hd);
            s->rope_cos[p * (hd / 2) + i] = (float)cos(ang);
            s->rope_sin[p * (hd / 2) + i] = (float)sin(ang);
        }
    mp_route_group_clear(&s->cur, c->moe_heads);
    *out = s;
    return 0;
}

void mp_state_free(mp_state *s) {
    if (!s) return;
    float *bufs[] = {s->kcache, s->vcache, s->rope_cos, s->rope_sin, s->x,   s->xn,     s->tmp,    s->q,
                     s->att,    s->k,      s->v,        s->scores,   s->z1,  s->z2,     s->a1,     s->a2,
                     s->y11,    s->y12,    s->y21,      s->y22,      s->coef_a, s->coef_d, s->alpha, s->beta};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    mp_route_group_free(&s->cur);
    free(s->steer);
    free(s);
}

void mp_state_reset(mp_state *s) { s->pos = 0; }

int mp_state_set_mask(mp_state *s, const mp_mask *mask, mp_error *err) {
    const mp_config *c = &s->m->cfg;
    MP_FAIL_IF(mask && (mask->E != c->moe_experts || mask->n_groups != c->n_router_groups), err, MP_EINPUT,
               "mask is for E=%d with %d router groups, the model has E=%d with %d", mask->E, mask->n_groups,
               c->moe_experts, c->n_router_groups);
    s->mask = mask && mask->count ? mask : NULL;
    return 0;
}
int mp_state_pos(const mp_state *s) { return s->pos; }
int mp_state_max_ctx(const mp_state *s) { return s->max_ctx; }

int mp_state_rewind(mp_state *s, int pos, mp_error *err) {
    MP_FAIL_IF(pos < 0 || pos > s->pos, err, MP_EINPUT, "cannot rewind the KV cache to %d (holds %d tokens)", pos,
               s->pos);
    s->pos = pos;
    return 0;
}

int mp_state_set_steering(mp_state *s, const mp_steer *list, size_t n, mp_error *err) {
    const mp_config *c = &s->m->cfg;
    for (size_t k = 0; k < n; k++)
        MP_FAIL_IF(list[k].group < 0 || list[k].group >= c->n_router_groups || list[k].i < 0 ||
                       list[k].i >= c->moe_experts || list[k].j < 0 || list[k].j >= c->moe_experts,
                   err, MP_EINPUT, "steered expert %d:%d,%d is out of range (%d groups, E=%d)", list[k].group,
                   list[k].i, list[k].j, c->n_router_groups, c->moe_experts);
    mp_steer *copy = NULL;
    if (n) {
        copy = malloc(n * sizeof *copy);
        if (!copy) return mp_fail(err, MP_ENOMEM, "out of memory");
        memcpy(copy, list, n * sizeof *copy);
    }
    free(s->steer);
    s->steer = copy;
    s->n_steer = n;
    return 0;
}

/* ---- kernels (CPU reference; cuda/ mirrors them one for one) ------------- */

static void mp_cpu_rmsnorm(float *out, const float *x, const float *w, int n, int d, double eps) {
    for (int t = 0; t < n; t++) {
        const float *xr = x + (size_t)t * d;
        float *o = out + (size_t)t * d;
        double ss = 0;
        for (int i = 0; i < d; i++) ss += (double)xr[i] * xr[i];
        float r = (float)(1.0 / sqrt(ss / d + eps));
        for (int i = 0; i < d; i++) o[i] = xr[i] * r * w[i];
    }
}

/* y[n][out] = x[n][in] * W^T, W row-major [out][in] (nn.Linear layout). */
static void mp_cpu_linear(float *y, const float *x, const float *w, int n, int in, int outd) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, outd, in, 1.0f, x, in, w, in, 0.0f, y, outd);
}

/* HF rotate-half RoPE on n rows of `heads` heads of size hd, row stride ld. */
static void mp_cpu_rope(float *x, int n, int heads, int hd, int ld, int pos0, const float *cos_t, const float *sin_t) {
    int half = hd / 2;
    for (int t = 0; t < n; t++) {
        const float *cs = cos_t + (size_t)(pos0 + t) * half, *sn = sin_t + (size_t)(pos0 + t) * half;
        for (int h = 0; h < heads; h++) {
            float *v = x + (size_t)t * ld + (size_t)h * hd;
            for (int i = 0; i < half; i++) {
                float x1 = v[i], x2 = v[i + half];
                v[i] = x1 * cs[i] - x2 * sn[i];
                v[i + half] = x2 * cs[i] + x1 * sn[i];
            }
        }
    }
}

/* Causal attention of n new queries at positions pos0.. over the cache. */
static void mp_cpu_attention(mp_state *s, int layer, int n, int pos0) {
    const mp_config *c = &s->m->cfg;
    const int hd = c->head_dim, H = c->n_heads, KV = c->n_kv_heads;
    const int qd = H * hd, kvd = KV * hd, S = pos0 + n;
    const float scale = (float)(1.0 / sqrt((double)hd));
    const float *K = s->kcache + (size_t)layer * s->max_ctx * kvd;
    const float *V = s->vcache + (size_t)layer * s->max_ctx * kvd;
    for (int h = 0; h < H; h++) {
        int kvh = h / (H / KV);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, S, hd, scale, s->q + (size_t)h * hd, qd,
                    K + (size_t)kvh * hd, kvd, 0.0f, s->scores, S);
        for (int t = 0; t < n; t++) {
            float *row = s->scores + (size_t)t * S;
            int len = pos0 + t + 1; /* causal: keys 0..pos0+t */
            float mx = row[0];
            for (int j = 1; j < len; j++)
                if (row[j] > mx) mx = row[j];
            double sum = 0;
            for (int j = 0; j < len; j++) {
                row[j] = expf(row[j] - mx);
                sum += row[j];
            }
            float inv = (float)(1.0 / sum);
            for (int j = 0; j < len; j++) row[j] *= inv;
            for (int j = len; j < S; j++) row[j] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hd, S, 1.0f, s->scores, S, V + (size_t)kvh * hd,
                    kvd, 0.0f, s->att + (size_t)h * hd, qd);
    }
}

/* a = relu(x W^T + bias)^2 over n rows of width w. */
static void mp_cpu_expert_up(float *a, const float *xn, const float *wt, const float *bias, int n, int d, int w) {
    mp_cpu_linear(a, xn, wt, n, d, w);
    for (int t = 0; t < n; t++) {
        float *r = a + (size_t)t * w;
        for (int i = 0; i < w; i++) {
            float u = r[i] + bias[i];
            r[i] = u > 0 ? u * u : 0.0f;
        }
    }
}

/* mix[0..ms) = sum over the entries of one head of p * act[idx*ms ..]. */
static void head_mix(float *mix, const float *act, const int32_t *idx, const float *p, int cnt, int ms) {
    memset(mix, 0, (size_t)ms * sizeof *mix);
    for (int a = 0; a < cnt; a++) {
        const float *r = act + (size_t)idx[a] * ms;
        for (int k = 0; k < ms; k++) mix[k] += p[a] * r[k];
    }
}

/* Masking as a correction over the masked *active* pairs of token t: for each
 * head contribution c = g1[h,i] g2[h,j] of a masked expert (i,j), remove c
 * from A_i and D_j and c*b_j / c*a_i from the mixed inputs. w'_ij = 0 then
 * holds exactly as in the E x E expansion, at O(active pairs * m) cost.
 * act_i / act_j: [E][ms] expert activations (a_i for factor 1, b_j for
 * factor 2; HD passes act_j = NULL and y_i = NULL). */
static void mask_correction(const mp_state *s, int t, const float *act_i, const float *act_j, int ms, float *ca,
                            float *cd, float *y_i, float *y_j) {
    const mp_mask *mk = s->mask;
    const int r = s->cur_group, E = s->m->cfg.moe_experts;
    const uint8_t *row_any = mk->row_any + (size_t)r * (size_t)E;
    for (int h = 0; h < s->cur.Hm; h++) {
        const int32_t *i1, *i2;
        const float *p1, *p2;
        int n1 = mp_route_get(&s->cur, t, 0, h, &i1, &p1);
        int n2 = mp_route_get(&s->cur, t, 1, h, &i2, &p2);
        for (int a = 0; a < n1; a++) {
            if (!row_any[i1[a]]) continue;
            for (int b = 0; b < n2; b++) {
                if (!mp_mask_contains(mk, r, i1[a], i2[b])) continue;
                float c = p1[a] * p2[b];
                if (ca) ca[i1[a]] -= c;
                cd[i2[b]] -= c;
                if (y_i) {
                    float *yr = y_i + (size_t)i1[a] * ms;
                    const float *bj = act_j + (size_t)i2[b] * ms;
                    for (int k = 0; k < ms; k++) yr[k] -= c * bj[k];
                }
                float *yr = y_j + (size_t)i2[b] * ms;
                const float *ai = act_i + (size_t)i1[a] * ms;
                for (int k = 0; k < ms; k++) yr[k] -= c * ai[k];
            }
        }
    }
}

/* Steering: w_ij += S for each steered expert of the current group, the same
 * update as mask_correction with c = -S. Steered experts need not be active,
 * so the caller also writes their A_i a_i / D_j b_j inputs (VD). */
static void steer_correction(const mp_state *s, const float *act_i, const float *act_j, int ms, float *ca, float *cd,
                             float *y_i, float *y_j) {
    for (size_t k = 0; k < s->n_steer; k++) {
        const mp_steer *st = &s->steer[k];
        if (st->group != s->cur_group) continue;
        float c = st->strength;
        if (ca) ca[st->i] += c;
        cd[st->j] += c;
        if (y_i)
            for (int q = 0; q < ms; q++) y_i[(size_t)st->i * ms + q] += c * act_j[(size_t)st->j * ms + q];
        for (int q = 0; q < ms; q++) y_j[(size_t)st->j * ms + q] += c * act_i[(size_t)st->i * ms + q];
    }
}

/* VD mixture for n tokens (DESIGN.md §2), output into s->tmp [n][d]. */
static void mp_cpu_moe_vd(mp_state *s, const mp_layer *y, int n) {
    const mp_config *c = &s->m->cfg;
    const int d = c->hidden_size, dh = d / 2, E = c->moe_experts, Hm = c->moe_heads, m2 = c->moe_dim / 2;
    const size_t eu = (size_t)E * m2;
    mp_cpu_expert_up(s->a1, s->xn, y->u1, y->u1_bias, n, d, (int)eu);
    mp_cpu_expert_up(s->a2, s->xn, y->u2, y->u2_bias, n, d, (int)eu);
    memset(s->y11, 0, (size_t)n * eu * sizeof(float));
    memset(s->y12, 0, (size_t)n * eu * sizeof(float));
    memset(s->y21, 0, (size_t)n * eu * sizeof(float));
    memset(s->y22, 0, (size_t)n * eu * sizeof(float));
    memset(s->coef_a, 0, (size_t)n * E * sizeof(float));
    memset(s->coef_d, 0, (size_t)n * E * sizeof(float));
    for (int t = 0; t < n; t++) {
        const float *a1 = s->a1 + t * eu, *a2 = s->a2 + t * eu;
        float *y12 = s->y12 + t * eu, *y21 = s->y21 + t * eu;
        float *ca = s->coef_a + (size_t)t * E, *cd = s->coef_d + (size_t)t * E;
        for (int h = 0; h < Hm; h++) {
            const int32_t *i1, *i2;
            const float *p1, *p2;
            int n1 = mp_route_get(&s->cur, t, 0, h, &i1, &p1);
            int n2 = mp_route_get(&s->cur, t, 1, h, &i2, &p2);
            head_mix(s->alpha, a1, i1, p1, n1, m2); /* alpha_h = sum_i g1[h,i] a_i */
            head_mix(s->beta, a2, i2, p2, n2, m2);  /* beta_h  = sum_j g2[h,j] b_j */
            for (int a = 0; a < n1; a++) {          /* (sum_j w_ij b_j) = sum_h g1[h,i] beta_h */
                ca[i1[a]] += p1[a];
                float *r = y12 + (size_t)i1[a] * m2;
                for (int k = 0; k < m2; k++) r[k] += p1[a] * s->beta[k];
            }
            for (int b = 0; b < n2; b++) {          /* (sum_i w_ij a_i) = sum_h g2[h,j] alpha_h */
                cd[i2[b]] += p2[b];
                float *r = y21 + (size_t)i2[b] * m2;
                for (int k = 0; k < m2; k++) r[k] += p2[b] * s->alpha[k];
            }
        }
        if (s->mask) mask_correction(s, t, a1, a2, m2, ca, cd, y12, y21);
        if (s->n_steer) steer_correction(s, a1, a2, m2, ca, cd, y12, y21);
        float *y11 = s->y11 + t * eu, *y22 = s->y22 + t * eu;
        for (size_t k = 0; k < s->n_steer; k++) { /* A_i a_i, D_j b_j of steered experts */
            const mp_steer *st = &s->steer[k];
            if (st->group != s->cur_group) continue;
            for (int q = 0; q < m2; q++) {
                y11[(size_t)st->i * m2 + q] = ca[st->i] * a1[(size_t)st->i * m2 + q];
                y22[(size_t)st->j * m2 + q] = cd[st->j] * a2[(size_t)st->j * m2 + q];
            }
        }
        for (int h = 0; h < Hm; h++) { /* A_i a_i and D_j b_j for the active experts */
            const int32_t *i1, *i2;
            const float *p1, *p2;
            int n1 = mp_route_get(&s->cur, t, 0, h, &i1, &p1);
            int n2 = mp_route_get(&s->cur, t, 1, h, &i2, &p2);
            for (int a = 0; a < n1; a++)
                for (int k = 0; k < m2; k++) y11[(size_t)i1[a] * m2 + k] = ca[i1[a]] * a1[(size_t)i1[a] * m2 + k];
            for (int b = 0; b < n2; b++)
                for (int k = 0; k < m2; k++) y22[(size_t)i2[b] * m2 + k] = cd[i2[b]] * a2[(size_t)i2[b] * m2 + k];
        }
    }
    float *top = s->tmp, *bot = s->tmp + dh;
    const int K = (int)eu;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, dh, K, 1.0f, s->y11, K, y->v11, K, 0.0f, top, d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, dh, K, 1.0f, s->y12, K, y->v12, K, 1.0f, top, d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dh, E, 1.0f, s->coef_a, E, y->b1, dh, 1.0f, top, d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, dh, K, 1.0f, s->y21, K, y->v21, K, 0.0f, bot, d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, dh, K, 1.0f, s->y22, K, y->v22, K, 1.0f, bot, d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dh, E, 1.0f, s->coef_d, E, y->b2, dh, 1.0f, bot, d);
}

/* HD mixture: out = sum_j V_j (sum_i w_ij a_i) + sum_j D_j B_j. */
static void mp_cpu_moe_hd(mp_state *s, const mp_layer *y, int n) {
    const mp_config *c = &s->m->cfg;
    const int d = c->hidden_size, E = c->moe_experts, Hm = c->moe_heads, m = c->moe_dim;
    const size_t eu = (size_t)E * m;
    mp_cpu_expert_up(s->a1, s->xn, y->u, y->u_bias, n, d, (int)eu);
    memset(s->y21, 0, (size_t)n * eu * sizeof(float));
    memset(s->coef_d, 0, (size_t)n * E * sizeof(float));
    for (int t = 0; t < n; t++) {
        const float *a = s->a1 + t * eu;
        float *yr = s->y21 + t * eu, *cd = s->coef_d + (size_t)t * E;
        for (int h = 0; h < Hm; h++) {
            const int32_t *i1, *i2;
            const float *p1, *p2;
            int n1 = mp_route_get(&s->cur, t, 0, h, &i1, &p1);
            int n2 = mp_route_get(&s->cur, t, 1, h, &i2, &p2);
            head_mix(s->alpha, a, i1, p1, n1, m);
            for (int b = 0; b < n2; b++) {
                cd[i2[b]] += p2[b];
                float *r = yr + (size_t)i2[b] * m;
                for (int k = 0; k < m; k++) r[k] += p2[b] * s->alpha[k];
            }
        }
        if (s->mask) mask_correction(s, t, a, NULL, m, NULL, cd, NULL, yr);
        if (s->n_steer) steer_correction(s, a, NULL, m, NULL, cd, NULL, yr);
    }
    const int K = (int)eu;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, d, K, 1.0f, s->y21, K, y->v, K, 0.0f, s->tmp, d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, E, 1.0f, s->coef_d, E, y->b, d, 1.0f, s->tmp, d);
}

static void add_into(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* One chunk of n tokens at positions s->pos .. s->pos+n-1. */
static int forward_chunk(mp_state *s, const int32_t *ids, int n, float *logits, int last_only, mp_routing *routing,
                         mp_error *err) {
    const mp_model *m = s->m;
    const mp_config *c = &m->cfg;
    const int d = c->hidden_size, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    const int E = c->moe_experts, Hm = c->moe_heads, pos0 = s->pos;
    for (int t = 0; t < n; t++) memcpy(s->x + (size_t)t * d, m->embed + (size_t)ids[t] * d, (size_t)d * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        const mp_layer *y = &m->layers[l];
        mp_cpu_rmsnorm(s->xn, s->x, y->attn_norm, n, d, c->rms_norm_eps);
        mp_cpu_linear(s->q, s->xn, y->wq, n, d, qd);
        mp_cpu_linear(s->k, s->xn, y->wk, n, d, kvd);
        mp_cpu_linear(s->v, s->xn, y->wv, n, d, kvd);
        mp_cpu_rope(s->q, n, c->n_heads, hd, qd, pos0, s->rope_cos, s->rope_sin);
        mp_cpu_rope(s->k, n, c->n_kv_heads, hd, kvd, pos0, s->rope_cos, s->rope_sin);
        size_t base = ((size_t)l * s->max_ctx + (size_t)pos0) * kvd;
        memcpy(s->kcache + base, s->k, (size_t)n * kvd * sizeof(float));
        memcpy(s->vcache + base, s->v, (size_t)n * kvd * sizeof(float));
        mp_cpu_attention(s, l, n, pos0);
        mp_cpu_linear(s->tmp, s->att, y->wo, n, qd, d);
        add_into(s->x, s->tmp, (size_t)n * d);

        mp_cpu_rmsnorm(s->xn, s->x, y->ffn_norm, n, d, c->rms_norm_eps);
        if (l % c->moe_groups == 0) {
            s->cur_group = l / c->moe_groups;
            mp_cpu_linear(s->z1, s->xn, y->router_w1, n, d, Hm * E);
            mp_cpu_linear(s->z2, s->xn, y->router_w2, n, d, Hm * E);
            mp_route_group_clear(&s->cur, Hm);
            MP_TRY(mp_router_route(s->z1, s->z2, n, Hm, E, y->bn1_mean, y->bn1_var, y->bn2_mean, y->bn2_var,
                                   s->threshold, &s->cur, err));
            if (routing) MP_TRY(mp_route_group_append(&routing->groups[l / c->moe_groups], &s->cur, err));
        }
        if (c->decompose == MP_VD) mp_cpu_moe_vd(s, y, n);
        else mp_cpu_moe_hd(s, y, n);
        add_into(s->x, s->tmp, (size_t)n * d);
    }
    s->pos += n;
    if (!logits) return 0;
    if (last_only) {
        const float *xl = s->x + (size_t)(n - 1) * d;
        mp_cpu_rmsnorm(s->xn, xl, m->final_norm, 1, d, c->rms_norm_eps);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, c->vocab_size, d, 1.0f, m->lm_head, d, s->xn, 1, 0.0f, logits, 1);
    } else {
        mp_cpu_rmsnorm(s->xn, s->x, m->final_norm, n, d, c->rms_norm_eps);
        mp_cpu_linear(logits, s->xn, m->lm_head, n, d, c->vocab_size);
    }
    return 0;
}

int mp_forward(mp_state *s, const int32_t *ids, size_t n, float *logits, int last_only, mp_routing *routing,
               mp_error *err) {
    const mp_config *c = &s->m->cfg;
    MP_FAIL_IF(n == 0, err, MP_EINPUT, "no tokens to run");
    MP_FAIL_IF((size_t)s->pos + n > (size_t)s->max_ctx, err, MP_EINPUT,
               "context full: %d cached + %zu new tokens exceed the %d-token context", s->pos, n, s->max_ctx);
    for (size_t i = 0; i < n; i++)
        MP_FAIL_IF(ids[i] < 0 || ids[i] >= c->vocab_size, err, MP_EINPUT, "token id %d at position %zu is outside "
                   "the vocabulary (0..%d)", ids[i], i, c->vocab_size - 1);
    MP_FAIL_IF(routing && (routing->n_groups != c->n_router_groups || routing->Hm != c->moe_heads), err,
               MP_EINTERNAL, "routing record was made for another model");
    for (size_t done = 0; done < n;) {
        int cn = (int)(n - done < (size_t)s->chunk ? n - done : (size_t)s->chunk);
        int last_chunk = done + (size_t)cn == n;
        float *lg = NULL;
        if (logits && !last_only) lg = logits + done * (size_t)c->vocab_size;
        else if (logits && last_chunk) lg = logits;
        MP_TRY(forward_chunk(s, ids + done, cn, lg, last_only, routing, err));
        done += (size_t)cn;
    }
    return 0;
}
