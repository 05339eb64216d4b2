#!/usr/bin/env bash
# scripts/demo.sh — `make demo`: the main job on the embedded default model
# (data/monet-tiny, a Monet-VD trained here; data/README.md) and its labelled
# corpora (data/corpus/): collect a labelled probe slice into a store, find the
# language specialists, read the top contexts of the most specialized expert of
# the demo language, purge that language and compare per-language held-out
# perplexity before and after (Δ target vs Δ others, the paper's Table 3 shape).
# The demo language is the one whose purge shows most clearly on held-out text
# (data/README.md, "Unlearning on held-out text"); MONET_DEMO_LANG overrides it.
# Outputs go to build/demo/. Runs in about a minute on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/monet-probe}
py=/usr/bin/python3
model=${MONET_DEMO_MODEL:-data/monet-tiny}
probe=data/corpus/probe.jsonl
valid=data/corpus/valid.jsonl
lang=${MONET_DEMO_LANG:-python}
out=build/demo
if [[ ! -f $model/model.safetensors ]]; then
  echo "monet-probe demo: $model/model.safetensors is missing (see data/README.md to retrain it)" >&2
  exit 1
fi
mkdir -p "$out"
step() { printf '\n\033[1m== %s ==\033[0m\n' "$*"; }
t0=$(date +%s)

step "1. the model: monet-probe info --model $model"
$bin info --model $model

step "2. collect top-activating contexts over the labelled probe slice ($probe)"
$bin collect --model $model --corpus $probe --label-field lang --label-field domain --out "$out/probe.db" --force-new

step "3. language specialists per router group (paper's rule: p(lang) >= 2 x p(second))"
$bin specialize --store "$out/probe.db" --label-field lang --top 3
# --ratio 1 ranks every expert under its favourite language (by skew): the demo reads the
# most $lang-skewed one even if the model had no 2x specialist
$bin specialize --store "$out/probe.db" --label-field lang --top 1 --ratio 1 --json > "$out/$lang-skew.json"

step "4. the most $lang-specialized expert and its top contexts"
expert=$($py - "$out/$lang-skew.json" "$lang" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
want = sys.argv[2]
lab = next((l for l in d["labels"] if l["label"] == want), None)
if not lab or not lab["top"]:
    sys.exit(f"monet-probe demo: no expert prefers {want}")
e = lab["top"][0]
skew = f"only {want}" if e["skew"] is None else f'{e["skew"]:.2f}x'
print(f'{e["group"]}:{e["i"]},{e["j"]}', file=sys.stdout)
print(f'most {want}-skewed expert: group {e["group"]}, expert {e["i"]},{e["j"]} (skew {skew})', file=sys.stderr)
PY
)
echo "expert $expert"
$bin top-contexts --store "$out/probe.db" --expert "$expert" --contexts 5

step "5. purge $lang: mask every $lang specialist"
$bin purge --store "$out/probe.db" --lang "$lang" --out "$out/purge-$lang.json"

step "6. held-out perplexity per language, before and after the purge"
echo "held-out text: $valid -- RosettaCode tasks held out of training in all six languages at once,"
echo "Debian / SDK source files and AG News rows held out by file / row (never trained on; data/README.md)"
$bin eval ppl --model $model --corpus $valid --label-field lang --json "$out/ppl-base.json" --quiet
$bin eval ppl --model $model --corpus $valid --label-field lang --mask "$out/purge-$lang.json" \
    --json "$out/ppl-purged.json" --quiet
$bin eval compare "$out/ppl-base.json" "$out/ppl-purged.json" --target "$lang"

echo
echo "demo finished in $(( $(date +%s) - t0 ))s; store, specialists, mask and results in $out/"
