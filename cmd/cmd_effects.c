/* cmd/cmd_effects.c — `monet-probe effects`: the output tokens an expert
 * promotes and suppresses, by ablation over its top contexts
 * (analysis/effects.h). */
#include <stdio.h>

#include "analysis/effects.h"
#include "cli.h"
#include "core/model/expert_addr.h"
#include "core/store/model_check.h"

static const char *ABOUT =
    "  Logit effects of one expert: over its top contexts in the store, the next-token log-probabilities\n"
    "  after the activating token with the model as is and with the expert masked (w_ij = 0 in its group's\n"
    "  layers). effect(v) = mean log p(v) - log p_masked(v): promoted tokens first, then suppressed.";

static void print_list(const mp_tokenizer *tok, const mp_effect_token *l, int n, int json) {
    for (int k = 0; k < n; k++) {
        const char *piece = mp_tokenizer_piece(tok, l[k].id);
        if (json) {
            printf("%s{\"id\": %d, \"piece\": ", k ? ", " : "", l[k].id);
            cli_json_str(stdout, piece);
            printf(", \"effect\": %.9g}", l[k].effect);
        } else {
            printf("  %+9.4f  %6d  '", l[k].effect, l[k].id);
            cli_term_str(stdout, piece, 0);
            printf("'\n");
        }
    }
}

int cmd_effects(int argc, char **argv) {
    cli_model_args ma = {0};
    const char *store = NULL, *expert = NULL;
    int contexts = 32, top = 10, json = 0;
    const cli_opt opts[] = {
        CLI_OPT_MODEL(&ma, CLI_REQUIRED),
        CLI_OPT_STORE(&store, CLI_REQUIRED),
        CLI_OPT_EXPERT(&expert, CLI_STR, "the expert: R:I,J or R:#N", CLI_REQUIRED),
        {"--contexts", NULL, CLI_INT, "N", &contexts, 0, 1 << 20, NULL,
         "top contexts averaged over (default 32; 0 = all stored)", 0, NULL, 0},
        {"--top", NULL, CLI_INT, "N", &top, 1, MP_EFFECTS_MAX_TOP, NULL, "tokens listed each way (default 10)", 0,
         NULL, 0},
        CLI_OPT_DEVICE(&ma),
        CLI_OPT_JSON(&json),
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = "effects", .about = ABOUT, .opts = opts};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    mp_device dev;
    if (cli_model_device("effects", &ma, &dev)) return 2;
    mp_error err;
    mp_error_clear(&err);
    mp_store *st = NULL;
    mp_model *m = NULL;
    mp_engine *e = NULL;
    mp_tokenizer *tok = NULL;
    mp_effects fx = {0};
    mp_expert_addr a;
    mp_store_shape sh;
    int rc = mp_store_open(store, MP_STORE_READ, &st, &err);
    if (rc < 0 || (rc = mp_store_check_model(st, ma.model, &err)) < 0 || (rc = mp_store_shape_read(st, &sh, &err)) < 0)
        goto cleanup;
    if ((rc = mp_expert_addr_parse_one(expert, sh.E, sh.n_groups, &a, &err)) < 0) goto cleanup;
    if ((rc = cli_load_tokenizer(ma.model, &tok, &err)) < 0 || (rc = mp_model_load(ma.model, &m, &err)) < 0 ||
        (rc = mp_engine_create(m, dev, sh.window, 0, &e, &err)) < 0)
        goto cleanup;
    if ((rc = mp_effects_compute(st, m, e, a.group, a.i, a.j, contexts, top, &fx, &err)) < 0) goto cleanup;
    char addr[64];
    mp_expert_addr_format(addr, sizeof addr, a.group, a.i, a.j);
    if (json) {
        printf("{\"expert\": \"%s\", \"contexts\": %zu, \"promoted\": [", addr, fx.contexts);
        print_list(tok, fx.promoted, fx.n, 1);
        printf("], \"suppressed\": [");
        print_list(tok, fx.suppressed, fx.n, 1);
        printf("]}\n");
    } else {
        printf("expert %s: logit effects by ablation over %zu top contexts (mean delta log-prob, nats)\n", addr,
               fx.contexts);
        printf("promotes:\n");
        print_list(tok, fx.promoted, fx.n, 0);
        printf("suppresses:\n");
        print_list(tok, fx.suppressed, fx.n, 0);
    }
cleanup:
    mp_effects_free(&fx);
    mp_engine_free(e);
    mp_model_free(m);
    mp_tokenizer_free(tok);
    mp_store_close(st);
    return rc < 0 ? cli_exit_error(&err) : 0;
}
