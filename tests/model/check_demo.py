#!/usr/bin/env python3
"""tests/model/check_demo.py — runs scripts/demo.sh (what `make demo` runs) on
the embedded model and checks its outcome: a store was collected, Python
specialists of the demo language were found and masked, and the purge raised
that language's held-out perplexity at least 3x more than the mean of the other
labels (issue 21's bar on held-out text).
usage: check_demo.py MONET_PROBE REPO_ROOT"""
import json
import os
import re
import subprocess
import sys

BIN, ROOT = sys.argv[1:3]
p = subprocess.run(["bash", os.path.join(ROOT, "scripts", "demo.sh"), BIN], cwd=ROOT, capture_output=True, text=True)
print(p.stdout[-3000:])
if p.returncode:
    print(p.stderr[-2000:])
    sys.exit(f"demo.sh exited {p.returncode}")
out = os.path.join(ROOT, "build", "demo")
m = re.search(r"target label '([a-z+]+)': delta target ([+-][0-9.]+), mean delta others ([+-][0-9.]+)", p.stdout)
if not m:
    sys.exit("check_demo: no 'target label' line in the demo's eval compare output")
lang, d_target, d_others = m.group(1), float(m.group(2)), float(m.group(3))
mask = json.load(open(os.path.join(out, f"purge-{lang}.json")))
ok = mask["masked"] > 0 and d_target > 0 and d_target >= 3 * max(d_others, 0.0)
print(f"check_demo: {lang}: {mask['masked']} experts masked, delta target {d_target:+.4f} vs others "
      f"{d_others:+.4f}: {'ok' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
