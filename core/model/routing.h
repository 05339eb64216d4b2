/* core/model/routing.h — Monet's product-key router and the sparse routing record.
 *
 * Per token and router group, each factor f in {1,2} and head h has a short
 * list of active experts (index, g_f[h,idx]) — about moe_topk entries, at
 * least one. Expert (i,j)'s weight is w_ij = sum_h g1[h,i] * g2[h,j]. Nothing
 * here ever materializes the E x E matrix: the pair list of one token is
 * built from the per-head lists (at most Hm * k^2 pairs).
 *
 * Ownership: an mp_route_group owns its arrays; mp_routing owns its groups.
 */
#ifndef MP_ROUTING_H
#define MP_ROUTING_H

#include <stddef.h>
#include <stdint.h>

#include "core/model/config.h"
#include "core/util/error.h"

/* Sparse routing of one router group for a run of tokens. The entries of
 * (token t, factor f in {0,1}, head h) are idx/p[off[k] .. off[k+1]) with
 * k = (t*2 + f)*Hm + h. */
typedef struct mp_route_group {
    int n_tokens;
    int Hm;
    int32_t *off;   /* [n_tokens*2*Hm + 1] */
    int32_t *idx;   /* expert index per entry */
    float *p;       /* routing probability per entry */
    size_t n_entries, cap_entries, cap_off;
} mp_route_group;

/* Routing of every router group for the tokens of one forward pass. */
typedef struct mp_routing {
    int n_groups;
    int Hm, E;
    mp_route_group *groups; /* [n_groups] */
} mp_routing;

/* One expert pair of a token: expert (i,j) with weight w. */
typedef struct mp_expert_weight {
    int32_t i, j;
    float w;
} mp_expert_weight;

int mp_routing_init(mp_routing *r, const mp_config *cfg, mp_error *err);
void mp_routing_free(mp_routing *r);   /* frees the arrays, not r itself */
void mp_routing_clear(mp_routing *r);  /* drop all tokens, keep capacity */

void mp_route_group_clear(mp_route_group *g, int Hm);
void mp_route_group_free(mp_route_group *g);
/* Append the tokens of src to dst (same Hm). */
int mp_route_group_append(mp_route_group *dst, const mp_route_group *src, mp_error *err);

/* Entries of (token t, factor f, head h): returns the count and sets *idx, *p. */
static inline int mp_route_get(const mp_route_group *g, int t, int f, int h, const int32_t **idx, const float **p) {
    size_t k = ((size_t)t * 2 + (size_t)f) * (size_t)g->Hm + (size_t)h;
    *idx = g->idx + g->off[k];
    *p = g->p + g->off[k];
    return g->off[k + 1] - g->off[k];
}

/* s = Phi^-1(1 - k/E): the standard-normal threshold on normalized router
 * logits (double precision inverse normal CDF). */
double mp_router_threshold(int topk, int experts);

/* Route n tokens. z1, z2: [n][Hm*E] raw router logits (W1 x, W2 x) of the
 * router layer; bn*: running statistics [Hm]. Appends n tokens to g.
 * @return 0 or MP_ENOMEM. */
int mp_router_route(const float *z1, const float *z2, int n, int Hm, int E, const float *bn1_mean,
                    const float *bn1_var, const float *bn2_mean, const float *bn2_var, double threshold,
                    mp_route_group *g, mp_error *err);

/* All expert pairs of token t in g with w_ij > 0, sorted by w descending
 * (ties by i then j). *pairs is malloc'ed (caller frees).
 * @return 0 or MP_ENOMEM. */
int mp_route_expert_pairs(const mp_route_group *g, int t, mp_expert_weight **pairs, size_t *n, mp_error *err);

/* Reusable scratch of mp_route_expert_pairs_into (one per thread; zero-
 * initialize, free with mp_pairs_buf_free): the pairs and an [E*E] index
 * kept at -1 between calls. */
typedef struct mp_pairs_buf {
    mp_expert_weight *v;
    size_t cap;
    int32_t *where;
    size_t n_where;
} mp_pairs_buf;

/* The same pairs, in the same order with the same sums (each pair's products
 * added in head order), into buf without an allocation per call: *pairs
 * points into buf (the caller may reorder or drop entries) until the next
 * call. E: experts per factor.
 * @return 0, MP_ENOMEM or MP_EINTERNAL (an index >= E). */
int mp_route_expert_pairs_into(const mp_route_group *g, int t, int E, mp_pairs_buf *buf,
                               mp_expert_weight **pairs, size_t *n, mp_error *err);
void mp_pairs_buf_free(mp_pairs_buf *buf);

/* One expert's routing weight at token t: w_ij = sum_h g1[h,i] * g2[h,j]
 * over the sparse lists of g (0 when inactive). Same sum as the pairs of
 * mp_route_expert_pairs. */
double mp_route_expert_weight(const mp_route_group *g, int t, int i, int j);

#endif
