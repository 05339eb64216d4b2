/* core/eval/sandbox.c — the program sandbox of the code evaluations (see
 * sandbox.h and docs/sandbox.md).
 *
 * Process layout of one step:
 *   P  (a worker thread of monet-probe)
 *   └─ G  raw clone() into new PID + mount + network + IPC namespaces; pid 1
 *        of the PID namespace; joins the run's memory cgroup, makes the mount
 *        tree read-only except the sandbox dir, mounts private tmpfs on /tmp,
 *        /var/tmp, /run, /dev/shm, starts H and waits for it; its exit tears
 *        the namespaces down, which kills every process left inside and frees
 *        the private tmpfs and SysV IPC objects.
 *      └─ H  setsid, rlimits, unprivileged uid, no_new_privs, seccomp filter
 *            (socket(AF_UNIX) refused), execve(program)
 * P reads stdout / stderr / a control pipe with poll() until the wall-time
 * deadline, then SIGKILLs G (which takes the namespace with it).
 *
 * G and H are created with the raw clone system call, not fork(): the caller
 * may be multithreaded, so between clone and execve the children only make
 * plain system calls (no malloc, no stdio, no glibc set*id broadcast).
 *
 * The sandbox dir itself is a size-capped tmpfs mounted by P (root) in a
 * mount namespace private to P's worker thread (so a killed monet-probe leaves
 * no mount on the host), and its removal is one lazy unmount whatever the
 * program left in it; without a
 * tmpfs, remove_tree() walks it with openat/unlinkat, no recursion and no
 * path longer than one name.
 */
#define _GNU_SOURCE /* pipe2, clone flags, fdopendir */
#include "core/eval/sandbox.h"
#include "core/eval/sandbox_seccomp.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWNS
#define CLONE_NEWNS 0x00020000
#endif
#ifndef CLONE_NEWPID
#define CLONE_NEWPID 0x20000000
#endif
#ifndef CLONE_NEWNET
#define CLONE_NEWNET 0x40000000
#endif
#ifndef CLONE_NEWUSER
#define CLONE_NEWUSER 0x10000000
#endif
#ifndef CLONE_NEWIPC
#define CLONE_NEWIPC 0x08000000
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#define SBX_OPEN_TREE_CLONE 1
#define SBX_MOVE_MOUNT_F_EMPTY_PATH 0x4
#define SBX_AT_EMPTY_PATH 0x1000
#ifndef MS_REC
#define MS_REC 16384
#endif
#ifndef MS_PRIVATE
#define MS_PRIVATE (1 << 18)
#endif
#ifndef MS_SLAVE
#define MS_SLAVE (1 << 19)
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#define SBX_AT_RECURSIVE 0x8000
#define SBX_ATTR_RDONLY 0x1ULL
#define SBX_ATTR_NOSUID 0x2ULL
#define SBX_ATTR_NODEV 0x4ULL

struct sbx_mount_attr { /* struct mount_attr of <linux/mount.h> */
    uint64_t attr_set, attr_clr, propagation, userns_fd;
};

#define SBX_PATH "/usr/local/bin:/usr/bin:/bin"
#define SBX_UID_BASE 0x40000000u

/* ---- isolation probe --------------------------------------------------- */

enum { MODE_PLAIN = 0, MODE_NS = 1, MODE_USERNS = 2 };

enum { CG_NONE = 0, CG_V1 = 1, CG_V2 = 2 };

static struct {
    int mode;          /* MODE_* */
    int drop_uid;      /* run programs as a fresh uid (needs root) */
    int ro_root;       /* mount tree read-only except the dir, private tmpfs on /tmp etc. */
    int tmpfs_dir;     /* P can mount a tmpfs on the sandbox dir */
    int cg;            /* CG_*: memory cgroup per run under cg_base */
    int seccomp;       /* programs run under the AF_UNIX seccomp filter (sandbox_seccomp.h) */
    char cg_base[512];
    char line[448];
} g_iso;
static pthread_once_t g_iso_once = PTHREAD_ONCE_INIT;
static atomic_uint g_uid_counter;

static long raw_clone(unsigned long flags) { return syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0); }

static int write_file(const char *path, const char *s) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, s, strlen(s));
    close(fd);
    return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* Child side of user-namespace setup: map uid/gid 0 to the caller's ids. */
static int setup_userns(const char *uid_map, const char *gid_map) {
    if (write_file("/proc/self/setgroups", "deny") < 0 && errno != ENOENT) return -1;
    if (write_file("/proc/self/uid_map", uid_map) < 0) return -1;
    return write_file("/proc/self/gid_map", gid_map);
}

/* mkdir -p with plain system calls (child side: no malloc). */
static void mkdir_p(const char *dir) {
    char p[4096];
    size_t n = strlen(dir);
    if (n >= sizeof p) return;
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++)
        if (p[i] == '/' || p[i] == '\0') {
            char c = p[i];
            p[i] = '\0';
            mkdir(p, 0755);
            p[i] = c;
        }
}

/* Mount tree of one sandbox: every mount read-only (recursive); private
 * tmpfs (tmpfs_opts) on /tmp, /var/tmp, /run and /dev/shm, which hides the
 * host's files and AF_UNIX sockets there; then `dir` (a detached clone taken
 * before the tmpfs went on top) attached again, writable, at its own path.
 * Returns 0, or the failing stage (1..6) with errno set. */
