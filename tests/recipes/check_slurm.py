#!/usr/bin/env python3
"""tests/recipes/check_slurm.py — `sweep --executor slurm` and `sweep -j N` (issue 20) on the
embedded model (data/monet-tiny) and a slice of the shipped corpus (data/corpus), with a
3-shard collect.

mode fake: sbatch / squeue / sacct on PATH are fakes that record their arguments and run
nothing; the test plays the cluster by running the job scripts itself. Checks: the array
(--array=0-2, --gres on model steps only), the afterok dependencies of every job (purge on
the merge, a masked eval on its purge, the report on every job), --dry-run prints the same
sbatch lines, --status (queued / failed with its log and error / not run / done), a
re-submission submits only the missing shards and steps and none whose job is still queued,
and the report written by the last job equals a local `-j 2` run's (results rows, store).

mode real: a single-node Slurm from Debian (slurm-wlm, munge) started here as root with a
minimal slurm.conf in a temp dir (no cgroups: proctrack/linuxproc, task/none, no
accounting); the sweep is submitted, the report job writes results.json, which must equal a
local `-j 1` run's without shards, and the merged store the local store; the daemons are
killed by pid, also on failure. Not root, no packages, daemons that do not start: exit 77.

usage: check_slurm.py fake|real MONET_PROBE REPO_DIR WORKDIR"""
import json
import re
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

MODE, BIN, REPO, WORK = sys.argv[1], *(os.path.abspath(a) for a in sys.argv[2:5])
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def finish():
    if failures:
        print(f"{len(failures)} checks failed")
        sys.exit(1)
    print("all checks passed")
    sys.exit(0)


def skip(why):
    print(f"skipped: no slurm ({why})")
    sys.exit(77)


shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(os.path.join(WORK, "data"))
os.chdir(WORK)

# a slice of the shipped corpus: 8 probe and 3 validation documents per language
langs = ["python", "lua"]


def pick(src, n):
    out, count = [], {l: 0 for l in langs}
    for line in open(os.path.join(REPO, "data", "corpus", src)):
        d = json.loads(line)
        if d.get("lang") in count and count[d["lang"]] < n:
            count[d["lang"]] += 1
            out.append({"text": d["text"][:400], "lang": d["lang"]})
    return out


for name, docs in (("probe.jsonl", pick("probe.jsonl", 8)), ("valid.jsonl", pick("valid.jsonl", 3))):
    with open(name, "w") as f:
        f.writelines(json.dumps(d) + "\n" for d in docs)
with open("tiny.yaml", "w") as f:
    f.write(f"""version: 1
name: tiny-slurm
model: {REPO}/data/monet-tiny
data: data
collect:
  corpus: probe.jsonl
  labels: [lang]
  top_k: 4
  context_window: 64
  max_tokens: 1700
  shards: 3
criterion:
  kind: specialize
  field: lang
  min_count: 1
  targets: [python, lua]
  thresholds: [1.5]
evals:
  - eval: ppl
    corpus: valid.jsonl
    label_field: lang
    context: 64
report:
  experts: 1
  contexts: 1
""")
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1")


def sweep(*args, ok=True, env=None):
    p = subprocess.run([BIN, "sweep", "tiny.yaml", *args], capture_output=True, text=True, env=env or ENV)
    if ok and p.returncode:
        raise SystemExit(f"sweep {args}: exit {p.returncode}: {p.stderr}{p.stdout[-2000:]}")
    return p


DUMP = {
    "topk": "SELECT grp, expert, rank, w, doc, pos FROM topk_ranked ORDER BY 1, 2, 3",
    "windows": "SELECT doc, start, n_tokens, ids FROM windows ORDER BY 1, 2",
    "docs": "SELECT * FROM docs ORDER BY 1",
    "label_totals": "SELECT * FROM label_totals ORDER BY 1, 2",
    "label_stats": "SELECT * FROM label_stats ORDER BY 1, 2, 3, 4",
    "expert_stats": "SELECT * FROM expert_stats ORDER BY 1, 2",
}


def dump(path):
    db = sqlite3.connect(path)
    out = {k: db.execute(q).fetchall() for k, q in DUMP.items()}
    db.close()
    return out


def close(a, b, exact):
    """Rows equal; with exact=False float cells within 1e-9 relative (sums added in another order)."""
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb):
            if isinstance(x, float) and isinstance(y, float) and not exact:
                if abs(x - y) > 1e-9 * max(1.0, abs(x), abs(y)):
                    return False
            elif x != y:
                return False
    return True


