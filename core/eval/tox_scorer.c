/* core/eval/tox_scorer.c — the annotated ToxiGen reader, ROC AUC, the builtin
 * hashed n-gram logistic-regression scorer (training, JSON model file) and
 * the pluggable scorer front (roberta / cmd / builtin). See tox_scorer.h. */
#include "core/eval/tox_scorer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/text/corpus.h"
#include "core/eval/roberta.h"
#include "core/util/readfile.h"

/* ---- annotated rows -------------------------------------------------------------------- */

int mp_tox_unwrap_bytes_literal(const char *s, size_t n, char **out, size_t *out_len, mp_error *err) {
    char *o = malloc(n + 1);
    if (!o) return mp_fail(err, MP_ENOMEM, "out of memory");
    size_t w = 0;
    if (n >= 3 && s[0] == 'b' && (s[1] == '\'' || s[1] == '"') && s[n - 1] == s[1]) {
        for (size_t i = 2; i < n - 1; i++) {
            if (s[i] != '\\' || i + 1 >= n - 1) {
                o[w++] = s[i];
                continue;
            }
            char c = s[++i];
            if (c == 'n') o[w++] = '\n';
            else if (c == 'r') o[w++] = '\r';
            else if (c == 't') o[w++] = '\t';
            else if (c == '\\' || c == '\'' || c == '"') o[w++] = c;
            else if (c == 'x' && i + 2 < n - 1 && strchr("0123456789abcdefABCDEF", s[i + 1]) && s[i + 1] &&
                     strchr("0123456789abcdefABCDEF", s[i + 2]) && s[i + 2]) {
                char hex[3] = {s[i + 1], s[i + 2], 0};
                o[w++] = (char)strtol(hex, NULL, 16);
                i += 2;
            } else {
                o[w++] = '\\';
                o[w++] = c;
            }
        }
    } else {
        memcpy(o, s, n);
        w = n;
    }
    o[w] = '\0';
    *out = o;
    *out_len = w;
    return 0;
}

int mp_tox_row_label(const mp_tox_row *r, int human_rule) {
    return human_rule ? r->tox_human > 3.0 : r->tox_ai + r->tox_human > 5.5;
}

void mp_tox_rows_free(mp_tox_rows *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->rows[i].text);
        free(r->rows[i].target_group);
        free(r->rows[i].prompt_label);
    }
    free(r->rows);
    r->rows = NULL;
    r->n = 0;
}

static int parse_rating(const mp_doc *d, int k, double *out, mp_error *err) {
    const char *v = d->label_values[k];
    char *end = NULL;
    double x = v ? strtod(v, &end) : NAN;
    if (!v || end == v || *end || !isfinite(x))
        return mp_fail(err, MP_EINPUT, "%s:%zu: column %s: '%s' is not a number", d->source, d->line,
                       d->label_names[k], v ? v : "(missing)");
    *out = x;
    return 0;
}

int mp_tox_rows_load(const char *path, mp_tox_rows *out, mp_error *err) {
    out->rows = NULL;
    out->n = 0;
    mp_corpus_opts o;
    memset(&o, 0, sizeof o);
    o.text_field = "text";
    o.label_fields[0] = "toxicity_ai";
    o.label_fields[1] = "toxicity_human";
    o.label_fields[2] = "target_group";
    o.label_fields[3] = "label";
    o.n_label_fields = 4;
    o.strict = 1;
    o.dir_label = NULL;
    mp_corpus *c = NULL;
    MP_TRY(mp_corpus_open(path, &o, &c, err));
    size_t cap = 0;
    mp_doc d;
    int r, rc = 0;
    while ((r = mp_corpus_next(c, &d, err)) == 1) {
        if (out->n == cap) {
            size_t nc = cap ? cap * 2 : 1024;
            mp_tox_row *nr = realloc(out->rows, nc * sizeof *nr);
            if (!nr) {
                rc = mp_fail(err, MP_ENOMEM, "out of memory");
                goto cleanup;
            }
            out->rows = nr;
            cap = nc;
        }
        mp_tox_row *row = &out->rows[out->n];
        memset(row, 0, sizeof *row);
        out->n++;
        if ((rc = parse_rating(&d, 0, &row->tox_ai, err)) < 0 || (rc = parse_rating(&d, 1, &row->tox_human, err)) < 0)
            goto cleanup;
        if ((rc = mp_tox_unwrap_bytes_literal(d.text, d.len, &row->text, &row->len, err)) < 0) goto cleanup;
        row->target_group = strdup(d.label_values[2] ? d.label_values[2] : "");
        row->prompt_label = strdup(d.label_values[3] ? d.label_values[3] : "");
        if (!row->target_group || !row->prompt_label) {
            rc = mp_fail(err, MP_ENOMEM, "out of memory");
            goto cleanup;
        }
    }
    if (r < 0) rc = r;
    else if (out->n == 0) rc = mp_fail(err, MP_EINPUT, "%s: no annotated rows", path);
cleanup:
    mp_corpus_close(c);
    if (rc < 0) mp_tox_rows_free(out);
    return rc;
}

