#!/usr/bin/env python3
"""tests/collect/check_collect.py — collect, top-contexts, experts and merge end
to end on a tiny random checkpoint with the shipped data/monet-tiny tokenizer, over
RosettaCode solutions from the shipped data/corpus/probe.jsonl (tests/ref/shipped.py).

usage: check_collect.py MODE MONET_PROBE MODEL_DIR TESTS_REF_DIR TEST_SHA256
MODE:
  bruteforce  top-K rows, activation statistics, label and Pearson statistics,
              histograms, quantile samples, label top-K and token index of
              the store == a brute-force recomputation from `route --json` over
              the same windows (numpy for the Pearson r)
  resume      kill -9 at random moments, re-run until done: store content
              identical to an uninterrupted run's, bit for bit
  shards      3 shards merged == one run over the whole corpus (evidence tables
              exact too); merge refusals
  errors      corrupt stores, wrong settings, bad corpora, bad expert ids
  commands    top-contexts text/--json format, experts --sort/--label/--group
  sha256      core/util/sha256 == coreutils sha256sum == hashlib
"""
import hashlib
import json
import math
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time

import numpy as np

MODE, BIN, MODEL, REF, SHA_BIN = sys.argv[1:6]
sys.path.insert(0, REF)
import shipped  # noqa: E402

OTHER = MODEL + "-other"
failures = []
W, K = 32, 5


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(*args, ok=True, stdin=None, env=None):
    p = subprocess.run([BIN, *args], capture_output=True, input=stdin,
                       env=None if env is None else {**os.environ, **env})
    if ok and p.returncode != 0:
        failures.append(f"{' '.join(args)}: exit {p.returncode}: {p.stderr.decode(errors='replace')}")
        print("FAIL", failures[-1], flush=True)
    return p


def one_line_error(p, code=2):
    err = p.stderr.decode(errors="replace")
    return p.returncode == code and err.count("\n") == 1 and err.startswith("monet-probe: ")


def write_corpus(path, n, extra_bad=False):
    """First n RosettaCode solutions (Python, Lua, PHP, Java interleaved) shorter than
    300 chars (the brute force routes every window: keeps it well inside the timeout),
    lang label and a synthetic per-document score 'tox' in [0,1] (every 7th document
    has none)."""
    rows = shipped.code_docs(("Python", "Lua", "PHP", "Java"), max_len=300)[:n]
    with open(path, "w") as f:
        for k, r in enumerate(rows):
            d = {"code": r["text"][:500], "lang": r["lang"]}
            if k % 7 != 3:
                d["tox"] = round(int(hashlib.md5(r["source"].encode()).hexdigest()[:6], 16) / 0xFFFFFF, 4)
            f.write(json.dumps(d) + "\n")
            if extra_bad and k == 4:
                f.write("{not json\n")
    return [json.loads(l) for l in open(path) if l.startswith("{\"")]


def collect_args(corpus, out, *extra):
    return ["collect", "--model", MODEL, "--corpus", corpus, "--out", out, "--text-field", "code", "--label-field", "lang",
            "--score-field", "tox", "--context-window", str(W), "--top-k", str(K), "--quiet", *extra]


DUMP = {
    "topk": "SELECT grp, expert, rank, w, doc, pos FROM topk_ranked ORDER BY 1, 2, 3",
    "expert_stats": "SELECT * FROM expert_stats ORDER BY 1, 2",
    "windows": "SELECT doc, start, n_tokens, ids FROM windows ORDER BY 1, 2",
    "docs": "SELECT * FROM docs ORDER BY 1",
    "groups": "SELECT * FROM groups ORDER BY 1",
    "label_totals": "SELECT * FROM label_totals ORDER BY 1, 2",
    "label_stats": "SELECT * FROM label_stats ORDER BY 1, 2, 3, 4",
    "score_totals": "SELECT * FROM score_totals ORDER BY 1",
    "score_stats": "SELECT * FROM score_stats ORDER BY 1, 2, 3",
    "progress": "SELECT * FROM progress WHERE key NOT IN ('batches') ORDER BY 1",
    "hist": "SELECT * FROM hist ORDER BY 1, 2, 3",
    "qsamples": "SELECT * FROM qsamples ORDER BY 1, 2, 3, 5, 6",
    "label_topk": "SELECT * FROM label_topk ORDER BY 1, 2, 3, 4, 6, 7",
    "token_index": "SELECT * FROM token_index ORDER BY 1, 2, 3",
}
EVIDENCE = ["hist", "qsamples", "label_topk", "token_index"]
SCHEMA_VERSION = "2"
REFS = ["topk", "qsamples", "label_topk"]  # tables whose (doc, pos) keep a window


def hist_bin(w):
    """core/store/hist.c mp_hist_bin: half-octave bins, bin 24 starts at w = 1."""
    if w <= 0:
        return 0
    m, ex = math.frexp(w)
    return min(31, max(0, 2 * (ex - 1) + (2 * m >= math.sqrt(2)) + 24))


def mix64(x):
    M = (1 << 64) - 1
    x &= M
    x ^= x >> 33
    x = (x * 0xff51afd7ed558ccd) & M
    x ^= x >> 33
    x = (x * 0xc4ceb9fe1a85ec53) & M
    x ^= x >> 33
    return x


def sample_hash(doc, pos):
    """core/store/samples.c mp_sample_hash."""
    return mix64(mix64(doc + 0x9e3779b97f4a7c15) ^ pos)


def dump(path):
    db = sqlite3.connect(path)
    out = {k: db.execute(q).fetchall() for k, q in DUMP.items()}
    db.close()
    return out


def close_rows(a, b, rel=1e-9):
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb):
            if isinstance(x, float) or isinstance(y, float):
                if abs(x - y) > rel * max(1.0, abs(x), abs(y)):
                    return False
            elif x != y:
                return False
    return True


def unreferenced_windows(path, win=W):
    db = sqlite3.connect(path)
    cond = " AND ".join(f"NOT EXISTS (SELECT 1 FROM {t} t WHERE t.doc = w.doc AND t.pos >= w.start AND "
                        f"t.pos < w.start + {win})" for t in REFS)
    n = db.execute(f"SELECT count(*) FROM windows w WHERE {cond}").fetchone()[0]
    db.close()
    return n


