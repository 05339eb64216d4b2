/* core/model/model.c — loads a Monet checkpoint (see model.h). The tensor
 * list is built from config.json, every tensor is checked for presence, shape
 * and dtype before anything is used.
 *
 * Matrices stored as BF16 or F32 stay in the checkpoint's mapping: the load
 * only asks the kernel to read the files ahead (MADV_WILLNEED) and returns.
 * What is widened to float32 (vectors; F16 or unaligned matrices; every
 * matrix under MP_WEIGHTS=f32) goes into one arena, 2 MiB aligned with
 * MADV_HUGEPAGE, converted on several threads over equal slices, each asking
 * the kernel to read ahead the next stretch of its slice of the mapping. */
#include "core/model/model.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/model/checkpoint.h"

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[2];
    float **dst;               /* a vector: always float32 in the arena */
    mp_weight *wdst;           /* a matrix: in place, or float32 in the arena (dst then points at .f32) */
    float *arena_slot;         /* where it is widened, NULL when read in place */
    int is_param;              /* counted in n_params */
    const mp_st_tensor *t;
} weight_spec;

typedef struct {
    weight_spec *v;
    size_t n, cap;
} spec_list;

static int spec_add(spec_list *l, float **dst, mp_weight *wdst, int is_param, int64_t d0, int64_t d1,
                    mp_error *err, const char *fmt, ...) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        weight_spec *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) return mp_fail(err, MP_ENOMEM, "out of memory");
        l->v = nv;
        l->cap = nc;
    }
    weight_spec *s = &l->v[l->n++];
    memset(s, 0, sizeof *s);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->name, sizeof s->name, fmt, ap);
    va_end(ap);
    s->ndim = d1 ? 2 : 1;
    s->shape[0] = d0;
    s->shape[1] = d1;
    s->dst = dst;
    s->wdst = wdst;
    s->is_param = is_param;
    return 0;
}

/* All tensors the architecture needs, with the shapes config.json implies. */
static int build_specs(mp_model *m, spec_list *l, mp_error *err) {
    const mp_config *c = &m->cfg;
    const int64_t d = c->hidden_size, V = c->vocab_size, hd = c->head_dim;
    const int64_t qd = (int64_t)c->n_heads * hd, kvd = (int64_t)c->n_kv_heads * hd;
    const int64_t E = c->moe_experts, Hm = c->moe_heads, m_ = c->moe_dim;
    MP_TRY(spec_add(l, NULL, &m->embed, 1, V, d, err, "model.embed_tokens.weight"));
    MP_TRY(spec_add(l, &m->final_norm, NULL, 1, d, 0, err, "model.norm.weight"));
    if (!c->tie_word_embeddings) MP_TRY(spec_add(l, NULL, &m->lm_head, 1, V, d, err, "lm_head.weight"));
    for (int i = 0; i < c->n_layers; i++) {
        mp_layer *y = &m->layers[i];
        const char *p = "model.layers";
        MP_TRY(spec_add(l, &y->attn_norm, NULL, 1, d, 0, err, "%s.%d.input_layernorm.weight", p, i));
        MP_TRY(spec_add(l, NULL, &y->wq, 1, qd, d, err, "%s.%d.self_attn.q_proj.weight", p, i));
        MP_TRY(spec_add(l, NULL, &y->wk, 1, kvd, d, err, "%s.%d.self_attn.k_proj.weight", p, i));
        MP_TRY(spec_add(l, NULL, &y->wv, 1, kvd, d, err, "%s.%d.self_attn.v_proj.weight", p, i));
        MP_TRY(spec_add(l, NULL, &y->wo, 1, d, qd, err, "%s.%d.self_attn.o_proj.weight", p, i));
        MP_TRY(spec_add(l, &y->ffn_norm, NULL, 1, d, 0, err, "%s.%d.post_attention_layernorm.weight", p, i));
        if (i % c->moe_groups == 0) {
            MP_TRY(spec_add(l, NULL, &y->router_w1, 1, Hm * E, d, err, "%s.%d.router.w1.weight", p, i));
            MP_TRY(spec_add(l, NULL, &y->router_w2, 1, Hm * E, d, err, "%s.%d.router.w2.weight", p, i));
            MP_TRY(spec_add(l, &y->bn1_mean, NULL, 0, Hm, 0, err, "%s.%d.router.norm1.running_mean", p, i));
            MP_TRY(spec_add(l, &y->bn1_var, NULL, 0, Hm, 0, err, "%s.%d.router.norm1.running_var", p, i));
            MP_TRY(spec_add(l, &y->bn2_mean, NULL, 0, Hm, 0, err, "%s.%d.router.norm2.running_mean", p, i));
            MP_TRY(spec_add(l, &y->bn2_var, NULL, 0, Hm, 0, err, "%s.%d.router.norm2.running_var", p, i));
        }
        if (c->decompose == MP_VD) {
            const int64_t em2 = E * (m_ / 2), dh = d / 2;
            MP_TRY(spec_add(l, NULL, &y->u1, 1, em2, d, err, "%s.%d.moe.u1.weight", p, i));
            MP_TRY(spec_add(l, &y->u1_bias, NULL, 1, em2, 0, err, "%s.%d.moe.u1.bias", p, i));
            MP_TRY(spec_add(l, NULL, &y->u2, 1, em2, d, err, "%s.%d.moe.u2.weight", p, i));
            MP_TRY(spec_add(l, &y->u2_bias, NULL, 1, em2, 0, err, "%s.%d.moe.u2.bias", p, i));
            MP_TRY(spec_add(l, NULL, &y->v11, 1, dh, em2, err, "%s.%d.moe.v11.weight", p, i));
            MP_TRY(spec_add(l, NULL, &y->v12, 1, dh, em2, err, "%s.%d.moe.v12.weight", p, i));
            MP_TRY(spec_add(l, NULL, &y->v21, 1, dh, em2, err, "%s.%d.moe.v21.weight", p, i));
            MP_TRY(spec_add(l, NULL, &y->v22, 1, dh, em2, err, "%s.%d.moe.v22.weight", p, i));
            MP_TRY(spec_add(l, &y->b1, NULL, 1, E, dh, err, "%s.%d.moe.b1", p, i));
            MP_TRY(spec_add(l, &y->b2, NULL, 1, E, dh, err, "%s.%d.moe.b2", p, i));
        } else {
            const int64_t em = E * m_;
            MP_TRY(spec_add(l, NULL, &y->u, 1, em, d, err, "%s.%d.moe.u.weight", p, i));
            MP_TRY(spec_add(l, &y->u_bias, NULL, 1, em, 0, err, "%s.%d.moe.u.bias", p, i));
            MP_TRY(spec_add(l, NULL, &y->v, 1, d, em, err, "%s.%d.moe.v.weight", p, i));
            MP_TRY(spec_add(l, &y->b, NULL, 1, E, d, err, "%s.%d.moe.b", p, i));
        }
    }
    return 0;
}