/* ---- AUC ------------------------------------------------------------------------------- */

typedef struct {
    double s;
    int y;
} scored;

static int cmp_scored(const void *a, const void *b) {
    double x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return x < y ? -1 : x > y;
}

double mp_tox_auc(const double *scores, const int *labels, size_t n) {
    scored *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return NAN;
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        v[i].s = scores[i];
        v[i].y = labels[i] != 0;
        pos += v[i].y;
    }
    size_t neg = n - pos;
    if (!pos || !neg) {
        free(v);
        return NAN;
    }
    qsort(v, n, sizeof *v, cmp_scored);
    /* sum of the positives' ranks, ties given their average rank */
    double rank_sum = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j].s == v[i].s) j++;
        double avg = (double)(i + 1 + j) / 2.0; /* ranks i+1..j */
        for (size_t k = i; k < j; k++)
            if (v[k].y) rank_sum += avg;
        i = j;
    }
    free(v);
    return (rank_sum - (double)pos * (double)(pos + 1) / 2.0) / ((double)pos * (double)neg);
}

/* ---- features --------------------------------------------------------------------------- */

typedef struct {
    uint32_t idx;
    float val;
} feat;

typedef struct {
    feat *f;
    size_t n, cap;
} feat_vec;

static uint64_t fnv_add(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

#define FNV_INIT 1469598103934665603ULL

static int push_feat(feat_vec *v, uint64_t h, int log2b) {
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 256;
        feat *nf = realloc(v->f, nc * sizeof *nf);
        if (!nf) return -1;
        v->f = nf;
        v->cap = nc;
    }
    v->f[v->n].idx = (uint32_t)(h & ((1ULL << log2b) - 1));
    v->f[v->n].val = 1.0f;
    v->n++;
    return 0;
}

static int cmp_feat(const void *a, const void *b) {
    uint32_t x = ((const feat *)a)->idx, y = ((const feat *)b)->idx;
    return x < y ? -1 : x > y;
}

static int word_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '\'' || c >= 0x80;
}

#define MAX_WORD 48

/* Hashed features of text into v (reset first): merged by index, L2-normalized. */
static int featurize(const char *text, size_t len, int log2b, feat_vec *v) {
    v->n = 0;
    char prev[MAX_WORD + 1];
    size_t prev_len = 0;
    int have_prev = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && !word_char((unsigned char)text[i])) i++;
        if (i >= len) break;
        char w[MAX_WORD + 3];
        size_t wl = 0;
        w[wl++] = '<';
        while (i < len && word_char((unsigned char)text[i])) {
            unsigned char c = (unsigned char)text[i++];
            if (wl <= MAX_WORD) w[wl++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        w[wl++] = '>';
        const char *word = w + 1;
        size_t word_len = wl - 2;
        if (push_feat(v, fnv_add(fnv_add(FNV_INIT, "w:", 2), word, word_len), log2b) < 0) return -1;
        if (have_prev) {
            uint64_t h = fnv_add(fnv_add(FNV_INIT, "b:", 2), prev, prev_len);
            h = fnv_add(fnv_add(h, " ", 1), word, word_len);
            if (push_feat(v, h, log2b) < 0) return -1;
        }
        for (size_t n = 3; n <= 4; n++)
            for (size_t s = 0; s + n <= wl; s++)
                if (push_feat(v, fnv_add(fnv_add(FNV_INIT, "c:", 2), w + s, n), log2b) < 0) return -1;
        memcpy(prev, word, word_len);
        prev_len = word_len;
        have_prev = 1;
    }
    if (!v->n) return 0;
    qsort(v->f, v->n, sizeof *v->f, cmp_feat);
    size_t w = 0;
    for (size_t k = 0; k < v->n; k++) {
        if (w && v->f[w - 1].idx == v->f[k].idx) v->f[w - 1].val += 1.0f;
        else v->f[w++] = v->f[k];
    }
    v->n = w;
    double ss = 0;
    for (size_t k = 0; k < w; k++) ss += (double)v->f[k].val * v->f[k].val;
    float inv = (float)(1.0 / sqrt(ss));
    for (size_t k = 0; k < w; k++) v->f[k].val *= inv;
    return 0;
}