static int setup_mounts(const char *dir, const char *tmpfs_opts) {
    static const char *const priv[] = {"/tmp", "/var/tmp", "/run", "/dev/shm"};
    int tree = -1;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) return 1;
    if (dir) {
        tree = (int)syscall(SYS_open_tree, -100 /* AT_FDCWD */, dir,
                            SBX_OPEN_TREE_CLONE | O_CLOEXEC | SBX_AT_RECURSIVE);
        if (tree < 0) return 2;
    }
    struct sbx_mount_attr ro = {SBX_ATTR_RDONLY | SBX_ATTR_NOSUID, 0, 0, 0};
    if (syscall(SYS_mount_setattr, -100 /* AT_FDCWD */, "/", SBX_AT_RECURSIVE, &ro, sizeof ro) < 0) return 3;
    for (size_t i = 0; i < sizeof priv / sizeof priv[0]; i++) {
        struct stat sb;
        if (stat(priv[i], &sb) < 0 || !S_ISDIR(sb.st_mode)) continue; /* e.g. no /run */
        if (mount("tmpfs", priv[i], "tmpfs", MS_NOSUID | MS_NODEV, tmpfs_opts) < 0) return 4;
    }
    if (dir) {
        struct sbx_mount_attr rw = {SBX_ATTR_NOSUID | SBX_ATTR_NODEV, SBX_ATTR_RDONLY, 0, 0};
        if (syscall(SYS_mount_setattr, tree, "", SBX_AT_EMPTY_PATH | SBX_AT_RECURSIVE, &rw, sizeof rw) < 0) return 5;
        mkdir_p(dir); /* inside a private tmpfs when dir was below one; exists otherwise */
        if (syscall(SYS_move_mount, tree, "", -100, dir, SBX_MOVE_MOUNT_F_EMPTY_PATH) < 0) return 6;
        close(tree);
    }
    return 0;
}

/* ---- memory cgroup ------------------------------------------------------- */

static int write_str(const char *dir, const char *file, const char *s) {
    char p[700];
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, file) >= sizeof p) return -1;
    return write_file(p, s);
}

static int file_has_word(const char *path, const char *word) {
    char buf[512];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    size_t wl = strlen(word);
    for (char *q = buf; (q = strstr(q, word)); q += wl)
        if ((q == buf || q[-1] == ' ' || q[-1] == ',') && (q[wl] == '\0' || strchr(" ,\n", q[wl]))) return 1;
    return 0;
}

/* Make cgroup `path` (already mkdir'ed) hold at most `bytes`. */
static int cg_set_limit(const char *path, int kind, uint64_t bytes) {
    char v[32];
    snprintf(v, sizeof v, "%llu", (unsigned long long)bytes);
    if (kind == CG_V1) {
        if (write_str(path, "memory.limit_in_bytes", v) < 0) return -1;
        (void)write_str(path, "memory.memsw.limit_in_bytes", v); /* absent without swap accounting */
        return 0;
    }
    if (write_str(path, "memory.max", v) < 0) return -1;
    (void)write_str(path, "memory.swap.max", "0");
    return 0;
}

/* Remove a (now empty) cgroup; the kernel may report EBUSY for a moment
 * after the last process is reaped. */
