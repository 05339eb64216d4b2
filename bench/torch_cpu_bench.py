#!/usr/bin/python3
"""bench/torch_cpu_bench.py — the PyTorch side of `make bench`: the same work
as bench_forward on the same checkpoint: its bf16 weights widened to float32
(so both sides compute with identical weights), the same token ids
((i*7919 + 13) % vocab), logits of the last position only, the checkpoint's
router statistics. Formulation: the official einsum one (tests/ref/
torch_bench.py's TorchMonet, DESIGN.md §2); masking there has no sparse
form, so the masked run expands w_ij over E x E per token, as the reference
implementation would. No fused PyTorch formulation exists in this repository.

Fairness: the caller sets OMP_WAIT_POLICY=PASSIVE and the thread count of the
C side; one warm-up, then R repetitions with unmasked and masked runs
alternating in this one process; min / median / max.

usage: torch_cpu_bench.py --model DIR --tokens T --threads N --reps R [--mask FILE]
prints one JSON line; exit 77 with "skipped: ..." when torch is missing.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))


def keep_matrix(path, n_groups, E, torch):
    keep = torch.ones(n_groups, E, E)
    for g in json.load(open(path))["groups"]:
        for i, j in g["experts"]:
            keep[g["group"], i, j] = 0.0
    return keep


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


def forward_last(model, ids, keep, torch):
    """TorchMonet.forward with logits of the last position only."""
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
    last = model.rmsnorm(h[-1:], model.p["model.norm.weight"])
    return last @ model.p["lm_head.weight"].T


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--mask")
    a = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("skipped: python3-torch is not installed")
        return 77
    from torch_bench import TorchMonet
    torch.set_num_threads(a.threads)
    model = TorchMonet.from_checkpoint(a.model, dtype=torch.float32)
    V = model.cfg["vocab_size"]
    ids = torch.tensor([(i * 7919 + 13) % V for i in range(a.tokens)], dtype=torch.long)
    n_groups = (model.L + model.G - 1) // model.G
    keep = keep_matrix(a.mask, n_groups, model.E, torch) if a.mask else None
    variants = [("unmasked", None)] + ([("masked", keep)] if keep is not None else [])
    times = {name: [] for name, _ in variants}
    with torch.inference_mode():
        for r in range(-1, a.reps):                  # r = -1: warm-up
            for name, k in variants:
                t0 = time.perf_counter()
                forward_last(model, ids, k, torch)
                if r >= 0:
                    times[name].append(time.perf_counter() - t0)
    out = {"tokens": a.tokens, "threads": a.threads, "torch": torch.__version__, "formulation": "einsum"}
    for name, ts in times.items():
        rates = sorted(a.tokens / t for t in ts)
        out[f"prefill_{name}_tok_s"] = {"min": rates[0], "median": statistics.median(rates), "max": rates[-1],
                                        "n": len(rates)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
