/* core/text/tokenizer.c — the SentencePiece BPE tokenizer (see tokenizer.h).
 *
 * Owns: parsing `tokenizer.model` (protobuf ModelProto, read with a small
 * bounds-checked wire-format reader), the piece table, normalization, BPE
 * encoding and decoding. Behaviour mirrors sentencepiece 0.1.97 (Debian 12's
 * spm_encode / spm_decode) line for line where it matters for ids:
 *
 *   normalizer.cc  Normalizer::Normalize / NormalizePrefix: user-defined
 *                  pieces pass through unchanged, then the longest rule of the
 *                  precompiled charsmap (a Darts-clone double array + string
 *                  blob; this is how NFKC / nmt_nfkc models are normalized),
 *                  else one UTF-8 character, where every malformed byte
 *                  becomes U+FFFD; dummy prefix, whitespace removal, escaping
 *                  ' ' as U+2581.
 *   bpe_model.cc   Model::Encode: split into characters (user-defined pieces
 *                  greedily, frozen), merge the adjacent pair whose
 *                  concatenation is a NORMAL/USER_DEFINED/UNUSED piece with the
 *                  highest score (ties: leftmost) using a heap and a linked
 *                  list of symbols — O(n log n) — then re-split UNUSED pieces.
 *   sentencepiece_processor.cc  unknown pieces -> one <0xXX> piece per byte
 *                  when byte_fallback; Decode's handling of the first U+2581,
 *                  control pieces, byte runs (malformed bytes -> U+FFFD).
 *
 * Not supported (load fails with a message): model types other than BPE, a
 * non-empty denormalizer charsmap.
 */
#include "core/util/file.h"
#include "core/text/tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    PT_NORMAL = 1,
    PT_UNKNOWN = 2,
    PT_CONTROL = 3,
    PT_USER = 4,
    PT_UNUSED = 5,
    PT_BYTE = 6
};

enum { MODEL_UNIGRAM = 1, MODEL_BPE = 2 };

#define SPACE_SYMBOL "\xE2\x96\x81" /* U+2581, "▁" */
#define REPLACEMENT_CHAR "\xEF\xBF\xBD" /* U+FFFD */
#define TRIE_MAX_RESULTS 32 /* normalizer.cc kMaxTrieResultsSize */

typedef struct {
    uint32_t off;  /* piece text at tok->strings + off, NUL-terminated */
    uint32_t len;  /* bytes, without the NUL */
    float score;
    uint8_t type;  /* PT_* */
} tok_piece;

typedef struct {
    uint32_t hash;
    int32_t id;    /* -1: empty slot */
} tok_slot;

struct mp_tokenizer {
    int n_pieces;
    tok_piece *pieces;        /* [n_pieces] */
    char *strings;            /* all piece texts, owned */
    tok_slot *table;          /* [table_mask+1] open addressing over pieces */
    uint32_t table_mask;
    uint32_t max_piece_len;   /* longest mergeable piece, to skip lookups */

    int unk_id, bos_id, eos_id, pad_id;
    int byte_fallback;
    int has_unused;
    int32_t byte_ids[256];    /* id of <0xXX>, -1 without byte_fallback */
    char *unk_surface;        /* decode text of <unk>, owned */

    /* normalizer */
    int add_dummy_prefix, remove_extra_ws, escape_ws, ws_as_suffix;
    uint32_t *trie;           /* [trie_units] double array, owned; NULL: none */
    size_t trie_units;
    char *norm_strs;          /* replacement strings blob, owned */
    size_t norm_strs_len;

    /* user-defined pieces: distinct byte lengths, longest first */
    uint32_t *user_lens;      /* [n_user_lens], owned */
    int n_user_lens;
};

/* ---------------------------------------------------------------------------
 * Hash table over piece strings. A string may be present twice: once among the
 * "normal" pieces (NORMAL, USER_DEFINED, UNUSED) and once among the reserved
 * ones (UNKNOWN, CONTROL, BYTE), as in model_interface.cc.
 */

static uint32_t tok_hash(const char *s, size_t len) {
    uint32_t h = 2166136261u ^ (uint32_t)len;
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h ^ (h >> 15);
}

static int is_reserved_type(int type) {
    return type == PT_UNKNOWN || type == PT_CONTROL || type == PT_BYTE;
}

/* id of the piece with text s[0..len) in the requested set, or -1. */
static int32_t tok_find_h(const mp_tokenizer *t, const char *s, size_t len, uint32_t h,
                          int reserved) {
    for (uint32_t i = h & t->table_mask;; i = (i + 1) & t->table_mask) {
        const tok_slot *sl = &t->table[i];
        if (sl->id < 0) return -1;
        if (sl->hash != h) continue;
        const tok_piece *p = &t->pieces[sl->id];
        if (p->len == len && is_reserved_type(p->type) == reserved &&
            memcmp(t->strings + p->off, s, len) == 0)
            return sl->id;
    }
}

static int32_t tok_find(const mp_tokenizer *t, const char *s, size_t len, int reserved) {
    return tok_find_h(t, s, len, tok_hash(s, len), reserved);
}

/* ModelInterface::PieceToId: reserved pieces first, then normal, else unk. */
static int32_t tok_piece_to_id(const mp_tokenizer *t, const char *s, size_t len) {
    uint32_t h = tok_hash(s, len);
    int32_t id = tok_find_h(t, s, len, h, 1);
    if (id < 0) id = tok_find_h(t, s, len, h, 0);
    return id < 0 ? t->unk_id : id;
}

/* ---------------------------------------------------------------------------
 * Protobuf wire format reader. Every read is bounds-checked; errors carry the
 * byte offset in the file.
 */

typedef struct {
    const uint8_t *base; /* start of the file, for offsets in messages */
    const uint8_t *p, *end;
    const char *name;
    mp_error *err;
} pb_reader;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static int pb_error(pb_reader *r, const char *what) {
    mp_fail(r->err, MP_EINPUT, "%s: not a SentencePiece model: %s at byte %zu", r->name,
                   what, (size_t)(r->p - r->base));
    return MP_EINPUT; /* a constant, so callers' flow analysis sees a failure */
}

