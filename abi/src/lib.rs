//! The wasmcached plugin ABI, versions 1 to 8: the byte layout of everything
//! that crosses the host/guest boundary.
//!
//! This crate is the single source of truth for the layout; `docs/plugin-abi.md`
//! describes the same bytes for authors in other languages. The host and the Rust
//! SDK (`wasmcached-sdk`, which re-exports this crate as `wasmcached_sdk::abi`)
//! both encode and decode through the functions here, so they cannot drift.
//!
//! All integers are little-endian and records are packed (no padding, no
//! alignment requirement): readers use `from_le_bytes` on byte slices.
//!
//! `no_std` (it needs only `alloc`, for the encoders' `Vec<u8>` outputs).

#![no_std]
#![deny(missing_docs)]

extern crate alloc;

pub mod metrics;
pub use metrics::METRICS_VERSION;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Value returned by the guest's `wmc_abi_version` export: the version this
/// crate describes (and the Rust SDK speaks).
///
/// Version 2 keeps every byte offset of version 1 and gives meaning to
/// fields version 1 reserved, for the meta protocol: request mflags bits 2..=6
/// (with `aux` and, per op, `delta` and the value bytes), response iflags
/// bits 1..=5 and response bytes 28..32 (`prev_exptime`). A host speaks both;
/// it never sends a version-1 plugin a request that needs version 2.
///
/// Version 3 is version 2 plus two optional exports, `wmc_dump` and
/// `wmc_load`, that move a shard's items between instances as [`Item`]
/// records (used when the server swaps in a new plugin). No v1/v2 byte moves.
///
/// Version 4 is version 3 plus held values: a response with
/// [`iflag::VALUE_REF`] carries the address of its value in the plugin's
/// memory instead of the bytes, so a large value is not copied into the
/// answer only for the host to copy it out again. No v3 byte moves.
///
/// Version 5 is version 4 plus one optional export, `wmc_iter`, that lists
/// a shard's items without changing them, a bounded chunk of [`ItemMeta`]
/// records per call from a cursor the host keeps (memcached's
/// `lru_crawler metadump` and `stats cachedump`), and memcached's allocator
/// and LRU settings as [`Hints`] after the init record's config string (its
/// reserved field becomes their length). No v4 byte moves.
///
/// Version 6 is version 5 plus two request mflags, [`mflag::LOG_LOOKUP`]
/// and [`mflag::LOG_EVICTIONS`], which a host sets only while someone
/// watches (memcached's `watch fetchers|mutations|evictions`), and one
/// host import, `log_event`, through which the plugin reports its lookups,
/// evictions and the size an append left ([`Event`]). No v5 byte moves.
///
/// Version 7 is version 6 plus a meaning for the byte [`Item`] records
/// reserved: `refs`, the item's recency count in the dumping plugin's
/// eviction policy (CLOCK counter, LRU segment), so that a warm restart
/// (`-e`) or a reload into the same plugin keeps which items the policy
/// protects. A host zeroes it for a plugin of an older version. No v6 byte
/// moves.
///
/// Version 8 is version 7 plus one optional export, `wmc_metrics`, that
/// describes metrics whose values the plugin keeps in its own memory
/// ([`metrics`]). No v7 byte moves.
pub const ABI_VERSION: u32 = 8;

/// The ABI versions a host accepts from a plugin.
pub const SUPPORTED_ABI_VERSIONS: [u32; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

/// The first ABI version whose [`Item`] records carry `refs`.
pub const ITEM_REFS_VERSION: u32 = 7;

/// The first ABI version with the `log_event` import and its mflags.
pub const LOG_EVENT_VERSION: u32 = 6;

/// The first ABI version with item listing (`wmc_iter`).
pub const ITER_VERSION: u32 = 5;

/// The first ABI version whose init record carries [`Hints`].
pub const HINTS_VERSION: u32 = 5;

/// The first ABI version with held values ([`iflag::VALUE_REF`]).
pub const VALUE_REF_VERSION: u32 = 4;

/// The first ABI version with item dump/load (`wmc_dump`, `wmc_load`).
pub const DUMP_LOAD_VERSION: u32 = 3;

/// Export names (guest → host).
pub mod export {
    /// The plugin's linear memory, which the host reads and writes.
    pub const MEMORY: &str = "memory";
    /// `wmc_abi_version() -> i32`: the ABI version the plugin speaks (1..=8).
    pub const ABI_VERSION: &str = "wmc_abi_version";
    /// `wmc_input(size: i32) -> i32`: the address of a buffer of at least
    /// `size` bytes the host writes the next init record, batch or chunk into
    /// (0 when the plugin has no memory for it).
    pub const INPUT: &str = "wmc_input";
    /// `wmc_init(len: i32) -> i32`: reads the [`Init`](super::Init) record
    /// in the input buffer; 0 accepts, anything else refuses to start.
    pub const INIT: &str = "wmc_init";
    /// `wmc_batch(len: i32) -> i64`: handles the request batch in the input
    /// buffer; returns the response batch as `(ptr << 32) | len`.
    pub const BATCH: &str = "wmc_batch";
    /// Optional: `wmc_tick(now: i32)`, called once a second with the server clock.
    pub const TICK: &str = "wmc_tick";
    /// Optional: `wmc_timer(token: i64)`, called when a timer set with the
    /// `timer_set` import fires.
    pub const TIMER: &str = "wmc_timer";
    /// Optional: `wmc_stats(group: i32) -> i64`: `name value` lines for a
    /// [`stats_group`](super::stats_group), as `(ptr << 32) | len`.
    pub const STATS: &str = "wmc_stats";
    /// v3, optional: `wmc_dump(max_bytes: i32) -> i64`, the next chunk of items.
    pub const DUMP: &str = "wmc_dump";
    /// v3, optional: `wmc_load(len: i32) -> i32`, store a chunk of items.
    pub const LOAD: &str = "wmc_load";
    /// v5, optional: `wmc_iter(cursor: i64, max_bytes: i32) -> i64`, the
    /// next chunk of an item listing.
    pub const ITER: &str = "wmc_iter";
    /// v8, optional: `() -> i64`, the metrics descriptor block as
    /// `(ptr << 32) | len` (see [`crate::metrics`]).
    pub const METRICS: &str = "wmc_metrics";
}

/// Special values `wmc_dump` returns instead of a `(ptr << 32) | len` (both
/// lie outside any 4 GiB memory, so they cannot be mistaken for a chunk).
pub mod dump_status {
    /// The plugin exports `wmc_dump` but cannot dump its items.
    pub const UNSUPPORTED: i64 = -1;
    /// The dump failed (e.g. no memory for the chunk); the host aborts it.
    pub const FAILED: i64 = -2;
}

/// Special values `wmc_iter` returns instead of a `(ptr << 32) | len`
/// (outside any 4 GiB memory, like [`dump_status`]).
pub mod iter_status {
    /// The plugin exports `wmc_iter` but cannot list its items.
    pub const UNSUPPORTED: i64 = -1;
    /// This chunk failed (e.g. no memory for it); the listing ends here.
    pub const FAILED: i64 = -2;
}

/// Return codes of `wmc_load`.
pub mod load_status {
    /// Every record of the chunk was taken (stored, or dropped as expired or
    /// too large for this store, as a `set` of it would have been).
    pub const OK: i32 = 0;
    /// Out of memory: not every record could be stored. The host stops loading.
    pub const FULL: i32 = 1;
    /// The plugin exports `wmc_load` but cannot load items.
    pub const UNSUPPORTED: i32 = 2;
    /// The chunk is not a well-formed sequence of item records.
    pub const MALFORMED: i32 = 3;
}

/// Import names (host → guest), all in module [`import::MODULE`].
pub mod import {
    /// The import module every host function lives in.
    pub const MODULE: &str = "wasmcached";
    /// `log(level: i32, ptr: i32, len: i32)`
    pub const LOG: &str = "log";
    /// `now() -> i32`: the server clock (seconds since start, memcached's `current_time`).
    pub const NOW: &str = "now";
    /// `timer_set(token: i64, delay_ms: i32)`: call `wmc_timer(token)` after `delay_ms`.
    pub const TIMER_SET: &str = "timer_set";
    /// v6: `(ptr: i32, len: i32)`, one [`super::Event`] record.
    pub const LOG_EVENT: &str = "log_event";
}

/// Log levels for the `log` import.
pub mod log_level {
    /// Errors: shown with `-v`; those logged by a call that then traps are
    /// quoted in the host's line about the fault (how a panic message shows).
    pub const ERROR: i32 = 0;
    /// Warnings: shown with `-vv`.
    pub const WARN: i32 = 1;
    /// Information: shown with `-vv`.
    pub const INFO: i32 = 2;
    /// Debugging detail: shown with `-vvv`.
    pub const DEBUG: i32 = 3;
}

/// Storage operations. Protocol-neutral: the host maps text, meta and binary
/// commands onto these.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Read an item: Hit (key echoed, value, flags, CAS, exptime) or Miss.
    /// Text `get`/`gets`, meta `mg`, binary GET.
    Get = 1,
    /// Store unconditionally: Stored. With a non-zero `cas` it behaves as [`Op::Cas`].
    Set = 2,
    /// Store only if no live item has the key: Stored or NotStored.
    Add = 3,
    /// Store only if a live item has the key: Stored or NotStored; with a
    /// non-zero `cas` it behaves as [`Op::Cas`].
    Replace = 4,
    /// Add the value after the item's: Stored or NotStored (no item, or the
    /// result would be too large). Keeps the item's flags and exptime.
    Append = 5,
    /// Add the value before the item's; otherwise as [`Op::Append`].
    Prepend = 6,
    /// Store only if the item's CAS equals `cas`.
    Cas = 7,
    /// Remove the item: Deleted or NotFound (Exists when a non-zero `cas`
    /// does not match).
    Delete = 8,
    /// Add `delta` to the decimal value: Number (the new value), NotFound
    /// or NonNumeric. Wraps at 2^64.
    Incr = 9,
    /// Subtract `delta` from the decimal value; floors at 0. As [`Op::Incr`].
    Decr = 10,
    /// Update exptime, no value returned.
    Touch = 11,
    /// Get and touch: update exptime and return the value.
    Gat = 12,
    /// Invalidate items: `exptime` is the resolved server time of the flush
    /// (0 = now). Key is empty.
    FlushAll = 13,
    /// Change the memory budget of this shard to `delta` bytes. Key is empty.
    MemLimit = 14,
}

impl Op {
    /// The op of a request record's `op` byte; `None` for one this ABI
    /// version does not define (answer it with [`Status::Error`]).
    pub fn from_u8(b: u8) -> Option<Op> {
        Some(match b {
            1 => Op::Get,
            2 => Op::Set,
            3 => Op::Add,
            4 => Op::Replace,
            5 => Op::Append,
            6 => Op::Prepend,
            7 => Op::Cas,
            8 => Op::Delete,
            9 => Op::Incr,
            10 => Op::Decr,
            11 => Op::Touch,
            12 => Op::Gat,
            13 => Op::FlushAll,
            14 => Op::MemLimit,
            _ => return None,
        })
    }
}

