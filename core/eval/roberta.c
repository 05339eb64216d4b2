/* core/eval/roberta.c — RobertaForSequenceClassification forward in float32 (see
 * roberta.h). Dense layers are row-major [T][in] x W^T with W stored [out][in]
 * as in PyTorch, computed by cblas_sgemm; LayerNorm, softmax and GELU in
 * plain loops with double accumulators where sums are long. */
#include "core/eval/roberta.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/text/bpe_bytelevel.h"
#include "core/model/safetensors.h"

typedef struct {
    float *wq, *bq, *wk, *bk, *wv, *bv; /* [d][d], [d] */
    float *wo, *bo;                     /* attention.output.dense [d][d], [d] */
    float *ln1_w, *ln1_b;               /* attention.output.LayerNorm [d] */
    float *wi, *bi;                     /* intermediate.dense [ff][d], [ff] */
    float *wo2, *bo2;                   /* output.dense [d][ff], [d] */
    float *ln2_w, *ln2_b;               /* output.LayerNorm [d] */
} rb_layer;

struct mp_roberta {
    mp_roberta_config cfg;
    mp_bbpe *bpe;
    float *word;          /* [vocab][d] */
    float *pos;           /* [max_pos][d] */
    float *type;          /* [type_vocab][d] */
    float *emb_ln_w, *emb_ln_b; /* [d] */
    rb_layer *layers;     /* [n_layers] */
    float *cls_w, *cls_b; /* classifier.dense [d][d], [d] */
    float *out_w, *out_b; /* classifier.out_proj [n_labels][d], [n_labels] */
    /* scratch, grown to the longest sequence seen */
    size_t cap_t;
    float *x, *q, *k, *v, *ctx, *tmp, *ff, *att; /* [T][d] x6, [T][ff], [T] */
};

/* ---- loading ------------------------------------------------------------------------ */

static int cfg_int(const cJSON *root, const char *key, int required, int dflt, int lo, int hi, const char *path,
                   int *out, mp_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        MP_FAIL_IF(required, err, MP_EINPUT, "%s: missing required key \"%s\"", path, key);
        *out = dflt;
        return 0;
    }
    MP_FAIL_IF(!cJSON_IsNumber(v) || floor(v->valuedouble) != v->valuedouble || v->valuedouble < lo ||
                   v->valuedouble > hi,
               err, MP_EINPUT, "%s: \"%s\" must be an integer in [%d, %d]", path, key, lo, hi);
    *out = (int)v->valuedouble;
    return 0;
}

