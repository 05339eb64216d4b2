#!/usr/bin/env bash
# scripts/ensure-deps.sh — make sure the Debian packages monet-probe needs are
# installed. As root, installs what is missing with apt-get; otherwise prints
# the one apt-get line to run and fails.
#   usage: scripts/ensure-deps.sh build|demo|test|bench|fuzz|eval
# eval: the MULTIPL-E toolchains (C++, Java + javatuples, JavaScript, Lua 5.3
# + luaunit, PHP), so no `eval multipl-e` test skips; `make test` installs it.
set -euo pipefail
need=(cmake gcc make pkg-config libsqlite3-dev libzstd-dev libyaml-dev libcjson-dev libopenblas-dev)
case "${1:-build}" in
  build) ;;
  demo)  need+=(python3) ;;
  test)  need+=(python3 python3-numpy sentencepiece sqlite3 chromium slurm-wlm munge) ;;
  bench) need+=(python3 python3-numpy sentencepiece python3-torch time) ;;
  fuzz)  need+=(clang libclang-rt-14-dev) ;;
  eval)  need+=(python3 g++ default-jdk-headless libjavatuples-java nodejs lua5.3 lua-unit php-cli) ;;
  *) echo "usage: $0 build|demo|test|bench|fuzz|eval" >&2; exit 2 ;;
esac
missing=()
for p in "${need[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$st" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -eq 0 ]]; then
  echo "monet-probe: installing missing packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "monet-probe: missing Debian packages; run:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
