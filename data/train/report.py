#!/usr/bin/python3
"""Print the markdown result tables of data/README.md from eval_results.json and train_summary.json."""
import json

R = json.load(open("data/train/eval_results.json"))
S = json.load(open("data/train/train_summary.json"))
LABELS = ["python", "cpp", "java", "javascript", "lua", "php", "english", "toxic", "neutral"]

print(f"- tokens seen: {S['tokens_seen']:,} ({S['steps']} steps x {S['batch']} x {S['ctx']}); "
      f"wall time {S['wall_seconds'] / 60:.1f} min on {S['threads']} CPU thread; params {S['params']:,}")
print(f"- final train LM loss (EMA over steps): {S['final_train_lm_loss_ema']:.3f}; "
      f"final held-out loss (eval mode, fixed 8 windows/label, mean of labels): {S['final_val_loss_eval_mode']['mean']:.3f}")
print()
print("| label | docs | tokens | model loss | model ppl | unigram ppl (train-fit) | unigram ppl (oracle, fit on these tokens) |")
print("|---|---:|---:|---:|---:|---:|---:|")
for l in LABELS:
    h = R["heldout"][l]
    print(f"| {l} | {h['docs']} | {h['tokens']:,} | {h['model_loss']:.3f} | {h['model_ppl']:.1f} | "
          f"{h['unigram_train_ppl']:.1f} | {h['unigram_oracle_ppl']:.1f} |")
print()
print("Eval-mode active experts per router head (running BatchNorm stats, threshold Phi^-1(1-k/E)):")
print()
print("| group | factor | mean active / head | share with exactly 1 | share with >= 2k | max |")
print("|---|---|---:|---:|---:|---:|")
for a in R["eval_mode_active"]:
    print(f"| {a['group']} | {a['factor']} | {a['mean_active_per_head']:.2f} | {a['frac_exactly_1']:.3f} | {a['frac_ge_2k']:.3f} | {a['max']} |")
print()
print("Train-mode (batch statistics) mean active per head [group][factor]:",
      [[round(x, 2) for x in g] for g in R["train_mode_mean_active_per_head"]])
print()
for key, title in (("specialists_all9", "all 9 labels"), ("specialists_all9_floor", "all 9 labels, used experts only"),
                   ("specialists_code6", "6 programming languages"), ("specialists_code6_floor", "6 programming languages, used experts only"),
                   ("specialists_toxic_vs_neutral", "toxic vs neutral"), ("specialists_toxic_vs_neutral_floor", "toxic vs neutral, used experts only")):
    labs = list(R[key][0]["specialists"].keys())
    print(f"Specialists ({title}):")
    print()
    print("| group | " + " | ".join(labs) + " | total | share of E^2 |")
    print("|---|" + "---:|" * (len(labs) + 2))
    for g in R[key]:
        print(f"| {g['group']} | " + " | ".join(str(g["specialists"][l]) for l in labs) + f" | {g['total']} | {g['share_pct']}% |")
    print()
print("Top experts per label (used experts only; ratio = mean score on the label / highest other label's):")
print()
print("| label | group 0 | group 1 |")
print("|---|---|---|")
for l in LABELS:
    cells = []
    for g in R["specialists_all9_floor"]:
        cells.append(", ".join(f"{e['expert']} ({e['ratio_vs_next']}x, {e['mean_score']:.3f})" for e in g["top_experts"][l][:3]))
    print(f"| {l} | " + " | ".join(cells) + " |")
print()
print("Routing entropy (normalized, per label, per group):", {k: [round(x, 3) for x in v] for k, v in R["routing_entropy_norm"].items()})
print("VD vs dense check:", R["vd_dense_check_maxabs"])
print("probe tokens:", R["probe_tokens"])
print("permutation baseline (labels shuffled across probe windows, 3 draws; totals per group):",
      R["specialists_permutation_baseline"])
