#!/usr/bin/env bash
# Builds examples/wat-minimal into target/examples/wat-minimal.wasm.
# Installs wabt (wat2wasm) with apt-get when it is missing. (The server also
# loads the .wat file directly: --plugin examples/wat-minimal/wat_minimal.wat)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/target/examples"
mkdir -p "$out"

if ! command -v wat2wasm >/dev/null; then
    echo "wat-minimal: installing wabt" >&2
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wabt >&2
    else sudo apt-get update -qq && sudo apt-get install -y -qq wabt >&2; fi
fi

wat2wasm "$here/wat_minimal.wat" -o "$out/wat-minimal.wasm"
echo "$out/wat-minimal.wasm"
