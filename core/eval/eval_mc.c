/* core/eval/eval_mc.c — scores multiple-choice documents (see eval_mc.h). */
#include "core/eval/eval_mc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/eval/pyrandom.h"

void mp_mc_score_free(mp_mc_score *s) {
    if (!s) return;
    free(s->hit);
    free(s->hit_norm);
    memset(s, 0, sizeof *s);
}

static int score_push(mp_mc_score *s, int hit, int hit_norm, mp_error *err) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        double *a = realloc(s->hit, cap * sizeof *a);
        MP_FAIL_IF(!a, err, MP_ENOMEM, "out of memory");
        s->hit = a;
        double *b = realloc(s->hit_norm, cap * sizeof *b);
        MP_FAIL_IF(!b, err, MP_ENOMEM, "out of memory");
        s->hit_norm = b;
        s->cap = cap;
    }
    s->hit[s->n] = hit;
    s->hit_norm[s->n] = hit_norm;
    s->n++;
    s->correct += (size_t)hit;
    s->correct_norm += (size_t)hit_norm;
    return 0;
}

static int str_eq(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

/* The harness's `x != doc` (dict comparison) on our documents. */
static int doc_equal(const mp_mc_doc *a, const mp_mc_doc *b) {
    if (a->n_choices != b->n_choices || a->gold != b->gold || !str_eq(a->query, b->query) ||
        !str_eq(a->context, b->context))
        return 0;
    for (int i = 0; i < a->n_choices; i++)
        if (!str_eq(a->choices[i], b->choices[i])) return 0;
    return 1;
}

void mp_mc_runner_free(mp_mc_runner *r) {
    if (!r) return;
    free(r->prefix);
    free(r->prefix_ids);
    r->prefix = NULL;
    r->prefix_ids = NULL;
    r->n_prefix_ids = 0;
}

/* Leading context tokens that are the shared prefix: the common prefix of the
 * context's ids with the prefix string's own encoding (a pure function of the
 * item, so every item is scored the same way whatever ran before it). */
static int prefix_keep(mp_mc_runner *r, const char *ctx, size_t prefix_len, const int32_t *ids, size_t n,
                       size_t *keep, mp_error *err) {
    *keep = 0;
    if (prefix_len == 0) return 0;
    if (!r->prefix || strlen(r->prefix) != prefix_len || memcmp(r->prefix, ctx, prefix_len)) {
        mp_mc_runner_free(r);
        r->prefix = malloc(prefix_len + 1);
        MP_FAIL_IF(!r->prefix, err, MP_ENOMEM, "out of memory");
        memcpy(r->prefix, ctx, prefix_len);
        r->prefix[prefix_len] = '\0';
        MP_TRY(mp_tokenizer_encode(r->tok, ctx, prefix_len, r->add_bos, &r->prefix_ids, &r->n_prefix_ids, err));
    }
    *keep = mp_mcq_common_prefix(r->prefix_ids, r->n_prefix_ids, ids, n);
    return 0;
}

/* One item waiting for its engine call: its request and, per scoring group
 * (one shared context, or one context per choice), the encoded ids. */
typedef struct mc_item {
    mp_mc_request rq;
    size_t index;
    int n_groups;
    int c0[MP_MC_MAX_CHOICES], c1[MP_MC_MAX_CHOICES]; /* group g scores choices [c0, c1) */
    int32_t *ctx_ids[MP_MC_MAX_CHOICES];
    size_t n_ctx[MP_MC_MAX_CHOICES], keep[MP_MC_MAX_CHOICES];
    int32_t *cids[MP_MC_MAX_CHOICES];
    size_t nc[MP_MC_MAX_CHOICES];
    mp_mcq_result res[MP_MC_MAX_CHOICES];
} mc_item;

static void mc_item_free(mc_item *it) {
    for (int c = 0; c < MP_MC_MAX_CHOICES; c++) {
        free(it->ctx_ids[c]);
        free(it->cids[c]);
    }
    mp_mc_request_free(&it->rq);
    memset(it, 0, sizeof *it);
}

/* Encode choice set [c0, c1) that shares context string ctx as group g. */
static int encode_group(mp_mc_runner *r, mc_item *it, int g, const char *ctx, int c0, int c1, mp_error *err) {
    const mp_mc_request *rq = &it->rq;
    int rc = 0;
    it->c0[g] = c0;
    it->c1[g] = c1;
    for (int c = c0; c < c1 && rc == 0; c++) {
        int32_t *x = NULL;
        size_t nx = 0;
        rc = mp_mcq_encode_pair(r->tok, r->add_bos, ctx, strlen(ctx), rq->cont[c], strlen(rq->cont[c]), &x, &nx,
                                &it->cids[c], &it->nc[c], err);
        if (rc == 0 && !it->ctx_ids[g]) {
            it->ctx_ids[g] = x;
            it->n_ctx[g] = nx;
        } else {
            free(x);
        }
    }
    if (rc == 0) rc = prefix_keep(r, ctx, rq->prefix_len, it->ctx_ids[g], it->n_ctx[g], &it->keep[g], err);
    return rc;
}

/* Score every group of items [0, n): one mp_mcq_score_batch call. */
static int score_items(mp_mc_runner *r, mc_item *items, size_t n, mp_error *err) {
    mp_mcq_item *q = calloc(n * MP_MC_MAX_CHOICES, sizeof *q);
    MP_FAIL_IF(!q, err, MP_ENOMEM, "out of memory");
    size_t nq = 0;
    for (size_t i = 0; i < n; i++)
        for (int g = 0; g < items[i].n_groups; g++) {
            mc_item *it = &items[i];
            int c0 = it->c0[g];
            q[nq++] = (mp_mcq_item){it->ctx_ids[g], it->n_ctx[g], it->keep[g], (const int32_t *const *)(it->cids + c0),
                                    it->nc + c0, (size_t)(it->c1[g] - c0), it->res + c0, 0};
        }
    int rc = mp_mcq_score_batch(r->q, q, nq, err);
    for (size_t k = 0; rc == 0 && k < nq; k++) r->truncated += (size_t)q[k].truncated;
    free(q);
    return rc;
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void write_item(FILE *f, mp_mc_task task, const char *subject, size_t index, const mp_mc_doc *d,
                       const mp_mc_request *rq, const mp_mcq_result *res, int pred, int pred_norm) {
    fprintf(f, "{\"task\": \"%s\", ", mp_mc_task_get(task)->name);
    if (subject) {
        fputs("\"subject\": ", f);
        json_str(f, subject);
        fputs(", ", f);
    }
    fprintf(f, "\"index\": %zu, \"id\": ", index);
    json_str(f, d->id ? d->id : "");
    fprintf(f, ", \"gold\": %d, \"pred\": %d, \"pred_norm\": %d, \"loglik\": [", rq->gold, pred, pred_norm);
    for (int c = 0; c < rq->n_choices; c++) fprintf(f, "%s%.17g", c ? ", " : "", res[c].loglik);
    fputs("], \"n_tokens\": [", f);
    for (int c = 0; c < rq->n_choices; c++) fprintf(f, "%s%d", c ? ", " : "", res[c].n_tokens);
    fputs("], \"norm_len\": [", f);
    for (int c = 0; c < rq->n_choices; c++) fprintf(f, "%s%zu", c ? ", " : "", rq->norm_len[c]);
    fputs("], \"is_greedy\": [", f);
    for (int c = 0; c < rq->n_choices; c++) fprintf(f, "%s%s", c ? ", " : "", res[c].is_greedy ? "true" : "false");
    fputs("]}\n", f);
}

static void flush_units(mp_mc_runner *r, int force) {
    int b = r->batch > 0 ? r->batch : 1;
    if (r->pending >= (size_t)b || (force && r->pending)) {
        if (r->prog) mp_progress_add(r->prog, r->pending);
        if (r->items) fflush(r->items);
        r->pending = 0;
    }
}

/* Accuracy bookkeeping and the items file for one scored item. */
static int finish_item(mp_mc_runner *r, mp_mc_task task, const char *subject, const mp_mc_set *docs,
                       const mc_item *it, mp_mc_score *out, mp_error *err) {
    const mp_mc_request *rq = &it->rq;
    const mp_mcq_result *res = it->res;
    int pred = 0, pred_norm = 0;
    for (int c = 1; c < rq->n_choices; c++) {
        if (res[c].loglik > res[pred].loglik) pred = c;
        double a = res[c].loglik / (double)(rq->norm_len[c] ? rq->norm_len[c] : 1);
        double b = res[pred_norm].loglik / (double)(rq->norm_len[pred_norm] ? rq->norm_len[pred_norm] : 1);
        if (a > b) pred_norm = c;
    }
    MP_TRY(score_push(out, pred == rq->gold, pred_norm == rq->gold, err));
    if (r->items) write_item(r->items, task, subject, it->index, &docs->docs[it->index], rq, res, pred, pred_norm);
    r->pending++;
    flush_units(r, 0);
    return 0;
}

static int item_error(mp_mc_task task, const char *subject, size_t i, mp_error *err) {
    mp_error_prefix(err, "%s%s%s item %zu", mp_mc_task_get(task)->name, subject ? "/" : "", subject ? subject : "",
                    i);
    return err ? err->code : MP_EINPUT;
}

void mp_mc_sampler_init(mp_mc_sampler *s, mp_mc_task task, const mp_mc_set *docs, const mp_mc_set *shot_pool) {
    memset(s, 0, sizeof *s);
    s->pool = shot_pool ? shot_pool : docs;
    s->from_eval = !shot_pool;
    s->first_n = task == MP_TASK_MMLU;                          /* fewshot_config sampler: first_n */
    s->extra = !shot_pool || mp_mc_task_get(task)->fewshot_extra; /* draw k + 1, drop the item */
    mp_pyrandom_seed(&s->rnd, 1234);                            /* lm-eval's fewshot_random_seed, per task */
}

int mp_mc_sampler_pick(mp_mc_sampler *s, const mp_mc_set *docs, size_t i, int n_shots, mp_mc_doc *shots, int *k,
                       mp_error *err) {
    const mp_mc_set *pool = s->pool;
    size_t pick[MP_MC_MAX_SHOTS + 1];
    *k = 0;
    MP_FAIL_IF(n_shots < 0 || n_shots > MP_MC_MAX_SHOTS, err, MP_EINPUT, "--shots %d: at most %d", n_shots, MP_MC_MAX_SHOTS);
    if (n_shots == 0) return 0;
    if (s->first_n) {
        for (size_t j = 0; j < pool->n && *k < n_shots; j++)
            if (!s->from_eval || j != i) shots[(*k)++] = pool->docs[j];
        return 0;
    }
    size_t draw = (size_t)n_shots + (size_t)s->extra;
    MP_FAIL_IF(draw > pool->n, err, MP_EINPUT, "%d few-shot examples requested, %zu available", n_shots,
               pool->n - (size_t)s->from_eval);
    MP_TRY(mp_pyrandom_sample(&s->rnd, pool->n, draw, pick, err));
    for (size_t j = 0; j < draw && *k < n_shots; j++) {
        const mp_mc_doc *x = &pool->docs[pick[j]];
        if (s->from_eval ? pick[j] == i : doc_equal(x, &docs->docs[i])) continue; /* x != doc */
        shots[(*k)++] = *x;
    }
    return 0;
}

int mp_mc_run(mp_mc_runner *r, mp_mc_task task, const char *subject, const mp_mc_set *docs, size_t limit,
              const mp_mc_set *shot_pool, int n_shots, mp_mc_score *out, mp_error *err) {
    size_t n = limit && limit < docs->n ? limit : docs->n;
    mp_mc_doc shots[MP_MC_MAX_SHOTS];
    MP_FAIL_IF(n_shots < 0 || n_shots > MP_MC_MAX_SHOTS, err, MP_EINPUT, "--shots %d: at most %d", n_shots,
               MP_MC_MAX_SHOTS);
    const mp_mc_set *pool = shot_pool ? shot_pool : docs;
    MP_FAIL_IF((size_t)n_shots > pool->n - (shot_pool ? 0 : 1), err, MP_EINPUT,
               "%s: %d few-shot examples requested, %zu available", mp_mc_task_get(task)->name, n_shots,
               pool->n - (shot_pool ? 0 : 1));
    /* items per engine call: as many as the engine has slots (a WinoGrande
     * item takes one per choice), never more than `batch` */
    size_t per = (size_t)mp_mcq_slots(r->q);
    if (r->batch > 0 && (size_t)r->batch < per) per = (size_t)r->batch;
    mc_item *items = calloc(per, sizeof *items);
    MP_FAIL_IF(!items, err, MP_ENOMEM, "out of memory");
    size_t ni = 0;
    int rc = 0;
    mp_mc_sampler smp;
    mp_mc_sampler_init(&smp, task, docs, shot_pool);
    for (size_t i = 0; i < n && rc == 0; i++) {
        int k = 0;
        if ((rc = mp_mc_sampler_pick(&smp, docs, i, n_shots, shots, &k, err)) < 0) {
            mp_error_prefix(err, "%s", mp_mc_task_get(task)->name);
            break;
        }
        mc_item *it = &items[ni++];
        it->index = i;
        if ((rc = mp_mc_format(task, &docs->docs[i], subject, shots, (size_t)k, &it->rq, err)) < 0) {
            ni--; /* nothing to free: the request was not filled */
            break;
        }
        const mp_mc_request *rq = &it->rq;
        if (rq->n_ctx == 1) {
            it->n_groups = 1;
            rc = encode_group(r, it, 0, rq->ctx[0], 0, rq->n_choices, err);
        } else {
            it->n_groups = rq->n_choices;
            for (int c = 0; c < rq->n_choices && rc == 0; c++) rc = encode_group(r, it, c, rq->ctx[c], c, c + 1, err);
        }
        if (rc < 0) {
            rc = item_error(task, subject, i, err);
            break;
        }
        if (ni < per && i + 1 < n) continue;
        if ((rc = score_items(r, items, ni, err)) < 0) {
            /* which item: score them alone (deterministic, so the same error recurs) */
            for (size_t x = 0; x < ni; x++)
                if (score_items(r, &items[x], 1, err) < 0) {
                    rc = item_error(task, subject, items[x].index, err);
                    break;
                }
            break;
        }
        for (size_t x = 0; x < ni; x++) {
            if (rc == 0) rc = finish_item(r, task, subject, docs, &items[x], out, err);
            mc_item_free(&items[x]);
        }
        ni = 0;
    }
    for (size_t x = 0; x < ni; x++) mc_item_free(&items[x]);
    free(items);
    if (rc < 0) return rc;
    flush_units(r, 1);
    return 0;
}

/* ---- MMLU over subjects ------------------------------------------------------ */

typedef struct {
    const char *name;
    size_t n, correct;
    size_t n_sub;        /* subjects in the group */
    double *se;          /* [n_sel] per-member standard errors (pooled like lm-eval) */
    size_t *sizes;       /* [n_sel] per-member sizes */
    double *items;       /* [n] the group's questions, subject order */
} tally;

static void tallies_free(tally *t, size_t n) {
    for (size_t i = 0; t && i < n; i++) {
        free(t[i].se);
        free(t[i].sizes);
        free(t[i].items);
    }
    free(t);
}

/* Add one member (subject or sub-group) of size s->n, standard error se, scores items. */
static int tally_add(tally *t, size_t *nt, size_t cap, const char *name, size_t n, size_t correct, double se,
                     const double *items, mp_error *err) {
    size_t i = 0;
    while (i < *nt && strcmp(t[i].name, name)) i++;
    MP_FAIL_IF(i == cap, err, MP_EINTERNAL, "too many MMLU categories");
    if (i == *nt) {
        memset(&t[i], 0, sizeof t[i]);
        t[i].name = name;
        t[i].se = malloc(cap * sizeof *t[i].se);
        t[i].sizes = malloc(cap * sizeof *t[i].sizes);
        (*nt)++;
        MP_FAIL_IF(!t[i].se || !t[i].sizes, err, MP_ENOMEM, "out of memory");
    }
    double *it = realloc(t[i].items, (t[i].n + n + 1) * sizeof *it);
    MP_FAIL_IF(!it, err, MP_ENOMEM, "out of memory");
    t[i].items = it;
    memcpy(it + t[i].n, items, n * sizeof *it);
    t[i].n += n;
    t[i].correct += correct;
    t[i].se[t[i].n_sub] = se;
    t[i].sizes[t[i].n_sub] = n;
    t[i].n_sub++;
    return 0;
}

/* One group row: size-weighted accuracy, lm-eval's pooled stderr, the questions. */
static int tally_row(mp_eval_result *res, const char *kind, const tally *t, mp_error *err) {
    double a = (double)t->correct / (double)t->n;
    MP_TRY(mp_eval_result_add(res, kind, t->name, t->n, a, a, NAN, NAN, err));
    return mp_eval_result_annotate(res, mp_stderr_pooled(t->se, t->sizes, t->n_sub), "acc", t->items, NULL, t->n, err);
}

/* Subjects selected (indices into the table), checking names. */
static int select_subjects(const mp_mmlu_subject *all, size_t n_all, const char *const *subjects, size_t n_subjects,
                           size_t *sel, size_t *n_sel, mp_error *err) {
    *n_sel = 0;
    if (!subjects || n_subjects == 0) {
        for (size_t i = 0; i < n_all; i++) sel[(*n_sel)++] = i;
        return 0;
    }
    for (size_t k = 0; k < n_subjects; k++) {
        size_t i = 0;
        while (i < n_all && strcmp(all[i].name, subjects[k])) i++;
        MP_FAIL_IF(i == n_all, err, MP_EINPUT, "unknown MMLU subject '%s' (names as in mmlu/subjects.tsv, e.g. "
                   "abstract_algebra)", subjects[k]);
        for (size_t j = 0; j < *n_sel; j++)
            MP_FAIL_IF(sel[j] == i, err, MP_EINPUT, "MMLU subject '%s' given twice", subjects[k]);
        sel[(*n_sel)++] = i;
    }
    return 0;
}

int mp_mmlu_count(const char *data_dir, const char *const *subjects, size_t n_subjects, size_t limit, size_t *n,
                  mp_error *err) {
    mp_mmlu_subject *all = NULL;
    size_t n_all = 0, n_sel = 0;
    *n = 0;
    MP_TRY(mp_mmlu_subjects_load(data_dir, &all, &n_all, err));
    size_t *sel = malloc(n_all * sizeof *sel);
    int rc = sel ? select_subjects(all, n_all, subjects, n_subjects, sel, &n_sel, err)
                 : mp_fail(err, MP_ENOMEM, "out of memory");
    for (size_t k = 0; rc == 0 && k < n_sel; k++) {
        size_t t = all[sel[k]].n_test;
        *n += limit && limit < t ? limit : t;
    }
    free(sel);
    mp_mmlu_subjects_free(all, n_all);
    return rc;
}

int mp_mmlu_run(mp_mc_runner *r, const char *data_dir, const char *const *subjects, size_t n_subjects, int n_shots,
                size_t limit, mp_eval_result *res, double *acc, mp_error *err) {
    mp_mmlu_subject *all = NULL;
    size_t n_all = 0, n_sel = 0, n_cat = 0, n_sup = 0, n_top = 0;
    MP_TRY(mp_mmlu_subjects_load(data_dir, &all, &n_all, err));
    int rc = 0;
    size_t *sel = malloc(n_all * sizeof *sel);
    tally *cat = calloc(n_all, sizeof *cat), *sup = calloc(n_all, sizeof *sup), *top = calloc(1, sizeof *top);
    double macro = 0, macro_var = 0;
    if (!sel || !cat || !sup || !top) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = select_subjects(all, n_all, subjects, n_subjects, sel, &n_sel, err)) < 0) goto cleanup;
    for (size_t k = 0; k < n_sel; k++) {
        const mp_mmlu_subject *s = &all[sel[k]];
        mp_mc_set test = {0}, dev = {0};
        mp_mc_score sc = {0};
        rc = mp_mc_load(MP_TASK_MMLU, data_dir, s->name, "test", &test, err);
        if (rc == 0 && n_shots > 0) rc = mp_mc_load(MP_TASK_MMLU, data_dir, s->name, "dev", &dev, err);
        if (rc == 0) rc = mp_mc_run(r, MP_TASK_MMLU, s->name, &test, limit, n_shots > 0 ? &dev : NULL, n_shots, &sc, err);
        mp_mc_set_free(&test);
        mp_mc_set_free(&dev);
        double a = sc.n ? (double)sc.correct / (double)sc.n : NAN, se = mp_stderr_binary(sc.correct, sc.n);
        if (rc == 0) rc = mp_eval_result_add(res, "subject", s->name, sc.n, a, a, NAN, NAN, err);
        if (rc == 0) rc = mp_eval_result_annotate(res, se, "acc", sc.hit, NULL, sc.n, err);
        if (rc == 0) rc = tally_add(cat, &n_cat, n_all, s->category, sc.n, sc.correct, se, sc.hit, err);
        if (rc == 0) rc = tally_add(sup, &n_sup, n_all, s->supercategory, sc.n, sc.correct, se, sc.hit, err);
        mp_mc_score_free(&sc);
        if (rc < 0) goto cleanup;
        macro += a;
        macro_var += se * se;
    }
    for (size_t i = 0; i < n_cat && rc == 0; i++) rc = tally_row(res, "category", &cat[i], err);
    for (size_t i = 0; i < n_sup && rc == 0; i++) rc = tally_row(res, "supercategory", &sup[i], err);
    /* the harness's mmlu group pools its four sub-groups (stem, humanities, social sciences, other) */
    for (size_t i = 0; i < n_sup && rc == 0; i++)
        rc = tally_add(top, &n_top, n_sup, "mmlu", sup[i].n, sup[i].correct,
                       mp_stderr_pooled(sup[i].se, sup[i].sizes, sup[i].n_sub), sup[i].items, err);
    if (rc == 0 && n_top == 1) {
        rc = tally_row(res, "average", &top[0], err);
        if (acc) *acc = (double)top[0].correct / (double)top[0].n;
    }
    if (rc == 0) {
        /* unweighted mean of subjects: independent subjects, se = sqrt(sum se_i^2) / k */
        double m = macro / (double)n_sel;
        rc = mp_eval_result_add(res, "average", "mmlu_subject_macro", top[0].n, m, m, NAN, NAN, err);
        if (rc == 0) rc = mp_eval_result_annotate(res, sqrt(macro_var) / (double)n_sel, "acc", NULL, NULL, 0, err);
    }
cleanup:
    free(sel);
    tallies_free(cat, n_cat);
    tallies_free(sup, n_sup);
    tallies_free(top, n_top);
    mp_mmlu_subjects_free(all, n_all);
    return rc;
}
