/* core/eval/multiple_eval.c — MULTIPL-E HumanEval driver (see multiple_eval.h):
 * the language table (files, toolchains, the harness's commands, rlimits),
 * problem / completion JSONL readers, generation on the batched engine
 * (core/eval/gen_queue), sandbox jobs, statuses, pass@k and the
 * per-problem JSONL. */
#include "core/eval/multiple_eval.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/eval/eval_tasks.h"
#include "core/eval/gen_queue.h"
#include "core/eval/luaunit.h"
#include "core/eval/passk.h"
#include "core/eval/sandbox.h"
#include "core/eval/eval_model.h"
#include "core/model/generate.h"
#include "core/model/sampling.h"
#include "core/text/utf8.h"
#include "core/util/progress.h"
#include "core/util/readfile.h"

/* ---- languages ------------------------------------------------------------ */

#define JAVATUPLES "/usr/share/java/javatuples.jar"
#define SYSTEM_LUAUNIT "/usr/share/lua/5.3/luaunit.lua" /* Debian lua-unit */

typedef struct lang_spec {
    const char *name, *file;       /* program file name in the sandbox dir */
    const char *tool[2], *pkg[2];  /* executables and the Debian packages providing them */
    const char *argv[2][12];       /* steps; argv[0] is a tool name resolved through PATH */
    int n_steps;                   /* 2: the first step is a compile / syntax check */
    uint64_t as_bytes;             /* RLIMIT_AS (0: none; the JVM and V8 reserve huge ranges) */
    int nproc;
} lang_spec;

static const lang_spec LANGS[] = {
    {"py", "main.py", {"python3", NULL}, {"python3", NULL}, {{"python3", "main.py"}}, 1, 4ULL << 30, 64},
    {"cpp", "main.cpp", {"g++", NULL}, {"g++", NULL},
     {{"g++", "-std=c++17", "main.cpp", "-o", "main"}, {"./main"}}, 2, 4ULL << 30, 64},
    {"java", "Problem.java", {"javac", "java"}, {"default-jdk-headless", "default-jdk-headless"},
     {{"javac", "-J-Xmx512m", "-J-XX:+UseSerialGC", "-J-XX:TieredStopAtLevel=1", "-encoding", "UTF8", "-cp",
       JAVATUPLES, "Problem.java"},
      {"java", "-Xmx1g", "-XX:+UseSerialGC", "-ea", "-cp", ".:" JAVATUPLES, "Problem"}},
     2, 0, 256},
    {"js", "main.js", {"node", NULL}, {"nodejs", NULL}, {{"node", "--max-old-space-size=2048", "main.js"}}, 1, 0, 64},
    {"lua", "main.lua", {"luac5.3", "lua5.3"}, {"lua5.3", "lua5.3"}, {{"luac5.3", "-p", "main.lua"}, {"lua5.3", "main.lua"}},
     2, 4ULL << 30, 64},
    {"php", "main.php", {"php", NULL}, {"php-cli", NULL}, {{"php", "main.php"}}, 1, 4ULL << 30, 64},
};

double mp_multiple_default_timeout(const char *lang) { return lang && !strcmp(lang, "js") ? 5.0 : 15.0; }

static const lang_spec *find_lang(const char *name) {
    for (size_t i = 0; i < sizeof LANGS / sizeof LANGS[0]; i++)
        if (!strcmp(LANGS[i].name, name)) return &LANGS[i];
    return NULL;
}

/* ---- problems ---------------------------------------------------------------- */

typedef struct problem {
    char *name, *prompt, *tests;
    char **stop;
    size_t n_stop;
    char **given;      /* completions given by --completions / --canonical */
    int n_given;
} problem;

static void problems_free(problem *p, size_t n) {
    for (size_t i = 0; p && i < n; i++) {
        free(p[i].name);
        free(p[i].prompt);
        free(p[i].tests);
        for (size_t k = 0; k < p[i].n_stop; k++) free(p[i].stop[k]);
        free(p[i].stop);
        for (int k = 0; k < p[i].n_given; k++) free(p[i].given[k]);
        free(p[i].given);
    }
    free(p);
}

static char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

static char *concat3(const char *a, const char *b, const char *c) {
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *r = malloc(la + lb + lc + 1);
    if (!r) return NULL;
    memcpy(r, a, la);
    memcpy(r + la, b, lb);
    memcpy(r + la + lb, c, lc + 1);
    return r;
}

