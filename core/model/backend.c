/* core/model/backend.c — backend discovery and the backend table (see
 * backend.h). The CPU entry lives here; the CUDA entry is defined by cuda/
 * (cuda/backend_cuda.c) and reached only through the table declared in
 * backend.h, so core never includes a cuda/ header.
 *
 * Where the CUDA entry comes from: an executable that links cuda/ statically
 * (the CUDA tests and benches) defines mp_cuda_backend_ops; the CLI does not,
 * and loads the module libmonet-probe-cuda.so from its own folder (or
 * $MP_CUDA_MODULE) the first time a command asks for CUDA. Linking cuBLAS
 * into the CLI cost about 1 s and 220 MB of RSS at every start, --help
 * included; a machine without an NVIDIA driver never loads it. */
#include "core/model/backend.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/model/sampling.h"

#define MP_CUDA_MODULE "libmonet-probe-cuda.so"

static struct {
    pthread_once_t once;
    const mp_backend_ops *ops; /* NULL: not available, why says why */
    char why[600];
} g_cuda = {PTHREAD_ONCE_INIT, NULL, ""};

/* The module's path: $MP_CUDA_MODULE, else next to the running executable. */
static int cuda_module_path(char *buf, size_t cap) {
    const char *env = getenv("MP_CUDA_MODULE");
    if (env && *env) return (size_t)snprintf(buf, cap, "%s", env) < cap ? 0 : -1;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return -1;
    *slash = '\0';
    return (size_t)snprintf(buf, cap, "%s/%s", exe, MP_CUDA_MODULE) < cap ? 0 : -1;
}

static void cuda_load(void) {
    if (&mp_cuda_backend_ops != NULL) { /* linked in */
        g_cuda.ops = &mp_cuda_backend_ops;
        return;
    }
    char path[4200];
    if (cuda_module_path(path, sizeof path) < 0 || access(path, R_OK) != 0) {
        snprintf(g_cuda.why, sizeof g_cuda.why, "CUDA backend not built (no %s next to the binary: nvcc not found "
                 "at configure time)", MP_CUDA_MODULE);
        return;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(g_cuda.why, sizeof g_cuda.why, "no CUDA device (cannot load %.200s: %.300s)", path, e ? e : "?");
        return;
    }
    const mp_backend_ops *ops = (const mp_backend_ops *)dlsym(h, "mp_cuda_backend_ops");
    if (!ops) {
        snprintf(g_cuda.why, sizeof g_cuda.why, "no CUDA device (%.400s has no mp_cuda_backend_ops)", path);
        dlclose(h);
        return;
    }
    g_cuda.ops = ops; /* the module stays loaded for the life of the process */
}

/* The CUDA table, loading the module on first use; NULL with g_cuda.why. */
static const mp_backend_ops *cuda_ops(void) {
    pthread_once(&g_cuda.once, cuda_load);
    return g_cuda.ops;
}

int mp_backend_cuda_built(void) {
    char path[4200];
    return &mp_cuda_backend_ops != NULL || (cuda_module_path(path, sizeof path) == 0 && access(path, R_OK) == 0);
}

/* An NVIDIA driver is present (device nodes, or WSL2's /dev/dxg): without
 * one the module (cuBLAS, about 1 s to load) is not worth loading. */
static int nvidia_driver_present(void) {
    return access("/dev/nvidiactl", F_OK) == 0 || access("/proc/driver/nvidia/version", F_OK) == 0 ||
           access("/dev/dxg", F_OK) == 0;
}

int mp_backend_cuda_devices(char *desc, size_t cap) {
    if (!mp_backend_cuda_built()) {
        snprintf(desc, cap, "CUDA backend not built (nvcc not found at configure time)");
        return 0;
    }
    if (&mp_cuda_backend_ops == NULL && !nvidia_driver_present()) {
        snprintf(desc, cap, "no CUDA device (no NVIDIA driver: /dev/nvidiactl not found)");
        return 0;
    }
    const mp_backend_ops *ops = cuda_ops();
    if (!ops) {
        snprintf(desc, cap, "%s", g_cuda.why);
        return 0;
    }
    return ops->devices(desc, cap);
}

int mp_device_parse(const char *s, mp_device *out, mp_error *err) {
    if (!strcmp(s, "cpu")) *out = MP_DEVICE_CPU;
    else if (!strcmp(s, "cuda")) *out = MP_DEVICE_CUDA;
    else if (!strcmp(s, "auto")) *out = MP_DEVICE_AUTO;
    else return mp_fail(err, MP_EINPUT, "unknown device '%s' (expected cpu, cuda or auto)", s);
    return 0;
}

const char *mp_device_name(mp_device d) {
    return d == MP_DEVICE_CUDA ? "cuda" : d == MP_DEVICE_CPU ? "cpu" : "auto";
}

