/* analysis/browse.c — the expert browser site generator (see browse.h,
 * docs/browse.md): selects the listed experts with one ranked SQL query (or
 * from the specialist / correlation annotations), then writes one page per
 * expert, streaming each expert's top-K hits, windows, documents, label
 * statistics and shared-hit neighbours from SQLite, and finally the index and
 * its chunked data files.
 *
 * Co-activation: the store records no pairwise counts, so "co-activating
 * experts" are the experts whose own top-K lists contain the same (doc, pos)
 * tokens as this expert's top-K (a self-join of topk through its (doc, pos)
 * index, bounded by K x experts active per token). Pages say so.
 */
#include "browse.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analysis/analysis.h"
#include "analysis/context.h"
#include "analysis/effects.h"
#include "core/model/backend.h"
#include "core/model/routing.h"
#include "core/store/evidence_read.h"
#include "core/text/tokenizer.h"
#include "core/text/utf8.h"
#include "core/util/file.h"
#include "core/util/readfile.h"

#define ROWS_PER_CHUNK 2000
#define MAX_BARS 30
#define MARKER ".monet-probe-browse"

void mp_browse_opts_default(mp_browse_opts *o) {
    memset(o, 0, sizeof *o);
    o->analyze = 1;
    o->max_experts = 1000;
    o->rank = MP_BROWSE_RANK_COUNT;
    o->contexts = 32;
    o->context_tokens = 12;
    o->coact = 12;
    o->model_experts = 100;
}

/* ---- output files ------------------------------------------------------------ */

typedef struct wr {
    FILE *f;
    int64_t n; /* bytes written */
    int bad;
} wr;

static void w_raw(wr *w, const char *s, size_t len) {
    if (!len || w->bad) return;
    if (fwrite(s, 1, len, w->f) != len) w->bad = 1;
    w->n += (int64_t)len;
}
static void w_puts(wr *w, const char *s) { w_raw(w, s, strlen(s)); }

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void w_printf(wr *w, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) w->bad = 1;
    else w_raw(w, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* Text for HTML content or attribute values: & < > " ' escaped, invalid UTF-8
 * and control characters as U+FFFD; nl: newline shown as a visible mark. */
static void w_html(wr *w, const char *s, size_t len, int nl) {
    size_t i = 0;
    while (i < len) {
        size_t ok = i + mp_utf8_check(s + i, len - i), run = i;
        for (; i < ok; i++) {
            unsigned char c = (unsigned char)s[i];
            const char *rep = NULL;
            if (c == '&') rep = "&amp;";
            else if (c == '<') rep = "&lt;";
            else if (c == '>') rep = "&gt;";
            else if (c == '"') rep = "&quot;";
            else if (c == '\'') rep = "&#39;";
            else if (c == '\n') rep = nl ? "<span class=\"nl\">\xe2\x86\xb5</span>\n" : " ";
            else if (c == '\t') rep = nl ? "\t" : " ";
            else if (c == '\r') rep = "";
            else if (c < 0x20 || c == 0x7f) rep = "\xef\xbf\xbd";
            if (!rep) continue;
            w_raw(w, s + run, i - run);
            w_puts(w, rep);
            run = i + 1;
        }
        w_raw(w, s + run, i - run);
        if (i < len) { /* invalid or truncated sequence: one replacement per byte */
            w_puts(w, "\xef\xbf\xbd");
            i++;
        }
    }
}
static void w_htmls(wr *w, const char *s) { w_html(w, s ? s : "", s ? strlen(s) : 0, 0); }

/* A JavaScript string literal; safe inside <script>: < > & escaped. */
static void w_js(wr *w, const char *s) {
    size_t len = strlen(s), i = 0;
    w_puts(w, "\"");
    while (i < len) {
        size_t ok = i + mp_utf8_check(s + i, len - i);
        for (; i < ok; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '"' || c == '\\') w_printf(w, "\\%c", c);
            else if (c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f) w_printf(w, "\\u%04x", c);
            else if (c == 0xe2 && i + 2 < len && (unsigned char)s[i + 1] == 0x80 &&
                     ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9)) {
                w_printf(w, "\\u%04x", 0x2028 + ((unsigned char)s[i + 2] - 0xa8)); /* line/paragraph separators */
                i += 2;
            } else w_raw(w, s + i, 1);
        }
        if (i < len) {
            w_puts(w, "\\ufffd");
            i++;
        }
    }
    w_puts(w, "\"");
}

static int w_open(wr *w, const char *path, mp_error *err) {
    memset(w, 0, sizeof *w);
    return mp_file_create(path, &w->f, err); /* never through a planted symlink */
}

static int w_close(wr *w, const char *path, mp_browse_summary *sum, mp_error *err) {
    if (!w->f) return 0;
    int bad = w->bad | ferror(w->f);
    bad |= fclose(w->f) != 0;
    w->f = NULL;
    if (bad) return mp_fail(err, MP_ERESOURCE, "%s: write failed: %s", path, strerror(errno));
    sum->bytes += w->n;
    sum->n_files++;
    return 0;
}

/* "147,040" */
static const char *thou(uint64_t v, char buf[32]) {
    char t[32];
    int n = snprintf(t, sizeof t, "%llu", (unsigned long long)v), o = 0;
    for (int k = 0; k < n; k++) {
        if (k && (n - k) % 3 == 0) buf[o++] = ',';
        buf[o++] = t[k];
    }
    buf[o] = '\0';
    return buf;
}

/* ---- output directory ---------------------------------------------------------- */

static int prepare_dir(const char *dir, mp_error *err) {
    struct stat sb;
    char p[4096];
    if (stat(dir, &sb)) {
        if (mkdir(dir, 0777)) return mp_fail(err, MP_EIO, "%s: cannot create: %s", dir, strerror(errno));
    } else {
        MP_FAIL_IF(!S_ISDIR(sb.st_mode), err, MP_EINPUT, "%s: exists and is not a directory", dir);
        snprintf(p, sizeof p, "%s/%s", dir, MARKER);
        struct stat mb;
        if (lstat(p, &mb) == 0) {
            /* a site of ours: replace experts/ and data/, never following a
             * symbolic link out of the site (mp_remove_tree refuses them) */
            MP_FAIL_IF(!S_ISREG(mb.st_mode), err, MP_EINPUT,
                       "%s: marker is not a regular file; not a site written by browse (choose a new --out)", p);
            snprintf(p, sizeof p, "%s/experts", dir);
            MP_TRY(mp_remove_tree(p, 1, err));
            snprintf(p, sizeof p, "%s/data", dir);
            MP_TRY(mp_remove_tree(p, 0, err));
        } else {
            DIR *d = opendir(dir);
            MP_FAIL_IF(!d, err, MP_EIO, "%s: %s", dir, strerror(errno));
            struct dirent *de;
            int n = 0;
            while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
            closedir(d);
            MP_FAIL_IF(n, err, MP_EINPUT, "%s: not empty and not a site written by browse (choose a new --out)", dir);
        }
    }
    const char *subs[] = {"experts", "data"};
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/%s", dir, subs[k]);
        if (mkdir(p, 0777) && errno != EEXIST) return mp_fail(err, MP_EIO, "%s: cannot create: %s", p, strerror(errno));
    }
    snprintf(p, sizeof p, "%s/%s", dir, MARKER);
    FILE *f = NULL;
    MP_TRY(mp_file_create(p, &f, err));
    fputs("written by monet-probe browse; browse may replace experts/ and data/ here\n", f);
    MP_FAIL_IF(fclose(f), err, MP_EIO, "%s: write failed", p);
    return 0;
}

/* ---- annotations: specialists and correlations ------------------------------------ */

typedef struct ann {
    int grp;
    uint32_t e;
    double v;   /* skew (INFINITY: only one label) or r */
    double aux; /* p_label (specialists) */
    int label;  /* index into ctx.labels (specialists) */
} ann;

typedef struct annset {
    ann *a;
    size_t n, cap;
    int have;         /* a source was given or computed */
    char field[128];  /* label or score field */
} annset;

static int ann_cmp_key(const void *x, const void *y) {
    const ann *a = x, *b = y;
    if (a->grp != b->grp) return a->grp < b->grp ? -1 : 1;
    return (a->e > b->e) - (a->e < b->e);
}
static int ann_cmp_v(const void *x, const void *y) { /* v descending (INFINITY first), then key */
    const ann *a = x, *b = y;
    if (a->v != b->v) return a->v > b->v ? -1 : 1;
    if (a->aux != b->aux) return a->aux > b->aux ? -1 : 1;
    return ann_cmp_key(x, y);
}
static const ann *ann_find(const annset *s, int grp, uint32_t e) {
    ann k = {grp, e, 0, 0, 0};
    return s->n ? bsearch(&k, s->a, s->n, sizeof *s->a, ann_cmp_key) : NULL;
}
static int ann_push(annset *s, ann x, mp_error *err) {
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 256;
        ann *na = realloc(s->a, nc * sizeof *na);
        MP_FAIL_IF(!na, err, MP_ENOMEM, "out of memory");
        s->a = na;
        s->cap = nc;
    }
    s->a[s->n++] = x;
    return 0;
}

