#!/usr/bin/env bash
# scripts/ensure-deps.sh — make sure the Debian packages monet-probe needs are
# installed. As root, installs what is missing with apt-get; otherwise prints
# the one apt-get line to run and fails.
#   usage: scripts/ensure-deps.sh build|demo|test|bench|fuzz|eval|train
# eval: the MULTIPL-E toolchains (C++, Java + javatuples, JavaScript, Lua 5.3
# + luaunit, PHP), so no `eval multipl-e` test skips; `make test` installs it.
# train: retraining the embedded model (data/README.md): torch, the sentencepiece
# CLI, and the Debian packages whose Java and Lua sources are training text.
set -euo pipefail
need=(cmake gcc make pkg-config libsqlite3-dev libzstd-dev libyaml-dev libcjson-dev libopenblas-dev)
case "${1:-build}" in
  build) ;;
  demo)  need+=(python3) ;;
  test)  need+=(python3 python3-numpy sentencepiece sqlite3 chromium slurm-wlm munge) ;;
  bench) need+=(python3 python3-numpy sentencepiece python3-torch time) ;;
  fuzz)  need+=(clang libclang-rt-14-dev) ;;
  eval)  need+=(python3 g++ default-jdk-headless libjavatuples-java nodejs lua5.3 lua-unit php-cli) ;;
  train) need+=(python3 python3-numpy python3-torch sentencepiece openjdk-17-source luarocks
                lua-ansicolors lua-argparse lua-basexx lua-binaryheap lua-busted lua-cgi lua-check
                lua-cliargs lua-compat53 lua-copas lua-cosmo lua-coxpcall lua-cqueues lua-dkjson
                lua-expat lua-fifo lua-http lua-inifile lua-inspect lua-ldoc lua-leg lua-lgi
                lua-logging lua-lpeg-patterns lua-lpeg lua-luaossl lua-luassert lua-markdown
                lua-mediator lua-moses lua-nginx-cookie lua-nginx-kafka lua-nginx-redis lua-orbit
                lua-penlight lua-posix lua-redis lua-resty-core lua-resty-lrucache lua-rings lua-say
                lua-sec lua-socket lua-term lua-unit lua-wsapi lua-yaml) ;;
  *) echo "usage: $0 build|demo|test|bench|fuzz|eval|train" >&2; exit 2 ;;
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
