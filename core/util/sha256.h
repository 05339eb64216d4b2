/* core/util/sha256.h — SHA-256 (FIPS 180-4), used to fingerprint a model (config.json
 * + tokenizer.model) in the run metadata of a collect store, so that stores of
 * different models are never merged or mixed up. Streaming: init, update any
 * number of times, final. No allocation; nothing to free. */
#ifndef MP_SHA256_H
#define MP_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"

typedef struct mp_sha256 {
    uint32_t h[8];
    uint64_t bytes;       /* message length so far */
    uint8_t buf[64];
    size_t fill;          /* bytes in buf */
} mp_sha256;

void mp_sha256_init(mp_sha256 *s);
void mp_sha256_update(mp_sha256 *s, const void *data, size_t len);
/* Writes the 32-byte digest; s must be re-initialized before reuse. */
void mp_sha256_final(mp_sha256 *s, uint8_t out[32]);
/* Lower-case hex of a 32-byte digest into hex[65] (NUL-terminated). */
void mp_sha256_hex(const uint8_t dig[32], char hex[65]);

/* Hash a whole file into hex[65].
 * @return 0, or MP_EIO ("<path>: cannot open/read: ...") */
int mp_sha256_file(const char *path, char hex[65], mp_error *err);

#endif
