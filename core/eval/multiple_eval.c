/* cmd/eval_multiple.c — `monet-probe eval multipl-e`: MULTIPL-E HumanEval
 * (Cassano et al. 2022) in py, cpp, java, js, lua, php (DESIGN.md §4).
 *
 * Per problem: prompt -> n completions (mp_generate, cut at the problem's
 * stop_tokens) -> program = prompt + completion + "\n" + tests -> run in the
 * sandbox (core/eval/sandbox) with the harness's command for the language ->
 * status ok | fail | timeout | compile error | sandbox error -> unbiased
 * pass@k (core/eval/passk). Also evaluates given completions (--completions) and
 * the canonical HumanEval solutions (--canonical, Python) without a model.
 * The JSONL written by --out holds only deterministic fields (no timings,
 * relative file names in the programs' messages), so the same command gives
 * the same bytes.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/model/forward.h"
#include "core/model/generate.h"
#include "core/eval/luaunit.h"
#include "core/eval/passk.h"
#include "core/util/progress.h"
#include "core/model/sampling.h"
#include "core/eval/sandbox.h"
#include "core/text/utf8.h"

static const char *CMD = "eval multipl-e";

static const char *USAGE =
    "usage: monet-probe eval multipl-e --model DIR --lang py|cpp|java|js|lua|php [options]\n"
    "       monet-probe eval multipl-e --lang L --completions FILE [options]   (no model)\n"
    "       monet-probe eval multipl-e --lang py --canonical HumanEval.jsonl    (no model)\n"
    "  MULTIPL-E HumanEval: generate completions cut at each problem's stop_tokens, run\n"
    "  prompt + completion + \"\\n\" + tests in a sandbox (own temp dir, no network, rlimits,\n"
    "  read-only filesystem, unprivileged uid; see docs/sandbox.md), report unbiased pass@k.\n"
    "  --data FILE        problems (default ../shared/data/multipl-e/humaneval-<lang>-reworded.jsonl)\n"
    "  --limit N          first N problems only\n"
    "  --n N              samples per problem (default 1)\n"
    "  --temperature T    0 = greedy (default 0); harness: n=20 T=0.2 for pass@1, T=0.8 for pass@10/100\n"
    "  --top-p P          nucleus mass (default 0.95)\n"
    "  --seed S           RNG seed (default 1); sample s of problem p uses its own derived seed\n"
    "  --max-tokens N     new tokens per completion (default 512, capped by the context)\n"
    "  --mask MASK        purge the experts listed in a mask file\n"
    "  --jobs N           parallel sandboxes (default: number of CPUs)\n"
    "  --timeout S        wall-time limit per program step (default 15)\n"
    "  --out FILE         per-problem results as JSONL\n"
    "  --completions FILE JSONL {\"name\", \"completion\" | \"completions\": [...]}: evaluate these\n"
    "  --canonical FILE   plain (gunzipped) HumanEval JSONL: run the canonical solutions (py)\n"
    "  --quiet            no progress\n";

/* ---- languages ------------------------------------------------------------ */

#define JAVATUPLES "/usr/share/java/javatuples.jar"

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
    {"lua", "main.lua", {"luac5.4", "lua5.4"}, {"lua5.4", "lua5.4"}, {{"luac5.4", "-p", "main.lua"}, {"lua5.4", "main.lua"}},
     2, 4ULL << 30, 64},
    {"php", "main.php", {"php", NULL}, {"php-cli", NULL}, {{"php", "main.php"}}, 1, 4ULL << 30, 64},
};

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
    MP_TRY(cli_read_all(path, &buf, &len, err));
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

enum { ST_OK, ST_FAIL, ST_TIMEOUT, ST_COMPILE, ST_SANDBOX, ST_COUNT };
static const char *const STATUS_NAMES[ST_COUNT] = {"ok", "fail", "timeout", "compile error", "sandbox error"};

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
    if (r->outcome == MP_SBX_SETUP) return ST_SANDBOX;
    if (r->outcome == MP_SBX_TIMEOUT) return ST_TIMEOUT;
    if (r->outcome == MP_SBX_OUTPUT) return ST_FAIL;
    if (L->n_steps == 2 && r->steps_run == 1 && (r->exit_code != 0 || r->term_signal)) return ST_COMPILE;
    if (!strcmp(L->name, "php") && (strstr(r->out, "Parse error") || strstr(r->err, "Parse error")))
        return ST_COMPILE;
    if (r->exit_code == 0 && !r->term_signal) return ST_OK;
    if (!strcmp(L->name, "py") && !strstr(r->err, "Traceback (most recent call last)") &&
        (strstr(r->err, "SyntaxError:") || strstr(r->err, "IndentationError:") || strstr(r->err, "TabError:")))
        return ST_COMPILE;
    if (!strcmp(L->name, "js") && strstr(r->err, "SyntaxError:")) return ST_COMPILE;
    return ST_FAIL;
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

