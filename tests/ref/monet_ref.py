#!/usr/bin/python3
"""tests/ref/monet_ref.py — independent float64 numpy reference for Monet.

Written from shared/DESIGN.md §2 (the Monet equations) and the Hugging Face
tensor layout of modeling_monet.py. It shares no code with the C implementation
and is the oracle of tests/forward: it reads a checkpoint directory itself
(config.json + model.safetensors, or shards named by model.safetensors.index.json;
F32 / F16 / BF16 stored values converted exactly to float64) and runs the whole
prefill in float64.

What it returns, per call of Model.forward(ids, mask):
  logits   [T, V] float64
  routing  one dict per router group r (layers r*G .. min(r*G+G, L)-1):
             z1, z2  [T, Hm, E]  raw router logits
             n1, n2  [T, Hm, E]  BatchNorm-normalised logits
             g1, g2  [T, Hm, E]  sparse softmax weights (zero where inactive)
             m1, m2  [T, Hm, E]  knife-edge margins (see route_factor)
             w       [T, E, E]   w_ij = sum_h g1[h,i] g2[h,j] (unmasked)

Masking (knowledge purge) uses the reference formulation of DESIGN §2: the full
E x E matrix w is expanded, masked entries (group, i, j) set to zero in every
layer of the group, and A_i = sum_j w_ij, D_j = sum_i w_ij recomputed from the
masked matrix.

CLI (for people; the test drivers import the module):
  monet_ref.py info   DIR
  monet_ref.py logits DIR --ids 1,2,3 [--mask 0:1,2;1:3,4] --out FILE.npy|FILE.f32
  monet_ref.py route  DIR --ids 1,2,3 [--out FILE.json]
"""
import argparse
import json
import os
import statistics
import struct
import sys

import numpy as np

# ---------------------------------------------------------------- safetensors

# dtype string -> (numpy dtype of the stored element, element size)
ST_DTYPES = {
    "F64": ("<f8", 8), "F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2),
    "I64": ("<i8", 8), "I32": ("<i4", 4), "I16": ("<i2", 2), "I8": ("i1", 1),
    "U8": ("u1", 1), "BOOL": ("u1", 1),
}
FLOAT_DTYPES = ("F32", "F16", "BF16")


class CheckpointError(Exception):
    """Malformed or inconsistent checkpoint; the message names the file."""


def bf16_bits_to_f32(bits):
    """uint16 bf16 bit patterns -> float32 values (exact)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x):
    """float32 values -> bf16 bit patterns, round to nearest even (NaN kept NaN)."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    return np.where(nan, np.uint16(0x7FC0), rounded).astype(np.uint16)


def read_safetensors_header(path):
    """Return (header dict, data start offset, file size)."""
    name = os.path.basename(path)
    size = os.path.getsize(path)
    if size < 8:
        raise CheckpointError(f"{name}: file too small for a safetensors header ({size} bytes)")
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        if hlen > size - 8:
            raise CheckpointError(f"{name}: header length {hlen} past end of file ({size} bytes)")
        raw = f.read(hlen)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{name}: header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name}: header is not a JSON object")
    return header, 8 + hlen, size