/// Request meta flags (`Request::mflags`), room for the meta protocol.
pub mod mflag {
    /// The caller does not need the value bytes (meta `mg` without `v`).
    pub const NO_VALUE: u32 = 1 << 0;
    /// Do not bump the item in the LRU and do not update its last-access time (meta `u`).
    pub const NO_BUMP: u32 = 1 << 1;
    /// v2. Get/Gat: on a miss create an empty item (flags 0) expiring at `aux`
    /// and answer Hit with `iflag::CREATED | iflag::WON`, and its token marked sent.
    /// Incr/Decr: on a miss create the item with the value bytes (the initial number
    /// as ASCII digits) expiring at `aux`, and answer Number with `iflag::CREATED`.
    pub const VIVIFY: u32 = 1 << 2;
    /// v2. Delete: instead of removing the item mark it stale, clear its
    /// win-token-sent mark and give it a new CAS (answer Deleted).
    /// Cas: if `cas` is lower than the item's CAS, store anyway but mark the new
    /// item stale, keep the old item's exptime and win-token-sent mark.
    pub const INVALIDATE: u32 = 1 << 3;
    /// v2. Get/Gat: `delta` holds a server time; if the item's token was not yet
    /// sent, it was not just created, its exptime is non-zero and lower than that
    /// time, the client wins (answer `iflag::WON` and mark the token sent). The
    /// exptime compared is the one before a Gat's update unless `RECACHE_NEW_TTL`.
    pub const RECACHE: u32 = 1 << 4;
    /// v2. Stores: the key is binary (sent base64 encoded by a meta client); kept
    /// with the item and reported as `iflag::KEY_BINARY`.
    pub const KEY_BINARY: u32 = 1 << 5;
    /// v2. Incr/Decr: also set the item's exptime to `exptime` on success.
    /// Delete with `INVALIDATE`: also set the exptime to `exptime`.
    pub const SET_TTL: u32 = 1 << 6;
    /// v2. With `RECACHE` on Gat: compare the exptime after the update.
    pub const RECACHE_NEW_TTL: u32 = 1 << 7;
    /// v2. Delete: `cas` is a compare value even when it is 0 (meta `C0`).
    pub const HAS_CAS: u32 = 1 << 8;
    /// v2. Get/Gat from a meta `mg`: hand a stale item's win token to the first
    /// reader (`iflag::WON`, token marked sent), as memcached's mg does. Text
    /// get and meta `me` never touch the token. Advisory: a host leaves it
    /// out for a v1 plugin, which has no stale items.
    pub const META_GET: u32 = 1 << 9;
    /// v2. Get/Gat: the client gets an error instead of this answer (memcached
    /// notices a bad meta flag only after the fetch): apply the request's
    /// changes but never hand out or mark the win token (no `iflag::WON`).
    pub const NO_TOKEN: u32 = 1 << 10;
    /// v6. Any op with a key: report the lookup this request makes
    /// (memcached's `do_item_get`: found or not) and, for a store that
    /// stored an Append/Prepend, the value length it left, through
    /// `log_event`. Set only while a watcher of `fetchers` or `mutations`
    /// is connected; never sent below v6.
    pub const LOG_LOOKUP: u32 = 1 << 11;
    /// v6. Report every item this request evicts to make room, through
    /// `log_event`. Set only while a watcher of `evictions` is connected;
    /// never sent below v6.
    pub const LOG_EVICTIONS: u32 = 1 << 12;
    /// The bits version 1 defines; a v1 plugin is never sent any other.
    pub const V1_MASK: u32 = NO_VALUE | NO_BUMP;
}

/// Response status codes.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// A store (Set … Cas, or an Incr/Decr's new value) was done.
    Stored = 0,
    /// The store's condition failed (Add of a live key, Replace/Append/Prepend of a missing one).
    NotStored = 1,
    /// A CAS compare failed: the item has another CAS value.
    Exists = 2,
    /// Cas, Delete, Touch, Incr/Decr of a key that has no live item.
    NotFound = 3,
    /// Delete removed the item.
    Deleted = 4,
    /// Touch set the item's exptime.
    Touched = 5,
    /// Item found; key and value follow, flags/cas/exptime are set.
    Hit = 6,
    /// Get/Gat found no live item.
    Miss = 7,
    /// incr/decr result: value holds the new value as ASCII decimal.
    Number = 8,
    /// incr/decr on a value that is not a decimal number.
    NonNumeric = 9,
    /// Item larger than the store accepts.
    TooLarge = 10,
    /// No memory to store the item (eviction disabled or impossible).
    OutOfMemory = 11,
    /// The operation completed (flush_all, mem_limit).
    Ok = 12,
    /// Any other failure: value holds a message for the log / `SERVER_ERROR`.
    Error = 13,
}

impl Status {
    /// The status of a response record's `status` byte; `None` for an
    /// unknown one (the host refuses such a response batch).
    pub fn from_u8(b: u8) -> Option<Status> {
        Some(match b {
            0 => Status::Stored,
            1 => Status::NotStored,
            2 => Status::Exists,
            3 => Status::NotFound,
            4 => Status::Deleted,
            5 => Status::Touched,
            6 => Status::Hit,
            7 => Status::Miss,
            8 => Status::Number,
            9 => Status::NonNumeric,
            10 => Status::TooLarge,
            11 => Status::OutOfMemory,
            12 => Status::Ok,
            13 => Status::Error,
            _ => return None,
        })
    }
}

/// Response item flags (`Response::iflags`), room for the meta protocol.
pub mod iflag {
    /// The item had been fetched before this request (meta `h`).
    pub const FETCHED: u8 = 1 << 0;
    /// v2. The item is stale (marked by Delete with `INVALIDATE`, meta `X`).
    pub const STALE: u8 = 1 << 1;
    /// v2. The item's win token had been sent before this request (meta `Z`).
    pub const TOKEN_SENT: u8 = 1 << 2;
    /// v2. This request won the right to recache the item (meta `W`): by
    /// vivifying it, by `RECACHE`, or by being the first to see it stale.
    pub const WON: u8 = 1 << 3;
    /// v2. The item was created by this request (`VIVIFY`).
    pub const CREATED: u8 = 1 << 4;
    /// v2. The key was stored as binary (`mflag::KEY_BINARY`).
    pub const KEY_BINARY: u8 = 1 << 5;
    /// v4. The value bytes stay in the plugin's memory: the record holds
    /// their address (`u32`) where the bytes would be, and `value_len` is
    /// the value's length. The host reads them before it calls the plugin
    /// again, so they must stay allocated and unchanged until then. Without
    /// meaning (ignored) in the records of a v1–v3 plugin.
    pub const VALUE_REF: u8 = 1 << 6;
}

/// Init flags (`Init::flags`).
pub mod init_flag {
    /// CAS values are kept (memcached without `-C`).
    pub const CAS: u32 = 1 << 0;
    /// Never evict: answer OutOfMemory instead (memcached `-M`).
    pub const NO_EVICT: u32 = 1 << 1;
}

/// Stats groups passed to `wmc_stats(group)`.
pub mod stats_group {
    /// Plain `stats`: the plugin's own figures, appended to the host's.
    pub const GENERAL: i32 = 0;
    /// `stats items`.
    pub const ITEMS: i32 = 1;
    /// `stats slabs`.
    pub const SLABS: i32 = 2;
    /// `stats sizes`.
    pub const SIZES: i32 = 3;
}

/// How the host combines one stat over the shards, when the plugin says so:
/// a line of its own, [`StatType::declaration`], right before the stat's
/// `name value` line. A stat line without one combines by its name (the
/// rule every version had: summed, sizes, ages and times the maximum).
///
/// The declaration has no space, and hosts have always skipped stat lines
/// without one: an older host reads a typed stat as an untyped one, so this
/// needs no new ABI version and works with every version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatType {
    /// Counts something: summed over the shards.
    Counter,
    /// A level (items, bytes): summed over the shards.
    Gauge,
    /// A high-water mark, a size, a time: the largest shard's.
    Max,
    /// A label: shown per shard only, never combined.
    Text,
}

impl StatType {
    /// Every type, for readers that look a declaration up.
    pub const ALL: [StatType; 4] = [
        StatType::Counter,
        StatType::Gauge,
        StatType::Max,
        StatType::Text,
    ];

    /// The line, without its `\n`, that gives the next stat line this type.
    pub const fn declaration(self) -> &'static str {
        match self {
            StatType::Counter => "#counter",
            StatType::Gauge => "#gauge",
            StatType::Max => "#max",
            StatType::Text => "#text",
        }
    }

    /// The type `line` (already trimmed) declares, if it is a declaration.
    pub fn declared_by(line: &str) -> Option<StatType> {
        StatType::ALL.into_iter().find(|t| t.declaration() == line)
    }
}

/// Bytes of an [`Init`] record before its config string.
pub const INIT_HEADER: usize = 40;
/// Bytes of a batch (or dump/load chunk) before its first record: the `u32` count.
pub const BATCH_HEADER: usize = 4;
/// Bytes of a [`Request`] record before its key.
pub const REQUEST_HEADER: usize = 40;
/// Bytes of a [`Response`] record before its key.
pub const RESPONSE_HEADER: usize = 32;
/// v3: bytes of an [`Item`] record before its key.
pub const ITEM_HEADER: usize = 28;
/// v5: the header of a `wmc_iter` chunk, and of one [`ItemMeta`] record.
pub const ITER_HEADER: usize = 16;
/// v5: bytes of an [`ItemMeta`] record before its key.
pub const ITEM_META_HEADER: usize = 32;

/// Arguments of `wmc_init`, written into the input buffer.
///
/// ```text
/// off len field
///  0   4  abi_version     ABI the host speaks (1)
///  4   4  shard_id        0-based
///  8   4  shard_count
/// 12   4  flags           init_flag::*
/// 16   8  memory_budget   bytes this shard may use for items
/// 24   4  max_item_size   -I, bytes
/// 28   4  now             server clock at init
/// 32   4  hints_len       v5: length of the hints block after the config
///                         string ([`Hints`]); 0 (reserved) before v5
/// 36   4  config_len      then config_len bytes of --plugin-config,
///                         then (v5) hints_len bytes of hints
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Init<'a> {
    /// The ABI version the host speaks to this plugin (the plugin's own).
    pub abi_version: u32,
    /// This shard's number, 0-based.
    pub shard_id: u32,
    /// How many shards (instances) the server runs.
    pub shard_count: u32,
    /// [`init_flag`] bits.
    pub flags: u32,
    /// Bytes this shard may use for items (`-m` divided over the shards).
    pub memory_budget: u64,
    /// Largest item the host accepts (`-I`), bytes.
    pub max_item_size: u32,
    /// The server clock at init: seconds since the server started.
    pub now: u32,
    /// `--plugin-config` as given on the command line (not necessarily UTF-8).
    pub config: &'a [u8],
    /// v5: an encoded [`Hints`] block (empty: every hint at memcached's
    /// default). Only sent when `abi_version >= HINTS_VERSION`: `encode`
    /// leaves it out for older versions, whose record is byte for byte
    /// what it was, and `decode` ignores bytes 32..36 for them.
    pub hints: &'a [u8],
}

impl<'a> Init<'a> {
    fn sends_hints(&self) -> bool {
        self.abi_version >= HINTS_VERSION
    }

