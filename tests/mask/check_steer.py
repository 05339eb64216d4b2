#!/usr/bin/env python3
"""tests/mask/check_steer.py — expert steering (w_ij += S at every token of the
group) against the float64 reference's full expansion: a steered expert that
is inactive, one that is active, several at once, negative strength, steering
combined with a mask; `steer` greedy generation equals the argmax chain of the
reference under the same steering; bad addresses exit 2.
usage: check_steer.py MONET_PROBE TESTS_REF_DIR WORKDIR vertical|horizontal"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np

BIN, REF, WORK, DEC = sys.argv[1:5]
sys.path.insert(0, REF)
import monet_ref  # noqa: E402
import shipped  # noqa: E402

shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
model = os.path.join(WORK, "model")
subprocess.run([sys.executable, os.path.join(REF, "make_checkpoint.py"), "--out", model, "--decompose", DEC,
                "--dtype", "F32", "--layers", "4", "--groups", "2", "--hidden", "32", "--heads", "4", "--experts", "16",
                "--moe-dim", "8", "--moe-heads", "2", "--topk", "4", "--seed", "8", "--quiet",
                "--tokenizer", shipped.TOKENIZER], check=True)
ref = monet_ref.load_model(model)
ids = [1, 450, 3996, 1735, 1701, 432, 1720, 975, 278, 4066, 1120, 2988]  # < 4096 pieces
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def c_logits(*extra):
    out = os.path.join(WORK, "l.f32")
    subprocess.run([BIN, "logits", "--model", model, "--ids", ",".join(map(str, ids)), "--out", out, *extra],
                   check=True)
    return np.fromfile(out, dtype="<f4").reshape(len(ids), -1)


route = json.loads(subprocess.run([BIN, "route", "--model", model, "--ids", ",".join(map(str, ids)), "--json"],
                                  check=True, capture_output=True).stdout)
active0 = {(e["i"], e["j"]) for t in route["tokens"] for e in t["groups"][0]["experts"]}
inactive = next((i, j) for i in range(16) for j in range(16) if (i, j) not in active0)
act = sorted(active0)[0]
base = ref.forward(ids)[0]
cases = [
    ("inactive expert", [f"0:{inactive[0]},{inactive[1]}=1.5"], [(0, *inactive, 1.5)], None),
    ("active expert", [f"0:{act[0]},{act[1]}=0.7"], [(0, *act, 0.7)], None),
    ("flat id R:#N, both groups", [f"0:#{5 * 16 + 9}=0.5", f"1:#{5 * 16 + 9}=0.5"], [(0, 5, 9, 0.5), (1, 5, 9, 0.5)],
     None),
    ("several, negative", ["1:3,4=2", "0:7,7=-0.4"], [(1, 3, 4, 2.0), (0, 7, 7, -0.4)], None),
    ("steer + mask", [f"0:{act[0]},{act[1]}=0.3"], [(0, *act, 0.3)], [(0, *act)]),
]
for name, args, steer, mask in cases:
    extra = []
    for a in args:
        extra += ["--steer", a]
    if mask:
        mp = os.path.join(WORK, "m.json")
        json.dump({"format": "monet-probe-mask", "version": 1, "model": {"moe_experts": 16, "n_groups": 2},
                   "groups": [{"group": r, "experts": [[i, j] for (g, i, j) in mask if g == r]} for r in range(2)]},
                  open(mp, "w"))
        extra += ["--mask", mp]
    got = c_logits(*extra)
    want = ref.forward(ids, mask=mask, steer=steer)[0]
    err = np.abs(got - want).max() / np.abs(want).max()
    moved = np.abs(want - base).max() / np.abs(want).max()
    check(err <= 1e-4 and moved > 1e-3, f"{DEC} {name}: max rel err {err:.2e}, steering moves logits by {moved:.2e}")

# an address without R: is refused on a model with two router groups (it used to steer every group)
p = subprocess.run([BIN, "logits", "--model", model, "--ids", "1,2", "--out", os.path.join(WORK, "x.f32"), "--steer",
                    "5,9=0.5"], capture_output=True)
check(p.returncode == 2 and p.stderr.count(b"\n") == 1 and b"say which router group" in p.stderr,
      "--steer I,J without R: on a 2-group model: one-line error, exit 2")

# steer command: greedy chain == reference argmax under the same steering
p = subprocess.run([BIN, "steer", "--model", model, "--expert", f"0:{inactive[0]},{inactive[1]}", "--strength", "2",
                    "--prompt", "The cat", "--max-tokens", "8", "--temperature", "0", "--json"], capture_output=True)
# strict: a byte-fallback piece sampled alone reaches "text" as U+FFFD, never a raw byte
g = json.loads(p.stdout.decode("utf-8"))
allids = g["prompt_ids"] + g["ids"]
lg = ref.forward(allids, steer=[(0, *inactive, 2.0)])[0]
pred = [int(np.argmax(lg[len(g["prompt_ids"]) - 1 + k])) for k in range(len(g["ids"]))]
check(pred == g["ids"], f"steer greedy generation == reference argmax chain ({len(g['ids'])} tokens)")
p = subprocess.run([BIN, "steer", "--model", model, "--expert", "0:3,4", "--strength", "1", "--prompt", "x",
                    "--max-tokens", "2"], capture_output=True)
check(b"steering expert 0:3,4 (flat 52): w += 1 at every token, layers 0-1" in p.stderr, "steer says what it changes")
for bad in ["2:1,1", "0:16,1", "0:1,x", "300", "a:1,2"]:
    p = subprocess.run([BIN, "steer", "--model", model, "--expert", bad, "--strength", "1", "--prompt", "x"],
                       capture_output=True)
    check(p.returncode == 2 and p.stderr.count(b"\n") == 1, f"steer --expert {bad}: exit 2, one line")
print(f"check_steer {DEC}: {len(failures)} failed")
sys.exit(1 if failures else 0)
