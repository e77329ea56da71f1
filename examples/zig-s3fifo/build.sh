#!/usr/bin/env bash
# Builds examples/zig-s3fifo into target/examples/zig-s3fifo.wasm.
# Installs Zig when missing: the `ziglang` package from PyPI (a wheel with
# the Zig toolchain inside) in a venv under target/zig-venv, and
# python3-venv with apt-get when python3 cannot make a venv.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/target/examples"
venv="$root/target/zig-venv"
cache="$root/target/zig-cache"
zig_version=0.15.2
mkdir -p "$out"

zig() { "$venv/bin/python" -m ziglang "$@"; }

if [ "$(zig version 2>/dev/null)" != "$zig_version" ]; then
    echo "zig-s3fifo: installing Zig $zig_version (pip install ziglang) into $venv" >&2
    if [ ! -x "$venv/bin/pip" ]; then
        rm -rf "$venv"
        if ! python3 -m venv "$venv" >&2; then
            # Debian's python3 makes a venv only with python3-venv (ensurepip).
            rm -rf "$venv"
            # shellcheck source=scripts/lib/install.sh
            . "$root/scripts/lib/install.sh"
            install_debs zig-s3fifo python3-venv >&2
            python3 -m venv "$venv" >&2
        fi
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check "ziglang==$zig_version" >&2
fi

# wasm32-freestanding, no entry point: the C SDK (compiled by Zig's clang)
# brings the allocator, the mem* functions and the exports (export_name
# attributes; nothing else is exported). +bulk_memory: memcpy/memset become
# memory.copy/memory.fill. ABI version 8, the SDK's default.
tmp="$out/zig-s3fifo.wasm.tmp"
zig build-exe "$here/s3fifo.zig" \
    -I "$root/guest-sdk/c" \
    -cflags -std=c11 -Wall -Wextra -Werror -- "$root/guest-sdk/c/wasmcached.c" \
    -target wasm32-freestanding -mcpu=generic+bulk_memory -fno-entry \
    -O ReleaseFast --cache-dir "$cache" --global-cache-dir "$cache" \
    -femit-bin="$tmp"

# Not -fstrip: that drops the name section too, and `wasmcached plugin check`
# tells the shadow stack pointer (the one mutable global a memory image may
# have) by its name there. Drop only the DWARF sections (.debug_*).
python3 - "$tmp" "$out/zig-s3fifo.wasm" <<'EOF'
import sys

data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\0asm\x01\0\0\0", "not a wasm module"

def leb(i):
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i

kept = [data[:8]]
i = 8
while i < len(data):
    start = i
    section_id = data[i]
    size, body = leb(i + 1)
    end = body + size
    if section_id == 0:
        name_len, name = leb(body)
        if data[name : name + name_len].startswith(b".debug"):
            i = end
            continue
    kept.append(data[start:end])
    i = end
open(sys.argv[2], "wb").write(b"".join(kept))
EOF
rm -f "$tmp"
# Printed last: the path scripts/build-examples.sh reads.
echo "$out/zig-s3fifo.wasm"
