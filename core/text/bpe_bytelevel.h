/* core/text/bpe_bytelevel.h — GPT-2 style byte-level BPE (the tokenizer of RoBERTa
 * and GPT-2): vocab.json (token -> id) + merges.txt (ranked pairs), as in a
 * Hugging Face model directory.
 *
 * Encoding, as GPT-2's encoder.py / HF's ByteLevel pre-tokenizer with
 * add_prefix_space = false:
 *   1. split the text with GPT-2's pattern
 *        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      implemented by hand (no regex engine); \p{L}, \p{N} and \s are
 *      approximated by tables (see mp_bbpe_class): exact for ASCII and
 *      Latin-1, Latin Extended, Greek, Cyrillic, CJK ideographs, Hangul, kana,
 *      the common punctuation/symbol/emoji blocks; other scripts' marks and
 *      digits fall back to "letter" (documented in docs/toxicity.md);
 *   2. map every byte of a piece to its printable stand-in (bytes_to_unicode);
 *   3. merge symbol pairs by lowest merges.txt rank until none applies;
 *   4. look the symbols up in vocab.json (missing symbol -> the "<unk>" id
 *      when the vocab has one, else MP_EINPUT).
 * Invalid UTF-8 bytes are classified as "other" (punctuation class) and still
 * encoded byte by byte, so every input encodes.
 *
 * Ownership: mp_bbpe_load allocates everything; mp_bbpe_free(NULL) is a no-op.
 */
#ifndef MP_BPE_BYTELEVEL_H
#define MP_BPE_BYTELEVEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"

typedef struct mp_bbpe mp_bbpe;

/* Load vocab.json and merges.txt ("#version" first line optional).
 * @return 0, MP_EIO (cannot read a file) or MP_EINPUT (malformed JSON, a
 *         merge line that is not "A B", an id out of range, duplicate ids). */
int mp_bbpe_load(const char *vocab_json, const char *merges_txt, mp_bbpe **out, mp_error *err);
void mp_bbpe_free(mp_bbpe *t);

/* Number of ids (max id + 1). */
int mp_bbpe_vocab_size(const mp_bbpe *t);

/* Id of a token string as written in vocab.json ("<s>", "Ġthe"); -1 if absent. */
int mp_bbpe_token_id(const mp_bbpe *t, const char *token);

/* Encode len bytes (no special tokens added); appends to *ids (realloc'ed,
 * *n ids so far, *cap capacity; start with NULL/0/0).
 * @return 0, MP_EINPUT (a symbol with no id and no <unk>) or MP_ENOMEM. */
int mp_bbpe_encode(const mp_bbpe *t, const char *text, size_t len, int32_t **ids, size_t *n, size_t *cap,
                   mp_error *err);

/* Character class used by the pre-tokenizer for code point cp:
 * 'L' letter, 'N' number, 'S' whitespace, 'P' anything else. */
int mp_bbpe_class(uint32_t cp);

#endif
