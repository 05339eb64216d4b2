/* core/model/safetensors.h — one .safetensors file, memory-mapped and validated.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {...}}, then the data section that offsets are relative to.
 * Every tensor is checked on open: known dtype, byte size == prod(shape) *
 * element size, offsets inside the data section, no two tensors overlapping.
 *
 * Ownership: mp_safetensors_open maps the file; tensor data pointers borrow
 * from the mapping and stay valid until mp_safetensors_close (NULL: no-op).
 */
#ifndef MP_SAFETENSORS_H
#define MP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"

typedef enum {
    MP_DT_F64, MP_DT_F32, MP_DT_F16, MP_DT_BF16,
    MP_DT_I64, MP_DT_I32, MP_DT_I16, MP_DT_I8, MP_DT_U8, MP_DT_BOOL,
    MP_DT_F8_E4M3, MP_DT_F8_E5M2, MP_DT_U16, MP_DT_U32, MP_DT_U64
} mp_dtype;

#define MP_ST_MAX_DIMS 8

typedef struct mp_st_tensor {
    char *name;                    /* owned by the mp_safetensors */
    mp_dtype dtype;
    int ndim;
    int64_t shape[MP_ST_MAX_DIMS];
    size_t numel;
    const void *data;              /* borrows from the mapping */
    size_t nbytes;
} mp_st_tensor;

typedef struct mp_safetensors {
    char *path;                    /* owned copy, used in error messages */
    void *map;                     /* whole file (or borrowed memory) */
    size_t size;
    int owns_map;                  /* 1: munmap on close */
    mp_st_tensor *tensors;         /* [n], sorted by name */
    size_t n;
} mp_safetensors;

/* Map and validate path.
 * @return 0, MP_EIO (cannot open/map), MP_EINPUT (malformed: message names
 *         the file and the problem). */
int mp_safetensors_open(const char *path, mp_safetensors **out, mp_error *err);

/* Validate an in-memory image (borrowed; must outlive the result). name is
 * used in messages. Used by the fuzzer and tests. */
int mp_safetensors_open_memory(const void *buf, size_t len, const char *name, mp_safetensors **out,
                               mp_error *err);

void mp_safetensors_close(mp_safetensors *st);

/* Binary search by name; NULL when absent. */
const mp_st_tensor *mp_safetensors_find(const mp_safetensors *st, const char *name);

const char *mp_dtype_name(mp_dtype dt);
size_t mp_dtype_size(mp_dtype dt);

/* Convert n elements of a F32/F16/BF16 tensor to float32.
 * @return 0, or MP_EINPUT when the dtype is not a float type we read. */
int mp_convert_to_f32(mp_dtype dt, const void *src, size_t n, float *dst);

float mp_bf16_to_f32(uint16_t h);
float mp_f16_to_f32(uint16_t h);
uint16_t mp_f32_to_bf16(float f); /* round to nearest even */

#endif
