/* core/eval/eval_tasks.h — the multiple-choice benchmarks of the paper's "general
 * performance" (MMLU, ARC-Easy/Challenge, WinoGrande, PIQA, SIQA, OpenBookQA,
 * HellaSwag, CommonsenseQA): loaders for the staged files in shared/data and
 * pure prompt builders that reproduce lm-evaluation-harness's prompts exactly
 * as each shared/data/<task>/SOURCE.md states them (docs/eval.md).
 *
 * A task's records load into an mp_mc_set of task-agnostic mp_mc_doc; then
 * mp_mc_format turns one doc (plus optional few-shot docs) into an
 * mp_mc_request: the context(s) and continuation(s) per choice, ready for
 * core/eval/mcq. Nothing here touches a model.
 *
 * Ownership: every string in an mp_mc_doc / mp_mc_request is malloc'ed and
 * owned by it; mp_mc_set_free / mp_mc_request_free release them (NULL ok).
 */
#ifndef MP_EVAL_TASKS_H
#define MP_EVAL_TASKS_H

#include <stddef.h>

#include "core/util/error.h"

#define MP_MC_MAX_CHOICES 8

typedef enum mp_mc_task {
    MP_TASK_MMLU = 0,
    MP_TASK_ARC_EASY,
    MP_TASK_ARC_CHALLENGE,
    MP_TASK_WINOGRANDE,
    MP_TASK_PIQA,
    MP_TASK_SIQA,
    MP_TASK_OPENBOOKQA,
    MP_TASK_HELLASWAG,
    MP_TASK_COMMONSENSEQA,
    MP_TASK_COUNT
} mp_mc_task;

typedef struct mp_mc_task_info {
    const char *name;     /* CLI / JSON name, e.g. "arc_easy" */
    const char *harness;  /* lm-evaluation-harness task name */
    const char *file;     /* data file below the data dir ("" for MMLU) */
    int has_norm;         /* the harness reports acc_norm too */
    const char *train;    /* the train split below the data dir (few-shot pool), NULL = not staged */
    const char *train_labels; /* its labels file (SIQA), NULL when the labels are in the records */
    int fewshot_extra;    /* the harness draws k+1 shots and drops the item: its YAML has no test_split, so
                             fewshot_split (None) == test_split (None) in lm-eval v0.4.9.2 get_context */
    const char *eval_split; /* the harness split scored ("test", "validation") */
} mp_mc_task_info;

const mp_mc_task_info *mp_mc_task_get(mp_mc_task t);
/* @return the task for a name, or -1. */
int mp_mc_task_find(const char *name);

typedef struct mp_mc_doc {
    char *id;                              /* record id ("" when the file has none) */
    char *query;                           /* question / stem / goal / context line / sentence */
    char *context;                         /* SIQA's context; NULL elsewhere */
    char *choices[MP_MC_MAX_CHOICES];      /* answer texts (WinoGrande: option1, option2) */
    int n_choices;
    int gold;                              /* 0-based index of the right choice */
} mp_mc_doc;

typedef struct mp_mc_set {
    mp_mc_doc *docs;
    size_t n;
} mp_mc_set;

/* Load a task's split from data_dir (the shared/data folder).
 * MMLU: subject names the subject, split is "test" or "dev". Other tasks:
 * split "train" reads the staged train split (MP_EUNSUPPORTED when the task
 * has none staged), anything else (NULL) the evaluation split. @return 0, MP_EIO (missing / unreadable file, naming it) or
 * MP_EINPUT ("<file>:<line>: <problem>"). */
int mp_mc_load(mp_mc_task task, const char *data_dir, const char *subject, const char *split, mp_mc_set *out,
               mp_error *err);
void mp_mc_set_free(mp_mc_set *s);

/* One MMLU subject row of subjects.tsv. */
typedef struct mp_mmlu_subject {
    char *name;          /* "abstract_algebra" */
    char *subcategory;   /* "math" */
    char *category;      /* one of the paper's 14 MMLU-Pro style categories (PAPER.md) */
    char *supercategory; /* STEM / humanities / social sciences / other */
    size_t n_test;       /* test questions (subjects.tsv's n_test column; 0 when absent) */
} mp_mmlu_subject;

/* Read data_dir/mmlu/subjects.tsv (57 rows, file order).
 * @return 0, MP_EIO or MP_EINPUT. *out is malloc'ed; free with mp_mmlu_subjects_free. */
int mp_mmlu_subjects_load(const char *data_dir, mp_mmlu_subject **out, size_t *n, mp_error *err);
void mp_mmlu_subjects_free(mp_mmlu_subject *s, size_t n);
/* The paper's category for a subcategory: geography, politics and culture
 * fold into "other"; every other subcategory is its own category. */
const char *mp_mmlu_category(const char *subcategory);

typedef struct mp_mc_request {
    int n_choices, gold;
    int n_ctx;                          /* 1 (shared context) or n_choices (WinoGrande) */
    char *ctx[MP_MC_MAX_CHOICES];       /* context per choice (only [0] when shared) */
    char *cont[MP_MC_MAX_CHOICES];      /* continuation per choice, target delimiter included */
    size_t norm_len[MP_MC_MAX_CHOICES]; /* acc_norm divisor: characters (code points) of the choice text */
    size_t prefix_len;                  /* bytes at the start of every ctx that are the same for all the
                                           task's items (description + few-shot block); reusable */
} mp_mc_request;

/* Build the harness prompt of doc. subject: MMLU subject ("abstract_algebra");
 * shots/n_shots: few-shot docs, formatted as context + " " + gold continuation
 * and joined with "\n\n" before the item (MMLU: after the description).
 * @return 0, MP_EINPUT (doc inconsistent with the task) or MP_ENOMEM. */
int mp_mc_format(mp_mc_task task, const mp_mc_doc *doc, const char *subject, const mp_mc_doc *shots,
                 size_t n_shots, mp_mc_request *out, mp_error *err);
void mp_mc_request_free(mp_mc_request *r);

/* lm-eval's HellaSwag preprocess(): strip, " [title]" -> ". ", delete every
 * "[...]", then replace "  " by " " once (left to right). Returns a malloc'ed
 * string or NULL on allocation failure. */
char *mp_hellaswag_preprocess(const char *text);

/* Python's str.isspace() set (what str.strip() / rstrip() remove): U+0009..000D,
 * U+001C..001F, U+0020, U+0085, U+00A0, U+1680, U+2000..200A, U+2028, U+2029,
 * U+202F, U+205F, U+3000. mp_py_space_at: bytes of the UTF-8 whitespace code
 * point starting at s[0] (n bytes available), 0 when none;
 * mp_py_space_before: the same for the code point ending at s[n-1]. */
size_t mp_py_space_at(const char *s, size_t n);
size_t mp_py_space_before(const char *s, size_t n);
/* Python's s.strip() on the n bytes at s: *off / *len are the kept range. */
void mp_py_strip(const char *s, size_t n, size_t *off, size_t *len);

/* HellaSwag's ctx_b.capitalize() on the staged text form, where the ctx_a /
 * ctx_b boundary is lost: when the context (after "label: ") ends in a
 * fragment after the last sentence end (". ", "! ", "? ") that starts with a
 * lower-case letter and does not end a sentence (ActivityNet items: "... on a
 * roof. he"), that fragment is capitalised like Python's str.capitalize()
 * (first letter upper, the rest lower). In place. */
void mp_hellaswag_capitalize_tail(char *query);

/* Code points in a UTF-8 string (bytes that are not continuation bytes). */
size_t mp_utf8_chars(const char *s);

#endif
