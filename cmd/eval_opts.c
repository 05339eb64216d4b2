/* cmd/eval_opts.c — helpers behind cmd/eval_opts.h (the default data folder). */
#include "eval_opts.h"

#include <stdlib.h>

const char *eval_data_dir(const char *given) {
    if (given) return given;
    const char *env = getenv("MONET_PROBE_DATA");
    return env && *env ? env : "../shared/data";
}