int mp_device_resolve(mp_device req, mp_device *out, mp_error *err) {
    const char *env = getenv("MP_DEVICE");
    if (req == MP_DEVICE_AUTO && env && *env) {
        MP_TRY(mp_device_parse(env, &req, err));
    }
    if (req == MP_DEVICE_CPU) {
        *out = MP_DEVICE_CPU;
        return 0;
    }
    char desc[256];
    int n = mp_backend_cuda_devices(desc, sizeof desc);
    if (n > 0) {
        *out = MP_DEVICE_CUDA;
        return 0;
    }
    if (req == MP_DEVICE_AUTO) {
        *out = MP_DEVICE_CPU;
        return 0;
    }
    /* device.cu says "no CUDA device (<driver reason>)": keep the reason */
    const char *r = desc;
    size_t len = strlen(desc);
    if (!strncmp(desc, "no CUDA device (", 16) && len > 17 && desc[len - 1] == ')') {
        r = desc + 16;
        len -= 17;
    }
    return mp_fail(err, MP_EUNSUPPORTED, "no CUDA device: %.*s", (int)len, r);
}

/* ---- reference batched prefill ------------------------------------------------- */

int mp_engine_score_rows(const float *logits, size_t n, int vocab, const int32_t *targets, double *lp, uint8_t *am,
                         mp_error *err) {
    for (size_t t = 0; t < n; t++) {
        int32_t y = targets[t];
        MP_FAIL_IF(y >= vocab, err, MP_EINPUT, "target token %d outside the vocabulary (%d)", (int)y, vocab);
        const float *row = logits + t * (size_t)vocab;
        if (lp) lp[t] = y < 0 ? NAN : mp_logprob(row, vocab, y);
        if (am) {
            int best = 0;
            for (int v = 1; v < vocab; v++)
                if (row[v] > row[best]) best = v;
            am[t] = y >= 0 && best == y;
        }
    }
    return 0;
}

int mp_engine_prefill_each(const mp_backend_ops *ops, void *const *states, const mp_engine_batch *b, int vocab,
                           mp_error *err) {
    const size_t V = (size_t)vocab;
    const int scores = b->targets && (b->logprobs || b->is_argmax);
    float *tmp = NULL;
    size_t tmp_rows = 0;
    int rc = 0;
    for (size_t s = 0; s < b->n_seqs && rc == 0; s++) {
        const size_t o = b->off[s], n = b->off[s + 1] - o;
        void *st = states[b->slot ? (size_t)b->slot[s] : s];
        mp_routing *rt = b->routing ? &b->routing[s] : NULL;
        if (!scores) {
            float *lg = !b->logits ? NULL : b->last_only ? b->logits + s * V : b->logits + o * V;
            rc = ops->forward(st, b->ids + o, n, lg, b->last_only, rt, err);
            continue;
        }
        /* every row is needed: the caller's per-token logits, or a scratch */
        float *rows = b->logits && !b->last_only ? b->logits + o * V : NULL;
        if (!rows) {
            if (n > tmp_rows) {
                free(tmp);
                tmp_rows = 0;
                if (!(tmp = malloc(n * V * sizeof *tmp))) {
                    rc = mp_fail(err, MP_ENOMEM, "out of memory for %zu x %d logits", n, vocab);
                    break;
                }
                tmp_rows = n;
            }
            rows = tmp;
        }
        if ((rc = ops->forward(st, b->ids + o, n, rows, 0, rt, err)) < 0) break;
        rc = mp_engine_score_rows(rows, n, vocab, b->targets + o, b->logprobs ? b->logprobs + o : NULL,
                                  b->is_argmax ? b->is_argmax + o : NULL, err);
        if (rc == 0 && b->logits && b->last_only) memcpy(b->logits + s * V, rows + (n - 1) * V, V * sizeof *rows);
    }
    free(tmp);
    return rc;
}

/* ---- CPU entry: core/model/forward.h ------------------------------------------- */

static int cpu_create(const mp_model *m, int max_ctx, int max_chunk, void **st, mp_error *err) {
    mp_state *s = NULL;
    MP_TRY(mp_state_create(m, max_ctx, max_chunk, &s, err));
    *st = s;
    return 0;
}
static void cpu_destroy(void *s) { mp_state_free(s); }
static void cpu_reset(void *s) { mp_state_reset(s); }
static int cpu_pos(const void *s) { return mp_state_pos(s); }
static int cpu_max_ctx(const void *s) { return mp_state_max_ctx(s); }
static int cpu_rewind(void *s, int pos, mp_error *err) { return mp_state_rewind(s, pos, err); }
static int cpu_set_mask(void *s, const mp_mask *mask, mp_error *err) { return mp_state_set_mask(s, mask, err); }
static int cpu_copy_cache(void *dst, const void *src, int n, mp_error *err) {
    return mp_state_copy_cache(dst, src, n, err);
}
static int cpu_set_steering(void *s, const mp_steer *list, size_t n, mp_error *err) {
    return mp_state_set_steering(s, list, n, err);
}
static int cpu_forward(void *s, const int32_t *ids, size_t n, float *logits, int last_only, mp_routing *routing,
                       mp_error *err) {
    return mp_forward(s, ids, n, logits, last_only, routing, err);
}

