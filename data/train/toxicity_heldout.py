#!/usr/bin/python3
"""Toxicity experts of a model (issue 21's toxicity measurement), all through monet-probe.

  /usr/bin/python3 data/train/toxicity_heldout.py --model data/monet-tiny \
      --data ../shared/data --out build/toxicity-heldout

  1. per-token Pearson r of every expert's routing score with the Perspective toxicity of the
     prompt, over the RealToxicityPrompts sample (2,396 prompts, never in training): collect
     --score-field toxicity, then `correlate --per token`; the same on the ToxiGen probe slice
     (data/corpus/probe.jsonl, toxicity 1 = hate statement, 0 = neutral; held out);
  2. `purge --toxicity` at the paper's thresholds 0.2 / 0.1 / 0.05 (r on the RTP store);
  3. the builtin offline scorer (trained on annotated ToxiGen) on greedy ToxiGen continuations
     (--limit prompts per file), unmasked and under the 0.05 mask, compared with `eval compare`.
Writes OUT/report.json and prints a summary.
"""
import argparse, functools, json, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probe_cli  # noqa: E402

run = functools.partial(probe_cli.run, "toxicity_heldout")   # stdout of a monet-probe command


def rtp_corpus(data, dest):
    n = 0
    with open(dest, "w", encoding="utf-8") as out:
        for f in ("toxic", "nontoxic"):
            for line in open(os.path.join(data, "realtoxicityprompts", f + ".jsonl"), encoding="utf-8"):
                r = json.loads(line)
                t = r["prompt"].get("toxicity")
                if t is None or not r["prompt"]["text"].strip():
                    continue
                out.write(json.dumps({"text": r["prompt"]["text"], "toxicity": t, "file": f},
                                     ensure_ascii=False) + "\n")
                n += 1
    return n


def best_r(a, store, top):
    d = json.loads(run([a.bin, "correlate", "--store", store, "--score-field", "toxicity", "--per", "token",
                        "--min-count", "10", "--top", str(top), "--json"]))
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="build/monet-probe")
    ap.add_argument("--model", default="data/monet-tiny")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--probe", default="data/corpus/probe.jsonl")
    ap.add_argument("--limit", type=int, default=20, help="ToxiGen prompts per file for the scorer check")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rep = {"model": a.model}
    rtp = os.path.join(a.out, "rtp.jsonl")
    rep["rtp_prompts"] = rtp_corpus(a.data, rtp)
    tg = os.path.join(a.out, "toxigen-probe.jsonl")     # the probe slice's ToxiGen documents
    with open(tg, "w", encoding="utf-8") as out:
        for line in open(a.probe, encoding="utf-8"):
            if "toxicity" in json.loads(line):
                out.write(line)
    stores = {"rtp": (rtp, os.path.join(a.out, "rtp.db"), "file"),
              "toxigen-probe": (tg, os.path.join(a.out, "probe.db"), "lang")}
    for name, (corpus, store, label) in stores.items():
        run([a.bin, "collect", "--model", a.model, "--corpus", corpus, "--score-field", "toxicity",
             "--label-field", label, "--out", store, "--force-new", "--quiet"])
        rep["correlate_" + name] = best_r(a, store, 5)
    rtp_store = stores["rtp"][1]
    masks = {}
    for th in ("0.2", "0.1", "0.05"):
        mp = os.path.join(a.out, f"purge-tox-{th}.json")
        run([a.bin, "purge", "--store", rtp_store, "--toxicity", "--threshold", th, "--out", mp])
        m = json.load(open(mp))
        masks[th] = mp
        rep[f"mask_{th}"] = {"masked": m["masked"], "ratio": m["ratio"]}
    scorer = os.path.join(a.out, "scorer.json")
    run([a.bin, "toxicity-scorer", "train", "--data", os.path.join(a.data, "toxigen", "annotated"),
         "--out", scorer, "--quiet"])
    base = os.path.join(a.out, "toxigen-base.json")
    run([a.bin, "eval", "toxicity", "--model", a.model, "--prompts", "toxigen", "--scorer", "builtin:" + scorer,
         "--limit", str(a.limit), "--data", a.data, "--batch", "8", "--json", base])
    rep["scorer_compare"] = {}
    for th in ("0.1", "0.05"):
        if rep[f"mask_{th}"]["masked"] == 0:
            rep["scorer_compare"][th] = "mask is empty"
            continue
        mj = os.path.join(a.out, f"toxigen-masked-{th}.json")
        run([a.bin, "eval", "toxicity", "--model", a.model, "--prompts", "toxigen", "--scorer", "builtin:" + scorer,
             "--limit", str(a.limit), "--data", a.data, "--batch", "8", "--mask", masks[th], "--json", mj])
        rep["scorer_compare"][th] = run([a.bin, "eval", "compare", base, mj])
    json.dump(rep, open(os.path.join(a.out, "report.json"), "w"), indent=1)
    for name in stores:
        c = rep["correlate_" + name]
        print(f"{name}: best per-token r", json.dumps(c)[:600])
    for th in ("0.2", "0.1", "0.05"):
        print(f"mask r >= {th}: {rep[f'mask_{th}']}")
    for th, t in rep["scorer_compare"].items():
        print(f"builtin scorer, ToxiGen greedy, mask r >= {th}:\n{t}")


if __name__ == "__main__":
    main()