static double sigmoid(double z) { return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z)); }

static double linear_prob_vec(const mp_tox_linear *m, const feat_vec *v) {
    double z = m->bias;
    for (size_t k = 0; k < v->n; k++) z += (double)m->w[v->f[k].idx] * v->f[k].val;
    return sigmoid(z);
}

double mp_tox_linear_prob(const mp_tox_linear *m, const char *text, size_t len) {
    feat_vec v = {0};
    double p = NAN;
    if (featurize(text, len, m->log2_buckets, &v) == 0) p = linear_prob_vec(m, &v);
    free(v.f);
    return p;
}

/* ---- training ------------------------------------------------------------------------------ */

void mp_tox_linear_opts_default(mp_tox_linear_opts *o) {
    o->log2_buckets = 16;
    o->epochs = 8;
    o->lr = 0.3;
    o->l2 = 1e-6;
    o->holdout = 0.2;
    o->human_rule = 0;
    o->seed = 1;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void metrics_of(const double *p, const int *y, size_t n, mp_tox_metrics *m) {
    size_t correct = 0, pos = 0;
    double ll = 0;
    for (size_t i = 0; i < n; i++) {
        pos += y[i];
        correct += (p[i] >= 0.5) == (y[i] != 0);
        double q = p[i] < 1e-12 ? 1e-12 : p[i] > 1 - 1e-12 ? 1 - 1e-12 : p[i];
        ll -= y[i] ? log(q) : log(1 - q);
    }
    m->n = n;
    m->positives = pos;
    m->accuracy = n ? (double)correct / (double)n : NAN;
    m->log_loss = n ? ll / (double)n : NAN;
    m->auc = mp_tox_auc(p, y, n);
}

static int is_heldout(const mp_tox_row *r, double holdout) {
    return (double)(fnv_add(FNV_INIT, r->text, r->len) % 1000) < holdout * 1000.0;
}

int mp_tox_linear_train(const mp_tox_rows *rows, const char *source, const mp_tox_linear_opts *o,
                        mp_tox_linear **out, size_t **heldout_idx, size_t *n_heldout, mp_error *err) {
    *out = NULL;
    if (heldout_idx) *heldout_idx = NULL;
    if (n_heldout) *n_heldout = 0;
    MP_FAIL_IF(o->log2_buckets < 10 || o->log2_buckets > 24 || o->epochs < 1 || o->epochs > 1000 || !(o->lr > 0) ||
                   !(o->l2 >= 0) || !(o->holdout >= 0 && o->holdout <= 0.9),
               err, MP_EINPUT, "toxicity scorer: bad training options");
    size_t nb = (size_t)1 << o->log2_buckets, n = rows->n;
    int rc = 0;
    double *w = calloc(nb, sizeof *w), *G = calloc(nb, sizeof *G), *p = malloc((n + 1) * sizeof *p);
    feat_vec *fv = calloc(n + 1, sizeof *fv);
    int *y = malloc((n + 1) * sizeof *y), *held = malloc((n + 1) * sizeof *held);
    size_t *order = malloc((n + 1) * sizeof *order), n_train = 0, n_held = 0;
    mp_tox_linear *m = calloc(1, sizeof *m);
    if (!w || !G || !p || !fv || !y || !held || !order || !m || !(m->w = malloc(nb * sizeof *m->w)) ||
        !(m->source = strdup(source ? source : ""))) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory (training)");
        goto cleanup;
    }
    m->log2_buckets = o->log2_buckets;
    m->human_rule = o->human_rule;
    for (size_t i = 0; i < n; i++) {
        if (featurize(rows->rows[i].text, rows->rows[i].len, o->log2_buckets, &fv[i]) < 0) {
            rc = mp_fail(err, MP_ENOMEM, "out of memory (features)");
            goto cleanup;
        }
        y[i] = mp_tox_row_label(&rows->rows[i], o->human_rule);
        held[i] = is_heldout(&rows->rows[i], o->holdout);
        if (held[i]) n_held++;
        else order[n_train++] = i;
    }
    if (!n_train || (o->holdout > 0 && !n_held)) {
        rc = mp_fail(err, MP_EINPUT, "toxicity scorer: %zu training and %zu held-out rows: need both", n_train, n_held);
        goto cleanup;
    }
    /* AdaGrad SGD on the mean log loss, one seeded shuffle per epoch */
    double b = 0, Gb = 0;
    uint64_t rng = o->seed;
    for (int e = 0; e < o->epochs; e++) {
        for (size_t i = n_train; i > 1; i--) {
            size_t j = (size_t)(splitmix(&rng) % i), t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
        for (size_t k = 0; k < n_train; k++) {
            size_t i = order[k];
            double z = b;
            for (size_t f = 0; f < fv[i].n; f++) z += w[fv[i].f[f].idx] * fv[i].f[f].val;
            double g = sigmoid(z) - y[i];
            for (size_t f = 0; f < fv[i].n; f++) {
                uint32_t j = fv[i].f[f].idx;
                double gj = g * fv[i].f[f].val + o->l2 * w[j];
                G[j] += gj * gj;
                w[j] -= o->lr * gj / (sqrt(G[j]) + 1e-8);
            }
            Gb += g * g;
            b -= o->lr * g / (sqrt(Gb) + 1e-8);
        }
    }
    for (size_t j = 0; j < nb; j++) m->w[j] = (float)w[j];
    m->bias = (float)b;
    /* metrics of the float model, train and held-out */
    for (int split = 0; split < 2; split++) {
        size_t k = 0;
        int *yy = malloc((n + 1) * sizeof *yy);
        if (!yy) {
            rc = mp_fail(err, MP_ENOMEM, "out of memory");
            goto cleanup;
        }
        for (size_t i = 0; i < n; i++)
            if (held[i] == split) {
                p[k] = linear_prob_vec(m, &fv[i]);
                yy[k++] = y[i];
            }
        metrics_of(p, yy, k, split ? &m->heldout : &m->train);
        free(yy);
    }
    if (heldout_idx) {
        size_t *hi = malloc((n_held + 1) * sizeof *hi), k = 0;
        if (!hi) {
            rc = mp_fail(err, MP_ENOMEM, "out of memory");
            goto cleanup;
        }
        for (size_t i = 0; i < n; i++)
            if (held[i]) hi[k++] = i;
        *heldout_idx = hi;
        *n_heldout = k;
    }
    *out = m;
    m = NULL;
cleanup:
    if (fv)
        for (size_t i = 0; i < n; i++) free(fv[i].f);
    free(fv);
    free(w);
    free(G);
    free(p);
    free(y);
    free(held);
    free(order);
    mp_tox_linear_free(m);
    return rc;
}

void mp_tox_linear_free(mp_tox_linear *m) {
    if (!m) return;
    free(m->w);
    free(m->source);
    free(m);
}

/* ---- model file ---------------------------------------------------------------------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_write(FILE *f, const unsigned char *d, size_t n) {
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
        fputc(B64[v >> 18 & 63], f);
        fputc(B64[v >> 12 & 63], f);
        fputc(i + 1 < n ? B64[v >> 6 & 63] : '=', f);
        fputc(i + 2 < n ? B64[v & 63] : '=', f);
    }
}

/* Decode into out (exactly n bytes expected); -1 on bad input. */
static int b64_read(const char *s, unsigned char *out, size_t n) {
    size_t sl = strlen(s);
    if (sl != (n + 2) / 3 * 4) return -1;
    size_t w = 0;
    for (size_t i = 0; i < sl; i += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            const char *p = s[i + k] == '=' ? NULL : strchr(B64, s[i + k]);
            if (s[i + k] == '=') pad++;
            else if (!p || !s[i + k] || pad) return -1;
            v = v << 6 | (p ? (uint32_t)(p - B64) : 0);
        }
        for (int k = 0; k < 3 - pad && w < n; k++) out[w++] = (unsigned char)(v >> (16 - 8 * k));
    }
    return w == n ? 0 : -1;
}

