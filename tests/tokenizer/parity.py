#!/usr/bin/python3
"""tests/tokenizer/parity.py — monet-probe tokenize vs sentencepiece's own
spm_encode / spm_decode (Debian package `sentencepiece`).

  parity.py llama     --bin B --shared S   ids vs spm_encode, LLaMA-2 tokenizer
  parity.py trained   --bin B --shared S   ids and decode vs spm_encode/spm_decode, models
                                           spm_train'ed here and the shipped data/monet-tiny one
  parity.py decode    --bin B --shared S   text vs spm_decode, LLaMA-2 tokenizer
  parity.py malformed --bin B --shared S   broken tokenizer.model -> exit 2, one line

Inputs are built at run time in a temporary directory from generated lines
(whitespace runs, tabs, CJK, emoji, invalid UTF-8, very long lines) plus slices of
../shared/data (llama, decode: never copied into the repository) or of the shipped
data/corpus (trained). `llama` and `decode` need ../shared/data (ctest label `data`:
"skipped: ../shared/data/<dir> not found", exit 77); `trained` and `malformed` need only
the repository. Fails (exit 1) on the first mismatch, printing the input line; exit 77
(skip) when spm_encode is not installed.
"""
import argparse
import csv
import gzip
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


# --- corpus ------------------------------------------------------------------

def lines_of(path, limit, step=1):
    with open(path, "rb") as f:
        data = f.read()
    out = data.split(b"\n")[::step]
    return [l for l in out if l][:limit]


def json_field_lines(path, field, limit_docs, opener=open):
    out = []
    with opener(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= limit_docs:
                break
            doc = json.loads(line)
            out.extend(doc[field].encode("utf-8").split(b"\n"))
    return out


def random_unicode_line(rng):
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF),
              (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x3000, 0x30FF), (0x4E00, 0x9FFF),
              (0xAC00, 0xD7A3), (0xFF00, 0xFFEF), (0x1F300, 0x1F6FF), (0x1F900, 0x1F9FF),
              (0x300, 0x36F), (0x2000, 0x206F), (0x10000, 0x1007F), (0xE000, 0xE0FF)]
    out = []
    for _ in range(rng.randint(1, 60)):
        r = rng.random()
        if r < 0.15:
            out.append(" " * rng.randint(1, 4))
        elif r < 0.2:
            out.append(rng.choice(["\t", "\u3000", "\u00a0", "  \t ", "\r", "\u200b", "\ufeff"]))
        else:
            lo, hi = rng.choice(ranges)
            out.append("".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 6))))
    return "".join(out).encode("utf-8")


BAD_SEQS = [b"\xc3", b"\xe2\x96", b"\xf0\x9f\x98", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80",
            b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf8",
            b"\xfe", b"\xff", b"\x80", b"\xbf", b"\xef\xbf\xbd", b"\xe2\x96\x81", b"\x00", b"\x7f"]


def invalid_utf8_line(rng):
    if rng.random() < 0.4:  # pure random bytes, no newline
        return bytes(b for b in (rng.randrange(256) for _ in range(rng.randint(1, 80))) if b != 10)
    parts = []
    for _ in range(rng.randint(1, 12)):
        parts.append(rng.choice([b"abc", b" ", b"  ", "héllo".encode(), "日本".encode(), b"x",
                                 "😀".encode(), rng.choice(BAD_SEQS)]))
    return b"".join(parts)


def whitespace_line(rng):
    toks = ["word", "x", "def", "(", ")", "{", "}", "\t", "\t\t", " ", "  ", "    ", "        ",
            "\u3000", "\u00a0", "\r", "\v", "\f", "ü", "—"]
    return "".join(rng.choice(toks) for _ in range(rng.randint(1, 30))).encode("utf-8")


REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SHIPPED_TOKENIZER = os.path.join(REPO, "data", "monet-tiny", "tokenizer.model")


