#!/usr/bin/env bash
# Builds {{name}}.wasm from store.c and the C SDK (wasmcached.c): freestanding
# wasm32, no libc (the SDK brings the allocator and mem* functions). The
# last line printed is its path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

missing=()
command -v clang >/dev/null || missing+=(clang)
# clang links wasm32 with lld's wasm-ld.
command -v wasm-ld >/dev/null || missing+=(lld)
if [ ${#missing[@]} -gt 0 ]; then
    echo "build.sh: ${missing[*]} not found: install clang and lld, e.g. on Debian or Ubuntu: sudo apt-get install -y clang lld" >&2
    exit 1
fi

# -mbulk-memory: memcpy/memset compile to memory.copy/memory.fill.
# --no-entry: a plugin is a library; the SDK marks what it exports.
clang --target=wasm32 -O2 -ffreestanding -nostdlib -mbulk-memory -Wall -Wextra \
    -Wl,--no-entry -I . -o {{name}}.wasm store.c wasmcached.c
echo "$PWD/{{name}}.wasm"