static void json_num(FILE *f, double x) {
    if (isfinite(x)) fprintf(f, "%.9g", x);
    else fputs("null", f);
}

static void write_metrics(FILE *f, const char *name, const mp_tox_metrics *m) {
    fprintf(f, "  \"%s\": {\"n\": %zu, \"positives\": %zu, \"accuracy\": ", name, m->n, m->positives);
    json_num(f, m->accuracy);
    fputs(", \"auc\": ", f);
    json_num(f, m->auc);
    fputs(", \"log_loss\": ", f);
    json_num(f, m->log_loss);
    fputs("},\n", f);
}

int mp_tox_linear_save(const mp_tox_linear *m, const char *path, mp_error *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return mp_fail(err, MP_EIO, "%s: cannot create: %s", path, strerror(errno));
    size_t nb = (size_t)1 << m->log2_buckets;
    fprintf(f, "{\n  \"format\": \"monet-probe/tox-linear\",\n  \"version\": 1,\n");
    fprintf(f, "  \"features\": \"ASCII-lowercased words ([a-z0-9'] and non-ASCII bytes); word unigrams, "
               "bigrams, char 3/4-grams of <word>; FNV-1a 64 hashed; counts L2-normalized\",\n");
    fprintf(f, "  \"log2_buckets\": %d,\n  \"label_rule\": \"%s\",\n", m->log2_buckets,
            m->human_rule ? "human: toxicity_human > 3" : "combined: toxicity_ai + toxicity_human > 5.5");
    fputs("  \"source\": ", f);
    mp_tox_json_string(f, m->source, strlen(m->source));
    fputs(",\n", f);
    write_metrics(f, "train", &m->train);
    write_metrics(f, "heldout", &m->heldout);
    fputs("  \"bias\": ", f);
    json_num(f, m->bias);
    fputs(",\n  \"weights_f32le_base64\": \"", f);
    unsigned char *le = malloc(nb * 4);
    if (le) {
        for (size_t j = 0; j < nb; j++) {
            uint32_t u;
            memcpy(&u, &m->w[j], 4);
            for (int k = 0; k < 4; k++) le[j * 4 + (size_t)k] = (unsigned char)(u >> (8 * k));
        }
        b64_write(f, le, nb * 4);
        free(le);
    }
    fputs("\"\n}\n", f);
    int bad = !le || ferror(f);
    if (fclose(f) != 0) bad = 1;
    if (bad) return mp_fail(err, le ? MP_EIO : MP_ENOMEM, "%s: write failed", path);
    return 0;
}

