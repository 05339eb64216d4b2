/* recipes/plan.c — recipe → step DAG with content-addressed keys; dry-run
 * printing; execution of missing steps as subprocesses of monet-probe itself
 * (fork + exec of the binary, stdout/stderr captured in the step's cache
 * directory, parent-death signal so a killed sweep leaves no orphan writing
 * into the cache); the in-process MMLU corpus writer. See plan.h. */
#include "recipes/plan.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/model/checkpoint.h"
#include "core/eval/eval_tasks.h"
#include "core/eval/multiple_eval.h"
#include "core/util/progress.h"
#include "core/util/sha256.h"

static const char *STEP_NAMES[] = {"corpus-mmlu", "scorer", "collect", "purge", "eval"};

/* ---- building ------------------------------------------------------------------------ */

static int add_step(mp_plan *p, mp_step_kind kind, const char *label, int mask, int eval, const char *sub) {
    if (p->n_steps == p->cap_steps) {
        size_t cap = p->cap_steps ? 2 * p->cap_steps : 16;
        mp_step *s = realloc(p->steps, cap * sizeof *s);
        if (!s) return MP_ENOMEM;
        p->steps = s;
        p->cap_steps = cap;
    }
    mp_step *s = &p->steps[p->n_steps];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->mask = mask;
    s->eval = eval;
    if (!(s->label = strdup(label)) || (sub && !(s->sub = strdup(sub)))) {
        free(s->label);
        return MP_ENOMEM;
    }
    return (int)p->n_steps++;
}

static int arg(mp_step *s, mp_arg_kind kind, const char *prefix, const char *text, int up) {
    if (s->n_args == s->cap_args) {
        size_t cap = s->cap_args ? 2 * s->cap_args : 16;
        mp_step_arg *a = realloc(s->args, cap * sizeof *a);
        if (!a) return MP_ENOMEM;
        s->args = a;
        s->cap_args = cap;
    }
    mp_step_arg *a = &s->args[s->n_args];
    a->kind = kind;
    a->up = up;
    a->prefix = prefix ? strdup(prefix) : NULL;
    a->text = strdup(text);
    if (!a->text || (prefix && !a->prefix)) {
        free(a->text);
        free(a->prefix);
        return MP_ENOMEM;
    }
    s->n_args++;
    if (kind == MP_ARG_UP) {
        for (int i = 0; i < s->n_deps; i++)
            if (s->deps[i] == up) return 0;
        if (s->n_deps < 8) s->deps[s->n_deps++] = up;
    }
    return 0;
}

#define LIT(s, t) MP_TRY(arg((s), MP_ARG_LIT, NULL, (t), -1))

/* Pass a section's options that have a CLI flag. */
static int section_args(mp_step *s, const mp_rsection *sec, const char *const *skip) {
    for (size_t i = 0; i < sec->n; i++) {
        const mp_ropt *o = &sec->opts[i];
        if (!o->flag) continue;
        int skipped = 0;
        for (const char *const *k = skip; k && *k; k++) skipped |= !strcmp(*k, o->key);
        if (skipped) continue;
        LIT(s, o->flag);
        if (o->type == MP_RT_PATH) {
            MP_TRY(arg(s, MP_ARG_INFILE, NULL, o->node->scalar, -1));
        } else if (o->type == MP_RT_LIST) {
            char buf[2048];
            size_t n = 0;
            buf[0] = 0;
            for (size_t j = 0; j < o->node->n && n < sizeof buf; j++)
                n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", j ? "," : "", o->node->items[j]->scalar);
            LIT(s, buf);
        } else {
            LIT(s, o->node->scalar);
        }
    }
    return 0;
}

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Model fingerprint (plan.h). Hashing gigabytes of weights on every plan would
 * be slow; name + size + mtime + the safetensors JSON header identify a file. */