    /// The length of the record [`Init::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        INIT_HEADER
            + self.config.len()
            + if self.sends_hints() {
                self.hints.len()
            } else {
                0
            }
    }

    /// Appends the record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.abi_version.to_le_bytes());
        out.extend_from_slice(&self.shard_id.to_le_bytes());
        out.extend_from_slice(&self.shard_count.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.memory_budget.to_le_bytes());
        out.extend_from_slice(&self.max_item_size.to_le_bytes());
        out.extend_from_slice(&self.now.to_le_bytes());
        let hints: &[u8] = if self.sends_hints() { self.hints } else { &[] };
        out.extend_from_slice(&(hints.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.config.len() as u32).to_le_bytes());
        out.extend_from_slice(self.config);
        out.extend_from_slice(hints);
    }

    /// Reads a record; `None` if `b` is shorter than its lengths say.
    pub fn decode(b: &'a [u8]) -> Option<Init<'a>> {
        if b.len() < INIT_HEADER {
            return None;
        }
        let config_len = u32_at(b, 36) as usize;
        let config_end = INIT_HEADER.checked_add(config_len)?;
        let config = b.get(INIT_HEADER..config_end)?;
        let abi_version = u32_at(b, 0);
        let hints = if abi_version >= HINTS_VERSION {
            let hints_len = u32_at(b, 32) as usize;
            b.get(config_end..config_end.checked_add(hints_len)?)?
        } else {
            &[]
        };
        Some(Init {
            abi_version,
            shard_id: u32_at(b, 4),
            shard_count: u32_at(b, 8),
            flags: u32_at(b, 12),
            memory_budget: u64_at(b, 16),
            max_item_size: u32_at(b, 24),
            now: u32_at(b, 28),
            config,
            hints,
        })
    }
}

/// v5: memcached's allocator, hash table and LRU settings, handed to the
/// plugin as hints in the init record (after the config string). A plugin
/// honours those that map onto its store and ignores the rest; a hint the
/// host did not send keeps memcached 1.6.18's default (`Hints::default()`).
///
/// The block is a sequence of records, back to back:
///
/// ```text
/// off len field
///  0   2  tag     hint_tag::*
///  2   2  len     bytes of the value
///  4   …  value   u32 (len 4), f64 (len 8, IEEE 754) or a list of u32
/// ```
///
/// Booleans are u32 0 or 1. A reader skips tags it does not know and
/// records of a known tag whose length is not the expected one (keeping
/// the default), so later hosts may add tags without a new ABI version.
#[derive(Clone, Debug, PartialEq)]
pub struct Hints {
    /// `-f`: the chunk size growth factor between slab classes (1.25).
    pub growth_factor: f64,
    /// `-n`: the minimum space for key, value and flags of an item (48).
    pub chunk_size: u32,
    /// `-o hashpower`: the hash table's initial size as a power of two;
    /// 0 when not given (memcached then starts at 16).
    pub hashpower: u32,
    /// Cleared by `-o no_hashexpand`: the hash table may grow (true).
    pub hash_expand: bool,
    /// `-o hash_algorithm`: 0 jenkins, 1 murmur3 (default), 2 xxh3.
    pub hash_algorithm: u32,
    /// `-o slab_reassign` (true in memcached 1.6).
    pub slab_reassign: bool,
    /// `-o slab_automove` 0, 1 (default) or 2.
    pub slab_automove: u32,
    /// `-o slab_automove_ratio` (0.8).
    pub slab_automove_ratio: f64,
    /// `-o slab_automove_window` (30).
    pub slab_automove_window: u32,
    /// `-o slab_automove_freeratio` (0.01).
    pub slab_automove_freeratio: f64,
    /// `-o slab_chunk_max`, bytes (524288: half of memcached's 1 MB page).
    pub slab_chunk_max: u32,
    /// `-o slab_sizes`: explicit slab class sizes in bytes (empty: from
    /// `growth_factor` and `chunk_size`).
    pub slab_sizes: Vec<u32>,
    /// `-o lru_crawler` / `no_lru_crawler` (true).
    pub lru_crawler: bool,
    /// `-o lru_crawler_sleep`, microseconds (100).
    pub lru_crawler_sleep: u32,
    /// `-o lru_crawler_tocrawl`, items per class per run; 0 = all (0).
    pub lru_crawler_tocrawl: u32,
    /// `-o lru_maintainer` / `no_lru_maintainer` (true).
    pub lru_maintainer: bool,
    /// The segmented LRU (hot/warm/cold) is on (true; `-o modern`).
    pub lru_segmented: bool,
    /// `-o hot_lru_pct`: percent of a class's memory for the hot LRU (20).
    pub hot_lru_pct: u32,
    /// `-o warm_lru_pct`: percent for the warm LRU (40).
    pub warm_lru_pct: u32,
    /// `-o hot_max_factor` (0.2).
    pub hot_max_factor: f64,
    /// `-o warm_max_factor` (2.0).
    pub warm_max_factor: f64,
    /// The temporary LRU is on (`-o temporary_ttl` given; false).
    pub temp_lru: bool,
    /// `-o temporary_ttl`, seconds (61).
    pub temporary_ttl: u32,
    /// `-o tail_repair_time`, seconds; 0 = off (0).
    pub tail_repair_time: u32,
    /// `-L`: the host asked for huge pages for the plugin's memory (false).
    pub large_pages: bool,
}

impl Default for Hints {
    /// memcached 1.6.18's defaults.
    fn default() -> Self {
        Hints {
            growth_factor: 1.25,
            chunk_size: 48,
            hashpower: 0,
            hash_expand: true,
            hash_algorithm: 1,
            slab_reassign: true,
            slab_automove: 1,
            slab_automove_ratio: 0.8,
            slab_automove_window: 30,
            slab_automove_freeratio: 0.01,
            slab_chunk_max: 512 * 1024,
            slab_sizes: Vec::new(),
            lru_crawler: true,
            lru_crawler_sleep: 100,
            lru_crawler_tocrawl: 0,
            lru_maintainer: true,
            lru_segmented: true,
            hot_lru_pct: 20,
            warm_lru_pct: 40,
            hot_max_factor: 0.2,
            warm_max_factor: 2.0,
            temp_lru: false,
            temporary_ttl: 61,
            tail_repair_time: 0,
            large_pages: false,
        }
    }
}

/// Tags of the v5 hints block ([`Hints`]), with the value's type.
pub mod hint_tag {
    /// f64
    pub const GROWTH_FACTOR: u16 = 1;
    /// u32
    pub const CHUNK_SIZE: u16 = 2;
    /// u32
    pub const HASHPOWER: u16 = 3;
    /// bool
    pub const HASH_EXPAND: u16 = 4;
    /// u32
    pub const HASH_ALGORITHM: u16 = 5;
    /// bool
    pub const SLAB_REASSIGN: u16 = 6;
    /// u32
    pub const SLAB_AUTOMOVE: u16 = 7;
    /// f64
    pub const SLAB_AUTOMOVE_RATIO: u16 = 8;
    /// u32
    pub const SLAB_AUTOMOVE_WINDOW: u16 = 9;
    /// f64
    pub const SLAB_AUTOMOVE_FREERATIO: u16 = 10;
    /// u32
    pub const SLAB_CHUNK_MAX: u16 = 11;
    /// list of u32
    pub const SLAB_SIZES: u16 = 12;
    /// bool
    pub const LRU_CRAWLER: u16 = 13;
    /// u32
    pub const LRU_CRAWLER_SLEEP: u16 = 14;
    /// u32
    pub const LRU_CRAWLER_TOCRAWL: u16 = 15;
    /// bool
    pub const LRU_MAINTAINER: u16 = 16;
    /// bool
    pub const LRU_SEGMENTED: u16 = 17;
    /// u32
    pub const HOT_LRU_PCT: u16 = 18;
    /// u32
    pub const WARM_LRU_PCT: u16 = 19;
    /// f64
    pub const HOT_MAX_FACTOR: u16 = 20;
    /// f64
    pub const WARM_MAX_FACTOR: u16 = 21;
    /// bool
    pub const TEMP_LRU: u16 = 22;
    /// u32
    pub const TEMPORARY_TTL: u16 = 23;
    /// u32
    pub const TAIL_REPAIR_TIME: u16 = 24;
    /// bool
    pub const LARGE_PAGES: u16 = 25;
}

impl Hints {
    /// memcached's slab class table for these hints (`slabs_init` with
    /// `-n`, `-f`, `-o slab_chunk_max` and `-o slab_sizes`): the chunk
    /// size of each class, indexed by class id (index 0, memcached's page
    /// pool, is 0). A store counts items in these classes for memcached's
    /// per-class stats; the host answers `slabs reassign` with them.
    pub fn memcached_class_sizes(&self) -> Vec<u32> {
        /// memcached's `settings.slab_page_size`.
        const PAGE_SIZE: u32 = 1024 * 1024;
        /// `MAX_NUMBER_OF_SLAB_CLASSES` (classes 1..=63).
        const MAX_CLASSES: usize = 64;
        /// `sizeof(item)` on 64-bit memcached.
        const ITEM_HEADER: u32 = 48;
        const ALIGN: u32 = 8;
        let chunk_max = self.slab_chunk_max.clamp(ALIGN, PAGE_SIZE);
        let factor = if self.growth_factor > 1.0 {
            self.growth_factor
        } else {
            1.25
        };
        let mut sizes = Vec::with_capacity(MAX_CLASSES);
        sizes.push(0u32);
        let mut size = ITEM_HEADER.saturating_add(self.chunk_size);
        let mut i = 0;
        while i + 1 < MAX_CLASSES - 1 {
            i += 1;
            if !self.slab_sizes.is_empty() {
                match self.slab_sizes.get(i - 1) {
                    Some(&s) if s != 0 => size = s,
                    _ => break,
                }
            } else if f64::from(size) >= f64::from(chunk_max) / factor {
                break;
            }
            if !size.is_multiple_of(ALIGN) {
                size += ALIGN - size % ALIGN;
            }
            sizes.push(size);
            if self.slab_sizes.is_empty() {
                size = (f64::from(size) * factor) as u32;
            }
        }
        sizes.push(chunk_max);
        sizes
    }

