/* core/eval/roberta.h — a RoBERTa sequence classifier (Hugging Face
 * RobertaForSequenceClassification layout, e.g. ToxiGen-RoBERTa) on the CPU
 * in float32 with OpenBLAS, plus its byte-level BPE tokenizer.
 *
 * Directory: config.json (vocab_size, hidden_size, num_hidden_layers,
 * num_attention_heads, intermediate_size, max_position_embeddings,
 * type_vocab_size, layer_norm_eps, pad_token_id, bos_token_id, eos_token_id,
 * hidden_act "gelu" | "gelu_new" | "relu", id2label), model.safetensors
 * (F32/F16/BF16; names with or without the "roberta." prefix), vocab.json,
 * merges.txt.
 *
 * Forward (one unpadded sequence, as HF computes it):
 *   pos_t = padding_idx + 1 + t for non-pad tokens (padding_idx for pad ids),
 *   x = LN(word[id] + pos_emb[pos] + type_emb[0]);
 *   per layer (post-LN): x = LN(x + O(softmax(QK^T/sqrt(dh)) V)); x = LN(x + W2 act(W1 x));
 *   logits = out_proj(tanh(dense(x[0])))   (the <s> token).
 *
 * Ownership: mp_roberta_load copies every weight into owned float32 arrays
 * (the safetensors mapping is closed before returning); mp_roberta_free(NULL)
 * is a no-op. One mp_roberta must not be used by two threads at once (scratch).
 */
#ifndef MP_ROBERTA_H
#define MP_ROBERTA_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"

typedef struct mp_roberta_config {
    int vocab_size, hidden, n_layers, n_heads, intermediate;
    int max_position_embeddings, type_vocab_size;
    int pad_id, bos_id, eos_id;
    int n_labels;
    int act;                 /* 0 gelu (erf), 1 gelu_new (tanh approximation), 2 relu */
    double ln_eps;
    char **labels;           /* [n_labels] id2label names ("LABEL_0" when absent), owned */
} mp_roberta_config;

typedef struct mp_roberta mp_roberta;

/* Load a model directory. @return 0, MP_EIO (missing file), MP_EINPUT
 * (malformed config, missing tensor, wrong shape: the message names it) or
 * MP_ENOMEM. */
int mp_roberta_load(const char *dir, mp_roberta **out, mp_error *err);
void mp_roberta_free(mp_roberta *m);

const mp_roberta_config *mp_roberta_cfg(const mp_roberta *m);

/* Index of a label given as an id2label name ("LABEL_1", "toxic") or a
 * decimal index; -1 when there is none. */
int mp_roberta_label_index(const mp_roberta *m, const char *label);

/* Tokens of text as the model sees them: <s> BPE(text) </s>, the BPE part
 * truncated so the whole fits max_position_embeddings - pad_id - 1 (512 for
 * RoBERTa). *ids is malloc'ed. @return 0, MP_EINPUT or MP_ENOMEM. */
int mp_roberta_encode(const mp_roberta *m, const char *text, size_t len, int32_t **ids, size_t *n, mp_error *err);

/* Classifier logits [n_labels] for one sequence of n token ids (1 <= n <=
 * max length). @return 0, MP_EINPUT (bad id or length) or MP_ENOMEM. */
int mp_roberta_logits(mp_roberta *m, const int32_t *ids, size_t n, float *logits, mp_error *err);

/* softmax(logits(encode(text)))[label]: the probability of one label. */
int mp_roberta_prob(mp_roberta *m, const char *text, size_t len, int label, double *prob, mp_error *err);

#endif
