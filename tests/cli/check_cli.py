#!/usr/bin/env python3
"""tests/cli/check_cli.py — every subcommand end to end: --help, usage errors
(exit 2, one line), info, generate (greedy decode == argmax of a full prefill,
seeded sampling reproducible), ppl (mean NLL == the float64 reference's),
JSONL error handling, route/logits on text.
usage: check_cli.py MONET_PROBE MODEL_DIR TESTS_REF_DIR"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

BIN, MODEL, REF = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, REF)
import monet_ref  # noqa: E402

failures = []


def run(*args, ok=True):
    p = subprocess.run([BIN, *args], capture_output=True)
    if ok and p.returncode != 0:
        failures.append(f"{' '.join(args)}: exit {p.returncode}: {p.stderr.decode(errors='replace')}")
    return p


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def one_line_error(p, code=2):
    err = p.stderr.decode(errors="replace")
    return p.returncode == code and err.count("\n") == 1 and err.startswith("monet-probe: ")


COMMANDS = ["info", "tokenize", "logits", "route", "generate", "ppl"]
for c in COMMANDS:
    p = run(c, "--help")
    check(p.returncode == 0 and b"usage: monet-probe " + c.encode() in p.stdout, f"{c} --help")
    p = run(c, "--bogus-flag", ok=False)
    check(one_line_error(p), f"{c} rejects an unknown flag with one line, exit 2")
p = run("nonsense", ok=False)
check(one_line_error(p), "unknown command: exit 2")
p = run("info", "--model", "/nonexistent/dir", ok=False)
check(one_line_error(p) and b"/nonexistent/dir" in p.stderr, "missing model dir named, exit 2")
p = run("logits", "--model", MODEL, "--ids", "1,99999999", ok=False)
check(one_line_error(p) and b"outside the vocabulary" in p.stderr, "token id out of range: exit 2")
p = run("logits", "--model", MODEL, "--ids", "1,x", ok=False)
check(one_line_error(p), "bad --ids: exit 2")

info = json.loads(run("info", "--model", MODEL, "--json").stdout)
V = 4096  # pieces in the shipped data/monet-tiny/tokenizer.model, which the checkpoint carries
check(info["vocab_size"] == V and info["n_groups"] == 2 and info["group_layers"] == [[0, 1], [2, 2]],
      "info --json: vocab, groups and the layers each covers")
txt = run("info", "--model", MODEL).stdout.decode()
check("group 1      layer 2" in txt and "GQA" in txt, "info text names group layers and GQA")

ref = monet_ref.load_model(MODEL)

# greedy generation must equal the argmax chain of one full prefill
g = json.loads(run("generate", "--model", MODEL, "--prompt", "The capital of France is", "--max-tokens", "12",
                   "--temperature", "0", "--json").stdout)
ids = g["prompt_ids"] + g["ids"]
logits = ref.forward(ids)[0]
np_pred = [int(np.argmax(logits[len(g["prompt_ids"]) - 1 + k])) for k in range(len(g["ids"]))]
check(g["prompt_ids"][0] == 1 and len(g["ids"]) > 0, "generate: BOS prepended, tokens produced")
check(np_pred == g["ids"], f"greedy KV-cache decode == argmax of the float64 reference prefill ({len(g['ids'])} tokens)")
a = run("generate", "--model", MODEL, "--prompt", "def main():", "--max-tokens", "16", "--seed", "5", "--json").stdout
b = run("generate", "--model", MODEL, "--prompt", "def main():", "--max-tokens", "16", "--seed", "5", "--json").stdout
c = run("generate", "--model", MODEL, "--prompt", "def main():", "--max-tokens", "16", "--seed", "6", "--json").stdout
check(json.loads(a)["ids"] == json.loads(b)["ids"], "sampling with the same seed is reproducible")
check(json.loads(a)["ids"] != json.loads(c)["ids"], "a different seed gives a different sample")

# ppl: mean NLL equals the reference's over the same tokens
with tempfile.TemporaryDirectory() as tmp:
    corpus = os.path.join(tmp, "c.txt")
    lines = ["Hello world, this is a test.", "int main(void) { return 0; }", "", "Zürich 東京 🙂 tabs\tand  spaces"]
    with open(corpus, "w") as f:
        f.write("\n".join(lines) + "\n")
    out = json.loads(run("ppl", "--model", MODEL, "--corpus", corpus, "--json", "--quiet").stdout)
    nll, n = 0.0, 0
    for line in lines:
        if not line:
            continue
        p = subprocess.run([BIN, "tokenize", "--model", MODEL, "--ids", "-"], input=line.encode(), capture_output=True)
        tid = [1] + [int(x) for x in p.stdout.split()]
        lg = ref.forward(tid)[0]
        for t in range(len(tid) - 1):
            row = lg[t] - lg[t].max()
            nll -= row[tid[t + 1]] - np.log(np.exp(row).sum())
            n += 1
    check(out["tokens"] == n and out["documents"] == 3, f"ppl counts {out['tokens']} tokens over 3 documents")
    check(abs(out["mean_nll"] - nll / n) < 1e-4, f"ppl mean NLL {out['mean_nll']:.6f} == reference {nll / n:.6f}")

    # context windows: a short context must still score every token after each window start
    out2 = json.loads(run("ppl", "--model", MODEL, "--corpus", corpus, "--json", "--quiet", "--context", "4").stdout)
    check(out2["tokens"] < out["tokens"] and out2["tokens"] > 0, "ppl --context splits documents into windows")

    jl = os.path.join(tmp, "c.jsonl")
    with open(jl, "w") as f:
        f.write(json.dumps({"text": "print('hi')", "lang": "python"}) + "\n")
        f.write("{not json\n")
        f.write(json.dumps({"text": "echo 'hi';", "lang": "php"}) + "\n")
        f.write(json.dumps({"body": "no text field", "lang": "php"}) + "\n")
    p = run("ppl", "--model", MODEL, "--corpus", jl, "--label-field", "lang", "--json", "--quiet")
    out = json.loads(p.stdout)
    check(out["skipped_lines"] == 2 and set(out["labels"]) == {"python", "php"}, "ppl JSONL: bad lines skipped, per-label")
    p = run("ppl", "--model", MODEL, "--corpus", jl, "--label-field", "lang", "--strict", ok=False)
    check(one_line_error(p) and b"c.jsonl:2" in p.stderr, "ppl --strict: file:line, exit 2")

# route and logits accept text through the tokenizer
r = json.loads(run("route", "--model", MODEL, "--text", "Hello", "--json").stdout)
check(r["n_tokens"] >= 1 and len(r["tokens"][0]["groups"]) == 2, "route --text --json")
txt = run("route", "--model", MODEL, "--ids", "1,2,3", "--top", "2").stdout.decode()
check("more (use --top or --json to see all)" in txt, "route --top says how many experts it did not print")
p = run("logits", "--model", MODEL, "--text", "Hi", "--format", "json", "--last")
check(len(json.loads(p.stdout)["logits"][0]) == V, "logits --format json --last")

print(f"check_cli: {len(failures)} failed")
for f in failures:
    print("  " + f)
sys.exit(1 if failures else 0)
