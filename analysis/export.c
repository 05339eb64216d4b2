/* analysis/export.c — write a store as expert JSONL or Neuronpedia's upload
 * files (export.h). Every string goes through cJSON, so the output is valid
 * JSON whatever the corpus held. */
#include "analysis/export.h"

#include <cJSON.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/context.h"
#include "core/store/evidence_read.h"
#include "core/model/expert_addr.h"

typedef struct exp_ctx {
    mp_store *st;
    sqlite3 *db;
    const mp_export_opts *o;
    mp_store_shape sh;
    mp_tokenizer *tok;
    mp_routing routing;
    int have_routing;
} exp_ctx;

/* Write obj as one line and free it. */
static int put_line(FILE *f, cJSON *obj, mp_error *err) {
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!s) return mp_fail(err, MP_ENOMEM, "out of memory");
    int bad = fputs(s, f) < 0 || fputc('\n', f) == EOF;
    free(s);
    return bad ? mp_fail(err, MP_EIO, "export: write failed") : 0;
}

static cJSON *label_stats(exp_ctx *x, int g, long e) {
    cJSON *arr = cJSON_CreateArray();
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(x->db,
                           "SELECT field, value, n_active, sum_w FROM label_stats WHERE grp = ?1 AND expert = ?2 "
                           "ORDER BY n_active DESC, field, value",
                           -1, &q, NULL) != SQLITE_OK)
        return arr;
    sqlite3_bind_int(q, 1, g);
    sqlite3_bind_int64(q, 2, e);
    while (sqlite3_step(q) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        const char *f = (const char *)sqlite3_column_text(q, 0), *v = (const char *)sqlite3_column_text(q, 1);
        long long n = sqlite3_column_int64(q, 2);
        cJSON_AddStringToObject(o, "field", f ? f : "");
        cJSON_AddStringToObject(o, "value", v ? v : "");
        cJSON_AddNumberToObject(o, "n_active", (double)n);
        cJSON_AddNumberToObject(o, "mean", n ? sqlite3_column_double(q, 3) / (double)n : 0.0);
        cJSON_AddItemToArray(arr, o);
    }
    sqlite3_finalize(q);
    return arr;
}

