"""Monet-VD (Mixture of Monosemantic Experts, vertical decomposition) in plain torch.

Mirrors the Hugging Face `modeling_monet.py` layout and math (DESIGN.md §2): LLaMA attention
(RMSNorm, rotate-half RoPE, no biases), a router in layer l iff l % G == 0 that is reused by
layers l..l+G-1, BatchNorm1d(affine=False) per router head over (tokens*experts), threshold
Phi^-1(1 - k/E), softmax over the selected raw logits, VD expert mixing with relu^2.
Parameter / buffer names equal the public checkpoints' tensor names.
"""
import json, math, struct
from statistics import NormalDist

import torch
import torch.nn as nn
import torch.nn.functional as F


class Cfg:
    def __init__(self, **kw):
        self.vocab_size = 4096
        self.hidden_size = 128
        self.num_hidden_layers = 4
        self.num_attention_heads = 4
        self.num_key_value_heads = 4
        self.rms_norm_eps = 1e-6
        self.rope_theta = 10000.0
        self.max_position_embeddings = 256
        self.bos_token_id = 1
        self.eos_token_id = 2
        self.tie_word_embeddings = False
        self.moe_experts = 32
        self.moe_heads = 4
        self.moe_dim = 16
        self.moe_topk = 4
        self.moe_groups = 2
        self.__dict__.update(kw)

    def to_json(self):
        return {
            "architectures": ["MonetForCausalLM"], "model_type": "monet",
            "vocab_size": self.vocab_size, "hidden_size": self.hidden_size, "intermediate_size": None,
            "num_hidden_layers": self.num_hidden_layers, "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads, "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta, "max_position_embeddings": self.max_position_embeddings,
            "bos_token_id": self.bos_token_id, "eos_token_id": self.eos_token_id,
            "tie_word_embeddings": self.tie_word_embeddings, "hidden_act": "relu2",
            "moe_experts": self.moe_experts, "moe_heads": self.moe_heads, "moe_dim": self.moe_dim,
            "moe_topk": self.moe_topk, "moe_groups": self.moe_groups, "moe_decompose": "vertical",
            "torch_dtype": "bfloat16", "initializer_range": 0.02, "attention_bias": False,
            "attention_dropout": 0.0, "pad_token_id": None, "rope_scaling": None, "use_cache": True,
        }


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        v = x.float().pow(2).mean(-1, keepdim=True)
        return self.weight * (x.float() * torch.rsqrt(v + self.eps)).to(x.dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, self.nh, self.nkv = c.hidden_size, c.num_attention_heads, c.num_key_value_heads
        self.hd = d // self.nh
        self.q_proj = nn.Linear(d, self.nh * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.nh * self.hd, d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.nkv != self.nh:
            r = self.nh // self.nkv
            k = k.repeat_interleave(r, dim=1); v = v.repeat_interleave(r, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
        y = torch.softmax(att.float(), dim=-1).to(q.dtype) @ v
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))


class Router(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.E, self.H, self.k = c.moe_experts, c.moe_heads, c.moe_topk
        self.w1 = nn.Linear(c.hidden_size, self.E * self.H, bias=False)
        self.w2 = nn.Linear(c.hidden_size, self.E * self.H, bias=False)
        self.norm1 = nn.BatchNorm1d(self.H, affine=False)
        self.norm2 = nn.BatchNorm1d(self.H, affine=False)
        self.sigma = NormalDist().inv_cdf(1 - self.k / self.E)

    def _one(self, w, norm, x):
        B, T, _ = x.shape
        z = w(x).view(B, T, self.H, self.E).float()                     # head-major [Hm, E]
        n = norm(z.transpose(2, 3).reshape(-1, self.H))                  # BN over tokens*experts
        n = n.view(B, T, self.E, self.H).transpose(2, 3)
        t = n.amax(-1, keepdim=True).clamp(max=self.sigma)
        return torch.softmax(torch.where(n >= t, z, torch.full_like(z, -1e10)), dim=-1)

    def forward(self, x):
        return self._one(self.w1, self.norm1, x), self._one(self.w2, self.norm2, x)


class MoVDE(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, E, m2 = c.hidden_size, c.moe_experts, c.moe_dim // 2
        self.E, self.m2 = E, m2
        self.u1 = nn.Linear(d, E * m2)
        self.u2 = nn.Linear(d, E * m2)
        self.v11 = nn.Linear(E * m2, d // 2, bias=False)
        self.v12 = nn.Linear(E * m2, d // 2, bias=False)
        self.v21 = nn.Linear(E * m2, d // 2, bias=False)
        self.v22 = nn.Linear(E * m2, d // 2, bias=False)
        self.b1 = nn.Parameter(torch.zeros(E, d // 2))
        self.b2 = nn.Parameter(torch.zeros(E, d // 2))

    def forward(self, x, g1, g2):
        B, T, _ = x.shape
        g1 = g1.to(x.dtype); g2 = g2.to(x.dtype)
        x1 = F.relu(self.u1(x)).square().view(B, T, self.E, self.m2)
        x2 = F.relu(self.u2(x)).square().view(B, T, self.E, self.m2)
        A = g1.sum(2)                                                   # [B,T,E]  A_i = sum_h g1[h,i]
        D = g2.sum(2)
        x11 = self.v11((x1 * A.unsqueeze(-1)).flatten(-2))
        s2 = torch.einsum("bthj,btjm->bthm", g2, x2)                     # sum_j g2[h,j] x2_j
        x12 = self.v12(torch.einsum("bthi,bthm->btim", g1, s2).flatten(-2))
        x13 = A @ self.b1
        s1 = torch.einsum("bthi,btim->bthm", g1, x1)                     # sum_i g1[h,i] x1_i
        x21 = self.v21(torch.einsum("bthj,bthm->btjm", g2, s1).flatten(-2))
        x22 = self.v22((x2 * D.unsqueeze(-1)).flatten(-2))
        x23 = D @ self.b2
        return torch.cat((x11 + x12 + x13, x21 + x22 + x23), dim=-1)


class Layer(nn.Module):
    def __init__(self, c, idx):
        super().__init__()
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        if idx % c.moe_groups == 0:
            self.router = Router(c)
        self.moe = MoVDE(c)


class Inner(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList([Layer(c, i) for i in range(c.num_hidden_layers)])
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)


class Monet(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Inner(c)
        if not c.tie_word_embeddings:
            self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        hd = c.hidden_size // c.num_attention_heads
        inv = 1.0 / (c.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
        self.register_buffer("inv_freq", inv, persistent=False)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def forward(self, ids, return_routing=False):
        """ids [B,T] -> logits [B,T,V], list of (g1, g2) per router group, hidden."""
        B, T = ids.shape
        h = self.model.embed_tokens(ids)
        pos = torch.arange(T, dtype=torch.float32)
        fr = torch.outer(pos, self.inv_freq)
        emb = torch.cat((fr, fr), dim=-1)
        cos, sin = emb.cos().to(h.dtype), emb.sin().to(h.dtype)
        mask = torch.full((T, T), float("-inf")).triu(1).to(h.dtype)
        routs = []
        g1 = g2 = None
        for i, L in enumerate(self.model.layers):
            h = h + L.self_attn(L.input_layernorm(h), cos, sin, mask)
            x = L.post_attention_layernorm(h)
            if i % self.c.moe_groups == 0:
                g1, g2 = L.router(x)
                routs.append((g1, g2))
            h = h + L.moe(x, g1, g2)
        h = self.model.norm(h)
        W = self.model.embed_tokens.weight if self.c.tie_word_embeddings else self.lm_head.weight
        return h @ W.t(), routs


def aux_losses(routs):
    """Paper's L_unif (KL(uniform || batch-mean routing prob), per head and factor) and
    L_amb (1 - max routing prob, averaged over tokens), each averaged over heads, the two
    factors and the router groups."""
    lu, la, n = 0.0, 0.0, 0
    for g1, g2 in routs:
        for g in (g1, g2):
            E = g.shape[-1]
            gb = g.reshape(-1, g.shape[-2], E).mean(0)                   # [H, E]
            lu = lu + (-(torch.log(gb + 1e-9)).mean(-1) - math.log(E)).mean()
            la = la + (1.0 - g.amax(-1)).mean()
            n += 1
    return lu / n, la / n


# ---------------------------------------------------------------- safetensors (own writer / reader)
def bf16_bytes(t):
    """Round-to-nearest-even float32 -> bfloat16 raw bytes (torch's own .to(bfloat16) rounding)."""
    return t.detach().to(torch.bfloat16).contiguous().view(torch.int16).numpy().tobytes()


def state_for_export(model):
    sd = model.state_dict()
    out = {}
    for k, v in sd.items():
        if k == "inv_freq":
            continue
        out[k] = v
    return out


def save_safetensors(sd, path):
    hdr, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for k in sorted(sd):
        v = sd[k]
        if v.dtype in (torch.int64,):
            b = v.detach().contiguous().numpy().astype("<i8").tobytes(); dt = "I64"
        else:
            b = bf16_bytes(v.float()); dt = "BF16"
        hdr[k] = {"dtype": dt, "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    hj = json.dumps(hdr, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj))); f.write(hj)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    import numpy as np
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for k, meta in hdr.items():
        if k == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        buf = raw[base + a: base + b]
        if meta["dtype"] == "BF16":
            u = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            t = torch.from_numpy(u.view(np.float32).copy())
        elif meta["dtype"] == "I64":
            t = torch.from_numpy(np.frombuffer(buf, dtype="<i8").copy())
        elif meta["dtype"] == "F32":
            t = torch.from_numpy(np.frombuffer(buf, dtype="<f4").copy())
        else:
            raise ValueError(meta["dtype"])
        out[k] = t.reshape(meta["shape"])
    return out


def load_model(dirpath):
    cj = json.load(open(dirpath + "/config.json"))
    keys = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
            "rms_norm_eps", "rope_theta", "max_position_embeddings", "bos_token_id", "eos_token_id",
            "tie_word_embeddings", "moe_experts", "moe_heads", "moe_dim", "moe_topk", "moe_groups"]
    c = Cfg(**{k: cj[k] for k in keys})
    m = Monet(c)
    sd = load_safetensors(dirpath + "/model.safetensors")
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert not unexpected and all(k == "inv_freq" for k in missing), (missing, unexpected)
    m.eval()
    return m