typedef struct ctx {
    mp_store *st;
    sqlite3 *db;
    const mp_browse_opts *o;
    mp_browse_summary *sum;
    mp_tokenizer *tok;
    long E, G, L, W, n_groups, top_k;
    int64_t *group_tokens;   /* [n_groups] */
    char **labels;           /* specialist labels */
    int n_labels;
    annset spec, corr;
    struct sel {
        int grp;
        uint32_t e;
        int64_t n;
        double sum, max;
        char *tokens;        /* its most frequent top-K tokens, space-separated (index search), or NULL */
    } *sel;                  /* [n_sel] listed experts, ranking order */
    size_t n_sel;
    ann *keys;               /* [n_sel] listed experts sorted by key (membership) */
    sqlite3_stmt *q_profile, *q_coact;
    char *buf;               /* decode scratch */
    size_t cap;
    mp_routing routing;      /* per-token scores (o->engine set) */
    int have_routing;
    size_t pages;            /* expert pages written so far */
} ctx;

static int label_index(ctx *c, const char *name, mp_error *err) {
    for (int k = 0; k < c->n_labels; k++)
        if (!strcmp(c->labels[k], name)) return k;
    char **nl = realloc(c->labels, (size_t)(c->n_labels + 1) * sizeof *nl);
    MP_FAIL_IF(!nl, err, MP_ENOMEM, "out of memory");
    c->labels = nl;
    MP_FAIL_IF(!(nl[c->n_labels] = strdup(name)), err, MP_ENOMEM, "out of memory");
    return c->n_labels++;
}

static int read_json(const char *path, cJSON **out, mp_error *err) {
    char *buf = NULL;
    size_t len = 0;
    MP_TRY(mp_read_file(path, &buf, &len, err));
    *out = cJSON_ParseWithLength(buf, len);
    free(buf);
    MP_FAIL_IF(!*out, err, MP_EINPUT, "%s: not valid JSON", path);
    return 0;
}

static int json_expert(ctx *c, const char *path, const cJSON *x, int *grp, uint32_t *e, mp_error *err) {
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(x, "group"), *i = cJSON_GetObjectItemCaseSensitive(x, "i"),
                *j = cJSON_GetObjectItemCaseSensitive(x, "j");
    MP_FAIL_IF(!cJSON_IsNumber(g) || !cJSON_IsNumber(i) || !cJSON_IsNumber(j), err, MP_EINPUT,
               "%s: expert entry without numeric group, i, j", path);
    MP_FAIL_IF(g->valuedouble < 0 || g->valuedouble >= c->n_groups || i->valuedouble < 0 || i->valuedouble >= c->E ||
                   j->valuedouble < 0 || j->valuedouble >= c->E,
               err, MP_EINPUT, "%s: expert %g:%g,%g does not exist in this store (%ld groups, E = %ld): another model?",
               path, g->valuedouble, i->valuedouble, j->valuedouble, c->n_groups, c->E);
    *grp = (int)g->valuedouble;
    *e = (uint32_t)((long)i->valuedouble * c->E + (long)j->valuedouble);
    return 0;
}

/* specialize --json: labels[].top[] = {group, i, j, skew (null = only one label), p_label, ...} */
static int spec_from_json(ctx *c, const char *path, mp_error *err) {
    cJSON *root = NULL;
    MP_TRY(read_json(path, &root, err));
    int rc = 0;
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(root, "labels"), *lab;
    const cJSON *field = cJSON_GetObjectItemCaseSensitive(root, "label_field");
    const cJSON *ee = cJSON_GetObjectItemCaseSensitive(root, "moe_experts");
    if (!cJSON_IsArray(labels)) {
        rc = mp_fail(err, MP_EINPUT, "%s: not the output of `specialize --json` (no \"labels\" array)", path);
        goto cleanup;
    }
    if (cJSON_IsNumber(ee) && (long)ee->valuedouble != c->E) {
        rc = mp_fail(err, MP_EINPUT, "%s: written for E = %g, the store has E = %ld (another model)", path,
                     ee->valuedouble, c->E);
        goto cleanup;
    }
    snprintf(c->spec.field, sizeof c->spec.field, "%s", cJSON_IsString(field) ? field->valuestring : "?");
    cJSON_ArrayForEach(lab, labels) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(lab, "label"), *top = cJSON_GetObjectItemCaseSensitive(lab, "top"), *x;
        if (!cJSON_IsString(name) || !cJSON_IsArray(top)) {
            rc = mp_fail(err, MP_EINPUT, "%s: label entry without \"label\" and \"top\"", path);
            goto cleanup;
        }
        int li = label_index(c, name->valuestring, err);
        if ((rc = li) < 0) goto cleanup;
        cJSON_ArrayForEach(x, top) {
            ann a = {0, 0, INFINITY, 0, li};
            const cJSON *skew = cJSON_GetObjectItemCaseSensitive(x, "skew"), *p = cJSON_GetObjectItemCaseSensitive(x, "p_label");
            if ((rc = json_expert(c, path, x, &a.grp, &a.e, err)) < 0) goto cleanup;
            if (cJSON_IsNumber(skew)) a.v = skew->valuedouble;
            if (cJSON_IsNumber(p)) a.aux = p->valuedouble;
            if ((rc = ann_push(&c->spec, a, err)) < 0) goto cleanup;
        }
    }
    c->spec.have = 1;
cleanup:
    cJSON_Delete(root);
    return rc;
}

/* correlate --json: experts[] = {group, i, j, r, n, n_active} */
static int corr_from_json(ctx *c, const char *path, mp_error *err) {
    cJSON *root = NULL;
    MP_TRY(read_json(path, &root, err));
    int rc = 0;
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(root, "experts"), *x;
    const cJSON *field = cJSON_GetObjectItemCaseSensitive(root, "score_field");
    if (!cJSON_IsArray(ex)) {
        rc = mp_fail(err, MP_EINPUT, "%s: not the output of `correlate --json` (no \"experts\" array)", path);
        goto cleanup;
    }
    snprintf(c->corr.field, sizeof c->corr.field, "%s", cJSON_IsString(field) ? field->valuestring : "?");
    cJSON_ArrayForEach(x, ex) {
        ann a = {0, 0, 0, 0, -1};
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(x, "r");
        if ((rc = json_expert(c, path, x, &a.grp, &a.e, err)) < 0) goto cleanup;
        if (!cJSON_IsNumber(r) || !isfinite(r->valuedouble)) continue;
        a.v = r->valuedouble;
        if ((rc = ann_push(&c->corr, a, err)) < 0) goto cleanup;
    }
    c->corr.have = 1;
cleanup:
    cJSON_Delete(root);
    return rc;
}

/* First field of label_totals that is (score = 1) or is not (0) a score field; 1 found, 0 none. */
static int first_field(ctx *c, int score, char *out, size_t cap, mp_error *err) {
    const char *sql = score ? "SELECT field FROM score_totals ORDER BY field LIMIT 1"
                            : "SELECT DISTINCT field FROM label_totals WHERE field NOT IN "
                              "(SELECT field FROM score_totals) ORDER BY field LIMIT 1";
    sqlite3_stmt *s = NULL;
    MP_FAIL_IF(sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK, err, MP_EIO, "%s: %s",
               mp_store_path(c->st), sqlite3_errmsg(c->db));
    int r = sqlite3_step(s), found = 0;
    if (r == SQLITE_ROW) {
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(s, 0));
        found = 1;
    }
    sqlite3_finalize(s);
    MP_FAIL_IF(r != SQLITE_ROW && r != SQLITE_DONE, err, MP_EIO, "%s: %s", mp_store_path(c->st), sqlite3_errmsg(c->db));
    return found;
}

static int load_annotations(ctx *c, mp_error *err) {
    const mp_browse_opts *o = c->o;
    char field[128];
    if (o->spec_json) {
        MP_TRY(spec_from_json(c, o->spec_json, err));
        snprintf(c->sum->spec_source, sizeof c->sum->spec_source, "%s (label field %s)", o->spec_json, c->spec.field);
    } else if (o->analyze) {
        int r = o->label_field ? (snprintf(field, sizeof field, "%s", o->label_field), 1)
                               : first_field(c, 0, field, sizeof field, err);
        MP_TRY(r);
        mp_spec_result res;
        memset(&res, 0, sizeof res);
        if (r) {
            mp_spec_opts so = {field, MP_MEASURE_MEAN_W, 2.0, 10};
            MP_TRY(mp_specialize(c->st, &so, &res, err));
            int rc = 0;
            for (size_t k = 0; k < res.n_experts && rc == 0; k++) {
                const mp_spec_expert *x = &res.experts[k];
                if (!x->specialist) continue;
                int li = label_index(c, res.labels[x->label], err);
                rc = li < 0 ? li : ann_push(&c->spec, (ann){x->group, x->expert, x->skew, x->best, li}, err);
            }
            mp_spec_result_free(&res);
            MP_TRY(rc);
            c->spec.have = 1;
            snprintf(c->spec.field, sizeof c->spec.field, "%s", field);
            snprintf(c->sum->spec_source, sizeof c->sum->spec_source,
                     "computed from the store (label field %s, mean routing score, ratio 2, min 10 tokens)", field);
        }
    }
    if (o->corr_json) {
        MP_TRY(corr_from_json(c, o->corr_json, err));
        snprintf(c->sum->corr_source, sizeof c->sum->corr_source, "%s (score field %s)", o->corr_json, c->corr.field);
    } else if (o->analyze) {
        int r = o->score_field ? (snprintf(field, sizeof field, "%s", o->score_field), 1)
                               : first_field(c, 1, field, sizeof field, err);
        MP_TRY(r);
        if (r) {
            mp_corr_result res;
            memset(&res, 0, sizeof res);
            MP_TRY(mp_correlate(c->st, field, 0, &res, err));
            int rc = 0;
            for (size_t k = 0; k < res.n_experts && rc == 0; k++)
                if (isfinite(res.experts[k].r))
                    rc = ann_push(&c->corr, (ann){res.experts[k].group, res.experts[k].expert, res.experts[k].r, 0, -1}, err);
            mp_corr_result_free(&res);
            MP_TRY(rc);
            c->corr.have = 1;
            snprintf(c->corr.field, sizeof c->corr.field, "%s", field);
            snprintf(c->sum->corr_source, sizeof c->sum->corr_source, "computed from the store (score field %s, per token)",
                     field);
        }
    }
    if (!c->spec.have) snprintf(c->sum->spec_source, sizeof c->sum->spec_source, "none");
    if (!c->corr.have) snprintf(c->sum->corr_source, sizeof c->sum->corr_source, "none");
    return 0;
}