static int parse_config(const char *path, mp_roberta_config *c, mp_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return mp_fail(err, MP_EIO, "%s: cannot open", path);
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *root = cJSON_Parse(buf);
    int rc = 0;
    if (!root || !cJSON_IsObject(root)) {
        rc = mp_fail(err, MP_EINPUT, "%s: not a JSON object (or larger than 64 KiB)", path);
        goto cleanup;
    }
    if ((rc = cfg_int(root, "vocab_size", 1, 0, 1, 1 << 22, path, &c->vocab_size, err)) < 0 ||
        (rc = cfg_int(root, "hidden_size", 1, 0, 1, 1 << 15, path, &c->hidden, err)) < 0 ||
        (rc = cfg_int(root, "num_hidden_layers", 1, 0, 1, 1024, path, &c->n_layers, err)) < 0 ||
        (rc = cfg_int(root, "num_attention_heads", 1, 0, 1, 1024, path, &c->n_heads, err)) < 0 ||
        (rc = cfg_int(root, "intermediate_size", 1, 0, 1, 1 << 17, path, &c->intermediate, err)) < 0 ||
        (rc = cfg_int(root, "max_position_embeddings", 0, 514, 3, 1 << 16, path, &c->max_position_embeddings,
                      err)) < 0 ||
        (rc = cfg_int(root, "type_vocab_size", 0, 1, 1, 1024, path, &c->type_vocab_size, err)) < 0 ||
        (rc = cfg_int(root, "pad_token_id", 0, 1, 0, 1 << 22, path, &c->pad_id, err)) < 0 ||
        (rc = cfg_int(root, "bos_token_id", 0, 0, 0, 1 << 22, path, &c->bos_id, err)) < 0 ||
        (rc = cfg_int(root, "eos_token_id", 0, 2, 0, 1 << 22, path, &c->eos_id, err)) < 0)
        goto cleanup;
    if (c->hidden % c->n_heads) {
        rc = mp_fail(err, MP_EINPUT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path,
                     c->hidden, c->n_heads);
        goto cleanup;
    }
    if (c->pad_id + 2 >= c->max_position_embeddings) {
        rc = mp_fail(err, MP_EINPUT, "%s: max_position_embeddings %d leaves no position after pad_token_id %d", path,
                     c->max_position_embeddings, c->pad_id);
        goto cleanup;
    }
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_eps");
    c->ln_eps = cJSON_IsNumber(eps) ? eps->valuedouble : 1e-5;
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    const char *a = cJSON_IsString(act) ? act->valuestring : "gelu";
    if (!strcmp(a, "gelu")) c->act = 0;
    else if (!strcmp(a, "gelu_new") || !strcmp(a, "gelu_pytorch_tanh")) c->act = 1;
    else if (!strcmp(a, "relu")) c->act = 2;
    else {
        rc = mp_fail(err, MP_EUNSUPPORTED, "%s: hidden_act \"%s\" is not supported (gelu, gelu_new, relu)", path, a);
        goto cleanup;
    }
    /* labels: id2label when present; n_labels is checked against out_proj later */
    const cJSON *id2 = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    const cJSON *nl = cJSON_GetObjectItemCaseSensitive(root, "num_labels");
    int n_labels = cJSON_IsObject(id2) ? cJSON_GetArraySize(id2) : cJSON_IsNumber(nl) ? nl->valueint : 2;
    if (n_labels < 1 || n_labels > 4096) {
        rc = mp_fail(err, MP_EINPUT, "%s: %d labels", path, n_labels);
        goto cleanup;
    }
    c->n_labels = n_labels;
    c->labels = calloc((size_t)n_labels, sizeof *c->labels);
    if (!c->labels) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (int i = 0; i < n_labels; i++) {
        char key[32], dflt[32];
        snprintf(key, sizeof key, "%d", i);
        snprintf(dflt, sizeof dflt, "LABEL_%d", i);
        const cJSON *v = cJSON_IsObject(id2) ? cJSON_GetObjectItemCaseSensitive(id2, key) : NULL;
        if (cJSON_IsObject(id2) && !cJSON_IsString(v)) {
            rc = mp_fail(err, MP_EINPUT, "%s: id2label has no string for label %d", path, i);
            goto cleanup;
        }
        c->labels[i] = strdup(v ? v->valuestring : dflt);
        if (!c->labels[i]) {
            rc = mp_fail(err, MP_ENOMEM, "out of memory");
            goto cleanup;
        }
    }
cleanup:
    cJSON_Delete(root);
    return rc;
}

/* Copy tensor `name` (tried with and without the "roberta." prefix) of the
 * given shape into a new float32 array. */
