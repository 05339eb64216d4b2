/* recipes/plan.h — a recipe's plan: a DAG of steps (collect store → purge masks →
 * evaluations of the base model and of every mask), each with a content-addressed
 * cache key, and the executor that runs the missing steps as subprocesses of the
 * monet-probe binary (so every step is exactly a documented CLI command).
 *
 * Cache (docs/recipes.md): step key = SHA-256 over the step kind, every argument
 * of its command line, the content hash of every input file (corpora, scorer
 * files, the model fingerprint) and the keys of the steps it reads from. The
 * step's outputs live in OUT/cache/<key>/; the marker OUT/cache/<key>/DONE is
 * written last (write + rename), so a step without it runs again (collect then
 * resumes its own store) and a step with it is never run again.
 *
 * Ownership: mp_plan_build returns a plan that owns its steps and strings and
 * borrows the recipe (which must outlive it); mp_plan_free releases it.
 */
#ifndef MP_RECIPES_PLAN_H
#define MP_RECIPES_PLAN_H

#include <stdio.h>

#include "core/util/error.h"
#include "recipes/recipe.h"

typedef enum {
    MP_STEP_CORPUS = 0, /* in-process: write the MMLU questions as a JSONL corpus labelled by category */
    MP_STEP_SCORER,     /* toxicity-scorer train (builtin offline scorer) */
    MP_STEP_COLLECT,    /* collect → store.db */
    MP_STEP_PURGE,      /* purge → mask.json (one per target × threshold) */
    MP_STEP_EVAL        /* eval <kind> → result.json / stdout.txt (base and per mask) */
} mp_step_kind;

/* One argument of a step's command: prefix + the resolved reference. */
typedef enum { MP_ARG_LIT, MP_ARG_INFILE, MP_ARG_MODEL, MP_ARG_OUT, MP_ARG_UP } mp_arg_kind;

typedef struct mp_step_arg {
    mp_arg_kind kind;
    char *text;   /* LIT: the argument; INFILE/MODEL: the path; OUT: file name; UP: file name in the upstream dir */
    char *prefix; /* prepended (e.g. "builtin:"), may be NULL */
    int up;       /* UP: index of the upstream step */
} mp_step_arg;

typedef struct mp_step {
    mp_step_kind kind;
    char *label;          /* "purge python @2", "eval ppl base", ... */
    mp_step_arg *args;    /* after the program name [n_args] */
    size_t n_args, cap_args;
    int deps[8];          /* upstream steps */
    int n_deps;
    char key[65];         /* cache key (hex) */
    char *dir;            /* OUT/cache/<key> */
    int cached;           /* DONE marker present when planned */
    /* what the report needs */
    int mask;             /* index into the plan's masks, -1 = base model */
    int eval;             /* recipe eval index, -1 for non-eval steps */
    char *sub;            /* multipl-e language, else NULL */
    double seconds;       /* run time (executed steps) */
    int ran;              /* executed in this invocation */
    int failed;           /* executed in this invocation and failed */
    int shards;           /* collect: > 1 = run as shard jobs + merge (recipe collect.shards); else 0 */
} mp_step;

/* One mask of the sweep: a target (specialize) and a threshold. */
typedef struct mp_plan_mask {
    char *target;         /* label value, or the score field for correlate */
    double threshold;
    int step;             /* its purge step */
} mp_plan_mask;

typedef struct mp_plan {
    const mp_recipe *recipe;
    char *out_dir, *cache_dir;
    char model_hash[65];
    mp_step *steps;
    size_t n_steps, cap_steps;
    mp_plan_mask *masks;
    size_t n_masks;
    int collect_step;
} mp_plan;

/* Build the plan and compute every key (hashes the corpora and fingerprints
 * the model: config.json, tokenizer.model, each *.safetensors file's name,
 * size, mtime and JSON header). @return 0, MP_EIO, MP_EINPUT or MP_ENOMEM. */
int mp_plan_build(const mp_recipe *r, mp_plan **out, mp_error *err);
void mp_plan_free(mp_plan *p);

/* Print the plan: one block per step with its key, cached/will run, and the
 * equivalent shell command. */
void mp_plan_print(const mp_plan *p, const char *exe, FILE *out);

