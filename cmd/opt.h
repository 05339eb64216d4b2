/* cmd/opt.h — the one declarative option parser of every subcommand.
 *
 * A command describes its options as a table of cli_opt (name, value type,
 * range or choices, destination, help line, required / repeatable) and its
 * positional arguments in a cli_spec; cli_parse() fills the destinations and
 * prints `--help` from the same table, so help text and parser cannot drift.
 * Option groups shared by several commands (model/device/mask, store, corpus
 * fields, output format) are the CLI_OPTS_* macros below, defined once.
 *
 * Accepted forms: `--name VALUE`, `--name=VALUE`, `--flag`, `--` (the rest is
 * positional). An alias is an older or alternative spelling: it works, is
 * shown in --help as "(also --old)", and, when marked CLI_DEPRECATED, prints a
 * one-line note on stderr once.
 *
 * Ownership: the table and spec are the caller's (usually automatic arrays
 * whose dest pointers point at the caller's locals); string values point into
 * argv. Nothing is allocated.
 */
#ifndef MP_CLI_OPT_H
#define MP_CLI_OPT_H

#include <stdio.h>

typedef enum cli_opt_type {
    CLI_END = 0,  /* table terminator */
    CLI_FLAG,     /* int *dest = 1 (or `value` when non-zero) */
    CLI_STR,      /* const char **dest */
    CLI_LONG,     /* long *dest, lo..hi */
    CLI_INT,      /* int *dest, lo..hi */
    CLI_DOUBLE,   /* double *dest, lo..hi (finite) */
    CLI_CHOICE,   /* int *dest = index of the value in `choices` ("a|b|c") */
    CLI_CHOICE_STR, /* const char **dest = the value, one of `choices` */
    CLI_LIST,     /* cli_list *dest: repeatable string option */
    CLI_CUSTOM,   /* parse(value, dest, msg, cap) returns 0 or -1 with msg filled */
} cli_opt_type;

enum {
    CLI_REQUIRED = 1u << 0,   /* must be given */
    CLI_DEPRECATED = 1u << 1, /* the alias is an old spelling: note on stderr when used */
    CLI_HIDDEN = 1u << 2,     /* parsed, not shown in --help */
};

#define CLI_LIST_MAX 64

/* A repeatable string option's values, in command-line order. */
typedef struct cli_list {
    const char *v[CLI_LIST_MAX];
    int n;
} cli_list;

typedef struct cli_opt {
    const char *name;    /* "--model" */
    const char *alias;   /* another accepted spelling, or NULL */
    cli_opt_type type;
    const char *metavar; /* "DIR" (value options) */
    void *dest;
    double lo, hi;       /* CLI_LONG / CLI_INT / CLI_DOUBLE range */
    const char *choices; /* CLI_CHOICE: "mean|freq" */
    const char *help;    /* one line (may contain '\n' + indentation for more) */
    unsigned flags;
    int (*parse)(const char *value, void *dest, char *msg, size_t cap); /* CLI_CUSTOM */
    int value;           /* CLI_FLAG: value stored (0 = 1) */
} cli_opt;

typedef struct cli_spec {
    const char *cmd;      /* "collect", "eval mmlu" (for messages and usage) */
    const char *synopsis; /* text after "usage: monet-probe CMD ", or NULL = generated */
    const char *about;    /* paragraph printed under the usage line */
    const cli_opt *opts;  /* terminated by an entry with type CLI_END */
    const char *pos_name; /* positional metavar ("RECIPE", "STORE.db"), NULL = none */
    const char **pos;     /* positional destinations */
    int pos_min, pos_max; /* how many positionals are required / allowed */
    int *pos_n;           /* receives the count (may be NULL) */
    const char *footer;   /* printed after the options */
} cli_spec;

/* Parse argv[1..argc) (argv[0] is the command name).
 * @return 0 parsed; 1 when --help / -h was given (help printed on stdout:
 *         the command returns 0); 2 after printing a one-line usage error
 *         ("monet-probe CMD: ... (see: monet-probe CMD --help)"). */
int cli_parse(const cli_spec *spec, int argc, char **argv);

