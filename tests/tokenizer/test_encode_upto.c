/* tests/tokenizer/test_encode_upto.c — mp_tokenizer_encode_upto (the budgeted
 * encoder collect uses for --max-tokens) gives exactly the first k ids of
 * mp_tokenizer_encode, and says when it cut, for texts read from files (one
 * document per line) and generated ones that stress the prefix cut: long runs
 * without spaces, runs of spaces, multi-byte characters at the cut, newlines.
 *   test_encode_upto TOKENIZER.model [TEXT_FILE...] */
#include "core/text/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0, checks = 0;

static void check_text_ks(const mp_tokenizer *tok, const char *text, size_t len, const char *what, int every_k) {
    mp_error err;
    mp_error_clear(&err);
    int32_t *all = NULL;
    size_t n = 0;
    if (mp_tokenizer_encode(tok, text, len, 1, &all, &n, &err) < 0) {
        printf("FAIL %s: encode: %s\n", what, err.msg);
        failures++;
        return;
    }
    size_t body = n - 1; /* BOS */
    int64_t ks[] = {0, 1, 2, 5, 17, 100, 1000, (int64_t)body - 1, (int64_t)body, (int64_t)body + 1, (int64_t)body / 2};
    size_t nk = every_k ? (body < 400 ? body + 2 : 400) : sizeof ks / sizeof *ks;
    for (size_t i = 0; i < nk; i++) {
        int64_t k = every_k ? (int64_t)i : ks[i];
        if (k < 0) continue;
        int32_t *ids = NULL;
        size_t m = 0;
        int cut = 0;
        checks++;
        if (mp_tokenizer_encode_upto(tok, text, len, 1, k, &ids, &m, &cut, &err) < 0) {
            printf("FAIL %s k=%lld: %s\n", what, (long long)k, err.msg);
            failures++;
            continue;
        }
        size_t want = (size_t)k < body ? (size_t)k : body;
        if (m != want + 1 || memcmp(ids, all, m * sizeof *ids) != 0 || cut != ((size_t)k < body)) {
            size_t d = 0;
            while (d < m && d < n && ids[d] == all[d]) d++;
            printf("FAIL %s (%zu bytes, %zu tokens) k=%lld: got %zu ids, want %zu; first difference at %zu; cut %d\n",
                   what, len, body, (long long)k, m - 1, want, d, cut);
            failures++;
        }
        free(ids);
    }
    free(all);
}

static void check_text(const mp_tokenizer *tok, const char *text, size_t len, const char *what) {
    check_text_ks(tok, text, len, what, 0);
}

/* Text made of the vocabulary's longest pieces, so that a token covers more
 * bytes than the first prefix guesses (8 per token) and the cut falls inside
 * the first k + margin tokens: every k is checked. with_spaces keeps the
 * pieces' word-start marks as spaces; without, the text has no word start. */
static void check_long_pieces(const mp_tokenizer *tok, char *buf, size_t cap, int with_spaces) {
    size_t len = 0;
    int n = mp_tokenizer_vocab_size(tok);
    for (int rep = 0; rep < 3; rep++)
        for (int id = n - 1; id >= 0; id--) {
            const char *p = mp_tokenizer_piece(tok, id);
            if (mp_tokenizer_piece_type(tok, id) != 1 || strlen(p) < 9 || len + strlen(p) + 1 >= cap) continue;
            if ((id * 7 + rep) % 3) continue; /* a varied order across the repetitions */
            for (const char *c = p; *c;) {
                if (!strncmp(c, "\xE2\x96\x81", 3)) {
                    if (with_spaces) buf[len++] = ' ';
                    c += 3;
                } else {
                    buf[len++] = *c++;
                }
            }
        }
    check_text_ks(tok, buf, len, with_spaces ? "long pieces, word starts kept" : "long pieces, no space", 1);
}

static void check_file(const mp_tokenizer *tok, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("FAIL cannot open %s\n", path);
        failures++;
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lines = 0;
    while ((got = getline(&line, &cap, f)) > 0 && lines < 150) {
        if (got < 40) continue;
        char what[300];
        snprintf(what, sizeof what, "%s line %d", path, ++lines);
        check_text(tok, line, (size_t)got, what);
    }
    free(line);
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_encode_upto TOKENIZER.model [TEXT_FILE...]\n");
        return 2;
    }
    mp_error err;
    mp_error_clear(&err);
    mp_tokenizer *tok = NULL;
    if (mp_tokenizer_load(argv[1], &tok, &err) < 0) {
        if (strstr(err.msg, "No such file")) {
            printf("skipped: %s\n", err.msg);
            return 77;
        }
        printf("FAIL load: %s\n", err.msg);
        return 1;
    }
    for (int i = 2; i < argc; i++) check_file(tok, argv[i]);

    /* generated: the cut lands in every kind of place */
    size_t cap = 1 << 20;
    char *t = malloc(cap);
    static const char *pieces[] = {"word ", "  ", "\xC3\xA9t\xC3\xA9 ", "\xE2\x82\xAC", "\n", "x", "\xF0\x9F\x98\x80",
                                   "int main(void) { return 0; }\n", "\t", "a", "The ", "\xE4\xB8\xAD\xE6\x96\x87"};
    unsigned seed = 12345;
    for (int doc = 0; doc < 36; doc++) {
        size_t len = 0, target = (size_t)(doc % 6 == 0 ? 40000 : 50 + doc * 997 % 20000);
        while (len + 64 < target && len + 64 < cap) {
            seed = seed * 1103515245u + 12345u;
            const char *p = pieces[(seed >> 16) % (sizeof pieces / sizeof *pieces)];
            int reps = doc % 5 == 0 ? 40 : 1; /* long runs: no spaces, or only spaces */
            for (int r = 0; r < reps && len + 64 < target; r++) {
                memcpy(t + len, p, strlen(p));
                len += strlen(p);
            }
        }
        char what[64];
        snprintf(what, sizeof what, "generated document %d", doc);
        check_text(tok, t, len, what);
    }
    check_long_pieces(tok, t, 60000, 1);
    check_long_pieces(tok, t, 60000, 0);
    /* one long line with no space at all, and one of spaces only */
    memset(t, 'z', 80000);
    check_text(tok, t, 80000, "80,000 x 'z'");
    memset(t, ' ', 80000);
    check_text(tok, t, 80000, "80,000 spaces");
    free(t);
    mp_tokenizer_free(tok);
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
