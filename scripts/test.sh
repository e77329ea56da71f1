#!/usr/bin/env bash
# scripts/test.sh - run wasmcached's whole test suite (the README's test command).
#
# Installs what is missing first:
#   - Debian packages `memcached` (the reference server of the differential
#     and memccapable tests) and `libmemcached-tools` (memccapable), with
#     apt-get as root or through `sudo -n` otherwise; `apt-get update` runs
#     only when the package lists do not know them (or an install fails);
#     the packaged memcached service is kept from starting (policy-rc.d);
#   - the wasm32-unknown-unknown rustup target (the default plugin is built
#     for it by the host's build script).
# Then runs `cargo test --workspace --release --no-fail-fast` (every test
# binary runs even when an earlier one fails; extra arguments are passed to
# cargo test, e.g. `./scripts/test.sh -- --nocapture`) and exits with its
# status.
#
# The tests talk to 127.0.0.1 only, start every server they use on a free
# port and kill it when done. Useful knobs (see tests/common/mod.rs and
# tests/differential.rs): WASMCACHED_TEST_BIN (server under test),
# MEMCACHED_BIN (reference), DIFF_SEED, DIFF_COMMANDS, DIFF_KEEP_GOING.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'test.sh: %s\n' "$*" >&2; }

# ---------------------------------------------------------------- root helper
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    say "need root (or sudo) to run: $*"
    return 1
  fi
}

# ---------------------------------------------------------------- Debian packages
need=()
[ -x "${MEMCACHED_BIN:-/usr/bin/memcached}" ] || need+=(memcached)
command -v memccapable >/dev/null 2>&1 || need+=(libmemcached-tools)

if [ "${#need[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing ${need[*]} and no apt-get: install memcached (1.6) and libmemcached-tools by hand"
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  known=1
  for p in "${need[@]}"; do
    apt-cache show "$p" >/dev/null 2>&1 || known=0
  done
  if [ "$known" = 0 ]; then
    say "apt-get update (package lists do not know ${need[*]})"
    as_root apt-get update -q
  fi
  # keep the packaged memcached service from being started by the install
  policy=/usr/sbin/policy-rc.d
  added_policy=0
  if [ ! -e "$policy" ]; then
    if as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"; then
      added_policy=1
    fi
  fi
  say "apt-get install ${need[*]}"
  install_ok=1
  as_root apt-get install -y -q --no-install-recommends "${need[@]}" </dev/null || install_ok=0
  if [ "$install_ok" = 0 ] && [ "$known" = 1 ]; then
    say "install failed; apt-get update and retry"
    as_root apt-get update -q
    install_ok=1
    as_root apt-get install -y -q --no-install-recommends "${need[@]}" </dev/null || install_ok=0
  fi
  [ "$added_policy" = 1 ] && as_root rm -f "$policy"
  if [ "$install_ok" = 0 ]; then
    say "could not install ${need[*]}"
    exit 1
  fi
fi

# ---------------------------------------------------------------- Rust
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || { say "no cargo: install rustup's stable toolchain (Rust >= 1.95)"; exit 1; }
if command -v rustup >/dev/null 2>&1; then
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    say "rustup target add wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
else
  say "no rustup: make sure the wasm32-unknown-unknown target is installed"
fi

# ---------------------------------------------------------------- tests
say "cargo test --workspace --release --no-fail-fast $*"
status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --release --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite: cargo prints a summary per test
# binary (the last ones are empty doc-test runs), so add them up.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
if [ "$status" = 0 ]; then
  say "all tests passed"
else
  say "tests FAILED (status $status)"
fi
exit "$status"
