/* core/text/corpus.h — streaming corpus readers: documents one at a time with their
 * labels, never the whole corpus in memory.
 *
 * A corpus SPEC is a path:
 *   *.txt / other files   plain text, one document per line (opts.whole_file:
 *                         the whole file is one document)
 *   *.jsonl               one JSON object per line; text and labels from fields
 *                         (dotted paths reach nested objects: "prompt.text")
 *   *.csv                 RFC 4180 CSV with a header row; text and labels from
 *                         columns (MMLU layout: question,choice0..3,answer)
 *   *.zst                 any of the above compressed with zstd (streaming),
 *                         e.g. data.jsonl.zst, notes.txt.zst
 *   a directory           every regular file below it, in sorted order; each
 *                         file is one document (or read by its own format when
 *                         it is .jsonl/.csv/.zst), labelled by opts.dir_label
 * A malformed line (invalid JSON, missing text field, bad CSV quoting,
 * invalid UTF-8 in text) is reported through opts.on_skip (file, line,
 * reason), skipped and counted; with opts.strict it is an MP_EINPUT error
 * "<file>:<line>: <reason>".
 *
 * Ownership: mp_corpus_open allocates the reader; a returned mp_doc borrows
 * its strings from the reader and is valid until the next mp_corpus_next or
 * mp_corpus_close (NULL: no-op).
 */
#ifndef MP_CORPUS_H
#define MP_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"

#define MP_CORPUS_MAX_LABELS 8

typedef struct mp_corpus mp_corpus;

typedef void (*mp_corpus_skip_fn)(void *ctx, const char *file, size_t line, const char *reason);

typedef struct mp_corpus_opts {
    const char *text_field;   /* JSONL/CSV: text field (NULL = "text"; CSV default: "text" or the first column) */
    const char *label_fields[MP_CORPUS_MAX_LABELS]; /* JSONL/CSV fields kept as labels */
    int n_label_fields;
    int whole_file;           /* plain text: one document per file */
    int strict;               /* malformed line -> error instead of skip */
    const char *dir_label;    /* directory trees: "ext" (file extension, default), "parent"
                                 (parent folder name), "stem" (file name without extension)
                                 or NULL for none; stored under the label name "label" */
    mp_corpus_skip_fn on_skip;/* called for each skipped line (may be NULL) */
    void *on_skip_ctx;
} mp_corpus_opts;

typedef struct mp_doc {
    uint64_t index;           /* 0-based position of the document in corpus order */
    const char *text;         /* UTF-8, not necessarily NUL-free; len bytes */
    size_t len;
    const char *source;       /* file the document comes from */
    size_t line;              /* 1-based line (record) in source; 0 for whole-file documents */
    int n_labels;
    const char *label_names[MP_CORPUS_MAX_LABELS];  /* e.g. "lang" */
    const char *label_values[MP_CORPUS_MAX_LABELS]; /* strings; JSON numbers/bools as text
                                                        ("0.87", "true"); missing -> NULL */
} mp_doc;

/* Open spec. @return 0, MP_EIO (cannot open/read) or MP_EINPUT (unknown
 * format, bad options, unreadable zstd frame, ...). */
int mp_corpus_open(const char *spec, const mp_corpus_opts *opts, struct mp_corpus **out, mp_error *err);

/* Next document: 1 with *doc filled, 0 at the end, <0 on error (I/O, or a
 * malformed line under strict). */
/* Share of the corpus read so far in 0..1, from the bytes of its files (for
 * a compressed file, the compressed bytes); -1 when the size is unknown. */
double mp_corpus_fraction(const struct mp_corpus *c);

int mp_corpus_next(struct mp_corpus *c, mp_doc *doc, mp_error *err);

/* Malformed lines skipped so far. */
size_t mp_corpus_skipped(const struct mp_corpus *c);

void mp_corpus_close(struct mp_corpus *c);

#endif
