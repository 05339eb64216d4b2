#!/usr/bin/env python3
"""tests/browse/check_browse.py — `monet-probe browse` end to end.

site:     tiny random checkpoint (the shipped data/monet-tiny tokenizer), a labelled
          corpus from the shipped data/corpus (RosettaCode solutions: lang; short
          ToxiGen texts: toxicity, see tests/ref/shipped.py;
          one hostile document whose text and label are HTML/JS injections),
          collect, specialize/correlate --json, browse; checks the files, that
          every expert linked from the index has a page and every link in the
          site resolves, HTML escaping of the hostile context and label, no
          external URLs, --experts N bounds the pages, --rank, rewriting a
          previous site, refusing a foreign non-empty directory, and that the
          computed annotations equal the ones read from the JSON files.
chromium: headless Chromium renders the index and one expert page (with the
          hostile context): screenshots into WORKDIR, the pages' #selftest
          (search and sort driven by the page's own script; result in the
          title / <pre id=selftest>, read with --dump-dom) must PASS, and the
          browser log (--enable-logging=stderr) must show no console error.
          Exit 77 (skipped) when chromium is not installed.
usage: check_browse.py site|chromium MONET_PROBE TESTS_REF_DIR WORKDIR"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

MODE, BIN, REF, WORK = sys.argv[1:5]
sys.path.insert(0, REF)
import shipped  # noqa: E402
SITE = os.path.join(WORK, "site")
HOSTILE = "<script>alert(1)</script>"
# no '"' or '\\' in the label: `specialize --json` prints labels unescaped (cmd_specialize.c)
HOSTILE_LABEL = "<img src=x onerror=alert(2)>'&"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(*args, ok=True):
    p = subprocess.run([BIN, *args], capture_output=True, text=True)
    if ok and p.returncode:
        raise SystemExit(f"{args}: exit {p.returncode}: {p.stderr}")
    return p


def index_rows(site):
    rows = []
    for f in sorted(glob.glob(os.path.join(site, "data", "experts-*.js"))):
        text = open(f, encoding="utf-8").read()
        body = text[text.index("MP_ROWS.push(") + len("MP_ROWS.push("):text.rindex(");")]
        rows += json.loads("[" + body + "]")  # Python's json accepts Infinity
    return rows


def pages(site):
    return sorted(os.path.relpath(p, site) for p in glob.glob(os.path.join(site, "experts", "g*", "*.html")))


def site_mode():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    model = os.path.join(WORK, "model")
    subprocess.run([sys.executable, os.path.join(REF, "make_checkpoint.py"), "--out", model, "--dtype", "BF16",
                    "--layers", "4", "--groups", "2", "--hidden", "32", "--heads", "4", "--experts", "16",
                    "--moe-dim", "8", "--moe-heads", "2", "--topk", "4", "--seed", "23", "--quiet", "--tokenizer",
                    shipped.TOKENIZER], check=True)
    docs = [{"code": d["text"], "lang": d["lang"]}
            for d in shipped.code_docs(("Python", "Java", "Lua"), per_lang=10, min_len=40, max_len=500)]
    docs += [{"code": d["text"], "toxicity": str(d["toxicity"])} for d in shipped.scored_prompts(12)]
    docs.append({"code": f"{HOSTILE} & {HOSTILE}", "lang": HOSTILE_LABEL, "toxicity": "0.5"})
    corpus = os.path.join(WORK, "corpus.jsonl")
    with open(corpus, "w") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
    store = os.path.join(WORK, "store.db")
    run("collect", "--model", model, "--corpus", corpus, "--text-field", "code", "--label", "lang", "--score",
        "toxicity", "--top-k", "8", "--out", store, "--quiet")
    spec, corr = os.path.join(WORK, "spec.json"), os.path.join(WORK, "corr.json")
    with open(spec, "w") as f:
        f.write(run("specialize", "--store", store, "--label-field", "lang", "--top", "0", "--json").stdout)
    with open(corr, "w") as f:
        f.write(run("correlate", "--store", store, "--score-field", "toxicity", "--top", "0", "--json").stdout)

    p = run("browse", "--store", store, "--specialization", spec, "--correlation", corr, "--out", SITE,
            "--experts", "0", "--quiet")
    print(p.stdout, end="")
    check(p.stderr == "", "browse --quiet writes nothing to stderr")
    active = int(subprocess.run(["sqlite3", store, "SELECT COUNT(*) FROM expert_stats WHERE n_active > 0"],
                                capture_output=True, text=True, check=True).stdout)
    rows = index_rows(SITE)
    pg = pages(SITE)
    check(os.path.isfile(os.path.join(SITE, "index.html")), "index.html written")
    check(len(rows) == active and len(pg) == active, f"--experts 0: {len(rows)} index rows, {len(pg)} pages, "
          f"{active} active experts")
    want = {f"experts/g{r[0]}/{r[1]}_{r[2]}.html" for r in rows}
    check(want == set(pg), "every expert listed in the index has its page, and no other page exists")
    check([r[4] for r in rows] == sorted((r[4] for r in rows), reverse=True), "default ranking: active tokens")
    check(re.search(r"experts 0?[0-9]* listed|listed with a page", p.stdout) is not None and "per 1,000 experts"
          in p.stdout, "summary reports pages, size per 1,000 experts and time")

    # every href / src in the site resolves to a file of the site; nothing external
    html_files = [os.path.join(SITE, "index.html")] + [os.path.join(SITE, x) for x in pg]
    bad_links, external = [], []
    for f in html_files:
        text = open(f, encoding="utf-8").read()
        for m in re.finditer(r'(?:href|src)\s*=\s*"([^"]*)"', text):
            u = m.group(1)
            if re.match(r"^([a-z]+:|//)", u, re.I):
                external.append((f, u))
            elif not os.path.isfile(os.path.normpath(os.path.join(os.path.dirname(f), u.split("#")[0]))):
                bad_links.append((f, u))
    check(not bad_links, f"every link and script src resolves ({bad_links[:3]})")
    all_text = "".join(open(f, encoding="utf-8").read() for f in
                       html_files + glob.glob(os.path.join(SITE, "data", "*.js")))
    for pat in ("http://", "https://", "url(", "@import", '="//'):
        external += [pat] if pat in all_text else []
    check(not external, f"no external URLs, url() or @import ({external[:3]})")

    # escaping: the hostile text is in some top context; it must only appear escaped
    hostile_doc = len(docs) - 1
    hits = subprocess.run(["sqlite3", store, f"SELECT grp, expert FROM topk WHERE doc = {hostile_doc} LIMIT 1"],
                          capture_output=True, text=True, check=True).stdout.split()
    check(bool(hits), "the hostile document is in some expert's top-K")
    g, e = hits[0].split("|")
    hostile_page = os.path.join(SITE, "experts", f"g{g}", f"{int(e) // 16}_{int(e) % 16}.html")
    hp = open(hostile_page, encoding="utf-8").read()
    check("&lt;script&gt;" in hp or "&lt;/script&gt;" in hp, f"hostile context shown escaped in {hostile_page}")
    check(HOSTILE not in all_text and "<img src=x" not in all_text, "no raw hostile markup anywhere in the site")
    check("&lt;img src=x onerror=alert(2)&gt;&#39;&amp;" in hp, "hostile label escaped in the page")
    check(hp.count("<script>") == 1, "expert page has exactly its own script element")
    with open(os.path.join(WORK, "hostile_page.txt"), "w") as f:
        f.write(os.path.relpath(hostile_page, SITE))
    check(re.search(r'<td class="num pct">\d+\.\d\d%</td>', hp) is not None, "activation shown as the paper does")
    check("<svg class=\"profile\"" in hp and "<rect" in hp, "per-label activation profile as inline SVG")
    check("Co-activating experts" in hp, "co-activating experts section")
    got = [(int(a), int(b.replace(",", "")), int(n)) for a, b, n in
           re.findall(r'\((\d+):#([\d,]+)\)</span></td><td class="num">(\d+)</td>', hp)]
    want = subprocess.run(["sqlite3", store, "SELECT b.grp, b.expert, COUNT(*) AS n FROM topk a JOIN topk b ON "
                           f"b.doc = a.doc AND b.pos = a.pos WHERE a.grp = {g} AND a.expert = {e} AND NOT "
                           f"(b.grp = {g} AND b.expert = {e}) GROUP BY 1, 2 ORDER BY n DESC, 1, 2 LIMIT 12"],
                          capture_output=True, text=True, check=True).stdout.split()
    want = [tuple(int(x) for x in r.split("|")) for r in want]
    check(got == want and len(want) > 0, f"co-activating experts == the self-join of topk on (doc, pos) "
          f"({len(got)} rows)")
    # evidence panels: histogram (bars add up to n_active), quantile samples, per-label samples
    g_, e_ = int(g), int(e)
    n_act = int(subprocess.run(["sqlite3", store, f"SELECT n_active FROM expert_stats WHERE grp={g_} AND expert={e_}"],
                               capture_output=True, text=True, check=True).stdout)
    m = re.search(r'<svg class="hist" id="hist" data-total="(\d+)"', hp)
    bars = [int(x) for x in re.findall(r'<rect data-n="(\d+)"', hp)]
    check(m is not None and int(m.group(1)) == n_act == sum(bars) and len(bars) >= 1,
          f"activation histogram on the page: {len(bars)} bins adding up to n_active {n_act}")
    nq = int(subprocess.run(["sqlite3", store, f"SELECT count(*) FROM qsamples WHERE grp={g_} AND expert={e_}"],
                            capture_output=True, text=True, check=True).stdout)
    qt = hp[hp.index('<table id="quantiles">'):] if '<table id="quantiles">' in hp else ""
    qt = qt[:qt.index("</table>")] if qt else ""
    check(nq > 0 and qt.count("<tr><td") == nq and qt.count("<mark>") == nq,
          f"quantile samples table: {nq} rows (the store's qsamples), one marked token each")
    lt = hp[hp.index('<table id="labelsamples">'):] if '<table id="labelsamples">' in hp else ""
    lt = lt[:lt.index("</table>")] if lt else ""
    nl = int(subprocess.run(["sqlite3", store, f"SELECT min(count(*), 32) FROM label_topk WHERE grp={g_} AND "
                             f"expert={e_} AND field='lang'"], capture_output=True, text=True, check=True).stdout)
    check(nl > 0 and lt.count("<tr><td") == nl and "Per-label samples: lang" in hp,
          f"per-label samples table (field lang): {nl} rows")
    check(all(len(r) == 11 for r in rows) and sum(bool(r[10]) for r in rows) > len(rows) // 2,
          "index rows carry each expert's top tokens (search by token text)")
    check(re.search(r"<title>Expert \d+:\d+,\d+", hp) is not None and re.search(r"Group \d+ / Expert [\d,]+", hp) is not None,
      "page titled with the address R:I,J, and names the paper's Group R / Expert N")

    # annotations computed from the store == read from the JSON files
    auto = os.path.join(WORK, "site_auto")
    run("browse", "--store", store, "--out", auto, "--experts", "0", "--quiet")
    ra = index_rows(auto)
    check(ra == rows, "computed specialization / correlation == the JSON files' (same index rows)")
    check(any(r[7] is not None for r in rows) and any(r[9] is not None for r in rows),
          "index carries specialization labels and toxicity r")
    noan = os.path.join(WORK, "site_noan")
    run("browse", "--store", store, "--out", noan, "--experts", "3", "--no-analysis", "--quiet")
    check(all(r[7] is None and r[9] is None for r in index_rows(noan)), "--no-analysis: no annotations")

    # --experts N bounds the site; --rank; rewriting a previous site
    small = os.path.join(WORK, "site_small")
    run("browse", "--store", store, "--out", small, "--experts", "5", "--rank", "max", "--quiet")
    rs = index_rows(small)
    check(len(rs) == 5 and len(pages(small)) == 5, f"--experts 5: 5 rows, {len(pages(small))} pages")
    check([r[6] for r in rs] == sorted((r[6] for r in rs), reverse=True), "--rank max orders by max activation")
    check(max(r[6] for r in rows) == rs[0][6], "--rank max lists the expert with the highest max first")
    run("browse", "--store", store, "--out", small, "--experts", "3", "--rank", "skew", "--quiet")
    rs = index_rows(small)
    ns = sum(r[7] is not None for r in rs)
    check(len(pages(small)) == len(rs) <= 6 and 1 <= ns <= 3 and all(r[7] is not None for r in rs[:ns])
          and all(r[7] is None for r in rs[ns:]) and [r[4] for r in rs[ns:]] == sorted((r[4] for r in rs[ns:]),
                                                                                   reverse=True),
          f"rewritten with --experts 3 --rank skew: {ns} specialist page(s) first, then {len(rs) - ns} generalists "
          f"(most active first), old pages removed")
    run("browse", "--store", store, "--out", small, "--experts", "4", "--label-field", "lang", "--quiet")
    rd = index_rows(small)
    sk = [r[8] for r in rd if r[7] is not None]
    check(rd[0][7] is not None and sk == sorted(sk, reverse=True) and any(r[7] is None for r in rd),
          "--label-field without --rank: ranked by skew, generalists listed after the specialists")
    # --model: the first --model-experts pages shade each shown token by the expert's weight (== top-contexts
    # --model's scores) and list its logit effects (== `effects`); the other pages have neither
    ms = os.path.join(WORK, "site_model")
    run("browse", "--store", store, "--out", ms, "--experts", "4", "--model", model, "--model-experts", "2",
        "--contexts", "5", "--context-tokens", "10", "--quiet")
    with_fx = [p_ for p_ in pages(ms) if 'id="effects"' in open(os.path.join(ms, p_), encoding="utf-8").read()]
    without = [p_ for p_ in pages(ms) if p_ not in with_fx]
    check(len(with_fx) == 2 and len(without) == 2 and
          not any("data-w=" in open(os.path.join(ms, p_), encoding="utf-8").read() for p_ in without),
          f"--model-experts 2: {len(with_fx)} pages with the model panels, the other {len(without)} without")
    with open(os.path.join(WORK, "model_page.txt"), "w") as f:
        f.write(with_fx[0] + "\n")
    for p_ in with_fx:
        hp = open(os.path.join(ms, p_), encoding="utf-8").read()
        addr = re.search(r"<title>Expert (\d+:\d+,\d+)", hp).group(1)
        tc = json.loads(run("top-contexts", "--store", store, "--expert", addr, "--model", model, "--window", "10",
                            "--json").stdout)
        want = [x["scores"] for x in tc["groups"][0]["contexts"]]
        got = [[float(v) for v in re.findall(r'data-w="([^"]+)"', td)]
               for td in re.findall(r'<td class="ctx scored">(.*?)</td>', hp, re.S)]
        check(len(got) == min(5, len(want)) and all(len(g) == len(w_) and all(abs(a_ - b_) <= 1e-5 * max(1, abs(b_))
                                                                       for a_, b_ in zip(g, w_))
                                                    for g, w_ in zip(got, want)),
              f"{addr}: per-token shading == top-contexts --model scores ({sum(map(len, got))} tokens)")
        fx = json.loads(run("effects", "--model", model, "--store", store, "--expert", addr, "--contexts", "5",
                            "--top", "10", "--json").stdout)
        rows_ = re.findall(r'<tr><td class="ctx" data-id="(\d+)">.*?</td><td class="num">([-+][\d.]+)</td>'
                           r'<td class="ctx" data-id="(\d+)">.*?</td><td class="num">([-+][\d.]+)</td></tr>', hp, re.S)
        check(len(rows_) == len(fx["promoted"]) == 10 and
              all(int(r[0]) == a_["id"] and abs(float(r[1]) - a_["effect"]) <= 6e-5 and int(r[2]) == b_["id"]
                  and abs(float(r[3]) - b_["effect"]) <= 6e-5
                  for r, a_, b_ in zip(rows_, fx["promoted"], fx["suppressed"])),
              f"{addr}: logit effects panel == `effects --contexts 5` (10 promoted, 10 suppressed)")
    p = run("browse", "--store", store, "--out", os.path.join(WORK, "y"), "--model", os.path.join(WORK, "nope"),
            ok=False)
    check(p.returncode == 2 and p.stderr.count("\n") == 1, f"browse --model with no model: {p.stderr.strip()}")
    foreign = os.path.join(WORK, "foreign")
    os.makedirs(foreign)
    open(os.path.join(foreign, "notes.txt"), "w").write("mine")
    p = run("browse", "--store", store, "--out", foreign, ok=False)
    check(p.returncode == 2 and "not empty" in p.stderr, f"foreign non-empty --out refused: {p.stderr.strip()}")
    p = run("browse", "--store", store, "--out", os.path.join(WORK, "x"), "--specialization", corr, ok=False)
    check(p.returncode == 2 and "specialize --json" in p.stderr, f"wrong JSON refused: {p.stderr.strip()}")
    p = run("browse", "--store", store, ok=False)
    check(p.returncode == 2 and "--out" in p.stderr, "missing --out is a usage error")


def chromium_mode():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        print("skipped: chromium not installed (apt-get install chromium)")
        sys.exit(77)
    hostile = open(os.path.join(WORK, "hostile_page.txt")).read().strip()

    def browse(url, *extra):
        with tempfile.TemporaryDirectory() as prof:
            p = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                                "--enable-logging=stderr", "--v=0", f"--user-data-dir={prof}", *extra, url],
                               capture_output=True, text=True, timeout=60)
        # the pages log nothing: any console message (console.error shows as INFO:CONSOLE too) is a failure
        errors = [l for l in p.stderr.splitlines() if "CONSOLE" in l or "Uncaught" in l]
        return p, errors

    model_page = open(os.path.join(WORK, "model_page.txt")).read().strip()
    for name, rel in (("index", "index.html"), ("expert", hostile),
                      ("expert-model", os.path.join("..", "site_model", model_page))):
        url = "file://" + os.path.abspath(os.path.join(SITE, rel))
        p, errors = browse(url + "#selftest", "--dump-dom")
        m = re.search(r'<pre id="selftest">(.*?)</pre>', p.stdout, re.S)
        report = (m.group(1) if m else "").replace("&quot;", '"')
        print(report)
        check(p.returncode == 0 and "<title>SELFTEST PASS</title>" in p.stdout,
              f"{name} page self-test in Chromium (search, sort, DOM checks)")
        check(not errors, f"{name}: no console errors ({errors[:2]})")
        shot = os.path.join(WORK, f"screenshot-{name}.png")
        if os.path.exists(shot):
            os.remove(shot)
        p, errors = browse(url, f"--screenshot={shot}", "--window-size=1280,900", "--hide-scrollbars")
        ok = os.path.isfile(shot) and open(shot, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
        check(ok and os.path.getsize(shot) > 10000, f"{name}: screenshot {shot} ({os.path.getsize(shot) if ok else 0} bytes)")
        check(not errors, f"{name} (screenshot run): no console errors ({errors[:2]})")


if MODE == "site":
    site_mode()
elif MODE == "chromium":
    chromium_mode()
else:
    raise SystemExit(__doc__)
if failures:
    print(f"{len(failures)} check(s) failed", file=sys.stderr)
    sys.exit(1)
print("all checks passed")