/* In a command: parse, and return from it on --help (0) or a usage error (2). */
#define CLI_PARSE_OR_RETURN(spec, argc, argv)                                                                         \
    do {                                                                                                              \
        int prc_ = cli_parse((spec), (argc), (argv));                                                                 \
        if (prc_) return prc_ == 1 ? 0 : prc_;                                                                        \
    } while (0)

/* Print the help generated from the spec. */
void cli_print_help(const cli_spec *spec, FILE *out);

/* ---- shared option groups ---------------------------------------------------
 * Each expands to table entries writing into a struct of the caller's. */

/* --model / --device / --mask: every command that runs the model. */
typedef struct cli_model_args {
    const char *model;  /* checkpoint folder */
    const char *device; /* cpu|cuda|auto, NULL = auto (env MP_DEVICE) */
    const char *mask;   /* mask file or NULL */
} cli_model_args;

#define CLI_OPT_MODEL(a, fl)                                                                                          \
    {"--model", NULL, CLI_STR, "DIR", &(a)->model, 0, 0, NULL,                                                      \
     "checkpoint folder: config.json, *.safetensors, tokenizer.model", (fl), NULL, 0}
#define CLI_OPT_DEVICE(a)                                                                                             \
    {"--device", NULL, CLI_CHOICE_STR, "D", &(a)->device, 0, 0, "cpu|cuda|auto",                                    \
     "cpu | cuda | auto (default auto = cuda when a GPU is visible; env MP_DEVICE)", 0, NULL, 0}
#define CLI_OPT_MASK(a)                                                                                               \
    {"--mask", NULL, CLI_STR, "MASK", &(a)->mask, 0, 0, NULL,                                                       \
     "expert mask file (JSON, docs/mask.md): masked experts get w = 0", 0, NULL, 0}

/* --json / --quiet */
#define CLI_OPT_JSON(p) {"--json", NULL, CLI_FLAG, NULL, (p), 0, 0, NULL, "machine-readable JSON on stdout", 0, NULL, 0}
#define CLI_OPT_QUIET(p)                                                                                              \
    {"--quiet", NULL, CLI_FLAG, NULL, (p), 0, 0, NULL, "no progress or notes on stderr", 0, NULL, 0}

/* --store */
#define CLI_OPT_STORE(p, fl)                                                                                          \
    {"--store", NULL, CLI_STR, "STORE.db", (p), 0, 0, NULL, "a collect store (docs/store.md)", (fl), NULL, 0}

/* Corpus fields: --text-field / --label-field / --score-field. */
#define CLI_OPT_TEXT_FIELD(p)                                                                                         \
    {"--text-field", NULL, CLI_STR, "F", (p), 0, 0, NULL, "JSONL/CSV text field (default \"text\")", 0, NULL, 0}

#define CLI_OPT_CSV(p) {"--csv", NULL, CLI_FLAG, NULL, (p), 0, 0, NULL, "CSV on stdout", 0, NULL, 0}
#define CLI_OPT_LABEL_FIELD(p, fl)                                                                                    \
    {"--label-field", NULL, CLI_STR, "F", (p), 0, 0, NULL,                                                          \
     "label field (as collected with `collect --label-field F`: lang, domain, ...)", (fl), NULL, 0}
#define CLI_OPT_SCORE_FIELD(p, fl)                                                                                    \
    {"--score-field", NULL, CLI_STR, "F", (p), 0, 0, NULL,                                                          \
     "numeric score field in [0,1] (toxicity, ...)", (fl), NULL, 0}

/* --data DIR: the staged data folder (default $MONET_PROBE_DATA, then ../shared/data) */
#define CLI_OPT_DATA(p)                                                                                               \
    {"--data", NULL, CLI_STR, "DIR", (p), 0, 0, NULL,                                                               \
     "data folder (default: $MONET_PROBE_DATA, else ../shared/data)", 0, NULL, 0}
