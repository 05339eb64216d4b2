#!/usr/bin/env bash
# bench/run.sh — `make bench`: every figure measured in this one invocation,
# next to its baseline from the same run, as min / median / max over REPS
# repetitions after a warm-up (the machine may be shared: compare medians,
# look at the spread):
#   1. CPU prefill tok/s, sparse expert compute vs MP_MOE=dense (all experts,
#      the einsum formulation's work), unmasked and masked (5% of the experts
#      of every group) alternating in one process (bench/bench_forward.c);
#      decode tok/s (single-token steps), the first prefill of a fresh state,
#      model load; sparse prefill and decode also with every weight matrix
#      widened to float32 at load (MP_WEIGHTS=f32, the previous behaviour)
#      next to the default (bf16 read in place from the checkpoint mapping);
#   2. the same prefill in PyTorch (bench/torch_cpu_bench.py: the same bf16
#      checkpoint widened to float32, same ids, last-position logits,
#      OMP_WAIT_POLICY=PASSIVE, the same thread count), two formulations
#      alternating in one process: the official einsum one and a fused one
#      (dense GEMMs, heads-first sparse mixture, exact sparse masking; its
#      logits checked against einsum's first, one line), or a line saying
#      python3-torch is missing;
#   3. the same at the public 1.4B shape, and collect vs the forward there
#      (BENCH_LARGE=0 skips it);
#   4. tokenizer throughput vs spm_encode; collect vs forward; eval throughput
#      at --batch 1 vs B (bench_batch.sh: MMLU, ppl; bench_gen.sh: generation).
# Medium random model (bench/make_bench_checkpoint.py --shape medium): d=512,
# 8 layers, 8 heads, E=128, Hm=4, m=16, k=8, G=4, vocab 32000, bf16.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/monet-probe}
bdir=$(dirname "$bin")
py=/usr/bin/python3
T=${BENCH_TOKENS:-256}
REPS=${BENCH_REPS:-3}
threads=${BENCH_THREADS:-$(nproc)}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=PASSIVE
have_torch=1
$py -c 'import torch' 2>/dev/null || have_torch=0
echo "== CPU forward, ${T}-token prefill, ${threads} threads ($(nproc) cores), min/median/max of ${REPS} runs =="
[[ $have_torch == 1 ]] || echo "python3-torch is not installed: the PyTorch baseline is skipped (C-side figures only)"
for dec in vertical horizontal; do
  $py bench/make_bench_checkpoint.py --out "$tmp/$dec" --shape medium --decompose $dec 2>/dev/null
  $py - "$tmp/mask.json" <<'PY'
import json, random, sys
E, R, pct = 128, 2, 5.0
rng = random.Random(5)
allx = [(r, i, j) for r in range(R) for i in range(E) for j in range(E)]
sel = rng.sample(allx, int(len(allx) * pct / 100))
json.dump({"format": "monet-probe-mask", "version": 1, "model": {"moe_experts": E, "n_groups": R},
           "groups": [{"group": r, "experts": [[i, j] for (g, i, j) in sel if g == r]} for r in range(R)]},
          open(sys.argv[1], "w"))
PY
  "$bdir/bench_forward" "$tmp/$dec" --tokens "$T" --reps "$REPS" --mask "$tmp/mask.json" --decode 32 \
      --prompt 32 --f32-weights > "$tmp/ours.json"
  : > "$tmp/theirs.json"
  if [[ $have_torch == 1 ]]; then
    if $py bench/torch_cpu_bench.py --check --model "$tmp/$dec" --mask "$tmp/mask.json" --threads "$threads"; then
      $py bench/torch_cpu_bench.py --model "$tmp/$dec" --tokens "$T" --threads "$threads" --reps "$REPS" \
          --mask "$tmp/mask.json" > "$tmp/theirs.json" || echo "torch_cpu_bench.py failed"
    else
      echo "the torch rows are left out: fused and einsum disagree"
    fi
  fi
  $py - "$dec" "$tmp/ours.json" "$tmp/theirs.json" "$have_torch" <<'PY'
import json, os, sys
dec, ours, theirs, have_torch = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3], sys.argv[4] == "1"
txt = open(theirs).read().strip() if have_torch and os.path.exists(theirs) else ""
t = json.loads(txt) if txt.startswith("{") else None
if txt and not t:
    print(f"torch: {txt}")
def f(s):
    return f"{s['min']:8.1f} {s['median']:8.1f} {s['max']:8.1f}" if s else "       -        -        -"
