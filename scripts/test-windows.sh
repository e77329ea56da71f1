#!/usr/bin/env bash
# scripts/test-windows.sh - build wasmcached for Windows
# (x86_64-pc-windows-gnu, with Debian's mingw-w64) and run its unit and
# end-to-end tests under Wine: the Windows wasmcached.exe serves the Windows
# test binaries over loopback. Part of ./scripts/test.sh.
#
# Installs what is missing: Debian's wine64 and gcc-mingw-w64-x86-64 (as root
# or through sudo -n), and the rustup target. The runner that starts each
# test binary under Wine is scripts/wine-runner.sh (.cargo/config.toml).
# Extra arguments go to cargo test. The `suite` profile (Cargo.toml) is
# release at opt-level 1: these runs test behaviour, not speed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { printf 'test-windows.sh: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/install.sh
. scripts/lib/install.sh

need=()
command -v wine64 >/dev/null 2>&1 || [ -x /usr/lib/wine/wine64 ] || need+=(wine64)
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need+=(gcc-mingw-w64-x86-64)
install_debs test-windows.sh "${need[@]}" || exit 1
t=x86_64-pc-windows-gnu
install_rust_targets test-windows.sh "$t"
# The e2e tests' examples:: module (tests/examples.rs) loads the example
# plugins; a Windows process cannot run their build scripts, so build them
# here first (a no-op when fresh).
say "scripts/build-examples.sh"
./scripts/build-examples.sh >/dev/null
# The 5-minute churn of the e2e tests' soak:: module (tests/soak.rs)
# measures RSS and fds through /proc, which only the Linux run has; under
# Wine it checks every value for 30 s. The Windows run takes every test of
# the e2e binary (the Linux-only modules are empty there), as it took every
# test binary before they were merged.
export WASMCACHED_SOAK_SECS=${WASMCACHED_SOAK_SECS:-30}
say "cargo test --profile suite --target $t -p wasmcached -p wasmcached-sdk --no-fail-fast $*"
cargo test --profile suite --target "$t" -p wasmcached -p wasmcached-sdk --no-fail-fast "$@"
