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
    # shellcheck source=scripts/lib/install.sh
    . "$root/scripts/lib/install.sh"
    install_debs wat-minimal wabt >&2
fi

wat2wasm "$here/wat_minimal.wat" -o "$out/wat-minimal.wasm"
echo "$out/wat-minimal.wasm"
