//! One request of a trace, as both the CSV reader and the synthetic
//! generators hand it to the driver, and the trait they share.
//!
//! A record is filled in place (`Source::next_into`) so that replaying a
//! trace of billions of lines allocates nothing per request: the key
//! buffer keeps its capacity from one request to the next.

use std::fmt;

/// What a trace line asks for; Twitter's operation names, plus `touch`
/// and `gat`, which memcached clients also send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TraceOp {
    #[default]
    Get,
    Gets,
    Gat,
    Set,
    Add,
    Replace,
    Cas,
    Append,
    Prepend,
    Delete,
    Incr,
    Decr,
    Touch,
}

impl TraceOp {
    pub const ALL: [TraceOp; 13] = [
        TraceOp::Get,
        TraceOp::Gets,
        TraceOp::Gat,
        TraceOp::Set,
        TraceOp::Add,
        TraceOp::Replace,
        TraceOp::Cas,
        TraceOp::Append,
        TraceOp::Prepend,
        TraceOp::Delete,
        TraceOp::Incr,
        TraceOp::Decr,
        TraceOp::Touch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TraceOp::Get => "get",
            TraceOp::Gets => "gets",
            TraceOp::Gat => "gat",
            TraceOp::Set => "set",
            TraceOp::Add => "add",
            TraceOp::Replace => "replace",
            TraceOp::Cas => "cas",
            TraceOp::Append => "append",
            TraceOp::Prepend => "prepend",
            TraceOp::Delete => "delete",
            TraceOp::Incr => "incr",
            TraceOp::Decr => "decr",
            TraceOp::Touch => "touch",
        }
    }

    pub fn from_name(name: &[u8]) -> Option<TraceOp> {
        TraceOp::ALL
            .into_iter()
            .find(|op| op.name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// Whether the request stores a value (and counts as a set).
    pub fn stores(self) -> bool {
        matches!(
            self,
            TraceOp::Set
                | TraceOp::Add
                | TraceOp::Replace
                | TraceOp::Cas
                | TraceOp::Append
                | TraceOp::Prepend
        )
    }
}

/// One trace request. `key` is reused between requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Seconds, on the trace's own clock.
    pub time: u64,
    pub key: Vec<u8>,
    pub value_size: u32,
    pub op: TraceOp,
    /// Seconds; 0: never expires. On a get, the TTL of its fill.
    pub ttl: u32,
}

/// Why a trace could not be read: where, and what was wrong.
#[derive(Debug, PartialEq, Eq)]
pub struct TraceError {
    /// 1-based; 0 when the error is not about a line (I/O).
    pub line: u64,
    pub msg: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "{}", self.msg),
            n => write!(f, "line {n}: {}", self.msg),
        }
    }
}

/// A stream of trace requests.
pub trait Source {
    /// Fills `rec` with the next request; `Ok(false)` at the end.
    fn next_into(&mut self, rec: &mut Record) -> Result<bool, TraceError>;

    /// How far the stream is, before the request last returned, in the
    /// unit of [`Source::total`] (bytes of a file, requests of a generator).
    fn position(&self) -> u64;

    /// The stream's whole length in that unit; 0 when unknown (a pipe).
    fn total(&self) -> u64;
}