static int model_hash(const char *dir, char hex[65], mp_error *err) {
    mp_sha256 h;
    mp_sha256_init(&h);
    char path[4096], fh[65];
    static const char *const FILES[] = {"config.json", "tokenizer.model", NULL};
    for (const char *const *f = FILES; *f; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, *f);
        if (!is_file(path)) continue;
        MP_TRY(mp_sha256_file(path, fh, err));
        mp_sha256_update(&h, *f, strlen(*f) + 1);
        mp_sha256_update(&h, fh, 64);
    }
    char **names = NULL;
    size_t n = 0;
    MP_TRY(mp_list_safetensors(dir, &names, &n, err));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        FILE *f = fopen(path, "rb");
        if (!f || fstat(fileno(f), &st) != 0) {
            if (f) fclose(f);
            rc = mp_fail(err, MP_EIO, "%s: cannot open: %s", path, strerror(errno));
            break;
        }
        char meta[256];
        int ml = snprintf(meta, sizeof meta, "%s|%lld|%lld.%09ld", names[i], (long long)st.st_size,
                          (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        mp_sha256_update(&h, meta, (size_t)ml + 1);
        unsigned char hdr[8];
        if (fread(hdr, 1, 8, f) == 8) {
            unsigned long long hl = 0;
            for (int b = 7; b >= 0; b--) hl = hl << 8 | hdr[b];
            if (hl > (100ull << 20)) hl = 100ull << 20;
            char buf[65536];
            while (hl) {
                size_t want = hl < sizeof buf ? (size_t)hl : sizeof buf, got = fread(buf, 1, want, f);
                if (!got) break;
                mp_sha256_update(&h, buf, got);
                hl -= got;
            }
        }
        fclose(f);
    }
    mp_free_names(names, n);
    if (rc < 0) return rc;
    unsigned char dig[32];
    mp_sha256_final(&h, dig);
    mp_sha256_hex(dig, hex);
    return 0;
}

/* Hash of an input: a file's content; a directory by its path (docs/recipes.md). */
static int input_hash(const char *path, char hex[65], mp_error *err) {
    if (is_file(path)) return mp_sha256_file(path, hex, err);
    mp_sha256 h;
    unsigned char dig[32];
    mp_sha256_init(&h);
    mp_sha256_update(&h, "dir:", 4);
    mp_sha256_update(&h, path, strlen(path));
    mp_sha256_final(&h, dig);
    mp_sha256_hex(dig, hex);
    return 0;
}

static int step_key(mp_plan *p, mp_step *s, mp_error *err) {
    mp_sha256 h;
    mp_sha256_init(&h);
    const char *tag = "monet-probe-sweep-v1";
    mp_sha256_update(&h, tag, strlen(tag) + 1);
    mp_sha256_update(&h, STEP_NAMES[s->kind], strlen(STEP_NAMES[s->kind]) + 1);
    for (size_t i = 0; i < s->n_args; i++) {
        const mp_step_arg *a = &s->args[i];
        char k = (char)('0' + a->kind), fh[65];
        mp_sha256_update(&h, &k, 1);
        if (a->prefix) mp_sha256_update(&h, a->prefix, strlen(a->prefix));
        mp_sha256_update(&h, "", 1);
        switch (a->kind) {
        case MP_ARG_LIT:
        case MP_ARG_OUT: mp_sha256_update(&h, a->text, strlen(a->text)); break;
        case MP_ARG_MODEL: mp_sha256_update(&h, p->model_hash, 64); break;
        case MP_ARG_INFILE:
            MP_TRY(input_hash(a->text, fh, err));
            mp_sha256_update(&h, fh, 64);
            break;
        case MP_ARG_UP:
            mp_sha256_update(&h, p->steps[a->up].key, 64);
            mp_sha256_update(&h, a->text, strlen(a->text));
            break;
        }
        mp_sha256_update(&h, "", 1);
    }
    unsigned char dig[32];
    mp_sha256_final(&h, dig);
    mp_sha256_hex(dig, s->key);
    size_t n = strlen(p->cache_dir) + 70;
    if (!(s->dir = malloc(n))) return mp_fail(err, MP_ENOMEM, "out of memory");
    snprintf(s->dir, n, "%s/%s", p->cache_dir, s->key);
    char done[4200];
    snprintf(done, sizeof done, "%s/DONE", s->dir);
    s->cached = is_file(done);
    return 0;
}

static int add_model(mp_plan *p, mp_step *s) {
    LIT(s, "--model");
    return arg(s, MP_ARG_MODEL, NULL, p->recipe->model, -1);
}

