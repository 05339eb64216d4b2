/* core/model/safetensors.c — mmap + strict validation of .safetensors files, and
 * float conversion of F32/F16/BF16 data (see safetensors.h). */
#include "core/util/file.h"
#include "core/model/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *name;
    mp_dtype dt;
    size_t size;
} DTYPES[] = {
    {"F64", MP_DT_F64, 8},   {"F32", MP_DT_F32, 4},     {"F16", MP_DT_F16, 2},
    {"BF16", MP_DT_BF16, 2}, {"I64", MP_DT_I64, 8},     {"I32", MP_DT_I32, 4},
    {"I16", MP_DT_I16, 2},   {"I8", MP_DT_I8, 1},       {"U8", MP_DT_U8, 1},
    {"BOOL", MP_DT_BOOL, 1}, {"F8_E4M3", MP_DT_F8_E4M3, 1}, {"F8_E5M2", MP_DT_F8_E5M2, 1},
    {"U16", MP_DT_U16, 2},   {"U32", MP_DT_U32, 4},     {"U64", MP_DT_U64, 8},
};

const char *mp_dtype_name(mp_dtype dt) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (DTYPES[i].dt == dt) return DTYPES[i].name;
    return "?";
}

size_t mp_dtype_size(mp_dtype dt) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (DTYPES[i].dt == dt) return DTYPES[i].size;
    return 0;
}

static int dtype_from_name(const char *s, mp_dtype *dt) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (!strcmp(DTYPES[i].name, s)) {
            *dt = DTYPES[i].dt;
            return 0;
        }
    return -1;
}

float mp_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

uint16_t mp_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN stays NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float mp_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalize */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 112u) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

int mp_convert_to_f32(mp_dtype dt, const void *src, size_t n, float *dst) {
    const unsigned char *p = src;
    switch (dt) {
    case MP_DT_F32: memcpy(dst, src, n * sizeof(float)); return 0;
    case MP_DT_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = mp_bf16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        return 0;
    case MP_DT_F16:
        for (size_t i = 0; i < n; i++) dst[i] = mp_f16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        return 0;
    default: return MP_EINPUT;
    }
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const mp_st_tensor *)a)->name, ((const mp_st_tensor *)b)->name);
}

typedef struct {
    size_t begin, end;
    size_t index;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : (x->end > y->end);
}