static int get_tensor(const mp_safetensors *st, const char *name, int64_t d0, int64_t d1, float **out,
                      mp_error *err) {
    char full[256];
    snprintf(full, sizeof full, "roberta.%s", name);
    const mp_st_tensor *t = mp_safetensors_find(st, full);
    if (!t && !(t = mp_safetensors_find(st, name)))
        return mp_fail(err, MP_EINPUT, "%s: missing tensor \"%s\"", st->path, full);
    int ndim = d1 ? 2 : 1;
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        if (ndim == 2)
            return mp_fail(err, MP_EINPUT, "%s: tensor \"%s\" should have shape [%lld, %lld]", st->path, t->name,
                           (long long)d0, (long long)d1);
        return mp_fail(err, MP_EINPUT, "%s: tensor \"%s\" should have shape [%lld]", st->path, t->name,
                       (long long)d0);
    }
    float *f = malloc(t->numel * sizeof *f);
    if (!f) return mp_fail(err, MP_ENOMEM, "out of memory (%s)", t->name);
    if (mp_convert_to_f32(t->dtype, t->data, t->numel, f) < 0) {
        free(f);
        return mp_fail(err, MP_EINPUT, "%s: tensor \"%s\" has dtype %s (expected F32, F16 or BF16)", st->path,
                       t->name, mp_dtype_name(t->dtype));
    }
    *out = f;
    return 0;
}

static int load_weights(mp_roberta *m, const mp_safetensors *st, mp_error *err) {
    const mp_roberta_config *c = &m->cfg;
    int64_t d = c->hidden, ff = c->intermediate;
    MP_TRY(get_tensor(st, "embeddings.word_embeddings.weight", c->vocab_size, d, &m->word, err));
    MP_TRY(get_tensor(st, "embeddings.position_embeddings.weight", c->max_position_embeddings, d, &m->pos, err));
    MP_TRY(get_tensor(st, "embeddings.token_type_embeddings.weight", c->type_vocab_size, d, &m->type, err));
    MP_TRY(get_tensor(st, "embeddings.LayerNorm.weight", d, 0, &m->emb_ln_w, err));
    MP_TRY(get_tensor(st, "embeddings.LayerNorm.bias", d, 0, &m->emb_ln_b, err));
    for (int l = 0; l < c->n_layers; l++) {
        rb_layer *L = &m->layers[l];
        char n[160];
#define LT(field, suffix, a, b)                                                    \
    do {                                                                           \
        snprintf(n, sizeof n, "encoder.layer.%d.%s", l, suffix);                   \
        MP_TRY(get_tensor(st, n, a, b, &L->field, err));                           \
    } while (0)
        LT(wq, "attention.self.query.weight", d, d);
        LT(bq, "attention.self.query.bias", d, 0);
        LT(wk, "attention.self.key.weight", d, d);
        LT(bk, "attention.self.key.bias", d, 0);
        LT(wv, "attention.self.value.weight", d, d);
        LT(bv, "attention.self.value.bias", d, 0);
        LT(wo, "attention.output.dense.weight", d, d);
        LT(bo, "attention.output.dense.bias", d, 0);
        LT(ln1_w, "attention.output.LayerNorm.weight", d, 0);
        LT(ln1_b, "attention.output.LayerNorm.bias", d, 0);
        LT(wi, "intermediate.dense.weight", ff, d);
        LT(bi, "intermediate.dense.bias", ff, 0);
        LT(wo2, "output.dense.weight", d, ff);
        LT(bo2, "output.dense.bias", d, 0);
        LT(ln2_w, "output.LayerNorm.weight", d, 0);
        LT(ln2_b, "output.LayerNorm.bias", d, 0);
#undef LT
    }
    /* the head is outside "roberta."; get_tensor falls back to the bare name */
    MP_TRY(get_tensor(st, "classifier.dense.weight", d, d, &m->cls_w, err));
    MP_TRY(get_tensor(st, "classifier.dense.bias", d, 0, &m->cls_b, err));
    MP_TRY(get_tensor(st, "classifier.out_proj.weight", c->n_labels, d, &m->out_w, err));
    MP_TRY(get_tensor(st, "classifier.out_proj.bias", c->n_labels, 0, &m->out_b, err));
    return 0;
}

