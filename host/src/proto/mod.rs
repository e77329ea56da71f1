//! Protocols: parsing what clients send, and rendering what shards answer.
//!
//! The parsers (text, meta, binary) are pure and live in the
//! `wasmcached-protocol` crate, so that they can be fuzzed without building
//! the host; the sessions here run what they parse.
//!
//! - [`text_cmd`]: runs parsed text commands (shard requests or immediate
//!   replies) and renders shard answers as text.
//! - [`meta_cmd`]: runs meta commands and renders their answers.
//! - [`common`]: what they share (key requests, watch notes, unlink).
//! - [`binary_cmd`]: runs binary requests and renders their responses.
//!
//! The shard side never sees protocol syntax: every protocol turns its
//! commands into the same ABI request records.

pub mod binary_cmd;
pub mod common;
pub mod meta_cmd;
pub mod text_cmd;

use crate::reply::{Delivery, Reply};

use crate::counters::ThreadStats;
use crate::shared::Shared;

/// Renders one shard answer into `out` (the slot's place in the reply
/// stream), by the protocol of the command the slot belongs to.
pub fn render(
    reply: &mut Reply,
    d: Delivery<'_>,
    last: bool,
    out: &mut Vec<u8>,
    shared: &Shared,
    st: &ThreadStats,
) {
    match reply {
        Reply::Meta(m) => meta_cmd::render(m, d, out, shared, st),
        Reply::Binary(b) => binary_cmd::render(b, d, last, out, shared, st),
        _ => text_cmd::render(reply, d, last, out, shared, st),
    }
}

/// [`render`], except that a large text `get` hit leaves its value out of
/// `out` and returns it (`text_cmd::render_large_hit`).
pub fn render_direct<'d>(
    reply: &mut Reply,
    d: Delivery<'d>,
    last: bool,
    out: &mut Vec<u8>,
    shared: &Shared,
    st: &ThreadStats,
) -> Option<&'d [u8]> {
    if let Some(value) = text_cmd::render_large_hit(reply, &d, out, st) {
        return Some(value);
    }
    render(reply, d, last, out, shared, st);
    None
}
