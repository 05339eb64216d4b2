/* recipes/execute.c — the local executor of a sweep's plan (plan.h): the steps
 * without a DONE marker run as subprocesses of monet-probe itself (fork + exec
 * of the binary, stdout/stderr captured in the step's cache directory,
 * parent-death signal so a killed sweep leaves no orphan writing into the
 * cache), up to -j of them at once once the steps they need are done; a sharded
 * collect runs as shard jobs and a merge. Also: the in-process MMLU corpus
 * writer, the live progress line on a terminal, the DONE markers, sweep.log. */
#include "recipes/plan.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/eval/eval_tasks.h"
#include "core/util/progress.h"

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Write MMLU questions as a labelled JSONL corpus. */
static int write_mmlu_corpus(const char *split, const char *data, const char *path, mp_error *err) {
    mp_mmlu_subject *subj = NULL;
    size_t n_subj = 0;
    MP_TRY(mp_mmlu_subjects_load(data, &subj, &n_subj, err));
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int rc = 0;
    if (!f) {
        rc = mp_fail(err, MP_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        goto cleanup;
    }
    for (size_t i = 0; i < n_subj && rc == 0; i++) {
        mp_mc_set set = {0};
        if ((rc = mp_mc_load(MP_TASK_MMLU, data, subj[i].name, split, &set, err)) < 0) break;
        for (size_t d = 0; d < set.n && rc == 0; d++) {
            const mp_mc_doc *doc = &set.docs[d];
            size_t len = strlen(doc->query) + 64;
            for (int c = 0; c < doc->n_choices; c++) len += strlen(doc->choices[c]) + 8;
            char *text = malloc(len + (doc->gold >= 0 && doc->gold < doc->n_choices ? strlen(doc->choices[doc->gold]) : 0));
            cJSON *o = cJSON_CreateObject();
            if (!text || !o) {
                free(text);
                cJSON_Delete(o);
                rc = mp_fail(err, MP_ENOMEM, "out of memory");
                break;
            }
            size_t w = (size_t)sprintf(text, "%s", doc->query);
            for (int c = 0; c < doc->n_choices; c++) w += (size_t)sprintf(text + w, "\n%c. %s", 'A' + c, doc->choices[c]);
            if (doc->gold >= 0 && doc->gold < doc->n_choices)
                sprintf(text + w, "\nAnswer: %c. %s", 'A' + doc->gold, doc->choices[doc->gold]);
            cJSON_AddStringToObject(o, "text", text);
            cJSON_AddStringToObject(o, "domain", subj[i].category);
            cJSON_AddStringToObject(o, "subject", subj[i].name);
            char *line = cJSON_PrintUnformatted(o);
            if (!line || fprintf(f, "%s\n", line) < 0) rc = mp_fail(err, MP_EIO, "%s: write failed", tmp);
            free(line);
            cJSON_Delete(o);
            free(text);
        }
        mp_mc_set_free(&set);
    }
    if (fclose(f) != 0 && rc == 0) rc = mp_fail(err, MP_EIO, "%s: write failed", tmp);
    if (rc == 0 && rename(tmp, path) != 0) rc = mp_fail(err, MP_EIO, "%s: cannot rename: %s", path, strerror(errno));
cleanup:
    mp_mmlu_subjects_free(subj, n_subj);
    return rc;
}


void mp_plan_last_line(const char *path, char *buf, size_t cap) {
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r')) line[--l] = 0;
        if (l) snprintf(buf, cap, "%s", line);
    }
    fclose(f);
}

/* ---- live progress (a TTY) ------------------------------------------------------------ */

/* The sweep's one redrawn line: step, the inner command's latest progress line
 * (read back from its stderr.txt) and an overall ETA that is smoothed so that
 * it counts down instead of jumping with every estimate. */
typedef struct live {
    FILE *out;
    const mp_plan *p;
    size_t step;          /* index of the running step */
    double t_step;        /* when it started */
    double eta, t_eta;    /* last shown ETA and when (eta < 0: none yet) */
    double t_draw;
} live;

