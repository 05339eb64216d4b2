/* core/model/config.c — config.json parsing and validation (see config.h). */
#include "core/util/file.h"
#include "core/model/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *mp_decompose_name(mp_decompose d) { return d == MP_VD ? "vertical" : "horizontal"; }

void mp_config_group_layers(const mp_config *cfg, int r, int *first, int *last) {
    *first = r * cfg->moe_groups;
    int l = *first + cfg->moe_groups - 1;
    *last = l < cfg->n_layers - 1 ? l : cfg->n_layers - 1;
}

/* The LAST member named key: a duplicated key means what Python's json (and so
 * transformers) reads, the last value, where cJSON's lookup returns the first. */
static const cJSON *member(const cJSON *obj, const char *key) {
    const cJSON *found = NULL, *c;
    cJSON_ArrayForEach(c, obj)
        if (c->string && !strcmp(c->string, key)) found = c;
    return found;
}

/* Integer key; required unless dflt_ok. Accepts JSON numbers that are integral. */
static int get_int(const cJSON *root, const char *key, int required, int dflt, long lo, long hi, const char *name,
                   int *out, mp_error *err) {
    const cJSON *v = member(root, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) return mp_fail(err, MP_EINPUT, "%s: missing required key \"%s\"", name, key);
        *out = dflt;
        return 0;
    }
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) v = cJSON_GetArrayItem(v, 0); /* eos lists */
    if (!cJSON_IsNumber(v) || floor(v->valuedouble) != v->valuedouble)
        return mp_fail(err, MP_EINPUT, "%s: \"%s\" must be an integer", name, key);
    if (v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return mp_fail(err, MP_EINPUT, "%s: \"%s\" = %.0f is out of range [%ld, %ld]", name, key, v->valuedouble, lo,
                       hi);
    *out = (int)v->valuedouble;
    return 0;
}

