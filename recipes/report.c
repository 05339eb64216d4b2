/* recipes/report.c — results.json, results.csv and report.html of a finished
 * sweep (report.h). Reads the steps' outputs back from the cache: mask files
 * (masked count, ratio, experts), eval results (monet-probe-eval JSON; MULTIPL-E
 * from its printed pass@k lines), and runs `top-contexts --json` for a few
 * masked experts per mask. Δ = masked − base per row; Δ target is the row whose
 * name is the purged target (py = python, js = javascript), Δ others the
 * unweighted mean over the other rows of the same kind (as `eval compare`). */
#include "recipes/report.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/eval/eval_result.h"

typedef struct rrow {
    char kind[64], name[160];
    double value;
} rrow;

typedef struct rres {
    rrow *rows;
    size_t n;
    int hib, ok;
    char metric[64];
} rres;

typedef struct rmask {
    long masked, total;
    double ratio;
    cJSON *json; /* the mask file */
} rmask;

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 65536, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t got = fread(b + n, 1, cap - n - 1, f);
        n += got;
        if (!got) break;
        if (n + 1 == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) { free(b); b = NULL; }
            else b = nb;
        }
    }
    fclose(f);
    if (b) b[n] = 0;
    if (len) *len = n;
    return b;
}

static int add_row(rres *r, const char *kind, const char *name, double v) {
    rrow *nr = realloc(r->rows, (r->n + 1) * sizeof *nr);
    if (!nr) return MP_ENOMEM;
    r->rows = nr;
    snprintf(nr[r->n].kind, sizeof nr[r->n].kind, "%s", kind);
    snprintf(nr[r->n].name, sizeof nr[r->n].name, "%s", name);
    nr[r->n].value = v;
    r->n++;
    return 0;
}

static int load_step(const mp_step *s, rres *r, mp_error *err) {
    char path[4200];
    if (s->sub) { /* multipl-e: "pass@1: 0.25" lines */
        snprintf(path, sizeof path, "%s/stdout.txt", s->dir);
        char *txt = slurp(path, NULL);
        if (!txt) return mp_fail(err, MP_EIO, "%s: cannot read", path);
        r->hib = 1;
        snprintf(r->metric, sizeof r->metric, "pass@1");
        for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
            int k;
            double v;
            if (sscanf(line, "pass@%d: %lf", &k, &v) == 2 && k == 1 && add_row(r, "lang", s->sub, v) < 0) {
                free(txt);
                return mp_fail(err, MP_ENOMEM, "out of memory");
            }
        }
        free(txt);
        r->ok = 1;
        return 0;
    }
    snprintf(path, sizeof path, "%s/result.json", s->dir);
    mp_eval_result er;
    MP_TRY(mp_eval_result_load(path, &er, err));
    r->hib = er.higher_is_better;
    snprintf(r->metric, sizeof r->metric, "%s", er.metric ? er.metric : "value");
    for (size_t i = 0; i < er.n_rows; i++)
        if (add_row(r, er.rows[i].kind, er.rows[i].name, er.rows[i].value) < 0) {
            mp_eval_result_free(&er);
            return mp_fail(err, MP_ENOMEM, "out of memory");
        }
    mp_eval_result_free(&er);
    r->ok = 1;
    return 0;
}

static const rrow *find_row(const rres *r, const char *kind, const char *name) {
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->rows[i].kind, kind) && !strcmp(r->rows[i].name, name)) return &r->rows[i];
    return NULL;
}

static void norm_name(const char *s, char *out, size_t cap) {
    size_t n = 0;
    for (; *s && n + 1 < cap; s++) out[n++] = (char)tolower((unsigned char)*s);
    out[n] = 0;
    if (!strcmp(out, "py")) snprintf(out, cap, "python");
    else if (!strcmp(out, "js")) snprintf(out, cap, "javascript");
    else if (!strcmp(out, "c++")) snprintf(out, cap, "cpp");
}