static int cg_remove(const char *path) {
    for (int i = 0; i < 100; i++) {
        if (rmdir(path) == 0 || errno == ENOENT) return 0;
        if (errno != EBUSY) return -1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* Find this process's memory cgroup (v1 memory hierarchy or v2 with the
 * memory controller delegated) and check that a child can be made and
 * limited there. */
static void probe_cgroup(void) {
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[600], path[520] = "";
    int kind = CG_NONE;
    while (f && fgets(line, sizeof line, f)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = '\0';
        char *nl = strchr(c2 + 1, '\n');
        if (nl) *nl = '\0';
        char ctl[128];
        snprintf(ctl, sizeof ctl, ",%s,", c1 + 1);
        if (strstr(ctl, ",memory,")) {
            snprintf(path, sizeof path, "%s", c2 + 1);
            kind = CG_V1;
            break;
        }
        if (!strcmp(c1 + 1, "") && !strncmp(line, "0", 1) && kind == CG_NONE) {
            snprintf(path, sizeof path, "%s", c2 + 1);
            kind = CG_V2;
        }
    }
    if (f) fclose(f);
    int w;
    if (kind == CG_V1)
        w = snprintf(g_iso.cg_base, sizeof g_iso.cg_base, "/sys/fs/cgroup/memory%s", strcmp(path, "/") ? path : "");
    else if (kind == CG_V2 && file_has_word("/sys/fs/cgroup/cgroup.controllers", "memory"))
        w = snprintf(g_iso.cg_base, sizeof g_iso.cg_base, "/sys/fs/cgroup%s", strcmp(path, "/") ? path : "");
    else
        return;
    if (w < 0 || (size_t)w >= sizeof g_iso.cg_base) { /* a cgroup path this long: no memory cgroup */
        g_iso.cg_base[0] = '\0';
        return;
    }
    if (kind == CG_V2) {
        char sc[600];
        snprintf(sc, sizeof sc, "%s/cgroup.subtree_control", g_iso.cg_base);
        if (!file_has_word(sc, "memory") && write_file(sc, "+memory") < 0) return;
    }
    char probe[600];
    snprintf(probe, sizeof probe, "%s/mp-sbx-probe-%d", g_iso.cg_base, (int)getpid());
    if (mkdir(probe, 0755) < 0) return;
    if (cg_set_limit(probe, kind, 64ULL << 20) == 0) g_iso.cg = kind;
    cg_remove(probe);
}

/* 1 when a tmpfs can be mounted on a fresh dir in this mount namespace. */
static int probe_tmpfs_dir(void) {
    const char *tmp = getenv("TMPDIR");
    char d[4096];
    snprintf(d, sizeof d, "%s/mp-sbx-probe-XXXXXX", tmp && *tmp && strlen(tmp) < 3000 ? tmp : "/tmp");
    if (!mkdtemp(d)) return 0;
    int ok = mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=700") == 0;
    if (ok) umount2(d, MNT_DETACH);
    rmdir(d);
    return ok;
}

/* 1 when a child can install the AF_UNIX filter and socket(AF_UNIX) then fails. */
static int probe_seccomp(void) {
    long pid = raw_clone(0);
    if (pid == 0) {
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        if (mp_sbx_seccomp_install() < 0) _exit(1);
        _exit(syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0) < 0 && errno == EACCES ? 0 : 2);
    }
    if (pid < 0) return 0;
    int status = 0;
    while (waitpid((pid_t)pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void probe_isolation(void) {
    char uid_map[64], gid_map[64];
    snprintf(uid_map, sizeof uid_map, "0 %u 1\n", (unsigned)geteuid());
    snprintf(gid_map, sizeof gid_map, "0 %u 1\n", (unsigned)getegid());
    const unsigned long base = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC;
    int errs[2] = {0, 0};
    g_iso.mode = MODE_PLAIN;
    for (int attempt = 0; attempt < 2; attempt++) {
        int userns = attempt == 1;
        long pid = raw_clone(base | (userns ? CLONE_NEWUSER : 0));
        if (pid == 0) {
            if (userns && setup_userns(uid_map, gid_map) < 0) _exit(20);
            int st = setup_mounts(NULL, "size=1m,mode=1777");
            _exit(st ? 10 + st : 0);
        }
        if (pid < 0) {
            errs[attempt] = errno;
            continue;
        }
        int status = 0;
        while (waitpid((pid_t)pid, &status, 0) < 0 && errno == EINTR) {
        }
        g_iso.mode = userns ? MODE_USERNS : MODE_NS;
        g_iso.ro_root = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 20)) break;
        g_iso.mode = MODE_PLAIN; /* user namespace without working id maps */
        errs[attempt] = EPERM;
    }
    g_iso.drop_uid = geteuid() == 0 && g_iso.mode != MODE_USERNS;
    g_iso.seccomp = probe_seccomp();
    if (g_iso.mode == MODE_NS) {
        g_iso.tmpfs_dir = probe_tmpfs_dir();
        probe_cgroup();
    }
    const char *fs = g_iso.ro_root ? "read-only filesystem except the sandbox dir, private /tmp /run /dev/shm"
                                   : "filesystem: only uid permissions (no read-only remount)";
    const char *dirfs = g_iso.tmpfs_dir ? "sandbox dir on its own tmpfs" : "sandbox dir on the host filesystem";
    const char *mem = g_iso.cg == CG_V1   ? "memory cgroup (v1) per run"
                      : g_iso.cg == CG_V2 ? "memory cgroup (v2) per run"
                                          : "memory: RLIMIT_AS only";
    const char *unix_sock = g_iso.seccomp ? "AF_UNIX sockets refused (seccomp)" : "AF_UNIX: no seccomp filter";
    if (g_iso.mode == MODE_NS)
        snprintf(g_iso.line, sizeof g_iso.line,
                 "network isolation: namespace; pid+mount+ipc namespaces; %s; %s; %s; %s; %s", fs, dirfs, mem,
                 g_iso.drop_uid ? "unprivileged uid per sandbox" : "same uid", unix_sock);
    else if (g_iso.mode == MODE_USERNS)
        snprintf(g_iso.line, sizeof g_iso.line,
                 "network isolation: namespace (user namespace); pid+mount+ipc namespaces; %s; %s; %s; caller's uid; %s",
                 fs, dirfs, mem, unix_sock);
    else
        snprintf(g_iso.line, sizeof g_iso.line,
                 "network isolation: unavailable: %s; no pid/mount namespaces; %s; process group + rlimits only; %s",
                 strerror(errs[0] ? errs[0] : errs[1]), g_iso.drop_uid ? "unprivileged uid per sandbox" : "same uid",
                 unix_sock);
}

const char *mp_sandbox_isolation(void) {
    pthread_once(&g_iso_once, probe_isolation);
    return g_iso.line;
}

int mp_sandbox_has_netns(void) {
    pthread_once(&g_iso_once, probe_isolation);
    return g_iso.mode != MODE_PLAIN;
}

int mp_sandbox_find_exe(const char *prog, char *buf, size_t cap) {
    static const char *const dirs[] = {"/usr/local/bin", "/usr/bin", "/bin"};
    if (strchr(prog, '/')) {
        if (access(prog, X_OK) < 0 || (size_t)snprintf(buf, cap, "%s", prog) >= cap) return -1;
        return 0;
    }
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        if ((size_t)snprintf(buf, cap, "%s/%s", dirs[i], prog) >= cap) continue;
        struct stat sb;
        if (stat(buf, &sb) == 0 && S_ISREG(sb.st_mode) && access(buf, X_OK) == 0) return 0;
    }
    return -1;
}

void mp_sbx_limits_default(mp_sbx_limits *l) {
    l->wall_s = 15;
    l->cpu_s = 16;
    l->as_bytes = 4ULL << 30;
    l->nproc = 128;
    l->fsize_bytes = 64ULL << 20;
    l->nofile = 256;
    l->out_keep = 64 << 10;
    l->out_limit = 16ULL << 20;
    l->mem_bytes = 2ULL << 30;
    l->tmp_bytes = 256ULL << 20;
}

