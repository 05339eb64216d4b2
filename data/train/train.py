#!/usr/bin/python3
"""Train monet-tiny (Monet-VD) on CPU. Seeded: the same command gives the same batches and
(up to float non-associativity across torch builds / thread counts) the same weights.

  /usr/bin/python3 data/train/train.py --steps N   (see data/README.md for the exact command)

Each training sequence (T+1 tokens) is a random window of ONE label's token stream
(documents joined as <s> doc </s>), the label drawn with fixed mixture weights, so a batch
mixes labels but a sequence has one. Loss = CE + lambda * (L_unif + L_amb), lambda = 1e-3.
"""
import argparse, json, math, os, sys, time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import monet as M
import spmtok

LABELS = ["python", "cpp", "java", "javascript", "lua", "php", "english", "toxic", "neutral"]
WEIGHTS = {"python": .12, "cpp": .12, "java": .10, "javascript": .12, "lua": .07, "php": .10,
           "english": .17, "toxic": .10, "neutral": .10}
# v2 (issue 21): the six languages get equal shares (every pool now holds >= 3 M characters)
WEIGHTS_BALANCED = {"python": .11, "cpp": .11, "java": .11, "javascript": .11, "lua": .11, "php": .11,
                    "english": .14, "toxic": .10, "neutral": .10}


def token_streams(work, tok):
    out = {}
    for lab in LABELS:
        cache = f"{work}/tok_{lab}.npy"
        if os.path.exists(cache):
            out[lab] = np.load(cache); continue
        docs = [json.loads(l)["text"] for l in open(f"{work}/train_{lab}.jsonl", encoding="utf-8")]
        ids = tok.encode_docs(docs)
        s = []
        for d in ids:
            s.append(1); s.extend(d); s.append(2)
        arr = np.array(s, dtype=np.uint16)
        np.save(cache, arr); out[lab] = arr
    return out


