/* core/model/checkpoint.c — checkpoint directory discovery, shard index parsing and
 * tensor lookup with shape/dtype checks (see checkpoint.h). */
#include "core/util/file.h"
#include "core/model/checkpoint.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static int read_small_file(const char *path, char **buf, size_t *len, mp_error *err) {
    FILE *f = NULL;
    MP_TRY(mp_file_fopen_regular(path, &f, NULL, err));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return mp_fail(err, MP_EIO, "%s: cannot seek", path);
    }
    long sz = ftell(f);
    if (sz < 0 || sz > (256L << 20)) {
        fclose(f);
        return mp_fail(err, MP_EINPUT, "%s: unreasonable size for an index file", path);
    }
    rewind(f);
    char *b = malloc((size_t)sz + 1);
    if (!b) {
        fclose(f);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    size_t r = fread(b, 1, (size_t)sz, f);
    fclose(f);
    if (r != (size_t)sz) {
        free(b);
        return mp_fail(err, MP_EIO, "%s: read error", path);
    }
    b[r] = '\0';
    *buf = b;
    *len = r;
    return 0;
}

static int add_shard(mp_checkpoint *ck, const char *path, mp_error *err) {
    mp_safetensors **ns = realloc(ck->shards, (ck->n_shards + 1) * sizeof *ns);
    if (!ns) return mp_fail(err, MP_ENOMEM, "out of memory");
    ck->shards = ns;
    mp_safetensors *st = NULL;
    MP_TRY(mp_safetensors_open(path, &st, err));
    ck->shards[ck->n_shards++] = st;
    ck->file_bytes += st->size;
    return 0;
}

/* Shard file names in an index must be plain names inside the directory. */
static int safe_shard_name(const char *s) {
    return s[0] && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

static int open_sharded(mp_checkpoint *ck, const char *index_path, mp_error *err) {
    char *text = NULL;
    size_t len = 0;
    MP_TRY(read_small_file(index_path, &text, &len, err));
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    int rc = 0;
    if (!root) return mp_fail(err, MP_EINPUT, "%s: not valid JSON", index_path);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm) || !wm->child) {
        rc = mp_fail(err, MP_EINPUT, "%s: missing or empty \"weight_map\" object", index_path);
        goto cleanup;
    }
    /* open each distinct shard file once, in order of first appearance */
    for (const cJSON *e = wm->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !safe_shard_name(e->valuestring)) {
            rc = mp_fail(err, MP_EINPUT, "%s: weight_map[\"%.80s\"] is not a shard file name", index_path, e->string);
            goto cleanup;
        }
        int seen = 0;
        for (const cJSON *p = wm->child; p != e; p = p->next)
            if (!strcmp(p->valuestring, e->valuestring)) {
                seen = 1;
                break;
            }
        if (seen) continue;
        char *sp = path_join(ck->dir, e->valuestring);
        if (!sp) {
            rc = mp_fail(err, MP_ENOMEM, "out of memory");
            goto cleanup;
        }
        if (!file_exists(sp)) {
            rc = mp_fail(err, MP_EINPUT, "%s: names shard \"%s\", which does not exist", index_path, e->valuestring);
            free(sp);
            goto cleanup;
        }
        rc = add_shard(ck, sp, err);
        free(sp);
        if (rc < 0) goto cleanup;
    }
    /* every tensor the index promises must be in the shard it names */
    for (const cJSON *e = wm->child; e; e = e->next) {
        const char *sp = NULL;
        if (!mp_checkpoint_find(ck, e->string, &sp)) {
            rc = mp_fail(err, MP_EINPUT, "%s: tensor \"%.80s\" listed in the index is missing from shard %s",
                         index_path, e->string, e->valuestring);
            goto cleanup;
        }
        const char *base = strrchr(sp, '/');
        base = base ? base + 1 : sp;
        if (strcmp(base, e->valuestring)) {
            rc = mp_fail(err, MP_EINPUT, "%s: tensor \"%.80s\" is in %s, but the index says %s", index_path, e->string,
                         base, e->valuestring);
            goto cleanup;
        }
    }