def results(out):
    return json.load(open(os.path.join(out, "results.json")))


def collect_store(out):
    r = results(out)
    key = next(s["key"] for s in r["steps"] if s["step"] == "collect")
    return os.path.join(out, "cache", key, "store.db")


def compare_runs(a, b, exact, what):
    ra, rb = results(a), results(b)
    check(ra["rows"] == rb["rows"] and ra["summary"] == rb["summary"] and len(ra["rows"]) > 0,
          f"{what}: results.json rows and summary equal ({len(ra['rows'])} rows)")
    check([(s["step"], s["key"]) for s in ra["steps"]] == [(s["step"], s["key"]) for s in rb["steps"]],
          f"{what}: the same steps and cache keys")
    da, db = dump(collect_store(a)), dump(collect_store(b))
    bad = [k for k in DUMP if not close(da[k], db[k], exact or k in ("topk", "windows", "docs", "label_totals"))]
    check(not bad and len(da["topk"]) > 0, f"{what}: the collect stores are equal ({len(da['topk'])} top-k rows)"
          + (f"; differ: {bad}" if bad else ""))


# ---------------------------------------------------------------------------------------
if MODE == "fake":
    fake = os.path.join(WORK, "fakebin")
    os.makedirs(fake)
    with open(os.path.join(fake, "sbatch"), "w") as f:
        f.write(f"""#!{sys.executable}
import json, os, sys
d = {fake!r}
with open(os.path.join(d, "calls.jsonl"), "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_SBATCH_FAIL"):
    print("sbatch: error: Batch job submission failed: Invalid partition name specified", file=sys.stderr)
    sys.exit(1)
c = os.path.join(d, "counter")
n = int(open(c).read()) + 1 if os.path.exists(c) else 100
open(c, "w").write(str(n))
print(f"{{n}};cluster")
""")
    with open(os.path.join(fake, "squeue"), "w") as f:
        f.write(f"#!/bin/sh\necho \"$*\" >> {fake}/squeue.args\ncat {fake}/queue.txt 2>/dev/null\nexit 0\n")
    with open(os.path.join(fake, "sacct"), "w") as f:
        f.write("#!/bin/sh\necho 'Slurm accounting storage is disabled' >&2\nexit 1\n")
    for t in ("sbatch", "squeue", "sacct"):
        os.chmod(os.path.join(fake, t), 0o755)
    FENV = dict(ENV, PATH=fake + ":" + os.environ["PATH"])
    calls_path = os.path.join(fake, "calls.jsonl")

    def calls():
        if not os.path.exists(calls_path):
            return []
        out = [json.loads(l) for l in open(calls_path)]
        os.remove(calls_path)
        return out

    def opt(call, name):
        for a in call:
            if a.startswith(name + "="):
                return a[len(name) + 1:]
        return None

    names = {}  # job id -> --job-name, for the fake squeue's %j

    def by_label(cs, jobs_tsv_lines):
        """{label(+role): (call, id)} from the calls and jobs.tsv (same order)."""
        out = {}
        for c, line in zip(cs, jobs_tsv_lines):
            jid, role, key, label = line.rstrip("\n").split("\t")
            out[label + ("" if role in ("step", "report") else "/" + role)] = (c, jid)
            names[jid] = opt(c, "--job-name")
        return out

    def queue(lines):
        """squeue -o '%F %T %j': a job of another sweep or user under a recorded id must not count."""
        with open(os.path.join(fake, "queue.txt"), "w") as f:
            f.write("".join(f"{i} {s} {names.get(i, 'someone-else')}\n" for i, s in lines))

    def status():
        p = sweep("--out", "sl", "--status", "--json", env=FENV)
        return {s["step"]: s for s in json.loads(p.stdout)["steps"]}

    def run_job(script, log, task=None):
        """Play the cluster: run a job script as sbatch would, its output into its log."""
        env = dict(ENV)
        if task is not None:
            env["SLURM_ARRAY_TASK_ID"] = str(task)
        with open(log, "w") as f:
            return subprocess.run(["sh", script], stdout=f, stderr=subprocess.STDOUT, env=env).returncode

    queue([])
    # dry run: the same lines, nothing submitted, nothing written
    p = sweep("--out", "sl", "--dry-run", "--executor", "slurm", "--gres", "gpu:1", "--partition", "p",
              "--sbatch-arg=--qos=q", env=FENV)
    dry = [l for l in p.stdout.splitlines() if l.startswith("J")]
    check(len(dry) == 8 and not calls() and not os.path.exists("sl"),
          f"--dry-run --executor slurm: 8 sbatch lines ({len(dry)}), nothing submitted or written")
    check("--array=0-2" in dry[0] and "--gres=gpu:1" in dry[0] and '"--dependency=afterok:$J1"' in dry[1],
          "--dry-run: the shard array first, the merge after it ($J1)")

    t0 = time.time()
    p = sweep("--out", "sl", "--executor", "slurm", "--gres", "gpu:1", "--partition", "p", "--sbatch-arg=--qos=q",
              env=FENV)
    cs = calls()
    tsv = open("sl/slurm/jobs.tsv").readlines()
    check(len(cs) == 8 and len(tsv) == 8, f"submission: 8 sbatch calls (array, merge, 2 purges, 3 evals, report): {len(cs)}")
    check(all(c[0] == "--parsable" and opt(c, "--partition") == "p" and "--qos=q" in c for c in cs),
          "every job: --parsable, --partition, the --sbatch-arg")
    J = by_label(cs, tsv)
    arr, arr_id = J["collect/shards"]
    merge, merge_id = J["collect/merge"]
    check(opt(arr, "--array") == "0-2" and opt(arr, "--gres") == "gpu:1" and opt(arr, "--dependency") is None,
          "collect shards: --array=0-2, --gres, no dependency")
    check(opt(merge, "--dependency") == f"afterok:{arr_id}" and opt(merge, "--gres") is None
          and "--kill-on-invalid-dep=yes" in merge, "merge: afterok on the array, no --gres")
    for t in langs:
        pc, pid = J[f"purge {t}@1.5"]
        ec, _ = J[f"eval ppl mask {t}@1.5"]
        check(opt(pc, "--dependency") == f"afterok:{merge_id}" and opt(pc, "--gres") is None,
              f"purge {t}: afterok on the merge job")
        check(opt(ec, "--dependency") == f"afterok:{pid}" and opt(ec, "--gres") == "gpu:1",
              f"eval mask {t}: afterok on its purge, --gres")
    base, base_id = J["eval ppl base"]
    check(opt(base, "--dependency") is None, "eval base: no dependency (runs with the collect)")
    rep, _ = J["report"]
    want = sorted(j for lab, (c, j) in J.items() if lab != "report" and lab != "collect/shards")
    check(sorted(opt(rep, "--dependency")[len("afterok:"):].split(":")) == want, "report: afterok on every step's job")
    check(all(opt(c, "--output").startswith("sl/slurm/logs/") for c in cs)
          and opt(arr, "--output").endswith("-shard-%A_%a.log"), "job logs go to OUT/slurm/logs/ (arrays: %A_%a)")
    scripts = [c[-1] for c in cs]
    check(all(os.access(s, os.X_OK) for s in scripts), "the job scripts exist and are executable")

    # queued: every job pending
    queue([(j, "PENDING") for _, (c, j) in J.items()])
    st = status()
    check(all(s["state"] == "queued" for s in st.values()) and st["collect"]["job"] == arr_id,
          "--status: every step queued (the collect by its array job)")
    p = sweep("--out", "sl", "--executor", "slurm", env=FENV)
    check(not calls() and "0 jobs submitted" in p.stdout, "re-submission while every job is queued submits nothing")

    # the cluster runs shards 0 and 2, the base eval, and the python purge too early (no store yet: it fails)
    key = {s["step"]: s["key"] for s in st.values()}
    logs = "sl/slurm/logs"
    for task in (0, 2):
        check(run_job(arr[-1], f"{logs}/{key['collect'][:12]}-shard-{arr_id}_{task}.log", task) == 0,
              f"shard job {task} ran")
    check(run_job(base[-1], f"{logs}/{key['eval ppl base'][:12]}-{base_id}.log") == 0, "eval base job ran")
    pc, pid = J["purge python@1.5"]
    plog = f"{logs}/{key['purge python@1.5'][:12]}-{pid}.log"
    check(run_job(pc[-1], plog) != 0, "purge python before the merge: the job fails")
    queue([])
    st = status()
    check(st["eval ppl base"]["state"] == "done", "--status: eval base done (its DONE marker)")
    check(st["purge python@1.5"]["state"] == "failed" and st["purge python@1.5"]["log"] == plog
          and "store.db" in st["purge python@1.5"].get("error", ""),
          "--status: the failed purge with its log path and its error line")
    check(st["collect"]["state"] == "not run" and st["collect"]["shards_done"] == 2,
          "--status: collect not run (shard 1 never started), 2 of 3 shards done")
    check(st["purge lua@1.5"]["state"] == "not run", "--status: purge lua never started (its dependency ended)")
    p = sweep("--out", "sl", "--status", env=FENV)
    check("failed" in p.stdout and f"(log: {plog})" in p.stdout and "sbatch" not in p.stderr,
          "--status (text): the failed step with its log path")

    # re-submission: only shard 1, the merge, the purges, the masked evals and the report
    p = sweep("--out", "sl", "--executor", "slurm", env=FENV)
    cs = calls()
    tsv2 = open("sl/slurm/jobs.tsv").readlines()[8:]
    J2 = by_label(cs, tsv2)
    check(sorted(J2) == sorted(["collect/shards", "collect/merge", "purge python@1.5", "purge lua@1.5",
                                "eval ppl mask python@1.5", "eval ppl mask lua@1.5", "report"]),
          f"re-submission: only the missing steps ({len(cs)} jobs; eval base is not submitted again)")
    check(opt(J2["collect/shards"][0], "--array") == "1", "re-submission: the array holds only the missing shard 1")
    check(opt(J2["collect/merge"][0], "--dependency") == f"afterok:{J2['collect/shards'][1]}",
          "re-submission: the merge waits for the new array")
    # the recorded ids now belong to other jobs (say, a restarted controller): ours are not live
    with open(os.path.join(fake, "queue.txt"), "w") as f:
        f.write("".join(f"{j} PENDING other-job\n" for _, (c, j) in J2.items()))
    p = sweep("--out", "sl", "--dry-run", "--executor", "slurm", env=FENV)
    st = status()
    check(st["purge lua@1.5"]["state"] != "queued" and st["collect"]["state"] != "queued",
          "a recorded job id that squeue shows under another job name does not count as this sweep's")
    # a queued purge is not submitted again; its dependents wait for it
    queue([(J2["purge lua@1.5"][1], "PENDING"), (J2["collect/merge"][1], "RUNNING")])
    p = sweep("--out", "sl", "--executor", "slurm", env=FENV)
    cs = calls()
    J3 = by_label(cs, open("sl/slurm/jobs.tsv").readlines()[8 + 7:])
    check("purge lua@1.5" not in J3 and "collect/merge" not in J3 and "collect/shards" not in J3
          and opt(J3["eval ppl mask lua@1.5"][0], "--dependency") == f"afterok:{J2['purge lua@1.5'][1]}"
          and opt(J3["purge python@1.5"][0], "--dependency") == f"afterok:{J2['collect/merge'][1]}",
          "a job still queued or running is not submitted again; its dependents wait for it")
    p = sweep("--out", "sl", "--executor", "slurm", ok=False, env=dict(FENV, FAKE_SBATCH_FAIL="1"))
    check(p.returncode == 3 and p.stderr.count("\n") == 1 and "Invalid partition" in p.stderr,
          "sbatch refusing a job: one line with its message, exit 3")
    calls()

    # play the rest of the cluster in dependency order; the report job writes results.json
    queue([])
    for task in (1,):
        run_job(J2["collect/shards"][0][-1], f"{logs}/x-{task}.log", task)
    order = ["collect/merge", "purge python@1.5", "purge lua@1.5", "eval ppl mask python@1.5", "eval ppl mask lua@1.5"]
    rcs = [run_job(J2[k][0][-1], f"{logs}/x-{i}.log") for i, k in enumerate(order)]
    check(rcs == [0] * len(order), f"the remaining jobs ran: {rcs}")
    cdir = os.path.join("sl", "cache", key["collect"])
    check(not any(n.startswith("shard-") and n.endswith(".db") for n in os.listdir(cdir)),
          "the merge job removed the shard stores once DONE was written")
    check(not os.path.exists("sl/results.json"), "no report before the report job")
    check(run_job(J2["report"][0][-1], f"{logs}/report-x.log") == 0 and os.path.exists("sl/report.html"),
          "the report job (sweep --status) wrote results.json, results.csv, report.html")
    st = status()
    check(all(s["state"] == "done" for s in st.values()), "--status: every step done")
    done = json.load(open(os.path.join("sl", "cache", key["collect"], "DONE")))
    check(done.get("shards") == 3 and isinstance(done.get("seconds"), (int, float)) and done["key"] == key["collect"],
          "the merge job's DONE marker: JSON with key, shards, seconds")
    # a local run with -j 2: the same results and store
    t0 = time.time()
    sweep("--out", "local", "-j", "2")
    print(f"local -j 2: {time.time() - t0:.1f} s")
    compare_runs("local", "sl", True, "fake slurm vs local -j 2")
    log = open("local/sweep.log").read()
    check(log.count("collect shard") == 3 and "-j 2" in log, "local -j 2 ran the 3 collect shards, then the merge")
    p = sweep("--out", "local", "-j", "2")
    check("0 ran" in p.stdout, "local -j 2 re-run: everything cached")
    # local -j 2 with a failing step: the first failure is the sweep's, no new job starts after it
    p = sweep("--out", "lfail", "-j", "2", "--set", "collect.text_field=nope", ok=False)
    cdir = [os.path.join("lfail/cache", d) for d in os.listdir("lfail/cache") if d != "lock"]
    started = sorted(n for d in cdir for n in os.listdir(d) if n.endswith(".stderr.txt") or n == "stderr.txt")
    # two shards run at once and both fail: whichever fails first is reported
    check(p.returncode == 2 and p.stderr.count("\n") == 1 and re.search(r"shard [012]/3 failed \(exit 2\)", p.stderr)
          and "no text field" in p.stderr and "(log: " in p.stderr,
          f"local -j 2, a failing shard: one error line naming the shard, its error and log, exit 2 ({p.stderr.strip()})")
    check(started == ["shard-0-of-3.stderr.txt", "shard-1-of-3.stderr.txt"],
          f"local -j 2: after the failure no new job started (started: {started})")
    # a target with shell syntax: the job scripts quote it (the failing purge echoes it without running it)
    p = sweep("--out", "inj", "--executor", "slurm", "--set", "criterion.targets=['x$(touch PWNED)`touch PWNED`\"']",
              env=FENV)
    cs = calls()
    pj = [c for c in cs if "purge" in opt(c, "--job-name")]
    check(len(pj) == 1 and run_job(pj[0][-1], "inj-purge.log") != 0 and not os.path.exists("PWNED")
          and "failed" in open("inj-purge.log").read(), "a label with $(...) and backquotes runs nothing in a job script")
    finish()