/* The arena: 2 MiB aligned and MADV_HUGEPAGE (fewer page faults while the
 * weights are written; plain pages where THP is off). Freed with free().
 * @return 0 or MP_ENOMEM. */
static int alloc_arena(size_t floats, float **out) {
    const size_t huge = (size_t)2 << 20, bytes = (floats ? floats : 1) * sizeof(float);
    void *p = NULL;
    if (posix_memalign(&p, huge, bytes) != 0) return MP_ENOMEM;
#ifdef MADV_HUGEPAGE
    if (bytes >= huge) madvise(p, bytes / huge * huge, MADV_HUGEPAGE);
#endif
    *out = p;
    return 0;
}

/* One converter thread: the global element range [begin, end) of the
 * concatenated tensors (in spec order, as laid out in the arena). */
typedef struct {
    const spec_list *specs;
    size_t begin, end;
} convert_job;

/* Ask for read-ahead of bytes [at, at + len) of a mapping (page aligned). */
static void will_need(const void *at, size_t len) {
    static size_t page;
    if (!page) {
        long ps = sysconf(_SC_PAGESIZE);
        page = ps > 0 ? (size_t)ps : 4096;
    }
    uintptr_t a = (uintptr_t)at & ~(uintptr_t)(page - 1);
    madvise((void *)a, len + ((uintptr_t)at - a), MADV_WILLNEED);
}

static void *convert_range(void *arg) {
    const convert_job *j = arg;
    const size_t ahead = (size_t)64 << 20; /* bytes of read-ahead per step */
    size_t base = 0;
    for (size_t i = 0; i < j->specs->n && base < j->end; i++) {
        const weight_spec *s = &j->specs->v[i];
        if (!s->arena_slot) continue; /* read in place */
        const size_t n = s->t->numel;
        if (base + n > j->begin) {
            size_t lo = j->begin > base ? j->begin - base : 0, hi = j->end < base + n ? j->end - base : n;
            const size_t es = mp_dtype_size(s->t->dtype), step = ahead / es;
            for (size_t a = lo; a < hi; a += step) {
                size_t cnt = hi - a < step ? hi - a : step;
                if (a + cnt < hi) /* the next step, while this one converts */
                    will_need((const char *)s->t->data + (a + cnt) * es, (hi - a - cnt < step ? hi - a - cnt : step) * es);
                mp_convert_to_f32(s->t->dtype, (const char *)s->t->data + a * es, cnt, s->arena_slot + a);
            }
        }
        base += n;
    }
    return NULL;
}

/* Convert every tensor that has an arena slot on up to 8 threads (one per
 * online CPU); a failed thread start converts that slice here instead. */