static int same_target(const char *a, const char *b) {
    char x[160], y[160];
    norm_name(a, x, sizeof x);
    norm_name(b, y, sizeof y);
    return !strcmp(x, y);
}

/* The row kind an eval's Δ table uses. */
static const char *main_kind(const rres *base) {
    static const char *const PREF[] = {"label", "lang", "category", "task", NULL};
    for (const char *const *k = PREF; *k; k++)
        for (size_t i = 0; i < base->n; i++)
            if (!strcmp(base->rows[i].kind, *k)) return *k;
    return base->n ? base->rows[0].kind : "";
}

/* Δ target and mean Δ others for one mask. */
static void deltas(const rres *base, const rres *m, const char *kind, const char *target, double *dt, double *dot) {
    double sum = 0;
    size_t n = 0;
    *dt = NAN;
    for (size_t i = 0; i < base->n; i++) {
        if (strcmp(base->rows[i].kind, kind)) continue;
        const rrow *mr = find_row(m, kind, base->rows[i].name);
        if (!mr) continue;
        double d = mr->value - base->rows[i].value;
        if (same_target(base->rows[i].name, target)) *dt = d;
        else sum += d, n++;
    }
    *dot = n ? sum / (double)n : NAN;
}

static void html_esc(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void fmt_num(char *buf, size_t cap, double v) {
    if (isnan(v)) snprintf(buf, cap, "–");
    else if (fabs(v) >= 1000) snprintf(buf, cap, "%.1f", v);
    else snprintf(buf, cap, "%.4g", v);
}

/* Run `exe argv...` and return its stdout (malloc'ed), NULL on failure. */
static char *capture(const char *exe, char **argv) {
    int fd[2];
    if (pipe(fd) != 0) return NULL;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return NULL;
    }
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        int dn = open("/dev/null", O_WRONLY);
        if (dn >= 0) dup2(dn, 2);
        execv(exe, argv);
        _exit(127);
    }
    close(fd[1]);
    size_t cap = 65536, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (b && n + 1 == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) { free(b); b = NULL; }
            else b = nb;
        }
        char sink[4096];
        ssize_t got = b ? read(fd[0], b + n, cap - n - 1) : read(fd[0], sink, sizeof sink);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        if (b) n += (size_t)got;
    }
    close(fd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (!b || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        free(b);
        return NULL;
    }
    b[n] = 0;
    return b;
}

static void css(FILE *f) {
    fputs("<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}"
          "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right;"
          "font-size:13px}th{background:#f3f3f3}td.l,th.l{text-align:left}td.target{outline:2px solid #000;"
          "font-weight:bold}.ctx{font-family:monospace;white-space:pre-wrap;font-size:12px;margin:2px 0;"
          "border-left:3px solid #ddd;padding-left:6px}mark{background:#ffd54f}.muted{color:#777}"
          "h2{border-bottom:1px solid #ddd;margin-top:2em}</style>\n",
          f);
}

/* Cell color: red when the change hurts, green when it helps; intensity by |d| / max. */
static void cell_style(FILE *f, double d, double maxabs, int hib) {
    if (isnan(d) || maxabs <= 0) return;
    double t = fabs(d) / maxabs;
    int hurt = hib ? d < 0 : d > 0;
    int c = 255 - (int)(120 * t);
    fprintf(f, " style=\"background:rgb(%d,%d,%d)\"", hurt ? 255 : c, hurt ? c : 255, c);
}

