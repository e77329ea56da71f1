// The Go module build.sh assembles in target/go-lru/src: this file, the
// store (store.go, gc.go) as its package export_wit_world, and the
// bindings wit-bindgen 0.63.0 generates from wit/store.wit (package main
// and one package per WIT interface). Its name is the one the generated
// code imports. No module is fetched: the one dependency is the runtime
// package of the generated code, go.bytecodealliance.org/pkg v0.4.0, whose
// source ships in the crates.io crate wit-bindgen-go 0.63.0 (src/pkg) and
// which build.sh copies to target/go-lru/pkg.
module wit_component

go 1.27.1

require go.bytecodealliance.org/pkg v0.4.0

replace go.bytecodealliance.org/pkg => ../pkg
