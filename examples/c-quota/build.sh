#!/usr/bin/env bash
# Builds examples/c-quota into target/examples/c-quota.wasm.
# Installs clang and lld with apt-get when they are missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/target/examples"
mkdir -p "$out"

if ! command -v clang >/dev/null || ! command -v wasm-ld >/dev/null; then
    # shellcheck source=scripts/lib/install.sh
    . "$root/scripts/lib/install.sh"
    install_debs c-quota clang lld >&2
fi

# -ffreestanding -nostdlib: no libc; the SDK brings allocator and mem* functions.
# -mbulk-memory: memcpy/memset compile to memory.copy/memory.fill.
build() { # OUTPUT [extra clang flags]
    local wasm="$1"
    shift
    clang --target=wasm32 -O2 -ffreestanding -nostdlib -mbulk-memory \
        -Wall -Wextra -Werror "$@" \
        -Wl,--no-entry \
        -I "$root/guest-sdk/c" \
        -o "$wasm" \
        "$here/c_quota.c" "$root/guest-sdk/c/wasmcached.c"
}
# The same store speaking ABI version 1 (no meta-protocol bits, no dump,
# no listing), for tests of how the server treats a v1 plugin.
build "$out/c-quota-v1.wasm" -DWMC_ABI=1
# The example: ABI version 8 (the SDK's default). Printed last: the path
# scripts/build-examples.sh reads.
build "$out/c-quota.wasm"
echo "$out/c-quota.wasm"
