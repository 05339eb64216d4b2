#!/usr/bin/env python3
"""tests/hostile/replay.py — replay the hostile inputs of one area (issue 19).

usage: replay.py AREA MONET_PROBE HOSTILE_CORPUS SOURCE_DIR SHARED_DIR WORK_DIR MODEL_DIR

Each area folder holds the hostile inputs as files and cases.json, a list of
  {"name", "args": [...], "exit": N, "error": REGEX or null, "setup": KIND?, "check": KIND?,
   "env": {NAME: VALUE}?, "signal_after": S?}
"max_seconds" fails a case that takes longer (a fail-fast check);
"signal_after" sends SIGTERM after S seconds (exit -15 expected; an interrupted
run prints nothing, so stderr is not checked).
args placeholders: {bin} (monet-probe), {corpus_bin} (hostile_corpus), {work}
(this case's scratch folder), {here} (the area folder), {model} (tiny model of
tests/collect), {store:NAME} (a store built from store/base.sql + NAME.sql),
{fifo} (a FIFO made in {work}).
A case passes when the exit code is as listed and, for a failure, stderr is
exactly one line "monet-probe: ..." matching the regex (re.search). Every
command runs under a 60 s timeout: a hang (FIFO, 2^32 loop) is a failure.
"""
import ctypes
import fcntl
import json
import os
import re
import resource
import shutil
import socket
import signal
import sqlite3
import subprocess
import sys
import time

AREA, BIN, CORPUS_BIN, SRC, SHARED, WORK, MODEL = sys.argv[1:8]
HERE = os.path.join(SRC, "tests/hostile", AREA)
failures = []


def schema_sql():
    """The store schema, read from core/store/store.c (single source of truth)."""
    text = open(os.path.join(SRC, "core/store/store.c")).read()
    body = text[text.index("static const char *SCHEMA ="):]
    body = body[:body.index(";\n")]
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', body))


def make_store(name, path):
    if os.path.exists(path):
        os.unlink(path)
    db = sqlite3.connect(path)
    db.executescript(schema_sql())
    db.executescript(open(os.path.join(SRC, "tests/hostile/store/base.sql")).read())
    tok = os.path.join(SRC, "data/monet-tiny/tokenizer.model")  # shipped: no ../shared needed
    if os.path.exists(tok):
        db.execute("INSERT INTO files VALUES('tokenizer.model', 'x', ?)", (open(tok, "rb").read(),))
    for folder in (HERE, os.path.join(SRC, "tests/hostile/store")):
        sql = os.path.join(folder, name + ".sql")
        if os.path.exists(sql):
            db.executescript(open(sql).read())
            break
    else:
        raise SystemExit(f"no {name}.sql")
    db.commit()
    db.close()
    return path


def expand(arg, work):
    def store(m):
        return make_store(m.group(1), os.path.join(work, m.group(1) + ".db"))
    arg = re.sub(r"\{store:([A-Za-z0-9_]+)\}", store, arg)
    return (arg.replace("{bin}", BIN).replace("{corpus_bin}", CORPUS_BIN).replace("{work}", work)
            .replace("{here}", HERE).replace("{model}", MODEL).replace("{fifo}", os.path.join(work, "fifo")))


