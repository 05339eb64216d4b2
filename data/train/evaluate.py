#!/usr/bin/python3
"""Evaluate the shipped data/monet-tiny checkpoint (bf16 weights read back into float32, eval mode):

  * held-out perplexity per label on data/corpus/valid.jsonl vs two unigram baselines on the
    same tokens (add-one unigram fitted on the training mixture; oracle MLE unigram fitted on
    that label's own held-out tokens);
  * eval-mode router active-expert counts (and train-mode BatchNorm, on a copy, for comparison);
  * routing skew on data/corpus/probe.jsonl: per router group, mean routing score
    w_ij = sum_h g1[h,i] g2[h,j] per label; specialists = experts whose mean score on one
    label is >= 2x that on the second label (paper's criterion), top experts per label;
  * an exactness check of the VD mixing against the dense E x E per-expert formulation;
  * data/monet-tiny/golden.json for the C parity test;
  * data/train/figures/loss.svg from the training log.
Writes data/train/eval_results.json.
"""
import copy, json, math, os, sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import monet as M
import spmtok

LABELS = ["python", "cpp", "java", "javascript", "lua", "php", "english", "toxic", "neutral"]
CODE = LABELS[:6]


def chunks_for(ids, T):
    s = [1] + ids
    out = []
    for st in range(0, len(s) - 1, T):
        w = s[st:st + T + 1]
        if len(w) >= 2:
            out.append(w)
    return out


def run_windows(model, wins, bs=16):
    """Yield (window, logits, routs) in batches of equal length windows (pad-free: group by length)."""
    by = {}
    for w in wins:
        by.setdefault(len(w), []).append(w)
    for L, ws in sorted(by.items()):
        for k in range(0, len(ws), bs):
            x = torch.tensor(ws[k:k + bs])
            lg, routs = model(x[:, :-1])
            yield x, lg, routs


def dense_check(model, x):
    """Compare MoVDE output with the explicit sum over all E^2 experts for one layer."""
    L = model.model.layers[0]
    c = model.c
    with torch.no_grad():
        h = model.model.embed_tokens(x)[:, :4]
        xx = L.post_attention_layernorm(h)
        g1, g2 = L.router(xx)
        out = L.moe(xx, g1, g2)
        E, m2, d2 = c.moe_experts, c.moe_dim // 2, c.hidden_size // 2
        a = F.relu(L.moe.u1(xx)).square().view(*xx.shape[:2], E, m2)
        b = F.relu(L.moe.u2(xx)).square().view(*xx.shape[:2], E, m2)
        W = torch.einsum("bthi,bthj->btij", g1, g2)
        V11 = L.moe.v11.weight.view(d2, E, m2); V12 = L.moe.v12.weight.view(d2, E, m2)
        V21 = L.moe.v21.weight.view(d2, E, m2); V22 = L.moe.v22.weight.view(d2, E, m2)
        top = (torch.einsum("btij,dim,btim->btd", W, V11, a) + torch.einsum("btij,dim,btjm->btd", W, V12, b)
               + torch.einsum("btij,id->btd", W, L.moe.b1))
        bot = (torch.einsum("btij,djm,btim->btd", W, V21, a) + torch.einsum("btij,djm,btjm->btd", W, V22, b)
               + torch.einsum("btij,jd->btd", W, L.moe.b2))
        ref = torch.cat((top, bot), -1)
        return float((out - ref).abs().max()), float(ref.abs().max())


