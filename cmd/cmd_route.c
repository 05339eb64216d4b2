/* cmd/cmd_route.c — `monet-probe route`: per token and router group, the
 * active experts I,J with w_ij = sum_h g1[h,I] g2[h,J], sorted by weight. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/model/forward.h"

static const char *ABOUT =
    "  Print, per token and router group, the active experts I,J (flat id I*E+J) with\n"
    "  their routing weight w_ij = sum_h g1[h,I]*g2[h,J], sorted by weight.";

static void print_head_lists(const mp_route_group *g, int t, int f) {
    printf("[");
    for (int h = 0; h < g->Hm; h++) {
        const int32_t *idx;
        const float *p;
        int cnt = mp_route_get(g, t, f, h, &idx, &p);
        printf("%s[", h ? ", " : "");
        for (int a = 0; a < cnt; a++) printf("%s[%d, %.9g]", a ? ", " : "", idx[a], p[a]);
        printf("]");
    }
    printf("]");
}

int cmd_route(int argc, char **argv) {
    cli_model_args ma = {0};
    cli_input_args in = {0};
    int json = 0;
    long top = -1;
    const cli_opt opts[] = {
        CLI_OPT_MODEL(&ma, CLI_REQUIRED),
        CLI_OPTS_INPUT(&in),
        CLI_OPT_JSON(&json),
        {"--top", NULL, CLI_LONG, "N", &top, 1, 1 << 30, NULL,
         "text output: the N heaviest experts per token and group (the rest are\n"
         "counted, never dropped silently); default: all", 0, NULL, 0},
        {"--mask", NULL, CLI_STR, "MASK", &ma.mask, 0, 0, NULL,
         "purge the experts of a mask file: they get w_ij = 0 and are not listed\n"
         "(their count is reported); g1/g2 are unchanged (the router is not masked)", 0, NULL, 0},
        CLI_OPT_DEVICE(&ma),
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = "route", .about = ABOUT, .opts = opts};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    mp_error err;
    mp_error_clear(&err);
    cli_session ses;
    mp_tokenizer *tok = NULL;
    mp_routing routing = {0};
    mp_pairs_buf pairs_buf = {0}; /* the pairs of one token and group at a time */
    int rc = cli_session_open("route", &ma, &in, &ses, &err);
    if (rc > 0) return rc;
    if (rc < 0) goto cleanup;
    const mp_model *m = ses.m;
    mp_engine *st = ses.e;
    const int32_t *ids = ses.ids;
    const size_t n = ses.n;
    const mp_mask *mask = ses.mask;
    const char *dir = ma.model;
    const mp_config *c = &m->cfg;
    if (in.text) { /* pieces make the text output readable; optional with --ids */
        if ((rc = cli_load_tokenizer(dir, &tok, &err)) < 0) goto cleanup;
    }
    if ((rc = mp_routing_init(&routing, c, &err)) < 0) goto cleanup;
    if ((rc = mp_engine_forward(st, ids, n, NULL, 0, &routing, &err)) < 0) goto cleanup;

    if (json) {
        printf("{\"n_tokens\": %zu, \"n_groups\": %d, \"moe_experts\": %d, \"moe_heads\": %d, \"group_layers\": [",
               n, c->n_router_groups, c->moe_experts, c->moe_heads);
        for (int r = 0; r < c->n_router_groups; r++) {
            int a, b;
            mp_config_group_layers(c, r, &a, &b);
            printf("%s[", r ? ", " : "");
            for (int l = a; l <= b; l++) printf("%s%d", l > a ? ", " : "", l);
            printf("]");
        }
        printf("], \"tokens\": [");
    }
    for (size_t t = 0; t < n && rc == 0; t++) {
        const char *piece = tok ? mp_tokenizer_piece(tok, ids[t]) : NULL;
        if (json) printf("%s\n {\"pos\": %zu, \"id\": %d, \"groups\": [", t ? "," : "", t, ids[t]);
        else printf("token %zu id %d%s%s%s\n", t, ids[t], piece ? " '" : "", piece ? piece : "", piece ? "'" : "");
        for (int r = 0; r < c->n_router_groups; r++) {
            const mp_route_group *g = &routing.groups[r];
            mp_expert_weight *pairs = NULL;
            size_t np = 0;
            if ((rc = mp_route_expert_pairs_into(g, (int)t, c->moe_experts, &pairs_buf, &pairs, &np, &err)) < 0) break;
            size_t n_masked = 0, kept = 0;
            for (size_t k = 0; k < np; k++) { /* masked experts have w_ij = 0 */
                if (mask && mp_mask_contains(mask, r, pairs[k].i, pairs[k].j)) n_masked++;
                else pairs[kept++] = pairs[k];
            }
            np = kept;
            int a, b;
            mp_config_group_layers(c, r, &a, &b);
            if (json) {
                printf("%s{\"group\": %d, \"g1\": ", r ? ", " : "", r);
                print_head_lists(g, (int)t, 0);
                printf(", \"g2\": ");
                print_head_lists(g, (int)t, 1);
                printf(", \"experts\": [");
                for (size_t k = 0; k < np; k++)
                    printf("%s{\"i\": %d, \"j\": %d, \"w\": %.9g}", k ? ", " : "", pairs[k].i, pairs[k].j, pairs[k].w);
                printf("], \"masked\": %zu}", n_masked);
            } else {
                size_t shown = top > 0 && (size_t)top < np ? (size_t)top : np;
                printf("  group %d (layers %d-%d): %zu active experts", r, a, b, np);
                if (mask) printf(" (%zu more masked)", n_masked);
                printf("\n");
                for (size_t k = 0; k < shown; k++)
                    printf("    %d:%d,%d (%d:#%lld)  %.2f%%\n", r, pairs[k].i, pairs[k].j, r,
                           (long long)pairs[k].i * c->moe_experts + pairs[k].j, 100.0 * pairs[k].w);
                if (shown < np) printf("    ... %zu more (use --top or --json to see all)\n", np - shown);
            }
        }
        if (json) printf("]}");
    }
    if (json && rc == 0) printf("\n]}\n");
cleanup:
    mp_pairs_buf_free(&pairs_buf);
    mp_routing_free(&routing);
    mp_tokenizer_free(tok);
    cli_session_close(&ses);
    return rc < 0 ? cli_exit_error(&err) : 0;
}
