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

    /* many tokens, heads overlapping on the same experts: the reusable-buffer
     * pairs == the allocating ones == a direct sum over every (i, j), bit for
     * bit and in the same order */
    {
        enum { H2 = 4, E2 = 12, T = 200 };
        static float a1[T * H2 * E2], a2[T * H2 * E2];
        float m2[H2] = {0}, v2[H2] = {1, 1, 1, 1};
        unsigned x = 12345;
        for (int k = 0; k < T * H2 * E2; k++) {
            x = x * 1103515245u + 12345u;
            a1[k] = (float)((x >> 8) % 1000) / 250.0f - 2.0f;
            x = x * 1103515245u + 12345u;
            a2[k] = (float)((x >> 8) % 1000) / 250.0f - 2.0f;
        }
        mp_route_group r = {0};
        mp_route_group_clear(&r, H2);
        CHECK(mp_router_route(a1, a2, T, H2, E2, m2, v2, m2, v2, 0.8, &r, &err) == 0);
        mp_pairs_buf buf = {0};
        int mismatches = 0, overlaps = 0;
        for (int t = 0; t < T; t++) {
            mp_expert_weight *q = NULL;
            size_t nq = 0;
            CHECK(mp_route_expert_pairs_into(&r, t, E2, &buf, &q, &nq, &err) == 0);
            mp_expert_weight *w = NULL;
            size_t nw = 0;
            CHECK(mp_route_expert_pairs(&r, t, &w, &nw, &err) == 0);
            /* direct: every (i, j), products summed in head order */
            mp_expert_weight d[E2 * E2];
            size_t nd = 0;
            for (int i = 0; i < E2; i++)
                for (int j = 0; j < E2; j++) {
                    float s2 = 0;
                    int terms = 0;
                    for (int h = 0; h < H2; h++) {
                        const int32_t *i1, *i2;
                        const float *p1, *p2;
                        int n1 = mp_route_get(&r, t, 0, h, &i1, &p1), n2 = mp_route_get(&r, t, 1, h, &i2, &p2);
                        float ga = 0, gb = 0;
                        for (int k = 0; k < n1; k++)
                            if (i1[k] == i) ga = p1[k];
                        for (int k = 0; k < n2; k++)
                            if (i2[k] == j) gb = p2[k];
                        if (ga != 0 && gb != 0) {
                            s2 = terms ? s2 + ga * gb : ga * gb;
                            terms++;
                        }
                    }
                    if (terms > 2) overlaps++;
                    if (s2 > 0) d[nd++] = (mp_expert_weight){i, j, s2};
                }
            /* order: w descending, ties by i then j (insertion sort) */
            for (size_t k = 1; k < nd; k++)
                for (size_t m = k; m > 0; m--) {
                    mp_expert_weight u = d[m - 1], v = d[m];
                    int before = v.w > u.w || (v.w == u.w && (v.i < u.i || (v.i == u.i && v.j < u.j)));
                    if (!before) break;
                    d[m - 1] = v, d[m] = u;
                }
            if (nq != nd || nw != nd) mismatches++;
            else
                for (size_t k = 0; k < nd; k++)
                    if (q[k].i != d[k].i || q[k].j != d[k].j || q[k].w != d[k].w || w[k].i != d[k].i ||
                        w[k].j != d[k].j || w[k].w != d[k].w)
                        mismatches++;
            free(w);
        }
        CHECK(mismatches == 0);
        CHECK(overlaps > 0); /* the test exercised sums of three or more heads */
        mp_pairs_buf_free(&buf);
        mp_route_group_free(&r);
    }
    return check_report("test_routing");
}
