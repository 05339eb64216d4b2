#!/usr/bin/env bash
# bench/bench_gen.sh — generation throughput of the evaluations on the batched
# engine at --batch 1 vs --batch B (default 8), on a checkpoint (default
# data/monet-tiny, CPU), runs alternating between the two batch sizes:
#   MULTIPL-E   `eval multipl-e --lang py`: the first 20 problems x 4 samples at
#               T=0.8, 64 new tokens (tokens/s of its "generated:" line);
#   ToxiGen     `eval toxicity --prompts toxigen` (paper: greedy, 30 tokens), the
#               first 3 prompts of each of the 31 files;
#   RTP         `eval toxicity --prompts rtp`: 4 prompts per file x 25 samples of
#               20 tokens at T=1, top-p 0.9.
# (sizes: see the environment below). On the CPU a decoding step of B
# sequences reads each dense weight matrix once for the B rows
# (mp_forward_steps), so the gain grows with the model's weight bytes.
# Tokens/s = generated tokens / generation wall time (model load included).
# Each figure: min / median / max of R runs (default 3); the outputs must be
# byte-identical at both batch sizes (checked).
# usage: bench/bench_gen.sh [BIN] ; env BENCH_MODEL, BENCH_DATA, BENCH_BATCH,
#        BENCH_RUNS, BENCH_DEVICE (cpu), and the sizes BENCH_MPE_LIMIT (20),
#        BENCH_MPE_N (4), BENCH_TOXIGEN_LIMIT (3), BENCH_RTP_LIMIT (4),
#        BENCH_RTP_N (25) for larger models
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/monet-probe}
model=${BENCH_MODEL:-data/monet-tiny}
data=${BENCH_DATA:-../shared/data}
B=${BENCH_BATCH:-8}
runs=${BENCH_RUNS:-3}
dev=${BENCH_DEVICE:-cpu}
mpe_limit=${BENCH_MPE_LIMIT:-20} mpe_n=${BENCH_MPE_N:-4} tg_limit=${BENCH_TOXIGEN_LIMIT:-3}
rtp_limit=${BENCH_RTP_LIMIT:-4} rtp_n=${BENCH_RTP_N:-25}
[ -d "$data/multipl-e" ] && [ -d "$data/toxigen" ] && [ -d "$data/realtoxicityprompts" ] ||
  { echo "bench_gen: needs $data/multipl-e, toxigen, realtoxicityprompts"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/sb"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
printf 'import json, sys\nfor l in sys.stdin:\n    print(min(1.0, json.loads(l)["text"].count("e") / 10))\n' > "$tmp/scorer.py"
tox() { # NAME BATCH ARGS...: tokens/s from the stderr summary line
  local name=$1 b=$2; shift 2
  "$bin" eval toxicity --model "$model" --data "$data" --device "$dev" --batch "$b" \
      --scorer "cmd:python3 $tmp/scorer.py" --out "$tmp/$name$b.jsonl" "$@" 2> "$tmp/err" > /dev/null
  sed -n 's/.*generated in [0-9.]* s (\([0-9.]*\) tokens\/s.*/\1/p' "$tmp/err"
}
echo "== generation on the batched engine: $model on $dev, --batch 1 vs $B, $runs runs each, alternating (tokens/s) =="
for r in $(seq "$runs"); do
  for b in 1 "$B"; do
    TMPDIR=$tmp/sb "$bin" eval multipl-e --lang py --model "$model" --problems "$data/multipl-e/humaneval-py-reworded.jsonl" \
        --limit "$mpe_limit" --n "$mpe_n" --temperature 0.8 --max-tokens 64 --budget new --device "$dev" --batch "$b" --quiet \
        --out "$tmp/mpe$b.jsonl" > "$tmp/mpe.txt"
    echo "multipl-e $b $(sed -n 's/^generated: [0-9]* tokens, \([0-9.]*\) tokens\/s.*/\1/p' "$tmp/mpe.txt")" >> "$tmp/fig"
    echo "toxigen $b $(tox toxigen "$b" --prompts toxigen --limit "$tg_limit")" >> "$tmp/fig"
    echo "rtp $b $(tox rtp "$b" --prompts rtp --limit "$rtp_limit" --n "$rtp_n")" >> "$tmp/fig"
  done
done
for w in mpe toxigen rtp; do
  cmp -s "$tmp/${w}1.jsonl" "$tmp/$w$B.jsonl" || { echo "bench_gen: $w output differs between --batch 1 and $B"; exit 1; }
done
python3 - "$tmp/fig" "$B" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for what in ("multipl-e", "toxigen", "rtp"):
    med = {}
    for b in ("1", sys.argv[2]):
        v = sorted(float(x[2]) for x in rows if x[0] == what and x[1] == b)
        med[b] = statistics.median(v)
        print(f"{what:9s} --batch {b:>3s}  tokens/s  min {v[0]:9.1f}  median {med[b]:9.1f}  max {v[-1]:9.1f}")
    print(f"{what:9s} speed-up at --batch {sys.argv[2]} (median): {med[sys.argv[2]] / med['1']:.2f}x")
PY
