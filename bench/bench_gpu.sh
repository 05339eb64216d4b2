#!/bin/sh
# bench/bench_gpu.sh — `make bench-gpu`: the CUDA backend at the public
# Monet-VD shapes against the official einsum formulation in PyTorch on the
# same GPU in the same run (bench/torch_gpu_bench.py). Random weights.
# Prints the two JSON lines and the ratios against the goals of the issue:
# forward >= 2x torch, collect >= 85% of forward, masked (15%) <= 1.10x.
# usage: bench/bench_gpu.sh [BUILD_DIR] [SHAPE] [BATCH] [SEQ]
# Prints "skipped: no GPU" and exits 0 where no device is visible.
set -eu
BUILD=${1:-build}
SHAPE=${2:-1.4b}
BATCH=${3:-8}
SEQ=${4:-2048}
BIN="$BUILD/tests/cuda/bench_cuda_forward"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$BIN" ]; then
    echo "bench_gpu: $BIN not built (configure with nvcc present; CUDA backend ON)" >&2
    exit 1
fi
set +e
C_OUT=$("$BIN" --shape "$SHAPE" --batch "$BATCH" --seq "$SEQ")
rc=$?
set -e
if [ $rc -eq 77 ]; then
    echo "$C_OUT"
    exit 0
fi
[ $rc -eq 0 ] || { echo "bench_gpu: bench_cuda_forward failed ($rc)" >&2; exit 1; }
set +e
T_OUT=$(/usr/bin/python3 "$ROOT/bench/torch_gpu_bench.py" --shape "$SHAPE" --batch "$BATCH" --seq "$SEQ")
trc=$?
set -e
echo "monet-probe: $C_OUT"
echo "torch:       $T_OUT"
if [ $trc -ne 0 ]; then
    echo "bench_gpu: torch baseline unavailable ($trc); ratios vs torch not computed"
    exit 0
fi
/usr/bin/python3 - "$C_OUT" "$T_OUT" <<'PY'
import json, sys
c, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
r = c["forward_tokens_per_s"] / t["tokens_per_s"]
print(f"forward vs torch einsum: {r:.2f}x (goal >= 2x)")
print(f"collect vs forward:      {c['collect_vs_forward']:.1%} (goal >= 85%; routing record copy-back, no store)")
print(f"masked {c['masked_frac']:.0%} vs unmasked:  {c['masked_slowdown']:.3f}x (goal <= 1.10x)")
print(f"GEMM FLOP rate:          {c['gemm_tflops']:.0f} TFLOP/s = {c['gemm_vs_peak']:.1%} of {c['peak_tflops']:.0f} peak")
PY
