#!/usr/bin/env python3
"""tests/trace/check_trace.py — `trace --json` against `route --json` on the same text:
every token's weight of an active expert equals route's w (1e-6), an expert route never
lists is 0 on every token, a masked expert is 0, --file equals --text, and an address
without R: is refused on a two-group model. Usage: check_trace.py BIN MODEL WORKDIR"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
from clicheck import CliCheck  # noqa: E402

BIN, MODEL, WORK = sys.argv[1:4]
t = CliCheck(BIN, WORK)
check = t.check
run = t.run



TEXT = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
route = json.loads(run("route", "--model", MODEL, "--text", TEXT, "--json").stdout)
n = route["n_tokens"]
# the heaviest expert of group 1 at token 3, and one expert of group 0 route never lists
g1 = route["tokens"][3]["groups"][1]["experts"][0]
seen0 = {(e["i"], e["j"]) for t in route["tokens"] for e in t["groups"][0]["experts"]}
E = route["moe_experts"]
never = next((i, j) for i in range(E) for j in range(E) if (i, j) not in seen0)
addr_active, addr_never = f"1:{g1['i']},{g1['j']}", f"0:{never[0]},{never[1]}"
tr = json.loads(run("trace", "--model", MODEL, "--text", TEXT, "--expert", addr_active, "--expert", addr_never,
                    "--json").stdout)
check(tr["n_tokens"] == n and tr["experts"] == [addr_active, addr_never], "trace --json: tokens and expert addresses")
want = [next((e["w"] for e in t["groups"][1]["experts"] if (e["i"], e["j"]) == (g1["i"], g1["j"])), 0.0)
        for t in route["tokens"]]
got = [t["w"][0] for t in tr["tokens"]]
check(all(abs(a - b) <= 1e-6 for a, b in zip(got, want)) and sum(w > 0 for w in got) >= 1,
      f"trace == route for {addr_active} on all {n} tokens ({sum(w > 0 for w in got)} active)")
check(all(t["w"][1] == 0 for t in tr["tokens"]), f"an expert route never lists ({addr_never}) is 0 everywhere")
check([t["id"] for t in tr["tokens"]] == [t["id"] for t in route["tokens"]], "same token ids as route (BOS first)")

mask = os.path.join(WORK, "m.json")
json.dump({"format": "monet-probe-mask", "version": 1, "model": {"moe_experts": E, "n_groups": route["n_groups"]},
           "groups": [{"group": 1, "experts": [[g1["i"], g1["j"]]]}]}, open(mask, "w"))
tm = json.loads(run("trace", "--model", MODEL, "--text", TEXT, "--expert", addr_active, "--mask", mask,
                    "--json").stdout)
check(all(t["w"][0] == 0 for t in tm["tokens"]), "a masked expert traces to 0")

f = os.path.join(WORK, "t.txt")
open(f, "w").write(TEXT)
tf = json.loads(run("trace", "--model", MODEL, "--file", f, "--expert", addr_active, "--json").stdout)
check([t["w"][0] for t in tf["tokens"]] == got, "--file FILE == --text TEXT")

p = run("trace", "--model", MODEL, "--text", TEXT, "--expert", f"{g1['i']},{g1['j']}", ok=False)
err = p.stderr.decode()
check(p.returncode == 2 and err.count("\n") == 1 and "say which router group" in err,
      "an address without R: on a 2-group model: one-line error, exit 2")
txt = run("trace", "--model", MODEL, "--text", TEXT, "--expert", addr_active).stdout.decode().splitlines()
check(len(txt) == n + 1 and addr_active in txt[0], "table output (not a TTY): a header and one row per token")

t.finish("check_trace")