static int add_given(problem *p, const char *text, mp_error *err) {
    char **g = realloc(p->given, (size_t)(p->n_given + 1) * sizeof *g);
    if (!g) return mp_fail(err, MP_ENOMEM, "out of memory");
    p->given = g;
    if (!(g[p->n_given] = strdup(text))) return mp_fail(err, MP_ENOMEM, "out of memory");
    p->n_given++;
    return 0;
}

/* Read a JSONL file, calling fn for each object line. */
typedef int (*line_fn)(void *ctx, const cJSON *o, const char *path, size_t line, mp_error *err);
static int read_jsonl(const char *path, line_fn fn, void *ctx, mp_error *err) {
    char *buf = NULL;
    size_t len = 0;
    MP_TRY(mp_read_file(path, &buf, &len, err));
    int rc = 0;
    size_t line = 0;
    for (char *p = buf; p < buf + len && rc == 0;) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        if (nl) *nl = '\0';
        line++;
        char *s = p;
        p = nl ? nl + 1 : buf + len;
        while (*s == ' ' || *s == '\t' || *s == '\r') s++;
        if (!*s) continue;
        cJSON *o = cJSON_Parse(s);
        if (!cJSON_IsObject(o)) rc = mp_fail(err, MP_EINPUT, "%s:%zu: not a JSON object", path, line);
        else rc = fn(ctx, o, path, line, err);
        cJSON_Delete(o);
    }
    free(buf);
    return rc;
}

typedef struct plist {
    problem *p;
    size_t n, cap;
    int canonical;
} plist;

static int add_problem(void *ctx, const cJSON *o, const char *path, size_t line, mp_error *err) {
    plist *L = ctx;
    if (L->n == L->cap) {
        size_t nc = L->cap ? 2 * L->cap : 256;
        problem *np = realloc(L->p, nc * sizeof *np);
        if (!np) return mp_fail(err, MP_ENOMEM, "out of memory");
        L->p = np;
        L->cap = nc;
    }
    problem *p = &L->p[L->n];
    memset(p, 0, sizeof *p);
    L->n++;
    if (L->canonical) { /* HumanEval: task_id, prompt, canonical_solution, test, entry_point */
        char *sol = jstr(o, "canonical_solution"), *test = jstr(o, "test"), *entry = jstr(o, "entry_point");
        p->name = jstr(o, "task_id");
        p->prompt = jstr(o, "prompt");
        int rc = 0;
        if (!p->name || !p->prompt || !sol || !test || !entry)
            rc = mp_fail(err, MP_EINPUT, "%s:%zu: HumanEval record needs task_id, prompt, canonical_solution, test, "
                         "entry_point", path, line);
        else {
            char tail[300];
            snprintf(tail, sizeof tail, "\ncheck(%.256s)\n", entry);
            if (!(p->tests = concat3(test, tail, "")) || add_given(p, sol, err) < 0)
                rc = mp_fail(err, MP_ENOMEM, "out of memory");
        }
        free(sol);
        free(test);
        free(entry);
        return rc;
    }
    p->name = jstr(o, "name");
    p->prompt = jstr(o, "prompt");
    p->tests = jstr(o, "tests");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "stop_tokens");
    if (!p->name || !p->prompt || !p->tests || !cJSON_IsArray(st))
        return mp_fail(err, MP_EINPUT, "%s:%zu: MULTIPL-E record needs name, prompt, tests, stop_tokens", path, line);
    int ns = cJSON_GetArraySize(st);
    p->stop = calloc((size_t)ns + 1, sizeof *p->stop);
    if (!p->stop) return mp_fail(err, MP_ENOMEM, "out of memory");
    const cJSON *s;
    cJSON_ArrayForEach(s, st) {
        if (!cJSON_IsString(s)) return mp_fail(err, MP_EINPUT, "%s:%zu: stop_tokens must be strings", path, line);
        if (!(p->stop[p->n_stop++] = strdup(s->valuestring))) return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    return 0;
}

typedef struct given_ctx {
    problem *p;
    size_t n;
    size_t matched;
} given_ctx;