static int build_evals(mp_plan *p, int scorer_step, mp_error *err) {
    const mp_recipe *r = p->recipe;
    static const char *const LANGS[] = {"py", "cpp", "java", "js", "lua", "php"};
    for (size_t e = 0; e < r->n_evals; e++) {
        const mp_rsection *sec = &r->evals[e];
        mp_reval_kind kind = r->eval_kind[e];
        const mp_ropt *langs = mp_rsection_get(sec, "langs");
        size_t n_sub = kind != MP_REVAL_MULTIPLE ? 1 : langs ? langs->node->n : 6;
        for (int m = -1; m < (int)p->n_masks; m++)
            for (size_t sub = 0; sub < n_sub; sub++) {
                const char *lang =
                    kind != MP_REVAL_MULTIPLE ? NULL : langs ? langs->node->items[sub]->scalar : LANGS[sub];
                char label[300];
                snprintf(label, sizeof label, "eval %s%s%s %s", mp_reval_name(kind), lang ? " " : "", lang ? lang : "",
                         m < 0 ? "base" : "");
                if (m >= 0) {
                    size_t l = strlen(label);
                    snprintf(label + l, sizeof label - l, "mask %s@%g", p->masks[m].target, p->masks[m].threshold);
                }
                int si = add_step(p, MP_STEP_EVAL, label, m, (int)e, lang);
                if (si < 0) return mp_fail(err, MP_ENOMEM, "out of memory");
                mp_step *s = &p->steps[si];
                LIT(s, "eval");
                LIT(s, mp_reval_name(kind));
                MP_TRY(add_model(p, s));
                char buf[4200];
                if (kind == MP_REVAL_MULTIPLE) {
                    LIT(s, "--lang");
                    LIT(s, lang);
                    LIT(s, "--problems");
                    snprintf(buf, sizeof buf, "%s/multipl-e/humaneval-%s-reworded.jsonl", r->data, lang);
                    LIT(s, buf);
                } else if (kind != MP_REVAL_PPL) {
                    LIT(s, "--data");
                    LIT(s, r->data);
                }
                MP_TRY(section_args(s, sec, NULL));
                if (kind == MP_REVAL_TOXICITY) {
                    const mp_ropt *sc = mp_rsection_get(sec, "scorer");
                    LIT(s, "--scorer");
                    if (!sc || !strcmp(sc->node->scalar, "builtin")) {
                        MP_TRY(arg(s, MP_ARG_UP, "builtin:", "tox.json", scorer_step));
                    } else if (!strncmp(sc->node->scalar, "builtin:", 8) || !strncmp(sc->node->scalar, "roberta:", 8)) {
                        MP_TRY(arg(s, MP_ARG_INFILE, strncmp(sc->node->scalar, "builtin:", 8) ? "roberta:" : "builtin:",
                                   sc->node->scalar + 8, -1));
                    } else {
                        LIT(s, sc->node->scalar);
                    }
                }
                if (m >= 0) {
                    LIT(s, "--mask");
                    MP_TRY(arg(s, MP_ARG_UP, NULL, "mask.json", p->masks[m].step));
                }
                LIT(s, kind == MP_REVAL_MULTIPLE ? "--out" : "--json");
                MP_TRY(arg(s, MP_ARG_OUT, NULL, kind == MP_REVAL_MULTIPLE ? "items.jsonl" : "result.json", -1));
                LIT(s, "--quiet");
                MP_TRY(step_key(p, s, err));
            }
    }
    return 0;
}

