#!/usr/bin/env python3
"""tests/cuda/check_device_cli.py — `--device` on the CLI.

Without a GPU: `--device cuda` fails with exit 2 and one line
"monet-probe: no CUDA device: <reason>"; `--device cpu` and the default
(auto) run on the CPU. With a GPU: `logits --device cuda` agrees with
`--device cpu` within the bf16 tolerance of tests/cuda/test_cuda_parity.c,
and `route --device cuda` runs.
usage: check_device_cli.py MONET_PROBE MODEL_DIR
"""
import json
import os
import subprocess
import sys

BIN, MODEL = sys.argv[1], sys.argv[2]
IDS = "1,17,42,99,3,250,7,8"
fails = []


def run(*args, env_device=None):
    env = dict(os.environ)
    env.pop("MP_DEVICE", None)
    if env_device:
        env["MP_DEVICE"] = env_device
    return subprocess.run([BIN, *args], capture_output=True, text=True, env=env)


def check(cond, msg):
    if not cond:
        fails.append(msg)
        print("FAIL:", msg, file=sys.stderr)


cpu = run("logits", "--model", MODEL, "--ids", IDS, "--format", "json", "--device", "cpu")
check(cpu.returncode == 0, f"logits --device cpu: exit {cpu.returncode}: {cpu.stderr.strip()}")
auto = run("logits", "--model", MODEL, "--ids", IDS, "--format", "json", env_device="cpu")
check(auto.returncode == 0 and auto.stdout == cpu.stdout, "MP_DEVICE=cpu differs from --device cpu")
bad = run("logits", "--model", MODEL, "--ids", IDS, "--device", "tpu")
check(bad.returncode == 2 and "--device must be cpu, cuda or auto" in bad.stderr, f"--device tpu: {bad.stderr.strip()}")

gpu = run("logits", "--model", MODEL, "--ids", IDS, "--format", "json", "--device", "cuda")
if gpu.returncode != 0:
    lines = gpu.stderr.strip().splitlines()
    check(gpu.returncode == 2, f"--device cuda without a GPU: exit {gpu.returncode}, want 2")
    check(len(lines) == 1 and lines[0].startswith("monet-probe: no CUDA device: "),
          f"--device cuda without a GPU: stderr {gpu.stderr!r}")
    r = run("route", "--model", MODEL, "--ids", IDS, "--device", "cuda")
    check(r.returncode == 2 and "no CUDA device: " in r.stderr, f"route --device cuda: {r.stderr.strip()}")
    print("no GPU: --device cuda refused as expected")
else:
    a = json.loads(cpu.stdout)["logits"]
    b = json.loads(gpu.stdout)["logits"]
    scale = max(abs(v) for row in a for v in row)
    err = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
    print(f"logits cuda vs cpu: max|err| {err:.3g}, scale {scale:.3g}")
    check(err <= 3e-2 * scale, f"logits --device cuda differs from cpu by {err:.3g} (scale {scale:.3g})")
    r = run("route", "--model", MODEL, "--ids", IDS, "--json", "--device", "cuda")
    check(r.returncode == 0, f"route --device cuda: {r.stderr.strip()}")

# the CLI links no CUDA library: it loads libmonet-probe-cuda.so (built next to it when nvcc was
# found) only when a command asks for CUDA and an NVIDIA driver is present
ldd = subprocess.run(["ldd", BIN], capture_output=True, text=True).stdout
check(not any(x in ldd for x in ("libcudart", "libcublas")), f"the CLI links CUDA libraries: {ldd}")
module = os.path.join(os.path.dirname(os.path.abspath(BIN)), "libmonet-probe-cuda.so")
if os.path.exists(module):
    import ctypes
    try:
        h = ctypes.CDLL(module, mode=os.RTLD_NOW | os.RTLD_LOCAL)  # every symbol resolves
        check(ctypes.c_void_p.in_dll(h, "mp_cuda_backend_ops") is not None, "module without mp_cuda_backend_ops")
        print(f"module {module} loads and exports mp_cuda_backend_ops")
    except OSError as e:
        check(False, f"the CUDA module does not load: {e}")
    info = run("info", "--model", MODEL)
    check("cuda:" in info.stdout, f"info names the CUDA backend: {info.stdout}")
else:
    print("no CUDA module (built without nvcc)")

if fails:
    sys.exit(1)
print("ok")
