/* core/model/forward_cpu.c — the readable CPU reference forward pass of Monet
 * (DESIGN.md §2): RMSNorm, RoPE (HF rotate-half), causal GQA attention over a
 * KV cache, the product-key router shared by each group of moe_groups layers,
 * and the VD / HD expert mixtures computed from the sparse routing without
 * ever forming the E x E expert matrix. Dense projections (linear_cpu.h) are
 * OpenBLAS sgemm over a chunk of tokens, bf16 weights widened block by block;
 * a single token (decoding) runs mp_linear_rows, which reads bf16 weights
 * directly and which mp_forward_steps also runs over B states' tokens at once (the dense
 * projections, router and lm_head share each weight read; attention and the
 * experts stay per state), bit-identical to stepping each state alone.
 *
 * Expert compute is sparse by default: the chunk's (token, expert) pairs of
 * each factor are grouped by expert (counting sort) and the U and V products
 * run as one small GEMM per expert the router activated (or steering
 * touches), never over all E experts. MP_MOE=dense selects the einsum-style
 * path (every expert's a_i / b_j, V GEMMs over the mostly-zero mixed inputs)
 * for comparison; both share the routing mixture code through "rows". */
#include "core/model/forward.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/model/linear_cpu.h"
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
    /* Expert buffers are indexed by "row": one row per (token, expert) pair of
     * a factor (rows of factor 1 for a1, y11, y12, coef_a; factor 2 for a2,
     * y21, y22, coef_d; HD: a1 factor 1, y21 and coef_d factor 2). Dense:
     * row t*E + i; sparse: the chunk's pairs grouped by expert. */
    float *a1, *a2;            /* VD: [C*E rows][m/2] each; HD: a1 is [C*E][m] */
    float *y11, *y12, *y21, *y22; /* VD: [C*E][m/2]; HD uses y21 as [C*E][m] */
    float *coef_a, *coef_d;    /* [C*E]: A_i = sum_h g1[h,i], D_j = sum_h g2[h,j] */
    float *alpha, *beta;       /* [m] per-head mixtures */
    int sparse;                /* 1: per-expert GEMMs over active experts; 0: MP_MOE=dense */
    int32_t *ent_row;          /* [cap_ent] row of each entry of s->cur (factor from its slot) */
    size_t cap_ent;
    int32_t *steer_row;        /* [2][C][n_steer] rows of the steered experts, current group */
    int32_t *pair_tok[2];      /* [C*E] token of each row (sparse) */
    int32_t *ex_start[2];      /* [E+1] expert i owns rows ex_start[f][i] .. ex_start[f][i+1] */
    int32_t *mark, *fill, *rowcur; /* [E] scratch of build_rows */
    int n_rows[2];             /* rows in use per factor */
    float *xg, *og;            /* [C][d] gathered inputs / per-expert outputs (sparse) */
    float *wconv;              /* [wconv_n] bf16 weights widened for sgemm (NULL: all float32) */
    size_t wconv_n;
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

/* Write one byte per page so the kernel maps the pages now (calloc leaves
 * large blocks as untouched zero mappings), not during the first forward. */
static void prefault(void *p, size_t bytes) {
    static size_t page;
    if (!page) {
        long ps = sysconf(_SC_PAGESIZE);
        page = ps > 0 ? (size_t)ps : 4096;
    }
    volatile unsigned char *b = p;
    for (size_t o = 0; o < bytes; o += page) b[o] = 0;
}

/* MP_MOE: unset / "sparse" (default) or "dense" (every expert, as the
 * einsum formulation). @return 0 or MP_EINPUT. */
static int moe_mode(int *sparse, mp_error *err) {
    const char *env = getenv("MP_MOE");
    *sparse = 1;
    if (!env || !*env || !strcmp(env, "sparse")) return 0;
    if (!strcmp(env, "dense")) {
        *sparse = 0;
        return 0;
    }
    return mp_fail(err, MP_EINPUT, "MP_MOE=%s: expected sparse or dense", env);
}

