#!/usr/bin/python3
"""tests/collect/check_bench_store.py — bench/bench_store (collect behind a backend that
only routes) on the tiny collect checkpoint: it runs the real collect, its store counts
every token in every group, and the routing it draws follows the model's threshold rule.

Shape of the test checkpoint: E = 16 experts per factor, Hm = 2 heads, k = 4, 2 router
groups. Logits are N(0,1), so each head activates Binomial(16, 4/16) experts per factor
(at least one): 4.0 on average, about 16 pairs per head, and about 31 distinct pairs per
token over the two heads (a pair active in both heads counts once: 256 * (1/4)^4 = 1 on
average). A backend that routed k fixed experts, every expert, or nothing would fall
outside 24..38.

usage: check_bench_store.py BENCH_STORE MODEL_DIR"""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
import shipped  # noqa: E402


def main():
    bench, model = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "c.jsonl")
        with open(corpus, "w", encoding="utf-8") as f:
            for d in shipped.code_docs(("Python", "Lua", "PHP"), max_len=400)[:40]:
                f.write(json.dumps({"code": d["text"], "lang": d["lang"]}) + "\n")
        out = os.path.join(tmp, "s.db")
        r = subprocess.run([bench, model, corpus, out, "--max-tokens", "3000", "--window", "64", "--text-field",
                            "code", "--label-field", "lang", "--top-k", "4"], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"FAIL: bench_store exited {r.returncode}: {r.stderr.strip()}")
        j = json.loads(r.stdout)
        fails = []
        if not 0 < j["tokens"] <= 3000 + 400 or j["windows"] < j["tokens"] / 64:
            fails.append(f"tokens {j['tokens']}, windows {j['windows']}")
        if not 0 < j["commit_s"] <= j["store_thread_s"]:
            fails.append(f"commit_s {j['commit_s']} vs store_thread_s {j['store_thread_s']}")
        db = sqlite3.connect(out)
        for g, tokens in db.execute("SELECT grp, tokens FROM groups ORDER BY grp"):
            hits, active = db.execute("SELECT sum(n_active), count(*) FROM expert_stats WHERE grp=?",
                                      (g,)).fetchone()
            per_token = hits / tokens
            # the first window of each document starts with BOS (not counted), so tokens <= the JSON's
            if not tokens <= j["tokens"] or not 24 <= per_token <= 38 or active < 200:
                fails.append(f"group {g}: {tokens} tokens, {per_token:.1f} active pairs per token, {active} experts")
            print(f"group {g}: {tokens} tokens, {per_token:.1f} active pairs per token, {active} of 256 experts fired")
        if db.execute("SELECT count(*) FROM groups").fetchone()[0] != 2:
            fails.append("not 2 router groups")
        for f in fails:
            print("FAIL:", f)
        print(f"bench_store: {j['tokens']} tokens at {j['tokens_per_s']} tok/s; {len(fails)} failure(s)")
        return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