/* ---- selection ------------------------------------------------------------------- */

static int sel_push(ctx *c, size_t *cap, int grp, uint32_t e, int64_t n, double sum, double max, mp_error *err) {
    if (c->n_sel == *cap) {
        size_t nc = *cap ? *cap * 2 : 1024;
        struct sel *ns = realloc(c->sel, nc * sizeof *ns);
        MP_FAIL_IF(!ns, err, MP_ENOMEM, "out of memory");
        c->sel = ns;
        *cap = nc;
    }
    c->sel[c->n_sel++] = (struct sel){grp, e, n, sum, max, NULL};
    return 0;
}

static int select_experts(ctx *c, mp_error *err) {
    const mp_browse_opts *o = c->o;
    sqlite3_stmt *s = NULL;
    size_t cap = 0;
    int rc = 0, r;
    if (sqlite3_prepare_v2(c->db, "SELECT COUNT(*) FROM expert_stats WHERE n_active > 0", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW)
        goto sqlfail;
    c->sum->experts_active = (size_t)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    s = NULL;
    if (o->rank == MP_BROWSE_RANK_SKEW || o->rank == MP_BROWSE_RANK_CORR) {
        annset *as = o->rank == MP_BROWSE_RANK_SKEW ? &c->spec : &c->corr;
        if (!as->have)
            return mp_fail(err, MP_EINPUT, "--rank %s needs %s (none given or computable from this store)",
                           o->rank == MP_BROWSE_RANK_SKEW ? "skew" : "toxicity",
                           o->rank == MP_BROWSE_RANK_SKEW ? "specialists" : "a correlation");
        if (as->n) qsort(as->a, as->n, sizeof *as->a, ann_cmp_v);
        for (size_t k = 0; k < as->n && (!o->max_experts || c->n_sel < o->max_experts); k++) {
            mp_expert_stat es;
            r = mp_store_expert_stat(c->st, as->a[k].grp, as->a[k].e, &es, err);
            if (r < 0) return r;
            if (r == 0 || es.n == 0) continue;
            MP_TRY(sel_push(c, &cap, as->a[k].grp, as->a[k].e, (int64_t)es.n, es.sum, es.max, err));
        }
        if (o->rank == MP_BROWSE_RANK_CORR) return 0;
        /* then the generalists, most active first, as many again at most: the
         * index lists them separately (its "specialists / generalists" filter) */
        size_t n_spec = c->n_sel, want = o->max_experts ? o->max_experts : SIZE_MAX;
        r = SQLITE_DONE;
        qsort(as->a, as->n, sizeof *as->a, ann_cmp_key);
        if (sqlite3_prepare_v2(c->db, "SELECT grp, expert, n_active, sum_w, max_w FROM expert_stats WHERE n_active > 0 "
                                      "ORDER BY n_active DESC, grp, expert", -1, &s, NULL) != SQLITE_OK)
            goto sqlfail;
        while (c->n_sel - n_spec < want && (r = sqlite3_step(s)) == SQLITE_ROW && rc == 0) {
            int g = sqlite3_column_int(s, 0);
            uint32_t e = (uint32_t)sqlite3_column_int64(s, 1);
            if (ann_find(as, g, e)) continue;
            rc = sel_push(c, &cap, g, e, sqlite3_column_int64(s, 2), sqlite3_column_double(s, 3),
                          sqlite3_column_double(s, 4), err);
        }
        if (rc == 0 && r != SQLITE_ROW && r != SQLITE_DONE) goto sqlfail;
        sqlite3_finalize(s);
        return rc;
    }
    const char *order = o->rank == MP_BROWSE_RANK_MAX    ? "max_w DESC"
                        : o->rank == MP_BROWSE_RANK_MEAN ? "sum_w / n_active DESC"
                                                         : "n_active DESC";
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT grp, expert, n_active, sum_w, max_w FROM expert_stats WHERE n_active > 0 ORDER BY %s, grp, expert "
             "LIMIT ?",
             order);
    if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK) goto sqlfail;
    sqlite3_bind_int64(s, 1, o->max_experts ? (sqlite3_int64)o->max_experts : -1);
    while ((r = sqlite3_step(s)) == SQLITE_ROW && rc == 0)
        rc = sel_push(c, &cap, sqlite3_column_int(s, 0), (uint32_t)sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
                      sqlite3_column_double(s, 3), sqlite3_column_double(s, 4), err);
    if (rc == 0 && r != SQLITE_DONE) goto sqlfail;
    sqlite3_finalize(s);
    return rc;
sqlfail:
    rc = mp_fail(err, MP_EIO, "%s: %s", mp_store_path(c->st), sqlite3_errmsg(c->db));
    sqlite3_finalize(s);
    return rc;
}

static int listed(const ctx *c, int grp, uint32_t e) {
    ann k = {grp, e, 0, 0, 0};
    return c->n_sel && bsearch(&k, c->keys, c->n_sel, sizeof *c->keys, ann_cmp_key) != NULL;
}

/* ---- expert pages ------------------------------------------------------------------ */

