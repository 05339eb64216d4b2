/* fuzz/fuzz_safetensors.c — libFuzzer target: the safetensors header
 * validator on arbitrary bytes, then a float conversion of every tensor it
 * accepts (which must stay inside the buffer). */
#include <stdint.h>
#include <stdlib.h>

#include "core/model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mp_safetensors *st = NULL;
    mp_error err;
    if (mp_safetensors_open_memory(data, size, "fuzz.safetensors", &st, &err) == 0) {
        for (size_t i = 0; i < st->n; i++) {
            const mp_st_tensor *t = &st->tensors[i];
            if (t->numel > (1u << 16)) continue;
            float *dst = malloc((t->numel ? t->numel : 1) * sizeof(float));
            if (dst) mp_convert_to_f32(t->dtype, t->data, t->numel, dst);
            free(dst);
            (void)mp_safetensors_find(st, t->name);
        }
        mp_safetensors_close(st);
    }
    return 0;
}