/* One context as a JSON object (jsonl) or a Neuronpedia Activation. */
static int context_json(exp_ctx *x, int g, long e, const mp_store_hit *h, const char *layer, cJSON **out,
                        mp_error *err) {
    mp_context c;
    *out = NULL;
    MP_TRY(mp_context_load(x->st, x->tok, x->sh.window, h->doc, h->pos, x->o->context_tokens, &c, err));
    int rc = 0;
    if (x->o->engine) rc = mp_context_score(x->o->engine, &x->routing, &c, g, (int)(e / x->sh.E), (int)(e % x->sh.E), err);
    char *labels = NULL, *source = NULL;
    int64_t line = 0;
    if (rc == 0 && mp_store_get_doc(x->st, h->doc, &labels, &source, &line, err) < 0) rc = err->code;
    if (rc < 0) {
        mp_context_free(&c);
        return rc;
    }
    const size_t ns = c.to - c.from, ti = c.t - c.from;
    cJSON *o = cJSON_CreateObject(), *toks = cJSON_CreateArray(), *vals = cJSON_CreateArray();
    double vmin = 0;
    for (size_t k = 0; k < ns; k++) {
        double v = c.scores ? c.scores[k] : k == ti ? h->w : 0.0;
        if (k == 0 || v < vmin) vmin = v;
        cJSON_AddItemToArray(toks, cJSON_CreateString(c.pieces[k]));
        cJSON_AddItemToArray(vals, cJSON_CreateNumber(v));
    }
    if (x->o->format == MP_EXPORT_NEURONPEDIA) {
        char id[160], idx[32], di[32];
        snprintf(idx, sizeof idx, "%ld", e);
        snprintf(id, sizeof id, "%s-%ld-%d", layer, e, h->rank);
        snprintf(di, sizeof di, "%llu", (unsigned long long)h->doc);
        cJSON_AddStringToObject(o, "id", id);
        cJSON_AddItemToObject(o, "tokens", toks);
        cJSON_AddStringToObject(o, "index", idx);
        cJSON_AddStringToObject(o, "layer", layer);
        cJSON_AddStringToObject(o, "modelId", x->o->model_id ? x->o->model_id : "monet");
        cJSON_AddNumberToObject(o, "maxValue", h->w);
        cJSON_AddNumberToObject(o, "maxValueTokenIndex", (double)ti);
        cJSON_AddNumberToObject(o, "minValue", vmin);
        cJSON_AddItemToObject(o, "values", vals);
        cJSON_AddStringToObject(o, "creatorId", "monet-probe");
        cJSON_AddStringToObject(o, "dataSource", source ? source : "");
        cJSON_AddStringToObject(o, "dataIndex", di);
    } else {
        cJSON_AddNumberToObject(o, "rank", h->rank);
        cJSON_AddNumberToObject(o, "w", h->w);
        cJSON_AddNumberToObject(o, "doc", (double)h->doc);
        cJSON_AddNumberToObject(o, "pos", h->pos);
        cJSON_AddStringToObject(o, "source", source ? source : "");
        cJSON_AddNumberToObject(o, "line", (double)line);
        cJSON *lj = labels ? cJSON_Parse(labels) : NULL;
        cJSON_AddItemToObject(o, "labels", cJSON_IsObject(lj) ? lj : (cJSON_Delete(lj), cJSON_CreateObject()));
        char *text = mp_context_join(&c, 0, ns, 0);
        cJSON_AddStringToObject(o, "text", text ? text : "");
        free(text);
        cJSON_AddItemToObject(o, "tokens", toks);
        cJSON *idv = cJSON_CreateArray();
        for (size_t k = c.from; k < c.to; k++) cJSON_AddItemToArray(idv, cJSON_CreateNumber(c.ids[k]));
        cJSON_AddItemToObject(o, "ids", idv);
        cJSON_AddNumberToObject(o, "token_index", (double)ti);
        if (c.scores) cJSON_AddItemToObject(o, "scores", vals);
        else cJSON_Delete(vals);
    }
    free(labels);
    free(source);
    mp_context_free(&c);
    *out = o;
    return 0;
}