static void page_head(wr *w, const char *title, const char *sub_html) {
    w_puts(w, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
    w_htmls(w, title);
    w_puts(w, "</title><style>");
    w_puts(w, mp_browse_css);
    w_puts(w, "</style></head>\n<body><header><h1>");
    w_htmls(w, title);
    w_puts(w, "</h1><div class=\"sub\">");
    w_puts(w, sub_html);
    w_puts(w, "</div></header>\n<main>\n");
}

/* Append the decoded text of ids[from..to) to c->buf at *len. */
static int decode_into(ctx *c, const int32_t *ids, size_t from, size_t to, size_t *len, mp_error *err) {
    for (size_t k = from; k < to; k++) {
        char piece[256];
        int n = mp_tokenizer_decode_piece(c->tok, k > 0 ? ids[k - 1] : -1, ids[k], piece, sizeof piece);
        if (n < 0) n = snprintf(piece, sizeof piece, "<%d>", ids[k]);
        if (*len + (size_t)n + 1 > c->cap) {
            size_t nc = (c->cap ? c->cap * 2 : 4096) + (size_t)n;
            char *nb = realloc(c->buf, nc);
            MP_FAIL_IF(!nb, err, MP_ENOMEM, "out of memory");
            c->buf = nb;
            c->cap = nc;
        }
        memcpy(c->buf + *len, piece, (size_t)n);
        *len += (size_t)n;
        c->buf[*len] = '\0';
    }
    return 0;
}

/* One <td class="ctx"> with the activating token marked; *token (may be NULL)
 * receives its id. */
static int write_context(ctx *c, wr *w, const mp_store_hit *h, int32_t *token, mp_error *err) {
    int32_t *ids = NULL;
    size_t n = 0, l0 = 0, l1, l2, l3;
    uint32_t start = h->pos - h->pos % (uint32_t)c->W;
    int r = mp_store_get_window(c->st, h->doc, start, &ids, &n, err);
    if (r < 0) return r;
    if (r == 0 || h->pos - start >= n) {
        free(ids);
        return mp_fail(err, MP_EINPUT, "%s: corrupt store: no window for document %llu position %u", mp_store_path(c->st),
                       (unsigned long long)h->doc, h->pos);
    }
    size_t t = h->pos - start, show = (size_t)c->o->context_tokens;
    if (token) *token = ids[t];
    size_t from = t > show ? t - show : 0, to = t + 1 + show < n ? t + 1 + show : n;
    r = decode_into(c, ids, from, t, &l0, err);
    l1 = l0;
    if (r == 0) r = decode_into(c, ids, t, t + 1, &l1, err);
    l2 = l1;
    if (r == 0) r = decode_into(c, ids, t + 1, to, &l2, err);
    free(ids);
    if (r < 0) return r;
    l3 = l2;
    w_puts(w, "<td class=\"ctx\">");
    if (from > 0) w_puts(w, "<span class=\"muted\">\xe2\x80\xa6</span>");
    w_html(w, c->buf, l0, 1);
    w_puts(w, "<mark>");
    w_html(w, c->buf + l0, l1 - l0, 1);
    w_puts(w, "</mark>");
    w_html(w, c->buf + l1, l3 - l1, 1);
    if (to < n) w_puts(w, "<span class=\"muted\">\xe2\x80\xa6</span>");
    w_puts(w, "</td>");
    return 0;
}

/* One <td class="ctx"> with every shown token shaded by the expert's weight on
 * it (recomputed by one forward over the stored window: analysis/context.h);
 * data-w carries the weight, the activating token is marked. */
static int write_context_scored(ctx *c, wr *w, const mp_store_hit *h, int grp, uint32_t I, uint32_t J, int32_t *token,
                                mp_error *err) {
    mp_context ct;
    int rc = mp_context_load(c->st, c->tok, (int)c->W, h->doc, h->pos, c->o->context_tokens, &ct, err);
    if (rc < 0) return rc;
    if ((rc = mp_context_score(c->o->engine, &c->routing, &ct, grp, (int)I, (int)J, err)) < 0) {
        mp_context_free(&ct);
        return rc;
    }
    if (token) *token = ct.ids[ct.t];
    double top = h->w;
    for (size_t k = 0; k < ct.to - ct.from; k++)
        if (ct.scores[k] > top) top = ct.scores[k];
    w_puts(w, "<td class=\"ctx scored\">");
    if (ct.from > 0) w_puts(w, "<span class=\"muted\">\xe2\x80\xa6</span>");
    for (size_t k = 0; k < ct.to - ct.from; k++) {
        double v = ct.scores[k], a = top > 0 && v > 0 ? 0.85 * v / top : 0;
        int act = ct.from + k == ct.t;
        if (act) w_puts(w, "<mark>");
        w_printf(w, "<span class=\"tok\" data-w=\"%.6g\" title=\"w = %.2f%%\"", v, 100.0 * v);
        if (a > 0) w_printf(w, " style=\"background:rgba(255,140,0,%.3f)\"", a);
        w_puts(w, ">");
        w_html(w, ct.pieces[k], strlen(ct.pieces[k]), 1);
        w_puts(w, "</span>");
        if (act) w_puts(w, "</mark>");
    }
    if (ct.to < ct.n) w_puts(w, "<span class=\"muted\">\xe2\x80\xa6</span>");
    w_puts(w, "</td>");
    mp_context_free(&ct);
    return 0;
}

/* The expert's logit effects (analysis/effects.h) over the shown top contexts:
 * the 10 next tokens it promotes most and the 10 it suppresses most. */
static int write_effects(ctx *c, wr *w, int grp, uint32_t I, uint32_t J, size_t contexts, mp_error *err) {
    mp_effects fx;
    int rc = mp_effects_compute(c->st, c->o->model, c->o->engine, grp, (int)I, (int)J, (int)contexts, 10, &fx, err);
    if (rc < 0) return rc;
    w_printf(w, "<h2>Logit effects</h2>\n<p class=\"note\">Next-token log-probability after the activating token, "
                "the model as is minus the model with this one expert masked (w<sub>ij</sub> = 0 in every layer "
                "of group %d), averaged over %zu top contexts: positive = the expert promotes the token.</p>\n"
                "<table id=\"effects\"><thead><tr><th>promotes</th><th class=\"num\">\xce\x94 log p</th>"
                "<th>suppresses</th><th class=\"num\">\xce\x94 log p</th></tr></thead><tbody>\n",
             grp, fx.contexts);
    for (int k = 0; k < fx.n; k++) {
        char a[256], b[256];
        int na = mp_tokenizer_decode_piece(c->tok, -1, fx.promoted[k].id, a, sizeof a);
        int nb = mp_tokenizer_decode_piece(c->tok, -1, fx.suppressed[k].id, b, sizeof b);
        if (na < 0) na = snprintf(a, sizeof a, "<%d>", fx.promoted[k].id);
        if (nb < 0) nb = snprintf(b, sizeof b, "<%d>", fx.suppressed[k].id);
        w_printf(w, "<tr><td class=\"ctx\" data-id=\"%d\">", fx.promoted[k].id);
        w_html(w, a, (size_t)na, 1);
        w_printf(w, "</td><td class=\"num\">%+.4f</td><td class=\"ctx\" data-id=\"%d\">", fx.promoted[k].effect,
                 fx.suppressed[k].id);
        w_html(w, b, (size_t)nb, 1);
        w_printf(w, "</td><td class=\"num\">%+.4f</td></tr>\n", fx.suppressed[k].effect);
    }
    w_puts(w, "</tbody></table>\n");
    mp_effects_free(&fx);
    return 0;
}

static void write_labels(wr *w, const char *labels_json) {
    cJSON *lj = labels_json ? cJSON_Parse(labels_json) : NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, lj) {
        char num[64];
        const char *v = cJSON_IsString(it) ? it->valuestring : NULL;
        if (cJSON_IsNumber(it)) v = (snprintf(num, sizeof num, "%g", it->valuedouble), num);
        if (!v || !it->string) continue;
        w_puts(w, "<span class=\"chip\">");
        w_htmls(w, it->string);
        w_puts(w, "=");
        w_htmls(w, v);
        w_puts(w, "</span>");
    }
    cJSON_Delete(lj);
}

typedef struct prow {
    char *value;
    int64_t ntok, nact;
    double sumw, p;
} prow;

static int prow_cmp(const void *x, const void *y) {
    const prow *a = x, *b = y;
    return a->p != b->p ? (a->p > b->p ? -1 : 1) : strcmp(a->value, b->value);
}

/* One inline SVG bar chart: mean routing score per token of each label value. */
static void write_chart(wr *w, const char *field, prow *rows, size_t n) {
    size_t shown = n, more = 0;
    if (n > MAX_BARS) { /* keep the MAX_BARS highest */
        qsort(rows, n, sizeof *rows, prow_cmp);
        shown = MAX_BARS;
        more = n - MAX_BARS;
    }
    double pmax = 0;
    for (size_t k = 0; k < shown; k++) pmax = rows[k].p > pmax ? rows[k].p : pmax;
    const int LW = 170, BW = 380, RH = 20;
    w_puts(w, "<h3>");
    w_htmls(w, field);
    w_printf(w, "</h3>\n<svg class=\"profile\" width=\"%d\" height=\"%d\" role=\"img\">", LW + BW + 260, (int)shown * RH + 6);
    for (size_t k = 0; k < shown; k++) {
        const prow *r = &rows[k];
        int y = (int)k * RH + 3, bw = pmax > 0 ? (int)(BW * r->p / pmax + 0.5) : 0;
        double freq = r->ntok ? (double)r->nact / (double)r->ntok : 0;
        w_printf(w, "<g><title>");
        w_htmls(w, r->value);
        w_printf(w, ": %lld of %lld tokens active; sum w %.6g</title><text x=\"%d\" y=\"%d\" text-anchor=\"end\">",
                 (long long)r->nact, (long long)r->ntok, r->sumw, LW - 6, y + 13);
        size_t vl = strlen(r->value), cut = vl;
        if (vl > 26) /* shorten at a UTF-8 boundary; the full value is in <title> */
            for (cut = 24; cut > 0 && ((unsigned char)r->value[cut] & 0xc0) == 0x80; cut--) {}
        w_html(w, r->value, cut, 0);
        if (cut < vl) w_puts(w, "\xe2\x80\xa6");
        w_printf(w, "</text><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#3d7cc9\"></rect>"
                    "<text x=\"%d\" y=\"%d\">%.3f%% per token \xc2\xb7 active on %.1f%%</text></g>",
                 LW, y + 2, bw > 0 ? bw : 1, RH - 5, LW + bw + 6, y + 13, 100.0 * r->p, 100.0 * freq);
    }
    w_puts(w, "</svg>\n");
    if (more) w_printf(w, "<p class=\"note\">%zu more values with lower scores not shown.</p>\n", more);
}

static int write_profile(ctx *c, wr *w, int grp, uint32_t e, mp_error *err) {
    sqlite3_stmt *s = c->q_profile;
    prow *rows = NULL;
    size_t n = 0, cap = 0;
    char *field = NULL;
    int rc = 0, r, charts = 0;
    sqlite3_reset(s);
    sqlite3_bind_int(s, 1, grp);
    sqlite3_bind_int64(s, 2, e);
    w_puts(w, "<h2>Activation per label</h2>\n<p class=\"note\">Mean routing score of this expert over the tokens of "
              "each label value (inactive tokens count 0: the paper's routing probability), and the share of those "
              "tokens where it is active. Score fields are shown in buckets.</p>\n");
    for (;;) {
        r = sqlite3_step(s);
        const char *f = r == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
        if ((r != SQLITE_ROW || !field || strcmp(f, field)) && n) { /* field complete */
            write_chart(w, field, rows, n);
            charts++;
            for (size_t k = 0; k < n; k++) free(rows[k].value);
            n = 0;
        }
        if (r != SQLITE_ROW) break;
        if (!field || strcmp(f, field)) {
            free(field);
            if (!(field = strdup(f))) goto oom;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            prow *nr = realloc(rows, nc * sizeof *nr);
            if (!nr) goto oom;
            rows = nr;
            cap = nc;
        }
        const char *v = (const char *)sqlite3_column_text(s, 1);
        prow *p = &rows[n];
        if (!(p->value = strdup(v ? v : ""))) goto oom;
        n++;
        p->ntok = sqlite3_column_int64(s, 2);
        p->nact = sqlite3_column_int64(s, 3);
        p->sumw = sqlite3_column_double(s, 4);
        p->p = p->ntok ? p->sumw / (double)p->ntok : 0;
    }
    if (r != SQLITE_DONE) rc = mp_fail(err, MP_EIO, "%s: %s", mp_store_path(c->st), sqlite3_errmsg(c->db));
    else if (!charts) w_puts(w, "<p class=\"muted\">No labels were collected in this store.</p>\n");
    goto cleanup;
oom:
    rc = mp_fail(err, MP_ENOMEM, "out of memory");
cleanup:
    for (size_t k = 0; k < n; k++) free(rows[k].value);
    free(rows);
    free(field);
    return rc;
}

