/* cmd/eval_opts.c — helpers behind cmd/eval_opts.h (the data folder). */
#include "eval_opts.h"

#include "cli.h"
#include "core/util/data_dir.h"

int eval_data_dir(const char *cmd, const char *given, char *buf, size_t cap) {
    mp_error err;
    mp_error_clear(&err);
    if (mp_data_dir(given, buf, cap, &err) < 0) {
        mp_error_prefix(&err, "%s", cmd);
        return cli_exit_error(&err);
    }
    return 0;
}
