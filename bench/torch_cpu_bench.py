#!/usr/bin/python3
"""bench/torch_cpu_bench.py — the PyTorch side of `make bench`: the same work
as bench_forward on the same checkpoint: its bf16 weights widened to float32
(so both sides compute with identical weights), the same token ids
((i*7919 + 13) % vocab), logits of the last position only, the checkpoint's
router statistics. Two formulations, timed in this one process:

  einsum  the official one (tests/ref/torch_bench.py's TorchMonet, DESIGN.md
          §2): every expert's U and V applied to every token (dense GEMMs),
          the mixture by torch.einsum; masking there has no sparse form, so
          the masked run expands w_ij over E x E per token, as the reference
          implementation would.
  fused   the same math in the fastest form found for PyTorch on this CPU,
          without E x E: q/k/v, the two router factors and U1/U2 each one
          GEMM (concatenated weights); attention by baddbmm + softmax on
          contiguous scores; U and V as dense GEMMs over all experts (as
          einsum); the mixtures sum_j w_ij b_j, sum_i w_ij a_i contracted
          over heads first and only over the routing's non-zero entries
          (per head the active experts' weights and ids, gathered once per
          router group: a [T, Hm, K, m'] gather, a weighted sum, a
          scatter-add into [T, E, m']); V and the biases accumulated into
          the residual by addmm_. Masking is exact and sparse: per token the
          masked pairs' w_ij = sum_h g1[h,i] g2[h,j] are evaluated, the
          non-zero ones (masked *active* pairs, ~12 a token at 5%) are
          subtracted from A_i, D_j and from the two mixtures (DESIGN.md §2).
          Tried and dropped: dispatching each expert's tokens (padded index
          lists, one batched matmul per layer over experts, index_add back),
          i.e. only active experts' U rows / V columns: slower than the
          dense GEMMs here, as CPU bmm runs one m/2 = 8-column GEMM per
          expert and the [E, C, d] gathers cost as much as the FLOPs saved
          (the whole forward 2.4x slower than einsum, 1 thread, medium VD);
          V as a CSR sparse x dense product over the active experts' blocks
          and U by torch.sparse.sampled_addmm (no faster than the dense
          GEMMs at the medium or the 1.4B shape, slower with 2 threads).

Both formulations read the same float32 tensors: the loader widens the bf16
file one tensor at a time straight into float32 storage (q/k/v, w1/w2, u1/u2
concatenated row-wise; V stored transposed, per expert), the einsum side gets
views of that storage (contiguous, or the transpose of a contiguous matrix, so
its GEMMs run as fast as on its own copies), and nothing is held twice.
Before loading, MemAvailable is compared with what the run needs (4 bytes per
parameter + activations); if short it prints one "skipped: ..." line (exit 0).

Fairness: the caller sets OMP_WAIT_POLICY=PASSIVE and the thread count of the
C side; one warm-up, then R repetitions of einsum unmasked, fused unmasked,
einsum masked, fused masked (alternating in this one process),
torch.inference_mode(); min / median / max.

usage: torch_cpu_bench.py --model DIR --tokens T --threads N --reps R [--mask FILE]
           prints one JSON line; exit 77 with "skipped: ..." when torch is missing.
       torch_cpu_bench.py --check --model DIR [--mask FILE] [--tokens T]
           fused == einsum logits (max |diff| / max |einsum|, every position,
           unmasked and masked) on DIR and on two small random checkpoints
           (tests/ref/make_checkpoint.py: VD and HD, bf16, GQA, tied
           embeddings, a partial router group); one line; exit 1 above 1e-4.
"""
import argparse
import json
import math
import os
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "ref"))
TOL = 1e-4


# ---------------------------------------------------------------- lean loading

