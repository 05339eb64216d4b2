/* tests/eval_code/test_sandbox.c — hostile programs in core/sandbox: a fork
 * bomb, an infinite loop, writes outside the sandbox dir (/tmp, /var/tmp,
 * /dev/shm, the repository), sockets to 127.0.0.1 and a public address, a
 * 50 GB allocation, 100 MB of output, a setsid'ed background process, a file
 * over RLIMIT_FSIZE, and the issue-19 escapes: connecting to host AF_UNIX
 * sockets (under /tmp and /run), SysV shm + message queues that must not
 * outlive the run (checked from the host and from a later sandbox), filling
 * /tmp and the sandbox dir past their tmpfs cap, node Buffers beyond the
 * memory limit (when node is installed), 10,000-deep trees with 0000 modes
 * left in the dir and in /tmp. Each must be contained with the right outcome;
 * afterwards no process of the sandbox uid may be left and every sandbox dir
 * must be gone.
 * Run as root (tmpfs dir, memory cgroup, uid per run) and, by ctest
 * eval_code_sandbox_userns, as nobody (user namespace; the dir removed by the
 * fd walk); MP_SBX_REQUIRE_NS=1 makes it skip (77) without namespaces.
 * usage: test_sandbox PYTHON3 REPO_DIR */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/util/progress.h"
#include "core/eval/sandbox.h"
#include "tests/common/test_check.h"

enum {
    T_BOMB, T_LOOP, T_WRITE, T_SOCKET, T_ALLOC, T_OUTPUT, T_ESCAPE, T_FSIZE, T_NOEXE, T_OK, T_UNIX, T_IPC, T_FILL,
    T_DEEP, T_NODE, T_IPC_LATER, T_N
};
static const char *NAMES[T_N] = {"fork bomb", "infinite loop", "write outside", "sockets", "allocate 50 GB",
                                 "print 100 MB", "setsid background process", "file over RLIMIT_FSIZE",
                                 "missing executable", "well-behaved program", "host AF_UNIX sockets",
                                 "SysV shm + msg queue", "fill /tmp and dir past the cap", "10,000-deep trees",
                                 "node Buffers past the memory limit", "SysV objects of an earlier run"};
#define N_FIRST T_IPC_LATER /* run together; T_IPC_LATER runs afterwards */

static char src[T_N][4096];

/* A listening AF_UNIX socket at path that anyone may connect to. */
static int unix_listener(const char *path) {
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof su.sun_path) return -1;
    memcpy(su.sun_path, path, strlen(path) + 1);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&su, sizeof su) < 0 || listen(fd, 8) < 0 || chmod(path, 0777) < 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