def svg_loss(csv_path, out_path):
    rows = [l.strip().split(",") for l in open(csv_path)][1:]
    tok = [int(r[1]) / 1e6 for r in rows]
    tr = [float(r[5]) for r in rows]
    sm, e = [], None
    for v in tr:
        e = v if e is None else 0.95 * e + 0.05 * v
        sm.append(e)
    vv = [(int(r[1]) / 1e6, float(r[8])) for r in rows if len(r) > 8 and r[8]]
    W, H, pl, pr, pt, pb = 720, 400, 60, 20, 30, 50
    x0, x1 = 0, max(tok)
    y0, y1 = 1.0, 8.5
    X = lambda v: pl + (v - x0) / (x1 - x0) * (W - pl - pr)
    Y = lambda v: pt + (y1 - min(max(v, y0), y1)) / (y1 - y0) * (H - pt - pb)
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>']
    for yv in range(1, 9):
        s.append(f'<line x1="{pl}" y1="{Y(yv):.1f}" x2="{W - pr}" y2="{Y(yv):.1f}" stroke="#ddd"/>'
                 f'<text x="{pl - 8}" y="{Y(yv) + 4:.1f}" text-anchor="end">{yv}</text>')
    nt = 6
    for k in range(nt + 1):
        xv = x1 * k / nt
        s.append(f'<line x1="{X(xv):.1f}" y1="{pt}" x2="{X(xv):.1f}" y2="{H - pb}" stroke="#eee"/>'
                 f'<text x="{X(xv):.1f}" y="{H - pb + 16}" text-anchor="middle">{xv:.1f}</text>')
    s.append(f'<text x="{(W + pl) / 2}" y="{H - 12}" text-anchor="middle">tokens seen (millions)</text>')
    s.append(f'<text x="16" y="{H / 2}" transform="rotate(-90 16 {H / 2})" text-anchor="middle">cross-entropy (nats/token)</text>')
    s.append('<polyline fill="none" stroke="#9ecae1" stroke-width="1" points="' +
             " ".join(f"{X(a):.1f},{Y(b):.1f}" for a, b in zip(tok, tr)) + '"/>')
    s.append('<polyline fill="none" stroke="#08519c" stroke-width="2" points="' +
             " ".join(f"{X(a):.1f},{Y(b):.1f}" for a, b in zip(tok, sm)) + '"/>')
    s.append('<polyline fill="none" stroke="#d94801" stroke-width="2" points="' +
             " ".join(f"{X(a):.1f},{Y(b):.1f}" for a, b in vv) + '"/>')
    for a, b in vv:
        s.append(f'<circle cx="{X(a):.1f}" cy="{Y(b):.1f}" r="2.5" fill="#d94801"/>')
    s.append(f'<text x="{W - 250}" y="{pt + 15}" fill="#08519c">train LM loss (EMA; light: per step)</text>')
    s.append(f'<text x="{W - 250}" y="{pt + 32}" fill="#d94801">held-out loss, eval mode (9 labels mean)</text>')
    s.append(f'<text x="{pl}" y="{pt - 10}">monet-tiny training loss</text></svg>')
    open(out_path, "w").write("\n".join(s))


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    # usage: evaluate.py [MODEL_DIR [WORK_DIR [RESULTS_DIR]]] (defaults: the shipped run's)
    mdir = sys.argv[1] if len(sys.argv) > 1 else "data/monet-tiny"
    work = sys.argv[2] if len(sys.argv) > 2 else "data/train/work"
    rdir = sys.argv[3] if len(sys.argv) > 3 else "data/train"
    model = M.load_model(mdir)
    c = model.c
    T = c.max_position_embeddings
    tok = spmtok.Tok(f"{mdir}/tokenizer.model", f"{work}/tok")
    res = {"config": c.to_json()}

    # ---------------- perplexity
    valid = [json.loads(l) for l in open("data/corpus/valid.jsonl", encoding="utf-8")]
    vids = tok.encode_docs([r["text"] for r in valid])
    V = c.vocab_size
    sys.path.insert(0, "data/train")
    from train import WEIGHTS
    if os.path.exists(f"{work}/train_summary.json"):     # the run's own mixture (v2: balanced)
        WEIGHTS = json.load(open(f"{work}/train_summary.json"))["label_weights"]
    uni = np.zeros(V)
    for lab in LABELS:
        s = np.load(f"{work}/tok_{lab}.npy").astype(np.int64)
        cnt = np.bincount(s, minlength=V).astype(np.float64)
        uni += WEIGHTS[lab] * cnt / cnt.sum()
    uni = (uni * 1e7 + 1) / (uni * 1e7 + 1).sum()          # add-one smoothing at 10M-token scale
    logu = np.log(uni)
    ppl = {}
    with torch.no_grad():
        for lab in LABELS:
            wins = [w for r, ids in zip(valid, vids) if r["lang"] == lab for w in chunks_for(ids, T)]
            nll, n, tgt_all = 0.0, 0, []
            for x, lg, _ in run_windows(model, wins):
                y = x[:, 1:]
                nll += F.cross_entropy(lg.reshape(-1, V), y.reshape(-1), reduction="sum").item()
                n += y.numel(); tgt_all.append(y.reshape(-1).numpy())
            tg = np.concatenate(tgt_all)
            u_nll = -logu[tg].sum()
            oc = np.bincount(tg, minlength=V).astype(np.float64)
            o_nll = -(oc[oc > 0] * np.log(oc[oc > 0] / oc.sum())).sum()
            docs = sum(1 for r in valid if r["lang"] == lab)
            ppl[lab] = {"docs": docs, "tokens": int(n), "model_loss": nll / n, "model_ppl": math.exp(nll / n),
                        "unigram_train_ppl": math.exp(u_nll / n), "unigram_oracle_ppl": math.exp(o_nll / n)}
            print(lab, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in ppl[lab].items()}, flush=True)
    res["heldout"] = ppl

    # ---------------- routing on probe (eval mode)
    probe = [json.loads(l) for l in open("data/corpus/probe.jsonl", encoding="utf-8")]
    pids = tok.encode_docs([r["text"] for r in probe])
    E, Hm, k = c.moe_experts, c.moe_heads, c.moe_topk
    G = (c.num_hidden_layers + c.moe_groups - 1) // c.moe_groups
    S = {lab: torch.zeros(G, E, E, dtype=torch.float64) for lab in LABELS}
    ntok = {lab: 0 for lab in LABELS}
    WS, WL, WN = [], [], []
    act = [[np.zeros(E + 1, dtype=np.int64) for _ in range(2)] for _ in range(G)]
    with torch.no_grad():
        for lab in LABELS:
            wins = [w[:T + 1] for r, ids in zip(probe, pids) if r["lang"] == lab for w in chunks_for(ids, T)[:1]]
            for x, lg, routs in run_windows(model, wins):
                sl = slice(1, None)     # skip the BOS position (identical in every document)
                per_win = torch.stack([torch.einsum("bthi,bthj->bij", g1[:, sl].double(), g2[:, sl].double())
                                       for g1, g2 in routs], 1)               # [B, G, E, E]
                WS.append(per_win); WL.extend([lab] * x.shape[0]); WN.extend([x.shape[1] - 2] * x.shape[0])
                for gi, (g1, g2) in enumerate(routs):
                    a1, a2 = g1[:, sl], g2[:, sl]
                    S[lab][gi] += per_win[:, gi].sum(0)
                    for f, g in enumerate((a1, a2)):
                        act[gi][f] += np.bincount((g > 0).sum(-1).reshape(-1).numpy(), minlength=E + 1)
                ntok[lab] += x.shape[0] * (x.shape[1] - 2)
    mean = {lab: (S[lab] / max(1, ntok[lab])) for lab in LABELS}
    res["probe_tokens"] = ntok
    actstats = []
    for gi in range(G):
        for f in range(2):
            h = act[gi][f]; tot = h.sum()
            actstats.append({"group": gi, "factor": f + 1, "mean_active_per_head": float((h * np.arange(E + 1)).sum() / tot),
                             "frac_exactly_1": float(h[1] / tot), "frac_ge_2k": float(h[2 * k:].sum() / tot),
                             "max": int(np.nonzero(h)[0].max()), "hist": h.tolist()})
    # train-mode (batch statistics) on a copy, for comparison
    tm = copy.deepcopy(model); tm.train()
    wins = [w[:T + 1] for r, ids in zip(probe, pids) for w in chunks_for(ids, T)[:1] if len(w) == T + 1][:64]
    with torch.no_grad():
        x = torch.tensor(wins)
        _, routs = tm(x[:, :-1])
        res["train_mode_mean_active_per_head"] = [[float((g > 0).sum(-1).float().mean()) for g in gg] for gg in routs]
    res["eval_mode_active"] = actstats
    print("active (eval mode):", [(a["group"], a["factor"], round(a["mean_active_per_head"], 2), round(a["frac_exactly_1"], 3)) for a in actstats])
    print("active (train-mode BN):", res["train_mode_mean_active_per_head"])

    def specialists(labels, floor_frac):
        out = []
        for gi in range(G):
            M_ = torch.stack([mean[l][gi].reshape(-1) for l in labels])          # [nl, E^2]
            srt, idx = M_.sort(0, descending=True)
            top, sec, who = srt[0], srt[1], idx[0]
            avg = M_.mean().item()
            ok = (top >= 2 * sec) & (top > 0) & (top >= floor_frac * avg)
            cnt = {l: int(((who == li) & ok).sum()) for li, l in enumerate(labels)}
            tops = {}
            for li, l in enumerate(labels):
                others = torch.cat([M_[:li], M_[li + 1:]]).amax(0)
                ratio = M_[li] / (others + 1e-12)
                used = M_[li] >= floor_frac * avg if floor_frac > 0 else M_[li] > 0
                r = torch.where(used, ratio, torch.zeros_like(ratio))
                best = r.argsort(descending=True)[:5]
                tops[l] = [{"expert": f"{gi}:{int(e) // E},{int(e) % E}", "flat": int(e), "mean_score": round(float(M_[li, e]), 5),
                            "ratio_vs_next": round(float(ratio[e]), 2)} for e in best]
            out.append({"group": gi, "n_experts": E * E, "specialists": cnt, "total": int(ok.sum()),
                        "share_pct": round(100 * int(ok.sum()) / (E * E), 2), "top_experts": tops,
                        "mean_score_per_expert": avg})
        return out

    # permutation baseline: the same counts with the label of each probe window shuffled
    # (label sizes kept) -- what the criterion finds by chance with this many tokens
    WSt = torch.cat(WS); WNt = torch.tensor(WN, dtype=torch.float64)
    real_mean = mean
    perm_counts = []
    prng = np.random.RandomState(0)
    for rep in range(3):
        lab_perm = np.array(WL)[prng.permutation(len(WL))]
        mean = {}
        for lab in LABELS:
            sel = torch.from_numpy(lab_perm == lab)
            mean[lab] = WSt[sel].sum(0) / WNt[sel].sum()
        perm_counts.append({"all9": [g["total"] for g in specialists(LABELS, 0.0)],
                            "all9_floor": [g["total"] for g in specialists(LABELS, 0.5)],
                            "code6_floor": [g["total"] for g in specialists(CODE, 0.5)],
                            "toxic_vs_neutral_floor": [g["total"] for g in specialists(["toxic", "neutral"], 0.5)]})
    mean = real_mean
    res["specialists_permutation_baseline"] = perm_counts
    print("permutation baseline:", perm_counts)
    res["specialists_all9"] = specialists(LABELS, 0.0)
    res["specialists_all9_floor"] = specialists(LABELS, 0.5)
    res["specialists_code6"] = specialists(CODE, 0.0)
    res["specialists_code6_floor"] = specialists(CODE, 0.5)
    res["specialists_toxic_vs_neutral"] = specialists(["toxic", "neutral"], 0.0)
    res["specialists_toxic_vs_neutral_floor"] = specialists(["toxic", "neutral"], 0.5)
    for key in ("specialists_all9", "specialists_all9_floor", "specialists_code6", "specialists_code6_floor",
                "specialists_toxic_vs_neutral", "specialists_toxic_vs_neutral_floor"):
        print(key, [(g["group"], g["total"], g["specialists"]) for g in res[key]])
    # baseline for skew: same statistic with labels randomly permuted across windows is expensive;
    # instead report the per-label factor-1 usage entropy (lower = more concentrated)
    ent = {}
    for lab in LABELS:
        e = []
        for gi in range(G):
            p = mean[lab][gi].reshape(-1); p = p / p.sum()
            e.append(float(-(p[p > 0] * p[p > 0].log()).sum() / math.log(E * E)))
        ent[lab] = e
    res["routing_entropy_norm"] = ent

    # ---------------- exactness of the VD mixing vs dense E^2 formulation
    x = torch.tensor([pids[0][:16]])
    res["vd_dense_check_maxabs"] = dense_check(model, x)
    print("VD vs dense E^2 check (maxabs diff, maxabs ref):", res["vd_dense_check_maxabs"])

    # ---------------- golden for C parity
    gold = {"note": "eval-mode float32 forward with the bf16-rounded weights of model.safetensors "
                    "(BatchNorm running stats as stored, also bf16). logits of the LAST position; "
                    "routing for positions 0 and last: per router group, per head, selected expert "
                    "indices with their softmax weights g (factor 1 = i, factor 2 = j).",
            "cases": []}
    picks = [("python", 24), ("english", 32), ("toxic", 20), ("lua", 40)]
    with torch.no_grad():
        for lab, n in picks:
            r, ids = next((r, i) for r, i in zip(probe, pids) if r["lang"] == lab and len(i) >= n)
            seq = [1] + ids[:n - 1]
            lg, routs = model(torch.tensor([seq]))
            last = lg[0, -1]
            v, ix = last.topk(10)
            case = {"label": lab, "ids": seq, "text": tok.decode(seq), "last_logits_top10": {
                "ids": ix.tolist(), "values": [round(float(a), 5) for a in v]}, "routing": {}}
            for pos in (0, len(seq) - 1):
                gr = []
                for gi, (g1, g2) in enumerate(routs):
                    heads = []
                    for h in range(Hm):
                        s1 = torch.nonzero(g1[0, pos, h] > 0).reshape(-1).tolist()
                        s2 = torch.nonzero(g2[0, pos, h] > 0).reshape(-1).tolist()
                        heads.append({"i": s1, "g1": [round(float(g1[0, pos, h, i]), 6) for i in s1],
                                      "j": s2, "g2": [round(float(g2[0, pos, h, j]), 6) for j in s2]})
                    gr.append({"group": gi, "layer": gi * c.moe_groups, "heads": heads})
                case["routing"][f"pos{pos}"] = gr
            gold["cases"].append(case)
    json.dump(gold, open(f"{mdir}/golden.json", "w"), indent=1)

    os.makedirs(f"{rdir}/figures", exist_ok=True)
    if os.path.exists(f"{work}/train_log.csv"):
        svg_loss(f"{work}/train_log.csv", f"{rdir}/figures/loss.svg")
        import shutil
        shutil.copy(f"{work}/train_log.csv", f"{rdir}/train_log.csv")
    json.dump(res, open(f"{rdir}/eval_results.json", "w"), indent=1)


if __name__ == "__main__":
    main()
