#!/usr/bin/env python3
"""tests/model/check_demo.py — runs scripts/demo.sh (what `make demo` runs) on
the embedded model and checks its outcome: a store was collected, Python
specialists were found and masked, and the purge raised Python's held-out
perplexity more than the mean of the other labels (Δ target > Δ others).
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
mask = json.load(open(os.path.join(out, "purge-python.json")))
base = json.load(open(os.path.join(out, "ppl-base.json")))
m = re.search(r"delta target ([+-][0-9.]+), mean delta others ([+-][0-9.]+)", p.stdout)
ok = mask["masked"] > 0 and m and float(m.group(1)) > float(m.group(2))
print(f"check_demo: {mask['masked']} experts masked, delta target {m.group(1) if m else '?'} vs others "
      f"{m.group(2) if m else '?'}: {'ok' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