static int write_coact(ctx *c, wr *w, int grp, uint32_t e, mp_error *err) {
    sqlite3_stmt *s = c->q_coact;
    int r, k = 0;
    char t[32];
    sqlite3_reset(s);
    sqlite3_bind_int(s, 1, grp);
    sqlite3_bind_int64(s, 2, e);
    sqlite3_bind_int(s, 3, c->o->coact);
    w_puts(w, "<h2>Co-activating experts</h2>\n<p class=\"note\">The store keeps no pairwise co-activation counts. "
              "Listed instead: experts (any router group) whose own top contexts contain the same tokens as this "
              "expert's top contexts, by number of shared tokens. Experts not listed in this site are not linked.</p>\n");
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        int g2 = sqlite3_column_int(s, 0);
        uint32_t e2 = (uint32_t)sqlite3_column_int64(s, 1);
        if (!k++) w_puts(w, "<table id=\"coact\"><thead><tr><th>Expert</th><th class=\"num\">Shared top-K tokens</th>"
                            "</tr></thead><tbody>\n");
        w_puts(w, "<tr><td>");
        int link = listed(c, g2, e2);
        if (link) w_printf(w, "<a href=\"../g%d/%u_%u.html\">", g2, e2 / (uint32_t)c->E, e2 % (uint32_t)c->E);
        w_printf(w, "Expert %d:%u,%u", g2, e2 / (uint32_t)c->E, e2 % (uint32_t)c->E);
        if (link) w_puts(w, "</a>");
        w_printf(w, " <span class=\"muted\">(%d:#%s)</span></td><td class=\"num\">%lld</td></tr>\n", g2, thou(e2, t),
                 (long long)sqlite3_column_int64(s, 2));
    }
    MP_FAIL_IF(r != SQLITE_DONE, err, MP_EIO, "%s: %s", mp_store_path(c->st), sqlite3_errmsg(c->db));
    if (k) w_puts(w, "</tbody></table>\n");
    else w_puts(w, "<p class=\"muted\">No other expert shares a top-K token with this one.</p>\n");
    return 0;
}

/* ---- evidence panels: histogram, quantile samples, per-label samples ---------------- */

static int cmp_i32(const void *x, const void *y) {
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

/* x->tokens: the (at most 6) most frequent activating tokens of its shown top
 * contexts, most frequent first, as text, for the index search. */
static int top_tokens(ctx *c, struct sel *x, int32_t *toks, size_t n, mp_error *err) {
    if (!n) return 0;
    qsort(toks, n, sizeof *toks, cmp_i32);
    char out[512] = "";
    size_t used = 0;
    for (int pick = 0; pick < 6; pick++) {
        size_t best = n, bestc = 0;
        for (size_t i = 0; i < n;) { /* runs of equal ids; taken runs are marked -1 */
            size_t j = i;
            while (j < n && toks[j] == toks[i]) j++;
            if (toks[i] >= 0 && j - i > bestc) best = i, bestc = j - i;
            i = j;
        }
        if (best == n) break;
        int32_t id = toks[best];
        for (size_t i = best; i < n && toks[i] == id; i++) toks[i] = -1;
        char piece[256];
        int len = mp_tokenizer_decode_piece(c->tok, -1, id, piece, sizeof piece);
        if (len <= 0) continue;
        size_t a = 0, b = (size_t)len; /* trimmed; spaces inside a piece would split the search term */
        while (a < b && (piece[a] == ' ' || piece[a] == '\n' || piece[a] == '\t')) a++;
        while (b > a && (piece[b - 1] == ' ' || piece[b - 1] == '\n' || piece[b - 1] == '\t')) b--;
        if (a == b || used + (b - a) + 2 >= sizeof out) continue;
        if (used) out[used++] = ' ';
        memcpy(out + used, piece + a, b - a);
        used += b - a;
        out[used] = '\0';
    }
    MP_FAIL_IF(!(x->tokens = strdup(out)), err, MP_ENOMEM, "out of memory");
    return 0;
}

/* Histogram of w: one bar per half-octave bin from the lowest to the highest
 * bin in use (store table hist). */
static int write_hist(ctx *c, wr *w, int grp, uint32_t e, mp_error *err) {
    uint64_t h[MP_HIST_BINS], total = 0, top = 0;
    MP_TRY(mp_store_hist(c->st, grp, e, h, err));
    int b0 = MP_HIST_BINS, b1 = -1;
    for (int b = 0; b < MP_HIST_BINS; b++) {
        total += h[b];
        if (h[b] > top) top = h[b];
        if (h[b] && b < b0) b0 = b;
        if (h[b]) b1 = b;
    }
    w_puts(w, "<h2>Activation histogram</h2>\n<p class=\"note\">Every token where the expert is active, counted in "
              "fixed half-octave bins of its routing score w (log scale: each bin is \xe2\x88\x9a" "2 wider than the one "
              "before); collected over the whole corpus, not only the top contexts.</p>\n");
    if (b1 < 0) {
        w_puts(w, "<p class=\"muted\">No histogram in this store.</p>\n");
        return 0;
    }
    const int BW = 34, H = 120, n = b1 - b0 + 1;
    w_printf(w, "<svg class=\"hist\" id=\"hist\" data-total=\"%llu\" width=\"%d\" height=\"%d\" role=\"img\">",
             (unsigned long long)total, n * BW + 20, H + 44);
    for (int b = b0; b <= b1; b++) {
        int x = (b - b0) * BW + 10, bh = top ? (int)((double)H * (double)h[b] / (double)top + 0.5) : 0;
        if (h[b] && bh < 1) bh = 1;
        w_printf(w, "<g><title>w from %.3g%%", 100 * mp_hist_edge(b));
        if (b + 1 < MP_HIST_BINS) w_printf(w, " to %.3g%%", 100 * mp_hist_edge(b + 1));
        w_printf(w, ": %llu tokens</title><rect data-n=\"%llu\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                    "fill=\"#3d7cc9\"></rect>",
                 (unsigned long long)h[b], (unsigned long long)h[b], x, H - bh + 4, BW - 4, bh);
        if ((b - b0) % 2 == 0)
            w_printf(w, "<text x=\"%d\" y=\"%d\">%.3g%%</text>", x, H + 20, 100 * mp_hist_edge(b));
        w_puts(w, "</g>");
    }
    char t[32];
    w_printf(w, "<text x=\"10\" y=\"%d\">lower edge of each bin (w); %s tokens in all</text></svg>\n", H + 38,
             thou(total, t));
    return 0;
}

/* Quantile samples: a few random tokens per octave of w (store table qsamples). */
static int write_quantiles(ctx *c, wr *w, int grp, uint32_t e, mp_error *err) {
    mp_store_hit *q = NULL;
    size_t n = 0;
    int rc = 0;
    MP_TRY(mp_store_qsamples(c->st, grp, e, &q, &n, err));
    w_printf(w, "<h2>Samples across activation levels</h2>\n<p class=\"note\">Up to %d tokens per octave of w, drawn "
                "uniformly from all the tokens of that octave (the smallest hash of document and position), highest "
                "octave first: what the expert does when it is only weakly active, not only at its peak.</p>\n",
             MP_QSAMPLES);
    if (!n) {
        w_puts(w, "<p class=\"muted\">No samples in this store.</p>\n");
        return 0;
    }
    w_puts(w, "<table id=\"quantiles\"><thead><tr><th>w range</th><th class=\"num\">Activation</th><th>Document</th>"
              "<th>Context</th></tr></thead><tbody>\n");
    for (size_t k = 0; k < n && rc == 0; k++) {
        int o = q[k].rank;
        char *labels = NULL, *source = NULL;
        int64_t line = 0;
        w_puts(w, "<tr><td class=\"muted\">");
        if (k == 0 || q[k - 1].rank != o) {
            w_printf(w, "%.3g%% \xe2\x80\x93 ", 100 * mp_hist_edge(2 * o));
            if (o + 1 < MP_QBINS) w_printf(w, "%.3g%%", 100 * mp_hist_edge(2 * o + 2));
            else w_puts(w, "\xe2\x80\xa6");
        }
        w_printf(w, "</td><td class=\"num pct\">%.2f%%</td><td>", 100.0 * q[k].w);
        if ((rc = mp_store_get_doc(c->st, q[k].doc, &labels, &source, &line, err)) < 0) break;
        write_labels(w, labels);
        w_printf(w, " <span class=\"muted\">doc %llu \xc2\xb7 token %u</span></td>", (unsigned long long)q[k].doc,
                 q[k].pos);
        free(labels);
        free(source);
        if ((rc = write_context(c, w, &q[k], NULL, err)) < 0) break;
        w_puts(w, "</tr>\n");
    }
    if (rc == 0) w_puts(w, "</tbody></table>\n");
    free(q);
    return rc;
}

/* The field whose per-label samples are shown: the specialization field, else
 * the first categorical label field. 1 found, 0 none. */
static int sample_field(ctx *c, char *out, size_t cap, mp_error *err) {
    if (c->spec.have && strcmp(c->spec.field, "?")) {
        snprintf(out, cap, "%s", c->spec.field);
        return 1;
    }
    return first_field(c, 0, out, cap, err);
}

/* Per-label samples (store table label_topk): the expert's best documents of
 * each value of the field, its specialization label first, then by best w. */
static int write_label_samples(ctx *c, wr *w, int grp, uint32_t e, mp_error *err) {
    char field[128];
    int r = sample_field(c, field, sizeof field, err), rc = 0;
    MP_TRY(r);
    if (!r) return 0;
    const ann *a = c->spec.have ? ann_find(&c->spec, grp, e) : NULL;
    const char *own = a ? c->labels[a->label] : "";
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT l.value, l.w, l.doc, l.pos FROM label_topk l JOIN (SELECT value, max(w) AS b FROM "
                           "label_topk WHERE grp = ?1 AND expert = ?2 AND field = ?3 GROUP BY value) v ON v.value = "
                           "l.value WHERE l.grp = ?1 AND l.expert = ?2 AND l.field = ?3 ORDER BY l.value <> ?4, v.b "
                           "DESC, l.value, l.w DESC, l.doc, l.pos",
                           -1, &s, NULL) != SQLITE_OK)
        return mp_fail(err, MP_EIO, "%s: %s", mp_store_path(c->st), sqlite3_errmsg(c->db));
    sqlite3_bind_int(s, 1, grp);
    sqlite3_bind_int64(s, 2, e);
    sqlite3_bind_text(s, 3, field, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 4, own, -1, SQLITE_TRANSIENT);
    w_puts(w, "<h2>Per-label samples: ");
    w_htmls(w, field);
    w_printf(w, "</h2>\n<p class=\"note\">For each value of this label field, the expert's best documents of that "
                "value (up to %d, the best token of each), %sthe others by their best activation (at most 8 values): "
                "a specialist's claim checked against its own label's examples.</p>\n",
             MP_LABEL_TOPK, a ? "its specialization label first, " : "");
    int values = 0, step, rows = 0;
    char last[512] = "";
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(s, 0);
        if (!v) v = "";
        int fresh = !rows || strcmp(v, last);
        if (fresh && ++values > 8) break;
        if (!rows++)
            w_puts(w, "<table id=\"labelsamples\"><thead><tr><th>Label</th><th class=\"num\">Activation</th>"
                      "<th>Document</th><th>Context</th></tr></thead><tbody>\n");
        snprintf(last, sizeof last, "%s", v);
        mp_store_hit h = {0, sqlite3_column_double(s, 1), (uint64_t)sqlite3_column_int64(s, 2),
                          (uint32_t)sqlite3_column_int64(s, 3)};
        w_puts(w, "<tr><td>");
        if (fresh) {
            w_puts(w, "<span class=\"chip\">");
            w_htmls(w, v);
            w_puts(w, "</span>");
        }
        w_printf(w, "</td><td class=\"num pct\">%.2f%%</td><td><span class=\"muted\">doc %llu \xc2\xb7 token %u"
                    "</span></td>",
                 100.0 * h.w, (unsigned long long)h.doc, h.pos);
        if ((rc = write_context(c, w, &h, NULL, err)) < 0) break;
        w_puts(w, "</tr>\n");
    }
    if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = mp_fail(err, MP_EIO, "%s: %s", mp_store_path(c->st), sqlite3_errmsg(c->db));
    sqlite3_finalize(s);
    if (rc == 0) w_puts(w, rows ? "</tbody></table>\n" : "<p class=\"muted\">No labelled document activates it.</p>\n");
    return rc;
}

