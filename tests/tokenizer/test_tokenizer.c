/* tests/tokenizer/test_tokenizer.c — unit test of core/text/tokenizer.c against the
 * LLaMA-2 tokenizer.model: known ids, decode, streaming decode_piece, error
 * codes, and robustness of the loader on truncated / bit-flipped models
 * (every outcome must be 0 or a clean error; run under MP_SANITIZE for ASan).
 *
 * usage: test_tokenizer <path/to/llama2/tokenizer.model>   (exit 77: missing)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/text/tokenizer.h"
#include "tests/common/test_check.h"

static void check_encode(const mp_tokenizer *tok, const char *text, size_t len, int bos,
                         const int32_t *want, size_t n_want) {
    int32_t *ids = NULL;
    size_t n = 0;
    mp_error err;
    mp_error_clear(&err);
    int rc = mp_tokenizer_encode(tok, text, len, bos, &ids, &n, &err);
    CHECK(rc == 0, "encode '%s': rc %d %s", text, rc, err.msg);
    int same = rc == 0 && n == n_want;
    for (size_t i = 0; same && i < n; i++) same = ids[i] == want[i];
    if (!same) {
        fprintf(stderr, "FAIL encode '%s' -> [", text);
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", (int)ids[i]);
        fprintf(stderr, " ], want [");
        for (size_t i = 0; i < n_want; i++) fprintf(stderr, " %d", (int)want[i]);
        fprintf(stderr, " ]\n");
        failures++;
    }
    free(ids);
}

static void check_decode(const mp_tokenizer *tok, const int32_t *ids, size_t n, const char *want) {
    char *text = NULL;
    size_t len = 0;
    mp_error err;
    mp_error_clear(&err);
    int rc = mp_tokenizer_decode(tok, ids, n, &text, &len, &err);
    CHECK(rc == 0 && len == strlen(want) && !memcmp(text, want, len), "decode: got '%s' want '%s' (rc %d)",
          text ? text : "(null)", want, rc);
    free(text);
}

static void check_piece(const mp_tokenizer *tok, int prev, int id, const char *want) {
    char buf[64];
    int n = mp_tokenizer_decode_piece(tok, prev, id, buf, sizeof buf);
    if (!want) {
        CHECK(n == -1, "decode_piece(%d, %d) = %d, want -1", prev, id, n);
        return;
    }
    CHECK(n == (int)strlen(want) && !memcmp(buf, want, (size_t)n), "decode_piece(%d, %d) = '%.*s' want '%s'",
          prev, id, n < 0 ? 0 : n, buf, want);
}

/* Load a (damaged) model; it must fail cleanly or work end to end. */
static void probe(const unsigned char *data, size_t len, const char *what) {
    mp_tokenizer *tok = NULL;
    mp_error err;
    mp_error_clear(&err);
    int rc = mp_tokenizer_load_from_memory(data, len, "probe.model", &tok, &err);
    if (rc < 0) {
        CHECK(tok == NULL && err.code == rc && !strncmp(err.msg, "probe.model: ", 13),
              "%s: bad error record (rc %d, '%s')", what, rc, err.msg);
        return;
    }
    static const char text[] = "Hello  w\xc3\xb6rld\t\xe6\x97\xa5 \xf0\x9f\x98\x80 \xff\xc3 <s>";
    int32_t *ids = NULL;
    size_t n = 0;
    if (mp_tokenizer_encode(tok, text, sizeof text - 1, 1, &ids, &n, &err) == 0) {
        char *out = NULL;
        size_t out_len = 0;
        if (mp_tokenizer_decode(tok, ids, n, &out, &out_len, &err) == 0) free(out);
        char buf[64];
        for (size_t i = 0; i < n; i++) mp_tokenizer_decode_piece(tok, i ? ids[i - 1] : -1, ids[i], buf, sizeof buf);
        free(ids);
    }
    mp_tokenizer_free(tok);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_tokenizer <tokenizer.model>\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        printf("skipped: %s not found\n", argv[1]);
        return 77;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *model = malloc((size_t)size);
    if (!model || fread(model, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    fclose(f);

    mp_error err;
    mp_error_clear(&err);
    mp_tokenizer *tok = NULL;
    int rc = mp_tokenizer_load(argv[1], &tok, &err);
    if (rc < 0) {
        fprintf(stderr, "FAIL load: %s\n", err.msg);
        return 1;
    }
    CHECK(mp_tokenizer_vocab_size(tok) == 32000, "vocab size %d", mp_tokenizer_vocab_size(tok));
    CHECK(mp_tokenizer_bos_id(tok) == 1 && mp_tokenizer_eos_id(tok) == 2 && mp_tokenizer_unk_id(tok) == 0,
          "special ids %d %d %d", mp_tokenizer_bos_id(tok), mp_tokenizer_eos_id(tok), mp_tokenizer_unk_id(tok));
    CHECK(!strcmp(mp_tokenizer_piece(tok, 259), "\xE2\x96\x81\xE2\x96\x81"), "piece 259");
    CHECK(!strcmp(mp_tokenizer_piece(tok, 13), "<0x0A>"), "piece 13");
    CHECK(mp_tokenizer_piece(tok, 32000) == NULL && mp_tokenizer_piece(tok, -1) == NULL, "piece out of range");
    CHECK(mp_tokenizer_piece_type(tok, 3) == 6 && mp_tokenizer_piece_type(tok, 1) == 3 &&
              mp_tokenizer_piece_type(tok, 500) == 1 && mp_tokenizer_piece_type(tok, 0) == 2,
          "piece types");

    /* ids from spm_encode --model=tokenizer.model --output_format=id */
    static const int32_t hello[] = {15043, 3186}, hello_bos[] = {1, 15043, 3186};
    check_encode(tok, "Hello world", 11, 0, hello, 2);
    check_encode(tok, "Hello world", 11, 1, hello_bos, 3);
    check_encode(tok, "", 0, 0, NULL, 0);
    static const int32_t bos_only[] = {1};
    check_encode(tok, "", 0, 1, bos_only, 1);
    static const int32_t spaces[] = {268};
    check_encode(tok, "   ", 3, 0, spaces, 1);
    static const int32_t bad[] = {29871, 26308, 25638, 30140}; /* "\xff\xfe abc\xc3" */
    check_encode(tok, "\xff\xfe abc\xc3", 7, 0, bad, 4);
    static const int32_t nul[] = {921, 3, 29891}; /* "x\0y": NUL is valid UTF-8, byte fallback */
    check_encode(tok, "x\0y", 3, 0, nul, 3);
    static const int32_t tab[] = {29871, 12, 3891};
    check_encode(tok, "\ttab", 4, 0, tab, 3);

    /* decode, as spm_decode --input_format=id */
    static const int32_t d1[] = {1, 29871, 22172};
    check_decode(tok, d1, 3, " hello");
    static const int32_t d2[] = {29871, 29871, 22172};
    check_decode(tok, d2, 3, "  hello");
    static const int32_t d3[] = {0, 22172};
    check_decode(tok, d3, 2, " \xE2\x81\x87  hello");
    static const int32_t d4[] = {231, 22172, 228, 190}; /* lone 0xE4, then E1 BB: two U+FFFD */
    check_decode(tok, d4, 4, "\xEF\xBF\xBD hello\xEF\xBF\xBD\xEF\xBF\xBD");
    static const int32_t d5[] = {3, 29871, 22172};
    {
        char *text = NULL;
        size_t len = 0;
        rc = mp_tokenizer_decode(tok, d5, 3, &text, &len, &err);
        CHECK(rc == 0 && len == 8 && !memcmp(text, "\0  hello", 8), "decode NUL byte piece");
        free(text);
    }
    static const int32_t bad_id[] = {1, 32000};
    char *text = NULL;
    size_t len = 0;
    rc = mp_tokenizer_decode(tok, bad_id, 2, &text, &len, &err);
    CHECK(rc == MP_EINPUT && text == NULL && strstr(err.msg, "32000"), "decode bad id: rc %d '%s'", rc, err.msg);

    /* streaming */
    check_piece(tok, 1, 15043, "Hello");
    check_piece(tok, -1, 15043, "Hello");
    check_piece(tok, 15043, 3186, " world");
    check_piece(tok, 3186, 13, "\n");
    check_piece(tok, 3186, 2, "");
    check_piece(tok, 3186, 0, " \xE2\x81\x87 ");
    check_piece(tok, 3186, 32000, NULL);
    check_piece(tok, 3186, -5, NULL);
    {
        char small[4];
        CHECK(mp_tokenizer_decode_piece(tok, 3186, 3186, small, sizeof small) == -1, "decode_piece small cap");
    }

    /* the memory loader gives the same tokenizer */
    mp_tokenizer *tok2 = NULL;
    rc = mp_tokenizer_load_from_memory(model, (size_t)size, "mem", &tok2, &err);
    CHECK(rc == 0, "load_from_memory: %s", err.msg);
    if (rc == 0) check_encode(tok2, "Hello world", 11, 0, hello, 2);
    mp_tokenizer_free(tok2);
    mp_tokenizer_free(NULL);

    rc = mp_tokenizer_load("/nonexistent/tokenizer.model", &tok2, &err);
    CHECK(rc == MP_EIO && tok2 == NULL && strstr(err.msg, "/nonexistent/tokenizer.model: "), "missing file: %d %s",
          rc, err.msg);

    /* robustness: truncations and seeded bit flips */
    for (size_t cut = 0; cut < (size_t)size; cut += cut < 256 ? 1 : 4999) probe(model, cut, "truncated");
    for (size_t cut = (size_t)size - 64; cut < (size_t)size; cut++) probe(model, cut, "truncated");
    unsigned char *m2 = malloc((size_t)size);
    uint32_t seed = 12345;
    for (int round = 0; round < 60 && m2; round++) {
        memcpy(m2, model, (size_t)size);
        for (int k = 0; k < 1 + round % 4; k++) {
            seed = seed * 1664525u + 1013904223u;
            /* mostly inside the specs at the end and the first pieces */
            size_t pos = round % 2 ? (size_t)size - 1 - (seed >> 8) % 2000 : (seed >> 8) % (size_t)size;
            m2[pos] ^= (unsigned char)(1u << (seed >> 29));
        }
        probe(m2, (size_t)size, "bit flip");
    }
    free(m2);

    mp_tokenizer_free(tok);
    free(model);
    if (failures) {
        fprintf(stderr, "%d tokenizer check(s) failed\n", failures);
        return 1;
    }
    printf("tokenizer unit tests passed\n");
    return 0;
}
