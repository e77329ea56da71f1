#!/usr/bin/env bash
# scripts/check-platforms.sh - type-check wasmcached for the platforms this
# Linux machine cannot run: macOS (the kqueue path) and FreeBSD (kqueue).
# Part of ./scripts/test.sh.
#
# macOS is checked on Apple silicon only: nothing in this workspace depends
# on the CPU (no cfg on target_arch outside the guest SDK's wasm32 cases),
# and wasmtime's x86_64 code is compiled by the Linux and Windows builds, so
# an Intel Mac check would repeat what those two and this one cover, at a
# third of this script's time.
#
# `cargo check --all-targets` (library, binary, unit and end-to-end tests)
# for each target. There is no Apple SDK or FreeBSD sysroot here, so the C
# build scripts of dependencies get scripts/stand-in-cc.sh as their compiler:
# `check` never links, so the empty objects it writes are never used.
# Installs the two rustup targets when missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { printf 'check-platforms.sh: %s\n' "$*" >&2; }

targets=(aarch64-apple-darwin x86_64-unknown-freebsd)
# shellcheck source=scripts/lib/install.sh
. scripts/lib/install.sh
install_rust_targets check-platforms.sh "${targets[@]}"

cc=$PWD/scripts/stand-in-cc.sh
args=()
for t in "${targets[@]}"; do
  u=${t//-/_}
  export "CC_$u=$cc" "CXX_$u=$cc" "AR_$u=ar"
  args+=(--target "$t")
done
# Warnings are errors, as in clippy's run on Linux: code only one platform
# compiles must be as clean as the rest.
export RUSTFLAGS="${RUSTFLAGS:-} -D warnings"
# --profile suite, the profile of the Linux and Windows parts: its build
# scripts and proc macros (built for this machine) are already in
# target/suite, and it has no debug info. The default dev profile built them
# all again with full debug info, and a CI run once filled its disk here.
say "cargo check --profile suite --all-targets -p wasmcached -p wasmcached-sdk ${args[*]}"
cargo check --profile suite --all-targets -p wasmcached -p wasmcached-sdk "${args[@]}"
say "macOS (aarch64) and FreeBSD type-check: ok"