def shipped_corpus(rng):
    """Lines of the shipped data/corpus (prose, code in six languages, ToxiGen texts)
    plus the generated groups."""
    groups = {"prose": [], "code": [], "toxigen": []}
    for name in ("valid.jsonl", "probe.jsonl"):
        with open(os.path.join(REPO, "data", "corpus", name), encoding="utf-8") as f:
            for line in f:
                doc = json.loads(line)
                kind = {"prose": "prose", "code": "code"}.get(doc["domain"], "toxigen")
                groups[kind].extend(l for l in doc["text"].encode("utf-8").split(b"\n") if l)
    rng.shuffle(groups["code"])
    groups["code"] = groups["code"][:4000]
    return add_generated(groups, rng, groups["prose"])


def build_corpus(shared, rng, scale=1):
    d = os.path.join(shared, "data")
    groups = {}
    groups["agnews"] = lines_of(os.path.join(d, "agnews/test.csv"), 2500 * scale)
    mmlu = []
    mdir = os.path.join(d, "mmlu/test")
    for name in sorted(os.listdir(mdir))[::3]:
        mmlu.extend(lines_of(os.path.join(mdir, name), 60 * scale))
    groups["mmlu"] = mmlu
    code = json_field_lines(os.path.join(d, "rosettacode/solutions.jsonl"), "code", 10**9)
    rng.shuffle(code)
    groups["rosettacode"] = code[:3000 * scale]
    mpl = []
    for lang in ("cpp", "java", "js", "lua", "php", "py"):
        mpl.extend(json_field_lines(os.path.join(d, "multipl-e/humaneval-%s-reworded.jsonl" % lang),
                                    "prompt", 15 * scale))
    groups["multipl-e"] = mpl
    groups["humaneval"] = json_field_lines(os.path.join(d, "humaneval/HumanEval.jsonl.gz"), "prompt",
                                           40 * scale, opener=gzip.open)
    groups["hellaswag"] = lines_of(os.path.join(d, "hellaswag/hellaswag_val_full.txt"), 1000 * scale, 7)
    return add_generated(groups, rng, groups["agnews"], scale)


def add_generated(groups, rng, prose, scale=1):
    """Adds the generated groups (unicode, invalid UTF-8, whitespace, fixed edge
    cases, long lines built partly from `prose`) to groups and returns it."""
    groups["unicode"] = [random_unicode_line(rng) for _ in range(800 * scale)]
    groups["invalid-utf8"] = [invalid_utf8_line(rng) for _ in range(800 * scale)]
    groups["whitespace"] = [whitespace_line(rng) for _ in range(500 * scale)] + [b"", b" ", b"\t", b"   "]
    groups["fixed"] = [b"<mask> the@@ def  def x <mask><mask>@@@", "\u2581the \u2581\u2581the".encode(),
                       b"<s> </s> <unk> <pad> <0x41>", "\ufb01 \u2460 \uff21 \u00bd \u3000x".encode(),
                       b"  leading and trailing  ", b"\t\tdef f():\r", b"\x00\x01\x1b[0m"]
    groups["long"] = [b" ".join(prose[i:i + 400]) for i in range(0, 1200, 400)] + [
        b"a" * 20000, b" " * 5000, "😀".encode() * 3000, b"\xff" * 3000,
        "の".encode() * 5000, b"\t" * 2000, b"ab " * 7000]
    return groups