int mp_state_create(const mp_model *m, int max_ctx, int max_chunk, mp_state **out, mp_error *err) {
    const mp_config *c = &m->cfg;
    if (max_ctx <= 0) max_ctx = c->max_position_embeddings;
    if (max_chunk <= 0) max_chunk = 256;
    if (max_chunk > max_ctx) max_chunk = max_ctx;
    MP_FAIL_IF(max_ctx > (1 << 22), err, MP_EINPUT, "context of %d tokens is too long", max_ctx);
    int sparse;
    MP_TRY(moe_mode(&sparse, err));
    mp_state *s = calloc(1, sizeof *s);
    if (!s) return mp_fail(err, MP_ENOMEM, "out of memory");
    s->m = m;
    s->max_ctx = max_ctx;
    s->chunk = max_chunk;
    s->sparse = sparse;
    s->threshold = mp_router_threshold(c->moe_topk, c->moe_experts);
    const size_t C = (size_t)max_chunk, d = (size_t)c->hidden_size, hd = (size_t)c->head_dim;
    const size_t qd = (size_t)c->n_heads * hd, kvd = (size_t)c->n_kv_heads * hd;
    const size_t E = (size_t)c->moe_experts, Hm = (size_t)c->moe_heads, mm = (size_t)c->moe_dim;
    const size_t eu = c->decompose == MP_VD ? E * (mm / 2) : E * mm;
    if (m->has_bf16) { /* mp_linear widens blocks of >= 1 row of every projection's input width;
                          * sparse_down two [dout][w] blocks (dout <= d, w <= m) */
        size_t widest = d > qd ? d : qd;
        if (eu > widest) widest = eu;
        if (2 * d * mm > widest) widest = 2 * d * mm;
        s->wconv_n = widest > MP_LINEAR_SCRATCH ? widest : MP_LINEAR_SCRATCH;
    }
    int fail = 0;
    struct { float **p; size_t n; } fb[] = {
        {&s->kcache, (size_t)c->n_layers * (size_t)max_ctx * kvd}, {&s->vcache, (size_t)c->n_layers * (size_t)max_ctx * kvd},
        {&s->rope_cos, (size_t)max_ctx * hd / 2}, {&s->rope_sin, (size_t)max_ctx * hd / 2},
        {&s->x, C * d}, {&s->xn, C * d}, {&s->tmp, C * d}, {&s->q, C * qd}, {&s->att, C * qd},
        {&s->k, C * kvd}, {&s->v, C * kvd}, {&s->scores, C * (size_t)max_ctx},
        {&s->z1, C * Hm * E}, {&s->z2, C * Hm * E}, {&s->a1, C * eu}, {&s->y21, C * eu},
        {&s->a2, c->decompose == MP_VD ? C * eu : 0}, {&s->y11, c->decompose == MP_VD ? C * eu : 0},
        {&s->y12, c->decompose == MP_VD ? C * eu : 0}, {&s->y22, c->decompose == MP_VD ? C * eu : 0},
        {&s->coef_a, C * E}, {&s->coef_d, C * E}, {&s->alpha, mm}, {&s->beta, mm},
        {&s->xg, C * d}, {&s->og, C * d}, {&s->wconv, s->wconv_n}};
    for (size_t i = 0; i < sizeof fb / sizeof fb[0]; i++)
        if (fb[i].n) {
            *fb[i].p = xcalloc(fb[i].n, sizeof(float), &fail);
            if (*fb[i].p) prefault(*fb[i].p, fb[i].n * sizeof(float));
        }
    for (int f = 0; f < 2; f++) {
        s->pair_tok[f] = xcalloc(C * E, sizeof(int32_t), &fail);
        s->ex_start[f] = xcalloc(E + 1, sizeof(int32_t), &fail);
    }
    s->mark = xcalloc(E, sizeof(int32_t), &fail);
    s->fill = xcalloc(E, sizeof(int32_t), &fail);
    s->rowcur = xcalloc(E, sizeof(int32_t), &fail);
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
                     s->y11,    s->y12,    s->y21,      s->y22,      s->coef_a, s->coef_d, s->alpha, s->beta,
                     s->xg,     s->og,     s->wconv};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    int32_t *ibufs[] = {s->ent_row, s->steer_row, s->pair_tok[0], s->pair_tok[1], s->ex_start[0], s->ex_start[1],
                        s->mark,    s->fill,      s->rowcur};
    for (size_t i = 0; i < sizeof ibufs / sizeof ibufs[0]; i++) free(ibufs[i]);
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

int mp_state_copy_cache(mp_state *dst, const mp_state *src, int n, mp_error *err) {
    MP_FAIL_IF(dst->m != src->m, err, MP_EINPUT, "cannot copy a KV cache between states of different models");
    MP_FAIL_IF(n < 0 || n > src->pos || n > dst->max_ctx, err, MP_EINPUT,
               "cannot copy %d cached tokens (the source holds %d, the destination takes %d)", n, src->pos,
               dst->max_ctx);
    const mp_config *c = &src->m->cfg;
    const size_t kvd = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    for (int l = 0; l < c->n_layers && dst != src; l++) {
        memcpy(dst->kcache + (size_t)l * dst->max_ctx * kvd, src->kcache + (size_t)l * src->max_ctx * kvd,
               (size_t)n * kvd * sizeof(float));
        memcpy(dst->vcache + (size_t)l * dst->max_ctx * kvd, src->vcache + (size_t)l * src->max_ctx * kvd,
               (size_t)n * kvd * sizeof(float));
    }
    dst->pos = n;
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
    int32_t *rows = NULL;
    if (n) {
        copy = malloc(n * sizeof *copy);
        rows = malloc(2 * (size_t)s->chunk * n * sizeof *rows);
        if (!copy || !rows) {
            free(copy);
            free(rows);
            return mp_fail(err, MP_ENOMEM, "out of memory");
        }
        memcpy(copy, list, n * sizeof *copy);
    }
    free(s->steer);
    free(s->steer_row);
    s->steer = copy;
    s->steer_row = rows;
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

/* y[n][out] = x[n][in] * W^T (dense, row strides in and out). A single row
 * (decoding) runs the kernel mp_forward_steps runs over B states' rows, so a
 * sequence decodes to the same bits alone or in a batch. */
static void mp_cpu_linear(const mp_state *s, float *y, const float *x, const mp_weight *w, int n, int in, int outd) {
    if (n == 1) mp_linear_rows(y, x, w, 1, in, outd);
    else mp_linear(y, outd, x, in, w, in, n, in, outd, 0.0f, s->wconv, s->wconv_n);
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
        if (n == 1) /* decoding: scores = K q, a GEMV over the cached keys */
            cblas_sgemv(CblasRowMajor, CblasNoTrans, S, hd, scale, K + (size_t)kvh * hd, kvd, s->q + (size_t)h * hd, 1,
                        0.0f, s->scores, 1);
        else
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
        if (n == 1) /* att = V^T p */
            cblas_sgemv(CblasRowMajor, CblasTrans, S, hd, 1.0f, V + (size_t)kvh * hd, kvd, s->scores, 1, 0.0f,
                        s->att + (size_t)h * hd, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hd, S, 1.0f, s->scores, S, V + (size_t)kvh * hd,
                        kvd, 0.0f, s->att + (size_t)h * hd, qd);
    }
}

