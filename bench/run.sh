#!/usr/bin/env bash
# bench/run.sh — `make bench`: figures measured in one invocation, each next to
# its baseline from the same run:
#   1. CPU prefill tokens/s of monet-probe vs the same math (official einsum
#      formulation) in Debian's python3-torch, CPU float32, same thread count;
#   2. tokenizer throughput vs spm_encode (bench/bench_tokenizer.sh).
# Medium random model: d=512, 8 layers, 8 heads, E=128, Hm=4, m=16, k=8, G=4, V=32000.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/monet-probe}
py=/usr/bin/python3
T=${BENCH_TOKENS:-512}
threads=${BENCH_THREADS:-$(nproc)}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "== CPU prefill, ${T} tokens, ${threads} threads ($(nproc) cores) =="
for dec in vertical horizontal; do
  $py tests/ref/make_checkpoint.py --out "$tmp/$dec" --decompose $dec --dtype BF16 --layers 8 --groups 4 \
      --hidden 512 --heads 8 --kv-heads 8 --experts 128 --moe-heads 4 --moe-dim 16 --topk 8 --vocab 32000 \
      --seed 1 --quiet
  ours=$(OPENBLAS_NUM_THREADS=$threads build/bench_forward "$tmp/$dec" "$T" 3)
  theirs=$($py tests/ref/torch_bench.py --tokens "$T" --threads "$threads" --decompose $dec --repeats 3)
  $py - "$dec" "$ours" "$theirs" <<'PY'
import json, sys
dec, a, b = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3].strip().splitlines()[-1])
print(f"{dec:10s} monet-probe {a['tokens_per_s']:9.1f} tok/s   torch einsum {b['tokens_per_s']:9.1f} tok/s   ratio {a['tokens_per_s']/b['tokens_per_s']:.2f}x   (load+bf16->f32 {a['load_s']:.2f}s, {a['params']/1e6:.1f}M params)")
PY
done
if [[ -x bench/bench_tokenizer.sh ]]; then
  echo "== tokenizer =="
  bench/bench_tokenizer.sh "$bin"
fi