static int pb_varint(pb_reader *r, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) return pb_error(r, "truncated varint");
        uint8_t b = *r->p++;
        if (shift < 64) x |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return pb_error(r, "varint longer than 10 bytes");
}

static int pb_key(pb_reader *r, uint32_t *field, uint32_t *wt) {
    uint64_t k;
    MP_TRY(pb_varint(r, &k));
    if ((k >> 3) == 0 || (k >> 3) > 0x1FFFFFFF) return pb_error(r, "invalid field number");
    *field = (uint32_t)(k >> 3);
    *wt = (uint32_t)(k & 7);
    return 0;
}

static int pb_bytes(pb_reader *r, const uint8_t **data, size_t *len) {
    uint64_t n;
    MP_TRY(pb_varint(r, &n));
    if (n > (uint64_t)(r->end - r->p)) return pb_error(r, "length past end of data");
    *data = r->p;
    *len = (size_t)n;
    r->p += n;
    return 0;
}

static int pb_skip(pb_reader *r, uint32_t wt) {
    uint64_t v;
    const uint8_t *d = NULL;
    size_t n;
    switch (wt) {
    case WT_VARINT: return pb_varint(r, &v);
    case WT_LEN: return pb_bytes(r, &d, &n);
    case WT_I64:
    case WT_I32:
        n = wt == WT_I64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n) return pb_error(r, "truncated fixed-width field");
        r->p += n;
        return 0;
    default: return pb_error(r, "unsupported wire type (groups or invalid)");
    }
}

static int pb_want(pb_reader *r, uint32_t wt, uint32_t want, const char *field) {
    if (wt == want) return 0;
    char what[96];
    snprintf(what, sizeof what, "wrong wire type %u for %s", wt, field);
    return pb_error(r, what);
}

/* A sub-message reader over data[0..len) sharing r's base and error. */
static pb_reader pb_sub(const pb_reader *r, const uint8_t *data, size_t len) {
    pb_reader s = {r->base, data, data + len, r->name, r->err};
    return s;
}

/* ---------------------------------------------------------------------------
 * Loading.
 */

typedef struct {
    const uint8_t *s;
    size_t len;
} pb_str;

typedef struct {
    int model_type, byte_fallback, ws_as_suffix;
    int has_unk_surface;
    pb_str unk_piece, bos_piece, eos_piece, pad_piece, unk_surface;
    int add_dummy_prefix, remove_extra_ws, escape_ws;
    pb_str charsmap;
    size_t denorm_charsmap_len;
    size_t n_pieces;
    size_t piece_bytes;
} model_meta;

static int parse_trainer_spec(pb_reader *r, model_meta *m) {
    while (r->p < r->end) {
        uint32_t f = 0, wt = 0;
        uint64_t v;
        const uint8_t *d = NULL;
        size_t n = 0;
        MP_TRY(pb_key(r, &f, &wt));
        switch (f) {
        case 3: /* model_type */
        case 24: /* treat_whitespace_as_suffix */
        case 35: /* byte_fallback */
            MP_TRY(pb_want(r, wt, WT_VARINT, "a trainer_spec integer field"));
            MP_TRY(pb_varint(r, &v));
            if (f == 3) m->model_type = (int)(int32_t)v;
            else if (f == 24) m->ws_as_suffix = v != 0;
            else m->byte_fallback = v != 0;
            break;
        case 44: case 45: case 46: case 47: case 48: {
            MP_TRY(pb_want(r, wt, WT_LEN, "a trainer_spec string field"));
            MP_TRY(pb_bytes(r, &d, &n));
            pb_str s = {d, n};
            if (f == 44) { m->unk_surface = s; m->has_unk_surface = 1; }
            else if (f == 45) m->unk_piece = s;
            else if (f == 46) m->bos_piece = s;
            else if (f == 47) m->eos_piece = s;
            else m->pad_piece = s;
            break;
        }
        default: MP_TRY(pb_skip(r, wt));
        }
    }
    return 0;
}

static int parse_normalizer_spec(pb_reader *r, model_meta *m, int denorm) {
    while (r->p < r->end) {
        uint32_t f = 0, wt = 0;
        uint64_t v;
        const uint8_t *d = NULL;
        size_t n = 0;
        MP_TRY(pb_key(r, &f, &wt));
        if (f == 2) {
            MP_TRY(pb_want(r, wt, WT_LEN, "normalizer_spec.precompiled_charsmap"));
            MP_TRY(pb_bytes(r, &d, &n));
            if (denorm) {
                m->denorm_charsmap_len = n;
            } else {
                m->charsmap.s = d;
                m->charsmap.len = n;
            }
        } else if (f >= 3 && f <= 5) {
            MP_TRY(pb_want(r, wt, WT_VARINT, "a normalizer_spec flag"));
            MP_TRY(pb_varint(r, &v));
            if (!denorm) {
                if (f == 3) m->add_dummy_prefix = v != 0;
                else if (f == 4) m->remove_extra_ws = v != 0;
                else m->escape_ws = v != 0;
            }
        } else {
            MP_TRY(pb_skip(r, wt));
        }
    }
    return 0;
}

/* Pass 1 over the ModelProto: specs, and the number / size of the pieces. */
static int parse_model_meta(pb_reader *r, model_meta *m) {
    while (r->p < r->end) {
        uint32_t f = 0, wt = 0;
        const uint8_t *d = NULL;
        size_t n = 0;
        MP_TRY(pb_key(r, &f, &wt));
        if (f >= 1 && f <= 5 && f != 4) {
            MP_TRY(pb_want(r, wt, WT_LEN, "a ModelProto message field"));
            MP_TRY(pb_bytes(r, &d, &n));
            pb_reader s = pb_sub(r, d, n);
            if (f == 1) {
                m->n_pieces++;
                m->piece_bytes += n + 1;
            } else if (f == 2) {
                MP_TRY(parse_trainer_spec(&s, m));
            } else {
                MP_TRY(parse_normalizer_spec(&s, m, f == 5));
            }
        } else {
            MP_TRY(pb_skip(r, wt));
        }
    }
    return 0;
}

