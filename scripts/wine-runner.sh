#!/usr/bin/env bash
# scripts/wine-runner.sh - cargo's runner for x86_64-pc-windows-gnu
# (.cargo/config.toml): runs a Windows executable (a test binary, or
# wasmcached.exe itself) under Wine, so that
#   cargo test --target x86_64-pc-windows-gnu
# runs the Windows build's unit and end-to-end tests on Linux.
#
# Needs Debian's wine64 (Wine 8.0) and gcc-mingw-w64-x86-64; ./scripts/test.sh
# installs both. Wine 8.0 has no bcryptprimitives.dll, whose ProcessPrng every
# Rust >= 1.78 program imports; the stand-in in scripts/windows/ is built here
# with mingw (once, into target/wine-shim) and put on Wine's PATH.
# The Wine prefix is target/wine-prefix unless WINEPREFIX says otherwise.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
case "$target_dir" in /*) ;; *) target_dir=$root/$target_dir ;; esac

shim=$target_dir/wine-shim
src=$root/scripts/windows/bcryptprimitives.c
if [ ! -f "$shim/bcryptprimitives.dll" ] || [ "$src" -nt "$shim/bcryptprimitives.dll" ]; then
  mkdir -p "$shim"
  x86_64-w64-mingw32-gcc -shared -O2 -o "$shim/bcryptprimitives.dll.tmp" \
    "$src" "$root/scripts/windows/bcryptprimitives.def" -lbcrypt
  mv "$shim/bcryptprimitives.dll.tmp" "$shim/bcryptprimitives.dll"
fi

wine=$(command -v wine64 || true)
[ -n "$wine" ] || wine=/usr/lib/wine/wine64
[ -x "$wine" ] || { echo "wine-runner: no wine64 (apt-get install -y wine64)" >&2; exit 127; }

export WINEPREFIX=${WINEPREFIX:-$target_dir/wine-prefix}
export WINEDEBUG=${WINEDEBUG:--all}
# native stand-in DLL; no Mono/Gecko download prompts when the prefix is made
export WINEDLLOVERRIDES="bcryptprimitives=n;mscoree=;mshtml=${WINEDLLOVERRIDES:+;$WINEDLLOVERRIDES}"
# Wine's PATH (a Windows path list): where the DLL loader finds the stand-in
export WINEPATH="Z:${shim//\//\\}${WINEPATH:+;$WINEPATH}"
mkdir -p "$WINEPREFIX"
exec "$wine" "$@"
