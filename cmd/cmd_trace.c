/* cmd/cmd_trace.c — `monet-probe trace`: one or more experts' routing weight
 * w_ij on every token of arbitrary text (--text, --file, --ids), shaded on a
 * terminal, as a table otherwise, or --json. The same numbers `route` gives. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/model/expert_addr.h"
#include "core/model/routing.h"
#include "core/util/readfile.h"

#define TRACE_MAX_EXPERTS 8

static const char *ABOUT =
    "  Trace experts over a text: the routing weight w_ij = sum_h g1[h,I] g2[h,J] of each --expert on\n"
    "  every token (0 where it is inactive), as `route` computes it. On a terminal each token is shaded\n"
    "  by the first expert's weight (darker = higher); otherwise one row per token.";

/* Background shade for w in [0, 1+] (256-colour grey ramp), "" for 0. */
static const char *shade(double w, char *buf, size_t cap) {
    if (w <= 0) return "";
    int level = 232 + (int)(w > 1 ? 23 : w * 23);
    snprintf(buf, cap, "\033[48;5;%dm\033[38;5;%dm", 255 - (level - 232), level > 243 ? 232 : 255);
    return buf;
}

int cmd_trace(int argc, char **argv) {
    cli_model_args ma = {0};
    cli_input_args in = {0};
    cli_list experts = {0};
    const char *file = NULL;
    int json = 0;
    const cli_opt opts[] = {
        CLI_OPT_MODEL(&ma, CLI_REQUIRED),
        CLI_OPT_EXPERT(&experts, CLI_LIST, "expert to trace: R:I,J or R:#N (up to 8)", CLI_REQUIRED),
        CLI_OPTS_INPUT(&in),
        {"--file", NULL, CLI_STR, "FILE", &file, 0, 0, NULL, "read the text from FILE ('-' = stdin)", 0, NULL, 0},
        CLI_OPT_MASK(&ma),
        CLI_OPT_DEVICE(&ma),
        CLI_OPT_JSON(&json),
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = "trace", .about = ABOUT, .opts = opts};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    if (experts.n > TRACE_MAX_EXPERTS) return cli_usage_error("trace", "at most %d --expert", TRACE_MAX_EXPERTS);
    if (file && (in.text || in.ids)) return cli_usage_error("trace", "give one of --text, --ids or --file");
    mp_error err;
    mp_error_clear(&err);
    char *buf = NULL;
    size_t len = 0;
    if (file) {
        if (mp_read_file(file, &buf, &len, &err) < 0) return cli_exit_error(&err);
        in.text = buf;
    }
    cli_session ses;
    mp_tokenizer *tok = NULL;
    mp_routing routing = {0};
    mp_expert_addr addr[TRACE_MAX_EXPERTS];
    int rc = cli_session_open("trace", &ma, &in, &ses, &err);
    if (rc > 0) {
        free(buf);
        return rc;
    }
    if (rc < 0) goto cleanup;
    const mp_config *c = &ses.m->cfg;
    for (int k = 0; k < experts.n; k++) {
        if ((rc = mp_expert_addr_parse_one(experts.v[k], c->moe_experts, c->n_router_groups, &addr[k], &err)) < 0)
            goto cleanup;
    }
    if ((rc = cli_load_tokenizer(ma.model, &tok, &err)) < 0) goto cleanup;
    if ((rc = mp_routing_init(&routing, c, &err)) < 0) goto cleanup;
    if ((rc = mp_engine_forward(ses.e, ses.ids, ses.n, NULL, 0, &routing, &err)) < 0) goto cleanup;
    const int tty = !json && isatty(STDOUT_FILENO);
    if (json) {
        printf("{\"n_tokens\": %zu, \"experts\": [", ses.n);
        for (int k = 0; k < experts.n; k++) {
            char a[64];
            printf("%s\"%s\"", k ? ", " : "", mp_expert_addr_format(a, sizeof a, addr[k].group, addr[k].i, addr[k].j));
        }
        printf("], \"tokens\": [");
    } else if (!tty) {
        printf("%6s %7s  %-24s", "pos", "id", "token");
        for (int k = 0; k < experts.n; k++) {
            char a[64];
            printf(" %12s", mp_expert_addr_format(a, sizeof a, addr[k].group, addr[k].i, addr[k].j));
        }
        putchar('\n');
    }
    for (size_t t = 0; t < ses.n; t++) {
        double w[TRACE_MAX_EXPERTS];
        for (int k = 0; k < experts.n; k++) {
            const mp_route_group *g = &routing.groups[addr[k].group];
            int masked = ses.mask && mp_mask_contains(ses.mask, addr[k].group, addr[k].i, addr[k].j);
            w[k] = masked ? 0 : mp_route_expert_weight(g, (int)t, addr[k].i, addr[k].j);
        }
        char piece[256];
        int pn = mp_tokenizer_decode_piece(tok, t ? ses.ids[t - 1] : -1, ses.ids[t], piece, sizeof piece - 1);
        if (pn <= 0) pn = snprintf(piece, sizeof piece, "%s", mp_tokenizer_piece(tok, ses.ids[t])); /* <s>, ... */
        piece[pn] = '\0';
        if (json) {
            printf("%s\n {\"pos\": %zu, \"id\": %d, \"text\": ", t ? "," : "", t, ses.ids[t]);
            cli_json_strn(stdout, piece, (size_t)pn);
            printf(", \"w\": [");
            for (int k = 0; k < experts.n; k++) printf("%s%.9g", k ? ", " : "", w[k]);
            printf("]}");
        } else if (tty) {
            char sh[64];
            fputs(shade(w[0], sh, sizeof sh), stdout);
            cli_term_str(stdout, piece, 1);
            if (w[0] > 0) fputs("\033[0m", stdout);
        } else {
            char *safe = cli_term_dup(piece, 0);
            printf("%6zu %7d  %-24s", t, ses.ids[t], safe ? safe : "?");
            free(safe);
            for (int k = 0; k < experts.n; k++) printf(" %11.2f%%", 100 * w[k]);
            putchar('\n');
        }
    }
    if (json) printf("\n]}\n");
    else if (tty) putchar('\n');
cleanup:
    mp_routing_free(&routing);
    mp_tokenizer_free(tok);
    cli_session_close(&ses);
    free(buf);
    return rc < 0 ? cli_exit_error(&err) : 0;
}
