#!/usr/bin/env bash
# Builds examples/rust-wit into target/examples/rust-wit.wasm: a component of
# the wasmcached:store world (rustc emits one directly for wasm32-wasip2).
# Adds the wasm32-wasip2 target with rustup when it is missing. The crate is
# a workspace of its own (it builds only for wasm32-wasip2), with its own
# target dir, target/rust-wit, unless CARGO_TARGET_DIR says otherwise.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/target/examples/rust-wit.wasm}"
mkdir -p "$(dirname "$out")"

# shellcheck source=scripts/lib/install.sh
. "$root/scripts/lib/install.sh"
install_rust_targets rust-wit wasm32-wasip2 >&2

target_dir="${CARGO_TARGET_DIR:-$root/target/rust-wit}"
cd "$here"
CARGO_TARGET_DIR="$target_dir" cargo build --release --target wasm32-wasip2 >&2
cp "$target_dir/wasm32-wasip2/release/rust_wit.wasm" "$out"
echo "$out"
