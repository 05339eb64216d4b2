#!/usr/bin/python3
"""tests/ref/make_checkpoint.py — tiny random Monet checkpoints in the exact
Hugging Face layout (config.json + model.safetensors, or shards + index), for
the forward tests and fixtures. Nothing generated here is ever committed.

Weights are random with realistic scales (unit-ish activations, norm weights
around 1, non-zero biases), stored as F32 / F16 / BF16 (BF16 rounded to
nearest even). The router BatchNorm running statistics are calibrated on the
*stored* weights: the reference forward (monet_ref.py) runs over a few random
sequences and each group's running_mean / running_var are set from the per-head
statistics of z, so that every head activates about moe_topk experts per token.

  make_checkpoint.py --out DIR [--decompose vertical|horizontal] [--dtype F32|F16|BF16]
      [--shards N] [--layers L] [--groups G] [--hidden d] [--heads H] [--kv-heads KV]
      [--experts E] [--moe-dim m] [--moe-heads Hm] [--topk k] [--vocab V] [--tied]
      [--seed S] [--tokenizer PATH] [--quiet]
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import monet_ref  # noqa: E402

TORCH_DTYPE = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


# ---------------------------------------------------------------- safetensors writer

def encode(arr, dtype):
    """Return (raw little-endian bytes, float64 array of the stored values)."""
    a = np.asarray(arr)
    if dtype == "F32":
        s = a.astype("<f4")
        return s.tobytes(), s.astype(np.float64)
    if dtype == "F16":
        s = a.astype("<f2")
        return s.tobytes(), s.astype(np.float64)
    if dtype == "BF16":
        bits = monet_ref.f32_to_bf16_bits(a.astype(np.float32)).astype("<u2")
        return bits.tobytes(), monet_ref.bf16_bits_to_f32(bits).astype(np.float64)
    if dtype == "I64":
        s = a.astype("<i8")
        return s.tobytes(), s
    raise ValueError(dtype)


def write_safetensors(path, entries, metadata=None):
    """entries: {name: (dtype string, shape list, raw bytes)}. Tensors sorted by
    name, contiguous data_offsets, header padded with spaces to 8 bytes, like
    the reference writer."""
    header = {"__metadata__": metadata if metadata is not None else {"format": "pt"}}
    off = 0
    order = sorted(entries)
    for name in order:
        dt, shape, raw = entries[name]
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(hj).to_bytes(8, "little"))
        f.write(hj)
        for name in order:
            f.write(entries[name][2])
    return off


def write_checkpoint(out, config, entries, shards=1):
    """Write config.json and the tensors (one file, or `shards` files + index)."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    for fn in os.listdir(out):
        if fn.endswith(".safetensors") or fn == "model.safetensors.index.json":
            os.remove(os.path.join(out, fn))
    if shards <= 1:
        write_safetensors(os.path.join(out, "model.safetensors"), entries)
        return
    names = sorted(entries)
    sizes = [len(entries[n][2]) for n in names]
    total = sum(sizes)
    # contiguous split balanced by bytes, every shard non-empty
    bounds, acc, cut = [], 0, 1
    for idx, sz in enumerate(sizes):
        acc += sz
        if cut < shards and acc >= total * cut / shards and len(names) - idx - 1 >= shards - cut:
            bounds.append(idx + 1)
            cut += 1
    while len(bounds) < shards - 1:           # degenerate: force cuts at the end
        bounds.append(len(names) - (shards - 1 - len(bounds)))
    edges = [0] + bounds + [len(names)]
    wmap = {}
    for s in range(shards):
        fn = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: entries[n] for n in names[edges[s]:edges[s + 1]]}
        write_safetensors(os.path.join(out, fn), part)
        for n in part:
            wmap[n] = fn
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": wmap}, f, indent=2)
        f.write("\n")


