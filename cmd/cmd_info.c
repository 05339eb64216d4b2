/* cmd/cmd_info.c — `monet-probe info`: architecture, parameter count, experts
 * per router group and the layers each group covers, dtype and memory. */
#include <stdio.h>

#include "cli.h"
#include "core/model/backend.h"
#include "core/model/model.h"

int cmd_info(int argc, char **argv) {
    const char *dir = NULL;
    int json = 0;
    const cli_opt opts[] = {
        {"--model", NULL, CLI_STR, "DIR", &dir, 0, 0, NULL, "checkpoint folder: config.json, *.safetensors",
         CLI_REQUIRED, NULL, 0},
        CLI_OPT_JSON(&json),
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = "info",
                           .about = "  Describe a Monet checkpoint (Hugging Face layout: config.json, *.safetensors).",
                           .opts = opts};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m = NULL;
    if (mp_model_load(dir, &m, &err) < 0) return cli_exit_error(&err);
    const mp_config *c = &m->cfg;
    const long long E = c->moe_experts;
    const double f32_mib = (double)m->arena_floats * 4 / (1024.0 * 1024);
    const double kv_mib_per_1k =
        2.0 * c->n_layers * c->n_kv_heads * c->head_dim * 4 * 1024 / (1024.0 * 1024);
    char cuda_desc[256];
    int n_cuda = mp_backend_cuda_devices(cuda_desc, sizeof cuda_desc);
    if (json) {
        printf("{\"model\": ");
        cli_json_str(stdout, m->dir);
        printf(", \"n_params\": %zu, \"vocab_size\": %d, \"hidden_size\": %d, "
               "\"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"num_key_value_heads\": %d, "
               "\"head_dim\": %d, \"moe_decompose\": \"%s\", \"moe_experts\": %d, \"experts_per_group\": %lld, "
               "\"moe_heads\": %d, \"moe_dim\": %d, \"moe_topk\": %d, \"moe_groups\": %d, \"n_groups\": %d, "
               "\"group_layers\": [",
               m->n_params, c->vocab_size, c->hidden_size, c->n_layers, c->n_heads, c->n_kv_heads,
               c->head_dim, mp_decompose_name(c->decompose), c->moe_experts, E * E, c->moe_heads, c->moe_dim,
               c->moe_topk, c->moe_groups, c->n_router_groups);
        for (int r = 0; r < c->n_router_groups; r++) {
            int a, b;
            mp_config_group_layers(c, r, &a, &b);
            printf("%s[%d, %d]", r ? ", " : "", a, b);
        }
        printf("], \"tie_word_embeddings\": %s, \"dtype\": \"%s\", \"torch_dtype\": \"%s\", "
               "\"file_bytes\": %zu, \"f32_weight_bytes\": %zu, \"inplace_weight_bytes\": %zu, "
               "\"kv_cache_bytes_per_token\": %lld, "
               "\"cuda_devices\": %d}\n",
               c->tie_word_embeddings ? "true" : "false", m->weight_dtype, c->torch_dtype, m->file_bytes,
               m->arena_floats * 4, m->inplace_bytes, 2LL * c->n_layers * c->n_kv_heads * c->head_dim * 4, n_cuda);
    } else {
        printf("model          %s\n", m->dir);
        printf("architecture   Monet-%s (moe_decompose \"%s\"), %d layers, d=%d, vocab %d\n",
               c->decompose == MP_VD ? "VD" : "HD", mp_decompose_name(c->decompose), c->n_layers, c->hidden_size,
               c->vocab_size);
        printf("attention      %d heads x %d, %d key/value heads%s, RoPE theta %g\n", c->n_heads, c->head_dim,
               c->n_kv_heads, c->n_kv_heads < c->n_heads ? " (GQA)" : "", c->rope_theta);
        printf("parameters     %zu (%.2fM)\n", m->n_params, (double)m->n_params / 1e6);
        printf("experts        E=%d per factor -> %lld experts per router group, %d router heads, expert dim %d, "
               "top-k %d\n",
               c->moe_experts, E * E, c->moe_heads, c->moe_dim, c->moe_topk);
        printf("router groups  %d (a router every %d layers)\n", c->n_router_groups, c->moe_groups);
        for (int r = 0; r < c->n_router_groups; r++) {
            int a, b;
            mp_config_group_layers(c, r, &a, &b);
            if (a == b) printf("  group %d      layer %d\n", r, a);
            else printf("  group %d      layers %d-%d\n", r, a, b);
        }
        printf("embeddings     %s\n", c->tie_word_embeddings ? "tied" : "untied (lm_head.weight)");
        printf("dtype          %s on disk (torch_dtype %s); matrices %s in memory\n", m->weight_dtype, c->torch_dtype,
               m->inplace_bytes ? (m->has_bf16 ? "read in place as bf16" : "read in place as float32")
                                : "widened to float32");
        printf("memory         %.1f MiB on disk, %.1f MiB read in place, %.1f MiB float32 weights, KV cache %.1f MiB "
               "per 1k tokens\n",
               (double)m->file_bytes / (1024.0 * 1024), (double)m->inplace_bytes / (1024.0 * 1024), f32_mib,
               kv_mib_per_1k);
        printf("backends       cpu (OpenBLAS); cuda: %s\n", cuda_desc);
    }
    mp_model_free(m);
    return 0;
}
