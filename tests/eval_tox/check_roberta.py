#!/usr/bin/env python3
"""tests/eval_tox/check_roberta.py — parity of the C RoBERTa scorer (core/eval/roberta.c,
core/text/bpe_bytelevel.c) against independent Python implementations.

Builds a tiny random RoBERTa in the Hugging Face layout (config.json, model.safetensors
written by hand, vocab.json + merges.txt learned here by a small BPE trainer), then checks
  1. tokenizer: `monet-probe toxicity-scorer tokenize` == a faithful GPT-2 byte-level BPE
     (encoder.py's bpe() loop; the pre-tokenization regex run by Python's `re` with \\p{L},
     \\p{N} and \\s expanded from unicodedata / the Unicode White_Space list);
  2. logits: `toxicity-scorer score --logits` == a float64 numpy forward written from the
     BERT/RoBERTa equations, and a hand-written float64 torch forward when torch imports
     (max abs error <= 1e-4); P(toxic) via `score --scorer roberta:DIR` == softmax;
  3. errors: a missing tensor and a wrong shape are named, exit status 2.
usage: check_roberta.py MONET_PROBE WORKDIR
"""
import json, math, os, random, re, shutil, struct, subprocess, sys, unicodedata
import numpy as np

BIN, WORK = sys.argv[1], sys.argv[2]
FAIL = []

def check(cond, msg):
    if not cond:
        FAIL.append(msg)
        print("FAIL:", msg)

