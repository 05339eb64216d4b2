/* cmd/cli.h — helpers shared by the subcommands: the only place that prints
 * errors and picks exit codes. Library calls fill an mp_error; cmd code calls
 * cli_exit_error() to print "monet-probe: <message>" and get the exit status. */
#ifndef MP_CLI_H
#define MP_CLI_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "core/util/error.h"
#include "opt.h"

/* Print "monet-probe: <err->msg>" to stderr; return mp_exit_code(err->code). */
int cli_exit_error(const mp_error *err);

/* Print "monet-probe: <cmd>: <message>" and a hint to run --help; return 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* True when s is "-h" or "--help". */
int cli_is_help(const char *s);

/* Strict number parsing with range checks; 0 on success, -1 on bad input. */
int cli_parse_long(const char *s, long lo, long hi, long *out);

/* Parse a comma-separated list of token ids "1,450,29871" (whitespace allowed).
 * On success *ids is malloc'ed (caller frees) and 0 returned; -1 on bad input
 * with a message in err. */
int cli_parse_ids(const char *s, int32_t **ids, size_t *n, mp_error *err);



#include "core/model/model.h"
#include "core/text/tokenizer.h"

/* Load DIR/tokenizer.model. */
int cli_load_tokenizer(const char *model_dir, mp_tokenizer **tok, mp_error *err);

/* Token ids from --ids, or --text encoded with the model's tokenizer (BOS
 * prepended when bos is set). Exactly one of ids_arg/text_arg is non-NULL. */
int cli_get_ids(const char *model_dir, const char *ids_arg, const char *text_arg, int bos, int32_t **ids,
                size_t *n, mp_error *err);

#include "core/model/forward.h"
#include "core/model/mask.h"


#include "core/text/corpus.h"

/* Open a corpus for a per-label command: for a directory, label_field (may be
 * NULL) is the file-name label (ext, parent or stem), otherwise a JSONL field
 * / CSV column; skipped lines are reported on stderr unless *quiet (the
 * caller's flag, read at each skip). Returns 0 or the exit status (2) after
 * printing a usage error or the open error. */
int cli_corpus_open(const char *cmd, const char *spec, const char *text_field, const char *label_field, int strict,
                    const int *quiet, mp_corpus **c);

/* Write s as a JSON string literal to f: quotes, backslashes and control
 * characters escaped, invalid UTF-8 bytes written as U+FFFD, so the output is
 * always valid JSON whatever a corpus or store holds. The one JSON string
 * writer of cmd/. cli_json_strn takes n bytes (NULs escaped). */
void cli_json_str(FILE *f, const char *s);
void cli_json_strn(FILE *f, const char *s, size_t n);

/* Write untrusted text (corpus, labels, store contents) for a terminal:
 * control characters and invalid UTF-8 made visible (core/util/term.h).
 * flags: MP_TERM_KEEP_NEWLINE (1) keeps '\n' and '\t', else they are escaped. */
void cli_term_str(FILE *f, const char *s, int flags);
/* The same into a new string (caller frees); NULL when out of memory. */
char *cli_term_dup(const char *s, int flags);
/* One CSV field: escaped like cli_term_str, quoted (RFC 4180) when needed. */
void cli_csv_str(FILE *f, const char *s);

#define CLI_MAX_STEER 64

#include "core/model/backend.h"


/* Parse a --device value (cpu|cuda|auto). @return 0, or 2 after printing a
 * usage error. */
int cli_parse_device(const char *cmd, const char *s, mp_device *out);

/* The options `ppl` and `eval ppl` share: model group, corpus, fields,
 * windows, document limit, strictness, quiet. */