static int write_page(ctx *c, struct sel *x, mp_error *err) {
    char path[4096], title[128], sub[512], t[32], t2[32];
    uint32_t I = x->e / (uint32_t)c->E, J = x->e % (uint32_t)c->E;
    long first = x->grp * c->G, last = first + c->G - 1 < c->L - 1 ? first + c->G - 1 : c->L - 1;
    mp_store_hit *hits = NULL;
    int32_t *toks = NULL; /* activating token of each shown top context */
    size_t nh = 0;
    wr w;
    int rc;
    /* the model panels: the first model_experts pages in ranking order */
    int model_panels = c->have_routing && (!c->o->model_experts || c->pages < c->o->model_experts);
    c->pages++;
    snprintf(path, sizeof path, "%s/experts/g%d/%u_%u.html", c->o->out_dir, x->grp, I, J);
    MP_TRY(w_open(&w, path, err));
    snprintf(title, sizeof title, "Expert %d:%u,%u", x->grp, I, J);
    snprintf(sub, sizeof sub,
             "flat id %d:#%u (the paper's Group %d / Expert %s) \xc2\xb7 router group %d covers layers "
             "%ld\xe2\x80\x93%ld \xc2\xb7 <a href=\"../../index.html\">all experts</a>",
             x->grp, x->e, x->grp, thou(x->e, t), x->grp, first, last);
    page_head(&w, title, sub);
    int64_t gt = x->grp < c->n_groups ? c->group_tokens[x->grp] : 0;
    w_printf(&w, "<div class=\"cards\"><div class=\"card\"><span class=\"muted\">active on</span><b>%s tokens</b>"
                 "<span class=\"muted\">%.3f%% of %s</span></div>",
             thou((uint64_t)x->n, t), gt ? 100.0 * (double)x->n / (double)gt : 0.0, thou((uint64_t)gt, t2));
    w_printf(&w, "<div class=\"card\"><span class=\"muted\">mean activation</span><b>%.2f%%</b></div>"
                 "<div class=\"card\"><span class=\"muted\">max activation</span><b>%.2f%%</b></div>",
             100.0 * x->sum / (double)x->n, 100.0 * x->max);
    if (c->spec.have) {
        const ann *a = ann_find(&c->spec, x->grp, x->e);
        w_puts(&w, "<div class=\"card\"><span class=\"muted\">specialization (");
        w_htmls(&w, c->spec.field);
        w_puts(&w, ")</span><b");
        if (a) {
            w_puts(&w, " class=\"spec\">");
            w_htmls(&w, c->labels[a->label]);
            w_puts(&w, "</b><span class=\"muted\">");
            if (isinf(a->v)) w_puts(&w, "only this label");
            else w_printf(&w, "skew %.2f\xc3\x97", a->v);
            w_puts(&w, "</span></div>");
        } else w_puts(&w, ">generalist</b></div>");
    }
    if (c->corr.have) {
        const ann *a = ann_find(&c->corr, x->grp, x->e);
        w_puts(&w, "<div class=\"card\"><span class=\"muted\">Pearson r with ");
        w_htmls(&w, c->corr.field);
        if (a) w_printf(&w, "</span><b>%.4f</b></div>", a->v);
        else w_puts(&w, "</span><b>\xe2\x80\x94</b></div>");
    }
    w_puts(&w, "</div>\n");
    if ((rc = mp_store_topk(c->st, x->grp, x->e, &hits, &nh, err)) < 0) goto cleanup;
    size_t shown = c->o->contexts > 0 && (size_t)c->o->contexts < nh ? (size_t)c->o->contexts : nh;
    if (shown && !(toks = malloc(shown * sizeof *toks))) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    w_printf(&w, "<h2>Top contexts</h2>\n<p class=\"note\">%zu of the %zu stored top contexts, highest routing score "
                 "first. The percentage is the expert's routing score w<sub>ij</sub> = \xce\xa3<sub>h</sub> "
                 "g1[h,i]\xc2\xb7g2[h,j] as the paper shows it (it sums over heads, so it can exceed 100%%); the "
                 "activating token is highlighted%s.</p>\n",
             shown, nh,
             model_panels ? "; every shown token is shaded by the expert's weight on it, recomputed by one forward "
                            "of the model over the stored window (hover for the value)"
                          : "");
    w_puts(&w, "<table id=\"contexts\"><thead><tr><th class=\"num\">#</th><th class=\"num\">Activation</th>"
               "<th>Document</th><th>Context</th></tr></thead><tbody>\n");
    for (size_t k = 0; k < shown; k++) {
        char *labels = NULL, *source = NULL;
        int64_t line = 0;
        w_printf(&w, "<tr><td class=\"num\">%zu</td><td class=\"num pct\">%.2f%%</td><td>", k + 1, 100.0 * hits[k].w);
        if ((rc = mp_store_get_doc(c->st, hits[k].doc, &labels, &source, &line, err)) < 0) goto cleanup;
        write_labels(&w, labels);
        w_printf(&w, " <span class=\"muted\" title=\"");
        w_htmls(&w, source);
        w_printf(&w, ":%lld\">doc %llu \xc2\xb7 token %u</span></td>", (long long)line, (unsigned long long)hits[k].doc,
                 hits[k].pos);
        free(labels);
        free(source);
        if ((rc = model_panels ? write_context_scored(c, &w, &hits[k], x->grp, I, J, &toks[k], err)
                               : write_context(c, &w, &hits[k], &toks[k], err)) < 0)
            goto cleanup;
        w_puts(&w, "</tr>\n");
    }
    w_puts(&w, "</tbody></table>\n");
    if (model_panels && shown && (rc = write_effects(c, &w, x->grp, I, J, shown, err)) < 0) goto cleanup;
    if ((rc = top_tokens(c, x, toks, shown, err)) < 0) goto cleanup;
    if ((rc = write_hist(c, &w, x->grp, x->e, err)) < 0 || (rc = write_quantiles(c, &w, x->grp, x->e, err)) < 0 ||
        (rc = write_label_samples(c, &w, x->grp, x->e, err)) < 0)
        goto cleanup;
    if ((rc = write_profile(c, &w, x->grp, x->e, err)) < 0 || (rc = write_coact(c, &w, x->grp, x->e, err)) < 0)
        goto cleanup;
    w_puts(&w, "<pre id=\"selftest\"></pre>\n</main>\n<script>");
    w_puts(&w, mp_browse_expert_js);
    w_puts(&w, "</script></body></html>\n");
    int64_t before = c->sum->bytes;
    rc = w_close(&w, path, c->sum, err);
    c->sum->page_bytes += c->sum->bytes - before;
cleanup:
    if (w.f) fclose(w.f);
    free(hits);
    free(toks);
    return rc;
}