static int add_completion(void *ctx, const cJSON *o, const char *path, size_t line, mp_error *err) {
    given_ctx *G = ctx;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(o, "completion");
    const cJSON *many = cJSON_GetObjectItemCaseSensitive(o, "completions");
    if (!cJSON_IsString(name) || (!cJSON_IsString(one) && !cJSON_IsArray(many)))
        return mp_fail(err, MP_EINPUT, "%s:%zu: need \"name\" and \"completion\" or \"completions\"", path, line);
    problem *p = NULL;
    for (size_t i = 0; i < G->n && !p; i++)
        if (!strcmp(G->p[i].name, name->valuestring)) p = &G->p[i];
    if (!p) return mp_fail(err, MP_EINPUT, "%s:%zu: no problem named '%s'", path, line, name->valuestring);
    if (!p->n_given) G->matched++;
    if (cJSON_IsString(one)) return add_given(p, one->valuestring, err);
    const cJSON *c;
    cJSON_ArrayForEach(c, many) {
        if (!cJSON_IsString(c)) return mp_fail(err, MP_EINPUT, "%s:%zu: completions must be strings", path, line);
        MP_TRY(add_given(p, c->valuestring, err));
    }
    return 0;
}

/* ---- results ------------------------------------------------------------------- */

static const char *const STATUS_NAMES[MP_MULTIPLE_STATUS_COUNT] = {"ok", "fail", "timeout", "compile error",
                                                                    "sandbox error"};

const char *mp_multiple_status_name(int status) {
    return status >= 0 && status < MP_MULTIPLE_STATUS_COUNT ? STATUS_NAMES[status] : "?";
}

const int mp_multiple_ks[3] = {1, 10, 100};

typedef struct sample {
    char *completion;
    char *program;
    int stop_reason, n_tokens, note_ctx;
    mp_sbx_file files[2];
    int status;
} sample;

static const char *stop_name(int r) {
    return r == MP_GEN_STOP_EOS ? "eos" : r == MP_GEN_STOP_STRING ? "stop" : r == MP_GEN_STOP_LENGTH ? "length" : "given";
}

static int classify(const lang_spec *L, const mp_sbx_result *r) {
    if (r->outcome == MP_SBX_SETUP) return MP_MULTIPLE_SANDBOX;
    if (r->outcome == MP_SBX_TIMEOUT) return MP_MULTIPLE_TIMEOUT;
    if (r->outcome == MP_SBX_OUTPUT) return MP_MULTIPLE_FAIL;
    if (L->n_steps == 2 && r->steps_run == 1 && (r->exit_code != 0 || r->term_signal)) return MP_MULTIPLE_COMPILE;
    if (!strcmp(L->name, "php") && (strstr(r->out, "Parse error") || strstr(r->err, "Parse error")))
        return MP_MULTIPLE_COMPILE;
    if (r->exit_code == 0 && !r->term_signal) return MP_MULTIPLE_OK;
    if (!strcmp(L->name, "py") && !strstr(r->err, "Traceback (most recent call last)") &&
        (strstr(r->err, "SyntaxError:") || strstr(r->err, "IndentationError:") || strstr(r->err, "TabError:")))
        return MP_MULTIPLE_COMPILE;
    if (!strcmp(L->name, "js") && strstr(r->err, "SyntaxError:")) return MP_MULTIPLE_COMPILE;
    return MP_MULTIPLE_FAIL;
}

/* JSON string of len bytes with invalid UTF-8 bytes replaced by '?'. */
static cJSON *json_text(const char *s, size_t len) {
    char *t = malloc(len + 1);
    if (!t) return NULL;
    memcpy(t, s, len);
    t[len] = '\0';
    for (size_t off = 0; off < len;) {
        size_t ok = mp_utf8_check(t + off, len - off);
        off += ok;
        if (off < len) t[off++] = '?';
    }
    for (size_t i = 0; i < len; i++)
        if (!t[i]) t[i] = '?';
    cJSON *j = cJSON_CreateString(t);
    free(t);
    return j;
}

static void on_done(void *ctx, size_t i) {
    (void)i;
    mp_progress_add(ctx, 1);
}


/* ---- toolchain ------------------------------------------------------------------ */

