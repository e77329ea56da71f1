#!/usr/bin/env bash
# Builds {{name}}.wasm, a component of the wasmcached:store world
# (wit/store.wit), from store.js with componentize-js (pinned in
# package-lock.json, installed into node_modules with `npm ci` on the first
# build). The last line printed is its path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v npm >/dev/null; then
    echo "build.sh: npm not found: install Node.js 20 or newer with npm, e.g. on Debian or Ubuntu: sudo apt-get install -y nodejs npm" >&2
    exit 1
fi
if [ ! -x node_modules/.bin/componentize-js ]; then
    npm ci --no-audit --no-fund >&2
fi

# --disable http fetch-event: no wasi:http imports (the server links only
# the wasi:cli/io/clocks/random/filesystem interfaces of WASI 0.2).
node_modules/.bin/componentize-js store.js \
    --wit wit/store.wit --world-name store \
    --disable http fetch-event \
    -o {{name}}.wasm >&2
echo "$PWD/{{name}}.wasm"
