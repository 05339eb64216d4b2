/* core/model/checkpoint.h — a Hugging Face checkpoint directory: config.json plus
 * model.safetensors, or model-0000k-of-0000n.safetensors shards listed in
 * model.safetensors.index.json. Resolves tensor names across shards and checks
 * shape and dtype of what the model asks for.
 *
 * Ownership: the checkpoint owns its shard mappings; tensors found through it
 * borrow from them and live until mp_checkpoint_close (NULL: no-op).
 */
#ifndef MP_CHECKPOINT_H
#define MP_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "core/model/config.h"
#include "core/util/error.h"
#include "core/model/safetensors.h"

typedef struct mp_checkpoint {
    char *dir;
    mp_config cfg;
    mp_safetensors **shards; /* [n_shards] */
    size_t n_shards;
    size_t file_bytes;       /* total size of the shard files */
} mp_checkpoint;

/* Open dir: parse config.json, map all safetensors shards and validate them;
 * for sharded checkpoints, every weight_map entry must exist in its shard.
 * @return 0, MP_EIO or MP_EINPUT with "<file>: <problem>" in err. */
int mp_checkpoint_open(const char *dir, mp_checkpoint **out, mp_error *err);
void mp_checkpoint_close(mp_checkpoint *ck);

/* Find a tensor by name in any shard; NULL when absent. *shard_path (optional)
 * receives the path of the file holding it. */
const mp_st_tensor *mp_checkpoint_find(const mp_checkpoint *ck, const char *name, const char **shard_path);

/* Find a float tensor (F32/F16/BF16) of exactly the given shape.
 * @return 0, or MP_EINPUT naming the file: missing tensor, wrong shape, wrong
 *         dtype. */
int mp_checkpoint_get_float(const mp_checkpoint *ck, const char *name, int ndim, const int64_t *shape,
                            const mp_st_tensor **out, mp_error *err);

/* The *.safetensors file names in dir (not paths), sorted with strcmp: what
 * model fingerprints hash. *names is malloc'ed; free with mp_free_names.
 * @return 0, MP_EIO (cannot list dir) or MP_ENOMEM. */
int mp_list_safetensors(const char *dir, char ***names, size_t *n, mp_error *err);
void mp_free_names(char **names, size_t n);

#endif
