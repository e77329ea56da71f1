//! What a connection's reply slots wait for ([`Reply`]), and what arrives
//! for them ([`Delivery`]): the data the protocol sessions leave in a slot
//! when they send a request, and the shard answers (or stats lines, summed
//! by [`Aggregate`]) the worker delivers. Plain data below the sessions, so
//! that the connection, the command layer and every session share it.

use std::collections::BTreeMap;
use wasmcached_abi::{Op, StatType};
use wasmcached_protocol::text::MetaOp;

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
    /// A meta command (`mg ms md ma me`): rendered by `proto::meta_cmd::render`.
    Meta(Box<MetaReply>),
    /// A binary-protocol request: rendered by `proto::binary_cmd::render`.
    Binary(BinReply),
    /// An admin command answered later by another thread (`plugin reload`).
    Admin,
}

impl Reply {
    /// A fan-out command's `OK` (or its first shard's refusal).
    pub fn ok(noreply: bool) -> Reply {
        Reply::Ok {
            noreply,
            failed: None,
        }
    }
}

pub struct StatsReply {
    pub group: i32,
    pub agg: Aggregate,
}

/// One shard answer on its way to a slot.
#[derive(Clone)]
pub enum Delivery<'a> {
    Resp(wasmcached_abi::Response<'a>),
    Stats(&'a [u8]),
    Fault(&'a str),
    /// Finished reply text (an admin command's answer).
    Line(&'a [u8]),
}

/// What a meta reply slot needs to render its answer.
pub struct MetaReply {
    pub(crate) op: MetaOp,
    /// The flag tokens that are echoed, in request order, separated by spaces.
    pub(crate) flags: Vec<u8>,
    /// The request key (decoded from base64 with `b`).
    pub(crate) key: Vec<u8>,
    /// `b`
    pub(crate) key_binary: bool,
    /// `q`
    pub(crate) noreply: bool,
    /// `v`
    pub(crate) value: bool,
    /// An `O` token was too long (mg, ma): answer the error after running.
    pub(crate) opaque_too_long: bool,
    /// `T` and `N` resolved to server time.
    pub(crate) t_exp: Option<u32>,
    pub(crate) n_exp: u32,
    /// ma: increment (else decrement).
    pub(crate) incr: bool,
    /// ms: stored as a CAS (counts in the cas stats).
    pub(crate) cas_mode: bool,
    /// N was given (mg, ma).
    pub(crate) vivify: bool,
}

/// What a reply slot of a binary request renders.
pub struct BinReply {
    pub kind: BinKind,
    /// The request's opcode, echoed in the response.
    pub opcode: u8,
    pub opaque: u32,
    pub quiet: bool,
    pub extra: BinExtra,
}

/// Which answer a [`BinReply`] waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinKind {
    /// get/getk/gat/gatk/touch (and quiet forms).
    Get {
        with_key: bool,
        with_value: bool,
        touch: bool,
    },
    /// set/add/replace/append/prepend and their CAS form.
    Store(Op),
    Delete,
    Arith {
        incr: bool,
    },
    /// flush: every shard answers; the last one renders.
    Flush,
    /// stats fan-out: `extra` holds the aggregate.
    Stats,
}

/// Data a reply keeps beyond its kind.
pub enum BinExtra {
    None,
    /// getk/gatk: the key, answered on a miss.
    Key(Box<[u8]>),
    Stats(Box<StatsReply>),
}

/// Stats that describe a size, an age or a state rather than count
/// something: over several shards the largest is the meaningful one, not
/// the sum.
fn takes_max(name: &str) -> bool {
    [
        "age",
        "_time",
        "chunk_size",
        "chunks_per_page",
        "hash_power_level",
        "hash_is_expanding",
        "_running",
        "active_slabs",
    ]
    .iter()
    .any(|s| name.ends_with(s))
}

/// Sums `name value` lines from several shards. Values that are not numbers
/// keep the first shard's text; sizes and ages take the maximum. A line the
/// plugin typed ([`StatType`]) combines by its type instead: counters and
/// gauges are summed, maxima take the largest, text is left out (it is
/// shown per shard only, `stats shards`).
///
/// The order is every shard's order: a name one shard reports and the
/// shards before it did not goes right after the name that precedes it in
/// that shard's lines (first when none does). So `stats slabs` keeps the
/// classes before the totals, and classes that only some shards have take
/// their places among the others.
#[derive(Default)]
pub struct Aggregate {
    pub values: BTreeMap<String, Agg>,
    order: Vec<String>,
}

pub enum Agg {
    Num(u64),
    Text(String),
}

impl Aggregate {
    pub fn add_lines(&mut self, text: &[u8]) {
        // Where this shard's next new name goes in `order`.
        let mut at = 0;
        // The type the previous line declared for this one.
        let mut declared = None;
        for line in String::from_utf8_lossy(text).lines() {
            let line = line.trim();
            if let Some(t) = StatType::declared_by(line) {
                declared = Some(t);
                continue;
            }
            let typed = declared.take();
            let Some((name, value)) = line.split_once(' ') else {
                continue;
            };
            let max = match typed {
                None => takes_max(name),
                Some(StatType::Counter | StatType::Gauge) => false,
                Some(StatType::Max) => true,
                Some(StatType::Text) => continue,
            };
            let value = value.trim();
            match (self.values.get_mut(name), value.parse::<u64>()) {
                (Some(old), parsed) => {
                    if let (Agg::Num(old), Ok(v)) = (old, parsed) {
                        *old = if max {
                            (*old).max(v)
                        } else {
                            // A plugin's figure is not trusted not to overflow.
                            old.wrapping_add(v)
                        };
                    }
                    // Usually the name right at `at`; search only otherwise.
                    at = if self.order.get(at).map(String::as_str) == Some(name) {
                        at + 1
                    } else {
                        self.order
                            .iter()
                            .position(|n| n == name)
                            .map_or(at, |i| i + 1)
                    };
                }
                (None, parsed) => {
                    self.order.insert(at, name.to_string());
                    at += 1;
                    let v = match parsed {
                        Ok(v) => Agg::Num(v),
                        Err(_) => Agg::Text(value.to_string()),
                    };
                    self.values.insert(name.to_string(), v);
                }
            }
        }
    }

    pub fn take(&mut self, name: &str) -> Option<String> {
        self.values.remove(name).map(|v| match v {
            Agg::Num(n) => n.to_string(),
            Agg::Text(t) => t,
        })
    }

    /// Remaining stats in the order first seen.
    pub fn drain(&mut self) -> Vec<(String, String)> {
        let order = std::mem::take(&mut self.order);
        order
            .into_iter()
            .filter_map(|n| self.take(&n).map(|v| (n, v)))
            .collect()
    }
}