    /// Writes every hint (the host sends them all).
    pub fn encode(&self, out: &mut Vec<u8>) {
        use hint_tag::*;
        fn rec(out: &mut Vec<u8>, tag: u16, value: &[u8]) {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
            out.extend_from_slice(value);
        }
        let u = |out: &mut Vec<u8>, tag, v: u32| rec(out, tag, &v.to_le_bytes());
        let f = |out: &mut Vec<u8>, tag, v: f64| rec(out, tag, &v.to_bits().to_le_bytes());
        f(out, GROWTH_FACTOR, self.growth_factor);
        u(out, CHUNK_SIZE, self.chunk_size);
        u(out, HASHPOWER, self.hashpower);
        u(out, HASH_EXPAND, self.hash_expand.into());
        u(out, HASH_ALGORITHM, self.hash_algorithm);
        u(out, SLAB_REASSIGN, self.slab_reassign.into());
        u(out, SLAB_AUTOMOVE, self.slab_automove);
        f(out, SLAB_AUTOMOVE_RATIO, self.slab_automove_ratio);
        u(out, SLAB_AUTOMOVE_WINDOW, self.slab_automove_window);
        f(out, SLAB_AUTOMOVE_FREERATIO, self.slab_automove_freeratio);
        u(out, SLAB_CHUNK_MAX, self.slab_chunk_max);
        // A record holds at most 65535 bytes; memcached allows 63 sizes.
        let sizes: Vec<u8> = self
            .slab_sizes
            .iter()
            .take(u16::MAX as usize / 4)
            .flat_map(|s| s.to_le_bytes())
            .collect();
        rec(out, SLAB_SIZES, &sizes);
        u(out, LRU_CRAWLER, self.lru_crawler.into());
        u(out, LRU_CRAWLER_SLEEP, self.lru_crawler_sleep);
        u(out, LRU_CRAWLER_TOCRAWL, self.lru_crawler_tocrawl);
        u(out, LRU_MAINTAINER, self.lru_maintainer.into());
        u(out, LRU_SEGMENTED, self.lru_segmented.into());
        u(out, HOT_LRU_PCT, self.hot_lru_pct);
        u(out, WARM_LRU_PCT, self.warm_lru_pct);
        f(out, HOT_MAX_FACTOR, self.hot_max_factor);
        f(out, WARM_MAX_FACTOR, self.warm_max_factor);
        u(out, TEMP_LRU, self.temp_lru.into());
        u(out, TEMPORARY_TTL, self.temporary_ttl);
        u(out, TAIL_REPAIR_TIME, self.tail_repair_time);
        u(out, LARGE_PAGES, self.large_pages.into());
    }

    /// Reads a hints block: hints not in it keep memcached's defaults.
    /// `None` if a record runs past the end of the block.
    pub fn decode(mut b: &[u8]) -> Option<Hints> {
        use hint_tag::*;
        let mut h = Hints::default();
        while !b.is_empty() {
            if b.len() < 4 {
                return None;
            }
            let (tag, len) = (u16_at(b, 0), u16_at(b, 2) as usize);
            let v = b.get(4..4 + len)?;
            b = &b[4 + len..];
            let u = || (len == 4).then(|| u32_at(v, 0));
            let f = || (len == 8).then(|| f64::from_bits(u64_at(v, 0)));
            let set_u = |field: &mut u32| {
                if let Some(x) = u() {
                    *field = x
                }
            };
            let set_b = |field: &mut bool| {
                if let Some(x) = u() {
                    *field = x != 0
                }
            };
            let set_f = |field: &mut f64| {
                if let Some(x) = f() {
                    *field = x
                }
            };
            match tag {
                GROWTH_FACTOR => set_f(&mut h.growth_factor),
                CHUNK_SIZE => set_u(&mut h.chunk_size),
                HASHPOWER => set_u(&mut h.hashpower),
                HASH_EXPAND => set_b(&mut h.hash_expand),
                HASH_ALGORITHM => set_u(&mut h.hash_algorithm),
                SLAB_REASSIGN => set_b(&mut h.slab_reassign),
                SLAB_AUTOMOVE => set_u(&mut h.slab_automove),
                SLAB_AUTOMOVE_RATIO => set_f(&mut h.slab_automove_ratio),
                SLAB_AUTOMOVE_WINDOW => set_u(&mut h.slab_automove_window),
                SLAB_AUTOMOVE_FREERATIO => set_f(&mut h.slab_automove_freeratio),
                SLAB_CHUNK_MAX => set_u(&mut h.slab_chunk_max),
                SLAB_SIZES if len % 4 == 0 => {
                    h.slab_sizes = v.chunks_exact(4).map(|c| u32_at(c, 0)).collect()
                }
                LRU_CRAWLER => set_b(&mut h.lru_crawler),
                LRU_CRAWLER_SLEEP => set_u(&mut h.lru_crawler_sleep),
                LRU_CRAWLER_TOCRAWL => set_u(&mut h.lru_crawler_tocrawl),
                LRU_MAINTAINER => set_b(&mut h.lru_maintainer),
                LRU_SEGMENTED => set_b(&mut h.lru_segmented),
                HOT_LRU_PCT => set_u(&mut h.hot_lru_pct),
                WARM_LRU_PCT => set_u(&mut h.warm_lru_pct),
                HOT_MAX_FACTOR => set_f(&mut h.hot_max_factor),
                WARM_MAX_FACTOR => set_f(&mut h.warm_max_factor),
                TEMP_LRU => set_b(&mut h.temp_lru),
                TEMPORARY_TTL => set_u(&mut h.temporary_ttl),
                TAIL_REPAIR_TIME => set_u(&mut h.tail_repair_time),
                LARGE_PAGES => set_b(&mut h.large_pages),
                _ => {}
            }
        }
        Some(h)
    }
}

/// One operation of a batch.
///
/// ```text
/// off len field
///  0   1  op            Op
///  1   1  reserved      0
///  2   2  key_len
///  4   4  value_len
///  8   4  client_flags
/// 12   4  exptime       server time; 0 = never expires; already resolved by the host
/// 16   8  cas           compare value for Op::Cas (0 otherwise)
/// 24   8  delta         incr/decr amount; Op::MemLimit: new budget in bytes
/// 32   4  mflags        mflag::*
/// 36   4  aux           v2: vivify exptime with mflag::VIVIFY (0 otherwise; reserved in v1)
/// 40      key bytes, then value bytes
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request<'a> {
    /// The [`Op`] as its byte; [`Request::op`] decodes it (`None` for an op
    /// this ABI version does not know: answer [`Status::Error`]).
    pub op: u8,
    /// The key, 1..=250 bytes (empty for FlushAll and MemLimit). Points into
    /// the input buffer: copy it to keep it.
    pub key: &'a [u8],
    /// The value of a store (Set … Cas), the initial number of an Incr/Decr
    /// with [`mflag::VIVIFY`] (v2); empty otherwise. Points into the input
    /// buffer: copy it to keep it.
    pub value: &'a [u8],
    /// The opaque 32-bit client flags of a store, to give back on a Hit.
    pub client_flags: u32,
    /// When the item expires, in server time (seconds since the server
    /// started, what `now()` returns); 0 = never. Resolved by the host from
    /// the protocol's relative, absolute and negative forms: a value at or
    /// below now means already expired. Set for stores, Touch, Gat (the new
    /// exptime), FlushAll (when; 0 = now) and with [`mflag::SET_TTL`].
    pub exptime: u32,
    /// The compare value: Cas, and Set/Replace/Delete/Incr/Decr/Append/Prepend
    /// when non-zero (Delete also when 0 with [`mflag::HAS_CAS`]); 0 otherwise.
    pub cas: u64,
    /// Incr/Decr: the amount. MemLimit: the shard's new budget in bytes. v2
    /// Get/Gat with [`mflag::RECACHE`]: the recache threshold (server time).
    pub delta: u64,
    /// [`mflag`] bits: meta-protocol options (v2 and later), `watch`
    /// report requests (v6). Answer [`Status::Error`] for a bit you do not
    /// implement, except the advisory `LOG_LOOKUP` and `LOG_EVICTIONS`.
    pub mflags: u32,
    /// v2: with [`mflag::VIVIFY`], the exptime (server time) of the item
    /// created on a miss; 0 otherwise.
    pub aux: u32,
}

impl<'a> Request<'a> {
    /// The length of the record [`Request::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        REQUEST_HEADER + self.key.len() + self.value.len()
    }

    /// Appends the record (header, key, value) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_request_header(
            out,
            self.op,
            self.key,
            self.value.len() as u32,
            self.client_flags,
            self.exptime,
            self.cas,
            self.delta,
            self.mflags,
            self.aux,
        );
        out.extend_from_slice(self.value);
    }

    /// The op, if it is one this ABI version knows.
    pub fn op(&self) -> Option<Op> {
        Op::from_u8(self.op)
    }

    /// Decodes one request at the start of `b`; returns it and its encoded length.
    pub fn decode(b: &'a [u8]) -> Option<(Request<'a>, usize)> {
        if b.len() < REQUEST_HEADER {
            return None;
        }
        let key_len = u16_at(b, 2) as usize;
        let value_len = u32_at(b, 4) as usize;
        let end = REQUEST_HEADER
            .checked_add(key_len)?
            .checked_add(value_len)?;
        if b.len() < end {
            return None;
        }
        Some((
            Request {
                op: b[0],
                key: &b[REQUEST_HEADER..REQUEST_HEADER + key_len],
                value: &b[REQUEST_HEADER + key_len..end],
                client_flags: u32_at(b, 8),
                exptime: u32_at(b, 12),
                cas: u64_at(b, 16),
                delta: u64_at(b, 24),
                mflags: u32_at(b, 32),
                aux: u32_at(b, 36),
            },
            end,
        ))
    }
}

/// Writes a request header and key; the caller appends exactly `value_len`
/// value bytes. Lets the host copy a value straight from its read buffer.
#[allow(clippy::too_many_arguments)]
pub fn encode_request_header(
    out: &mut Vec<u8>,
    op: u8,
    key: &[u8],
    value_len: u32,
    client_flags: u32,
    exptime: u32,
    cas: u64,
    delta: u64,
    mflags: u32,
    aux: u32,
) {
    let mut h = [0u8; REQUEST_HEADER];
    h[0] = op;
    h[2..4].copy_from_slice(&(key.len() as u16).to_le_bytes());
    h[4..8].copy_from_slice(&value_len.to_le_bytes());
    h[8..12].copy_from_slice(&client_flags.to_le_bytes());
    h[12..16].copy_from_slice(&exptime.to_le_bytes());
    h[16..24].copy_from_slice(&cas.to_le_bytes());
    h[24..32].copy_from_slice(&delta.to_le_bytes());
    h[32..36].copy_from_slice(&mflags.to_le_bytes());
    h[36..40].copy_from_slice(&aux.to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(key);
}

/// The answer to one request; the batch response holds one per request, in order.
///
/// ```text
/// off len field
///  0   1  status        Status
///  1   1  iflags        iflag::*
///  2   2  key_len       Hit: the item's key (else 0)
///  4   4  value_len     Hit: value; Number: ASCII decimal; Error: message
///  8   4  client_flags  Hit
/// 12   4  exptime       Hit/Touched/Stored: the item's exptime (server time, 0 = never)
/// 16   8  cas           the item's CAS after the operation (0 if none)
/// 24   4  last_access   Hit: server time of the previous access
/// 28   4  prev_exptime  v2, Hit/Number/Deleted: the item's exptime before this
///                       request (reserved, 0, in v1)
/// 32      key bytes, then value bytes; v4 with iflag::VALUE_REF: key bytes,
///         then the value's address in the plugin's memory (4 bytes)
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response<'a> {
    /// The [`Status`] as its byte (`Status::Hit as u8`).
    pub status: u8,
    /// [`iflag`] bits (v2 and later, but FETCHED since v1); 0 when none apply.
    pub iflags: u8,
    /// Hit: the item's key (the host does not keep the request's); else empty.
    pub key: &'a [u8],
    /// Hit: the value; Number: the new value as ASCII decimal; Error: a
    /// message the host logs and shows as `SERVER_ERROR`; else empty.
    pub value: &'a [u8],
    /// Hit: the item's client flags.
    pub client_flags: u32,
    /// Hit, Touched, Stored: the item's exptime (server time, 0 = never).
    pub exptime: u32,
    /// The item's CAS value after the operation (0 if none or CAS is off).
    pub cas: u64,
    /// Hit: server time of the item's previous access (meta `l`).
    pub last_access: u32,
    /// v2: the item's exptime before this request.
    pub prev_exptime: u32,
}