/* a = relu(x W^T + bias)^2 over n rows of width w. */
static void mp_cpu_expert_up(const mp_state *s, float *a, const float *xn, const mp_weight *wt, const float *bias,
                             int n, int d, int w) {
    mp_cpu_linear(s, a, xn, wt, n, d, w);
    for (int t = 0; t < n; t++) {
        float *r = a + (size_t)t * w;
        for (int i = 0; i < w; i++) {
            float u = r[i] + bias[i];
            r[i] = u > 0 ? u * u : 0.0f;
        }
    }
}

/* ---- rows: where each (token, expert) pair of the chunk lives ------------ */

/* Visit every (token, expert) pair of factor f in the chunk's routing, in a
 * fixed order (tokens, heads, entries, then steered experts). pass 0 counts
 * distinct pairs per expert into ex_start[f][i+1]; pass 1 gives each pair
 * its row (sparse layout) and records it for the entries and steering. */
static void visit_pairs(mp_state *s, int n, int f, int pass) {
    const int Hm = s->cur.Hm;
    const int32_t *off = s->cur.off, *idx = s->cur.idx;
    int32_t *cnt = s->ex_start[f] + 1, *mark = s->mark;
    for (int t = 0; t < n; t++) {
        for (int h = 0; h < Hm; h++) {
            size_t k = ((size_t)t * 2 + (size_t)f) * (size_t)Hm + (size_t)h;
            for (int32_t e = off[k]; e < off[k + 1]; e++) {
                int32_t i = idx[e];
                if (mark[i] != t) {
                    mark[i] = t;
                    if (pass == 0) cnt[i]++;
                    else {
                        s->rowcur[i] = s->fill[i]++;
                        s->pair_tok[f][s->rowcur[i]] = t;
                    }
                }
                if (pass) s->ent_row[e] = s->rowcur[i];
            }
        }
        for (size_t q = 0; q < s->n_steer; q++) {
            const mp_steer *st = &s->steer[q];
            if (st->group != s->cur_group) continue;
            int32_t i = f ? st->j : st->i;
            if (mark[i] != t) {
                mark[i] = t;
                if (pass == 0) cnt[i]++;
                else {
                    s->rowcur[i] = s->fill[i]++;
                    s->pair_tok[f][s->rowcur[i]] = t;
                }
            }
            if (pass) s->steer_row[((size_t)f * (size_t)s->chunk + (size_t)t) * s->n_steer + q] = s->rowcur[i];
        }
    }
}

/* Rows of the chunk's routing s->cur (n tokens), once per router group.
 * Dense: row t*E + i. Sparse: the distinct pairs of factor f grouped by
 * expert (counting sort); expert i owns rows ex_start[f][i] ..
 * ex_start[f][i+1], pair_tok[f] gives each row's token.
 * @return 0 or MP_ENOMEM. */
static int build_rows(mp_state *s, int n, mp_error *err) {
    const int E = s->m->cfg.moe_experts, Hm = s->cur.Hm;
    if (s->cur.n_entries > s->cap_ent) {
        size_t nc = s->cap_ent ? s->cap_ent : 1024;
        while (nc < s->cur.n_entries) nc *= 2;
        int32_t *nr = realloc(s->ent_row, nc * sizeof *nr);
        if (!nr) return mp_fail(err, MP_ENOMEM, "out of memory");
        s->ent_row = nr;
        s->cap_ent = nc;
    }
    for (int f = 0; f < 2; f++) {
        if (!s->sparse) {
            for (int t = 0; t < n; t++) {
                for (int h = 0; h < Hm; h++) {
                    size_t k = ((size_t)t * 2 + (size_t)f) * (size_t)Hm + (size_t)h;
                    for (int32_t e = s->cur.off[k]; e < s->cur.off[k + 1]; e++)
                        s->ent_row[e] = t * E + s->cur.idx[e];
                }
                for (size_t q = 0; q < s->n_steer; q++)
                    s->steer_row[((size_t)f * (size_t)s->chunk + (size_t)t) * s->n_steer + q] =
                        t * E + (f ? s->steer[q].j : s->steer[q].i);
            }
            s->n_rows[f] = n * E;
            continue;
        }
        int32_t *start = s->ex_start[f];
        memset(start, 0, ((size_t)E + 1) * sizeof *start);
        for (int i = 0; i < E; i++) s->mark[i] = -1;
        visit_pairs(s, n, f, 0);
        for (int i = 0; i < E; i++) start[i + 1] += start[i];
        memcpy(s->fill, start, (size_t)E * sizeof *start);
        for (int i = 0; i < E; i++) s->mark[i] = -1;
        visit_pairs(s, n, f, 1);
        s->n_rows[f] = start[E];
    }
    return 0;
}

/* act[row][w] = relu(U_i x_t + c_i)^2 for every row (t, i) of factor f:
 * per expert, its tokens' normed inputs gathered into xg and one GEMM
 * (GEMV for a single token) against the expert's w rows of U. */
