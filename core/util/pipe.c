/* core/util/pipe.c — the in-order worker of mp_pipe (see pipe.h). */
#include "core/util/pipe.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/util/progress.h"

struct mp_pipe {
    mp_pipe_fn fn;
    void *ctx;
    int threaded, depth;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t changed; /* a job was queued, one ran, or the pipe is closing */
    void **ring;            /* [depth] queued jobs */
    uint64_t pushed, done;  /* jobs 1..pushed were queued, 1..done ran (or were dropped) */
    int closing;
    int rc;                 /* the first failure, 0 while none */
    mp_error failure;
    double busy_s, waited_s;
};

/* Copy the failure into err; mu held. */
static int failed(mp_pipe *p, mp_error *err) {
    if (err) *err = p->failure;
    return p->rc;
}

static void *worker(void *arg) {
    mp_pipe *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->done == p->pushed && !p->closing) pthread_cond_wait(&p->changed, &p->mu);
        if (p->done == p->pushed) break; /* closing and nothing queued */
        void *job = p->ring[p->done % (uint64_t)p->depth];
        int rc = p->rc;
        if (rc == 0) { /* after a failure the rest are dropped */
            pthread_mutex_unlock(&p->mu);
            mp_error e;
            mp_error_clear(&e);
            const double t0 = mp_now();
            rc = p->fn(p->ctx, job, &e);
            const double dt = mp_now() - t0;
            pthread_mutex_lock(&p->mu);
            p->busy_s += dt;
            if (rc < 0 && p->rc == 0) p->rc = rc, p->failure = e;
        }
        p->done++;
        pthread_cond_broadcast(&p->changed);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int mp_pipe_open(mp_pipe_fn fn, void *ctx, int depth, int threaded, mp_pipe **out, mp_error *err) {
    *out = NULL;
    mp_pipe *p = calloc(1, sizeof *p);
    if (!p) return mp_fail(err, MP_ENOMEM, "out of memory (pipe)");
    p->fn = fn;
    p->ctx = ctx;
    p->depth = depth > 0 ? depth : 1;
    p->threaded = threaded;
    p->ring = calloc((size_t)p->depth, sizeof *p->ring);
    if (!p->ring) {
        free(p);
        return mp_fail(err, MP_ENOMEM, "out of memory (pipe)");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->changed, NULL);
    if (threaded) {
        if (pthread_create(&p->thread, NULL, worker, p) != 0) {
            mp_pipe_close(p);
            return mp_fail(err, MP_EINTERNAL, "cannot start the store thread");
        }
        p->started = 1;
    }
    *out = p;
    return 0;
}

int mp_pipe_push(mp_pipe *p, void *job, mp_error *err) {
    if (!p->threaded) {
        if (p->rc < 0) return failed(p, err);
        p->pushed++;
        const double t0 = mp_now();
        int rc = p->fn(p->ctx, job, err);
        p->busy_s += mp_now() - t0;
        p->done++;
        if (rc < 0) p->rc = rc, p->failure = *err;
        return rc;
    }
    pthread_mutex_lock(&p->mu);
    const double t0 = mp_now();
    while (p->rc == 0 && p->pushed - p->done >= (uint64_t)p->depth) pthread_cond_wait(&p->changed, &p->mu);
    p->waited_s += mp_now() - t0;
    int rc = p->rc;
    if (rc < 0) {
        failed(p, err);
    } else {
        p->ring[p->pushed % (uint64_t)p->depth] = job;
        p->pushed++;
        pthread_cond_broadcast(&p->changed);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int mp_pipe_wait(mp_pipe *p, uint64_t n, mp_error *err) {
    if (!p->threaded) return p->rc < 0 ? failed(p, err) : 0;
    pthread_mutex_lock(&p->mu);
    const double t0 = mp_now();
    while (p->rc == 0 && p->done < n && p->done < p->pushed) pthread_cond_wait(&p->changed, &p->mu);
    p->waited_s += mp_now() - t0;
    int rc = p->rc < 0 ? failed(p, err) : 0;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

uint64_t mp_pipe_pushed(const mp_pipe *p) {
    return p->pushed;
}

void mp_pipe_times(mp_pipe *p, double *busy_s, double *waited_s) {
    pthread_mutex_lock(&p->mu);
    *busy_s = p->busy_s;
    *waited_s = p->waited_s;
    pthread_mutex_unlock(&p->mu);
}

void mp_pipe_close(mp_pipe *p) {
    if (!p) return;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->closing = 1;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->changed);
    free(p->ring);
    free(p);
}
