#!/usr/bin/env python3
"""tests/model/check_golden.py — the embedded default model (data/monet-tiny)
runs in monet-probe exactly as in the PyTorch training code that produced it:
golden.json holds, per case, the top-10 logits of the last position and the
selected experts (with g) per group and head at positions 0 and last, computed
by data/train (float32, bf16-rounded weights, eval-mode routing).
usage: check_golden.py MONET_PROBE MODEL_DIR"""
import json
import os
import subprocess
import sys

import numpy as np

BIN, MODEL = sys.argv[1:3]
gold = json.load(open(os.path.join(MODEL, "golden.json")))
failures = 0
for case in gold["cases"]:
    ids = ",".join(map(str, case["ids"]))
    raw = subprocess.run([BIN, "logits", "--model", MODEL, "--ids", ids, "--last", "--out", "-"], check=True,
                         capture_output=True).stdout
    lg = np.frombuffer(raw, dtype="<f4")
    top = case["last_logits_top10"]
    got_ids = [int(x) for x in np.argsort(-lg, kind="stable")[:10]]
    err = max(abs(float(lg[i]) - v) for i, v in zip(top["ids"], top["values"]))
    ok = got_ids[:3] == top["ids"][:3] and err < 2e-3
    route = json.loads(subprocess.run([BIN, "route", "--model", MODEL, "--ids", ids, "--json"], check=True,
                                      capture_output=True).stdout)
    r_ok, r_total = 0, 0
    last = len(case["ids"]) - 1
    for pos_key, pos in (("pos0", 0), (f"pos{last}", last)):
        for g in case["routing"][pos_key]:
            cg = route["tokens"][pos]["groups"][g["group"]]
            for h, head in enumerate(g["heads"]):
                r_total += 1
                gi = [e[0] for e in cg["g1"][h]]
                gj = [e[0] for e in cg["g2"][h]]
                pi = [e[1] for e in cg["g1"][h]]
                pj = [e[1] for e in cg["g2"][h]]
                if gi == head["i"] and gj == head["j"] and np.allclose(pi, head["g1"], atol=1e-4) \
                        and np.allclose(pj, head["g2"], atol=1e-4):
                    r_ok += 1
    ok = ok and r_ok == r_total
    print(f"{'ok  ' if ok else 'FAIL'} {case['label']:<10} {len(case['ids'])} tokens: top-10 logit max err {err:.2e}, "
          f"top-3 ids {'match' if got_ids[:3] == top['ids'][:3] else 'DIFFER'}, routing heads {r_ok}/{r_total} identical")
    failures += not ok
print(f"check_golden: {len(gold['cases'])} cases, {failures} failed")
sys.exit(1 if failures else 0)