static void sparse_up(mp_state *s, int f, const mp_weight *U, const float *bias, int w, float *act) {
    const int E = s->m->cfg.moe_experts, d = s->m->cfg.hidden_size;
    const int32_t *start = s->ex_start[f], *tok = s->pair_tok[f];
    for (int i = 0; i < E; i++) {
        const int r0 = start[i], cnt = start[i + 1] - r0;
        if (!cnt) continue;
        const mp_weight Ui = mp_weight_at(U, (size_t)i * w * d);
        const float *bi = bias + (size_t)i * w;
        float *out = act + (size_t)r0 * w;
        if (cnt == 1) { /* one token (decoding): the row kernel, reading bf16 directly */
            mp_linear_rows(out, s->xn + (size_t)tok[r0] * d, &Ui, 1, d, w);
        } else {
            for (int r = 0; r < cnt; r++)
                memcpy(s->xg + (size_t)r * d, s->xn + (size_t)tok[r0 + r] * d, (size_t)d * sizeof(float));
            mp_linear(out, w, s->xg, d, &Ui, d, cnt, d, w, 0.0f, s->wconv, s->wconv_n);
        }
        for (int r = 0; r < cnt; r++)
            for (int k = 0; k < w; k++) {
                float u = out[(size_t)r * w + k] + bi[k];
                out[(size_t)r * w + k] = u > 0 ? u * u : 0.0f;
            }
    }
}

/* out[t][0..dout) (row stride ldo) += sum over the rows (t, i) of factor f
 * of y1_row V1_i^T (+ y2_row V2_i^T when y2) + coef_row B_i, where V_i are
 * expert i's w columns of V [dout][E*w] and B_i row i of B [E][dout]. */
/* Experts per widened group of V columns: two [dout][G*w] float blocks in
 * scratch (mp_state_create sizes it for G >= 1). */
static int mp_down_group(size_t scratch_n, int dout, int w, int E) {
    size_t g = scratch_n / (2 * (size_t)dout * (size_t)w);
    return g < 1 ? 1 : g > (size_t)E ? E : (int)g;
}

static void sparse_down(mp_state *s, int n_tok, int f, const float *y1, const mp_weight *v1, const float *y2,
                        const mp_weight *v2, const float *coef, const float *B, int w, int dout, float *out,
                        int ldo) {
    const int E = s->m->cfg.moe_experts, ldv = E * w;
    const int32_t *start = s->ex_start[f], *tok = s->pair_tok[f];
    float *og = s->og;
    if (n_tok == 1 && start[E] > 0) { /* one token (decoding): every row of V once, front to back */
        int32_t *sel = s->fill; /* [E] scratch, free after build_rows */
        int n_sel = 0;
        for (int i = 0; i < E; i++)
            if (start[i + 1] > start[i]) sel[n_sel++] = i; /* one row each: rows 0..n_sel-1 in expert order */
        /* one pass over each V's rows in address order (hardware-prefetched); a
         * GEMV over all E*w columns with zeros outside the token's experts
         * measured 0.55-0.85x of this at the 1.4B shape */
        mp_linear_cols(out, v1, y1, v2, y2, (size_t)ldv, sel, n_sel, w, dout);
        for (int e = 0; e < n_sel; e++) {
            const float *bi = B + (size_t)sel[e] * dout;
            const float cf = coef[e];
            for (int k = 0; k < dout; k++) out[k] += cf * bi[k];
        }
        return;
    }
    /* bf16 V: the columns of G experts at a time widened into wconv (v1's
     * then v2's), each row read as one run: one expert's 8 columns alone
     * would cost a cache and TLB miss per row (the mapping has 4 KiB pages) */
    const int bf = v1->bf16 != NULL, G = bf ? mp_down_group(s->wconv_n, dout, w, E) : E;
    const size_t ldg = bf ? (size_t)G * w : (size_t)ldv;
    float *g1 = s->wconv, *g2 = s->wconv + (size_t)dout * ldg;
    for (int i = 0; i < E; i++) {
        const int r0 = start[i], cnt = start[i + 1] - r0;
        if (bf && i % G == 0 && start[i + G < E ? i + G : E] > r0) { /* a group with active experts */
            const int ng = E - i < G ? E - i : G;
            mp_weight_block(v1, (size_t)ldv, 0, (size_t)dout, (size_t)i * w, (size_t)ng * w, g1, ldg);
            if (y2) mp_weight_block(v2, (size_t)ldv, 0, (size_t)dout, (size_t)i * w, (size_t)ng * w, g2, ldg);
        }
        if (!cnt) continue;
        const size_t col = bf ? (size_t)(i % G) * w : (size_t)i * w;
        const mp_weight w1 = bf ? (mp_weight){g1, NULL} : *v1, w2 = bf ? (mp_weight){g2, NULL} : y2 ? *v2 : *v1;
        const mp_weight v1i = mp_weight_at(&w1, col);
        if (cnt == 1) { /* one token: the row kernel over the expert's w columns (stride ldg) */
            mp_linear_rows_ld(og, y1 + (size_t)r0 * w, &v1i, ldg, 1, w, dout);
            if (y2) {
                const mp_weight v2i = mp_weight_at(&w2, col);
                mp_linear_rows_ld(s->xg, y2 + (size_t)r0 * w, &v2i, ldg, 1, w, dout);
                for (int k = 0; k < dout; k++) og[k] += s->xg[k];
            }
        } else {
            mp_linear(og, dout, y1 + (size_t)r0 * w, w, &v1i, (int)ldg, cnt, w, dout, 0.0f, NULL, 0);
            if (y2) {
                const mp_weight v2i = mp_weight_at(&w2, col);
                mp_linear(og, dout, y2 + (size_t)r0 * w, w, &v2i, (int)ldg, cnt, w, dout, 1.0f, NULL, 0);
            }
        }
        const float *bi = B + (size_t)i * dout;
        for (int r = 0; r < cnt; r++) {
            float *o = out + (size_t)tok[r0 + r] * ldo;
            const float *g = og + (size_t)r * dout;
            const float cf = coef[r0 + r];
            for (int k = 0; k < dout; k++) o[k] += g[k] + cf * bi[k];
        }
    }
}

