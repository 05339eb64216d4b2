/* core/eval/sandbox_seccomp.h — the seccomp filter a sandboxed program runs
 * under: socket(AF_UNIX, ...) fails with EACCES, so a program cannot reach a
 * host AF_UNIX socket wherever it lies (the private /tmp, /run, /dev/shm mounts
 * cover the usual places; this covers the rest). socketpair() stays allowed
 * (it reaches nothing outside), as does every other system call. Foreign
 * system-call ABIs (i386 socketcall, x32) fail with ENOSYS so they cannot go
 * around the filter. */
#ifndef MP_SANDBOX_SECCOMP_H
#define MP_SANDBOX_SECCOMP_H

/* Install the filter on the calling thread (needs no_new_privs or
 * CAP_SYS_ADMIN). Only plain system calls: safe between clone and execve.
 * @return 0, or -1 with errno set (ENOSYS on an architecture it does not know). */
int mp_sbx_seccomp_install(void);

#endif