# ---- reference pre-tokenizer ------------------------------------------------------------
WHITE = [(0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
         (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000)]

def ranges(pred):
    out, start = [], None
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            ok = False
        else:
            ok = pred(chr(cp))
        if ok and start is None:
            start = cp
        elif not ok and start is not None:
            out.append((start, cp - 1)); start = None
    if start is not None:
        out.append((start, 0x10FFFF))
    return out

def cls(rs):
    return "".join(re.escape(chr(a)) if a == b else re.escape(chr(a)) + "-" + re.escape(chr(b)) for a, b in rs)

L = cls(ranges(lambda c: unicodedata.category(c).startswith("L")))
N = cls(ranges(lambda c: unicodedata.category(c).startswith("N")))
S = cls(WHITE)
PAT = re.compile("'s|'t|'re|'ve|'m|'ll|'d| ?[%s]+| ?[%s]+| ?[^%s%s%s]+|[%s]+(?![^%s])|[%s]+"
                 % (L, N, S, L, N, S, S, S))

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
         list(range(ord("\xae"), ord("\xff") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b); cs.append(256 + n); n += 1
    return dict(zip(bs, map(chr, cs)))

B2U = bytes_to_unicode()

def get_pairs(word):
    return set(zip(word, word[1:]))

def bpe(token, ranks):  # GPT-2 encoder.py
    word = tuple(token)
    pairs = get_pairs(word)
    if not pairs:
        return [token]
    while True:
        bigram = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if bigram not in ranks:
            break
        first, second = bigram
        new, i = [], 0
        while i < len(word):
            try:
                j = word.index(first, i)
                new.extend(word[i:j]); i = j
            except ValueError:
                new.extend(word[i:]); break
            if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                new.append(first + second); i += 2
            else:
                new.append(word[i]); i += 1
        word = tuple(new)
        if len(word) == 1:
            break
        pairs = get_pairs(word)
    return list(word)

def pieces(text):
    return ["".join(B2U[b] for b in p.encode("utf-8")) for p in PAT.findall(text)]

# ---- fixture: vocab + merges learned from a small corpus ----------------------------------
CORPUS = ("the quick brown fox jumps over the lazy dog. they're not going to stop, we'll see. "
          "I don't think that's true; it's the people who've been there. toxic toxicity hate "
          "hateful statements about the group are the worst. numbers 123 4567 and 2024! "
          "café naïve résumé Привет мир привет 日本語のテキスト こんにちは").split(" ") * 3
ranks, vocab = {}, {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
for b in range(256):
    vocab[B2U[b]] = len(vocab)
words = {}
for w in PAT.findall(" ".join(CORPUS)):
    t = tuple("".join(B2U[b] for b in w.encode("utf-8")))
    words[t] = words.get(t, 0) + 1
merges = []
for _ in range(150):
    counts = {}
    for w, c in words.items():
        for p in zip(w, w[1:]):
            counts[p] = counts.get(p, 0) + c
    if not counts:
        break
    best = max(sorted(counts), key=lambda p: counts[p])
    merges.append(best)
    ranks[best] = len(merges) - 1
    vocab.setdefault(best[0] + best[1], len(vocab))
    nw = {}
    for w, c in words.items():
        out, i = [], 0
        while i < len(w):
            if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                out.append(w[i] + w[i + 1]); i += 2
            else:
                out.append(w[i]); i += 1
        nw[tuple(out)] = nw.get(tuple(out), 0) + c
    words = nw
vocab["<mask>"] = len(vocab)

D, H, FF, NL, MAXPOS, PAD, NLAB = 32, 4, 64, 2, 40, 1, 2
V = len(vocab)
rng = np.random.default_rng(7)

def rnd(*shape, s=0.3):
    return (rng.standard_normal(shape) * s).astype(np.float32)

W = {"roberta.embeddings.word_embeddings.weight": rnd(V, D),
     "roberta.embeddings.position_embeddings.weight": rnd(MAXPOS, D),
     "roberta.embeddings.token_type_embeddings.weight": rnd(1, D),
     "roberta.embeddings.LayerNorm.weight": 1 + rnd(D, s=0.1),
     "roberta.embeddings.LayerNorm.bias": rnd(D, s=0.1)}
for l in range(NL):
    p = "roberta.encoder.layer.%d." % l
    for n in ("query", "key", "value"):
        W[p + "attention.self.%s.weight" % n] = rnd(D, D)
        W[p + "attention.self.%s.bias" % n] = rnd(D, s=0.1)
    W[p + "attention.output.dense.weight"] = rnd(D, D)
    W[p + "attention.output.dense.bias"] = rnd(D, s=0.1)
    W[p + "attention.output.LayerNorm.weight"] = 1 + rnd(D, s=0.1)
    W[p + "attention.output.LayerNorm.bias"] = rnd(D, s=0.1)
    W[p + "intermediate.dense.weight"] = rnd(FF, D)
    W[p + "intermediate.dense.bias"] = rnd(FF, s=0.1)
    W[p + "output.dense.weight"] = rnd(D, FF)
    W[p + "output.dense.bias"] = rnd(D, s=0.1)
    W[p + "output.LayerNorm.weight"] = 1 + rnd(D, s=0.1)
    W[p + "output.LayerNorm.bias"] = rnd(D, s=0.1)
W["classifier.dense.weight"] = rnd(D, D, s=0.5)
W["classifier.dense.bias"] = rnd(D, s=0.1)
W["classifier.out_proj.weight"] = rnd(NLAB, D, s=1.0)
W["classifier.out_proj.bias"] = rnd(NLAB, s=0.1)

def write_safetensors(path, tensors, extra_i64=True):
    header, blobs, off = {}, [], 0
    items = sorted(tensors.items())
    if extra_i64:  # HF checkpoints may carry the position_ids buffer: must be ignored
        items.append(("roberta.embeddings.position_ids", np.arange(MAXPOS, dtype=np.int64)[None, :]))
    for name, a in items:
        a = np.ascontiguousarray(a)
        dt = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[a.dtype]
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs:
            f.write(b)

def write_dir(d, tensors):
    os.makedirs(d, exist_ok=True)
    cfg = {"architectures": ["RobertaForSequenceClassification"], "model_type": "roberta", "vocab_size": V,
           "hidden_size": D, "num_hidden_layers": NL, "num_attention_heads": H, "intermediate_size": FF,
           "hidden_act": "gelu", "max_position_embeddings": MAXPOS, "type_vocab_size": 1,
           "layer_norm_eps": 1e-5, "pad_token_id": PAD, "bos_token_id": 0, "eos_token_id": 2,
           "id2label": {"0": "LABEL_0", "1": "LABEL_1"}, "label2id": {"LABEL_0": 0, "LABEL_1": 1}}
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=1)
    json.dump(vocab, open(os.path.join(d, "vocab.json"), "w", encoding="utf-8"), ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write("%s %s\n" % (a, b))
    write_safetensors(os.path.join(d, "model.safetensors"), tensors)

MODEL = os.path.join(WORK, "tiny-roberta")
shutil.rmtree(WORK, ignore_errors=True)
write_dir(MODEL, W)

# ---- tokenizer parity -------------------------------------------------------------------
TEXTS = ["the quick brown fox", "They're here; we'll see what's what.", "I don't think it's the people's fault",
         "  leading and trailing spaces  ", "tabs\tand\nnewlines\n\n  indented", "numbers 123 4567 and 2024!",
         "café naïve résumé", "Привет мир, привет!", "日本語のテキスト、こんにちは。", "emoji 😀👍🏽 ok",
         "½ ² ³ ¼ x²", "quotes “like this” — and… more", "αβγ δέλτα", "'s 're 'll 'd 'm 't 've", "''s ''", "a'b'c",
         "   ", "x", "hate hateful toxicity", "\u00a0nbsp\u2009thin\u3000ideographic", "mixed123abc 45.6e7",
         "UPPER lower MiXeD", "end with space ", "!!!???...", "don'T", "tab\t\tx", "\n", "a  b   c    d",
         "a very long text " * 12]
r = random.Random(5)
alphabet = "abcdeghilmnorstuvy ABT'\n\t0123.,!?-é日😀"
TEXTS += ["".join(r.choice(alphabet) for _ in range(r.randint(1, 40))) for _ in range(200)]
MAXTOK = MAXPOS - PAD - 1

def ref_ids(t):
    ids = []
    for p in pieces(t):
        ids += [vocab.get(s, 3) for s in bpe(p, ranks)]
    return [0] + ids[:MAXTOK - 2] + [2]

inp = os.path.join(WORK, "texts.jsonl")
with open(inp, "w", encoding="utf-8") as f:
    for t in TEXTS:
        f.write(json.dumps({"text": t}) + "\n")
out = subprocess.run([BIN, "toxicity-scorer", "tokenize", "--roberta", MODEL, "--in", inp],
                     capture_output=True, text=True)
check(out.returncode == 0, "tokenize exit %d: %s" % (out.returncode, out.stderr))
got = [[int(x) for x in line.split(",")] for line in out.stdout.splitlines()]
check(len(got) == len(TEXTS), "tokenize printed %d lines for %d texts" % (len(got), len(TEXTS)))
bad = 0
for t, g in zip(TEXTS, got):
    want = ref_ids(t)
    if g != want:
        bad += 1
        if bad <= 5:
            print("tokenizer mismatch for %r:\n  C   %s\n  ref %s" % (t, g, want))
check(bad == 0, "tokenizer: %d of %d texts differ" % (bad, len(TEXTS)))
n_merged = sum(1 for t in TEXTS for i in ref_ids(t) if i >= 260)
check(n_merged > 100, "fixture exercises merges (%d merged tokens)" % n_merged)
print("tokenizer: %d texts identical (%d merged tokens, %d truncated)" %
      (len(TEXTS) - bad, n_merged, sum(1 for t in TEXTS if len(ref_ids(t)) == MAXTOK)))

# ---- logits parity ----------------------------------------------------------------------
def np_forward(ids):
    w = {k: v.astype(np.float64) for k, v in W.items()}
    ids = np.array(ids)
    mask = (ids != PAD).astype(np.int64)
    pos = np.cumsum(mask) * mask + PAD
    x = w["roberta.embeddings.word_embeddings.weight"][ids] + w["roberta.embeddings.position_embeddings.weight"][pos] \
        + w["roberta.embeddings.token_type_embeddings.weight"][0]

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-5) * w[p + ".weight"] + w[p + ".bias"]

    def lin(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]
    erf = np.vectorize(math.erf)
    x = ln(x, "roberta.embeddings.LayerNorm")
    T, dh = len(ids), D // H
    for l in range(NL):
        p = "roberta.encoder.layer.%d." % l
        q = lin(x, p + "attention.self.query").reshape(T, H, dh).transpose(1, 0, 2)
        k = lin(x, p + "attention.self.key").reshape(T, H, dh).transpose(1, 0, 2)
        v = lin(x, p + "attention.self.value").reshape(T, H, dh).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(T, D)
        x = ln(x + lin(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        h = lin(x, p + "intermediate.dense")
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
        x = ln(x + lin(h, p + "output.dense"), p + "output.LayerNorm")
    h = np.tanh(lin(x[0], "classifier.dense"))
    return lin(h, "classifier.out_proj")

try:
    import torch
    import torch.nn.functional as F
except Exception:  # noqa: BLE001
    torch = None

def torch_forward(ids):
    w = {k: torch.tensor(v, dtype=torch.float64) for k, v in W.items()}
    ids = torch.tensor(ids)
    mask = (ids != PAD).long()
    pos = torch.cumsum(mask, 0) * mask + PAD
    x = F.embedding(ids, w["roberta.embeddings.word_embeddings.weight"]) + \
        F.embedding(pos, w["roberta.embeddings.position_embeddings.weight"]) + \
        w["roberta.embeddings.token_type_embeddings.weight"][0]
    ln = lambda x, p: F.layer_norm(x, (D,), w[p + ".weight"], w[p + ".bias"], 1e-5)  # noqa: E731
    lin = lambda x, p: F.linear(x, w[p + ".weight"], w[p + ".bias"])  # noqa: E731
    x = ln(x, "roberta.embeddings.LayerNorm")
    T, dh = len(ids), D // H
    for l in range(NL):
        p = "roberta.encoder.layer.%d." % l
        heads = lambda t: t.view(T, H, dh).transpose(0, 1)  # noqa: E731
        q, k, v = (heads(lin(x, p + "attention.self." + n)) for n in ("query", "key", "value"))
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(dh), -1)
        ctx = (a @ v).transpose(0, 1).reshape(T, D)
        x = ln(x + lin(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        x = ln(x + lin(F.gelu(lin(x, p + "intermediate.dense")), p + "output.dense"), p + "output.LayerNorm")
    return lin(torch.tanh(lin(x[0], "classifier.dense")), "classifier.out_proj").numpy()

LOGIT_TEXTS = TEXTS[:29] + TEXTS[29:60]
with open(inp, "w", encoding="utf-8") as f:
    for t in LOGIT_TEXTS:
        f.write(json.dumps({"text": t}) + "\n")
out = subprocess.run([BIN, "toxicity-scorer", "score", "--scorer", "roberta:" + MODEL, "--logits", "--in", inp],
                     capture_output=True, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
check(out.returncode == 0, "score --logits exit %d: %s" % (out.returncode, out.stderr))
c_logits = np.array([[float(x) for x in l.split()] for l in out.stdout.splitlines()])
err_np = err_t = 0.0
for t, c in zip(LOGIT_TEXTS, c_logits):
    ids = ref_ids(t)
    ref = np_forward(ids)
    err_np = max(err_np, float(np.abs(c - ref).max()))
    if torch is not None:
        tr = torch_forward(ids)
        err_t = max(err_t, float(np.abs(c - tr).max()))
        check(np.abs(tr - ref).max() < 1e-9, "torch and numpy references disagree")
spread = float(np.abs(c_logits).max())
check(err_np <= 1e-4, "logits vs numpy float64: max abs err %.3g > 1e-4" % err_np)
check(torch is None or err_t <= 1e-4, "logits vs torch float64: max abs err %.3g > 1e-4" % err_t)
check(spread > 0.5, "logits are not trivial (max |logit| %.3g)" % spread)
print("logits: %d texts, max |logit| %.3f, max abs err vs numpy f64 %.2e, vs torch f64 %s" %
      (len(LOGIT_TEXTS), spread, err_np, "%.2e" % err_t if torch is not None else "(torch unavailable)"))

# P(toxic) = softmax(logits)[1] through the scorer front
out = subprocess.run([BIN, "toxicity-scorer", "score", "--scorer", "roberta:" + MODEL, "--in", inp],
                     capture_output=True, text=True)
probs = np.array([float(x) for x in out.stdout.split()])
sm = np.exp(c_logits - c_logits.max(1, keepdims=True))
sm /= sm.sum(1, keepdims=True)
check(out.returncode == 0 and len(probs) == len(LOGIT_TEXTS) and np.abs(probs - sm[:, 1]).max() < 1e-6,
      "score roberta: P(LABEL_1) != softmax(logits)[1]")
out = subprocess.run([BIN, "toxicity-scorer", "score", "--scorer", "roberta:" + MODEL, "--positive-label", "LABEL_0",
                      "--in", inp], capture_output=True, text=True)
p0 = np.array([float(x) for x in out.stdout.split()])
check(len(p0) == len(probs) and np.abs(p0 + probs - 1).max() < 1e-6, "--positive-label LABEL_0 = 1 - P(LABEL_1)")
out = subprocess.run([BIN, "toxicity-scorer", "score", "--scorer", "roberta:" + MODEL, "--positive-label", "toxic",
                      "--in", inp], capture_output=True, text=True)
check(out.returncode == 2 and "--positive-label" in out.stderr, "unknown label is named: %r" % out.stderr)

# ---- malformed checkpoints -------------------------------------------------------------------
broken = dict(W)
del broken["classifier.out_proj.bias"]
write_dir(os.path.join(WORK, "missing"), broken)
out = subprocess.run([BIN, "toxicity-scorer", "score", "--scorer", "roberta:" + os.path.join(WORK, "missing"),
                      "--in", inp], capture_output=True, text=True)
check(out.returncode == 2 and "classifier.out_proj.bias" in out.stderr, "missing tensor named: %r" % out.stderr)
broken = dict(W)
broken["roberta.encoder.layer.1.intermediate.dense.weight"] = rnd(FF + 1, D)
write_dir(os.path.join(WORK, "shape"), broken)
out = subprocess.run([BIN, "toxicity-scorer", "score", "--scorer", "roberta:" + os.path.join(WORK, "shape"),
                      "--in", inp], capture_output=True, text=True)
check(out.returncode == 2 and "intermediate.dense.weight" in out.stderr and "shape" in out.stderr,
      "wrong shape named: %r" % out.stderr)

if FAIL:
    print("%d check(s) failed" % len(FAIL))
    sys.exit(1)
print("roberta parity: all checks passed")
