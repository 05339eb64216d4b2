#!/usr/bin/env python3
"""tests/trace/check_context_scores.py — `top-contexts --model --json` per-token scores:
recomputed on the stored window, the activating token's score equals the stored top-K w
(1e-5), every score equals `trace` over the same window's ids, and the text output lists
the other active tokens. Usage: check_context_scores.py BIN REPO WORKDIR"""
import json
import os
import shutil
import subprocess
import sys

BIN, REPO, WORK = sys.argv[1:4]
MODEL = os.path.join(REPO, "data", "monet-tiny")
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def run(*args):
    p = subprocess.run([BIN, *args], capture_output=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(args)}: exit {p.returncode}: {p.stderr.decode()}")
    return p.stdout


store = os.path.join(WORK, "s.db")
run("collect", "--model", MODEL, "--corpus", os.path.join(REPO, "data", "corpus", "probe.jsonl"), "--label-field",
    "lang", "--max-tokens", "4000", "--context-window", "64", "--top-k", "4", "--out", store, "--quiet")
expert = "1:14,1"
out = json.loads(run("top-contexts", "--store", store, "--expert", expert, "--model", MODEL, "--window", "8",
                     "--json"))
ctxs = out["groups"][0]["contexts"]
check(len(ctxs) >= 1 and all("scores" in c and len(c["scores"]) == len(c["tokens"]) for c in ctxs),
      f"every context has per-token scores ({len(ctxs)} contexts)")
check(all(abs(c["scores"][c["token_index"]] - c["w"]) <= 1e-5 for c in ctxs),
      "the activating token's recomputed score == the stored w")
check(all("".join(c["tokens"][:c["token_index"]]) == c["left"] and c["tokens"][c["token_index"]] == c["token"]
          for c in ctxs), "tokens line up with left / token")
txt = run("top-contexts", "--store", store, "--expert", expert, "--model", MODEL, "--limit", "1").decode()
check("also active:" in txt or "active on no other shown token" in txt, "text output lists the other active tokens")
print(f"check_context_scores: {len(failures)} failed")
sys.exit(1 if failures else 0)
