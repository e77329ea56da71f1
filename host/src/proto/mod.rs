//! Protocols: parsing what clients send, and rendering what shards answer.
//!
//! - [`text`]: the memcached text protocol parser (pure, no I/O; lives in
//!   the `wasmcached-protocol` crate with [`meta`] and [`binary`], so that
//!   it can be fuzzed without building the host).
//! - [`text_cmd`]: runs parsed text commands (shard requests or immediate
//!   replies) and renders shard answers as text.
//! - [`meta`]: the meta protocol parser (`mg ms md ma mn me`; pure).
//! - [`meta_cmd`]: runs meta commands and renders their answers.
//! - [`binary`]: the binary protocol parser (pure).
//! - [`binary_cmd`]: runs binary requests and renders their responses.
//!
//! The shard side never sees protocol syntax: every protocol turns its
//! commands into the same ABI request records.

pub use wasmcached_protocol::{binary, meta, text};
pub mod binary_cmd;
pub mod meta_cmd;
pub mod text_cmd;

use crate::stats::Aggregate;

/// What a reply slot renders once its shard answers arrive.
pub enum Reply {
    /// Already rendered when reserved.
    Ready,
    /// Thrown away before it was written (memcached drops queued replies on
    /// some errors); answers still arriving for it render nothing.
    Discarded,
    /// One key of get/gets/gat/gats: `VALUE …` on a hit, nothing on a miss.
    Get {
        with_cas: bool,
        touch: bool,
    },
    /// set/add/replace/append/prepend/cas.
    Store {
        noreply: bool,
        cas: bool,
    },
    Delete {
        noreply: bool,
    },
    Arith {
        noreply: bool,
        incr: bool,
    },
    Touch {
        noreply: bool,
    },
    /// Fan-out commands answered `OK` once every shard is done.
    Ok {
        noreply: bool,
        /// The first shard's refusal (status Error, with its message): the
        /// answer becomes `SERVER_ERROR <message>` instead of `OK`.
        failed: Option<Box<[u8]>>,
    },
    /// `stats` / `stats items` / `stats slabs` / `stats sizes`: every shard's
    /// lines, summed.
    Stats(Box<StatsReply>),
    /// A meta command (`mg ms md ma me`): rendered by [`meta_cmd::render`].
    Meta(Box<meta_cmd::MetaReply>),
    /// A binary-protocol request: rendered by [`binary_cmd::render`].
    Binary(binary_cmd::BinReply),
    /// An admin command answered later by another thread (`plugin reload`).
    Admin,
}

pub struct StatsReply {
    pub group: i32,
    pub agg: Aggregate,
}

/// One shard answer on its way to a slot.
#[derive(Clone)]
pub enum Delivery<'a> {
    Resp(wasmcached_sdk::Response<'a>),
    Stats(&'a [u8]),
    Fault(&'a str),
    /// Finished reply text (an admin command's answer).
    Line(&'a [u8]),
}