/* Before step 1 (and for --dry-run): check what the steps still to run need —
 * the model's config.json, tokenizer.model and weights, the data files of each
 * evaluation (MMLU subjects.tsv, the MULTIPL-E problems, the general tasks'
 * files, ToxiGen / RTP folders) and the MULTIPL-E toolchains (naming the
 * Debian package). @return 0 or MP_EUNSUPPORTED listing every problem in one
 * line. */
int mp_plan_preflight(const mp_plan *p, mp_error *err);

/* Check that the output directory is new, empty, or a sweep output (it holds
 * the marker file .monet-probe-sweep, or cache/lock of an older sweep); with
 * create, make it and write the marker. An unrelated non-empty directory is
 * refused so that a typo in --out cannot mix a sweep into someone's files.
 * @return 0, MP_EINPUT (refused) or MP_EIO. */
int mp_plan_claim_out(const mp_plan *p, int create, mp_error *err);

/* Run every step without a DONE marker (recipes/execute.c), claiming the
 * output directory first, as `exe ARGS` with stdout and stderr into the step's
 * directory: up to `jobs` at a time, a step once every step it needs is done
 * (jobs = 1: in plan order). A sharded collect runs as its shard jobs (each
 * `collect --shard i/n` into shard-i-of-n.db, marked shard-i-of-n.done when it
 * ends well) and then the merge into store.db; the shard files go once DONE is
 * written. Progress lines "step i of n: ..., ETA" go to progress (NULL: quiet).
 * Takes an exclusive lock on OUT/cache. After a failure no new job starts and
 * the running ones are waited for (their outputs stay in the cache).
 * @return 0, or the first failure (MP_EINPUT naming the step and its last error
 *         line when the command exits 2, MP_EINTERNAL otherwise). */
int mp_plan_execute(mp_plan *p, const char *exe, int jobs, FILE *progress, mp_error *err);

/* The in-process steps (the MMLU corpus): run step s now and write its marker.
 * @return 0, MP_EIO or MP_EINPUT. */
int mp_plan_run_inproc(mp_plan *p, mp_step *s, const char *exe, mp_error *err);

/* ---- jobs: one unit of execution, a local process or a Slurm job ----------------------- */

typedef enum {
    MP_JOB_STEP = 0, /* the whole step: its command */
    MP_JOB_SHARD,    /* one shard of a sharded collect: the command with --out shard-i-of-n.db --shard i/n */
    MP_JOB_MERGE     /* merge --force --json store.db shard-0-of-n.db ... */
} mp_job_role;

/* The argv of a job (argv[0] = exe; NULL-terminated; free with
 * mp_plan_argv_free); drop_quiet leaves out --quiet (live progress).
 * @return 0 or MP_ENOMEM. */
int mp_plan_job_argv(const mp_plan *p, const mp_step *s, mp_job_role role, int shard, const char *exe,
                     int drop_quiet, char ***argv, mp_error *err);
void mp_plan_argv_free(char **argv);

/* Where a job's stdout and stderr go: stdout.txt / stderr.txt; shard-i-of-n.stdout.txt /
 * .stderr.txt; merge.json / merge.stderr.txt (all in the step's directory). */
void mp_plan_job_files(const mp_step *s, mp_job_role role, int shard, char *out, char *err_path, size_t cap);

/* DIR/shard-i-of-n<suffix> of a sharded collect (".db", ".done", ...). */
void mp_plan_shard_path(const mp_step *s, int shard, const char *suffix, char *buf, size_t cap);

/* 1 when shard i of a sharded collect has its .done marker. */
int mp_plan_shard_done(const mp_step *s, int shard);

/* The DONE marker's JSON (step, kind, key, argv, shards, seconds); caller frees; NULL: out of memory. */
char *mp_plan_marker_json(const mp_plan *p, const mp_step *s, const char *exe, double seconds);

/* The last non-empty line of a file (a job's stderr), "" when none. */
void mp_plan_last_line(const char *path, char *buf, size_t cap);

/* Write s as one shell word (quoted with '...' unless plain). */
void mp_plan_shell_quote(FILE *out, const char *s);

/* mkdir -p. @return 0 or MP_EIO. */
int mp_plan_mkdir(const char *path, mp_error *err);

/* Resolve argument a of step s into buf. */
const char *mp_plan_arg(const mp_plan *p, const mp_step *s, size_t a, char *buf, size_t cap);

#endif
