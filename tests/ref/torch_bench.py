#!/usr/bin/python3
"""tests/ref/torch_bench.py — Monet forward in PyTorch, written from DESIGN.md §2
in the einsum formulation of the official modeling_monet.py, for two uses:

  * `make bench`: prefill throughput of a random medium model on the CPU
    (d=512, 8 layers, 8 heads, E=128, moe_heads 4, moe_dim 16, top-k 8,
    groups 4, vocab 32000), float32:
        torch_bench.py --tokens T --threads N --decompose vertical|horizontal
    prints one JSON line {"tokens_per_s": ..., ...}.
  * tests/ref/selftest.py: TorchMonet.from_checkpoint() runs the same math on a
    tiny checkpoint in float64 / float32 as a second, independent oracle for
    monet_ref.py (numpy, full E x E expansion). Only file reading is shared.

Needs Debian's python3-torch (/usr/bin/python3).
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch

MEDIUM = {
    "vocab_size": 32000, "hidden_size": 512, "num_hidden_layers": 8,
    "num_attention_heads": 8, "num_key_value_heads": 8, "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0, "tie_word_embeddings": False, "moe_experts": 128,
    "moe_heads": 4, "moe_dim": 16, "moe_topk": 8, "moe_groups": 4,
}


class TorchMonet:
    """Weights by Hugging Face name in one dict of torch tensors."""

    def __init__(self, cfg, params, dtype=torch.float32):
        self.cfg = cfg
        self.p = {k: v.to(dtype) if v.is_floating_point() else v for k, v in params.items()}
        self.dtype = dtype
        c = cfg
        self.d, self.L = c["hidden_size"], c["num_hidden_layers"]
        self.H = c["num_attention_heads"]
        self.KV = c.get("num_key_value_heads") or self.H
        self.hd = c.get("head_dim") or self.d // self.H
        self.E, self.Hm, self.m = c["moe_experts"], c["moe_heads"], c["moe_dim"]
        self.k, self.G = c["moe_topk"], c["moe_groups"]
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.theta = c.get("rope_theta", 10000.0)
        self.vertical = c["moe_decompose"] == "vertical"
        self.threshold = statistics.NormalDist().inv_cdf(1.0 - self.k / self.E)
        self.calibrating = False

    # ---- construction

    @classmethod
    def from_checkpoint(cls, path, dtype=torch.float64):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import monet_ref
        config, tensors, _ = monet_ref.load_checkpoint(path)
        params = {k: torch.from_numpy(v[1].copy()) for k, v in tensors.items()}
        return cls(config, params, dtype)

    @classmethod
    def random(cls, cfg, decompose, seed=0, dtype=torch.float32):
        cfg = dict(cfg, moe_decompose=decompose)
        gen = torch.Generator().manual_seed(seed)
        d, V, E, Hm, m = cfg["hidden_size"], cfg["vocab_size"], cfg["moe_experts"], \
            cfg["moe_heads"], cfg["moe_dim"]
        H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        hd = d // H

        def nrm(*shape, std=1.0, mean=0.0):
            return torch.randn(*shape, generator=gen, dtype=dtype) * std + mean
        p = {"model.embed_tokens.weight": nrm(V, d, std=0.5), "model.norm.weight": nrm(d, std=0.1, mean=1.0),
             "lm_head.weight": nrm(V, d, std=2.0 / math.sqrt(d))}
        for l in range(cfg["num_hidden_layers"]):
            q = f"model.layers.{l}."
            p[q + "input_layernorm.weight"] = nrm(d, std=0.1, mean=1.0)
            p[q + "post_attention_layernorm.weight"] = nrm(d, std=0.1, mean=1.0)
            p[q + "self_attn.q_proj.weight"] = nrm(H * hd, d, std=d ** -0.5)
            p[q + "self_attn.k_proj.weight"] = nrm(KV * hd, d, std=d ** -0.5)
            p[q + "self_attn.v_proj.weight"] = nrm(KV * hd, d, std=d ** -0.5)
            p[q + "self_attn.o_proj.weight"] = nrm(d, H * hd, std=0.5 / math.sqrt(H * hd))
            if l % cfg["moe_groups"] == 0:
                for f in (1, 2):
                    p[q + f"router.w{f}.weight"] = nrm(Hm * E, d, std=d ** -0.5)
                    p[q + f"router.norm{f}.running_mean"] = torch.zeros(Hm, dtype=dtype)
                    p[q + f"router.norm{f}.running_var"] = torch.ones(Hm, dtype=dtype)
            if decompose == "vertical":
                for u in ("u1", "u2"):
                    p[q + f"moe.{u}.weight"] = nrm(E * m // 2, d, std=d ** -0.5)
                    p[q + f"moe.{u}.bias"] = nrm(E * m // 2, std=0.2)
                for v in ("v11", "v12", "v21", "v22"):
                    p[q + f"moe.{v}.weight"] = nrm(d // 2, E * m // 2, std=0.6 / math.sqrt(m / 2 * Hm))
                p[q + "moe.b1"] = nrm(E, d // 2, std=0.1)
                p[q + "moe.b2"] = nrm(E, d // 2, std=0.1)
            else:
                p[q + "moe.u.weight"] = nrm(E * m, d, std=d ** -0.5)
                p[q + "moe.u.bias"] = nrm(E * m, std=0.2)
                p[q + "moe.v.weight"] = nrm(d, E * m, std=0.6 / math.sqrt(m * Hm))
                p[q + "moe.b"] = nrm(E, d, std=0.1)
        model = cls(cfg, p, dtype)
        model.calibrating = True       # first forward sets the router running stats
        return model

    # ---- blocks

    def rmsnorm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def rope(self, x):
        """x [T, heads, hd]; HF rotate-half."""
        T = x.shape[0]
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, self.hd, 2, dtype=torch.float64) / self.hd))
        freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(x.dtype)[:, None, :], emb.sin().to(x.dtype)[:, None, :]
        x1, x2 = x[..., : self.hd // 2], x[..., self.hd // 2:]
        return x * cos + torch.cat((-x2, x1), dim=-1) * sin

    def attention(self, l, x):
        q_ = f"model.layers.{l}.self_attn."
        T = x.shape[0]
        q = self.rope((x @ self.p[q_ + "q_proj.weight"].T).view(T, self.H, self.hd))
        k = self.rope((x @ self.p[q_ + "k_proj.weight"].T).view(T, self.KV, self.hd))
        v = (x @ self.p[q_ + "v_proj.weight"].T).view(T, self.KV, self.hd)
        rep = self.H // self.KV
        k = k.repeat_interleave(rep, dim=1)          # query head h uses kv head h // rep
        v = v.repeat_interleave(rep, dim=1)
        att = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(self.hd)
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)
        att = att.masked_fill(causal, float("-inf")).softmax(-1)
        o = torch.einsum("hqk,khd->qhd", att, v).reshape(T, self.H * self.hd)
        return o @ self.p[q_ + "o_proj.weight"].T

    def router(self, l, x):
        q = f"model.layers.{l}.router."
        gs = []
        for f in (1, 2):
            z = (x @ self.p[q + f"w{f}.weight"].T).unflatten(-1, (self.Hm, -1))      # [T, Hm, E]
            if self.calibrating:
                self.p[q + f"norm{f}.running_mean"] = z.mean(dim=(0, 2))
                self.p[q + f"norm{f}.running_var"] = z.var(dim=(0, 2))
            mu = self.p[q + f"norm{f}.running_mean"].to(z.dtype)
            var = self.p[q + f"norm{f}.running_var"].to(z.dtype)
            n = (z - mu[:, None]) / torch.sqrt(var[:, None] + 1e-5)
            t = n.max(-1, keepdim=True).values.clamp(max=self.threshold)
            gs.append(z.masked_fill(n < t, float("-inf")).softmax(-1))
        return gs

    def moe(self, l, x, g1, g2):
        q = f"model.layers.{l}.moe."
        E = self.E
        if self.vertical:
            x1 = torch.relu(x @ self.p[q + "u1.weight"].T + self.p[q + "u1.bias"]).square().unflatten(-1, (E, -1))
            x2 = torch.relu(x @ self.p[q + "u2.weight"].T + self.p[q + "u2.bias"]).square().unflatten(-1, (E, -1))
            x11 = torch.einsum("tim,thi->tim", x1, g1).flatten(-2) @ self.p[q + "v11.weight"].T
            x12 = torch.einsum("tjm,thj,thi->tim", x2, g2, g1).flatten(-2) @ self.p[q + "v12.weight"].T
            x13 = torch.einsum("thi,id->td", g1, self.p[q + "b1"])
            x21 = torch.einsum("tim,thi,thj->tjm", x1, g1, g2).flatten(-2) @ self.p[q + "v21.weight"].T
            x22 = torch.einsum("tjm,thj->tjm", x2, g2).flatten(-2) @ self.p[q + "v22.weight"].T
            x23 = torch.einsum("thj,jd->td", g2, self.p[q + "b2"])
            return torch.cat((x11 + x12 + x13, x21 + x22 + x23), dim=-1)
        a = torch.relu(x @ self.p[q + "u.weight"].T + self.p[q + "u.bias"]).square().unflatten(-1, (E, -1))
        a = torch.einsum("tim,thi,thj->tjm", a, g1, g2)
        return a.flatten(-2) @ self.p[q + "v.weight"].T + torch.einsum("thj,jd->td", g2, self.p[q + "b"])

    @torch.inference_mode()
    def forward(self, ids):
        """ids: list/1-D tensor. Returns (logits [T, V], [(g1, g2) per group])."""
        ids = torch.as_tensor(ids, dtype=torch.long)
        h = self.p["model.embed_tokens.weight"][ids]
        routing = []
        for l in range(self.L):
            q = f"model.layers.{l}."
            h = h + self.attention(l, self.rmsnorm(h, self.p[q + "input_layernorm.weight"]))
            x = self.rmsnorm(h, self.p[q + "post_attention_layernorm.weight"])
            if l % self.G == 0:
                g1, g2 = self.router(l, x)
                routing.append((g1, g2))
            h = h + self.moe(l, x, g1, g2)
        self.calibrating = False
        h = self.rmsnorm(h, self.p["model.norm.weight"])
        head = self.p["model.embed_tokens.weight"] if self.cfg.get("tie_word_embeddings") \
            else self.p["lm_head.weight"]
        return h @ head.T, routing


def main(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch CPU prefill throughput of a random medium Monet")
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--decompose", choices=["vertical", "horizontal"], default="vertical")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = TorchMonet.random(MEDIUM, a.decompose, seed=a.seed)
    gen = torch.Generator().manual_seed(a.seed + 1)
    ids = torch.randint(0, MEDIUM["vocab_size"], (a.tokens,), generator=gen)
    model.forward(ids)                               # warm-up + router calibration
    times = []
    for _ in range(max(1, a.repeats)):
        t0 = time.perf_counter()
        _, routing = model.forward(ids)
        times.append(time.perf_counter() - t0)
    best = min(times)
    active = float(sum((g > 0).sum(-1).float().mean() for gg in routing for g in gg) / (2 * len(routing)))
    n_params = sum(v.numel() for k, v in model.p.items() if "running" not in k)
    print(json.dumps({"tokens_per_s": a.tokens / best, "tokens": a.tokens, "threads": a.threads,
                      "decompose": a.decompose, "seconds_best": best,
                      "seconds_median": statistics.median(times), "n_params": n_params,
                      "active_per_head": active, "dtype": "float32", "device": "cpu",
                      "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
