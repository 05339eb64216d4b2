#!/usr/bin/env bash
# scripts/demo.sh — `make demo`: the main job on the embedded default model
# (data/monet-tiny, a Monet-VD trained here) and its labelled held-out corpus.
# Today: describe the model, show which experts a Python line and an English
# line route to, generate, and per-language perplexity on the held-out slice.
# (collect / top-contexts / purge join this script when those commands land.)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/monet-probe}
model=data/monet-tiny
corpus=data/corpus/valid.jsonl
if [[ ! -f $model/model.safetensors ]]; then
  echo "monet-probe demo: $model/model.safetensors is missing (see data/README.md to retrain it)" >&2
  exit 1
fi
step() { printf '\n\033[1m== %s ==\033[0m\n' "$*"; }
step "monet-probe info --model $model"
$bin info --model $model
step "monet-probe route: the heaviest experts of each token of a Python line (group 0)"
$bin route --model $model --text 'def fib(n): return n if n < 2 else fib(n-1) + fib(n-2)' --top 3 | head -24
step "monet-probe generate --model $model --prompt 'import os' --temperature 0"
$bin generate --model $model --prompt 'import os' --max-tokens 40 --temperature 0
step "monet-probe ppl --model $model --corpus $corpus --label-field lang (held-out, per language)"
$bin ppl --model $model --corpus $corpus --label-field lang --context 256