def missing_windows(db, win=W):
    return sum(db.execute(f"SELECT count(*) FROM {t} t WHERE NOT EXISTS (SELECT 1 FROM windows w WHERE w.doc = t.doc "
                          f"AND w.start = t.pos - t.pos % {win})").fetchone()[0] for t in REFS)


# ------------------------------------------------------------------ bruteforce

def brute_force(docs):
    """Hits per (group, expert) from `route --json` over the same windows."""
    hits, tok_x = {}, []  # tok_x: per token {(g,e): w}, with doc index
    tok_id = {}  # (doc index, pos) -> token id
    for d_idx, d in enumerate(docs):
        p = run("tokenize", "--model", MODEL, "--json", "--bos", "--whole", "-", stdin=d["code"].encode())
        ids = json.loads(p.stdout.decode().strip().splitlines()[0])["ids"]
        for pos, t in enumerate(ids):
            tok_id[(d_idx, pos)] = t
        for start in range(0, len(ids), W):
            win = ids[start:start + W]
            r = json.loads(run("route", "--model", MODEL, "--ids", ",".join(map(str, win)), "--json").stdout)
            E = r["moe_experts"]
            for t in r["tokens"]:
                pos = start + t["pos"]
                if pos == 0:
                    continue  # BOS: fed to the model, never counted
                x = {}
                for g in t["groups"]:
                    for e in g["experts"]:
                        w = float(np.float32(e["w"]))
                        key = (g["group"], e["i"] * E + e["j"])
                        hits.setdefault(key, []).append((w, d_idx, pos))
                        x[key] = w
                tok_x.append((d_idx, x))
    return hits, tok_x, tok_id


def mode_bruteforce(tmp):
    corpus = os.path.join(tmp, "c.jsonl")
    docs = write_corpus(corpus, 24)
    store = os.path.join(tmp, "s.db")
    run(*collect_args(corpus, store, "--commit-every", "3", "--batch", "4"))
    hits, tok_x, tok_id = brute_force(docs)
    db = sqlite3.connect(store)
    rows = {}
    for g, e, rank, w, doc, pos in db.execute("SELECT grp, expert, rank, w, doc, pos FROM topk_ranked ORDER BY 1, 2, 3"):
        rows.setdefault((g, e), []).append((w, doc, pos))
    want = {k: sorted(v, key=lambda h: (-h[0], h[1], h[2]))[:K] for k, v in hits.items()}
    check(set(rows) == set(want), f"same experts have top-K rows ({len(rows)} store, {len(want)} brute force)")
    bad = [k for k in want if rows.get(k) != want[k]]
    check(not bad, f"top-{K} of all {len(want)} experts == brute force over `route --json` (first bad: {bad[:3]})")
    stats = {(g, e): (n, s, s2, mx) for g, e, n, s, s2, mx in db.execute("SELECT * FROM expert_stats")}
    ok = True
    for k, v in hits.items():
        w = np.array([h[0] for h in v])
        n, s, s2, mx = stats.get(k, (0, 0, 0, 0))
        ok &= n == len(w) and abs(s - w.sum()) <= 1e-9 * w.sum() and abs(s2 - (w * w).sum()) <= 1e-9 * (w * w).sum() \
            and mx == w.max()
    check(ok and len(stats) == len(hits), "expert_stats (count, sum, sum of squares, max) == brute force")
    ntok = len(tok_x)
    check(db.execute("SELECT tokens FROM groups").fetchall() == [(ntok,), (ntok,)], f"groups.tokens == {ntok}")
    # label statistics
    lab = {}
    for d_idx, x in tok_x:
        for k, w in x.items():
            c = lab.setdefault((k, docs[d_idx]["lang"]), [0, 0.0])
            c[0] += 1
            c[1] += w
    got = {((g, e), v): (n, s) for g, e, f, v, n, s in db.execute("SELECT * FROM label_stats WHERE field='lang'")}
    check(set(got) == set(lab) and all(got[k][0] == lab[k][0] and abs(got[k][1] - lab[k][1]) < 1e-9 for k in lab),
          f"label_stats lang == brute force ({len(lab)} (expert, label) entries)")
    tot = dict(((v), n) for f, v, n, nd in db.execute("SELECT * FROM label_totals WHERE field='lang'"))
    per_lang = {}
    for d_idx, _ in tok_x:
        per_lang[docs[d_idx]["lang"]] = per_lang.get(docs[d_idx]["lang"], 0) + 1
    check(tot == per_lang, "label_totals lang token counts == brute force")
    buckets = dict((v, n) for f, v, n, nd in db.execute("SELECT * FROM label_totals WHERE field='tox'"))
    want_b = {}
    for d_idx, _ in tok_x:
        if "tox" in docs[d_idx]:
            b = min(9, int(docs[d_idx]["tox"] * 10))
            name = f"{b / 10:.1f}-{(b + 1) / 10:.1f}"
            want_b[name] = want_b.get(name, 0) + 1
    check(buckets == want_b, "score buckets (10 on [0,1]) token counts == brute force")
    # Pearson r from the sufficient statistics == numpy corrcoef over every token
    n, sy, syy, dn, dsy, dsyy = db.execute("SELECT n, sum_y, sum_y2, n_docs, d_sum_y, d_sum_y2 FROM score_totals").fetchone()
    ytok = np.array([docs[d]["tox"] for d, _ in tok_x if "tox" in docs[d]])
    check(n == len(ytok) and abs(sy - ytok.sum()) < 1e-9 and abs(syy - (ytok ** 2).sum()) < 1e-9,
          "score_totals per token (n, sum y, sum y^2) == numpy")
    worst_tok = worst_doc = 0.0
    checked = 0
    doc_ids = sorted({d for d, _ in tok_x if "tox" in docs[d]})
    ydoc = np.array([docs[d]["tox"] for d in doc_ids])
    check(dn == len(doc_ids) and abs(dsy - ydoc.sum()) < 1e-9, "score_totals per document == numpy")
    for g, e, sx, sxx, sxy, dsx, dsxx, dsxy in db.execute("SELECT grp, expert, sum_x, sum_x2, sum_xy, d_sum_x, "
                                                           "d_sum_x2, d_sum_xy FROM score_stats ORDER BY 1, 2"):
        xt = np.array([x.get((g, e), 0.0) for d, x in tok_x if "tox" in docs[d]])
        r_np = np.corrcoef(xt, ytok)[0, 1]
        r = (n * sxy - sx * sy) / np.sqrt((n * sxx - sx * sx) * (n * syy - sy * sy))
        worst_tok = max(worst_tok, abs(r - r_np))
        xd = np.array([np.mean([x.get((g, e), 0.0) for d2, x in tok_x if d2 == d]) for d in doc_ids])
        rd_np = np.corrcoef(xd, ydoc)[0, 1]
        rd = (dn * dsxy - dsx * dsy) / np.sqrt((dn * dsxx - dsx * dsx) * (dn * dsyy - dsy * dsy))
        worst_doc = max(worst_doc, abs(rd - rd_np))
        checked += 1
        if checked >= 60:
            break
    check(checked > 0 and worst_tok < 1e-9, f"per-token Pearson r from the store == numpy ({checked} experts, "
                                            f"max |diff| {worst_tok:.2e})")
    check(worst_doc < 1e-9, f"per-document Pearson r from the store == numpy (max |diff| {worst_doc:.2e})")
    check(unreferenced_windows(store) == 0, "no window without a top-K, sample or label top-K row pointing into it (GC)")
    check(missing_windows(db) == 0, "every top-K, quantile sample and label top-K row has its window")
    # GC inside a run: 4-token windows, K = 1, a transaction per window, so hits of
    # committed windows leave their sets and windows must go (decided in memory)
    gc = os.path.join(tmp, "gc.db")
    out = json.loads(run("collect", "--model", MODEL, "--corpus", corpus, "--out", gc, "--text-field", "code",
                         "--label-field", "lang", "--context-window", "4", "--top-k", "1", "--commit-every", "1",
                         "--quiet", "--json").stdout)
    gdb = sqlite3.connect(gc)
    kept = gdb.execute("SELECT count(*) FROM windows").fetchone()[0]
    check(kept < out["windows"] and unreferenced_windows(gc, 4) == 0 and missing_windows(gdb, 4) == 0,
          f"GC at every commit: {out['windows']} windows run, {kept} kept == exactly those a row points into")
    check(0 < out["commit_s"] <= out["store_thread_s"] and out["batches"] >= out["documents"],
          f"--json: {out['batches']} commits took {out['commit_s']:.3f} s of the store thread's "
          f"{out['store_thread_s']:.3f} s")
    gdb.close()
    check_evidence(db, docs, hits, tok_id)
    meta = dict(db.execute("SELECT key, value FROM meta"))
    cfg = hashlib.sha256(open(os.path.join(MODEL, "config.json"), "rb").read()).hexdigest()
    tk = hashlib.sha256(open(os.path.join(MODEL, "tokenizer.model"), "rb").read()).hexdigest()
    check(meta["config_sha256"] == cfg and meta["tokenizer_sha256"] == tk and meta["top_k"] == str(K)
          and meta["window"] == str(W) and meta["schema_version"] == SCHEMA_VERSION and meta["corpus"] == corpus
          and meta["model_path"] == MODEL and "monet_probe_version" in meta,
          "run metadata: hashes, K, window, corpus, schema and program version")
    db.close()


