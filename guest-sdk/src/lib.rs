//! wasmcached plugin SDK.
//!
//! - [`abi`]: the ABI byte layouts (v1–v6), shared by the host and every Rust guest.
//! - [`guest`]: the [`Plugin`](guest::Plugin) trait and [`export_plugin!`], so a
//!   storage engine is a type with a `handle` method and never touches pointers.
//!
//! The layouts are described byte by byte in `docs/plugin-abi.md`.

pub mod abi;
pub mod guest;

pub use abi::{Item, ItemMeta, Op, Request, Response, Status};
pub use guest::{Config, DumpWriter, IterWriter, LoadError, Plugin, Responder, StatsWriter};
