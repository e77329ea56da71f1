#!/bin/sh
# scripts/stand-in-cc.sh - a "C compiler" for type-checking only.
#
# `cargo check` for macOS and FreeBSD on a Linux machine with no Apple SDK
# or FreeBSD sysroot still runs the build scripts of C-using crates
# (wasmtime's helpers.c, psm...), and cc-rs needs a compiler that answers.
# This one writes an empty object wherever -o points and succeeds. Nothing
# it "compiles" is ever linked: `cargo check` stops before linking. Never
# use it for `cargo build`.
out=
while [ $# -gt 0 ]; do
  case "$1" in
    -o) shift; out=$1 ;;
    -o*) out=${1#-o} ;;
    # cc-rs tells compiler families apart by preprocessing a probe file
    # (`-E`): answer as clang does, so it passes gcc-style flags (-o).
    -E) echo '"clang"'; exit 0 ;;
    # ... and by whether MSVC's `-?` works: it must not.
    -\?|/\?) exit 1 ;;
    --version|-v|-dumpversion) echo "stand-in-cc 0 (type-check only)"; exit 0 ;;
  esac
  shift
done
if [ -n "$out" ]; then
  : > "$out"
fi
exit 0
