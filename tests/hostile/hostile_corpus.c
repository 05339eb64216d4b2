/* tests/hostile/hostile_corpus.c — replay one corpus through the corpus reader
 * the way collect reads it (mp_corpus_open / mp_corpus_next to the end), so
 * that hostile corpus files can be checked without a model: prints
 * "documents N bytes B" and exits 0, or prints the one-line error as the CLI
 * does ("monet-probe: <message>") and exits with mp_exit_code.
 * usage: hostile_corpus SPEC [LABEL_FIELD...] */
#include <stdio.h>
#include <string.h>

#include "core/text/corpus.h"
#include "core/util/error.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: hostile_corpus SPEC [LABEL_FIELD...]\n");
        return 2;
    }
    mp_corpus_opts o;
    memset(&o, 0, sizeof o);
    o.strict = 1;
    for (int i = 2; i < argc && o.n_label_fields < MP_CORPUS_MAX_LABELS; i++) o.label_fields[o.n_label_fields++] = argv[i];
    mp_error err;
    mp_error_clear(&err);
    struct mp_corpus *c = NULL;
    int rc = mp_corpus_open(argv[1], &o, &c, &err);
    unsigned long long docs = 0, bytes = 0;
    mp_doc d;
    while (rc == 0) {
        int got = mp_corpus_next(c, &d, &err);
        if (got < 0) rc = got;
        if (got <= 0) break;
        docs++;
        bytes += d.len;
    }
    if (c) mp_corpus_close(c);
    if (rc < 0) {
        fprintf(stderr, "monet-probe: %s\n", err.msg);
        return mp_exit_code(rc);
    }
    printf("documents %llu bytes %llu\n", docs, bytes);
    return 0;
}
