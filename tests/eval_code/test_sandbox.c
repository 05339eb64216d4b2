/* tests/eval_code/test_sandbox.c — hostile programs in core/sandbox: a fork
 * bomb, an infinite loop, writes outside the sandbox dir (/tmp, /var/tmp,
 * /dev/shm, the repository), sockets to 127.0.0.1 and a public address, a
 * 50 GB allocation, 100 MB of output, a setsid'ed background process, a file
 * over RLIMIT_FSIZE. Each must be contained with the right outcome; afterwards
 * no process of the sandbox uid may be left and every sandbox dir must be gone.
 * usage: test_sandbox PYTHON3 REPO_DIR */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util/progress.h"
#include "core/eval/sandbox.h"

static int failures;
#define CHECK(cond, ...)                                  \
    do {                                                  \
        if (!(cond)) {                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                 \
            fputc('\n', stderr);                          \
            failures++;                                   \
        }                                                 \
    } while (0)

enum { T_BOMB, T_LOOP, T_WRITE, T_SOCKET, T_ALLOC, T_OUTPUT, T_ESCAPE, T_FSIZE, T_NOEXE, T_OK, T_N };
static const char *NAMES[T_N] = {"fork bomb", "infinite loop", "write outside", "sockets", "allocate 50 GB",
                                 "print 100 MB", "setsid background process", "file over RLIMIT_FSIZE",
                                 "missing executable", "well-behaved program"};

static char src[T_N][4096];

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

    snprintf(src[T_BOMB], sizeof src[0], "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n");
    snprintf(src[T_LOOP], sizeof src[0], "while True:\n    pass\n");
    snprintf(src[T_WRITE], sizeof src[0],
             "import os\nbad = 0\nfor p in ['%s', '%s', '%s', '%s', '../escape_%d']:\n"
             "    try:\n        open(p, 'w').write('x')\n        print('WROTE', p); bad += 1\n"
             "    except OSError as e:\n        print('blocked', p, e.errno)\n"
             "open('inside.txt', 'w').write('ok')\nprint(os.getcwd())\nraise SystemExit(3 if bad else 0)\n",
             esc[0], esc[1], esc[2], esc[3], (int)getpid());
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

    mp_sbx_file files[T_N];
    mp_sbx_job jobs[T_N];
    mp_sbx_result res[T_N];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < T_N; i++) {
        files[i] = (mp_sbx_file){"main.py", src[i], strlen(src[i]), 0644};
        jobs[i].files = &files[i];
        jobs[i].n_files = 1;
        jobs[i].n_steps = 1;
        jobs[i].steps[0].argv[0] = i == T_NOEXE ? "/nonexistent/python3" : py;
        jobs[i].steps[0].argv[1] = "main.py";
        mp_sbx_limits_default(&jobs[i].limits);
        jobs[i].limits.wall_s = 4;
        jobs[i].limits.cpu_s = 5;
        jobs[i].limits.nproc = 32;
        jobs[i].limits.out_keep = 4096;
    }
    mp_error err;
    mp_error_clear(&err);
    double t0 = mp_now();
    if (mp_sandbox_run_all(jobs, T_N, 2, res, NULL, NULL, &err) < 0) {
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
    CHECK(res[T_LOOP].outcome == MP_SBX_TIMEOUT && res[T_LOOP].wall_s < 6, "infinite loop: outcome %d wall %.2f",
          res[T_LOOP].outcome, res[T_LOOP].wall_s);
    CHECK(res[T_WRITE].outcome == MP_SBX_EXITED && res[T_WRITE].exit_code == 0, "write outside: exit %d: %s",
          res[T_WRITE].exit_code, res[T_WRITE].out);
    CHECK(strstr(res[T_WRITE].out, "$SANDBOX\n") != NULL, "cwd not reported as $SANDBOX: %s", res[T_WRITE].out);
    for (int k = 0; k < 4; k++) CHECK(access(esc[k], F_OK) != 0, "%s exists: escaped the sandbox", esc[k]);
    CHECK(res[T_SOCKET].outcome == MP_SBX_EXITED && res[T_SOCKET].exit_code == 0, "sockets: exit %d: %s",
          res[T_SOCKET].exit_code, res[T_SOCKET].out);
    int acc = accept(ls, NULL, NULL);
    CHECK(acc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "the host listener on 127.0.0.1 got a connection");
    if (!netns) printf("  skipped: public-address connect (no network namespace: %s)\n", mp_sandbox_isolation());
    CHECK(res[T_ALLOC].outcome == MP_SBX_EXITED && res[T_ALLOC].exit_code != 0 && strstr(res[T_ALLOC].err, "MemoryError"),
          "50 GB: outcome %d exit %d: %s", res[T_ALLOC].outcome, res[T_ALLOC].exit_code, res[T_ALLOC].err);
    CHECK(res[T_OUTPUT].outcome == MP_SBX_OUTPUT && res[T_OUTPUT].out_len <= 4096 &&
              res[T_OUTPUT].out_total < (100u << 20),
          "100 MB output: outcome %d kept %zu total %llu", res[T_OUTPUT].outcome, res[T_OUTPUT].out_len,
          (unsigned long long)res[T_OUTPUT].out_total);
    CHECK(res[T_ESCAPE].outcome == MP_SBX_EXITED && res[T_ESCAPE].exit_code == 0 && res[T_ESCAPE].wall_s < 3,
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