print(f"-- {dec}: {ours['params'] / 1e6:.1f}M params, tok/s (min median max)")
rows = [("prefill sparse", ours["prefill_sparse_tok_s"]), ("prefill dense (MP_MOE=dense)", ours["prefill_dense_tok_s"]),
        ("prefill sparse, 5% masked", ours["prefill_sparse_masked_tok_s"]),
        ("prefill dense, 5% masked", ours["prefill_dense_masked_tok_s"])]
if t:
    rows += [("torch einsum", t["prefill_einsum_unmasked_tok_s"]), ("torch fused", t["prefill_fused_unmasked_tok_s"]),
             ("torch einsum, 5% masked (E x E)", t["prefill_einsum_masked_tok_s"]),
             ("torch fused, 5% masked (sparse)", t["prefill_fused_masked_tok_s"])]
rows += [("prefill sparse, f32 weights", ours["prefill_sparse_f32w_tok_s"]),
         ("decode sparse", ours["decode_sparse_tok_s"]), ("decode dense", ours["decode_dense_tok_s"]),
         ("decode sparse, f32 weights", ours["decode_sparse_f32w_tok_s"]),
         ("first prefill of a fresh state", ours["first_prefill_tok_s"])]
for name, s in rows:
    print(f"  {name:34s} {f(s)}")
med = lambda s: s["median"]
print(f"  bf16 in place / f32 weights (medians): prefill {med(ours['prefill_sparse_tok_s']) / med(ours['prefill_sparse_f32w_tok_s']):.2f}x,"
      f" decode {med(ours['decode_sparse_tok_s']) / med(ours['decode_sparse_f32w_tok_s']):.2f}x")
print(f"  sparse/dense prefill (medians) {med(ours['prefill_sparse_tok_s']) / med(ours['prefill_dense_tok_s']):.2f}x,"
      f" masked/unmasked time (sparse) {med(ours['prefill_sparse_tok_s']) / med(ours['prefill_sparse_masked_tok_s']):.3f}x")
if t:
    r = lambda a, b: f"{med(ours[a]) / med(t[b]):.2f}x"
    print(f"  sparse/torch einsum {r('prefill_sparse_tok_s', 'prefill_einsum_unmasked_tok_s')},"
          f" sparse/torch fused {r('prefill_sparse_tok_s', 'prefill_fused_unmasked_tok_s')};"
          f" 5% masked: sparse/torch einsum {r('prefill_sparse_masked_tok_s', 'prefill_einsum_masked_tok_s')},"
          f" sparse/torch fused {r('prefill_sparse_masked_tok_s', 'prefill_fused_masked_tok_s')} (medians)")
print(f"  load ({ours['weights']}) {ours['load_s']:.3f} s")
PY
done
# 3. the public 1.4B VD shape (d=2048, 24 layers, E=512, Hm=8, m=16, k=8, G=4): random bf16
# weights written on the fly (2.9 GB on disk), deleted after; mapped in place here, while the
# MP_WEIGHTS=f32 comparison holds a 5.8 GB float32 copy, and torch one too, one after the other
# (torch_cpu_bench.py widens tensor by tensor, holds no second copy, and says "skipped" when
# MemAvailable is short of 4 bytes a parameter + activations). BENCH_LARGE=0 skips it (it takes
# several minutes on 2 cores).
if [[ ${BENCH_LARGE:-1} == 1 ]]; then
  TL=${BENCH_LARGE_TOKENS:-512}
  free_disk=$(df -Pk "$tmp" | awk 'NR == 2 {print $4}')
  free_mem=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
  echo "== 1.4B shape (public Monet-VD 1.4B), ${TL}-token prefill, ${threads} threads, min/median/max of ${REPS} =="
  if (( free_disk < 4500000 || free_mem < 8000000 )); then
    echo "skipped: needs 4.5 GB free in $tmp and 8 GB of available memory (have $((free_disk / 1024)) MB, $((free_mem / 1024)) MB)"
  else
    $py bench/make_bench_checkpoint.py --out "$tmp/large" --shape 1.4b --decompose vertical
    "$bdir/bench_forward" "$tmp/large" --load --reps "$REPS" > "$tmp/large_load.json"
    "$bdir/bench_forward" "$tmp/large" --tokens "$TL" --reps "$REPS" --decode 8 --prompt 32 --f32-weights \
        > "$tmp/large.json"
    : > "$tmp/large_torch.json"
    if [[ $have_torch == 1 ]]; then
      $py bench/torch_cpu_bench.py --model "$tmp/large" --tokens "$TL" --threads "$threads" --reps "$REPS" \
          > "$tmp/large_torch.json" || echo "torch at the 1.4B shape failed"
    fi
    $py - "$tmp/large.json" "$tmp/large_load.json" "$tmp/large_torch.json" <<'PY'