def check_evidence(db, docs, hits, tok_id):
    """hist, qsamples, label_topk and token_index == their definitions (docs/store.md) over the brute-force hits."""
    want_h = {}
    for (g, e), v in hits.items():
        for w, d, pos in v:
            k = (g, e, hist_bin(w))
            want_h[k] = want_h.get(k, 0) + 1
    got_h = {(g, e, b): n for g, e, b, n in db.execute("SELECT * FROM hist")}
    check(got_h == want_h and sum(got_h.values()) == sum(len(v) for v in hits.values()),
          f"hist: half-octave bins of w == brute force ({len(want_h)} (expert, bin) rows, every hit counted once)")
    want_q = set()
    for (g, e), v in hits.items():
        by = {}
        for w, d, pos in v:
            by.setdefault(hist_bin(w) // 2, []).append((w, d, pos))
        for o, hs in by.items():
            for w, d, pos in sorted(hs, key=lambda h: (sample_hash(h[1], h[2]), h[1], h[2]))[:4]:
                want_q.add((g, e, o, w, d, pos))
    got_q = set(db.execute("SELECT * FROM qsamples"))
    check(got_q == want_q, f"qsamples: per expert and octave the 4 smallest hash(doc, pos) == brute force "
                           f"({len(want_q)} rows)")
    want_l = set()
    for (g, e), v in hits.items():
        best = {}
        for w, d, pos in v:
            if d not in best or (w, -pos) > (best[d][0], -best[d][2]):
                best[d] = (w, d, pos)
        for field in ("lang", "tox"):
            by = {}
            for d, h in best.items():
                if field not in docs[d]:
                    continue
                val = docs[d][field]
                if field == "tox":
                    b = min(9, int(val * 10))
                    val = f"{b / 10:.1f}-{(b + 1) / 10:.1f}"
                by.setdefault(val, []).append(h)
            for val, hs in by.items():
                for w, d, pos in sorted(hs, key=lambda h: (-h[0], h[1], h[2]))[:4]:
                    want_l.add((g, e, field, val, w, d, pos))
    got_l = set(db.execute("SELECT * FROM label_topk"))
    check(got_l == want_l, f"label_topk: per expert and label value the 4 best documents (best token each) == brute "
                           f"force ({len(want_l)} rows, lang and tox buckets)")
    want_t = {}
    for (g, e), v in hits.items():
        for w, d, pos in v:
            if w >= 0.125:
                k = (tok_id[(d, pos)], g, e)
                n, mx = want_t.get(k, (0, 0.0))
                want_t[k] = (n + 1, max(mx, w))
    got_t = {(t, g, e): (n, mx) for t, g, e, n, mx in db.execute("SELECT * FROM token_index")}
    check(got_t == want_t and len(got_t) > 0, f"token_index: (token, expert) -> count and max of hits with w >= 0.125 "
                                              f"== brute force ({len(want_t)} rows)")


# ------------------------------------------------------------------ resume

def mode_resume(tmp):
    corpus = os.path.join(tmp, "c.jsonl")
    write_corpus(corpus, 60)
    ref = os.path.join(tmp, "ref.db")
    t0 = time.time()
    run(*collect_args(corpus, ref, "--commit-every", "2"))
    full_s = time.time() - t0
    store = os.path.join(tmp, "k.db")
    rng = random.Random(int(os.environ.get("MP_TEST_SEED", "1234")))
    kills = mid = 0
    for attempt in range(40):
        p = subprocess.Popen([BIN, *collect_args(corpus, store, "--commit-every", "2", "--batch", "3")],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        # the first two kills land early enough that the (resumed) run is surely still going,
        # so the test always sees >= 2 kills; later ones are random moments
        time.sleep(full_s * (0.35, 0.15)[attempt] if attempt < 2 else rng.uniform(0.02, max(0.05, full_s * 0.6)))
        if p.poll() is None:
            p.kill()  # SIGKILL
            p.wait()
            kills += 1
            if os.path.exists(store):
                db = sqlite3.connect(store)
                fin = db.execute("SELECT value FROM progress WHERE key='finished'").fetchone()
                nd = db.execute("SELECT value FROM progress WHERE key='next_doc'").fetchone()
                db.close()
                mid += bool(fin and fin[0] == 0 and nd and nd[0] > 0)
            continue
        err = p.stderr.read().decode()
        check(p.returncode == 0, f"run {attempt} after {kills} kills exits 0 ({err.strip()[:200]})")
        break
    else:
        run(*collect_args(corpus, store, "--commit-every", "2", "--batch", "3"))
    check(kills >= 2 and mid >= 1, f"killed {kills} times with SIGKILL, {mid} times mid-run after a commit")
    p = run(*collect_args(corpus, store, "--commit-every", "2", "--batch", "3"))
    check(b"complete" in p.stdout, "re-running a finished collection does nothing and says so")
    a, b = dump(ref), dump(store)
    for k in DUMP:
        check(a[k] == b[k], f"resumed --batch 3 store == uninterrupted --batch 1 store, bit for bit: {k} "
                            f"({len(a[k])} rows)")
    # another transaction size changes nothing either (statistics in token order)
    other = os.path.join(tmp, "b7.db")
    run(*collect_args(corpus, other, "--commit-every", "7"))
    c = dump(other)
    check(all(a[k] == c[k] for k in DUMP), "--commit-every 7 store == --commit-every 2 store")
    # windows of several documents per engine call: the same store, whatever the grouping
    for b in ("2", "16"):
        eb = os.path.join(tmp, f"e{b}.db")
        run(*collect_args(corpus, eb, "--commit-every", "2", "--batch", b))
        c = dump(eb)
        for k in DUMP:
            check(a[k] == c[k], f"--batch {b} store == --batch 1 store, bit for bit: {k}")
        db = sqlite3.connect(eb)
        nb = db.execute("SELECT value FROM progress WHERE key='batches'").fetchone()[0]
        db.close()
        db = sqlite3.connect(ref)
        check(nb == db.execute("SELECT value FROM progress WHERE key='batches'").fetchone()[0],
              f"--batch {b}: same transactions as --batch 1")
        db.close()
    # the store thread (accumulators and commits beside the forward) changes nothing: the
    # same jobs run in order on one thread with MP_COLLECT_PIPELINE=0
    for extra in (("--commit-every", "2", "--batch", "3"), ("--commit-every", "5", "--max-tokens", "700"),
                  ("--commit-every", "1", "--batch", "2", "--shard", "1/2")):
        got = {}
        for mode in ("0", "1"):
            out = os.path.join(tmp, f"pipe{mode}.db")
            run(*collect_args(corpus, out, "--force-new", *extra), env={"MP_COLLECT_PIPELINE": mode})
            got[mode] = dump(out)
            db = sqlite3.connect(out)
            got[mode]["batches"] = db.execute("SELECT value FROM progress WHERE key='batches'").fetchall()
            db.close()
        check(got["0"] == got["1"], f"store thread == one thread, bit for bit, incl. transactions: {' '.join(extra)}")
        if extra[-1] == "700":
            check(got["1"]["windows"] != a["windows"], "(--max-tokens 700 stopped early: a different store)")


# ------------------------------------------------------------------ shards

def mode_shards(tmp):
    corpus = os.path.join(tmp, "c.jsonl")
    write_corpus(corpus, 45)
    full = os.path.join(tmp, "full.db")
    run(*collect_args(corpus, full, "--commit-every", "4"))
    shards = []
    for i in range(3):
        s = os.path.join(tmp, f"s{i}.db")
        run(*collect_args(corpus, s, "--commit-every", "4", "--batch", "3", "--shard", f"{i}/3"))
        shards.append(s)
    db = sqlite3.connect(shards[1])
    docs1 = {d for (d,) in db.execute("SELECT DISTINCT doc FROM topk")}
    db.close()
    check(docs1 and all(d % 3 == 1 for d in docs1), "shard 1/3 holds only documents 1, 4, 7, ... (global indices)")
    merged = os.path.join(tmp, "m.db")
    run("merge", merged, *shards)
    a, b = dump(full), dump(merged)
    for k in ["topk", "windows", "docs", "groups", "label_totals", *EVIDENCE]:
        check(a[k] == b[k], f"3 shards merged == one run: {k} ({len(a[k])} rows, exact)")
    for k in ["expert_stats", "label_stats", "score_totals", "score_stats"]:
        check(close_rows(a[k], b[k]), f"3 shards merged == one run: {k} ({len(a[k])} rows; counts exact, sums 1e-9)")
    pa = dict(a["progress"])
    pb = dict(b["progress"])
    check(pa["documents"] == pb["documents"] and pa["tokens"] == pb["tokens"] and pb["finished"] == 1,
          "merged progress: documents and tokens add up, finished")
    check(unreferenced_windows(merged) == 0, "merged store keeps only referenced windows")
    # refusals
    p = run("merge", os.path.join(tmp, "x.db"), shards[0], shards[0], ok=False)
    check(one_line_error(p) and b"overlaps" in p.stderr, "merge refuses overlapping shards")
    k3 = os.path.join(tmp, "k3.db")
    run("collect", "--model", MODEL, "--corpus", corpus, "--out", k3, "--text-field", "code", "--label-field", "lang",
        "--score-field", "tox", "--context-window", str(W), "--top-k", "3", "--quiet", "--shard", "2/3")
    p = run("merge", os.path.join(tmp, "y.db"), shards[0], k3, ok=False)
    check(one_line_error(p) and b"other settings" in p.stderr and b"top_k" in p.stderr,
          "merge refuses a store with another K, naming the setting")
    om = os.path.join(tmp, "om.db")
    run("collect", "--model", OTHER, "--corpus", corpus, "--out", om, "--text-field", "code", "--label-field", "lang",
        "--score-field", "tox", "--context-window", str(W), "--top-k", str(K), "--quiet", "--shard", "2/3")
    p = run("merge", os.path.join(tmp, "z.db"), shards[0], om, ok=False)
    check(one_line_error(p) and b"model_hash" in p.stderr, "merge refuses a store of another model")
    check(not os.path.exists(os.path.join(tmp, "z.db")), "a refused merge leaves no output")
    p = run("merge", merged, *shards, ok=False)
    check(one_line_error(p) and b"exists" in p.stderr, "merge does not overwrite without --force")
    # --shard slurm: the job array task's i/n; merged, the same store as the i/n shards
    sl = []
    for i in range(3):
        s_ = os.path.join(tmp, f"sl{i}.db")
        env = dict(os.environ, SLURM_ARRAY_TASK_ID=str(i + 1), SLURM_ARRAY_TASK_MIN="1", SLURM_ARRAY_TASK_MAX="3",
                   SLURM_ARRAY_TASK_COUNT="3")
        args = [a if a != f"{i}/3" else "slurm" for a in collect_args(corpus, s_, "--batch", "4", "--shard", f"{i}/3")]
        subprocess.run([BIN, *args], env=env, check=True, capture_output=True)
        sl.append(s_)
    slm = os.path.join(tmp, "slm.db")
    run("merge", slm, *sl)
    a, b = dump(merged), dump(slm)
    check(all(a[k] == b[k] for k in ["topk", "windows", "docs", "groups", "label_totals", *EVIDENCE]),
          "--shard slurm (array 1-3) merged == the 3 i/n shards merged")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    p = subprocess.run([BIN, *collect_args(corpus, os.path.join(tmp, "x.db"), "--shard", "slurm")], env=env,
                       capture_output=True)
    check(one_line_error(p) and b"SLURM_ARRAY_TASK_ID is not set" in p.stderr, "--shard slurm outside an array: exit 2")
    part = os.path.join(tmp, "part.db")
    p = run("merge", part, shards[0], shards[2], ok=False)
    check(one_line_error(p) and b"shard 1/3 is missing" in p.stderr and not os.path.exists(part),
          "merge refuses an incomplete set of shards, naming the missing one")
    run("merge", "--partial", part, shards[0], shards[2])
    check(dict(dump(part)["progress"])["finished"] == 1, "merge --partial writes the shards given")
    before = open(shards[0], "rb").read()
    p = run("merge", "--force", shards[0], shards[0], shards[1], shards[2], ok=False)
    check(one_line_error(p) and b"also input" in p.stderr and open(shards[0], "rb").read() == before,
          "merge --force into one of its inputs is refused and the input is untouched")
    shards_max_tokens(tmp, corpus, dict(dump(full)["progress"])["tokens"])


def shards_max_tokens(tmp, corpus, total):
    """--max-tokens caps the corpus: 3 shards with --max-tokens M merge to the store of
    one run with --max-tokens M (M cuts a document in the middle of the corpus), and a
    shard killed mid-run resumes to the same shard store."""
    M = total * 2 // 5 + 7
    one = os.path.join(tmp, "mt.db")
    run(*collect_args(corpus, one, "--max-tokens", str(M)))
    po = dict(dump(one)["progress"])
    check(po["tokens"] == M and po["corpus_tokens"] == M, f"--max-tokens {M}: {po['tokens']} tokens collected")
    sh = []
    for i in range(3):
        s_ = os.path.join(tmp, f"mt{i}.db")
        run(*collect_args(corpus, s_, "--max-tokens", str(M), "--shard", f"{i}/3", "--commit-every", "1"))
        sh.append(s_)
    ps = [dict(dump(x)["progress"]) for x in sh]
    check(sum(x["tokens"] for x in ps) == M and all(x["corpus_tokens"] == M for x in ps),
          f"3 shards under --max-tokens {M}: {[x['tokens'] for x in ps]} tokens, together {M}")
    mm = os.path.join(tmp, "mtm.db")
    run("merge", mm, *sh)
    a, b = dump(one), dump(mm)
    for k in ["topk", "windows", "docs", "groups", "label_totals"]:
        check(a[k] == b[k], f"--max-tokens {M}: 3 shards merged == one run: {k} ({len(a[k])} rows, exact)")
    for k in ["expert_stats", "label_stats", "score_totals", "score_stats"]:
        check(close_rows(a[k], b[k]), f"--max-tokens {M}: 3 shards merged == one run: {k} (sums 1e-9)")
    pm = dict(b["progress"])
    check(pm["tokens"] == M and pm["corpus_tokens"] == M and pm["documents"] == po["documents"],
          "merged progress under --max-tokens: tokens, corpus_tokens, documents as one run")
    # kill -9 a shard after a commit, resume: the same shard store (corpus_tokens kept across the
    # resume). The corpus comes through a FIFO, first its 15 documents (the cap falls later) and
    # 70,000 blank lines (no documents; they fill the reader's 64 KiB chunk), so the kill lands
    # deterministically after shard 1's commit of document 13; the rest comes on resume. The
    # reference is the same shard run uninterrupted on the same bytes at the same path.
    path = os.path.join(tmp, "mtk.jsonl")
    lines = open(corpus).readlines()
    head, pad = "".join(lines[:15]), "\n" * 70000
    with open(path, "w") as f:
        f.write(head + pad + "".join(lines[15:]))
    ref, k1 = os.path.join(tmp, "mtk-ref.db"), os.path.join(tmp, "mtk.db")
    run(*collect_args(path, ref, "--max-tokens", str(M), "--shard", "1/3", "--commit-every", "1"))
    margs = collect_args(path, k1, "--max-tokens", str(M), "--shard", "1/3", "--commit-every", "1")
    os.remove(path)
    os.mkfifo(path)
    p = subprocess.Popen([BIN, *margs], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = None
    with open(path, "w") as f:
        f.write(head + pad)
        f.flush()
        deadline = time.time() + 60
        while time.time() < deadline and p.poll() is None:
            try:
                db = sqlite3.connect(k1)
                state = dict(db.execute("SELECT key, value FROM progress WHERE key IN ('next_doc', 'finished')"))
                db.close()
            except sqlite3.Error:
                state = None
            if state and state.get("next_doc") == 14:
                break
            time.sleep(0.05)
        p.kill()
        p.wait()
    check(state == {"next_doc": 14, "finished": 0},
          f"a --max-tokens shard killed with SIGKILL after its commit of document 13 ({state})")
    os.remove(path)
    with open(path, "w") as f:
        f.write(head + pad + "".join(lines[15:]))
    run(*margs)
    a, b = dump(ref), dump(k1)
    check(all(a[k] == b[k] for k in DUMP), "the killed and resumed --max-tokens shard == the uninterrupted shard "
          "(every table, progress included)")


# ------------------------------------------------------------------ errors

def mode_errors(tmp):
    corpus = os.path.join(tmp, "c.jsonl")
    write_corpus(corpus, 8, extra_bad=True)
    store = os.path.join(tmp, "s.db")
    p = run(*collect_args(corpus, store)[:-1])  # not quiet: the skipped line is reported
    err = p.stderr.decode()
    check(":6: " in err and "(skipped)" in err, "malformed corpus line reported with file:line and skipped")
    check(json.loads(run("collect", *collect_args(corpus, store)[1:], "--json").stdout)["skipped_lines"] == 1,
          "skipped lines counted in the summary")
    old = [a if a not in ("--label-field", "--score-field") else a.replace("-field", "") for a in
           collect_args(corpus, os.path.join(tmp, "old.db"), "--json")]
    p = run(*old)
    check(b"--label is an old spelling of --label-field" in p.stderr and
          json.loads(p.stdout)["documents"] == json.loads(run(*collect_args(corpus, store, "--json")).stdout)["documents"],
          "collect --label/--score (old spellings) still work, with a note")
    p = run(*collect_args(corpus, os.path.join(tmp, "strict.db"), "--strict"), ok=False)
    check(one_line_error(p) and ":6:" in p.stderr.decode(), "--strict: malformed line is fatal, exit 2, file:line")
    p = run(*collect_args(os.path.join(tmp, "missing.jsonl"), os.path.join(tmp, "m.db")), ok=False)
    check(one_line_error(p) and b"missing.jsonl" in p.stderr, "missing corpus: one line naming it, exit 2")
    p = run(*collect_args(corpus, store, "--top-k", "7"), ok=False)
    check(one_line_error(p) and b"other settings" in p.stderr and b"--force-new" in p.stderr,
          "re-run with other settings refused with a hint")
    p = run(*collect_args(corpus, store, "--top-k", "7", "--force-new"))
    check(p.returncode == 0, "--force-new starts over")
    garbage = os.path.join(tmp, "garbage.db")
    open(garbage, "wb").write(b"this is not a database at all" * 100)
    for cmd in (["top-contexts", "--store", garbage, "--expert", "1,1"], ["experts", "--store", garbage]):
        p = run(*cmd, ok=False)
        check(one_line_error(p) and b"not a monet-probe store" in p.stderr, f"{cmd[0]} on a non-SQLite file: exit 2")
    p = run(*collect_args(corpus, garbage), ok=False)
    check(one_line_error(p) and b"force-new" in p.stderr, "collect will not resume a non-store file")
    bad = os.path.join(tmp, "v99.db")
    subprocess.run(["cp", store, bad])
    db = sqlite3.connect(bad)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    p = run("top-contexts", "--store", bad, "--expert", "1,1", ok=False)
    check(one_line_error(p) and b"schema version 99" in p.stderr, "wrong schema version: exit 2 with the version")
    db = sqlite3.connect(bad)
    db.execute(f"UPDATE meta SET value='{SCHEMA_VERSION}' WHERE key='schema_version'")
    db.execute("DROP TABLE topk")
    db.commit()
    db.close()
    p = run("experts", "--store", bad, ok=False)
    check(one_line_error(p) and b"'topk' missing" in p.stderr, "missing table: exit 2 naming it")
    p = run("top-contexts", "--store", os.path.join(tmp, "nope.db"), "--expert", "1,1", ok=False)
    check(one_line_error(p) and b"nope.db" in p.stderr, "missing store: exit 2")
    for e, why in [("16,0", b"I and J must be in 0..15"), ("0,16", b"I and J must be in 0..15"),
                   ("256", b"flat id must be in 0..255"), ("1:#256", b"flat id must be in 0..255"),
                   ("2:1,1", b"router group 2 does not exist"), ("x", b"expected R:I,J or R:#N"),
                   ("-1:3", b"expected R:I,J or R:#N"), ("0:#1,2", b"expected R:I,J or R:#N")]:
        p = run("top-contexts", "--store", store, "--expert", e, ok=False)
        check(one_line_error(p) and why in p.stderr, f"top-contexts --expert {e}: exit 2 ({why.decode()})")
    p = run("top-contexts", "--store", store, "--expert", "1,1", "--model", OTHER, ok=False)
    check(one_line_error(p) and b"another model" in p.stderr, "top-contexts --model of another model: exit 2")
    p = run("experts", "--store", store, "--group", "5", ok=False)
    check(one_line_error(p) and b"unknown router group" in p.stderr, "experts --group out of range: exit 2")
    db = sqlite3.connect(store)
    db.execute("UPDATE windows SET ids = x'28b52ffd0000'")
    db.commit()
    db.close()
    p = run("top-contexts", "--store", store, "--expert", "0:1,1", ok=False)
    check(one_line_error(p) and b"corrupt" in p.stderr, "corrupt window blob: exit 2")
    for c in ["collect", "top-contexts", "experts", "merge", "find"]:
        p = run(c, "--help")
        check(p.returncode == 0 and f"usage: monet-probe {c}".encode() in p.stdout, f"{c} --help")
        p = run(c, "--bogus", ok=False)
        check(one_line_error(p), f"{c} rejects an unknown flag with one line, exit 2")


# ------------------------------------------------------------------ commands

def mode_commands(tmp):
    corpus = os.path.join(tmp, "c.jsonl")
    write_corpus(corpus, 20)
    store = os.path.join(tmp, "s.db")
    run(*collect_args(corpus, store))
    db = sqlite3.connect(store)
    g, e, w, doc, pos = db.execute("SELECT grp, expert, w, doc, pos FROM topk_ranked WHERE rank = 0 ORDER BY w DESC").fetchone()
    E = 16
    out = run("top-contexts", "--store", store, "--expert", f"{g}:{e // E},{e % E}", "--window", "4").stdout.decode()
    lines = out.splitlines()
    check(lines[0].startswith(f"expert {g}:{e // E},{e % E} ({g}:#{e}), group {g} (layers "),
          "top-contexts header: R:I,J, R:#N, group and layers")
    same = run("top-contexts", "--store", store, "--expert", f"{g}:#{e}", "--window", "4").stdout.decode()
    check(same == out, "top-contexts --expert R:#N == R:I,J")
    check(f"{100 * w:.2f}%" in lines[1] and f"doc {doc} pos {pos}" in lines[1] and "[lang=" in lines[1],
          f"first context: activation as a percentage ({100 * w:.2f}%), document, labels")
    check("[[" in lines[2] and "]]" in lines[2], "activating token highlighted with [[...]] off a TTY")
    flat = run("top-contexts", "--store", store, "--expert", f"{g}:{e}", "--window", "4").stdout.decode()
    check(flat == out, "flat expert id == I,J")
    allg = run("top-contexts", "--store", store, "--expert", f"{e // E},{e % E}", "--limit", "2").stdout.decode()
    check(allg.count("group 0 (layers 0-1)") == 1 and allg.count("group 1 (layers 2-2)") == 1,
          "without R: every router group, with the layers it covers")
    j = json.loads(run("top-contexts", "--store", store, "--expert", f"{g}:{e}", "--json", "--window", "3").stdout)
    c0 = j["groups"][0]["contexts"][0]
    rows = db.execute("SELECT w, doc, pos FROM topk_ranked WHERE grp=? AND expert=? ORDER BY rank", (g, e)).fetchall()
    check([(np.float32(c["w"]), c["doc"], c["pos"]) for c in j["groups"][0]["contexts"]] ==
          [(np.float32(r[0]), r[1], r[2]) for r in rows],
          "top-contexts --json: every stored context, best first")
    check(c0["percent"] == f"{100 * w:.2f}%" and "lang" in c0["labels"] and isinstance(c0["token"], str),
          "top-contexts --json fields: percent, labels, left/token/right")
    # the decoded token is the stored id's text
    ids_win = json.loads(run("tokenize", "--model", MODEL, "--json", "--bos", "--whole", "-",
                             stdin=json.loads(open(corpus).readlines()[doc])["code"].encode()).stdout.splitlines()[0])["ids"]
    tok_text = run("tokenize", "--model", MODEL, "--decode", str(ids_win[pos])).stdout.decode().rstrip("\n")
    check(c0["token"].strip() == tok_text.strip(), f"highlighted token is the document's token at pos {pos}")
    # experts
    for key, col in [("count", 2), ("max", 4), ("mean", 3)]:
        j = json.loads(run("experts", "--store", store, "--sort", key, "--limit", "10", "--json").stdout)
        vals = [x[key] for x in j["experts"]]
        check(len(vals) == 10 and vals == sorted(vals, reverse=True), f"experts --sort {key}: descending")
    j = json.loads(run("experts", "--store", store, "--sort", "count", "--limit", "1", "--json").stdout)["experts"][0]
    n, s, mx = db.execute("SELECT n_active, sum_w, max_w FROM expert_stats ORDER BY n_active DESC, grp, expert").fetchone()
    check(j["count"] == n and abs(j["mean"] - s / n) < 1e-6 and abs(j["max"] - mx) < 1e-6,
          "experts: count, mean, max match expert_stats")
    j = json.loads(run("experts", "--store", store, "--label", "lang=Python", "--group", "1", "--limit", "5",
                       "--json").stdout)["experts"]
    want = db.execute("SELECT grp, expert, n_active FROM label_stats WHERE field='lang' AND value='Python' AND grp=1 "
                      "ORDER BY n_active DESC, grp, expert LIMIT 5").fetchall()
    check([(x["group"], x["id"], x["count"]) for x in j] == want, "experts --label lang=Python --group 1 == label_stats")
    txt = run("experts", "--store", store, "--label", "lang=Python", "--limit", "3").stdout.decode()
    check("lang=Python" in txt.splitlines()[0] and len(txt.splitlines()) == 4, "experts --label text table")
    p = run("experts", "--store", store, "--label", "lang=Cobol", ok=False)
    check(one_line_error(p) and b"lang=Cobol" in p.stderr, "experts --label with an unknown value: exit 2")
    evidence_commands(db, store)
    db.close()


def evidence_commands(db, store):
    """find, top-contexts --label / --quantiles == the store's evidence tables."""
    E = 16
    # top-contexts --label: the expert's label_topk rows, best first
    g, e, val = db.execute("SELECT grp, expert, value FROM label_topk WHERE field='lang' GROUP BY 1, 2, 3 "
                           "ORDER BY count(*) DESC, 1, 2, 3").fetchone()
    j = json.loads(run("top-contexts", "--store", store, "--expert", f"{g}:#{e}", "--label", f"lang={val}",
                       "--json").stdout)
    got = [(c["w"], c["doc"], c["pos"], c["labels"]["lang"]) for c in j["groups"][0]["contexts"]]
    want = db.execute("SELECT w, doc, pos, value FROM label_topk WHERE grp=? AND expert=? AND field='lang' AND value=? "
                      "ORDER BY w DESC, doc, pos", (g, e, val)).fetchall()
    check([(np.float32(a), b, c, d) for a, b, c, d in got] == [(np.float32(a), b, c, d) for a, b, c, d in want]
          and len(want) >= 1 and j["groups"][0]["label"] == {"field": "lang", "value": val},
          f"top-contexts --label lang={val} --json == label_topk rows, every document labelled {val}")
    txt = run("top-contexts", "--store", store, "--expert", f"{g}:#{e}", "--label", f"lang={val}").stdout.decode()
    check(f"best documents with lang={val}" in txt and txt.count("[lang=") == txt.count(f"[lang={val}") >= 1 and
          txt.count(" doc ") == len(want),
          "top-contexts --label text: every shown context carries the label")
    p = run("top-contexts", "--store", store, "--expert", f"{g}:#{e}", "--label", "lang=Cobol", ok=False)
    check(one_line_error(p) and b"lang=Cobol" in p.stderr, "top-contexts --label with an unknown value: exit 2")
    p = run("top-contexts", "--store", store, "--expert", f"{g}:#{e}", "--label", "lang", ok=False)
    check(p.returncode == 2, "top-contexts --label without =VALUE: exit 2")
    # top-contexts --quantiles: the qsamples rows, highest octave first
    j = json.loads(run("top-contexts", "--store", store, "--expert", f"{g}:#{e}", "--quantiles", "--json").stdout)
    cs = j["groups"][0]["contexts"]
    want = db.execute("SELECT octave, w, doc, pos FROM qsamples WHERE grp=? AND expert=? "
                      "ORDER BY octave DESC, w DESC, doc, pos", (g, e)).fetchall()
    check([(c["octave"], np.float32(c["w"]), c["doc"], c["pos"]) for c in cs] ==
          [(o, np.float32(w), d, p_) for o, w, d, p_ in want] and len(cs) > 1,
          f"top-contexts --quantiles --json == qsamples rows ({len(cs)} samples, highest octave first)")
    check(all(c["w_range"][0] <= c["w"] and (c["w_range"][1] < 0 or c["w"] < c["w_range"][1]) for c in cs),
          "each quantile sample lies in its octave's w range")
    # find --id / --token / --text == token_index
    t, = db.execute("SELECT token FROM token_index GROUP BY token ORDER BY count(*) DESC, token LIMIT 1").fetchone()
    want = db.execute("SELECT grp, expert, n, max_w FROM token_index WHERE token=? ORDER BY n DESC, max_w DESC, grp, "
                      "expert", (t,)).fetchall()
    j = json.loads(run("find", "--store", store, "--id", str(t), "--limit", "0", "--json").stdout)
    got = [(x["group"], x["id"], x["count"], x["max"]) for x in j["tokens"][0]["experts"]]
    check(len(j["tokens"]) == 1 and j["tokens"][0]["id"] == t and
          [(a, b, c, np.float32(d)) for a, b, c, d in got] == [(a, b, c, np.float32(d)) for a, b, c, d in want]
          and all(x["address"] == f"{x['group']}:{x['id'] // E},{x['id'] % E}" for x in j["tokens"][0]["experts"]),
          f"find --id {t} --json == token_index rows ({len(want)} experts, most frequent first, R:I,J addresses)")
    piece = j["tokens"][0]["piece"]
    j2 = json.loads(run("find", "--store", store, "--token", piece, "--limit", "0", "--json").stdout)
    check(j2["tokens"] == j["tokens"], f"find --token {piece!r} == find --id {t}")
    j3 = json.loads(run("find", "--store", store, "--id", str(t), "--limit", "2", "--group", "1", "--json").stdout)
    check([(x["group"], x["id"]) for x in j3["tokens"][0]["experts"]] ==
          [(a, b) for a, b, _, _ in want if a == 1][:2], "find --group 1 --limit 2")
    text = "def print"
    ids = json.loads(run("tokenize", "--model", MODEL, "--json", "-", stdin=text.encode()).stdout.splitlines()[0])["ids"]
    j4 = json.loads(run("find", "--store", store, "--text", text, "--json", "--limit", "0").stdout)
    check([x["id"] for x in j4["tokens"]] == ids and all(
        [(y["group"], y["id"], y["count"]) for y in x["experts"]] ==
        [(a, b, c) for a, b, c, _ in db.execute("SELECT grp, expert, n, max_w FROM token_index WHERE token=? "
                                                "ORDER BY n DESC, max_w DESC, grp, expert", (x["id"],))]
        for x in j4["tokens"]), f"find --text {text!r}: each token of the text ({ids}) looked up")
    out = run("find", "--store", store, "--id", str(t), "--limit", "3").stdout.decode()
    check(out.startswith("token ") and f"(id {t})" in out and len(out.splitlines()) == 5, "find text output")
    for args, why in [([], b"exactly one of"), (["--id", "1", "--text", "x"], b"exactly one of"),
                      (["--token", "no-such-piece-xyz"], b"no such piece"), (["--id", "99999999"], b"vocabulary"),
                      (["--id", "1", "--group", "7"], b"router groups")]:
        p = run("find", "--store", store, *args, ok=False)
        check(one_line_error(p) and why in p.stderr, f"find {' '.join(args)}: exit 2 ({why.decode()})")


# ------------------------------------------------------------------ sha256

def mode_sha256(tmp):
    files = []
    for n in [0, 1, 55, 56, 63, 64, 65, 1000, 100000]:
        path = os.path.join(tmp, f"f{n}")
        open(path, "wb").write(bytes((i * 7 + n) % 256 for i in range(n)))
        files.append(path)
    files.append(os.path.join(MODEL, "tokenizer.model"))
    ours = subprocess.run([SHA_BIN, *files], capture_output=True).stdout.decode()
    theirs = subprocess.run(["sha256sum", *files], capture_output=True).stdout.decode()
    check(ours == theirs and ours.count("\n") == len(files), f"core/util/sha256 == sha256sum on {len(files)} files")
    check(all(l.split()[0] == hashlib.sha256(open(f, "rb").read()).hexdigest()
              for l, f in zip(ours.splitlines(), files)), "core/util/sha256 == hashlib")


with tempfile.TemporaryDirectory() as tmp:
    t0 = time.time()
    globals()["mode_" + MODE](tmp)
    print(f"{MODE}: {time.time() - t0:.1f}s")
if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