def valid_batches(tok, path, T, per_label=8):
    """Fixed held-out windows per label for the running validation loss (first T+1 tokens of docs)."""
    rows = [json.loads(l) for l in open(path, encoding="utf-8")]
    out = {}
    for lab in LABELS:
        docs = [r["text"] for r in rows if r["lang"] == lab][:per_label * 3]
        ids = tok.encode_docs(docs)
        s = []
        for d in ids:
            s.append(1); s.extend(d); s.append(2)
        n = min(per_label, len(s) // (T + 1))
        out[lab] = torch.tensor(np.array(s[:n * (T + 1)], dtype=np.int64).reshape(n, T + 1))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="data/train/work")
    ap.add_argument("--out", default="data/monet-tiny")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--aux", type=float, default=1e-3, help="lambda for L_unif and L_amb")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--max-minutes", type=float, default=1e9, help="safety stop (breaks the schedule; logged)")
    ap.add_argument("--stop-at", type=int, default=0,
                    help="stop after this step without changing the LR schedule of --steps (reproduces a time-limited run)")
    ap.add_argument("--pilot", action="store_true", help="time a few steps and exit, no export")
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--experts", type=int, default=32)
    ap.add_argument("--moe-heads", type=int, default=4)
    ap.add_argument("--moe-dim", type=int, default=16)
    ap.add_argument("--topk", type=int, default=4)
    ap.add_argument("--groups", type=int, default=2)
    ap.add_argument("--mix", choices=("v1", "balanced"), default="v1", help="label mixture weights")
    ap.add_argument("--valid", default="data/corpus/valid.jsonl")
    a = ap.parse_args()
    mix = WEIGHTS if a.mix == "v1" else WEIGHTS_BALANCED

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.RandomState(a.seed)
    os.makedirs(a.out, exist_ok=True)
    tok = spmtok.Tok(f"{a.out}/tokenizer.model", f"{a.work}/tok")
    t0 = time.time()
    streams = token_streams(a.work, tok)
    print("tokenized", {k: len(v) for k, v in streams.items()}, f"{time.time() - t0:.1f}s", flush=True)
    vb = valid_batches(tok, a.valid, a.ctx)

    c = M.Cfg(vocab_size=len(tok.vocab), hidden_size=a.d, num_hidden_layers=a.layers,
              num_attention_heads=a.heads, num_key_value_heads=a.heads, max_position_embeddings=a.ctx,
              moe_experts=a.experts, moe_heads=a.moe_heads, moe_dim=a.moe_dim, moe_topk=a.topk,
              moe_groups=a.groups)
    model = M.Monet(c)
    nparam = sum(p.numel() for p in model.parameters())
    print("params", nparam, flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
    nodecay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    labs = np.array(LABELS)
    w = np.array([mix[l] for l in LABELS]); w = w / w.sum()

    def lr_at(s):
        if s < a.warmup:
            return a.lr * (s + 1) / a.warmup
        p = (s - a.warmup) / max(1, a.steps - a.warmup)
        return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))

    def batch():
        ls = rng.choice(len(LABELS), size=a.batch, p=w)
        rows = []
        for li in ls:
            s = streams[LABELS[li]]
            o = rng.randint(0, len(s) - a.ctx - 1)
            rows.append(s[o:o + a.ctx + 1].astype(np.int64))
        return torch.from_numpy(np.stack(rows))

    @torch.no_grad()
    def evaluate():
        model.eval()
        res = {}
        for lab, x in vb.items():
            lg, _ = model(x[:, :-1])
            res[lab] = torch.nn.functional.cross_entropy(lg.reshape(-1, lg.shape[-1]), x[:, 1:].reshape(-1)).item()
        model.train()
        res["mean"] = float(np.mean([res[l] for l in LABELS]))
        return res

    log = open(f"{a.work}/train_log.csv", "w")
    log.write("step,tokens,seconds,lr,train_loss,lm_loss,l_unif,l_amb,val_loss_eval_mode\n")
    model.train()
    start = time.time()
    ema = None
    stopped_early = None
    for step in range(a.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        x = batch()
        logits, routs = model(x[:, :-1])
        lm = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        lu, la = M.aux_losses(routs)
        loss = lm + a.aux * (lu + la)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = lm.item() if ema is None else 0.98 * ema + 0.02 * lm.item()
        el = time.time() - start
        tokens = (step + 1) * a.batch * a.ctx
        if a.pilot and step in (4, 9, 19):
            print(f"pilot step {step + 1}: {tokens / el:.0f} tok/s  loss {lm.item():.3f}", flush=True)
            if step == 19:
                return
        v = ""
        if (step + 1) % a.eval_every == 0 or step == a.steps - 1:
            ev = evaluate(); v = f"{ev['mean']:.4f}"
            print(f"step {step + 1} tok {tokens} {el / 60:.1f}min lr {lr_at(step):.2e} train {ema:.3f} "
                  f"unif {lu.item():.3f} amb {la.item():.3f} val " +
                  " ".join(f"{k}:{ev[k]:.2f}" for k in LABELS + ["mean"]), flush=True)
        log.write(f"{step + 1},{tokens},{el:.1f},{lr_at(step):.3e},{loss.item():.4f},{lm.item():.4f},"
                  f"{lu.item():.4f},{la.item():.4f},{v}\n")
        if (step + 1) % 20 == 0:
            log.flush()
        if a.stop_at and step + 1 >= a.stop_at:
            stopped_early = step + 1
            print("STOP at step", step + 1, "(--stop-at)", flush=True)
            break
        if el > a.max_minutes * 60:
            stopped_early = step + 1
            print("SAFETY STOP at step", step + 1, flush=True)
            break
    wall = time.time() - start
    steps_done = stopped_early or a.steps
    ev = evaluate()
    log.close()
    torch.save(model.state_dict(), f"{a.work}/final_fp32.pt")
    with open(f"{a.out}/config.json", "w") as f:
        json.dump(c.to_json(), f, indent=2)
    M.save_safetensors(M.state_for_export(model), f"{a.out}/model.safetensors")
    summary = {"seed": a.seed, "steps": steps_done, "planned_steps": a.steps, "batch": a.batch, "ctx": a.ctx,
               "tokens_seen": steps_done * a.batch * a.ctx, "wall_seconds": round(wall, 1),
               "threads": a.threads, "params": nparam, "final_train_lm_loss_ema": ema,
               "final_val_loss_eval_mode": ev, "args": vars(a), "label_weights": mix,
               "train_stream_tokens": {k: int(len(v)) for k, v in streams.items()},
               "torch": torch.__version__}
    json.dump(summary, open(f"{a.work}/train_summary.json", "w"), indent=1)
    if os.path.abspath(a.out) == os.path.abspath("data/monet-tiny"):
        json.dump(summary, open("data/train/train_summary.json", "w"), indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