void mp_sbx_result_free(mp_sbx_result *r) {
    if (!r) return;
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

/* ---- child side ------------------------------------------------------------ */

enum { CTL_SETUP = 1, CTL_STATUS = 2 };
enum {
    ST_USERNS = 1, ST_MOUNT = 2, ST_CLONE = 3, ST_FDS = 4, ST_CHDIR = 5, ST_RLIMIT = 6, ST_UID = 7, ST_EXEC = 8,
    ST_CGROUP = 9, ST_SECCOMP = 10
};
static const char *const STAGE_NAMES[] = {"?",     "user namespace id map", "mounts", "clone",  "file descriptors",
                                          "chdir", "rlimits",               "setuid", "execve", "memory cgroup", "seccomp"};

typedef struct child_ctx {
    const char *dir, *exe;
    char *const *argv, *const *envp;
    int out_w, err_w, ctl_w, devnull; /* all >= 10, close-on-exec */
    int cg_fd;                        /* the run's cgroup.procs (>= 10, close-on-exec) or -1 */
    int mode, drop_uid, ro_root;
    unsigned uid;
    const mp_sbx_limits *lim;
    char uid_map[64], gid_map[64];
    char tmpfs_opts[96];              /* options of the private /tmp, /run, ... */
} child_ctx;

static void ctl_send(int fd, int type, int a, int b) {
    int32_t msg[3] = {type, a, b};
    ssize_t n = write(fd, msg, sizeof msg);
    (void)n;
}

static void set_limit(int res, uint64_t soft, uint64_t hard) {
    struct rlimit rl = {(rlim_t)soft, (rlim_t)hard};
    if (setrlimit(res, &rl) < 0) {
        /* lower the hard limit only if raising it is not allowed */
        struct rlimit cur;
        if (getrlimit(res, &cur) == 0) {
            rl.rlim_max = cur.rlim_max;
            if (rl.rlim_cur > rl.rlim_max) rl.rlim_cur = rl.rlim_max;
            (void)setrlimit(res, &rl);
        }
    }
}

static _Noreturn void run_program(const child_ctx *c) {
    int fail = ST_FDS, ctlfd = c->ctl_w;
    if (setsid() < 0) goto fail;
    if (dup2(c->devnull, 0) < 0 || dup2(c->out_w, 1) < 0 || dup2(c->err_w, 2) < 0 || dup2(c->ctl_w, 3) < 0 ||
        fcntl(3, F_SETFD, FD_CLOEXEC) < 0)
        goto fail;
    ctlfd = 3;
    if (syscall(SYS_close_range, 4, ~0U, 0) < 0)
        for (int fd = 4; fd < 4096; fd++) close(fd);
    fail = ST_CHDIR;
    if (chdir(c->dir) < 0) goto fail;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < 32; s++)
        if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
    const mp_sbx_limits *l = c->lim;
    set_limit(RLIMIT_CPU, (uint64_t)l->cpu_s, (uint64_t)l->cpu_s + 1);
    uint64_t as = l->as_bytes;
    if (!as && c->cg_fd < 0 && l->mem_bytes) /* no cgroup: a virtual ceiling V8 and the JVM start under */
        as = 2 * l->mem_bytes > (3ULL << 30) ? 2 * l->mem_bytes : (3ULL << 30);
    if (as) set_limit(RLIMIT_AS, as, as);
    set_limit(RLIMIT_FSIZE, l->fsize_bytes, l->fsize_bytes);
    set_limit(RLIMIT_NOFILE, (uint64_t)l->nofile, (uint64_t)l->nofile);
    set_limit(RLIMIT_CORE, 0, 0);
    /* NPROC is per uid: exact with a fresh uid; otherwise a generous bound on
     * the caller's own processes so that a fork bomb still stops. */
    uint64_t np = c->drop_uid ? (uint64_t)l->nproc : 4096;
    set_limit(RLIMIT_NPROC, np, np);
    umask(022);
    if (c->drop_uid) {
        fail = ST_UID;
        /* raw system calls: glibc's set*id would try to sync threads that do not exist here */
        if (syscall(SYS_setgroups, 0, NULL) < 0 || syscall(SYS_setresgid, c->uid, c->uid, c->uid) < 0 ||
            syscall(SYS_setresuid, c->uid, c->uid, c->uid) < 0)
            goto fail;
    }
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    fail = ST_SECCOMP;
    if (g_iso.seccomp && mp_sbx_seccomp_install() < 0) goto fail;
    fail = ST_EXEC;
    execve(c->exe, c->argv, c->envp);
fail:
    ctl_send(ctlfd, CTL_SETUP, fail, errno);
    _exit(127);
}

