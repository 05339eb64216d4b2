/* bench/bench_forward.c — CPU forward figures of one checkpoint, measured in
 * one process so that every figure sits next to its baseline:
 *   prefill  T tokens (logits of the last position), sparse expert compute
 *            vs MP_MOE=dense, unmasked and masked (MASK given), the four
 *            variants alternating in every repetition;
 *   decode   N single-token steps after a P-token prompt, sparse vs dense;
 *   first    the first prefill of a fresh state vs the later ones;
 *   weights  (--f32-weights) sparse prefill and decode also on the model
 *            loaded with MP_WEIGHTS=f32 (every matrix widened to float32,
 *            the previous behaviour), alternating with the default;
 *   load     (--load) mp_model_load, and load + state + a first one-token
 *            forward ("time to first forward"), with the checkpoint files
 *            evicted from the page cache (posix_fadvise DONTNEED; cold disk
 *            read) and with them cached, for the default weights and for
 *            MP_WEIGHTS=f32, next to reading the files alone.
 * Each figure: min / median / max over R repetitions (after one warm-up).
 *
 * usage: bench_forward MODEL_DIR [--tokens T] [--reps R] [--mask FILE]
 *                     [--decode N] [--prompt P] [--load] [--no-dense] [--f32-weights]
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

/* Load the checkpoint with MP_WEIGHTS = mode (NULL: unset, the default). */
static int load_mode(const char *dir, const char *mode, mp_model **m, mp_error *err) {
    if (mode) setenv("MP_WEIGHTS", mode, 1);
    else unsetenv("MP_WEIGHTS");
    int rc = mp_model_load(dir, m, err);
    unsetenv("MP_WEIGHTS");
    return rc;
}

/* Load, then create a state and run one token: "time to first forward". */
static int load_and_first(const char *dir, const char *mode, double *t_load, double *t_first, mp_error *err) {
    mp_model *m = NULL;
    mp_state *st = NULL;
    float *logits = NULL;
    double t0 = mp_now();
    if (load_mode(dir, mode, &m, err) < 0) return -1;
    *t_load = mp_now() - t0;
    int32_t id = 1;
    int rc = -1;
    logits = malloc((size_t)m->cfg.vocab_size * sizeof *logits);
    if (logits && mp_state_create(m, 64, 0, &st, err) == 0 && mp_forward(st, &id, 1, logits, 1, NULL, err) == 0)
        rc = 0;
    *t_first = mp_now() - t0;
    free(logits);
    mp_state_free(st);
    mp_model_free(m);
    return rc;
}