/* Read a JSON number that must be a non-negative integer < 2^53. */
static int json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int parse_header(mp_safetensors *st, mp_error *err) {
    const unsigned char *base = st->map;
    const char *path = st->path;
    if (st->size < 8)
        return mp_fail(err, MP_EINPUT, "%s: file is %zu bytes, shorter than the 8-byte safetensors header length",
                       path, st->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | base[i];
    if (hlen > st->size - 8)
        return mp_fail(err, MP_EINPUT,
                       "%s: safetensors header length %llu runs past the end of the file (%zu bytes)", path,
                       (unsigned long long)hlen, st->size);
    if (hlen < 2) return mp_fail(err, MP_EINPUT, "%s: safetensors header is empty", path);
    size_t data_start = 8 + (size_t)hlen;
    size_t data_size = st->size - data_start;

    cJSON *root = cJSON_ParseWithLength((const char *)base + 8, (size_t)hlen);
    if (!root) return mp_fail(err, MP_EINPUT, "%s: safetensors header is not valid JSON", path);
    int rc = 0;
    span *spans = NULL;
    if (!cJSON_IsObject(root)) {
        rc = mp_fail(err, MP_EINPUT, "%s: safetensors header is not a JSON object", path);
        goto cleanup;
    }
    size_t count = 0;
    for (cJSON *e = root->child; e; e = e->next)
        if (strcmp(e->string, "__metadata__")) count++;
    st->tensors = calloc(count ? count : 1, sizeof *st->tensors);
    spans = calloc(count ? count : 1, sizeof *spans);
    if (!st->tensors || !spans) {
        rc = mp_fail(err, MP_ENOMEM, "%s: out of memory reading the header", path);
        goto cleanup;
    }
    for (cJSON *e = root->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) continue;
        mp_st_tensor *t = &st->tensors[st->n];
        t->name = strdup(e->string);
        if (!t->name) {
            rc = mp_fail(err, MP_ENOMEM, "out of memory");
            goto cleanup;
        }
        st->n++;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsObject(e) || !cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) ||
            cJSON_GetArraySize(offs) != 2) {
            rc = mp_fail(err, MP_EINPUT, "%s: tensor '%s': header entry needs dtype, shape and data_offsets[2]",
                         path, t->name);
            goto cleanup;
        }
        if (dtype_from_name(dt->valuestring, &t->dtype)) {
            rc = mp_fail(err, MP_EINPUT, "%s: tensor '%s': unknown dtype '%.20s'", path, t->name, dt->valuestring);
            goto cleanup;
        }
        int nd = cJSON_GetArraySize(shape);
        if (nd > MP_ST_MAX_DIMS) {
            rc = mp_fail(err, MP_EINPUT, "%s: tensor '%s': %d dimensions (at most %d supported)", path, t->name,
                         nd, MP_ST_MAX_DIMS);
            goto cleanup;
        }
        t->ndim = nd;
        size_t numel = 1;
        int overflow = 0;
        for (int d = 0; d < nd; d++) {
            uint64_t v;
            if (json_uint(cJSON_GetArrayItem(shape, d), &v)) {
                rc = mp_fail(err, MP_EINPUT, "%s: tensor '%s': shape[%d] is not a non-negative integer", path,
                             t->name, d);
                goto cleanup;
            }
            t->shape[d] = (int64_t)v;
            if (v && numel > SIZE_MAX / v) overflow = 1;
            numel *= (size_t)v;
        }
        uint64_t b, en;
        if (json_uint(cJSON_GetArrayItem(offs, 0), &b) || json_uint(cJSON_GetArrayItem(offs, 1), &en) || b > en) {
            rc = mp_fail(err, MP_EINPUT, "%s: tensor '%s': data_offsets must be integers with begin <= end", path,
                         t->name);
            goto cleanup;
        }
        if (en > data_size) {
            rc = mp_fail(err, MP_EINPUT,
                         "%s: tensor '%s': data_offsets [%llu, %llu] out of range (data section is %zu bytes; "
                         "file truncated?)",
                         path, t->name, (unsigned long long)b, (unsigned long long)en, data_size);
            goto cleanup;
        }
        size_t esz = mp_dtype_size(t->dtype);
        if (overflow || numel > SIZE_MAX / esz || numel * esz != en - b) {
            rc = mp_fail(err, MP_EINPUT, "%s: tensor '%s': %llu data bytes do not match shape x %s size", path,
                         t->name, (unsigned long long)(en - b), mp_dtype_name(t->dtype));
            goto cleanup;
        }
        t->numel = numel;
        t->nbytes = (size_t)(en - b);
        t->data = base + data_start + b;
        spans[st->n - 1] = (span){(size_t)b, (size_t)en, st->n - 1};
    }
    /* overlapping data regions mean a corrupt or forged header */
    qsort(spans, st->n, sizeof *spans, cmp_span);
    for (size_t i = 1; i < st->n; i++) {
        if (spans[i].begin < spans[i - 1].end && spans[i].end > spans[i].begin) {
            rc = mp_fail(err, MP_EINPUT, "%s: tensors '%s' and '%s' have overlapping data_offsets", path,
                         st->tensors[spans[i - 1].index].name, st->tensors[spans[i].index].name);
            goto cleanup;
        }
    }
    qsort(st->tensors, st->n, sizeof *st->tensors, cmp_tensor_name);
    for (size_t i = 1; i < st->n; i++)
        if (!strcmp(st->tensors[i].name, st->tensors[i - 1].name)) {
            rc = mp_fail(err, MP_EINPUT, "%s: tensor '%s' appears twice in the header", path, st->tensors[i].name);
            goto cleanup;
        }
cleanup:
    free(spans);
    cJSON_Delete(root);
    return rc;
}

static int finish_open(mp_safetensors *st, mp_safetensors **out, mp_error *err) {
    int rc = parse_header(st, err);
    if (rc < 0) {
        mp_safetensors_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

int mp_safetensors_open_memory(const void *buf, size_t len, const char *name, mp_safetensors **out,
                               mp_error *err) {
    mp_safetensors *st = calloc(1, sizeof *st);
    if (!st) return mp_fail(err, MP_ENOMEM, "out of memory");
    st->path = strdup(name ? name : "<memory>");
    st->map = (void *)buf;
    st->size = len;
    st->owns_map = 0;
    if (!st->path) {
        free(st);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    return finish_open(st, out, err);
}

int mp_safetensors_open(const char *path, mp_safetensors **out, mp_error *err) {
    int fd;
    int64_t fsize;
    MP_TRY(mp_file_open_regular(path, &fd, &fsize, err)); /* a FIFO must not block the open */
    size_t size = (size_t)fsize;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return mp_fail(err, MP_EIO, "%s: mmap failed: %s", path, strerror(e));
        }
    }
    close(fd);
    mp_safetensors *st = calloc(1, sizeof *st);
    if (!st) {
        if (map) munmap(map, size);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    st->path = strdup(path);
    st->map = map;
    st->size = size;
    st->owns_map = 1;
    if (!st->path) {
        mp_safetensors_close(st);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    return finish_open(st, out, err);
}

void mp_safetensors_close(mp_safetensors *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n; i++) free(st->tensors[i].name);
    free(st->tensors);
    if (st->owns_map && st->map) munmap(st->map, st->size);
    free(st->path);
    free(st);
}

const mp_st_tensor *mp_safetensors_find(const mp_safetensors *st, const char *name) {
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->tensors[mid].name, name);
        if (c == 0) return &st->tensors[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}
