/* core/model/routing.c — router thresholding, sparse softmax and the sparse
 * routing record (see routing.h). Normalization and softmax run in double so
 * the active sets match a float64 reference except on true knife edges. */
#include "core/model/routing.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Inverse standard normal CDF: Acklam's rational approximation refined by
 * one Halley step on erfc, giving full double precision. */
static double inv_norm_cdf(double p) {
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                               1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                               6.680131188771972e+01,  -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                               -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                               3.754408661907416e+00};
    if (p <= 0) return -INFINITY;
    if (p >= 1) return INFINITY;
    double q, r, x;
    if (p < 0.02425) {
        q = sqrt(-2 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else if (p <= 1 - 0.02425) {
        q = p - 0.5;
        r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    } else {
        q = sqrt(-2 * log(1 - p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    for (int it = 0; it < 2; it++) { /* Halley refinement */
        double e = 0.5 * erfc(-x / sqrt(2.0)) - p;
        double u = e * sqrt(2 * M_PI) * exp(x * x / 2);
        x = x - u / (1 + x * u / 2);
    }
    return x;
}

double mp_router_threshold(int topk, int experts) { return inv_norm_cdf(1.0 - (double)topk / (double)experts); }

void mp_route_group_clear(mp_route_group *g, int Hm) {
    g->n_tokens = 0;
    g->Hm = Hm;
    g->n_entries = 0;
    if (g->off) g->off[0] = 0;
}

void mp_route_group_free(mp_route_group *g) {
    if (!g) return;
    free(g->off);
    free(g->idx);
    free(g->p);
    memset(g, 0, sizeof *g);
}

static int reserve(mp_route_group *g, size_t n_off, size_t n_entries, mp_error *err) {
    if (n_off > g->cap_off) {
        size_t nc = g->cap_off ? g->cap_off : 64;
        while (nc < n_off) nc *= 2;
        int32_t *no = realloc(g->off, nc * sizeof *no);
        if (!no) return mp_fail(err, MP_ENOMEM, "out of memory (routing)");
        if (!g->off) no[0] = 0;
        g->off = no;
        g->cap_off = nc;
    }
    if (n_entries > g->cap_entries) {
        size_t nc = g->cap_entries ? g->cap_entries : 256;
        while (nc < n_entries) nc *= 2;
        int32_t *ni = realloc(g->idx, nc * sizeof *ni);
        if (!ni) return mp_fail(err, MP_ENOMEM, "out of memory (routing)");
        g->idx = ni;
        float *np = realloc(g->p, nc * sizeof *np);
        if (!np) return mp_fail(err, MP_ENOMEM, "out of memory (routing)");
        g->p = np;
        g->cap_entries = nc;
    }
    return 0;
}

int mp_routing_init(mp_routing *r, const mp_config *cfg, mp_error *err) {
    memset(r, 0, sizeof *r);
    r->n_groups = cfg->n_router_groups;
    r->Hm = cfg->moe_heads;
    r->E = cfg->moe_experts;
    r->groups = calloc((size_t)r->n_groups, sizeof *r->groups);
    if (!r->groups) return mp_fail(err, MP_ENOMEM, "out of memory (routing)");
    for (int i = 0; i < r->n_groups; i++) {
        MP_TRY(reserve(&r->groups[i], 1, 1, err));
        mp_route_group_clear(&r->groups[i], r->Hm);
    }
    return 0;
}

void mp_routing_free(mp_routing *r) {
    if (!r) return;
    for (int i = 0; r->groups && i < r->n_groups; i++) mp_route_group_free(&r->groups[i]);
    free(r->groups);
    memset(r, 0, sizeof *r);
}

void mp_routing_clear(mp_routing *r) {
    for (int i = 0; i < r->n_groups; i++) mp_route_group_clear(&r->groups[i], r->Hm);
}

int mp_route_group_append(mp_route_group *dst, const mp_route_group *src, mp_error *err) {
    size_t k_dst = (size_t)dst->n_tokens * 2 * (size_t)dst->Hm;
    size_t k_src = (size_t)src->n_tokens * 2 * (size_t)src->Hm;
    MP_TRY(reserve(dst, k_dst + k_src + 1, dst->n_entries + src->n_entries, err));
    memcpy(dst->idx + dst->n_entries, src->idx, src->n_entries * sizeof *src->idx);
    memcpy(dst->p + dst->n_entries, src->p, src->n_entries * sizeof *src->p);
    for (size_t k = 1; k <= k_src; k++) dst->off[k_dst + k] = (int32_t)(dst->n_entries + (size_t)src->off[k]);
    dst->n_entries += src->n_entries;
    dst->n_tokens += src->n_tokens;
    return 0;
}

/* Route one head of one factor: append active (idx, prob) entries. */
static void route_head(const float *z, int E, double mean, double var, double threshold, mp_route_group *g) {
    double inv_std = 1.0 / sqrt(var + 1e-5);
    double nmax = -INFINITY;
    for (int i = 0; i < E; i++) {
        double n = ((double)z[i] - mean) * inv_std;
        if (n > nmax) nmax = n;
    }
    double t = nmax < threshold ? nmax : threshold;
    size_t start = g->n_entries;
    double zmax = -INFINITY;
    for (int i = 0; i < E; i++) {
        double n = ((double)z[i] - mean) * inv_std;
        if (n >= t) {
            g->idx[g->n_entries] = i;
            g->p[g->n_entries] = z[i];
            g->n_entries++;
            if (z[i] > zmax) zmax = z[i];
        }
    }
    double sum = 0;
    for (size_t e = start; e < g->n_entries; e++) sum += exp((double)g->p[e] - zmax);
    for (size_t e = start; e < g->n_entries; e++) g->p[e] = (float)(exp((double)g->p[e] - zmax) / sum);
}

int mp_router_route(const float *z1, const float *z2, int n, int Hm, int E, const float *bn1_mean,
                    const float *bn1_var, const float *bn2_mean, const float *bn2_var, double threshold,
                    mp_route_group *g, mp_error *err) {
    for (int t = 0; t < n; t++) {
        size_t k = (size_t)g->n_tokens * 2 * (size_t)Hm;
        /* worst case every expert of every head is active */
        MP_TRY(reserve(g, k + 2 * (size_t)Hm + 1, g->n_entries + 2 * (size_t)Hm * (size_t)E, err));
        for (int f = 0; f < 2; f++) {
            const float *z = (f ? z2 : z1) + (size_t)t * Hm * E;
            const float *mean = f ? bn2_mean : bn1_mean, *var = f ? bn2_var : bn1_var;
            for (int h = 0; h < Hm; h++) {
                route_head(z + (size_t)h * E, E, mean[h], var[h], threshold, g);
                g->off[k + (size_t)f * Hm + (size_t)h + 1] = (int32_t)g->n_entries;
            }
        }
        g->n_tokens++;
    }
    return 0;
}

static int cmp_pair_ij(const void *a, const void *b) {
    const mp_expert_weight *x = a, *y = b;
    if (x->i != y->i) return x->i < y->i ? -1 : 1;
    return (x->j > y->j) - (x->j < y->j);
}

static int cmp_pair_w(const void *a, const void *b) {
    const mp_expert_weight *x = a, *y = b;
    if (x->w != y->w) return x->w > y->w ? -1 : 1;
    return cmp_pair_ij(a, b);
}

int mp_route_expert_pairs_into(const mp_route_group *g, int t, int E, mp_pairs_buf *buf,
                               mp_expert_weight **pairs, size_t *n, mp_error *err) {
    size_t total = 0;
    for (int h = 0; h < g->Hm; h++) {
        const int32_t *i1, *i2;
        const float *p1, *p2;
        total += (size_t)mp_route_get(g, t, 0, h, &i1, &p1) * (size_t)mp_route_get(g, t, 1, h, &i2, &p2);
    }
    const size_t ee = (size_t)E * (size_t)E;
    if (buf->cap < total || !buf->v) {
        mp_expert_weight *nv = realloc(buf->v, (total ? total : 1) * sizeof *nv);
        if (!nv) return mp_fail(err, MP_ENOMEM, "out of memory (expert pairs)");
        buf->v = nv;
        buf->cap = total ? total : 1;
    }
    if (buf->n_where != ee) {
        free(buf->where);
        buf->n_where = 0;
        if (!(buf->where = malloc((ee ? ee : 1) * sizeof *buf->where)))
            return mp_fail(err, MP_ENOMEM, "out of memory (expert pairs)");
        for (size_t k = 0; k < ee; k++) buf->where[k] = -1;
        buf->n_where = ee;
    }
    /* one entry per (i, j), its products summed in head order */
    mp_expert_weight *v = buf->v;
    size_t c = 0;
    int bad = 0;
    for (int h = 0; h < g->Hm && !bad; h++) {
        const int32_t *i1, *i2;
        const float *p1, *p2;
        int n1 = mp_route_get(g, t, 0, h, &i1, &p1), n2 = mp_route_get(g, t, 1, h, &i2, &p2);
        for (int a = 0; a < n1 && !bad; a++)
            for (int b = 0; b < n2; b++) {
                if (i1[a] < 0 || i1[a] >= E || i2[b] < 0 || i2[b] >= E) {
                    bad = mp_fail(err, MP_EINTERNAL, "expert pair (%d, %d) outside E = %d", i1[a], i2[b], E);
                    break;
                }
                const size_t key = (size_t)i1[a] * (size_t)E + (size_t)i2[b];
                const float w = p1[a] * p2[b];
                if (buf->where[key] < 0) {
                    buf->where[key] = (int32_t)c;
                    v[c++] = (mp_expert_weight){i1[a], i2[b], w};
                } else {
                    v[buf->where[key]].w += w;
                }
            }
    }
    size_t kept = 0;
    for (size_t k = 0; k < c; k++) { /* the index back to -1, also after a failure */
        buf->where[(size_t)v[k].i * (size_t)E + (size_t)v[k].j] = -1;
        if (v[k].w > 0) v[kept++] = v[k];
    }
    if (bad) return bad;
    qsort(v, kept, sizeof *v, cmp_pair_w);
    *pairs = v;
    *n = kept;
    return 0;
}

void mp_pairs_buf_free(mp_pairs_buf *buf) {
    free(buf->v);
    free(buf->where);
    memset(buf, 0, sizeof *buf);
}

int mp_route_expert_pairs(const mp_route_group *g, int t, mp_expert_weight **pairs, size_t *n, mp_error *err) {
    /* E from the largest expert index of the token */
    int E = 1;
    for (int f = 0; f < 2; f++)
        for (int h = 0; h < g->Hm; h++) {
            const int32_t *ix;
            const float *p;
            int c = mp_route_get(g, t, f, h, &ix, &p);
            for (int k = 0; k < c; k++)
                if (ix[k] + 1 > E) E = ix[k] + 1;
        }
    mp_pairs_buf buf = {0};
    mp_expert_weight *v = NULL;
    int rc = mp_route_expert_pairs_into(g, t, E, &buf, &v, n, err);
    if (rc < 0) {
        mp_pairs_buf_free(&buf);
        return rc;
    }
    *pairs = buf.v; /* the caller's now */
    free(buf.where);
    return 0;
}

double mp_route_expert_weight(const mp_route_group *g, int t, int i, int j) {
    float w = 0; /* float products summed over heads, as the pairs are */
    for (int h = 0; h < g->Hm; h++) {
        const int32_t *i1, *i2;
        const float *p1, *p2;
        int n1 = mp_route_get(g, t, 0, h, &i1, &p1), n2 = mp_route_get(g, t, 1, h, &i2, &p2);
        float a = 0, b = 0;
        for (int k = 0; k < n1; k++)
            if (i1[k] == i) a = p1[k];
        for (int k = 0; k < n2; k++)
            if (i2[k] == j) b = p2[k];
        if (a != 0 && b != 0) w += a * b;
    }
    return (double)w;
}