def read_safetensors(path):
    """Read every tensor of one file. Float tensors come back as float64 arrays
    holding exactly the stored values; integer tensors keep their type."""
    name = os.path.basename(path)
    header, start, size = read_safetensors_header(path)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    out = {}
    spans = []
    for tname, info in header.items():
        if tname == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise CheckpointError(f"{name}: tensor {tname}: entry is not a JSON object")
        dt = info.get("dtype")
        if dt not in ST_DTYPES:
            raise CheckpointError(f"{name}: tensor {tname}: unknown dtype {dt!r}")
        npdt, esz = ST_DTYPES[dt]
        try:
            shape = [int(s) for s in info["shape"]]
            b, e = (int(v) for v in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{name}: tensor {tname}: bad shape or data_offsets") from None
        if any(s < 0 for s in shape):
            raise CheckpointError(f"{name}: tensor {tname}: negative dimension in shape {shape}")
        n = int(np.prod(shape)) if shape else 1
        if not (0 <= b <= e <= len(data)):
            raise CheckpointError(f"{name}: tensor {tname}: data offsets [{b},{e}] out of range "
                                  f"(data is {len(data)} bytes)")
        if e - b != n * esz:
            raise CheckpointError(f"{name}: tensor {tname}: shape {shape} needs {n * esz} bytes, "
                                  f"offsets give {e - b}")
        spans.append((b, e, tname))
        arr = np.frombuffer(data[b:e], dtype=npdt).reshape(shape)
        if dt == "BF16":
            arr = bf16_bits_to_f32(arr).astype(np.float64)
        elif dt in ("F32", "F16", "F64"):
            arr = arr.astype(np.float64)
        else:
            arr = arr.copy()
        out[tname] = (dt, arr)
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise CheckpointError(f"{name}: tensors {n0} and {n1} overlap")
    return out


def load_checkpoint(path):
    """Return (config dict, {name: (dtype, float64-or-int array)}, [files])."""
    def read_json(fn):
        try:
            with open(os.path.join(path, fn)) as f:
                return json.load(f)
        except FileNotFoundError:
            raise CheckpointError(f"{fn}: no such file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{fn}: invalid JSON: {e}") from None
    config = read_json("config.json")
    if not isinstance(config, dict):
        raise CheckpointError("config.json: not a JSON object")
    if os.path.exists(os.path.join(path, "model.safetensors.index.json")):
        index = read_json("model.safetensors.index.json")
        wmap = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(wmap, dict):
            raise CheckpointError("model.safetensors.index.json: no weight_map object")
        files = sorted(set(wmap.values()))
    else:
        files = ["model.safetensors"]
        wmap = None
    tensors = {}
    where = {"": "model.safetensors.index.json" if wmap is not None else "model.safetensors"}
    for fn in files:
        fp = os.path.join(path, fn)
        if not os.path.exists(fp):
            raise CheckpointError(f"{fn}: no such file")
        for k, v in read_safetensors(fp).items():
            if wmap is not None and wmap.get(k) != fn:
                raise CheckpointError(f"{fn}: tensor {k} not in the index for this file")
            tensors[k] = v
            where[k] = fn
    validate(config, tensors, where)
    return config, tensors, files


# ---------------------------------------------------------------- the model

def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def relu2(x):
    r = np.maximum(x, 0.0)
    return r * r


def rope(x, theta):
    """HF LLaMA rotate-half RoPE on x [T, heads, hd], positions 0..T-1."""
    T, _, hd = x.shape
    inv_freq = 1.0 / (float(theta) ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    freqs = np.outer(np.arange(T, dtype=np.float64), inv_freq)      # [T, hd/2]
    emb = np.concatenate([freqs, freqs], axis=-1)                     # [T, hd]
    cos, sin = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]
    half = hd // 2
    rot = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rot * sin


def route_factor(z, mean, var, s):
    """Sparse routing of one factor. z [T, Hm, E]; mean, var [Hm]; s = Phi^-1(1-k/E).

    Returns (n, g, margin). margin[t,h,i] is how far n[t,h,i] is from changing
    whether entry i is active: an entry is active iff n >= s or it is the
    head's argmax, so the distance is |n - s|, and, while the head's max is
    below s (only the argmax is active), also |n - (max of the other entries)|.
    The comparer skips entries (and their heads) whose margin is < 1e-5."""
    n = (z - mean[None, :, None]) / np.sqrt(var[None, :, None] + 1e-5)
    nmax = n.max(axis=-1, keepdims=True)
    t = np.minimum(nmax, s)
    active = n >= t
    zz = np.where(active, z, -np.inf)
    zz = zz - zz.max(axis=-1, keepdims=True)
    e = np.where(active, np.exp(zz), 0.0)
    g = e / e.sum(axis=-1, keepdims=True)
    # max over the other entries: the second largest for the argmax, nmax elsewhere
    srt = np.sort(n, axis=-1)
    second = srt[..., -2:-1] if n.shape[-1] > 1 else np.full_like(nmax, -np.inf)
    is_top = n == nmax
    other_max = np.where(is_top, second, nmax)
    margin = np.abs(n - s)
    tie = np.abs(n - other_max)
    margin = np.where(nmax < s + 1e-3, np.minimum(margin, tie), margin)
    return n, g, margin


def expected_shapes(c):
    """{tensor name: shape} a checkpoint with config c must hold (HF layout)."""
    d, V, L = c["hidden_size"], c["vocab_size"], c["num_hidden_layers"]
    H = c["num_attention_heads"]
    KV = c.get("num_key_value_heads") or H
    hd = c.get("head_dim") or d // H
    E, Hm, m, G = c["moe_experts"], c["moe_heads"], c["moe_dim"], c["moe_groups"]
    s = {"model.embed_tokens.weight": [V, d], "model.norm.weight": [d]}
    if not c.get("tie_word_embeddings", False):
        s["lm_head.weight"] = [V, d]
    for l in range(L):
        p = f"model.layers.{l}."
        s[p + "input_layernorm.weight"] = [d]
        s[p + "post_attention_layernorm.weight"] = [d]
        s[p + "self_attn.q_proj.weight"] = [H * hd, d]
        s[p + "self_attn.k_proj.weight"] = [KV * hd, d]
        s[p + "self_attn.v_proj.weight"] = [KV * hd, d]
        s[p + "self_attn.o_proj.weight"] = [d, H * hd]
        if l % G == 0:
            for f in (1, 2):
                s[p + f"router.w{f}.weight"] = [Hm * E, d]
                s[p + f"router.norm{f}.running_mean"] = [Hm]
                s[p + f"router.norm{f}.running_var"] = [Hm]
        if c["moe_decompose"] == "vertical":
            for u in ("u1", "u2"):
                s[p + f"moe.{u}.weight"] = [E * m // 2, d]
                s[p + f"moe.{u}.bias"] = [E * m // 2]
            for v in ("v11", "v12", "v21", "v22"):
                s[p + f"moe.{v}.weight"] = [d // 2, E * m // 2]
            s[p + "moe.b1"] = [E, d // 2]
            s[p + "moe.b2"] = [E, d // 2]
        else:
            s[p + "moe.u.weight"] = [E * m, d]
            s[p + "moe.u.bias"] = [E * m]
            s[p + "moe.v.weight"] = [d, E * m]
            s[p + "moe.b"] = [E, d]
    return s


REQUIRED_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                 "moe_experts", "moe_heads", "moe_dim", "moe_topk", "moe_groups", "moe_decompose")


def validate(c, tensors, where=None):
    """Raise CheckpointError for an inconsistent config or tensor set. where:
    {tensor name: file name} to name the file in messages (missing tensors are
    blamed on the single file, or on the index of a sharded checkpoint)."""
    where = where or {}
    home = where.get("", "")
    def at(name):
        f = where.get(name, home)
        return f"{f}: " if f else ""
    for k in REQUIRED_KEYS:
        if k not in c:
            raise CheckpointError(f"config.json: missing key {k}")
    if not isinstance(c["moe_decompose"], str):
        raise CheckpointError("config.json: moe_decompose is not a string")
    if c["moe_decompose"] not in ("vertical", "horizontal"):
        raise CheckpointError(f"config.json: moe_decompose {c['moe_decompose']!r} unknown")
    H = c["num_attention_heads"]
    KV = c.get("num_key_value_heads") or H
    if "head_dim" not in c and c["hidden_size"] % H:
        raise CheckpointError("config.json: hidden_size not divisible by num_attention_heads")
    if H % KV:
        raise CheckpointError("config.json: num_attention_heads not divisible by num_key_value_heads")
    for name, shape in expected_shapes(c).items():
        if name not in tensors:
            raise CheckpointError(f"{at(name)}missing tensor {name}")
        dt, arr = tensors[name]
        if dt not in FLOAT_DTYPES:
            raise CheckpointError(f"{at(name)}tensor {name}: dtype {dt} is not F32/F16/BF16")
        if list(arr.shape) != list(shape):
            raise CheckpointError(f"{at(name)}tensor {name}: shape {list(arr.shape)}, expected {shape}")


class Model:
    """Monet forward in float64 from a checkpoint's (config, tensors)."""

    def __init__(self, config, tensors):
        c = config
        validate(c, tensors)
        self.config = c
        self.V = int(c["vocab_size"])
        self.d = int(c["hidden_size"])
        self.L = int(c["num_hidden_layers"])
        self.H = int(c["num_attention_heads"])
        self.KV = int(c.get("num_key_value_heads") or self.H)
        self.hd = int(c.get("head_dim") or self.d // self.H)
        self.eps = float(c.get("rms_norm_eps", 1e-6))
        self.theta = float(c.get("rope_theta", 10000.0))
        self.tied = bool(c.get("tie_word_embeddings", False))
        self.E = int(c["moe_experts"])
        self.Hm = int(c["moe_heads"])
        self.m = int(c["moe_dim"])
        self.k = int(c["moe_topk"])
        self.G = int(c["moe_groups"])
        self.decompose = c["moe_decompose"]
        self.s = statistics.NormalDist().inv_cdf(1.0 - self.k / self.E)
        self.t = {k: v[1] for k, v in tensors.items()}
        self.n_groups = (self.L + self.G - 1) // self.G

    def w(self, name):
        if name not in self.t:
            raise CheckpointError(f"tensor {name} missing")
        return self.t[name]

    def group_layers(self):
        return [list(range(r * self.G, min(r * self.G + self.G, self.L))) for r in range(self.n_groups)]

    def n_params(self):
        """Parameter count as torch's model.parameters() gives it: every stored
        tensor except the BatchNorm buffers (running_mean / running_var /
        num_batches_tracked); tied lm_head is not stored, so counted once."""
        skip = ("running_mean", "running_var", "num_batches_tracked")
        return int(sum(a.size for k, a in self.t.items() if not k.endswith(skip)))

    # -- blocks

    def attention(self, l, x):
        p = f"model.layers.{l}.self_attn."
        T = x.shape[0]
        q = (x @ self.w(p + "q_proj.weight").T).reshape(T, self.H, self.hd)
        k = (x @ self.w(p + "k_proj.weight").T).reshape(T, self.KV, self.hd)
        v = (x @ self.w(p + "v_proj.weight").T).reshape(T, self.KV, self.hd)
        q, k = rope(q, self.theta), rope(k, self.theta)
        rep = self.H // self.KV
        out = np.zeros((T, self.H, self.hd))
        causal = np.triu(np.ones((T, T), dtype=bool), 1)
        for h in range(self.H):
            kv = h // rep
            sc = q[:, h, :] @ k[:, kv, :].T / np.sqrt(self.hd)
            sc = np.where(causal, -np.inf, sc)
            sc = sc - sc.max(axis=-1, keepdims=True)
            pr = np.exp(sc)
            pr /= pr.sum(axis=-1, keepdims=True)
            out[:, h, :] = pr @ v[:, kv, :]
        return out.reshape(T, self.H * self.hd) @ self.w(p + "o_proj.weight").T

    def router(self, l, x):
        p = f"model.layers.{l}.router."
        T = x.shape[0]
        res = {}
        for f in (1, 2):
            z = (x @ self.w(p + f"w{f}.weight").T).reshape(T, self.Hm, self.E)
            mean = self.w(p + f"norm{f}.running_mean").astype(np.float64)
            var = self.w(p + f"norm{f}.running_var").astype(np.float64)
            n, g, mg = route_factor(z, mean, var, self.s)
            res[f"z{f}"], res[f"n{f}"], res[f"g{f}"], res[f"m{f}"] = z, n, g, mg
        res["w"] = np.einsum("thi,thj->tij", res["g1"], res["g2"])
        return res

    def moe(self, l, x, W):
        """MoE output for x [T, d] given the (possibly masked) expert weight
        matrix W [T, E, E]; A_i = sum_j W_ij, D_j = sum_i W_ij."""
        p = f"model.layers.{l}.moe."
        T, E, d = x.shape[0], self.E, self.d
        A = W.sum(axis=2)
        D = W.sum(axis=1)
        if self.decompose == "vertical":
            m2, d2 = self.m // 2, d // 2
            a = relu2(x @ self.w(p + "u1.weight").T + self.w(p + "u1.bias")).reshape(T, E, m2)
            b = relu2(x @ self.w(p + "u2.weight").T + self.w(p + "u2.bias")).reshape(T, E, m2)
            V11 = self.w(p + "v11.weight").reshape(d2, E, m2)
            V12 = self.w(p + "v12.weight").reshape(d2, E, m2)
            V21 = self.w(p + "v21.weight").reshape(d2, E, m2)
            V22 = self.w(p + "v22.weight").reshape(d2, E, m2)
            Wb = np.einsum("tij,tjm->tim", W, b)        # sum_j w_ij b_j, per i
            Wa = np.einsum("tij,tim->tjm", W, a)        # sum_i w_ij a_i, per j
            top = (np.einsum("dim,tim->td", V11, A[:, :, None] * a)
                   + np.einsum("dim,tim->td", V12, Wb)
                   + A @ self.w(p + "b1"))
            bot = (np.einsum("djm,tjm->td", V21, Wa)
                   + np.einsum("djm,tjm->td", V22, D[:, :, None] * b)
                   + D @ self.w(p + "b2"))
            return np.concatenate([top, bot], axis=-1)
        m = self.m
        a = relu2(x @ self.w(p + "u.weight").T + self.w(p + "u.bias")).reshape(T, E, m)
        Vm = self.w(p + "v.weight").reshape(d, E, m)
        Wa = np.einsum("tij,tim->tjm", W, a)
        return np.einsum("djm,tjm->td", Vm, Wa) + D @ self.w(p + "b")

    # -- whole model

    def forward(self, ids, mask=None, router_hook=None, steer=None):
        """ids: list of token ids. mask: iterable of (group, i, j) to purge.
        steer: iterable of (group, i, j, strength): w_ij += strength at every
        token of the group (after masking).
        router_hook(group, layer, x) is called before routing at each router
        layer (used by make_checkpoint to calibrate BatchNorm statistics).
        Returns (logits [T, V], routing list)."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.min() < 0 or ids.max() >= self.V:
            raise ValueError(f"token id out of range 0..{self.V - 1}")
        masks = {}
        for (r, i, j) in (mask or ()):
            masks.setdefault(int(r), []).append((int(i), int(j)))
        h = self.w("model.embed_tokens.weight")[ids].copy()
        routing = []
        W = None
        for l in range(self.L):
            p = f"model.layers.{l}."
            h = h + self.attention(l, rmsnorm(h, self.w(p + "input_layernorm.weight"), self.eps))
            x = rmsnorm(h, self.w(p + "post_attention_layernorm.weight"), self.eps)
            r = l // self.G
            if l % self.G == 0:
                if router_hook is not None:
                    router_hook(r, l, x)
                res = self.router(l, x)
                routing.append(res)
                W = res["w"].copy()
                if r in masks:
                    ii, jj = zip(*masks[r])
                    W[:, list(ii), list(jj)] = 0.0
                for (sr, si, sj, ss) in (steer or ()):
                    if int(sr) == r:
                        W[:, int(si), int(sj)] += float(ss)
            h = h + self.moe(l, x, W)
        h = rmsnorm(h, self.w("model.norm.weight"), self.eps)
        head = self.w("model.embed_tokens.weight" if self.tied else "lm_head.weight")
        return h @ head.T, routing


def load_model(path):
    config, tensors, files = load_checkpoint(path)
    return Model(config, tensors)


# ---------------------------------------------------------------- routing views

def sparse_routing(model, routing, ids):
    """The routing in the JSON shape `monet-probe route --json` prints, plus
    per-head minimum margins: tokens[t].groups[r] = {group, g1, g2, experts,
    margin1, margin2} with g1 = [[[i, p], ...] per head], experts sorted by w
    descending, margin_f = [min margin of head h]."""
    T = len(ids)
    toks = []
    for t in range(T):
        groups = []
        for r, res in enumerate(routing):
            gr = {"group": r}
            for f in (1, 2):
                g = res[f"g{f}"][t]
                gr[f"g{f}"] = [[[int(i), float(g[h, i])] for i in np.nonzero(g[h] > 0)[0]]
                               for h in range(model.Hm)]
                gr[f"margin{f}"] = [float(v) for v in res[f"m{f}"][t].min(axis=-1)]
            w = res["w"][t]
            ii, jj = np.nonzero(w > 0)
            ex = sorted(((float(w[i, j]), int(i), int(j)) for i, j in zip(ii, jj)),
                        key=lambda e: (-e[0], e[1], e[2]))
            gr["experts"] = [{"i": i, "j": j, "w": ww} for ww, i, j in ex]
            groups.append(gr)
        toks.append({"pos": t, "id": int(ids[t]), "groups": groups})
    return {"n_tokens": T, "n_groups": model.n_groups, "moe_experts": model.E,
            "moe_heads": model.Hm, "group_layers": model.group_layers(), "tokens": toks}


def parse_mask(s):
    """"0:1,2;1:3,4" -> [(0,1,2),(1,3,4)]."""
    out = []
    for part in filter(None, (p.strip() for p in (s or "").split(";"))):
        r, ij = part.split(":")
        i, j = ij.split(",")
        out.append((int(r), int(i), int(j)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=["info", "logits", "route"])
    ap.add_argument("dir")
    ap.add_argument("--ids", default="1")
    ap.add_argument("--mask", default="")
    ap.add_argument("--out", default="-")
    a = ap.parse_args(argv)
    try:
        model = load_model(a.dir)
    except CheckpointError as e:
        print(f"monet_ref: {e}", file=sys.stderr)
        return 2
    if a.cmd == "info":
        print(json.dumps({"n_params": model.n_params(), "n_groups": model.n_groups,
                          "moe_decompose": model.decompose, "group_layers": model.group_layers(),
                          "threshold_s": model.s}))
        return 0
    ids = [int(v) for v in a.ids.split(",")]
    logits, routing = model.forward(ids, mask=parse_mask(a.mask))
    if a.cmd == "logits":
        if a.out.endswith(".npy"):
            np.save(a.out, logits)
        elif a.out == "-":
            sys.stdout.buffer.write(logits.astype("<f4").tobytes())
        else:
            logits.astype("<f4").tofile(a.out)
        return 0
    js = json.dumps(sparse_routing(model, routing, ids))
    if a.out == "-":
        print(js)
    else:
        with open(a.out, "w") as f:
            f.write(js)
    return 0


if __name__ == "__main__":
    sys.exit(main())
