#!/bin/sh
# tests/need_data.sh — run a test that needs staged public datasets, or skip it.
#   need_data.sh SHARED_DIR "DIR [DIR...]" COMMAND [ARG...]
# When any SHARED_DIR/data/DIR is missing, prints
#   skipped: ../shared/data/DIR not found
# and exits 77 (the tests' SKIP_RETURN_CODE); otherwise execs COMMAND. Used by
# mp_data_test() in tests/CMakeLists.txt, which also gives the test the label `data`.
set -u
shared=$1; dirs=$2; shift 2
for d in $dirs; do
  if [ ! -d "$shared/data/$d" ]; then
    echo "skipped: ../shared/data/$d not found"
    exit 77
  fi
done
exec "$@"
