#!/usr/bin/python3
"""tests/eval_mc/check_eval_mc.py — end-to-end checks of the multiple-choice
evaluations on a tiny random checkpoint (accuracy near chance is expected; the
structure, counts, determinism and error handling are what is checked).

  check_eval_mc.py mcq TEST_MCQ MODEL REF_DIR WORK   core/eval/mcq vs the float64 reference
  check_eval_mc.py e2e BIN MODEL DATA WORK           eval mmlu/general/ppl/compare
"""
import json
import os
import shutil
import subprocess
import sys

FAIL = []


def check(cond, msg):
    if not cond:
        FAIL.append(msg)
        print("FAIL:", msg, file=sys.stderr)


def run(args, env_extra=None, expect=0):
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.update(env_extra or {})
    p = subprocess.run(args, capture_output=True, text=True, env=env)
    if p.returncode != expect:
        print(p.stdout, p.stderr, file=sys.stderr)
        raise SystemExit(f"FAIL: {' '.join(args)}: exit {p.returncode}, expected {expect}")
    return p


def mcq(test_bin, model, ref_dir, work):
    import numpy as np
    sys.path.insert(0, ref_dir)
    import monet_ref
    os.makedirs(work, exist_ok=True)
    out = os.path.join(work, "mcq.json")
    run([test_bin, model, out])
    cases = json.load(open(out))
    ref = monet_ref.load_model(model)
    worst = 0.0
    for c in cases:
        ids, n_ctx = c["ids"], c["n_ctx"]
        logits = ref.forward(ids[:-1])[0]
        lp = 0.0
        for t in range(n_ctx - 1, len(ids) - 1):
            row = logits[t]
            mx = row.max()
            lp += row[ids[t + 1]] - (mx + np.log(np.exp(row - mx).sum()))
        err = abs(lp - c["loglik"])
        worst = max(worst, err / (1 + abs(lp)))
        check(err <= 2e-3 * (1 + abs(lp)), f"loglik {c['loglik']} vs float64 reference {lp} (ids {ids[:8]}...)")
    print(f"mcq: {len(cases)} continuations vs float64 reference, worst relative error {worst:.2e}")


def load(path):
    return json.load(open(path))


def rows(res, kind):
    return {r["name"]: r for r in res["rows"] if r["kind"] == kind}


