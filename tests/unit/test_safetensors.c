/* tests/unit/test_safetensors.c — the safetensors validator on hand-built
 * images: good files, every class of malformed header, dtype conversion. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/model/safetensors.h"

/* Build an image: 8-byte LE length, header text, data_len bytes of data. */
static unsigned char *image(const char *header, size_t data_len, size_t *len) {
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    unsigned char *b = calloc(1, *len);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    for (size_t i = 0; i < data_len; i++) b[8 + h + i] = (unsigned char)i;
    return b;
}

static int opens(const char *header, size_t data_len, const char *expect_substr) {
    size_t len;
    unsigned char *b = image(header, data_len, &len);
    mp_safetensors *st = NULL;
    mp_error err;
    mp_error_clear(&err);
    int rc = mp_safetensors_open_memory(b, len, "x.safetensors", &st, &err);
    int ok;
    if (expect_substr) {
        ok = rc == MP_EINPUT && strstr(err.msg, expect_substr) && strstr(err.msg, "x.safetensors");
        if (!ok) fprintf(stderr, "  header %s -> rc %d msg '%s' (wanted '%s')\n", header, rc, err.msg, expect_substr);
    } else {
        ok = rc == 0;
        if (!ok) fprintf(stderr, "  header %s -> rc %d msg '%s'\n", header, rc, err.msg);
    }
    mp_safetensors_close(st);
    free(b);
    return ok;
}

int main(void) {
    /* valid: two tensors, metadata, one zero-size tensor */
    CHECK(opens("{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]},"
                "\"e\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[22,22]}}",
                22, NULL));
    CHECK(opens("{}", 0, NULL));
    /* malformed */
    CHECK(opens("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 8, "out of range"));
    CHECK(opens("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 16, "do not match"));
    CHECK(opens("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                12, "overlapping"));
    CHECK(opens("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype"));
    CHECK(opens("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape"));
    CHECK(opens("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "shape"));
    CHECK(opens("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "begin <= end"));
    CHECK(opens("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "data_offsets"));
    CHECK(opens("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
                "do not match"));
    CHECK(opens("{\"a\": [1,2", 0, "not valid JSON"));
    CHECK(opens("[1,2]", 0, "not a JSON object"));
    CHECK(opens("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                16, "twice"));
    {   /* header length past the end of the file */
        unsigned char b[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
        mp_safetensors *st = NULL;
        mp_error err;
        CHECK(mp_safetensors_open_memory(b, sizeof b, "x.safetensors", &st, &err) == MP_EINPUT);
        CHECK(strstr(err.msg, "past the end") != NULL);
        CHECK(mp_safetensors_open_memory(b, 5, "x.safetensors", &st, &err) == MP_EINPUT);
        CHECK(strstr(err.msg, "shorter than") != NULL);
    }
    /* lookup and data pointers */
    {
        size_t len;
        unsigned char *b = image("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                                 "\"v\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                                 8, &len);
        mp_safetensors *st = NULL;
        mp_error err;
        CHECK(mp_safetensors_open_memory(b, len, "y", &st, &err) == 0);
        const mp_st_tensor *w = st ? mp_safetensors_find(st, "w") : NULL;
        CHECK(w && w->nbytes == 4 && ((const unsigned char *)w->data)[0] == 4);
        CHECK(st && mp_safetensors_find(st, "nope") == NULL);
        mp_safetensors_close(st);
        free(b);
    }
    /* conversions: exact for representable values; bf16 rounding is nearest-even */
    CHECK(mp_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(mp_bf16_to_f32(0xc000) == -2.0f);
    CHECK(mp_f16_to_f32(0x3c00) == 1.0f);
    CHECK(mp_f16_to_f32(0xc000) == -2.0f);
    CHECK(mp_f16_to_f32(0x0001) == ldexpf(1.0f, -24)); /* smallest subnormal */
    CHECK(mp_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(isinf(mp_f16_to_f32(0x7c00)));
    CHECK(isnan(mp_f16_to_f32(0x7e00)));
    CHECK(mp_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(mp_f32_to_bf16(1.00390625f) == 0x3f80); /* halfway 1 + 2^-8: ties to even */
    CHECK(mp_f32_to_bf16(1.01171875f) == 0x3f82); /* halfway 1 + 3*2^-8: ties to even (up) */
    for (uint32_t h = 0; h < 65536; h++) { /* every f16 converts like the hardware-independent formula */
        uint16_t x = (uint16_t)h;
        int e = (x >> 10) & 31, man = x & 1023;
        if (e == 31) continue;
        double v = e ? ldexp(1.0 + man / 1024.0, e - 15) : ldexp(man / 1024.0, -14);
        if (x & 0x8000) v = -v;
        if (mp_f16_to_f32(x) != (float)v) {
            CHECK(mp_f16_to_f32(x) == (float)v);
            break;
        }
    }
    return check_report("test_safetensors");
}