# ---------------------------------------------------------------------------------------
if MODE != "real":
    raise SystemExit(f"unknown mode {MODE}")
if os.geteuid() != 0:
    skip("not root: the test starts munged, slurmctld and slurmd itself")
for tool in ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo"):
    if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
        skip(f"{tool} not installed: scripts/ensure-deps.sh test installs slurm-wlm and munge")

tmp = tempfile.mkdtemp(prefix="mp-slurm-", dir="/tmp")  # short: the munge socket path is limited
os.chmod(tmp, 0o755)
procs = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ours():
    """Pids of processes started for this cluster (slurmstepd, job scripts): SLURM_CONF is our file."""
    mine = f"SLURM_CONF={conf}".encode()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                if mine in f.read().split(b"\0"):
                    out.append(int(d))
        except OSError:
            pass
    return out


def stop_daemons():
    # job steps (slurmstepd, job scripts) end on their own once the queue drained; after 3 s, by pid
    daemons = {p.pid for p in procs}
    deadline = time.time() + 3
    while time.time() < deadline and set(ours()) - daemons:
        time.sleep(0.2)
    for pid in set(ours()) - daemons:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.time() + 5
    for p in reversed(procs):
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def tail(path):
    try:
        return open(path, errors="replace").read().strip().splitlines()[-1][:200]
    except (OSError, IndexError):
        return "no log"