/* ---- index ------------------------------------------------------------------------- */

static void w_meta(ctx *c, wr *w, const char *key, const char *label, mp_error *err) {
    char *v = NULL;
    if (mp_store_meta_get(c->st, key, &v, err) > 0 && v && *v) {
        w_puts(w, " \xc2\xb7 ");
        w_puts(w, label);
        w_puts(w, " ");
        w_htmls(w, v);
    }
    free(v);
}

static int write_data(ctx *c, mp_error *err) {
    char path[4096];
    for (size_t c0 = 0, chunk = 0; c0 < c->n_sel; c0 += ROWS_PER_CHUNK, chunk++) {
        wr w;
        snprintf(path, sizeof path, "%s/data/experts-%03zu.js", c->o->out_dir, chunk);
        MP_TRY(w_open(&w, path, err));
        w_puts(&w, "/* monet-probe browse: index rows [group, i, j, id, n_active, mean w, max w, label, skew, r, top "
                   "tokens] */\n"
                   "MP_ROWS.push(\n");
        for (size_t k = c0; k < c->n_sel && k < c0 + ROWS_PER_CHUNK; k++) {
            const struct sel *x = &c->sel[k];
            const ann *s = c->spec.have ? ann_find(&c->spec, x->grp, x->e) : NULL;
            const ann *r = c->corr.have ? ann_find(&c->corr, x->grp, x->e) : NULL;
            w_printf(&w, "%s[%d,%u,%u,%u,%lld,%.6g,%.6g,", k > c0 ? ",\n" : "", x->grp, x->e / (uint32_t)c->E,
                     x->e % (uint32_t)c->E, x->e, (long long)x->n, x->sum / (double)x->n, x->max);
            if (s) w_js(&w, c->labels[s->label]);
            else w_puts(&w, "null");
            if (s && isinf(s->v)) w_puts(&w, ",Infinity");
            else if (s) w_printf(&w, ",%.6g", s->v);
            else w_puts(&w, ",null");
            if (r) w_printf(&w, ",%.6g,", r->v);
            else w_puts(&w, ",null,");
            w_js(&w, x->tokens ? x->tokens : "");
            w_puts(&w, "]");
        }
        w_puts(&w, ");\n");
        MP_TRY(w_close(&w, path, c->sum, err));
    }
    return 0;
}

static const char *RANK_NAMES[] = {"active tokens", "max activation", "mean activation", "specialization skew",
                                   "toxicity correlation"};

static int write_index(ctx *c, mp_error *err) {
    char path[4096], t[32], t2[32];
    wr w;
    sqlite3_stmt *s = NULL;
    int rc = 0, r;
    snprintf(path, sizeof path, "%s/index.html", c->o->out_dir);
    MP_TRY(w_open(&w, path, err));
    /* header line: store, model, corpus, shape */
    wr sub = {0};
    char *subbuf = NULL;
    size_t sublen = 0;
    FILE *mf = open_memstream(&subbuf, &sublen);
    if (!mf) {
        fclose(w.f);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    sub.f = mf;
    const char *base = strrchr(mp_store_path(c->st), '/');
    w_puts(&sub, "store ");
    w_htmls(&sub, base ? base + 1 : mp_store_path(c->st));
    w_meta(c, &sub, "model_path", "model", err);
    w_meta(c, &sub, "corpus", "corpus", err);
    w_printf(&sub, " \xc2\xb7 %ld router groups of %ld layers \xc2\xb7 E\xc2\xb2 = %s experts per group \xc2\xb7 top %ld contexts kept",
             c->n_groups, c->G, thou((uint64_t)(c->E * c->E), t), c->top_k);
    fclose(mf);
    page_head(&w, "monet-probe expert browser", subbuf ? subbuf : "");
    free(subbuf);
    mp_error_clear(err);
    w_puts(&w, "<h2>Router groups</h2>\n<table id=\"groups\"><thead><tr><th>Group</th><th>Layers</th>"
               "<th class=\"num\">Tokens</th><th class=\"num\">Active experts</th><th class=\"num\">Listed here</th>");
    if (c->spec.have) w_puts(&w, "<th class=\"num\">Specialists</th>");
    w_puts(&w, "</tr></thead><tbody>\n");
    if (sqlite3_prepare_v2(c->db, "SELECT grp, tokens, active_experts FROM groups ORDER BY grp", -1, &s, NULL) !=
        SQLITE_OK) {
        rc = mp_fail(err, MP_EIO, "%s: %s", mp_store_path(c->st), sqlite3_errmsg(c->db));
        goto cleanup;
    }
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        int g = sqlite3_column_int(s, 0);
        long first = g * c->G, last = first + c->G - 1 < c->L - 1 ? first + c->G - 1 : c->L - 1;
        size_t nl = 0, ns = 0;
        for (size_t k = 0; k < c->n_sel; k++) nl += c->sel[k].grp == g;
        for (size_t k = 0; k < c->spec.n; k++) ns += c->spec.a[k].grp == g;
        w_printf(&w, "<tr><td>Group %d</td><td>layers %ld\xe2\x80\x93%ld</td><td class=\"num\">%s</td>"
                     "<td class=\"num\">%s</td><td class=\"num\">%zu</td>",
                 g, first, last, thou((uint64_t)sqlite3_column_int64(s, 1), t),
                 thou((uint64_t)sqlite3_column_int64(s, 2), t2), nl);
        if (c->spec.have) w_printf(&w, "<td class=\"num\">%zu</td>", ns);
        w_puts(&w, "</tr>\n");
    }
    if (r != SQLITE_DONE) {
        rc = mp_fail(err, MP_EIO, "%s: %s", mp_store_path(c->st), sqlite3_errmsg(c->db));
        goto cleanup;
    }
    w_puts(&w, "</tbody></table>\n<h2>Experts</h2>\n<p class=\"note\">");
    w_printf(&w, "Listed: %s of the %s experts ever active, ranked by %s%s. Activations are routing scores as the paper "
                 "shows them (mean over the tokens where the expert is active; max). Specialization: ",
             thou(c->n_sel, t), thou(c->sum->experts_active, t2), RANK_NAMES[c->o->rank],
             c->n_sel < c->sum->experts_active ? " (--experts bounds the list)" : "");
    w_htmls(&w, c->sum->spec_source);
    w_puts(&w, "; the paper's skew rule, p(best label) \xe2\x89\xa5 2 \xc3\x97 p(second). Toxicity r: ");
    w_htmls(&w, c->sum->corr_source);
    w_puts(&w, ". Click a column to sort; search by address (g1:3,5), id, label or token text (the most frequent "
               "activating tokens of an expert's top contexts); with a specialization, generalists are listed apart "
               "(the second selector; ranked by skew, the specialists come first, then as many generalists, most "
               "active first).</p>\n"
               "<div class=\"bar\"><input type=\"search\" id=\"search\" placeholder=\"search: g1:3,5 \xc2\xb7 id \xc2\xb7 "
               "label \xc2\xb7 token\" aria-label=\"search experts\"><select id=\"group\" aria-label=\"router group\">"
               "<option value=\"\">all groups</option>");
    for (long g = 0; g < c->n_groups; g++) w_printf(&w, "<option value=\"%ld\">group %ld</option>", g, g);
    w_puts(&w, "</select>");
    if (c->spec.have)
        w_puts(&w, "<select id=\"kind\" aria-label=\"specialists or generalists\"><option value=\"\">specialists and "
                   "generalists</option><option value=\"s\">specialists</option><option value=\"g\">generalists"
                   "</option></select>");
    w_puts(&w, "<button id=\"prev\">\xe2\x97\x80 prev</button><button id=\"next\">next \xe2\x96\xb6</button>"
               "<span id=\"pageinfo\" class=\"muted\"></span></div>\n"
               "<table id=\"experts\"><thead><tr id=\"head\"></tr></thead><tbody id=\"rows\"></tbody></table>\n"
               "<p id=\"empty\" class=\"muted\" style=\"display:none\">No expert matches.</p>\n"
               "<pre id=\"selftest\"></pre>\n</main>\n<script>var MP_ROWS=[];</script>\n");
    for (size_t c0 = 0, chunk = 0; c0 < c->n_sel; c0 += ROWS_PER_CHUNK, chunk++)
        w_printf(&w, "<script src=\"data/experts-%03zu.js\"></script>\n", chunk);
    w_puts(&w, "<script>");
    w_puts(&w, mp_browse_index_js);
    w_puts(&w, "</script></body></html>\n");
    sqlite3_finalize(s);
    s = NULL;
    return w_close(&w, path, c->sum, err);
cleanup:
    sqlite3_finalize(s);
    if (w.f) fclose(w.f);
    return rc;
}