/* One SentencePiece message into t->pieces[id], its text appended at *str_off. */
static int parse_piece(pb_reader *r, mp_tokenizer *t, int id, size_t *str_off) {
    tok_piece *p = &t->pieces[id];
    const uint8_t *text = NULL;
    size_t text_len = 0;
    p->score = 0.0f;
    p->type = PT_NORMAL;
    while (r->p < r->end) {
        uint32_t f = 0, wt = 0;
        uint64_t v;
        MP_TRY(pb_key(r, &f, &wt));
        if (f == 1) {
            MP_TRY(pb_want(r, wt, WT_LEN, "SentencePiece.piece"));
            MP_TRY(pb_bytes(r, &text, &text_len));
        } else if (f == 2) {
            MP_TRY(pb_want(r, wt, WT_I32, "SentencePiece.score"));
            if (r->end - r->p < 4) return pb_error(r, "truncated score");
            uint32_t bits = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
                            (uint32_t)r->p[3] << 24;
            memcpy(&p->score, &bits, 4);
            r->p += 4;
        } else if (f == 3) {
            MP_TRY(pb_want(r, wt, WT_VARINT, "SentencePiece.type"));
            MP_TRY(pb_varint(r, &v));
            if (v < PT_NORMAL || v > PT_BYTE)
                return mp_fail(r->err, MP_EINPUT, "%s: piece %d has invalid type %llu", r->name, id,
                               (unsigned long long)v);
            p->type = (uint8_t)v;
        } else {
            MP_TRY(pb_skip(r, wt));
        }
    }
    if (text_len == 0) return mp_fail(r->err, MP_EINPUT, "%s: piece %d is empty", r->name, id);
    p->off = (uint32_t)*str_off;
    p->len = (uint32_t)text_len;
    memcpy(t->strings + *str_off, text, text_len);
    t->strings[*str_off + text_len] = '\0';
    *str_off += text_len + 1;
    return 0;
}

/* "<0xXX>" (upper-case hex, as ByteToPiece writes it) -> 0..255, else -1. */
static int piece_to_byte(const char *s, size_t len) {
    static const char hex[] = "0123456789ABCDEF";
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    const char *hi = memchr(hex, s[3], 16), *lo = memchr(hex, s[4], 16);
    if (!hi || !lo || !s[3] || !s[4]) return -1;
    return (int)((hi - hex) * 16 + (lo - hex));
}

static int build_table(mp_tokenizer *t, const char *name, mp_error *err) {
    uint32_t size = 16;
    while (size < 2u * (uint32_t)t->n_pieces) size *= 2;
    t->table = malloc(size * sizeof *t->table);
    if (!t->table) return mp_fail(err, MP_ENOMEM, "%s: out of memory", name);
    for (uint32_t i = 0; i < size; i++) t->table[i].id = -1;
    t->table_mask = size - 1;
    for (int id = 0; id < t->n_pieces; id++) {
        const tok_piece *p = &t->pieces[id];
        const char *s = t->strings + p->off;
        int reserved = is_reserved_type(p->type);
        if (tok_find(t, s, p->len, reserved) >= 0)
            return mp_fail(err, MP_EINPUT, "%s: piece %d '%.40s' is already defined", name, id, s);
        uint32_t h = tok_hash(s, p->len), i = h & t->table_mask;
        while (t->table[i].id >= 0) i = (i + 1) & t->table_mask;
        t->table[i].hash = h;
        t->table[i].id = id;
        if (!reserved && p->len > t->max_piece_len) t->max_piece_len = p->len;
    }
    return 0;
}

static int32_t find_str(const mp_tokenizer *t, pb_str s, const char *dflt) {
    const char *p = s.s ? (const char *)s.s : dflt;
    size_t n = s.s ? s.len : strlen(dflt);
    return tok_piece_to_id(t, p, n);
}

