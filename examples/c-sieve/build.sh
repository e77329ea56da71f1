#!/usr/bin/env bash
# Builds examples/c-sieve into target/examples/c-sieve.wasm.
# Installs clang and lld with apt-get when they are missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/target/examples"
mkdir -p "$out"

if ! command -v clang >/dev/null || ! command -v wasm-ld >/dev/null; then
    # shellcheck source=scripts/lib/install.sh
    . "$root/scripts/lib/install.sh"
    install_debs c-sieve clang lld >&2
fi

# -ffreestanding -nostdlib: no libc; the SDK brings allocator and mem* functions.
# -mbulk-memory: memcpy/memset compile to memory.copy/memory.fill.
# ABI version 8, the SDK's default.
clang --target=wasm32 -O2 -ffreestanding -nostdlib -mbulk-memory \
    -Wall -Wextra -Werror -std=c11 \
    -Wl,--no-entry \
    -I "$root/guest-sdk/c" \
    -o "$out/c-sieve.wasm" \
    "$here/c_sieve.c" "$root/guest-sdk/c/wasmcached.c"
# Printed last: the path scripts/build-examples.sh reads.
echo "$out/c-sieve.wasm"
