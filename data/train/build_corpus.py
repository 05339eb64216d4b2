#!/usr/bin/python3
"""Build the labelled training / held-out corpus for monet-tiny.

Deterministic (seeded hashing of document keys, seeded RNG). Writes
  WORK/train_<label>.jsonl   training documents per label (never shipped)
  WORK/spm_input.txt         text lines for spm_train
  data/corpus/valid.jsonl    held-out validation slice (all labels)
  data/corpus/probe.jsonl    held-out probe slice for `collect` (disjoint from valid)
  data/corpus/stats.json     document / byte counts per label and source

Held-out rule: RosettaCode is split by TASK (a held-out task is held out in all six
languages); Debian source files by file path; AG News by row; ToxiGen by SENTENCE
(sentences recur across prompts, so every held-out sentence is excluded from training).
"""
import argparse, csv, glob, gzip, hashlib, io, json, os, random, re, sys, zipfile

SH = "/work/shared/data"
LABELS = ["python", "cpp", "java", "javascript", "lua", "php", "english", "toxic", "neutral"]
RC_LANG = {"Python": "python", "C++": "cpp", "Java": "java", "JavaScript": "javascript",
           "Lua": "lua", "PHP": "php"}


def h01(key):
    """Deterministic hash of a string to [0,1)."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:12], 16) / float(1 << 48)


def clean(t):
    return t.replace("\r\n", "\n").replace("\r", "\n")


def chunks(text, maxc):
    """Cut text into pieces of at most ~maxc chars at line boundaries."""
    out, cur, n = [], [], 0
    for line in text.split("\n"):
        if n + len(line) + 1 > maxc and cur:
            out.append("\n".join(cur)); cur, n = [], 0
        cur.append(line[:maxc]); n += len(line) + 1
    if cur:
        out.append("\n".join(cur))
    return [c for c in out if c.strip()]


def head(text, maxc):
    """First <= maxc chars, cut at a line boundary (or hard cut if the first line is longer)."""
    if len(text) <= maxc:
        return text
    cut = text.rfind("\n", 0, maxc)
    return text[:cut] if cut > maxc // 3 else text[:maxc]


def read_text(path):
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                b = f.read()
        else:
            with open(path, "rb") as f:
                b = f.read()
        return clean(b.decode("utf-8"))
    except Exception:
        return None


def usable_code(t):
    if t is None or len(t) < 200:
        return False
    lines = t.split("\n")
    if max(len(l) for l in lines) > 400:   # minified / generated
        return False
    return True


LICENSE_HEAD = re.compile(r"\A\s*(?:/\*.*?\*/|(?:--[^\n]*\n)+)\s*", re.S)


def strip_license(t):
    """Drop a leading comment block that is a license header (repeated verbatim in every file)."""
    m = LICENSE_HEAD.match(t)
    if m and re.search(r"copyright|license|licence", m.group(0), re.I):
        return t[m.end():]
    return t


def unique_files(roots, ext):
    """Files under roots ending in ext, each content once (Debian installs one Lua module under
    several version dirs through symlinks), in sorted path order."""
    seen, out = set(), []
    for p in files(roots, (ext,)):
        r = os.path.realpath(p)
        try:
            with open(r, "rb") as f:
                h = hashlib.sha1(f.read()).hexdigest()
        except OSError:
            continue
        if h not in seen:       # one realpath per content, so out has no duplicates
            seen.add(h); out.append(r)
    return sorted(out)


def jdk_sources(zpath, packages):
    """(path, text) of the .java files of the given java.base packages in the JDK's src.zip."""
    out = []
    with zipfile.ZipFile(zpath) as z:
        for n in sorted(z.namelist()):
            if n.endswith(".java") and any(n.startswith("java.base/" + p + "/") for p in packages):
                out.append((n, clean(z.read(n).decode("utf-8", "replace"))))
    return out


