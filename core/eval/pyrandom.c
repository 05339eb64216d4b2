/* core/eval/pyrandom.c — CPython's Mersenne Twister and the Lib/random.py
 * algorithms the harnesses use (see pyrandom.h). Follows
 * Modules/_randommodule.c (init_genrand, init_by_array, genrand_uint32) and
 * Lib/random.py (_randbelow_with_getrandbits, sample, shuffle). */
#include "core/eval/pyrandom.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void init_genrand(mp_pyrandom *r, uint32_t s) {
    r->mt[0] = s;
    for (int i = 1; i < 624; i++) r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->mti = 624;
}

void mp_pyrandom_seed(mp_pyrandom *r, uint64_t seed) {
    uint32_t key[2];
    size_t klen = 0;
    /* random_seed(): abs(int) split into 32-bit words, least significant first; 0 -> [0] */
    key[klen++] = (uint32_t)seed;
    if (seed >> 32) key[klen++] = (uint32_t)(seed >> 32);
    init_genrand(r, 19650218u);
    size_t i = 1, j = 0, k = 624 > klen ? 624 : klen;
    for (; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
        i++;
        j++;
        if (i >= 624) {
            r->mt[0] = r->mt[623];
            i = 1;
        }
        if (j >= klen) j = 0;
    }
    for (k = 623; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        i++;
        if (i >= 624) {
            r->mt[0] = r->mt[623];
            i = 1;
        }
    }
    r->mt[0] = 0x80000000u;
}

static uint32_t genrand(mp_pyrandom *r) {
    static const uint32_t mag01[2] = {0x0u, 0x9908b0dfu};
    uint32_t y;
    if (r->mti >= 624) {
        int kk;
        for (kk = 0; kk < 624 - 397; kk++) {
            y = (r->mt[kk] & 0x80000000u) | (r->mt[kk + 1] & 0x7fffffffu);
            r->mt[kk] = r->mt[kk + 397] ^ (y >> 1) ^ mag01[y & 1u];
        }
        for (; kk < 623; kk++) {
            y = (r->mt[kk] & 0x80000000u) | (r->mt[kk + 1] & 0x7fffffffu);
            r->mt[kk] = r->mt[kk + (397 - 624)] ^ (y >> 1) ^ mag01[y & 1u];
        }
        y = (r->mt[623] & 0x80000000u) | (r->mt[0] & 0x7fffffffu);
        r->mt[623] = r->mt[396] ^ (y >> 1) ^ mag01[y & 1u];
        r->mti = 0;
    }
    y = r->mt[r->mti++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    return y;
}

uint32_t mp_pyrandom_bits(mp_pyrandom *r, int k) { return k <= 0 ? 0 : genrand(r) >> (32 - (k > 32 ? 32 : k)); }

size_t mp_pyrandom_below(mp_pyrandom *r, size_t n) {
    if (n == 0) return 0;
    int k = 0;
    while (k < 32 && (n >> k)) k++; /* n.bit_length() (n < 2^32 for any split we load) */
    size_t v = mp_pyrandom_bits(r, k);
    while (v >= n) v = mp_pyrandom_bits(r, k);
    return v;
}

int mp_pyrandom_sample(mp_pyrandom *r, size_t n, size_t k, size_t *out, mp_error *err) {
    MP_FAIL_IF(k > n, err, MP_EINPUT, "sample of %zu from a population of %zu", k, n);
    size_t setsize = 21;
    if (k > 5) setsize += (size_t)pow(4.0, ceil(log((double)(k * 3)) / log(4.0)));
    if (n <= setsize) { /* pool branch */
        size_t *pool = malloc((n ? n : 1) * sizeof *pool);
        MP_FAIL_IF(!pool, err, MP_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) pool[i] = i;
        for (size_t i = 0; i < k; i++) {
            size_t j = mp_pyrandom_below(r, n - i);
            out[i] = pool[j];
            pool[j] = pool[n - i - 1];
        }
        free(pool);
        return 0;
    }
    for (size_t i = 0; i < k; i++) { /* set branch: redraw indices already chosen */
        size_t j;
        int seen;
        do {
            j = mp_pyrandom_below(r, n);
            seen = 0;
            for (size_t t = 0; t < i; t++) seen |= out[t] == j;
        } while (seen);
        out[i] = j;
    }
    return 0;
}

void mp_pyrandom_shuffle(mp_pyrandom *r, size_t *idx, size_t n) {
    for (size_t i = n; i-- > 1;) {
        size_t j = mp_pyrandom_below(r, i + 1);
        size_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
