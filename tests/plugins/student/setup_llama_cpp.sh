#!/usr/bin/env bash
# Installs node-llama-cpp (pinned 3.21.1, its prebuilt CPU llama.cpp) into DIR
# once, and prints the installed package's folder. Quiet and quick when it is
# there already; a lock keeps concurrent test runs from installing twice.
# DIR defaults to $DISTILL_LLAMA_CPP_DIR, else
# ~/.cache/distilld/node-llama-cpp-3.21.1 (shared by every test and bench).
# Usage: setup_llama_cpp.sh [DIR]
set -euo pipefail
version=3.21.1
if [ $# -gt 1 ]; then
  echo "usage: $0 [DIR]" >&2
  exit 2
fi
target=${1:-${DISTILL_LLAMA_CPP_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/distilld/node-llama-cpp-$version}}
mkdir -p "$target"
dir=$(cd "$target" && pwd)
package="$dir/node_modules/node-llama-cpp"

installed() {
  [ -f "$package/package.json" ] &&
    node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' \
      "$package/package.json" "$version"
}

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "setup_llama_cpp: node and npm are needed (Node.js >= 20) to install node-llama-cpp@$version" >&2
  exit 1
fi

exec 9>"$dir/.install.lock"
flock 9
if ! installed; then
  [ -f "$dir/package.json" ] || echo '{"private": true}' >"$dir/package.json"
  log="$dir/npm-install.log"
  # The prebuilt binaries come inside the npm packages; never fetch or build
  # llama.cpp from elsewhere after the install.
  if ! (cd "$dir" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true \
        npm i -E --no-audit --no-fund "node-llama-cpp@$version") >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "setup_llama_cpp: npm could not install node-llama-cpp@$version into $dir (log: $log)" >&2
    exit 1
  fi
  if ! installed; then
    echo "setup_llama_cpp: npm finished but $package is not version $version (log: $log)" >&2
    exit 1
  fi
fi
echo "$package"
