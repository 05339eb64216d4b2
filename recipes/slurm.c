/* recipes/slurm.c — the Slurm executor (slurm.h): job scripts, sbatch lines
 * with afterok dependencies, job arrays for sharded collects, the job record
 * OUT/slurm/jobs.tsv, and the status of every step from the cache, squeue and
 * sacct. sbatch / squeue / sacct are run from PATH with fork + execvp; their
 * output is read from a pipe. */
#include "recipes/slurm.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/util/term.h"

#define JOB_NONE 0L

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- running sbatch / squeue / sacct ------------------------------------------------- */

/* Run argv (from PATH) with stdin from /dev/null; stdout (and stderr when both)
 * into buf. @return the exit status (0..255), 127 when it cannot run, -1 on fork failure. */
static int run_tool(char *const *argv, int both, char *buf, size_t cap) {
    int fd[2];
    buf[0] = 0;
    if (pipe(fd) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) dup2(nul, 0);
        dup2(fd[1], 1);
        dup2(both ? fd[1] : (nul >= 0 ? nul : fd[1]), 2);
        close(fd[0]);
        close(fd[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    size_t n = 0;
    for (;;) {
        char tmp[4096];
        ssize_t r = read(fd[0], tmp, sizeof tmp);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        size_t k = (size_t)r < cap - 1 - n ? (size_t)r : cap - 1 - n;
        memcpy(buf + n, tmp, k);
        n += k;
    }
    buf[n] = 0;
    close(fd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void one_line(char *s) {
    for (char *c = s; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ') s[--n] = 0;
}

/* ---- the job record ------------------------------------------------------------------- */

static const char *ROLE_NAMES[] = {"step", "shards", "merge", "report"};
enum { R_STEP = 0, R_SHARDS, R_MERGE, R_REPORT, R_COUNT };

typedef struct rec {
    long id[R_COUNT]; /* latest job of each role, JOB_NONE = none */
} rec;

/* The latest recorded job of every (step, role) from OUT/slurm/jobs.tsv; report → recs[n_steps]. */
static void load_record(const mp_plan *p, rec *recs) {
    char path[4200], line[1024];
    snprintf(path, sizeof path, "%s/slurm/jobs.tsv", p->out_dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        char *end, *role, *key;
        long id = strtol(line, &end, 10);
        if (end == line || *end != '\t' || id <= 0) continue;
        role = end + 1;
        char *t = strchr(role, '\t');
        if (!t) continue;
        *t = 0;
        key = t + 1;
        if ((t = strchr(key, '\t'))) *t = 0;
        int r = -1;
        for (int k = 0; k < R_COUNT; k++)
            if (!strcmp(role, ROLE_NAMES[k])) r = k;
        if (r < 0) continue;
        if (r == R_REPORT) {
            recs[p->n_steps].id[r] = id;
            continue;
        }
        for (size_t i = 0; i < p->n_steps; i++)
            if (!strcmp(p->steps[i].key, key)) recs[i].id[r] = id;
    }
    fclose(f);
}

/* ---- queue state ---------------------------------------------------------------------- */

typedef struct qstate {
    long id;
    char state[32];
} qstate;

typedef struct queue {
    qstate *v;
    size_t n, cap;
    int have_squeue;
} queue;

static void queue_put(queue *q, long id, const char *state, int live_wins) {
    for (size_t i = 0; i < q->n; i++)
        if (q->v[i].id == id) {
            /* an array with tasks in several states: running beats pending */
            if (live_wins && !strcmp(state, "RUNNING")) snprintf(q->v[i].state, sizeof q->v[i].state, "%s", state);
            return;
        }
    if (q->n == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 32;
        qstate *v = realloc(q->v, cap * sizeof *v);
        if (!v) return;
        q->v = v;
        q->cap = cap;
    }
    q->v[q->n].id = id;
    snprintf(q->v[q->n].state, sizeof q->v[q->n].state, "%s", state);
    q->n++;
}

static const char *queue_get(const queue *q, long id) {
    for (size_t i = 0; id != JOB_NONE && i < q->n; i++)
        if (q->v[i].id == id) return q->v[i].state;
    return NULL;
}

/* Parse "ID<sep>STATE[ NAME]" lines (ID may be 12_3 or 12_[0-2]: the array's base id
 * counts); with prefix, only lines whose job name starts with it (this sweep's jobs:
 * a recorded id that Slurm has since given to another job must not count as ours). */
static void parse_states(queue *q, char *txt, char sep, int live_wins, const char *prefix) {
    char *save = NULL;
    for (char *line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *end;
        long id = strtol(line, &end, 10);
        if (end == line || id <= 0) continue;
        char *s = strchr(end, sep);
        if (!s) continue;
        s++;
        while (*s == ' ') s++;
        char st[32];
        size_t k = 0;
        while (s[k] && s[k] != ' ' && s[k] != '\r' && k + 1 < sizeof st) {
            st[k] = s[k];
            k++;
        }
        st[k] = 0;
        if (prefix) {
            const char *name = s + k;
            while (*name == ' ') name++;
            size_t n = strlen(prefix);
            if (strncmp(name, prefix, n > 58 ? 58 : n)) continue; /* merge jobs: NAME cut at 58 + "-merge" */
        }
        if (k) queue_put(q, id, st, live_wins);
    }
}

static void job_name(const mp_plan *p, const char *label, char *buf, size_t cap);

/* This sweep's jobs still in the queue (squeue, this user), keyed by array base id. */
static void query_queue(queue *q, const mp_plan *p) {
    struct passwd *pw = getpwuid(getuid());
    char user[256], prefix[80];
    size_t cap = 4u << 20;
    char *buf = malloc(cap);
    job_name(p, "", prefix, sizeof prefix); /* "mp-NAME-" */
    snprintf(user, sizeof user, "%s", pw ? pw->pw_name : "root");
    char *argv[] = {"squeue", "-h", "-u", user, "-o", "%F %T %j", NULL};
    int rc = buf ? run_tool(argv, 0, buf, cap) : -1;
    q->have_squeue = rc == 0;
    if (rc == 0) parse_states(q, buf, ' ', 1, prefix);
    free(buf);
}

/* Final states of ended jobs from sacct (when accounting answers); ids joined by ','. */
static void query_sacct(queue *q, const char *ids) {
    char buf[1 << 16];
    char *argv[] = {"sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", (char *)ids, NULL};
    if (!ids[0] || run_tool(argv, 0, buf, sizeof buf) != 0) return;
    parse_states(q, buf, '|', 0, NULL);
}

static int live_state(const char *st) {
    return st && (!strcmp(st, "PENDING") || !strcmp(st, "RUNNING") || !strcmp(st, "CONFIGURING") ||
                  !strcmp(st, "COMPLETING") || !strcmp(st, "REQUEUED") || !strcmp(st, "RESIZING") ||
                  !strcmp(st, "SUSPENDED") || !strcmp(st, "REQUEUE_HOLD") || !strcmp(st, "REQUEUE_FED"));
}

/* ---- scripts and sbatch lines ---------------------------------------------------------- */

static void key12(const mp_step *s, char out[13]) {
    memcpy(out, s->key, 12);
    out[12] = 0;
}

/* A job name: mp-NAME-LABEL with everything but [A-Za-z0-9._-] as '-'. */
static void job_name(const mp_plan *p, const char *label, char *buf, size_t cap) {
    snprintf(buf, cap, "mp-%s-%s", p->recipe->name, label);
    for (char *c = buf; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '.' && *c != '_' && *c != '-') *c = '-';
    if (strlen(buf) > 64) buf[64] = 0;
}

/* Text inside a double-quoted echo: a label or path from the recipe must not expand
 * ($, `, ", \\ and anything unusual become '?'). */
static void echo_safe(FILE *f, const char *s) {
    for (; *s; s++)
        fputc(isalnum((unsigned char)*s) || strchr(" @._:=,+/-", *s) ? *s : '?', f);
}

/* Lines run when the command exits non-zero: a one-line message into the job's log. */
static void fail_lines(FILE *f, const char *label, const char *what, const char *err_path) {
    fputs("rc=$?\nif [ $rc -ne 0 ]; then\n  echo \"monet-probe sweep: step '", f);
    echo_safe(f, label);
    fprintf(f, "'%s failed (exit $rc): $(tail -n 1 ", what);
    mp_plan_shell_quote(f, err_path);
    fputs(" 2>/dev/null) (stderr: ", f);
    echo_safe(f, err_path);
    fputs(")\" >&2\n  exit $rc\nfi\n", f);
}

/* The DONE marker, written last by write + rename, with the seconds the job measured. */
static int done_lines(FILE *f, const mp_plan *p, const mp_step *s, const char *exe) {
    char *txt = mp_plan_marker_json(p, s, exe, 0);
    cJSON *o = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    if (!o) return -1;
    cJSON_DeleteItemFromObject(o, "seconds");
    txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!txt) return -1;
    size_t n = strlen(txt);
    if (n && txt[n - 1] == '}') txt[n - 1] = 0;
    char done[4200], tmp[4200];
    snprintf(done, sizeof done, "%s/DONE", s->dir);
    snprintf(tmp, sizeof tmp, "%s/DONE.tmp", s->dir);
    fputs("secs=$(awk -v a=\"$t0\" -v b=\"$(date +%s.%N)\" 'BEGIN { printf \"%.2f\", b - a }')\n", f);
    fprintf(f, "{ cat <<'MP_DONE_EOF'\n%s\nMP_DONE_EOF\nprintf ',\"seconds\":%%s}\\n' \"$secs\"; } > ", txt);
    mp_plan_shell_quote(f, tmp);
    fputs(" && mv ", f);
    mp_plan_shell_quote(f, tmp);
    fputc(' ', f);
    mp_plan_shell_quote(f, done);
    fputs(" || exit 3\n", f);
    free(txt);
    return 0;
}

static void head_lines(FILE *f, const mp_plan *p, const char *cwd, const char *what) {
    fputs("#!/bin/sh\n# ", f);
    fputs(what, f);
    fputs(" (written by monet-probe sweep --executor slurm; docs/scale.md)\ncd ", f);
    mp_plan_shell_quote(f, cwd);
    fputs(" || exit 3\nt0=$(date +%s.%N)\n", f);
    (void)p;
}

/* Write one job's script. role: R_STEP, R_SHARDS (array: shard = $SLURM_ARRAY_TASK_ID), R_MERGE, R_REPORT. */
static int write_script(const mp_plan *p, const mp_step *s, int role, const char *exe, const char *cwd,
                        const mp_slurm_opts *o, const char *path, mp_error *err) {
    FILE *f = fopen(path, "w");
    if (!f) return mp_fail(err, MP_EIO, "%s: cannot create: %s", path, strerror(errno));
    int rc = 0;
    char what[600], out_path[4200], err_path[4200];
    if (role == R_REPORT) {
        snprintf(what, sizeof what, "sweep %s: the report once every step is done", p->recipe->name);
        head_lines(f, p, cwd, what);
        for (size_t a = 0; o->report_argv && o->report_argv[a]; a++) {
            if (a) fputc(' ', f);
            mp_plan_shell_quote(f, o->report_argv[a]);
        }
        fputc('\n', f);
        goto done;
    }
    snprintf(what, sizeof what, "sweep %s: %s%s (key %s)", p->recipe->name, s->label,
             role == R_SHARDS ? ", shard $SLURM_ARRAY_TASK_ID" : role == R_MERGE ? ", merge of the shards" : "", s->key);
    for (char *c = what; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    head_lines(f, p, cwd, what);
    fputs("mkdir -p ", f);
    mp_plan_shell_quote(f, s->dir);
    fputs(" || exit 3\n", f);
    char **argv = NULL;
    mp_job_role jr = role == R_SHARDS ? MP_JOB_SHARD : role == R_MERGE ? MP_JOB_MERGE : MP_JOB_STEP;
    if ((rc = mp_plan_job_argv(p, s, jr, 0, exe, 0, &argv, err)) < 0) goto done;
    char shard_db[4200], shard_arg[64], pre[4200];
    mp_plan_shard_path(s, 0, ".db", shard_db, sizeof shard_db);
    snprintf(shard_arg, sizeof shard_arg, "0/%d", s->shards);
    snprintf(pre, sizeof pre, "%s/shard-", s->dir);
    if (role == R_SHARDS)
        fputs("i=$SLURM_ARRAY_TASK_ID\ncase \"$i\" in ''|*[!0-9]*) echo \"monet-probe sweep: not a job array task "
              "(SLURM_ARRAY_TASK_ID='$i')\" >&2; exit 2;; esac\n", f);
    for (size_t a = 0; argv[a]; a++) {
        if (a) fputc(' ', f);
        if (role == R_SHARDS && !strcmp(argv[a], shard_db)) {
            mp_plan_shell_quote(f, pre);
            fprintf(f, "\"$i\"-of-%d.db", s->shards);
        } else if (role == R_SHARDS && !strcmp(argv[a], shard_arg)) {
            fprintf(f, "\"$i\"/%d", s->shards);
        } else {
            mp_plan_shell_quote(f, argv[a]);
        }
    }
    mp_plan_argv_free(argv);
    mp_plan_job_files(s, jr, 0, out_path, err_path, sizeof out_path);
    if (role == R_SHARDS) {
        char shard_out[64], shard_err[64];
        snprintf(shard_out, sizeof shard_out, "\"$i\"-of-%d.stdout.txt", s->shards);
        snprintf(shard_err, sizeof shard_err, "\"$i\"-of-%d.stderr.txt", s->shards);
        fputs(" > ", f);
        mp_plan_shell_quote(f, pre);
        fputs(shard_out, f);
        fputs(" 2> ", f);
        mp_plan_shell_quote(f, pre);
        fprintf(f, "%s\n", shard_err);
        fputs("rc=$?\nif [ $rc -ne 0 ]; then\n  echo \"monet-probe sweep: step '", f);
        echo_safe(f, s->label);
        fprintf(f, "' shard $i/%d failed (exit $rc): $(tail -n 1 ", s->shards);
        mp_plan_shell_quote(f, pre);
        fprintf(f, "%s 2>/dev/null)\" >&2\n  exit $rc\nfi\n: > ", shard_err);
        mp_plan_shell_quote(f, pre);
        fprintf(f, "\"$i\"-of-%d.done || exit 3\n", s->shards);
        goto done;
    }
    fputs(" > ", f);
    mp_plan_shell_quote(f, out_path);
    fputs(" 2> ", f);
    mp_plan_shell_quote(f, err_path);
    fputc('\n', f);
    fail_lines(f, s->label, role == R_MERGE ? " merge" : "", err_path);
    if (done_lines(f, p, s, exe) < 0) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto done;
    }
    if (role == R_MERGE) { /* the shard stores are not needed once DONE is written */
        fputs("rm -f", f);
        static const char *const SUFFIX[] = {".db", ".db-wal", ".db-shm", ".db-journal", ".db.lock", ".done", NULL};
        for (int k = 0; k < s->shards; k++)
            for (const char *const *x = SUFFIX; *x; x++) {
                char sp[4200];
                mp_plan_shard_path(s, k, *x, sp, sizeof sp);
                fputc(' ', f);
                mp_plan_shell_quote(f, sp);
            }
        fputc('\n', f);
    }
done:
    if (fclose(f) != 0 && rc == 0) rc = mp_fail(err, MP_EIO, "%s: write failed", path);
    if (rc == 0 && chmod(path, 0755) != 0) rc = mp_fail(err, MP_EIO, "%s: chmod: %s", path, strerror(errno));
    return rc;
}

/* sbatch's argv (without the script) for one job; deps are job ids or, dry, $Jn names. */
typedef struct sbargs {
    char *v[96];
    char store[24][4400];
    char *dep; /* --dependency=afterok:... (any length: the report job waits for every job), owned */
    int n, ns, oom;
} sbargs;

static void sb_add(sbargs *a, const char *s) {
    if (a->n < 95) a->v[a->n++] = (char *)s;
}

static void sb_addf(sbargs *a, const char *fmt, const char *x) {
    if (a->ns >= 24) return;
    snprintf(a->store[a->ns], sizeof a->store[a->ns], fmt, x);
    sb_add(a, a->store[a->ns++]);
}

static int uses_gpu(const mp_step *s, int role) {
    return role == R_SHARDS || (role == R_STEP && (s->kind == MP_STEP_COLLECT || s->kind == MP_STEP_EVAL));
}

static void sb_build(sbargs *a, const mp_plan *p, const mp_step *s, int role, const char *cwd, const char *array,
                     const char *deps, const mp_slurm_opts *o, const char *script) {
    char name[80], log[4300], k[13] = "";
    if (s) key12(s, k);
    job_name(p, role == R_REPORT ? "report" : role == R_MERGE ? "merge" : s->label, name, sizeof name);
    if (role == R_MERGE && strlen(name) + 6 < sizeof name) { /* mp-NAME-merge-LABEL: tell merge jobs apart */
        job_name(p, s->label, name, sizeof name);
        char tmp[80];
        snprintf(tmp, sizeof tmp, "%.58s-merge", name);
        snprintf(name, sizeof name, "%s", tmp);
    }
    if (role == R_REPORT) snprintf(log, sizeof log, "%s/slurm/logs/report-%%j.log", p->out_dir);
    else if (role == R_SHARDS) snprintf(log, sizeof log, "%s/slurm/logs/%s-shard-%%A_%%a.log", p->out_dir, k);
    else if (role == R_MERGE) snprintf(log, sizeof log, "%s/slurm/logs/%s-merge-%%j.log", p->out_dir, k);
    else snprintf(log, sizeof log, "%s/slurm/logs/%s-%%j.log", p->out_dir, k);
    a->n = a->ns = a->oom = 0;
    a->dep = NULL;
    sb_add(a, "sbatch");
    sb_add(a, "--parsable");
    sb_addf(a, "--job-name=%s", name);
    sb_addf(a, "--chdir=%s", cwd);
    sb_addf(a, "--output=%s", log);
    if (array) sb_addf(a, "--array=%s", array);
    if (deps && deps[0]) {
        if (!(a->dep = malloc(strlen(deps) + 32))) {
            a->oom = 1;
        } else {
            sprintf(a->dep, "--dependency=afterok:%s", deps);
            sb_add(a, a->dep);
            sb_add(a, "--kill-on-invalid-dep=yes");
        }
    }
    if (o->partition) sb_addf(a, "--partition=%s", o->partition);
    if (o->account) sb_addf(a, "--account=%s", o->account);
    if (o->time) sb_addf(a, "--time=%s", o->time);
    if (o->gres && s && uses_gpu(s, role)) sb_addf(a, "--gres=%s", o->gres);
    for (size_t i = 0; i < o->n_extra; i++) sb_add(a, o->extra[i]);
    sb_add(a, script);
    a->v[a->n] = NULL;
}

/* "0-2" or "0,2,5-7": the shards still missing. */
static void array_spec(const mp_step *s, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    for (int k = 0; k < s->shards && n < cap;) {
        if (mp_plan_shard_done(s, k)) {
            k++;
            continue;
        }
        int e = k;
        while (e + 1 < s->shards && !mp_plan_shard_done(s, e + 1)) e++;
        if (e > k) n += (size_t)snprintf(buf + n, cap - n, "%s%d-%d", n ? "," : "", k, e);
        else n += (size_t)snprintf(buf + n, cap - n, "%s%d", n ? "," : "", k);
        k = e + 1;
    }
}

/* ---- submission ---------------------------------------------------------------------- */

typedef struct sub {
    FILE *out;
    int dry, n_jobs;
    FILE *tsv; /* OUT/slurm/jobs.tsv (not dry) */
} sub;

/* Submit (or, dry, print) one job; its id (or "$Jn") into id. */
static int submit_job(sub *u, const mp_plan *p, const mp_step *s, int role, sbargs *a, char *id, size_t cap,
                      mp_error *err) {
    u->n_jobs++;
    if (u->dry) {
        snprintf(id, cap, "$J%d", u->n_jobs);
        fprintf(u->out, "J%d=$(", u->n_jobs);
        for (int i = 0; i < a->n; i++) {
            if (i) fputc(' ', u->out);
            if (strstr(a->v[i], "$J")) fprintf(u->out, "\"%s\"", a->v[i]); /* --dependency=afterok:$J1:$J2 */
            else mp_plan_shell_quote(u->out, a->v[i]);
        }
        fprintf(u->out, ")   # %s%s\n", role == R_REPORT ? "report" : s->label,
                role == R_SHARDS ? " (shards)" : role == R_MERGE ? " (merge)" : "");
        return 0;
    }
    char buf[4096];
    int rc = run_tool(a->v, 1, buf, sizeof buf);
    one_line(buf);
    if (rc == 127) return mp_fail(err, MP_ERESOURCE, "sbatch: not found on PATH (the Slurm client; Debian: slurm-client)");
    char *end;
    long jid = strtol(buf, &end, 10);
    if (rc != 0 || jid <= 0 || (*end && *end != ';' && *end != ' '))
        return mp_fail(err, MP_ERESOURCE, "sbatch refused the job '%s' (exit %d): %.400s",
                       role == R_REPORT ? "report" : s->label, rc, buf[0] ? buf : "no message");
    snprintf(id, cap, "%ld", jid);
    fprintf(u->tsv, "%ld\t%s\t%s\t%s\n", jid, ROLE_NAMES[role], s ? s->key : "-", role == R_REPORT ? "report" : s->label);
    fflush(u->tsv);
    char *lab = NULL;
    mp_error e2;
    if (mp_term_escape(role == R_REPORT ? "report" : s->label, strlen(role == R_REPORT ? "report" : s->label), 0, &lab,
                       &e2) < 0)
        lab = NULL;
    fprintf(u->out, "submitted job %ld: %s%s\n", jid, lab ? lab : "?",
            role == R_SHARDS ? " (shards)" : role == R_MERGE ? " (merge)" : "");
    free(lab);
    return 0;
}

/* submit_job, then free what sb_build allocated. */
static int submit_one(sub *u, const mp_plan *p, const mp_step *s, int role, sbargs *a, char *id, size_t cap,
                      mp_error *err) {
    if (a->oom) return mp_fail(err, MP_ENOMEM, "out of memory"); /* never a job without its dependency */
    int rc = submit_job(u, p, s, role, a, id, cap, err);
    free(a->dep);
    a->dep = NULL;
    return rc;
}

#define ID_CAP 32

int mp_slurm_submit(mp_plan *p, const char *exe, const mp_slurm_opts *o, int dry, FILE *out, int *n_jobs,
                    mp_error *err) {
    *n_jobs = 0;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return mp_fail(err, MP_EIO, "getcwd: %s", strerror(errno));
    rec *recs = calloc(p->n_steps + 1, sizeof *recs);
    char *final_id = calloc(p->n_steps + 1, ID_CAP); /* the job a dependent waits for, per step ("" = done) */
    char *deps = malloc(ID_CAP * (p->n_steps + 2));
    sub u = {.out = out, .dry = dry};
    queue q = {0};
    int lock = -1, rc = 0, any = 0;
    if (!recs || !final_id || !deps) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    char dir[4200], path[4300];
    if (!dry) {
        if ((rc = mp_plan_claim_out(p, 1, err)) < 0) goto cleanup;
        snprintf(dir, sizeof dir, "%s/slurm/logs", p->out_dir);
        if ((rc = mp_plan_mkdir(dir, err)) < 0) goto cleanup;
        snprintf(dir, sizeof dir, "%s/slurm/scripts", p->out_dir);
        if ((rc = mp_plan_mkdir(dir, err)) < 0 || (rc = mp_plan_mkdir(p->cache_dir, err)) < 0) goto cleanup;
        snprintf(path, sizeof path, "%s/lock", p->cache_dir);
        lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (lock < 0) {
            rc = mp_fail(err, MP_EIO, "%s: cannot open: %s", path, strerror(errno));
            goto cleanup;
        }
        if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
            rc = mp_fail(err, MP_EINPUT, "%s: another sweep is running with this output directory", p->out_dir);
            goto cleanup;
        }
        snprintf(path, sizeof path, "%s/slurm/jobs.tsv", p->out_dir);
        if (!(u.tsv = fopen(path, "a"))) {
            rc = mp_fail(err, MP_EIO, "%s: cannot open: %s", path, strerror(errno));
            goto cleanup;
        }
    } else {
        fprintf(out, "#!/bin/sh\n# sweep %s on Slurm: the sbatch lines `sweep --executor slurm` submits (job ids as "
                "$Jn); scripts in %s/slurm/scripts/, logs in %s/slurm/logs/\nset -e\n",
                p->recipe->name, p->out_dir, p->out_dir);
    }
    /* what was submitted before and is still queued or running (dry: read only) */
    load_record(p, recs);
    for (size_t i = 0; i <= p->n_steps; i++)
        for (int r = 0; r < R_COUNT; r++)
            if (recs[i].id[r] != JOB_NONE) any = 1;
    if (any) query_queue(&q, p);
    for (size_t i = 0; i < p->n_steps && rc == 0; i++) {
        mp_step *s = &p->steps[i];
        char *fid = final_id + i * ID_CAP, done[4200], k[13];
        snprintf(done, sizeof done, "%s/DONE", s->dir);
        if (s->cached || is_file(done)) continue; /* fid "" = nothing to wait for */
        key12(s, k);
        if (s->kind == MP_STEP_CORPUS) { /* in-process, cheap: here and now */
            if (dry) fprintf(out, "# %s: in-process, run by the submitting sweep\n", s->label);
            else if ((rc = mp_plan_run_inproc(p, s, exe, err)) < 0) break;
            continue;
        }
        /* afterok on the jobs of the steps it needs that are not done */
        size_t dn = 0;
        deps[0] = 0;
        for (int d = 0; d < s->n_deps; d++) {
            const char *x = final_id + (size_t)s->deps[d] * ID_CAP;
            if (x[0]) dn += (size_t)snprintf(deps + dn, ID_CAP * (p->n_steps + 2) - dn, "%s%s", dn ? ":" : "", x);
        }
        sbargs a;
        char script[4300];
        if (s->shards > 1) {
            char arr[4096], aid[ID_CAP] = "";
            array_spec(s, arr, sizeof arr);
            const char *live_a = queue_get(&q, recs[i].id[R_SHARDS]), *live_m = queue_get(&q, recs[i].id[R_MERGE]);
            if (live_state(live_m)) { /* the merge job still waits or runs: it is the step's job */
                snprintf(fid, ID_CAP, "%ld", recs[i].id[R_MERGE]);
                continue;
            }
            if (live_state(live_a)) snprintf(aid, sizeof aid, "%ld", recs[i].id[R_SHARDS]);
            else if (arr[0]) {
                snprintf(script, sizeof script, "%s/slurm/scripts/%s-shard.sh", p->out_dir, k);
                if (!dry && (rc = write_script(p, s, R_SHARDS, exe, cwd, o, script, err)) < 0) break;
                sb_build(&a, p, s, R_SHARDS, cwd, arr, deps, o, script);
                if ((rc = submit_one(&u, p, s, R_SHARDS, &a, aid, sizeof aid, err)) < 0) break;
            }
            /* the merge waits for the shards (and, when no shard runs, for what the step needs) */
            snprintf(script, sizeof script, "%s/slurm/scripts/%s-merge.sh", p->out_dir, k);
            if (!dry && (rc = write_script(p, s, R_MERGE, exe, cwd, o, script, err)) < 0) break;
            sb_build(&a, p, s, R_MERGE, cwd, NULL, aid[0] ? aid : deps, o, script);
            if ((rc = submit_one(&u, p, s, R_MERGE, &a, fid, ID_CAP, err)) < 0) break;
            continue;
        }
        if (live_state(queue_get(&q, recs[i].id[R_STEP]))) {
            snprintf(fid, ID_CAP, "%ld", recs[i].id[R_STEP]);
            continue;
        }
        snprintf(script, sizeof script, "%s/slurm/scripts/%s.sh", p->out_dir, k);
        if (!dry && (rc = write_script(p, s, R_STEP, exe, cwd, o, script, err)) < 0) break;
        sb_build(&a, p, s, R_STEP, cwd, NULL, deps, o, script);
        if ((rc = submit_one(&u, p, s, R_STEP, &a, fid, ID_CAP, err)) < 0) break;
    }
    /* the last job: the report once every step is done (afterok on every job there is) */
    if (rc == 0) {
        size_t dn = 0;
        deps[0] = 0;
        for (size_t i = 0; i < p->n_steps; i++) {
            const char *x = final_id + i * ID_CAP;
            if (x[0]) dn += (size_t)snprintf(deps + dn, ID_CAP * (p->n_steps + 2) - dn, "%s%s", dn ? ":" : "", x);
        }
        int live_report = live_state(queue_get(&q, recs[p->n_steps].id[R_REPORT]));
        if (deps[0] && (u.n_jobs > 0 || !live_report)) {
            sbargs a;
            char script[4300], rid[ID_CAP];
            snprintf(script, sizeof script, "%s/slurm/scripts/report.sh", p->out_dir);
            if (!dry) rc = write_script(p, NULL, R_REPORT, exe, cwd, o, script, err);
            sb_build(&a, p, NULL, R_REPORT, cwd, NULL, deps, o, script);
            if (rc == 0) rc = submit_one(&u, p, NULL, R_REPORT, &a, rid, sizeof rid, err);
        }
    }
    *n_jobs = u.n_jobs;
cleanup:
    if (u.tsv) fclose(u.tsv);
    if (lock >= 0) close(lock);
    free(q.v);
    free(recs);
    free(final_id);
    free(deps);
    return rc;
}

/* ---- status ---------------------------------------------------------------------------- */

/* The log of a recorded job (arrays: the first missing shard's task log), "" when none exists. */
static void job_log(const mp_plan *p, const mp_step *s, int role, long id, char *buf, size_t cap) {
    char k[13];
    key12(s, k);
    buf[0] = 0;
    if (role == R_SHARDS) {
        for (int i = 0; i < s->shards; i++) {
            if (mp_plan_shard_done(s, i)) continue;
            snprintf(buf, cap, "%s/slurm/logs/%s-shard-%ld_%d.log", p->out_dir, k, id, i);
            if (is_file(buf)) return;
        }
        buf[0] = 0;
        return;
    }
    snprintf(buf, cap, "%s/slurm/logs/%s%s-%ld.log", p->out_dir, k, role == R_MERGE ? "-merge" : "", id);
    if (!is_file(buf)) buf[0] = 0;
}

int mp_slurm_status(const mp_plan *p, int json, FILE *out, int *all_done, int *n_failed, mp_error *err) {
    *all_done = 0;
    *n_failed = 0;
    rec *recs = calloc(p->n_steps + 1, sizeof *recs);
    queue q = {0};
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    char *ids = malloc(24 * 3 * (p->n_steps + 1) + 1);
    int rc = 0;
    if (!recs || !root || !arr || !ids) {
        rc = mp_fail(err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    load_record(p, recs);
    int any = 0;
    for (size_t i = 0; i <= p->n_steps; i++)
        for (int r = 0; r < R_COUNT; r++) any |= recs[i].id[r] != JOB_NONE;
    if (any) query_queue(&q, p); /* no job recorded (a local sweep): nothing to ask Slurm */
    else q.have_squeue = 1;
    /* ended jobs: ask sacct (it answers only where accounting is on) */
    size_t n = 0;
    ids[0] = 0;
    for (size_t i = 0; i <= p->n_steps; i++)
        for (int r = 0; r < R_COUNT; r++)
            if (recs[i].id[r] != JOB_NONE && !queue_get(&q, recs[i].id[r]))
                n += (size_t)sprintf(ids + n, "%s%ld", n ? "," : "", recs[i].id[r]);
    query_sacct(&q, ids);
    size_t counts[6] = {0}; /* done, queued, running, failed, not run, not submitted */
    static const char *const STATES[] = {"done", "queued", "running", "failed", "not run", "not submitted"};
    cJSON_AddStringToObject(root, "name", p->recipe->name);
    cJSON_AddStringToObject(root, "out", p->out_dir);
    cJSON_AddBoolToObject(root, "squeue", q.have_squeue);
    cJSON_AddItemToObject(root, "steps", arr);
    char line[8600];
    for (size_t i = 0; i < p->n_steps; i++) {
        const mp_step *s = &p->steps[i];
        char done[4200], log[4300] = "", last[600] = "", detail[700] = "", jobtxt[64] = "";
        snprintf(done, sizeof done, "%s/DONE", s->dir);
        int st = 5, role = s->shards > 1 ? R_MERGE : R_STEP;
        long id = JOB_NONE;
        const char *sstate = NULL;
        int shards_done = 0;
        for (int k = 0; k < s->shards; k++) shards_done += mp_plan_shard_done(s, k);
        if (is_file(done)) {
            st = 0;
        } else {
            /* the job that decides: a sharded collect's merge, else its array while the merge is not recorded */
            if (s->shards > 1 && recs[i].id[R_MERGE] == JOB_NONE) role = R_SHARDS;
            if (s->shards > 1 && !live_state(queue_get(&q, recs[i].id[R_MERGE])) && recs[i].id[R_SHARDS] != JOB_NONE &&
                recs[i].id[R_MERGE] != JOB_NONE && shards_done < s->shards)
                role = R_SHARDS; /* the merge never ran: look at the shards */
            id = recs[i].id[role];
            sstate = queue_get(&q, id);
            if (s->shards > 1 && live_state(queue_get(&q, recs[i].id[R_SHARDS]))) {
                id = recs[i].id[R_SHARDS];
                sstate = queue_get(&q, id);
                role = R_SHARDS;
            }
            if (id == JOB_NONE) st = 5;
            else if (live_state(sstate)) st = !strcmp(sstate, "PENDING") ? 1 : 2;
            else {
                job_log(p, s, role, id, log, sizeof log);
                if (log[0]) {
                    st = 3;
                    mp_plan_last_line(log, last, sizeof last);
                } else {
                    st = 4; /* never started: killed for a failed dependency, or cancelled */
                }
            }
            if (id != JOB_NONE) snprintf(jobtxt, sizeof jobtxt, "%ld", id);
        }
        counts[st]++;
        if (st == 3) (*n_failed)++;
        if (s->shards > 1 && st != 0)
            snprintf(detail, sizeof detail, "%d of %d shards done", shards_done, s->shards);
        cJSON *o = cJSON_CreateObject();
        if (!o) {
            rc = mp_fail(err, MP_ENOMEM, "out of memory");
            goto cleanup;
        }
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "step", s->label);
        cJSON_AddStringToObject(o, "key", s->key);
        cJSON_AddStringToObject(o, "state", STATES[st]);
        if (jobtxt[0]) cJSON_AddStringToObject(o, "job", jobtxt);
        if (sstate) cJSON_AddStringToObject(o, "slurm_state", sstate);
        if (s->shards > 1) {
            cJSON_AddNumberToObject(o, "shards", s->shards);
            cJSON_AddNumberToObject(o, "shards_done", shards_done);
        }
        if (log[0]) cJSON_AddStringToObject(o, "log", log);
        if (last[0]) cJSON_AddStringToObject(o, "error", last);
        if (json) continue;
        int w = snprintf(line, sizeof line, "[%zu/%zu] %-13s %s", i + 1, p->n_steps, STATES[st], s->label);
        if (jobtxt[0] || detail[0])
            w += snprintf(line + w, sizeof line - (size_t)w, "  (%s%s%s%s%s%s)", jobtxt[0] ? "job " : "", jobtxt,
                          sstate && st >= 3 ? " " : "", sstate && st >= 3 ? sstate : "",
                          jobtxt[0] && detail[0] ? "; " : "", detail);
        if (st == 3)
            snprintf(line + w, sizeof line - (size_t)w, ": %s (log: %s)", last[0] ? last : "no message", log);
        else if (st == 4)
            snprintf(line + w, sizeof line - (size_t)w, ": it never started (a step it needs failed, or it was cancelled)");
        char *safe = NULL;
        mp_error e2;
        if (mp_term_escape(line, strlen(line), 0, &safe, &e2) == 0) fprintf(out, "%s\n", safe);
        free(safe);
    }
    *all_done = counts[0] == p->n_steps;
    long rid = recs[p->n_steps].id[R_REPORT];
    const char *rst = queue_get(&q, rid);
    if (rid != JOB_NONE) {
        char r[32];
        snprintf(r, sizeof r, "%ld", rid);
        cJSON_AddStringToObject(root, "report_job", r);
        if (rst) cJSON_AddStringToObject(root, "report_job_state", rst);
    }
    if (json) {
        cJSON *c = cJSON_CreateObject();
        for (int k = 0; c && k < 6; k++) cJSON_AddNumberToObject(c, STATES[k], (double)counts[k]);
        cJSON_AddItemToObject(root, "counts", c);
        cJSON_AddBoolToObject(root, "complete", *all_done);
        char *txt = cJSON_Print(root);
        if (txt) fprintf(out, "%s\n", txt);
        free(txt);
    } else {
        fprintf(out, "sweep %s: %zu steps: %zu done, %zu queued, %zu running, %zu failed, %zu not run, %zu not submitted%s\n",
                p->recipe->name, p->n_steps, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5],
                q.have_squeue ? "" : " (no squeue: queue state unknown)");
        if (rid != JOB_NONE)
            fprintf(out, "report job %ld: %s\n", rid, rst ? rst : *all_done ? "ended" : "ended (not every step is done)");
    }
cleanup:
    cJSON_Delete(root);
    free(q.v);
    free(recs);
    free(ids);
    return rc;
}
