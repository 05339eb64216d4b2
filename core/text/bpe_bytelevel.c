/* core/text/bpe_bytelevel.c — GPT-2 / RoBERTa byte-level BPE (see bpe_bytelevel.h):
 * vocab and merge ranks in open-addressing string tables, the GPT-2
 * pre-tokenization pattern as a hand-written scanner, and the classic
 * "merge the lowest-ranked pair everywhere, repeat" loop per piece. */
#include "core/util/file.h"
#include "core/text/bpe_bytelevel.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- string -> int hash table ------------------------------------------------ */

typedef struct {
    char **keys;   /* [cap] owned, NULL = empty slot */
    int *vals;     /* [cap] */
    size_t cap, n;
} str_map;

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static int map_init(str_map *m, size_t expect) {
    m->cap = 64;
    while (m->cap < expect * 2 + 16) m->cap *= 2;
    m->n = 0;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->vals = calloc(m->cap, sizeof *m->vals);
    return m->keys && m->vals ? 0 : -1;
}

static void map_free(str_map *m) {
    if (m->keys)
        for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->vals);
}

/* Slot of key (n bytes) or the empty slot where it would go. */
static size_t map_slot(const str_map *m, const char *k, size_t n) {
    size_t i = (size_t)fnv1a(k, n) & (m->cap - 1);
    while (m->keys[i] && (strlen(m->keys[i]) != n || memcmp(m->keys[i], k, n))) i = (i + 1) & (m->cap - 1);
    return i;
}

static int map_get(const str_map *m, const char *k, size_t n) {
    size_t i = map_slot(m, k, n);
    return m->keys[i] ? m->vals[i] : -1;
}

/* Insert (key copied); keeps the first value for a duplicate key (returns 1). */
static int map_put(str_map *m, const char *k, size_t n, int v) {
    size_t i = map_slot(m, k, n);
    if (m->keys[i]) return 1;
    if (!(m->keys[i] = malloc(n + 1))) return -1;
    memcpy(m->keys[i], k, n);
    m->keys[i][n] = '\0';
    m->vals[i] = v;
    m->n++;
    return 0;
}

/* ---- tokenizer ------------------------------------------------------------------ */

struct mp_bbpe {
    str_map vocab;       /* token -> id */
    str_map ranks;       /* "A B" -> merge rank */
    int n_ids;
    int unk_id;          /* -1 when "<unk>" is absent */
    char byte_str[256][3]; /* bytes_to_unicode: byte -> UTF-8 of its stand-in (NUL-terminated) */
};

static void utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

/* GPT-2 bytes_to_unicode(): printable bytes map to themselves, the other 68
 * to U+0100.. in byte order. All stand-ins are below U+0800 (<= 2 bytes). */
static void init_byte_map(mp_bbpe *t) {
    uint32_t next = 256;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        utf8_put(printable ? (uint32_t)b : next++, t->byte_str[b]);
    }
}

