/* core/util/pool.h — a few worker threads that run the parts of one job at a
 * time (the decode row kernel's output-row split): started once, asleep on a
 * condition variable between jobs, so a job costs a wake-up rather than a
 * thread start and join per call.
 *
 * Ownership: the workers live until the process exits; nothing to free.
 */
#ifndef MP_POOL_H
#define MP_POOL_H

typedef void (*mp_pool_fn)(void *arg, int part);

/* Run fn(arg, k) for every k < parts and return when all are done. The
 * calling thread runs parts too; up to parts - 1 (at most 7) workers take
 * the others. A part runs on whichever thread takes it, so fn's result must
 * not depend on the thread. When another thread's job holds the pool, or no
 * worker can start (or in a fork()ed child of a process that started them),
 * the calling thread runs every part itself. */
void mp_pool_run(mp_pool_fn fn, void *arg, int parts);

#endif