host = socket.gethostname().split(".")[0]
cpus = max(2, os.cpu_count() or 2)
conf = os.path.join(tmp, "slurm.conf")
with open(conf, "w") as f:
    f.write(f"""ClusterName=mptest
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={tmp}/munge.sock
CredType=cred/munge
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
StateSaveLocation={tmp}/state
SlurmdSpoolDir={tmp}/spool
SlurmctldPidFile={tmp}/slurmctld.pid
SlurmdPidFile={tmp}/slurmd.pid
SlurmctldLogFile={tmp}/slurmctld.log
SlurmdLogFile={tmp}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
SchedulerParameters=sched_interval=1
MpiDefault=none
ReturnToService=2
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
for d in ("state", "spool"):
    os.makedirs(os.path.join(tmp, d))
with open(os.path.join(tmp, "munge.key"), "wb") as f:
    f.write(os.urandom(1024))
os.chmod(os.path.join(tmp, "munge.key"), 0o400)
SENV = dict(ENV, SLURM_CONF=conf, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
rc = 1
try:
    def start(name, argv):
        log = open(os.path.join(tmp, name + ".out"), "w")
        procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=SENV, start_new_session=True))

    start("munged", ["munged", "-F", "-f", f"--socket={tmp}/munge.sock", f"--key-file={tmp}/munge.key",
                     f"--log-file={tmp}/munged.log", f"--pid-file={tmp}/munged.pid", f"--seed-file={tmp}/munged.seed"])
    for _ in range(50):
        if os.path.exists(f"{tmp}/munge.sock") or procs[0].poll() is not None:
            break
        time.sleep(0.1)
    if not os.path.exists(f"{tmp}/munge.sock"):
        stop_daemons()
        skip(f"munged did not start: {tail(tmp + '/munged.out')}")
    t_up = time.time()
    start("slurmctld", ["slurmctld", "-D", "-i", "-f", conf])
    start("slurmd", ["slurmd", "-D", "-f", conf])
    up = False
    for _ in range(100):
        p = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=SENV)
        if p.returncode == 0 and p.stdout.strip() in ("idle", "mixed", "allocated"):
            up = True
            break
        if any(x.poll() is not None for x in procs):
            break
        time.sleep(0.2)
    if not up:
        why = f"slurmctld: {tail(tmp + '/slurmctld.log')}; slurmd: {tail(tmp + '/slurmd.log')}"
        stop_daemons()
        skip(f"the daemons did not come up: {why}")
    print(f"slurm up in {time.time() - t_up:.1f} s")

    # the local reference: -j 1, one collect (no shards)
    t0 = time.time()
    sweep("--out", "local", "--shards", "1")
    print(f"local -j 1 (no shards): {time.time() - t0:.1f} s")
    # Slurm: submit, wait for the report job's results.json
    t0 = time.time()
    p = sweep("--out", "sl", "--executor", "slurm", env=SENV)
    check("8 jobs submitted" in p.stdout, "submitted 8 jobs (array, merge, 2 purges, 3 evals, report)")
    deadline = time.time() + 150
    wall = None
    while time.time() < deadline:
        if wall is None and os.path.exists("sl/report.html"):  # written last, by rename
            wall = time.time() - t0
        q = subprocess.run(["squeue", "-h"], capture_output=True, text=True, env=SENV)
        if q.returncode == 0 and not q.stdout.strip():
            break  # the queue drained: the report job ended, or a job failed and its dependents went
        time.sleep(0.3)
    print(f"slurm: {wall if wall is not None else -1:.1f} s from submission to the report")
    reports = [l for l in os.listdir("sl/slurm/logs") if l.startswith("report-")]
    check(os.path.exists("sl/results.json") and os.path.exists("sl/report.html") and len(reports) == 1
          and "wrote sl/results.json" in open(os.path.join("sl/slurm/logs", reports[0])).read(),
          "the report job (sweep --status) wrote results.json and report.html")
    st = json.loads(sweep("--out", "sl", "--status", "--json", env=SENV).stdout)
    bad = [(s["step"], s["state"], s.get("error", "")) for s in st["steps"] if s["state"] != "done"]
    check(st["complete"] and not bad, f"--status: every step done {bad}")
    logs = os.listdir("sl/slurm/logs")
    check(sum("-shard-" in l for l in logs) == 3 and any(l.startswith("report-") for l in logs),
          f"job logs in OUT/slurm/logs: 3 shard tasks and the report ({len(logs)} logs)")
    if os.path.exists("sl/results.json"):
        compare_runs("local", "sl", False, "slurm (3 shards) vs local -j 1 (one collect)")
        mj = [json.load(open(os.path.join("sl", "cache", s["key"], "merge.json")))
              for s in st["steps"] if s["step"] == "collect"][0]
        print(f"merge: {mj['inputs']} shards, store {mj['store_bytes']} bytes")
    rc = 0
finally:
    stop_daemons()
    time.sleep(0.2)
    alive = [p.pid for p in procs if p.poll() is None] + ours()
    check(not alive, f"daemons and job steps stopped (by pid) {alive}")
    shutil.rmtree(tmp, ignore_errors=True)
finish()
