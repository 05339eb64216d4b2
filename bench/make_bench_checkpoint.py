#!/usr/bin/python3
"""bench/make_bench_checkpoint.py — a random Monet checkpoint for benchmarks,
written tensor by tensor (bf16) so that large shapes (the public 1.4B:
d=2048, 24 layers, 16 heads, E=512, Hm=8, m=16, k=8, G=4, vocab 32000; about
2.9 GB on disk) fit in memory. The weights follow tests/ref/make_checkpoint.py's
scales; the router running statistics are not calibrated by a forward pass
(too slow at 1.4B with the float64 reference): mean 0, variance 1 is what
W x has for these scales (|x|^2 ~ d after RMSNorm, W entries N(0, 1/d)), so
about k experts per head stay active.

usage: make_bench_checkpoint.py --out DIR [--shape 1.4b|medium] [--layers L]
       [--decompose vertical|horizontal] [--seed S]
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

SHAPES = {
    "1.4b": dict(vocab=32000, d=2048, L=24, H=16, E=512, Hm=8, m=16, k=8, G=4),
    "medium": dict(vocab=32000, d=512, L=8, H=8, E=128, Hm=4, m=16, k=8, G=4),
}


def tensor_list(s, vertical):
    """[(name, shape, std, mean)] in file order; std None = running stats."""
    d, V, E, Hm, m = s["d"], s["vocab"], s["E"], s["Hm"], s["m"]
    out = [("model.embed_tokens.weight", (V, d), 0.5, 0.0), ("model.norm.weight", (d,), 0.1, 1.0),
           ("lm_head.weight", (V, d), 2.0 / np.sqrt(d), 0.0)]
    for l in range(s["L"]):
        p = f"model.layers.{l}."
        out += [(p + "input_layernorm.weight", (d,), 0.1, 1.0), (p + "post_attention_layernorm.weight", (d,), 0.1, 1.0)]
        for w in "qkv":
            out.append((p + f"self_attn.{w}_proj.weight", (d, d), d ** -0.5, 0.0))
        out.append((p + "self_attn.o_proj.weight", (d, d), 0.5 / np.sqrt(d), 0.0))
        if l % s["G"] == 0:
            for f in (1, 2):
                out.append((p + f"router.w{f}.weight", (Hm * E, d), d ** -0.5, 0.0))
                out.append((p + f"router.norm{f}.running_mean", (Hm,), None, 0.0))
                out.append((p + f"router.norm{f}.running_var", (Hm,), None, 1.0))
        if vertical:
            m2 = m // 2
            for u in ("u1", "u2"):
                out += [(p + f"moe.{u}.weight", (E * m2, d), d ** -0.5, 0.0), (p + f"moe.{u}.bias", (E * m2,), 0.2, 0.0)]
            for v in ("v11", "v12", "v21", "v22"):
                out.append((p + f"moe.{v}.weight", (d // 2, E * m2), 0.6 / np.sqrt(m2 * Hm), 0.0))
            out += [(p + "moe.b1", (E, d // 2), 0.1, 0.0), (p + "moe.b2", (E, d // 2), 0.1, 0.0)]
        else:
            out += [(p + "moe.u.weight", (E * m, d), d ** -0.5, 0.0), (p + "moe.u.bias", (E * m,), 0.2, 0.0),
                    (p + "moe.v.weight", (d, E * m), 0.6 / np.sqrt(m * Hm), 0.0), (p + "moe.b", (E, d), 0.1, 0.0)]
    return out


def to_bf16(x):
    u = x.astype(np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="1.4b")
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--decompose", choices=["vertical", "horizontal"], default="vertical")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    s = dict(SHAPES[a.shape])
    if a.layers:
        s["L"] = a.layers
    tl = tensor_list(s, a.decompose == "vertical")
    header, off = {}, 0
    for name, shape, _, _ in tl:
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    hj = json.dumps(header).encode()
    hj += b" " * (-len(hj) % 8)
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for name, shape, std, mean in tl:
            if std is None:
                x = np.full(shape, mean, np.float32)
            else:
                x = rng.standard_normal(shape, dtype=np.float32)
                x *= np.float32(std)
                x += np.float32(mean)
            f.write(to_bf16(x).tobytes())
    cfg = {"architectures": ["MonetForCausalLM"], "model_type": "monet", "vocab_size": s["vocab"],
           "hidden_size": s["d"], "intermediate_size": None, "num_hidden_layers": s["L"],
           "num_attention_heads": s["H"], "num_key_value_heads": s["H"], "rms_norm_eps": 1e-6,
           "rope_theta": 10000.0, "max_position_embeddings": 4096, "bos_token_id": 1, "eos_token_id": 2,
           "tie_word_embeddings": False, "hidden_act": "relu2", "moe_experts": s["E"], "moe_heads": s["Hm"],
           "moe_dim": s["m"], "moe_topk": s["k"], "moe_groups": s["G"], "moe_decompose": a.decompose,
           "torch_dtype": "bfloat16"}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    print(f"{a.out}: {a.shape} ({s['L']} layers, {a.decompose}), {off / 1e9:.2f} GB bf16", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
