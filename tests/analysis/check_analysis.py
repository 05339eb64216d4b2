#!/usr/bin/env python3
"""tests/analysis/check_analysis.py — specialize / correlate / purge against a
brute-force recomputation from `monet-probe route --json` over the same
documents (tiny random checkpoint, short labelled code and scored prompts):
per-expert per-label mean routing scores and activation frequencies, the
2x-skew specialist sets per group, per-token and per-document Pearson r
(numpy), the purge masks; plus error handling.
Corpora come from the shipped data/corpus (tests/ref/shipped.py).
usage: check_analysis.py MONET_PROBE TESTS_REF_DIR WORKDIR"""
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np

BIN, REF, WORK = sys.argv[1:4]
sys.path.insert(0, REF)
import shipped  # noqa: E402
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(*args, ok=True, inp=None):
    p = subprocess.run([BIN, *args], capture_output=True, input=inp)
    if ok and p.returncode:
        raise SystemExit(f"{args}: exit {p.returncode}: {p.stderr.decode()}")
    return p


model = os.path.join(WORK, "model")
subprocess.run([sys.executable, os.path.join(REF, "make_checkpoint.py"), "--out", model, "--dtype", "BF16",
                "--layers", "4", "--groups", "2", "--hidden", "32", "--heads", "4", "--experts", "8", "--moe-dim", "8",
                "--moe-heads", "2", "--topk", "2", "--seed", "17", "--quiet", "--tokenizer", shipped.TOKENIZER],
               check=True)
E, R = 8, 2

# corpora (shipped data/corpus/probe.jsonl): short RosettaCode solutions in 3 languages;
# short texts with toxicity scores
docs = [{"text": d["text"], "lang": d["lang"]}
        for d in shipped.code_docs(("Python", "Lua", "PHP"), per_lang=8, min_len=40, max_len=600)]
code = os.path.join(WORK, "code.jsonl")
with open(code, "w") as f:
    for d in docs:
        f.write(json.dumps(d) + "\n")
prompts = shipped.scored_prompts(24)
rtp = os.path.join(WORK, "rtp.jsonl")
with open(rtp, "w") as f:
    for d in prompts:
        f.write(json.dumps(d) + "\n")

code_db, rtp_db = os.path.join(WORK, "code.db"), os.path.join(WORK, "rtp.db")
run("collect", "--model", model, "--corpus", code, "--label", "lang", "--out", code_db, "--quiet")
run("collect", "--model", model, "--corpus", rtp, "--score", "toxicity", "--out", rtp_db, "--quiet")


def routes(text):
    ids = [1] + [int(x) for x in run("tokenize", "--model", model, "--ids", "--whole", "-",
                                     inp=text.encode()).stdout.split()]
    r = json.loads(run("route", "--model", model, "--ids", ",".join(map(str, ids)), "--json").stdout)
    out = []  # per token: {(g, i, j): w}
    for t in r["tokens"][1:]:  # collect does not count the BOS position
        out.append({(g["group"], e["i"], e["j"]): e["w"] for g in t["groups"] for e in g["experts"]})
    return out


# ---- specialization, brute force
labels = sorted({d["lang"] for d in docs})
sum_w = {}   # (g, flat, label) -> sum w
cnt = {}     # (g, flat, label) -> active tokens
ntok = {l: 0 for l in labels}
nact = {}
for d in docs:
    toks = routes(d["text"])
    ntok[d["lang"]] += len(toks)
    for tw in toks:
        for (g, i, j), w in tw.items():
            k = (g, i * E + j, d["lang"])
            sum_w[k] = sum_w.get(k, 0.0) + w
            cnt[k] = cnt.get(k, 0) + 1
            nact[(g, i * E + j)] = nact.get((g, i * E + j), 0) + 1


def specialists(measure, ratio=2.0, min_count=10):
    res = {}
    for (g, e), n in nact.items():
        m = [(sum_w.get((g, e, l), 0.0) if measure == "mean" else cnt.get((g, e, l), 0)) / ntok[l] for l in labels]
        order = sorted(range(len(labels)), key=lambda c: -m[c])
        best, second = m[order[0]], m[order[1]]
        if best > 0 and n >= min_count and (second == 0 or best / second >= ratio):
            res[(g, e)] = (labels[order[0]], best, second)
    return res


for measure in ("mean", "freq"):
    want = specialists(measure)
    got = json.loads(run("specialize", "--store", code_db, "--label-field", "lang", "--measure", measure, "--top", "0",
                         "--json").stdout)
    gl = {x["label"]: x for x in got["labels"]}
    check(all(gl[l]["tokens"] == ntok[l] for l in labels), f"{measure}: tokens per label == brute force {ntok}")
    counts_ok = all(gl[l]["per_group"] == [sum(1 for (g, e), v in want.items() if v[0] == l and g == r)
                                          for r in range(R)] for l in labels)
    check(counts_ok, f"{measure}: specialist counts per label and group == brute force ({len(want)} specialists)")
    top = {(x["group"], x["i"] * E + x["j"]): (l, x["p_label"], x["p_second"]) for l in labels for x in gl[l]["top"]}
    same = set(top) == set(want) and all(top[k][0] == want[k][0] and math.isclose(top[k][1], want[k][1], rel_tol=1e-5)
                                         and math.isclose(top[k][2], want[k][2], rel_tol=1e-5, abs_tol=1e-12)
                                         for k in want)
    check(same, f"{measure}: every specialist, its label and p values == brute force")
