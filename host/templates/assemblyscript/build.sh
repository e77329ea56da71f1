#!/usr/bin/env bash
# Builds {{name}}.wasm with AssemblyScript (installed into node_modules by
# npm from package.json on the first build). The last line printed is its
# path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v npm >/dev/null; then
    echo "build.sh: npm not found: install Node.js 20 or newer with npm, e.g. on Debian or Ubuntu: sudo apt-get install -y nodejs npm" >&2
    exit 1
fi
if [ ! -x node_modules/.bin/asc ]; then
    npm install --no-audit --no-fund >&2
fi

# --runtime incremental: the garbage-collected runtime.
# --use abort=: no `env.abort` import (the host provides only `wasmcached`).
node_modules/.bin/asc assembly/index.ts -O3 --runtime incremental --noAssert --use abort= \
    -o {{name}}.wasm >&2
echo "$PWD/{{name}}.wasm"