/* Resolve the language's executables into exe[] (as the sandbox will run them). */
static int resolve_tools(const lang_spec *L, char exe[2][4096], mp_error *err) {
    for (int t = 0; t < 2 && L->tool[t]; t++)
        if (mp_sandbox_find_exe(L->tool[t], exe[t], sizeof exe[t]) < 0)
            return mp_fail(err, MP_EUNSUPPORTED, "multipl-e: %s toolchain missing: '%s' not found in "
                           "/usr/local/bin:/usr/bin:/bin (Debian package %s: apt-get install %s)", L->name,
                           L->tool[t], L->pkg[t], L->pkg[t]);
    if (!strcmp(L->name, "java") && access(JAVATUPLES, R_OK) < 0)
        return mp_fail(err, MP_EUNSUPPORTED, "multipl-e: java: %s missing (Debian package libjavatuples-java: "
                       "apt-get install libjavatuples-java)", JAVATUPLES);
    return 0;
}

int mp_multiple_check_toolchain(const char *lang, mp_error *err) {
    const lang_spec *L = find_lang(lang);
    char exe[2][4096];
    MP_FAIL_IF(!L, err, MP_EINPUT, "unknown MULTIPL-E language '%s' (py, cpp, java, js, lua, php)", lang);
    return resolve_tools(L, exe, err);
}

/* ---- the run ------------------------------------------------------------------- */

/* Problems (and given completions, kept in dataset order) -> P, *n_prob. */
static int load_problems(const mp_multiple_cfg *c, plist *P, size_t *n_prob, mp_error *err) {
    P->canonical = c->canonical;
    MP_TRY(read_jsonl(c->problems_path, add_problem, P, err));
    *n_prob = c->limit >= 0 && (size_t)c->limit < P->n ? (size_t)c->limit : P->n;
    if (!c->completions_path) return 0;
    given_ctx G = {P->p, P->n, 0};
    MP_TRY(read_jsonl(c->completions_path, add_completion, &G, err));
    /* keep only problems that have completions, in dataset order */
    size_t k = 0;
    for (size_t i = 0; i < P->n; i++) {
        if (P->p[i].n_given && k < (c->limit >= 0 ? (size_t)c->limit : P->n)) {
            problem tmp = P->p[k];
            P->p[k] = P->p[i];
            P->p[i] = tmp;
            k++;
        }
    }
    *n_prob = k;
    return 0;
}

/* Where generated completions go: the queue's callback. */
typedef struct gen_sink {
    sample *S;
    mp_progress *pg;
} gen_sink;

static int gen_done(void *ctx, size_t j, mp_gen_result *res, mp_error *err) {
    (void)err;
    gen_sink *g = ctx;
    g->S[j].completion = res->text;
    res->text = NULL;
    g->S[j].stop_reason = res->stop_reason;
    g->S[j].n_tokens = (int)res->n_ids;
    mp_progress_add(g->pg, 1);
    return 0;
}

/* Generate per completions for each of the first n_prob problems into S: the
 * (problem, sample) sequences in order, c->batch of them decoded together on
 * the engine's KV slots (core/eval/gen_queue), each with its problem's stop
 * strings and token budget and a sampler of its own seeded from (seed,
 * problem, sample), so a completion does not depend on --batch, --limit,
 * --jobs or the order of work. */