csv = run("specialize", "--store", code_db, "--label-field", "lang", "--csv").stdout.decode().splitlines()
check(csv[0].startswith("label,group,expert_i") and len(csv) == 1 + len(specialists("mean")), "specialize --csv rows")

# purge --lang: the mask is exactly the Python specialists
mask = os.path.join(WORK, "py.json")
run("purge", "--store", code_db, "--lang", "Python", "--out", mask)
m = json.load(open(mask))
got = {(g["group"], i * E + j) for g in m["groups"] for (i, j) in g["experts"]}
want = {k for k, v in specialists("mean").items() if v[0] == "Python"}
check(got == want and m["criterion"]["label"] == "Python" and m["model"]["moe_experts"] == E,
      f"purge --lang Python: mask == the {len(want)} Python specialists")
check(abs(m["ratio"] - len(want) / (R * E * E)) < 1e-9, "purge: masking ratio = masked / (groups x E^2)")
run("logits", "--model", model, "--ids", "1,2,3", "--mask", mask, "--out", os.devnull)
dmask = os.path.join(WORK, "py-domain.json")
p = run("purge", "--store", code_db, "--domain", "python", "--out", dmask)
dm = json.load(open(dmask))
check({(g["group"], i * E + j) for g in dm["groups"] for (i, j) in g["experts"]} == want
      and dm["criterion"]["field"] == "lang" and b"found as lang=Python" in p.stdout,
      "purge --domain python on a language-labelled store: same mask, says which field it used")
loose = os.path.join(WORK, "loose.json")
run("purge", "--store", code_db, "--label", "lang=Python", "--threshold", "1.2", "--min-count", "0", "--out", loose)
check(len(json.load(open(loose))["groups"][0]["experts"]) + len(json.load(open(loose))["groups"][1]["experts"])
      >= len(want), "a looser threshold masks at least as many experts")

# ---- correlation, brute force per token and per document
xs_tok, ys_tok, xs_doc, ys_doc = {}, [], {}, []
tok_rows = []
for d in prompts:
    toks = routes(d["text"])
    ys_tok.extend([d["toxicity"]] * len(toks))
    ys_doc.append(d["toxicity"])
    tok_rows.append(toks)
keys = sorted({k for toks in tok_rows for tw in toks for k in tw})
X = np.zeros((len(keys), len(ys_tok)))
XD = np.zeros((len(keys), len(ys_doc)))
kidx = {k: n for n, k in enumerate(keys)}
t = 0
for dn, toks in enumerate(tok_rows):
    for tw in toks:
        for k, w in tw.items():
            X[kidx[k], t] = w
            XD[kidx[k], dn] += w / len(toks)
        t += 1
for per, XX, yy in (("token", X, np.array(ys_tok)), ("doc", XD, np.array(ys_doc))):
    got = json.loads(run("correlate", "--store", rtp_db, "--score-field", "toxicity", "--per", per, "--top", "0",
                         "--min-count", "0", "--json").stdout)
    want = {}
    for k, n in kidx.items():
        x = XX[n]
        if x.std() > 0:
            want[(k[0], k[1], k[2])] = float(np.corrcoef(x, yy)[0, 1])
    gotd = {(e["group"], e["i"], e["j"]): e["r"] for e in got["experts"]}
    err = max(abs(gotd[k] - v) for k, v in want.items()) if set(gotd) == set(want) else float("inf")
    check(got["samples"] == len(yy) and err < 1e-6,
          f"correlate --per {per}: {len(want)} experts, n={len(yy)}, max |r - numpy| = {err:.2e}")
    rs = [e["r"] for e in got["experts"]]
    check(rs == sorted(rs, reverse=True), f"correlate --per {per}: sorted by r")
tox = os.path.join(WORK, "tox.json")
run("purge", "--store", rtp_db, "--toxicity", "--threshold", "0.05", "--min-count", "0", "--out", tox)
mt = json.load(open(tox))
got = {(g["group"], i, j) for g in mt["groups"] for (i, j) in g["experts"]}
g_tok = json.loads(run("correlate", "--store", rtp_db, "--score-field", "toxicity", "--top", "0", "--min-count", "0",
                       "--json").stdout)
want_t = {(e["group"], e["i"], e["j"]) for e in g_tok["experts"] if e["r"] >= 0.05}
check(got == want_t and mt["criterion"]["threshold"] == 0.05, f"purge --toxicity: {len(got)} experts with r >= 0.05")

# ---- errors
bad = [("specialize", "--store", code_db, "--label-field", "domain"),
       ("specialize", "--store", rtp_db, "--label-field", "lang"),
       ("correlate", "--store", code_db, "--score-field", "toxicity"),
       ("purge", "--store", code_db, "--lang", "Cobol", "--out", os.path.join(WORK, "x.json")),
       ("purge", "--store", code_db, "--out", os.path.join(WORK, "x.json")),
       ("specialize", "--store", os.path.join(WORK, "nope.db"), "--label-field", "lang")]
junk = os.path.join(WORK, "junk.db")
with open(junk, "wb") as f:
    f.write(b"this is not sqlite" * 100)
bad.append(("correlate", "--store", junk, "--score-field", "toxicity"))
for b in bad:
    p = run(*b, ok=False)
    check(p.returncode == 2 and p.stderr.count(b"\n") == 1, f"{' '.join(b[:1] + b[3:5])}: exit 2, one line "
          f"({p.stderr.decode().strip()[:80]})")

print(f"check_analysis: {len(failures)} failed")
sys.exit(1 if failures else 0)