int mp_roberta_load(const char *dir, mp_roberta **out, mp_error *err) {
    *out = NULL;
    char path[4096];
    mp_safetensors *st = NULL;
    int rc = 0;
    mp_roberta *m = calloc(1, sizeof *m);
    if (!m) return mp_fail(err, MP_ENOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/config.json", dir);
    if ((rc = parse_config(path, &m->cfg, err)) < 0) goto cleanup;
    char vpath[4096], mpath[4096];
    snprintf(vpath, sizeof vpath, "%s/vocab.json", dir);
    snprintf(mpath, sizeof mpath, "%s/merges.txt", dir);
    if ((rc = mp_bbpe_load(vpath, mpath, &m->bpe, err)) < 0) goto cleanup;
    if (mp_bbpe_vocab_size(m->bpe) > m->cfg.vocab_size) {
        rc = mp_fail(err, MP_EINPUT, "%s: vocab.json has ids up to %d but config.json vocab_size is %d", dir,
                     mp_bbpe_vocab_size(m->bpe) - 1, m->cfg.vocab_size);
        goto cleanup;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if ((rc = mp_safetensors_open(path, &st, err)) < 0) goto cleanup;
    if (!(m->layers = calloc((size_t)m->cfg.n_layers, sizeof *m->layers))) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = load_weights(m, st, err)) < 0) goto cleanup;
    *out = m;
    m = NULL;
cleanup:
    mp_safetensors_close(st);
    mp_roberta_free(m);
    return rc;
}

void mp_roberta_free(mp_roberta *m) {
    if (!m) return;
    mp_bbpe_free(m->bpe);
    free(m->word);
    free(m->pos);
    free(m->type);
    free(m->emb_ln_w);
    free(m->emb_ln_b);
    if (m->layers)
        for (int l = 0; l < m->cfg.n_layers; l++) {
            rb_layer *L = &m->layers[l];
            float *all[] = {L->wq, L->bq, L->wk, L->bk, L->wv, L->bv, L->wo, L->bo,
                            L->ln1_w, L->ln1_b, L->wi, L->bi, L->wo2, L->bo2, L->ln2_w, L->ln2_b};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
        }
    free(m->layers);
    free(m->cls_w);
    free(m->cls_b);
    free(m->out_w);
    free(m->out_b);
    float *scratch[] = {m->x, m->q, m->k, m->v, m->ctx, m->tmp, m->ff, m->att};
    for (size_t i = 0; i < sizeof scratch / sizeof scratch[0]; i++) free(scratch[i]);
    if (m->cfg.labels)
        for (int i = 0; i < m->cfg.n_labels; i++) free(m->cfg.labels[i]);
    free(m->cfg.labels);
    free(m);
}

const mp_roberta_config *mp_roberta_cfg(const mp_roberta *m) { return &m->cfg; }

int mp_roberta_label_index(const mp_roberta *m, const char *label) {
    for (int i = 0; i < m->cfg.n_labels; i++)
        if (!strcmp(m->cfg.labels[i], label)) return i;
    char *end;
    long v = strtol(label, &end, 10);
    if (*label && !*end && v >= 0 && v < m->cfg.n_labels) return (int)v;
    return -1;
}

/* ---- tokenization ------------------------------------------------------------------- */

static int max_tokens(const mp_roberta *m) {
    int n = m->cfg.max_position_embeddings - m->cfg.pad_id - 1;
    return n > 0 ? n : 1;
}

int mp_roberta_encode(const mp_roberta *m, const char *text, size_t len, int32_t **ids, size_t *n, mp_error *err) {
    int32_t *v = NULL;
    size_t nv = 0, cap = 0;
    *ids = NULL;
    *n = 0;
    v = malloc(16 * sizeof *v);
    if (!v) return mp_fail(err, MP_ENOMEM, "out of memory");
    cap = 16;
    v[nv++] = m->cfg.bos_id;
    int rc = mp_bbpe_encode(m->bpe, text, len, &v, &nv, &cap, err);
    if (rc < 0) {
        free(v);
        return rc;
    }
    size_t lim = (size_t)max_tokens(m);
    if (nv + 1 > lim) nv = lim - 1; /* truncate the text part (HF truncation=True, longest_first) */
    if (nv == cap) {
        int32_t *nvv = realloc(v, (cap + 1) * sizeof *v);
        if (!nvv) {
            free(v);
            return mp_fail(err, MP_ENOMEM, "out of memory");
        }
        v = nvv;
    }
    v[nv++] = m->cfg.eos_id;
    *ids = v;
    *n = nv;
    return 0;
}