/* Processes whose real uid is uid. */
static int count_uid(unsigned uid) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[300], line[256];
        snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof line, f))
            if (!strncmp(line, "Uid:", 4)) {
                if (strtoul(line + 4, NULL, 10) == uid) n++;
                break;
            }
        if (f) fclose(f);
    }
    if (d) closedir(d);
    return n;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_sandbox PYTHON3 REPO_DIR\n");
        return 2;
    }
    const char *py = argv[1], *repo = argv[2];
    char tmpl[] = "/tmp/mp-sbx-test-XXXXXX";
    if (!mkdtemp(tmpl)) return perror("mkdtemp"), 1;
    chmod(tmpl, 0755);
    setenv("TMPDIR", tmpl, 1);
    printf("isolation: %s\n", mp_sandbox_isolation());
    int netns = mp_sandbox_has_netns();
    if (getenv("MP_SBX_REQUIRE_NS") && !netns) {
        printf("skipped: no namespaces for this user (%s)\n", mp_sandbox_isolation());
        rmdir(tmpl);
        return 77;
    }

    /* a listener in the host network namespace that no sandboxed program may reach */
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 8) < 0 ||
        getsockname(ls, (struct sockaddr *)&sa, &sl) < 0)
        return perror("listener"), 1;
    int port = ntohs(sa.sin_port);
    char esc[4][300];
    snprintf(esc[0], sizeof esc[0], "/tmp/escape_%d", (int)getpid());
    snprintf(esc[1], sizeof esc[1], "%s/escape_%d", repo, (int)getpid());
    snprintf(esc[2], sizeof esc[2], "/var/tmp/escape_%d", (int)getpid());
    snprintf(esc[3], sizeof esc[3], "/dev/shm/escape_%d", (int)getpid());
    char esc_up[300];
    snprintf(esc_up, sizeof esc_up, "%s/escape_%d", tmpl, (int)getpid());

    /* host AF_UNIX listeners under /tmp (our TMPDIR) and /run (privately mounted over in the
     * sandbox), and in the test's working directory on the host filesystem, which only the
     * seccomp filter keeps out of reach (issue 19) */
    char usock[3][300], cwd[200];
    snprintf(usock[0], sizeof usock[0], "%s/host.sock", tmpl);
    snprintf(usock[1], sizeof usock[1], "/run/mp-sbx-test-%d.sock", (int)getpid());
    snprintf(usock[2], sizeof usock[2], "%s/mp-sbx-%d.sock", getcwd(cwd, sizeof cwd) ? cwd : "/nonexistent",
             (int)getpid());
    int ul[3];
    for (int k = 0; k < 3; k++) ul[k] = unix_listener(usock[k]);
    if (ul[0] < 0) return perror("AF_UNIX listener"), 1;
    if (ul[1] < 0) printf("  note: no AF_UNIX listener under /run (%s)\n", strerror(errno));
    if (ul[2] < 0) printf("  note: no AF_UNIX listener in the working directory (%s)\n", usock[2]);
    const int ipc_key = 0x4d500000 | ((int)getpid() & 0xffff);
    char node[256];
    int have_node = mp_sandbox_find_exe("node", node, sizeof node) == 0;

    snprintf(src[T_BOMB], sizeof src[0], "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n");
    snprintf(src[T_LOOP], sizeof src[0], "while True:\n    pass\n");
    snprintf(src[T_WRITE], sizeof src[0],
             "import os\nbad = 0\n"
             "for p in ['%s', '%s', '%s', '%s', '../escape_%d']:\n"
             "    try:\n        open(p, 'w').write('x')\n        print('wrote (private unless the host has it)', p)\n"
             "    except OSError as e:\n        print('blocked', p, e.errno)\n"
             "try:\n    open('%s', 'w').write('x'); print('WROTE the repository'); bad += 1\n"
             "except OSError as e:\n    print('blocked repository', e.errno)\n"
             "open('inside.txt', 'w').write('ok')\nprint(os.getcwd())\nraise SystemExit(3 if bad else 0)\n",
             esc[0], esc[2], esc[3], esc_up, (int)getpid(), esc[1]);
    snprintf(src[T_SOCKET], sizeof src[0],
             "import socket\nbad = 0\nfor host, port in [('127.0.0.1', %d)%s]:\n"
             "    s = socket.socket(); s.settimeout(2)\n"
             "    try:\n        s.connect((host, port)); print('CONNECTED', host); bad += 1\n"
             "    except OSError as e:\n        print('blocked', host, e)\n"
             "raise SystemExit(3 if bad else 0)\n",
             port, netns ? ", ('1.1.1.1', 53), ('8.8.8.8', 443)" : "");
    snprintf(src[T_ALLOC], sizeof src[0], "b = bytearray(50 * 10**9)\nprint('allocated', len(b))\n");
    snprintf(src[T_OUTPUT], sizeof src[0], "import sys\nchunk = b'x' * (1 << 20)\nfor _ in range(100):\n"
                                           "    sys.stdout.buffer.write(chunk)\n");
    snprintf(src[T_ESCAPE], sizeof src[0],
             "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(60)\n"
             "    os._exit(0)\ntime.sleep(0.5)\nprint('parent done')\n");
    snprintf(src[T_FSIZE], sizeof src[0], "open('big', 'wb').write(b'x' * (100 << 20))\n");
    snprintf(src[T_NOEXE], sizeof src[0], "print(1)\n");
    snprintf(src[T_OK], sizeof src[0], "import os\nprint('hello')\nprint(os.getcwd())\n");
    snprintf(src[T_UNIX], sizeof src[0],
             "import socket\nbad = 0\nfor p in ['%s', '%s', '%s']:\n"
             "    try:\n        s = socket.socket(socket.AF_UNIX); s.settimeout(2)\n"
             "        s.connect(p); print('CONNECTED', p); bad += 1\n"
             "    except OSError as e:\n        print('blocked', p, e.errno)\n"
             "a, b = socket.socketpair(); a.send(b'x'); assert b.recv(1) == b'x'\n"
             "raise SystemExit(3 if bad else 0)\n",
             usock[0], usock[1], usock[2]);
    snprintf(src[T_IPC], sizeof src[0],
             "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
             "shm = libc.shmget(%d, 4096, 0o1666)\nmq = libc.msgget(%d, 0o1666)\n"
             "print('shm', shm, 'msg', mq)\nraise SystemExit(0 if shm >= 0 and mq >= 0 else 4)\n",
             ipc_key, ipc_key);
    snprintf(src[T_IPC_LATER], sizeof src[0],
             "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
             "shm = libc.shmget(%d, 0, 0)\nmq = libc.msgget(%d, 0)\n"
             "print('shm', shm, 'msg', mq)\nraise SystemExit(0 if shm < 0 and mq < 0 else 3)\n",
             ipc_key, ipc_key);
    snprintf(src[T_FILL], sizeof src[0],
             "import os\ndef fill(d):\n    tot = 0\n    for i in range(16):\n"
             "        try:\n            with open(os.path.join(d, 'fill%%d' %% i), 'wb') as f:\n"
             "                for j in range(8):\n                    f.write(b'x' * (1 << 20)); f.flush(); tot += 1\n"
             "        except OSError as e:\n            return tot, e.errno\n    return tot, 0\n"
             "for d in ['/tmp', '.']:\n    print(d, *fill(d))\n");
    snprintf(src[T_DEEP], sizeof src[0],
             "import os\nfor base in [os.getcwd(), '/tmp']:\n    os.chdir(base)\n"
             "    for i in range(10000):\n        os.mkdir('d'); os.chdir('d')\n"
             "    open('f', 'w').write('x'); os.chmod('f', 0)\n"
             "    for i in range(50):\n        os.chdir('..'); os.chmod('d', 0o500 if i %% 2 else 0)\n"
             "print('deep trees made')\n");
    snprintf(src[T_NODE], sizeof src[0],
             "const b = [];\nfor (let i = 0; i < 12; i++) b.push(Buffer.alloc(256 << 20, 1));\n"
             "console.log('ALLOCATED', b.length * 256, 'MiB');\n");

    mp_sbx_file files[T_N];
    mp_sbx_job jobs[T_N];
    mp_sbx_result res[T_N];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < T_N; i++) {
        files[i] = (mp_sbx_file){i == T_NODE ? "main.js" : "main.py", src[i], strlen(src[i]), 0644};
        jobs[i].files = &files[i];
        jobs[i].n_files = 1;
        jobs[i].n_steps = 1;
        jobs[i].steps[0].argv[0] = i == T_NOEXE ? "/nonexistent/python3" : py;
        jobs[i].steps[0].argv[1] = "main.py";
        if (i == T_NODE) {
            jobs[i].steps[0].argv[0] = have_node ? node : "/nonexistent/node";
            jobs[i].steps[0].argv[1] = "main.js";
        }
        mp_sbx_limits_default(&jobs[i].limits);
        jobs[i].limits.wall_s = 4;
        jobs[i].limits.cpu_s = 5;
        jobs[i].limits.nproc = 32;
        jobs[i].limits.out_keep = 4096;
        jobs[i].limits.tmp_bytes = 32u << 20;
    }
    jobs[T_FSIZE].limits.tmp_bytes = 256u << 20; /* RLIMIT_FSIZE, not the tmpfs cap, must stop it */
    jobs[T_DEEP].limits.wall_s = 30; /* 20,000 mkdir + chdir */
    jobs[T_DEEP].limits.cpu_s = 30;
    jobs[T_NODE].limits.as_bytes = 0; /* as eval multipl-e runs node: V8 reserves huge ranges */
    jobs[T_NODE].limits.mem_bytes = 512u << 20;
    jobs[T_NODE].limits.wall_s = 20;
    jobs[T_NODE].limits.cpu_s = 20;
    mp_error err;
    mp_error_clear(&err);
    double t0 = mp_now();
    if (mp_sandbox_run_all(jobs, N_FIRST, 2, res, NULL, NULL, &err) < 0 ||
        mp_sandbox_run_all(jobs + T_IPC_LATER, 1, 1, res + T_IPC_LATER, NULL, NULL, &err) < 0) {
        fprintf(stderr, "FAIL: %s\n", err.msg);
        return 1;
    }
    printf("%d hostile/control programs in %.2f s with 2 workers\n", T_N, mp_now() - t0);
    for (int i = 0; i < T_N; i++) {
        mp_sbx_result *r = &res[i];
        printf("  %-26s outcome %d exit %d signal %d wall %.2f s out %llu B: %.60s\n", NAMES[i], r->outcome,
               r->exit_code, r->term_signal, r->wall_s, (unsigned long long)r->out_total,
               r->outcome == MP_SBX_SETUP ? r->setup_error : r->out);
    }
    CHECK(res[T_BOMB].outcome == MP_SBX_TIMEOUT, "fork bomb: outcome %d, want timeout", res[T_BOMB].outcome);
    /* killed at the 4 s limit; the supervisor then waits up to 3 s for the namespace to empty and reaps it,
     * which took 2.5 s on a loaded 2-core CI runner: the bound is limit + grace + 2 s, not a timing target */
    CHECK(res[T_LOOP].outcome == MP_SBX_TIMEOUT && res[T_LOOP].wall_s < 4 + 3 + 2, "infinite loop: outcome %d wall %.2f",
          res[T_LOOP].outcome, res[T_LOOP].wall_s);
    CHECK(res[T_WRITE].outcome == MP_SBX_EXITED && res[T_WRITE].exit_code == 0, "write outside: exit %d: %s",
          res[T_WRITE].exit_code, res[T_WRITE].out);
    CHECK(strstr(res[T_WRITE].out, "$SANDBOX\n") != NULL, "cwd not reported as $SANDBOX: %s", res[T_WRITE].out);
    for (int k = 0; k < 4; k++) CHECK(access(esc[k], F_OK) != 0, "%s exists: escaped the sandbox", esc[k]);
    CHECK(access(esc_up, F_OK) != 0, "%s exists: escaped the sandbox", esc_up);

    /* issue 19: AF_UNIX, SysV IPC, tmpfs caps, deep trees, node memory */
    CHECK(res[T_UNIX].outcome == MP_SBX_EXITED && res[T_UNIX].exit_code == 0, "AF_UNIX: exit %d: %s %s",
          res[T_UNIX].exit_code, res[T_UNIX].out, res[T_UNIX].err);
    for (int k = 0; k < 3; k++)
        if (ul[k] >= 0) {
            int a = accept(ul[k], NULL, NULL);
            CHECK(a < 0, "the host AF_UNIX listener %s got a connection", usock[k]);
            if (a >= 0) close(a);
            close(ul[k]);
            unlink(usock[k]);
        }
    CHECK(res[T_IPC].outcome == MP_SBX_EXITED && res[T_IPC].exit_code == 0, "SysV create: exit %d: %s %s",
          res[T_IPC].exit_code, res[T_IPC].out, res[T_IPC].err);
    int host_shm = shmget(ipc_key, 0, 0), host_mq = msgget(ipc_key, 0);
    CHECK(host_shm < 0 && host_mq < 0, "SysV objects of a finished run visible on the host (shm %d msg %d)", host_shm,
          host_mq);
    if (host_shm >= 0) shmctl(host_shm, IPC_RMID, NULL);
    if (host_mq >= 0) msgctl(host_mq, IPC_RMID, NULL);
    CHECK(res[T_IPC_LATER].outcome == MP_SBX_EXITED && res[T_IPC_LATER].exit_code == 0,
          "a later sandbox sees the SysV objects of an earlier one: %s %s", res[T_IPC_LATER].out, res[T_IPC_LATER].err);
    {
        int tmp_mb = -1, tmp_errno = -1, dir_mb = -1, dir_errno = -1;
        const char *o = res[T_FILL].out, *q = strstr(o, "\n. ");
        int ok = sscanf(o, "/tmp %d %d", &tmp_mb, &tmp_errno) == 2 && q && sscanf(q + 1, ". %d %d", &dir_mb, &dir_errno) == 2;
        /* without root the dir is on the host filesystem: only RLIMIT_FSIZE per file (docs/sandbox.md) */
        if (!strstr(mp_sandbox_isolation(), "sandbox dir on its own tmpfs")) dir_errno = ENOSPC, dir_mb = 0;
        CHECK(ok && tmp_errno == ENOSPC && tmp_mb <= 32 && dir_errno == ENOSPC && dir_mb <= 32,
              "fill past the 32 MiB cap: /tmp %d MiB errno %d, dir %d MiB errno %d (want ENOSPC at <= 32): %s %s", tmp_mb,
              tmp_errno, dir_mb, dir_errno, o, res[T_FILL].err);
    }
    CHECK(res[T_DEEP].outcome == MP_SBX_EXITED && res[T_DEEP].exit_code == 0 && strstr(res[T_DEEP].out, "deep trees made"),
          "deep trees: outcome %d exit %d: %s %s", res[T_DEEP].outcome, res[T_DEEP].exit_code, res[T_DEEP].out,
          res[T_DEEP].err);
    for (int i = 0; i < T_N; i++)
        CHECK(res[i].cleanup_error[0] == '\0', "%s: cleanup: %s", NAMES[i], res[i].cleanup_error);
    if (have_node) {
        CHECK(!strstr(res[T_NODE].out, "ALLOCATED") && (res[T_NODE].exit_code != 0 || res[T_NODE].term_signal),
              "node allocated 3 GiB of Buffers past a 512 MiB limit: outcome %d exit %d signal %d: %s", res[T_NODE].outcome,
              res[T_NODE].exit_code, res[T_NODE].term_signal, res[T_NODE].out);
        if (strstr(mp_sandbox_isolation(), "memory cgroup"))
            CHECK(res[T_NODE].mem_exceeded, "node: the memory cgroup did not record hitting its limit");
    } else {
        printf("  skipped: node memory limit (no node; Debian package nodejs)\n");
    }
    CHECK(res[T_SOCKET].outcome == MP_SBX_EXITED && res[T_SOCKET].exit_code == 0, "sockets: exit %d: %s",
          res[T_SOCKET].exit_code, res[T_SOCKET].out);
    int acc = accept(ls, NULL, NULL);
    CHECK(acc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "the host listener on 127.0.0.1 got a connection");
    if (!netns) printf("  skipped: public-address connect (no network namespace: %s)\n", mp_sandbox_isolation());
    CHECK(res[T_ALLOC].outcome == MP_SBX_EXITED && res[T_ALLOC].exit_code != 0 && strstr(res[T_ALLOC].err, "MemoryError"),
          "50 GB: outcome %d exit %d: %s", res[T_ALLOC].outcome, res[T_ALLOC].exit_code, res[T_ALLOC].err);
    /* killed for its output, only 4 KiB kept; how much it wrote before the kill
     * landed depends on scheduling (under ASan it can be all 100 MB) */
    CHECK(res[T_OUTPUT].outcome == MP_SBX_OUTPUT && res[T_OUTPUT].out_len <= 4096 &&
              res[T_OUTPUT].out_total <= (100u << 20),
          "100 MB output: outcome %d kept %zu total %llu", res[T_OUTPUT].outcome, res[T_OUTPUT].out_len,
          (unsigned long long)res[T_OUTPUT].out_total);
    /* a background child that kept the pipes would hold the run to the 4 s wall limit: under it means it did not */
    CHECK(res[T_ESCAPE].outcome == MP_SBX_EXITED && res[T_ESCAPE].exit_code == 0 && res[T_ESCAPE].wall_s < 4,
          "setsid background: outcome %d exit %d wall %.2f", res[T_ESCAPE].outcome, res[T_ESCAPE].exit_code,
          res[T_ESCAPE].wall_s);
    CHECK(res[T_FSIZE].outcome == MP_SBX_EXITED && res[T_FSIZE].exit_code != 0 && strstr(res[T_FSIZE].err, "File too large"),
          "RLIMIT_FSIZE: exit %d: %s", res[T_FSIZE].exit_code, res[T_FSIZE].err);
    CHECK(res[T_NOEXE].outcome == MP_SBX_SETUP && strstr(res[T_NOEXE].setup_error, "execve"),
          "missing executable: outcome %d: %s", res[T_NOEXE].outcome, res[T_NOEXE].setup_error);
    CHECK(res[T_OK].outcome == MP_SBX_EXITED && res[T_OK].exit_code == 0 && !strcmp(res[T_OK].out, "hello\n$SANDBOX\n"),
          "control program: exit %d out '%s' err '%s'", res[T_OK].exit_code, res[T_OK].out, res[T_OK].err);

    /* nothing left behind: processes of the sandbox uids, sandbox dirs */
    int checked_uid = 0;
    for (int i = 0; i < T_N; i++)
        if (res[i].sandbox_uid) {
            checked_uid = 1;
            int n = count_uid(res[i].sandbox_uid);
            CHECK(n == 0, "%s: %d processes of uid %u left", NAMES[i], n, res[i].sandbox_uid);
        }
    if (!checked_uid) printf("  skipped: leftover-process check by uid (not root: programs run as the caller)\n");
    DIR *d = opendir(tmpl);
    struct dirent *e;
    int left = 0;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            fprintf(stderr, "left behind: %s/%s\n", tmpl, e->d_name);
            left++;
        }
    if (d) closedir(d);
    CHECK(left == 0, "%d sandbox dirs not removed", left);
    rmdir(tmpl);
    for (int i = 0; i < T_N; i++) mp_sbx_result_free(&res[i]);
    close(ls);
    if (failures) {
        fprintf(stderr, "%d sandbox checks failed\n", failures);
        return 1;
    }
    printf("sandbox: every hostile program contained\n");
    return 0;
}