int mp_plan_build(const mp_recipe *r, mp_plan **out, mp_error *err) {
    *out = NULL;
    mp_plan *p = calloc(1, sizeof *p);
    if (!p) return mp_fail(err, MP_ENOMEM, "out of memory");
    p->recipe = r;
    int rc = 0;
    size_t n = strlen(r->out) + 8;
    if (!(p->out_dir = strdup(r->out)) || !(p->cache_dir = malloc(n))) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    snprintf(p->cache_dir, n, "%s/cache", r->out);
    if ((rc = model_hash(r->model, p->model_hash, err)) < 0) goto cleanup;
    rc = MP_ENOMEM;

    /* MMLU corpus (in-process) */
    const mp_ropt *corpus = mp_rsection_get(&r->collect, "corpus");
    int corpus_step = -1, scorer_step = -1, si;
    if (!strncmp(corpus->node->scalar, "mmlu:", 5)) {
        char label[64], tsv[4200];
        snprintf(label, sizeof label, "corpus %s", corpus->node->scalar);
        if ((corpus_step = add_step(p, MP_STEP_CORPUS, label, -1, -1, NULL)) < 0) goto nomem;
        mp_step *s = &p->steps[corpus_step];
        snprintf(tsv, sizeof tsv, "%s/mmlu/subjects.tsv", r->data);
        if (arg(s, MP_ARG_LIT, NULL, corpus->node->scalar + 5, -1) < 0 || arg(s, MP_ARG_LIT, NULL, r->data, -1) < 0 ||
            arg(s, MP_ARG_INFILE, NULL, tsv, -1) < 0 || arg(s, MP_ARG_OUT, NULL, "corpus.jsonl", -1) < 0)
            goto nomem;
        if ((rc = step_key(p, s, err)) < 0) goto cleanup;
    }
    /* builtin toxicity scorer, trained once */
    for (size_t e = 0; e < r->n_evals && scorer_step < 0; e++) {
        const mp_ropt *sc = mp_rsection_get(&r->evals[e], "scorer");
        if (r->eval_kind[e] != MP_REVAL_TOXICITY || (sc && strcmp(sc->node->scalar, "builtin"))) continue;
        const mp_ropt *pr = mp_rsection_get(&r->evals[e], "prompts");
        if (!strcmp(pr->node->scalar, "toxigen-annotated")) continue;
        if ((scorer_step = add_step(p, MP_STEP_SCORER, "toxicity-scorer train", -1, -1, NULL)) < 0) goto nomem;
        mp_step *s = &p->steps[scorer_step];
        char buf[4200];
        snprintf(buf, sizeof buf, "%s/toxigen/annotated", r->data);
        if (arg(s, MP_ARG_LIT, NULL, "toxicity-scorer", -1) < 0 || arg(s, MP_ARG_LIT, NULL, "train", -1) < 0 ||
            arg(s, MP_ARG_LIT, NULL, "--data", -1) < 0 || arg(s, MP_ARG_LIT, NULL, buf, -1) < 0 ||
            arg(s, MP_ARG_LIT, NULL, "--out", -1) < 0 || arg(s, MP_ARG_OUT, NULL, "tox.json", -1) < 0)
            goto nomem;
        if ((rc = step_key(p, s, err)) < 0) goto cleanup;
    }
    /* collect */
    if ((si = add_step(p, MP_STEP_COLLECT, "collect", -1, -1, NULL)) < 0) goto nomem;
    p->collect_step = si;
    {
        mp_step *s = &p->steps[si];
        s->shards = r->shards > 1 ? (int)r->shards : 0;
        static const char *const SKIP[] = {"corpus", NULL};
        if (arg(s, MP_ARG_LIT, NULL, "collect", -1) < 0 || add_model(p, s) < 0 ||
            arg(s, MP_ARG_LIT, NULL, "--corpus", -1) < 0 ||
            (corpus_step >= 0 ? arg(s, MP_ARG_UP, NULL, "corpus.jsonl", corpus_step)
                              : arg(s, MP_ARG_INFILE, NULL, corpus->node->scalar, -1)) < 0 ||
            section_args(s, &r->collect, SKIP) < 0)
            goto nomem;
        const char *lists[2] = {"labels", "scores"}, *flags[2] = {"--label-field", "--score-field"};
        for (int l = 0; l < 2; l++) {
            const mp_ropt *o = mp_rsection_get(&r->collect, lists[l]);
            int have = 0;
            for (size_t j = 0; o && j < o->node->n; j++) {
                if (arg(s, MP_ARG_LIT, NULL, flags[l], -1) < 0 ||
                    arg(s, MP_ARG_LIT, NULL, o->node->items[j]->scalar, -1) < 0)
                    goto nomem;
                have |= !strcmp(o->node->items[j]->scalar, r->field);
            }
            if (!have && l == r->correlate &&
                (arg(s, MP_ARG_LIT, NULL, flags[l], -1) < 0 || arg(s, MP_ARG_LIT, NULL, r->field, -1) < 0))
                goto nomem;
        }
        if (arg(s, MP_ARG_LIT, NULL, "--out", -1) < 0 || arg(s, MP_ARG_OUT, NULL, "store.db", -1) < 0 ||
            arg(s, MP_ARG_LIT, NULL, "--quiet", -1) < 0)
            goto nomem;
        if ((rc = step_key(p, s, err)) < 0) goto cleanup;
    }
    /* purge: one mask per target x threshold */
    size_t n_t = r->correlate ? 1 : r->n_targets;
    if (!(p->masks = calloc(n_t * r->n_thresholds, sizeof *p->masks))) goto nomem;
    for (size_t t = 0; t < n_t; t++)
        for (size_t h = 0; h < r->n_thresholds; h++) {
            mp_plan_mask *m = &p->masks[p->n_masks];
            const char *target = r->correlate ? r->field : r->targets[t];
            if (!(m->target = strdup(target))) goto nomem;
            m->threshold = r->thresholds[h];
            p->n_masks++;
            char label[300], num[40];
            snprintf(label, sizeof label, "purge %s@%g", target, m->threshold);
            snprintf(num, sizeof num, "%.15g", m->threshold);
            if (strtod(num, NULL) != m->threshold) snprintf(num, sizeof num, "%.17g", m->threshold);
            if ((si = add_step(p, MP_STEP_PURGE, label, (int)p->n_masks - 1, -1, NULL)) < 0) goto nomem;
            m->step = si;
            mp_step *s = &p->steps[si];
            if (arg(s, MP_ARG_LIT, NULL, "purge", -1) < 0 || arg(s, MP_ARG_LIT, NULL, "--store", -1) < 0 ||
                arg(s, MP_ARG_UP, NULL, "store.db", p->collect_step) < 0)
                goto nomem;
            char lab[600];
            snprintf(lab, sizeof lab, "%s=%s", r->field, target);
            if (r->correlate ? (arg(s, MP_ARG_LIT, NULL, "--toxicity", -1) < 0 ||
                                arg(s, MP_ARG_LIT, NULL, "--score-field", -1) < 0 ||
                                arg(s, MP_ARG_LIT, NULL, r->field, -1) < 0)
                             : (arg(s, MP_ARG_LIT, NULL, "--label", -1) < 0 || arg(s, MP_ARG_LIT, NULL, lab, -1) < 0))
                goto nomem;
            static const char *const SKIP_SPEC[] = {"per", NULL}, *const SKIP_CORR[] = {"measure", NULL};
            if (arg(s, MP_ARG_LIT, NULL, "--threshold", -1) < 0 || arg(s, MP_ARG_LIT, NULL, num, -1) < 0 ||
                section_args(s, &r->criterion, r->correlate ? SKIP_CORR : SKIP_SPEC) < 0 ||
                arg(s, MP_ARG_LIT, NULL, "--out", -1) < 0 || arg(s, MP_ARG_OUT, NULL, "mask.json", -1) < 0)
                goto nomem;
            if ((rc = step_key(p, s, err)) < 0) goto cleanup;
        }
    if ((rc = build_evals(p, scorer_step, err)) < 0) goto cleanup;
    *out = p;
    return 0;
nomem:
    rc = mp_fail(err, MP_ENOMEM, "out of memory");
cleanup:
    mp_plan_free(p);
    return rc;
}

