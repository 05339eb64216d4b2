/* core/util/pool.c — the worker threads of mp_pool_run (see pool.h). */
#include "core/util/pool.h"

#include <pthread.h>
#include <sys/types.h>
#include <unistd.h>

enum { MAX_WORKERS = 7 };

static pthread_mutex_t busy = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;   /* guards everything below */
static pthread_cond_t go = PTHREAD_COND_INITIALIZER, finished = PTHREAD_COND_INITIALIZER;
static int n_workers;
static unsigned long job;      /* bumped for every job */
static mp_pool_fn job_fn;
static void *job_arg;
static int job_parts, next_part, remaining;
static pid_t workers_pid; /* the process the workers belong to (a fork()ed child has none) */

/* Take and run parts of the current job until none is left; mu held on entry
 * and on return. */
static void take_parts(void) {
    while (next_part < job_parts) {
        const int k = next_part++;
        mp_pool_fn fn = job_fn;
        void *arg = job_arg;
        pthread_mutex_unlock(&mu);
        fn(arg, k);
        pthread_mutex_lock(&mu);
        if (--remaining == 0) pthread_cond_signal(&finished);
    }
}

static void *worker(void *unused) {
    (void)unused;
    unsigned long seen = 0;
    pthread_mutex_lock(&mu);
    for (;;) {
        while (job == seen) pthread_cond_wait(&go, &mu);
        seen = job;
        take_parts();
    }
    return NULL;
}

void mp_pool_run(mp_pool_fn fn, void *arg, int parts) {
    if (parts <= 1 || pthread_mutex_trylock(&busy) != 0) {
        for (int k = 0; k < parts; k++) fn(arg, k);
        return;
    }
    pthread_mutex_lock(&mu);
    const pid_t me = getpid();
    if (n_workers > 0 && workers_pid != me) {
        /* a fork()ed child: the workers stayed in the parent */
        pthread_mutex_unlock(&mu);
        pthread_mutex_unlock(&busy);
        for (int k = 0; k < parts; k++) fn(arg, k);
        return;
    }
    workers_pid = me;
    while (n_workers < parts - 1 && n_workers < MAX_WORKERS) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        const int ok = pthread_create(&t, &at, worker, NULL) == 0;
        pthread_attr_destroy(&at);
        if (!ok) break; /* the calling thread takes the parts nobody else does */
        n_workers++;
    }
    job_fn = fn;
    job_arg = arg;
    job_parts = parts;
    next_part = 1;
    remaining = parts - 1;
    job++;
    pthread_cond_broadcast(&go);
    pthread_mutex_unlock(&mu);
    fn(arg, 0);
    pthread_mutex_lock(&mu);
    take_parts();
    while (remaining > 0) pthread_cond_wait(&finished, &mu);
    pthread_mutex_unlock(&mu);
    pthread_mutex_unlock(&busy);
}
