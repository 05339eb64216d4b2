/* tests/unit/test_routing.c — router threshold, sparse softmax and the
 * expert-pair list against direct computations. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "core/model/routing.h"

int main(void) {
    /* Phi^-1 values from standard tables (scipy.stats.norm.ppf) */
    CHECK_CLOSE(mp_router_threshold(8, 512), 2.1538746940614564, 1e-12);
    CHECK_CLOSE(mp_router_threshold(1, 2), 0.0, 1e-12);
    CHECK_CLOSE(mp_router_threshold(4, 16), 0.6744897501960817, 1e-12);
    CHECK_CLOSE(mp_router_threshold(1, 1000), 3.090232306167813, 1e-12);

    /* one token, Hm=2, E=6: head 0 of factor 1 has two entries above s, the
     * rest of the heads have none above s -> only their max is active */
    enum { Hm = 2, E = 6 };
    float z1[Hm * E] = {0.1f, 3.0f, 2.5f, -1.0f, 0.0f, 0.2f, /* head 1: */ 0.5f, 0.4f, 0.3f, 0.2f, 0.1f, 0.0f};
    float z2[Hm * E] = {1, 2, 3, 4, 5, 6, 6, 5, 4, 3, 2, 1};
    float mean[Hm] = {0, 0}, var[Hm] = {1, 1};
    mp_route_group g = {0};
    mp_error err;
    double s = 2.0; /* threshold on normalized logits */
    mp_route_group_clear(&g, Hm);
    CHECK(mp_router_route(z1, z2, 1, Hm, E, mean, var, mean, var, s, &g, &err) == 0);
    const int32_t *idx;
    const float *p;
    int n = mp_route_get(&g, 0, 0, 0, &idx, &p);
    CHECK(n == 2 && idx[0] == 1 && idx[1] == 2);
    double e1 = exp(3.0), e2 = exp(2.5);
    CHECK_CLOSE(p[0], e1 / (e1 + e2), 1e-7);
    n = mp_route_get(&g, 0, 0, 1, &idx, &p); /* max 0.5/sqrt(1+1e-5) < 2 -> t = max */
    CHECK(n == 1 && idx[0] == 0 && p[0] == 1.0f);
    n = mp_route_get(&g, 0, 1, 0, &idx, &p);
    CHECK(n == 4 && idx[0] == 2 && idx[3] == 5); /* 3,4,5,6 >= 2 */
    /* expert pairs: w_ij = sum_h g1[h,i] g2[h,j] */
    mp_expert_weight *pairs = NULL;
    size_t np = 0;
    CHECK(mp_route_expert_pairs(&g, 0, &pairs, &np, &err) == 0);
    /* head 0: 2 x 4 pairs; head 1: 1 x 4 pairs (z2 head 1 = 6..1; 2/sqrt(1+1e-5) < 2 -> 6,5,4,3) */
    CHECK(np == 8 + 4);
    double total = 0;
    for (size_t k = 0; k < np; k++) total += pairs[k].w;
    CHECK_CLOSE(total, 2.0, 1e-6); /* each head contributes sum g1 * sum g2 = 1 */
    for (size_t k = 1; k < np; k++) CHECK(pairs[k - 1].w >= pairs[k].w);
    free(pairs);
    /* appending keeps offsets consistent */
    mp_route_group all = {0};
    mp_route_group_clear(&all, Hm);
    CHECK(mp_route_group_append(&all, &g, &err) == 0);
    CHECK(mp_route_group_append(&all, &g, &err) == 0);
    CHECK(all.n_tokens == 2);
    n = mp_route_get(&all, 1, 1, 1, &idx, &p);
    CHECK(n == 4 && idx[0] == 0);
    mp_route_group_free(&all);
    mp_route_group_free(&g);
    return check_report("test_routing");
}