/* ---- forward -------------------------------------------------------------------------- */

static void layer_norm(float *x, size_t T, int d, const float *w, const float *b, double eps) {
    for (size_t t = 0; t < T; t++) {
        float *r = x + t * (size_t)d;
        double mean = 0, var = 0;
        for (int i = 0; i < d; i++) mean += r[i];
        mean /= d;
        for (int i = 0; i < d; i++) var += (r[i] - mean) * (r[i] - mean);
        var /= d;
        double inv = 1.0 / sqrt(var + eps);
        for (int i = 0; i < d; i++) r[i] = (float)((r[i] - mean) * inv) * w[i] + b[i];
    }
}

/* out[T][o] = in[T][i] W^T + b, W [o][i]. */
static void linear(const float *in, size_t T, int i, const float *W, const float *b, int o, float *out) {
    for (size_t t = 0; t < T; t++) memcpy(out + t * (size_t)o, b, (size_t)o * sizeof *out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, o, i, 1.0f, in, i, W, i, 1.0f, out, o);
}

static float activation(float x, int act) {
    if (act == 0) return (float)(0.5 * x * (1.0 + erf(x / sqrt(2.0))));
    if (act == 1) {
        double c = sqrt(2.0 / M_PI);
        return (float)(0.5 * x * (1.0 + tanh(c * (x + 0.044715 * (double)x * x * x))));
    }
    return x > 0 ? x : 0;
}

static int grow(mp_roberta *m, size_t T, mp_error *err) {
    if (T <= m->cap_t) return 0;
    size_t d = (size_t)m->cfg.hidden, ff = (size_t)m->cfg.intermediate;
    float **td[] = {&m->x, &m->q, &m->k, &m->v, &m->ctx, &m->tmp};
    for (size_t i = 0; i < 6; i++) {
        float *p = realloc(*td[i], T * d * sizeof *p);
        if (!p) return mp_fail(err, MP_ENOMEM, "out of memory (RoBERTa scratch)");
        *td[i] = p;
    }
    float *p = realloc(m->ff, T * ff * sizeof *p);
    if (!p) return mp_fail(err, MP_ENOMEM, "out of memory (RoBERTa scratch)");
    m->ff = p;
    p = realloc(m->att, T * sizeof *p);
    if (!p) return mp_fail(err, MP_ENOMEM, "out of memory (RoBERTa scratch)");
    m->att = p;
    m->cap_t = T;
    return 0;
}

