#!/usr/bin/env bash
# Builds target/examples/python-lru.wasm, a component of the wasmcached:store world, with
# componentize-py (installed from PyPI into target/wit-venv on first use).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/target/examples/python-lru.wasm}"
venv="$root/target/wit-venv"
if [ ! -x "$venv/bin/componentize-py" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "componentize-py==0.25.1"
fi
mkdir -p "$(dirname "$out")"
# Absolute: the build runs in the example's directory.
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
cd "$here"
"$venv/bin/componentize-py" -d "$root/wit/store.wit" -w store-full componentize store -o "$out" >/dev/null
echo "$out"
