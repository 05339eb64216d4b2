#!/bin/sh
# bench/bench_tokenizer.sh — tokens/s of `monet-probe tokenize --ids -` vs
# sentencepiece's spm_encode on the same input (~8 MB: AG News + MMLU test
# CSVs + RosettaCode solutions, built in a temp dir from ../shared/data), LLaMA-2
# tokenizer. Checks the two id outputs are identical, prints the ratio.
#
# usage: bench/bench_tokenizer.sh [MONET_PROBE_BINARY]   (default: $MP_BIN or build/monet-probe)
# env:   MP_SHARED (default: <repo>/../shared), MP_BENCH_RUNS (best of N, default 2)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${MP_BIN:-$here/build/monet-probe}}
shared=${MP_SHARED:-$here/../shared}
runs=${MP_BENCH_RUNS:-2}
model=$shared/data/llama2-tokenizer/tokenizer.model
py=/usr/bin/python3
[ -x "$py" ] || py=python3

if ! command -v spm_encode >/dev/null 2>&1; then
    echo "bench_tokenizer: skipped: spm_encode not installed (apt-get install sentencepiece)"
    exit 0
fi
[ -x "$bin" ] || { echo "bench_tokenizer: $bin: not an executable (build first)" >&2; exit 2; }
[ -f "$model" ] || { echo "bench_tokenizer: $model: missing" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
cat "$shared"/data/agnews/test.csv "$shared"/data/mmlu/test/*.csv > "$tmp/input.txt"
"$py" -c '
import json, sys
with open(sys.argv[1], encoding="utf-8") as f, open(sys.argv[2], "a", encoding="utf-8") as out:
    for line in f:
        out.write(json.loads(line)["code"])
' "$shared/data/rosettacode/solutions.jsonl" "$tmp/input.txt"

now() { date +%s.%N; }
best() { # best wall time of $runs runs of: "$@" < input > $out
    b=
    i=0
    while [ $i -lt "$runs" ]; do
        t0=$(now)
        "$@" < "$tmp/input.txt" > "$out"
        t1=$(now)
        b=$(awk -v a="$t0" -v z="$t1" -v b="$b" 'BEGIN { d = z - a; if (b == "" || d < b) print d; else print b }')
        i=$((i + 1))
    done
    echo "$b"
}
out=$tmp/spm.ids; t_spm=$(best spm_encode --model="$model" --output_format=id)
out=$tmp/ours.ids; t_ours=$(best "$bin" tokenize --tokenizer "$model" --ids -)
if ! cmp -s "$tmp/spm.ids" "$tmp/ours.ids"; then
    echo "bench_tokenizer: FAIL: ids differ from spm_encode" >&2
    exit 1
fi
bytes=$(wc -c < "$tmp/input.txt")
lines=$(wc -l < "$tmp/input.txt")
tokens=$(wc -w < "$tmp/ours.ids")
awk -v b="$bytes" -v l="$lines" -v n="$tokens" -v s="$t_spm" -v o="$t_ours" 'BEGIN {
    printf "tokenizer: %.1f MB, %d lines, %d tokens (LLaMA-2 model, ids identical)\n", b / 1e6, l, n
    printf "  spm_encode            %6.3f s  %8.2f M tokens/s\n", s, n / s / 1e6
    printf "  monet-probe tokenize  %6.3f s  %8.2f M tokens/s\n", o, n / o / 1e6
    printf "  ratio (ours / spm_encode): %.2fx\n", s / o
}'