/* ---- the routing mixture, over rows (shared by the dense and sparse paths) */

/* mix[0..ms) = sum over entries e0..e0+cnt of one head of p_e * act[row_e]. */
static void head_mix(float *mix, const float *act, const int32_t *rows, const float *p, int cnt, int ms) {
    memset(mix, 0, (size_t)ms * sizeof *mix);
    for (int a = 0; a < cnt; a++) {
        const float *r = act + (size_t)rows[a] * ms;
        for (int k = 0; k < ms; k++) mix[k] += p[a] * r[k];
    }
}

/* Masking as a correction over the masked *active* pairs of token t: for each
 * head contribution c = g1[h,i] g2[h,j] of a masked expert (i,j), remove c
 * from A_i and D_j and c*b_j / c*a_i from the mixed inputs. w'_ij = 0 then
 * holds exactly as in the E x E expansion, at O(active pairs * m) cost.
 * act_i / act_j: row-indexed expert activations (a_i of factor 1, b_j of
 * factor 2; HD passes act_j = NULL and y_i = NULL). */
static void mask_correction(const mp_state *s, int t, const float *act_i, const float *act_j, int ms, float *ca,
                            float *cd, float *y_i, float *y_j) {
    const mp_mask *mk = s->mask;
    const int r = s->cur_group, E = s->m->cfg.moe_experts, Hm = s->cur.Hm;
    const uint8_t *row_any = mk->row_any + (size_t)r * (size_t)E;
    const int32_t *off = s->cur.off, *idx = s->cur.idx, *rows = s->ent_row;
    const float *p = s->cur.p;
    for (int h = 0; h < Hm; h++) {
        size_t k1 = (size_t)t * 2 * (size_t)Hm + (size_t)h, k2 = k1 + (size_t)Hm;
        for (int32_t a = off[k1]; a < off[k1 + 1]; a++) {
            if (!row_any[idx[a]]) continue;
            for (int32_t b = off[k2]; b < off[k2 + 1]; b++) {
                if (!mp_mask_contains(mk, r, idx[a], idx[b])) continue;
                const size_t ra = (size_t)rows[a], rb = (size_t)rows[b];
                float c = p[a] * p[b];
                if (ca) ca[ra] -= c;
                cd[rb] -= c;
                if (y_i) {
                    float *yr = y_i + ra * ms;
                    const float *bj = act_j + rb * ms;
                    for (int q = 0; q < ms; q++) yr[q] -= c * bj[q];
                }
                float *yr = y_j + rb * ms;
                const float *ai = act_i + ra * ms;
                for (int q = 0; q < ms; q++) yr[q] -= c * ai[q];
            }
        }
    }
}

/* Row of steering entry q of token t in factor f. */
static size_t steer_row(const mp_state *s, int f, int t, size_t q) {
    return (size_t)s->steer_row[((size_t)f * (size_t)s->chunk + (size_t)t) * s->n_steer + q];
}

/* Steering: w_ij += S for each steered expert of the current group, the same
 * update as mask_correction with c = -S. Steered experts need not be active,
 * so the caller also writes their A_i a_i / D_j b_j inputs (VD). */
static void steer_correction(const mp_state *s, int t, const float *act_i, const float *act_j, int ms, float *ca,
                             float *cd, float *y_i, float *y_j) {
    for (size_t k = 0; k < s->n_steer; k++) {
        const mp_steer *st = &s->steer[k];
        if (st->group != s->cur_group) continue;
        const float c = st->strength;
        const size_t ri = steer_row(s, 0, t, k), rj = steer_row(s, 1, t, k);
        if (ca) ca[ri] += c;
        cd[rj] += c;
        if (y_i)
            for (int q = 0; q < ms; q++) y_i[ri * ms + q] += c * act_j[rj * ms + q];
        for (int q = 0; q < ms; q++) y_j[rj * ms + q] += c * act_i[ri * ms + q];
    }
}

