#![doc = include_str!("../README.md")]
// The README's starter plugin carries its unit tests: they run in the
// starter crate (`cargo test -p sdk-starter`), the rest of it as a doctest.
#![allow(clippy::test_attr_in_doctest)]
#![deny(missing_docs)]

/// The ABI byte layouts (v1–v8), shared by the host and every Rust guest:
/// the `wasmcached-abi` crate. The layouts are described byte by byte in
/// `docs/plugin-abi.md`.
pub use wasmcached_abi as abi;
pub mod guest;
mod host;
pub mod metrics;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use abi::{Item, ItemMeta, Op, Request, Response, Status};
pub use guest::{Config, DumpWriter, IterWriter, LoadError, Plugin, Responder, StatsWriter};
