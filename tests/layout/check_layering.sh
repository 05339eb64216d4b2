#!/usr/bin/env bash
# tests/layout/check_layering.sh — the one-way layering of the library, checked
# on every #include of the tree (README "What is where"):
#   core/util <- core/text <- core/model <- core/store, core/eval
#     <- analysis/, recipes/ <- cmd/          cuda/ implements core/model's table
# A folder may include itself and the folders to its left; core never includes
# cuda/, cmd/, analysis/ or recipes/. Exits 1 naming every offending line.
set -u
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root" || exit 2
allowed() { # folder -> allowed include prefixes
  case $1 in
    core/util) echo "core/util/" ;;
    core/text) echo "core/util/ core/text/" ;;
    core/model) echo "core/util/ core/text/ core/model/" ;;
    core/store) echo "core/util/ core/text/ core/model/ core/store/" ;;
    core/eval) echo "core/util/ core/text/ core/model/ core/eval/" ;;
    analysis) echo "core/ analysis/" ;;
    recipes) echo "core/ recipes/" ;;
    cuda) echo "core/util/ core/text/ core/model/ cuda/" ;;
  esac
}
bad=0 checked=0
for dir in core/util core/text core/model core/store core/eval analysis recipes cuda; do
  ok=$(allowed $dir)
  for f in "$dir"/*.c "$dir"/*.h "$dir"/*.cu "$dir"/*.cuh; do
    [ -f "$f" ] || continue
    while IFS= read -r line; do
      inc=${line#*\"}; inc=${inc%%\"*}
      case $inc in */*) ;; *) continue ;; esac # same-folder "x.h" / "x.cuh"
      checked=$((checked + 1))
      pass=0
      for p in $ok; do case $inc in "$p"*) pass=1 ;; esac; done
      if [ $pass = 0 ]; then echo "layering: $f includes \"$inc\" (allowed: $ok)"; bad=1; fi
    done < <(grep -h '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f")
  done
done
# files directly in core/ would escape the table above
if ls core/*.c core/*.h >/dev/null 2>&1; then echo "layering: files directly under core/ (put them in a sub-folder)"; bad=1; fi
echo "layering: $checked cross-folder includes checked"
exit $bad