static int read_file(const char *path, char **buf, size_t *len, mp_error *err) {
    FILE *f = NULL;
    MP_TRY(mp_file_fopen_regular(path, &f, NULL, err));
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *nb = realloc(b, cap * 2 + 1);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!b) return mp_fail(err, MP_ENOMEM, "%s: out of memory", path);
    if (bad) {
        free(b);
        return mp_fail(err, MP_EIO, "%s: read error", path);
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

int mp_bbpe_load(const char *vocab_json, const char *merges_txt, mp_bbpe **out, mp_error *err) {
    *out = NULL;
    char *vbuf = NULL, *mbuf = NULL;
    size_t vlen = 0, mlen = 0;
    cJSON *root = NULL;
    int rc = 0;
    mp_bbpe *t = calloc(1, sizeof *t);
    if (!t) return mp_fail(err, MP_ENOMEM, "out of memory (tokenizer)");
    init_byte_map(t);
    if ((rc = read_file(vocab_json, &vbuf, &vlen, err)) < 0) goto cleanup;
    if ((rc = read_file(merges_txt, &mbuf, &mlen, err)) < 0) goto cleanup;
    root = cJSON_ParseWithLength(vbuf, vlen);
    if (!root || !cJSON_IsObject(root)) {
        rc = mp_fail(err, MP_EINPUT, "%s: not a JSON object (expected {\"token\": id, ...})", vocab_json);
        goto cleanup;
    }
    int n_items = cJSON_GetArraySize(root);
    if (map_init(&t->vocab, (size_t)n_items) < 0) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory (vocab)");
        goto cleanup;
    }
    int max_id = -1;
    for (cJSON *it = root->child; it; it = it->next) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 16777216.0 ||
            it->valuedouble != (double)(int)it->valuedouble) {
            rc = mp_fail(err, MP_EINPUT, "%s: token \"%.40s\": id is not an integer in [0, 2^24]", vocab_json,
                         it->string ? it->string : "");
            goto cleanup;
        }
        int r = map_put(&t->vocab, it->string, strlen(it->string), it->valueint);
        if (r < 0) {
            rc = mp_fail(err, MP_ENOMEM, "out of memory (vocab)");
            goto cleanup;
        }
        if (it->valueint > max_id) max_id = it->valueint;
    }
    t->n_ids = max_id + 1;
    t->unk_id = map_get(&t->vocab, "<unk>", 5);
    /* merges: one "A B" per line, rank = order; a leading "#version" line is skipped */
    size_t n_lines = 1;
    for (size_t i = 0; i < mlen; i++) n_lines += mbuf[i] == '\n';
    if (map_init(&t->ranks, n_lines) < 0) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory (merges)");
        goto cleanup;
    }
    int rank = 0;
    size_t lineno = 0;
    for (char *p = mbuf; p < mbuf + mlen;) {
        char *e = memchr(p, '\n', (size_t)(mbuf + mlen - p));
        if (!e) e = mbuf + mlen;
        size_t n = (size_t)(e - p);
        if (n && p[n - 1] == '\r') n--;
        lineno++;
        if (n && !(lineno == 1 && n >= 8 && !memcmp(p, "#version", 8))) {
            char *sp = memchr(p, ' ', n);
            if (!sp || sp == p || sp == p + n - 1 || memchr(sp + 1, ' ', (size_t)(p + n - sp - 1))) {
                rc = mp_fail(err, MP_EINPUT, "%s:%zu: expected \"A B\" (two symbols, one space)", merges_txt, lineno);
                goto cleanup;
            }
            if (map_put(&t->ranks, p, n, rank++) < 0) {
                rc = mp_fail(err, MP_ENOMEM, "out of memory (merges)");
                goto cleanup;
            }
        }
        p = e + 1;
    }
    *out = t;
    t = NULL;
cleanup:
    cJSON_Delete(root);
    free(vbuf);
    free(mbuf);
    mp_bbpe_free(t);
    return rc;
}

void mp_bbpe_free(mp_bbpe *t) {
    if (!t) return;
    map_free(&t->vocab);
    map_free(&t->ranks);
    free(t);
}

int mp_bbpe_vocab_size(const mp_bbpe *t) { return t->n_ids; }

int mp_bbpe_token_id(const mp_bbpe *t, const char *token) { return map_get(&t->vocab, token, strlen(token)); }

/* ---- character classes ----------------------------------------------------------- */

typedef struct {
    uint32_t lo, hi;
    char cls;
} cp_range;

/* Non-ASCII ranges that are not letters, plus letter ranges inside blocks that
 * are otherwise punctuation; sorted. A code point >= 0x80 in no range is 'L'
 * (approximation: unlisted marks, digits and symbols of other scripts). */
