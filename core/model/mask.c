/* core/model/mask.c — expert mask set, JSON mask files (see mask.h). */
#include "core/util/file.h"
#include "core/model/mask.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t key_of(int r, int i, int j, int E) { return ((uint64_t)r << 40 | ((uint64_t)i * (uint64_t)E + (uint64_t)j)) + 1; }

static size_t hash_key(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k;
}

int mp_mask_create(int n_groups, int E, mp_mask **out, mp_error *err) {
    MP_FAIL_IF(n_groups <= 0 || E <= 0 || n_groups > MP_MASK_MAX_GROUPS || E > MP_MASK_MAX_EXPERTS ||
                   (uint64_t)n_groups * (uint64_t)E * (uint64_t)E > MP_MASK_MAX_TOTAL,
               err, MP_EINPUT, "mask: unsupported shape (%d groups, E=%d; limits %d groups, E <= %d, %llu experts)",
               n_groups, E, MP_MASK_MAX_GROUPS, MP_MASK_MAX_EXPERTS, (unsigned long long)MP_MASK_MAX_TOTAL);
    mp_mask *m = calloc(1, sizeof *m);
    if (!m) return mp_fail(err, MP_ENOMEM, "out of memory");
    m->n_groups = n_groups;
    m->E = E;
    m->cap = 64;
    m->slots = calloc(m->cap, sizeof *m->slots);
    m->row_any = calloc((size_t)n_groups * (size_t)E, 1);
    m->per_group = calloc((size_t)n_groups, sizeof *m->per_group);
    if (!m->slots || !m->row_any || !m->per_group) {
        mp_mask_free(m);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    *out = m;
    return 0;
}

void mp_mask_free(mp_mask *m) {
    if (!m) return;
    free(m->slots);
    free(m->row_any);
    free(m->per_group);
    free(m->criterion_json);
    free(m);
}

static size_t find_slot(const uint64_t *slots, size_t cap, uint64_t k) {
    size_t h = hash_key(k) & (cap - 1);
    while (slots[h] && slots[h] != k) h = (h + 1) & (cap - 1);
    return h;
}

int mp_mask_contains(const mp_mask *m, int r, int i, int j) {
    if (!m->row_any[(size_t)r * (size_t)m->E + (size_t)i]) return 0;
    uint64_t k = key_of(r, i, j, m->E);
    return m->slots[find_slot(m->slots, m->cap, k)] == k;
}

int mp_mask_add(mp_mask *m, int r, int i, int j, mp_error *err) {
    MP_FAIL_IF(r < 0 || r >= m->n_groups || i < 0 || i >= m->E || j < 0 || j >= m->E, err, MP_EINPUT,
               "expert %d:%d,%d is out of range (%d groups, E=%d)", r, i, j, m->n_groups, m->E);
    if ((m->count + 1) * 2 > m->cap) {
        size_t nc = m->cap * 2;
        uint64_t *ns = calloc(nc, sizeof *ns);
        if (!ns) return mp_fail(err, MP_ENOMEM, "out of memory");
        for (size_t s = 0; s < m->cap; s++)
            if (m->slots[s]) ns[find_slot(ns, nc, m->slots[s])] = m->slots[s];
        free(m->slots);
        m->slots = ns;
        m->cap = nc;
    }
    uint64_t k = key_of(r, i, j, m->E);
    size_t s = find_slot(m->slots, m->cap, k);
    if (m->slots[s] == k) return 0;
    m->slots[s] = k;
    m->count++;
    m->per_group[r]++;
    m->row_any[(size_t)r * (size_t)m->E + (size_t)i] = 1;
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int mp_mask_foreach(const mp_mask *m, mp_mask_visit_fn fn, void *ctx, mp_error *err) {
    uint64_t *keys = malloc((m->count ? m->count : 1) * sizeof *keys);
    if (!keys) return mp_fail(err, MP_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t s = 0; s < m->cap; s++)
        if (m->slots[s]) keys[n++] = m->slots[s] - 1;
    qsort(keys, n, sizeof *keys, cmp_u64);
    for (size_t k = 0; k < n; k++) {
        uint64_t flat = keys[k] & ((1ull << 40) - 1);
        fn(ctx, (int)(keys[k] >> 40), (int)(flat / (uint64_t)m->E), (int)(flat % (uint64_t)m->E));
    }
    free(keys);
    return 0;
}

static int json_int(const cJSON *v, long lo, long hi, long *out) {
    if (!cJSON_IsNumber(v) || floor(v->valuedouble) != v->valuedouble || v->valuedouble < lo || v->valuedouble > hi)
        return -1;
    *out = (long)v->valuedouble;
    return 0;
}

int mp_mask_load(const char *path, const mp_config *cfg, mp_mask **out, mp_error *err) {
    char *buf = NULL;
    size_t n = 0;
    MP_TRY(mp_file_read_all(path, (size_t)1 << 30, "a mask file", &buf, &n, err));
    int rc = mp_mask_parse(buf, n, path, cfg, out, err);
    free(buf);
    return rc;
}

int mp_mask_parse(const char *text, size_t n, const char *path, const mp_config *cfg, mp_mask **out, mp_error *err) {
    cJSON *root = cJSON_ParseWithLength(text, n);
    if (!root) return mp_fail(err, MP_EINPUT, "%s: mask is not valid JSON", path);
    int rc = 0;
    mp_mask *m = NULL;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(root, "groups");
    long E = 0, R = 0, version = 0;
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "monet-probe-mask")) {
        rc = mp_fail(err, MP_EINPUT, "%s: not a monet-probe mask (\"format\" must be \"monet-probe-mask\")", path);
        goto cleanup;
    }
    if (json_int(ver, 1, 1000, &version) || version != 1) {
        rc = mp_fail(err, MP_EINPUT, "%s: mask version %s is not supported (this monet-probe reads version 1)", path,
                     cJSON_IsNumber(ver) ? "newer" : "missing");
        goto cleanup;
    }
    if (!cJSON_IsObject(model) || json_int(cJSON_GetObjectItemCaseSensitive(model, "moe_experts"), 1, 1L << 40, &E) ||
        json_int(cJSON_GetObjectItemCaseSensitive(model, "n_groups"), 1, 1L << 40, &R)) {
        rc = mp_fail(err, MP_EINPUT, "%s: mask needs model.moe_experts and model.n_groups (positive integers)", path);
        goto cleanup;
    }
    /* bounded before anything is sized by them */
    if (E > MP_MASK_MAX_EXPERTS || R > MP_MASK_MAX_GROUPS) {
        rc = mp_fail(err, MP_EINPUT, "%s: model.%s = %ld exceeds the limit of %d", path,
                     E > MP_MASK_MAX_EXPERTS ? "moe_experts" : "n_groups", E > MP_MASK_MAX_EXPERTS ? E : R,
                     E > MP_MASK_MAX_EXPERTS ? MP_MASK_MAX_EXPERTS : MP_MASK_MAX_GROUPS);
        goto cleanup;
    }
    if ((uint64_t)R * (uint64_t)E * (uint64_t)E > MP_MASK_MAX_TOTAL) {
        rc = mp_fail(err, MP_EINPUT, "%s: %ld groups x %ld x %ld experts exceeds the limit of %llu experts", path, R, E,
                     E, (unsigned long long)MP_MASK_MAX_TOTAL);
        goto cleanup;
    }
    if (cfg && (E != cfg->moe_experts || R != cfg->n_router_groups)) {
        rc = mp_fail(err, MP_EINPUT, "%s: mask is for a model with E=%ld and %ld router groups, this model has E=%d and %d",
                     path, E, R, cfg->moe_experts, cfg->n_router_groups);
        goto cleanup;
    }
    if (!cJSON_IsArray(groups)) {
        rc = mp_fail(err, MP_EINPUT, "%s: mask needs a \"groups\" array", path);
        goto cleanup;
    }
    if ((rc = mp_mask_create((int)R, (int)E, &m, err)) < 0) goto cleanup;
    const cJSON *g;
    cJSON_ArrayForEach(g, groups) {
        long r;
        const cJSON *ex = cJSON_GetObjectItemCaseSensitive(g, "experts");
        if (json_int(cJSON_GetObjectItemCaseSensitive(g, "group"), 0, R - 1, &r) || !cJSON_IsArray(ex)) {
            rc = mp_fail(err, MP_EINPUT, "%s: each groups[] entry needs \"group\" in 0..%ld and an \"experts\" array",
                         path, R - 1);
            goto cleanup;
        }
        const cJSON *p;
        cJSON_ArrayForEach(p, ex) {
            long i, j;
            if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) != 2 || json_int(cJSON_GetArrayItem(p, 0), 0, E - 1, &i) ||
                json_int(cJSON_GetArrayItem(p, 1), 0, E - 1, &j)) {
                rc = mp_fail(err, MP_EINPUT, "%s: group %ld: experts must be [I, J] pairs with 0 <= I, J < %ld", path,
                             r, E);
                goto cleanup;
            }
            if ((rc = mp_mask_add(m, (int)r, (int)i, (int)j, err)) < 0) goto cleanup;
        }
    }
    const cJSON *crit = cJSON_GetObjectItemCaseSensitive(root, "criterion");
    if (crit) m->criterion_json = cJSON_PrintUnformatted(crit);