static int setup_pieces(mp_tokenizer *t, const model_meta *m, const char *name, mp_error *err) {
    int user_lens_seen = 0;
    unsigned char byte_found[256] = {0};
    t->unk_id = -1;
    for (int i = 0; i < 256; i++) t->byte_ids[i] = -1;
    for (int id = 0; id < t->n_pieces; id++) {
        const tok_piece *p = &t->pieces[id];
        const char *s = t->strings + p->off;
        if (p->type == PT_UNKNOWN) {
            if (t->unk_id >= 0) return mp_fail(err, MP_EINPUT, "%s: unk is already defined", name);
            t->unk_id = id;
        } else if (p->type == PT_BYTE) {
            if (!m->byte_fallback)
                return mp_fail(err, MP_EINPUT, "%s: byte piece %d found although byte_fallback is false",
                               name, id);
            int b = piece_to_byte(s, p->len);
            if (b < 0) return mp_fail(err, MP_EINPUT, "%s: byte piece %d '%.40s' is invalid", name, id, s);
            byte_found[b] = 1;
            t->byte_ids[b] = id;
        } else if (p->type == PT_USER) {
            user_lens_seen++;
        } else if (p->type == PT_UNUSED) {
            t->has_unused = 1;
        }
    }
    if (t->unk_id < 0) return mp_fail(err, MP_EINPUT, "%s: no unknown piece (<unk>) defined", name);
    if (m->byte_fallback)
        for (int b = 0; b < 256; b++)
            if (!byte_found[b])
                return mp_fail(err, MP_EINPUT, "%s: byte_fallback is set but piece <0x%02X> is missing",
                               name, b);
    MP_TRY(build_table(t, name, err));

    if (user_lens_seen) {
        t->user_lens = malloc((size_t)user_lens_seen * sizeof *t->user_lens);
        if (!t->user_lens) return mp_fail(err, MP_ENOMEM, "%s: out of memory", name);
        for (int id = 0; id < t->n_pieces; id++) {
            if (t->pieces[id].type != PT_USER) continue;
            uint32_t len = t->pieces[id].len;
            int k = 0;
            while (k < t->n_user_lens && t->user_lens[k] > len) k++;
            if (k < t->n_user_lens && t->user_lens[k] == len) continue;
            memmove(t->user_lens + k + 1, t->user_lens + k,
                    (size_t)(t->n_user_lens - k) * sizeof *t->user_lens);
            t->user_lens[k] = len;
            t->n_user_lens++;
        }
    }

    int32_t id = find_str(t, m->bos_piece, "<s>");
    t->bos_id = t->pieces[id].type == PT_CONTROL ? id : -1;
    id = find_str(t, m->eos_piece, "</s>");
    t->eos_id = t->pieces[id].type == PT_CONTROL ? id : -1;
    id = find_str(t, m->pad_piece, "<pad>");
    t->pad_id = t->pieces[id].type == PT_CONTROL ? id : -1;

    const char *surf = m->has_unk_surface ? (const char *)m->unk_surface.s : " \xE2\x81\x87 ";
    size_t surf_len = m->has_unk_surface ? m->unk_surface.len : strlen(surf);
    t->unk_surface = malloc(surf_len + 1);
    if (!t->unk_surface) return mp_fail(err, MP_ENOMEM, "%s: out of memory", name);
    memcpy(t->unk_surface, surf, surf_len);
    t->unk_surface[surf_len] = '\0';
    return 0;
}

/* normalizer.cc DecodePrecompiledCharsMap: uint32 trie size, trie, strings. */
static int setup_charsmap(mp_tokenizer *t, pb_str cm, const char *name, mp_error *err) {
    if (cm.len == 0) return 0;
    if (cm.len <= 4) return mp_fail(err, MP_EINPUT, "%s: precompiled_charsmap is broken (too short)", name);
    uint32_t trie_size = (uint32_t)cm.s[0] | (uint32_t)cm.s[1] << 8 | (uint32_t)cm.s[2] << 16 |
                         (uint32_t)cm.s[3] << 24;
    if (trie_size > cm.len - 4)
        return mp_fail(err, MP_EINPUT, "%s: precompiled_charsmap trie size %u exceeds the blob", name,
                       trie_size);
    t->trie_units = trie_size / 4;
    if (t->trie_units == 0)
        return mp_fail(err, MP_EINPUT, "%s: precompiled_charsmap has an empty trie", name);
    t->trie = malloc(t->trie_units * sizeof *t->trie);
    t->norm_strs_len = cm.len - 4 - trie_size;
    t->norm_strs = malloc(t->norm_strs_len + 1);
    if (!t->trie || !t->norm_strs) return mp_fail(err, MP_ENOMEM, "%s: out of memory", name);
    const uint8_t *u = cm.s + 4;
    for (size_t i = 0; i < t->trie_units; i++, u += 4)
        t->trie[i] = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
    memcpy(t->norm_strs, cm.s + 4 + trie_size, t->norm_strs_len);
    t->norm_strs[t->norm_strs_len] = '\0';
    return 0;
}

int mp_tokenizer_load_from_memory(const void *data, size_t len, const char *name, mp_tokenizer **out,
                                  mp_error *err) {
    *out = NULL;
    if (!name) name = "<memory>";
    if (len == 0) return mp_fail(err, MP_EINPUT, "%s: empty file, not a SentencePiece model", name);
    if (len > 0xFFFFFFF0u) return mp_fail(err, MP_EINPUT, "%s: file too large for a tokenizer model", name);

    const uint8_t *base = data;
    pb_reader r = {base, base, base + len, name, err};
    model_meta m;
    memset(&m, 0, sizeof m);
    m.model_type = MODEL_UNIGRAM; /* proto2 defaults */
    m.add_dummy_prefix = m.remove_extra_ws = m.escape_ws = 1;
    MP_TRY(parse_model_meta(&r, &m));
    if (m.n_pieces == 0) return mp_fail(err, MP_EINPUT, "%s: not a SentencePiece model: no pieces", name);
    if (m.n_pieces > 0x7FFFFFF) return mp_fail(err, MP_EINPUT, "%s: too many pieces", name);
    if (m.model_type != MODEL_BPE)
        return mp_fail(err, MP_EINPUT, "%s: model_type is %s, only BPE models are supported", name,
                       m.model_type == MODEL_UNIGRAM ? "UNIGRAM"
                       : m.model_type == 3           ? "WORD"
                       : m.model_type == 4           ? "CHAR"
                                                     : "invalid");
    if (m.denorm_charsmap_len)
        return mp_fail(err, MP_EUNSUPPORTED, "%s: denormalizer rules are not supported", name);

    int rc = 0;
    mp_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return mp_fail(err, MP_ENOMEM, "%s: out of memory", name);
    t->n_pieces = (int)m.n_pieces;
    t->pieces = malloc(m.n_pieces * sizeof *t->pieces);
    t->strings = malloc(m.piece_bytes);
    if (!t->pieces || !t->strings) {
        rc = mp_fail(err, MP_ENOMEM, "%s: out of memory", name);
        goto cleanup;
    }
    /* pass 2: the pieces (pass 1 validated the framing) */
    r.p = base;
    size_t str_off = 0;
    int id = 0;
    while (r.p < r.end) {
        uint32_t f = 0, wt = 0;
        const uint8_t *d = NULL;
        size_t n = 0;
        if ((rc = pb_key(&r, &f, &wt)) < 0) goto cleanup;
        if (f != 1) {
            if ((rc = pb_skip(&r, wt)) < 0) goto cleanup;
            continue;
        }
        if ((rc = pb_bytes(&r, &d, &n)) < 0) goto cleanup;
        pb_reader s = pb_sub(&r, d, n);
        if ((rc = parse_piece(&s, t, id++, &str_off)) < 0) goto cleanup;
    }
    t->byte_fallback = m.byte_fallback;
    t->add_dummy_prefix = m.add_dummy_prefix;
    t->remove_extra_ws = m.remove_extra_ws;
    t->escape_ws = m.escape_ws;
    t->ws_as_suffix = m.ws_as_suffix;
    if ((rc = setup_pieces(t, &m, name, err)) < 0) goto cleanup;
    if ((rc = setup_charsmap(t, m.charsmap, name, err)) < 0) goto cleanup;
    *out = t;
    t = NULL;
cleanup:
    mp_tokenizer_free(t);
    return rc;
}

