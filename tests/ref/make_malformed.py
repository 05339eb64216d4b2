#!/usr/bin/python3
"""tests/ref/make_malformed.py — broken variants of a good tiny checkpoint, one
problem each, for the loader's error paths (STYLE.md 14: a folder of
malformed examples).

  make_malformed.py --out DIR [--src GOOD_DIR] [--verify]

--src must be a single-file F32 checkpoint written by make_checkpoint.py; when
absent one is generated into DIR/good. Every variant is written to
DIR/badNN/ (neutral names, so that a path never contains an expected word)
and DIR/manifest.json maps

  variant -> {"dir": "badNN",
              "problem": what is wrong,
              "expect": [substrings, case-insensitive; the error line must
                         contain at least one],
              "file":   [file names; the error line must contain at least one]}

The command under test must exit with status 2 and print exactly one stderr
line starting with "monet-probe: " (DESIGN.md §6). --verify also checks that
the numpy reference (monet_ref.py) rejects every variant and accepts "good".
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_checkpoint  # noqa: E402
import monet_ref  # noqa: E402

ST = "model.safetensors"
Q = "model.layers.0.self_attn.q_proj.weight"
NORM_A = "model.layers.0.input_layernorm.weight"
NORM_B = "model.layers.0.post_attention_layernorm.weight"

NOT_FOUND = ["no such file", "not found", "missing", "cannot open", "can't open", "does not exist",
             "failed to open", "open"]
# no "json" here: the file names config.json / *.index.json already contain it
BAD_JSON = ["parse", "syntax", "invalid", "malformed", "not valid", "unexpected"]
OFFSETS = ["offset", "out of range", "past end", "beyond", "exceeds", "truncated", "outside"]


def read_raw(path):
    """{name: [dtype, shape, raw bytes]} of one safetensors file."""
    header, start, _ = monet_ref.read_safetensors_header(path)
    data = open(path, "rb").read()[start:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = [info["dtype"], list(info["shape"]), data[b:e]]
    return out


def write_custom(path, entries, offsets=None, header_bytes=None):
    """Write a safetensors file with entries laid out in sorted order; offsets
    overrides {name: [b, e]} in the header only (data stays where it was put);
    header_bytes replaces the whole JSON header."""
    names = sorted(entries)
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for n in names:
        dt, shape, raw = entries[n]
        header[n] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    for n, o in (offsets or {}).items():
        header[n]["data_offsets"] = o
    hj = header_bytes if header_bytes is not None else json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for n in names:
            f.write(entries[n][2])


def variants(src, out):
    """Write every variant; return the manifest."""
    cfg = json.load(open(os.path.join(src, "config.json")))
    raw = read_raw(os.path.join(src, ST))
    if raw[Q][0] != "F32":
        raise SystemExit("make_malformed: --src must be an F32 checkpoint")
    man = {}

    def new(name, problem, expect, files):
        # neutral directory names: a path like .../wrong_shape/model.safetensors
        # would itself contain the expected word "shape"
        sub = f"bad{len(man) + 1:02d}"
        d = os.path.join(out, sub)
        if os.path.exists(d):
            shutil.rmtree(d)
        shutil.copytree(src, d)
        files = [sub if f == "<dir>" else f for f in files]
        man[name] = {"dir": sub, "problem": problem, "expect": expect, "file": files}
        return d

    def entries():
        return {k: list(v) for k, v in raw.items()}

    # -- safetensors container
    d = new("header_len_past_eof", "8-byte header length larger than the file", ["header"], [ST])
    p = os.path.join(d, ST)
    size = os.path.getsize(p)
    with open(p, "r+b") as f:
        f.write(struct.pack("<Q", size + 100))

    d = new("truncated_data", "file shorter than the last data_offsets end", OFFSETS + ["short", "size"], [ST])
    p = os.path.join(d, ST)
    with open(p, "r+b") as f:
        f.truncate(size - 100)

    d = new("offsets_out_of_range", f"{Q} data_offsets point 1 TiB past the data", OFFSETS, [ST])
    n = len(raw[Q][2])
    write_custom(os.path.join(d, ST), entries(), offsets={Q: [1 << 40, (1 << 40) + n]})

    d = new("offsets_inverted", f"{Q} data_offsets begin > end", OFFSETS + ["invalid"], [ST])
    write_custom(os.path.join(d, ST), entries(), offsets={Q: [n, 0]})

    d = new("offsets_overlap", f"{NORM_B} shares the bytes of {NORM_A}", ["overlap"], [ST])
    hdr, _, _ = monet_ref.read_safetensors_header(os.path.join(src, ST))
    write_custom(os.path.join(d, ST), entries(), offsets={NORM_B: hdr[NORM_A]["data_offsets"]})

    d = new("header_not_json", "header bytes are not valid JSON", BAD_JSON + ["json", "header"], [ST])
    write_custom(os.path.join(d, ST), entries(),
                 header_bytes=b'{"__metadata__":{"format":"pt"},"model.embed_tokens.weight":{"dtype":"F32",')

    d = new("empty_safetensors", "model.safetensors is 0 bytes", ["empty", "too small", "short", "truncated",
                                                                   "header", "size"], [ST])
    open(os.path.join(d, ST), "wb").close()

    # -- tensors
    e = entries()
    rows, cols = e[Q][1]
    e[Q][1] = [rows // 2, cols * 2]
    d = new("wrong_shape", f"{Q} has shape [{rows // 2},{cols * 2}] (same bytes), needs [{rows},{cols}]",
            ["shape"], [ST])
    write_custom(os.path.join(d, ST), e)

    e = entries()
    e[Q][0] = "I32"
    d = new("wrong_dtype_i32", f"{Q} stored as I32", ["dtype", "type"], [ST])
    write_custom(os.path.join(d, ST), e)

    e = entries()
    e[Q] = ["F64", e[Q][1], np.frombuffer(e[Q][2], "<f4").astype("<f8").tobytes()]
    d = new("wrong_dtype_f64", f"{Q} stored as F64 (unsupported)", ["dtype", "type", "f64"], [ST])
    write_custom(os.path.join(d, ST), e)

    e = entries()
    e[Q][0] = "Q7_K"
    d = new("unknown_dtype", f"{Q} has dtype \"Q7_K\"", ["dtype", "type", "q7_k"], [ST])
    write_custom(os.path.join(d, ST), e)

    e = entries()
    del e[NORM_B]
    d = new("missing_tensor", f"{NORM_B} absent", ["missing", "not found", "no tensor", NORM_B.lower()],
            [ST, "<dir>"])
    write_custom(os.path.join(d, ST), e)

    # -- config.json
    def set_config(d, **kv):
        c = dict(cfg, **kv)
        for k, v in kv.items():
            if v is None:
                del c[k]
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(c, f, indent=2)

    d = new("config_invalid_json", "config.json cut in the middle", BAD_JSON, ["config.json"])
    text = open(os.path.join(src, "config.json")).read()
    open(os.path.join(d, "config.json"), "w").write(text[: len(text) // 2])

    d = new("config_missing", "no config.json", NOT_FOUND, ["config.json"])
    os.remove(os.path.join(d, "config.json"))

    d = new("decompose_diagonal", 'moe_decompose is "diagonal"', ["moe_decompose", "diagonal"], ["config.json"])
    set_config(d, moe_decompose="diagonal")

    d = new("config_missing_key", "moe_experts absent", ["moe_experts"], ["config.json"])
    set_config(d, moe_experts=None)

    d = new("hidden_not_divisible", f"hidden_size {cfg['hidden_size']} with 3 attention heads",
            ["divisible", "multiple", "hidden_size", "num_attention_heads", "head"], ["config.json"])
    set_config(d, num_attention_heads=3, num_key_value_heads=1)

    d = new("heads_not_divisible_kv", "4 attention heads, 3 key/value heads",
            ["divisible", "multiple", "num_key_value_heads"], ["config.json"])
    set_config(d, num_attention_heads=4, num_key_value_heads=3)

    # -- sharded
    shard2 = "model-00002-of-00002.safetensors"
    d = new("index_missing_shard", f"index names {shard2}, which does not exist", NOT_FOUND, [shard2])
    os.remove(os.path.join(d, ST))
    make_checkpoint.write_checkpoint(d, cfg, {k: tuple(v) for k, v in raw.items()}, shards=2)
    os.remove(os.path.join(d, shard2))

    d = new("index_invalid_json", "model.safetensors.index.json is not JSON", BAD_JSON,
            ["model.safetensors.index.json"])
    os.remove(os.path.join(d, ST))
    make_checkpoint.write_checkpoint(d, cfg, {k: tuple(v) for k, v in raw.items()}, shards=2)
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        f.write('{"metadata": {"total_size": 1}, "weight_map": {')

    return man


def verify(out, man):
    """The reference must accept good/ and reject every variant."""
    bad = 0
    try:
        monet_ref.load_model(os.path.join(out, "good"))
    except Exception as ex:                      # noqa: BLE001
        print(f"make_malformed: good checkpoint rejected by the reference: {ex}")
        bad += 1
    for name in man:
        try:
            monet_ref.load_model(os.path.join(out, man[name]["dir"]))
            print(f"make_malformed: {name}: reference accepted it")
            bad += 1
        except monet_ref.CheckpointError as ex:
            msg = str(ex).lower()
            ok = any(e.lower() in msg for e in man[name]["expect"]) and \
                any(f.lower() in msg for f in man[name]["file"])
            print(f"  {name:24s} {'ok  ' if ok else 'MISS'} reference: {ex}")
            bad += not ok
        except Exception as ex:                  # noqa: BLE001
            print(f"  {name:24s} reference (raw {type(ex).__name__}): {ex}")
    return bad


def main(argv=None):
    ap = argparse.ArgumentParser(description="write malformed Monet checkpoints")
    ap.add_argument("--out", required=True)
    ap.add_argument("--src", default=None)
    ap.add_argument("--verify", action="store_true")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    good = os.path.join(a.out, "good")
    if a.src is None:
        make_checkpoint.build(make_checkpoint.parse_args(
            ["--out", good, "--quiet", "--layers", "2", "--groups", "1", "--seed", "1"]))
        src = good
    else:
        src = a.src
        if os.path.abspath(src) != os.path.abspath(good):
            if os.path.exists(good):
                shutil.rmtree(good)
            shutil.copytree(src, good)
    man = variants(src, a.out)
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(man, f, indent=2)
        f.write("\n")
    print(f"make_malformed: {len(man)} variants in {a.out}")
    if a.verify and verify(a.out, man):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