static void read_metrics(const cJSON *root, const char *name, mp_tox_metrics *m) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, name);
    const cJSON *v;
    m->auc = m->accuracy = m->log_loss = NAN;
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "n")) && cJSON_IsNumber(v)) m->n = (size_t)v->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "positives")) && cJSON_IsNumber(v))
        m->positives = (size_t)v->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "accuracy")) && cJSON_IsNumber(v)) m->accuracy = v->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "auc")) && cJSON_IsNumber(v)) m->auc = v->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "log_loss")) && cJSON_IsNumber(v)) m->log_loss = v->valuedouble;
}

int mp_tox_linear_load(const char *path, mp_tox_linear **out, mp_error *err) {
    *out = NULL;
    char *buf = NULL;
    size_t n = 0;
    int rd = mp_read_file(path, &buf, &n, err);
    if (rd == MP_EIO) {
        char why[MP_ERRMSG_MAX];
        snprintf(why, sizeof why, "%s", err->msg);
        return mp_fail(err, MP_EIO, "%s (train one with `monet-probe toxicity-scorer train`)", why);
    }
    MP_TRY(rd);
    cJSON *root = cJSON_ParseWithLength(buf, n);
    free(buf);
    int rc = 0;
    mp_tox_linear *m = calloc(1, sizeof *m);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *lb = cJSON_GetObjectItemCaseSensitive(root, "log2_buckets");
    const cJSON *bias = cJSON_GetObjectItemCaseSensitive(root, "bias");
    const cJSON *wts = cJSON_GetObjectItemCaseSensitive(root, "weights_f32le_base64");
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive(root, "label_rule");
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(root, "source");
    if (!m) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (!root || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, "monet-probe/tox-linear")) {
        rc = mp_fail(err, MP_EINPUT, "%s: not a monet-probe toxicity scorer file (no \"format\": "
                     "\"monet-probe/tox-linear\"); HINT: make one with `monet-probe toxicity-scorer train`", path);
        goto cleanup;
    }
    if (!cJSON_IsNumber(ver) || ver->valueint != 1) {
        rc = mp_fail(err, MP_EINPUT, "%s: scorer file version %d, this build reads version 1; HINT: retrain it", path,
                     cJSON_IsNumber(ver) ? ver->valueint : -1);
        goto cleanup;
    }
    if (!cJSON_IsNumber(lb) || lb->valueint < 10 || lb->valueint > 24 || !cJSON_IsNumber(bias) ||
        !cJSON_IsString(wts)) {
        rc = mp_fail(err, MP_EINPUT, "%s: missing or bad log2_buckets / bias / weights_f32le_base64", path);
        goto cleanup;
    }
    m->log2_buckets = lb->valueint;
    m->bias = (float)bias->valuedouble;
    m->human_rule = cJSON_IsString(rule) && !strncmp(rule->valuestring, "human", 5);
    size_t nb = (size_t)1 << m->log2_buckets;
    unsigned char *le = malloc(nb * 4);
    m->w = malloc(nb * sizeof *m->w);
    m->source = strdup(cJSON_IsString(src) ? src->valuestring : "");
    if (!le || !m->w || !m->source) {
        free(le);
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (b64_read(wts->valuestring, le, nb * 4) < 0) {
        free(le);
        rc = mp_fail(err, MP_EINPUT, "%s: weights_f32le_base64 is not %zu base64-encoded floats", path, nb);
        goto cleanup;
    }
    for (size_t j = 0; j < nb; j++) {
        uint32_t u = 0;
        for (int k = 0; k < 4; k++) u |= (uint32_t)le[j * 4 + (size_t)k] << (8 * k);
        memcpy(&m->w[j], &u, 4);
    }
    free(le);
    read_metrics(root, "train", &m->train);
    read_metrics(root, "heldout", &m->heldout);
    *out = m;
    m = NULL;
cleanup:
    cJSON_Delete(root);
    mp_tox_linear_free(m);
    return rc;
}