static const cp_range RANGES[] = {
    {0x80, 0x84, 'P'},       {0x85, 0x85, 'S'},       {0x86, 0x9F, 'P'},       {0xA0, 0xA0, 'S'},
    {0xA1, 0xA9, 'P'},       {0xAB, 0xB1, 'P'},       {0xB2, 0xB3, 'N'},       {0xB4, 0xB4, 'P'},
    {0xB6, 0xB8, 'P'},       {0xB9, 0xB9, 'N'},       {0xBB, 0xBB, 'P'},       {0xBC, 0xBE, 'N'},
    {0xBF, 0xBF, 'P'},       {0xD7, 0xD7, 'P'},       {0xF7, 0xF7, 'P'},       {0x2C2, 0x2C5, 'P'},
    {0x2D2, 0x2DF, 'P'},     {0x2E5, 0x2EB, 'P'},     {0x2ED, 0x2ED, 'P'},     {0x2EF, 0x36F, 'P'},
    {0x375, 0x375, 'P'},     {0x37E, 0x37E, 'P'},     {0x384, 0x385, 'P'},     {0x387, 0x387, 'P'},
    {0x3F6, 0x3F6, 'P'},     {0x482, 0x489, 'P'},     {0x55A, 0x55F, 'P'},     {0x589, 0x58A, 'P'},
    {0x58D, 0x58F, 'P'},     {0x591, 0x5C7, 'P'},     {0x5F3, 0x5F4, 'P'},     {0x600, 0x61F, 'P'},
    {0x64B, 0x65F, 'P'},     {0x660, 0x669, 'N'},     {0x66A, 0x66D, 'P'},     {0x670, 0x670, 'P'},
    {0x6D4, 0x6D4, 'P'},     {0x6D6, 0x6E4, 'P'},     {0x6E7, 0x6ED, 'P'},     {0x6F0, 0x6F9, 'N'},
    {0x6FD, 0x6FE, 'P'},     {0x900, 0x903, 'P'},     {0x93A, 0x93C, 'P'},     {0x93E, 0x94F, 'P'},
    {0x951, 0x957, 'P'},     {0x962, 0x965, 'P'},     {0x966, 0x96F, 'N'},     {0x970, 0x970, 'P'},
    {0x9E6, 0x9EF, 'N'},     {0xE31, 0xE31, 'P'},     {0xE34, 0xE3A, 'P'},     {0xE3F, 0xE3F, 'P'},
    {0xE47, 0xE4F, 'P'},     {0xE50, 0xE59, 'N'},     {0xE5A, 0xE5B, 'P'},     {0x1680, 0x1680, 'S'},
    {0x2000, 0x200A, 'S'},   {0x200B, 0x2027, 'P'},   {0x2028, 0x2029, 'S'},   {0x202A, 0x202E, 'P'},
    {0x202F, 0x202F, 'S'},   {0x2030, 0x205E, 'P'},   {0x205F, 0x205F, 'S'},   {0x2060, 0x206F, 'P'},
    {0x2070, 0x2070, 'N'},   {0x2074, 0x2079, 'N'},   {0x207A, 0x207E, 'P'},   {0x2080, 0x2089, 'N'},
    {0x208A, 0x208E, 'P'},   {0x20A0, 0x20F0, 'P'},   {0x2100, 0x2101, 'P'},   {0x2103, 0x2106, 'P'},
    {0x2108, 0x2109, 'P'},   {0x2114, 0x2114, 'P'},   {0x2116, 0x2118, 'P'},   {0x211E, 0x2123, 'P'},
    {0x2125, 0x2125, 'P'},   {0x2127, 0x2127, 'P'},   {0x2129, 0x2129, 'P'},   {0x212E, 0x212E, 'P'},
    {0x213A, 0x213B, 'P'},   {0x2140, 0x2144, 'P'},   {0x214A, 0x214D, 'P'},   {0x214F, 0x214F, 'P'},
    {0x2150, 0x2182, 'N'},   {0x2185, 0x2189, 'N'},   {0x218A, 0x245F, 'P'},   {0x2460, 0x249B, 'N'},
    {0x249C, 0x24E9, 'P'},   {0x24EA, 0x24FF, 'N'},   {0x2500, 0x2775, 'P'},   {0x2776, 0x2793, 'N'},
    {0x2794, 0x2BFF, 'P'},   {0x2CE5, 0x2CEA, 'P'},   {0x2CF9, 0x2CFF, 'P'},   {0x2E00, 0x2E7F, 'P'},
    {0x2E80, 0x2FFF, 'P'},   {0x3000, 0x3000, 'S'},   {0x3001, 0x3004, 'P'},   {0x3007, 0x3007, 'N'},
    {0x3008, 0x3020, 'P'},   {0x3021, 0x3029, 'N'},   {0x302A, 0x3030, 'P'},   {0x3036, 0x3037, 'P'},
    {0x3038, 0x303A, 'N'},   {0x303D, 0x303F, 'P'},   {0x3099, 0x309C, 'P'},   {0x30A0, 0x30A0, 'P'},
    {0x30FB, 0x30FB, 'P'},   {0x3190, 0x3191, 'P'},   {0x3192, 0x3195, 'N'},   {0x3196, 0x319F, 'P'},
    {0x31C0, 0x31EF, 'P'},   {0x3200, 0x321F, 'P'},   {0x3220, 0x3229, 'N'},   {0x322A, 0x3247, 'P'},
    {0x3248, 0x324F, 'N'},   {0x3250, 0x3250, 'P'},   {0x3251, 0x325F, 'N'},   {0x3260, 0x327F, 'P'},
    {0x3280, 0x3289, 'N'},   {0x328A, 0x32B0, 'P'},   {0x32B1, 0x32BF, 'N'},   {0x32C0, 0x33FF, 'P'},
    {0x4DC0, 0x4DFF, 'P'},   {0xA490, 0xA4C6, 'P'},   {0xD800, 0xF8FF, 'P'},   {0xFB29, 0xFB29, 'P'},
    {0xFD3E, 0xFD3F, 'P'},   {0xFDFC, 0xFDFF, 'P'},   {0xFE00, 0xFE6F, 'P'},   {0xFEFF, 0xFEFF, 'P'},
    {0xFF01, 0xFF0F, 'P'},   {0xFF10, 0xFF19, 'N'},   {0xFF1A, 0xFF20, 'P'},   {0xFF3B, 0xFF40, 'P'},
    {0xFF5B, 0xFF65, 'P'},   {0xFFE0, 0xFFFF, 'P'},   {0x10100, 0x1013F, 'P'}, {0x1D000, 0x1D7CD, 'P'},
    {0x1D7CE, 0x1D7FF, 'N'}, {0x1F000, 0x1F0FF, 'P'}, {0x1F100, 0x1F10C, 'N'}, {0x1F10D, 0x1FBEF, 'P'},
    {0x1FBF0, 0x1FBF9, 'N'}, {0xE0000, 0x10FFFF, 'P'},
};

