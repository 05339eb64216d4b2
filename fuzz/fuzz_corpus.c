/* fuzz/fuzz_corpus.c — libFuzzer target: core/text/corpus.c readers on arbitrary
 * files. The first input byte chooses the format and options, the rest is the
 * file content:
 *   bits 0-2  0 .jsonl   1 .csv   2 .txt   3 .txt whole-file
 *             4 .jsonl.zst, 5 .csv.zst (the content is zstd-compressed here,
 *               so the readers behind the decompressor are reached)
 *             6 .txt.zst with the content as raw (usually corrupt) zstd bytes
 *             7 a directory holding the content as x.jsonl, sub/y.csv, z.txt
 *   bit 3     strict
 *   bits 4-5  text/label field set (plain, dotted paths, MMLU columns, none)
 * Files go to one mkdtemp directory created on the first call.
 * run:   fuzz/run.sh 60   (or build by hand with the clang line there) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#include "core/text/corpus.h"

static char dir[256];

static const char *const files[] = {"f.jsonl", "f.csv", "f.txt", "f.jsonl.zst", "f.csv.zst", "f.txt.zst",
                                    "tree/x.jsonl", "tree/sub/y.csv", "tree/z.txt", "tree/sub", "tree"};

static void cleanup(void) {
    char p[512];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        remove(p);
    }
    remove(dir);
}

static int put(const char *name, const void *data, size_t size) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = size ? fwrite(data, 1, size, f) : 0;
    return fclose(f) == 0 && w == size ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/fuzz_corpus_XXXXXX");
        if (!mkdtemp(dir)) abort();
        char p[512];
        snprintf(p, sizeof p, "%s/tree", dir);
        mkdir(p, 0700);
        snprintf(p, sizeof p, "%s/tree/sub", dir);
        mkdir(p, 0700);
        atexit(cleanup);
    }
    if (size == 0) return 0;
    unsigned sel = data[0];
    data++;
    size--;

    static const char *names[8] = {"f.jsonl", "f.csv", "f.txt", "f.txt", "f.jsonl.zst", "f.csv.zst", "f.txt.zst", "tree"};
    int kind = sel & 7;
    void *z = NULL;
    const void *content = data;
    size_t clen = size;
    if (kind == 4 || kind == 5) {
        size_t bound = ZSTD_compressBound(size);
        z = malloc(bound ? bound : 1);
        if (!z) return 0;
        clen = ZSTD_compress(z, bound, data, size, 1);
        if (ZSTD_isError(clen)) abort();
        content = z;
    }
    int ok;
    if (kind == 7)
        ok = put("tree/x.jsonl", data, size) == 0 && put("tree/sub/y.csv", data, size) == 0 &&
             put("tree/z.txt", data, size) == 0;
    else
        ok = put(names[kind], content, clen) == 0;
    free(z);
    if (!ok) abort();

    mp_corpus_opts o = {0};
    o.strict = (sel >> 3) & 1;
    o.whole_file = kind == 3;
    switch ((sel >> 4) & 3) {
    case 0:
        o.label_fields[0] = "label";
        o.label_fields[1] = "score";
        o.n_label_fields = 2;
        break;
    case 1:
        o.text_field = "prompt.text";
        o.label_fields[0] = "prompt.toxicity";
        o.label_fields[1] = "a.b.c";
        o.n_label_fields = 2;
        break;
    case 2:
        o.text_field = "question";
        o.label_fields[0] = "answer";
        o.n_label_fields = 1;
        break;
    default:
        break;
    }
    static const char *dl[4] = {"ext", "parent", "stem", NULL};
    o.dir_label = dl[(sel >> 6) & 3];

    char spec[512];
    snprintf(spec, sizeof spec, "%s/%s", dir, names[kind]);
    mp_corpus *c = NULL;
    mp_error err;
    if (mp_corpus_open(spec, &o, &c, &err) != 0) return 0;
    mp_doc d;
    uint64_t expect = 0;
    unsigned sum = 0;
    while (mp_corpus_next(c, &d, &err) == 1) {
        if (d.index != expect++) abort();
        for (size_t i = 0; i < d.len; i++) sum += (unsigned char)d.text[i];
        for (int k = 0; k < d.n_labels; k++)
            if (d.label_values[k]) sum += (unsigned)strlen(d.label_values[k]) + (unsigned)strlen(d.label_names[k]);
    }
    (void)mp_corpus_skipped(c);
    mp_corpus_close(c);
    return (int)(sum & 0);
}
