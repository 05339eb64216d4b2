#!/usr/bin/env python3
"""tests/trace/check_context_scores.py — `top-contexts --model --json` per-token scores:
recomputed on the stored window, the activating token's score equals the stored top-K w
(1e-5), every score equals `trace` over the same window's ids, and the text output lists
the other active tokens. Usage: check_context_scores.py BIN REPO WORKDIR"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
from clicheck import CliCheck  # noqa: E402

BIN, REPO, WORK = sys.argv[1:4]
MODEL = os.path.join(REPO, "data", "monet-tiny")
t = CliCheck(BIN, WORK)
check = t.check


def run(*args):
    return t.run(*args).stdout



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

# export: the documented JSONL schema, the same contexts as top-contexts, Neuronpedia files
lines = run("export", "--store", store, "--experts", "3", "--contexts", "4", "--context-tokens", "8", "--model", MODEL,
            "--quiet").decode().splitlines()
ex = [json.loads(l) for l in lines]
KEYS = {"expert": str, "group": int, "i": int, "j": int, "flat": int, "layers": list, "n_active": int,
        "frac_active": (int, float), "mean": (int, float), "max": (int, float), "label_stats": list,
        "per_token_scores": bool, "contexts": list, "histogram": list, "quantile_samples": list}
CKEYS = {"rank": int, "w": (int, float), "doc": int, "pos": int, "source": str, "line": int, "labels": dict,
         "text": str, "tokens": list, "ids": list, "token_index": int, "scores": list}
check(len(ex) == 3 and all(set(e) == set(KEYS) and all(isinstance(e[k], t) for k, t in KEYS.items()) for e in ex),
      "export jsonl: every expert object has exactly the documented keys and types")
check(all(set(c) == set(CKEYS) and all(isinstance(c[k], t) for k, t in CKEYS.items())
          for e in ex for c in e["contexts"]), "export jsonl: every context has the documented keys and types")
HKEYS = {"bin": int, "lo": (int, float), "hi": (int, float, type(None)), "n": int}
check(all(set(b) == set(HKEYS) and all(isinstance(b[k], t) for k, t in HKEYS.items()) for e in ex for b in e["histogram"])
      and all(sum(b["n"] for b in e["histogram"]) == e["n_active"] for e in ex)
      and all(b["lo"] <= e["max"] for e in ex for b in e["histogram"]),
      "export jsonl: histogram bins have the documented keys and add up to n_active")
check(all(set(c) == set(CKEYS) | {"octave"} and all(isinstance(c[k], t) for k, t in CKEYS.items())
          for e in ex for c in e["quantile_samples"]) and all(len(e["quantile_samples"]) > 1 for e in ex),
      "export jsonl: quantile samples are contexts of the documented schema plus their octave")
check(all(2 ** (c["octave"] - 12) <= c["w"] * (1 + 1e-6) and (c["octave"] == 15 or c["w"] < 2 ** (c["octave"] - 11))
          for e in ex for c in e["quantile_samples"] if c["octave"] > 0),
      "export jsonl: each quantile sample's w lies in its octave [2^(o-12), 2^(o-11))")
import sqlite3  # noqa: E402
db = sqlite3.connect(store)
check(all([(c["octave"], c["doc"], c["pos"]) for c in e["quantile_samples"]] ==
          db.execute("SELECT octave, doc, pos FROM qsamples WHERE grp = ? AND expert = ? ORDER BY octave DESC, w DESC, "
                     "doc, pos", (e["group"], e["flat"])).fetchall() and
          [(b["bin"], b["n"]) for b in e["histogram"]] ==
          db.execute("SELECT bin, n FROM hist WHERE grp = ? AND expert = ? ORDER BY bin", (e["group"], e["flat"])).fetchall()
          for e in ex), "export jsonl: histogram and quantile samples == the store's hist and qsamples rows")
db.close()
counts = [e["n_active"] for e in ex]
check(counts == sorted(counts, reverse=True), "export: experts by active-token count, most first")
tc = json.loads(run("top-contexts", "--store", store, "--expert", ex[0]["expert"], "--model", MODEL, "--window", "8",
                    "--limit", "4", "--json"))["groups"][0]["contexts"]
check([c["tokens"] for c in ex[0]["contexts"]] == [c["tokens"] for c in tc] and
      all(abs(a - b) <= 1e-7 for x, y in zip(ex[0]["contexts"], tc) for a, b in zip(x["scores"], y["scores"])),
      "export contexts == top-contexts contexts (tokens and per-token scores)")
npd = os.path.join(WORK, "np")
run("export", "--store", store, "--experts", "3", "--contexts", "4", "--format", "neuronpedia", "--out", npd,
    "--model", MODEL, "--quiet")
feats = [json.loads(l) for l in open(os.path.join(npd, "features.jsonl"))]
acts = [json.loads(l) for l in open(os.path.join(npd, "activations.jsonl"))]
check([f["vectorLabel"] for f in feats] == [e["expert"] for e in ex] and
      all(f["index"] == str(e["flat"]) for f, e in zip(feats, ex)), "neuronpedia features: one per expert, index = flat id")
check(len(acts) == sum(len(e["contexts"]) for e in ex) and
      all(len(a["values"]) == len(a["tokens"]) and abs(a["values"][a["maxValueTokenIndex"]] - a["maxValue"]) <= 1e-5
          for a in acts), "neuronpedia activations: values aligned with tokens, values[maxValueTokenIndex] == maxValue")
check(all(len(f["freq_hist_data_bar_values"]) == len(f["freq_hist_data_bar_heights"]) >= 1 and
          sum(f["freq_hist_data_bar_heights"]) == e["n_active"] and
          f["freq_hist_data_bar_values"] == sorted(f["freq_hist_data_bar_values"]) for f, e in zip(feats, ex)),
      "neuronpedia features: activation histogram as parallel bar values / heights adding up to n_active")
check(not [f for f in os.listdir(npd) if "tmp" in f], "no temporary files left")

# effects == a brute-force recomputation with `logits --last` unmasked and masked, over the same prefixes
import numpy as np
cfg = json.load(open(os.path.join(MODEL, "config.json")))   # the shipped model's shape
E_, G_ = cfg["moe_experts"], -(-cfg["num_hidden_layers"] // cfg["moe_groups"])
top3 = json.loads(run("export", "--store", store, "--experts", "1", "--contexts", "3", "--context-tokens", "64",
                      "--quiet").decode().splitlines()[0])
g, i, j = top3["group"], top3["i"], top3["j"]
mask = os.path.join(WORK, "one.json")
json.dump({"format": "monet-probe-mask", "version": 1, "model": {"moe_experts": E_, "n_groups": G_},
           "groups": [{"group": g, "experts": [[i, j]]}]}, open(mask, "w"))


def logprobs(ids, *extra):
    out = os.path.join(WORK, "l.f32")
    run("logits", "--model", MODEL, "--ids", ",".join(map(str, ids)), "--last", "--out", out, *extra)
    x = np.fromfile(out, dtype="<f4").astype(np.float64)
    return x - (x.max() + np.log(np.exp(x - x.max()).sum()))


acc = None
for c in top3["contexts"]:
    check(c["ids"][0] is not None and len(c["ids"]) == len(c["tokens"]), "export ids aligned with tokens")
    prefix = c["ids"][:c["token_index"] + 1]
    d = logprobs(prefix) - logprobs(prefix, "--mask", mask)
    acc = d if acc is None else acc + d
want = acc / len(top3["contexts"])
fx = json.loads(run("effects", "--model", MODEL, "--store", store, "--expert", top3["expert"], "--contexts", "3",
                    "--top", "5", "--json"))
order = np.argsort(-want, kind="stable")
check(fx["contexts"] == 3 and [p["id"] for p in fx["promoted"]] == [int(v) for v in order[:5]] and
      all(abs(p["effect"] - want[p["id"]]) <= 1e-4 for p in fx["promoted"] + fx["suppressed"]) and
      [p["id"] for p in fx["suppressed"]] == [int(v) for v in order[::-1][:5]],
      f"effects == brute force masked-vs-unmasked logits over the same contexts (top id {order[0]})")

# experts --label matches the value case-insensitively (like purge); help CMD == CMD --help
a = json.loads(run("experts", "--store", store, "--label", "lang=PYTHON", "--limit", "5", "--json"))
b = json.loads(run("experts", "--store", store, "--label", "lang=python", "--limit", "5", "--json"))
check(a == b and len(a["experts"]) == 5, "experts --label lang=PYTHON == lang=python")
check(run("help", "collect") == run("collect", "--help") and run("help", "mask", "invert") == run("mask", "invert", "--help"),
      "monet-probe help CMD [ACTION] prints CMD [ACTION] --help")

# repeated windows (the same licence line in many files) are named once
rep = os.path.join(WORK, "rep.jsonl")
with open(rep, "w") as f:
    for _ in range(6):
        f.write(json.dumps({"text": "Licensed under the Apache License, Version 2.0 (the License);", "lang": "x"}) + "\n")
rdb = os.path.join(WORK, "rep.db")
run("collect", "--model", MODEL, "--corpus", rep, "--label-field", "lang", "--top-k", "4", "--out", rdb, "--quiet")
e0 = json.loads(run("export", "--store", rdb, "--experts", "1", "--quiet").decode().splitlines()[0])["expert"]
txt = run("top-contexts", "--store", rdb, "--expert", e0).decode()
js = json.loads(run("top-contexts", "--store", rdb, "--expert", e0, "--json"))["groups"][0]["contexts"]
check(txt.count("same text as rank 0") == 3 and [c.get("duplicate_of") for c in js] == [None, 0, 0, 0],
      "identical contexts: printed once, the others name rank 0 (--json: duplicate_of)")
full = run("top-contexts", "--store", rdb, "--expert", e0, "--all-text").decode()
check("same text as" not in full and full.count("Apache") == 4, "--all-text prints every context in full")
t.finish("check_context_scores")
