"""tests/ref/shipped.py — test inputs taken from what the repository ships, so that
the checkpoint fixtures and the collect / analysis / browse / recipe tests run on a
fresh clone without ../shared (the staged public datasets; tests that need those
carry the ctest label `data` and skip, see tests/need_data.sh).

  TOKENIZER            data/monet-tiny/tokenizer.model (SentencePiece BPE, 4096 pieces)
  code_docs(...)       labelled code from data/corpus/probe.jsonl, languages interleaved
  scored_prompts(n)    short toxigen texts from the same file with a score in [0, 1]

Everything is deterministic: same call, same documents, same order."""
import hashlib
import json
import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TOKENIZER = os.path.join(ROOT, "data", "monet-tiny", "tokenizer.model")
PROBE = os.path.join(ROOT, "data", "corpus", "probe.jsonl")

# probe.jsonl's lower-case `lang` values, spelled as RosettaCode labels them
LANG_NAMES = {"python": "Python", "lua": "Lua", "php": "PHP", "java": "Java", "cpp": "C++",
              "javascript": "JavaScript"}


def _rows():
    with open(PROBE, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _unit(key):
    """A stable pseudo-random number in [0, 1] from a string."""
    return int(hashlib.md5(key.encode()).hexdigest()[:6], 16) / 0xFFFFFF


def code_docs(langs=("Python", "Lua", "PHP"), per_lang=None, min_len=0, max_len=None):
    """Code documents {"text", "lang", "source"} for the given languages (RosettaCode
    spelling), round-robin across languages (so any prefix mixes them), at most
    per_lang each, keeping texts with min_len < len < max_len."""
    want = {LANG_NAMES[k]: k for k in LANG_NAMES if LANG_NAMES[k] in langs}
    pools = {lang: [] for lang in langs}
    for r in _rows():
        name = LANG_NAMES.get(r["lang"]) if r["domain"] == "code" else None
        if name not in want or (per_lang is not None and len(pools[name]) >= per_lang):
            continue
        if len(r["text"]) > min_len and (max_len is None or len(r["text"]) < max_len):
            pools[name].append({"text": r["text"], "lang": name, "source": r["source"]})
    out = []
    for i in range(max(len(p) for p in pools.values())):
        out += [pools[lang][i] for lang in langs if i < len(pools[lang])]
    return out


def scored_prompts(n, max_len=160):
    """n short texts {"text", "toxicity"}, toxic and neutral toxigen rows alternating;
    the score is the row's 0/1 label blended with a per-text jitter (0.7 label + 0.3
    jitter, 4 decimals) so that it is continuous like RealToxicityPrompts' scores."""
    pools = {"toxic": [], "neutral": []}
    for r in _rows():
        if r["domain"] == "toxigen" and r.get("toxicity") is not None and len(r["text"]) < max_len:
            pools[r["lang"]].append(r)
    out = []
    for i in range(n):
        r = pools["toxic" if i % 2 == 0 else "neutral"][i // 2]
        out.append({"text": r["text"], "toxicity": round(0.7 * r["toxicity"] + 0.3 * _unit(r["text"]), 4)})
    return out