static void svg_chart(FILE *f, const double *x, const double *y, size_t n, const char *xl, const char *yl) {
    double x0 = 0, x1 = 0, y0 = INFINITY, y1 = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (x[i] > x1) x1 = x[i];
        if (!isnan(y[i])) {
            if (y[i] < y0) y0 = y[i];
            if (y[i] > y1) y1 = y[i];
        }
    }
    if (!isfinite(y0)) return;
    if (x1 <= x0) x1 = x0 + 1e-9;
    if (y1 <= y0) y1 = y0 + (y0 ? fabs(y0) * 0.1 : 1), y0 -= (y1 - y0) * 0.5;
    const double W = 420, H = 220, L = 60, B = 40, T = 15, R = 20;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" role=\"img\">"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>"
               "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#444\"/><line x1=\"%g\" y1=\"%g\" x2=\"%g\" "
               "y2=\"%g\" stroke=\"#444\"/>",
            W, H, L, H - B, W - R, H - B, L, T, L, H - B);
    fprintf(f, "<text x=\"%g\" y=\"%g\" font-size=\"11\" text-anchor=\"middle\">", (L + W - R) / 2, H - 8);
    html_esc(f, xl);
    fprintf(f, "</text><text x=\"12\" y=\"%g\" font-size=\"11\" transform=\"rotate(-90 12 %g)\" "
               "text-anchor=\"middle\">", (T + H - B) / 2, (T + H - B) / 2);
    html_esc(f, yl);
    fprintf(f, "</text><text x=\"%g\" y=\"%g\" font-size=\"10\" text-anchor=\"end\">%.4g</text>"
               "<text x=\"%g\" y=\"%g\" font-size=\"10\" text-anchor=\"end\">%.4g</text>"
               "<text x=\"%g\" y=\"%g\" font-size=\"10\">0%%</text><text x=\"%g\" y=\"%g\" font-size=\"10\" "
               "text-anchor=\"end\">%.2f%%</text>",
            L - 4, H - B, y0, L - 4, T + 8, y1, L, H - B + 14, W - R, H - B + 14, 100 * x1);
    fputs("<polyline fill=\"none\" stroke=\"#c62828\" stroke-width=\"2\" points=\"", f);
    for (size_t i = 0; i < n; i++)
        if (!isnan(y[i]))
            fprintf(f, "%.1f,%.1f ", L + (x[i] - x0) / (x1 - x0) * (W - L - R), H - B - (y[i] - y0) / (y1 - y0) * (H - B - T));
    fputs("\"/>", f);
    for (size_t i = 0; i < n; i++)
        if (!isnan(y[i]))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#c62828\"/>",
                    L + (x[i] - x0) / (x1 - x0) * (W - L - R), H - B - (y[i] - y0) / (y1 - y0) * (H - B - T));
    fputs("</svg>\n", f);
}