def sentencepiece_vocab_size(path):
    """Count the `pieces` (field 1) of a SentencePiece ModelProto."""
    data = open(path, "rb").read()
    pos, n = 0, 0

    def varint(p):
        v, sh = 0, 0
        while True:
            b = data[p]
            p += 1
            v |= (b & 0x7F) << sh
            sh += 7
            if not b & 0x80:
                return v, p
    while pos < len(data):
        key, pos = varint(pos)
        field, wt = key >> 3, key & 7
        if wt == 0:
            _, pos = varint(pos)
        elif wt == 1:
            pos += 8
        elif wt == 5:
            pos += 4
        elif wt == 2:
            ln, pos = varint(pos)
            pos += ln
            if field == 1:
                n += 1
        else:
            raise ValueError(f"{path}: not a SentencePiece model")
    return n


# ---------------------------------------------------------------- random model

def make_config(a):
    return {
        "architectures": ["MonetForCausalLM"],
        "model_type": "monet",
        "vocab_size": a.vocab,
        "hidden_size": a.hidden,
        "intermediate_size": None,
        "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads,
        "num_key_value_heads": a.kv_heads,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "max_position_embeddings": 2048,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "tie_word_embeddings": bool(a.tied),
        "hidden_act": "relu2",
        "moe_experts": a.experts,
        "moe_heads": a.moe_heads,
        "moe_dim": a.moe_dim,
        "moe_topk": a.topk,
        "moe_groups": a.groups,
        "moe_decompose": a.decompose,
        "torch_dtype": TORCH_DTYPE[a.dtype],
    }


