#!/bin/sh
# tests/recipes/check_render.sh — render a sweep's report.html in headless Chromium:
# a PNG screenshot is written, no console errors are logged, and the DOM holds the
# tables. Uses the report written by recipes_sweep (run first; ctest FIXTURES).
# usage: check_render.sh WORKDIR   (exit 77 = skipped: chromium not installed)
set -u
WORK=$1
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROME" ]; then echo "skipped: chromium not installed"; exit 77; fi
REPORT=$(cd "$WORK" 2>/dev/null && pwd)/out/report.html
[ -f "$REPORT" ] || { echo "FAIL: $REPORT missing (recipes_sweep must run first)"; exit 1; }
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
FLAGS="--headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking --disable-component-update --disable-sync --user-data-dir=$TMP/profile"
timeout 60 "$CHROME" $FLAGS --enable-logging=stderr --v=0 --window-size=1200,1600 --screenshot="$TMP/report.png" "file://$REPORT" >"$TMP/shot.out" 2>"$TMP/shot.err"
rc=$?
fail=0
if [ $rc -ne 0 ] || [ ! -s "$TMP/report.png" ]; then echo "FAIL: no screenshot (exit $rc)"; tail -5 "$TMP/shot.err"; fail=1; else echo "ok   screenshot $(wc -c <"$TMP/report.png") bytes"; fi
if grep -E 'CONSOLE|Uncaught' "$TMP/shot.err"; then echo "FAIL: console errors"; fail=1; else echo "ok   no console errors"; fi
timeout 60 "$CHROME" $FLAGS --dump-dom "file://$REPORT" >"$TMP/dom.html" 2>/dev/null
n=$(grep -o '<table' "$TMP/dom.html" | wc -l)
if [ "$n" -ge 2 ] && grep -q 'class="delta"' "$TMP/dom.html" && grep -q '<mark>' "$TMP/dom.html"; then echo "ok   DOM has $n tables and highlighted contexts"; else echo "FAIL: tables missing from the DOM ($n)"; fail=1; fi
[ $fail -eq 0 ] && echo "all ok"
exit $fail
