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
echo "== masked forward (vertical; random experts of every group masked) =="
base=$(OPENBLAS_NUM_THREADS=$threads build/bench_forward "$tmp/vertical" "$T" 3)
for pct in 1 5 15; do
  $py - "$tmp/mask$pct.json" "$pct" <<'PY'
import json, random, sys
path, pct = sys.argv[1], float(sys.argv[2])
E, R = 128, 2
rng = random.Random(int(pct))
allx = [(r, i, j) for r in range(R) for i in range(E) for j in range(E)]
sel = rng.sample(allx, int(len(allx) * pct / 100))
json.dump({"format": "monet-probe-mask", "version": 1, "model": {"moe_experts": E, "n_groups": R},
           "groups": [{"group": r, "experts": [[i, j] for (g, i, j) in sel if g == r]} for r in range(R)]},
          open(path, "w"))
PY
  masked=$(OPENBLAS_NUM_THREADS=$threads build/bench_forward "$tmp/vertical" "$T" 3 "$tmp/mask$pct.json")
  $py - "$pct" "$base" "$masked" <<'PY'
import json, sys
a, b = json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"{sys.argv[1]:>3}% masked   {b['tokens_per_s']:9.1f} tok/s   unmasked {a['tokens_per_s']:9.1f} tok/s   masked/unmasked time {a['tokens_per_s']/b['tokens_per_s']:.3f}x")
PY
done
if [[ -x bench/bench_tokenizer.sh ]]; then
  echo "== tokenizer =="
  bench/bench_tokenizer.sh "$bin"
fi
if [[ -x bench/bench_collect.sh ]]; then echo "== collect =="; bench/bench_collect.sh "$bin"; fi
if [[ -x bench/bench_batch.sh ]]; then echo "== batched engine =="; bench/bench_batch.sh "$bin"; fi
