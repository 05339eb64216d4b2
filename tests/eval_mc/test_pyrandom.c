/* tests/eval_mc/test_pyrandom.c — prints core/eval/pyrandom draws in the format
 * check_pyrandom.py computes with python3's own `random` module (the script
 * compares the two byte for byte). The cases cover both branches of
 * random.sample (pool: n <= setsize; set: n > setsize), state carried across
 * calls (lm-eval's few-shot sampler), seeds over 32 bits, and shuffle (open-
 * instruct's ToxiGen protocol).
 * usage: test_pyrandom */
#include <stdio.h>
#include <stdlib.h>

#include "core/eval/pyrandom.h"

static int sample_line(mp_pyrandom *r, size_t n, size_t k) {
    size_t out[64];
    mp_error err;
    if (mp_pyrandom_sample(r, n, k, out, &err)) {
        fprintf(stderr, "sample(%zu, %zu): %s\n", n, k, err.msg);
        return 1;
    }
    printf("sample %zu %zu:", n, k);
    for (size_t i = 0; i < k; i++) printf(" %zu", out[i]);
    putchar('\n');
    return 0;
}

int main(void) {
    mp_pyrandom r;
    int bad = 0;
    const unsigned long long seeds[] = {0, 1, 42, 1234, 4294967296ULL + 5};
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
        mp_pyrandom_seed(&r, seeds[s]);
        printf("seed %llu bits:", seeds[s]);
        for (int i = 0; i < 4; i++) printf(" %lu", (unsigned long)mp_pyrandom_bits(&r, 32));
        printf(" %lu\n", (unsigned long)mp_pyrandom_bits(&r, 7));
    }
    /* lm-eval: one Random(1234) carried across documents */
    mp_pyrandom_seed(&r, 1234);
    const size_t cases[][2] = {{1119, 5}, {1119, 6}, {2251, 25}, {4957, 1}, {10, 3}, {10, 10}, {85, 16}, {86, 16},
                               {33410, 6}, {21, 5}, {22, 5}, {5, 0}};
    for (int rep = 0; rep < 2; rep++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) bad |= sample_line(&r, cases[c][0], cases[c][1]);
    /* open-instruct: random.seed(42); random.shuffle(lines) per file */
    size_t idx[1000];
    mp_pyrandom_seed(&r, 42);
    for (int f = 0; f < 2; f++) {
        for (size_t i = 0; i < 1000; i++) idx[i] = i;
        mp_pyrandom_shuffle(&r, idx, f ? 1000 : 7);
        printf("shuffle %d:", f ? 1000 : 7);
        for (size_t i = 0; i < (f ? 1000u : 7u); i++) printf(" %zu", idx[i]);
        putchar('\n');
    }
    size_t dummy[2];
    mp_error err;
    if (mp_pyrandom_sample(&r, 3, 4, dummy, &err) != MP_EINPUT) {
        fprintf(stderr, "sample larger than the population must fail\n");
        bad = 1;
    }
    return bad;
}