static int cpu_devices(char *desc, size_t cap) {
    snprintf(desc, cap, "host CPU");
    return 1;
}

static const mp_backend_ops CPU_OPS;

/* One mp_state per slot. A batch of one token per sequence (a decoding step
 * of B sequences) runs as one mp_forward_steps: the dense projections, router
 * and lm_head read each weight once for the B rows, bit-identical to one by
 * one. Other batches run the sequences one after the other (the dense GEMMs
 * are already batched over each sequence's tokens). */
static int cpu_prefill(void *const *states, const mp_engine_batch *b, int vocab, mp_error *err) {
    const size_t n = b->n_seqs, V = (size_t)vocab;
    int steps = n > 1 && b->off[n] == n;
    if (!steps) return mp_engine_prefill_each(&CPU_OPS, states, b, vocab, err);
    mp_state **st = malloc(n * sizeof *st);
    const int scores = b->targets && (b->logprobs || b->is_argmax);
    float *tmp = scores && !b->logits ? malloc(n * V * sizeof *tmp) : NULL;
    int rc = 0;
    if (!st || (scores && !b->logits && !tmp)) rc = mp_fail(err, MP_ENOMEM, "out of memory for a decoding step");
    for (size_t s = 0; rc == 0 && s < n; s++) st[s] = states[b->slot ? (size_t)b->slot[s] : s];
    float *rows = b->logits ? b->logits : tmp; /* one token per sequence: row s is sequence s either way */
    if (rc == 0) rc = mp_forward_steps(st, n, b->ids, rows, b->routing, err);
    if (rc == 0 && scores)
        rc = mp_engine_score_rows(rows, n, vocab, b->targets, b->logprobs, b->is_argmax, err);
    free(tmp);
    free(st);
    return rc;
}

static const mp_backend_ops CPU_OPS = {"cpu",       cpu_devices, cpu_create,   cpu_destroy,      cpu_reset,  cpu_pos,
                                       cpu_max_ctx, cpu_rewind,  cpu_set_mask, cpu_set_steering, cpu_forward,
                                       cpu_prefill, 0,         cpu_copy_cache};


struct mp_engine {
    const mp_backend_ops *ops;
    mp_device dev;
    int vocab;
    int n_slots;
    void **slots; /* [n_slots] backend states, one KV cache each */
    int *seen;    /* [n_slots] scratch: slot used in the current batch */
};

static int engine_new(const mp_backend_ops *ops, mp_device dev, const mp_model *m, int n_slots, int max_ctx,
                      int max_chunk, mp_engine **out, mp_error *err);

int mp_engine_create(const mp_model *m, mp_device dev, int max_ctx, int max_chunk, mp_engine **out, mp_error *err) {
    return mp_engine_create_slots(m, dev, 1, max_ctx, max_chunk, out, err);
}

int mp_engine_create_slots(const mp_model *m, mp_device dev, int n_slots, int max_ctx, int max_chunk,
                           mp_engine **out, mp_error *err) {
    *out = NULL;
    MP_TRY(mp_device_resolve(dev, &dev, err));
    const mp_backend_ops *ops = &CPU_OPS;
    if (dev == MP_DEVICE_CUDA && !(ops = cuda_ops()))
        return mp_fail(err, MP_EINPUT, "--device cuda: %s", g_cuda.why);
    return engine_new(ops, dev, m, n_slots, max_ctx, max_chunk, out, err);
}

int mp_engine_create_ops(const mp_backend_ops *ops, const mp_model *m, int n_slots, int max_ctx, int max_chunk,
                         mp_engine **out, mp_error *err) {
    *out = NULL;
    return engine_new(ops, MP_DEVICE_CPU, m, n_slots, max_ctx, max_chunk, out, err);
}

