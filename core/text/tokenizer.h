/* core/text/tokenizer.h — SentencePiece BPE tokenizer read from a `tokenizer.model`
 * file (protobuf ModelProto), with exact id parity to sentencepiece's
 * spm_encode for BPE models (LLaMA-2's tokenizer and spm_train BPE models).
 *
 * Ownership: mp_tokenizer_load allocates the tokenizer; mp_tokenizer_free
 * releases it (NULL is a no-op). Encoded id arrays are malloc'ed for the
 * caller, who frees them. Piece strings returned by mp_tokenizer_piece borrow
 * from the tokenizer and live as long as it does.
 */
#ifndef MP_TOKENIZER_H
#define MP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"

typedef struct mp_tokenizer mp_tokenizer;

/* Load a SentencePiece model file.
 * @return 0, or MP_EIO (cannot read), MP_EINPUT (not a valid ModelProto, not a
 *         BPE model, ...) with "<path>: <problem>" in err. */
int mp_tokenizer_load(const char *path, mp_tokenizer **out, mp_error *err);

/* Load a SentencePiece model from len bytes in memory (the fuzz target's and
 * the tests' entry point). name only labels error messages ("<name>: ...").
 * The tokenizer copies what it needs; data may be freed afterwards.
 * @return 0, MP_EINPUT (malformed ModelProto, not BPE, inconsistent pieces),
 *         MP_EUNSUPPORTED (a denormalizer charsmap) or MP_ENOMEM. */
int mp_tokenizer_load_from_memory(const void *data, size_t len, const char *name,
                                  mp_tokenizer **out, mp_error *err);
void mp_tokenizer_free(mp_tokenizer *tok);

int mp_tokenizer_vocab_size(const mp_tokenizer *tok);
int mp_tokenizer_bos_id(const mp_tokenizer *tok); /* -1 when the model has none */
int mp_tokenizer_eos_id(const mp_tokenizer *tok);
int mp_tokenizer_unk_id(const mp_tokenizer *tok);

/* Piece types as stored in the model (SentencePiece.Type): 1 NORMAL, 2 UNKNOWN,
 * 3 CONTROL, 4 USER_DEFINED, 5 UNUSED, 6 BYTE; 0 when id is out of range. */
int mp_tokenizer_piece_type(const mp_tokenizer *tok, int id);

/* The piece text of id (as stored: spaces as U+2581, "<0x0A>" for byte pieces);
 * NULL when id is out of range. */
const char *mp_tokenizer_piece(const mp_tokenizer *tok, int id);

/* Encode len bytes of text (need not be NUL-terminated; may be invalid UTF-8)
 * exactly as spm_encode --output_format=id does, prepending BOS when add_bos.
 * @return 0 with *ids (malloc'ed) and *n_ids, or MP_ENOMEM. */
int mp_tokenizer_encode(const mp_tokenizer *tok, const char *text, size_t len, int add_bos,
                        int32_t **ids, size_t *n_ids, mp_error *err);

/* The first max_ids tokens of text (BOS not counted), as mp_tokenizer_encode
 * would give them, but encoding only a prefix: a budgeted reader of a 200 MB
 * line must not build the whole line's symbol table (about 70 bytes per byte).
 * The prefix ends before a space that follows a non-space (a word start),
 * starts at 8 bytes per wanted token and doubles until it yields max_ids + 16
 * tokens or is the whole text. Exact when no piece spans a word start (true
 * of SentencePiece's default split_by_whitespace, e.g. LLaMA-2's tokenizer);
 * otherwise only tokens past the 16-token margin could differ. Text without
 * a word start in reach is cut at a UTF-8 boundary, with the same margin.
 * *truncated is set when the text has more than max_ids tokens.
 * max_ids < 0 encodes everything. */
int mp_tokenizer_encode_upto(const mp_tokenizer *tok, const char *text, size_t len, int add_bos, int64_t max_ids,
                             int32_t **ids, size_t *n_ids, int *truncated, mp_error *err);

/* Decode ids to text the way spm_decode does (U+2581 -> space, byte pieces ->
 * bytes, leading dummy-prefix space removed, BOS/EOS/control pieces dropped).
 * @return 0 with *text (malloc'ed, NUL-terminated) and *len, MP_EINPUT for an
 *         id out of range, or MP_ENOMEM. */
int mp_tokenizer_decode(const mp_tokenizer *tok, const int32_t *ids, size_t n_ids, char **text,
                        size_t *len, mp_error *err);

/* Bytes that id contributes when appended after prev_id during streaming
 * generation (leading space kept unless prev_id is BOS, or prev_id < 0 for
 * "start of text", and the model adds a dummy prefix). Byte pieces give their
 * raw byte (UTF-8 is reassembled by the terminal / caller), control pieces
 * give 0 bytes, the unknown piece gives its surface (" \u2047 ").
 * Writes into buf (at least 64 bytes), NUL-terminated, and returns the byte
 * count, or -1 for a bad id or a piece longer than cap-1 bytes. */
int mp_tokenizer_decode_piece(const mp_tokenizer *tok, int prev_id, int id, char *buf, size_t cap);

#endif
