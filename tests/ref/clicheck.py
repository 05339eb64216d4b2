"""tests/ref/clicheck.py — what a CLI check script needs: a fresh work folder,
`check(ok, what)` that prints ok/FAIL lines and counts failures, `run(*args)`
that runs the binary (exit status checked unless ok=False) and `finish(name)`
that prints the count and exits 1 on any failure."""
import os
import shutil
import subprocess
import sys


class CliCheck:
    def __init__(self, binary, work):
        self.bin, self.work, self.failures = binary, work, []
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)

    def check(self, ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            self.failures.append(what)

    def run(self, *args, ok=True):
        p = subprocess.run([self.bin, *args], capture_output=True)
        if ok and p.returncode != 0:
            sys.exit(f"{' '.join(args)}: exit {p.returncode}: {p.stderr.decode()}")
        return p

    def finish(self, name):
        print(f"{name}: {len(self.failures)} failed")
        for f in self.failures:
            print("  " + f)
        sys.exit(1 if self.failures else 0)