def read_headers(path):
    """[(file, data start, {name: info})] of the checkpoint's safetensors files."""
    idx = os.path.join(path, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) \
        else ["model.safetensors"]
    out = []
    for fn in files:
        fp = os.path.join(path, fn)
        with open(fp, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            h = json.loads(f.read(n))
        h.pop("__metadata__", None)
        out.append((fp, 8 + n, h))
    return out


def fused_name(name):
    """(storage name, part number) for tensors stored concatenated, else None."""
    pre, _, last = name.rpartition(".")
    for parts, fused in ((("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), "self_attn.qkv"),
                         (("router.w1", "router.w2"), "router.w12"), (("moe.u1", "moe.u2"), "moe.u12"),
                         (("moe.u",), "moe.u_")):
        for i, p in enumerate(parts):
            if pre.endswith("." + p) and last in ("weight", "bias"):
                return pre[: -len(p)] + fused + "." + last, i, len(parts)
    return None


def load_lean(path, torch):
    """(config, {name: float32 tensor or view}, storage {name: tensor}, n_params).
    Each tensor is read into a scratch buffer of its own size, widened by
    copy_ into its final float32 place, and the buffer dropped."""
    cfg = json.load(open(os.path.join(path, "config.json")))
    dts = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}
    heads = read_headers(path)
    infos = {k: v for _, _, h in heads for k, v in h.items()}
    store, p = {}, {}
    groups = {}
    for k in infos:
        fn = fused_name(k)
        if fn:
            groups.setdefault(fn[0], {})[fn[1]] = k
    for name, parts in groups.items():      # allocate concatenated storage
        rows = sum(infos[parts[i]]["shape"][0] for i in sorted(parts))
        rest = infos[parts[0]]["shape"][1:]
        store[name] = torch.empty([rows] + rest, dtype=torch.float32)
        off = 0
        for i in sorted(parts):
            r = infos[parts[i]]["shape"][0]
            p[parts[i]] = store[name][off: off + r]
            off += r
    n_params = 0
    for fp, start, h in heads:
        with open(fp, "rb") as f:
            for k, info in sorted(h.items(), key=lambda kv: kv[1]["data_offsets"][0]):
                if info["dtype"] not in dts:
                    continue                    # num_batches_tracked (I64): unused
                b, e = info["data_offsets"]
                buf = bytearray(e - b)
                f.seek(start + b)
                f.readinto(buf)
                src = torch.frombuffer(buf, dtype=dts[info["dtype"]]).view(info["shape"]) if e > b \
                    else torch.empty(info["shape"], dtype=dts[info["dtype"]])
                if "running_" not in k:
                    n_params += src.numel()
                if k in p:
                    p[k].copy_(src)
                elif k.endswith((".v.weight", ".v11.weight", ".v12.weight", ".v21.weight", ".v22.weight")):
                    t = torch.empty(src.shape[::-1], dtype=torch.float32)
                    t.copy_(src.T)              # [E*m, d]: expert e's columns are rows e*m..
                    store[k + "T"] = t
                    p[k] = t.T                  # the einsum side's [d, E*m] view
                else:
                    p[k] = src.to(torch.float32) if src.dtype != torch.float32 else src.clone()
                del src, buf
    return cfg, p, store, n_params


def count_params(path):
    return sum(math.prod(i["shape"]) for _, _, h in read_headers(path) for k, i in h.items()
               if "running_" not in k and i["dtype"] != "I64")


def mem_available():
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def activation_bytes(cfg, T, masked):
    """A generous bound on the forward's live intermediates (float32)."""
    E, m, d, H = cfg["moe_experts"], cfg["moe_dim"], cfg["hidden_size"], cfg["num_attention_heads"]
    Hm = cfg["moe_heads"]
    b = 4 * (8 * T * E * m + 4 * H * T * T + 16 * T * d + 8 * T * Hm * E + T * cfg["vocab_size"])
    if masked:
        b += 4 * 3 * T * E * E            # the einsum side's w [T, E, E], w * keep, einsum
    return b + (400 << 20)                # torch itself


# ---------------------------------------------------------------- einsum formulation

def keep_matrix(path, n_groups, E, torch):
    keep = torch.ones(n_groups, E, E)
    for g in json.load(open(path))["groups"]:
        for i, j in g["experts"]:
            keep[g["group"], i, j] = 0.0
    return keep


def mask_pairs(path, n_groups, E, torch):
    """Per group (I, J) long tensors of the masked pairs."""
    sets = [set() for _ in range(n_groups)]
    for g in json.load(open(path))["groups"]:
        sets[g["group"]].update((int(i), int(j)) for i, j in g["experts"])
    return [(torch.tensor([i for i, _ in sorted(s)], dtype=torch.long),
             torch.tensor([j for _, j in sorted(s)], dtype=torch.long)) for s in sets]


def moe_masked(model, l, x, g1, g2, keep, torch):
    """The einsum mixture with w_ij = sum_h g1[h,i] g2[h,j] * keep[i,j] expanded."""
    q = f"model.layers.{l}.moe."
    p, E = model.p, model.E
    w = torch.einsum("thi,thj->tij", g1, g2) * keep
    A, D = w.sum(-1), w.sum(1)
    if model.vertical:
        x1 = torch.relu(x @ p[q + "u1.weight"].T + p[q + "u1.bias"]).square().unflatten(-1, (E, -1))
        x2 = torch.relu(x @ p[q + "u2.weight"].T + p[q + "u2.bias"]).square().unflatten(-1, (E, -1))
        top = (x1 * A[..., None]).flatten(-2) @ p[q + "v11.weight"].T \
            + torch.einsum("tij,tjm->tim", w, x2).flatten(-2) @ p[q + "v12.weight"].T + A @ p[q + "b1"]
        bot = torch.einsum("tij,tim->tjm", w, x1).flatten(-2) @ p[q + "v21.weight"].T \
            + (x2 * D[..., None]).flatten(-2) @ p[q + "v22.weight"].T + D @ p[q + "b2"]
        return torch.cat((top, bot), dim=-1)
    a = torch.relu(x @ p[q + "u.weight"].T + p[q + "u.bias"]).square().unflatten(-1, (E, -1))
    return torch.einsum("tij,tim->tjm", w, a).flatten(-2) @ p[q + "v.weight"].T + D @ p[q + "b"]


def head_weight(model):
    return model.p["model.embed_tokens.weight"] if model.cfg.get("tie_word_embeddings") \
        else model.p["lm_head.weight"]


def forward_einsum(model, ids, keep, torch, last=True):
    """TorchMonet.forward with logits of the last position only (or all)."""
    h = model.p["model.embed_tokens.weight"][ids]
    for l in range(model.L):
        q = f"model.layers.{l}."
        h = h + model.attention(l, model.rmsnorm(h, model.p[q + "input_layernorm.weight"]))
        x = model.rmsnorm(h, model.p[q + "post_attention_layernorm.weight"])
        if l % model.G == 0:
            g1, g2 = model.router(l, x)
        if keep is None:
            h = h + model.moe(l, x, g1, g2)
        else:
            h = h + moe_masked(model, l, x, g1, g2, keep[l // model.G], torch)
    out = model.rmsnorm(h[-1:] if last else h, model.p["model.norm.weight"])
    return out @ head_weight(model).T


# ---------------------------------------------------------------- fused formulation

class Fused:
    def __init__(self, model, store, torch):
        self.m, self.s, self.torch = model, store, torch
        M = model
        self.hd, self.H, self.KV = M.hd, M.H, M.KV
        self.m2 = M.m // 2 if M.vertical else M.m

    def rope_tables(self, T):
        torch = self.torch
        hd = self.hd
        inv = 1.0 / (self.m.theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        fr = torch.outer(torch.arange(T, dtype=torch.float64), inv)
        return fr.cos().float()[:, None, :], fr.sin().float()[:, None, :]

    def rope(self, x, cos, sin):
        x1, x2 = x[..., : self.hd // 2], x[..., self.hd // 2:]
        return self.torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)

    def attention(self, l, x, cos, sin, causal):
        torch, M = self.torch, self.m
        T, H, KV, hd = x.shape[0], self.H, self.KV, self.hd
        qkv = x @ self.s[f"model.layers.{l}.self_attn.qkv.weight"].T
        q = self.rope(qkv[:, : H * hd].view(T, H, hd), cos, sin).transpose(0, 1)        # [H, T, hd]
        k = self.rope(qkv[:, H * hd: (H + KV) * hd].view(T, KV, hd), cos, sin).transpose(0, 1)
        v = qkv[:, (H + KV) * hd:].view(T, KV, hd).transpose(0, 1)
        if KV != H:
            k = k.repeat_interleave(H // KV, dim=0)
            v = v.repeat_interleave(H // KV, dim=0)
        att = torch.baddbmm(causal, q, k.transpose(1, 2), alpha=1.0 / math.sqrt(hd)).softmax(-1)
        o = torch.bmm(att, v).transpose(0, 1).reshape(T, H * hd)
        return o @ M.p[f"model.layers.{l}.self_attn.o_proj.weight"].T

    def router(self, l, x):
        torch, M = self.torch, self.m
        q = f"model.layers.{l}.router."
        z = (x @ self.s[q + "w12.weight"].T).view(x.shape[0], 2, M.Hm, M.E)
        gs = []
        for f in (1, 2):
            zf = z[:, f - 1]
            mu = M.p[q + f"norm{f}.running_mean"]
            var = M.p[q + f"norm{f}.running_var"]
            n = (zf - mu[:, None]) / torch.sqrt(var[:, None] + 1e-5)
            t = n.max(-1, keepdim=True).values.clamp(max=M.threshold)
            gs.append(zf.masked_fill(n < t, float("-inf")).softmax(-1))
        return gs

    def heads(self, g):
        """The non-zero routing weights of each head: (values, expert ids) [T, Hm, K],
        K = the most experts any head activates (padding: weight 0)."""
        K = int((g > 0).sum(-1).max())
        return g.topk(K, dim=-1, sorted=False)

    def group(self, l, x, pairs):
        """Routing state of the router group starting at layer l."""
        torch = self.torch
        g1, g2 = self.router(l, x)
        A, D = g1.sum(1), g2.sum(1)
        st = {"h1": self.heads(g1), "h2": self.heads(g2), "corr": None,
              "tix": torch.arange(x.shape[0])[:, None, None]}
        if pairs is not None and pairs[0].numel():
            I, J = pairs
            wm = (g1[:, :, I] * g2[:, :, J]).sum(1)            # [T, masked pairs]
            t, k = wm.nonzero(as_tuple=True)                   # masked *active* pairs
            val = wm[t, k]
            ii, jj = I[k], J[k]
            A = A.index_put((t, ii), -val, accumulate=True)
            D = D.index_put((t, jj), -val, accumulate=True)
            st["corr"] = (t, ii, jj, val[:, None])
        st["A"], st["D"] = A, D
        return st

    def mix(self, src, hs, hd, tix):
        """y[t, j] = sum_h gd[h, j] sum_i gs[h, i] src[t, i] over the active
        entries only: (gathered [T, Hm, K, m'] weighted sum, then a scatter-add)."""
        vs, is_ = hs
        vd, id_ = hd
        c = (vs[..., None] * src[tix, is_]).sum(2)              # [T, Hm, m'] per head
        y = src.new_zeros(src.shape)
        y.index_put_((tix, id_), vd[..., None] * c[:, :, None, :], accumulate=True)
        return y

    def moe(self, l, x, h, st):
        """h += MoE(x) in place."""
        torch, M = self.torch, self.m
        q = f"model.layers.{l}.moe."
        T, E = x.shape[0], M.E
        A, D, corr, tix = st["A"], st["D"], st["corr"], st["tix"]
        if M.vertical:
            u = torch.addmm(self.s[q + "u12.bias"], x, self.s[q + "u12.weight"].T).relu_().square_()
            a, b = u[:, : E * self.m2].view(T, E, -1), u[:, E * self.m2:].view(T, E, -1)
            yb = self.mix(b, st["h2"], st["h1"], tix)            # sum_j w_ij b_j  [T, E, m/2]
            ya = self.mix(a, st["h1"], st["h2"], tix)            # sum_i w_ij a_i
            if corr is not None:
                t, ii, jj, val = corr
                yb.index_put_((t, ii), -val * b[t, jj], accumulate=True)
                ya.index_put_((t, jj), -val * a[t, ii], accumulate=True)
            d2 = h.shape[1] // 2
            top, bot = h[:, :d2], h[:, d2:]
            top.addmm_(A, M.p[q + "b1"]).addmm_((a * A[..., None]).view(T, -1), self.s[q + "v11.weightT"]) \
               .addmm_(yb.view(T, -1), self.s[q + "v12.weightT"])
            bot.addmm_(D, M.p[q + "b2"]).addmm_(ya.view(T, -1), self.s[q + "v21.weightT"]) \
               .addmm_((b * D[..., None]).view(T, -1), self.s[q + "v22.weightT"])
            return
        a = torch.addmm(self.s[q + "u_.bias"], x, self.s[q + "u_.weight"].T).relu_().square_().view(T, E, -1)
        y = self.mix(a, st["h1"], st["h2"], tix)
        if corr is not None:
            t, ii, jj, val = corr
            y.index_put_((t, jj), -val * a[t, ii], accumulate=True)
        h.addmm_(D, M.p[q + "b"]).addmm_(y.view(T, -1), self.s[q + "v.weightT"])

    def forward(self, ids, pairs=None, last=True):
        torch, M = self.torch, self.m
        T = ids.shape[0]
        cos, sin = self.rope_tables(T)
        causal = torch.zeros(T, T).masked_fill_(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        h = M.p["model.embed_tokens.weight"][ids]
        for l in range(M.L):
            q = f"model.layers.{l}."
            h += self.attention(l, M.rmsnorm(h, M.p[q + "input_layernorm.weight"]), cos, sin, causal)
            x = M.rmsnorm(h, M.p[q + "post_attention_layernorm.weight"])
            if l % M.G == 0:
                st = self.group(l, x, pairs[l // M.G] if pairs is not None else None)
            self.moe(l, x, h, st)
        out = M.rmsnorm(h[-1:] if last else h, M.p["model.norm.weight"])
        return out @ head_weight(M).T


# ---------------------------------------------------------------- driver

def load_model(path, torch):
    from torch_bench import TorchMonet
    cfg, p, store, n_params = load_lean(path, torch)
    model = TorchMonet(cfg, p, dtype=torch.float32)       # float32 tensors: .to() keeps them, no copy
    return model, Fused(model, store, torch), n_params


def bench_ids(model, T, torch):
    V = model.cfg["vocab_size"]
    return torch.tensor([(i * 7919 + 13) % V for i in range(T)], dtype=torch.long)


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max())


def parity(path, mask, T, torch):
    """(max rel err unmasked, masked, masked active pairs per token) of fused vs einsum, every position."""
    model, fused, _ = load_model(path, torch)
    ids = bench_ids(model, T, torch)
    n_groups = (model.L + model.G - 1) // model.G
    keep = keep_matrix(mask, n_groups, model.E, torch)
    pairs = mask_pairs(mask, n_groups, model.E, torch)
    with torch.inference_mode():
        e0 = rel_err(fused.forward(ids, None, last=False), forward_einsum(model, ids, None, torch, last=False))
        e1 = rel_err(fused.forward(ids, pairs, last=False), forward_einsum(model, ids, keep, torch, last=False))
    return e0, e1


def random_mask(path, E, n_groups, pct, seed):
    rng = random.Random(seed)
    allx = [(r, i, j) for r in range(n_groups) for i in range(E) for j in range(E)]
    sel = rng.sample(allx, max(1, int(len(allx) * pct / 100)))
    json.dump({"format": "monet-probe-mask", "version": 1, "model": {"moe_experts": E, "n_groups": n_groups},
               "groups": [{"group": r, "experts": [[i, j] for (g, i, j) in sel if g == r]} for r in range(n_groups)]},
              open(path, "w"))


def check(a, torch):
    tmp = tempfile.mkdtemp()
    try:
        res = []
        if a.model:
            mask = a.mask
            if not mask:
                cfg = json.load(open(os.path.join(a.model, "config.json")))
                mask = os.path.join(tmp, "mask.json")
                G = cfg["moe_groups"]
                random_mask(mask, cfg["moe_experts"], (cfg["num_hidden_layers"] + G - 1) // G, 5.0, 5)
            res.append((os.path.basename(os.path.normpath(a.model)), parity(a.model, mask, a.tokens, torch)))
        for dec in ("vertical", "horizontal"):
            d = os.path.join(tmp, dec)
            subprocess.run([sys.executable, os.path.join(HERE, "..", "tests", "ref", "make_checkpoint.py"),
                            "--out", d, "--decompose", dec, "--dtype", "BF16", "--layers", "3", "--groups", "2",
                            "--heads", "4", "--kv-heads", "2", "--tied", "--quiet", "--seed", "3"], check=True)
            mask = os.path.join(tmp, f"mask_{dec}.json")
            random_mask(mask, 16, 2, 20.0, 7)
            res.append((f"small {dec[0].upper()}D", parity(d, mask, 24, torch)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    worst = max(max(e) for _, e in res)
    ok = worst <= TOL
    print("torch fused == einsum logits (max|diff|/max|einsum|, every position, unmasked / masked): "
          + ", ".join(f"{n} {e0:.1e} / {e1:.1e}" for n, (e0, e1) in res)
          + (f": ok (<= {TOL:g})" if ok else f": FAILED (> {TOL:g})"))
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--mask")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("skipped: python3-torch is not installed")
        return 77
    torch.set_num_threads(a.threads)
    if a.check:
        return check(a, torch)
    if not a.model:
        ap.error("--model is required")
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    n = count_params(a.model)
    need, have = 4 * n + activation_bytes(cfg, a.tokens, bool(a.mask)), mem_available()
    if have is not None and have < need:
        print(f"skipped: the torch side needs about {need / 2**30:.1f} GiB ({n / 1e9:.2f}B params x 4 bytes + "
              f"activations), MemAvailable is {have / 2**30:.1f} GiB")
        return 0
    model, fused, n_params = load_model(a.model, torch)
    ids = bench_ids(model, a.tokens, torch)
    n_groups = (model.L + model.G - 1) // model.G
    keep = keep_matrix(a.mask, n_groups, model.E, torch) if a.mask else None
    pairs = mask_pairs(a.mask, n_groups, model.E, torch) if a.mask else None
    variants = [("einsum_unmasked", lambda: forward_einsum(model, ids, None, torch)),
                ("fused_unmasked", lambda: fused.forward(ids, None))]
    if keep is not None:
        variants += [("einsum_masked", lambda: forward_einsum(model, ids, keep, torch)),
                     ("fused_masked", lambda: fused.forward(ids, pairs))]
    times = {name: [] for name, _ in variants}
    with torch.inference_mode():
        for r in range(-1, a.reps):                  # r = -1: warm-up
            for name, fn in variants:
                t0 = time.perf_counter()
                fn()
                if r >= 0:
                    times[name].append(time.perf_counter() - t0)
    out = {"tokens": a.tokens, "threads": a.threads, "torch": torch.__version__, "params": n_params,
           "formulations": ["einsum", "fused"]}
    for name, ts in times.items():
        rates = sorted(a.tokens / t for t in ts)
        out[f"prefill_{name}_tok_s"] = {"min": rates[0], "median": statistics.median(rates), "max": rates[-1],
                                        "n": len(rates)}
    out["prefill_unmasked_tok_s"] = out["prefill_einsum_unmasked_tok_s"]      # the keys of the einsum-only version
    if keep is not None:
        out["prefill_masked_tok_s"] = out["prefill_einsum_masked_tok_s"]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