typedef struct cli_ppl_args {
    cli_model_args model;
    const char *corpus, *text_field, *label_field;
    long ctx, max_docs;
    int strict, quiet;
    int batch; /* windows per engine call (0 = 1) */
} cli_ppl_args;
#define CLI_OPTS_PPL(a)                                                                                               \
    CLI_OPTS_MODEL(&(a)->model, CLI_REQUIRED), CLI_OPT_CORPUS(&(a)->corpus, CLI_REQUIRED),                          \
        CLI_OPT_TEXT_FIELD(&(a)->text_field),                                                                         \
        {"--label-field", NULL, CLI_STR, "F", &(a)->label_field, 0, 0, NULL,                                         \
         "JSONL field (dotted path) or CSV column to group by; for a directory:\n"                                   \
         "ext, parent or stem (file extension, parent folder, file name)", 0, NULL, 0},                              \
        {"--context", NULL, CLI_LONG, "N", &(a)->ctx, 2, 1 << 20, NULL,                                              \
         "window length in tokens (default: min(512, max_position_embeddings))", 0, NULL, 0},                        \
        {"--max-docs", NULL, CLI_LONG, "N", &(a)->max_docs, 1, 1099511627776.0, NULL, "stop after N documents", 0,   \
         NULL, 0},                                                                                                    \
        CLI_OPT_BATCH(&(a)->batch, "windows per engine call, one KV cache of --context tokens each (default 1);\n" \
                                   "never changes a result"),                                                    \
        CLI_OPT_STRICT(&(a)->strict), CLI_OPT_QUIET(&(a)->quiet)
#define CLI_PPL_ARGS_INIT {{0}, NULL, "text", NULL, 0, -1, 0, 0, 0}

/* The resolved request of a parsed cli_model_args' --device (NULL = auto).
 * @return 0, or 2 after printing a usage error. */
int cli_model_device(const char *cmd, const cli_model_args *a, mp_device *out);

/* A parsed cli_input_args has exactly one of --ids / --text. @return 0, or 2
 * after printing a usage error. */
int cli_input_check(const char *cmd, const cli_input_args *in);

/* When path is non-NULL: load the mask file for model m and attach it to e
 * (every slot). *mask receives the loaded mask (caller frees with mp_mask_free).
 * cli_engine_apply_steering: steering from --expert "[R:]I,J[=S]" arguments
 * (strength defaults to `strength` when have_strength): sets the list on e
 * and, unless quiet, says on stderr exactly which weights change in which
 * layers. */
int cli_engine_apply_mask(const char *path, const mp_model *m, mp_engine *e, mp_mask **mask, mp_error *err);
int cli_engine_apply_steering(const mp_model *m, mp_engine *e, const char **args, int n, int have_strength,
                              double strength, int quiet, mp_error *err);
/* What a one-input model command (logits, route) works on: the token ids of
 * --ids/--text, the model, an engine sized for them and the --mask loaded. */
typedef struct cli_session {
    int32_t *ids;
    size_t n;
    mp_model *m;
    mp_engine *e;
    mp_mask *mask;
} cli_session;

/* Open it from parsed options: checks --ids/--text and --device (usage
 * errors print and return 2); then library errors return <0 with err filled.
 * cli_session_close frees whatever was opened. */
int cli_session_open(const char *cmd, const cli_model_args *ma, const cli_input_args *in, cli_session *s,
                     mp_error *err);
void cli_session_close(cli_session *s);
#include "core/eval/perplexity.h"

/* What `ppl` and `eval ppl` both compute: the corpus scored with the model. */
typedef struct cli_ppl_run {
    mp_corpus *c;      /* the corpus (still open: skipped-record counts) */
    mp_ppl_result r;   /* per-label sums */
    long ctx;          /* the window used */
    double rate;       /* tokens/s */
} cli_ppl_run;

/* Open the corpus (usage errors: return 2), load tokenizer, model, engine
 * (--batch slots) and mask, score it (BLAS on one thread: bit-identical
 * whatever the environment; progress unless --quiet). @return 0, 2, or <0
 * with err filled ("no tokens to score" when nothing was scored).
 * cli_ppl_run_free releases it in every case. */
int cli_ppl_compute(const char *cmd, const cli_ppl_args *pa, cli_ppl_run *run, mp_error *err);
void cli_ppl_run_free(cli_ppl_run *run);
#endif