/* Mean seconds of the steps of this kind run so far (any kind when none), or -1. */
static double est_seconds(const mp_plan *p, mp_step_kind kind) {
    double sum[2] = {0, 0};
    int n[2] = {0, 0};
    for (size_t i = 0; i < p->n_steps; i++)
        if (p->steps[i].ran) {
            int same = p->steps[i].kind == kind;
            sum[same] += p->steps[i].seconds;
            n[same]++;
        }
    if (n[1]) return sum[1] / n[1];
    return n[0] ? sum[0] / n[0] : -1;
}

/* The last non-empty line of the inner command's stderr (progress lines end in
 * '\n', or '\r' on a TTY), control bytes replaced, at most cap - 1 bytes. */
static void inner_line(const char *path, char *buf, size_t cap) {
    buf[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) return;
    char tail[512];
    ssize_t n = 0;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        off_t off = st.st_size > (off_t)sizeof tail ? st.st_size - (off_t)sizeof tail : 0;
        n = pread(fd, tail, sizeof tail, off);
    }
    close(fd);
    while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == '\r' || tail[n - 1] == ' ')) n--;
    ssize_t b = n;
    while (b > 0 && tail[b - 1] != '\n' && tail[b - 1] != '\r') b--;
    size_t o = 0;
    for (ssize_t i = b; i < n && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)tail[i];
        buf[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    buf[o] = 0;
}

static void live_draw(live *lv, const char *err_path) {
    double now = mp_now();
    if (!lv->out || now - lv->t_draw < 0.5) return;
    lv->t_draw = now;
    const mp_plan *p = lv->p;
    const mp_step *s = &p->steps[lv->step];
    char inner[200];
    inner_line(err_path, inner, 72);
    /* the running step: from its own percent when it prints one, else from the mean of its kind */
    double el = now - lv->t_step, rem = -1, est = est_seconds(p, s->kind);
    const char *pc = strrchr(inner, '%');
    double frac = -1;
    if (pc) {
        const char *q = pc;
        while (q > inner && (q[-1] == '.' || (q[-1] >= '0' && q[-1] <= '9'))) q--;
        if (q < pc) frac = strtod(q, NULL) / 100;
    }
    if (frac > 0.02 && frac <= 1) rem = el * (1 - frac) / frac;
    else if (est >= 0) rem = est > el ? est - el : 0;
    for (size_t i = lv->step + 1; rem >= 0 && i < p->n_steps; i++) {
        if (p->steps[i].cached) continue;
        double e = est_seconds(p, p->steps[i].kind);
        if (e < 0) e = rem + el; /* nothing measured yet: the running step's own estimate */
        rem += e;
    }
    if (rem >= 0) {
        double counted = lv->eta >= 0 ? lv->eta - (now - lv->t_eta) : rem;
        lv->eta = lv->eta >= 0 ? 0.8 * (counted > 0 ? counted : 0) + 0.2 * rem : rem;
        lv->t_eta = now;
    }
    fprintf(lv->out, "\r\033[Ksweep [%zu/%zu] %.40s | %s", lv->step + 1, p->n_steps, s->label, inner[0] ? inner : "...");
    if (lv->eta >= 0) fprintf(lv->out, " | ETA %dm%02ds", (int)(lv->eta / 60), (int)lv->eta % 60);
    fflush(lv->out);
}


/* ---- one job: spawn, wait, judge ------------------------------------------------------- */

/* Start argv (argv[0] is shown as "monet-probe", exe is run) with stdout and stderr into files. */
static pid_t spawn(const char *exe, char **argv, const char *out_path, const char *err_path, mp_error *err) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        mp_fail(err, MP_EINTERNAL, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0666), fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(126);
        close(fo);
        close(fe);
        execv(exe, argv);
        _exit(127);
    }
    return pid;
}

/* A job's exit status as the sweep's error: exit 2 (bad input) stays MP_EINPUT. */
static int judge(const mp_step *s, mp_job_role role, int shard, int status, const char *err_path, mp_error *err) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    char last[600], what[64] = "";
    mp_plan_last_line(err_path, last, sizeof last);
    if (role == MP_JOB_SHARD) snprintf(what, sizeof what, " shard %d/%d", shard, s->shards);
    if (role == MP_JOB_MERGE) snprintf(what, sizeof what, " merge of %d shards", s->shards);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return mp_fail(err, code == 2 ? MP_EINPUT : MP_EINTERNAL, "step '%s'%s failed (exit %d): %s (log: %s)", s->label,
                   what, code, last[0] ? last : "no message", err_path);
}

