/* fuzz/fuzz_tokenizer.c — libFuzzer target for core/text/tokenizer.c: the input
 * bytes are a tokenizer.model (protobuf ModelProto). A model that loads must
 * encode, decode and stream-decode a fixed awkward string without faults.
 *
 * build: clang -g -O1 -fsanitize=fuzzer,address,undefined -I. \
 *          core/text/tokenizer.c core/util/error.c fuzz/fuzz_tokenizer.c -o fuzz_tokenizer
 * run:   ./fuzz_tokenizer -max_total_time=60 fuzz/corpus/tokenizer
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char text[] = "Hello  w\xc3\xb6rld\t\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 <s>ab "
                               "\xff\xc3 \xef\xbc\xa1\xe2\x91\xa0 \x00x  ";
    mp_tokenizer *tok = NULL;
    mp_error err;
    mp_error_clear(&err);
    if (mp_tokenizer_load_from_memory(data, size, "fuzz.model", &tok, &err) < 0) {
        if (tok != NULL || err.msg[0] == '\0') abort(); /* failures must be clean */
        return 0;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    if (mp_tokenizer_encode(tok, text, sizeof text - 1, 1, &ids, &n, &err) == 0) {
        char *out = NULL;
        size_t len = 0;
        if (mp_tokenizer_decode(tok, ids, n, &out, &len, &err) == 0) free(out);
        char buf[64];
        for (size_t i = 0; i < n; i++) {
            if (mp_tokenizer_piece(tok, ids[i]) == NULL) abort(); /* encode gave a bad id */
            mp_tokenizer_decode_piece(tok, i ? ids[i - 1] : -1, ids[i], buf, sizeof buf);
        }
        free(ids);
    }
    /* every id decodes, alone and as a run */
    int vocab = mp_tokenizer_vocab_size(tok);
    int32_t all[64];
    size_t m = 0;
    for (int id = 0; id < vocab && m < 64; id++) all[m++] = id;
    char *out = NULL;
    size_t len = 0;
    if (mp_tokenizer_decode(tok, all, m, &out, &len, &err) == 0) free(out);
    mp_tokenizer_free(tok);
    return 0;
}
