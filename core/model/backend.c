/* core/model/backend.c — backend discovery and the backend table (see
 * backend.h). The CPU entry lives here; the CUDA entry is defined by cuda/
 * (cuda/backend_cuda.c) and reached only through the table declared in
 * backend.h, so core never includes a cuda/ header. */
#include "core/model/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mp_backend_cuda_built(void) {
#ifdef MP_HAVE_CUDA
    return 1;
#else
    return 0;
#endif
}

int mp_backend_cuda_devices(char *desc, size_t cap) {
#ifdef MP_HAVE_CUDA
    return mp_cuda_backend_ops.devices(desc, cap);
#else
    snprintf(desc, cap, "CUDA backend not built (nvcc not found at configure time)");
    return 0;
#endif
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

static const mp_backend_ops CPU_OPS = {"cpu",       cpu_devices, cpu_create,   cpu_destroy,      cpu_reset,  cpu_pos,
                                       cpu_max_ctx, cpu_rewind,  cpu_set_mask, cpu_set_steering, cpu_forward};


struct mp_engine {
    const mp_backend_ops *ops;
    mp_device dev;
    void *state;
};

int mp_engine_create(const mp_model *m, mp_device dev, int max_ctx, int max_chunk, mp_engine **out, mp_error *err) {
    *out = NULL;
    MP_TRY(mp_device_resolve(dev, &dev, err));
    const mp_backend_ops *ops = &CPU_OPS;
#ifdef MP_HAVE_CUDA
    if (dev == MP_DEVICE_CUDA) ops = &mp_cuda_backend_ops;
#endif
    mp_engine *e = calloc(1, sizeof *e);
    if (!e) return mp_fail(err, MP_ENOMEM, "out of memory");
    e->ops = ops;
    e->dev = dev;
    int rc = ops->create(m, max_ctx, max_chunk, &e->state, err);
    if (rc < 0) {
        free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void mp_engine_free(mp_engine *e) {
    if (!e) return;
    e->ops->destroy(e->state);
    free(e);
}

mp_device mp_engine_device(const mp_engine *e) { return e->dev; }
void mp_engine_reset(mp_engine *e) { e->ops->reset(e->state); }
int mp_engine_pos(const mp_engine *e) { return e->ops->pos(e->state); }
int mp_engine_max_ctx(const mp_engine *e) { return e->ops->max_ctx(e->state); }
int mp_engine_rewind(mp_engine *e, int pos, mp_error *err) { return e->ops->rewind(e->state, pos, err); }
int mp_engine_set_mask(mp_engine *e, const mp_mask *mask, mp_error *err) {
    return e->ops->set_mask(e->state, mask, err);
}
int mp_engine_set_steering(mp_engine *e, const mp_steer *list, size_t n, mp_error *err) {
    return e->ops->set_steering(e->state, list, n, err);
}
int mp_engine_forward(mp_engine *e, const int32_t *ids, size_t n, float *logits, int last_only, mp_routing *routing,
                      mp_error *err) {
    return e->ops->forward(e->state, ids, n, logits, last_only, routing, err);
}
mp_state *mp_engine_cpu_state(mp_engine *e) { return e->dev == MP_DEVICE_CPU ? e->state : NULL; }
