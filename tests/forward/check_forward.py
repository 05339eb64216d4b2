#!/usr/bin/python3
"""tests/forward/check_forward.py — whole-model check of `monet-probe` against
the float64 numpy reference (tests/ref/monet_ref.py) on tiny random Monet
checkpoints generated at test time (tests/ref/make_checkpoint.py).

  check_forward.py --bin MONET_PROBE --case NAME --workdir DIR
  check_forward.py --bin MONET_PROBE --malformed --workdir DIR
  check_forward.py --list

Per case: `info --json` (n_params, n_groups, moe_decompose), `logits --format
raw` (T*V little-endian float32), `route --json` (sparse g1/g2 per head and the
active experts (i,j,w) per token and router group). Criteria:
  logits   max |got - ref| <= rtol * max |ref|           (rtol 1e-4)
  routing  the same active set per head, g within 1e-5, the same expert pairs
           with w within 1e-5, experts sorted by w descending. Entries whose
           reference threshold margin (monet_ref.route_factor) is < 1e-5 are
           knife-edge: their head (and the token's expert list) is skipped and
           counted; token ids are redrawn first so that this is rare.
Malformed: every variant of tests/ref/make_malformed.py must give exit status
2 and exactly one stderr line "monet-probe: ..." naming the file and the
problem (manifest.json); the good checkpoint must load (exit 0).
Exit 0 when everything matches, 1 with the first mismatches printed.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ref"))
import make_checkpoint  # noqa: E402
import make_malformed  # noqa: E402
import monet_ref  # noqa: E402

# name -> make_checkpoint flags, tokens T, seed, how logits are read ("file" | "stdout")
BASE = {"hidden": 64, "heads": 4, "kv-heads": 4, "experts": 16, "moe-dim": 8, "moe-heads": 2,
        "topk": 4, "vocab": 256, "layers": 2, "groups": 1, "shards": 1}
CASES = {
    "vd_f32":                 dict(decompose="vertical", dtype="F32", T=24),
    "vd_f16_gqa":             dict(decompose="vertical", dtype="F16", T=33, **{"kv-heads": 2}),
    "vd_bf16_tied":           dict(decompose="vertical", dtype="BF16", T=40, tied=True),
    "vd_f32_l3g2_stdout":     dict(decompose="vertical", dtype="F32", T=17, layers=3, groups=2, out="stdout"),
    "vd_bf16_sharded_gqa":    dict(decompose="vertical", dtype="BF16", T=29, shards=3, heads=8,
                                   layers=3, groups=2, **{"kv-heads": 2}),
    "vd_f16_e32_hm4":         dict(decompose="vertical", dtype="F16", T=40, experts=32, topk=6,
                                   layers=4, groups=2, hidden=96, heads=6, **{"moe-heads": 4, "moe-dim": 12,
                                                                             "kv-heads": 3}),
    "hd_f32":                 dict(decompose="horizontal", dtype="F32", T=24),
    "hd_f16_tied_gqa":        dict(decompose="horizontal", dtype="F16", T=31, tied=True, **{"kv-heads": 1}),
    "hd_bf16":                dict(decompose="horizontal", dtype="BF16", T=40, layers=3, groups=1),
    "hd_f32_sharded_l3g2":    dict(decompose="horizontal", dtype="F32", T=26, shards=2, layers=3, groups=2),
    "hd_bf16_sharded_tied_gqa": dict(decompose="horizontal", dtype="BF16", T=38, shards=2, tied=True,
                                     layers=5, groups=2, **{"kv-heads": 2}),
    "hd_f32_one_token":       dict(decompose="horizontal", dtype="F32", T=1, layers=2, groups=2),
}

MAX_SHOWN = 8


class Report:
    def __init__(self, name):
        self.name = name
        self.errors = []          # (what, detail)
        self.notes = []

    def fail(self, what, detail=""):
        self.errors.append((what, detail))

    def finish(self, summary):
        if self.errors:
            print(f"{self.name}: FAIL ({len(self.errors)} problem(s)) {summary}")
            for what, detail in self.errors[:MAX_SHOWN]:
                print(f"  {what}" + (f"\n{detail}" if detail else ""))
            if len(self.errors) > MAX_SHOWN:
                print(f"  ... {len(self.errors) - MAX_SHOWN} more")
            return 1
        print(f"{self.name}: ok {summary}")
        return 0


def run(cmd, timeout=60, binary=False):
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        return 127, b"", f"{cmd[0]}: not found".encode(), 0.0
    except subprocess.TimeoutExpired:
        return 124, b"", f"timed out after {timeout} s".encode(), float(timeout)
    return p.returncode, p.stdout, p.stderr, time.perf_counter() - t0


def show_cmd(cmd):
    return " ".join(cmd)


def tail(b, n=1200):
    s = b.decode("utf-8", "replace")
    return ("    " + s[-n:].replace("\n", "\n    ")) if s.strip() else "    (empty)"


# ---------------------------------------------------------------- fixtures

def make_fixture(workdir, name, spec):
    opts = dict(BASE)
    opts.update({k: v for k, v in spec.items() if k not in ("decompose", "dtype", "T", "tied", "out", "seed")})
    seed = spec.get("seed", sum(map(ord, name)))
    out = os.path.join(workdir, name)
    args = ["--out", out, "--quiet", "--decompose", spec["decompose"], "--dtype", spec["dtype"],
            "--seed", str(seed)]
    for k, v in opts.items():
        args += [f"--{k}", str(v)]
    if spec.get("tied"):
        args.append("--tied")
    make_checkpoint.build(make_checkpoint.parse_args(args))
    return out, seed


def pick_ids(model, T, seed, margin_tol, tries=20):
    """Random ids whose reference routing has no knife-edge entry (margin below
    10 x margin_tol); after `tries` draws the last one is kept."""
    rng = np.random.default_rng(seed)
    for attempt in range(tries):
        ids = [int(v) for v in rng.integers(0, model.V, T)]
        logits, routing = model.forward(ids)
        mmin = min(float(res[f"m{f}"].min()) for res in routing for f in (1, 2))
        if mmin >= 10 * margin_tol:
            break
    return ids, logits, routing, mmin, attempt + 1


# ---------------------------------------------------------------- comparisons

def check_info(rep, a, model_dir, model):
    cmd = [a.bin, "info", "--model", model_dir, "--json"]
    rc, out, err, _ = run(cmd)
    if rc != 0:
        rep.fail(f"info: exit {rc}: {show_cmd(cmd)}", tail(err))
        return "info FAILED"
    try:
        js = json.loads(out)
    except json.JSONDecodeError as e:
        rep.fail(f"info --json: not JSON ({e})", tail(out))
        return "info FAILED"
    want = {"n_params": model.n_params(), "n_groups": model.n_groups, "moe_decompose": model.decompose}
    bad = [f"{k}: ref {v!r}, got {js.get(k)!r}" for k, v in want.items() if js.get(k) != v]
    for b in bad:
        rep.fail(f"info: {b}")
    return "info ok" if not bad else "info FAILED"


def check_logits(rep, a, model_dir, ids, ref, via_stdout, first_bad_token):
    T, V = ref.shape
    out_path = os.path.join(a.workdir, os.path.basename(model_dir) + ".logits.f32")
    if os.path.exists(out_path):
        os.remove(out_path)
    cmd = [a.bin, "logits", "--model", model_dir, "--ids", ",".join(map(str, ids)), "--format", "raw",
           "--out", "-" if via_stdout else out_path]
    rc, out, err, secs = run(cmd)
    if rc != 0:
        rep.fail(f"logits: exit {rc}: {show_cmd(cmd)}", tail(err))
        return "logits FAILED"
    raw = out if via_stdout else (open(out_path, "rb").read() if os.path.exists(out_path) else b"")
    if len(raw) != T * V * 4:
        rep.fail(f"logits: {len(raw)} bytes, expected T*V*4 = {T}*{V}*4 = {T * V * 4}")
        return "logits FAILED"
    got = np.frombuffer(raw, dtype="<f4").astype(np.float64).reshape(T, V)
    rows = slice(0, first_bad_token)        # tokens after a knife-edge flip may legitimately differ
    scale = float(np.abs(ref).max())
    tol = a.logits_rtol * scale
    r, g = ref[rows], got[rows]
    nonfinite = ~np.isfinite(g)
    if nonfinite.any():
        idx = np.argwhere(nonfinite)[:MAX_SHOWN]
        for t, v in idx:
            rep.fail(f"logits[{t},{v}]: ref {r[t, v]:.6g}, got {g[t, v]} (non-finite)")
    diff = np.where(nonfinite, np.inf, np.abs(g - r))
    err = float(diff.max()) if diff.size else 0.0
    if err > tol:
        order = np.argsort(diff, axis=None)[::-1][:MAX_SHOWN]
        bad_count = int((diff > tol).sum())
        order = [i for i in order if diff.flat[i] > tol]
        detail = "\n".join(f"    [t={i // V}, v={i % V}] ref {r.flat[i]:+.7f} got {g.flat[i]:+.7f} "
                           f"|diff| {diff.flat[i]:.3e}" for i in order)
        first = np.argwhere(diff > tol)[0]
        rep.fail(f"logits: max |err| {err:.3e} > tol {tol:.3e} (= {a.logits_rtol:g} x max|ref| {scale:.4g}); "
                 f"{bad_count} of {diff.size} entries out; first at token {first[0]}, vocab {first[1]}; "
                 f"worst:", detail)
    where = "stdout" if via_stdout else "file"
    skipped = "" if first_bad_token >= T else \
        f", only tokens < {first_bad_token} compared (knife-edge routing downstream)"
    if first_bad_token == 0:
        rep.fail("logits: no token left to compare (knife-edge routing at token 0); change the case's seed")
    return (f"logits max|err| {err:.2e} (rel {err / scale:.1e}, tol {a.logits_rtol:g}) via {where} "
            f"in {secs:.2f}s{skipped}")


def check_route(rep, a, model_dir, ids, model, routing):
    T, R, E, Hm = len(ids), model.n_groups, model.E, model.Hm
    cmd = [a.bin, "route", "--model", model_dir, "--ids", ",".join(map(str, ids)), "--json"]
    rc, out, err, _ = run(cmd)
    if rc != 0:
        rep.fail(f"route: exit {rc}: {show_cmd(cmd)}", tail(err))
        return "route FAILED"
    try:
        js = json.loads(out)
    except json.JSONDecodeError as e:
        rep.fail(f"route --json: not JSON ({e})", tail(out))
        return "route FAILED"
    head = {"n_tokens": T, "n_groups": R, "moe_experts": E, "moe_heads": Hm,
            "group_layers": model.group_layers()}
    for k, v in head.items():
        if js.get(k) != v:
            rep.fail(f"route: {k}: ref {v!r}, got {js.get(k)!r}")
    toks = js.get("tokens")
    if not isinstance(toks, list) or len(toks) != T:
        rep.fail(f"route: tokens: expected a list of {T}")
        return "route FAILED"
    n_heads = n_entries = n_pairs = 0
    skipped_entries = skipped_heads = skipped_lists = 0
    g_err = w_err = 0.0
    for t in range(T):
        tk = toks[t]
        if tk.get("pos") != t or tk.get("id") != ids[t]:
            rep.fail(f"route: tokens[{t}]: pos/id {tk.get('pos')}/{tk.get('id')}, expected {t}/{ids[t]}")
        groups = tk.get("groups")
        if not isinstance(groups, list) or len(groups) != R:
            rep.fail(f"route: tokens[{t}].groups: expected a list of {R}")
            continue
        for r in range(R):
            res, gr = routing[r], groups[r]
            if gr.get("group") != r:
                rep.fail(f"route: tokens[{t}].groups[{r}].group = {gr.get('group')!r}")
            edge_token = False
            for f in (1, 2):
                gl = gr.get(f"g{f}")
                if not isinstance(gl, list) or len(gl) != Hm:
                    rep.fail(f"route: token {t} group {r}: g{f} must be a list of {Hm} heads")
                    continue
                for h in range(Hm):
                    ref_g = res[f"g{f}"][t, h]
                    margins = res[f"m{f}"][t, h]
                    n_heads += 1
                    edge = margins < a.margin
                    if edge.any():
                        skipped_heads += 1
                        skipped_entries += int(edge.sum())
                        edge_token = True
                        continue
                    try:
                        got = {int(i): float(p) for i, p in gl[h]}
                    except (TypeError, ValueError):
                        rep.fail(f"route: token {t} group {r} g{f} head {h}: entries must be [i, p] pairs")
                        continue
                    want = {int(i): float(ref_g[i]) for i in np.nonzero(ref_g > 0)[0]}
                    n_entries += len(want)
                    if set(got) != set(want):
                        rep.fail(f"route: token {t} group {r} g{f} head {h}: active set ref {sorted(want)} "
                                 f"got {sorted(got)}")
                        continue
                    for i, p in want.items():
                        e = abs(got[i] - p)
                        g_err = max(g_err, e)
                        if not e <= a.g_tol:
                            rep.fail(f"route: token {t} group {r} g{f}[head {h}][expert {i}]: "
                                     f"ref {p:.8f} got {got[i]:.8f}")
            if edge_token:
                skipped_lists += 1
                continue
            ex = gr.get("experts")
            if not isinstance(ex, list):
                rep.fail(f"route: token {t} group {r}: experts must be a list")
                continue
            try:
                got = [(int(e["i"]), int(e["j"]), float(e["w"])) for e in ex]
            except (KeyError, TypeError, ValueError):
                rep.fail(f"route: token {t} group {r}: experts entries need i, j, w")
                continue
            gd = {(i, j): w for i, j, w in got}
            W = res["w"][t]
            want = {(int(i), int(j)): float(W[i, j]) for i, j in zip(*np.nonzero(W > 0))}
            n_pairs += len(want)
            if len(gd) != len(got):
                rep.fail(f"route: token {t} group {r}: duplicate (i,j) in experts")
            if set(gd) != set(want):
                miss = sorted(set(want) - set(gd))[:5]
                extra = sorted(set(gd) - set(want))[:5]
                rep.fail(f"route: token {t} group {r}: expert pairs differ: {len(want)} ref, {len(gd)} got; "
                         f"missing {miss} extra {extra}")
                continue
            for ij, w in want.items():
                e = abs(gd[ij] - w)
                w_err = max(w_err, e)
                if not e <= a.w_tol:
                    rep.fail(f"route: token {t} group {r} expert {ij}: w ref {w:.8f} got {gd[ij]:.8f}")
            ws = [w for _, _, w in got]
            if any(x < y for x, y in zip(ws, ws[1:])):
                rep.fail(f"route: token {t} group {r}: experts not sorted by w descending")
    summ = (f"routing {n_heads} heads / {n_entries} active entries g max|err| {g_err:.1e}, "
            f"{n_pairs} expert pairs w max|err| {w_err:.1e}, knife-edge skipped: {skipped_entries} entries "
            f"in {skipped_heads} heads, {skipped_lists} expert lists")
    return summ


def run_case(a, name):
    spec = CASES[name]
    rep = Report(f"forward_{name}")
    t0 = time.perf_counter()
    model_dir, seed = make_fixture(a.workdir, name, spec)
    model = monet_ref.load_model(model_dir)
    ids, logits, routing, mmin, draws = pick_ids(model, spec["T"], seed + 1, a.margin)
    # tokens at or after the first knife-edge entry may legitimately differ downstream
    first_edge = spec["T"]
    for res in routing:
        for f in (1, 2):
            bad = np.argwhere(res[f"m{f}"] < a.margin)
            if len(bad):
                first_edge = min(first_edge, int(bad[:, 0].min()))
    ref_secs = time.perf_counter() - t0
    parts = [f"({spec['decompose'][0].upper()}D {spec['dtype']} T={spec['T']} L={model.L} G={model.G} "
             f"H={model.H}/{model.KV} E={model.E} Hm={model.Hm} k={model.k} shards={spec.get('shards', 1)} "
             f"tied={model.tied} (fixture+ref {ref_secs:.2f}s, min margin {mmin:.1e}, {draws} draw(s)))"]
    if not os.path.exists(a.bin):
        rep.fail(f"binary not found: {a.bin}")
        return rep.finish(parts[0])
    parts.append(check_info(rep, a, model_dir, model))
    parts.append(check_route(rep, a, model_dir, ids, model, routing))
    parts.append(check_logits(rep, a, model_dir, ids, logits, spec.get("out") == "stdout",
                              min(first_edge, spec["T"])))
    return rep.finish(parts[0] + "\n  " + "\n  ".join(parts[1:]))


# ---------------------------------------------------------------- malformed inputs

def run_malformed(a):
    rep = Report("forward_malformed")
    out = os.path.join(a.workdir, "malformed")
    make_malformed.main(["--out", out])
    man = json.load(open(os.path.join(out, "manifest.json")))
    res_path = os.path.join(a.workdir, "malformed.logits.f32")

    def cmd_for(d):
        return [a.bin, "logits", "--model", d, "--ids", "1,2,3", "--format", "raw", "--out", res_path]
    if not os.path.exists(a.bin):
        rep.fail(f"binary not found: {a.bin}")
        return rep.finish("")
    rc, _, err, _ = run(cmd_for(os.path.join(out, "good")))
    if rc != 0:
        rep.fail(f"good checkpoint: exit {rc}, expected 0", tail(err))
    ok = 0
    for name, m in man.items():
        cmd = cmd_for(os.path.join(out, m["dir"]))
        rc, _, err, _ = run(cmd)
        text = err.decode("utf-8", "replace")
        lines = text.splitlines()
        probs = []
        if rc != 2:
            probs.append(f"exit status {rc}, expected 2")
        if len(lines) != 1:
            probs.append(f"{len(lines)} stderr lines, expected exactly 1")
        first = lines[0] if lines else ""
        if not first.startswith("monet-probe: "):
            probs.append('stderr does not start with "monet-probe: "')
        low = text.lower()
        if not any(s.lower() in low for s in m["expect"]):
            probs.append(f"message names none of {m['expect']}")
        if not any(f.lower() in low for f in m["file"]):
            probs.append(f"message names none of the files {m['file']}")
        if probs:
            rep.fail(f"{name} ({m['problem']}): " + "; ".join(probs), tail(err, 600))
        else:
            ok += 1
            print(f"  ok {name:24s} {m['dir']}: {first}")
    return rep.finish(f"{ok}/{len(man)} malformed variants rejected correctly")


def main():
    ap = argparse.ArgumentParser(description="check monet-probe's forward pass against the numpy reference")
    ap.add_argument("--bin", help="path of the monet-probe binary")
    ap.add_argument("--case", choices=sorted(CASES))
    ap.add_argument("--malformed", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--workdir", default=os.path.join(os.getcwd(), "forward_fixtures"))
    ap.add_argument("--logits-rtol", type=float, default=1e-4)
    ap.add_argument("--g-tol", type=float, default=1e-5)
    ap.add_argument("--w-tol", type=float, default=1e-5)
    ap.add_argument("--margin", type=float, default=1e-5, help="skip routing entries closer than this to flipping")
    a = ap.parse_args()
    if a.list:
        print("\n".join(sorted(CASES)))
        return 0
    if not a.bin or (not a.case and not a.malformed):
        ap.error("--bin and one of --case / --malformed are required")
    a.bin = os.path.abspath(a.bin)
    os.makedirs(a.workdir, exist_ok=True)
    a.workdir = os.path.abspath(a.workdir)
    if a.malformed:
        return run_malformed(a)
    return run_case(a, a.case)


if __name__ == "__main__":
    sys.exit(main())
