/* core/model/model.h — a Monet model in host memory, ready for the CPU forward.
 *
 * The weight matrices (mp_weight, weight.h) are read in place from the
 * checkpoint's mapping when stored as BF16 or F32 (nothing is converted or
 * copied at load; the pages come in as the first forward touches them, the
 * kernel reading ahead); F16 tensors, unaligned ones, and every matrix when
 * MP_WEIGHTS=f32 is set (the previous behaviour, for comparison) are widened
 * into a float32 arena. Vectors (norms, biases, the B_i rows, router
 * statistics) are always float32 in the arena.
 *
 * Weights are row-major [out][in] exactly as stored (PyTorch nn.Linear), so a
 * projection y = W x over T tokens is sgemm(X[T][in], W^T).
 *
 * Ownership: mp_model_load allocates the model, its arena and keeps the
 * checkpoint mapped; every weight points into one of them and lives until
 * mp_model_free (NULL: no-op). lm_head aliases embed when
 * tie_word_embeddings is set. A checkpoint file truncated or rewritten in
 * place while a model is loaded from it is undefined (as for any mmap);
 * replacing it (a new file renamed over it) is safe.
 */
#ifndef MP_MODEL_H
#define MP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/model/config.h"
#include "core/model/weight.h"
#include "core/util/error.h"

typedef struct mp_layer {
    float *attn_norm;  /* [d] input_layernorm */
    mp_weight wq;        /* [H*hd][d] */
    mp_weight wk;        /* [KV*hd][d] */
    mp_weight wv;        /* [KV*hd][d] */
    mp_weight wo;        /* [d][H*hd] */
    float *ffn_norm;   /* [d] post_attention_layernorm */
    /* router: only in layers l with l % G == 0 (else absent: both NULL) */
    mp_weight router_w1; /* [Hm*E][d], rows head-major: row h*E+i */
    mp_weight router_w2; /* [Hm*E][d] */
    float *bn1_mean, *bn1_var; /* [Hm] BatchNorm running statistics of z1 */
    float *bn2_mean, *bn2_var; /* [Hm] */
    /* VD (vertical): m2 = m/2, dh = d/2 */
    mp_weight u1, u2;          /* [E*m2][d]; expert i owns rows i*m2.. */
    float *u1_bias, *u2_bias;  /* [E*m2] */
    mp_weight v11, v12, v21, v22; /* [dh][E*m2]; expert i owns columns i*m2.. */
    float *b1, *b2;            /* [E][dh] */
    /* HD (horizontal) */
    mp_weight u;               /* [E*m][d] */
    float *u_bias;             /* [E*m] */
    mp_weight v;               /* [d][E*m] */
    float *b;                  /* [E][d] */
} mp_layer;

typedef struct mp_model {
    mp_config cfg;
    char *dir;                 /* checkpoint directory (owned) */
    mp_weight embed;           /* [V][d] */
    float *final_norm;         /* [d] */
    mp_weight lm_head;         /* [V][d] (the same as embed when tied) */
    mp_layer *layers;          /* [L] */
    float *arena;              /* owns the float32 weights */
    size_t arena_floats;
    size_t inplace_bytes;      /* weight bytes read in place from the mapping */
    int has_bf16;              /* some matrix is bf16 (the forward needs widening scratch) */
    struct mp_checkpoint *ck;  /* kept mapped while weights point into it (owned) */
    size_t n_params;           /* float parameters in the checkpoint (router stats excluded) */
    size_t file_bytes;         /* bytes of the safetensors files */
    char weight_dtype[8];      /* dtype of the embedding tensor on disk */
} mp_model;

/* Load a checkpoint directory (config.json + safetensors). MP_WEIGHTS:
 * unset / "checkpoint" (matrices as stored, see above) or "f32" (every
 * matrix widened to float32); another value is MP_EINPUT.
 * @return 0, MP_EIO, MP_EINPUT ("<file>: <problem>") or MP_ENOMEM. */
int mp_model_load(const char *dir, mp_model **out, mp_error *err);
void mp_model_free(mp_model *m);

#endif