static int generate(const mp_multiple_cfg *c, const problem *P, size_t n_prob, int per, size_t n_jobs, sample *S,
                    mp_multiple_out *o, mp_error *err) {
    mp_eval_model em = {0};
    mp_gen_queue *q = NULL;
    int32_t *ids = NULL;
    int rc = 0;
    if ((rc = mp_eval_model_open_engine(c->model_dir, c->mask_path, 0, c->device, c->batch > 0 ? c->batch : 1, &em,
                                        err)) < 0)
        goto cleanup;
    mp_tokenizer *tok = em.tok;
    mp_model *m = em.m;
    if (mp_tokenizer_vocab_size(tok) > m->cfg.vocab_size) {
        rc = mp_fail(err, MP_EINPUT, "%s: tokenizer has %d pieces but config.json vocab_size is %d", c->model_dir,
                     mp_tokenizer_vocab_size(tok), m->cfg.vocab_size);
        goto cleanup;
    }
    const int ctx = mp_engine_max_ctx(em.engine);
    o->batch = mp_engine_slots(em.engine);
    o->device = mp_device_name(mp_engine_device(em.engine));
    mp_progress pg;
    gen_sink sink = {S, &pg};
    if ((rc = mp_gen_queue_create(em.engine, tok, m->cfg.vocab_size, gen_done, &sink, &q, err)) < 0) goto cleanup;
    mp_progress_start(&pg, c->progress, "multipl-e generate", "completions", n_jobs);
    for (size_t i = 0, j = 0; i < n_prob; i++) {
        const problem *p = &P[i];
        size_t n_ids = 0;
        free(ids);
        ids = NULL;
        size_t po, pl; /* MultiPL-E / bigcode: generate from prompt.strip() */
        mp_py_strip(p->prompt, strlen(p->prompt), &po, &pl);
        if ((rc = mp_tokenizer_encode(tok, p->prompt + po, pl, 1, &ids, &n_ids, err)) < 0) goto cleanup;
        long budget = (long)ctx - (long)n_ids;
        long want = c->budget_total ? (long)c->max_new - (long)n_ids : (long)c->max_new; /* max_length vs max_tokens */
        if (budget > want) budget = want;
        const mp_gen_opts go = {.max_new_tokens = (int)budget, .stop = (const char *const *)p->stop,
                                .n_stop = p->n_stop};
        for (int s = 0; s < per; s++, j++) {
            if (budget < 1) {
                if (!(S[j].completion = strdup(""))) {
                    rc = mp_fail(err, MP_ENOMEM, "out of memory");
                    goto cleanup;
                }
                S[j].note_ctx = 1;
                S[j].stop_reason = MP_GEN_STOP_LENGTH;
                mp_progress_add(&pg, 1);
                continue;
            }
            /* a seed of its own per (problem, sample) */
            const mp_gen_sampling smp = {c->temperature, c->top_p,
                                         c->seed * 0x9E3779B97F4A7C15ULL + (uint64_t)i * 1000003ULL + (uint64_t)s};
            if ((rc = mp_gen_queue_add(q, ids, n_ids, &go, &smp, j, err)) < 0) goto cleanup;
        }
    }
    if ((rc = mp_gen_queue_flush(q, err)) < 0) goto cleanup;
    o->gen_tokens = mp_gen_queue_tokens(q);
    mp_progress_finish(&pg);
cleanup:
    mp_gen_queue_free(q);
    free(ids);
    mp_eval_model_close(&em);
    return rc;
}

/* Programs (prompt + completion + "\n" + tests) and their sandbox jobs. */
static int make_jobs(const mp_multiple_cfg *c, const lang_spec *L, char exe[2][4096], const problem *P,
                     size_t n_prob, int per, sample *S, mp_sbx_job *J, mp_error *err) {
    mp_sbx_limits lim;
    mp_sbx_limits_default(&lim);
    double tmo = c->timeout_s > 0 ? c->timeout_s : mp_multiple_default_timeout(c->lang);
    lim.wall_s = tmo;
    lim.cpu_s = (int)ceil(tmo) + 1;
    lim.as_bytes = L->as_bytes;
    lim.nproc = L->nproc;
    lim.out_keep = 2048;
    for (size_t i = 0, j = 0; i < n_prob; i++) {
        const problem *p = &P[i];
        int cnt = c->model_dir ? per : p->n_given;
        for (int s = 0; s < cnt; s++, j++) {
            char *prog = concat3(p->prompt, S[j].completion, "\n");
            S[j].program = prog ? concat3(prog, p->tests, "") : NULL;
            free(prog);
            MP_FAIL_IF(!S[j].program, err, MP_ENOMEM, "out of memory");
            S[j].files[0] = (mp_sbx_file){L->file, S[j].program, strlen(S[j].program), 0644};
            int nf = 1;
            /* Debian's lua-unit puts luaunit.lua on lua5.3's package.path (found before ./luaunit.lua);
             * the embedded copy is only the fallback when it is not installed */
            if (!strcmp(L->name, "lua") && access(SYSTEM_LUAUNIT, R_OK) != 0)
                S[j].files[nf++] = (mp_sbx_file){"luaunit.lua", mp_luaunit_lua, strlen(mp_luaunit_lua), 0644};
            mp_sbx_job *job = &J[j];
            job->files = S[j].files;
            job->n_files = (size_t)nf;
            job->limits = lim;
            job->n_steps = L->n_steps;
            for (int k = 0; k < L->n_steps; k++) {
                const char *const *av = L->argv[k];
                for (int a = 0; av[a] && a < MP_SBX_MAX_ARGS; a++) job->steps[k].argv[a] = av[a];
                /* tools resolved up front; "./main" stays relative to the sandbox dir */
                if (av[0][0] != '.') job->steps[k].argv[0] = L->tool[1] && !strcmp(av[0], L->tool[1]) ? exe[1] : exe[0];
                else job->steps[k].argv[0] = av[0];
            }
            if (!strcmp(L->name, "py")) job->steps[0].env[0] = "PYTHONDONTWRITEBYTECODE=1";
        }
    }
    return 0;
}