static int one_expert(exp_ctx *x, int g, long e, long long n_active, double sum_w, double max_w, uint64_t group_tokens,
                      FILE *out, FILE *out2, mp_export_summary *sum, mp_error *err) {
    const mp_export_opts *o = x->o;
    char addr[64], layer[64];
    const int E = x->sh.E, first = g * x->sh.moe_groups;
    const int last = first + x->sh.moe_groups - 1 < x->sh.n_layers - 1 ? first + x->sh.moe_groups - 1 : x->sh.n_layers - 1;
    mp_expert_addr_format(addr, sizeof addr, g, (int)(e / E), (int)(e % E));
    snprintf(layer, sizeof layer, "%d-monet-g%d", first, g);
    mp_store_hit *hits = NULL;
    size_t nh = 0;
    MP_TRY(mp_store_topk(x->st, g, (uint32_t)e, &hits, &nh, err));
    if (o->contexts > 0 && (size_t)o->contexts < nh) nh = (size_t)o->contexts;
    cJSON *ctxs = cJSON_CreateArray();
    int rc = 0;
    for (size_t k = 0; k < nh && rc == 0; k++) {
        cJSON *c = NULL;
        if ((rc = context_json(x, g, e, &hits[k], layer, &c, err)) < 0) break;
        if (o->format == MP_EXPORT_NEURONPEDIA) rc = put_line(out2, c, err);
        else cJSON_AddItemToArray(ctxs, c);
        sum->contexts++;
    }
    free(hits);
    hits = NULL;
    /* quantile samples (jsonl only): contexts of the same schema plus their octave */
    cJSON *qs = cJSON_CreateArray();
    if (rc == 0 && o->format != MP_EXPORT_NEURONPEDIA) rc = mp_store_qsamples(x->st, g, (uint32_t)e, &hits, &nh, err);
    else nh = 0;
    for (size_t k = 0; k < nh && rc == 0; k++) {
        cJSON *c = NULL;
        int octave = hits[k].rank;
        hits[k].rank = (int)k;
        if ((rc = context_json(x, g, e, &hits[k], layer, &c, err)) < 0) break;
        cJSON_AddNumberToObject(c, "octave", octave);
        cJSON_AddItemToArray(qs, c);
    }
    free(hits);
    uint64_t hist[MP_HIST_BINS];
    if (rc == 0) rc = mp_store_hist(x->st, g, (uint32_t)e, hist, err);
    if (rc < 0) {
        cJSON_Delete(ctxs);
        cJSON_Delete(qs);
        return rc;
    }
    int b0 = MP_HIST_BINS, b1 = -1;
    for (int b = 0; b < MP_HIST_BINS; b++)
        if (hist[b]) b0 = b < b0 ? b : b0, b1 = b;
    cJSON *f = cJSON_CreateObject();
    if (o->format == MP_EXPORT_NEURONPEDIA) {
        char idx[32];
        snprintf(idx, sizeof idx, "%ld", e);
        cJSON_Delete(ctxs);
        cJSON_AddStringToObject(f, "modelId", o->model_id ? o->model_id : "monet");
        cJSON_AddStringToObject(f, "layer", layer);
        cJSON_AddStringToObject(f, "index", idx);
        cJSON_AddStringToObject(f, "creatorId", "monet-probe");
        cJSON_AddNumberToObject(f, "maxActApprox", max_w);
        cJSON_AddBoolToObject(f, "hasVector", 0);
        cJSON_AddNumberToObject(f, "frac_nonzero", group_tokens ? (double)n_active / (double)group_tokens : 0.0);
        cJSON_AddStringToObject(f, "vectorLabel", addr);
        /* Neuronpedia's activation-density histogram: parallel arrays, one bar per
         * half-octave bin of w from the lowest to the highest used, the value
         * being the bin's geometric centre */
        cJSON *hv = cJSON_CreateArray(), *hh = cJSON_CreateArray();
        for (int b = b0; b <= b1; b++) {
            double lo = b ? mp_hist_edge(b) : mp_hist_edge(1) / 1.4142135623730951;
            cJSON_AddItemToArray(hv, cJSON_CreateNumber(lo * 1.189207115002721)); /* 2^(1/4) */
            cJSON_AddItemToArray(hh, cJSON_CreateNumber((double)hist[b]));
        }
        cJSON_AddItemToObject(f, "freq_hist_data_bar_values", hv);
        cJSON_AddItemToObject(f, "freq_hist_data_bar_heights", hh);
        cJSON_Delete(qs);
    } else {
        cJSON *ly = cJSON_CreateArray();
        cJSON_AddItemToArray(ly, cJSON_CreateNumber(first));
        cJSON_AddItemToArray(ly, cJSON_CreateNumber(last));
        cJSON_AddStringToObject(f, "expert", addr);
        cJSON_AddNumberToObject(f, "group", g);
        cJSON_AddNumberToObject(f, "i", (double)(e / E));
        cJSON_AddNumberToObject(f, "j", (double)(e % E));
        cJSON_AddNumberToObject(f, "flat", (double)e);
        cJSON_AddItemToObject(f, "layers", ly);
        cJSON_AddNumberToObject(f, "n_active", (double)n_active);
        cJSON_AddNumberToObject(f, "frac_active", group_tokens ? (double)n_active / (double)group_tokens : 0.0);
        cJSON_AddNumberToObject(f, "mean", n_active ? sum_w / (double)n_active : 0.0);
        cJSON_AddNumberToObject(f, "max", max_w);
        cJSON_AddItemToObject(f, "label_stats", label_stats(x, g, e));
        cJSON_AddBoolToObject(f, "per_token_scores", o->engine != NULL);
        cJSON_AddItemToObject(f, "contexts", ctxs);
        cJSON *hj = cJSON_CreateArray();
        for (int b = b0; b <= b1; b++) {
            if (!hist[b]) continue;
            cJSON *bo = cJSON_CreateObject();
            cJSON_AddNumberToObject(bo, "bin", b);
            cJSON_AddNumberToObject(bo, "lo", mp_hist_edge(b));
            if (b + 1 < MP_HIST_BINS) cJSON_AddNumberToObject(bo, "hi", mp_hist_edge(b + 1));
            else cJSON_AddNullToObject(bo, "hi");
            cJSON_AddNumberToObject(bo, "n", (double)hist[b]);
            cJSON_AddItemToArray(hj, bo);
        }
        cJSON_AddItemToObject(f, "histogram", hj);
        cJSON_AddItemToObject(f, "quantile_samples", qs);
    }
    sum->experts++;
    return put_line(out, f, err);
}

