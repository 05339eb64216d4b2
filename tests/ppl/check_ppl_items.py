#!/usr/bin/env python3
"""tests/ppl/check_ppl_items.py — `eval ppl --json` rows carry per-document NLL sums
weighted by tokens that reproduce the row's perplexity, a delta-method standard error
(recomputed here), and `eval compare` gives perplexity rows a paired bootstrap interval.
Usage: check_ppl_items.py BIN REPO WORKDIR"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
from clicheck import CliCheck  # noqa: E402

BIN, REPO, WORK = sys.argv[1:4]
MODEL = os.path.join(REPO, "data", "monet-tiny")
CORPUS = os.path.join(REPO, "data", "corpus", "valid.jsonl")
t = CliCheck(BIN, WORK)
check = t.check


def run(*args):
    return t.run(*args).stdout.decode()



base, masked, mask = (os.path.join(WORK, f) for f in ("b.json", "m.json", "mask.json"))
E = json.load(open(os.path.join(MODEL, "config.json")))["moe_experts"]   # mask 1/8 of group 0's experts
json.dump({"format": "monet-probe-mask", "version": 1, "model": {"moe_experts": E, "n_groups": 2},
           "groups": [{"group": 0, "experts": [[i, j] for i in range(E // 8) for j in range(E)]}]}, open(mask, "w"))
common = ["eval", "ppl", "--model", MODEL, "--corpus", CORPUS, "--label-field", "lang", "--max-docs", "150", "--quiet"]
run(*common, "--json", base)
run(*common, "--mask", mask, "--json", masked)
rows = json.load(open(base))["rows"]
ok_items = ok_se = True
for r in rows:
    x, w = r["items"], r["item_weights"]
    ok_items &= len(x) == len(w) == r["n"] and abs(math.exp(sum(x) / sum(w)) - r["value"]) <= 1e-9 * r["value"]
    m = sum(x) / sum(w)
    n = len(x)
    se = math.exp(m) * math.sqrt(sum((a - m * b) ** 2 for a, b in zip(x, w)) * n / (n - 1)) / sum(w)
    ok_se &= r["value_metric"] == "perplexity" and abs(se - r["stderr"]) <= 1e-9 * se
check(ok_items and len(rows) >= 3, f"every row's items (document NLL sums, token weights) give its perplexity ({len(rows)} rows)")
check(ok_se, "standard error = delta method of the per-token NLL ratio")
out = run("eval", "compare", base, masked, "--target", "python")
line = next(l for l in out.splitlines() if l.startswith("python"))
check("[" in line and "paired bootstrap" in out, "eval compare: perplexity rows get a paired bootstrap interval")
t.finish("check_ppl_items")
