"""Run the monet-probe binary from the data/train measurement scripts (purge_heldout.py,
toxicity_heldout.py): its stdout, or exit with the command and the tail of its stderr."""
import subprocess
import sys


def run(who, cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"{who}: {' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-400:]}")
    return r.stdout
