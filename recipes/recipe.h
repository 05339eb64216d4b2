/* recipes/recipe.h — a study recipe (recipes/NAME.yaml, schema in docs/recipes.md)
 * parsed with libyaml into a small tree that keeps the line and column of every
 * node, then checked against a typed schema: unknown keys, wrong types, bad
 * values and missing files become "FILE:LINE:COL: problem" (MP_EINPUT, exit 2).
 *
 * Ownership: mp_recipe_load returns a recipe that owns every string, the tree
 * and the options; mp_recipe_free releases it (NULL: no-op). Options point into
 * the tree (borrowed, same lifetime).
 */
#ifndef MP_RECIPE_H
#define MP_RECIPE_H

#include <stddef.h>

#include "core/util/error.h"

/* One YAML node (the document API, copied into our own tree so that --set can
 * graft values and every node keeps where it came from). */
typedef enum { MP_YNODE_SCALAR, MP_YNODE_SEQ, MP_YNODE_MAP } mp_ynode_type;

typedef struct mp_ynode {
    mp_ynode_type type;
    int line, col;            /* 1-based position of the node in its source */
    const char *file;         /* borrowed: recipe path or "--set" */
    char *scalar;             /* SCALAR: its text */
    char **keys;              /* MAP: keys [n] */
    int *key_line, *key_col;  /* MAP: where each key is [n] */
    struct mp_ynode **items;  /* SEQ: items [n]; MAP: values [n] */
    size_t n;
} mp_ynode;

/* Evaluations a recipe can run for the base model and for each mask. */
typedef enum {
    MP_REVAL_PPL = 0,
    MP_REVAL_MULTIPLE,
    MP_REVAL_MMLU,
    MP_REVAL_GENERAL,
    MP_REVAL_TOXICITY,
    MP_REVAL_COUNT
} mp_reval_kind;

/* Value types of schema keys. */
typedef enum { MP_RT_STR, MP_RT_PATH, MP_RT_INT, MP_RT_NUM, MP_RT_LIST, MP_RT_NUMLIST, MP_RT_ANY } mp_rtype;

/* One option of a section: the schema entry it matched and its node. */
typedef struct mp_ropt {
    const char *key;          /* schema key (static) */
    const char *flag;         /* CLI flag it becomes ("--max-docs"), NULL = handled by the planner */
    mp_rtype type;
    const mp_ynode *node;     /* borrowed from the tree */
} mp_ropt;

typedef struct mp_rsection {
    mp_ropt *opts;
    size_t n;
    int line, col;            /* where the section starts */
} mp_rsection;

typedef struct mp_recipe {
    char *path;               /* the recipe file */
    mp_ynode *root;
    char *name, *model, *data, *out;
    mp_rsection collect;
    mp_rsection criterion;
    int correlate;            /* criterion kind: 0 specialize, 1 correlate */
    char *field;              /* criterion field (label field or score field) */
    char **targets;           /* specialize: label values to purge [n_targets] */
    size_t n_targets;
    double *thresholds;       /* skew ratios (specialize) or r thresholds (correlate) [n_thresholds] */
    size_t n_thresholds;
    mp_rsection *evals;       /* [n_evals] */
    mp_reval_kind *eval_kind; /* [n_evals] */
    size_t n_evals;
    long report_experts, report_contexts, report_context_tokens;
    int allow_commands;       /* cmd: scorers (shell commands) allowed (sweep --allow-commands) */
    long shards;              /* collect.shards (or sweep --shards): shard jobs + merge; 1 = one collect */
} mp_recipe;

/* Most shards of one collect (a Slurm job array of this many tasks fits the default MaxArraySize). */
#define MP_RECIPE_MAX_SHARDS 1000
#define MP_STR_(x) #x
#define MP_STR(x) MP_STR_(x)

/* Overrides from the command line, applied before the schema check. */
typedef struct mp_recipe_overrides {
    const char *model, *out;  /* NULL: keep the recipe's */
    const char *data;         /* NULL: the recipe's `data:`, else core/util/data_dir.h's default */
    long limit;               /* > 0: every eval's limit (ppl: max_docs) */
    const char **sets;        /* "dotted.key=yaml value" [n_sets], e.g. "criterion.thresholds=[0.2,0.1]" */
    size_t n_sets;
    int allow_commands;       /* accept `scorer: "cmd:..."` (a shell command run outside the sandbox) */
    long shards;              /* > 0: collect.shards */
} mp_recipe_overrides;

/* Parse and check a recipe. Relative paths are taken from the current
 * directory; model, corpora and scorer files must exist.
 * @return 0, MP_EIO (unreadable file), MP_EINPUT ("FILE:LINE:COL: ...") or
 *         MP_ENOMEM. */
int mp_recipe_load(const char *path, const mp_recipe_overrides *ov, mp_recipe **out, mp_error *err);

/* Parse and check recipe text already in memory (the fuzz target); files are
 * not required to exist when check_files is 0. */
int mp_recipe_parse(const char *name, const char *text, size_t len, const mp_recipe_overrides *ov, int check_files,
                    mp_recipe **out, mp_error *err);

void mp_recipe_free(mp_recipe *r);

/* The option of a section with that key, or NULL. */
const mp_ropt *mp_rsection_get(const mp_rsection *s, const char *key);

/* Name of an evaluation kind ("ppl", "multipl-e", ...). */
const char *mp_reval_name(mp_reval_kind k);

void mp_ynode_free(mp_ynode *n);

#endif