static int write_marker(const mp_plan *p, const mp_step *s, const char *exe, mp_error *err) {
    char path[4200], tmp[4200];
    snprintf(path, sizeof path, "%s/DONE", s->dir);
    snprintf(tmp, sizeof tmp, "%s/DONE.tmp", s->dir);
    char *txt = mp_plan_marker_json(p, s, exe, s->seconds);
    FILE *f = txt ? fopen(tmp, "w") : NULL;
    int ok = f && fprintf(f, "%s\n", txt) > 0;
    if (f && fclose(f) != 0) ok = 0;
    free(txt);
    if (!ok || rename(tmp, path) != 0) return mp_fail(err, MP_EIO, "%s: cannot write the completion marker", path);
    return 0;
}

static int touch(const char *path, mp_error *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) return mp_fail(err, MP_EIO, "%s: cannot create: %s", path, strerror(errno));
    close(fd);
    return 0;
}

/* After the merge's DONE: the shard stores and their markers are not needed any more. */
static void drop_shards(const mp_step *s) {
    static const char *const SUFFIX[] = {".db", ".db-wal", ".db-shm", ".db-journal", ".db.lock", ".done", NULL};
    char path[4200];
    for (int k = 0; k < s->shards; k++)
        for (const char *const *x = SUFFIX; *x; x++) {
            mp_plan_shard_path(s, k, *x, path, sizeof path);
            unlink(path);
        }
}

static void log_line(const mp_plan *p, const char *fmt, ...) {
    char path[4200];
    snprintf(path, sizeof path, "%s/sweep.log", p->out_dir);
    FILE *f = fopen(path, "a");
    if (!f) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
}

int mp_plan_run_inproc(mp_plan *p, mp_step *s, const char *exe, mp_error *err) {
    char out[4200];
    double t0 = mp_now();
    MP_TRY(mp_plan_mkdir(s->dir, err));
    MP_TRY(write_mmlu_corpus(s->args[0].text, s->args[1].text, mp_plan_arg(p, s, 3, out, sizeof out), err));
    s->seconds = mp_now() - t0;
    return write_marker(p, s, exe, err);
}

/* ---- the scheduler -------------------------------------------------------------------- */

enum { J_WAIT = 0, J_RUN, J_DONE, J_FAIL };

typedef struct job {
    int step, shard, state;
    mp_job_role role;
    pid_t pid;
    double t0;
} job;

static int step_done(const mp_step *s) { return s->cached || s->ran; }

static int job_ready(const mp_plan *p, const job *jobs, size_t n, const job *j) {
    const mp_step *s = &p->steps[j->step];
    for (int d = 0; d < s->n_deps; d++)
        if (!step_done(&p->steps[s->deps[d]])) return 0;
    if (j->role == MP_JOB_MERGE)
        for (size_t i = 0; i < n; i++)
            if (jobs[i].step == j->step && jobs[i].role == MP_JOB_SHARD && jobs[i].state != J_DONE) return 0;
    return 1;
}

/* A finished job: markers, log; rc < 0 marks it failed. */
static int job_end(mp_plan *p, job *jobs, size_t n, job *j, const char *exe, int rc, mp_error *err) {
    mp_step *s = &p->steps[j->step];
    double now = mp_now();
    char path[4200];
    if (rc == 0 && j->role == MP_JOB_SHARD) {
        mp_plan_shard_path(s, j->shard, ".done", path, sizeof path);
        rc = touch(path, err);
        if (rc == 0) log_line(p, "ran %s %s shard %d/%d %.2f s\n", s->key, s->label, j->shard, s->shards, now - j->t0);
    } else if (rc == 0) {
        double t0 = j->t0; /* a sharded step: from its first shard's start */
        for (size_t i = 0; i < n; i++)
            if (jobs[i].step == j->step && jobs[i].state != J_WAIT && jobs[i].t0 < t0) t0 = jobs[i].t0;
        s->seconds = now - t0;
        rc = write_marker(p, s, exe, err);
        if (rc == 0) {
            if (j->role == MP_JOB_MERGE) drop_shards(s);
            s->ran = 1;
            log_line(p, "ran %s %s %.2f s\n", s->key, s->label, s->seconds);
        }
    }
    if (rc < 0) {
        j->state = J_FAIL;
        s->failed = 1;
        if (j->role == MP_JOB_SHARD) log_line(p, "failed %s %s shard %d/%d\n", s->key, s->label, j->shard, s->shards);
        else log_line(p, "failed %s %s%s\n", s->key, s->label, j->role == MP_JOB_MERGE ? " merge" : "");
        return rc;
    }
    j->state = J_DONE;
    return 0;
}

