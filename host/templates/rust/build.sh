#!/usr/bin/env bash
# Builds {{name}}.wasm: the crate for wasm32-unknown-unknown with the release
# profile of Cargo.toml, copied here. The last line printed is its path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# rustup's stable toolchain has no wasm32 standard library until asked for.
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown >&2
fi

cargo build --release --target wasm32-unknown-unknown >&2
cp "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/release/{{crate}}.wasm" {{name}}.wasm
echo "$PWD/{{name}}.wasm"