/* ---- main -------------------------------------------------------------------- */

int cmd_eval_multiple(int argc, char **argv) {
    const char *dir = NULL, *lang_name = NULL, *data = NULL, *mask_path = NULL, *out_path = NULL;
    const char *completions = NULL, *canonical = NULL;
    long limit = -1, n_samples = 1, max_new = 512, seed = 1, jobs = 0;
    double temp = 0, top_p = 0.95, timeout = 15;
    int quiet = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is_help(a)) {
            fputs(USAGE, stdout);
            return 0;
        }
#define OPT(flag) (!strcmp(a, flag) && ((v = cli_opt_value(CMD, argc, argv, &i)) != NULL || (bad = 1) == 0))
        if (!strcmp(a, "--quiet")) quiet = 1;
        else if (OPT("--model")) dir = v;
        else if (OPT("--lang")) lang_name = v;
        else if (OPT("--data")) data = v;
        else if (OPT("--mask")) mask_path = v;
        else if (OPT("--out")) out_path = v;
        else if (OPT("--completions")) completions = v;
        else if (OPT("--canonical")) canonical = v;
        else if (OPT("--limit")) {
            if (cli_parse_long(v, 0, 1 << 30, &limit)) return cli_usage_error(CMD, "bad --limit '%s'", v);
        } else if (OPT("--n")) {
            if (cli_parse_long(v, 1, 100000, &n_samples)) return cli_usage_error(CMD, "bad --n '%s'", v);
        } else if (OPT("--max-tokens")) {
            if (cli_parse_long(v, 1, 1 << 20, &max_new)) return cli_usage_error(CMD, "bad --max-tokens '%s'", v);
        } else if (OPT("--seed")) {
            if (cli_parse_long(v, 0, 1L << 62, &seed)) return cli_usage_error(CMD, "bad --seed '%s'", v);
        } else if (OPT("--jobs")) {
            if (cli_parse_long(v, 1, 256, &jobs)) return cli_usage_error(CMD, "bad --jobs '%s' (1..256)", v);
        } else if (OPT("--temperature")) {
            if (cli_parse_double(v, 0, 100, &temp)) return cli_usage_error(CMD, "bad --temperature '%s'", v);
        } else if (OPT("--top-p")) {
            if (cli_parse_double(v, 1e-9, 1, &top_p)) return cli_usage_error(CMD, "bad --top-p '%s' (0 < P <= 1)", v);
        } else if (OPT("--timeout")) {
            if (cli_parse_double(v, 0.1, 3600, &timeout)) return cli_usage_error(CMD, "bad --timeout '%s'", v);
        } else /* a missing value was already reported by cli_opt_value */
            return bad ? 2 : cli_usage_error(CMD, "unknown argument '%s'", a);
