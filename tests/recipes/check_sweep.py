#!/usr/bin/env python3
"""tests/recipes/check_sweep.py — `monet-probe sweep` on a tiny random checkpoint and
small corpora: dry-run plan, full run (results.json / results.csv / report.html),
fully cached re-run (nothing executed), an added threshold runs only the new steps,
kill -9 mid-sweep then resume, a correlate recipe (threshold table + SVG curve),
malformed recipes (unknown key, wrong type, missing file: exit 2 with FILE:LINE:COL),
issue 18: progress (redrawn line with the inner command's progress and an ETA) only on a
terminal (a pty here), nothing on a pipe; the results table on stdout; the check before
step 1 (model weights, data files, MULTIPL-E toolchains with their Debian package); a
failing step still writes results.json / report.html with what finished.
Corpora come from the shipped data/corpus (tests/ref/shipped.py); the recipes' `data:`
is an empty folder made here (only ppl evaluations, which read no benchmark).
usage: check_sweep.py MONET_PROBE TESTS_REF_DIR WORKDIR"""
import csv
import pty
import select
import json
import os
import shutil
import signal
import subprocess
import sys
import time

BIN, REF, WORK = (os.path.abspath(a) for a in sys.argv[1:4])
sys.path.insert(0, REF)
import shipped  # noqa: E402

shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(os.path.join(WORK, "data"))
os.chdir(WORK)
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def sweep(*args, ok=True):
    p = subprocess.run([BIN, "sweep", *args], capture_output=True, text=True)
    if ok and p.returncode:
        raise SystemExit(f"sweep {args}: exit {p.returncode}: {p.stderr}")
    return p


subprocess.run([sys.executable, os.path.join(REF, "make_checkpoint.py"), "--out", "model", "--dtype", "BF16",
                "--layers", "4", "--groups", "2", "--hidden", "32", "--heads", "4", "--experts", "8", "--moe-dim", "8",
                "--moe-heads", "2", "--topk", "2", "--seed", "17", "--quiet", "--tokenizer", shipped.TOKENIZER],
               check=True)

# corpora: short RosettaCode solutions in 3 languages (interleaved), texts with toxicity
per_lang = {"Python": [], "Lua": [], "PHP": []}
for d in shipped.code_docs(tuple(per_lang), per_lang=12, min_len=40, max_len=500):
    per_lang[d["lang"]].append({"text": d["text"] + " <b>&amp;</b>", "lang": d["lang"].lower()})
probe, valid = [], []
for i in range(12):
    for lang in per_lang:
        (probe if i < 9 else valid).append(per_lang[lang][i])
for name, docs in (("probe.jsonl", probe), ("valid.jsonl", valid)):
    with open(name, "w") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
with open("rtp.jsonl", "w") as f:
    for d in shipped.scored_prompts(30):
        f.write(json.dumps(d) + "\n")

RECIPE = """version: 1
name: tiny-langs
model: model
data: data
out: out
collect:
  corpus: probe.jsonl
  labels: [lang]
  top_k: 4
  context_window: 64
criterion:
  kind: specialize
  field: lang
  min_count: 1
  targets: [python, lua, php]
  thresholds: [{thresholds}]
evals:
  - eval: ppl
    corpus: valid.jsonl
    label_field: lang
    context: 64
report:
  experts: 2
  contexts: 2
  context_tokens: 4
"""


def write_recipe(thresholds="1.1", name="tiny.yaml"):
    with open(name, "w") as f:
        f.write(RECIPE.format(thresholds=thresholds))


write_recipe()
t0 = time.time()
# ---- dry run
p = sweep("tiny.yaml", "--dry-run")
check(p.stdout.startswith("plan: 8 steps, 0 cached, 8 to run"), "dry-run: 8 steps to run")
check("check before step 1: ok" in p.stdout, "dry-run: the check before step 1 passes")
check("collect --model model --corpus probe.jsonl" in p.stdout and "purge --store" in p.stdout and
      "--label lang=lua" in p.stdout and "eval ppl --model model" in p.stdout and "--mask out/cache/" in p.stdout,
      "dry-run prints the commands")
check(not os.path.exists("out"), "dry-run writes nothing")

