/* core/eval/sandbox.h — run untrusted programs (MULTIPL-E completions) in a
 * sandbox the tool owns: a fresh temp dir per program, wall-time limit,
 * CPU / memory / process / file-size rlimits, no network, nothing outside the
 * temp dir writable, everything killed and the dir removed afterwards, and a
 * pool of parallel workers. docs/sandbox.md explains the layers.
 *
 * Isolation (best available, reported in mp_sandbox_isolation()):
 *   - root (CAP_SYS_ADMIN): clone() into new PID + mount + network + IPC
 *     namespaces; the whole mount tree is remounted read-only except the
 *     sandbox dir (a tmpfs of its own); private size-capped tmpfs on /tmp,
 *     /var/tmp, /run and /dev/shm (no host AF_UNIX socket under them is
 *     reachable); a memory cgroup per run; the program runs as a fresh unprivileged uid/gid, unique
 *     per sandbox run, so RLIMIT_NPROC really bounds it (NPROC is per uid and
 *     does not apply to root) and it cannot touch other sandboxes.
 *   - non-root: the same with a user namespace (uid 0 in the namespace maps
 *     to the caller; NPROC then counts all the caller's processes).
 *   - neither: plain fork + setsid + rlimits; "network: unavailable (<errno>)".
 *
 * Ownership: mp_sbx_result buffers are malloc'ed for the caller
 * (mp_sbx_result_free); jobs and their strings are borrowed.
 * Threads: mp_sandbox_run may be called from several threads at once; the
 * children only make raw system calls between clone() and execve().
 */
#ifndef MP_SANDBOX_H
#define MP_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"

typedef struct mp_sbx_limits {
    double wall_s;        /* wall-clock limit per step (seconds) */
    int cpu_s;            /* RLIMIT_CPU per step */
    uint64_t as_bytes;    /* RLIMIT_AS; 0 = unlimited (the JVM and V8 reserve a lot) */
    int nproc;            /* RLIMIT_NPROC (processes + threads of the sandbox uid) */
    uint64_t fsize_bytes; /* RLIMIT_FSIZE */
    int nofile;           /* RLIMIT_NOFILE */
    size_t out_keep;      /* bytes of stdout / stderr kept (the tail) */
    uint64_t out_limit;   /* stdout + stderr bytes after which the program is killed */
    uint64_t mem_bytes;   /* memory (RSS + tmpfs pages) of the whole run: a cgroup limit when a
                             memory cgroup can be made, else RLIMIT_AS max(2 * mem_bytes, 3 GiB)
                             for steps with as_bytes 0 (binds V8's off-heap Buffers too) */
    uint64_t tmp_bytes;   /* size of each per-run tmpfs: the sandbox dir and the private /tmp */
} mp_sbx_limits;

/* Defaults: 15 s, CPU 16 s, AS 4 GiB, 128 procs, 64 MiB files, 256 fds,
 * keep the last 64 KiB, kill after 16 MiB of output, memory 2 GiB, tmpfs
 * 256 MiB. */
void mp_sbx_limits_default(mp_sbx_limits *l);

typedef struct mp_sbx_file {
    const char *name;     /* plain file name inside the sandbox dir (no '/') */
    const char *data;
    size_t len;
    int mode;             /* e.g. 0644 */
} mp_sbx_file;

#define MP_SBX_MAX_STEPS 2
#define MP_SBX_MAX_ARGS 24
#define MP_SBX_MAX_ENV 12

/* One step: argv[0] is an absolute path; the step runs with cwd = the
 * sandbox dir, PATH=/usr/local/bin:/usr/bin:/bin, HOME=TMPDIR=the dir,
 * LANG=C.UTF-8 plus env. The string "{DIR}" anywhere in an argument is
 * replaced by the sandbox dir. Steps run in order; a step that fails stops
 * the job. */
typedef struct mp_sbx_step {
    const char *argv[MP_SBX_MAX_ARGS + 1]; /* NULL-terminated */
    const char *env[MP_SBX_MAX_ENV + 1];   /* extra "K=V", NULL-terminated */
} mp_sbx_step;

typedef struct mp_sbx_job {
    const mp_sbx_file *files;
    size_t n_files;
    mp_sbx_step steps[MP_SBX_MAX_STEPS];
    int n_steps;
    mp_sbx_limits limits;
} mp_sbx_job;

enum {
    MP_SBX_EXITED = 0,    /* exit_code / term_signal are valid */
    MP_SBX_TIMEOUT = 1,   /* wall time exceeded: killed */
    MP_SBX_OUTPUT = 2,    /* output limit exceeded: killed */
    MP_SBX_SETUP = 3      /* sandbox could not be set up (setup_error says why) */
};

typedef struct mp_sbx_result {
    int steps_run;        /* steps started (the last one decided the outcome) */
    int outcome;          /* MP_SBX_* of the last step run */
    int exit_code;        /* exit status, -1 when killed by a signal */
    int term_signal;      /* signal that ended the program, 0 if none */
    char *out, *err;      /* tails of stdout / stderr of the last step (NUL-terminated); the
                             sandbox dir's path is replaced by "$SANDBOX", and a cut first
                             line of a truncated tail is dropped, so they are reproducible */
    size_t out_len, err_len;
    uint64_t out_total, err_total; /* bytes the program wrote */
    double wall_s;        /* wall time of all steps */
    unsigned sandbox_uid; /* uid the program ran as (root mode), 0 otherwise */
    int mem_exceeded;     /* the memory cgroup hit its limit (the program was OOM-killed or refused) */
    char setup_error[160];
    char cleanup_error[160]; /* non-empty when the per-run dir could not be removed; the
                                outcome above still stands */
} mp_sbx_result;

void mp_sbx_result_free(mp_sbx_result *r);

/* Run one job: mkdtemp under $TMPDIR (or /tmp), mount a size-capped tmpfs on
 * it (root), write the files, run the steps, kill every leftover process,
 * unmount the tmpfs whole (or remove the tree without recursion when no tmpfs
 * could be mounted) and remove the memory cgroup.
 * @return 0 (the program's fate is in res->outcome, including MP_SBX_SETUP
 *         for per-run setup failures; a failed removal is reported in
 *         res->cleanup_error, not as an error) or MP_EIO / MP_ENOMEM when the
 *         temp dir cannot be created or written. */
int mp_sandbox_run(const mp_sbx_job *job, mp_sbx_result *res, mp_error *err);

/* Run n jobs with `workers` threads (<= 0: number of online CPUs); res[i]
 * belongs to jobs[i], so the results do not depend on the worker count.
 * done (may be NULL) is called after each job, serialized, from a worker.
 * @return 0 or the first error of mp_sandbox_run. */
typedef void (*mp_sbx_done_fn)(void *ctx, size_t index);
int mp_sandbox_run_all(const mp_sbx_job *jobs, size_t n, int workers, mp_sbx_result *res, mp_sbx_done_fn done,
                       void *ctx, mp_error *err);

/* One line describing the isolation this process gets, probed once with a
 * throw-away child, e.g. "pid+mount+network namespaces, read-only root,
 * uid per sandbox" or "network: unavailable (EPERM), ...". Never NULL. */
const char *mp_sandbox_isolation(void);
/* 1 when the network is isolated (a network namespace). */
int mp_sandbox_has_netns(void);

/* Find an executable named prog in /usr/local/bin:/usr/bin:/bin (the PATH
 * sandboxed programs get). Writes the absolute path into buf.
 * @return 0, or -1 when it is not there. */
int mp_sandbox_find_exe(const char *prog, char *buf, size_t cap);

#endif