import json, os, sys
ours, load = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
txt = open(sys.argv[3]).read().strip()
t = json.loads(txt) if txt.startswith("{") else None
if txt and not t:
    print(f"torch: {txt}")
f = lambda s: f"{s['min']:8.2f} {s['median']:8.2f} {s['max']:8.2f}" if s else "       -        -        -"
print(f"-- {ours['params'] / 1e9:.2f}B params, tok/s (min median max)")
rows = [("prefill sparse", ours["prefill_sparse_tok_s"]), ("prefill dense (MP_MOE=dense)", ours["prefill_dense_tok_s"])]
if t:
    rows += [("torch einsum", t["prefill_einsum_unmasked_tok_s"]), ("torch fused", t["prefill_fused_unmasked_tok_s"])]
rows += [("prefill sparse, f32 weights", ours["prefill_sparse_f32w_tok_s"]),
         ("decode sparse", ours["decode_sparse_tok_s"]), ("decode dense", ours["decode_dense_tok_s"]),
         ("decode sparse, f32 weights", ours["decode_sparse_f32w_tok_s"]),
         ("first prefill of a fresh state", ours["first_prefill_tok_s"])]
for name, s in rows:
    print(f"  {name:34s} {f(s)}")
med = lambda s: s["median"]
print(f"  sparse/dense prefill (medians) {med(ours['prefill_sparse_tok_s']) / med(ours['prefill_dense_tok_s']):.2f}x"
      + (f", sparse/torch einsum {med(ours['prefill_sparse_tok_s']) / med(t['prefill_einsum_unmasked_tok_s']):.2f}x"
         f", sparse/torch fused {med(ours['prefill_sparse_tok_s']) / med(t['prefill_fused_unmasked_tok_s']):.2f}x"
         if t else ""))
print(f"  bf16 in place / f32 weights (medians): prefill {med(ours['prefill_sparse_tok_s']) / med(ours['prefill_sparse_f32w_tok_s']):.2f}x,"
      f" decode {med(ours['decode_sparse_tok_s']) / med(ours['decode_sparse_f32w_tok_s']):.2f}x")
print(f"  seconds (min median max), reading the files alone (evicted): {f(load['read_files_cold_s'])} "
      f"({load['checkpoint_bytes'] / 1e9:.2f} GB)")
for key, name in (("", "bf16 in place"), ("f32w_", "f32 weights")):
    print(f"  {name:14s} load: cached {f(load[key + 'load_warm_s'])}, evicted {f(load[key + 'load_cold_s'])}")
    print(f"  {name:14s} load + first forward: cached {f(load[key + 'first_forward_warm_s'])}, "
          f"evicted {f(load[key + 'first_forward_cold_s'])}")
PY
    # collect vs the forward at this shape (6 groups x 262,144 experts): BENCH_LARGE_COLLECT_TOKENS
    # (2048: four 512-token windows) per round, BENCH_REPS rounds
    tokenizer=$(cd .. && pwd)/shared/data/llama2-tokenizer/tokenizer.model
    if [[ -f $tokenizer ]]; then
      cp "$tokenizer" "$tmp/large/tokenizer.model"
      BENCH_COLLECT_MODEL="$tmp/large" BENCH_COLLECT_TOKENS=${BENCH_LARGE_COLLECT_TOKENS:-2048} BENCH_COLLECT_FWD_REPS=1 \
          bench/bench_collect.sh "$bin" | grep -v "^1.4B"
    else
      echo "collect at the 1.4B shape skipped: $tokenizer not found"
    fi
    rm -rf "$tmp/large"
  fi
fi
if [[ -x bench/bench_tokenizer.sh ]]; then
  echo "== tokenizer =="
  bench/bench_tokenizer.sh "$bin"
fi
if [[ -x bench/bench_collect.sh ]]; then
  # short: 16,384 tokens, one commit (every hit is new) at the very end, which nothing can
  # overlap: start-up cost. long: 65,536 tokens, five commits overlapping the forward:
  # the throughput of a real collect (docs/store.md)
  echo "== collect (short run) =="; bench/bench_collect.sh "$bin"
  echo "== collect (long run) =="; BENCH_COLLECT_TOKENS=65536 bench/bench_collect.sh "$bin" | grep -v "^1.4B"
fi
if [[ -x bench/bench_batch.sh ]]; then echo "== batched engine =="; bench/bench_batch.sh "$bin"; fi
if [[ -x bench/bench_gen.sh ]]; then echo "== generation (eval multipl-e / toxicity) =="; bench/bench_gen.sh "$bin"; fi
