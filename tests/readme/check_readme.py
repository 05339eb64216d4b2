#!/usr/bin/env python3
"""tests/readme/check_readme.py — run every monet-probe command README.md shows.

Usage: check_readme.py BIN REPO WORKDIR

Takes the `sh` code blocks holding monet-probe commands (in order; a block
after `<!-- readme-test: needs-data -->` needs ../shared/data) and then the
example column of the subcommand table, and runs each in WORKDIR (where
`data` and `recipes` link to the repository's) with BIN's folder first on PATH.
A command must exit 0. Commands that need the staged public data are run when
../shared/data exists and listed as skipped otherwise; when every data command
was skipped for that reason the test still passes (the others ran)."""
import os
import re
import shutil
import subprocess
import sys

BIN, REPO, WORK = (os.path.abspath(a) for a in sys.argv[1:4])
DATA = os.path.abspath(os.path.join(REPO, "..", "shared", "data"))
HAVE_DATA = os.path.isdir(DATA)
NEEDS_DATA = re.compile(r"eval (mmlu|general|multipl-e|toxicity)|toxicity-scorer|rtp\.db|tox\.json|\.\./shared|sweep ")

readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
blocks = []  # (needs_data, [command])
for m in re.finditer(r"(<!-- readme-test: needs-data -->\n)?```sh\n(.*?)```", readme, re.S):
    cmds = [l for l in m.group(2).splitlines() if l.startswith("monet-probe ") or "| monet-probe " in l]
    if cmds:
        blocks.append((bool(m.group(1)), cmds))
table = []
for line in readme.splitlines():
    if line.startswith("| `") and line.rstrip().endswith("` |"):
        cell = line.rstrip()[:-3].rsplit("| `", 1)[1]
        cmd = cell.replace("\\|", "|")
        if "monet-probe " in cmd:
            table.append(cmd)

failures, ran, skipped = [], 0, []
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
for name in ("data", "recipes"):
    os.symlink(os.path.join(REPO, name), os.path.join(WORK, name))
env = dict(os.environ, PATH=os.path.dirname(BIN) + os.pathsep + os.environ.get("PATH", ""), MP_DEVICE="cpu")
if HAVE_DATA:
    env["MONET_PROBE_DATA"] = DATA


def run(cmd, needs_data):
    global ran
    if needs_data and not HAVE_DATA:
        skipped.append(cmd)
        return
    shell = cmd.replace("../shared/data", DATA)
    p = subprocess.run(["bash", "-o", "pipefail", "-c", shell], cwd=WORK, env=env, capture_output=True, timeout=600)
    ran += 1
    if p.returncode != 0:
        failures.append(f"{cmd}\n    exit {p.returncode}: {p.stderr.decode(errors='replace').strip()[-400:]}")
    else:
        print(f"ok   {cmd}")


for needs, cmds in blocks:
    for c in cmds:
        run(c, needs or bool(NEEDS_DATA.search(c)))
for c in table:
    run(c, bool(NEEDS_DATA.search(c)))

for c in skipped:
    print(f"skipped (needs ../shared/data): {c}")
print(f"check_readme: {ran} commands ran, {len(skipped)} skipped, {len(failures)} failed "
      f"({sum(len(c) for _, c in blocks)} in code blocks, {len(table)} in the table)")
for f in failures:
    print("FAIL " + f)
sys.exit(1 if failures or ran == 0 else 0)
