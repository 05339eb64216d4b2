/* fuzz/fuzz_config.c — libFuzzer target: config.json parsing and validation
 * on arbitrary bytes. */
#include <stdint.h>

#include "core/model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mp_config cfg;
    mp_error err;
    if (mp_config_parse((const char *)data, size, "fuzz/config.json", &cfg, &err) == 0) {
        int a, b;
        for (int r = 0; r < cfg.n_router_groups && r < 8; r++) mp_config_group_layers(&cfg, r, &a, &b);
    }
    return 0;
}