/* Statuses, pass@k and (out non-NULL) one JSONL row per problem. */
static int score(const mp_multiple_cfg *c, const lang_spec *L, const problem *P, size_t n_prob, int per, sample *S,
                 const mp_sbx_result *R, FILE *out, mp_multiple_out *o, mp_error *err) {
    int *nn = calloc(n_prob ? n_prob : 1, sizeof *nn), *cc = calloc(n_prob ? n_prob : 1, sizeof *cc);
    if (!nn || !cc) {
        free(nn);
        free(cc);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    int min_n = 1 << 30;
    for (size_t i = 0, j = 0; i < n_prob; i++) {
        const problem *p = &P[i];
        int cnt = c->model_dir ? per : p->n_given;
        cJSON *row = cJSON_CreateObject(), *arr = cJSON_CreateArray();
        for (int s = 0; s < cnt; s++, j++) {
            S[j].status = classify(L, &R[j]);
            o->status[S[j].status]++;
            if (S[j].status == MP_MULTIPLE_OK) cc[i]++;
            cJSON *x = cJSON_CreateObject();
            cJSON_AddItemToObject(x, "completion", json_text(S[j].completion, strlen(S[j].completion)));
            cJSON_AddStringToObject(x, "status", STATUS_NAMES[S[j].status]);
            cJSON_AddNumberToObject(x, "exit_code", R[j].exit_code);
            if (R[j].term_signal) cJSON_AddNumberToObject(x, "signal", R[j].term_signal);
            if (R[j].outcome == MP_SBX_OUTPUT) cJSON_AddStringToObject(x, "note", "output limit exceeded: killed");
            if (R[j].outcome == MP_SBX_SETUP) cJSON_AddStringToObject(x, "note", R[j].setup_error);
            if (S[j].note_ctx) cJSON_AddStringToObject(x, "note", c->budget_total ? "prompt fills the token budget (prompt + completion) or the context: empty completion"
                                                : "prompt fills the context: empty completion");
            cJSON_AddStringToObject(x, "stop_reason", stop_name(S[j].stop_reason));
            if (c->model_dir) cJSON_AddNumberToObject(x, "tokens", S[j].n_tokens);
            cJSON_AddItemToObject(x, "stdout_tail", json_text(R[j].out, R[j].out_len));
            cJSON_AddItemToObject(x, "stderr_tail", json_text(R[j].err, R[j].err_len));
            cJSON_AddItemToArray(arr, x);
        }
        nn[i] = cnt;
        if (cnt < min_n) min_n = cnt;
        cJSON_AddStringToObject(row, "name", p->name);
        cJSON_AddStringToObject(row, "language", L->name);
        cJSON_AddNumberToObject(row, "n", cnt);
        cJSON_AddNumberToObject(row, "passed", cc[i]);
        cJSON_AddItemToObject(row, "samples", arr);
        if (out) {
            char *txt = cJSON_PrintUnformatted(row);
            if (txt) fprintf(out, "%s\n", txt);
            free(txt);
        }
        cJSON_Delete(row);
    }
    o->min_n = n_prob ? (int)min_n : 0;
    for (int q = 0; q < 3; q++) {
        o->have_pass[q] = n_prob > 0 && mp_multiple_ks[q] <= min_n;
        int rc = mp_pass_at_k_multiple_mean(nn, cc, (int)n_prob, mp_multiple_ks[q], 1000, &o->pass_multiple[q],
                                            &o->pass_multiple_se[q], err);
        if (rc < 0) {
            free(nn);
            free(cc);
            return rc;
        }
        /* with every n >= k the two estimators agree */
        o->pass[q] = o->have_pass[q] ? o->pass_multiple[q] : NAN;
        o->pass_se[q] = o->have_pass[q] ? o->pass_multiple_se[q] : NAN;
    }
    free(nn);
    free(cc);
    return 0;
}

int mp_multiple_eval(const mp_multiple_cfg *c, mp_multiple_out *o, mp_error *err) {
    const lang_spec *L = find_lang(c->lang);
    char exe[2][4096];
    memset(o, 0, sizeof *o);
    MP_FAIL_IF(!L, err, MP_EINPUT, "unknown MULTIPL-E language '%s' (py, cpp, java, js, lua, php)", c->lang);
    /* toolchain check before any work */
    MP_TRY(resolve_tools(L, exe, err));
    plist P = {0};
    sample *S = NULL;
    mp_sbx_job *J = NULL;
    mp_sbx_result *R = NULL;
    FILE *out = NULL;
    char out_tmp[4200] = ""; /* the JSONL goes here and is renamed onto out_path on success only */
    int rc = 0;
    size_t n_prob = 0, n_jobs = 0;
    double t_start = mp_now();
    if ((rc = load_problems(c, &P, &n_prob, err)) < 0) goto cleanup;
    if (c->out_path) {
        snprintf(out_tmp, sizeof out_tmp, "%s.tmp-%d", c->out_path, (int)getpid());
        if (!(out = fopen(out_tmp, "w"))) {
            out_tmp[0] = '\0';
            rc = mp_fail(err, MP_EIO, "%s: cannot write: %s", c->out_path, strerror(errno));
            goto cleanup;
        }
    }
    int per = c->model_dir ? c->n_samples : 0;
    for (size_t i = 0; i < n_prob; i++) n_jobs += c->model_dir ? (size_t)per : (size_t)P.p[i].n_given;
    S = calloc(n_jobs ? n_jobs : 1, sizeof *S);
    J = calloc(n_jobs ? n_jobs : 1, sizeof *J);
    R = calloc(n_jobs ? n_jobs : 1, sizeof *R);
    if (!S || !J || !R) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    o->n_problems = n_prob;
    o->n_programs = n_jobs;
    o->timeout_s = c->timeout_s > 0 ? c->timeout_s : mp_multiple_default_timeout(c->lang);

    /* 1. completions */
    double t0 = mp_now();
    if (c->model_dir) {
        if ((rc = generate(c, P.p, n_prob, per, n_jobs, S, o, err)) < 0) goto cleanup;
    } else {
        for (size_t i = 0, j = 0; i < n_prob; i++)
            for (int s = 0; s < P.p[i].n_given; s++, j++) {
                S[j].completion = strdup(P.p[i].given[s]);
                S[j].stop_reason = -1;
                if (!S[j].completion) {
                    rc = mp_fail(err, MP_ENOMEM, "out of memory");
                    goto cleanup;
                }
            }
    }
    o->gen_seconds = mp_now() - t0;

    /* 2. programs run in the sandbox */
    if ((rc = make_jobs(c, L, exe, P.p, n_prob, per, S, J, err)) < 0) goto cleanup;
    t0 = mp_now();
    mp_progress pe;
    mp_progress_start(&pe, c->progress, "multipl-e run", "programs", n_jobs);
    if ((rc = mp_sandbox_run_all(J, n_jobs, c->jobs, R, on_done, &pe, err)) < 0) goto cleanup;
    mp_progress_finish(&pe);
    o->exec_seconds = mp_now() - t0;
    o->jobs = c->jobs ? c->jobs : sysconf(_SC_NPROCESSORS_ONLN);

    /* 3. statuses, pass@k, JSONL */
    if ((rc = score(c, L, P.p, n_prob, per, S, R, out, o, err)) < 0) goto cleanup;
    o->seconds = mp_now() - t_start;
    if (out && fclose(out) != 0) {
        out = NULL;
        rc = mp_fail(err, MP_EIO, "%s: write failed", c->out_path);
        goto cleanup;
    }
    out = NULL;
    if (out_tmp[0] && rename(out_tmp, c->out_path) < 0) {
        rc = mp_fail(err, MP_EIO, "%s: cannot write: %s", c->out_path, strerror(errno));
        goto cleanup;
    }
    out_tmp[0] = '\0';
cleanup:
    if (out) fclose(out);
    if (out_tmp[0]) unlink(out_tmp); /* a failed run leaves an existing --out file as it was */
    for (size_t j = 0; S && R && j < n_jobs; j++) { /* nothing is filled before both exist */
        free(S[j].completion);
        free(S[j].program);
        mp_sbx_result_free(&R[j]);
    }
    free(S);
    free(J);
    free(R);
    problems_free(P.p, P.n);
    return rc;
}
