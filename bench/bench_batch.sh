#!/usr/bin/env bash
# bench/bench_batch.sh — eval throughput of the batched engine at --batch 1 vs
# --batch B (default 16) on a checkpoint (default data/monet-tiny, CPU):
#   MMLU questions/s (`eval mmlu`, 0-shot, the first N questions of a few
#   subjects) and perplexity tokens/s (`ppl --json` over AG News test.csv).
# Each figure: min / median / max of R runs (default 3). The scores are
# bit-identical at every --batch (tests/eval_mc); this measures speed only.
# usage: bench/bench_batch.sh [BIN] ; env BENCH_MODEL, BENCH_DATA, BENCH_BATCH,
#        BENCH_RUNS, BENCH_DEVICE (cpu), BENCH_LIMIT (questions per subject, 40),
#        BENCH_DOCS (ppl documents, 400)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/monet-probe}
model=${BENCH_MODEL:-data/monet-tiny}
data=${BENCH_DATA:-../shared/data}
B=${BENCH_BATCH:-16}
runs=${BENCH_RUNS:-3}
dev=${BENCH_DEVICE:-cpu}
limit=${BENCH_LIMIT:-40}
docs=${BENCH_DOCS:-400}
subjects=anatomy,astronomy,college_biology,high_school_geography,marketing
[ -d "$data/mmlu" ] && [ -f "$data/agnews/test.csv" ] || { echo "bench_batch: needs $data/mmlu and $data/agnews"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
echo "== batched engine: $model on $dev, --batch 1 vs $B, $runs runs each (min / median / max) =="
for b in 1 "$B"; do
  for r in $(seq "$runs"); do
    t0=$(date +%s.%N)
    "$bin" eval mmlu --model "$model" --data "$data" --subjects "$subjects" --limit "$limit" --batch "$b" \
        --device "$dev" --items "$tmp/items$b.jsonl" --quiet > /dev/null
    t1=$(date +%s.%N)
    n=$(wc -l < "$tmp/items$b.jsonl")
    echo "mmlu $b $(echo "$n / ($t1 - $t0)" | bc -l)" >> "$tmp/fig"
    "$bin" ppl --model "$model" --corpus "$data/agnews/test.csv" --text-field description --max-docs "$docs" \
        --batch "$b" --device "$dev" --json --quiet > "$tmp/ppl$b.json"
    echo "ppl $b $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens_per_s"])' "$tmp/ppl$b.json")" >> "$tmp/fig"
  done
done
cmp -s "$tmp/items1.jsonl" "$tmp/items$B.jsonl" || { echo "bench_batch: MMLU items differ between --batch 1 and $B"; exit 1; }
python3 - "$tmp/fig" "$B" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for what, unit in (("mmlu", "questions/s"), ("ppl", "tokens/s")):
    med = {}
    for b in ("1", sys.argv[2]):
        v = sorted(float(x[2]) for x in rows if x[0] == what and x[1] == b)
        med[b] = statistics.median(v)
        print(f"{what:5s} --batch {b:>3s}  {unit:12s} min {v[0]:10.1f}  median {med[b]:10.1f}  max {v[-1]:10.1f}")
    print(f"{what:5s} speed-up at --batch {sys.argv[2]} (median): {med[sys.argv[2]] / med['1']:.2f}x")
PY