impl<'a> Response<'a> {
    /// The length of the record [`Response::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        RESPONSE_HEADER + self.key.len() + self.value.len()
    }

    /// The status, if it is one this ABI version defines.
    pub fn status(&self) -> Option<Status> {
        Status::from_u8(self.status)
    }

    /// Appends the record (header, key, value) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_header(self.iflags, out);
        out.extend_from_slice(self.value);
    }

    /// The 32-byte header with `iflags`, then the key.
    fn encode_header(&self, iflags: u8, out: &mut Vec<u8>) {
        let mut h = [0u8; RESPONSE_HEADER];
        h[0] = self.status;
        h[1] = iflags;
        h[2..4].copy_from_slice(&(self.key.len() as u16).to_le_bytes());
        h[4..8].copy_from_slice(&(self.value.len() as u32).to_le_bytes());
        h[8..12].copy_from_slice(&self.client_flags.to_le_bytes());
        h[12..16].copy_from_slice(&self.exptime.to_le_bytes());
        h[16..24].copy_from_slice(&self.cas.to_le_bytes());
        h[24..28].copy_from_slice(&self.last_access.to_le_bytes());
        h[28..32].copy_from_slice(&self.prev_exptime.to_le_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(self.key);
    }

    /// v4: the encoded length of the record [`Response::encode_held`] writes.
    pub fn encoded_len_held(&self) -> usize {
        RESPONSE_HEADER + self.key.len() + 4
    }

    /// v4: encodes the record with [`iflag::VALUE_REF`]: the value stays
    /// where it is, at address `addr` of the plugin's memory.
    pub fn encode_held(&self, addr: u32, out: &mut Vec<u8>) {
        self.encode_header(self.iflags | iflag::VALUE_REF, out);
        out.extend_from_slice(&addr.to_le_bytes());
    }

    /// Decodes one response at the start of `b` whose value is in it (see
    /// [`Response::decode_in`] with `None`); returns it and its encoded length.
    pub fn decode(b: &'a [u8]) -> Option<(Response<'a>, usize)> {
        Self::decode_in(b, None)
    }

    /// Decodes one response. `mem`: for a v4 plugin its memory, in which a
    /// [`iflag::VALUE_REF`] value is looked up; `None` where values follow
    /// their keys (a v1–v3 plugin's records, or ones the host copied). The
    /// returned record never has [`iflag::VALUE_REF`]: its value is the bytes.
    pub fn decode_in(b: &'a [u8], mem: Option<&'a [u8]>) -> Option<(Response<'a>, usize)> {
        if b.len() < RESPONSE_HEADER {
            return None;
        }
        let key_len = u16_at(b, 2) as usize;
        let value_len = u32_at(b, 4) as usize;
        let key_end = RESPONSE_HEADER + key_len;
        let iflags = b[1] & !iflag::VALUE_REF;
        let (value, end) = match mem {
            Some(mem) if b[1] & iflag::VALUE_REF != 0 => {
                let end = key_end.checked_add(4)?;
                let addr = u32_at(b.get(..end)?, key_end) as usize;
                (mem.get(addr..addr.checked_add(value_len)?)?, end)
            }
            _ => {
                let end = key_end.checked_add(value_len)?;
                (b.get(key_end..end)?, end)
            }
        };
        Some((
            Response {
                status: b[0],
                iflags,
                key: b.get(RESPONSE_HEADER..key_end)?,
                value,
                client_flags: u32_at(b, 8),
                exptime: u32_at(b, 12),
                cas: u64_at(b, 16),
                last_access: u32_at(b, 24),
                prev_exptime: u32_at(b, 28),
            },
            end,
        ))
    }
}

/// v3: one item of a dump (`wmc_dump`) or load (`wmc_load`) chunk. A chunk
/// has the batch frame: `u32 count`, then `count` of these back to back.
///
/// ```text
/// off len field
///  0   4  client_flags
///  4   4  exptime       server time the item expires at; 0 = never
///  8   8  cas           the item's CAS unique (0 if none)
/// 16   4  last_access   server time of the last store or access
/// 20   1  iflags        iflag::FETCHED | STALE | TOKEN_SENT | KEY_BINARY
/// 21   1  refs          v7: recency count in the plugin's own policy; 0 before
/// 22   2  key_len       1..=250
/// 24   4  value_len
/// 28      key bytes, then value bytes
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Item<'a> {
    /// The key, 1..=250 bytes.
    pub key: &'a [u8],
    /// The value.
    pub value: &'a [u8],
    /// The item's client flags.
    pub client_flags: u32,
    /// Server time the item expires at; 0 = never.
    pub exptime: u32,
    /// The item's CAS value (0 if none).
    pub cas: u64,
    /// Server time of the item's last store or access.
    pub last_access: u32,
    /// [`Item::IFLAGS`] bits the item carries (FETCHED, STALE, TOKEN_SENT, KEY_BINARY).
    pub iflags: u8,
    /// v7: the item's recency count in the dumping plugin's eviction policy
    /// (0 = coldest). Meaningful to a plugin that understands the dumper's
    /// scale (the same plugin after a restart or reload); others ignore it.
    pub refs: u8,
}

/// The offset of [`Item::refs`] in an item record.
pub const ITEM_REFS_OFFSET: usize = 21;

impl<'a> Item<'a> {
    /// The `iflags` bits an item record may carry; others are ignored.
    pub const IFLAGS: u8 = iflag::FETCHED | iflag::STALE | iflag::TOKEN_SENT | iflag::KEY_BINARY;

    /// The length of the record [`Item::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        ITEM_HEADER + self.key.len() + self.value.len()
    }

    /// Appends the record (header, key, value) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut h = [0u8; ITEM_HEADER];
        h[0..4].copy_from_slice(&self.client_flags.to_le_bytes());
        h[4..8].copy_from_slice(&self.exptime.to_le_bytes());
        h[8..16].copy_from_slice(&self.cas.to_le_bytes());
        h[16..20].copy_from_slice(&self.last_access.to_le_bytes());
        h[20] = self.iflags;
        h[ITEM_REFS_OFFSET] = self.refs;
        h[22..24].copy_from_slice(&(self.key.len() as u16).to_le_bytes());
        h[24..28].copy_from_slice(&(self.value.len() as u32).to_le_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(self.key);
        out.extend_from_slice(self.value);
    }

    /// Decodes one item at the start of `b`; returns it and its encoded length.
    pub fn decode(b: &'a [u8]) -> Option<(Item<'a>, usize)> {
        if b.len() < ITEM_HEADER {
            return None;
        }
        let key_len = u16_at(b, 22) as usize;
        let value_len = u32_at(b, 24) as usize;
        let end = ITEM_HEADER.checked_add(key_len)?.checked_add(value_len)?;
        if b.len() < end {
            return None;
        }
        Some((
            Item {
                client_flags: u32_at(b, 0),
                exptime: u32_at(b, 4),
                cas: u64_at(b, 8),
                last_access: u32_at(b, 16),
                iflags: b[20],
                refs: b[ITEM_REFS_OFFSET],
                key: &b[ITEM_HEADER..ITEM_HEADER + key_len],
                value: &b[ITEM_HEADER + key_len..end],
            },
            end,
        ))
    }
}

/// v5: what a listing (`wmc_iter`) tells about one item: everything
/// memcached's `lru_crawler metadump` and `stats cachedump` print, no value.
///
/// ```text
/// off len field
///  0   4  exptime       server time the item expires at; 0 = never
///  4   4  last_access   server time of the last store or access
///  8   8  cas           the item's CAS unique (0 if none)
/// 16   4  client_flags
/// 20   4  value_len     the value's length in bytes
/// 24   4  size          the item's total size as memcached counts it
///                       (ITEM_ntotal) or as the plugin does; 0 = unknown
///                       (the host then computes memcached's)
/// 28   1  iflags        iflag::FETCHED | STALE | TOKEN_SENT | KEY_BINARY
/// 29   1  class         the plugin's slab class (1..=63); 0 = the plugin has
///                       none (the host shows memcached's default class for `size`)
/// 30   2  key_len       1..=250
/// 32      key bytes
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemMeta<'a> {
    /// The key, 1..=250 bytes.
    pub key: &'a [u8],
    /// Server time the item expires at; 0 = never.
    pub exptime: u32,
    /// Server time of the item's last store or access.
    pub last_access: u32,
    /// The item's CAS value (0 if none).
    pub cas: u64,
    /// The item's client flags.
    pub client_flags: u32,
    /// The value's length in bytes.
    pub value_len: u32,
    /// The item's total size as memcached counts it, or as the plugin does;
    /// 0 = unknown (the host computes memcached's).
    pub size: u32,
    /// [`ItemMeta::IFLAGS`] bits the item carries.
    pub iflags: u8,
    /// The plugin's slab class (1..=63); 0 = none (the host shows memcached's
    /// default class for the size).
    pub class: u8,
}

impl<'a> ItemMeta<'a> {
    /// The `iflags` bits a record may carry; others are ignored.
    pub const IFLAGS: u8 = Item::IFLAGS;

    /// The length of the record [`ItemMeta::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        ITEM_META_HEADER + self.key.len()
    }

    /// Appends the record (header, key) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut h = [0u8; ITEM_META_HEADER];
        h[0..4].copy_from_slice(&self.exptime.to_le_bytes());
        h[4..8].copy_from_slice(&self.last_access.to_le_bytes());
        h[8..16].copy_from_slice(&self.cas.to_le_bytes());
        h[16..20].copy_from_slice(&self.client_flags.to_le_bytes());
        h[20..24].copy_from_slice(&self.value_len.to_le_bytes());
        h[24..28].copy_from_slice(&self.size.to_le_bytes());
        h[28] = self.iflags;
        h[29] = self.class;
        h[30..32].copy_from_slice(&(self.key.len() as u16).to_le_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(self.key);
    }

    /// Decodes one record at the start of `b`; returns it and its encoded length.
    pub fn decode(b: &'a [u8]) -> Option<(ItemMeta<'a>, usize)> {
        if b.len() < ITEM_META_HEADER {
            return None;
        }
        let end = ITEM_META_HEADER + u16_at(b, 30) as usize;
        Some((
            ItemMeta {
                exptime: u32_at(b, 0),
                last_access: u32_at(b, 4),
                cas: u64_at(b, 8),
                client_flags: u32_at(b, 16),
                value_len: u32_at(b, 20),
                size: u32_at(b, 24),
                iflags: b[28],
                class: b[29],
                key: b.get(ITEM_META_HEADER..end)?,
            },
            end,
        ))
    }
}

/// Iterates the records of a batch (`u32 count`, then `count` records).
/// Yields `None` once if the batch is malformed, then stops.
pub struct Records<'a, T> {
    buf: &'a [u8],
    left: u32,
    /// What a record may point into (v4 held values; see [`responses_in`]).
    mem: Option<&'a [u8]>,
    decode: Decode<'a, T>,
}

