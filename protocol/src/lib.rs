//! The parsers of everything wasmcached reads from the network, kept pure (no
//! I/O, no clock, `std` only) so they can be unit-tested, property-tested and
//! fuzzed without building the host and its Wasm runtime (see `fuzz/` and
//! docs/fuzzing.md).
//!
//! - [`text`]: the memcached text protocol parser.
//! - [`meta`]: the meta protocol parser (`mg ms md ma mn me`).
//! - [`binary`]: the binary protocol parser.
//! - [`udp`]: the 8-byte UDP frame header.
//! - [`frame`]: the framing loop: buffered bytes to one command after another,
//!   in the protocol chosen by the first byte (the host's worker and the fuzz
//!   targets both run it).
//! - [`num`]: C-compatible number parsing (memcached's `safe_strto*`), shared by
//!   the text and meta parsers.
//! - [`limits`]: memcached's key and item size limits, shared by the text, meta
//!   and binary parsers.
//!
//! The host re-exports these as `crate::proto::{text, meta, binary}`.

pub mod binary;
pub mod frame;
#[cfg(test)]
mod fuzz_regressions;
pub mod limits;
pub mod meta;
pub mod num;
pub mod text;
pub mod udp;
