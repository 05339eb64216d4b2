#!/usr/bin/env python3
"""tests/eval_tox/check_batch.py — `eval toxicity` on the batched engine gives the
same results at every --batch, on the embedded model (data/monet-tiny):

  - ToxiGen, the paper's protocol (greedy, 30 tokens), first prompt of each of the
    31 files: --batch 1 vs 8;
  - ToxiGen reproduction (greedy, stop at the first newline, 40 tokens), 2 prompts
    per group: --batch 1 vs 5;
  - RealToxicityPrompts, 3 prompts per file x 5 samples at T=1, top-p 0.9 (each
    sample its own seed): --batch 1 vs 4 vs 16;
  - toxigen-annotated, 13 statements (" No" / " Yes" log-likelihoods): --batch 1
    vs 5.
Per-continuation / per-statement JSONL and stdout must be byte-identical, and
not vacuous (continuations of different lengths, samples that differ, stops at
a newline). --batch 0 is a usage error (exit 2).
usage: check_batch.py MONET_PROBE MODEL_DIR SHARED_DIR WORKDIR
"""
import json, os, shutil, subprocess, sys

BIN, MODEL, SHARED, WORK = sys.argv[1:5]
DATA = os.path.join(SHARED, "data")
FAIL = []
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1")
SCORER = os.path.join(WORK, "scorer.py")
with open(SCORER, "w") as f:  # a deterministic stand-in scorer: share of 'e' characters
    f.write("import json, sys\nfor l in sys.stdin:\n    t = json.loads(l)['text']\n"
            "    print(min(1.0, t.count('e') / 10))\n")


def check(cond, msg):
    if not cond:
        FAIL.append(msg)
        print("FAIL:", msg)


def run(name, args, batch):
    out = os.path.join(WORK, "%s_b%d.jsonl" % (name, batch))
    r = subprocess.run([BIN, "eval", "toxicity", "--model", MODEL, "--data", DATA, "--quiet", "--device", "cpu",
                        "--batch", str(batch), "--out", out] + args, capture_output=True, text=True, env=ENV)
    check(r.returncode == 0, "%s --batch %d: exit %d: %s" % (name, batch, r.returncode, r.stderr.strip()))
    return r.stdout, open(out).read() if os.path.exists(out) else ""


def same(name, args, batches):
    res = {b: run(name, args, b) for b in batches}
    for b in batches[1:]:
        check(res[b][0] == res[batches[0]][0], "%s: stdout differs at --batch %d" % (name, b))
        check(res[b][1] == res[batches[0]][1], "%s: JSONL differs at --batch %d" % (name, b))
    items = [json.loads(l) for l in res[batches[0]][1].splitlines()]
    print("%s: %d items identical at --batch %s" % (name, len(items), ", ".join(map(str, batches))))
    return items


cmd = ["--scorer", "cmd:%s %s" % (sys.executable, SCORER)]
it = same("paper", ["--prompts", "toxigen", "--limit", "1"] + cmd, [1, 8])
check(len(it) == 31, "paper: one prompt per file (%d)" % len(it))
check(len({x["tokens"] for x in it}) >= 2, "paper: continuations of different lengths %s" % {x["tokens"] for x in it})
it = same("repro", ["--prompts", "toxigen", "--protocol", "reproduction", "--per-group", "2", "--max-tokens", "40"]
          + cmd, [1, 5])
check(len(it) == 28 and any(x["stop"] == "stop_string" for x in it), "repro: 28 items, some stopped at a newline")
it = same("rtp", ["--prompts", "rtp", "--limit", "3", "--n", "5"] + cmd, [1, 4, 16])
check(len(it) == 30, "rtp: 2 files x 3 prompts x 5 samples (%d)" % len(it))
per = {}
for x in it:
    per.setdefault((x["file"], x["prompt_index"]), set()).add(x["continuation"])
check(any(len(v) > 1 for v in per.values()), "rtp: samples of a prompt differ")
it = same("annotated", ["--prompts", "toxigen-annotated", "--limit", "13"], [1, 5])
check(len(it) == 13 and len({x["ll_no"] for x in it}) > 1, "annotated: 13 statements with their own scores")

r = subprocess.run([BIN, "eval", "toxicity", "--model", MODEL, "--prompts", "toxigen-annotated", "--batch", "0"],
                   capture_output=True, text=True, env=ENV)
check(r.returncode == 2 and "--batch" in r.stderr, "--batch 0: exit %d %r" % (r.returncode, r.stderr))

if FAIL:
    print("%d check(s) failed" % len(FAIL))
    sys.exit(1)
print("eval toxicity --batch: all checks passed")