/* VD mixture for n tokens (DESIGN.md §2), output into s->tmp [n][d]. */
static void mp_cpu_moe_vd(mp_state *s, const mp_layer *y, int n) {
    const mp_config *c = &s->m->cfg;
    const int d = c->hidden_size, dh = d / 2, E = c->moe_experts, Hm = c->moe_heads, m2 = c->moe_dim / 2;
    const size_t eu = (size_t)E * m2;
    const int32_t *off = s->cur.off, *rows = s->ent_row;
    const float *p = s->cur.p;
    if (s->sparse) {
        sparse_up(s, 0, &y->u1, y->u1_bias, m2, s->a1);
        sparse_up(s, 1, &y->u2, y->u2_bias, m2, s->a2);
    } else {
        mp_cpu_expert_up(s, s->a1, s->xn, &y->u1, y->u1_bias, n, d, (int)eu);
        mp_cpu_expert_up(s, s->a2, s->xn, &y->u2, y->u2_bias, n, d, (int)eu);
    }
    /* y11 / y22 are written for every row in use (active or steered) below;
     * the dense GEMMs read all n*E rows, so they are cleared there */
    const size_t r1 = (size_t)s->n_rows[0], r2 = (size_t)s->n_rows[1];
    if (!s->sparse) {
        memset(s->y11, 0, r1 * m2 * sizeof(float));
        memset(s->y22, 0, r2 * m2 * sizeof(float));
    }
    memset(s->y12, 0, r1 * m2 * sizeof(float));
    memset(s->y21, 0, r2 * m2 * sizeof(float));
    memset(s->coef_a, 0, r1 * sizeof(float));
    memset(s->coef_d, 0, r2 * sizeof(float));
    float *a1 = s->a1, *a2 = s->a2, *y11 = s->y11, *y12 = s->y12, *y21 = s->y21, *y22 = s->y22;
    float *ca = s->coef_a, *cd = s->coef_d;
    for (int t = 0; t < n; t++) {
        for (int h = 0; h < Hm; h++) {
            size_t k1 = (size_t)t * 2 * (size_t)Hm + (size_t)h, k2 = k1 + (size_t)Hm;
            const int32_t e1 = off[k1], n1 = off[k1 + 1] - e1, e2 = off[k2], n2 = off[k2 + 1] - e2;
            head_mix(s->alpha, a1, rows + e1, p + e1, n1, m2); /* alpha_h = sum_i g1[h,i] a_i */
            head_mix(s->beta, a2, rows + e2, p + e2, n2, m2);  /* beta_h  = sum_j g2[h,j] b_j */
            for (int a = 0; a < n1; a++) {          /* (sum_j w_ij b_j) = sum_h g1[h,i] beta_h */
                const size_t r = (size_t)rows[e1 + a];
                ca[r] += p[e1 + a];
                for (int k = 0; k < m2; k++) y12[r * m2 + k] += p[e1 + a] * s->beta[k];
            }
            for (int b = 0; b < n2; b++) {          /* (sum_i w_ij a_i) = sum_h g2[h,j] alpha_h */
                const size_t r = (size_t)rows[e2 + b];
                cd[r] += p[e2 + b];
                for (int k = 0; k < m2; k++) y21[r * m2 + k] += p[e2 + b] * s->alpha[k];
            }
        }
        if (s->mask) mask_correction(s, t, a1, a2, m2, ca, cd, y12, y21);
        if (s->n_steer) steer_correction(s, t, a1, a2, m2, ca, cd, y12, y21);
        for (size_t k = 0; k < s->n_steer; k++) { /* A_i a_i, D_j b_j of steered experts */
            if (s->steer[k].group != s->cur_group) continue;
            const size_t ri = steer_row(s, 0, t, k), rj = steer_row(s, 1, t, k);
            for (int q = 0; q < m2; q++) {
                y11[ri * m2 + q] = ca[ri] * a1[ri * m2 + q];
                y22[rj * m2 + q] = cd[rj] * a2[rj * m2 + q];
            }
        }
        for (int h = 0; h < Hm; h++) { /* A_i a_i and D_j b_j for the active experts */
            size_t k1 = (size_t)t * 2 * (size_t)Hm + (size_t)h, k2 = k1 + (size_t)Hm;
            for (int32_t e = off[k1]; e < off[k1 + 1]; e++) {
                const size_t r = (size_t)rows[e];
                for (int k = 0; k < m2; k++) y11[r * m2 + k] = ca[r] * a1[r * m2 + k];
            }
            for (int32_t e = off[k2]; e < off[k2 + 1]; e++) {
                const size_t r = (size_t)rows[e];
                for (int k = 0; k < m2; k++) y22[r * m2 + k] = cd[r] * a2[r * m2 + k];
            }
        }
    }
    float *top = s->tmp, *bot = s->tmp + dh;
    if (s->sparse) {
        memset(s->tmp, 0, (size_t)n * d * sizeof(float));
        sparse_down(s, n, 0, y11, &y->v11, y12, &y->v12, ca, y->b1, m2, dh, top, d);
        sparse_down(s, n, 1, y21, &y->v21, y22, &y->v22, cd, y->b2, m2, dh, bot, d);
        return;
    }
    const int K = (int)eu;
    mp_linear(top, d, y11, K, &y->v11, K, n, K, dh, 0.0f, s->wconv, s->wconv_n);
    mp_linear(top, d, y12, K, &y->v12, K, n, K, dh, 1.0f, s->wconv, s->wconv_n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dh, E, 1.0f, ca, E, y->b1, dh, 1.0f, top, d);
    mp_linear(bot, d, y21, K, &y->v21, K, n, K, dh, 0.0f, s->wconv, s->wconv_n);
    mp_linear(bot, d, y22, K, &y->v22, K, n, K, dh, 1.0f, s->wconv, s->wconv_n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dh, E, 1.0f, cd, E, y->b2, dh, 1.0f, bot, d);
}

