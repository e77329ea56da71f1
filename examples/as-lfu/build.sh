#!/usr/bin/env bash
# Builds examples/as-lfu into target/examples/as-lfu.wasm.
# Installs node/npm with apt-get when missing, and assemblyscript (pinned in
# package-lock.json) into this directory's node_modules with `npm ci`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/target/examples"
mkdir -p "$out"

if ! command -v npm >/dev/null; then
    # shellcheck source=scripts/lib/install.sh
    . "$root/scripts/lib/install.sh"
    install_debs as-lfu nodejs npm >&2
fi

cd "$here"
if [ ! -x node_modules/.bin/asc ]; then
    echo "as-lfu: installing assemblyscript (npm ci)" >&2
    npm ci --no-audit --no-fund >&2
fi

# --runtime incremental: the garbage-collected runtime.
# --use abort=: no `env.abort` import (the host provides only `wasmcached`).
node_modules/.bin/asc assembly/index.ts -O3 --runtime incremental --noAssert --use abort= \
    -o "$out/as-lfu.wasm"
echo "$out/as-lfu.wasm"
