#!/usr/bin/env python3
"""tests/mask/check_mask_tools.py — `mask show|merge|invert` on hand-made
masks: counts, ratios, union, complement, round trip, errors.
usage: check_mask_tools.py MONET_PROBE WORKDIR"""
import json
import os
import shutil
import subprocess
import sys

BIN, WORK = sys.argv[1:3]
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def write(name, experts, E=8, R=2):
    p = os.path.join(WORK, name)
    json.dump({"format": "monet-probe-mask", "version": 1, "model": {"moe_experts": E, "n_groups": R},
               "criterion": {"kind": "test", "name": name},
               "groups": [{"group": r, "experts": [[i, j] for (g, i, j) in experts if g == r]} for r in range(R)]},
              open(p, "w"))
    return p


def run(*a, ok=True):
    p = subprocess.run([BIN, "mask", *a], capture_output=True)
    if ok and p.returncode:
        failures.append(f"mask {a}: exit {p.returncode} {p.stderr.decode()}")
    return p


a = write("a.json", [(0, 1, 2), (0, 3, 4), (1, 7, 7)])
b = write("b.json", [(0, 1, 2), (1, 0, 0)])
s = json.loads(run("show", a, "--json", "--list").stdout)
check(s["masked"] == 3 and s["per_group"] == [2, 1] and abs(s["ratio"] - 3 / 128) < 1e-9,
      "show: counts per group and ratio (denominator groups x E^2)")
check(s["experts"] == [[0, 1, 2], [0, 3, 4], [1, 7, 7]] and s["criterion"]["name"] == "a.json", "show --list, criterion")
txt = run("show", a, "--list").stdout.decode()
check("group 0: 0:1,2 0:3,4" in txt and "2.344%" in txt, "show text")
m = os.path.join(WORK, "m.json")
run("merge", "--out", m, a, b)
s = json.loads(run("show", m, "--json", "--list").stdout)
check(s["masked"] == 4 and [1, 0, 0] in s["experts"], "merge: union without duplicates")
inv = os.path.join(WORK, "inv.json")
run("invert", a, "--out", inv)
s = json.loads(run("show", inv, "--json").stdout)
check(s["masked"] == 128 - 3, "invert: complement")
inv2 = os.path.join(WORK, "inv2.json")
run("invert", inv, "--out", inv2)
s = json.loads(run("show", inv2, "--json", "--list").stdout)
check(s["experts"] == [[0, 1, 2], [0, 3, 4], [1, 7, 7]], "invert twice is the identity")
c = write("c.json", [(0, 1, 1)], E=16)
p = run("merge", "--out", m, a, c, ok=False)
check(p.returncode == 2 and b"c.json" in p.stderr and p.stderr.count(b"\n") == 1, "merge refuses another shape")
p = run("show", os.path.join(WORK, "missing.json"), ok=False)
check(p.returncode == 2, "show: missing file exit 2")
p = run("frobnicate", ok=False)
check(p.returncode == 2, "unknown action exit 2")
print(f"check_mask_tools: {len(failures)} failed")
sys.exit(1 if failures else 0)