#undef OPT
    }
    if (!lang_name) return cli_usage_error(CMD, "--lang is required (py, cpp, java, js, lua, php)");
    const lang_spec *L = find_lang(lang_name);
    if (!L) return cli_usage_error(CMD, "unknown --lang '%s' (py, cpp, java, js, lua, php)", lang_name);
    if (!!dir + !!completions + !!canonical != 1)
        return cli_usage_error(CMD, "give exactly one of --model DIR, --completions FILE, --canonical FILE");
    if (canonical && strcmp(L->name, "py")) return cli_usage_error(CMD, "--canonical runs HumanEval's Python solutions: use --lang py");
    if (mask_path && !dir) return cli_usage_error(CMD, "--mask needs --model");

    /* toolchain check before any work */
    char exe[2][4096];
    for (int t = 0; t < 2 && L->tool[t]; t++)
        if (mp_sandbox_find_exe(L->tool[t], exe[t], sizeof exe[t]) < 0) {
            fprintf(stderr, "monet-probe: eval multipl-e: %s toolchain missing: '%s' not found in /usr/local/bin:/usr/bin:/bin"
                            " (Debian package %s: apt-get install %s)\n", L->name, L->tool[t], L->pkg[t], L->pkg[t]);
            return 2;
        }
    if (!strcmp(L->name, "java") && access(JAVATUPLES, R_OK) < 0) {
        fprintf(stderr, "monet-probe: eval multipl-e: java: %s missing (Debian package libjavatuples-java: apt-get "
                        "install libjavatuples-java)\n", JAVATUPLES);
        return 2;
    }

    mp_error err;
    mp_error_clear(&err);
    char data_buf[512];
    if (!data && !canonical) {
        snprintf(data_buf, sizeof data_buf, "../shared/data/multipl-e/humaneval-%s-reworded.jsonl", L->name);
        data = data_buf;
    }
    plist P = {0};
    P.canonical = canonical != NULL;
    mp_tokenizer *tok = NULL;
    mp_model *m = NULL;
    mp_state *st = NULL;
    mp_mask *mask = NULL;
    sample *S = NULL;
    mp_sbx_job *J = NULL;
    mp_sbx_result *R = NULL;
    FILE *out = NULL;
    int rc = 0;
    size_t n_prob = 0, n_jobs = 0;
    double t_start = mp_now(), t_gen = 0, t_exec = 0;
    if ((rc = read_jsonl(canonical ? canonical : data, add_problem, &P, &err)) < 0) goto cleanup;
    n_prob = limit >= 0 && (size_t)limit < P.n ? (size_t)limit : P.n;
    if (completions) {
        given_ctx G = {P.p, P.n, 0};
        if ((rc = read_jsonl(completions, add_completion, &G, &err)) < 0) goto cleanup;
        /* keep only problems that have completions, in dataset order */
        size_t k = 0;
        for (size_t i = 0; i < P.n; i++) {
            if (P.p[i].n_given && k < (limit >= 0 ? (size_t)limit : P.n)) {
                problem tmp = P.p[k];
                P.p[k] = P.p[i];
                P.p[i] = tmp;
                k++;
            }
        }
        n_prob = k;
    }
    if (out_path && !(out = fopen(out_path, "w"))) {
        rc = mp_fail(&err, MP_EIO, "%s: cannot write: %s", out_path, strerror(errno));
        goto cleanup;
    }
    int per = dir ? (int)n_samples : 0;
    for (size_t i = 0; i < n_prob; i++) n_jobs += dir ? (size_t)per : (size_t)P.p[i].n_given;
    S = calloc(n_jobs ? n_jobs : 1, sizeof *S);
    J = calloc(n_jobs ? n_jobs : 1, sizeof *J);
    R = calloc(n_jobs ? n_jobs : 1, sizeof *R);
    if (!S || !J || !R) {
        rc = mp_fail(&err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }

    /* 1. completions */
    double t0 = mp_now();
    if (dir) {
        if ((rc = cli_load_tokenizer(dir, &tok, &err)) < 0 || (rc = mp_model_load(dir, &m, &err)) < 0) goto cleanup;
        if (mp_tokenizer_vocab_size(tok) > m->cfg.vocab_size) {
            rc = mp_fail(&err, MP_EINPUT, "%s: tokenizer has %d pieces but config.json vocab_size is %d", dir,
                         mp_tokenizer_vocab_size(tok), m->cfg.vocab_size);
            goto cleanup;
        }
        if ((rc = mp_state_create(m, 0, 0, &st, &err)) < 0) goto cleanup;
        if ((rc = cli_apply_mask(mask_path, m, st, &mask, &err)) < 0) goto cleanup;
        int ctx = mp_state_max_ctx(st);
        mp_progress pg;
        mp_progress_start(&pg, quiet ? NULL : stderr, "multipl-e generate", "completions", n_jobs);
        for (size_t i = 0, j = 0; i < n_prob; i++) {
            problem *p = &P.p[i];
            int32_t *ids = NULL;
            size_t n_ids = 0;
            if ((rc = mp_tokenizer_encode(tok, p->prompt, strlen(p->prompt), 1, &ids, &n_ids, &err)) < 0) goto cleanup;
            for (int s = 0; s < per; s++, j++) {
                mp_sampler sampler = {0};
                mp_gen_result g = {0};
                /* a seed of its own per (problem, sample): results do not depend on order or --jobs */
                uint64_t sd = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + (uint64_t)i * 1000003ULL + (uint64_t)s;
                long budget = (long)ctx - (long)n_ids;
                if (budget > max_new) budget = max_new;
                if (budget < 1) {
                    S[j].completion = strdup("");
                    S[j].note_ctx = 1;
                    S[j].stop_reason = MP_GEN_STOP_LENGTH;
                } else {
                    mp_gen_opts o = {.max_new_tokens = (int)budget, .stop = (const char *const *)p->stop, .n_stop = p->n_stop};
                    if ((rc = mp_sampler_init(&sampler, m->cfg.vocab_size, temp, top_p, sd, &err)) < 0 ||
                        (rc = mp_generate(st, tok, ids, n_ids, &o, &sampler, &g, &err)) < 0) {
                        mp_sampler_free(&sampler);
                        free(ids);
                        goto cleanup;
                    }
                    S[j].completion = g.text;
                    g.text = NULL;
                    S[j].stop_reason = g.stop_reason;
                    S[j].n_tokens = (int)g.n_ids;
                    mp_gen_result_free(&g);
                    mp_sampler_free(&sampler);
                }
                mp_progress_add(&pg, 1);
                if (!S[j].completion) {
                    free(ids);
                    rc = mp_fail(&err, MP_ENOMEM, "out of memory");
                    goto cleanup;
                }
            }
            free(ids);
        }
        mp_progress_finish(&pg);
    } else {
        for (size_t i = 0, j = 0; i < n_prob; i++)
            for (int s = 0; s < P.p[i].n_given; s++, j++) {
                S[j].completion = strdup(P.p[i].given[s]);
                S[j].stop_reason = -1;
                if (!S[j].completion) {
                    rc = mp_fail(&err, MP_ENOMEM, "out of memory");
                    goto cleanup;
                }
            }
    }
    t_gen = mp_now() - t0;

    /* 2. programs and sandbox jobs */
    mp_sbx_limits lim;
    mp_sbx_limits_default(&lim);
    lim.wall_s = timeout;
    lim.cpu_s = (int)ceil(timeout) + 1;
    lim.as_bytes = L->as_bytes;
    lim.nproc = L->nproc;
    lim.out_keep = 2048;
    for (size_t i = 0, j = 0; i < n_prob; i++) {
        problem *p = &P.p[i];
        int cnt = dir ? per : p->n_given;
        for (int s = 0; s < cnt; s++, j++) {
            char *prog = concat3(p->prompt, S[j].completion, "\n");
            S[j].program = prog ? concat3(prog, p->tests, "") : NULL;
            free(prog);
            if (!S[j].program) {
                rc = mp_fail(&err, MP_ENOMEM, "out of memory");
                goto cleanup;
            }
            S[j].files[0] = (mp_sbx_file){L->file, S[j].program, strlen(S[j].program), 0644};
            int nf = 1;
            if (!strcmp(L->name, "lua")) S[j].files[nf++] = (mp_sbx_file){"luaunit.lua", mp_luaunit_lua, strlen(mp_luaunit_lua), 0644};
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
    t0 = mp_now();
    mp_progress pe;
    mp_progress_start(&pe, quiet ? NULL : stderr, "multipl-e run", "programs", n_jobs);
    if ((rc = mp_sandbox_run_all(J, n_jobs, (int)jobs, R, on_done, &pe, &err)) < 0) goto cleanup;
    mp_progress_finish(&pe);
    t_exec = mp_now() - t0;

    /* 3. statuses, pass@k, JSONL */
    int *nn = calloc(n_prob ? n_prob : 1, sizeof *nn), *cc = calloc(n_prob ? n_prob : 1, sizeof *cc);
    long counts[ST_COUNT] = {0};
    if (!nn || !cc) {
        free(nn);
        free(cc);
        rc = mp_fail(&err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    int min_n = 1 << 30;
    for (size_t i = 0, j = 0; i < n_prob; i++) {
        problem *p = &P.p[i];
        int cnt = dir ? per : p->n_given;
        cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
        for (int s = 0; s < cnt; s++, j++) {
            S[j].status = classify(L, &R[j]);
            counts[S[j].status]++;
            if (S[j].status == ST_OK) cc[i]++;
            cJSON *x = cJSON_CreateObject();
            cJSON_AddItemToObject(x, "completion", json_text(S[j].completion, strlen(S[j].completion)));
            cJSON_AddStringToObject(x, "status", STATUS_NAMES[S[j].status]);
            cJSON_AddNumberToObject(x, "exit_code", R[j].exit_code);
            if (R[j].term_signal) cJSON_AddNumberToObject(x, "signal", R[j].term_signal);
            if (R[j].outcome == MP_SBX_OUTPUT) cJSON_AddStringToObject(x, "note", "output limit exceeded: killed");
            if (R[j].outcome == MP_SBX_SETUP) cJSON_AddStringToObject(x, "note", R[j].setup_error);
            if (S[j].note_ctx) cJSON_AddStringToObject(x, "note", "prompt fills the context: empty completion");
            cJSON_AddStringToObject(x, "stop_reason", stop_name(S[j].stop_reason));
            if (dir) cJSON_AddNumberToObject(x, "tokens", S[j].n_tokens);
            cJSON_AddItemToObject(x, "stdout_tail", json_text(R[j].out, R[j].out_len));
            cJSON_AddItemToObject(x, "stderr_tail", json_text(R[j].err, R[j].err_len));
            cJSON_AddItemToArray(arr, x);
        }
        nn[i] = cnt;
        if (cnt < min_n) min_n = cnt;
        cJSON_AddStringToObject(o, "name", p->name);
        cJSON_AddStringToObject(o, "language", L->name);
        cJSON_AddNumberToObject(o, "n", cnt);
        cJSON_AddNumberToObject(o, "passed", cc[i]);
        cJSON_AddItemToObject(o, "samples", arr);
        if (out) {
            char *txt = cJSON_PrintUnformatted(o);
            if (txt) fprintf(out, "%s\n", txt);
            free(txt);
        }
        cJSON_Delete(o);
    }
    const char *src = dir ? dir : completions ? completions : canonical;
    if (dir)
        printf("multipl-e %s: %zu problems, model %s, %ld samples per problem%s\n", L->name, n_prob, src, n_samples,
               temp == 0 ? " (greedy)" : "");
    else
        printf("multipl-e %s: %zu problems, %zu given completions from %s\n", L->name, n_prob, n_jobs, src);
    if (dir) printf("sampling: temperature %g, top-p %g, seed %ld, max new tokens %ld, mask %s\n", temp, top_p, seed,
                    max_new, mask_path ? mask_path : "none");
    static const int KS[] = {1, 10, 100};
    for (int q = 0; q < 3; q++) {
        if (n_prob == 0 || KS[q] > min_n) continue;
        printf("pass@%d: %.6f\n", KS[q], mp_pass_at_k_mean(nn, cc, (int)n_prob, KS[q], NULL));
    }
    printf("status:");
    for (int s = 0; s < ST_COUNT; s++) printf("%s %s %ld", s ? "," : "", STATUS_NAMES[s], counts[s]);
    printf("\n");
    printf("wall time: %.2f s (generation %.2f s, execution %.2f s with %ld parallel sandboxes)\n", mp_now() - t_start,
           t_gen, t_exec, jobs ? jobs : sysconf(_SC_NPROCESSORS_ONLN));
    printf("sandbox: %s\n", mp_sandbox_isolation());
    free(nn);
    free(cc);
    if (out && fclose(out) != 0) {
        out = NULL;
        rc = mp_fail(&err, MP_EIO, "%s: write failed", out_path);
        goto cleanup;
    }
    out = NULL;
cleanup:
    if (out) fclose(out);
    for (size_t j = 0; S && j < n_jobs; j++) {
        free(S[j].completion);
        free(S[j].program);
        mp_sbx_result_free(&R[j]);
    }
    free(S);
    free(J);
    free(R);
    problems_free(P.p, P.n);
    mp_state_free(st);
    mp_mask_free(mask);
    mp_model_free(m);
    mp_tokenizer_free(tok);
    return rc < 0 ? cli_exit_error(&err) : 0;
}