/* One eval's section: Δ matrix (specialize) or threshold table + curve (correlate). */
static void html_eval(FILE *f, const mp_plan *p, size_t e, rres *res, const rmask *mk) {
    const mp_recipe *r = p->recipe;
    size_t nm = p->n_masks;
    rres *base = &res[e * (nm + 1)];
    const char *kind = main_kind(base);
    char b1[64], b2[64];
    fprintf(f, "<h2>eval %s</h2>\n<p>metric: %s (%s is better); rows of kind <b>", mp_reval_name(r->eval_kind[e]),
            base->metric, base->hib ? "higher" : "lower");
    html_esc(f, kind);
    fputs("</b>; Δ = masked − base.</p>\n", f);
    double maxabs = 0;
    for (size_t m = 0; m < nm; m++)
        for (size_t i = 0; i < base->n; i++) {
            const rrow *mr = find_row(&res[e * (nm + 1) + m + 1], kind, base->rows[i].name);
            if (mr && !strcmp(base->rows[i].kind, kind) && fabs(mr->value - base->rows[i].value) > maxabs)
                maxabs = fabs(mr->value - base->rows[i].value);
        }
    fputs("<table class=\"delta\"><tr><th class=\"l\">mask (target@threshold)</th><th>masked</th><th>ratio</th>", f);
    for (size_t i = 0; i < base->n; i++)
        if (!strcmp(base->rows[i].kind, kind)) {
            fputs("<th>", f);
            html_esc(f, base->rows[i].name);
            fputs("</th>", f);
        }
    fputs(r->correlate ? "<th>mean Δ</th></tr>\n" : "<th>Δ target</th><th>Δ others</th></tr>\n", f);
    fputs("<tr><td class=\"l\">base (value)</td><td>0</td><td>0%</td>", f);
    for (size_t i = 0; i < base->n; i++)
        if (!strcmp(base->rows[i].kind, kind)) {
            fmt_num(b1, sizeof b1, base->rows[i].value);
            fprintf(f, "<td>%s</td>", b1);
        }
    fputs(r->correlate ? "<td></td></tr>\n" : "<td></td><td></td></tr>\n", f);
    for (size_t m = 0; m < nm; m++) {
        const rres *mr = &res[e * (nm + 1) + m + 1];
        fputs("<tr><td class=\"l\">", f);
        html_esc(f, p->masks[m].target);
        fprintf(f, "@%g</td><td>%ld</td><td>%.3f%%</td>", p->masks[m].threshold, mk[m].masked, 100 * mk[m].ratio);
        double sum = 0;
        size_t cnt = 0;
        for (size_t i = 0; i < base->n; i++) {
            if (strcmp(base->rows[i].kind, kind)) continue;
            const rrow *x = find_row(mr, kind, base->rows[i].name);
            double d = x ? x->value - base->rows[i].value : NAN;
            int tgt = !r->correlate && same_target(base->rows[i].name, p->masks[m].target);
            fmt_num(b1, sizeof b1, d);
            fprintf(f, "<td%s", tgt ? " class=\"target\"" : "");
            cell_style(f, d, maxabs, base->hib);
            fprintf(f, ">%s%s</td>", !isnan(d) && d > 0 ? "+" : "", b1);
            if (!isnan(d)) sum += d, cnt++;
        }
        if (r->correlate) {
            fmt_num(b1, sizeof b1, cnt ? sum / (double)cnt : NAN);
            fprintf(f, "<td>%s</td></tr>\n", b1);
        } else {
            double dt, dot;
            deltas(base, mr, kind, p->masks[m].target, &dt, &dot);
            fmt_num(b1, sizeof b1, dt);
            fmt_num(b2, sizeof b2, dot);
            fprintf(f, "<td>%s</td><td>%s</td></tr>\n", b1, b2);
        }
    }
    fputs("</table>\n", f);
    if (r->correlate && nm) { /* masking ratio vs the eval's headline (average, else first row) */
        const char *hk = find_row(base, "average", "all") ? "average" : kind;
        const char *hn = NULL;
        for (size_t i = 0; i < base->n && !hn; i++)
            if (!strcmp(base->rows[i].kind, hk)) hn = base->rows[i].name;
        if (!hn) return;
        double *x = calloc(nm + 1, sizeof *x), *y = calloc(nm + 1, sizeof *y);
        if (x && y) {
            const rrow *b = find_row(base, hk, hn);
            x[0] = 0;
            y[0] = b ? b->value : NAN;
            for (size_t m = 0; m < nm; m++) {
                const rrow *v = find_row(&res[e * (nm + 1) + m + 1], hk, hn);
                x[m + 1] = mk[m].ratio;
                y[m + 1] = v ? v->value : NAN;
            }
            char yl[300];
            snprintf(yl, sizeof yl, "%s %s %s", hk, hn, base->metric);
            fputs("<p>masking ratio vs ", f);
            html_esc(f, yl);
            fputs(" (base at 0%)</p>\n", f);
            svg_chart(f, x, y, nm + 1, "masking ratio", yl);
        }
        free(x);
        free(y);
    }
}