/// Decodes one record at the start of its first argument, which may point
/// into the second (v4 held values); returns it and its encoded length.
type Decode<'a, T> = fn(&'a [u8], Option<&'a [u8]>) -> Option<(T, usize)>;

// Not derived: that would ask `T: Clone`, and only the position is copied.
impl<T> Clone for Records<'_, T> {
    fn clone(&self) -> Self {
        Records {
            buf: self.buf,
            left: self.left,
            mem: self.mem,
            decode: self.decode,
        }
    }
}

impl<T> Records<'_, T> {
    /// Records not yet read (as announced; fewer if the batch is malformed).
    pub fn left(&self) -> u32 {
        self.left
    }

    /// The next `n` records (or fewer), leaving this iterator where it is.
    pub fn window(&self, n: usize) -> Self {
        let mut w = self.clone();
        w.left = w.left.min(n.try_into().unwrap_or(u32::MAX));
        w
    }
}

/// The requests of a batch, as [`requests`] reads them.
pub type Requests<'a> = Records<'a, Request<'a>>;

impl<'a, T> Iterator for Records<'a, T> {
    type Item = Option<T>;
    fn next(&mut self) -> Option<Option<T>> {
        if self.left == 0 {
            return None;
        }
        match (self.decode)(self.buf, self.mem) {
            Some((rec, n)) => {
                self.left -= 1;
                self.buf = &self.buf[n..];
                Some(Some(rec))
            }
            None => {
                self.left = 0;
                Some(None)
            }
        }
    }
}

/// The records of a request batch, or `None` if the header is short.
pub fn requests(batch: &[u8]) -> Option<Requests<'_>> {
    let count = u32_at(batch.get(..BATCH_HEADER)?, 0);
    Some(Records {
        buf: &batch[BATCH_HEADER..],
        left: count,
        mem: None,
        decode: |b, _| Request::decode(b),
    })
}

/// The records of a response batch whose values are all in it (from a
/// v1–v3 plugin, or copied by the host), or `None` if the header is short.
pub fn responses(batch: &[u8]) -> Option<Records<'_, Response<'_>>> {
    responses_in(batch, None)
}

/// The records of a response batch from a plugin, or `None` if the header
/// is short. `mem`: a v4 plugin's memory, where held values are read (see
/// [`Response::decode_in`]); `None` for a v1–v3 plugin.
pub fn responses_in<'a>(
    batch: &'a [u8],
    mem: Option<&'a [u8]>,
) -> Option<Records<'a, Response<'a>>> {
    let count = u32_at(batch.get(..BATCH_HEADER)?, 0);
    Some(Records {
        buf: &batch[BATCH_HEADER..],
        left: count,
        mem,
        decode: Response::decode_in,
    })
}

/// Checks a plugin's response batch before anything reads it: exactly
/// `count` well-formed records with known statuses, every held value inside
/// `mem` (as for [`responses_in`]). Returns whether any value is held.
pub fn check_responses(resp: &[u8], mem: Option<&[u8]>, count: u32) -> Result<bool, String> {
    let mut rest = resp.get(BATCH_HEADER..).ok_or("short response batch")?;
    if batch_count(resp) != count {
        return Err(format!(
            "{} responses for {count} requests",
            batch_count(resp)
        ));
    }
    let mut held = false;
    for _ in 0..count {
        held |= mem.is_some() && rest.get(1).is_some_and(|f| f & iflag::VALUE_REF != 0);
        let (r, len) = Response::decode_in(rest, mem)
            .ok_or("malformed response record (or a held value outside guest memory)")?;
        if r.status().is_none() {
            return Err(format!("unknown response status {}", r.status));
        }
        rest = &rest[len..];
    }
    Ok(held)
}

/// v3: the item records of a dump/load chunk, or `None` if the header is short.
pub fn items(chunk: &[u8]) -> Option<Records<'_, Item<'_>>> {
    let count = u32_at(chunk.get(..BATCH_HEADER)?, 0);
    Some(Records {
        buf: &chunk[BATCH_HEADER..],
        left: count,
        mem: None,
        decode: |b, _| Item::decode(b),
    })
}

/// v3: checks that `chunk` holds exactly its announced item records and
/// nothing after them; returns the count.
pub fn check_items(chunk: &[u8]) -> Option<u32> {
    let mut n = 0u32;
    let mut rest = chunk.get(BATCH_HEADER..)?;
    for _ in 0..batch_count(chunk) {
        let (_, len) = Item::decode(rest)?;
        rest = &rest[len..];
        n += 1;
    }
    rest.is_empty().then_some(n)
}

/// Writes a v3..v6 chunk from a v7 one in place: every record's `refs`
/// byte (reserved before v7) becomes 0. `chunk` must be well formed
/// ([`check_items`]); a malformed tail is left as it is.
pub fn clear_item_refs(chunk: &mut [u8]) {
    let mut at = BATCH_HEADER;
    for _ in 0..batch_count(chunk) {
        let Some((_, len)) = chunk.get(at..).and_then(Item::decode) else {
            return;
        };
        chunk[at + ITEM_REFS_OFFSET] = 0;
        at += len;
    }
}

/// v5: a `wmc_iter` chunk:
///
/// ```text
/// off len field
///  0   4  count         ItemMeta records that follow
///  4   4  reserved      0
///  8   8  cursor        where the next call resumes; 0 = the listing is complete
/// 16   …  count ItemMeta records, back to back, nothing after them
/// ```
///
/// Returns the cursor and the records, or `None` if the header is short.
pub fn iter_chunk(chunk: &[u8]) -> Option<(u64, Records<'_, ItemMeta<'_>>)> {
    let h = chunk.get(..ITER_HEADER)?;
    Some((
        u64_at(h, 8),
        Records {
            buf: &chunk[ITER_HEADER..],
            left: u32_at(h, 0),
            mem: None,
            decode: |b, _| ItemMeta::decode(b),
        },
    ))
}

/// v5: checks that `chunk` is a well-formed `wmc_iter` chunk (its announced
/// records and nothing after them); returns its cursor and record count.
pub fn check_iter_chunk(chunk: &[u8]) -> Option<(u64, u32)> {
    let (cursor, recs) = iter_chunk(chunk)?;
    let count = recs.left();
    let mut rest = &chunk[ITER_HEADER..];
    for _ in 0..count {
        let (_, len) = ItemMeta::decode(rest)?;
        rest = &rest[len..];
    }
    rest.is_empty().then_some((cursor, count))
}

/// v5: starts a `wmc_iter` chunk in `out` (count 0, cursor 0);
/// [`finish_iter_chunk`] fills the header in at the end.
pub fn begin_iter_chunk(out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&[0u8; ITER_HEADER]);
}

/// v5: writes the record count and the cursor of the next call into the
/// header [`begin_iter_chunk`] wrote.
pub fn finish_iter_chunk(chunk: &mut [u8], count: u32, cursor: u64) {
    chunk[0..4].copy_from_slice(&count.to_le_bytes());
    chunk[4..8].fill(0);
    chunk[8..16].copy_from_slice(&cursor.to_le_bytes());
}

/// Starts a batch in `out` (count 0); [`set_batch_count`] fixes the count at the end.
pub fn begin_batch(out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&0u32.to_le_bytes());
}

/// Writes `count` into the header of a batch [`begin_batch`] started.
pub fn set_batch_count(batch: &mut [u8], count: u32) {
    batch[..4].copy_from_slice(&count.to_le_bytes());
}

/// The count a batch's header announces. `batch` must hold at least
/// [`BATCH_HEADER`] bytes.
pub fn batch_count(batch: &[u8]) -> u32 {
    u32_at(batch, 0)
}

/// Packs a guest buffer location as returned by `wmc_batch` / `wmc_stats`.
pub fn pack_ptr_len(ptr: u32, len: u32) -> i64 {
    (((ptr as u64) << 32) | len as u64) as i64
}

/// Sets `bits` in the mflags of every request of a sealed request batch
/// (how a host asks a v6 plugin for [`Event`]s without touching the code
/// that built the requests). Stops at a malformed record.
pub fn or_request_mflags(batch: &mut [u8], bits: u32) {
    let Some(head) = batch.get(..BATCH_HEADER) else {
        return;
    };
    let count = u32_at(head, 0);
    let mut off = BATCH_HEADER;
    for _ in 0..count {
        let Some(b) = batch.get_mut(off..) else {
            return;
        };
        if b.len() < REQUEST_HEADER {
            return;
        }
        let len = REQUEST_HEADER + u16_at(b, 2) as usize + u32_at(b, 4) as usize;
        let m = u32_at(b, 32) | bits;
        b[32..36].copy_from_slice(&m.to_le_bytes());
        off += len;
    }
}

/// The size of an [`Event`] record before its key.
pub const EVENT_HEADER: usize = 24;

/// v6: what a plugin reports through the `log_event` import, for the
/// host's `watch` lines (memcached's logger calls in items.c). One record
/// per call:
///
/// ```text
/// off len field
///  0   1  kind          event_kind::*
///  1   1  flags         LOOKUP: bit 0 FOUND; EVICTION: bit 0 FETCHED
///  2   2  key_len       0..=250
///  4   4  request       index in the running batch of the request that
///                       caused it; u32::MAX outside wmc_batch (tick, timer)
///  8   4  value_len     LOOKUP (found) and EVICTION: the item's value
///                       length; STORED: the value length after the store
/// 12   4  client_flags  LOOKUP (found), EVICTION, STORED: the item's flags
/// 16   4  exptime       EVICTION, STORED: server time the item expires
///                       at; 0 = never
/// 20   4  last_access   EVICTION: server time of its last access
/// 24      key bytes
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event<'a> {
    /// An [`event_kind`] value.
    pub kind: u8,
    /// [`event_flag`] bits.
    pub flags: u8,
    /// The key the event is about, 0..=250 bytes.
    pub key: &'a [u8],
    /// The index of the causing request in the running batch; `u32::MAX`
    /// outside `wmc_batch`. The Rust SDK fills it in.
    pub request: u32,
    /// LOOKUP (found) and EVICTION: the item's value length; STORED: the
    /// value length after the store.
    pub value_len: u32,
    /// LOOKUP (found), EVICTION, STORED: the item's client flags.
    pub client_flags: u32,
    /// EVICTION, STORED: server time the item expires at; 0 = never.
    pub exptime: u32,
    /// EVICTION: server time of the item's last access.
    pub last_access: u32,
}

/// [`Event::kind`] values.
pub mod event_kind {
    /// A request looked its key up (memcached's `do_item_get`); flag bit 0:
    /// found (live: not expired, not flushed).
    pub const LOOKUP: u8 = 1;
    /// An item was evicted to make room; flag bit 0: it had been fetched.
    pub const EVICTION: u8 = 2;
    /// A store the host cannot see the result of: an Append/Prepend stored
    /// (`value_len` is the item's new length), or an Incr/Decr with VIVIFY
    /// created the item (memcached logs that as an `add`).
    pub const STORED: u8 = 3;
}

/// [`Event::flags`] bits.
pub mod event_flag {
    /// LOOKUP: the key had a live item.
    pub const FOUND: u8 = 1 << 0;
    /// EVICTION: the item had been read since it was stored.
    pub const FETCHED: u8 = 1 << 0;
}

