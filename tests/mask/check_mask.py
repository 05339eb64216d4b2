#!/usr/bin/env python3
"""tests/mask/check_mask.py — `--mask` against the reference's full E x E
expansion (w_ij -> 0, A_i and D_j recomputed from the masked matrix):
random masks, a mask removing every active expert of one token, a whole group
masked, an empty mask and never-active experts (bit-identical to unmasked),
route listing, and malformed mask files (exit 2, one line).
usage: check_mask.py MONET_PROBE TESTS_REF_DIR WORKDIR vertical|horizontal"""
import json
import os
import random
import shutil
import subprocess
import sys

import numpy as np

BIN, REF, WORK, DEC = sys.argv[1:5]
sys.path.insert(0, REF)
import monet_ref  # noqa: E402

shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
model_dir = os.path.join(WORK, "model")
subprocess.run([sys.executable, os.path.join(REF, "make_checkpoint.py"), "--out", model_dir, "--decompose", DEC,
                "--dtype", "BF16", "--layers", "3", "--groups", "2", "--hidden", "32", "--heads", "4", "--kv-heads", "2",
                "--experts", "16", "--moe-dim", "8", "--moe-heads", "2", "--topk", "4", "--vocab", "128", "--seed", "21",
                "--quiet"], check=True)
ref = monet_ref.load_model(model_dir)
E, R = 16, 2
rng = random.Random(5)
ids = [1] + [rng.randrange(3, 128) for _ in range(19)]
ids_arg = ",".join(map(str, ids))
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def write_mask(name, experts, E_=E, R_=R):
    path = os.path.join(WORK, name + ".json")
    groups = [{"group": r, "experts": [[i, j] for (g, i, j) in sorted(experts) if g == r]} for r in range(R_)]
    with open(path, "w") as f:
        json.dump({"format": "monet-probe-mask", "version": 1, "model": {"moe_experts": E_, "n_groups": R_},
                   "criterion": {"kind": "test"}, "groups": groups}, f)
    return path


def c_logits(mask_path=None):
    out = os.path.join(WORK, "l.f32")
    cmd = [BIN, "logits", "--model", model_dir, "--ids", ids_arg, "--format", "raw", "--out", out]
    if mask_path:
        cmd += ["--mask", mask_path]
    subprocess.run(cmd, check=True)
    return np.fromfile(out, dtype="<f4").reshape(len(ids), -1)


def compare(name, experts):
    path = write_mask(name, experts)
    got = c_logits(path)
    want = ref.forward(ids, mask=list(experts))[0]
    err = np.abs(got - want).max() / np.abs(want).max()
    base = ref.forward(ids)[0]
    moved = np.abs(base - want).max() / np.abs(want).max()
    check(err <= 1e-4, f"{DEC} {name}: {len(experts)} experts masked, max rel err {err:.2e} "
                       f"(the mask moves logits by {moved:.2e})")
    return moved


unmasked = c_logits()
# which experts are active (from the reference's routing)
_, routing = ref.forward(ids)
route = json.loads(subprocess.run([BIN, "route", "--model", model_dir, "--ids", ids_arg, "--json"], check=True,
                                  capture_output=True).stdout)
active = {(g["group"], e["i"], e["j"]) for t in route["tokens"] for g in t["groups"] for e in g["experts"]}

all_experts = [(r, i, j) for r in range(R) for i in range(E) for j in range(E)]
moved = compare("random30", set(rng.sample(all_experts, int(0.3 * len(all_experts)))))
check(moved > 1e-3, "a 30% mask changes the logits noticeably")
compare("random5_active", set(rng.sample(sorted(active), max(1, len(active) // 20))))
tok3 = route["tokens"][3]["groups"][0]["experts"]
compare("every_active_expert_of_token3_group0", {(0, e["i"], e["j"]) for e in tok3})
compare("whole_group1", {(1, i, j) for i in range(E) for j in range(E)})
compare("row_and_column", {(0, 5, j) for j in range(E)} | {(1, i, 7) for i in range(E)})

never = [x for x in all_experts if x not in active][:40]
same = np.array_equal(c_logits(write_mask("never_active", set(never))), unmasked)
check(same, "masking never-active experts leaves logits bit-identical")
check(np.array_equal(c_logits(write_mask("empty", set())), unmasked), "an empty mask leaves logits bit-identical")

# route --mask: masked experts are not listed, their count is
mpath = write_mask("tok3", {(0, e["i"], e["j"]) for e in tok3})
rm = json.loads(subprocess.run([BIN, "route", "--model", model_dir, "--ids", ids_arg, "--json", "--mask", mpath],
                               check=True, capture_output=True).stdout)
g0 = rm["tokens"][3]["groups"][0]
check(g0["experts"] == [] and g0["masked"] == len(tok3), "route --mask lists no masked expert and counts them")

# malformed masks
bad = {
    "wrong_E": write_mask("wrong_E", set(), E_=32),
    "wrong_groups": write_mask("wrong_groups", set(), R_=3),
}
for name, text in {"not_json": "{", "wrong_format": '{"format": "other", "version": 1}',
                   "out_of_range": json.dumps({"format": "monet-probe-mask", "version": 1,
                                               "model": {"moe_experts": E, "n_groups": R},
                                               "groups": [{"group": 0, "experts": [[3, 16]]}]}),
                   "bad_group": json.dumps({"format": "monet-probe-mask", "version": 1,
                                            "model": {"moe_experts": E, "n_groups": R},
                                            "groups": [{"group": 2, "experts": []}]})}.items():
    p = os.path.join(WORK, name + ".json")
    with open(p, "w") as f:
        f.write(text)
    bad[name] = p
bad["missing"] = os.path.join(WORK, "nope.json")
for name, p in bad.items():
    r = subprocess.run([BIN, "logits", "--model", model_dir, "--ids", "1,2", "--mask", p, "--out", os.devnull],
                       capture_output=True)
    err = r.stderr.decode()
    check(r.returncode == 2 and err.count("\n") == 1 and os.path.basename(p) in err,
          f"bad mask '{name}': exit 2, one line naming the file ({err.strip()[:90]})")

print(f"check_mask {DEC}: {len(failures)} failed")
sys.exit(1 if failures else 0)