static int bench_load(const char *dir, int reps) {
    /* [weights mode][cold, warm]: load alone, load + first forward */
    series read_cold = {0}, load[2][2], first[2][2];
    memset(load, 0, sizeof load);
    memset(first, 0, sizeof first);
    const char *modes[2] = {NULL, "f32"};
    long long bytes = 0;
    mp_error err;
    for (int r = 0; r < reps; r++) {
        each_file(dir, 1);
        double t0 = mp_now();
        bytes = each_file(dir, 0);
        series_add(&read_cold, mp_now() - t0);
        for (int w = 0; w < 2; w++)
            for (int warm = 0; warm < 2; warm++) {
                if (!warm) each_file(dir, 1);
                double tl, tf;
                if (load_and_first(dir, modes[w], &tl, &tf, &err) < 0) return fail("load", &err);
                series_add(&load[w][warm], tl);
                series_add(&first[w][warm], tf);
            }
    }
    printf("{\n  \"checkpoint_bytes\": %lld,\n", bytes);
    print_series("read_files_cold_s", &read_cold, 0, 1);
    print_series("load_cold_s", &load[0][0], 0, 1);
    print_series("load_warm_s", &load[0][1], 0, 1);
    print_series("first_forward_cold_s", &first[0][0], 0, 1);
    print_series("first_forward_warm_s", &first[0][1], 0, 1);
    print_series("f32w_load_cold_s", &load[1][0], 0, 1);
    print_series("f32w_load_warm_s", &load[1][1], 0, 1);
    print_series("f32w_first_forward_cold_s", &first[1][0], 0, 1);
    print_series("f32w_first_forward_warm_s", &first[1][1], 0, 0);
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
                        "[--prompt P] [--load] [--no-dense] [--f32-weights]\n");
        return 2;
    }
    const char *dir = argv[1], *mask_path = NULL;
    int T = 256, R = 3, N = 32, P = 32, load = 0, dense = 1, f32w = 0;
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
        else if (!strcmp(a, "--f32-weights")) f32w = 1;
        else return fprintf(stderr, "bench_forward: bad argument %s\n", a), 2;
    }
    if (T < 1 || R < 1 || R > MAX_REPS || N < 0 || P < 1) return fprintf(stderr, "bench_forward: bad sizes\n"), 2;
    if (load) return bench_load(dir, R);

    mp_error err;
    mp_model *m = NULL, *mf = NULL;
    mp_mask *mask = NULL;
    double t0 = mp_now();
    if (load_mode(dir, NULL, &m, &err) < 0) return fail("load", &err);
    double t_load = mp_now() - t0;
    if (f32w && load_mode(dir, "f32", &mf, &err) < 0) return fail("load (MP_WEIGHTS=f32)", &err);
    if (mask_path && mp_mask_load(mask_path, &m->cfg, &mask, &err) < 0) return fail("mask", &err);
    const int V = m->cfg.vocab_size, ctx = (T > P + N ? T : P + N);
    int32_t *ids = malloc((size_t)ctx * sizeof *ids);
    float *logits = malloc((size_t)V * sizeof *logits);
    if (!ids || !logits) return fprintf(stderr, "bench_forward: out of memory\n"), 1;
    for (int i = 0; i < ctx; i++) ids[i] = (int32_t)((i * 7919u + 13u) % (unsigned)V);

    /* variants: sparse and dense experts on the checkpoint's weights as loaded
     * by default, and (--f32-weights) sparse on every matrix widened to float32 */
    const char *names[3] = {"sparse", "dense", "sparse_f32w"};
    const char *moe[3] = {"sparse", "dense", "sparse"};
    const mp_model *model[3] = {m, m, mf};
    int use[3] = {1, dense, f32w};
    mp_state *st[3] = {NULL, NULL, NULL};
    series first = {0}, create = {0};
    /* first forward of a fresh state, vs the steady-state figures below */
    for (int k = 0; k < 3; k++) {
        if (!use[k]) continue;
        t0 = mp_now();
        if (make_state(model[k], moe[k], ctx, &st[k], &err) < 0) return fail("state", &err);
        if (k == 0) series_add(&create, mp_now() - t0);
        t0 = mp_now();
        if (mp_forward(st[k], ids, (size_t)T, logits, 1, NULL, &err) < 0) return fail("forward", &err);
        if (k == 0) series_add(&first, mp_now() - t0);
    }
    series prefill[3][2], decode[3];
    memset(prefill, 0, sizeof prefill);
    memset(decode, 0, sizeof decode);
    for (int r = -1; r < R; r++) { /* r = -1: warm-up */
        for (int k = 0; k < 3; k++)
            for (int mk = 0; use[k] && mk < (mask && k < 2 ? 2 : 1); mk++) {
                if (mp_state_set_mask(st[k], mk ? mask : NULL, &err) < 0) return fail("mask", &err);
                mp_state_reset(st[k]);
                t0 = mp_now();
                if (mp_forward(st[k], ids, (size_t)T, logits, 1, NULL, &err) < 0) return fail("forward", &err);
                if (r >= 0) series_add(&prefill[k][mk], mp_now() - t0);
            }
        for (int k = 0; k < 3 && N > 0; k++) {
            if (!use[k]) continue;
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
           "\"load_s\": %.3f, \"weights\": \"%s\",\n", T, R, N, P, m->n_params, t_load,
           m->has_bf16 ? "bf16 in place" : m->inplace_bytes ? "float32 in place" : "float32 (widened)");
    print_series("state_create_s", &create, 0, 1);
    print_series("first_prefill_tok_s", &first, T, 1);
    int last = 0;
    for (int k = 0; k < 3; k++)
        if (use[k]) last = k;
    for (int k = 0; k < 3; k++) {
        if (!use[k]) continue;
        char name[64];
        snprintf(name, sizeof name, "prefill_%s_tok_s", names[k]);
        print_series(name, &prefill[k][0], T, 1);
        if (mask && k < 2) {
            snprintf(name, sizeof name, "prefill_%s_masked_tok_s", names[k]);
            print_series(name, &prefill[k][1], T, 1);
        }
        snprintf(name, sizeof name, "decode_%s_tok_s", names[k]);
        print_series(name, &decode[k], N > 0 ? N : 1, k < last);
    }
    printf("}\n");
    free(ids);
    free(logits);
    for (int k = 0; k < 3; k++) mp_state_free(st[k]);
    mp_mask_free(mask);
    mp_model_free(m);
    mp_model_free(mf);
    return 0;
}
