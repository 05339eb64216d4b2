/* tests/unit/test_config.c — config.json validation: required keys, types,
 * divisibility, unknown decompositions, router group layout. */
#include <string.h>

#include "check.h"
#include "core/model/config.h"

#define BASE                                                                                                  \
    "\"vocab_size\": 100, \"hidden_size\": 64, \"num_hidden_layers\": 5, \"num_attention_heads\": 4, "      \
    "\"moe_experts\": 16, \"moe_heads\": 2, \"moe_dim\": 8, \"moe_topk\": 4, \"moe_groups\": 2"

static int parse(const char *json, mp_config *c, mp_error *err) {
    mp_error_clear(err);
    return mp_config_parse(json, strlen(json), "config.json", c, err);
}

static int fails_with(const char *json, const char *substr) {
    mp_config c;
    mp_error err;
    int rc = parse(json, &c, &err);
    int ok = rc == MP_EINPUT && strstr(err.msg, substr) && strstr(err.msg, "config.json");
    if (!ok) fprintf(stderr, "  %s -> rc %d '%s' (wanted '%s')\n", json, rc, err.msg, substr);
    return ok;
}

int main(void) {
    mp_config c;
    mp_error err;
    CHECK(parse("{" BASE ", \"moe_decompose\": \"vertical\"}", &c, &err) == 0);
    CHECK(c.head_dim == 16 && c.n_kv_heads == 4 && c.n_router_groups == 3 && c.decompose == MP_VD);
    int a, b;
    mp_config_group_layers(&c, 2, &a, &b);
    CHECK(a == 4 && b == 4); /* last group covers the one remaining layer */
    mp_config_group_layers(&c, 1, &a, &b);
    CHECK(a == 2 && b == 3);
    CHECK(parse("{" BASE ", \"moe_decompose\": \"horizontal\", \"num_key_value_heads\": 2, \"eos_token_id\": [2, 3]}",
                &c, &err) == 0);
    CHECK(c.decompose == MP_HD && c.n_kv_heads == 2 && c.eos_token_id == 2);
    CHECK(fails_with("{" BASE ", \"moe_decompose\": \"diagonal\"}", "unknown moe_decompose"));
    CHECK(fails_with("{" BASE "}", "moe_decompose"));
    CHECK(fails_with("{" BASE ", \"moe_decompose\": \"vertical\", \"num_key_value_heads\": 3}", "not divisible"));
    CHECK(fails_with("{\"vocab_size\": 100, \"hidden_size\": 63, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
                     "\"moe_experts\": 16, \"moe_heads\": 2, \"moe_dim\": 8, \"moe_topk\": 4, \"moe_groups\": 1, "
                     "\"moe_decompose\": \"horizontal\"}",
                     "not divisible"));
    CHECK(fails_with("{" BASE ", \"moe_decompose\": \"vertical\", \"hidden_act\": \"silu\"}", "hidden_act"));
    CHECK(fails_with("{\"vocab_size\": 1.5, \"hidden_size\": 64}", "integer"));
    CHECK(fails_with("{" BASE ", \"moe_decompose\": \"vertical\", \"rope_scaling\": {\"type\": \"linear\"}}",
                     "rope_scaling"));
    CHECK(fails_with("{\"hidden_size\": 64", "not valid JSON"));
    CHECK(fails_with("[]", "not a JSON object"));
    CHECK(fails_with("{\"vocab_size\": 100, \"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
                     "\"moe_experts\": 16, \"moe_heads\": 2, \"moe_dim\": 7, \"moe_topk\": 4, \"moe_groups\": 1, "
                     "\"moe_decompose\": \"vertical\"}",
                     "even moe_dim"));
    CHECK(fails_with("{\"vocab_size\": 100, \"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
                     "\"moe_experts\": 16, \"moe_heads\": 2, \"moe_dim\": 8, \"moe_topk\": 16, \"moe_groups\": 1, "
                     "\"moe_decompose\": \"vertical\"}",
                     "moe_topk"));
    CHECK(fails_with("{\"hidden_size\": 64}", "missing required key \"vocab_size\""));
    return check_report("test_config");
}