void mp_plan_free(mp_plan *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_steps; i++) {
        mp_step *s = &p->steps[i];
        for (size_t a = 0; a < s->n_args; a++) {
            free(s->args[a].text);
            free(s->args[a].prefix);
        }
        free(s->args);
        free(s->label);
        free(s->dir);
        free(s->sub);
    }
    free(p->steps);
    for (size_t i = 0; i < p->n_masks; i++) free(p->masks[i].target);
    free(p->masks);
    free(p->out_dir);
    free(p->cache_dir);
    free(p);
}

const char *mp_plan_arg(const mp_plan *p, const mp_step *s, size_t i, char *buf, size_t cap) {
    const mp_step_arg *a = &s->args[i];
    const char *pre = a->prefix ? a->prefix : "";
    switch (a->kind) {
    case MP_ARG_OUT: snprintf(buf, cap, "%s%s/%s", pre, s->dir, a->text); break;
    case MP_ARG_UP: snprintf(buf, cap, "%s%s/%s", pre, p->steps[a->up].dir, a->text); break;
    default: snprintf(buf, cap, "%s%s", pre, a->text); break;
    }
    return buf;
}

/* ---- printing ------------------------------------------------------------------------ */

void mp_plan_shell_quote(FILE *out, const char *s) {
    int plain = *s != 0;
    for (const char *c = s; *c; c++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=,@+%", *c)) plain = 0;
    if (plain) {
        fputs(s, out);
        return;
    }
    fputc('\'', out);
    for (const char *c = s; *c; c++) {
        if (*c == '\'') fputs("'\\''", out);
        else fputc(*c, out);
    }
    fputc('\'', out);
}

void mp_plan_print(const mp_plan *p, const char *exe, FILE *out) {
    size_t cached = 0;
    for (size_t i = 0; i < p->n_steps; i++) cached += p->steps[i].cached != 0;
    fprintf(out, "plan: %zu steps, %zu cached, %zu to run; recipe %s, model %s, out %s\n", p->n_steps, cached,
            p->n_steps - cached, p->recipe->path, p->recipe->model, p->out_dir);
    for (size_t i = 0; i < p->n_steps; i++) {
        const mp_step *s = &p->steps[i];
        fprintf(out, "[%zu/%zu] %-6s %s  (key %.12s", i + 1, p->n_steps, s->cached ? "cached" : "run", s->label, s->key);
        for (int d = 0; d < s->n_deps; d++) fprintf(out, "%s%zu", d ? "," : "; after ", (size_t)s->deps[d] + 1);
        if (s->shards > 1) fprintf(out, "; %d shards: collect --shard i/%d, then merge", s->shards, s->shards);
        fprintf(out, ")\n    ");
        char buf[4200];
        if (s->kind == MP_STEP_CORPUS) {
            fprintf(out, "(in-process) MMLU %s questions of %s as JSONL {text, domain = category, subject} -> %s\n",
                    s->args[0].text, s->args[1].text, mp_plan_arg(p, s, 3, buf, sizeof buf));
            continue;
        }
        mp_plan_shell_quote(out, exe);
        for (size_t a = 0; a < s->n_args; a++) {
            fputc(' ', out);
            mp_plan_shell_quote(out, mp_plan_arg(p, s, a, buf, sizeof buf));
        }
        fputc('\n', out);
    }
    fprintf(out, "report: %s/results.json, %s/results.csv, %s/report.html\n", p->out_dir, p->out_dir, p->out_dir);
}

/* ---- execution ----------------------------------------------------------------------- */

int mp_plan_mkdir(const char *path, mp_error *err) {
    char buf[4200];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *c = buf + 1; *c; c++) {
        if (*c != '/') continue;
        *c = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return mp_fail(err, MP_EIO, "%s: cannot create: %s", buf, strerror(errno));
        *c = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return mp_fail(err, MP_EIO, "%s: cannot create: %s", buf, strerror(errno));
    return 0;
}

/* ---- preflight ------------------------------------------------------------------------ */

typedef struct problems {
    char text[MP_ERRMSG_MAX - 64];
    size_t len;
    int n;
} problems;

static void problem(problems *pr, const char *fmt, ...) {
    char one[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(one, sizeof one, fmt, ap);
    va_end(ap);
    if (strstr(pr->text, one)) return; /* the same folder or toolchain named twice */
    pr->n++;
    if (pr->len + strlen(one) + 3 < sizeof pr->text)
        pr->len += (size_t)snprintf(pr->text + pr->len, sizeof pr->text - pr->len, "%s%s", pr->n > 1 ? "; " : "", one);
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void need_data(problems *pr, const char *data, const char *rel, const char *what) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", data, rel);
    if (!is_file(path) && !is_dir(path)) problem(pr, "%s needs %s (missing)", what, path);
}

int mp_plan_preflight(const mp_plan *p, mp_error *err) {
    const mp_recipe *r = p->recipe;
    problems pr = {.len = 0, .n = 0};
    pr.text[0] = 0;
    char path[4200];
    static const char *const MODEL_FILES[] = {"config.json", "tokenizer.model", NULL};
    for (const char *const *f = MODEL_FILES; *f; f++) {
        snprintf(path, sizeof path, "%s/%s", r->model, *f);
        if (!is_file(path)) problem(&pr, "model: %s missing", path);
    }
    char **names = NULL;
    size_t n = 0;
    mp_error e2;
    if (mp_list_safetensors(r->model, &names, &n, &e2) < 0 || n == 0)
        problem(&pr, "model: no *.safetensors weights in %s", r->model);
    mp_free_names(names, n);
    int have_data = is_dir(r->data);
    for (size_t i = 0; i < p->n_steps; i++) {
        const mp_step *s = &p->steps[i];
        if (s->cached) continue; /* done: needs nothing any more */
        if (!have_data && (s->kind == MP_STEP_CORPUS || s->kind == MP_STEP_SCORER ||
                           (s->kind == MP_STEP_EVAL && r->eval_kind[s->eval] != MP_REVAL_PPL))) {
            problem(&pr, "the data folder %s does not exist (--data DIR or the recipe's data:)", r->data);
            continue;
        }
        if (s->kind == MP_STEP_CORPUS) need_data(&pr, r->data, "mmlu/subjects.tsv", "the MMLU corpus");
        if (s->kind == MP_STEP_SCORER) need_data(&pr, r->data, "toxigen/annotated", "toxicity-scorer train");
        if (s->kind != MP_STEP_EVAL) continue;
        const mp_rsection *sec = &r->evals[s->eval];
        switch (r->eval_kind[s->eval]) {
        case MP_REVAL_MULTIPLE: {
            char rel[300];
            snprintf(rel, sizeof rel, "multipl-e/humaneval-%s-reworded.jsonl", s->sub);
            need_data(&pr, r->data, rel, "eval multipl-e");
            mp_error te;
            if (mp_multiple_check_toolchain(s->sub, &te) < 0) problem(&pr, "%s", te.msg);
            break;
        }
        case MP_REVAL_MMLU: need_data(&pr, r->data, "mmlu/subjects.tsv", "eval mmlu"); break;
        case MP_REVAL_GENERAL: {
            const mp_ropt *tasks = mp_rsection_get(sec, "tasks");
            size_t nt = tasks ? tasks->node->n : MP_TASK_COUNT - 1;
            for (size_t t = 0; t < nt; t++) {
                int id = tasks ? mp_mc_task_find(tasks->node->items[t]->scalar) : (int)t + 1;
                const mp_mc_task_info *ti = id > 0 ? mp_mc_task_get((mp_mc_task)id) : NULL;
                if (ti && ti->file[0]) need_data(&pr, r->data, ti->file, "eval general");
            }
            break;
        }
        case MP_REVAL_TOXICITY: {
            const mp_ropt *pp = mp_rsection_get(sec, "prompts");
            const char *v = pp ? pp->node->scalar : "";
            need_data(&pr, r->data, !strcmp(v, "rtp") ? "realtoxicityprompts" : !strcmp(v, "toxigen") ? "toxigen"
                                                                                  : "toxigen/annotated",
                      "eval toxicity");
            break;
        }
        default: break;
        }
    }
    if (pr.n)
        return mp_fail(err, MP_EUNSUPPORTED, "sweep: cannot start, %d problem%s before step 1: %s%s", pr.n,
                       pr.n > 1 ? "s" : "", pr.text, pr.len + 3 >= sizeof pr.text ? "; ..." : "");
    return 0;
}

#define OUT_MARKER ".monet-probe-sweep"

int mp_plan_claim_out(const mp_plan *p, int create, mp_error *err) {
    char marker[4200], lockf[4200];
    snprintf(marker, sizeof marker, "%s/" OUT_MARKER, p->out_dir);
    snprintf(lockf, sizeof lockf, "%s/lock", p->cache_dir);
    struct stat st;
    int empty = 1;
    if (lstat(p->out_dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) return mp_fail(err, MP_EINPUT, "%s: --out exists and is not a directory", p->out_dir);
        if (lstat(marker, &st) == 0 && S_ISREG(st.st_mode)) return 0;
        if (!is_file(lockf)) { /* with cache/lock it is a sweep output from before the marker */
            DIR *d = opendir(p->out_dir);
            struct dirent *e;
            if (!d) return mp_fail(err, MP_EIO, "%s: cannot read: %s", p->out_dir, strerror(errno));
            while (empty && (e = readdir(d))) empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
            closedir(d);
        }
        if (!empty)
            return mp_fail(err, MP_EINPUT, "%s: not empty and not a sweep output (no %s): choose a new or empty "
                           "directory", p->out_dir, OUT_MARKER);
    } else if (errno != ENOENT) {
        return mp_fail(err, MP_EIO, "%s: %s", p->out_dir, strerror(errno));
    }
    if (!create) return 0;
    MP_TRY(mp_plan_mkdir(p->out_dir, err));
    int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) return mp_fail(err, MP_EIO, "%s: cannot create: %s", marker, strerror(errno));
    if (fd >= 0) {
        static const char TXT[] = "written by monet-probe sweep: this directory holds sweep outputs\n";
        ssize_t w = write(fd, TXT, sizeof TXT - 1);
        close(fd);
        if (w != (ssize_t)sizeof TXT - 1) return mp_fail(err, MP_EIO, "%s: write failed", marker);
    }
    return 0;
}

/* ---- jobs: what the local and the Slurm executors run ---------------------------------- */

void mp_plan_shard_path(const mp_step *s, int shard, const char *suffix, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/shard-%d-of-%d%s", s->dir, shard, s->shards, suffix);
}

int mp_plan_shard_done(const mp_step *s, int shard) {
    char path[4200];
    mp_plan_shard_path(s, shard, ".done", path, sizeof path);
    return is_file(path);
}

void mp_plan_job_files(const mp_step *s, mp_job_role role, int shard, char *out, char *errp, size_t cap) {
    if (role == MP_JOB_SHARD) {
        mp_plan_shard_path(s, shard, ".stdout.txt", out, cap);
        mp_plan_shard_path(s, shard, ".stderr.txt", errp, cap);
    } else {
        snprintf(out, cap, "%s/%s", s->dir, role == MP_JOB_MERGE ? "merge.json" : "stdout.txt");
        snprintf(errp, cap, "%s/%s", s->dir, role == MP_JOB_MERGE ? "merge.stderr.txt" : "stderr.txt");
    }
}

void mp_plan_argv_free(char **argv) {
    for (size_t i = 0; argv && argv[i]; i++) free(argv[i]);
    free(argv);
}

int mp_plan_job_argv(const mp_plan *p, const mp_step *s, mp_job_role role, int shard, const char *exe,
                     int drop_quiet, char ***argv_out, mp_error *err) {
    *argv_out = NULL;
    size_t cap = (role == MP_JOB_MERGE ? (size_t)s->shards + 6 : s->n_args + 4);
    char **argv = calloc(cap, sizeof *argv), buf[4200];
    size_t n = 0;
    if (!argv || !(argv[n++] = strdup(exe))) goto nomem;
    if (role == MP_JOB_MERGE) {
        /* --force: a merge killed half-way left a partial store.db (never one of the inputs) */
        static const char *const HEAD[] = {"merge", "--force", "--json", NULL};
        for (const char *const *h = HEAD; *h; h++)
            if (!(argv[n++] = strdup(*h))) goto nomem;
        snprintf(buf, sizeof buf, "%s/store.db", s->dir);
        if (!(argv[n++] = strdup(buf))) goto nomem;
        for (int k = 0; k < s->shards; k++) {
            mp_plan_shard_path(s, k, ".db", buf, sizeof buf);
            if (!(argv[n++] = strdup(buf))) goto nomem;
        }
        *argv_out = argv;
        return 0;
    }
    for (size_t a = 0; a < s->n_args; a++) {
        const mp_step_arg *sa = &s->args[a];
        if (drop_quiet && sa->kind == MP_ARG_LIT && !strcmp(sa->text, "--quiet")) continue;
        if (role == MP_JOB_SHARD && sa->kind == MP_ARG_OUT) mp_plan_shard_path(s, shard, ".db", buf, sizeof buf);
        else mp_plan_arg(p, s, a, buf, sizeof buf);
        if (!(argv[n++] = strdup(buf))) goto nomem;
    }
    if (role == MP_JOB_SHARD) {
        snprintf(buf, sizeof buf, "%d/%d", shard, s->shards);
        if (!(argv[n++] = strdup("--shard")) || !(argv[n++] = strdup(buf))) goto nomem;
    }
    *argv_out = argv;
    return 0;
nomem:
    mp_plan_argv_free(argv);
    return mp_fail(err, MP_ENOMEM, "out of memory");
}

char *mp_plan_marker_json(const mp_plan *p, const mp_step *s, const char *exe, double seconds) {
    char buf[4200];
    cJSON *o = cJSON_CreateObject(), *a = cJSON_CreateArray();
    if (!o || !a) {
        cJSON_Delete(o);
        cJSON_Delete(a);
        return NULL;
    }
    cJSON_AddStringToObject(o, "step", s->label);
    cJSON_AddStringToObject(o, "kind", STEP_NAMES[s->kind]);
    cJSON_AddStringToObject(o, "key", s->key);
    cJSON_AddItemToArray(a, cJSON_CreateString(exe));
    for (size_t i = 0; i < s->n_args; i++) cJSON_AddItemToArray(a, cJSON_CreateString(mp_plan_arg(p, s, i, buf, sizeof buf)));
    cJSON_AddItemToObject(o, "argv", a);
    if (s->shards > 1) cJSON_AddNumberToObject(o, "shards", s->shards);
    cJSON_AddNumberToObject(o, "seconds", seconds);
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    return txt;
}