/* ---- JSON strings ---------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[i] (1..4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t len, size_t i) {
    unsigned c = s[i];
    if (c < 0x80) return 1;
    size_t need = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!need || i + need > len) return 0;
    uint32_t cp = c & (0x7F >> need);
    for (size_t k = 1; k < need; k++) {
        if ((s[i + k] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i + k] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return need;
}

int mp_tox_utf8_sanitize(const char *text, size_t len, char **out, size_t *out_len, mp_error *err) {
    const unsigned char *s = (const unsigned char *)text;
    char *o = malloc(len * 3 + 1);
    if (!o) return mp_fail(err, MP_ENOMEM, "out of memory");
    size_t w = 0;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(s, len, i);
        if (n) {
            memcpy(o + w, s + i, n);
            w += n;
            i += n;
        } else {
            memcpy(o + w, "\xEF\xBF\xBD", 3);
            w += 3;
            i++;
        }
    }
    o[w] = '\0';
    *out = o;
    *out_len = w;
    return 0;
}

void mp_tox_json_string(FILE *f, const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)text;
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        size_t n = utf8_seq(s, len, i);
        if (n == 1) {
            if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
            else if (c == '\n') fputs("\\n", f);
            else if (c == '\t') fputs("\\t", f);
            else if (c == '\r') fputs("\\r", f);
            else if (c < 0x20 || c == 0x7F) fprintf(f, "\\u%04x", c);
            else fputc((int)c, f);
            i++;
        } else if (n) {
            fwrite(s + i, 1, n, f);
            i += n;
        } else {
            fputs("\xEF\xBF\xBD", f);
            i++;
        }
    }
    fputc('"', f);
}

/* ---- external command scorer ------------------------------------------------------------------ */

/* Parse the command's output (one number per non-blank line) into scores. */
static int parse_cmd_output(const char *cmd, char *out, size_t n_out, double *scores, size_t n, mp_error *err) {
    size_t k = 0, line = 0;
    for (char *p = out; p < out + n_out;) {
        char *e = memchr(p, '\n', (size_t)(out + n_out - p));
        if (!e) e = out + n_out;
        *e = '\0';
        line++;
        char *q = p;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (*q) {
            char *end;
            errno = 0;
            double v = strtod(q, &end);
            while (*end == ' ' || *end == '\t' || *end == '\r') end++;
            if (end == q || *end || !isfinite(v) || v < 0 || v > 1)
                return mp_fail(err, MP_EINPUT, "scorer command '%s': output line %zu \"%.60s\" is not a number in [0, 1]",
                               cmd, line, q);
            if (k == n)
                return mp_fail(err, MP_EINPUT, "scorer command '%s': printed more than %zu scores (one per input line)",
                               cmd, n);
            scores[k++] = v;
        }
        p = e + 1;
    }
    if (k != n)
        return mp_fail(err, MP_EINPUT, "scorer command '%s': printed %zu scores for %zu texts (one per input line)",
                       cmd, k, n);
    return 0;
}

