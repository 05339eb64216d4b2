/* cmd/cmd_generate.c — `monet-probe generate`: prefill the prompt once, then
 * decode token by token with the KV cache on the engine (core/model/backend.h,
 * mp_generate_batch with one sequence), streaming text to stdout; and
 * `monet-probe steer`, the same generation with chosen experts' routing
 * weights forced up (w_ij += S at every token of their group). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/model/backend.h"
#include "core/model/generate.h"
#include "core/model/sampling.h"

/* --strength not given (outside its range -1e6..1e6) */
#define NO_STRENGTH (-1e300)

static const char *STEER_ABOUT =
    "  Generate with expert steering: for each chosen expert (I,J) of router group R, its\n"
    "  routing weight becomes w_IJ + S at every token, in every layer of group R (so A_I, D_J\n"
    "  and the expert mixtures change exactly as if the router had put that weight there;\n"
    "  the router's own g1/g2 are unchanged). Without R: the expert in every group.";

static const char *ABOUT = "  Continue TEXT with the model (KV-cached decoding), stopping at EOS or N tokens.";

static void stream_text(void *ctx, const char *bytes, size_t n) {
    (void)ctx;
    fwrite(bytes, 1, n, stdout);
    fflush(stdout);
}

static int generate_main(int argc, char **argv, int steer_mode) {
    const char *cmd = steer_mode ? "steer" : "generate";
    const char *dir = NULL, *prompt = NULL, *mask_path = NULL;
    cli_model_args dev_arg = {0};
    int have_strength = 0, no_bos = 0, json = 0;
    double strength = NO_STRENGTH;
    long max_new = 64, seed = 1;
    double temp = 0.8, top_p = 0.95;
    cli_list experts = {0};
#define GENERATE_OPTS                                                                                                 \
    {"--model", NULL, CLI_STR, "DIR", &dir, 0, 0, NULL, "checkpoint folder: config.json, *.safetensors, tokenizer.model", \
     CLI_REQUIRED, NULL, 0},                                                                                          \
        {"--prompt", NULL, CLI_STR, "TEXT", &prompt, 0, 0, NULL, "the text to continue", CLI_REQUIRED, NULL, 0},     \
        {"--max-tokens", NULL, CLI_LONG, "N", &max_new, 1, 1 << 20, NULL, "new tokens (default 64)", 0, NULL, 0},   \
        {"--temperature", NULL, CLI_DOUBLE, "T", &temp, 0, 100, NULL, "0 = greedy (default 0.8)", 0, NULL, 0},       \
        {"--top-p", NULL, CLI_DOUBLE, "P", &top_p, 1e-9, 1, NULL, "nucleus sampling mass, 0 < P <= 1 (default 0.95)", \
         0, NULL, 0},                                                                                                 \
        {"--seed", NULL, CLI_LONG, "S", &seed, 0, 4.6e18, NULL, "RNG seed (default 1); same seed, same output", 0,    \
         NULL, 0},                                                                                                    \
        CLI_OPT_DEVICE(&dev_arg),                                                                                     \
        {"--no-bos", NULL, CLI_FLAG, NULL, &no_bos, 0, 0, NULL, "do not prepend BOS to the prompt", 0, NULL, 0},    \
        {"--mask", NULL, CLI_STR, "MASK", &mask_path, 0, 0, NULL, "purge the experts listed in a mask file", 0, NULL, \
         0},                                                                                                          \
        {"--json", NULL, CLI_FLAG, NULL, &json, 0, 0, NULL,                                                          \
         "print {\"prompt_ids\", \"ids\", \"text\", \"tokens_per_s\"} instead of streaming", 0, NULL, 0}
    const cli_opt gen_opts[] = {GENERATE_OPTS, CLI_OPT_END};
    const cli_opt steer_opts[] = {
        CLI_OPT_EXPERT(&experts, CLI_LIST,
                       "[R:]I,J or [R:]FLAT (FLAT = I*E+J); '=S' sets this expert's strength", CLI_REQUIRED),
        {"--strength", NULL, CLI_DOUBLE, "S", &strength, -1e6, 1e6, NULL,
         "default strength for experts without '=S' (e.g. 1.0 = one full head's weight;\n"
         "negative values suppress)", 0, NULL, 0},
        GENERATE_OPTS,
        CLI_OPT_END,
    };
#undef GENERATE_OPTS
    const cli_spec spec = {.cmd = cmd, .about = steer_mode ? STEER_ABOUT : ABOUT,
                           .opts = steer_mode ? steer_opts : gen_opts};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    mp_device dev;
    if (cli_model_device(cmd, &dev_arg, &dev)) return 2;
    have_strength = strength != NO_STRENGTH;
    if (!have_strength) strength = 0;
    const int bos = !no_bos;
    const char **steer_arg = experts.v;
    const int n_steer_arg = experts.n;

    mp_error err;
    mp_error_clear(&err);
    mp_tokenizer *tok = NULL;
    mp_model *m = NULL;
    mp_engine *st = NULL;
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
    if ((rc = mp_engine_create(m, dev, (int)(n + (size_t)max_new), 0, &st, &err)) < 0) goto cleanup;
    if ((rc = cli_engine_apply_mask(mask_path, m, st, &mask, &err)) < 0) goto cleanup;
    if (steer_mode &&
        (rc = cli_engine_apply_steering(m, st, steer_arg, n_steer_arg, have_strength, strength, json, &err)) < 0)
        goto cleanup;
    if ((rc = mp_sampler_init(&sampler, m->cfg.vocab_size, temp, top_p, (uint64_t)seed, &err)) < 0) goto cleanup;
    mp_gen_opts go = {.max_new_tokens = (int)max_new, .on_text = json ? NULL : stream_text};
    if (!json) fputs(prompt, stdout);
    const int32_t *prompts[1] = {ids};
    if ((rc = mp_generate_batch(st, tok, prompts, &n, 1, &go, &sampler, &gen, &err)) < 0) goto cleanup;
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
        printf("], \"text\": ");
        cli_json_strn(stdout, text, tl);
        printf(", \"prefill_s\": %.4f, \"decode_tokens_per_s\": %.2f}\n", t_prefill, tps);
    } else {
        putchar('\n');
        fprintf(stderr, "monet-probe: generated %zu tokens, prefill %zu tokens in %.3fs, decode %.1f tokens/s\n", n_out,
                n, t_prefill, tps);
    }
cleanup:
    mp_gen_result_free(&gen);
    mp_sampler_free(&sampler);
    mp_engine_free(st);
    mp_mask_free(mask);
    mp_model_free(m);
    mp_tokenizer_free(tok);
    free(ids);
    return rc < 0 ? cli_exit_error(&err) : 0;
}

int cmd_generate(int argc, char **argv) { return generate_main(argc, argv, 0); }
int cmd_steer(int argc, char **argv) { return generate_main(argc, argv, 1); }
