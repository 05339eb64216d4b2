#!/bin/sh
# tests/recipes/check_shipped.sh — the three shipped recipes parse and plan (--dry-run)
# against the embedded model, from the repository root. Skipped (77) while
# data/monet-tiny/model.safetensors does not exist yet.
# usage: check_shipped.sh MONET_PROBE SOURCE_DIR WORKDIR
set -u
BIN=$1; SRC=$2; WORK=$3
cd "$SRC" || exit 1
if [ ! -f data/monet-tiny/model.safetensors ] || [ ! -f data/monet-tiny/config.json ]; then
  echo "skipped: data/monet-tiny/model.safetensors missing (embedded model not trained yet)"; exit 77
fi
fail=0
for r in purge-languages purge-domains toxicity-sweep; do
  if "$BIN" sweep "recipes/$r.yaml" --dry-run --out "$WORK/$r" >"$WORK/$r.plan" 2>"$WORK/$r.err" &&
     head -1 "$WORK/$r.plan" | grep -q '^plan: [0-9]* steps'; then
    echo "ok   $r: $(head -1 "$WORK/$r.plan")"
  else
    echo "FAIL $r: $(cat "$WORK/$r.err")"; fail=1
  fi
done
# the Slurm executor's sbatch lines (docs/scale.md): a 4-shard array, the merge after it, the report last
if "$BIN" sweep recipes/purge-languages.yaml --dry-run --executor slurm --shards 4 --gres gpu:1 \
     --out "$WORK/pl-slurm" >"$WORK/pl-slurm.plan" 2>"$WORK/pl-slurm.err" &&
   grep -q '^J1=$(sbatch --parsable .*--array=0-3 --gres=gpu:1 ' "$WORK/pl-slurm.plan" &&
   grep -q '^J2=$(sbatch --parsable .*"--dependency=afterok:$J1" ' "$WORK/pl-slurm.plan" &&
   tail -2 "$WORK/pl-slurm.plan" | grep -q 'report.sh)   # report' && [ ! -e "$WORK/pl-slurm" ]; then
  echo "ok   purge-languages --executor slurm --dry-run: $(tail -1 "$WORK/pl-slurm.plan")"
else
  echo "FAIL purge-languages --executor slurm --dry-run: $(cat "$WORK/pl-slurm.err")"; fail=1
fi
[ $fail -eq 0 ] && echo "all ok"
exit $fail