int mp_export(mp_store *st, const mp_export_opts *o, FILE *out, FILE *out2, mp_export_summary *sum, mp_error *err) {
    memset(sum, 0, sizeof *sum);
    if (o->format == MP_EXPORT_NEURONPEDIA && !out2) return mp_fail(err, MP_EINPUT, "export: neuronpedia needs two outputs");
    exp_ctx x = {.st = st, .db = mp_store_db(st), .o = o};
    MP_TRY(mp_store_shape_read(st, &x.sh, err));
    void *tokbytes = NULL;
    size_t toklen = 0;
    int rc = mp_store_get_file(st, "tokenizer.model", &tokbytes, &toklen, err);
    if (rc == 0) return mp_fail(err, MP_EINPUT, "%s: corrupt store: no tokenizer.model", mp_store_path(st));
    if (rc < 0) return rc;
    rc = mp_tokenizer_load_from_memory(tokbytes, toklen, "tokenizer.model (in store)", &x.tok, err);
    free(tokbytes);
    if (rc < 0) return rc;
    uint64_t *gtok = calloc((size_t)x.sh.n_groups, sizeof *gtok);
    sqlite3_stmt *q = NULL;
    if (!gtok) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto done;
    }
    if (o->engine && !o->model) {
        rc = mp_fail(err, MP_EINPUT, "export: an engine needs its model");
        goto done;
    }
    if (o->engine && (rc = mp_routing_init(&x.routing, &o->model->cfg, err)) < 0) goto done;
    x.have_routing = o->engine != NULL;
    if (sqlite3_prepare_v2(x.db, "SELECT grp, tokens FROM groups", -1, &q, NULL) == SQLITE_OK)
        while (sqlite3_step(q) == SQLITE_ROW) {
            int g = sqlite3_column_int(q, 0);
            if (g >= 0 && g < x.sh.n_groups) gtok[g] = (uint64_t)sqlite3_column_int64(q, 1);
        }
    sqlite3_finalize(q);
    q = NULL;
    if (sqlite3_prepare_v2(x.db,
                           "SELECT grp, expert, n_active, sum_w, max_w FROM expert_stats WHERE n_active > 0 "
                           "ORDER BY n_active DESC, grp, expert LIMIT ?1",
                           -1, &q, NULL) != SQLITE_OK) {
        rc = mp_fail(err, MP_EINPUT, "%s: %s", mp_store_path(st), sqlite3_errmsg(x.db));
        goto done;
    }
    sqlite3_bind_int64(q, 1, o->max_experts ? (sqlite3_int64)o->max_experts : -1);
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        int g = sqlite3_column_int(q, 0);
        long e = (long)sqlite3_column_int64(q, 1);
        if (g < 0 || g >= x.sh.n_groups || e < 0 || e >= (long)x.sh.E * x.sh.E) {
            rc = mp_fail(err, MP_EINPUT, "%s: corrupt store: expert_stats row (%d, %ld) out of range",
                         mp_store_path(st), g, e);
            goto done;
        }
        if ((rc = one_expert(&x, g, e, sqlite3_column_int64(q, 2), sqlite3_column_double(q, 3),
                             sqlite3_column_double(q, 4), gtok[g], out, out2, sum, err)) < 0)
            goto done;
        if (o->progress) mp_progress_add(o->progress, 1);
    }
    if (step != SQLITE_DONE) rc = mp_fail(err, MP_EIO, "%s: %s", mp_store_path(st), sqlite3_errmsg(x.db));
done:
    sqlite3_finalize(q);
    free(gtok);
    if (x.have_routing) mp_routing_free(&x.routing);
    mp_tokenizer_free(x.tok);
    return rc < 0 ? rc : 0;
}