def setup(kind, work):
    """Per-case environment the files alone cannot carry. Returns (preexec, state)."""
    state = {}
    if kind == "fifo":
        os.mkfifo(os.path.join(work, "fifo"))
    elif kind in ("fifo_config", "fifo_safetensors"):
        os.mkdir(os.path.join(work, "model"))
        if kind == "fifo_config":
            os.mkfifo(os.path.join(work, "model/config.json"))
        else:
            shutil.copy(os.path.join(SRC, "tests/hostile/config/valid_no_weights/config.json"),
                        os.path.join(work, "model/config.json"))
            os.mkfifo(os.path.join(work, "model/model.safetensors"))
    elif kind in ("site_symlink", "site_index_symlink", "site_marker_dir", "site_foreign"):
        victim = os.path.join(work, "victim")
        os.makedirs(os.path.join(victim, "g0"))
        for f in ("precious.html", "g0/precious.html"):
            open(os.path.join(victim, f), "w").write("keep me\n")
        site = os.path.join(work, "site")
        os.mkdir(site)
        if kind == "site_marker_dir":
            os.mkdir(os.path.join(site, ".monet-probe-browse"))
        elif kind == "site_foreign":
            open(os.path.join(site, "notes.txt"), "w").write("mine\n")
        else:
            open(os.path.join(site, ".monet-probe-browse"), "w").write("written by monet-probe browse\n")
        if kind == "site_symlink":
            os.symlink(victim, os.path.join(site, "experts"))
        elif kind == "site_index_symlink":
            os.symlink(os.path.join(victim, "precious.html"), os.path.join(site, "index.html"))
        state["victim"] = victim
    elif kind == "lock":
        # hold the store's writer lock as another process would
        out = os.path.join(work, "out.db")
        fd = os.open(out + ".lock", os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        state["lock_fd"] = fd
        state["pid"] = os.getpid()
    elif kind == "disk_full":
        state["preexec"] = lambda: (signal.signal(signal.SIGXFSZ, signal.SIG_IGN),
                                    resource.setrlimit(resource.RLIMIT_FSIZE, (48 * 1024, 48 * 1024)))
    elif kind == "collect_twice":
        # a first run finishes the store; the case's command then resumes it
        subprocess.run([BIN, "collect", "--model", MODEL, "--corpus", os.path.join(HERE, "empty.jsonl"),
                        "--out", os.path.join(work, "out.db"), "--quiet"], capture_output=True, timeout=60)
    elif kind == "escapes":
        # a host AF_UNIX listener anyone may connect to, under /tmp (privately mounted over in the sandbox)
        path = "/tmp/mp-hostile-unix.sock"
        if os.path.exists(path):
            os.unlink(path)
        ls = socket.socket(socket.AF_UNIX)
        ls.bind(path)
        ls.listen(4)
        ls.setblocking(False)
        os.chmod(path, 0o777)
        state["unix"] = (ls, path)
        os.mkdir(os.path.join(work, "tmp"))
    elif kind == "huge_line":
        # one 64 MB JSONL line: --max-tokens must not tokenize all of it (about 4.5 GB of BPE state)
        with open(os.path.join(work, "huge.jsonl"), "w") as f:
            f.write('{"text": "' + "monosemantic experts route tokens " * ((64 << 20) // 34) + '"}\n')
    elif kind == "empty_out":
        os.mkdir(os.path.join(work, "empty"))
    elif kind == "existing_out":
        open(os.path.join(work, "out.jsonl"), "w").write("keep me\n")
    elif kind:
        raise SystemExit(f"unknown setup {kind}")
    return state


def check_after(kind, case, work, state, p):
    if kind == "victim_intact":
        v = state["victim"]
        for f in ("precious.html", "g0/precious.html"):
            path = os.path.join(v, f)
            if not os.path.exists(path) or open(path).read() != "keep me\n":
                return f"{path} was deleted or overwritten"
    elif kind == "no_output_store":
        for f in ("out.db", "out.db.tmp-new", "out.db-wal", "out.db.tmp-new-wal"):
            if os.path.exists(os.path.join(work, f)):
                return f"{f} left behind after the failure"
    elif kind == "holder_pid":
        if f"pid {state['pid']}" not in p.stderr.decode(errors="replace"):
            return "error does not name the lock holder's pid"
    elif kind == "store_readable":
        db = sqlite3.connect(os.path.join(work, "out.db"))
        n = db.execute("SELECT count(*) FROM meta").fetchone()[0]
        db.close()
        if n < 10:
            return "merged store incomplete"
    elif kind == "no_control":
        if any(b < 0x20 and b != 0x0a or b == 0x7f for b in p.stderr):
            return "control bytes reached the terminal: " + repr(p.stderr[:200])
    elif kind == "escapes_contained":
        ls, path = state["unix"]
        try:
            ls.accept()
            return "a sandboxed program connected to the host AF_UNIX socket"
        except BlockingIOError:
            pass
        finally:
            ls.close()
            os.unlink(path)
        libc = ctypes.CDLL(None)
        shm, mq = libc.shmget(0x4d50fffe, 0, 0), libc.msgget(0x4d50fffe, 0)
        for ident, ctl in ((shm, libc.shmctl), (mq, libc.msgctl)):
            if ident >= 0:
                ctl(ident, 0, None)  # IPC_RMID
        if shm >= 0 or mq >= 0:
            return f"SysV objects of a sandboxed program outlived it (shm {shm}, msg {mq})"
        left = os.listdir(os.path.join(work, "tmp"))
        if left:
            return f"sandbox dirs left in TMPDIR: {left}"
        row = json.loads(open(os.path.join(work, "out.jsonl")).readline())
        statuses = [x["status"] for x in row["samples"]]
        if statuses != ["ok"] * 4:
            return f"every sample's result kept and ok: {statuses}"
    elif kind == "foreign_intact":
        site = os.path.join(work, "site")
        if sorted(os.listdir(site)) != ["notes.txt"] or open(os.path.join(site, "notes.txt")).read() != "mine\n":
            return f"the foreign directory was written to: {sorted(os.listdir(site))}"
    elif kind in ("out_intact", "out_replaced"):
        mounts = [l.split()[4] for l in open("/proc/self/mountinfo") if l.split()[4].startswith(work)]
        if mounts:
            return f"mounts left on the host: {mounts}"
        text = open(os.path.join(work, "out.jsonl")).read()
        if (text == "keep me\n") != (kind == "out_intact"):
            return f"out.jsonl after the run: {text[:200]!r}"
        left = []
        if kind == "out_replaced":
            left = [f for f in os.listdir(work) if f.startswith("out.jsonl.")]
        if left:
            return f"temporary files left: {left}"
    elif kind:
        return f"unknown check {kind}"
    return None


def run_case(c):
    work = os.path.join(WORK, AREA, c["name"])
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    state = setup(c.get("setup"), work)
    args = [expand(a, work) for a in c["args"]]
    t0 = time.monotonic()
    try:
        env = dict(os.environ, **{k: expand(v, work) for k, v in c.get("env", {}).items()})
        if "signal_after" in c:
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            try:
                proc.wait(timeout=c["signal_after"])
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
            out, errb = proc.communicate(timeout=60)
            p = subprocess.CompletedProcess(args, proc.returncode, out, errb)
        else:
            p = subprocess.run(args, capture_output=True, timeout=60, preexec_fn=state.get("preexec"), env=env)
    except subprocess.TimeoutExpired:
        return "timed out after 60 s (blocked or looping)"
    finally:
        if "lock_fd" in state:
            os.close(state["lock_fd"])
    err = p.stderr.decode(errors="replace")
    if "max_seconds" in c and time.monotonic() - t0 > c["max_seconds"]:
        return f"took {time.monotonic() - t0:.1f} s, more than {c['max_seconds']} s"
    if p.returncode != c["exit"]:
        return f"exit {p.returncode}, want {c['exit']}; stderr: {err.strip()[:400]}"
    if c["exit"] > 0:
        if err.count("\n") != 1 or not err.startswith("monet-probe: "):
            return f"error is not one line 'monet-probe: ...': {err[:400]!r}"
        if c.get("error") and not re.search(c["error"], err):
            return f"error does not match /{c['error']}/: {err.strip()[:400]}"
    elif "runtime error" in err or "AddressSanitizer" in err:
        return f"sanitizer report: {err[:400]}"
    return check_after(c.get("check"), c, work, state, p)


def main():
    cases = json.load(open(os.path.join(HERE, "cases.json")))
    if AREA == "collect" and not os.path.exists(os.path.join(MODEL, "config.json")):
        print(f"no model at {MODEL} (fixture collect_model)")
        return 1
    for c in cases:
        why = run_case(c)
        print(("ok   " if why is None else "FAIL ") + c["name"] + ("" if why is None else ": " + why), flush=True)
        if why is not None:
            failures.append(c["name"])
    print(f"{AREA}: {len(cases) - len(failures)}/{len(cases)} hostile inputs handled")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