def sweep_tty(*args):
    """Run sweep with stderr on a pseudo-terminal; returns (exit code, stdout, terminal output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([BIN, "sweep", *args], stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    term = b""
    while True:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            term += chunk
        elif proc.poll() is not None:
            break
    out = proc.stdout.read()
    proc.wait()
    os.close(master)
    return proc.returncode, out, term.decode(errors="replace")


# ---- full run (stderr a terminal: live progress)
rc, out, term = sweep_tty("tiny.yaml")
check(rc == 0, f"full run on a terminal: exit {rc}")
check("step 1 of 8: collect" in term and "ETA" in term, "progress lines with ETA on a terminal")
check("\r\033[Ksweep [" in term and "collect:" in term,
      "redrawn progress line carries the inner command's progress line")
check("8 ran, 0 cached" in out, "full run ran 8 steps")
tab = [l for l in out.splitlines() if l.startswith("ppl ")]
check(out.count("delta target") == 1 and len(tab) == 3, f"results table: 3 rows ({out!r})")
res = json.load(open("out/results.json"))
check(res["format"] == "monet-probe-sweep" and len(res["summary"]) == 3, "results.json: 3 mask summaries")
labels = {r["name"] for r in res["rows"] if r["kind"] == "label"}
check(labels == {"python", "lua", "php"}, f"rows per language ({labels})")
tg = [r for r in res["rows"] if r["is_target"]]
check(len(tg) == 3 and all(r["name"] == r["target"] for r in tg), "one target row per mask")
for r in res["rows"]:
    if r["masked"] is not None and abs(r["masked"] - r["base"] - r["delta"]) > 1e-9 * max(1, abs(r["base"])):
        check(False, "delta = masked - base")
        break
rows = list(csv.DictReader(open("out/results.csv")))
check(len(rows) == len(res["rows"]) and rows[0]["eval"] == "ppl", "results.csv has the same rows")
# cross-check a delta with eval compare / the step outputs
s = [x for x in res["summary"] if x["target"] == "lua"][0]
others = [r["delta"] for r in res["rows"] if r["target"] == "lua" and r["kind"] == "label" and not r["is_target"]]
check(abs(s["delta_others"] - sum(others) / len(others)) < 1e-9 * max(1, abs(s["delta_others"])),
      "delta others = mean of the other labels")
html = open("out/report.html").read()
check("<table class=\"delta\">" in html and "class=\"target\"" in html, "report: delta table with target cells")
check("<mark>" in html and "<b>&amp;</b>" not in html,
      "report: contexts highlighted, corpus text escaped")
check("http://" not in html.replace("http://www.w3.org/2000/svg", "") and "<script" not in html,
      "report: self-contained")
log1 = open("out/sweep.log").read()

# ---- re-run: fully cached (stderr a pipe: no progress)
p = sweep("tiny.yaml")
check("0 ran, 8 cached" in p.stdout, "re-run: everything cached")
check(p.stderr == "", f"no progress on a pipe: {p.stderr[:200]!r}")
log2 = open("out/sweep.log").read()[len(log1):]
check("ran " not in log2 and log2.count("cached ") == 8, "re-run: log shows nothing executed")

# ---- add a threshold: only the new purges and their evals run
write_recipe("1.1, 1.3")
p = sweep("tiny.yaml", "--dry-run")
check(p.stdout.startswith("plan: 14 steps, 8 cached, 6 to run"), "added threshold: dry-run plans 6 new steps")
p = sweep("tiny.yaml")
check("6 ran, 8 cached" in p.stdout, "added threshold: 6 ran, 8 cached")
check(len(json.load(open("out/results.json"))["summary"]) == 6, "added threshold: 6 masks in results")

# ---- kill -9 mid-sweep, then resume
shutil.rmtree("out")
proc = subprocess.Popen([BIN, "sweep", "tiny.yaml"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
deadline = time.time() + 60
while time.time() < deadline and proc.poll() is None:
    log = open("out/sweep.log").read() if os.path.exists("out/sweep.log") else ""
    if log.count("\nran ") >= 4:
        break
    time.sleep(0.05)
proc.send_signal(signal.SIGKILL)
proc.wait()
done_before = sum(1 for d in os.listdir("out/cache") if os.path.exists(f"out/cache/{d}/DONE"))
check(0 < done_before < 14, f"killed mid-sweep ({done_before} steps done)")
time.sleep(0.2)
p = sweep("tiny.yaml")
check(f"{14 - done_before} ran, {done_before} cached" in p.stdout, "resume runs only the unfinished steps")
check(os.path.exists("out/report.html"), "resumed run writes the report")

# ---- --set / --limit overrides
p = sweep("tiny.yaml", "--dry-run", "--set", "criterion.thresholds=[1.1]", "--limit", "3")
check("--max-docs 3" in p.stdout and p.stdout.startswith("plan: 8 steps"), "--set and --limit reach the plan")

# ---- the check before step 1: every problem in one line, nothing run, also for --dry-run
os.makedirs("noweights", exist_ok=True)
shutil.copy("model/config.json", "noweights/config.json")
with open("multiple.yaml", "w") as f:
    f.write(open("tiny.yaml").read().replace("evals:\n", "evals:\n  - eval: multipl-e\n    langs: [cpp, lua]\n    limit: 1\n")
            .replace("model: model", "model: noweights").replace("out: out", "out: out-pre"))
for extra in ((), ("--dry-run",)):
    p = sweep("multiple.yaml", *extra, ok=False)
    # a real run refuses (exit 2, one error line); --dry-run shows the plan and the same check on stdout
    err = p.stderr.strip() if not extra else [l for l in p.stdout.splitlines() if l.startswith("check before")][0]
    check(p.returncode == (0 if extra else 2) and (extra or err.count("\n") == 0) and "before step 1" in err
          and "noweights/tokenizer.model" in err
          and "no *.safetensors" in err and "data/multipl-e/humaneval-cpp-reworded.jsonl" in err
          and "humaneval-lua-reworded.jsonl" in err, f"preflight {extra}: one line naming each problem: {err}")
    check(not os.path.exists("out-pre/cache"), f"preflight {extra}: nothing run")
    lua = all(any(os.access(os.path.join(d, x), os.X_OK) for d in ("/usr/bin", "/usr/local/bin", "/bin"))
              for x in ("lua5.3", "luac5.3"))
    check((lua and "lua5.3" not in err) or "Debian package lua5.3" in err,
          "preflight names the missing toolchain's Debian package (none when lua5.3 is installed)")

# ---- a failing step: the report holds what finished, the failure marked
with open("fail.yaml", "w") as f:
    f.write(open("tiny.yaml").read().replace("out: out", "out: out-fail").replace("    context: 64", "    context: 0"))
p = sweep("fail.yaml", ok=False)
check(p.returncode != 0 and p.stderr.startswith("monet-probe: step 'eval ppl base' failed"),
      f"failing eval step: {p.returncode} {p.stderr.strip()[:300]}")
check(os.path.exists("out-fail/results.json") and os.path.exists("out-fail/report.html"), "failed sweep writes the report")
if os.path.exists("out-fail/results.json"):
    res = json.load(open("out-fail/results.json"))
    st = {x["step"]: x["status"] for x in res["steps"]}
    check(res["complete"] is False and "eval ppl base" in res["failure"] and st.get("collect") == "ran"
          and st.get("eval ppl base") == "failed" and "not run" in st.values(), f"results.json marks the failure: {st}")
    check("The sweep failed" in open("out-fail/report.html").read(), "report.html marks the failure")
    check("partial report" in p.stdout, "the partial report is named on stdout")

# ---- correlate recipe: threshold table and SVG curve
with open("tox.yaml", "w") as f:
    f.write(f"""version: 1