def files(roots, exts, exclude=()):
    out = []
    for r in roots:
        for dp, dn, fn in os.walk(r):
            dn.sort()
            if any(x in dp for x in exclude):
                continue
            for f in sorted(fn):
                if f.endswith(exts):
                    out.append(os.path.join(dp, f))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="data/train/work")
    ap.add_argument("--out", default="data/corpus")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--train-cap", type=int, default=4_000_000, help="max training chars per label")
    ap.add_argument("--valid-per-label", type=int, default=64)
    ap.add_argument("--probe-per-label", type=int, default=140)
    ap.add_argument("--valid-chars", type=int, default=1000)
    ap.add_argument("--probe-chars", type=int, default=360)
    ap.add_argument("--v2", action="store_true",
                    help="model v2 corpus: add Debian Java (openjdk-17-source) and Lua (lua-* packages) training sources")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.work, exist_ok=True); os.makedirs(a.out, exist_ok=True)

    train = {l: [] for l in LABELS}     # label -> list of docs
    held = {l: [] for l in LABELS}

    def add(label, domain, source, key, text, held_frac):
        d = {"text": text, "lang": label, "domain": domain, "source": source}
        (held if h01("split:" + key) < held_frac else train)[label].append((key, d))

    # ---- RosettaCode (GFDL 1.2): split by task, 30% of tasks held out
    for line in open(f"{SH}/rosettacode/solutions.jsonl", encoding="utf-8"):
        r = json.loads(line)
        lab = RC_LANG[r["lang"]]
        t = clean(r["code"])
        if not t.strip():
            continue
        d = {"text": t, "lang": lab, "domain": "code", "source": "rosettacode:" + r["path"]}
        (held if h01("task:" + r["task"]) < 0.30 else train)[lab].append((r["path"], d))
    for line in open(f"{SH}/rosettacode/tasks.jsonl", encoding="utf-8"):
        r = json.loads(line)
        t = clean(r.get("description", ""))
        t = re.sub(r"\[\[(?:[^|\]]*\|)?([^\]]*)\]\]", r"\1", t)   # drop wiki link markup
        t = re.sub(r"<[^>]{1,40}>", "", t)
        if len(t) < 200:
            continue
        d = {"text": t, "lang": "english", "domain": "prose", "source": "rosettacode-task:" + r["task"]}
        (held if h01("task:" + r["task"]) < 0.30 else train)["english"].append((r["task"], d))

    def add_files(lab, src, items, held_frac):
        """Source files (path, text) in the given order, each cut into chunks that stay on one
        side of the split (key = file path), until the label has 1.3 x --train-cap characters."""
        total = 0
        for p, t in items:
            if not usable_code(t):
                continue
            for k, c in enumerate(chunks(t, 6000)):
                add(lab, "code", f"{src}:{p}#{k}", p, c, held_frac)
                total += len(c)
            if total > a.train_cap * 1.3:
                break

    # ---- Debian-installed sources: split by file, 10% held out; long files cut into chunks
    deb = [
        ("python", "debian:python3.11-stdlib", files(["/usr/lib/python3.11"], (".py",),
                                                     exclude=("site-packages", "dist-packages", "/test/", "/tests/", "lib2to3/tests", "idlelib/idle_test"))),
        ("cpp", "debian:libstdc++-12-dev", files(["/usr/include/c++/12"], ("", ))),
        ("cpp", "debian:googletest", files(["/usr/src/googletest"], (".h", ".cc", ".hpp", ".cpp"))),
        ("javascript", "debian:npm", files(["/usr/lib/node_modules/npm"], (".js",))),
        ("php", "google-cloud-sdk:appengine-php-sdk", files(["/usr/lib/google-cloud-sdk/platform/google_appengine/php"], (".php",))),
    ]
    for lab, src, fl in deb:
        rng2 = random.Random(a.seed + len(src))
        rng2.shuffle(fl)
        add_files(lab, src, ((p, read_text(p)) for p in fl), 0.10)   # files read as needed

    # ---- v2 (issue 21): Java and Lua from Debian packages, TRAINING ONLY (held_frac 0), so the
    # held-out slices (valid.jsonl, probe.jsonl) are exactly the v1 ones and before/after figures
    # compare on the same text. Without them Java and Lua had 0.15 M / 0.07 M training tokens.
    if a.v2:
        jdk = jdk_sources("/usr/lib/jvm/openjdk-17/lib/src.zip",
                          ("java/util", "java/lang", "java/io", "java/time", "java/text", "java/net",
                           "java/nio", "java/math", "java/security"))
        random.Random(a.seed + 17).shuffle(jdk)
        add_files("java", "debian:openjdk-17-source", ((p, strip_license(t)) for p, t in jdk), 0.0)
        lua = unique_files(["/usr/share/lua", "/usr/lib/x86_64-linux-gnu/lua", "/usr/share/doc"], ".lua")
        random.Random(a.seed + 19).shuffle(lua)
        add_files("lua", "debian-lua", ((p, strip_license(read_text(p) or "")) for p in lua), 0.0)

    # ---- English prose: AG News test split (research / non-commercial), Debian README files, npm docs
    with open(f"{SH}/agnews/test.csv", encoding="utf-8", newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            t = (row["title"].strip() + "\n" + row["description"].strip().replace("\\", " "))
            t = t.replace("#36;", "$").replace("#39;", "'").replace("quot;", '"')
            add("english", "prose", f"agnews:test.csv#{i + 1}", f"ag{i}", t, 0.10)
    readmes = sorted(glob.glob("/usr/share/doc/*/README*"))
    for p in readmes:
        t = read_text(p)
        if t is None or len(t) < 300:
            continue
        for k, c in enumerate(chunks(t, 4000)):
            add("english", "prose", f"debian-doc:{p}#{k}", p, c, 0.10)
    for p in files(["/usr/lib/node_modules/npm/docs"], (".md",)):
        t = read_text(p)
        if t is None or len(t) < 300:
            continue
        for k, c in enumerate(chunks(t, 4000)):
            add("english", "prose", f"npm-docs:{p}#{k}", p, c, 0.10)

    # ---- ToxiGen (CDLA-Permissive-2.0): sentences from prompts + demonstrations (labelled by file:
    # hate -> toxic, neutral -> neutral) and the human-annotated train split (toxic iff
    # toxicity_ai + toxicity_human > 5.5, neutral iff <= 4.0, ambiguous rows dropped).
    sents = {}   # sentence -> (label, source)
    for p in sorted(glob.glob(f"{SH}/toxigen/prompts/*.txt")) + sorted(glob.glob(f"{SH}/toxigen/demonstrations/*/*.txt")):
        lab = "toxic" if os.path.basename(p).startswith("hate") else "neutral"
        grp = re.sub(r"^(hate|neutral)_|(_1k|_sentences)?\.txt$", "", os.path.basename(p))
        for line in open(p, encoding="utf-8"):
            for x in line.rstrip("\n").split("\\n"):
                x = x.strip()
                if x.startswith("-"):
                    x = x[1:].strip()
                if len(x) >= 8 and x not in sents:
                    sents[x] = (lab, "toxigen:" + os.path.relpath(p, SH + "/toxigen") + ":" + grp)
    with open(f"{SH}/toxigen/annotated/toxigen_annotated_train_8960.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            x = row["text"]
            if len(x) >= 3 and x[0] == "b" and x[1] in "'\"":
                x = x[2:-1]
            x = x.replace("\\n", " ").replace("\\'", "'").strip()
            s = float(row["toxicity_ai"]) + float(row["toxicity_human"])
            lab = "toxic" if s > 5.5 else ("neutral" if s <= 4.0 else None)
            if lab and len(x) >= 8 and x not in sents:
                sents[x] = (lab, "toxigen:annotated:" + row["target_group"])
    tg_train = {"toxic": [], "neutral": []}
    tg_held = {"toxic": [], "neutral": []}
    for x in sorted(sents):
        lab, src = sents[x]
        (tg_held if h01("sent:" + x) < 0.15 else tg_train)[lab].append((x, src))
    # group sentences into prompt-like documents ("- s\n- s\n...") of 4-8 sentences, same label
    for lab in ("toxic", "neutral"):
        for pool, dest, reps in ((tg_train[lab], train, 4), (tg_held[lab], held, 1)):
            pool = list(pool)
            for rep in range(reps):        # training: 4 different random groupings
                rng.shuffle(pool)
                i = 0
                while i < len(pool):
                    n = rng.randint(4, 8)
                    grp = pool[i:i + n]; i += n
                    t = "\n".join("- " + s for s, _ in grp)
                    srcs = sorted(set(s.split(":")[0] + ":" + s.split(":")[1].split("/")[0] for _, s in grp))
                    d = {"text": t, "lang": lab, "domain": "toxigen", "source": ",".join(srcs),
                         "toxicity": 1.0 if lab == "toxic" else 0.0}
                    dest[lab].append((f"{lab}{rep}:{i}", d))

    # ---- write
    stats = {}
    for lab in LABELS:
        tr = [d for _, d in train[lab]]
        rng.shuffle(tr)
        keep, n = [], 0
        for d in tr:
            if n > a.train_cap:
                break
            keep.append(d); n += len(d["text"])
        with open(f"{a.work}/train_{lab}.jsonl", "w", encoding="utf-8") as f:
            for d in keep:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
        stats[lab] = {"train_docs": len(keep), "train_chars": n, "heldout_pool_docs": len(held[lab])}
    valid, probe = [], []
    for lab in LABELS:
        hd = [d for _, d in sorted(held[lab], key=lambda kd: h01("order:" + kd[0]))]
        # prefer documents with enough content
        hd = [d for d in hd if len(d["text"]) >= 120] + [d for d in hd if len(d["text"]) < 120]
        nv = min(a.valid_per_label, len(hd) // 3)
        v, p = hd[:nv], hd[nv:nv + a.probe_per_label]
        for d in v:
            valid.append(dict(d, text=head(d["text"], a.valid_chars)))
        if lab in ("toxic", "neutral"):
            # ToxiGen probe documents: 2 held-out sentences each (more, shorter documents for
            # per-token toxicity correlation); the grouping of valid/train documents is unchanged.
            p = []
            for d in hd[nv:]:
                ls = d["text"].split("\n")
                for k in range(0, len(ls), 2):
                    p.append(dict(d, text="\n".join(ls[k:k + 2])))
            p = p[:a.probe_per_label + 40]
        for d in p:
            probe.append(dict(d, text=head(d["text"], a.probe_chars)))
        stats[lab].update(valid_docs=len(v), probe_docs=len(p))
    for name, rows in (("valid", valid), ("probe", probe)):
        with open(f"{a.out}/{name}.jsonl", "w", encoding="utf-8") as f:
            for d in rows:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
    # spm_train input: up to 1.2M chars of training text per label, one text line per line
    with open(f"{a.work}/spm_input.txt", "w", encoding="utf-8") as f:
        for lab in LABELS:
            n = 0
            for line in open(f"{a.work}/train_{lab}.jsonl", encoding="utf-8"):
                for l in json.loads(line)["text"].split("\n"):
                    if l.strip():
                        f.write(l + "\n"); n += len(l)
                if n > 1_200_000:
                    break
    with open(f"{a.out}/stats.json", "w") as f:
        json.dump(stats, f, indent=1)
    json.dump(stats, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