/* HD mixture: out = sum_j V_j (sum_i w_ij a_i) + sum_j D_j B_j. */
static void mp_cpu_moe_hd(mp_state *s, const mp_layer *y, int n) {
    const mp_config *c = &s->m->cfg;
    const int d = c->hidden_size, E = c->moe_experts, Hm = c->moe_heads, m = c->moe_dim;
    const size_t eu = (size_t)E * m;
    const int32_t *off = s->cur.off, *rows = s->ent_row;
    const float *p = s->cur.p;
    if (s->sparse) sparse_up(s, 0, &y->u, y->u_bias, m, s->a1);
    else mp_cpu_expert_up(s, s->a1, s->xn, &y->u, y->u_bias, n, d, (int)eu);
    const size_t r2 = (size_t)s->n_rows[1];
    memset(s->y21, 0, r2 * m * sizeof(float));
    memset(s->coef_d, 0, r2 * sizeof(float));
    const float *a = s->a1;
    float *yr = s->y21, *cd = s->coef_d;
    for (int t = 0; t < n; t++) {
        for (int h = 0; h < Hm; h++) {
            size_t k1 = (size_t)t * 2 * (size_t)Hm + (size_t)h, k2 = k1 + (size_t)Hm;
            const int32_t e1 = off[k1], n1 = off[k1 + 1] - e1;
            head_mix(s->alpha, a, rows + e1, p + e1, n1, m);
            for (int32_t e = off[k2]; e < off[k2 + 1]; e++) {
                const size_t r = (size_t)rows[e];
                cd[r] += p[e];
                for (int k = 0; k < m; k++) yr[r * m + k] += p[e] * s->alpha[k];
            }
        }
        if (s->mask) mask_correction(s, t, a, NULL, m, NULL, cd, NULL, yr);
        if (s->n_steer) steer_correction(s, t, a, NULL, m, NULL, cd, NULL, yr);
    }
    if (s->sparse) {
        memset(s->tmp, 0, (size_t)n * d * sizeof(float));
        sparse_down(s, n, 1, yr, &y->v, NULL, NULL, cd, y->b, m, d, s->tmp, d);
        return;
    }
    const int K = (int)eu;
    mp_linear(s->tmp, d, yr, K, &y->v, K, n, K, d, 0.0f, s->wconv, s->wconv_n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, E, 1.0f, cd, E, y->b, d, 1.0f, s->tmp, d);
}

