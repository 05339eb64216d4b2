/* core/model/config.h — the Monet config.json (Hugging Face layout), parsed and
 * checked for consistency. Keys: DESIGN.md §2. */
#ifndef MP_CONFIG_H
#define MP_CONFIG_H

#include <stddef.h>

#include "core/util/error.h"

/* Shape limits (also what stores and masks accept; Monet uses E = 512). */
#define MP_CONFIG_MAX_MOE_EXPERTS 4096
#define MP_CONFIG_MAX_ROUTER_GROUPS 255

typedef enum { MP_VD = 0, MP_HD = 1 } mp_decompose; /* "vertical" | "horizontal" */

typedef struct mp_config {
    int vocab_size;
    int hidden_size;        /* d */
    int n_layers;           /* L */
    int n_heads;            /* attention heads */
    int n_kv_heads;         /* GQA: n_heads % n_kv_heads == 0 */
    int head_dim;           /* d / n_heads unless config gives head_dim */
    double rms_norm_eps;
    double rope_theta;
    int max_position_embeddings;
    int bos_token_id, eos_token_id; /* -1 when absent */
    int tie_word_embeddings;
    int moe_experts;        /* E, per factor: E^2 experts per router group */
    int moe_heads;          /* Hm */
    int moe_dim;            /* m */
    int moe_topk;           /* k */
    int moe_groups;         /* G: a router every G layers */
    mp_decompose decompose;
    char torch_dtype[16];
    int n_router_groups;    /* ceil(L / G) */
} mp_config;

/* Parse config.json text. name is used in messages ("<name>: <problem>").
 * A duplicated key takes its last value, as Python's json does.
 * @return 0 or MP_EINPUT (invalid JSON, missing/ill-typed key, unknown
 *         moe_decompose or hidden_act, non-integer divisions, ...). */
int mp_config_parse(const char *json, size_t len, const char *name, mp_config *cfg, mp_error *err);

/* Read and parse a config.json file. @return 0, MP_EIO or MP_EINPUT. */
int mp_config_load(const char *path, mp_config *cfg, mp_error *err);

/* First and last layer (inclusive) covered by router group r. */
void mp_config_group_layers(const mp_config *cfg, int r, int *first, int *last);

const char *mp_decompose_name(mp_decompose d);

#endif