/* G: namespace init / supervisor. */
static _Noreturn void supervise(const child_ctx *c) {
    int stage = ST_CGROUP;
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (c->cg_fd >= 0 && write(c->cg_fd, "0", 1) != 1) goto fail; /* "0": the writer itself */
    stage = ST_USERNS;
    if (c->mode == MODE_USERNS && setup_userns(c->uid_map, c->gid_map) < 0) goto fail;
    stage = ST_MOUNT;
    if (c->mode != MODE_PLAIN) {
        if (c->ro_root) {
            int st = setup_mounts(c->dir, c->tmpfs_opts);
            if (st) goto fail;
        }
        /* a /proc that shows only this PID namespace (best effort) */
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    }
    stage = ST_CLONE;
    long h = raw_clone(0);
    if (h < 0) goto fail;
    if (h == 0) run_program(c);
    close(c->out_w);
    close(c->err_w);
    siginfo_t si;
    while (waitid(P_PID, (id_t)h, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
    }
    kill(-(pid_t)h, SIGKILL); /* H's process group, while H's pid is still reserved */
    int status = 0;
    while (waitpid((pid_t)h, &status, 0) < 0 && errno == EINTR) {
    }
    ctl_send(c->ctl_w, CTL_STATUS, status, 0);
    _exit(0);
fail:
    ctl_send(c->ctl_w, CTL_SETUP, stage, errno);
    _exit(126);
}

/* ---- parent side ------------------------------------------------------------ */

typedef struct tailbuf {
    char *buf;      /* [2 * keep + 1] */
    size_t len, keep;
    uint64_t total;
} tailbuf;

static void tail_add(tailbuf *t, const char *s, size_t n) {
    t->total += n;
    if (n > t->keep) {
        s += n - t->keep;
        n = t->keep;
    }
    if (t->len + n > 2 * t->keep) {
        size_t drop = t->len + n - t->keep; /* keep the last `keep` bytes overall */
        if (drop > t->len) drop = t->len;
        memmove(t->buf, t->buf + drop, t->len - drop);
        t->len -= drop;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
}

static char *tail_finish(tailbuf *t, size_t *len) {
    size_t off = t->len > t->keep ? t->len - t->keep : 0;
    memmove(t->buf, t->buf + off, t->len - off);
    t->len -= off;
    t->buf[t->len] = '\0';
    *len = t->len;
    char *r = t->buf;
    t->buf = NULL;
    return r;
}

/* Replace the sandbox dir path by "$SANDBOX" (shorter: in place), so that
 * messages do not depend on the random dir name; a truncated head that may
 * hold a cut path is dropped up to its first newline. */
static void scrub_dir(char *buf, size_t *len, const char *dir, int truncated) {
    size_t dl = strlen(dir), o = 0, i = 0;
    static const char rep[] = "$SANDBOX";
    if (truncated) {
        char *nl = memchr(buf, '\n', *len);
        i = nl ? (size_t)(nl - buf) + 1 : *len;
    }
    while (i < *len) {
        if (*len - i >= dl && !memcmp(buf + i, dir, dl)) {
            memcpy(buf + o, rep, sizeof rep - 1);
            o += sizeof rep - 1;
            i += dl;
        } else {
            buf[o++] = buf[i++];
        }
    }
    buf[o] = '\0';
    *len = o;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int high_fd(int fd) {
    if (fd < 0) return -1;
    int h = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    close(fd);
    return h;
}

/* "{DIR}" substitution; returns a malloc'ed string or NULL. */
static char *subst_dir(const char *s, const char *dir) {
    size_t dl = strlen(dir), n = 0;
    for (const char *p = s; (p = strstr(p, "{DIR}")); p += 5) n++;
    char *r = malloc(strlen(s) + n * dl + 1), *o = r;
    if (!r) return NULL;
    for (const char *p = s;;) {
        const char *q = strstr(p, "{DIR}");
        size_t k = q ? (size_t)(q - p) : strlen(p);
        memcpy(o, p, k);
        o += k;
        if (!q) break;
        memcpy(o, dir, dl);
        o += dl;
        p = q + 5;
    }
    *o = '\0';
    return r;
}

static int run_step(const mp_sbx_step *step, const mp_sbx_limits *lim, const char *dir, unsigned uid, int cg_fd,
                    mp_sbx_result *res, mp_error *err) {
    char *argv[MP_SBX_MAX_ARGS + 1] = {0}, *envp[MP_SBX_MAX_ENV + 5] = {0};
    int pout[2] = {-1, -1}, perr[2] = {-1, -1}, pctl[2] = {-1, -1}, devnull = -1, rc = 0, na = 0, ne = 0;
    tailbuf tb[2] = {{0}, {0}};
    while (na < MP_SBX_MAX_ARGS && step->argv[na]) {
        if (!(argv[na] = subst_dir(step->argv[na], dir))) goto nomem;
        na++;
    }
    char tmp[4096 + 16];
    snprintf(tmp, sizeof tmp, "HOME=%s", dir);
    if (!(envp[ne++] = strdup("PATH=" SBX_PATH)) || !(envp[ne++] = strdup(tmp))) goto nomem;
    snprintf(tmp, sizeof tmp, "TMPDIR=%s", dir);
    if (!(envp[ne++] = strdup(tmp)) || !(envp[ne++] = strdup("LANG=C.UTF-8"))) goto nomem;
    for (int i = 0; i < MP_SBX_MAX_ENV && step->env[i]; i++)
        if (!(envp[ne++] = subst_dir(step->env[i], dir))) goto nomem;
    for (int i = 0; i < 2; i++) {
        tb[i].keep = lim->out_keep ? lim->out_keep : 1;
        if (!(tb[i].buf = malloc(2 * tb[i].keep + 1))) goto nomem;
    }
    if (pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0 || pipe2(pctl, O_CLOEXEC) < 0 ||
        (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        rc = mp_fail(err, MP_EIO, "sandbox: pipe: %s", strerror(errno));
        goto cleanup;
    }
    for (int i = 0; i < 2; i++) {
        pout[i] = high_fd(pout[i]);
        perr[i] = high_fd(perr[i]);
        pctl[i] = high_fd(pctl[i]);
    }
    devnull = high_fd(devnull);
    if (pout[0] < 0 || pout[1] < 0 || perr[0] < 0 || perr[1] < 0 || pctl[0] < 0 || pctl[1] < 0 || devnull < 0) {
        rc = mp_fail(err, MP_EIO, "sandbox: fcntl: %s", strerror(errno));
        goto cleanup;
    }
    child_ctx c = {.dir = dir, .exe = argv[0], .argv = argv, .envp = envp, .out_w = pout[1], .err_w = perr[1],
                   .ctl_w = pctl[1], .devnull = devnull, .mode = g_iso.mode, .drop_uid = g_iso.drop_uid,
                   .ro_root = g_iso.ro_root, .uid = uid, .lim = lim, .cg_fd = cg_fd};
    snprintf(c.tmpfs_opts, sizeof c.tmpfs_opts, "size=%llu,nr_inodes=65536,mode=1777",
             (unsigned long long)(lim->tmp_bytes ? lim->tmp_bytes : 256ULL << 20));
    snprintf(c.uid_map, sizeof c.uid_map, "0 %u 1\n", (unsigned)geteuid());
    snprintf(c.gid_map, sizeof c.gid_map, "0 %u 1\n", (unsigned)getegid());
    unsigned long flags = 0;
    if (g_iso.mode != MODE_PLAIN) flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC;
    if (g_iso.mode == MODE_USERNS) flags |= CLONE_NEWUSER;
    double t0 = now_s();
    long pid = raw_clone(flags);
    if (pid == 0) supervise(&c);
    if (pid < 0) {
        res->outcome = MP_SBX_SETUP;
        snprintf(res->setup_error, sizeof res->setup_error, "clone: %s", strerror(errno));
        goto cleanup;
    }
    close(pout[1]);
    close(perr[1]);
    close(pctl[1]);
    pout[1] = perr[1] = pctl[1] = -1;

    int fds[3] = {pout[0], perr[0], pctl[0]}, open_n = 3, killed = 0, got_status = 0, status = 0;
    int setup_stage = 0, setup_errno = 0;
    int32_t ctl_msg[3];
    size_t ctl_have = 0;
    double deadline = t0 + lim->wall_s, grace = 0;
    res->outcome = MP_SBX_EXITED;
    while (open_n > 0) {
        double t = now_s();
        if (!killed && t >= deadline) {
            kill((pid_t)pid, SIGKILL);
            killed = 1;
            res->outcome = MP_SBX_TIMEOUT;
        }
        if (killed && !grace) grace = t + 3;
        if (killed && t >= grace) break; /* stray holders of the pipes (no PID namespace) */
        double until = killed ? grace : deadline;
        struct pollfd pf[3];
        int map[3], np = 0;
        for (int i = 0; i < 3; i++)
            if (fds[i] >= 0) {
                pf[np].fd = fds[i];
                pf[np].events = POLLIN;
                pf[np].revents = 0;
                map[np++] = i;
            }
        int ms = (int)((until - t) * 1000) + 1;
        int pr = poll(pf, (nfds_t)np, ms < 1 ? 1 : ms);
        if (pr < 0 && errno != EINTR) break;
        for (int k = 0; k < np && pr > 0; k++) {
            if (!pf[k].revents) continue;
            int i = map[k];
            char buf[65536];
            ssize_t n = read(fds[i], i == 2 ? (char *)ctl_msg + ctl_have : buf,
                             i == 2 ? sizeof ctl_msg - ctl_have : sizeof buf);
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (n <= 0) {
                close(fds[i]);
                fds[i] = -1;
                open_n--;
                continue;
            }
            if (i < 2) {
                tail_add(&tb[i], buf, (size_t)n);
                if (!killed && tb[0].total + tb[1].total > lim->out_limit) {
                    kill((pid_t)pid, SIGKILL);
                    killed = 1;
                    res->outcome = MP_SBX_OUTPUT;
                }
            } else if ((ctl_have += (size_t)n) == sizeof ctl_msg) {
                ctl_have = 0;
                if (ctl_msg[0] == CTL_STATUS) {
                    got_status = 1;
                    status = ctl_msg[1];
                } else if (ctl_msg[0] == CTL_SETUP && !setup_stage) {
                    setup_stage = ctl_msg[1];
                    setup_errno = ctl_msg[2];
                }
            }
        }
    }
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0) close(fds[i]);
    pout[0] = perr[0] = pctl[0] = -1;
    kill((pid_t)pid, SIGKILL); /* G is done or must go; it is unreaped, so the pid is still ours */
    int gst = 0;
    while (waitpid((pid_t)pid, &gst, 0) < 0 && errno == EINTR) {
    }
    res->wall_s += now_s() - t0;
    res->exit_code = -1;
    res->term_signal = 0;
    if (res->outcome == MP_SBX_EXITED) {
        if (setup_stage) {
            res->outcome = MP_SBX_SETUP;
            snprintf(res->setup_error, sizeof res->setup_error, "%s: %s",
                     STAGE_NAMES[setup_stage > 0 && setup_stage <= ST_SECCOMP ? setup_stage : 0], strerror(setup_errno));
        } else if (!got_status) {
            res->outcome = MP_SBX_SETUP;
            snprintf(res->setup_error, sizeof res->setup_error, "sandbox supervisor ended without a status (%d)", gst);
        } else if (WIFEXITED(status)) {
            res->exit_code = WEXITSTATUS(status);
        } else if (WIFSIGNALED(status)) {
            res->term_signal = WTERMSIG(status);
        }
    }
    free(res->out);
    free(res->err);
    res->out = tail_finish(&tb[0], &res->out_len);
    res->err = tail_finish(&tb[1], &res->err_len);
    res->out_total = tb[0].total;
    res->err_total = tb[1].total;
    scrub_dir(res->out, &res->out_len, dir, res->out_total > res->out_len);
    scrub_dir(res->err, &res->err_len, dir, res->err_total > res->err_len);
    goto cleanup;
nomem:
    rc = mp_fail(err, MP_ENOMEM, "out of memory (sandbox)");
cleanup:
    for (int i = 0; i < 2; i++) {
        if (pout[i] >= 0) close(pout[i]);
        if (perr[i] >= 0) close(perr[i]);
        if (pctl[i] >= 0) close(pctl[i]);
        free(tb[i].buf);
    }
    if (devnull >= 0) close(devnull);
    for (int i = 0; i < MP_SBX_MAX_ARGS + 1; i++) free(argv[i]);
    for (int i = 0; i < MP_SBX_MAX_ENV + 5; i++) free(envp[i]);
    return rc;
}

/* Remove the tree at dir without recursion and without building paths: the
 * walk holds one directory fd and a stack of names, so depth (10,000 levels,
 * past PATH_MAX) and modes (0000 directories, read-only files) do not matter.
 * Only this process touches the tree once the sandbox is gone.
 * @return 0, or -1 when an entry could not be removed (errno set). */
static int remove_tree(const char *dir) {
    size_t depth = 0, cap = 0;
    char **names = NULL;
    int rc = 0, cur = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (cur < 0) {
        if (errno == ENOENT) return 0;
        if (chmod(dir, 0700) < 0 || (cur = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) return -1;
    }
    for (;;) {
        fchmod(cur, 0700); /* entries of a 0500 dir cannot be unlinked (non-root) */
        int dfd = dup(cur);
        DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        if (!d) {
            if (dfd >= 0) close(dfd);
            rc = -1;
            break;
        }
        int child = -1, stuck = 0;
        struct dirent *e;
        char *down = NULL;
        while ((e = readdir(d))) {
            const char *n = e->d_name;
            if (!strcmp(n, ".") || !strcmp(n, "..")) continue;
            if (unlinkat(cur, n, 0) == 0) continue;
            if (errno != EISDIR && errno != EPERM) {
                stuck = 1;
                continue;
            }
            fchmodat(cur, n, 0700, 0);
            if (unlinkat(cur, n, AT_REMOVEDIR) == 0) continue;
            child = openat(cur, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (child < 0 || !(down = strdup(n))) {
                if (child >= 0) close(child);
                child = -1;
                stuck = 1;
                continue;
            }
            break;
        }
        closedir(d);
        if (child >= 0) {
            if (depth == cap) {
                size_t nc = cap ? 2 * cap : 64;
                char **nn = realloc(names, nc * sizeof *nn);
                if (!nn) {
                    free(down);
                    close(child);
                    rc = -1;
                    break;
                }
                names = nn;
                cap = nc;
            }
            names[depth++] = down;
            close(cur);
            cur = child;
            continue;
        }
        if (depth == 0) {
            if (stuck) rc = -1;
            break;
        }
        /* this directory is as empty as it gets: go up and remove it */
        int up = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        close(cur);
        cur = up;
        char *n = names[--depth];
        int gone = up >= 0 && unlinkat(cur, n, AT_REMOVEDIR) == 0;
        free(n);
        if (!gone) { /* an entry that cannot go: retrying would loop */
            rc = -1;
            break;
        }
    }
    if (cur >= 0) close(cur);
    for (size_t i = 0; i < depth; i++) free(names[i]);
    free(names);
    if (rc == 0 && rmdir(dir) < 0 && errno != ENOENT) rc = -1;
    return rc;
}

/* The run's memory cgroup: mkdir'ed under g_iso.cg_base, limited, its
 * cgroup.procs opened for G. Leaves path empty and returns -1 when not. */
static int cg_create(char *path, size_t cap, uint64_t bytes) {
    static atomic_uint counter;
    path[0] = '\0';
    if (!g_iso.cg || !bytes) return -1;
    unsigned k = atomic_fetch_add(&counter, 1u);
    if ((size_t)snprintf(path, cap, "%s/mp-sbx-%d-%u", g_iso.cg_base, (int)getpid(), k) >= cap) goto fail;
    if (mkdir(path, 0755) < 0) goto fail;
    char procs[700];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", path);
    int fd = -1;
    if (cg_set_limit(path, g_iso.cg, bytes) < 0 || (fd = high_fd(open(procs, O_WRONLY | O_CLOEXEC))) < 0) {
        cg_remove(path);
        goto fail;
    }
    return fd;
fail:
    path[0] = '\0';
    return -1;
}

/* 1 when the run's cgroup hit its memory limit. */
static int cg_hit_limit(const char *path) {
    char p[700], buf[1024];
    snprintf(p, sizeof p, "%s/%s", path, g_iso.cg == CG_V1 ? "memory.oom_control" : "memory.events");
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    const char *m = g_iso.cg == CG_V2 ? strstr(buf, "\nmax ") : NULL;
    const char *o = strstr(buf, "oom_kill ");
    return (m && strtoull(m + 5, NULL, 10) > 0) || (o && strtoull(o + 9, NULL, 10) > 0);
}

/* 1 when dir and every directory above it are searchable by others: the
 * unprivileged sandbox uid must reach its dir below it. */
static int others_can_reach(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (;;) {
        struct stat sb;
        if (stat(*p ? p : "/", &sb) < 0 || !(sb.st_mode & S_IXOTH)) return 0;
        char *q = strrchr(p, '/');
        if (!*p || !q) return 1;
        *q = '\0';
    }
}

int mp_sandbox_run(const mp_sbx_job *job, mp_sbx_result *res, mp_error *err) {
    memset(res, 0, sizeof *res);
    res->exit_code = -1;
    pthread_once(&g_iso_once, probe_isolation);
    const char *tmp = getenv("TMPDIR");
    char dir[4096], cg_path[600] = "";
    if (!tmp || !*tmp || strlen(tmp) > 3000) tmp = "/tmp";
    if (g_iso.drop_uid && !others_can_reach(tmp)) tmp = "/tmp"; /* e.g. a private 0700 TMPDIR */
    snprintf(dir, sizeof dir, "%s/mp-sbx-XXXXXX", tmp);
    if (!mkdtemp(dir)) return mp_fail(err, MP_EIO, "sandbox: mkdtemp %s: %s", dir, strerror(errno));
    int rc = 0, mounted = 0, cg_fd = -1;
    unsigned uid = 0;
    /* The dir's tmpfs is mounted in a mount namespace private to this thread
     * (a slave of the host's): if monet-probe is killed, the kernel drops it
     * with the thread instead of leaving a mount behind on the host. */
    static _Thread_local int tl_ns; /* 0 not tried, 1 private, -1 unavailable */
    if (g_iso.tmpfs_dir && !tl_ns)
        tl_ns = unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) == 0 ? 1 : -1;
    if (g_iso.tmpfs_dir && tl_ns == 1) {
        char opts[96];
        snprintf(opts, sizeof opts, "size=%llu,nr_inodes=65536,mode=700",
                 (unsigned long long)(job->limits.tmp_bytes ? job->limits.tmp_bytes : 256ULL << 20));
        mounted = mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) == 0;
    }
    for (size_t i = 0; i < job->n_files; i++) {
        const mp_sbx_file *f = &job->files[i];
        char path[4200];
        if (strchr(f->name, '/') || !strcmp(f->name, "..") || !strcmp(f->name, ".")) {
            rc = mp_fail(err, MP_EINTERNAL, "sandbox: bad file name '%s'", f->name);
            goto cleanup;
        }
        snprintf(path, sizeof path, "%s/%s", dir, f->name);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, f->mode ? f->mode : 0644);
        size_t off = 0;
        while (fd >= 0 && off < f->len) {
            ssize_t n = write(fd, f->data + off, f->len - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            off += (size_t)n;
        }
        if (fd < 0 || off < f->len || fchmod(fd, f->mode ? (mode_t)f->mode : 0644) < 0) {
            rc = mp_fail(err, MP_EIO, "sandbox: write %s: %s", path, strerror(errno));
            if (fd >= 0) close(fd);
            goto cleanup;
        }
        close(fd);
    }
    if (g_iso.drop_uid) {
        unsigned k = atomic_fetch_add(&g_uid_counter, 1u);
        uid = SBX_UID_BASE | (((unsigned)getpid() & 0x3FFFFFu) << 8) | (k & 0xFFu);
        if (chown(dir, uid, uid) < 0) {
            rc = mp_fail(err, MP_EIO, "sandbox: chown %s: %s", dir, strerror(errno));
            goto cleanup;
        }
        res->sandbox_uid = uid;
    }
    cg_fd = cg_create(cg_path, sizeof cg_path, job->limits.mem_bytes);
    for (int s = 0; s < job->n_steps && s < MP_SBX_MAX_STEPS; s++) {
        res->steps_run = s + 1;
        if ((rc = run_step(&job->steps[s], &job->limits, dir, uid, cg_fd, res, err)) < 0) goto cleanup;
        if (res->outcome != MP_SBX_EXITED || res->exit_code != 0) break;
    }
cleanup:
    /* every process of the run is gone here (G reaped: its PID namespace with it) */
    if (cg_fd >= 0) close(cg_fd);
    if (cg_path[0]) {
        res->mem_exceeded = cg_hit_limit(cg_path);
        if (cg_remove(cg_path) < 0)
            snprintf(res->cleanup_error, sizeof res->cleanup_error, "memory cgroup not removed: %s", strerror(errno));
    }
    if (mounted && umount2(dir, MNT_DETACH) < 0)
        snprintf(res->cleanup_error, sizeof res->cleanup_error, "tmpfs not unmounted: %s", strerror(errno));
    if (remove_tree(dir) < 0)
        snprintf(res->cleanup_error, sizeof res->cleanup_error, "sandbox dir not removed: %s", strerror(errno));
    return rc;
}

/* ---- worker pool ------------------------------------------------------------- */

typedef struct pool {
    const mp_sbx_job *jobs;
    mp_sbx_result *res;
    size_t n, next;
    int rc;
    mp_error err;
    mp_sbx_done_fn done;
    void *ctx;
    pthread_mutex_t mu;
} pool;

static void *pool_worker(void *arg) {
    pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->next++;
        int stop = p->rc < 0;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->n || stop) break;
        mp_error e;
        mp_error_clear(&e);
        int rc = mp_sandbox_run(&p->jobs[i], &p->res[i], &e);
        pthread_mutex_lock(&p->mu);
        if (rc < 0 && p->rc == 0) {
            p->rc = rc;
            p->err = e;
        }
        if (p->done) p->done(p->ctx, i);
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

int mp_sandbox_run_all(const mp_sbx_job *jobs, size_t n, int workers, mp_sbx_result *res, mp_sbx_done_fn done,
                       void *ctx, mp_error *err) {
    if (workers <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        workers = c > 0 ? (int)c : 1;
    }
    if ((size_t)workers > n) workers = n ? (int)n : 1;
    pthread_once(&g_iso_once, probe_isolation);
    pool p = {.jobs = jobs, .res = res, .n = n, .done = done, .ctx = ctx};
    mp_error_clear(&p.err);
    pthread_mutex_init(&p.mu, NULL);
    pthread_t th[256];
    if (workers > 256) workers = 256;
    int started = 0;
    for (; started < workers; started++)
        if (pthread_create(&th[started], NULL, pool_worker, &p) != 0) break;
    if (started == 0) pool_worker(&p);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    pthread_mutex_destroy(&p.mu);
    if (p.rc < 0) {
        if (err) *err = p.err;
        return p.rc;
    }
    return 0;
}