impl<'a> Event<'a> {
    /// Appends the record (header, key) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind);
        out.push(self.flags);
        out.extend_from_slice(&(self.key.len() as u16).to_le_bytes());
        for v in [
            self.request,
            self.value_len,
            self.client_flags,
            self.exptime,
            self.last_access,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(self.key);
    }

    /// Decodes one record at the start of `b`; returns it and its length.
    pub fn decode(b: &'a [u8]) -> Option<(Event<'a>, usize)> {
        if b.len() < EVENT_HEADER {
            return None;
        }
        let end = EVENT_HEADER + u16_at(b, 2) as usize;
        let key = b.get(EVENT_HEADER..end)?;
        Some((
            Event {
                kind: b[0],
                flags: b[1],
                key,
                request: u32_at(b, 4),
                value_len: u32_at(b, 8),
                client_flags: u32_at(b, 12),
                exptime: u32_at(b, 16),
                last_access: u32_at(b, 20),
            },
            end,
        ))
    }

    /// The records of `buf`, back to back (as a host collects them), up to
    /// the first malformed one.
    pub fn all(mut buf: &'a [u8]) -> impl Iterator<Item = Event<'a>> {
        core::iter::from_fn(move || {
            let (e, n) = Event::decode(buf)?;
            buf = &buf[n..];
            Some(e)
        })
    }
}

/// Splits a `wmc_batch` / `wmc_stats` return value into `(ptr, len)`;
/// the inverse of [`pack_ptr_len`].
pub fn unpack_ptr_len(v: i64) -> (u32, u32) {
    let v = v as u64;
    ((v >> 32) as u32, v as u32)
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// Formats `v` in decimal into `buf`, returning the digits: how an
/// incr/decr answer (status Number) carries its value.
pub fn fmt_u64(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn memcached_class_table_is_memcached_1_6_18s() {
        // memcached -vv at the defaults: 39 classes from 96 bytes, the last
        // one slab_chunk_max (its `slabs reassign 40 1` is BADCLASS).
        let sizes = Hints::default().memcached_class_sizes();
        assert_eq!(sizes.len() - 1, 39);
        assert_eq!(&sizes[..4], &[0, 96, 120, 152]);
        assert_eq!(sizes[39], 512 * 1024);
        let explicit = Hints {
            slab_sizes: vec![100, 1000, 5000],
            ..Hints::default()
        };
        assert_eq!(
            explicit.memcached_class_sizes(),
            vec![0, 104, 1000, 5000, 512 * 1024]
        );
    }

    #[test]
    fn stat_type_declarations_round_trip_and_have_no_space() {
        for t in StatType::ALL {
            let d = t.declaration();
            // Hosts skip a stat line without a space: older ones ignore it.
            assert!(!d.contains(' ') && d.starts_with('#'), "{d}");
            assert_eq!(StatType::declared_by(d), Some(t));
        }
        for not in ["#counter ", "#Counter", "counter", "#", "#counter 1", ""] {
            assert_eq!(StatType::declared_by(not), None, "{not:?}");
        }
    }

    #[test]
    fn events_round_trip() {
        let e = Event {
            kind: event_kind::EVICTION,
            flags: event_flag::FETCHED,
            key: b"key",
            request: 7,
            value_len: 10,
            client_flags: 5,
            exptime: 99,
            last_access: 3,
        };
        let mut buf = Vec::new();
        e.encode(&mut buf);
        assert_eq!(buf.len(), EVENT_HEADER + 3);
        Event {
            kind: event_kind::LOOKUP,
            ..Default::default()
        }
        .encode(&mut buf);
        buf.push(1); // a truncated record ends the walk
        let all: Vec<_> = Event::all(&buf).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], e);
        assert_eq!(all[1].kind, event_kind::LOOKUP);
    }

    #[test]
    fn request_mflags_are_ored_into_every_record() {
        let mut batch = Vec::new();
        begin_batch(&mut batch);
        for (key, value) in [(&b"a"[..], &b"xyz"[..]), (b"bb", b"")] {
            Request {
                op: Op::Set as u8,
                key,
                value,
                mflags: mflag::NO_BUMP,
                ..Default::default()
            }
            .encode(&mut batch);
        }
        set_batch_count(&mut batch, 2);
        or_request_mflags(&mut batch, mflag::LOG_LOOKUP);
        let got: Vec<u32> = requests(&batch)
            .unwrap()
            .map(|r| r.unwrap().mflags)
            .collect();
        assert_eq!(got, vec![mflag::NO_BUMP | mflag::LOG_LOOKUP; 2]);
    }

    #[test]
    fn request_roundtrip() {
        let r = Request {
            op: Op::Cas as u8,
            key: b"foo",
            value: b"bar!",
            client_flags: 0xdead_beef,
            exptime: 77,
            cas: 1 << 40,
            delta: 9,
            mflags: mflag::NO_BUMP,
            aux: 3,
        };
        let mut out = Vec::new();
        begin_batch(&mut out);
        r.encode(&mut out);
        r.encode(&mut out);
        set_batch_count(&mut out, 2);
        assert_eq!(out.len(), 4 + 2 * r.encoded_len());
        let got: Vec<_> = requests(&out).unwrap().collect();
        assert_eq!(got, vec![Some(r.clone()), Some(r)]);
    }

    /// A window reads the next records without moving the batch's own
    /// iterator, and never past the end.
    #[test]
    fn request_windows() {
        let keys: Vec<Vec<u8>> = (0..5u8).map(|i| vec![b'a' + i]).collect();
        let mut out = Vec::new();
        begin_batch(&mut out);
        for k in &keys {
            Request {
                key: k,
                ..Default::default()
            }
            .encode(&mut out);
        }
        set_batch_count(&mut out, keys.len() as u32);
        let key_of = |r: Option<Request<'_>>| r.unwrap().key.to_vec();
        let mut reqs = requests(&out).unwrap();
        assert_eq!(reqs.left(), 5);
        let w: Vec<_> = reqs.window(3).map(key_of).collect();
        assert_eq!(w, keys[..3]);
        assert_eq!(reqs.left(), 5);
        reqs.nth(3);
        assert_eq!(reqs.left(), 1);
        let w: Vec<_> = reqs.window(3).map(key_of).collect();
        assert_eq!(w, keys[4..]);
        assert_eq!(reqs.map(key_of).collect::<Vec<_>>(), keys[4..]);
    }

    #[test]
    fn response_roundtrip_and_truncation() {
        let r = Response {
            status: Status::Hit as u8,
            iflags: iflag::FETCHED,
            key: b"k",
            value: b"value",
            client_flags: 5,
            exptime: 6,
            cas: 7,
            last_access: 8,
            prev_exptime: 9,
        };
        let mut out = Vec::new();
        begin_batch(&mut out);
        r.encode(&mut out);
        set_batch_count(&mut out, 1);
        assert_eq!(responses(&out).unwrap().collect::<Vec<_>>(), vec![Some(r)]);
        // A count larger than the records present yields one None, then ends.
        set_batch_count(&mut out, 2);
        let got: Vec<_> = responses(&out).unwrap().collect();
        assert_eq!(got.len(), 2);
        assert!(got[1].is_none());
        // A truncated record is rejected, never read out of bounds.
        let short = &out[..out.len() - 1];
        assert_eq!(responses(short).unwrap().next(), Some(None));
    }

    #[test]
    fn held_value_is_read_from_memory() {
        let mem: Vec<u8> = (0..=255).collect();
        let r = Response {
            status: Status::Hit as u8,
            iflags: iflag::FETCHED,
            key: b"k",
            value: &mem[10..20],
            cas: 7,
            ..Default::default()
        };
        let mut out = Vec::new();
        begin_batch(&mut out);
        r.encode_held(10, &mut out);
        assert_eq!(out.len(), BATCH_HEADER + r.encoded_len_held());
        set_batch_count(&mut out, 1);
        let got: Vec<_> = responses_in(&out, Some(&mem)).unwrap().collect();
        assert_eq!(got, vec![Some(r.clone())], "flag cleared, value resolved");
        // A value reaching past the memory's end is malformed, not read.
        let short: Vec<_> = responses_in(&out, Some(&mem[..19])).unwrap().collect();
        assert_eq!(short, vec![None]);
        assert_eq!(check_responses(&out, Some(&mem), 1), Ok(true));
        assert!(check_responses(&out, Some(&mem[..19]), 1).is_err());
        assert!(check_responses(&out, Some(&mem), 2).is_err());
        // A v1-v3 plugin's bit 6 means nothing: its bytes are the value.
        let mut v3 = Vec::new();
        begin_batch(&mut v3);
        let with_bit = Response {
            iflags: r.iflags | iflag::VALUE_REF,
            ..r.clone()
        };
        with_bit.encode(&mut v3);
        set_batch_count(&mut v3, 1);
        let got = responses(&v3).unwrap().next().unwrap().unwrap();
        assert_eq!(got, r, "bit 6 cleared, the bytes are the value");
        assert_eq!(check_responses(&v3, None, 1), Ok(false));
    }

    #[test]
    fn init_roundtrip() {
        let i = Init {
            abi_version: ABI_VERSION,
            shard_id: 2,
            shard_count: 4,
            flags: init_flag::CAS,
            memory_budget: 64 << 20,
            max_item_size: 1 << 20,
            now: 2,
            config: b"a=b",
            hints: &[],
        };
        let mut out = Vec::new();
        i.encode(&mut out);
        assert_eq!(out.len(), i.encoded_len());
        assert_eq!(Init::decode(&out), Some(i));
    }

    #[test]
    fn hints_roundtrip_and_defaults() {
        let h = Hints {
            growth_factor: 1.5,
            chunk_size: 96,
            hashpower: 20,
            hash_expand: false,
            hash_algorithm: 2,
            slab_sizes: vec![100, 200, 400],
            hot_lru_pct: 30,
            warm_lru_pct: 30,
            warm_max_factor: 3.0,
            temp_lru: true,
            large_pages: true,
            ..Hints::default()
        };
        let mut block = Vec::new();
        h.encode(&mut block);
        assert_eq!(Hints::decode(&block), Some(h.clone()));
        // An empty block is memcached's defaults.
        assert_eq!(Hints::decode(&[]), Some(Hints::default()));
        assert_eq!(Hints::default().hashpower, 0);
        // A single record: the others keep their defaults.
        let one = [3u8, 0, 4, 0, 18, 0, 0, 0];
        let got = Hints::decode(&one).unwrap();
        assert_eq!(got.hashpower, 18);
        assert_eq!(
            Hints {
                hashpower: 0,
                ..got
            },
            Hints::default()
        );
        // Unknown tags and known tags of the wrong length are skipped.
        let odd = [
            0xff, 0xff, 2, 0, 1, 2, 3, 0, 2, 0, 7, 7, 2, 0, 4, 0, 64, 0, 0, 0,
        ];
        let got = Hints::decode(&odd).unwrap();
        assert_eq!((got.hashpower, got.chunk_size), (0, 64));
        // A record running past the block is malformed.
        assert_eq!(Hints::decode(&block[..block.len() - 1]), None);
        assert_eq!(Hints::decode(&[3, 0]), None);
    }