int mp_bbpe_class(uint32_t cp) {
    if (cp < 0x80) {
        if ((cp >= 9 && cp <= 13) || cp == ' ') return 'S';
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return 'L';
        if (cp >= '0' && cp <= '9') return 'N';
        return 'P';
    }
    size_t lo = 0, hi = sizeof RANGES / sizeof RANGES[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < RANGES[mid].lo) hi = mid;
        else if (cp > RANGES[mid].hi) lo = mid + 1;
        else return RANGES[mid].cls;
    }
    return 'L';
}

/* Decode one code point at s[i] (n bytes total); *len receives its byte
 * length. Invalid UTF-8 gives one byte of class 'P' (cp = 0xFFFD-like 0xFFFF). */
static uint32_t next_cp(const unsigned char *s, size_t n, size_t i, size_t *len) {
    unsigned c = s[i];
    size_t need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (need == 1) {
        *len = 1;
        return c;
    }
    if (!need || i + need > n) {
        *len = 1;
        return 0xFFFF;
    }
    uint32_t cp = c & (0x7F >> need);
    for (size_t k = 1; k < need; k++) {
        if ((s[i + k] & 0xC0) != 0x80) {
            *len = 1;
            return 0xFFFF;
        }
        cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        *len = 1;
        return 0xFFFF;
    }
    *len = need;
    return cp;
}

static int cls_at(const unsigned char *s, size_t n, size_t i, size_t *len) {
    return mp_bbpe_class(next_cp(s, n, i, len));
}

/* End of the run of class cls starting at i. */
static size_t run_end(const unsigned char *s, size_t n, size_t i, int cls) {
    size_t l;
    while (i < n && cls_at(s, n, i, &l) == cls) i += l;
    return i;
}

/* End of a [^\s\p{L}\p{N}]+ run starting at i. */
static size_t other_end(const unsigned char *s, size_t n, size_t i) {
    return run_end(s, n, i, 'P');
}

/* Length of the GPT-2 pattern's match at s[i] (i < n; always >= 1). */
static size_t pretok_match(const unsigned char *s, size_t n, size_t i) {
    static const char *const contractions[] = {"s", "t", "re", "ve", "m", "ll", "d"};
    if (s[i] == '\'') {
        for (size_t k = 0; k < 7; k++) {
            size_t cl = strlen(contractions[k]);
            if (i + 1 + cl <= n && !memcmp(s + i + 1, contractions[k], cl)) return 1 + cl;
        }
    }
    size_t l, start = i;
    if (s[i] == ' ' && i + 1 < n) {
        int c = cls_at(s, n, i + 1, &l);
        if (c == 'L' || c == 'N') return run_end(s, n, i + 1, c) - start;
        if (c == 'P') return other_end(s, n, i + 1) - start;
    }
    int c = cls_at(s, n, i, &l);
    if (c == 'L' || c == 'N') return run_end(s, n, i, c) - start;
    if (c == 'P') return other_end(s, n, i) - start;
    /* whitespace: \s+(?!\S) | \s+ */
    size_t e = run_end(s, n, i, 'S');
    if (e == n) return e - start;
    /* followed by non-space: give the last whitespace character back if the run has more than one */
    size_t last = i, p = i;
    while (p < e) {
        last = p;
        cls_at(s, n, p, &l);
        p += l;
    }
    return last > start ? last - start : e - start;
}