cleanup:
    cJSON_Delete(root);
    return rc;
}

int mp_checkpoint_open(const char *dir, mp_checkpoint **out, mp_error *err) {
    struct stat sb;
    if (stat(dir, &sb) != 0) return mp_fail(err, MP_EIO, "%s: cannot open model directory: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return mp_fail(err, MP_EINPUT, "%s: not a directory (expected a checkpoint directory)", dir);
    mp_checkpoint *ck = calloc(1, sizeof *ck);
    if (!ck) return mp_fail(err, MP_ENOMEM, "out of memory");
    int rc = 0;
    char *cfg_path = NULL, *single = NULL, *index = NULL;
    ck->dir = strdup(dir);
    cfg_path = path_join(dir, "config.json");
    single = path_join(dir, "model.safetensors");
    index = path_join(dir, "model.safetensors.index.json");
    if (!ck->dir || !cfg_path || !single || !index) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    rc = mp_config_load(cfg_path, &ck->cfg, err);
    if (rc < 0) goto cleanup;
    if (file_exists(index)) rc = open_sharded(ck, index, err);
    else if (file_exists(single)) rc = add_shard(ck, single, err);
    else
        rc = mp_fail(err, MP_EINPUT, "%s: no model.safetensors or model.safetensors.index.json in the directory", dir);
cleanup:
    free(cfg_path);
    free(single);
    free(index);
    if (rc < 0) {
        mp_checkpoint_close(ck);
        return rc;
    }
    *out = ck;
    return 0;
}

void mp_checkpoint_close(mp_checkpoint *ck) {
    if (!ck) return;
    for (size_t i = 0; i < ck->n_shards; i++) mp_safetensors_close(ck->shards[i]);
    free(ck->shards);
    free(ck->dir);
    free(ck);
}

const mp_st_tensor *mp_checkpoint_find(const mp_checkpoint *ck, const char *name, const char **shard_path) {
    for (size_t i = 0; i < ck->n_shards; i++) {
        const mp_st_tensor *t = mp_safetensors_find(ck->shards[i], name);
        if (t) {
            if (shard_path) *shard_path = ck->shards[i]->path;
            return t;
        }
    }
    return NULL;
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (int i = 0; i < ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

int mp_checkpoint_get_float(const mp_checkpoint *ck, const char *name, int ndim, const int64_t *shape,
                            const mp_st_tensor **out, mp_error *err) {
    const char *file = NULL;
    const mp_st_tensor *t = mp_checkpoint_find(ck, name, &file);
    if (!t) {
        const char *where = ck->n_shards == 1 ? ck->shards[0]->path : ck->dir;
        return mp_fail(err, MP_EINPUT, "%s: missing tensor \"%s\"", where, name);
    }
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char want[96], got[96];
        shape_str(want, sizeof want, ndim, shape);
        shape_str(got, sizeof got, t->ndim, t->shape);
        return mp_fail(err, MP_EINPUT, "%s: tensor \"%s\" has shape %s, expected %s from config.json", file, name, got,
                       want);
    }
    if (t->dtype != MP_DT_F32 && t->dtype != MP_DT_F16 && t->dtype != MP_DT_BF16)
        return mp_fail(err, MP_EINPUT, "%s: tensor \"%s\" has dtype %s, expected F32, F16 or BF16", file, name,
                       mp_dtype_name(t->dtype));
    *out = t;
    return 0;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int mp_list_safetensors(const char *dir, char ***names_out, size_t *n_out, mp_error *err) {
    DIR *d = opendir(dir);
    if (!d) return mp_fail(err, MP_EIO, "%s: cannot list: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 12 || strcmp(de->d_name + l - 12, ".safetensors")) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            char **nv = realloc(names, cap * sizeof *nv);
            if (!nv) {
                rc = mp_fail(err, MP_ENOMEM, "out of memory");
                break;
            }
            names = nv;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = mp_fail(err, MP_ENOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (rc < 0) {
        mp_free_names(names, n);
        return rc;
    }
    if (n) qsort(names, n, sizeof *names, cmp_name);
    *names_out = names;
    *n_out = n;
    return 0;
}

void mp_free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}