static int run_cmd(const char *cmd, const char *const *texts, const size_t *lens, size_t n, double *scores,
                   mp_error *err) {
    /* the whole input as one buffer, written while the output is read (no pipe deadlock) */
    char *in = NULL, *out = NULL;
    size_t in_len = 0, out_len = 0, out_cap = 0, in_off = 0;
    FILE *mf = open_memstream(&in, &in_len);
    if (!mf) return mp_fail(err, MP_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        fputs("{\"text\": ", mf);
        mp_tox_json_string(mf, texts[i], lens[i]);
        fputs("}\n", mf);
    }
    if (fclose(mf) != 0) {
        free(in);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    int to_child[2] = {-1, -1}, from_child[2] = {-1, -1}, rc = 0, status = 0;
    pid_t pid = -1;
    struct sigaction ign, old;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old); /* a child that exits early must not kill us; restored below */
    if (pipe(to_child) < 0 || pipe(from_child) < 0) {
        rc = mp_fail(err, MP_EIO, "scorer command: pipe: %s", strerror(errno));
        goto cleanup;
    }
    pid = fork();
    if (pid < 0) {
        rc = mp_fail(err, MP_EIO, "scorer command: fork: %s", strerror(errno));
        goto cleanup;
    }
    if (pid == 0) {
        dup2(to_child[0], 0);
        dup2(from_child[1], 1);
        close(to_child[0]);
        close(to_child[1]);
        close(from_child[0]);
        close(from_child[1]);
        signal(SIGPIPE, SIG_DFL);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    to_child[0] = from_child[1] = -1;
    fcntl(to_child[1], F_SETFL, fcntl(to_child[1], F_GETFL) | O_NONBLOCK);
    if (in_len == 0) {
        close(to_child[1]);
        to_child[1] = -1;
    }
    for (;;) {
        struct pollfd pf[2];
        int np = 0;
        pf[np].fd = from_child[0];
        pf[np++].events = POLLIN;
        if (to_child[1] >= 0) {
            pf[np].fd = to_child[1];
            pf[np++].events = POLLOUT;
        }
        if (poll(pf, (nfds_t)np, -1) < 0) {
            if (errno == EINTR) continue;
            rc = mp_fail(err, MP_EIO, "scorer command: poll: %s", strerror(errno));
            goto cleanup;
        }
        if (np == 2 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(to_child[1], in + in_off, in_len - in_off);
            if (w > 0) in_off += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off == in_len) {
                close(to_child[1]); /* EPIPE: the command stopped reading; its output decides */
                to_child[1] = -1;
            }
        }
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (out_len + 65536 + 1 > out_cap) {
                size_t nc = out_cap ? out_cap * 2 : 1 << 16;
                while (nc < out_len + 65536 + 1) nc *= 2;
                char *nb = realloc(out, nc);
                if (!nb) {
                    rc = mp_fail(err, MP_ENOMEM, "out of memory");
                    goto cleanup;
                }
                out = nb;
                out_cap = nc;
            }
            ssize_t r = read(from_child[0], out + out_len, 65536);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) {
                rc = mp_fail(err, MP_EIO, "scorer command: read: %s", strerror(errno));
                goto cleanup;
            }
            if (r == 0) break;
            out_len += (size_t)r;
        }
    }
    if (to_child[1] >= 0) {
        close(to_child[1]);
        to_child[1] = -1;
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    pid = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (WIFEXITED(status))
            rc = mp_fail(err, MP_EINPUT, "scorer command '%s' exited with status %d%s", cmd, WEXITSTATUS(status),
                         WEXITSTATUS(status) == 127 ? " (command not found?)" : "");
        else
            rc = mp_fail(err, MP_EINPUT, "scorer command '%s' was killed by signal %d", cmd,
                         WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        goto cleanup;
    }
    rc = parse_cmd_output(cmd, out ? out : (char *)"", out_len, scores, n, err);
cleanup:
    if (to_child[0] >= 0) close(to_child[0]);
    if (to_child[1] >= 0) close(to_child[1]);
    if (from_child[0] >= 0) close(from_child[0]);
    if (from_child[1] >= 0) close(from_child[1]);
    if (pid > 0) {
        kill(pid, SIGTERM);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    sigaction(SIGPIPE, &old, NULL);
    free(in);
    free(out);
    return rc;
}

/* ---- the front ------------------------------------------------------------------------------ */

enum { SC_ROBERTA, SC_CMD, SC_BUILTIN };

struct mp_tox_scorer {
    int kind;
    char *arg;              /* DIR, COMMAND or PATH */
    char name[1024];
    mp_roberta *rb;
    int label;
    mp_tox_linear *lin;
};

int mp_tox_scorer_open(const char *spec, const char *positive_label, mp_tox_scorer **out, mp_error *err) {
    *out = NULL;
    const char *colon = strchr(spec, ':');
    MP_FAIL_IF(!colon || !colon[1], err, MP_EINPUT,
               "--scorer '%s': expected roberta:DIR, cmd:COMMAND or builtin:PATH", spec);
    mp_tox_scorer *s = calloc(1, sizeof *s);
    MP_FAIL_IF(!s, err, MP_ENOMEM, "out of memory");
    int rc = 0;
    size_t kl = (size_t)(colon - spec);
    if (!(s->arg = strdup(colon + 1))) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (kl == 7 && !strncmp(spec, "roberta", 7)) {
        s->kind = SC_ROBERTA;
        if ((rc = mp_roberta_load(s->arg, &s->rb, err)) < 0) goto cleanup;
        const mp_roberta_config *c = mp_roberta_cfg(s->rb);
        if (positive_label) s->label = mp_roberta_label_index(s->rb, positive_label);
        else s->label = c->n_labels == 2 ? 1 : -1;
        if (s->label < 0) {
            rc = mp_fail(err, MP_EINPUT, "%s: %s; pick the toxic label with --positive-label NAME|INDEX", s->arg,
                         positive_label ? "no such label" : "not a 2-label model");
            goto cleanup;
        }
        snprintf(s->name, sizeof s->name, "roberta:%s (P(%s), label %d of %d)", s->arg, c->labels[s->label], s->label,
                 c->n_labels);
    } else if (kl == 3 && !strncmp(spec, "cmd", 3)) {
        s->kind = SC_CMD;
        snprintf(s->name, sizeof s->name, "cmd:%s", s->arg);
    } else if (kl == 7 && !strncmp(spec, "builtin", 7)) {
        s->kind = SC_BUILTIN;
        if ((rc = mp_tox_linear_load(s->arg, &s->lin, err)) < 0) goto cleanup;
        snprintf(s->name, sizeof s->name,
                 "builtin:%s (hashed n-gram logistic regression on annotated ToxiGen, label %s; held-out acc %.4f, "
                 "AUC %.4f, n %zu)",
                 s->arg, s->lin->human_rule ? "human>3" : "ai+human>5.5", s->lin->heldout.accuracy, s->lin->heldout.auc,
                 s->lin->heldout.n);
    } else {
        rc = mp_fail(err, MP_EINPUT, "--scorer '%s': unknown kind '%.*s' (roberta, cmd, builtin)", spec, (int)kl, spec);
        goto cleanup;
    }
    *out = s;
    s = NULL;
cleanup:
    mp_tox_scorer_close(s);
    return rc;
}

void mp_tox_scorer_close(mp_tox_scorer *s) {
    if (!s) return;
    mp_roberta_free(s->rb);
    mp_tox_linear_free(s->lin);
    free(s->arg);
    free(s);
}

const char *mp_tox_scorer_name(const mp_tox_scorer *s) { return s->name; }

const char *mp_tox_scorer_kind(const mp_tox_scorer *s) {
    return s->kind == SC_ROBERTA ? "roberta" : s->kind == SC_CMD ? "cmd" : "builtin";
}

int mp_tox_scorer_score(mp_tox_scorer *s, const char *const *texts, const size_t *lens, size_t n, double *scores,
                        mp_progress *progress, mp_error *err) {
    if (s->kind == SC_CMD) {
        MP_TRY(run_cmd(s->arg, texts, lens, n, scores, err));
        if (progress) mp_progress_add(progress, n);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (s->kind == SC_ROBERTA) MP_TRY(mp_roberta_prob(s->rb, texts[i], lens[i], s->label, &scores[i], err));
        else scores[i] = mp_tox_linear_prob(s->lin, texts[i], lens[i]);
        MP_FAIL_IF(!isfinite(scores[i]), err, MP_ENOMEM, "scorer: out of memory");
        if (progress) mp_progress_add(progress, 1);
    }
    return 0;
}