static void convert_all(const spec_list *specs, size_t total) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus;
    if (total < ((size_t)1 << 22)) nt = 1; /* small models: not worth a thread */
    convert_job jobs[8];
    pthread_t tid[8];
    int started[8] = {0};
    for (int k = 0; k < nt; k++) {
        jobs[k].specs = specs;
        jobs[k].begin = total / (size_t)nt * (size_t)k;
        jobs[k].end = k + 1 == nt ? total : total / (size_t)nt * (size_t)(k + 1);
        if (k > 0) started[k] = pthread_create(&tid[k], NULL, convert_range, &jobs[k]) == 0;
    }
    convert_range(&jobs[0]);
    for (int k = 1; k < nt; k++) {
        if (started[k]) pthread_join(tid[k], NULL);
        else convert_range(&jobs[k]);
    }
}

/* MP_WEIGHTS: 0 matrices as stored (default), 1 every matrix float32.
 * @return 0 or MP_EINPUT. */
static int weights_mode(int *all_f32, mp_error *err) {
    const char *env = getenv("MP_WEIGHTS");
    *all_f32 = 0;
    if (!env || !*env || !strcmp(env, "checkpoint")) return 0;
    if (!strcmp(env, "f32")) {
        *all_f32 = 1;
        return 0;
    }
    return mp_fail(err, MP_EINPUT, "MP_WEIGHTS=%s: expected checkpoint or f32", env);
}

/* A matrix is read in place when stored as BF16 (2-byte aligned) or F32
 * (4-byte aligned) and MP_WEIGHTS=f32 is not set. */
static int read_in_place(const weight_spec *s, int all_f32) {
    if (!s->wdst || all_f32) return 0;
    const uintptr_t at = (uintptr_t)s->t->data;
    if (s->t->dtype == MP_DT_BF16) return at % 2 == 0;
    if (s->t->dtype == MP_DT_F32) return at % 4 == 0;
    return 0;
}

int mp_model_load(const char *dir, mp_model **out, mp_error *err) {
    int all_f32;
    MP_TRY(weights_mode(&all_f32, err));
    mp_checkpoint *ck = NULL;
    MP_TRY(mp_checkpoint_open(dir, &ck, err));
    int rc = 0;
    spec_list specs = {0};
    mp_model *m = calloc(1, sizeof *m);
    if (!m) {
        mp_checkpoint_close(ck);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    m->ck = ck; /* from here on the model owns it */
    m->cfg = ck->cfg;
    m->dir = strdup(dir);
    m->layers = calloc((size_t)m->cfg.n_layers, sizeof *m->layers);
    m->file_bytes = ck->file_bytes;
    if (!m->dir || !m->layers) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    rc = build_specs(m, &specs, err);
    if (rc < 0) goto cleanup;
    size_t total = 0;
    for (size_t i = 0; i < specs.n; i++) {
        weight_spec *s = &specs.v[i];
        rc = mp_checkpoint_get_float(ck, s->name, s->ndim, s->shape, &s->t, err);
        if (rc < 0) goto cleanup;
        if (!read_in_place(s, all_f32)) total += s->t->numel;
        if (s->is_param) m->n_params += s->t->numel;
    }
    snprintf(m->weight_dtype, sizeof m->weight_dtype, "%s", mp_dtype_name(specs.v[0].t->dtype));
    rc = alloc_arena(total, &m->arena);
    if (rc < 0) {
        rc = mp_fail(err, MP_ENOMEM, "cannot allocate %.1f GiB for float32 weights",
                     (double)total * 4 / (1024.0 * 1024 * 1024));
        goto cleanup;
    }
    m->arena_floats = total;
    float *p = m->arena;
    for (size_t i = 0; i < specs.n; i++) {
        weight_spec *s = &specs.v[i];
        if (read_in_place(s, all_f32)) {
            if (s->t->dtype == MP_DT_BF16) {
                s->wdst->bf16 = s->t->data;
                m->has_bf16 = 1;
            } else {
                s->wdst->f32 = s->t->data;
            }
            m->inplace_bytes += s->t->nbytes;
            will_need(s->t->data, s->t->nbytes); /* read ahead while the caller sets up */
            continue;
        }
        s->arena_slot = p;
        if (s->wdst) s->wdst->f32 = p;
        else *s->dst = p;
        p += s->t->numel;
    }
    convert_all(&specs, total);
    if (m->cfg.tie_word_embeddings) m->lm_head = m->embed;
    for (int i = 0; i < m->cfg.n_layers; i += m->cfg.moe_groups) {
        const mp_layer *y = &m->layers[i];
        for (int h = 0; h < m->cfg.moe_heads; h++)
            if (!(y->bn1_var[h] >= 0) || !(y->bn2_var[h] >= 0)) {
                rc = mp_fail(err, MP_EINPUT, "%s: layer %d router running_var[%d] is negative or NaN", dir, i, h);
                goto cleanup;
            }
    }
cleanup:
    free(specs.v);
    if (rc < 0) {
        mp_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void mp_model_free(mp_model *m) {
    if (!m) return;
    free(m->arena);
    mp_checkpoint_close(m->ck);
    free(m->layers);
    free(m->dir);
    free(m);
}
