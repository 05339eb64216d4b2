"""tests/eval_mc/check_pyrandom.py — runs test_pyrandom and compares its output
byte for byte with the same draws made by this python3's `random` module.
usage: check_pyrandom.py TEST_PYRANDOM"""
import random
import subprocess
import sys


def expected():
    out = []
    for s in (0, 1, 42, 1234, 4294967296 + 5):
        r = random.Random(s)
        bits = [r.getrandbits(32) for _ in range(4)] + [r.getrandbits(7)]
        out.append("seed %d bits: %s" % (s, " ".join(map(str, bits))))
    r = random.Random(1234)
    cases = [(1119, 5), (1119, 6), (2251, 25), (4957, 1), (10, 3), (10, 10), (85, 16), (86, 16),
             (33410, 6), (21, 5), (22, 5), (5, 0)]
    for _ in range(2):
        for n, k in cases:
            out.append("sample %d %d:%s" % (n, k, "".join(" %d" % x for x in r.sample(range(n), k))))
    random.seed(42)
    for n in (7, 1000):
        x = list(range(n))
        random.shuffle(x)
        out.append("shuffle %d: %s" % (n, " ".join(map(str, x))))
    return "\n".join(out) + "\n"


def main():
    got = subprocess.run([sys.argv[1]], capture_output=True, text=True)
    if got.returncode != 0:
        sys.exit("test_pyrandom failed (%d): %s" % (got.returncode, got.stderr))
    want = expected()
    if got.stdout != want:
        for i, (a, b) in enumerate(zip(got.stdout.splitlines(), want.splitlines())):
            if a != b:
                sys.exit("line %d differs\n  C:      %s\n  python: %s" % (i + 1, a[:300], b[:300]))
        sys.exit("outputs differ in length")
    print("pyrandom matches python %s (%d lines)" % (sys.version.split()[0], len(want.splitlines())))


main()
