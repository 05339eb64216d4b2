/* core/util/data_dir.c — resolve the staged data folder (see data_dir.h). */
#include "core/util/data_dir.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int put(char *buf, size_t cap, const char *p, mp_error *err) {
    if ((size_t)snprintf(buf, cap, "%s", p) >= cap) return mp_fail(err, MP_EINPUT, "data folder path too long: %s", p);
    return 0;
}

int mp_data_dir(const char *given, char *buf, size_t cap, mp_error *err) {
    if (given && *given) {
        if (!is_dir(given)) return mp_fail(err, MP_EINPUT, "--data: no such directory '%s' (pass --data DIR or set MONET_PROBE_DATA)", given);
        return put(buf, cap, given, err);
    }
    const char *env = getenv("MONET_PROBE_DATA");
    if (env && *env) {
        if (!is_dir(env)) return mp_fail(err, MP_EINPUT, "MONET_PROBE_DATA: no such directory '%s' (pass --data DIR or set MONET_PROBE_DATA)", env);
        return put(buf, cap, env, err);
    }
    if (is_dir("../shared/data")) return put(buf, cap, "../shared/data", err);
    /* next to the repository of the binary: <repo>/<build>/monet-probe -> <repo>/../shared/data */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        for (int up = 0; up < 2; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = '\0';
        }
        char cand[PATH_MAX + 32];
        snprintf(cand, sizeof cand, "%s/../shared/data", exe);
        if (is_dir(cand)) return put(buf, cap, cand, err);
    }
    return mp_fail(err, MP_EINPUT,
                   "no data folder: pass --data DIR or set MONET_PROBE_DATA (looked for ../shared/data here and "
                   "next to the repository of this binary)");
}