/* Top contexts of a few masked experts of mask m. */
static void html_contexts(FILE *f, const mp_plan *p, const char *exe, size_t m, const rmask *mk) {
    const mp_recipe *r = p->recipe;
    cJSON *groups = cJSON_GetObjectItem(mk->json, "groups");
    if (!cJSON_IsArray(groups) || r->report_experts <= 0) return;
    char store[4200], lim[32], win[32], expert[96];
    snprintf(store, sizeof store, "%s/store.db", p->steps[p->collect_step].dir);
    snprintf(lim, sizeof lim, "%ld", r->report_contexts);
    snprintf(win, sizeof win, "%ld", r->report_context_tokens);
    fputs("<h3>", f);
    html_esc(f, p->masks[m].target);
    fprintf(f, "@%g: masked experts' top contexts</h3>\n", p->masks[m].threshold);
    long shown = 0;
    for (int round = 0; round < 1000 && shown < r->report_experts; round++) {
        int any = 0;
        cJSON *g;
        cJSON_ArrayForEach(g, groups) {
            cJSON *ex = cJSON_GetObjectItem(g, "experts"), *gi = cJSON_GetObjectItem(g, "group");
            cJSON *pair = cJSON_IsArray(ex) ? cJSON_GetArrayItem(ex, round) : NULL;
            if (!pair || !cJSON_IsNumber(gi) || shown >= r->report_experts) continue;
            any = 1;
            cJSON *pi = cJSON_GetArrayItem(pair, 0), *pj = cJSON_GetArrayItem(pair, 1);
            if (!cJSON_IsNumber(pi) || !cJSON_IsNumber(pj)) continue;
            snprintf(expert, sizeof expert, "%d:%d,%d", gi->valueint, pi->valueint, pj->valueint);
            char *argv[] = {"monet-probe", "top-contexts", "--store", store, "--expert", expert, "--contexts", lim,
                            "--context-tokens", win, "--json", NULL};
            char *out = capture(exe, argv);
            cJSON *j = out ? cJSON_Parse(out) : NULL;
            free(out);
            shown++;
            fprintf(f, "<h4>group %s</h4>\n", expert);
            cJSON *jg, *c;
            cJSON_ArrayForEach(jg, cJSON_GetObjectItem(j, "groups")) {
                cJSON_ArrayForEach(c, cJSON_GetObjectItem(jg, "contexts")) {
                    const char *pct = cJSON_GetStringValue(cJSON_GetObjectItem(c, "percent"));
                    const char *l = cJSON_GetStringValue(cJSON_GetObjectItem(c, "left"));
                    const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(c, "token"));
                    const char *rt = cJSON_GetStringValue(cJSON_GetObjectItem(c, "right"));
                    char *labels = cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "labels"));
                    fputs("<div class=\"ctx\"><span class=\"muted\">", f);
                    html_esc(f, pct ? pct : "");
                    fputs(" ", f);
                    html_esc(f, labels ? labels : "");
                    fputs("</span> ", f);
                    html_esc(f, l ? l : "");
                    fputs("<mark>", f);
                    html_esc(f, t ? t : "");
                    fputs("</mark>", f);
                    html_esc(f, rt ? rt : "");
                    fputs("</div>\n", f);
                    free(labels);
                }
            }
            if (!j) fputs("<p class=\"muted\">(no contexts)</p>\n", f);
            cJSON_Delete(j);
        }
        if (!any) break;
    }
    if (!shown) fputs("<p class=\"muted\">(no expert masked)</p>\n", f);
}

static int step_done(const mp_step *s) { return s->cached || s->ran; }

static const char *step_status(const mp_step *s) {
    return s->ran ? "ran" : s->cached ? "cached" : s->failed ? "failed" : "not run";
}