int mp_roberta_logits(mp_roberta *m, const int32_t *ids, size_t T, float *logits, mp_error *err) {
    const mp_roberta_config *c = &m->cfg;
    MP_FAIL_IF(T < 1 || T > (size_t)max_tokens(m), err, MP_EINPUT, "RoBERTa: sequence of %zu tokens (1..%d allowed)", T,
               max_tokens(m));
    for (size_t t = 0; t < T; t++)
        MP_FAIL_IF(ids[t] < 0 || ids[t] >= c->vocab_size, err, MP_EINPUT, "RoBERTa: token id %d out of range [0, %d)",
                   ids[t], c->vocab_size);
    MP_TRY(grow(m, T, err));
    const int d = c->hidden, H = c->n_heads, dh = d / H, ff = c->intermediate;
    float *x = m->x;
    /* embeddings; position ids = cumsum(id != pad) * (id != pad) + pad */
    int run = 0;
    for (size_t t = 0; t < T; t++) {
        int is_tok = ids[t] != c->pad_id;
        run += is_tok;
        int p = is_tok ? run + c->pad_id : c->pad_id;
        const float *we = m->word + (size_t)ids[t] * d, *pe = m->pos + (size_t)p * d, *te = m->type;
        for (int i = 0; i < d; i++) x[t * d + i] = we[i] + pe[i] + te[i];
    }
    layer_norm(x, T, d, m->emb_ln_w, m->emb_ln_b, c->ln_eps);
    const double scale = 1.0 / sqrt((double)dh);
    for (int l = 0; l < c->n_layers; l++) {
        const rb_layer *L = &m->layers[l];
        linear(x, T, d, L->wq, L->bq, d, m->q);
        linear(x, T, d, L->wk, L->bk, d, m->k);
        linear(x, T, d, L->wv, L->bv, d, m->v);
        for (int h = 0; h < H; h++) {
            for (size_t t = 0; t < T; t++) {
                const float *qt = m->q + t * d + h * dh;
                float mx = -INFINITY;
                for (size_t s = 0; s < T; s++) {
                    const float *ks = m->k + s * d + h * dh;
                    double dot = 0;
                    for (int i = 0; i < dh; i++) dot += (double)qt[i] * ks[i];
                    m->att[s] = (float)(dot * scale);
                    if (m->att[s] > mx) mx = m->att[s];
                }
                double sum = 0;
                for (size_t s = 0; s < T; s++) sum += (m->att[s] = expf(m->att[s] - mx));
                float *ct = m->ctx + t * d + h * dh;
                for (int i = 0; i < dh; i++) {
                    double acc = 0;
                    for (size_t s = 0; s < T; s++) acc += (double)m->att[s] * m->v[s * d + h * dh + i];
                    ct[i] = (float)(acc / sum);
                }
            }
        }
        linear(m->ctx, T, d, L->wo, L->bo, d, m->tmp);
        for (size_t i = 0; i < T * (size_t)d; i++) x[i] += m->tmp[i];
        layer_norm(x, T, d, L->ln1_w, L->ln1_b, c->ln_eps);
        linear(x, T, d, L->wi, L->bi, ff, m->ff);
        for (size_t i = 0; i < T * (size_t)ff; i++) m->ff[i] = activation(m->ff[i], c->act);
        linear(m->ff, T, ff, L->wo2, L->bo2, d, m->tmp);
        for (size_t i = 0; i < T * (size_t)d; i++) x[i] += m->tmp[i];
        layer_norm(x, T, d, L->ln2_w, L->ln2_b, c->ln_eps);
    }
    /* head on <s>: out_proj(tanh(dense(x[0]))) */
    float *hcls = m->tmp;
    linear(x, 1, d, m->cls_w, m->cls_b, d, hcls);
    for (int i = 0; i < d; i++) hcls[i] = tanhf(hcls[i]);
    linear(hcls, 1, d, m->out_w, m->out_b, c->n_labels, logits);
    return 0;
}

int mp_roberta_prob(mp_roberta *m, const char *text, size_t len, int label, double *prob, mp_error *err) {
    int32_t *ids = NULL;
    size_t n = 0;
    MP_FAIL_IF(label < 0 || label >= m->cfg.n_labels, err, MP_EINPUT, "RoBERTa: label %d out of range", label);
    MP_TRY(mp_roberta_encode(m, text, len, &ids, &n, err));
    float *lg = malloc((size_t)m->cfg.n_labels * sizeof *lg);
    int rc = lg ? mp_roberta_logits(m, ids, n, lg, err) : mp_fail(err, MP_ENOMEM, "out of memory");
    if (rc == 0) {
        double mx = lg[0], s = 0;
        for (int i = 1; i < m->cfg.n_labels; i++) mx = lg[i] > mx ? lg[i] : mx;
        for (int i = 0; i < m->cfg.n_labels; i++) s += exp(lg[i] - mx);
        *prob = exp(lg[label] - mx) / s;
    }
    free(lg);
    free(ids);
    return rc;
}
