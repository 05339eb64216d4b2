/* core/eval/eval_result.c — JSON evaluation results (see eval_result.h), written
 * and read with cJSON. Numbers are written with 17 significant digits so a
 * result read back is the value that was computed. */
#include "core/eval/eval_result.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *sdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

int mp_eval_result_init(mp_eval_result *r, const char *eval, const char *model, const char *mask,
                        const char *metric, int higher_is_better, mp_error *err) {
    memset(r, 0, sizeof *r);
    r->eval = sdup(eval);
    r->model = sdup(model ? model : "");
    r->mask = sdup(mask);
    r->metric = sdup(metric);
    r->higher_is_better = higher_is_better;
    if (!r->eval || !r->model || !r->metric || (mask && !r->mask)) {
        mp_eval_result_free(r);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    return 0;
}

void mp_eval_result_free(mp_eval_result *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_rows; i++) {
        free(r->rows[i].kind);
        free(r->rows[i].name);
        free(r->rows[i].value_metric);
        free(r->rows[i].items);
        free(r->rows[i].item_w);
    }
    free(r->rows);
    free(r->eval);
    free(r->model);
    free(r->mask);
    free(r->metric);
    free(r->settings_json);
    memset(r, 0, sizeof *r);
}

int mp_eval_result_add(mp_eval_result *r, const char *kind, const char *name, size_t n, double value, double acc,
                       double acc_norm, double extra, mp_error *err) {
    if (r->n_rows == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        mp_eval_row *nr = realloc(r->rows, cap * sizeof *nr);
        MP_FAIL_IF(!nr, err, MP_ENOMEM, "out of memory");
        r->rows = nr;
        r->cap = cap;
    }
    mp_eval_row *w = &r->rows[r->n_rows];
    w->kind = sdup(kind);
    w->name = sdup(name);
    if (!w->kind || !w->name) {
        free(w->kind);
        free(w->name);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    w->n = n;
    w->value = value;
    w->acc = acc;
    w->acc_norm = acc_norm;
    w->extra = extra;
    w->se = NAN;
    w->value_metric = NULL;
    w->items = w->item_w = NULL;
    w->n_items = 0;
    r->n_rows++;
    return 0;
}

int mp_eval_result_annotate(mp_eval_result *r, double se, const char *value_metric, const double *items,
                            const double *w, size_t n_items, mp_error *err) {
    MP_FAIL_IF(r->n_rows == 0, err, MP_EINTERNAL, "annotate: no row");
    mp_eval_row *x = &r->rows[r->n_rows - 1];
    x->se = se;
    if (value_metric) {
        char *m = sdup(value_metric);
        MP_FAIL_IF(!m, err, MP_ENOMEM, "out of memory");
        free(x->value_metric);
        x->value_metric = m;
    }
    if (items && n_items) {
        double *a = malloc(n_items * sizeof *a), *b = w ? malloc(n_items * sizeof *b) : NULL;
        if (!a || (w && !b)) {
            free(a);
            free(b);
            return mp_fail(err, MP_ENOMEM, "out of memory");
        }
        memcpy(a, items, n_items * sizeof *a);
        if (w) memcpy(b, w, n_items * sizeof *b);
        free(x->items);
        free(x->item_w);
        x->items = a;
        x->item_w = b;
        x->n_items = n_items;
    }
    return 0;
}

double mp_stderr_mean(const double *x, size_t n) {
    if (n < 2) return NAN;
    double m = 0, ss = 0;
    for (size_t i = 0; i < n; i++) m += x[i];
    m /= (double)n;
    for (size_t i = 0; i < n; i++) ss += (x[i] - m) * (x[i] - m);
    return sqrt(ss / (double)(n - 1)) / sqrt((double)n);
}

double mp_stderr_binary(size_t hits, size_t n) {
    if (n < 2) return NAN;
    double p = (double)hits / (double)n;
    return sqrt(p * (1 - p) / (double)(n - 1));
}

double mp_stderr_pooled(const double *se, const size_t *sizes, size_t k) {
    double num = 0;
    size_t tot = 0;
    for (size_t i = 0; i < k; i++) {
        if (isnan(se[i])) return NAN;
        num += ((double)sizes[i] - 1) * se[i] * se[i] * (double)sizes[i];
        tot += sizes[i];
    }
    if (tot <= k) return NAN;
    return sqrt(num / (double)(tot - k) / (double)tot);
}

const mp_eval_row *mp_eval_result_find(const mp_eval_result *r, const char *kind, const char *name) {
    for (size_t i = 0; i < r->n_rows; i++)
        if (!strcmp(r->rows[i].kind, kind) && !strcmp(r->rows[i].name, name)) return &r->rows[i];
    return NULL;
}

static void put_str(FILE *f, const char *s) {
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void put_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.17g", v);
    else fputs("null", f);
}

int mp_eval_result_save(const mp_eval_result *r, const char *path, mp_error *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return mp_fail(err, MP_EIO, "%s: cannot write: %s", path, strerror(errno));
    fprintf(f, "{\"format\": \"%s\", \"version\": %d, \"eval\": ", MP_EVAL_RESULT_FORMAT, MP_EVAL_RESULT_VERSION);
    put_str(f, r->eval);
    fputs(",\n \"model\": ", f);
    put_str(f, r->model);
    fputs(", \"mask\": ", f);
    put_str(f, r->mask);
    fprintf(f, ",\n \"settings\": %s,\n \"metric\": ", r->settings_json ? r->settings_json : "{}");
    put_str(f, r->metric);
    fprintf(f, ", \"higher_is_better\": %s,\n \"rows\": [", r->higher_is_better ? "true" : "false");
    for (size_t i = 0; i < r->n_rows; i++) {
        const mp_eval_row *w = &r->rows[i];
        fputs(i ? ",\n  {\"kind\": " : "\n  {\"kind\": ", f);
        put_str(f, w->kind);
        fputs(", \"name\": ", f);
        put_str(f, w->name);
        fprintf(f, ", \"n\": %zu, \"value\": ", w->n);
        put_num(f, w->value);
        fputs(", \"acc\": ", f);
        put_num(f, w->acc);
        fputs(", \"acc_norm\": ", f);
        put_num(f, w->acc_norm);
        fputs(", \"extra\": ", f);
        put_num(f, w->extra);
        fputs(", \"value_metric\": ", f);
        put_str(f, w->value_metric);
        fputs(", \"stderr\": ", f);
        put_num(f, w->se);
        if (w->items) {
            fputs(",\n   \"items\": [", f);
            for (size_t k = 0; k < w->n_items; k++) {
                if (k) fputs(", ", f);
                put_num(f, w->items[k]);
            }
            fputs("], \"item_weights\": ", f);
            if (w->item_w) {
                fputc('[', f);
                for (size_t k = 0; k < w->n_items; k++) {
                    if (k) fputs(", ", f);
                    put_num(f, w->item_w[k]);
                }
                fputc(']', f);
            } else {
                fputs("null", f);
            }
        }
        fputc('}', f);
    }
    fputs("\n ]}\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return mp_fail(err, MP_EIO, "%s: write failed", path);
    return 0;
}

static double num_or_nan(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The optional per-row fields: value_metric, stderr, items, item_weights. */
static int load_row_stats(mp_eval_result *r, const cJSON *w, const char *path, mp_error *err) {
    const cJSON *vm = cJSON_GetObjectItemCaseSensitive(w, "value_metric");
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(w, "items");
    const cJSON *iw = cJSON_GetObjectItemCaseSensitive(w, "item_weights");
    size_t n = cJSON_IsArray(it) ? (size_t)cJSON_GetArraySize(it) : 0;
    MP_FAIL_IF(cJSON_IsArray(iw) && (size_t)cJSON_GetArraySize(iw) != n, err, MP_EINPUT,
               "%s: row '%s': item_weights and items differ in length", path, r->rows[r->n_rows - 1].name);
    double *a = n ? malloc(n * sizeof *a) : NULL, *b = n && cJSON_IsArray(iw) ? malloc(n * sizeof *b) : NULL;
    MP_FAIL_IF(n && (!a || (cJSON_IsArray(iw) && !b)), err, MP_ENOMEM, "out of memory");
    for (size_t k = 0; k < n; k++) {
        const cJSON *x = cJSON_GetArrayItem(it, (int)k);
        a[k] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
        if (b) {
            x = cJSON_GetArrayItem(iw, (int)k);
            b[k] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
        }
    }
    int rc = mp_eval_result_annotate(r, num_or_nan(w, "stderr"), cJSON_IsString(vm) ? vm->valuestring : NULL, a, b, n,
                                     err);
    free(a);
    free(b);
    return rc;
}

int mp_eval_result_load(const char *path, mp_eval_result *r, mp_error *err) {
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "rb");
    if (!f) return mp_fail(err, MP_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len + 65536 > cap) {
            cap = cap ? cap * 2 : 131072;
            char *nb = realloc(buf, cap);
            if (!nb) {
                rc = mp_fail(err, MP_ENOMEM, "out of memory");
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    fclose(f);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    cJSON *o = cJSON_ParseWithLength(buf ? buf : "", len);
    free(buf);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(o, "format");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "version");
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(o, "rows");
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(o, "eval");
    const cJSON *metric = cJSON_GetObjectItemCaseSensitive(o, "metric");
    if (!o) {
        rc = mp_fail(err, MP_EINPUT, "%s: not valid JSON", path);
    } else if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, MP_EVAL_RESULT_FORMAT)) {
        rc = mp_fail(err, MP_EINPUT, "%s: not a monet-probe eval result (write one with `eval ... --json OUT`)", path);
    } else if (!cJSON_IsNumber(ver) || ver->valueint != MP_EVAL_RESULT_VERSION) {
        rc = mp_fail(err, MP_EINPUT, "%s: result version %d, this monet-probe reads version %d (re-run the eval)",
                     path, cJSON_IsNumber(ver) ? ver->valueint : -1, MP_EVAL_RESULT_VERSION);
    } else if (!cJSON_IsArray(rows) || !cJSON_IsString(ev) || !cJSON_IsString(metric)) {
        rc = mp_fail(err, MP_EINPUT, "%s: missing eval, metric or rows", path);
    } else {
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(o, "model");
        const cJSON *mask = cJSON_GetObjectItemCaseSensitive(o, "mask");
        rc = mp_eval_result_init(r, ev->valuestring, cJSON_IsString(model) ? model->valuestring : "",
                                 cJSON_IsString(mask) ? mask->valuestring : NULL, metric->valuestring,
                                 !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "higher_is_better")), err);
        const cJSON *w;
        cJSON_ArrayForEach(w, rows) {
            if (rc < 0) break;
            const cJSON *k = cJSON_GetObjectItemCaseSensitive(w, "kind"), *nm = cJSON_GetObjectItemCaseSensitive(w, "name");
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(w, "n");
            if (!cJSON_IsString(k) || !cJSON_IsString(nm) || !cJSON_IsNumber(n) || n->valuedouble < 0) {
                rc = mp_fail(err, MP_EINPUT, "%s: a row lacks kind, name or n", path);
                break;
            }
            rc = mp_eval_result_add(r, k->valuestring, nm->valuestring, (size_t)n->valuedouble, num_or_nan(w, "value"),
                                    num_or_nan(w, "acc"), num_or_nan(w, "acc_norm"), num_or_nan(w, "extra"), err);
            if (rc == 0) rc = load_row_stats(r, w, path, err);
        }
    }
    cJSON_Delete(o);
    if (rc < 0) mp_eval_result_free(r);
    return rc;
}
