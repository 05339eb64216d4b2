"""SentencePiece encoding without the python `sentencepiece` module (not installed here).

Uses the Debian `spm_encode` CLI. spm_encode reads one sentence per LINE, but documents
contain newlines. With identity normalization, byte fallback and no vocabulary piece that
contains '\\n', SentencePiece BPE on a whole document equals the concatenation of the
encodings of the '\\n'-separated segments joined by the byte piece <0x0A> (no merge can
cross a newline). Only the first segment gets the dummy prefix '▁'. We therefore encode with
a copy of the model whose normalizer has add_dummy_prefix=false, and prepend ' ' to the
first line of each document (with remove_extra_whitespaces=false that is exactly the dummy
prefix). `selftest()` checks that equivalence on single lines against the shipped model.
"""
import os, subprocess, tempfile


def _varint(b, i):
    x = s = 0
    while True:
        c = b[i]; i += 1
        x |= (c & 0x7F) << s; s += 7
        if c < 0x80:
            return x, i


def _enc_varint(x):
    out = bytearray()
    while True:
        c = x & 0x7F; x >>= 7
        if x:
            out.append(c | 0x80)
        else:
            out.append(c); return bytes(out)


def _fields(b):
    """Yield (field_no, wire_type, raw_bytes_of_whole_field, payload) for a protobuf message."""
    i = 0
    while i < len(b):
        st = i
        key, i = _varint(b, i)
        fn, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i); payload = v
        elif wt == 1:
            payload = b[i:i + 8]; i += 8
        elif wt == 2:
            n, i = _varint(b, i); payload = b[i:i + n]; i += n
        elif wt == 5:
            payload = b[i:i + 4]; i += 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        yield fn, wt, b[st:i], payload


def pieces(model_path):
    """List of (piece, score, type) in id order (ModelProto.pieces = field 1)."""
    import struct
    b = open(model_path, "rb").read()
    out = []
    for fn, wt, raw, pl in _fields(b):
        if fn == 1:
            p, sc, ty = None, 0.0, 1
            for f2, w2, r2, p2 in _fields(pl):
                if f2 == 1:
                    p = p2.decode("utf-8")
                elif f2 == 2:
                    sc = struct.unpack("<f", p2)[0]
                elif f2 == 3:
                    ty = p2
            out.append((p, sc, ty))
    return out


def make_noprefix(src, dst):
    """Copy of the model with NormalizerSpec.add_dummy_prefix (ModelProto field 3, sub-field 3) = false."""
    b = open(src, "rb").read()
    out = bytearray()
    for fn, wt, raw, pl in _fields(b):
        if fn == 3 and wt == 2:
            sub = bytearray()
            for f2, w2, r2, p2 in _fields(pl):
                if f2 != 3:
                    sub += r2
            sub += _enc_varint((3 << 3) | 0) + _enc_varint(0)
            out += _enc_varint((3 << 3) | 2) + _enc_varint(len(sub)) + sub
        else:
            out += raw
    open(dst, "wb").write(bytes(out))


class Tok:
    def __init__(self, model_path, workdir=None):
        self.model = model_path
        self.workdir = workdir or tempfile.mkdtemp(prefix="spmtok")
        os.makedirs(self.workdir, exist_ok=True)
        self.np_model = os.path.join(self.workdir, "tokenizer_noprefix.model")
        make_noprefix(model_path, self.np_model)
        self.vocab = pieces(model_path)
        self.piece2id = {p: i for i, (p, _, _) in enumerate(self.vocab)}
        self.nl = self.piece2id["<0x0A>"]
        self.bos, self.eos = 1, 2

    def _spm(self, model, lines):
        inp = os.path.join(self.workdir, "enc_in.txt")
        with open(inp, "w", encoding="utf-8") as f:
            for l in lines:
                f.write(l + "\n")
        r = subprocess.run(["spm_encode", "--model=" + model, "--output_format=id", "--input=" + inp],
                           stdout=subprocess.PIPE, check=True)
        outl = r.stdout.decode("utf-8").split("\n")
        assert len(outl) >= len(lines), (len(outl), len(lines))
        return [[int(t) for t in o.split()] for o in outl[:len(lines)]]

    def encode_docs(self, texts):
        """Encode full documents (as SentencePiece would encode the whole string; no BOS/EOS)."""
        lines, spans = [], []
        for t in texts:
            segs = t.split("\n")
            segs[0] = " " + segs[0]
            spans.append((len(lines), len(segs)))
            lines.extend(segs)
        enc = self._spm(self.np_model, lines)
        out = []
        for st, n in spans:
            ids = []
            for k in range(n):
                if k:
                    ids.append(self.nl)
                ids.extend(enc[st + k])
            out.append(ids)
        return out

    def decode(self, ids):
        bs = bytearray()
        for i in ids:
            p, _, ty = self.vocab[i]
            if ty == 6:          # BYTE
                bs.append(int(p[3:5], 16))
            elif ty in (2, 3):   # UNKNOWN / CONTROL
                continue
            else:
                bs += p.replace("\u2581", " ").encode("utf-8")
        s = bs.decode("utf-8", errors="replace")
        return s[1:] if s.startswith(" ") else s

    def selftest(self, samples):
        """Line-level check: shipped model on `l` == no-prefix model on ' ' + l."""
        a = self._spm(self.model, samples)
        b = self._spm(self.np_model, [" " + s for s in samples])
        bad = [s for s, x, y in zip(samples, a, b) if x != y]
        return len(samples) - len(bad), bad