int mp_report_write(const mp_plan *p, const char *exe, const char *failure, mp_error *err) {
    const mp_recipe *r = p->recipe;
    size_t nm = p->n_masks, ne = r->n_evals;
    rres *res = calloc(ne * (nm + 1) + 1, sizeof *res);
    rmask *mk = calloc(nm + 1, sizeof *mk);
    FILE *fj = NULL, *fc = NULL, *fh = NULL;
    cJSON *rows = NULL, *summ = NULL, *root = NULL;
    int rc = 0;
    char path[4200];
    if (!res || !mk) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t m = 0; m < nm; m++) {
        if (!step_done(&p->steps[p->masks[m].step])) continue; /* a failed sweep: no mask, "-" in the tables */
        snprintf(path, sizeof path, "%s/mask.json", p->steps[p->masks[m].step].dir);
        char *txt = slurp(path, NULL);
        mk[m].json = txt ? cJSON_Parse(txt) : NULL;
        free(txt);
        if (!mk[m].json) {
            rc = mp_fail(err, MP_EINPUT, "%s: cannot read the mask", path);
            goto cleanup;
        }
        cJSON *v;
        mk[m].masked = cJSON_IsNumber(v = cJSON_GetObjectItem(mk[m].json, "masked")) ? (long)v->valuedouble : 0;
        mk[m].total = cJSON_IsNumber(v = cJSON_GetObjectItem(mk[m].json, "total")) ? (long)v->valuedouble : 0;
        mk[m].ratio = cJSON_IsNumber(v = cJSON_GetObjectItem(mk[m].json, "ratio")) ? v->valuedouble : 0;
    }
    for (size_t i = 0; i < p->n_steps; i++) {
        const mp_step *s = &p->steps[i];
        if (s->kind != MP_STEP_EVAL || !step_done(s)) continue;
        if ((rc = load_step(s, &res[(size_t)s->eval * (nm + 1) + (size_t)(s->mask + 1)], err)) < 0) goto cleanup;
    }

    /* results.json + results.csv */
    root = cJSON_CreateObject();
    rows = cJSON_CreateArray();
    summ = cJSON_CreateArray();
    if (!root || !rows || !summ) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    snprintf(path, sizeof path, "%s/results.csv.tmp", p->out_dir);
    if (!(fc = fopen(path, "w"))) {
        rc = mp_fail(err, MP_EIO, "%s: cannot create: %s", path, strerror(errno));
        goto cleanup;
    }
    fputs("eval,metric,higher_is_better,target,threshold,masked_experts,masking_ratio,kind,name,base,masked,delta,"
          "is_target\n", fc);
    for (size_t e = 0; e < ne; e++) {
        rres *base = &res[e * (nm + 1)];
        const char *kind = main_kind(base);
        for (size_t m = 0; m < nm; m++) {
            rres *mr = &res[e * (nm + 1) + m + 1];
            for (size_t i = 0; i < base->n; i++) {
                const rrow *x = find_row(mr, base->rows[i].kind, base->rows[i].name);
                double mv = x ? x->value : NAN, d = mv - base->rows[i].value;
                int tgt = !r->correlate && !strcmp(base->rows[i].kind, kind) &&
                          same_target(base->rows[i].name, p->masks[m].target);
                cJSON *o = cJSON_CreateObject();
                if (!o) continue;
                cJSON_AddStringToObject(o, "eval", mp_reval_name(r->eval_kind[e]));
                cJSON_AddStringToObject(o, "metric", base->metric);
                cJSON_AddStringToObject(o, "target", p->masks[m].target);
                cJSON_AddNumberToObject(o, "threshold", p->masks[m].threshold);
                cJSON_AddNumberToObject(o, "masked_experts", (double)mk[m].masked);
                cJSON_AddNumberToObject(o, "masking_ratio", mk[m].ratio);
                cJSON_AddStringToObject(o, "kind", base->rows[i].kind);
                cJSON_AddStringToObject(o, "name", base->rows[i].name);
                cJSON_AddNumberToObject(o, "base", base->rows[i].value);
                if (isnan(mv)) cJSON_AddNullToObject(o, "masked"), cJSON_AddNullToObject(o, "delta");
                else cJSON_AddNumberToObject(o, "masked", mv), cJSON_AddNumberToObject(o, "delta", d);
                cJSON_AddBoolToObject(o, "is_target", tgt);
                cJSON_AddItemToArray(rows, o);
                fprintf(fc, "%s,", mp_reval_name(r->eval_kind[e]));
                csv_field(fc, base->metric);
                fprintf(fc, ",%d,", base->hib);
                csv_field(fc, p->masks[m].target);
                fprintf(fc, ",%.17g,%ld,%.17g,", p->masks[m].threshold, mk[m].masked, mk[m].ratio);
                csv_field(fc, base->rows[i].kind);
                fputc(',', fc);
                csv_field(fc, base->rows[i].name);
                fprintf(fc, ",%.17g,", base->rows[i].value);
                if (isnan(mv)) fputs(",,", fc);
                else fprintf(fc, "%.17g,%.17g,", mv, d);
                fprintf(fc, "%d\n", tgt);
            }
            double dt, dot;
            deltas(base, mr, kind, p->masks[m].target, &dt, &dot);
            cJSON *o = cJSON_CreateObject();
            if (!o) continue;
            cJSON_AddStringToObject(o, "eval", mp_reval_name(r->eval_kind[e]));
            cJSON_AddStringToObject(o, "kind", kind);
            cJSON_AddStringToObject(o, "target", p->masks[m].target);
            cJSON_AddNumberToObject(o, "threshold", p->masks[m].threshold);
            cJSON_AddNumberToObject(o, "masked_experts", (double)mk[m].masked);
            cJSON_AddNumberToObject(o, "masking_ratio", mk[m].ratio);
            if (isnan(dt)) cJSON_AddNullToObject(o, "delta_target");
            else cJSON_AddNumberToObject(o, "delta_target", dt);
            if (isnan(dot)) cJSON_AddNullToObject(o, "delta_others");
            else cJSON_AddNumberToObject(o, "delta_others", dot);
            cJSON_AddItemToArray(summ, o);
        }
    }
    cJSON_AddStringToObject(root, "format", "monet-probe-sweep");
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddStringToObject(root, "recipe", r->path);
    cJSON_AddStringToObject(root, "name", r->name);
    cJSON_AddStringToObject(root, "model", r->model);
    cJSON_AddStringToObject(root, "criterion", r->correlate ? "correlate" : "specialize");
    cJSON_AddStringToObject(root, "field", r->field);
    cJSON_AddBoolToObject(root, "complete", failure == NULL);
    if (failure) cJSON_AddStringToObject(root, "failure", failure);
    cJSON *steps = cJSON_AddArrayToObject(root, "steps");
    for (size_t i = 0; steps && i < p->n_steps; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) continue;
        cJSON_AddStringToObject(o, "step", p->steps[i].label);
        cJSON_AddStringToObject(o, "key", p->steps[i].key);
        cJSON_AddStringToObject(o, "status", step_status(&p->steps[i]));
        cJSON_AddNumberToObject(o, "seconds", p->steps[i].seconds);
        cJSON_AddItemToArray(steps, o);
    }
    cJSON_AddItemToObject(root, "summary", summ);
    summ = NULL;
    cJSON_AddItemToObject(root, "rows", rows);
    rows = NULL;
    char *txt = cJSON_Print(root);
    snprintf(path, sizeof path, "%s/results.json.tmp", p->out_dir);
    if (!txt || !(fj = fopen(path, "w")) || fprintf(fj, "%s\n", txt) < 0) {
        free(txt);
        rc = mp_fail(err, MP_EIO, "%s: cannot write", path);
        goto cleanup;
    }
    free(txt);

    /* report.html */
    snprintf(path, sizeof path, "%s/report.html.tmp", p->out_dir);
    if (!(fh = fopen(path, "w"))) {
        rc = mp_fail(err, MP_EIO, "%s: cannot create: %s", path, strerror(errno));
        goto cleanup;
    }
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>monet-probe sweep: ", fh);
    html_esc(fh, r->name);
    fputs("</title>\n", fh);
    css(fh);
    fputs("</head><body>\n<h1>sweep ", fh);
    html_esc(fh, r->name);
    fputs("</h1>\n<p>recipe <code>", fh);
    html_esc(fh, r->path);
    fputs("</code>, model <code>", fh);
    html_esc(fh, r->model);
    fprintf(fh, "</code>; criterion %s on <code>", r->correlate ? "correlate (Pearson r ≥ threshold)"
                                                                : "specialize (skew ≥ threshold)");
    html_esc(fh, r->field);
    size_t ran = 0;
    for (size_t i = 0; i < p->n_steps; i++) ran += p->steps[i].ran != 0;
    size_t done = 0;
    for (size_t i = 0; i < p->n_steps; i++) done += step_done(&p->steps[i]);
    fprintf(fh, "</code>; %zu steps (%zu ran now, %zu from the cache", p->n_steps, ran, done - ran);
    if (done < p->n_steps) fprintf(fh, ", %zu not done", p->n_steps - done);
    fputs(").</p>\n", fh);
    if (failure) {
        fputs("<p class=\"failed\"><b>The sweep failed; this report holds what finished.</b> ", fh);
        html_esc(fh, failure);
        fputs("</p>\n<table class=\"masks\"><tr><th class=\"l\">step</th><th>status</th></tr>\n", fh);
        for (size_t i = 0; i < p->n_steps; i++) {
            if (step_done(&p->steps[i])) continue;
            fputs("<tr><td class=\"l\">", fh);
            html_esc(fh, p->steps[i].label);
            fprintf(fh, "</td><td>%s</td></tr>\n", step_status(&p->steps[i]));
        }
        fputs("</table>\n", fh);
    }
    fputs("<h2>masks</h2>\n<table class=\"masks\"><tr><th class=\"l\">target</th><th>threshold</th><th>masked "
          "experts</th><th>of</th><th>masking ratio</th></tr>\n", fh);
    for (size_t m = 0; m < nm; m++) {
        fputs("<tr><td class=\"l\">", fh);
        html_esc(fh, p->masks[m].target);
        fprintf(fh, "</td><td>%g</td><td>%ld</td><td>%ld</td><td>%.3f%%</td></tr>\n", p->masks[m].threshold,
                mk[m].masked, mk[m].total, 100 * mk[m].ratio);
    }
    fputs("</table>\n", fh);
    for (size_t e = 0; e < ne; e++) html_eval(fh, p, e, res, mk);
    fputs("<h2>selected experts</h2>\n", fh);
    for (size_t m = 0; m < nm; m++) {
        /* specialize: first threshold of each target; correlate: the strictest threshold */
        if (r->correlate ? p->masks[m].threshold != r->thresholds[0] : m % r->n_thresholds) continue;
        html_contexts(fh, p, exe, m, &mk[m]);
    }
    fputs("<p class=\"muted\">written by monet-probe sweep " MP_VERSION "</p>\n</body></html>\n", fh);