/* The co-activation query looks top-K hits up by (doc, pos), which the store
 * does not index (collect decides its garbage collection in memory): one scan
 * of topk copies the rows at the listed experts' hit positions into a TEMP
 * table indexed by (doc, pos). Temporary tables work on a read-only store.
 * @return 0, -1 (SQLite error in c->db). */
static int index_coactivation(ctx *c) {
    sqlite3_stmt *s = NULL;
    if (sqlite3_exec(c->db, "CREATE TEMP TABLE mp_listed(grp INTEGER NOT NULL, expert INTEGER NOT NULL,"
                            " PRIMARY KEY(grp, expert)) WITHOUT ROWID", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c->db, "INSERT OR IGNORE INTO mp_listed VALUES(?, ?)", -1, &s, NULL) != SQLITE_OK)
        return -1;
    for (size_t k = 0; c->o->coact > 0 && k < c->n_sel; k++) { /* none listed: empty tables */
        sqlite3_reset(s);
        sqlite3_bind_int(s, 1, c->sel[k].grp);
        sqlite3_bind_int64(s, 2, c->sel[k].e);
        if (sqlite3_step(s) != SQLITE_DONE) {
            sqlite3_finalize(s);
            return -1;
        }
    }
    sqlite3_finalize(s);
    return sqlite3_exec(c->db,
                        "CREATE TEMP TABLE mp_listed_pos AS SELECT DISTINCT t.doc, t.pos FROM mp_listed l JOIN topk t"
                        " ON t.grp = l.grp AND t.expert = l.expert;"
                        "CREATE INDEX temp.mp_listed_pos_i ON mp_listed_pos(doc, pos);"
                        "CREATE TEMP TABLE mp_hits_at AS SELECT t.doc, t.pos, t.grp, t.expert FROM topk t WHERE EXISTS"
                        " (SELECT 1 FROM mp_listed_pos p WHERE p.doc = t.doc AND p.pos = t.pos);"
                        "CREATE INDEX temp.mp_hits_at_i ON mp_hits_at(doc, pos);",
                        NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* ---- driver ------------------------------------------------------------------------ */

int mp_browse(mp_store *st, const mp_browse_opts *o, mp_browse_summary *sum, mp_error *err) {
    ctx c;
    memset(&c, 0, sizeof c);
    memset(sum, 0, sizeof *sum);
    double t0 = mp_now();
    c.st = st;
    c.db = mp_store_db(st);
    c.o = o;
    c.sum = sum;
    void *tokbytes = NULL;
    size_t toklen = 0;
    sqlite3_stmt *s = NULL;
    char path[4096];
    int rc;
    MP_FAIL_IF(!o->out_dir || !*o->out_dir, err, MP_EINPUT, "no output directory");
    MP_FAIL_IF(strlen(o->out_dir) > 3000, err, MP_EINPUT, "%.60s...: output path too long", o->out_dir);
    mp_store_shape sh; /* bounded: window 2^32 would make pos % W divide by zero */
    MP_TRY(mp_store_shape_read(st, &sh, err));
    c.E = sh.E, c.n_groups = sh.n_groups, c.G = sh.moe_groups, c.W = sh.window, c.L = sh.n_layers, c.top_k = sh.top_k;
    rc = mp_store_get_file(st, "tokenizer.model", &tokbytes, &toklen, err);
    if (rc == 0) rc = mp_fail(err, MP_EINPUT, "%s: corrupt store: no tokenizer.model in table files", mp_store_path(st));
    if (rc < 0 || (rc = mp_tokenizer_load_from_memory(tokbytes, toklen, "tokenizer.model (in store)", &c.tok, err)) < 0)
        goto cleanup;
    MP_FAIL_IF(!o->model != !o->engine, err, MP_EINTERNAL, "browse: the model and its engine go together");
    if (o->model) {
        MP_FAIL_IF(o->model->cfg.n_router_groups != c.n_groups || o->model->cfg.moe_experts != c.E, err, MP_EINPUT,
                   "the model (%d groups x %d experts) is not the store's (%ld x %ld)", o->model->cfg.n_router_groups,
                   o->model->cfg.moe_experts, c.n_groups, c.E);
        if ((rc = mp_routing_init(&c.routing, &o->model->cfg, err)) < 0) goto cleanup;
        c.have_routing = 1;
    }
    if (!(c.group_tokens = calloc((size_t)c.n_groups, sizeof *c.group_tokens))) goto oom;
    if (sqlite3_prepare_v2(c.db, "SELECT grp, tokens FROM groups", -1, &s, NULL) != SQLITE_OK) goto sqlfail;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int g = sqlite3_column_int(s, 0);
        if (g >= 0 && g < c.n_groups) c.group_tokens[g] = sqlite3_column_int64(s, 1);
    }
    if (rc != SQLITE_DONE) goto sqlfail;
    sqlite3_finalize(s);
    s = NULL;
    if ((rc = load_annotations(&c, err)) < 0) goto cleanup;
    if ((rc = select_experts(&c, err)) < 0) goto cleanup; /* may sort spec / corr by score */
    if (c.spec.n) qsort(c.spec.a, c.spec.n, sizeof *c.spec.a, ann_cmp_key);
    if (c.corr.n) qsort(c.corr.a, c.corr.n, sizeof *c.corr.a, ann_cmp_key);
    sum->experts_listed = c.n_sel;
    if (c.n_sel && !(c.keys = malloc(c.n_sel * sizeof *c.keys))) goto oom;
    for (size_t k = 0; k < c.n_sel; k++) c.keys[k] = (ann){c.sel[k].grp, c.sel[k].e, 0, 0, 0};
    if (c.n_sel) qsort(c.keys, c.n_sel, sizeof *c.keys, ann_cmp_key);
    if ((rc = prepare_dir(o->out_dir, err)) < 0) goto cleanup;
    for (long g = 0; g < c.n_groups; g++) {
        snprintf(path, sizeof path, "%s/experts/g%ld", o->out_dir, g);
        if (mkdir(path, 0777) && errno != EEXIST) {
            rc = mp_fail(err, MP_EIO, "%s: cannot create: %s", path, strerror(errno));
            goto cleanup;
        }
    }
    if (index_coactivation(&c) < 0 ||
        sqlite3_prepare_v2(c.db,
                           "SELECT t.field, t.value, t.n_tokens, IFNULL(s.n_active, 0), IFNULL(s.sum_w, 0) "
                           "FROM label_totals t LEFT JOIN label_stats s ON s.grp = ?1 AND s.expert = ?2 AND "
                           "s.field = t.field AND s.value = t.value ORDER BY t.field, t.value",
                           -1, &c.q_profile, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c.db,
                           "SELECT b.grp, b.expert, COUNT(*) AS n FROM topk a JOIN mp_hits_at b ON b.doc = a.doc AND "
                           "b.pos = a.pos WHERE a.grp = ?1 AND a.expert = ?2 AND NOT (b.grp = ?1 AND b.expert = ?2) "
                           "GROUP BY b.grp, b.expert ORDER BY n DESC, b.grp, b.expert LIMIT ?3",
                           -1, &c.q_coact, NULL) != SQLITE_OK)
        goto sqlfail;
    if (o->progress) o->progress->total = c.n_sel;
    for (size_t k = 0; k < c.n_sel; k++) {
        if ((rc = write_page(&c, &c.sel[k], err)) < 0) goto cleanup;
        if (o->progress) mp_progress_add(o->progress, 1);
    }
    if ((rc = write_data(&c, err)) < 0 || (rc = write_index(&c, err)) < 0) goto cleanup;
    rc = 0;
    goto cleanup;
sqlfail:
    rc = mp_fail(err, MP_EIO, "%s: %s", mp_store_path(st), sqlite3_errmsg(c.db));
    goto cleanup;
oom:
    rc = mp_fail(err, MP_ENOMEM, "out of memory");
cleanup:
    sum->seconds = mp_now() - t0;
    sqlite3_finalize(s);
    sqlite3_finalize(c.q_profile);
    sqlite3_finalize(c.q_coact);
    for (int k = 0; k < c.n_labels; k++) free(c.labels[k]);
    free(c.labels);
    free(c.spec.a);
    free(c.corr.a);
    for (size_t k = 0; k < c.n_sel; k++) free(c.sel[k].tokens);
    free(c.sel);
    free(c.keys);
    free(c.group_tokens);
    free(c.buf);
    free(tokbytes);
    mp_tokenizer_free(c.tok);
    if (c.have_routing) mp_routing_free(&c.routing);
    return rc;
}
