/* cmd/cmd_generate.c — `monet-probe generate`: prefill the prompt once, then
 * decode token by token with the KV cache, streaming text to stdout; and
 * `monet-probe steer`, the same generation with chosen experts' routing
 * weights forced up (w_ij += S at every token of their group). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/model/forward.h"
#include "core/model/generate.h"
#include "core/model/sampling.h"

#define MAX_STEER CLI_MAX_STEER

static const char *STEER_USAGE =
    "usage: monet-probe steer --model DIR --expert [R:]I,J[=S] [--expert ...] --strength S --prompt TEXT\n"
    "                         [generate options]\n"
    "  Generate with expert steering: for each chosen expert (I,J) of router group R, its\n"
    "  routing weight becomes w_IJ + S at every token, in every layer of group R (so A_I, D_J\n"
    "  and the expert mixtures change exactly as if the router had put that weight there;\n"
    "  the router's own g1/g2 are unchanged). Without R: the expert in every group.\n"
    "  --expert ADDR   [R:]I,J or [R:]FLAT (FLAT = I*E+J); '=S' sets this expert's strength\n"
    "  --strength S    default strength for experts without '=S' (e.g. 1.0 = one full head's weight;\n"
    "                  negative values suppress)\n"
    "  generate options: --max-tokens N --temperature T --top-p P --seed S --no-bos --mask MASK --json\n";

static const char *USAGE =
    "usage: monet-probe generate --model DIR --prompt TEXT [--max-tokens N] [--temperature T]\n"
    "                            [--top-p P] [--seed S] [--no-bos] [--mask MASK] [--json]\n"
    "  Continue TEXT with the model (KV-cached decoding), stopping at EOS or N tokens.\n"
    "  --max-tokens N    new tokens (default 64)\n"
    "  --temperature T   0 = greedy (default 0.8)\n"
    "  --top-p P         nucleus sampling mass (default 0.95)\n"
    "  --seed S          RNG seed (default 1); same seed, same output\n"
    "  --no-bos          do not prepend BOS to the prompt\n"
    "  --mask MASK       purge the experts listed in a mask file\n"
    "  --json            print {\"prompt_ids\", \"ids\", \"text\", \"tokens_per_s\"} instead of streaming\n";

static void stream_text(void *ctx, const char *bytes, size_t n) {
    (void)ctx;
    fwrite(bytes, 1, n, stdout);
    fflush(stdout);
}

static int generate_main(int argc, char **argv, int steer_mode) {
    const char *cmd = steer_mode ? "steer" : "generate";
    const char *dir = NULL, *prompt = NULL, *mask_path = NULL;
    const char *steer_arg[MAX_STEER];
    int n_steer_arg = 0, have_strength = 0;
    double strength = 0;
    long max_new = 64, seed = 1;
    double temp = 0.8, top_p = 0.95;
    int bos = 1, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is_help(a)) {
            fputs(steer_mode ? STEER_USAGE : USAGE, stdout);
            return 0;
        } else if (steer_mode && !strcmp(a, "--expert")) {
            if (!(v = cli_opt_value(cmd, argc, argv, &i))) return 2;
            if (n_steer_arg == MAX_STEER) return cli_usage_error(cmd, "at most %d --expert options", MAX_STEER);
            steer_arg[n_steer_arg++] = v;
        } else if (steer_mode && !strcmp(a, "--strength")) {
            if (!(v = cli_opt_value(cmd, argc, argv, &i))) return 2;
            if (cli_parse_double(v, -1e6, 1e6, &strength)) return cli_usage_error(cmd, "bad --strength '%s'", v);
            have_strength = 1;
        } else if (!strcmp(a, "--model")) {
            if (!(dir = cli_opt_value(cmd, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--prompt")) {
            if (!(prompt = cli_opt_value(cmd, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--max-tokens")) {
            if (!(v = cli_opt_value(cmd, argc, argv, &i))) return 2;
            if (cli_parse_long(v, 1, 1 << 20, &max_new)) return cli_usage_error(cmd, "bad --max-tokens '%s'", v);
        } else if (!strcmp(a, "--temperature")) {
            if (!(v = cli_opt_value(cmd, argc, argv, &i))) return 2;
            if (cli_parse_double(v, 0, 100, &temp)) return cli_usage_error(cmd, "bad --temperature '%s'", v);
        } else if (!strcmp(a, "--top-p")) {
            if (!(v = cli_opt_value(cmd, argc, argv, &i))) return 2;
            if (cli_parse_double(v, 1e-9, 1, &top_p)) return cli_usage_error(cmd, "bad --top-p '%s' (0 < P <= 1)", v);
        } else if (!strcmp(a, "--seed")) {
            if (!(v = cli_opt_value(cmd, argc, argv, &i))) return 2;
            if (cli_parse_long(v, 0, 1L << 62, &seed)) return cli_usage_error(cmd, "bad --seed '%s'", v);
        } else if (!strcmp(a, "--mask")) {
            if (!(mask_path = cli_opt_value(cmd, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--no-bos")) {
            bos = 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else {
            return cli_usage_error(cmd, "unknown argument '%s'", a);
        }
    }
    if (!dir || !prompt) return cli_usage_error(cmd, "--model DIR and --prompt TEXT are required");
    if (steer_mode && !n_steer_arg) return cli_usage_error(cmd, "give at least one --expert to steer");

    mp_error err;
    mp_error_clear(&err);
    mp_tokenizer *tok = NULL;
    mp_model *m = NULL;
    mp_state *st = NULL;
    mp_mask *mask = NULL;
    mp_sampler sampler = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    mp_gen_result gen = {0};
    int rc = 0;
    if ((rc = cli_load_tokenizer(dir, &tok, &err)) < 0) goto cleanup;
    if ((rc = mp_tokenizer_encode(tok, prompt, strlen(prompt), bos, &ids, &n, &err)) < 0) goto cleanup;
    if (n == 0) {
        rc = mp_fail(&err, MP_EINPUT, "--prompt: empty prompt and --no-bos: nothing to condition on");
        goto cleanup;
    }
    if ((rc = mp_model_load(dir, &m, &err)) < 0) goto cleanup;
    if (mp_tokenizer_vocab_size(tok) > m->cfg.vocab_size) {
        rc = mp_fail(&err, MP_EINPUT, "%s: tokenizer has %d pieces but config.json vocab_size is %d", dir,
                     mp_tokenizer_vocab_size(tok), m->cfg.vocab_size);
        goto cleanup;
    }
    if ((rc = mp_state_create(m, (int)(n + (size_t)max_new), 0, &st, &err)) < 0) goto cleanup;
    if ((rc = cli_apply_mask(mask_path, m, st, &mask, &err)) < 0) goto cleanup;
    if (steer_mode && (rc = cli_apply_steering(m, st, steer_arg, n_steer_arg, have_strength, strength, json, &err)) < 0)
        goto cleanup;
    if ((rc = mp_sampler_init(&sampler, m->cfg.vocab_size, temp, top_p, (uint64_t)seed, &err)) < 0) goto cleanup;
    mp_gen_opts go = {.max_new_tokens = (int)max_new, .on_text = json ? NULL : stream_text};
    if (!json) fputs(prompt, stdout);
    if ((rc = mp_generate(st, tok, ids, n, &go, &sampler, &gen, &err)) < 0) goto cleanup;
    size_t n_out = gen.n_ids;
    const int32_t *out_ids = gen.ids;
    double t_prefill = gen.prefill_s;
    double tps = gen.decode_s > 0 && n_out > 1 ? (double)(n_out - 1) / gen.decode_s : 0;
    if (json) {
        const char *text = gen.text;
        size_t tl = gen.len;
        printf("{\"prompt_ids\": [");
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? ", " : "", ids[i]);
        printf("], \"ids\": [");
        for (size_t i = 0; i < n_out; i++) printf("%s%d", i ? ", " : "", out_ids[i]);
        printf("], \"text\": \"");
        for (size_t i = 0; i < tl; i++) {
            unsigned char ch = (unsigned char)text[i];
            if (ch == '"' || ch == '\\') printf("\\%c", ch);
            else if (ch < 0x20) printf("\\u%04x", ch);
            else putchar(ch);
        }
        printf("\", \"prefill_s\": %.4f, \"decode_tokens_per_s\": %.2f}\n", t_prefill, tps);
    } else {
        putchar('\n');
        fprintf(stderr, "monet-probe: generated %zu tokens, prefill %zu tokens in %.3fs, decode %.1f tokens/s\n", n_out,
                n, t_prefill, tps);
    }
cleanup:
    mp_gen_result_free(&gen);
    mp_sampler_free(&sampler);
    mp_state_free(st);
    mp_mask_free(mask);
    mp_model_free(m);
    mp_tokenizer_free(tok);
    free(ids);
    return rc < 0 ? cli_exit_error(&err) : 0;
}

int cmd_generate(int argc, char **argv) { return generate_main(argc, argv, 0); }
int cmd_steer(int argc, char **argv) { return generate_main(argc, argv, 1); }