name: tiny-tox
model: model
data: data
out: out-tox
collect:
  corpus: rtp.jsonl
  scores: [toxicity]
  top_k: 4
  context_window: 64
criterion:
  kind: correlate
  field: toxicity
  thresholds: [0.2, 0.1, 0.05]
evals:
  - eval: ppl
    corpus: valid.jsonl
    label_field: lang
    context: 64
    max_docs: 3
""")
p = sweep("tox.yaml")
res = json.load(open("out-tox/results.json"))
ratios = [s["masking_ratio"] for s in res["summary"]]
check(len(ratios) == 3 and ratios == sorted(ratios), f"correlate: masking ratio grows as the threshold drops {ratios}")
html = open("out-tox/report.html").read()
check("<svg" in html and "<polyline" in html, "correlate: SVG masking-ratio curve")

# ---- malformed recipes: exit 2, FILE:LINE:COL
good = open("tiny.yaml").read()
cases = [
    ("unknown.yaml", good.replace("  thresholds:", "  tresholds:"), "unknown.yaml:16:3: unknown key 'tresholds'"),
    ("type.yaml", good.replace("top_k: 4", "top_k: many"), "type.yaml:9:10: 'top_k' must be an integer"),
    ("list.yaml", good.replace("labels: [lang]", "labels: lang"), "list.yaml:8:11: 'labels' must be a list"),
    ("missing.yaml", good.replace("corpus: valid.jsonl", "corpus: nowhere.jsonl"),
     "missing.yaml:19:13: corpus: no such file or directory 'nowhere.jsonl'"),
    ("nomodel.yaml", good.replace("model: model", "model: nomodel"), "nomodel.yaml:3:8: model: 'nomodel'"),
    ("syntax.yaml", good.replace("labels: [lang]", "labels: [lang"), "syntax.yaml:"),
    ("evalkind.yaml", good.replace("eval: ppl", "eval: bleu"), "evalkind.yaml:18:11: unknown evaluation 'bleu'"),
]
for name, text, want in cases:
    with open(name, "w") as f:
        f.write(text)
    p = sweep(name, ok=False)
    check(p.returncode == 2 and p.stderr.startswith("monet-probe: " + want) and p.stderr.count("\n") == 1,
          f"{name}: exit 2, '{want}' (got {p.returncode}: {p.stderr.strip()})")
p = sweep("tiny.yaml", "--set", "nope", ok=False)
check(p.returncode == 2, "--set without '=' is exit 2")
p = sweep("absent.yaml", ok=False)
check(p.returncode == 2 and "absent.yaml" in p.stderr, "missing recipe file is exit 2")

print(f"{time.time() - t0:.1f} s")
if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("all ok")
