#!/usr/bin/python3
"""tests/ref/selftest.py — validates the numpy reference (monet_ref.py) and the
fixture writer (make_checkpoint.py) before anything is compared against them.

Checks, on tiny random checkpoints written to WORKDIR:
  1. routing sparsity: mean active entries per head ~ moe_topk, never 0;
  2. masking: the full E x E expansion == "unmasked minus a correction over the
     masked active pairs" (the formulation monet-probe implements); masking
     inactive experts changes nothing;
  3. numpy float64 forward == independent torch einsum forward (torch_bench.py)
     in float64 (logits and g1/g2 to ~1e-10) and in float32 (reports the
     relative error a float32 implementation reaches: it motivates the 1e-4
     logits tolerance of tests/forward);
  4. BF16 / F16 encoding == torch's round-to-nearest-even conversion; sharded
     and single-file checkpoints of one seed give identical logits.
Exit 0 on success, 1 on failure, 77 (ctest SKIP_RETURN_CODE) without torch.

  selftest.py [--workdir DIR]
"""
import argparse
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_checkpoint  # noqa: E402
import monet_ref  # noqa: E402

FAILS = []


def check(ok, what):
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        FAILS.append(what)


def make(workdir, name, *args):
    out = os.path.join(workdir, name)
    make_checkpoint.build(make_checkpoint.parse_args(["--out", out, "--quiet", *args]))
    return out


