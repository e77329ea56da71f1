#!/usr/bin/env bash
# Builds examples/rust-versioned into target/examples/rust-versioned.wasm.
# Adds the wasm32-unknown-unknown target with rustup when it is missing.
# The crate is a workspace member (not a default member): it builds into the
# workspace's target/ with the `plugin` profile like the default store.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/target/examples"
mkdir -p "$out"

# shellcheck source=scripts/lib/install.sh
. "$root/scripts/lib/install.sh"
install_rust_targets rust-versioned wasm32-unknown-unknown >&2

cd "$root"
cargo build -p rust-versioned --lib --target wasm32-unknown-unknown --profile plugin
target_dir="${CARGO_TARGET_DIR:-$root/target}"
cp "$target_dir/wasm32-unknown-unknown/plugin/rust_versioned.wasm" "$out/rust-versioned.wasm"
echo "$out/rust-versioned.wasm"