    #[test]
    fn init_hints_only_from_v5() {
        let mut block = Vec::new();
        Hints {
            hashpower: 20,
            ..Hints::default()
        }
        .encode(&mut block);
        let v5 = Init {
            abi_version: HINTS_VERSION,
            shard_count: 1,
            config: b"x=1",
            hints: &block,
            ..Default::default()
        };
        let mut out = Vec::new();
        v5.encode(&mut out);
        assert_eq!(out.len(), INIT_HEADER + 3 + block.len());
        assert_eq!(u32_at(&out, 32) as usize, block.len(), "hints_len");
        assert_eq!(&out[INIT_HEADER..INIT_HEADER + 3], b"x=1");
        assert_eq!(&out[INIT_HEADER + 3..], &block[..]);
        let back = Init::decode(&out).unwrap();
        assert_eq!(back, v5);
        assert_eq!(Hints::decode(back.hints).unwrap().hashpower, 20);
        // Hints that run past the record: malformed.
        assert_eq!(Init::decode(&out[..out.len() - 1]), None);
        // v1-v4: the bytes they always got, reserved 0, no hints.
        for v in 1..HINTS_VERSION {
            let old = Init {
                abi_version: v,
                ..v5.clone()
            };
            let mut out = Vec::new();
            old.encode(&mut out);
            assert_eq!(out.len(), INIT_HEADER + 3);
            assert_eq!(out.len(), old.encoded_len());
            assert_eq!(u32_at(&out, 32), 0, "reserved stays 0 for v{v}");
            let back = Init::decode(&out).unwrap();
            assert!(back.hints.is_empty());
        }
        // A v4 record with junk in the reserved field still decodes.
        let mut out = Vec::new();
        Init {
            abi_version: 4,
            ..v5.clone()
        }
        .encode(&mut out);
        out[32] = 9;
        assert!(Init::decode(&out).unwrap().hints.is_empty());
    }

    #[test]
    fn v2_fields_keep_v1_offsets() {
        let r = Response {
            status: Status::Hit as u8,
            iflags: iflag::STALE | iflag::WON,
            prev_exptime: 0x0102_0304,
            ..Default::default()
        };
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(out.len(), RESPONSE_HEADER);
        assert_eq!(out[1], iflag::STALE | iflag::WON);
        assert_eq!(&out[28..32], &[4, 3, 2, 1]);
        let q = Request {
            op: Op::Get as u8,
            mflags: mflag::VIVIFY | mflag::RECACHE,
            aux: 77,
            delta: 99,
            ..Default::default()
        };
        let mut out = Vec::new();
        q.encode(&mut out);
        assert_eq!(out.len(), REQUEST_HEADER);
        assert_eq!(u32_at(&out, 32), mflag::VIVIFY | mflag::RECACHE);
        assert_eq!(u32_at(&out, 36), 77);
        assert_eq!(u64_at(&out, 24), 99);
        // v1 bits stay where they were.
        assert_eq!(mflag::V1_MASK, 0b11);
        assert!(SUPPORTED_ABI_VERSIONS.contains(&1));
        assert!(SUPPORTED_ABI_VERSIONS.contains(&ABI_VERSION));
    }

    #[test]
    fn item_roundtrip_and_layout() {
        let it = Item {
            key: b"key",
            value: b"\0bin\r\n",
            client_flags: 0xdead_beef,
            exptime: 0x0102_0304,
            cas: 0x1112_1314_1516_1718,
            last_access: 0x2122_2324,
            iflags: iflag::FETCHED | iflag::KEY_BINARY,
            refs: 3,
        };
        let mut out = Vec::new();
        it.encode(&mut out);
        assert_eq!(out.len(), it.encoded_len());
        assert_eq!(out.len(), ITEM_HEADER + 3 + 6);
        // Byte by byte as docs/plugin-abi.md describes it.
        assert_eq!(&out[0..4], &[0xef, 0xbe, 0xad, 0xde]);
        assert_eq!(&out[4..8], &[4, 3, 2, 1]);
        assert_eq!(
            &out[8..16],
            &[0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11]
        );
        assert_eq!(&out[16..20], &[0x24, 0x23, 0x22, 0x21]);
        assert_eq!(out[20], iflag::FETCHED | iflag::KEY_BINARY);
        assert_eq!(out[21], 3);
        assert_eq!(&out[22..24], &[3, 0]);
        assert_eq!(&out[24..28], &[6, 0, 0, 0]);
        assert_eq!(&out[28..31], b"key");
        assert_eq!(Item::decode(&out), Some((it.clone(), out.len())));
        // Truncated records are refused, never read out of bounds.
        for cut in 0..out.len() {
            assert_eq!(Item::decode(&out[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn item_chunks() {
        let a = Item {
            key: b"a",
            value: b"1",
            ..Default::default()
        };
        let b = Item {
            key: b"bb",
            value: b"",
            exptime: 9,
            ..Default::default()
        };
        let mut chunk = Vec::new();
        begin_batch(&mut chunk);
        a.encode(&mut chunk);
        b.encode(&mut chunk);
        set_batch_count(&mut chunk, 2);
        let mut cleared = chunk.clone();
        clear_item_refs(&mut cleared);
        assert_eq!(cleared, chunk, "refs were 0 already");
        assert_eq!(check_items(&chunk), Some(2));
        let got: Vec<_> = items(&chunk).unwrap().collect();
        assert_eq!(got, vec![Some(a), Some(b)]);
        // Trailing bytes, a short count or a long count are malformed.
        let mut trailing = chunk.clone();
        trailing.push(0);
        assert_eq!(check_items(&trailing), None);
        set_batch_count(&mut chunk, 1);
        assert_eq!(check_items(&chunk), None);
        set_batch_count(&mut chunk, 3);
        assert_eq!(check_items(&chunk), None);
        assert_eq!(check_items(&[1, 0]), None);
        assert_eq!(check_items(&0u32.to_le_bytes()), Some(0));
    }

    #[test]
    fn v8_keeps_every_earlier_version() {
        assert_eq!(ABI_VERSION, 8);
        assert_eq!(SUPPORTED_ABI_VERSIONS, [1, 2, 3, 4, 5, 6, 7, 8]);
        // v8 adds an export and nothing else.
        assert_eq!(METRICS_VERSION, 8);
        // v7 gives the item record's reserved byte a meaning, nothing else.
        assert_eq!(ITEM_REFS_OFFSET, 21);
        // v6 takes two bits no earlier version uses.
        assert_eq!(
            (mflag::LOG_LOOKUP, mflag::LOG_EVICTIONS),
            (1 << 11, 1 << 12)
        );
        assert_eq!(EVENT_HEADER, 24);
        assert_eq!((REQUEST_HEADER, RESPONSE_HEADER, INIT_HEADER), (40, 32, 40));
        assert_eq!(ITEM_HEADER, 28);
        // The dump and iter sentinels cannot be a chunk inside a 4 GiB memory.
        for s in [
            dump_status::UNSUPPORTED,
            dump_status::FAILED,
            iter_status::UNSUPPORTED,
            iter_status::FAILED,
        ] {
            let (ptr, len) = unpack_ptr_len(s);
            assert!(u64::from(ptr) + u64::from(len) > 1 << 32);
        }
    }

    #[test]
    fn item_meta_roundtrip_and_layout() {
        let m = ItemMeta {
            key: b"a b",
            exptime: 0x0102_0304,
            last_access: 0x1112_1314,
            cas: 0x2122_2324_2526_2728,
            client_flags: 0xdead_beef,
            value_len: 0x0000_0105,
            size: 0x0000_0150,
            iflags: iflag::FETCHED | iflag::KEY_BINARY,
            class: 7,
        };
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(out.len(), m.encoded_len());
        assert_eq!(out.len(), ITEM_META_HEADER + 3);
        // Byte by byte as docs/plugin-abi.md describes it.
        assert_eq!(&out[0..4], &[4, 3, 2, 1]);
        assert_eq!(&out[4..8], &[0x14, 0x13, 0x12, 0x11]);
        assert_eq!(
            &out[8..16],
            &[0x28, 0x27, 0x26, 0x25, 0x24, 0x23, 0x22, 0x21]
        );
        assert_eq!(&out[16..20], &[0xef, 0xbe, 0xad, 0xde]);
        assert_eq!(&out[20..24], &[5, 1, 0, 0]);
        assert_eq!(&out[24..28], &[0x50, 1, 0, 0]);
        assert_eq!(out[28], iflag::FETCHED | iflag::KEY_BINARY);
        assert_eq!(out[29], 7);
        assert_eq!(&out[30..32], &[3, 0]);
        assert_eq!(&out[32..], b"a b");
        assert_eq!(ItemMeta::decode(&out), Some((m.clone(), out.len())));
        // Truncated records are refused, never read out of bounds.
        for cut in 0..out.len() {
            assert_eq!(ItemMeta::decode(&out[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn iter_chunks() {
        let a = ItemMeta {
            key: b"a",
            value_len: 1,
            ..Default::default()
        };
        let b = ItemMeta {
            key: b"bb",
            exptime: 9,
            class: 3,
            ..Default::default()
        };
        let mut chunk = Vec::new();
        begin_iter_chunk(&mut chunk);
        a.encode(&mut chunk);
        b.encode(&mut chunk);
        finish_iter_chunk(&mut chunk, 2, 0x0102_0304_0506_0708);
        assert_eq!(&chunk[0..4], &[2, 0, 0, 0]);
        assert_eq!(&chunk[4..8], &[0, 0, 0, 0]);
        assert_eq!(&chunk[8..16], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(check_iter_chunk(&chunk), Some((0x0102_0304_0506_0708, 2)));
        let (cursor, recs) = iter_chunk(&chunk).unwrap();
        assert_eq!(cursor, 0x0102_0304_0506_0708);
        assert_eq!(recs.collect::<Vec<_>>(), vec![Some(a), Some(b)]);
        // An empty chunk that goes on (nothing live where it looked), and
        // the last one.
        let mut empty = Vec::new();
        begin_iter_chunk(&mut empty);
        finish_iter_chunk(&mut empty, 0, 77);
        assert_eq!(check_iter_chunk(&empty), Some((77, 0)));
        finish_iter_chunk(&mut empty, 0, 0);
        assert_eq!(check_iter_chunk(&empty), Some((0, 0)));
        // Trailing bytes, a short or long count, a short header: malformed.
        let mut trailing = chunk.clone();
        trailing.push(0);
        assert_eq!(check_iter_chunk(&trailing), None);
        let mut wrong = chunk.clone();
        wrong[0] = 1;
        assert_eq!(check_iter_chunk(&wrong), None);
        wrong[0] = 3;
        assert_eq!(check_iter_chunk(&wrong), None);
        assert_eq!(check_iter_chunk(&chunk[..15]), None);
        assert!(iter_chunk(&chunk[..15]).is_none());
        // A malformed record is reported once by the iterator, then it stops.
        let (_, recs) = iter_chunk(&wrong).unwrap();
        let got: Vec<_> = recs.collect();
        assert_eq!(got.len(), 3);
        assert!(got[2].is_none());
    }

    #[test]
    fn ptr_len_packing() {
        assert_eq!(
            unpack_ptr_len(pack_ptr_len(0xffff_0000, 12)),
            (0xffff_0000, 12)
        );
    }
}
