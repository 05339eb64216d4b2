/* core/model/model.h — a Monet model in host memory: config plus every weight
 * converted to float32 once at load (one arena), ready for the CPU forward.
 *
 * Weights are row-major [out][in] exactly as stored (PyTorch nn.Linear), so a
 * projection y = W x over T tokens is sgemm(X[T][in], W^T).
 *
 * Ownership: mp_model_load allocates the model and its arena; every weight
 * pointer below points into the arena and lives until mp_model_free (NULL:
 * no-op). lm_head aliases embed when tie_word_embeddings is set.
 */
#ifndef MP_MODEL_H
#define MP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/model/config.h"
#include "core/util/error.h"

typedef struct mp_layer {
    float *attn_norm;  /* [d] input_layernorm */
    float *wq;         /* [H*hd][d] */
    float *wk;         /* [KV*hd][d] */
    float *wv;         /* [KV*hd][d] */
    float *wo;         /* [d][H*hd] */
    float *ffn_norm;   /* [d] post_attention_layernorm */
    /* router: only in layers l with l % G == 0 (else NULL) */
    float *router_w1;  /* [Hm*E][d], rows head-major: row h*E+i */
    float *router_w2;  /* [Hm*E][d] */
    float *bn1_mean, *bn1_var; /* [Hm] BatchNorm running statistics of z1 */
    float *bn2_mean, *bn2_var; /* [Hm] */
    /* VD (vertical): m2 = m/2, dh = d/2 */
    float *u1, *u1_bias;       /* [E*m2][d], [E*m2]; expert i owns rows i*m2.. */
    float *u2, *u2_bias;       /* [E*m2][d], [E*m2] */
    float *v11, *v12, *v21, *v22; /* [dh][E*m2] */
    float *b1, *b2;            /* [E][dh] */
    /* HD (horizontal) */
    float *u, *u_bias;         /* [E*m][d], [E*m] */
    float *v;                  /* [d][E*m] */
    float *b;                  /* [E][d] */
} mp_layer;

typedef struct mp_model {
    mp_config cfg;
    char *dir;                 /* checkpoint directory (owned) */
    float *embed;              /* [V][d] */
    float *final_norm;         /* [d] */
    float *lm_head;            /* [V][d] (== embed when tied) */
    mp_layer *layers;          /* [L] */
    float *arena;              /* owns all weights */
    size_t arena_floats;
    size_t n_params;           /* float parameters in the checkpoint (router stats excluded) */
    size_t file_bytes;         /* bytes of the safetensors files */
    char weight_dtype[8];      /* dtype of the embedding tensor on disk */
} mp_model;

/* Load a checkpoint directory (config.json + safetensors) into float32.
 * @return 0, MP_EIO, MP_EINPUT ("<file>: <problem>") or MP_ENOMEM. */
int mp_model_load(const char *dir, mp_model **out, mp_error *err);
void mp_model_free(mp_model *m);

#endif
