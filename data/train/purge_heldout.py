#!/usr/bin/python3
"""Unlearning on held-out code: purge each language's specialists, measure per-language
perplexity on text the model never saw (issue 21's acceptance measurement).

  /usr/bin/python3 data/train/purge_heldout.py --model data/monet-tiny \
      --multipl-e ../shared/data/multipl-e --out build/purge-heldout

Steps, all through the monet-probe binary:
  1. collect a store over the labelled probe slice (data/corpus/probe.jsonl, held out);
  2. per language L: `purge --store S --lang L` (the paper's 2x rule) -> mask;
  3. `eval ppl` on each held-out text, unmasked and under each mask;
  4. per held-out text and L: delta of L's perplexity vs the mean delta of the other five
     languages, in perplexity and in log-perplexity (mean NLL), with a paired bootstrap
     interval from `eval compare --target L`.
Held-out texts: MULTIPL-E (HumanEval prompt + tests, reworded, the six languages; never in
training, read from ../shared and not copied into the repository) and data/corpus/valid.jsonl
(held-out RosettaCode tasks and Debian files). Writes OUT/report.json and OUT/report.md.
"""
import argparse, functools, json, math, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probe_cli  # noqa: E402

run = functools.partial(probe_cli.run, "purge_heldout")   # stdout of a monet-probe command

LANGS = ["python", "cpp", "java", "javascript", "lua", "php"]
MULTIPL_E = {"py": "python", "cpp": "cpp", "java": "java", "js": "javascript", "lua": "lua",
             "php": "php"}


def multipl_e_corpus(src, dest):
    """One JSONL document per MULTIPL-E problem: its prompt followed by its tests."""
    n = 0
    with open(dest, "w", encoding="utf-8") as out:
        for short, lab in MULTIPL_E.items():
            path = os.path.join(src, f"humaneval-{short}-reworded.jsonl")
            for line in open(path, encoding="utf-8"):
                r = json.loads(line)
                text = r["prompt"].rstrip("\n") + "\n\n" + r["tests"].strip("\n") + "\n"
                out.write(json.dumps({"text": text, "lang": lab, "source": "multipl-e:" + r["name"]},
                                     ensure_ascii=False) + "\n")
                n += 1
    return n


def rows_by_label(path):
    d = json.load(open(path))
    out = {}
    for r in d["rows"]:
        if r["kind"] == "label":
            out[r["name"]] = {"ppl": r["value"], "nll": r["extra"], "n": r["n"]}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="build/monet-probe")
    ap.add_argument("--model", default="data/monet-tiny")
    ap.add_argument("--probe", default="data/corpus/probe.jsonl", help="corpus the specialists are found on")
    ap.add_argument("--valid", default="data/corpus/valid.jsonl")
    ap.add_argument("--multipl-e", default="", help="folder with humaneval-*-reworded.jsonl (../shared/data/multipl-e)")
    ap.add_argument("--threshold", default="2", help="purge skew threshold (paper: 2)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    store = os.path.join(a.out, "probe.db")
    run([a.bin, "collect", "--model", a.model, "--corpus", a.probe, "--label-field", "lang",
         "--label-field", "domain", "--out", store, "--force-new", "--quiet"])
    texts = {"valid": a.valid}
    if a.multipl_e:
        texts["multipl-e"] = os.path.join(a.out, "multipl-e.jsonl")
        multipl_e_corpus(a.multipl_e, texts["multipl-e"])
    masks = {}
    for lang in LANGS:
        masks[lang] = os.path.join(a.out, f"purge-{lang}.json")
        run([a.bin, "purge", "--store", store, "--lang", lang, "--threshold", a.threshold,
             "--out", masks[lang]])
        m = json.load(open(masks[lang]))
        masks[lang + ":line"] = f"{m['masked']} ({100 * m['ratio']:.2f}%; " + \
            " + ".join(str(len(g["experts"])) for g in m["groups"]) + ")"
    report = {"model": a.model, "probe": a.probe, "threshold": float(a.threshold), "texts": {}}
    for name, corpus in texts.items():
        base = os.path.join(a.out, f"ppl-{name}-base.json")
        run([a.bin, "eval", "ppl", "--model", a.model, "--corpus", corpus, "--label-field", "lang",
             "--json", base, "--quiet"])
        b = rows_by_label(base)
        res = {"base": b, "purged": {}}
        for lang in LANGS:
            mj = os.path.join(a.out, f"ppl-{name}-{lang}.json")
            run([a.bin, "eval", "ppl", "--model", a.model, "--corpus", corpus, "--label-field", "lang",
                 "--mask", masks[lang], "--json", mj, "--quiet"])
            p = rows_by_label(mj)
            d_ppl = {l: p[l]["ppl"] - b[l]["ppl"] for l in LANGS if l in b}
            d_nll = {l: p[l]["nll"] - b[l]["nll"] for l in LANGS if l in b}
            others = [l for l in LANGS if l != lang and l in b]
            mo_ppl = sum(d_ppl[l] for l in others) / len(others)
            mo_nll = sum(d_nll[l] for l in others) / len(others)
            cmp_txt = run([a.bin, "eval", "compare", base, mj, "--target", lang])
            res["purged"][lang] = {
                "mask": masks[lang + ":line"],
                "delta_ppl": d_ppl, "delta_log_ppl": d_nll,
                "target_delta_ppl": d_ppl[lang], "others_mean_delta_ppl": mo_ppl,
                "target_delta_log_ppl": d_nll[lang], "others_mean_delta_log_ppl": mo_nll,
                "ratio_ppl": d_ppl[lang] / mo_ppl if mo_ppl > 0 else math.inf,
                "ratio_log_ppl": d_nll[lang] / mo_nll if mo_nll > 0 else math.inf,
                "compare": cmp_txt}
        report["texts"][name] = res
    json.dump(report, open(os.path.join(a.out, "report.json"), "w"), indent=1)
    md = []
    for name, res in report["texts"].items():
        md.append(f"\nHeld-out text: {name} ({texts[name]})\n")
        md.append("| purged | mask | Δ ppl target | mean Δ ppl others | ratio | Δ log-ppl target | mean Δ log-ppl others | ratio |")
        md.append("|---|---|---:|---:|---:|---:|---:|---:|")
        for lang in LANGS:
            r = res["purged"][lang]
            md.append(f"| {lang} | {r['mask']} | {r['target_delta_ppl']:+.3f} | {r['others_mean_delta_ppl']:+.3f} | "
                      f"{r['ratio_ppl']:.1f}x | {r['target_delta_log_ppl']:+.4f} | {r['others_mean_delta_log_ppl']:+.4f} | "
                      f"{r['ratio_log_ppl']:.1f}x |")
    open(os.path.join(a.out, "report.md"), "w").write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