cleanup:
    if (fj && fclose(fj) != 0 && rc == 0) rc = mp_fail(err, MP_EIO, "results.json: write failed");
    if (fc && fclose(fc) != 0 && rc == 0) rc = mp_fail(err, MP_EIO, "results.csv: write failed");
    if (fh && fclose(fh) != 0 && rc == 0) rc = mp_fail(err, MP_EIO, "report.html: write failed");
    /* the three files appear together, complete (written as .tmp, renamed last): a reader
     * waiting for them (the Slurm report job's user, a script) never sees half a report */
    static const char *const OUTS[] = {"results.csv", "results.json", "report.html", NULL};
    for (const char *const *o = OUTS; *o; o++) {
        char tmp[4200], fin[4200];
        snprintf(tmp, sizeof tmp, "%s/%s.tmp", p->out_dir, *o);
        snprintf(fin, sizeof fin, "%s/%s", p->out_dir, *o);
        if (rc == 0 && rename(tmp, fin) != 0) rc = mp_fail(err, MP_EIO, "%s: cannot rename: %s", fin, strerror(errno));
        else if (rc < 0) unlink(tmp);
    }
    cJSON_Delete(root);
    cJSON_Delete(rows);
    cJSON_Delete(summ);
    for (size_t i = 0; res && i < ne * (nm + 1); i++) free(res[i].rows);
    free(res);
    for (size_t m = 0; mk && m < nm; m++) cJSON_Delete(mk[m].json);
    free(mk);
    return rc;
}