def random_tensors(cfg, rng):
    """float32 random weights by name (router stats: placeholders 0 / 1)."""
    d, V, L = cfg["hidden_size"], cfg["vocab_size"], cfg["num_hidden_layers"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = d // H
    E, Hm, m, G = cfg["moe_experts"], cfg["moe_heads"], cfg["moe_dim"], cfg["moe_groups"]

    def nrm(shape, std, mean=0.0):
        return (mean + std * rng.standard_normal(shape)).astype(np.float32)
    t = {"model.embed_tokens.weight": nrm((V, d), 0.5),
         "model.norm.weight": nrm((d,), 0.1, 1.0)}
    if not cfg["tie_word_embeddings"]:
        t["lm_head.weight"] = nrm((V, d), 2.0 / np.sqrt(d))
    for l in range(L):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = nrm((d,), 0.1, 1.0)
        t[p + "post_attention_layernorm.weight"] = nrm((d,), 0.1, 1.0)
        t[p + "self_attn.q_proj.weight"] = nrm((H * hd, d), 1.0 / np.sqrt(d))
        t[p + "self_attn.k_proj.weight"] = nrm((KV * hd, d), 1.0 / np.sqrt(d))
        t[p + "self_attn.v_proj.weight"] = nrm((KV * hd, d), 1.0 / np.sqrt(d))
        t[p + "self_attn.o_proj.weight"] = nrm((d, H * hd), 0.5 / np.sqrt(H * hd))
        if l % G == 0:
            for f in (1, 2):
                t[p + f"router.w{f}.weight"] = nrm((Hm * E, d), 1.0 / np.sqrt(d))
                t[p + f"router.norm{f}.running_mean"] = np.zeros(Hm, np.float32)
                t[p + f"router.norm{f}.running_var"] = np.ones(Hm, np.float32)
                t[p + f"router.norm{f}.num_batches_tracked"] = np.array(1000, np.int64)
        if cfg["moe_decompose"] == "vertical":
            m2, d2 = m // 2, d // 2
            vs = 0.6 / np.sqrt(m2 * Hm)
            for u in ("u1", "u2"):
                t[p + f"moe.{u}.weight"] = nrm((E * m2, d), 1.0 / np.sqrt(d))
                t[p + f"moe.{u}.bias"] = nrm((E * m2,), 0.2)
            for v in ("v11", "v12", "v21", "v22"):
                t[p + f"moe.{v}.weight"] = nrm((d2, E * m2), vs)
            t[p + "moe.b1"] = nrm((E, d2), 0.1)
            t[p + "moe.b2"] = nrm((E, d2), 0.1)
        else:
            t[p + "moe.u.weight"] = nrm((E * m, d), 1.0 / np.sqrt(d))
            t[p + "moe.u.bias"] = nrm((E * m,), 0.2)
            t[p + "moe.v.weight"] = nrm((d, E * m), 0.6 / np.sqrt(m * Hm))
            t[p + "moe.b"] = nrm((E, d), 0.1)
    return t


class _Stop(Exception):
    pass


def calibrate(model, cfg, rng, dtype, entries, n_seq=4, seq_len=32):
    """Set each group's router running stats from z over random sequences,
    group by group (later groups see the calibrated earlier ones). Updates the
    model's tensors and the stored entries."""
    seqs = [rng.integers(0, cfg["vocab_size"], seq_len) for _ in range(n_seq)]
    for r in range(model.n_groups):
        l = r * model.G
        xs = []

        def hook(group, layer, x):
            if group == r:
                xs.append(x)
                raise _Stop()
        for s in seqs:
            try:
                model.forward(list(s), router_hook=hook)
            except _Stop:
                pass
        x = np.concatenate(xs)
        for f in (1, 2):
            p = f"model.layers.{l}.router."
            z = (x @ model.t[p + f"w{f}.weight"].T).reshape(len(x), model.Hm, model.E)
            mean = z.mean(axis=(0, 2))
            var = z.var(axis=(0, 2), ddof=1)
            for nm, val in (("running_mean", mean), ("running_var", var)):
                raw, stored = encode(val.astype(np.float32), dtype)
                entries[p + f"norm{f}.{nm}"] = (dtype, [model.Hm], raw)
                model.t[p + f"norm{f}.{nm}"] = stored


def routing_stats(model, rng, n_seq=2, seq_len=32):
    """Mean active entries per head and per token over random sequences."""
    act = []
    for _ in range(n_seq):
        _, routing = model.forward(list(rng.integers(0, model.V, seq_len)))
        for res in routing:
            for f in (1, 2):
                act.append((res[f"g{f}"] > 0).sum(axis=-1).ravel())
    a = np.concatenate(act)
    return float(a.mean()), int(a.min()), int(a.max())


def build(a):
    if a.tokenizer:
        a.vocab = sentencepiece_vocab_size(a.tokenizer)
    for what, num, den in (("hidden", a.hidden, a.heads), ("heads", a.heads, a.kv_heads)):
        if num % den:
            raise SystemExit(f"make_checkpoint: {what} {num} not divisible by {den}")
    if (a.hidden // a.heads) % 2 or a.moe_dim % 2 or a.hidden % 2:
        raise SystemExit("make_checkpoint: head_dim, moe_dim and hidden must be even")
    cfg = make_config(a)
    rng = np.random.default_rng(a.seed)
    raw = random_tensors(cfg, rng)
    entries, stored = {}, {}
    for name, arr in raw.items():
        dt = "I64" if arr.dtype == np.int64 else a.dtype
        b, s = encode(arr, dt)
        entries[name] = (dt, list(arr.shape), b)
        stored[name] = (dt, s)
    model = monet_ref.Model(cfg, stored)
    calibrate(model, cfg, rng, a.dtype, entries)
    write_checkpoint(a.out, cfg, entries, a.shards)
    if a.tokenizer:
        shutil.copyfile(a.tokenizer, os.path.join(a.out, "tokenizer.model"))
    return model, rng


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="write a tiny random Monet checkpoint")
    ap.add_argument("--out", required=True)
    ap.add_argument("--decompose", choices=["vertical", "horizontal"], default="vertical")
    ap.add_argument("--dtype", choices=["F32", "F16", "BF16"], default="F32")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--groups", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=None)
    ap.add_argument("--experts", type=int, default=16)
    ap.add_argument("--moe-dim", type=int, default=8)
    ap.add_argument("--moe-heads", type=int, default=2)
    ap.add_argument("--topk", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--tied", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.kv_heads is None:
        a.kv_heads = a.heads
    return a


def main(argv=None):
    a = parse_args(argv)
    model, rng = build(a)
    if not a.quiet:
        mean, lo, hi = routing_stats(model, rng)
        print(f"make_checkpoint: {a.out}: {a.decompose} {a.dtype} L={a.layers} G={a.groups} "
              f"d={a.hidden} H={a.heads}/{a.kv_heads} E={a.experts} m={a.moe_dim} Hm={a.moe_heads} "
              f"k={a.topk} V={a.vocab} shards={a.shards} params={model.n_params()} "
              f"active/head mean {mean:.2f} (min {lo}, max {hi})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