def write_lines(path, groups):
    lines, tags = [], []
    for tag, ls in groups.items():
        for l in ls:
            lines.append(l)
            tags.append(tag)
    with open(path, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    return lines, tags


# --- runners -----------------------------------------------------------------

def run(cmd, stdin_path=None, check=True):
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        p = subprocess.run(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    finally:
        if stdin_path:
            stdin.close()
    if check and p.returncode != 0:
        fail("%s exited %d: %s" % (" ".join(cmd), p.returncode, p.stderr.decode(errors="replace")[-2000:]))
    return p


def compare_ids(args, model, inp, lines, tags, label):
    ref = run(["spm_encode", "--model=" + model, "--output_format=id"], inp).stdout.split(b"\n")
    got = run([args.bin, "tokenize", "--tokenizer", model, "--ids", "-"], inp).stdout.split(b"\n")
    n = len(lines)
    if len(ref) != n + 1 or len(got) != n + 1:
        fail("%s: line counts differ: input %d, spm_encode %d, ours %d" % (label, n, len(ref) - 1, len(got) - 1))
    tokens = 0
    for i in range(n):
        if ref[i] != got[i]:
            fail("%s: line %d (%s) differs\n  input: %r\n  spm_encode: %s\n  ours:       %s"
                 % (label, i + 1, tags[i], lines[i][:300], ref[i][:400].decode(), got[i][:400].decode()))
        tokens += len(ref[i].split())
    print("%s: %d lines, %d tokens, 0 mismatches" % (label, n, tokens))
    return ref


def compare_decode(args, model, tmp, id_lines, label):
    ids_path = os.path.join(tmp, "decode-ids.txt")
    with open(ids_path, "wb") as f:
        f.write(b"\n".join(id_lines) + b"\n")
    ref = run(["spm_decode", "--model=" + model, "--input_format=id"], ids_path).stdout
    got = run([args.bin, "tokenize", "--tokenizer", model, "--decode", "-"], ids_path).stdout
    if ref == got:
        print("%s: decode of %d id lines identical to spm_decode (%d bytes)" % (label, len(id_lines), len(ref)))
        return
    one = os.path.join(tmp, "decode-one.txt")
    for l in id_lines:
        with open(one, "wb") as f:
            f.write(l + b"\n")
        r = run(["spm_decode", "--model=" + model, "--input_format=id"], one).stdout
        g = run([args.bin, "tokenize", "--tokenizer", model, "--decode", "-"], one).stdout
        if r != g:
            fail("%s: decode differs for ids %r\n  spm_decode: %r\n  ours:       %r"
                 % (label, l[:300], r[:300], g[:300]))
    fail("%s: decode outputs differ (%d vs %d bytes)" % (label, len(ref), len(got)))


# --- model proto helpers (for trained-model variants and malformed files) ---

def pb_varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_parse(buf):
    fields, i = [], 0
    while i < len(buf):
        k, i = _read_varint(buf, i)
        f, wt = k >> 3, k & 7
        if wt == 0:
            v, i = _read_varint(buf, i)
        elif wt == 2:
            n, i = _read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        else:
            raise ValueError("wire type %d" % wt)
        fields.append((f, wt, v))
    return fields


def _read_varint(buf, i):
    x = s = 0
    while True:
        b = buf[i]
        i += 1
        x |= (b & 0x7F) << s
        s += 7
        if not b & 0x80:
            return x, i


def pb_ser(fields):
    out = bytearray()
    for f, wt, v in fields:
        out += pb_varint(f << 3 | wt)
        if wt == 0:
            out += pb_varint(v)
        elif wt == 2:
            out += pb_varint(len(v)) + v
        else:
            out += v
    return bytes(out)


def retype_pieces(model_bytes, new_type_of):
    """Rewrite SentencePiece.type of pieces for which new_type_of(index, piece) gives a type."""
    fields, out, idx = pb_parse(model_bytes), [], 0
    for f, wt, v in fields:
        if f == 1:
            sub = pb_parse(v)
            piece = next(x for g, _, x in sub if g == 1)
            t = new_type_of(idx, piece)
            if t is not None:
                sub = [x for x in sub if x[0] != 3] + [(3, 0, t)]
            v = pb_ser(sub)
            idx += 1
        out.append((f, wt, v))
    return pb_ser(out)


# --- tests -------------------------------------------------------------------

def test_llama(args, tmp):
    model = os.path.join(args.shared, "data/llama2-tokenizer/tokenizer.model")
    groups = build_corpus(args.shared, random.Random(1234))
    inp = os.path.join(tmp, "input.txt")
    lines, tags = write_lines(inp, groups)
    compare_ids(args, model, inp, lines, tags, "llama2")
    # --bos prepends 1, TEXT argument is one string
    got = run([args.bin, "tokenize", "--tokenizer", model, "--ids", "--bos", "Hello world"]).stdout
    if got != b"1 15043 3186\n":
        fail("--bos 'Hello world': got %r" % got)


def train(tmp, name, text_path, extra):
    prefix = os.path.join(tmp, name)
    cmd = ["spm_train", "--input=" + text_path, "--model_prefix=" + prefix, "--model_type=bpe",
           "--input_sentence_size=20000", "--minloglevel=2"] + extra
    run(cmd)
    return prefix + ".model"


def test_trained(args, tmp):
    rng = random.Random(99)
    groups = shipped_corpus(rng)
    train_txt = os.path.join(tmp, "train.txt")
    with open(train_txt, "wb") as f:
        f.write(b"\n".join(groups["prose"] + groups["code"][:1500] + groups["toxigen"][:1000]))
    small = {k: v[: max(200, len(v) // 3)] for k, v in groups.items()}
    inp = os.path.join(tmp, "input.txt")
    lines, tags = write_lines(inp, small)
    # the tokenizer the repository ships (and every test checkpoint carries)
    ref = compare_ids(args, SHIPPED_TOKENIZER, inp, lines, tags, "shipped/monet-tiny")
    compare_decode(args, SHIPPED_TOKENIZER, tmp, ref[:-1], "shipped/monet-tiny")
    variants = [
        ("identity", ["--vocab_size=1500", "--byte_fallback=true", "--normalization_rule_name=identity"]),
        ("identity-nofallback", ["--vocab_size=800", "--normalization_rule_name=identity",
                                 "--character_coverage=0.98"]),
        ("nmt_nfkc", ["--vocab_size=1500", "--byte_fallback=true"]),
        ("nfkc_cf-user", ["--vocab_size=1200", "--byte_fallback=true", "--normalization_rule_name=nfkc_cf",
                          "--user_defined_symbols=<mask>,def ,@@,\u2581the"]),
        ("suffix-nodummy", ["--vocab_size=1000", "--byte_fallback=true", "--treat_whitespace_as_suffix=true",
                            "--normalization_rule_name=identity", "--add_dummy_prefix=false"]),
    ]
    for name, extra in variants:
        model = train(tmp, name, train_txt, extra)
        ref = compare_ids(args, model, inp, lines, tags, "trained/" + name)
        compare_decode(args, model, tmp, ref[:-1], "trained/" + name)
    # UNUSED pieces are re-split after merging (bpe_model.cc resegment)
    with open(os.path.join(tmp, "identity.model"), "rb") as f:
        base = f.read()
    unused = os.path.join(tmp, "unused.model")
    with open(unused, "wb") as f:
        f.write(retype_pieces(base, lambda i, p: 5 if i > 300 and i % 7 == 0 else None))
    compare_ids(args, unused, inp, lines, tags, "trained/unused-pieces")


def test_decode(args, tmp):
    model = os.path.join(args.shared, "data/llama2-tokenizer/tokenizer.model")
    groups = build_corpus(args.shared, random.Random(77))
    groups = {k: v[: max(300, len(v) // 4)] for k, v in groups.items()}
    inp = os.path.join(tmp, "input.txt")
    lines, tags = write_lines(inp, groups)
    ids_path = os.path.join(tmp, "ids.txt")
    ids = run(["spm_encode", "--model=" + model, "--output_format=id"], inp).stdout
    rng = random.Random(5)
    extra = []
    for _ in range(2000):  # random ids: control, unk, byte runs (valid and not), leading spaces
        n = rng.randint(1, 12)
        seq = [rng.choice([0, 1, 2, 29871, 259, 35, 13, rng.randint(3, 258), rng.randint(3, 258),
                           rng.randint(3, 258), rng.randint(0, 31999), rng.randint(0, 31999)])
               for _ in range(n)]
        extra.append(" ".join(map(str, seq)).encode())
    with open(ids_path, "wb") as f:
        f.write(ids + b"\n".join(extra) + b"\n")
    id_lines = (ids + b"\n".join(extra)).split(b"\n")
    compare_decode(args, model, tmp, id_lines, "llama2")
    print("decode: %d id lines (%d from spm_encode, %d random) identical to spm_decode"
          % (len(id_lines), len(id_lines) - len(extra), len(extra)))
    # round trip of valid UTF-8 prose: decode(encode(x)) == x for LLaMA's identity normalizer
    prose = [l for l in groups["agnews"] + groups["rosettacode"] if b"\r" not in l and not l.startswith(b" ")]
    p = os.path.join(tmp, "prose.txt")
    with open(p, "wb") as f:
        f.write(b"\n".join(prose) + b"\n")
    enc = os.path.join(tmp, "prose.ids")
    with open(enc, "wb") as f:
        f.write(run([args.bin, "tokenize", "--tokenizer", model, "--ids", "-"], p).stdout)
    back = run([args.bin, "tokenize", "--tokenizer", model, "--decode", "-"], enc).stdout
    if back != b"\n".join(prose) + b"\n":
        fail("decode(encode(x)) != x for prose")
    print("round trip: %d prose/code lines decode(encode(x)) == x" % len(prose))


def minimal_model(pieces, trainer=None, normalizer=None):
    """pieces: list of (text, score, type)."""
    fields = []
    for text, score, typ in pieces:
        import struct
        sub = [(1, 2, text.encode()), (2, 5, struct.pack("<f", score))]
        if typ != 1:
            sub.append((3, 0, typ))
        fields.append((1, 2, pb_ser(sub)))
    fields.append((2, 2, pb_ser(trainer if trainer is not None else [(3, 0, 2)])))
    fields.append((3, 2, pb_ser(normalizer if normalizer is not None else [(1, 2, b"identity")])))
    return pb_ser(fields)


def test_malformed(args, tmp):
    with open(SHIPPED_TOKENIZER, "rb") as f:
        good = f.read()
    base = [("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3), ("a", -1, 1), ("b", -2, 1), ("ab", -3, 1)]
    ok = minimal_model(base)
    cases = {
        "empty": b"",
        "garbage": bytes(random.Random(3).randrange(256) for _ in range(3000)),
        "text": b"this is not a protobuf\n",
        "truncated-1": good[:1],
        "truncated-100": good[:100],
        "truncated-half": good[: len(good) // 2],
        "truncated-end": good[:-1],
        "varint-eof": b"\x0a\x80",
        "varint-long": b"\x0a" + b"\xff" * 11,
        "length-past-end": b"\x0a\x7f\x0a\x01a",
        "group-wiretype": b"\x0b\x0c" + ok,
        "wrong-wiretype-pieces": b"\x08\x01" + ok,
        "wrong-wiretype-score": pb_ser([(1, 2, pb_ser([(1, 2, b"x"), (2, 0, 1)]))]) + ok,
        "field-zero": b"\x00\x00" + ok,
        "no-pieces": pb_ser([(2, 2, pb_ser([(3, 0, 2)]))]),
        "unigram": minimal_model(base, trainer=[(3, 0, 1)]),
        "default-unigram": minimal_model(base, trainer=[]),
        "no-unk": minimal_model(base[1:]),
        "two-unk": minimal_model(base + [("<unk2>", 0, 2)]),
        "empty-piece": minimal_model(base + [("", 0, 1)]),
        "duplicate-piece": minimal_model(base + [("ab", -4, 1)]),
        "bad-type": minimal_model(base + [("c", -4, 9)]),
        "byte-without-fallback": minimal_model(base + [("<0x41>", 0, 6)]),
        "fallback-without-bytes": minimal_model(base, trainer=[(3, 0, 2), (35, 0, 1)]),
        "bad-byte-piece": minimal_model(base + [("<0xZZ>", 0, 6)], trainer=[(3, 0, 2), (35, 0, 1)]),
        "charsmap-short": minimal_model(base, normalizer=[(2, 2, b"\x01\x00")]),
        "charsmap-oversize": minimal_model(base, normalizer=[(2, 2, b"\xff\x00\x00\x00abcd")]),
        "charsmap-empty-trie": minimal_model(base, normalizer=[(2, 2, b"\x00\x00\x00\x00abcd")]),
        "denormalizer": ok + pb_ser([(5, 2, pb_ser([(2, 2, b"\x04\x00\x00\x00abcdxyz")]))]),
    }
    # the well-formed minimal model must load and encode
    okp = os.path.join(tmp, "ok.model")
    with open(okp, "wb") as f:
        f.write(ok)
    got = run([args.bin, "tokenize", "--tokenizer", okp, "--ids", "ab ba"]).stdout
    if got != b"0 5 0 4 3\n":
        fail("minimal model: 'ab ba' -> %r" % got)
    for name, data in sorted(cases.items()):
        path = os.path.join(tmp, name + ".model")
        with open(path, "wb") as f:
            f.write(data)
        p = run([args.bin, "tokenize", "--tokenizer", path, "--ids", "hello"], check=False)
        err = p.stderr.decode(errors="replace")
        if p.returncode != 2:
            fail("%s: exit %d, want 2 (stderr %r)" % (name, p.returncode, err))
        if err.count("\n") != 1 or not err.startswith("monet-probe: %s: " % path):
            fail("%s: stderr is not one 'monet-probe: <file>: <problem>' line: %r" % (name, err))
        if p.stdout:
            fail("%s: unexpected stdout %r" % (name, p.stdout))
        print("%-24s exit 2: %s" % (name, err.strip()[len("monet-probe: ") + len(path) + 2:]))
    # missing file, missing model dir, usage errors
    for argv, want in [(["--tokenizer", os.path.join(tmp, "nope.model"), "x"], "cannot open"),
                       (["--model", os.path.join(tmp, "nodir"), "x"], "cannot open"),
                       (["x"], "--model DIR or --tokenizer FILE is required"),
                       (["--tokenizer", okp], "no input"),
                       (["--tokenizer", okp, "--frobnicate", "x"], "unknown option"),
                       (["--tokenizer", okp, "--decode", "1 99999"], "out of range")]:
        p = run([args.bin, "tokenize"] + argv, check=False)
        err = p.stderr.decode(errors="replace")
        if p.returncode != 2 or want not in err or err.count("\n") != 1:
            fail("tokenize %s: exit %d, stderr %r (want exit 2 and %r)" % (argv, p.returncode, err, want))
    p = run([args.bin, "tokenize", "--help"], check=False)
    if p.returncode != 0 or b"usage:" not in p.stdout:
        fail("--help: exit %d" % p.returncode)
    print("malformed: %d broken models and 6 usage errors rejected cleanly" % len(cases))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["llama", "trained", "decode", "malformed"])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--shared", required=True)
    args = ap.parse_args()
    needs = {"llama": ["spm_encode"], "trained": ["spm_encode", "spm_train"],
             "decode": ["spm_encode", "spm_decode"], "malformed": []}[args.what]
    for tool in needs:
        if not shutil.which(tool):
            print("skipped: %s not installed (apt-get install sentencepiece)" % tool)
            return SKIP
    if args.what in ("llama", "decode") and not os.path.isdir(os.path.join(args.shared, "data/llama2-tokenizer")):
        print("skipped: ../shared/data/llama2-tokenizer not found")
        return SKIP
    with tempfile.TemporaryDirectory(prefix="mp-tok-") as tmp:
        globals()["test_" + args.what](args, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
