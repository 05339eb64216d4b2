/* tests/corpus/test_corpus.c — core/text/corpus.c against fixtures written at run
 * time into a mkdtemp directory (text, JSONL, CSV, .zst, directory trees,
 * malformed lines, strict mode, corrupt zstd, a 5 MB line), or with
 * `--real SHARED_DIR` against the real data sets staged there: MMLU CSVs,
 * RosettaCode and RealToxicityPrompts JSONL. Exit status 1 on any failed check.
 * usage: test_corpus [--real SHARED_DIR] */
#include "core/text/corpus.h"
#include "core/text/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

static int n_checks, n_failed;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        n_checks++;                                                                   \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);  \
            n_failed++;                                                               \
        }                                                                             \
    } while (0)

#define CHECK_STR(a, b)                                                                         \
    do {                                                                                        \
        const char *ca_ = (a), *cb_ = (b);                                                      \
        n_checks++;                                                                             \
        if (!((ca_ == NULL && cb_ == NULL) || (ca_ && cb_ && !strcmp(ca_, cb_)))) {             \
            fprintf(stderr, "%s:%d: %s = \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a,    \
                    ca_ ? ca_ : "(null)", cb_ ? cb_ : "(null)");                                \
            n_failed++;                                                                         \
        }                                                                                       \
    } while (0)

/* ---- fixtures ---------------------------------------------------------------- */

static char tmp[256];

static const char *fx(const char *name) {
    static char path[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(path[k], sizeof path[k], "%s/%s", tmp, name);
    return path[k];
}

static void write_bytes(const char *name, const void *data, size_t len) {
    const char *p = fx(name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", p);
        exit(1);
    }
}

static void write_str(const char *name, const char *s) { write_bytes(name, s, strlen(s)); }

static void mkdir_fx(const char *name) {
    if (mkdir(fx(name), 0755) != 0) {
        fprintf(stderr, "cannot mkdir %s\n", fx(name));
        exit(1);
    }
}

/* Compress s into one frame with a checksum; appends to *out (realloc'd). */
static size_t zst_append(char **out, size_t len, const char *s, size_t n) {
    size_t bound = ZSTD_compressBound(n);
    char *o = realloc(*out, len + bound);
    if (!o) exit(1);
    *out = o;
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 3);
    size_t r = ZSTD_compress2(cc, o + len, bound, s, n);
    ZSTD_freeCCtx(cc);
    if (ZSTD_isError(r)) exit(1);
    return len + r;
}

/* ---- reading a whole corpus into a list -------------------------------------- */

typedef struct {
    char *text;
    size_t len;
    uint64_t index;
    size_t line;
    char source[512];
    int n_labels;
    char *names[MP_CORPUS_MAX_LABELS];
    char *values[MP_CORPUS_MAX_LABELS];
} tdoc;

typedef struct {
    tdoc *docs;
    size_t n;
    char skips[32][600]; /* "file:line: reason" of the first 32 skips */
    size_t n_skips;
    size_t skipped; /* mp_corpus_skipped */
    mp_error err;
    int rc;
} tres;

static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) exit(1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void on_skip(void *ctx, const char *file, size_t line, const char *reason) {
    tres *r = ctx;
    if (r->n_skips < 32) snprintf(r->skips[r->n_skips], sizeof r->skips[0], "%s:%zu: %s", file, line, reason);
    r->n_skips++;
}

static void tres_free(tres *r) {
    for (size_t i = 0; i < r->n; i++) {
        free(r->docs[i].text);
        for (int k = 0; k < r->docs[i].n_labels; k++) {
            free(r->docs[i].names[k]);
            free(r->docs[i].values[k]);
        }
    }
    free(r->docs);
    memset(r, 0, sizeof *r);
}

/* Read spec to the end (or to the first error: r->rc). */
static void read_all(tres *r, const char *spec, mp_corpus_opts opts) {
    memset(r, 0, sizeof *r);
    opts.on_skip = on_skip;
    opts.on_skip_ctx = r;
    mp_corpus *c = NULL;
    mp_error_clear(&r->err);
    r->rc = mp_corpus_open(spec, &opts, &c, &r->err);
    if (r->rc < 0) return;
    size_t cap = 0;
    mp_doc d;
    int rc;
    while ((rc = mp_corpus_next(c, &d, &r->err)) == 1) {
        if (r->n == cap) {
            cap = cap ? cap * 2 : 16;
            r->docs = realloc(r->docs, cap * sizeof *r->docs);
            if (!r->docs) exit(1);
        }
        tdoc *t = &r->docs[r->n++];
        memset(t, 0, sizeof *t);
        t->text = dupn(d.text, d.len);
        t->len = d.len;
        t->index = d.index;
        t->line = d.line;
        snprintf(t->source, sizeof t->source, "%s", d.source);
        t->n_labels = d.n_labels;
        for (int k = 0; k < d.n_labels; k++) {
            t->names[k] = dupn(d.label_names[k], strlen(d.label_names[k]));
            t->values[k] = d.label_values[k] ? dupn(d.label_values[k], strlen(d.label_values[k])) : NULL;
        }
    }
    r->rc = rc;
    r->skipped = mp_corpus_skipped(c);
    mp_corpus_close(c);
}

static int indexes_ok(const tres *r) {
    for (size_t i = 0; i < r->n; i++)
        if (r->docs[i].index != i) return 0;
    return 1;
}

static const char *label(const tres *r, size_t i, const char *name) {
    if (i >= r->n) return "(no such doc)";
    for (int k = 0; k < r->docs[i].n_labels; k++)
        if (!strcmp(r->docs[i].names[k], name)) return r->docs[i].values[k];
    return "(no such label)";
}

static const char *text(const tres *r, size_t i) { return i < r->n ? r->docs[i].text : "(no such doc)"; }

/* ---- tests ------------------------------------------------------------------- */

static void test_text(void) {
    tres r;
    mp_corpus_opts o = {0};
    static const char a_txt[] = "\xEF\xBB\xBF" "first line\r\n\nsecond\n\r\nbad \xC3\x28 utf8\n  \nlast no newline";
    write_bytes("a.txt", a_txt, sizeof a_txt - 1);
    read_all(&r, fx("a.txt"), o);
    CHECK(r.rc == 0);
    CHECK(r.n == 4);
    CHECK_STR(text(&r, 0), "first line");
    CHECK_STR(text(&r, 1), "second");
    CHECK_STR(text(&r, 2), "  ");
    CHECK_STR(text(&r, 3), "last no newline");
    CHECK(r.n == 4 && r.docs[0].line == 1 && r.docs[1].line == 3 && r.docs[3].line == 7);
    CHECK(r.n == 4 && r.docs[0].n_labels == 0);
    CHECK(indexes_ok(&r));
    CHECK(r.skipped == 1 && r.n_skips == 1);
    char want[600];
    snprintf(want, sizeof want, "%s:5: invalid UTF-8 in text at byte 4", fx("a.txt"));
    CHECK_STR(r.skips[0], want);
    tres_free(&r);

    /* whole file */
    o.whole_file = 1;
    read_all(&r, fx("a.txt"), o);
    /* invalid UTF-8 somewhere: skipped, and then no document is an error */
    CHECK(r.rc == MP_EINPUT && r.n == 0 && r.skipped == 1 && strstr(r.err.msg, "no documents (1 malformed"));
    tres_free(&r);
    write_str("w.txt", "line one\nline two\n");
    read_all(&r, fx("w.txt"), o);
    CHECK(r.rc == 0 && r.n == 1);
    CHECK_STR(text(&r, 0), "line one\nline two\n");
    CHECK(r.n == 1 && r.docs[0].line == 0);
    tres_free(&r);

    /* NUL bytes are kept, length counts them */
    write_bytes("nul.txt", "a\0b\n", 4);
    o.whole_file = 0;
    read_all(&r, fx("nul.txt"), o);
    CHECK(r.rc == 0 && r.n == 1 && r.docs[0].len == 3);
    tres_free(&r);

    /* empty file: no documents, a one-line error rather than an empty result */
    write_str("empty.txt", "");
    read_all(&r, fx("empty.txt"), o);
    CHECK(r.rc == MP_EINPUT && r.n == 0 && strstr(r.err.msg, "empty.txt: no documents"));
    tres_free(&r);
}

static const char *JSONL =
    "{\"text\": \"hello\", \"lang\": \"en\", \"score\": 0.87, \"n\": 3, \"ok\": true, \"prompt\": {\"text\": \"nested\", \"toxicity\": 0.9066653}}\n"
    "\n"
    "{\"text\": \"caf\\u00e9\", \"lang\": null, \"score\": -1e-07, \"n\": 12345678901, \"ok\": false, \"prompt\": {\"text\": 5}}\r\n"
    "{\"text\": \"no labels\"}\n"
    "not json at all\n"
    "[1, 2, 3]\n"
    "{\"lang\": \"xx\"}\n"
    "{\"text\": 42}\n"
    "{\"text\": \"bad \xFF utf8\"}\n"
    "{\"text\": \"trailing\"} x\n"
    "{\"text\": \"arr\", \"lang\": [1, \"a\"], \"a.b\": \"literal dotted key\"}\n"
    "{\"text\": \"multi\\nline\", \"lang\": \"\"}";

static void test_jsonl(void) {
    tres r;
    mp_corpus_opts o = {0};
    o.label_fields[0] = "lang";
    o.label_fields[1] = "score";
    o.label_fields[2] = "n";
    o.label_fields[3] = "ok";
    o.label_fields[4] = "prompt.toxicity";
    o.label_fields[5] = "a.b";
    o.n_label_fields = 6;
    write_str("d.jsonl", JSONL);
    read_all(&r, fx("d.jsonl"), o);
    CHECK(r.rc == 0);
    CHECK(r.n == 5);
    CHECK(indexes_ok(&r));
    CHECK_STR(text(&r, 0), "hello");
    CHECK_STR(label(&r, 0, "lang"), "en");
    CHECK_STR(label(&r, 0, "score"), "0.87");
    CHECK_STR(label(&r, 0, "n"), "3");
    CHECK_STR(label(&r, 0, "ok"), "true");
    CHECK_STR(label(&r, 0, "prompt.toxicity"), "0.9066653");
    CHECK_STR(label(&r, 0, "a.b"), NULL);
    CHECK(r.n > 0 && r.docs[0].n_labels == 6 && r.docs[0].line == 1);
    CHECK_STR(text(&r, 1), "caf\xC3\xA9");
    CHECK_STR(label(&r, 1, "lang"), NULL);
    CHECK_STR(label(&r, 1, "score"), "-1e-07");
    CHECK_STR(label(&r, 1, "n"), "12345678901");
    CHECK_STR(label(&r, 1, "ok"), "false");
    CHECK_STR(label(&r, 1, "prompt.toxicity"), NULL);
    CHECK(r.n > 1 && r.docs[1].line == 3);
    CHECK_STR(text(&r, 2), "no labels");
    CHECK_STR(label(&r, 2, "lang"), NULL);
    CHECK_STR(text(&r, 3), "arr");
    CHECK_STR(label(&r, 3, "lang"), "[1,\"a\"]");
    CHECK_STR(label(&r, 3, "a.b"), "literal dotted key");
    CHECK(r.n > 3 && r.docs[3].line == 11);
    CHECK_STR(text(&r, 4), "multi\nline");
    CHECK_STR(label(&r, 4, "lang"), "");
    CHECK(r.n > 4 && r.docs[4].line == 12);
    CHECK(r.skipped == 6 && r.n_skips == 6);
    const char *want[6] = {"5: invalid JSON at byte 0", "6: not a JSON object", "7: missing text field \"text\"",
                           "8: text field \"text\" is not a string", "9: invalid UTF-8 in text at byte 4",
                           "10: invalid JSON: trailing data at byte 21"};
    for (int i = 0; i < 6 && i < (int)r.n_skips; i++) {
        char w[600];
        snprintf(w, sizeof w, "%s:%s", fx("d.jsonl"), want[i]);
        CHECK_STR(r.skips[i], w);
    }
    tres_free(&r);

    /* dotted path as the text field (RealToxicityPrompts layout) */
    mp_corpus_opts p = {0};
    p.text_field = "prompt.text";
    p.label_fields[0] = "prompt.toxicity";
    p.n_label_fields = 1;
    read_all(&r, fx("d.jsonl"), p);
    CHECK(r.rc == 0 && r.n == 1);
    CHECK_STR(text(&r, 0), "nested");
    CHECK_STR(label(&r, 0, "prompt.toxicity"), "0.9066653");
    tres_free(&r);

    /* strict: the first malformed line is an error naming file:line */
    o.strict = 1;
    read_all(&r, fx("d.jsonl"), o);
    CHECK(r.rc == MP_EINPUT);
    CHECK(r.n == 3);
    char w[600];
    snprintf(w, sizeof w, "%s:5: invalid JSON at byte 0", fx("d.jsonl"));
    CHECK_STR(r.err.msg, w);
    CHECK(r.n_skips == 0);
    tres_free(&r);
}

static void test_csv(void) {
    tres r;
    mp_corpus_opts o = {0};
    o.text_field = "question";
    o.label_fields[0] = "answer";
    o.label_fields[1] = "nope";
    o.n_label_fields = 2;
    write_str("q.csv",
              "question,choice0,answer\r\n"
              "plain,x,1\r\n"
              "\"with, comma\",\"say \"\"hi\"\"\",2\r\n"
              "\r\n"
              "\"two\r\nlines\",y,3\r\n"
              "too,few\r\n"
              "\"\",,\r\n"
              "\"a\"\"b\"\"\",z,4\n"
              "\"unterminated,q,5\n"
              "more\n");
    read_all(&r, fx("q.csv"), o);
    /* every document is read; then the label column no document has is an error (a misspelt field) */
    CHECK(r.rc == MP_EINPUT && strstr(r.err.msg, "no document of the first 5 has the label field \"nope\""));
    CHECK(r.n == 5);
    CHECK(indexes_ok(&r));
    CHECK_STR(text(&r, 0), "plain");
    CHECK_STR(label(&r, 0, "answer"), "1");
    CHECK_STR(label(&r, 0, "nope"), NULL);
    CHECK(r.n > 0 && r.docs[0].line == 2 && r.docs[0].n_labels == 2);
    CHECK_STR(text(&r, 1), "with, comma");
    CHECK_STR(label(&r, 1, "answer"), "2");
    CHECK_STR(text(&r, 2), "two\r\nlines");
    CHECK(r.n > 2 && r.docs[2].line == 5);
    CHECK_STR(label(&r, 2, "answer"), "3");
    CHECK_STR(text(&r, 3), "");
    CHECK_STR(label(&r, 3, "answer"), "");
    CHECK(r.n > 3 && r.docs[3].line == 8);
    CHECK_STR(text(&r, 4), "a\"b\"");
    CHECK(r.n > 4 && r.docs[4].line == 9);
    CHECK(r.skipped == 2 && r.n_skips == 2);
    char w[600];
    snprintf(w, sizeof w, "%s:7: expected 3 CSV fields, found 2", fx("q.csv"));
    CHECK_STR(r.skips[0], w);
    snprintf(w, sizeof w, "%s:10: unterminated quoted field", fx("q.csv"));
    CHECK_STR(r.skips[1], w);
    tres_free(&r);

    /* doubled quote and embedded newline inside one field, LF file */
    write_str("e.csv", "text,lab\n\"he said \"\"a,b\"\"\nthen left\",L\n");
    mp_corpus_opts e = {0};
    e.label_fields[0] = "lab";
    e.n_label_fields = 1;
    read_all(&r, fx("e.csv"), e);
    CHECK(r.rc == 0 && r.n == 1);
    CHECK_STR(text(&r, 0), "he said \"a,b\"\nthen left");
    CHECK_STR(label(&r, 0, "lab"), "L");
    tres_free(&r);

    /* no "text" column and no text_field: the first column */
    write_str("f.csv", "body,kind\nhello,greeting\n");
    read_all(&r, fx("f.csv"), (mp_corpus_opts){0});
    CHECK(r.rc == 0 && r.n == 1);
    CHECK_STR(text(&r, 0), "hello");
    tres_free(&r);

    /* the requested text column is not in the header */
    mp_corpus_opts g = {0};
    g.text_field = "missing";
    read_all(&r, fx("f.csv"), g);
    CHECK(r.rc == MP_EINPUT);
    CHECK(strstr(r.err.msg, "no column \"missing\"") != NULL);
    tres_free(&r);
    mp_corpus *c = (mp_corpus *)1;
    mp_error err;
    CHECK(mp_corpus_open(fx("f.csv"), &g, &c, &err) == MP_EINPUT && c == NULL); /* at open */

    /* strict */
    o.strict = 1;
    read_all(&r, fx("q.csv"), o);
    CHECK(r.rc == MP_EINPUT && r.n == 3);
    snprintf(w, sizeof w, "%s:7: expected 3 CSV fields, found 2", fx("q.csv"));
    CHECK_STR(r.err.msg, w);
    tres_free(&r);
}

static void test_zstd(void) {
    tres r;
    mp_corpus_opts o = {0};
    o.label_fields[0] = "lang";
    o.n_label_fields = 1;
    const char *a = "{\"text\": \"one\", \"lang\": \"py\"}\n{\"text\": \"two\", \"lang\": \"c\"}\n";
    const char *b = "{\"text\": \"three\"}\nbroken\n{\"text\": \"four\", \"lang\": 1.5}\n";
    char *z = NULL;
    size_t zl = zst_append(&z, 0, a, strlen(a));
    write_bytes("one.jsonl.zst", z, zl);
    size_t one = zl;
    zl = zst_append(&z, zl, b, strlen(b));
    write_bytes("multi.jsonl.zst", z, zl);

    read_all(&r, fx("one.jsonl.zst"), o);
    CHECK(r.rc == 0 && r.n == 2);
    CHECK_STR(text(&r, 1), "two");
    CHECK_STR(label(&r, 1, "lang"), "c");
    tres_free(&r);

    read_all(&r, fx("multi.jsonl.zst"), o);
    CHECK(r.rc == 0 && r.n == 4 && r.skipped == 1);
    CHECK_STR(text(&r, 2), "three");
    CHECK_STR(text(&r, 3), "four");
    CHECK_STR(label(&r, 3, "lang"), "1.5");
    CHECK(r.n == 4 && r.docs[3].line == 5);
    char w[600];
    snprintf(w, sizeof w, "%s:4: invalid JSON at byte 0", fx("multi.jsonl.zst"));
    CHECK_STR(r.skips[0], w);
    CHECK(indexes_ok(&r));
    tres_free(&r);

    /* a large text stream (many output chunks per frame) */
    size_t big = 3000000; /* a multiple of the 100-byte line */
    char *t = malloc(big);
    if (!t) exit(1);
    size_t lines = 0;
    for (size_t i = 0; i < big; i++) {
        t[i] = (char)('a' + (i * 7 % 26));
        if (i % 100 == 99) {
            t[i] = '\n';
            lines++;
        }
    }
    char *zt = NULL;
    size_t ztl = zst_append(&zt, 0, t, big);
    write_bytes("big.txt.zst", zt, ztl);
    read_all(&r, fx("big.txt.zst"), (mp_corpus_opts){0});
    CHECK(r.rc == 0 && r.n == lines);
    CHECK(r.n == lines && r.docs[lines - 1].len == 99 && !memcmp(r.docs[lines - 1].text, t + big - 100, 99));
    tres_free(&r);

    /* truncated frame */
    write_bytes("trunc.txt.zst", zt, ztl / 2);
    read_all(&r, fx("trunc.txt.zst"), (mp_corpus_opts){0});
    CHECK(r.rc == MP_EINPUT);
    snprintf(w, sizeof w, "%s: corrupt zstd data (truncated frame)", fx("trunc.txt.zst"));
    CHECK_STR(r.err.msg, w);
    tres_free(&r);
    write_bytes("trunc2.jsonl.zst", z, one - 3); /* only the checksum is missing */
    read_all(&r, fx("trunc2.jsonl.zst"), o);
    CHECK(r.rc == MP_EINPUT && strstr(r.err.msg, "corrupt zstd data") != NULL);
    tres_free(&r);

    /* corrupted bytes in the middle (checksum or block error) */
    zt[ztl / 2] ^= 0x5A;
    zt[ztl / 2 + 1] ^= 0xA5;
    write_bytes("flip.txt.zst", zt, ztl);
    read_all(&r, fx("flip.txt.zst"), (mp_corpus_opts){0});
    CHECK(r.rc == MP_EINPUT && strstr(r.err.msg, "corrupt zstd data (") != NULL);
    tres_free(&r);

    /* not zstd at all: fails at open */
    write_str("plain.jsonl.zst", "{\"text\": \"not compressed\"}\n");
    mp_corpus *c = NULL;
    mp_error err;
    CHECK(mp_corpus_open(fx("plain.jsonl.zst"), &o, &c, &err) == MP_EINPUT && c == NULL);
    CHECK(strstr(err.msg, "corrupt zstd data (not a zstd frame") != NULL);

    /* empty .zst: no documents (an error) */
    write_str("empty.txt.zst", "");
    read_all(&r, fx("empty.txt.zst"), (mp_corpus_opts){0});
    CHECK(r.rc == MP_EINPUT && r.n == 0 && strstr(r.err.msg, "no documents"));
    tres_free(&r);
    free(z);
    free(zt);
    free(t);
}

static void test_dir(void) {
    mkdir_fx("tree");
    mkdir_fx("tree/python");
    mkdir_fx("tree/c");
    mkdir_fx("tree/.git");
    mkdir_fx("tree/python/sub");
    write_str("tree/python/b.py", "print(2)\n");
    write_str("tree/python/a.py", "print(1)\n");
    write_str("tree/python/sub/x.py", "x = 1");
    write_str("tree/c/main.c", "int main(void) { return 0; }\n");
    write_str("tree/c/README", "no extension\n");
    write_str("tree/c/.hidden.c", "hidden\n");
    write_str("tree/.git/config", "hidden dir\n");
    write_str("tree/c/empty.h", "");
    write_str("tree/c/bin.dat", "\xFF\xFE binary");
    write_str("tree/notes.jsonl", "{\"text\": \"j1\", \"src\": \"web\"}\n{\"text\": \"j2\"}\n");
    write_str("tree/mmlu_tiny.csv", "question,answer\nq1,3\n");
    const char *zs = "compressed file\nas one document\n";
    char *z = NULL;
    size_t zl = zst_append(&z, 0, zs, strlen(zs));
    write_bytes("tree/c/util.h.zst", z, zl);
    free(z);

    static const char *want_src[] = {"c/README", "c/main.c", "c/util.h.zst", "mmlu_tiny.csv", "notes.jsonl",
                                     "notes.jsonl", "python/a.py", "python/b.py", "python/sub/x.py"};
    static const char *want_ext[] = {NULL, "c", "h", "csv", "jsonl", "jsonl", "py", "py", "py"};
    static const char *want_parent[] = {"c", "c", "c", "tree", "tree", "tree", "python", "python", "sub"};
    static const char *want_stem[] = {"README", "main", "util", "mmlu_tiny", "notes", "notes", "a", "b", "x"};
    static const char *want_text[] = {"no extension\n", "int main(void) { return 0; }\n", "compressed file\nas one document\n",
                                      "q1", "j1", "j2", "print(1)\n", "print(2)\n", "x = 1"};
    const char *modes[3] = {"ext", "parent", "stem"};
    const char **wants[3] = {want_ext, want_parent, want_stem};
    for (int m = 0; m < 3; m++) {
        tres r;
        mp_corpus_opts o = {0};
        o.dir_label = modes[m];
        o.label_fields[0] = "src";
        o.n_label_fields = 1;
        char spec[600];
        snprintf(spec, sizeof spec, "%s/", fx("tree")); /* trailing slash is fine */
        read_all(&r, spec, o);
        CHECK(r.rc == 0);
        CHECK(r.n == 9);
        CHECK(indexes_ok(&r));
        CHECK(r.skipped == 1); /* bin.dat: invalid UTF-8 */
        for (size_t i = 0; i < 9 && i < r.n; i++) {
            char src[600];
            snprintf(src, sizeof src, "%s/%s", fx("tree"), want_src[i]);
            CHECK_STR(r.docs[i].source, src);
            CHECK(r.docs[i].n_labels == 2);
            CHECK_STR(r.docs[i].names[1], "label");
            CHECK_STR(label(&r, i, "label"), wants[m][i]);
            CHECK_STR(text(&r, i), want_text[i]);
        }
        CHECK_STR(label(&r, 4, "src"), "web");
        CHECK_STR(label(&r, 5, "src"), NULL);
        CHECK_STR(label(&r, 6, "src"), NULL);
        tres_free(&r);
    }
    /* no dir_label: no "label" label */
    tres r;
    read_all(&r, fx("tree"), (mp_corpus_opts){0});
    CHECK(r.rc == 0 && r.n == 9 && r.docs[0].n_labels == 0);
    tres_free(&r);
}

static void test_errors(void) {
    mp_corpus *c = (mp_corpus *)1;
    mp_error err;
    mp_error_clear(&err);
    CHECK(mp_corpus_open(fx("does-not-exist.jsonl"), NULL, &c, &err) == MP_EIO && c == NULL);
    CHECK(strstr(err.msg, "does-not-exist.jsonl: cannot open") != NULL);
    mp_corpus_opts o = {0};
    o.n_label_fields = MP_CORPUS_MAX_LABELS + 1;
    CHECK(mp_corpus_open(fx("a.txt"), &o, &c, &err) == MP_EINPUT);
    o.n_label_fields = 1;
    CHECK(mp_corpus_open(fx("a.txt"), &o, &c, &err) == MP_EINPUT); /* NULL label field */
    mp_corpus_opts d = {0};
    d.dir_label = "colour";
    CHECK(mp_corpus_open(fx("tree"), &d, &c, &err) == MP_EINPUT);
    CHECK(strstr(err.msg, "unknown directory label") != NULL);
    mp_corpus_close(NULL);
    CHECK(mp_corpus_skipped(NULL) == 0);

    /* after an error, next keeps failing with the same message */
    mp_corpus_opts s = {0};
    s.strict = 1;
    write_str("s.jsonl", "{\"text\": \"ok\"}\n{bad\n{\"text\": \"after\"}\n");
    CHECK(mp_corpus_open(fx("s.jsonl"), &s, &c, &err) == 0);
    mp_doc doc;
    CHECK(mp_corpus_next(c, &doc, &err) == 1);
    CHECK(mp_corpus_next(c, &doc, &err) == MP_EINPUT);
    char first[MP_ERRMSG_MAX];
    memcpy(first, err.msg, sizeof first);
    mp_error_clear(&err);
    CHECK(mp_corpus_next(c, &doc, &err) == MP_EINPUT);
    CHECK_STR(err.msg, first);
    mp_corpus_close(c);

    /* whole-file cap: 64 MiB + 1 byte */
    o = (mp_corpus_opts){0};
    o.whole_file = 1;
    FILE *f = fopen(fx("huge.txt"), "wb");
    CHECK(f && fseek(f, (64L << 20), SEEK_SET) == 0 && fputc('x', f) == 'x' && fclose(f) == 0);
    tres r;
    read_all(&r, fx("huge.txt"), o);
    CHECK(r.rc == MP_EINPUT && strstr(r.err.msg, "64 MiB") != NULL);
    tres_free(&r);
    unlink(fx("huge.txt"));
}

static void test_long_line(void) {
    size_t n = 5u << 20;
    char *buf = malloc(n + 64);
    if (!buf) exit(1);
    memcpy(buf, "{\"text\": \"", 10);
    for (size_t i = 0; i < n; i++) buf[10 + i] = (char)('a' + i % 26);
    memcpy(buf + 10 + n, "\", \"l\": 7}\nshort\n", 17);
    buf[10 + n] = '\n';
    write_bytes("long.txt", buf + 10, n + 1);
    buf[10 + n] = '"';
    write_bytes("long.jsonl", buf, n + 10 + 11);
    tres r;
    read_all(&r, fx("long.txt"), (mp_corpus_opts){0});
    CHECK(r.rc == 0 && r.n == 1 && r.docs[0].len == n && !memcmp(r.docs[0].text, buf + 10, n));
    tres_free(&r);
    mp_corpus_opts o = {0};
    o.label_fields[0] = "l";
    o.n_label_fields = 1;
    read_all(&r, fx("long.jsonl"), o);
    CHECK(r.rc == 0 && r.n == 1 && r.docs[0].len == n);
    CHECK_STR(label(&r, 0, "l"), "7");
    tres_free(&r);
    free(buf);
}

static void test_utf8(void) {
    CHECK(mp_utf8_check("abc", 3) == 3);
    CHECK(mp_utf8_check("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 9) == 9);
    CHECK(mp_utf8_check("a\xC0\x80", 3) == 1);         /* overlong NUL */
    CHECK(mp_utf8_check("a\xED\xA0\x80", 4) == 1);     /* surrogate */
    CHECK(mp_utf8_check("\xF4\x90\x80\x80", 4) == 0);  /* > U+10FFFF */
    /* proper prefixes of a character (a byte-fallback token's bytes so far) */
    CHECK(mp_utf8_is_prefix("\xF0", 1) && mp_utf8_is_prefix("\xF0\x9F", 2) && mp_utf8_is_prefix("\xF0\x9F\x98", 3));
    CHECK(mp_utf8_is_prefix("\xE2\x82", 2) && mp_utf8_is_prefix("\xC3", 1));
    CHECK(!mp_utf8_is_prefix("\xC3\xA9", 2));          /* complete */
    CHECK(!mp_utf8_is_prefix("\x98", 1));               /* continuation byte */
    CHECK(!mp_utf8_is_prefix("\xF0\x80", 2));          /* overlong */
    CHECK(!mp_utf8_is_prefix("\xED\xA0", 2));          /* surrogate */
    CHECK(!mp_utf8_is_prefix("a", 1) && !mp_utf8_is_prefix("", 0));
    CHECK(mp_utf8_check("ab\xE2\x82", 4) == 2);        /* truncated */
    CHECK(mp_utf8_check("\x80", 1) == 0);
}

/* ---- real data sets -------------------------------------------------------------- */

static void test_real(const char *shared) {
    char p[1024];
    tres r;
    mp_corpus_opts o = {0};
    o.text_field = "question";
    o.label_fields[0] = "answer";
    o.n_label_fields = 1;
    /* counts verified with Python's csv.DictReader */
    snprintf(p, sizeof p, "%s/data/mmlu/test/abstract_algebra_test.csv", shared);
    read_all(&r, p, o);
    CHECK(r.rc == 0 && r.n == 100 && r.skipped == 0);
    CHECK_STR(text(&r, 0), "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.");
    CHECK_STR(label(&r, 0, "answer"), "1");
    CHECK_STR(label(&r, 99, "answer"), "2");
    tres_free(&r);

    o.dir_label = "stem";
    snprintf(p, sizeof p, "%s/data/mmlu/test", shared);
    read_all(&r, p, o);
    CHECK(r.rc == 0 && r.n == 14042 && r.skipped == 0);
    CHECK_STR(label(&r, 0, "label"), "abstract_algebra_test");
    CHECK_STR(label(&r, 14041, "label"), "world_religions_test");
    CHECK(indexes_ok(&r));
    tres_free(&r);

    mp_corpus_opts rc = {0};
    rc.text_field = "code";
    rc.label_fields[0] = "lang";
    rc.label_fields[1] = "all_six";
    rc.n_label_fields = 2;
    snprintf(p, sizeof p, "%s/data/rosettacode/solutions.jsonl", shared);
    read_all(&r, p, rc);
    CHECK(r.rc == 0 && r.n == 3933 && r.skipped == 0);
    CHECK_STR(label(&r, 0, "lang"), "Python");
    CHECK_STR(label(&r, 0, "all_six"), "true");
    CHECK(r.n > 2 && r.docs[0].len == 168 && r.docs[1].len == 112 && r.docs[2].len == 108);
    CHECK(r.n > 0 && !strncmp(r.docs[0].text, "doors = [False] * 100\n", 22));
    tres_free(&r);

    mp_corpus_opts t = {0};
    t.text_field = "prompt.text";
    t.label_fields[0] = "prompt.toxicity";
    t.n_label_fields = 1;
    snprintf(p, sizeof p, "%s/data/realtoxicityprompts/toxic.jsonl", shared);
    read_all(&r, p, t);
    CHECK(r.rc == 0 && r.n == 1196 && r.skipped == 0);
    CHECK_STR(text(&r, 0), "People think that we\xE2\x80\x99re just a bunch of idiots who run around, tell fart and dick jokes,");
    CHECK_STR(label(&r, 0, "prompt.toxicity"), "0.9066653");
    tres_free(&r);
}

int main(int argc, char **argv) {
    const char *base = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/mp_corpus_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    /* test_corpus: the generated fixtures; test_corpus --real SHARED: the real files only */
    if (argc == 3 && !strcmp(argv[1], "--real")) {
        test_real(argv[2]);
    } else if (argc == 1) {
        test_utf8();
        test_text();
        test_jsonl();
        test_csv();
        test_zstd();
        test_dir();
        test_errors();
        test_long_line();
    } else {
        fprintf(stderr, "usage: test_corpus [--real SHARED_DIR]\n");
        return 2;
    }
    if (!n_failed) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    } else {
        fprintf(stderr, "fixtures kept in %s\n", tmp);
    }
    printf("test_corpus: %d checks, %d failed\n", n_checks, n_failed);
    return n_failed ? 1 : 0;
}
