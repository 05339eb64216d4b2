#!/usr/bin/python3
"""bench/torch_gpu_bench.py — the baseline for `make bench-gpu`: Monet-VD
forward in PyTorch on CUDA, bf16, in the einsum formulation of the official
modeling_monet.py (DESIGN.md §2: dense g1/g2 [T, Hm, E], einsum mixtures),
with LLaMA attention through F.scaled_dot_product_attention (causal, flash).
Random weights at the public shapes, batch x sequence tokens per forward.
Prints one JSON line {"tokens_per_s": ...}; "skipped: no GPU" (exit 77)
without CUDA.

usage: torch_gpu_bench.py [--shape 1.4b|850m] [--batch 8] [--seq 2048] [--layers L]
"""
import argparse
import json
import statistics
import sys
import time

SHAPES = {  # 850m: assumed public Monet-VD-850M shape; check its config.json
    "1.4b": dict(d=2048, L=24, H=16, m=16),
    "850m": dict(d=1536, L=24, H=12, m=12),
}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=sorted(SHAPES), default="1.4b")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("skipped: no GPU (python3-torch missing)")
        return 77
    if not torch.cuda.is_available():
        print("skipped: no GPU (torch.cuda.is_available() is false)")
        return 77
    s = SHAPES[a.shape]
    d, L, H, m = s["d"], a.layers or s["L"], s["H"], s["m"]
    V, E, Hm, k, G = 32000, 512, 8, 8, 4
    hd, m2, dh = d // H, m // 2, d // 2
    dev, dt = "cuda", torch.bfloat16
    thr = statistics.NormalDist().inv_cdf(1.0 - k / E)
    torch.manual_seed(0)

    def w(*shape, std):
        return (torch.randn(*shape, device=dev, dtype=torch.float32) * std).to(dt)

    layers = []
    for l in range(L):
        p = dict(n1=torch.ones(d, device=dev, dtype=dt), n2=torch.ones(d, device=dev, dtype=dt),
                 qkv=w(3 * d, d, std=d ** -0.5), o=w(d, d, std=0.5 * d ** -0.5),
                 u1=w(E * m2, d, std=d ** -0.5), u2=w(E * m2, d, std=d ** -0.5),
                 c1=w(E * m2, std=0.2), c2=w(E * m2, std=0.2),
                 v11=w(dh, E * m2, std=0.1), v12=w(dh, E * m2, std=0.1),
                 v21=w(dh, E * m2, std=0.1), v22=w(dh, E * m2, std=0.1),
                 b1=w(E, dh, std=0.1), b2=w(E, dh, std=0.1))
        if l % G == 0:
            p["r1"], p["r2"] = w(Hm * E, d, std=d ** -0.5), w(Hm * E, d, std=d ** -0.5)
        layers.append(p)
    emb, head, fn = w(V, d, std=0.5), w(V, d, std=d ** -0.5), torch.ones(d, device=dev, dtype=dt)
    inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, device=dev, dtype=torch.float64) / hd))
    fr = torch.outer(torch.arange(a.seq, device=dev, dtype=torch.float64), inv)
    cos, sin = torch.cat((fr, fr), -1).cos().to(dt), torch.cat((fr, fr), -1).sin().to(dt)

    def rms(x, wt):
        return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6).to(x.dtype) * wt

    def rope(x):  # [B, H, T, hd]
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * cos + torch.cat((-x2, x1), -1) * sin

    def route(x, W):  # BN stats (0, 1): random weights give z ~ N(0, ~1)
        z = (x @ W.T).unflatten(-1, (Hm, E)).float()
        n = z / (1.0 + 1e-5) ** 0.5
        t = n.max(-1, keepdim=True).values.clamp(max=thr)
        return z.masked_fill(n < t, float("-inf")).softmax(-1).to(dt)

    @torch.inference_mode()
    def forward(ids):
        B, T = ids.shape
        h = emb[ids]
        g1 = g2 = None
        for l, p in enumerate(layers):
            x = rms(h, p["n1"])
            q, kk, v = (x @ p["qkv"].T).view(B, T, 3, H, hd).permute(2, 0, 3, 1, 4)
            o = F.scaled_dot_product_attention(rope(q), rope(kk), v, is_causal=True)
            h = h + o.transpose(1, 2).reshape(B, T, d) @ p["o"].T
            x = rms(h, p["n2"])
            if l % G == 0:
                g1, g2 = route(x, p["r1"]), route(x, p["r2"])
            x1 = torch.relu(x @ p["u1"].T + p["c1"]).square().unflatten(-1, (E, m2))
            x2 = torch.relu(x @ p["u2"].T + p["c2"]).square().unflatten(-1, (E, m2))
            x11 = torch.einsum("btim,bthi->btim", x1, g1).flatten(-2) @ p["v11"].T
            x12 = torch.einsum("btjm,bthj,bthi->btim", x2, g2, g1).flatten(-2) @ p["v12"].T
            x13 = torch.einsum("bthi,id->btd", g1, p["b1"])
            x21 = torch.einsum("btim,bthi,bthj->btjm", x1, g1, g2).flatten(-2) @ p["v21"].T
            x22 = torch.einsum("btjm,bthj->btjm", x2, g2).flatten(-2) @ p["v22"].T
            x23 = torch.einsum("bthj,jd->btd", g2, p["b2"])
            h = h + torch.cat((x11 + x12 + x13, x21 + x22 + x23), -1)
        return rms(h[:, -1], fn) @ head.T  # last-token logits, as the C bench

    ids = torch.randint(0, V, (a.batch, a.seq), device=dev)
    forward(ids)
    torch.cuda.synchronize()
    times = []
    for _ in range(max(1, a.repeats)):
        t0 = time.perf_counter()
        forward(ids)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    best = min(times)
    print(json.dumps({"tokens_per_s": a.batch * a.seq / best, "shape": a.shape, "layers": L, "batch": a.batch,
                      "seq": a.seq, "seconds_best": best, "dtype": "bfloat16",
                      "device": torch.cuda.get_device_name(0), "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