static void add_into(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* The per-state buffers a dense projection reads or writes. */
enum { BUF_XN, BUF_ATT, BUF_Q, BUF_K, BUF_V, BUF_TMP, BUF_Z1, BUF_Z2 };
static float *state_buf(mp_state *s, int which) {
    switch (which) {
    case BUF_XN: return s->xn;
    case BUF_ATT: return s->att;
    case BUF_Q: return s->q;
    case BUF_K: return s->k;
    case BUF_V: return s->v;
    case BUF_TMP: return s->tmp;
    case BUF_Z1: return s->z1;
    default: return s->z2;
    }
}

/* One step of B states: either one state and n tokens (B == 1), or B states
 * and one token each (n == 1, a decoding step of B sequences). */
typedef struct step {
    mp_state *const *st;
    size_t B;
    int n;
    float *X, *Y; /* B > 1: [B][max(d, qd)] gathered inputs, [B][widest projection] outputs */
} step;

/* dst = src W^T in every state of the step: one linear over the state's n
 * rows (B == 1), or one pass over W for the B states' rows (gathered, then
 * scattered), each row computed as mp_cpu_linear computes a single row. */
static void linear_step(const step *p, int src, int dst, const mp_weight *w, int in, int outd) {
    if (p->B == 1) {
        mp_cpu_linear(p->st[0], state_buf(p->st[0], dst), state_buf(p->st[0], src), w, p->n, in, outd);
        return;
    }
    for (size_t b = 0; b < p->B; b++) memcpy(p->X + b * in, state_buf(p->st[b], src), (size_t)in * sizeof(float));
    mp_linear_rows(p->Y, p->X, w, (int)p->B, in, outd);
    for (size_t b = 0; b < p->B; b++) memcpy(state_buf(p->st[b], dst), p->Y + b * outd, (size_t)outd * sizeof(float));
}

/* Tokens ids at positions s->pos.. of each state of the step (B == 1: ids[0..n)
 * on st[0]; n == 1: ids[b] on st[b]). logits: B == 1 as mp_forward's chunk;
 * B > 1: [B][vocab]. routing: NULL or [B] (the state's tokens appended). */
static int forward_step(const step *p, const int32_t *ids, float *logits, int last_only, mp_routing *routing,
                        mp_error *err) {
    const mp_model *m = p->st[0]->m;
    const mp_config *c = &m->cfg;
    const int d = c->hidden_size, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    const int E = c->moe_experts, Hm = c->moe_heads, n = p->n;
    for (size_t b = 0; b < p->B; b++)
        for (int t = 0; t < n; t++)
            mp_weight_block(&m->embed, (size_t)d, (size_t)ids[b + (size_t)t], 1, 0, (size_t)d, p->st[b]->x + (size_t)t * d,
                            (size_t)d);
    for (int l = 0; l < c->n_layers; l++) {
        const mp_layer *y = &m->layers[l];
        for (size_t b = 0; b < p->B; b++) mp_cpu_rmsnorm(p->st[b]->xn, p->st[b]->x, y->attn_norm, n, d, c->rms_norm_eps);
        linear_step(p, BUF_XN, BUF_Q, &y->wq, d, qd);
        linear_step(p, BUF_XN, BUF_K, &y->wk, d, kvd);
        linear_step(p, BUF_XN, BUF_V, &y->wv, d, kvd);
        for (size_t b = 0; b < p->B; b++) {
            mp_state *s = p->st[b];
            const int pos0 = s->pos;
            mp_cpu_rope(s->q, n, c->n_heads, hd, qd, pos0, s->rope_cos, s->rope_sin);
            mp_cpu_rope(s->k, n, c->n_kv_heads, hd, kvd, pos0, s->rope_cos, s->rope_sin);
            size_t base = ((size_t)l * s->max_ctx + (size_t)pos0) * kvd;
            memcpy(s->kcache + base, s->k, (size_t)n * kvd * sizeof(float));
            memcpy(s->vcache + base, s->v, (size_t)n * kvd * sizeof(float));
            mp_cpu_attention(s, l, n, pos0);
        }
        linear_step(p, BUF_ATT, BUF_TMP, &y->wo, qd, d);
        for (size_t b = 0; b < p->B; b++) {
            mp_state *s = p->st[b];
            add_into(s->x, s->tmp, (size_t)n * d);
            mp_cpu_rmsnorm(s->xn, s->x, y->ffn_norm, n, d, c->rms_norm_eps);
        }
        if (l % c->moe_groups == 0) {
            linear_step(p, BUF_XN, BUF_Z1, &y->router_w1, d, Hm * E);
            linear_step(p, BUF_XN, BUF_Z2, &y->router_w2, d, Hm * E);
            for (size_t b = 0; b < p->B; b++) {
                mp_state *s = p->st[b];
                s->cur_group = l / c->moe_groups;
                mp_route_group_clear(&s->cur, Hm);
                MP_TRY(mp_router_route(s->z1, s->z2, n, Hm, E, y->bn1_mean, y->bn1_var, y->bn2_mean, y->bn2_var,
                                       s->threshold, &s->cur, err));
                if (routing) MP_TRY(mp_route_group_append(&routing[b].groups[l / c->moe_groups], &s->cur, err));
                MP_TRY(build_rows(s, n, err));
            }
        }
        for (size_t b = 0; b < p->B; b++) {
            mp_state *s = p->st[b];
            if (c->decompose == MP_VD) mp_cpu_moe_vd(s, y, n);
            else mp_cpu_moe_hd(s, y, n);
            add_into(s->x, s->tmp, (size_t)n * d);
        }
    }
    for (size_t b = 0; b < p->B; b++) p->st[b]->pos += n;
    if (!logits) return 0;
    if (p->B > 1) { /* one row per state: its last */
        for (size_t b = 0; b < p->B; b++)
            mp_cpu_rmsnorm(p->X + b * d, p->st[b]->x, m->final_norm, 1, d, c->rms_norm_eps);
        mp_linear_rows(logits, p->X, &m->lm_head, (int)p->B, d, c->vocab_size);
        return 0;
    }
    mp_state *s = p->st[0];
    if (last_only) {
        const float *xl = s->x + (size_t)(n - 1) * d;
        mp_cpu_rmsnorm(s->xn, xl, m->final_norm, 1, d, c->rms_norm_eps);
        mp_cpu_linear(s, logits, s->xn, &m->lm_head, 1, d, c->vocab_size);
    } else {
        mp_cpu_rmsnorm(s->xn, s->x, m->final_norm, n, d, c->rms_norm_eps);
        mp_cpu_linear(s, logits, s->xn, &m->lm_head, n, d, c->vocab_size);
    }
    return 0;
}

/* One chunk of n tokens at positions s->pos .. s->pos+n-1. */
static int forward_chunk(mp_state *s, const int32_t *ids, int n, float *logits, int last_only, mp_routing *routing,
                         mp_error *err) {
    const step p = {&s, 1, n, NULL, NULL};
    return forward_step(&p, ids, logits, last_only, routing, err);
}

int mp_forward_steps(mp_state *const *st, size_t B, const int32_t *ids, float *logits, mp_routing *routing,
                     mp_error *err) {
    if (B == 0) return 0;
    const mp_model *m = st[0]->m;
    const mp_config *c = &m->cfg;
    for (size_t b = 0; b < B; b++) {
        MP_FAIL_IF(st[b]->m != m, err, MP_EINTERNAL, "decoding step over states of different models");
        MP_FAIL_IF(st[b]->pos + 1 > st[b]->max_ctx, err, MP_EINPUT,
                   "context full: %d cached + 1 new token exceed the %d-token context", st[b]->pos, st[b]->max_ctx);
        MP_FAIL_IF(ids[b] < 0 || ids[b] >= c->vocab_size, err, MP_EINPUT,
                   "token id %d of sequence %zu is outside the vocabulary (0..%d)", ids[b], b, c->vocab_size - 1);
        MP_FAIL_IF(routing && (routing[b].n_groups != c->n_router_groups || routing[b].Hm != c->moe_heads), err,
                   MP_EINTERNAL, "routing record was made for another model");
        for (size_t a = 0; a < b; a++) MP_FAIL_IF(st[a] == st[b], err, MP_EINPUT, "a state twice in one step");
    }
    if (B == 1) return mp_forward(st[0], ids, 1, logits, 1, routing, err);
    const size_t d = (size_t)c->hidden_size, qd = (size_t)c->n_heads * (size_t)c->head_dim;
    const size_t wide = (size_t)c->moe_heads * (size_t)c->moe_experts;
    size_t xw = d > qd ? d : qd, yw = xw > wide ? xw : wide;
    step p = {st, B, 1, malloc(B * xw * sizeof(float)), malloc(B * yw * sizeof(float))};
    int rc = p.X && p.Y ? forward_step(&p, ids, logits, 1, routing, err)
                        : mp_fail(err, MP_ENOMEM, "out of memory for a %zu-sequence decoding step", B);
    free(p.X);
    free(p.Y);
    return rc;
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