int mp_tokenizer_load(const char *path, mp_tokenizer **out, mp_error *err) {
    *out = NULL;
    FILE *f = NULL;
    MP_TRY(mp_file_fopen_regular(path, &f, NULL, err));
    int rc = 0;
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        rc = mp_fail(err, MP_ENOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    for (;;) {
        if (n == cap) {
            char *nb = cap > ((size_t)1 << 32) ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                rc = mp_fail(err, MP_ENOMEM, "%s: out of memory reading the model", path);
                goto cleanup;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        rc = mp_fail(err, MP_EIO, "%s: read error", path);
        goto cleanup;
    }
    rc = mp_tokenizer_load_from_memory(buf, n, path, out, err);
cleanup:
    free(buf);
    fclose(f);
    return rc;
}

void mp_tokenizer_free(mp_tokenizer *tok) {
    if (!tok) return;
    free(tok->pieces);
    free(tok->strings);
    free(tok->table);
    free(tok->unk_surface);
    free(tok->trie);
    free(tok->norm_strs);
    free(tok->user_lens);
    free(tok);
}

int mp_tokenizer_vocab_size(const mp_tokenizer *tok) { return tok->n_pieces; }
int mp_tokenizer_bos_id(const mp_tokenizer *tok) { return tok->bos_id; }
int mp_tokenizer_eos_id(const mp_tokenizer *tok) { return tok->eos_id; }
int mp_tokenizer_unk_id(const mp_tokenizer *tok) { return tok->unk_id; }

const char *mp_tokenizer_piece(const mp_tokenizer *tok, int id) {
    if (id < 0 || id >= tok->n_pieces) return NULL;
    return tok->strings + tok->pieces[id].off;
}

int mp_tokenizer_piece_type(const mp_tokenizer *tok, int id) {
    if (id < 0 || id >= tok->n_pieces) return 0;
    return tok->pieces[id].type;
}

/* ---------------------------------------------------------------------------
 * Normalization (normalizer.cc).
 */

typedef struct {
    char *p;
    size_t len, cap;
} tok_buf;

static int buf_reserve(tok_buf *b, size_t more) {
    if (b->cap - b->len >= more) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more) {
        if (cap > SIZE_MAX / 2) return MP_ENOMEM;
        cap *= 2;
    }
    char *np = realloc(b->p, cap);
    if (!np) return MP_ENOMEM;
    b->p = np;
    b->cap = cap;
    return 0;
}

/* string_util::DecodeUTF8 validity: 1 for a malformed byte (and *n = 1). */
static int utf8_invalid(const uint8_t *s, size_t len, size_t *n) {
    uint8_t c = s[0];
    if (c < 0x80) {
        *n = 1;
        return 0;
    }
    if (len >= 2 && (c & 0xE0) == 0xC0) {
        uint32_t cp = (uint32_t)(c & 0x1F) << 6 | (s[1] & 0x3F);
        if ((s[1] & 0xC0) == 0x80 && cp >= 0x80) {
            *n = 2;
            return 0;
        }
    } else if (len >= 3 && (c & 0xF0) == 0xE0) {
        uint32_t cp = (uint32_t)(c & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
        if ((s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 && cp >= 0x800 &&
            (cp < 0xD800 || cp >= 0xE000)) {
            *n = 3;
            return 0;
        }
    } else if (len >= 4 && (c & 0xF8) == 0xF0) {
        uint32_t cp = (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
                      (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
        if ((s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80 &&
            cp >= 0x10000 && cp <= 0x10FFFF) {
            *n = 4;
            return 0;
        }
    }
    *n = 1;
    return 1;
}

/* Longest user-defined piece that prefixes s[0..len), 0 if none. */
static size_t user_prefix(const mp_tokenizer *t, const char *s, size_t len) {
    for (int k = 0; k < t->n_user_lens; k++) {
        size_t n = t->user_lens[k];
        if (n > len) continue;
        int32_t id = tok_find(t, s, n, 0);
        if (id >= 0 && t->pieces[id].type == PT_USER) return n;
    }
    return 0;
}

/* Darts-clone commonPrefixSearch keeping the longest of the first
 * TRIE_MAX_RESULTS matches; every array access is bounds-checked. */
static size_t trie_longest(const mp_tokenizer *t, const uint8_t *s, size_t len, uint32_t *value) {
    const uint32_t *a = t->trie;
    size_t n = t->trie_units, best = 0;
    int found = 0;
    uint32_t unit = a[0];
    size_t pos = (unit >> 10) << ((unit & (1u << 9)) >> 6);
    for (size_t i = 0; i < len; i++) {
        pos ^= s[i];
        if (pos >= n) return best;
        unit = a[pos];
        if ((unit & ((1u << 31) | 0xFF)) != s[i]) return best;
        pos ^= (unit >> 10) << ((unit & (1u << 9)) >> 6);
        if ((unit >> 8) & 1) {
            if (pos >= n) return best;
            if (found < TRIE_MAX_RESULTS) {
                *value = a[pos] & 0x7FFFFFFFu;
                best = i + 1;
            }
            found++;
        }
    }
    return best;
}

/* NormalizePrefix: the normalized text *out (*out_len bytes) of the next
 * piece of input, and how many input bytes it consumes. */
static size_t normalize_prefix(const mp_tokenizer *t, const char *in, size_t len, const char **out,
                               size_t *out_len) {
    if (t->n_user_lens) {
        size_t m = user_prefix(t, in, len);
        if (m) {
            *out = in;
            *out_len = m;
            return m;
        }
    }
    if (t->trie) {
        uint32_t value = 0;
        size_t m = trie_longest(t, (const uint8_t *)in, len, &value);
        if (m) {
            if (value >= t->norm_strs_len) {
                *out = "";
                *out_len = 0;
            } else {
                *out = t->norm_strs + value;
                *out_len = strlen(*out); /* norm_strs is NUL-terminated at its end */
            }
            return m;
        }
    }
    size_t n;
    if (utf8_invalid((const uint8_t *)in, len, &n)) {
        *out = REPLACEMENT_CHAR;
        *out_len = 3;
        return 1;
    }
    *out = in;
    *out_len = n;
    return n;
}

static int is_one_space(const char *s, size_t n) { return n == 1 && s[0] == ' '; }

static int normalize(const mp_tokenizer *t, const char *in, size_t len, tok_buf *o) {
    o->len = 0;
    size_t pos = 0;
    const char *sp;
    size_t sp_len;
    if (t->remove_extra_ws) {
        while (pos < len) {
            size_t c = normalize_prefix(t, in + pos, len - pos, &sp, &sp_len);
            if (!is_one_space(sp, sp_len)) break;
            pos += c;
        }
    }
    if (pos == len) return 0;
    const char *ws = t->escape_ws ? SPACE_SYMBOL : " ";
    size_t ws_len = t->escape_ws ? 3 : 1;
    if (buf_reserve(o, (len - pos) * 3 + 8) < 0) return MP_ENOMEM;
    if (!t->ws_as_suffix && t->add_dummy_prefix) {
        memcpy(o->p + o->len, ws, ws_len);
        o->len += ws_len;
    }
    int prev_space = t->remove_extra_ws;
    while (pos < len) {
        size_t c = normalize_prefix(t, in + pos, len - pos, &sp, &sp_len);
        while (prev_space && sp_len && sp[0] == ' ') {
            sp++;
            sp_len--;
        }
        if (sp_len) {
            if (buf_reserve(o, sp_len * 3) < 0) return MP_ENOMEM;
            char *w = o->p + o->len;
            for (size_t k = 0; k < sp_len; k++) {
                if (sp[k] == ' ' && t->escape_ws) {
                    memcpy(w, SPACE_SYMBOL, 3);
                    w += 3;
                } else {
                    *w++ = sp[k];
                }
            }
            o->len = (size_t)(w - o->p);
            prev_space = sp[sp_len - 1] == ' ';
        }
        pos += c;
        if (!t->remove_extra_ws) prev_space = 0;
    }
    if (t->remove_extra_ws)
        while (o->len >= ws_len && memcmp(o->p + o->len - ws_len, ws, ws_len) == 0) o->len -= ws_len;
    if (t->ws_as_suffix && t->add_dummy_prefix) {
        if (buf_reserve(o, ws_len) < 0) return MP_ENOMEM;
        memcpy(o->p + o->len, ws, ws_len);
        o->len += ws_len;
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * BPE (bpe_model.cc Model::Encode).
 */

typedef struct {
    int32_t prev, next; /* linked list of live symbols, -1 at the ends */
    uint32_t start, len; /* bytes of the normalized text; len 0 = merged away */
    int freeze;          /* user-defined piece: never merged */
} tok_sym;

typedef struct {
    float score;
    int32_t left, right;
    uint32_t size; /* bytes of the merged piece, to detect stale entries */
} tok_pair;

typedef struct {
    uint32_t start, len, left_len; /* an UNUSED merge seen: piece -> left + right */
} tok_revmerge;

typedef struct {
    const mp_tokenizer *t;
    const char *text; /* normalized */
    tok_sym *sym;
    tok_pair *heap;
    size_t n_heap;
    tok_revmerge *rev;
    size_t n_rev, cap_rev;
    int32_t *ids;
    size_t n_ids;
    int prev_unk; /* last emitted piece was unknown (PopulateSentencePieceText) */
} bpe_state;

/* h1 goes first: higher score, then the leftmost (SymbolPairComparator). */
static int pair_before(const tok_pair *a, const tok_pair *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(bpe_state *s, tok_pair p) {
    size_t i = s->n_heap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pair_before(&p, &s->heap[up])) break;
        s->heap[i] = s->heap[up];
        i = up;
    }
    s->heap[i] = p;
}

static tok_pair heap_pop(bpe_state *s) {
    tok_pair top = s->heap[0], last = s->heap[--s->n_heap];
    size_t i = 0, n = s->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_before(&s->heap[c + 1], &s->heap[c])) c++;
        if (!pair_before(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = last;
    return top;
}

static int maybe_add_pair(bpe_state *s, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return 0;
    const tok_sym *l = &s->sym[left], *r = &s->sym[right];
    if (l->freeze || r->freeze) return 0;
    uint32_t size = l->len + r->len;
    if (size > s->t->max_piece_len) return 0;
    int32_t id = tok_find(s->t, s->text + l->start, size, 0);
    if (id < 0) return 0;
    tok_pair p = {s->t->pieces[id].score, left, right, size};
    heap_push(s, p);
    if (s->t->pieces[id].type == PT_UNUSED) {
        if (s->n_rev == s->cap_rev) {
            size_t cap = s->cap_rev ? s->cap_rev * 2 : 16;
            tok_revmerge *nr = realloc(s->rev, cap * sizeof *nr);
            if (!nr) return MP_ENOMEM;
            s->rev = nr;
            s->cap_rev = cap;
        }
        tok_revmerge rm = {l->start, size, l->len};
        s->rev[s->n_rev++] = rm;
    }
    return 0;
}

/* Emit the ids of one final piece: resegment UNUSED pieces, byte-fall-back
 * unknown ones (PopulateSentencePieceText). */
static void emit_piece(bpe_state *s, uint32_t start, uint32_t len) {
    const mp_tokenizer *t = s->t;
    const char *w = s->text + start;
    int32_t id = tok_piece_to_id(t, w, len);
    if (t->pieces[id].type == PT_UNUSED) {
        for (size_t k = s->n_rev; k-- > 0;) {
            const tok_revmerge *rm = &s->rev[k];
            if (rm->len == len && memcmp(s->text + rm->start, w, len) == 0) {
                uint32_t left = rm->left_len;
                emit_piece(s, start, left);
                emit_piece(s, start + left, len - left);
                return;
            }
        }
    }
    int is_unk = t->pieces[id].type == PT_UNKNOWN;
    if (is_unk && t->byte_fallback) {
        for (uint32_t k = 0; k < len; k++) s->ids[s->n_ids++] = t->byte_ids[(uint8_t)w[k]];
    } else if (!(is_unk && s->prev_unk)) {
        s->ids[s->n_ids++] = id; /* a run of unknown pieces gives one <unk> */
    }
    s->prev_unk = is_unk;
}

static int bpe_encode(bpe_state *s, size_t norm_len) {
    const mp_tokenizer *t = s->t;
    size_t n = 0;
    /* split into characters / user-defined pieces */
    for (size_t pos = 0; pos < norm_len;) {
        static const uint8_t one_char_len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
        size_t m = t->n_user_lens ? user_prefix(t, s->text + pos, norm_len - pos) : 0;
        int freeze = m > 0;
        if (!m) {
            m = one_char_len[(uint8_t)s->text[pos] >> 4];
            if (m > norm_len - pos) m = norm_len - pos;
        }
        tok_sym *y = &s->sym[n];
        y->prev = (int32_t)n - 1;
        y->next = pos + m < norm_len ? (int32_t)n + 1 : -1;
        y->start = (uint32_t)pos;
        y->len = (uint32_t)m;
        y->freeze = freeze;
        n++;
        pos += m;
    }
    for (size_t i = 1; i < n; i++) MP_TRY(maybe_add_pair(s, (int32_t)i - 1, (int32_t)i));
    while (s->n_heap) {
        tok_pair top = heap_pop(s);
        tok_sym *l = &s->sym[top.left], *r = &s->sym[top.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != top.size) continue;
        l->len += r->len;
        l->next = r->next;
        if (r->next >= 0) s->sym[r->next].prev = top.left;
        r->len = 0;
        MP_TRY(maybe_add_pair(s, l->prev, top.left));
        MP_TRY(maybe_add_pair(s, top.left, l->next));
    }
    for (int32_t i = n ? 0 : -1; i >= 0; i = s->sym[i].next) emit_piece(s, s->sym[i].start, s->sym[i].len);
    return 0;
}

int mp_tokenizer_encode(const mp_tokenizer *tok, const char *text, size_t len, int add_bos, int32_t **ids,
                        size_t *n_ids, mp_error *err) {
    *ids = NULL;
    *n_ids = 0;
    int rc = 0;
    tok_buf norm = {NULL, 0, 0};
    bpe_state s;
    memset(&s, 0, sizeof s);
    s.t = tok;
    if (normalize(tok, text, len, &norm) < 0) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory normalizing %zu bytes", len);
        goto cleanup;
    }
    if (norm.len > 0x7FFFFFF0u) {
        rc = mp_fail(err, MP_EINPUT, "text too long to encode (%zu bytes)", len);
        goto cleanup;
    }
    /* ids <= bytes: every final piece yields one id or one per byte */
    s.ids = malloc((norm.len + 1) * sizeof *s.ids);
    if (norm.len) {
        s.sym = malloc(norm.len * sizeof *s.sym);
        s.heap = malloc(3 * norm.len * sizeof *s.heap); /* n-1 initial + 2 per merge */
    }
    if (!s.ids || (norm.len && (!s.sym || !s.heap))) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory encoding %zu bytes", len);
        goto cleanup;
    }
    if (add_bos && tok->bos_id >= 0) s.ids[s.n_ids++] = tok->bos_id;
    s.text = norm.p;
    if (norm.len && bpe_encode(&s, norm.len) < 0) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory encoding %zu bytes", len);
        goto cleanup;
    }
    *ids = s.ids;
    *n_ids = s.n_ids;
    s.ids = NULL;
cleanup:
    free(s.ids);
    free(s.sym);
    free(s.heap);
    free(s.rev);
    free(norm.p);
    return rc;
}

/* A cut point near `at`: just before a space that follows a non-space,
 * searched back to at/2 and then forward to 2*at; else the UTF-8 character
 * boundary at or before `at`. */
static size_t prefix_cut(const char *text, size_t len, size_t at) {
    for (size_t p = at; p > at / 2 && p > 0; p--)
        if (text[p] == ' ' && text[p - 1] != ' ') return p;
    for (size_t p = at + 1; p < len && p / 2 <= at; p++)
        if (text[p] == ' ' && text[p - 1] != ' ') return p;
    size_t p = at;
    while (p > 0 && ((uint8_t)text[p] & 0xC0) == 0x80) p--;
    return p ? p : at;
}

int mp_tokenizer_encode_upto(const mp_tokenizer *tok, const char *text, size_t len, int add_bos, int64_t max_ids,
                             int32_t **ids, size_t *n_ids, int *truncated, mp_error *err) {
    *truncated = 0;
    if (max_ids < 0) return mp_tokenizer_encode(tok, text, len, add_bos, ids, n_ids, err);
    const size_t want = (size_t)max_ids + 16; /* margin past the budget */
    const size_t bos = add_bos && tok->bos_id >= 0;
    for (size_t at = want * 8 + 64;; at = at > len / 2 ? len : at * 2) {
        size_t cut = at >= len ? len : prefix_cut(text, len, at);
        MP_TRY(mp_tokenizer_encode(tok, text, cut, add_bos, ids, n_ids, err));
        if (cut == len || *n_ids - bos >= want) break;
        free(*ids); /* too few tokens in this prefix: a longer one */
        *ids = NULL;
    }
    if (*n_ids - bos > (size_t)max_ids) {
        *n_ids = bos + (size_t)max_ids;
        *truncated = 1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Decoding (SentencePieceProcessor::Decode).
 */

static int buf_put(tok_buf *b, const char *s, size_t n) {
    if (buf_reserve(b, n) < 0) return MP_ENOMEM;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

/* Append s with U+2581 replaced by ' '. */
static int buf_put_unescaped(tok_buf *b, const char *s, size_t n) {
    if (buf_reserve(b, n) < 0) return MP_ENOMEM;
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && memcmp(s + i, SPACE_SYMBOL, 3) == 0) {
            b->p[b->len++] = ' ';
            i += 3;
        } else {
            b->p[b->len++] = s[i++];
        }
    }
    return 0;
}

/* ProcessBytePieces: valid UTF-8 sequences as is, each malformed byte U+FFFD. */
static int flush_bytes(tok_buf *b, const uint8_t *bytes, size_t n) {
    for (size_t off = 0; off < n;) {
        size_t c;
        if (utf8_invalid(bytes + off, n - off, &c)) MP_TRY(buf_put(b, REPLACEMENT_CHAR, 3));
        else MP_TRY(buf_put(b, (const char *)bytes + off, c));
        off += c;
    }
    return 0;
}

static int decode_run(const mp_tokenizer *t, const int32_t *ids, size_t n, tok_buf *b, uint8_t *bytes) {
    size_t n_bytes = 0;
    int is_bos_ws = 1, bos_ws_seen = 0;
    for (size_t i = 0; i < n; i++) {
        const tok_piece *pp = &t->pieces[ids[i]];
        const char *s = t->strings + pp->off;
        /* Decode re-looks the id up from the piece text (PieceToId). */
        int32_t id = tok_piece_to_id(t, s, pp->len);
        int type = t->pieces[id].type;
        if (type == PT_BYTE) {
            bytes[n_bytes++] = (uint8_t)piece_to_byte(s, pp->len);
            continue;
        }
        MP_TRY(flush_bytes(b, bytes, n_bytes));
        n_bytes = 0;
        if (bos_ws_seen || b->len) is_bos_ws = 0;
        bos_ws_seen = 0;
        if (type == PT_CONTROL) continue;
        if (type == PT_UNKNOWN) {
            /* IdToPiece(id) == piece always holds when decoding ids */
            MP_TRY(buf_put(b, t->unk_surface, strlen(t->unk_surface)));
            continue;
        }
        size_t len = pp->len;
        if (is_bos_ws && (t->add_dummy_prefix || t->remove_extra_ws) && len >= 3 &&
            memcmp(s, SPACE_SYMBOL, 3) == 0) {
            s += 3;
            len -= 3;
            bos_ws_seen = !t->remove_extra_ws;
        }
        MP_TRY(buf_put_unescaped(b, s, len));
    }
    return flush_bytes(b, bytes, n_bytes);
}

int mp_tokenizer_decode(const mp_tokenizer *tok, const int32_t *ids, size_t n_ids, char **text, size_t *len,
                        mp_error *err) {
    *text = NULL;
    *len = 0;
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= tok->n_pieces)
            return mp_fail(err, MP_EINPUT, "token id %ld out of range (vocabulary size %d)", (long)ids[i],
                           tok->n_pieces);
    int rc = 0;
    tok_buf b = {NULL, 0, 0};
    uint8_t *bytes = malloc(n_ids ? n_ids : 1);
    if (!bytes || buf_reserve(&b, n_ids * 4 + 1) < 0 || decode_run(tok, ids, n_ids, &b, bytes) < 0 ||
        buf_reserve(&b, 1) < 0) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory decoding %zu ids", n_ids);
        goto cleanup;
    }
    b.p[b.len] = '\0';
    *text = b.p;
    *len = b.len;
    b.p = NULL;
cleanup:
    free(bytes);
    free(b.p);
    return rc;
}

int mp_tokenizer_decode_piece(const mp_tokenizer *tok, int prev_id, int id, char *buf, size_t cap) {
    if (id < 0 || id >= tok->n_pieces || cap == 0) return -1;
    const tok_piece *p = &tok->pieces[id];
    const char *s = tok->strings + p->off;
    size_t n = 0;
    if (p->type == PT_CONTROL) {
        buf[0] = '\0';
        return 0;
    }
    if (p->type == PT_BYTE) {
        if (cap < 2) return -1;
        buf[0] = (char)piece_to_byte(s, p->len);
        buf[1] = '\0';
        return 1;
    }
    if (p->type == PT_UNKNOWN) {
        n = strlen(tok->unk_surface);
        if (n + 1 > cap) return -1;
        memcpy(buf, tok->unk_surface, n + 1);
        return (int)n;
    }
    size_t len = p->len;
    int at_start = prev_id < 0 || (tok->bos_id >= 0 && prev_id == tok->bos_id);
    if (at_start && (tok->add_dummy_prefix || tok->remove_extra_ws) && len >= 3 &&
        memcmp(s, SPACE_SYMBOL, 3) == 0) {
        s += 3;
        len -= 3;
    }
    for (size_t i = 0; i < len;) {
        if (n + 2 > cap) return -1;
        if (i + 3 <= len && memcmp(s + i, SPACE_SYMBOL, 3) == 0) {
            buf[n++] = ' ';
            i += 3;
        } else {
            buf[n++] = s[i++];
        }
    }
    buf[n] = '\0';
    return (int)n;
}