static int get_double(const cJSON *root, const char *key, double dflt, double lo, double hi, const char *name,
                      double *out, mp_error *err) {
    const cJSON *v = member(root, key);
    if (!v || cJSON_IsNull(v)) {
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
        return mp_fail(err, MP_EINPUT, "%s: \"%s\" must be a number in [%g, %g]", name, key, lo, hi);
    *out = v->valuedouble;
    return 0;
}

static const char *get_string(const cJSON *root, const char *key) {
    const cJSON *v = member(root, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int check_fields(const cJSON *root, const char *name, mp_config *c, mp_error *err) {
    const int BIG = 1 << 24;
    MP_TRY(get_int(root, "vocab_size", 1, 0, 1, 1 << 22, name, &c->vocab_size, err));
    MP_TRY(get_int(root, "hidden_size", 1, 0, 1, 1 << 17, name, &c->hidden_size, err));
    MP_TRY(get_int(root, "num_hidden_layers", 1, 0, 1, 4096, name, &c->n_layers, err));
    MP_TRY(get_int(root, "num_attention_heads", 1, 0, 1, 4096, name, &c->n_heads, err));
    MP_TRY(get_int(root, "num_key_value_heads", 0, c->n_heads, 1, 4096, name, &c->n_kv_heads, err));
    MP_TRY(get_int(root, "head_dim", 0, 0, 1, 1 << 14, name, &c->head_dim, err));
    MP_TRY(get_double(root, "rms_norm_eps", 1e-6, 0.0, 1.0, name, &c->rms_norm_eps, err));
    MP_TRY(get_double(root, "rope_theta", 10000.0, 1e-9, 1e30, name, &c->rope_theta, err));
    MP_TRY(get_int(root, "max_position_embeddings", 0, 2048, 1, BIG, name, &c->max_position_embeddings, err));
    MP_TRY(get_int(root, "bos_token_id", 0, -1, -1, 1 << 22, name, &c->bos_token_id, err));
    MP_TRY(get_int(root, "eos_token_id", 0, -1, -1, 1 << 22, name, &c->eos_token_id, err));
    MP_TRY(get_int(root, "moe_experts", 1, 0, 1, MP_CONFIG_MAX_MOE_EXPERTS, name, &c->moe_experts, err));
    MP_TRY(get_int(root, "moe_heads", 1, 0, 1, 1024, name, &c->moe_heads, err));
    MP_TRY(get_int(root, "moe_dim", 1, 0, 1, 1 << 16, name, &c->moe_dim, err));
    MP_TRY(get_int(root, "moe_topk", 1, 0, 1, 1 << 16, name, &c->moe_topk, err));
    MP_TRY(get_int(root, "moe_groups", 1, 0, 1, 4096, name, &c->moe_groups, err));
    const cJSON *tie = member(root, "tie_word_embeddings");
    if (tie && !cJSON_IsNull(tie) && !cJSON_IsBool(tie))
        return mp_fail(err, MP_EINPUT, "%s: \"tie_word_embeddings\" must be true or false", name);
    c->tie_word_embeddings = cJSON_IsTrue(tie);

    const char *dec = get_string(root, "moe_decompose");
    if (!dec) return mp_fail(err, MP_EINPUT, "%s: missing required key \"moe_decompose\"", name);
    if (!strcmp(dec, "vertical")) c->decompose = MP_VD;
    else if (!strcmp(dec, "horizontal")) c->decompose = MP_HD;
    else
        return mp_fail(err, MP_EINPUT, "%s: unknown moe_decompose \"%.40s\" (expected \"vertical\" or \"horizontal\")",
                       name, dec);
    const char *act = get_string(root, "hidden_act");
    if (act && strcmp(act, "relu2"))
        return mp_fail(err, MP_EINPUT, "%s: hidden_act \"%.40s\" is not supported (Monet uses \"relu2\")", name, act);
    const cJSON *rs = member(root, "rope_scaling");
    if (rs && !cJSON_IsNull(rs))
        return mp_fail(err, MP_EINPUT, "%s: rope_scaling is not supported (expected null)", name);
    const cJSON *ab = member(root, "attention_bias");
    if (ab && cJSON_IsTrue(ab))
        return mp_fail(err, MP_EINPUT,
                       "%s: attention_bias true is not supported (the q/k/v/o projection biases would be ignored; "
                       "the public Monet checkpoints use false)", name);
    const char *td = get_string(root, "torch_dtype");
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "%s", td ? td : "unknown");
    return 0;
}

static int check_consistency(const char *name, mp_config *c, mp_error *err) {
    if (!c->head_dim) {
        MP_FAIL_IF(c->hidden_size % c->n_heads, err, MP_EINPUT,
                   "%s: hidden_size %d is not divisible by num_attention_heads %d", name, c->hidden_size, c->n_heads);
        c->head_dim = c->hidden_size / c->n_heads;
    }
    MP_FAIL_IF(c->head_dim % 2, err, MP_EINPUT, "%s: head_dim %d must be even for rotary embeddings", name,
               c->head_dim);
    MP_FAIL_IF(c->n_heads % c->n_kv_heads, err, MP_EINPUT,
               "%s: num_attention_heads %d is not divisible by num_key_value_heads %d", name, c->n_heads,
               c->n_kv_heads);
    MP_FAIL_IF(c->moe_topk >= c->moe_experts, err, MP_EINPUT, "%s: moe_topk %d must be smaller than moe_experts %d",
               name, c->moe_topk, c->moe_experts);
    if (c->decompose == MP_VD) {
        MP_FAIL_IF(c->hidden_size % 2, err, MP_EINPUT, "%s: vertical decomposition needs an even hidden_size (got %d)",
                   name, c->hidden_size);
        MP_FAIL_IF(c->moe_dim % 2, err, MP_EINPUT, "%s: vertical decomposition needs an even moe_dim (got %d)", name,
                   c->moe_dim);
    }
    MP_FAIL_IF(c->bos_token_id >= c->vocab_size || c->eos_token_id >= c->vocab_size, err, MP_EINPUT,
               "%s: bos/eos token id outside vocab_size %d", name, c->vocab_size);
    c->n_router_groups = (c->n_layers + c->moe_groups - 1) / c->moe_groups;
    MP_FAIL_IF(c->n_router_groups > MP_CONFIG_MAX_ROUTER_GROUPS, err, MP_EINPUT,
               "%s: %d router groups (num_hidden_layers %d / moe_groups %d) exceeds the limit of %d", name,
               c->n_router_groups, c->n_layers, c->moe_groups, MP_CONFIG_MAX_ROUTER_GROUPS);
    return 0;
}

int mp_config_parse(const char *json, size_t len, const char *name, mp_config *cfg, mp_error *err) {
    memset(cfg, 0, sizeof *cfg);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return mp_fail(err, MP_EINPUT, "%s: not valid JSON", name);
    int rc;
    if (!cJSON_IsObject(root)) rc = mp_fail(err, MP_EINPUT, "%s: top level is not a JSON object", name);
    else rc = check_fields(root, name, cfg, err);
    if (rc == 0) rc = check_consistency(name, cfg, err);
    cJSON_Delete(root);
    return rc;
}

int mp_config_load(const char *path, mp_config *cfg, mp_error *err) {
    FILE *f = NULL;
    MP_TRY(mp_file_fopen_regular(path, &f, NULL, err));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (n + 4096 > cap) {
            cap = cap ? cap * 2 : 16384;
            if (cap > (64u << 20)) {
                rc = mp_fail(err, MP_EINPUT, "%s: larger than 64 MiB, not a config.json", path);
                break;
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                rc = mp_fail(err, MP_ENOMEM, "out of memory");
                break;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (rc == 0 && ferror(f)) rc = mp_fail(err, MP_EIO, "%s: read error", path);
    fclose(f);
    if (rc == 0) rc = mp_config_parse(buf ? buf : "", n, path, cfg, err);
    free(buf);
    return rc;
}