cleanup:
    cJSON_Delete(root);
    if (rc < 0) {
        mp_mask_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

typedef struct {
    FILE *f;
    int cur_group;
    size_t in_group;
    const mp_config *cfg;
} save_ctx;

static void open_group(save_ctx *s, int r) {
    fprintf(s->f, "%s\n    {\"group\": %d, ", s->cur_group >= 0 ? "]}," : "", r);
    if (s->cfg) {
        int a, b;
        mp_config_group_layers(s->cfg, r, &a, &b);
        fprintf(s->f, "\"layers\": [%d, %d], ", a, b);
    }
    fprintf(s->f, "\"experts\": [");
    s->cur_group = r;
    s->in_group = 0;
}

static void save_one(void *ctx, int r, int i, int j) {
    save_ctx *s = ctx;
    while (s->cur_group < r) open_group(s, s->cur_group + 1);
    fprintf(s->f, "%s[%d, %d]", s->in_group++ ? ", " : "", i, j);
}

int mp_mask_save(const mp_mask *m, const mp_config *cfg, const char *path, const char *model_path,
                 const char *criterion_json, mp_error *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return mp_fail(err, MP_EIO, "%s: cannot write mask: %s", path, strerror(errno));
    double total = (double)m->n_groups * (double)m->E * (double)m->E;
    fprintf(f, "{\"format\": \"monet-probe-mask\", \"version\": 1,\n \"model\": {\"path\": ");
    if (model_path) {
        cJSON *s = cJSON_CreateString(model_path);
        char *t = s ? cJSON_PrintUnformatted(s) : NULL;
        fputs(t ? t : "null", f);
        free(t);
        cJSON_Delete(s);
    } else {
        fputs("null", f);
    }
    fprintf(f, ", \"moe_experts\": %d, \"n_groups\": %d},\n \"criterion\": %s,\n \"groups\": [", m->E, m->n_groups,
            criterion_json ? criterion_json : (m->criterion_json ? m->criterion_json : "null"));
    save_ctx s = {f, -1, 0, cfg};
    if (mp_mask_foreach(m, save_one, &s, err) < 0) {
        fclose(f);
        return err->code;
    }
    while (s.cur_group < m->n_groups - 1) open_group(&s, s.cur_group + 1);
    fprintf(f, "]}\n ],\n \"masked\": %zu, \"total\": %.0f, \"ratio\": %.8f}\n", m->count, total,
            (double)m->count / total);
    if (fclose(f) != 0) return mp_fail(err, MP_EIO, "%s: write failed", path);
    return 0;
}
