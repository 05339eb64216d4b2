#!/usr/bin/env bash
# tests/layout/check_engine_only.sh — commands, evaluations, the store and the
# recipes reach the model through the batched engine (core/model/backend.h,
# mp_engine_*), never through the CPU state directly (mp_forward, mp_state_*,
# mp_state *). Scans cmd/, core/eval/, core/store/, analysis/, recipes/ and
# exits 1 naming every use outside the allow-list below, and every allow-list
# entry that no longer needs to be there (so the list only shrinks).
#
# The allow-list: the evaluations that generate on an mp_state with
# mp_generate; they can move to mp_generate_batch on an engine
# (mp_eval_model_open_engine), which `generate` / `steer` already use:
#   core/eval/eval_model.[ch]  mp_eval_model_open: the state MULTIPL-E / toxicity generate on
#   core/eval/multiple_eval.c  MULTIPL-E generation (mp_generate)
#   core/eval/toxicity_eval.c  ToxiGen / RTP generation and annotated-statement log-likelihoods
set -u
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root" || exit 2
allow="core/eval/eval_model.c core/eval/eval_model.h
core/eval/multiple_eval.c core/eval/toxicity_eval.c"
pat='\bmp_forward[[:space:]]*\(|\bmp_state_[a-z_]+[[:space:]]*\(|\bmp_state[[:space:]]*\*'
bad=0 scanned=0
for f in $(find cmd core/eval core/store analysis recipes -type f \( -name '*.c' -o -name '*.h' \) | sort); do
  scanned=$((scanned + 1))
  hits=$(grep -nE "$pat" "$f")
  listed=0
  for a in $allow; do [ "$a" = "$f" ] && listed=1; done
  if [ -n "$hits" ] && [ $listed = 0 ]; then
    echo "$hits" | sed "s|^|$f:|; s|\$|  <- use mp_engine_* (core/model/backend.h)|"
    bad=1
  elif [ -z "$hits" ] && [ $listed = 1 ]; then
    echo "$f: allow-listed but no longer uses mp_forward / mp_state_*: remove it from the list"
    bad=1
  fi
done
[ $scanned -gt 50 ] || { echo "scanned only $scanned files: wrong root?"; exit 1; }
[ $bad = 0 ] && echo "engine only: $scanned files, allow-list of $(echo $allow | wc -w) (generation)"
exit $bad