/* BPE over one pre-token: symbols are byte stand-in strings, merged in place. */
static int bpe_piece(const mp_bbpe *t, const unsigned char *s, size_t n, int32_t **ids, size_t *n_ids,
                     size_t *cap, mp_error *err) {
    /* symbol k = buf[off[k] .. off[k] + len[k]) */
    char stack_buf[512];
    size_t stack_off[128], stack_len[128];
    char *buf = stack_buf;
    size_t *off = stack_off, *len = stack_len;
    char key_stack[512];
    char *key = key_stack;
    int rc = 0;
    if (n > 128) {
        buf = malloc(n * 2);
        off = malloc(n * sizeof *off);
        len = malloc(n * sizeof *len);
        key = malloc(n * 2 + 2);
        if (!buf || !off || !len || !key) {
            rc = mp_fail(err, MP_ENOMEM, "out of memory (bpe)");
            goto cleanup;
        }
    }
    size_t used = 0, ns = n;
    for (size_t k = 0; k < n; k++) {
        const char *b = t->byte_str[s[k]];
        size_t bl = strlen(b);
        memcpy(buf + used, b, bl);
        off[k] = used;
        len[k] = bl;
        used += bl;
    }
    /* symbols stay contiguous in buf, so merging k and k+1 is len[k] += len[k+1] */
    while (ns > 1) {
        int best = -1;
        size_t best_k = 0;
        for (size_t k = 0; k + 1 < ns; k++) {
            memcpy(key, buf + off[k], len[k]);
            key[len[k]] = ' ';
            memcpy(key + len[k] + 1, buf + off[k + 1], len[k + 1]);
            int r = map_get(&t->ranks, key, len[k] + 1 + len[k + 1]);
            if (r >= 0 && (best < 0 || r < best)) {
                best = r;
                best_k = k;
            }
        }
        if (best < 0) break;
        /* merge every occurrence of the best pair, left to right */
        size_t al = len[best_k], bl = len[best_k + 1];
        char pa[256], pb[256];
        if (al >= sizeof pa || bl >= sizeof pb) {
            rc = mp_fail(err, MP_EINPUT, "bpe: merged symbol longer than 255 bytes");
            goto cleanup;
        }
        memcpy(pa, buf + off[best_k], al);
        memcpy(pb, buf + off[best_k + 1], bl);
        size_t w = 0;
        for (size_t k = 0; k < ns;) {
            if (k + 1 < ns && len[k] == al && len[k + 1] == bl && !memcmp(buf + off[k], pa, al) &&
                !memcmp(buf + off[k + 1], pb, bl)) {
                off[w] = off[k];
                len[w] = al + bl;
                k += 2;
            } else {
                off[w] = off[k];
                len[w] = len[k];
                k++;
            }
            w++;
        }
        ns = w;
    }
    for (size_t k = 0; k < ns; k++) {
        int id = map_get(&t->vocab, buf + off[k], len[k]);
        if (id < 0) id = t->unk_id;
        if (id < 0) {
            rc = mp_fail(err, MP_EINPUT, "bpe: symbol \"%.*s\" is not in vocab.json and there is no <unk>",
                         (int)(len[k] > 40 ? 40 : len[k]), buf + off[k]);
            goto cleanup;
        }
        if (*n_ids == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            int32_t *ni = realloc(*ids, nc * sizeof *ni);
            if (!ni) {
                rc = mp_fail(err, MP_ENOMEM, "out of memory (bpe)");
                goto cleanup;
            }
            *ids = ni;
            *cap = nc;
        }
        (*ids)[(*n_ids)++] = id;
    }
cleanup:
    if (buf != stack_buf) free(buf);
    if (off != stack_off) free(off);
    if (len != stack_len) free(len);
    if (key != key_stack) free(key);
    return rc;
}

int mp_bbpe_encode(const mp_bbpe *t, const char *text, size_t len, int32_t **ids, size_t *n, size_t *cap,
                   mp_error *err) {
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        size_t m = pretok_match(s, len, i);
        MP_TRY(bpe_piece(t, s + i, m, ids, n, cap, err));
        i += m;
    }
    return 0;
}