static int engine_new(const mp_backend_ops *ops, mp_device dev, const mp_model *m, int n_slots, int max_ctx,
                      int max_chunk, mp_engine **out, mp_error *err) {
    MP_FAIL_IF(n_slots < 1, err, MP_EINPUT, "an engine needs at least one slot (asked %d)", n_slots);
    if (ops->max_slots > 0 && n_slots > ops->max_slots) n_slots = ops->max_slots;
    mp_engine *e = calloc(1, sizeof *e);
    if (!e) return mp_fail(err, MP_ENOMEM, "out of memory");
    e->ops = ops;
    e->dev = dev;
    e->vocab = m->cfg.vocab_size;
    e->slots = calloc((size_t)n_slots, sizeof *e->slots);
    e->seen = calloc((size_t)n_slots, sizeof *e->seen);
    if (!e->slots || !e->seen) {
        mp_engine_free(e);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    for (int k = 0; k < n_slots; k++) {
        int rc = ops->create(m, max_ctx, max_chunk, &e->slots[k], err);
        if (rc < 0) {
            mp_engine_free(e);
            return rc;
        }
        e->n_slots = k + 1;
    }
    *out = e;
    return 0;
}

void mp_engine_free(mp_engine *e) {
    if (!e) return;
    for (int k = 0; k < e->n_slots; k++) e->ops->destroy(e->slots[k]);
    free(e->slots);
    free(e->seen);
    free(e);
}

mp_device mp_engine_device(const mp_engine *e) { return e->dev; }
void mp_engine_reset(mp_engine *e) { e->ops->reset(e->slots[0]); }
int mp_engine_pos(const mp_engine *e) { return e->ops->pos(e->slots[0]); }
int mp_engine_max_ctx(const mp_engine *e) { return e->ops->max_ctx(e->slots[0]); }
int mp_engine_rewind(mp_engine *e, int pos, mp_error *err) { return e->ops->rewind(e->slots[0], pos, err); }
int mp_engine_set_mask(mp_engine *e, const mp_mask *mask, mp_error *err) {
    for (int k = 0; k < e->n_slots; k++) MP_TRY(e->ops->set_mask(e->slots[k], mask, err));
    return 0;
}
int mp_engine_set_steering(mp_engine *e, const mp_steer *list, size_t n, mp_error *err) {
    for (int k = 0; k < e->n_slots; k++) MP_TRY(e->ops->set_steering(e->slots[k], list, n, err));
    return 0;
}
int mp_engine_forward(mp_engine *e, const int32_t *ids, size_t n, float *logits, int last_only, mp_routing *routing,
                      mp_error *err) {
    return e->ops->forward(e->slots[0], ids, n, logits, last_only, routing, err);
}
mp_state *mp_engine_cpu_state(mp_engine *e) { return e->dev == MP_DEVICE_CPU ? e->slots[0] : NULL; }

int mp_engine_slots(const mp_engine *e) { return e->n_slots; }

int mp_engine_slot_pos(const mp_engine *e, int slot) {
    return slot >= 0 && slot < e->n_slots ? e->ops->pos(e->slots[slot]) : 0;
}

int mp_engine_slot_rewind(mp_engine *e, int slot, int pos, mp_error *err) {
    MP_FAIL_IF(slot < 0 || slot >= e->n_slots, err, MP_EINPUT, "slot %d outside 0..%d", slot, e->n_slots - 1);
    if (pos == 0) {
        e->ops->reset(e->slots[slot]);
        return 0;
    }
    return e->ops->rewind(e->slots[slot], pos, err);
}

int mp_engine_slot_copy(mp_engine *e, int src, int dst, int n, mp_error *err) {
    MP_FAIL_IF(src < 0 || src >= e->n_slots || dst < 0 || dst >= e->n_slots || src == dst, err, MP_EINPUT,
               "cannot copy slot %d's cache to slot %d (slots 0..%d)", src, dst, e->n_slots - 1);
    if (!e->ops->copy_cache) return 0;
    MP_TRY(e->ops->copy_cache(e->slots[dst], e->slots[src], n, err));
    return 1;
}

int mp_engine_prefill(mp_engine *e, const mp_engine_batch *b, mp_error *err) {
    if (b->n_seqs == 0) return 0;
    MP_FAIL_IF(!b->off || !b->ids || b->off[0] != 0, err, MP_EINPUT, "batch: no tokens or offsets");
    MP_FAIL_IF(b->n_seqs > (size_t)e->n_slots, err, MP_EINPUT, "batch of %zu sequences, engine has %d slots",
               b->n_seqs, e->n_slots);
    MP_FAIL_IF((b->logprobs || b->is_argmax) && !b->targets, err, MP_EINPUT, "batch: scores asked without targets");
    memset(e->seen, 0, (size_t)e->n_slots * sizeof *e->seen);
    for (size_t s = 0; s < b->n_seqs; s++) {
        int k = b->slot ? b->slot[s] : (int)s;
        MP_FAIL_IF(b->off[s + 1] <= b->off[s], err, MP_EINPUT, "batch: sequence %zu is empty", s);
        MP_FAIL_IF(k < 0 || k >= e->n_slots || e->seen[k], err, MP_EINPUT,
                   "batch: sequence %zu on slot %d (slots 0..%d, each once per call)", s, k, e->n_slots - 1);
        e->seen[k] = 1;
    }
    return e->ops->prefill(e->slots, b, e->vocab, err);
}
