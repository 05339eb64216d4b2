/* bench/bench_forward.c — CPU forward figures of one checkpoint, measured in
 * one process so that every figure sits next to its baseline:
 *   prefill  T tokens (logits of the last position), sparse expert compute
 *            vs MP_MOE=dense, unmasked and masked (MASK given), the four
 *            variants alternating in every repetition;
 *   decode   N single-token steps after a P-token prompt, sparse vs dense;
 *   first    the first prefill of a fresh state vs the later ones;
 *   load     (--load) mp_model_load with the checkpoint files evicted from
 *            the page cache (posix_fadvise DONTNEED; cold disk read) and
 *            with them cached, next to reading the files alone.
 * Each figure: min / median / max over R repetitions (after one warm-up).
 *
 * usage: bench_forward MODEL_DIR [--tokens T] [--reps R] [--mask FILE]
 *                     [--decode N] [--prompt P] [--load] [--no-dense]
 * prints one JSON object. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/model/forward.h"
#include "core/util/progress.h"

enum { MAX_REPS = 64 };

typedef struct {
    double v[MAX_REPS];
    int n;
} series;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void series_add(series *s, double x) {
    if (s->n < MAX_REPS) s->v[s->n++] = x;
}

/* "name": {"min": .., "median": .., "max": ..} of work/seconds (a rate) or
 * of the seconds themselves (work = 0). */
static void print_series(const char *name, const series *s, double work, int comma) {
    if (!s->n) {
        printf("  \"%s\": null%s\n", name, comma ? "," : "");
        return;
    }
    double v[MAX_REPS];
    for (int i = 0; i < s->n; i++) v[i] = work > 0 ? work / s->v[i] : s->v[i];
    qsort(v, (size_t)s->n, sizeof v[0], cmp_double);
    double med = s->n % 2 ? v[s->n / 2] : 0.5 * (v[s->n / 2 - 1] + v[s->n / 2]);
    printf("  \"%s\": {\"min\": %.4g, \"median\": %.4g, \"max\": %.4g, \"n\": %d}%s\n", name, v[0], med, v[s->n - 1],
           s->n, comma ? "," : "");
}

static int fail(const char *what, const mp_error *err) {
    fprintf(stderr, "bench_forward: %s: %s\n", what, err->msg);
    return 1;
}

/* Evict (drop = 1) the checkpoint's *.safetensors from the page cache, or read
 * them through (drop = 0). @return bytes seen, or -1. */
static long long each_file(const char *dir, int drop) {
    DIR *dp = opendir(dir);
    if (!dp) return -1;
    long long total = 0;
    static char buf[1 << 20];
    struct dirent *de;
    while ((de = readdir(dp))) {
        size_t ln = strlen(de->d_name);
        if (ln < 12 || strcmp(de->d_name + ln - 12, ".safetensors")) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        if (drop) {
            fdatasync(fd);
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        } else {
            ssize_t r;
            while ((r = read(fd, buf, sizeof buf)) > 0) total += r;
        }
        close(fd);
    }
    closedir(dp);
    return total;
}

static int bench_load(const char *dir, int reps) {
    series read_cold = {0}, load_cold = {0}, load_warm = {0};
    long long bytes = 0;
    mp_error err;
    for (int r = 0; r < reps; r++) {
        each_file(dir, 1);
        double t0 = mp_now();
        bytes = each_file(dir, 0);
        series_add(&read_cold, mp_now() - t0);
        for (int cold = 1; cold >= 0; cold--) {
            if (cold) each_file(dir, 1);
            mp_model *m = NULL;
            t0 = mp_now();
            if (mp_model_load(dir, &m, &err) < 0) return fail("load", &err);
            series_add(cold ? &load_cold : &load_warm, mp_now() - t0);
            mp_model_free(m);
        }
    }
    printf("{\n  \"checkpoint_bytes\": %lld,\n", bytes);
    print_series("read_files_cold_s", &read_cold, 0, 1);
    print_series("load_cold_s", &load_cold, 0, 1);
    print_series("load_warm_s", &load_warm, 0, 0);
    printf("}\n");
    return 0;
}

