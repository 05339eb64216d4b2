#!/usr/bin/env bash
# fuzz/run.sh — build every fuzz/fuzz_*.c with clang's libFuzzer + ASan + UBSan
# and run each for N seconds (default 30) on its seed corpus (fuzz/corpus/<name>/).
# New interesting inputs go to fuzz/out/<name>/ (ignored by git); crashes fail.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
inc="-I. -I/usr/include/x86_64-linux-gnu/openblas-pthread"
mkdir -p fuzz/out
for src in fuzz/fuzz_*.c; do
  name=$(basename "$src" .c); name=${name#fuzz_}
  bin=fuzz/out/fuzz_$name
  deps="core/util/error.c core/util/file.c"  # every reader opens files through core/util/file
  case $name in
    safetensors) deps+=" core/model/safetensors.c" ;;
    config) deps+=" core/model/config.c" ;;
    tokenizer) deps+=" core/text/tokenizer.c" ;;
    corpus) deps+=" core/text/corpus.c core/text/utf8.c -lzstd" ;;
    recipe) deps+=" recipes/recipe.c core/util/data_dir.c -lyaml" ;;
    mask) deps+=" core/model/mask.c core/model/config.c" ;;
    store) deps+=" core/store/store.c core/store/topk.c core/store/evidence.c core/store/evidence_read.c core/store/hist.c core/store/samples.c core/store/token_index.c -lsqlite3 -lzstd" ;;
    *) deps+=" $(ls core/*/*.c | grep -v "forward_cpu\|core/util/error.c\|core/util/file.c" | tr '\n' ' ')" ;;
  esac
  clang -g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined $inc $src $deps -lcjson -lm -o "$bin"
  mkdir -p "fuzz/out/$name" "fuzz/corpus/$name"
  echo "fuzz: $name for ${secs}s"
  "$bin" -max_total_time="$secs" -max_len=65536 -print_final_stats=1 "fuzz/out/$name" "fuzz/corpus/$name" 2>&1 | grep -E "^(stat::number_of_executed_units|stat::new_units_added|==.*ERROR|SUMMARY)" || true
  # libFuzzer exits non-zero on a finding; re-check by replaying the corpus
  "$bin" -runs=0 "fuzz/out/$name" "fuzz/corpus/$name" >/dev/null 2>&1 || { echo "fuzz: $name FAILED"; exit 1; }
done
echo "fuzz: all targets ran clean"
