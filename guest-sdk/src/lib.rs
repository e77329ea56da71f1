//! wasmcached plugin SDK (ABI v1–v6).
//!
//! - [`abi`]: the ABI byte layouts (v1–v6), shared by the host and every Rust
//!   guest: the `wasmcached-abi` crate, re-exported.
//! - [`guest`]: the [`Plugin`](guest::Plugin) trait and [`export_plugin!`], so a
//!   storage engine is a type with a `handle` method and never touches pointers.
//!
//! The layouts are described byte by byte in `docs/plugin-abi.md`.

pub use wasmcached_abi as abi;
pub mod guest;

pub use abi::{Item, ItemMeta, Op, Request, Response, Status};
pub use guest::{Config, DumpWriter, IterWriter, LoadError, Plugin, Responder, StatsWriter};