/* A fresh state in MP_MOE mode `mode` ("sparse" / "dense"). */
static int make_state(const mp_model *m, const char *mode, int ctx, mp_state **st, mp_error *err) {
    setenv("MP_MOE", mode, 1);
    return mp_state_create(m, ctx, 0, st, err);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_forward MODEL_DIR [--tokens T] [--reps R] [--mask FILE] [--decode N] "
                        "[--prompt P] [--load] [--no-dense]\n");
        return 2;
    }
    const char *dir = argv[1], *mask_path = NULL;
    int T = 256, R = 3, N = 32, P = 32, load = 0, dense = 1;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--tokens") && has) T = atoi(argv[++i]);
        else if (!strcmp(a, "--reps") && has) R = atoi(argv[++i]);
        else if (!strcmp(a, "--mask") && has) mask_path = argv[++i];
        else if (!strcmp(a, "--decode") && has) N = atoi(argv[++i]);
        else if (!strcmp(a, "--prompt") && has) P = atoi(argv[++i]);
        else if (!strcmp(a, "--load")) load = 1;
        else if (!strcmp(a, "--no-dense")) dense = 0;
        else return fprintf(stderr, "bench_forward: bad argument %s\n", a), 2;
    }
    if (T < 1 || R < 1 || R > MAX_REPS || N < 0 || P < 1) return fprintf(stderr, "bench_forward: bad sizes\n"), 2;
    if (load) return bench_load(dir, R);

    mp_error err;
    mp_model *m = NULL;
    mp_mask *mask = NULL;
    double t0 = mp_now();
    if (mp_model_load(dir, &m, &err) < 0) return fail("load", &err);
    double t_load = mp_now() - t0;
    if (mask_path && mp_mask_load(mask_path, &m->cfg, &mask, &err) < 0) return fail("mask", &err);
    const int V = m->cfg.vocab_size, ctx = (T > P + N ? T : P + N);
    int32_t *ids = malloc((size_t)ctx * sizeof *ids);
    float *logits = malloc((size_t)V * sizeof *logits);
    if (!ids || !logits) return fprintf(stderr, "bench_forward: out of memory\n"), 1;
    for (int i = 0; i < ctx; i++) ids[i] = (int32_t)((i * 7919u + 13u) % (unsigned)V);

    const char *modes[2] = {"sparse", "dense"};
    const int n_modes = dense ? 2 : 1;
    mp_state *st[2] = {NULL, NULL};
    series first = {0}, create = {0};
    /* first forward of a fresh state, vs the steady-state figures below */
    for (int k = 0; k < n_modes; k++) {
        t0 = mp_now();
        if (make_state(m, modes[k], ctx, &st[k], &err) < 0) return fail("state", &err);
        series_add(&create, mp_now() - t0);
        t0 = mp_now();
        if (mp_forward(st[k], ids, (size_t)T, logits, 1, NULL, &err) < 0) return fail("forward", &err);
        series_add(&first, mp_now() - t0);
    }
    series prefill[2][2], decode[2];
    memset(prefill, 0, sizeof prefill);
    memset(decode, 0, sizeof decode);
    for (int r = -1; r < R; r++) { /* r = -1: warm-up */
        for (int k = 0; k < n_modes; k++)
            for (int mk = 0; mk < (mask ? 2 : 1); mk++) {
                if (mp_state_set_mask(st[k], mk ? mask : NULL, &err) < 0) return fail("mask", &err);
                mp_state_reset(st[k]);
                t0 = mp_now();
                if (mp_forward(st[k], ids, (size_t)T, logits, 1, NULL, &err) < 0) return fail("forward", &err);
                if (r >= 0) series_add(&prefill[k][mk], mp_now() - t0);
            }
        for (int k = 0; k < n_modes && N > 0; k++) {
            if (mp_state_set_mask(st[k], NULL, &err) < 0) return fail("mask", &err);
            mp_state_reset(st[k]);
            if (mp_forward(st[k], ids, (size_t)P, logits, 1, NULL, &err) < 0) return fail("forward", &err);
            t0 = mp_now();
            for (int i = 0; i < N; i++)
                if (mp_forward(st[k], ids + P + i, 1, logits, 1, NULL, &err) < 0) return fail("decode", &err);
            if (r >= 0) series_add(&decode[k], mp_now() - t0);
        }
    }
    printf("{\n  \"tokens\": %d, \"reps\": %d, \"decode_steps\": %d, \"prompt\": %d, \"params\": %zu, "
           "\"load_s\": %.3f,\n", T, R, N, P, m->n_params, t_load);
    print_series("state_create_s", &create, 0, 1);
    print_series("first_prefill_tok_s", &first, T, 1);
    for (int k = 0; k < n_modes; k++) {
        char name[64];
        snprintf(name, sizeof name, "prefill_%s_tok_s", modes[k]);
        print_series(name, &prefill[k][0], T, 1);
        if (mask) {
            snprintf(name, sizeof name, "prefill_%s_masked_tok_s", modes[k]);
            print_series(name, &prefill[k][1], T, 1);
        }
        snprintf(name, sizeof name, "decode_%s_tok_s", modes[k]);
        print_series(name, &decode[k], N > 0 ? N : 1, k + 1 < n_modes);
    }
    printf("}\n");
    free(ids);
    free(logits);
    for (int k = 0; k < 2; k++) mp_state_free(st[k]);
    mp_mask_free(mask);
    mp_model_free(m);
    return 0;
}