/* --out PATH (meaning given per command) */
#define CLI_OPT_OUT(p, mv, help, fl) {"--out", NULL, CLI_STR, (mv), (p), 0, 0, NULL, (help), (fl), NULL, 0}
/* --batch N: sequences per engine call */
#define CLI_OPT_BATCH(p, help) {"--batch", NULL, CLI_INT, "N", (p), 1, 1 << 24, NULL, (help), 0, NULL, 0}
/* --limit N: items per task / documents */
#define CLI_OPT_LIMIT(p, help) {"--limit", NULL, CLI_LONG, "N", (p), 0, 4.6e18, NULL, (help), 0, NULL, 0}
/* --seed S */
#define CLI_OPT_SEED(p) {"--seed", NULL, CLI_LONG, "S", (p), 0, 4.6e18, NULL, "random seed (default 0)", 0, NULL, 0}
/* --corpus SPEC */
#define CLI_OPT_CORPUS(p, fl)                                                                                         \
    {"--corpus", NULL, CLI_STR, "SPEC", (p), 0, 0, NULL,                                                            \
     "file (.txt .jsonl .csv, optionally .zst) or directory tree", (fl), NULL, 0}
/* --strict: a malformed corpus line is fatal */
#define CLI_OPT_STRICT(p)                                                                                             \
    {"--strict", NULL, CLI_FLAG, NULL, (p), 0, 0, NULL,                                                             \
     "a malformed corpus line is fatal (default: reported, skipped, counted)", 0, NULL, 0}
/* --expert R:I,J (repeatable where the command acts on several) */
#define CLI_OPT_EXPERT(p, type, help, fl) {"--expert", NULL, (type), "R:I,J", (p), 0, 0, NULL, (help), (fl), NULL, 0}

/* Token input: --ids LIST | --text TEXT [--no-bos]. --text prepends BOS, as
 * the Hugging Face tokenizer does by default (--bos, the old opt-in, is still
 * accepted and changes nothing). */
typedef struct cli_input_args {
    const char *ids;
    const char *text;
    int no_bos, bos_old;
} cli_input_args;
#define CLI_OPTS_INPUT(a)                                                                                             \
    {"--ids", NULL, CLI_STR, "LIST", &(a)->ids, 0, 0, NULL, "comma-separated token ids (used as given)", 0, NULL, 0}, \
        {"--text", NULL, CLI_STR, "TEXT", &(a)->text, 0, 0, NULL,                                                    \
         "text encoded with the model's tokenizer.model (BOS first, as Hugging Face does)", 0, NULL, 0},             \
        {"--no-bos", NULL, CLI_FLAG, NULL, &(a)->no_bos, 0, 0, NULL, "do not prepend BOS to --text", 0, NULL, 0},    \
        {"--bos", NULL, CLI_FLAG, NULL, &(a)->bos_old, 0, 0, NULL, "", CLI_HIDDEN, NULL, 0}

/* --top N (how many rows are listed) and --min-count N (activity floor) */
#define CLI_OPT_TOP(p, help) {"--top", NULL, CLI_LONG, "N", (p), 0, 1 << 30, NULL, (help), 0, NULL, 0}
#define CLI_OPT_MIN_COUNT(p, help) {"--min-count", NULL, CLI_LONG, "N", (p), 0, 4.6e18, NULL, (help), 0, NULL, 0}
/* --label FIELD=VALUE: restrict to documents whose label FIELD is VALUE */
int cli_parse_label_select(const char *value, void *dest, char *msg, size_t cap);
#define CLI_OPT_LABEL_SELECT(p, help)                                                                                 \
    {"--label", NULL, CLI_CUSTOM, "F=V", (p), 0, 0, NULL, (help), 0, cli_parse_label_select, 0}

/* --contexts N (top contexts per expert) / --context-tokens N (tokens each side) */
#define CLI_OPT_CONTEXTS(p, help) {"--contexts", NULL, CLI_INT, "N", (p), 0, 1 << 20, NULL, (help), 0, NULL, 0}
#define CLI_OPT_CONTEXT_TOKENS(p, help) {"--context-tokens", NULL, CLI_INT, "N", (p), 0, 4096, NULL, (help), 0, NULL, 0}

/* The model group: --model (flags fl), --device, --mask. */
#define CLI_OPTS_MODEL(a, fl) CLI_OPT_MODEL(a, fl), CLI_OPT_DEVICE(a), CLI_OPT_MASK(a)

#define CLI_OPT_END {NULL, NULL, CLI_END, NULL, NULL, 0, 0, NULL, NULL, 0, NULL, 0}

#endif
