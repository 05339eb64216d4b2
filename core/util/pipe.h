/* core/util/pipe.h — one worker thread that runs jobs strictly in the order
 * they are handed over (collect's accumulators and store commits, while the
 * calling thread computes the next forward pass).
 *
 * The caller owns every job and reuses it only after mp_pipe_wait says the
 * job ran (jobs are numbered 1, 2, ... in push order). The first failing job
 * stops the pipe: later jobs are dropped, and every later push or wait
 * returns that job's error. A pipe opened unthreaded runs each job inside
 * mp_pipe_push (the same jobs in the same order on one thread: what
 * MP_COLLECT_PIPELINE=0 compares against).
 *
 * Ownership: mp_pipe_open allocates the pipe; mp_pipe_close runs what is
 * queued, joins the worker and frees it.
 */
#ifndef MP_PIPE_H
#define MP_PIPE_H

#include <stdint.h>

#include "core/util/error.h"

typedef struct mp_pipe mp_pipe;

/* Run one job; a negative error code (err filled) stops the pipe. */
typedef int (*mp_pipe_fn)(void *ctx, void *job, mp_error *err);

/* A pipe of at most `depth` queued jobs (>= 1) calling fn(ctx, job).
 * @return 0, MP_ENOMEM or MP_EINTERNAL (no thread could start). */
int mp_pipe_open(mp_pipe_fn fn, void *ctx, int depth, int threaded, mp_pipe **out, mp_error *err);

/* Queue job (waits while depth jobs are queued); its number is the count of
 * pushes so far. @return 0 or the error of a job that failed. */
int mp_pipe_push(mp_pipe *p, void *job, mp_error *err);

/* Wait until jobs 1..n ran. @return 0 or the error of a job that failed. */
int mp_pipe_wait(mp_pipe *p, uint64_t n, mp_error *err);

/* Jobs pushed so far. */
uint64_t mp_pipe_pushed(const mp_pipe *p);

/* Seconds the worker spent running jobs and the calling thread spent
 * waiting in push/wait (how much of the work stayed off the critical path). */
void mp_pipe_times(mp_pipe *p, double *busy_s, double *waited_s);

/* Run what is queued (unless a job failed), join the worker, free. NULL ok. */
void mp_pipe_close(mp_pipe *p);

#endif
