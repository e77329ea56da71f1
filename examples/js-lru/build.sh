#!/usr/bin/env bash
# Builds target/examples/js-lru.wasm, a component of the wasmcached:store world, with
# componentize-js (pinned in package-lock.json, installed into this
# directory's node_modules with `npm ci` on first use; needs node and npm,
# installed with apt-get when missing). The first argument, if any, is the
# output path (default: target/examples/js-lru.wasm).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/target/examples/js-lru.wasm}"

if ! command -v npm >/dev/null; then
    # shellcheck source=scripts/lib/install.sh
    . "$root/scripts/lib/install.sh"
    install_debs js-lru nodejs npm >&2
fi

cd "$here"
if [ ! -x node_modules/.bin/componentize-js ]; then
    echo "js-lru: installing componentize-js (npm ci)" >&2
    npm ci --no-audit --no-fund >&2
fi

mkdir -p "$(dirname "$out")"
# Absolute: the build runs in the example's directory.
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
# --disable http fetch-event: no wasi:http imports (the host links only the
# wasi:cli/io/clocks/random/filesystem interfaces of WASI 0.2).
node_modules/.bin/componentize-js store.js \
    --wit "$root/wit/store.wit" --world-name store-with-listing \
    --disable http fetch-event \
    -o "$out" >/dev/null
echo "$out"