int mp_plan_execute(mp_plan *p, const char *exe, int n_par, FILE *progress, mp_error *err) {
    MP_TRY(mp_plan_claim_out(p, 1, err));
    MP_TRY(mp_plan_mkdir(p->cache_dir, err));
    char lock_path[4200];
    snprintf(lock_path, sizeof lock_path, "%s/lock", p->cache_dir);
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (lock < 0) return mp_fail(err, MP_EIO, "%s: cannot open: %s", lock_path, strerror(errno));
    if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
        close(lock);
        return mp_fail(err, MP_EINPUT, "%s: another sweep is running with this output directory", p->out_dir);
    }
    if (n_par < 1) n_par = 1;
    size_t to_run = 0, done_run = 0, n_jobs = 0, running = 0;
    int rc = 0;
    /* the jobs: a step, or a sharded collect's missing shards and its merge */
    size_t cap = p->n_steps;
    for (size_t i = 0; i < p->n_steps; i++) cap += p->steps[i].shards;
    job *jobs = calloc(cap ? cap : 1, sizeof *jobs);
    if (!jobs) {
        close(lock);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    log_line(p, "sweep %s: %zu steps", p->recipe->path, p->n_steps);
    for (size_t i = 0; i < p->n_steps; i++) {
        mp_step *s = &p->steps[i];
        char done[4200];
        snprintf(done, sizeof done, "%s/DONE", s->dir);
        if (s->cached || is_file(done)) {
            s->cached = 1;
            continue;
        }
        to_run++;
        for (int k = 0; k < s->shards; k++)
            if (!mp_plan_shard_done(s, k)) jobs[n_jobs++] = (job){.step = (int)i, .shard = k, .role = MP_JOB_SHARD};
        jobs[n_jobs++] = (job){.step = (int)i, .shard = -1, .role = s->shards > 1 ? MP_JOB_MERGE : MP_JOB_STEP};
    }
    log_line(p, ", %zu to run, -j %d\n", to_run, n_par);
    for (size_t i = 0; i < p->n_steps; i++)
        if (p->steps[i].cached) {
            if (progress) fprintf(progress, "\r\033[Ksweep: step %zu of %zu: %s: cached\n", i + 1, p->n_steps, p->steps[i].label);
            log_line(p, "cached %s %s\n", p->steps[i].key, p->steps[i].label);
        }
    double t0 = mp_now(), spent = 0;
    live lv = {.out = n_par == 1 ? progress : NULL, .p = p, .eta = -1};
    char out_path[4200], err_path[4200];
    for (;;) {
        /* start what is ready, in plan order, up to n_par at once */
        while (rc == 0 && running < (size_t)n_par) {
            job *j = NULL;
            for (size_t i = 0; i < n_jobs && !j; i++)
                if (jobs[i].state == J_WAIT && job_ready(p, jobs, n_jobs, &jobs[i])) j = &jobs[i];
            if (!j) break;
            mp_step *s = &p->steps[j->step];
            if (progress) {
                double eta = lv.eta >= 0 ? lv.eta - (mp_now() - lv.t_eta)
                             : done_run ? spent / (double)done_run * (double)(to_run - done_run) / n_par : -1;
                if (lv.eta >= 0 && eta < 0) eta = 0;
                fprintf(progress, "\r\033[Ksweep: step %d of %zu: %s", j->step + 1, p->n_steps, s->label);
                if (j->role == MP_JOB_SHARD) fprintf(progress, " shard %d/%d", j->shard, s->shards);
                if (j->role == MP_JOB_MERGE) fprintf(progress, " (merge of %d shards)", s->shards);
                fprintf(progress, " (%zu of %zu to run", done_run + 1, to_run);
                if (eta >= 0) fprintf(progress, ", ETA %.0f s", eta);
                fprintf(progress, ")\n");
                fflush(progress);
            }
            j->t0 = mp_now();
            if ((rc = mp_plan_mkdir(s->dir, err)) < 0) break;
            if (s->kind == MP_STEP_CORPUS) {
                rc = write_mmlu_corpus(s->args[0].text, s->args[1].text, mp_plan_arg(p, s, 3, out_path, sizeof out_path), err);
                if ((rc = job_end(p, jobs, n_jobs, j, exe, rc, err)) == 0) done_run++;
                continue;
            }
            char **argv = NULL;
            if ((rc = mp_plan_job_argv(p, s, j->role, j->shard, exe, lv.out != NULL, &argv, err)) < 0) break;
            free(argv[0]);
            argv[0] = strdup("monet-probe");
            mp_plan_job_files(s, j->role, j->shard, out_path, err_path, sizeof out_path);
            j->pid = argv[0] ? spawn(exe, argv, out_path, err_path, err) : -1;
            if (!argv[0]) rc = mp_fail(err, MP_ENOMEM, "out of memory");
            mp_plan_argv_free(argv);
            if (j->pid < 0) {
                rc = rc < 0 ? rc : MP_EINTERNAL;
                break;
            }
            j->state = J_RUN;
            running++;
            lv.step = (size_t)j->step;
            lv.t_step = j->t0;
            lv.t_draw = 0;
        }
        if (!running) break;
        /* wait for one: with -j 1 on a terminal, polling to redraw the live line */
        int status = 0;
        pid_t w;
        for (;;) {
            w = waitpid(-1, &status, lv.out ? WNOHANG : 0);
            if (w > 0) break;
            if (w < 0 && errno != EINTR) break;
            if (w == 0) {
                job *jr = NULL;
                for (size_t i = 0; i < n_jobs && !jr; i++)
                    if (jobs[i].state == J_RUN) jr = &jobs[i];
                if (jr) {
                    mp_plan_job_files(&p->steps[jr->step], jr->role, jr->shard, out_path, err_path, sizeof out_path);
                    live_draw(&lv, err_path);
                }
                struct timespec ts = {0, 200 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
        }
        if (w < 0) {
            rc = rc < 0 ? rc : mp_fail(err, MP_EINTERNAL, "waitpid: %s", strerror(errno));
            break;
        }
        job *j = NULL;
        for (size_t i = 0; i < n_jobs && !j; i++)
            if (jobs[i].state == J_RUN && jobs[i].pid == w) j = &jobs[i];
        if (!j) continue; /* not one of ours */
        running--;
        mp_step *s = &p->steps[j->step];
        mp_plan_job_files(s, j->role, j->shard, out_path, err_path, sizeof out_path);
        if (lv.out) { /* the command's last line (its summary), until the next step's line replaces it */
            lv.t_draw = 0;
            live_draw(&lv, err_path);
        }
        mp_error jerr = {0};
        int jrc = judge(s, j->role, j->shard, status, err_path, &jerr);
        jrc = job_end(p, jobs, n_jobs, j, exe, jrc, &jerr);
        if (jrc < 0 && rc == 0) { /* the first failure is the sweep's; the running jobs are waited for */
            rc = jrc;
            *err = jerr;
        }
        if (jrc == 0 && j->role != MP_JOB_SHARD) {
            spent += s->seconds;
            done_run++;
        }
    }
    /* a failure while nothing ran (mkdir, spawn) leaves children? none: running was 0 or they were waited */
    while (running > 0) {
        int st;
        pid_t w = waitpid(-1, &st, 0);
        if (w < 0 && errno != EINTR) break;
        if (w > 0) running--;
    }
    if (progress) fputs("\r\033[K", progress);
    if (progress && rc == 0)
        fprintf(progress, "sweep: %zu steps, %zu ran, %zu cached, %.1f s\n", p->n_steps, done_run,
                p->n_steps - done_run, mp_now() - t0);
    free(jobs);
    close(lock);
    return rc;
}
