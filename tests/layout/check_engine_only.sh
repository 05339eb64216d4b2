#!/usr/bin/env bash
# tests/layout/check_engine_only.sh — commands, evaluations, the store and the
# recipes reach the model through the batched engine (core/model/backend.h,
# mp_engine_*), never through the CPU state directly (mp_forward, mp_state_*,
# mp_state *, mp_generate on a state, mp_engine_cpu_state). Scans cmd/, core/eval/, core/store/, analysis/, recipes/ and
# exits 1 naming every use outside the allow-list below, and every allow-list
# entry that no longer needs to be there (so the list only shrinks).
#
# The allow-list is empty: generation (generate, steer, MULTIPL-E, ToxiGen /
# RTP) runs on mp_generate_batch through the engine, scoring on
# mp_engine_prefill. A file added to it must say here why.
set -u
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root" || exit 2
allow=""
pat='\bmp_forward[[:space:]]*\(|\bmp_state_[a-z_]+[[:space:]]*\(|\bmp_state[[:space:]]*\*|\bmp_generate[[:space:]]*\(|\bmp_engine_cpu_state\b'
bad=0 scanned=0
for f in $(find cmd core/eval core/store analysis recipes -type f \( -name '*.c' -o -name '*.h' \) | sort); do
  scanned=$((scanned + 1))
  hits=$(grep -nE "$pat" "$f")
  listed=0
  for a in $allow; do [ "$a" = "$f" ] && listed=1; done
  if [ -n "$hits" ] && [ $listed = 0 ]; then
    echo "$hits" | sed "s|^|$f:|; s|\$|  <- use mp_engine_* / mp_generate_batch (core/model/backend.h, generate.h)|"
    bad=1
  elif [ -z "$hits" ] && [ $listed = 1 ]; then
    echo "$f: allow-listed but no longer uses mp_forward / mp_state_*: remove it from the list"
    bad=1
  fi
done
[ $scanned -gt 50 ] || { echo "scanned only $scanned files: wrong root?"; exit 1; }
[ $bad = 0 ] && echo "engine only: $scanned files, allow-list of $(echo $allow | wc -w)"
exit $bad