class CorrectionModel(monet_ref.Model):
    """Masked forward the sparse way: the unmasked MoE output minus, for every
    masked pair (i,j) with w_ij > 0, the pair's contribution
      VD top  -= w_ij (V11_i a_i + V12_i b_j + B1_i)
      VD bot  -= w_ij (V21_j a_i + V22_j b_j + B2_j)
      HD      -= w_ij (V_j a_i + B_j)."""

    def __init__(self, config, tensors, mask):
        super().__init__(config, tensors)
        self.pairs = {}
        for r, i, j in mask:
            self.pairs.setdefault(r, []).append((i, j))

    def router(self, l, x):
        res = super().router(l, x)
        self.w_now = res["w"]
        return res

    def moe(self, l, x, W):
        w = self.w_now
        out = super().moe(l, x, w)                      # unmasked
        p = f"model.layers.{l}.moe."
        m2, d2, E = self.m // 2, self.d // 2, self.E
        for t in range(x.shape[0]):
            for (i, j) in self.pairs.get(l // self.G, []):
                wij = w[t, i, j]
                if wij == 0.0:
                    continue
                if self.decompose == "vertical":
                    a = monet_ref.relu2(self.t[p + "u1.weight"][i * m2:(i + 1) * m2] @ x[t]
                                        + self.t[p + "u1.bias"][i * m2:(i + 1) * m2])
                    b = monet_ref.relu2(self.t[p + "u2.weight"][j * m2:(j + 1) * m2] @ x[t]
                                        + self.t[p + "u2.bias"][j * m2:(j + 1) * m2])
                    col = lambda n, e: self.t[p + n + ".weight"][:, e * m2:(e + 1) * m2]  # noqa: E731
                    out[t, :d2] -= wij * (col("v11", i) @ a + col("v12", i) @ b + self.t[p + "b1"][i])
                    out[t, d2:] -= wij * (col("v21", j) @ a + col("v22", j) @ b + self.t[p + "b2"][j])
                else:
                    m = self.m
                    a = monet_ref.relu2(self.t[p + "u.weight"][i * m:(i + 1) * m] @ x[t]
                                        + self.t[p + "u.bias"][i * m:(i + 1) * m])
                    out[t] -= wij * (self.t[p + "v.weight"][:, j * m:(j + 1) * m] @ a + self.t[p + "b"][j])
        return out


def test_torch(workdir, torch):
    import torch_bench
    print("[3] numpy reference vs torch einsum formulation")
    cases = [("vd_f32_gqa_l3g2", ["--decompose", "vertical", "--layers", "3", "--groups", "2",
                                  "--kv-heads", "2"]),
             ("hd_bf16_tied", ["--decompose", "horizontal", "--dtype", "BF16", "--tied", "--heads", "8",
                               "--kv-heads", "2"]),
             ("vd_f16_l4g2", ["--dtype", "F16", "--layers", "4", "--groups", "2", "--experts", "32",
                              "--topk", "6", "--moe-heads", "4"]),
             ("hd_f32_l3g3", ["--decompose", "horizontal", "--layers", "3", "--groups", "3"])]
    worst32 = 0.0
    for name, args in cases:
        d = make(workdir, name, "--seed", "7", *args)
        ref = monet_ref.load_model(d)
        ids = list(np.random.default_rng(3).integers(0, ref.V, 40))
        lg, routing = ref.forward(ids)
        scale = np.abs(lg).max()
        for dt, tol in ((torch.float64, 1e-10), (torch.float32, None)):
            tm = torch_bench.TorchMonet.from_checkpoint(d, dtype=dt)
            tl, tr = tm.forward(ids)
            err = np.abs(tl.double().numpy() - lg).max() / scale
            gerr = max(np.abs(tg.double().numpy() - res[f"g{f}"]).max()
                       for (g1, g2), res in zip(tr, routing) for f, tg in ((1, g1), (2, g2)))
            same = all(np.array_equal(tg.numpy() > 0, res[f"g{f}"] > 0)
                       for (g1, g2), res in zip(tr, routing) for f, tg in ((1, g1), (2, g2)))
            if tol is not None:
                check(err < tol and gerr < tol and same,
                      f"{name} float64: logits rel err {err:.2e}, g err {gerr:.2e}, active sets "
                      f"{'equal' if same else 'DIFFER'}")
            else:
                worst32 = max(worst32, err)
                print(f"       {name} float32 torch vs float64 ref: logits rel err {err:.2e} "
                      f"(max|logit| {scale:.2f}), g err {gerr:.2e}, active sets "
                      f"{'equal' if same else 'differ (knife-edge)'}")
    check(worst32 < 1e-5, f"float32 logits rel err {worst32:.2e} < 1e-5 (tests/forward allows 1e-4)")


def test_sparsity(workdir):
    print("[1] routing sparsity")
    for name, k, E, Hm in (("sp_k4_e16", 4, 16, 2), ("sp_k2_e32", 2, 32, 4), ("sp_k8_e64", 8, 64, 2)):
        d = make(workdir, name, "--experts", str(E), "--topk", str(k), "--moe-heads", str(Hm),
                 "--layers", "4", "--groups", "2", "--seed", "11")
        model = monet_ref.load_model(d)
        mean, lo, hi = make_checkpoint.routing_stats(model, np.random.default_rng(5), n_seq=3, seq_len=40)
        check(0.6 * k <= mean <= 1.6 * k and lo >= 1 and hi < E,
              f"{name}: active per head mean {mean:.2f} (k={k}), min {lo}, max {hi}")
        _, routing = model.forward(list(np.random.default_rng(6).integers(0, model.V, 40)))
        for res in routing:
            for f in (1, 2):
                s = res[f"g{f}"].sum(-1)
                if not np.allclose(s, 1.0, atol=1e-12):
                    check(False, f"{name}: g{f} rows sum to 1")


def test_mask(workdir):
    print("[2] masking: full E x E expansion vs sparse correction")
    for name, args in (("mask_vd", ["--layers", "3", "--groups", "2"]),
                       ("mask_hd", ["--decompose", "horizontal", "--layers", "2", "--groups", "1"])):
        d = make(workdir, name, "--seed", "5", *args)
        config, tensors, _ = monet_ref.load_checkpoint(d)
        model = monet_ref.Model(config, tensors)
        ids = list(np.random.default_rng(9).integers(0, model.V, 24))
        base, routing = model.forward(ids)
        # mask the 6 heaviest experts (by total w over tokens) of each group + one never-active one
        mask = []
        for r, res in enumerate(routing):
            tot = res["w"].sum(0)
            order = np.argsort(tot.ravel())[::-1]
            mask += [(r, int(e // model.E), int(e % model.E)) for e in order[:6]]
        masked, _ = model.forward(ids, mask=mask)
        corr, _ = CorrectionModel(config, tensors, mask).forward(ids)
        err = np.abs(masked - corr).max() / np.abs(masked).max()
        moved = np.abs(masked - base).max()
        check(err < 1e-10 and moved > 1e-3,
              f"{name}: expansion vs correction rel err {err:.2e}; the mask moves logits by {moved:.3f}")
        idle = []
        for r, res in enumerate(routing):
            tot = res["w"].sum(0)
            zi = np.argwhere(tot == 0)
            idle += [(r, int(i), int(j)) for i, j in zi[:5]]
        same, _ = model.forward(ids, mask=idle)
        check(np.array_equal(same, base), f"{name}: masking {len(idle)} never-active experts changes nothing")


def test_encoding(workdir, torch):
    print("[4] encodings and sharding")
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(20000).astype(np.float32) * 10.0 ** rng.integers(-6, 4, 20000),
                        # exact ties: low 16 bits 0x8000 with odd and even upper halves
                        (np.arange(1000, dtype=np.uint32) << 16 | 0x8000).view(np.float32)]).astype(np.float32)
    x = x[np.isfinite(x)]
    mine = monet_ref.f32_to_bf16_bits(x)
    theirs = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    check(np.array_equal(mine, theirs), "BF16 round-to-nearest-even bits == torch's")
    raw, stored = make_checkpoint.encode(x, "F16")
    check(np.array_equal(stored, torch.from_numpy(x).half().double().numpy()), "F16 encoding == torch's")
    one = make(workdir, "shard1", "--dtype", "BF16", "--seed", "3")
    three = make(workdir, "shard3", "--dtype", "BF16", "--seed", "3", "--shards", "3")
    ids = [1, 5, 9, 200, 3, 3, 7]
    a, _ = monet_ref.load_model(one).forward(ids)
    b, _ = monet_ref.load_model(three).forward(ids)
    n = len([f for f in os.listdir(three) if f.endswith(".safetensors")])
    check(np.array_equal(a, b) and n == 3, f"3-shard checkpoint ({n} files) == single file, bit for bit")


def main():
    ap = argparse.ArgumentParser(description="self-test of the Monet numpy reference")
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    with tempfile.TemporaryDirectory() as tmp:
        workdir = a.workdir or tmp
        os.makedirs(workdir, exist_ok=True)
        test_sparsity(workdir)
        test_mask(workdir)
        if torch is None:
            if FAILS:
                print(f"selftest: FAILED {len(FAILS)} check(s): {FAILS[0]}")
                return 1
            print("skipped: no torch (numpy-only checks passed)")
            return 77
        test_torch(workdir, torch)
        test_encoding(workdir, torch)
    if FAILS:
        print(f"selftest: FAILED {len(FAILS)} check(s); first: {FAILS[0]}")
        return 1
    print("selftest: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