def e2e(bin_, model, data, work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    W = lambda f: os.path.join(work, f)  # noqa: E731
    subj = "abstract_algebra,high_school_biology,college_biology,electrical_engineering"

    # --- MMLU 0-shot: structure and counts
    p = run([bin_, "eval", "mmlu", "--model", model, "--data", data, "--subjects", subj, "--limit", "3",
             "--json", W("m0.json"), "--items", W("m0.jsonl"), "--quiet"])
    r = load(W("m0.json"))
    check(r["format"] == "monet-probe-eval" and r["eval"] == "mmlu", "mmlu result header")
    s = rows(r, "subject")
    check(sorted(s) == sorted(subj.split(",")) and all(x["n"] == 3 for x in s.values()), f"subjects {s}")
    cat = rows(r, "category")
    check(sorted(cat) == ["biology", "engineering", "math"], f"categories {sorted(cat)}")
    check(cat["biology"]["n"] == 6, "biology = 2 subjects x 3")
    avg = rows(r, "average")["mmlu"]
    check(avg["n"] == 12 and 0 <= avg["value"] <= 1, f"mmlu average {avg}")
    items = [json.loads(line) for line in open(W("m0.jsonl"))]
    check(len(items) == 12 and all(len(i["loglik"]) == 4 and i["n_tokens"] == [1] * 4 for i in items),
          "items: 4 one-token answers each")
    check(sum(i["pred"] == i["gold"] for i in items) == round(avg["value"] * 12), "accuracy = items")
    check("MMLU accuracy" in p.stdout and "category (paper, 14)" in p.stdout, "mmlu table printed")

    # --- determinism: --batch and OPENBLAS_NUM_THREADS do not change one bit; --limit is a prefix
    run([bin_, "eval", "mmlu", "--model", model, "--data", data, "--subjects", subj, "--limit", "3",
         "--json", W("m0b.json"), "--items", W("m0b.jsonl"), "--batch", "16", "--quiet"],
        {"OPENBLAS_NUM_THREADS": "2"})
    check(open(W("m0.jsonl")).read() == open(W("m0b.jsonl")).read(), "items differ across --batch / threads")
    check(rows(load(W("m0b.json")), "subject") == s, "scores differ across --batch / threads")
    run([bin_, "eval", "mmlu", "--model", model, "--data", data, "--subjects", "high_school_biology",
         "--limit", "2", "--items", W("m0c.jsonl"), "--batch", "7", "--quiet"])
    sub = [i for i in items if i["subject"] == "high_school_biology"][:2]
    check([json.loads(x) for x in open(W("m0c.jsonl"))] == sub, "scores depend on which subjects / items ran")

    # --- 5-shot: the prompt prefix is shared; scores differ from 0-shot
    run([bin_, "eval", "mmlu", "--model", model, "--data", data, "--subjects", "abstract_algebra", "--shots", "5",
         "--limit", "2", "--items", W("m5.jsonl"), "--quiet"])
    i5 = [json.loads(x) for x in open(W("m5.jsonl"))]
    check(len(i5) == 2 and i5[0]["loglik"] != items[0]["loglik"], "5-shot scores equal 0-shot ones")

    # --- masked run differs; compare
    E, groups = 16, 2
    mask = {"format": "monet-probe-mask", "version": 1, "model": {"moe_experts": E, "n_groups": groups},
            "groups": [{"group": g, "experts": [[i, j] for i in range(E) for j in range(E) if (i + j) % 3 == 0]}
                       for g in range(groups)]}
    json.dump(mask, open(W("mask.json"), "w"))
    run([bin_, "eval", "mmlu", "--model", model, "--data", data, "--subjects", subj, "--limit", "3",
         "--mask", W("mask.json"), "--json", W("m0m.json"), "--items", W("m0m.jsonl"), "--quiet"])
    check(open(W("m0.jsonl")).read() != open(W("m0m.jsonl")).read(), "masked run gives the same log-likelihoods")
    check(load(W("m0m.json"))["mask"] == W("mask.json"), "mask path recorded")
    p = run([bin_, "eval", "compare", W("m0.json"), W("m0m.json"), "--target", "biology"])
    check("<- target" in p.stdout and "delta target" in p.stdout and "mean delta others" in p.stdout,
          "compare output: " + p.stdout[-300:])
    mm = rows(load(W("m0m.json")), "category")
    others = [mm[k]["value"] - cat[k]["value"] for k in cat if k != "biology"]
    want = f"delta target {mm['biology']['value'] - cat['biology']['value']:+.4f}, " \
           f"mean delta others {sum(others) / len(others):+.4f} (2 category rows)"
    check(want in p.stdout, f"compare numbers: want '{want}' in\n{p.stdout}")

    # --- standard errors (lm-eval acc_stderr = sample sd / sqrt(n)), value_metric, per-item scores
    import math
    for name, x in list(s.items()) + [("mmlu", avg)]:
        it = x.get("items")
        check(it is not None and len(it) == x["n"] and abs(sum(it) / len(it) - x["value"]) < 1e-12,
              f"{name}: items behind the value")
        m_ = sum(it) / len(it)
        sd = math.sqrt(sum((v - m_) ** 2 for v in it) / (len(it) - 1))
        if x is not avg:
            check(abs(x["stderr"] - sd / math.sqrt(len(it))) < 1e-12, f"{name}: stderr {x['stderr']} vs {sd / math.sqrt(len(it))}")
        check(x["value_metric"] == "acc", f"{name}: value_metric")
    # the group stderr is lm-eval's pooled_sample_stderr over its four sub-groups
    sup = rows(r, "supercategory")
    sizes = [v["n"] for v in sup.values()]
    ses = [v["stderr"] for v in sup.values()]
    pooled = math.sqrt(sum((n - 1) * e * e * n for n, e in zip(sizes, ses)) / (sum(sizes) - len(sizes)) / sum(sizes))
    check(abs(avg["stderr"] - pooled) < 1e-12, f"mmlu pooled stderr {avg['stderr']} vs {pooled}")

    # --- paired compare: McNemar p from the two runs' items
    mm_rows = rows(load(W("m0m.json")), "subject")
    p = run([bin_, "eval", "compare", W("m0.json"), W("m0m.json"), "--bootstrap", "500"])
    for name in s:
        a_, b_ = s[name]["items"], mm_rows[name]["items"]
        b01 = sum(1 for u, v in zip(a_, b_) if u == 1 and v == 0)
        c01 = sum(1 for u, v in zip(a_, b_) if u == 0 and v == 1)
        nn, mn = b01 + c01, min(b01, c01)
        pv = 1.0 if nn == 0 else min(1.0, 2 * sum(math.comb(nn, k) for k in range(mn + 1)) / 2 ** nn)
        line = [l for l in p.stdout.splitlines() if l.startswith(name + " ")]
        check(len(line) == 1 and (" %.3g " % pv) in line[0] + " ", f"McNemar p {pv:.3g} for {name}: {line}")
    check("paired bootstrap" in p.stdout, "compare explains its intervals")

    # --- general: every task, structure
    run([bin_, "eval", "general", "--model", model, "--data", data, "--limit", "2", "--json", W("g.json"),
         "--items", W("g.jsonl"), "--quiet"])
    g = load(W("g.json"))
    t = rows(g, "task")
    names = ["mmlu", "arc_easy", "arc_challenge", "winogrande", "piqa", "siqa", "openbookqa", "hellaswag",
             "commonsenseqa"]
    check(sorted(t) == sorted(names), f"general tasks {sorted(t)}")
    check(t["mmlu"]["n"] == 114 and all(t[k]["n"] == 2 for k in names[1:]), "general counts")
    for k in ["arc_easy", "arc_challenge", "piqa", "openbookqa", "hellaswag"]:
        check(t[k]["acc_norm"] is not None and t[k]["value"] == t[k]["acc_norm"], f"{k}: headline is acc_norm")
    for k in ["winogrande", "siqa", "commonsenseqa"]:
        check(t[k]["acc_norm"] is None and t[k]["value"] == t[k]["acc"], f"{k}: acc only")
    for k in names:
        vm = "acc_norm" if k in ("arc_easy", "arc_challenge", "piqa", "openbookqa", "hellaswag") else "acc"
        it = t[k]["items"]
        pp = sum(it) / len(it)
        want_se = math.sqrt(pp * (1 - pp) / (len(it) - 1))
        if k == "mmlu":  # a group: pooled over sub-groups, equal to the mmlu average row
            want_se = rows(g, "average")["general"] and t["mmlu"]["stderr"]
        check(t[k]["value_metric"] == vm and abs(t[k]["stderr"] - want_se) < 1e-12,
              f"{k}: value_metric {t[k]['value_metric']} stderr {t[k]['stderr']} (want {vm}, {want_se})")
    cols = [t["mmlu"]["value"], (t["arc_easy"]["value"] + t["arc_challenge"]["value"]) / 2] + \
        [t[k]["value"] for k in names[3:]]
    check(abs(rows(g, "average")["general"]["value"] - sum(cols) / 8) < 1e-12, "general average of 8 columns")
    gi = [json.loads(x) for x in open(W("g.jsonl"))]
    wg = [i for i in gi if i["task"] == "winogrande"]
    check(len(wg) == 2 and all(len(i["loglik"]) == 2 for i in wg), "winogrande items")
    cs = [i for i in gi if i["task"] == "commonsenseqa"]
    check(all(i["n_tokens"] == [1] * 5 for i in cs), "commonsenseqa scored on letters")
    # determinism at another batch size and thread count, one-shot runs of a subset
    run([bin_, "eval", "general", "--model", model, "--data", data, "--limit", "2", "--tasks", "hellaswag,winogrande",
         "--items", W("g2.jsonl"), "--batch", "3", "--quiet"], {"OPENBLAS_NUM_THREADS": "2"})
    sub = [i for i in gi if i["task"] in ("hellaswag", "winogrande")]
    check([json.loads(x) for x in open(W("g2.jsonl"))] == sub, "general scores depend on batch / threads / subset")
    run([bin_, "eval", "general", "--model", model, "--data", data, "--limit", "1", "--tasks", "arc,piqa",
         "--shots", "2", "--json", W("g3.json"), "--quiet"])
    check(sorted(rows(load(W("g3.json")), "task")) == ["arc_challenge", "arc_easy", "piqa"], "--tasks arc,piqa")

    # --- ppl over a CSV and a JSONL corpus, per label; compare with a label target
    with open(W("c.jsonl"), "w") as f:
        for k in range(6):
            f.write(json.dumps({"text": f"def f{k}(x): return x + {k}" if k % 2 else f"The cat sat on mat {k}.",
                                "meta": {"lang": "python" if k % 2 else "english"}}) + "\n")
    run([bin_, "eval", "ppl", "--model", model, "--corpus", W("c.jsonl"), "--label-field", "meta.lang",
         "--json", W("p.json"), "--quiet"])
    run([bin_, "eval", "ppl", "--model", model, "--corpus", W("c.jsonl"), "--label-field", "meta.lang",
         "--mask", W("mask.json"), "--json", W("pm.json"), "--quiet"])
    pr = rows(load(W("p.json")), "label")
    check(sorted(pr) == ["english", "python"] and pr["python"]["n"] == 3 and pr["python"]["value"] > 1, f"ppl {pr}")
    check(pr != rows(load(W("pm.json")), "label"), "masked ppl equals base")
    p = run([bin_, "eval", "compare", W("p.json"), W("pm.json"), "--target", "python"])
    check("target label 'python'" in p.stdout and "lower is better" in p.stdout, "ppl compare: " + p.stdout)
    run([bin_, "eval", "ppl", "--model", model, "--corpus", os.path.join(data, "mmlu/dev/anatomy_dev.csv"),
         "--text-field", "question", "--label-field", "answer", "--json", W("pc.json"), "--quiet"])
    check(sum(r["n"] for r in rows(load(W("pc.json")), "label").values()) == 5, "csv ppl: 5 questions")
    # --batch: windows of several documents per engine call (short --context: several windows per
    # document, split across calls) give the same sums bit for bit, in `eval ppl` and `ppl`
    for b in ("1", "4", "5"):
        run([bin_, "eval", "ppl", "--model", model, "--corpus", W("c.jsonl"), "--label-field", "meta.lang",
             "--context", "5", "--batch", b, "--json", W(f"pb{b}.json"), "--quiet"])
    pb = [load(W(f"pb{b}.json"))["rows"] for b in ("1", "4", "5")]
    check(pb[0] == pb[1] == pb[2], "eval ppl differs across --batch 1/4/5")
    outs = []
    for b in ("1", "4", "5"):
        o = json.loads(run([bin_, "ppl", "--model", model, "--corpus", W("c.jsonl"), "--label-field", "meta.lang",
                            "--context", "5", "--batch", b, "--json", "--quiet"]).stdout)
        o.pop("tokens_per_s")
        outs.append(o)
    check(outs[0] == outs[1] == outs[2] and outs[0]["tokens"] > 20, f"ppl differs across --batch 1/4/5: {outs}")

    # --- errors: one line, exit 2
    for args, needle in [
        (["eval", "mmlu", "--model", model, "--data", W("nope")], "pass --data DIR"),
        (["eval", "mmlu", "--model", model, "--data", data, "--subjects", "astrology"], "unknown MMLU subject 'astrology'"),
        (["eval", "general", "--model", model, "--data", data, "--tasks", "boolq"], "unknown task 'boolq'"),
        (["eval", "general", "--model", model, "--data", data, "--shots", "99"], "--shots needs an integer in 0..32"),
        (["eval", "compare", W("m0.json"), W("p.json")], "compare results of one eval"),
        (["eval", "compare", W("m0.json"), W("mask.json")], "not a monet-probe eval result"),
        (["eval", "compare", W("m0.json"), W("m0m.json"), "--target", "astrology"], "no category/label/task row"),
    ]:
        p = run([bin_] + args, expect=2)
        lines = p.stderr.strip().splitlines()
        check(len(lines) >= 1 and lines[0].startswith("monet-probe: ") and needle in p.stderr,
              f"{args[:2]} error: {p.stderr!r}")
    print(f"e2e: general average {rows(g, 'average')['general']['value']:.4f} on the random model")


def threads(bin_, model, data, work):
    """OPENBLAS_NUM_THREADS=1 vs 2 on a model big enough for OpenBLAS to split its
    calls (before the eval pinned BLAS to one thread, ~1e-6 differences showed up)."""
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    out = []
    for th in ("1", "2"):
        f = os.path.join(work, f"t{th}.jsonl")
        run([bin_, "eval", "mmlu", "--model", model, "--data", data, "--subjects",
             "astronomy,college_biology,college_chemistry", "--limit", "4", "--shots", "2", "--items", f, "--quiet"],
            {"OPENBLAS_NUM_THREADS": th})
        out.append(open(f).read())
    check(out[0] == out[1] and out[0].count("\n") == 12, "scores differ between OPENBLAS_NUM_THREADS=1 and 2")
    f = os.path.join(work, "ppl.jsonl")
    with open(f, "w") as fh:
        for k in range(4):
            fh.write(json.dumps({"text": "The following are multiple choice questions " * (k + 3), "l": str(k % 2)}) + "\n")
    res = []
    for th in ("1", "2"):
        j = os.path.join(work, f"p{th}.json")
        run([bin_, "eval", "ppl", "--model", model, "--corpus", f, "--label-field", "l", "--json", j, "--quiet",
             "--batch", "1" if th == "1" else "3"], {"OPENBLAS_NUM_THREADS": th})
        res.append(load(j)["rows"])
    check(res[0] == res[1], "ppl differs between OPENBLAS_NUM_THREADS=1 / --batch 1 and 2 / --batch 3")
    print("threads: identical at 1 and 2 OpenBLAS threads")


def main():
    mode = sys.argv[1]
    if mode == "mcq":
        mcq(*sys.argv[2:6])
    elif mode == "threads":
        threads(*sys.argv[2:6])
    else:
        e2e(*sys.argv[2:6])
    if FAIL:
        print(f"{len(FAIL)} failures", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
