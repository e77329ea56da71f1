//! wasmcached plugin SDK (ABI v1–v8).
//!
//! - [`abi`]: the ABI byte layouts (v1–v8), shared by the host and every Rust
//!   guest: the `wasmcached-abi` crate, re-exported.
//! - [`guest`]: the [`Plugin`](guest::Plugin) trait and [`export_plugin!`], so a
//!   storage engine is a type with a `handle` method and never touches pointers.
//! - [`metrics`]: counters, gauges and histograms kept in the plugin's memory,
//!   which the host reads without a call per update (v8).
//!
//! The layouts are described byte by byte in `docs/plugin-abi.md`.

pub use wasmcached_abi as abi;
pub mod guest;
pub mod metrics;

pub use abi::{Item, ItemMeta, Op, Request, Response, Status};
pub use guest::{Config, DumpWriter, IterWriter, LoadError, Plugin, Responder, StatsWriter};
