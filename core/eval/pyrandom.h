/* core/eval/pyrandom.h — CPython's `random` module, bit for bit, for the parts the
 * evaluation harnesses use: Random(seed) for a non-negative integer seed
 * (MT19937 init_by_array over the seed's 32-bit words), getrandbits(k) for
 * k <= 32, _randbelow (rejection sampling on getrandbits(n.bit_length())),
 * sample(range(n), k) (the pool and the set branches of Lib/random.py) and
 * shuffle(). lm-evaluation-harness draws few-shot examples with
 * random.Random(1234).sample(docs, k); open-instruct's ToxiGen evaluation
 * shuffles each prompt file after random.seed(42). Tested against python3.
 *
 * Ownership: mp_pyrandom is a plain value (no heap); mp_pyrandom_sample
 * writes into the caller's array.
 */
#ifndef MP_PYRANDOM_H
#define MP_PYRANDOM_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"

typedef struct mp_pyrandom {
    uint32_t mt[624]; /* MT19937 state */
    int mti;          /* next word */
} mp_pyrandom;

/* random.Random(seed) / random.seed(seed) for 0 <= seed < 2^64. */
void mp_pyrandom_seed(mp_pyrandom *r, uint64_t seed);
/* random.getrandbits(k), 1 <= k <= 32. */
uint32_t mp_pyrandom_bits(mp_pyrandom *r, int k);
/* random._randbelow(n) for 1 <= n < 2^32 (n = 1 draws one word, as Python's
 * getrandbits(1) does); n = 0 returns 0 without drawing. */
size_t mp_pyrandom_below(mp_pyrandom *r, size_t n);
/* random.sample(range(n), k): out[0..k) receives the chosen indices in order.
 * @return 0, MP_EINPUT when k > n ("Sample larger than population"), MP_ENOMEM. */
int mp_pyrandom_sample(mp_pyrandom *r, size_t n, size_t k, size_t *out, mp_error *err);
/* random.shuffle(x) over an index permutation: idx[0..n) is permuted in place. */
void mp_pyrandom_shuffle(mp_pyrandom *r, size_t *idx, size_t n);

#endif
