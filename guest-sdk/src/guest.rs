//! The Rust guest SDK: implement [`Plugin`], call
//! [`export_plugin!`](crate::export_plugin), and the ABI glue (buffers,
//! batch decoding, response encoding, exports) is generated. Plugin code
//! never sees a raw pointer.
//!
//! Besides the trait: [`Responder`] (the one answer to a request),
//! [`StatsWriter`], [`DumpWriter`] and [`IterWriter`] (what `stats`, a dump
//! and a listing write), and the host calls [`now`], [`timer_set`], [`log`]
//! and the `watch` reports ([`log_lookup`], [`log_stored`],
//! [`log_eviction`]). Natively, [`test_clock`] stands in for the host's
//! clock and timers; [`crate::testing`] drives a whole plugin.

use crate::abi::{self, Init, Item, ItemMeta, Request, Response, Status};
use crate::host;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::panic::{Location, PanicHookInfo};

/// What the host told the shard at start-up (the init record), as
/// [`Plugin::init`] gets it.
#[derive(Clone, Debug)]
pub struct Config {
    /// This shard's number, `0..shard_count`. Keys are spread over the
    /// shards by hash: a key always goes to the same one.
    pub shard_id: u32,
    /// How many shards the server runs, each its own instance of the plugin.
    pub shard_count: u32,
    /// Bytes this shard may use for items (`-m` divided over the shards).
    pub memory_budget: u64,
    /// Largest item the host accepts (`-I`), in bytes.
    pub max_item_size: u32,
    /// CAS values are kept (memcached without `-C`).
    pub cas_enabled: bool,
    /// Never evict; answer out-of-memory instead (memcached `-M`).
    pub no_evict: bool,
    /// Server clock at init: seconds since the server started, the clock
    /// every exptime is in (see [`now`]).
    pub now: u32,
    /// `--plugin-config` as given on the command line (empty when not
    /// given; bytes that are not UTF-8 become U+FFFD). Its syntax is the
    /// plugin's own.
    pub config: String,
    /// v5: memcached's allocator, hash table and LRU settings (`-f`, `-n`,
    /// `-o hashpower`, `slab_chunk_max`, the LRU percentages, `-L`, …) as
    /// the server was started with them, for the store to honour where
    /// they map onto it. Each field is documented on [`abi::Hints`]; a
    /// host that sent none (or an older one) leaves memcached's defaults.
    pub hints: abi::Hints,
}

/// Requests [`Plugin::prepare`] sees at a time: enough for a multiget or a
/// loop's worth of gets, few enough that what it reads ahead (three cache
/// lines a key in the default store) is still in L1 when `handle` needs it.
pub const PREPARE_WINDOW: usize = 32;

/// A storage engine. One value of this type lives in each shard's instance,
/// called from one thread at a time: no locking.
///
/// Only [`Plugin::init`] and [`Plugin::handle`] are required; every other
/// method has a default that does nothing or answers "unsupported".
pub trait Plugin: Sized + 'static {
    /// Builds the shard's store. An `Err` makes the host refuse to start.
    fn init(config: &Config) -> Result<Self, String>;

    /// Handles one request and answers it with exactly one call on `out`.
    ///
    /// The requests of a batch come in order; `req.key` and `req.value`
    /// point into the host's input buffer, so copy what you keep. An op
    /// the plugin does not implement (or does not know: `req.op()` is
    /// `None`) and an [`abi::mflag`] bit it does not implement are answered
    /// with [`Responder::error`]; the advisory `LOG_LOOKUP` and
    /// `LOG_EVICTIONS` bits may be ignored. A request left
    /// unanswered is answered Error `plugin gave no answer`.
    fn handle(&mut self, req: &Request<'_>, out: &mut Responder<'_>);

    /// Sees the next requests of a batch (two or more, at most
    /// [`PREPARE_WINDOW`]) before [`Plugin::handle`] gets the first of them.
    /// For work that pays when done for many requests at once: the default
    /// store reads the memory each key will need here, so that the cache
    /// misses of a 10-key multiget overlap instead of coming one after the
    /// other. The window keeps what was read ahead in the cache until it is
    /// used. A malformed record shows as `None`.
    fn prepare(&mut self, _batch: abi::Requests<'_>) {}

    /// Called before each batch and each tick: the host has read every
    /// value answered with [`Responder::respond_held`] since the last call,
    /// so what was kept alive for them may go now.
    fn release_held(&mut self) {}

    /// Called once a second with the server clock ([`now`]): for expiry
    /// sweeps and other housekeeping.
    fn tick(&mut self, _now: u32) {}

    /// Called when a timer set with [`timer_set`] fires, with its token.
    fn timer(&mut self, _token: u64) {}

    /// Writes the stats of `group` (see [`abi::stats_group`]) as `name
    /// value` lines; the host combines each name over the shards (summed
    /// unless [`StatsWriter`]'s typed calls or the name say otherwise). In the
    /// [`abi::stats_group::GENERAL`] group, memcached's names (`curr_items`,
    /// `bytes`, `evictions`, …) take their places in `stats`, and any other
    /// name shows in `stats plugin`. Writing nothing is fine.
    fn stats(&mut self, _group: i32, _out: &mut StatsWriter<'_>) {}

    /// ABI v3 item dump: writes the next items into `out`, starting from the
    /// position [`DumpWriter::cursor`] (0 when a dump starts) and leaving the
    /// position of the first item not written with [`DumpWriter::set_cursor`].
    /// Writing no item ends the dump. Expired items are to be skipped. The
    /// host calls nothing else on the instance during a dump (any other call
    /// restarts the position at 0). Returns `false` if the plugin cannot
    /// dump (the default): the host then starts a new plugin empty.
    fn dump(&mut self, _out: &mut DumpWriter<'_>) -> bool {
        false
    }

    /// ABI v3 item load: stores one item of a dump, keeping its flags,
    /// exptime (server time), CAS and iflags. An item that is already expired
    /// or too large for this store may be dropped (`Ok`). The default: not
    /// supported.
    fn load(&mut self, _item: &Item<'_>) -> Result<(), LoadError> {
        Err(LoadError::Unsupported)
    }

    /// Sees the next items of a load chunk (two or more, at most
    /// [`PREPARE_WINDOW`]) before [`Plugin::load`] gets the first of them:
    /// [`Plugin::prepare`]'s read-ahead, for a load (a warm restart loads
    /// millions of items, each a lookup). A malformed record shows as `None`.
    fn prepare_load(&mut self, _items: abi::Records<'_, Item<'_>>) {}

    /// ABI v5 item listing (memcached's `lru_crawler metadump` and `stats
    /// cachedump`): writes what it knows of the next items into `out`,
    /// starting from [`IterWriter::cursor`] (0 when a listing starts), and
    /// tells where the next call resumes with [`IterWriter::set_cursor`]
    /// (not calling it, or 0, ends the listing after this chunk).
    ///
    /// Must not change the store: no LRU bump, no access time, no expiry
    /// work. Only live items (not expired, not flushed). The host keeps the
    /// cursor between calls and runs batches in between, so it must stay
    /// meaningful while items come and go (a slot number, a bucket index);
    /// an item stored or removed meanwhile may be listed or not. Bounded:
    /// stop when [`IterWriter::item`] answers `false`, and also after
    /// looking at a few thousand places that held nothing (a chunk with no
    /// item and a non-zero cursor is fine), so that one call never holds the
    /// worker long. Returns `false` if the plugin cannot list (the default):
    /// the client gets memcached's refusal.
    fn iter(&mut self, _out: &mut IterWriter<'_>) -> bool {
        false
    }

    /// ABI v8: called right before the host reads the metrics registered
    /// with [`crate::metrics::register`] (a scrape, `stats plugin`), to set
    /// the gauges that are cheaper to compute when asked than to keep up to
    /// date on every request. Counters and histograms need nothing here.
    fn update_metrics(&mut self) {}
}

/// Why [`Plugin::load`] did not store an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// No memory for it (the host stops loading).
    Full,
    /// The plugin cannot load items.
    Unsupported,
}

/// The records of one dump or listing chunk: bounded by `max_bytes`, but
/// the first record always fits unless the guest heap cannot hold it.
struct Chunk<'a> {
    out: &'a mut Vec<u8>,
    count: u32,
    max_bytes: usize,
    failed: bool,
}

impl<'a> Chunk<'a> {
    fn new(out: &'a mut Vec<u8>, max_bytes: usize) -> Chunk<'a> {
        Chunk {
            out,
            count: 0,
            max_bytes,
            failed: false,
        }
    }

    /// Appends one record of `len` bytes written by `encode`; `false` when
    /// the chunk is full or the heap cannot hold it (the chunk failed if
    /// that was its first record).
    fn push(&mut self, len: usize, encode: impl FnOnce(&mut Vec<u8>)) -> bool {
        if self.failed || (self.count > 0 && self.out.len() + len > self.max_bytes) {
            return false;
        }
        if self.out.try_reserve(len).is_err() {
            if self.count == 0 {
                self.failed = true;
            }
            return false;
        }
        encode(self.out);
        self.count += 1;
        true
    }
}

/// Collects the item records of one dump chunk for [`Plugin::dump`]
/// (ABI v3): [`Item`] records, each with its key, value, flags, exptime,
/// CAS, last access, iflags and (v7) `refs`.
pub struct DumpWriter<'a> {
    chunk: Chunk<'a>,
    cursor: &'a mut u64,
}

impl DumpWriter<'_> {
    /// Where this chunk starts: 0 for the first chunk, then whatever the
    /// previous call left with [`DumpWriter::set_cursor`]. Its meaning is the
    /// plugin's own.
    pub fn cursor(&self) -> u64 {
        *self.cursor
    }

    /// Where the next chunk starts (the position of the first item not
    /// written): [`DumpWriter::cursor`] returns it on the next call.
    pub fn set_cursor(&mut self, cursor: u64) {
        *self.cursor = cursor;
    }

    /// Adds one item. `false` when the chunk is full (or the guest heap
    /// cannot hold it): the item was not added and must come first in the
    /// next chunk. The first item of a chunk is always taken, whatever its
    /// size, unless the heap cannot hold it (then the dump fails).
    pub fn item(&mut self, item: &Item<'_>) -> bool {
        self.chunk.push(item.encoded_len(), |out| item.encode(out))
    }

    /// Items written to this chunk so far.
    pub fn count(&self) -> u32 {
        self.chunk.count
    }
}

/// Collects the [`ItemMeta`] records of one listing chunk for [`Plugin::iter`].
pub struct IterWriter<'a> {
    chunk: Chunk<'a>,
    start: u64,
    next: u64,
}

impl IterWriter<'_> {
    /// Where this chunk starts: 0 when the listing starts, else what the
    /// previous call passed to [`IterWriter::set_cursor`]. Its meaning is
    /// the plugin's own.
    pub fn cursor(&self) -> u64 {
        self.start
    }

    /// Where the next call starts; 0 (the default) ends the listing.
    pub fn set_cursor(&mut self, cursor: u64) {
        self.next = cursor;
    }

    /// Adds one record. `false` when the chunk is full (or the guest heap
    /// cannot hold it): the record was not added and must come first in the
    /// next chunk. The first record of a chunk is always taken unless the
    /// heap cannot hold it (then the call fails).
    pub fn item(&mut self, item: &ItemMeta<'_>) -> bool {
        self.chunk.push(item.encoded_len(), |out| item.encode(out))
    }

    /// Records written to this chunk so far.
    pub fn count(&self) -> u32 {
        self.chunk.count
    }
}

/// memcached's words when a reply cannot be built for lack of memory.
const OUT_OF_MEMORY: &str = "out of memory writing get response";
/// Room reserved per request before a batch runs, so the fallback error
/// answer always fits.
const RESERVE_PER_RESPONSE: usize = abi::RESPONSE_HEADER + OUT_OF_MEMORY.len();

/// Values at least this long go to the host by reference with
/// [`Responder::respond_held`]; shorter ones cost less to copy than to keep
/// alive for the host. Only in Wasm, where a value's address is a `u32`.
pub const HELD_MIN: usize = if cfg!(target_arch = "wasm32") {
    1024
} else {
    usize::MAX
};

/// Writes the one response for the current request: [`Responder::respond`]
/// for a full [`Response`] record (a Hit), or one of the helpers for the
/// common bare answers. Only the first answer counts.
///
/// ```
/// use wasmcached_sdk::{Response, Status};
/// # fn answer(out: &mut wasmcached_sdk::Responder<'_>, key: &[u8], value: &[u8]) {
/// out.respond(&Response {
///     status: Status::Hit as u8,
///     key, // the host wants the key back on a Hit
///     value,
///     client_flags: 7,
///     cas: 42,
///     ..Default::default()
/// });
/// # }
/// ```
pub struct Responder<'a> {
    out: &'a mut Vec<u8>,
    answered: bool,
}

impl<'a> Responder<'a> {
    /// Writes a full response record: every field of `r` as given. A Hit
    /// must echo the key and carry the item's value, client flags, exptime,
    /// CAS and last access. If the guest heap cannot hold the record (a
    /// large value in a fragmented heap), the request is answered with an
    /// error instead of trapping: the batch reserved room for that up front.
    pub fn respond(&mut self, r: &Response<'_>) {
        if self.answered {
            return;
        }
        self.answered = true;
        if self.out.try_reserve(r.encoded_len()).is_ok() {
            r.encode(self.out);
        } else {
            Response {
                status: Status::Error as u8,
                value: OUT_OF_MEMORY.as_bytes(),
                ..Default::default()
            }
            .encode(self.out);
        }
    }

    /// Like [`Responder::respond`], but a value of [`HELD_MIN`] bytes or
    /// more is not copied: the host reads it where it lies (ABI v4
    /// [`abi::iflag::VALUE_REF`]). Returns `true` when it did so; the
    /// plugin must then keep those bytes allocated and unchanged until its
    /// next [`Plugin::release_held`] (defer frees, copy before writing).
    pub fn respond_held(&mut self, r: &Response<'_>) -> bool {
        if self.answered
            || r.value.len() < HELD_MIN
            || self.out.try_reserve(r.encoded_len_held()).is_err()
        {
            self.respond(r);
            return false;
        }
        self.answered = true;
        r.encode_held(r.value.as_ptr() as usize as u32, self.out);
        true
    }

    /// Answers with a bare status: only `status` set, no key, value, flags,
    /// exptime or CAS. For Miss, NotFound, NotStored, Exists, Deleted,
    /// Touched, Ok, NonNumeric, TooLarge and OutOfMemory (text clients see
    /// `END`, `NOT_FOUND`, `NOT_STORED`, `EXISTS`, `DELETED`, `TOUCHED`,
    /// `OK`, `CLIENT_ERROR cannot increment or decrement non-numeric
    /// value`, `SERVER_ERROR object too large for cache`, `SERVER_ERROR out
    /// of memory storing object`). A Touched may also carry the new exptime
    /// and a Deleted the old one, through [`Responder::respond`].
    pub fn status(&mut self, status: Status) {
        self.respond(&Response {
            status: status as u8,
            ..Default::default()
        });
    }

    /// Answers a store (Set, Add, Replace, Append, Prepend, Cas) as done:
    /// status Stored with the item's new CAS (what `gets` and meta `c`
    /// show next; 0 when CAS is off) and its exptime (server time, 0 =
    /// never). Text clients see `STORED`.
    pub fn stored(&mut self, cas: u64, exptime: u32) {
        self.respond(&Response {
            status: Status::Stored as u8,
            cas,
            exptime,
            ..Default::default()
        });
    }

    /// Answers Incr/Decr with the new value: status Number, the value's
    /// ASCII decimal digits as the response value (what the client sees),
    /// and the item's new CAS.
    pub fn number(&mut self, value: u64, cas: u64) {
        let mut buf = [0u8; 20];
        let digits = fmt_u64(value, &mut buf);
        self.respond(&Response {
            status: Status::Number as u8,
            value: digits,
            cas,
            ..Default::default()
        });
    }

    /// Answers status Error with `msg` as the value: the client sees
    /// `SERVER_ERROR msg` (meta and binary clients their protocol's server
    /// error). The answer for an op or flag the plugin does not implement.
    pub fn error(&mut self, msg: &str) {
        self.respond(&Response {
            status: Status::Error as u8,
            value: msg.as_bytes(),
            ..Default::default()
        });
    }

    /// Whether the request has been answered (a second answer is ignored;
    /// no answer at all becomes an Error `plugin gave no answer`).
    pub fn answered(&self) -> bool {
        self.answered
    }
}

/// Decimal digits as the ABI carries numbers (incr/decr answers).
pub use wasmcached_abi::fmt_u64;

/// Collects the `name value` lines of [`Plugin::stats`].
///
/// The host combines each stat over the shards (`stats`, `stats plugin`;
/// `stats shards` shows every shard's own). [`stat`](Self::stat) leaves
/// the rule to the name: summed, but the largest shard's for names that
/// end in `age`, `_time`, `chunk_size`, `_running`, ... . The typed calls
/// say it: [`counter`](Self::counter) and [`gauge`](Self::gauge) are
/// summed whatever the name, [`max`](Self::max) takes the largest,
/// [`text`](Self::text) is shown per shard only.
pub struct StatsWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl StatsWriter<'_> {
    /// Writes one `name value\n` line; the host shows it as `STAT name
    /// value`. `name` must not contain spaces or line breaks.
    pub fn stat(&mut self, name: &str, value: impl std::fmt::Display) {
        use std::io::Write;
        let _ = writeln!(self.out, "{name} {value}");
    }

    /// A count of events (summed over the shards, even for a name ending
    /// in `_time`).
    pub fn counter(&mut self, name: &str, value: u64) {
        self.typed(abi::StatType::Counter, name, value)
    }

    /// A level, such as items or bytes held (summed over the shards).
    pub fn gauge(&mut self, name: &str, value: u64) {
        self.typed(abi::StatType::Gauge, name, value)
    }

    /// A high-water mark, a size or a time: the largest shard's shows.
    pub fn max(&mut self, name: &str, value: u64) {
        self.typed(abi::StatType::Max, name, value)
    }

    /// A label (a mode, a version): shown only per shard, by `stats
    /// shards`, never combined.
    pub fn text(&mut self, name: &str, value: &str) {
        self.typed(abi::StatType::Text, name, value)
    }

    /// The declaration line, then the stat line: a host that does not know
    /// declarations skips that line and reads the stat as [`stat`](Self::stat)'s.
    fn typed(&mut self, t: abi::StatType, name: &str, value: impl std::fmt::Display) {
        use std::io::Write;
        let _ = writeln!(self.out, "{}\n{name} {value}", t.declaration());
    }
}

/// Logs `msg` through the host at `level` (one of [`abi::log_level`]):
/// the server shows errors with `-v`, warnings and info with `-vv`, debug
/// with `-vvv`. Natively, it goes to stderr (and to
/// [`test_clock::take_logs`]).
pub fn log(level: i32, msg: &str) {
    host::log(level, msg)
}

/// Longest panic log line, in bytes; a longer message is cut (at a
/// character boundary) and ends with `…`.
const PANIC_LINE_MAX: usize = 1024;

/// Installs, once, the panic hook of Rust plugins: a panic is logged through
/// the host at level ERROR as `plugin panicked at FILE:LINE:COL: MESSAGE`
/// before the instance traps (with panic = "abort" too: the hook runs
/// before the abort). The exports [`export_plugin!`](crate::export_plugin)
/// generates call it (in [`with_runtime`]) before anything else runs; a
/// plugin that wants its own hook sets it in [`Plugin::init`], which runs
/// later.
pub fn install_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| std::panic::set_hook(Box::new(|info| report_panic(info, log))));
}

/// The hook: formats the panic into a line on the stack (the heap may be
/// what ran out) and hands it to `sink` at level ERROR.
fn report_panic(info: &PanicHookInfo<'_>, sink: impl FnOnce(i32, &str)) {
    let mut line = PanicLine::new();
    write_panic(&mut line, info.location(), info.payload_as_str());
    sink(abi::log_level::ERROR, line.finish());
}

/// Writes a panic's log line: std's `panicked at FILE:LINE:COL:` and the
/// message, on one line. A payload that is not a string (`panic_any`)
/// reads `Box<dyn Any>`, as std says.
fn write_panic(out: &mut PanicLine, location: Option<&Location<'_>>, message: Option<&str>) {
    let message = message.unwrap_or("Box<dyn Any>");
    // PanicLine never fails: it cuts instead.
    let _ = match location {
        Some(l) => write!(
            out,
            "plugin panicked at {}:{}:{}: {message}",
            l.file(),
            l.line(),
            l.column()
        ),
        None => write!(out, "plugin panicked: {message}"),
    };
}

/// A fixed buffer for the panic log line: formatting into it allocates
/// nothing, and what does not fit is dropped (the line then ends in `…`).
struct PanicLine {
    buf: [u8; PANIC_LINE_MAX],
    len: usize,
    cut: bool,
}

impl PanicLine {
    const ELLIPSIS: &'static str = "…";

    fn new() -> PanicLine {
        PanicLine {
            buf: [0; PANIC_LINE_MAX],
            len: 0,
            cut: false,
        }
    }

    /// The text so far. Only whole `&str`s and their prefixes cut at
    /// character boundaries were copied in, so it is always UTF-8.
    fn text(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("plugin panicked")
    }

    /// Appends the longest prefix of `s` that fits and ends at a character
    /// boundary; `false` if that is not all of `s`.
    fn push(&mut self, s: &str) -> bool {
        let mut end = s.len().min(PANIC_LINE_MAX - self.len);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.buf[self.len..self.len + end].copy_from_slice(&s.as_bytes()[..end]);
        self.len += end;
        end == s.len()
    }

    /// The line; if something was cut, its end gives way to `…`.
    fn finish(&mut self) -> &str {
        if self.cut {
            self.cut = false;
            let text = self.text();
            let mut end = text.len().min(PANIC_LINE_MAX - Self::ELLIPSIS.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            self.len = end;
            self.push(Self::ELLIPSIS);
        }
        self.text()
    }
}

impl std::fmt::Write for PanicLine {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if !self.cut && !self.push(s) {
            self.cut = true;
        }
        Ok(())
    }
}

/// The server clock: seconds since the server started (memcached's
/// `current_time`), the clock every exptime is in. An item whose exptime
/// is non-zero and at or below `now()` has expired. It is read from the
/// host once as each call into the plugin begins (a batch, a tick, …), so
/// asking on every request costs nothing. Natively it is
/// whatever [`test_clock::set`] (or [`crate::testing::Harness`]) made it;
/// 1 until then.
pub fn now() -> u32 {
    host::now()
}

/// Asks the host to call [`Plugin::timer`] with `token` after `delay_ms`
/// milliseconds. Natively, the request is recorded ([`test_clock::timers`]).
pub fn timer_set(token: u64, delay_ms: u32) {
    host::timer_set(token, delay_ms)
}

thread_local! {
    /// The request `handle` is running: its index in the batch and its
    /// mflags, so that the `log_*` reports below need neither (u32::MAX
    /// and 0 outside a batch: nothing is reported).
    static RUNNING: std::cell::Cell<(u32, u32)> = const { std::cell::Cell::new((u32::MAX, 0)) };
}

/// Whether the running request asked for the reports of `mflag`
/// ([`abi::mflag::LOG_LOOKUP`], [`abi::mflag::LOG_EVICTIONS`]): the host
/// asks only while someone watches, so a plugin may skip gathering what
/// it would report otherwise.
#[inline]
pub fn logging(mflag: u32) -> bool {
    RUNNING.with(|r| r.get().1 & mflag != 0)
}

/// An item a lookup found, as [`log_lookup`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// The value's length in bytes.
    pub value_len: u32,
    /// The item's client flags.
    pub client_flags: u32,
}

/// Reports the lookup of `key` the running request made (memcached's
/// `do_item_get`: logged as `type=item_get` to `watch fetchers`): `found`
/// is the live item, `None` when there was none (or it had expired or was
/// flushed). Does nothing unless the request asked
/// ([`abi::mflag::LOG_LOOKUP`]). Call it once per lookup memcached would
/// make: a store, delete, touch, incr/decr or get looks its key up once.
#[inline]
pub fn log_lookup(key: &[u8], found: Option<Found>) {
    if logging(abi::mflag::LOG_LOOKUP) {
        let f = found.unwrap_or(Found {
            value_len: 0,
            client_flags: 0,
        });
        report(&abi::Event {
            kind: abi::event_kind::LOOKUP,
            flags: if found.is_some() {
                abi::event_flag::FOUND
            } else {
                0
            },
            key,
            value_len: f.value_len,
            client_flags: f.client_flags,
            ..Default::default()
        });
    }
}

/// Reports a store the host cannot see the outcome of: an Append/Prepend
/// that left `value_len` bytes (the size memcached's `item_store` line
/// shows), or an item an Incr/Decr created with VIVIFY (memcached stores
/// it with an `add`, logged as such), expiring at `exptime`. Does
/// nothing unless the request asked ([`abi::mflag::LOG_LOOKUP`]).
#[inline]
pub fn log_stored(key: &[u8], value_len: u32, client_flags: u32, exptime: u32) {
    if logging(abi::mflag::LOG_LOOKUP) {
        report(&abi::Event {
            kind: abi::event_kind::STORED,
            key,
            value_len,
            client_flags,
            exptime,
            ..Default::default()
        });
    }
}

/// An item evicted to make room, as [`log_eviction`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evicted<'a> {
    /// The evicted item's key.
    pub key: &'a [u8],
    /// It had been read since it was stored.
    pub fetched: bool,
    /// Server time it expired at; 0 = never.
    pub exptime: u32,
    /// Server time of its last store or access.
    pub last_access: u32,
    /// Its client flags.
    pub client_flags: u32,
    /// Its value's length in bytes.
    pub value_len: u32,
}

/// Reports an eviction (logged as `type=eviction` to `watch evictions`).
/// Does nothing unless the running request asked
/// ([`abi::mflag::LOG_EVICTIONS`]).
#[inline]
pub fn log_eviction(e: &Evicted<'_>) {
    if logging(abi::mflag::LOG_EVICTIONS) {
        report(&abi::Event {
            kind: abi::event_kind::EVICTION,
            flags: if e.fetched {
                abi::event_flag::FETCHED
            } else {
                0
            },
            key: e.key,
            value_len: e.value_len,
            client_flags: e.client_flags,
            exptime: e.exptime,
            last_access: e.last_access,
            ..Default::default()
        });
    }
}

#[cold]
fn report(e: &abi::Event<'_>) {
    let mut buf = Vec::with_capacity(abi::EVENT_HEADER + e.key.len());
    abi::Event {
        request: RUNNING.with(|r| r.get().0),
        ..e.clone()
    }
    .encode(&mut buf);
    host::log_event(&buf);
}

/// The host's side of the clock, timers, logs and events in native unit
/// tests of plugins (not on wasm32). [`crate::testing::Harness`] wraps
/// these; use them directly to test a part of a store without a harness.
/// All of it is per thread, as `cargo test` runs each test on its own.
#[cfg(not(target_arch = "wasm32"))]
pub mod test_clock {
    /// Sets the value [`super::now`] returns on this thread.
    pub fn set(now: u32) {
        crate::host::CLOCK.with(|c| c.set(now))
    }
    /// Timers requested so far on this thread, as (token, delay_ms).
    pub fn timers() -> Vec<(u64, u32)> {
        crate::host::TIMERS.with(|t| t.borrow().clone())
    }
    /// The `log_event` records reported so far on this thread (taken),
    /// back to back: read them with [`crate::abi::Event::all`].
    pub fn take_events() -> Vec<u8> {
        crate::host::EVENTS.with(|e| std::mem::take(&mut *e.borrow_mut()))
    }
    /// The lines [`super::log`] wrote so far on this thread (taken), with
    /// their [`crate::abi::log_level`].
    pub fn take_logs() -> Vec<(i32, String)> {
        crate::host::LOGS.with(|l| std::mem::take(&mut *l.borrow_mut()))
    }
    /// Runs `f` as if it handled request `index` of a batch with `mflags`
    /// (what [`super::log_lookup`] and friends look at).
    pub fn as_request<R>(index: u32, mflags: u32, f: impl FnOnce() -> R) -> R {
        super::RUNNING.with(|r| r.set((index, mflags)));
        let out = f();
        super::RUNNING.with(|r| r.set((u32::MAX, 0)));
        out
    }
}

/// Per-instance SDK state: the plugin and the buffers shared with the host.
/// Used by the code [`export_plugin!`](crate::export_plugin) generates;
/// not for plugin code.
pub struct Runtime<P> {
    plugin: Option<P>,
    input: Vec<u8>,
    output: Vec<u8>,
    /// The plugin's dump position; reset by any export but `wmc_dump` and `wmc_input`.
    dump_cursor: u64,
    /// The running dump has returned its last chunk.
    dump_done: bool,
    /// The last `wmc_metrics` block, apart from `output` so that asking
    /// for the metrics disturbs no answer and no dump.
    metrics: Vec<u8>,
}

impl<P: Plugin> Default for Runtime<P> {
    fn default() -> Self {
        Runtime {
            plugin: None,
            input: Vec::new(),
            output: Vec::new(),
            dump_cursor: 0,
            dump_done: false,
            metrics: Vec::new(),
        }
    }
}

impl<P: Plugin> Runtime<P> {
    /// `wmc_input(size)`: a buffer of at least `size` bytes the host writes into.
    /// Null if the heap cannot provide it; the host then fails the batch
    /// without trapping the instance.
    pub fn input(&mut self, size: usize) -> *mut u8 {
        if self.input.len() < size {
            if self.input.try_reserve(size - self.input.len()).is_err() {
                return std::ptr::null_mut();
            }
            self.input.resize(size, 0);
        }
        self.input.as_mut_ptr()
    }

    /// The native test harness's `wmc_input` + copy: the next call reads
    /// `bytes`.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn set_input(&mut self, bytes: &[u8]) {
        self.input.clear();
        self.input.extend_from_slice(bytes);
    }

    /// The plugin, once `init` accepted.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn plugin_mut(&mut self) -> Option<&mut P> {
        self.plugin.as_mut()
    }

    /// Any export other than `wmc_dump` ends a running dump.
    fn end_dump(&mut self) {
        self.dump_cursor = 0;
        self.dump_done = false;
    }

    /// `wmc_init(len)`: 0 on success, 1 bad record, 2 ABI mismatch, 3 plugin refused.
    pub fn init(&mut self, len: usize) -> i32 {
        self.end_dump();
        let Some(init) = self.input.get(..len).and_then(Init::decode) else {
            return 1;
        };
        if init.abi_version != abi::ABI_VERSION {
            return 2;
        }
        let config = Config {
            shard_id: init.shard_id,
            shard_count: init.shard_count,
            memory_budget: init.memory_budget,
            max_item_size: init.max_item_size,
            cas_enabled: init.flags & abi::init_flag::CAS != 0,
            no_evict: init.flags & abi::init_flag::NO_EVICT != 0,
            now: init.now,
            config: String::from_utf8_lossy(init.config).into_owned(),
            hints: match abi::Hints::decode(init.hints) {
                Some(h) => h,
                None => return 1,
            },
        };
        match P::init(&config) {
            Ok(p) => {
                self.plugin = Some(p);
                0
            }
            Err(e) => {
                log(abi::log_level::ERROR, &e);
                3
            }
        }
    }

    /// `wmc_batch(len)`: handles the request batch in the input buffer and
    /// returns the response batch (one response per request, in order).
    pub fn batch(&mut self, len: usize) -> &[u8] {
        self.end_dump();
        let Runtime {
            plugin,
            input,
            output,
            ..
        } = self;
        abi::begin_batch(output);
        if let Some(p) = plugin.as_mut() {
            p.release_held();
        }
        let mut count = 0u32;
        let reqs = input.get(..len).and_then(abi::requests);
        let announced = input.get(..len).map_or(0, |b| {
            if b.len() >= abi::BATCH_HEADER {
                abi::batch_count(b) as usize
            } else {
                0
            }
        });
        if output
            .try_reserve(announced.saturating_mul(RESERVE_PER_RESPONSE))
            .is_err()
        {
            // Not even room for error answers: an empty batch tells the host.
            return output;
        }
        if let (Some(plugin), Some(mut reqs)) = (plugin.as_mut(), reqs) {
            // `next` yields a record (or `None` for a malformed one, which
            // ends the batch) as long as `left` is non-zero, so every window
            // makes progress.
            while reqs.left() > 0 {
                if reqs.left() > 1 {
                    plugin.prepare(reqs.window(PREPARE_WINDOW));
                }
                for req in reqs.by_ref().take(PREPARE_WINDOW) {
                    let mut r = Responder {
                        out: output,
                        answered: false,
                    };
                    match req {
                        Some(req) => {
                            RUNNING.with(|c| c.set((count, req.mflags)));
                            plugin.handle(&req, &mut r);
                            if !r.answered() {
                                r.error("plugin gave no answer");
                            }
                        }
                        None => r.error("malformed request record"),
                    }
                    count += 1;
                }
            }
        }
        RUNNING.with(|c| c.set((u32::MAX, 0)));
        abi::set_batch_count(output, count);
        output
    }

    /// `wmc_tick(now)`: [`Plugin::release_held`], then [`Plugin::tick`].
    pub fn tick(&mut self, now: u32) {
        self.end_dump();
        if let Some(p) = self.plugin.as_mut() {
            p.release_held();
            p.tick(now)
        }
    }

    /// `wmc_timer(token)`: [`Plugin::timer`].
    pub fn timer(&mut self, token: u64) {
        self.end_dump();
        if let Some(p) = self.plugin.as_mut() {
            p.timer(token)
        }
    }

    /// `wmc_stats(group)`: the `name value` lines [`Plugin::stats`] wrote.
    pub fn stats(&mut self, group: i32) -> &[u8] {
        self.end_dump();
        self.output.clear();
        if let Some(p) = self.plugin.as_mut() {
            p.stats(
                group,
                &mut StatsWriter {
                    out: &mut self.output,
                },
            );
        }
        &self.output
    }

    /// `wmc_dump(max_bytes)`: the next chunk of the dump (`Ok(empty)` once
    /// no items remain), or the [`abi::dump_status`] code to return instead.
    pub fn dump(&mut self, max_bytes: usize) -> Result<&[u8], i64> {
        self.output.clear();
        let Some(plugin) = self.plugin.as_mut() else {
            return Err(abi::dump_status::UNSUPPORTED);
        };
        if self.dump_done {
            return Ok(&self.output);
        }
        abi::begin_batch(&mut self.output);
        let mut w = DumpWriter {
            chunk: Chunk::new(&mut self.output, max_bytes),
            cursor: &mut self.dump_cursor,
        };
        if !plugin.dump(&mut w) {
            self.output.clear();
            return Err(abi::dump_status::UNSUPPORTED);
        }
        let (count, failed) = (w.chunk.count, w.chunk.failed);
        if failed {
            self.output.clear();
            return Err(abi::dump_status::FAILED);
        }
        if count == 0 {
            self.dump_done = true;
            self.output.clear();
        } else {
            abi::set_batch_count(&mut self.output, count);
        }
        Ok(&self.output)
    }

    /// `wmc_iter(cursor, max_bytes)`: the next chunk of an item listing
    /// (header, records), or the [`abi::iter_status`] code to return instead.
    pub fn iter(&mut self, cursor: u64, max_bytes: usize) -> Result<&[u8], i64> {
        self.end_dump();
        self.output.clear();
        let Some(plugin) = self.plugin.as_mut() else {
            return Err(abi::iter_status::UNSUPPORTED);
        };
        if self.output.try_reserve(abi::ITER_HEADER).is_err() {
            return Err(abi::iter_status::FAILED);
        }
        abi::begin_iter_chunk(&mut self.output);
        let mut w = IterWriter {
            chunk: Chunk::new(&mut self.output, max_bytes),
            start: cursor,
            next: 0,
        };
        if !plugin.iter(&mut w) {
            self.output.clear();
            return Err(abi::iter_status::UNSUPPORTED);
        }
        let (count, next, failed) = (w.chunk.count, w.next, w.chunk.failed);
        if failed {
            self.output.clear();
            return Err(abi::iter_status::FAILED);
        }
        abi::finish_iter_chunk(&mut self.output, count, next);
        Ok(&self.output)
    }

    /// `wmc_metrics()`: the descriptor block of every registered metric,
    /// after [`Plugin::update_metrics`].
    pub fn metrics(&mut self) -> &[u8] {
        if let Some(p) = self.plugin.as_mut() {
            p.update_metrics();
        }
        crate::metrics::write_block(&mut self.metrics);
        &self.metrics
    }

    /// `wmc_load(len)`: stores the item chunk in the input buffer; one of
    /// [`abi::load_status`].
    pub fn load(&mut self, len: usize) -> i32 {
        self.end_dump();
        let Some(plugin) = self.plugin.as_mut() else {
            return abi::load_status::UNSUPPORTED;
        };
        let Some(items) = self.input.get(..len).and_then(abi::items) else {
            return abi::load_status::MALFORMED;
        };
        let mut items = items;
        while items.left() > 0 {
            if items.left() > 1 {
                plugin.prepare_load(items.window(PREPARE_WINDOW));
            }
            for item in items.by_ref().take(PREPARE_WINDOW) {
                let Some(item) = item else {
                    return abi::load_status::MALFORMED;
                };
                match plugin.load(&item) {
                    Ok(()) => {}
                    Err(LoadError::Full) => return abi::load_status::FULL,
                    Err(LoadError::Unsupported) => return abi::load_status::UNSUPPORTED,
                }
            }
        }
        abi::load_status::OK
    }
}

/// Packs a guest buffer as the `i64` that `wmc_batch` / `wmc_stats` return.
pub fn pack(buf: &[u8]) -> i64 {
    abi::pack_ptr_len(buf.as_ptr() as usize as u32, buf.len() as u32)
}

/// Runs `f` on a thread-local runtime, after installing the SDK's panic
/// hook ([`install_panic_hook`]) the first time and reading the host's
/// clock for the call ([`now`]). Used by
/// [`export_plugin!`](crate::export_plugin).
pub fn with_runtime<P: Plugin, R>(
    cell: &'static std::thread::LocalKey<RefCell<Runtime<P>>>,
    f: impl FnOnce(&mut Runtime<P>) -> R,
) -> R {
    install_panic_hook();
    host::enter();
    cell.with(|rt| f(&mut rt.borrow_mut()))
}

/// Generates the ABI v8 exports for a [`Plugin`] type (`wmc_dump`,
/// `wmc_load` and `wmc_iter` always; they answer "unsupported" unless the
/// plugin implements [`Plugin::dump`] / [`Plugin::load`] / [`Plugin::iter`];
/// `wmc_metrics` describes the metrics registered with
/// [`crate::metrics::register`], none by default):
/// `wasmcached_sdk::export_plugin!(MyStore);`
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        mod __wasmcached_exports {
            use super::*;
            use $crate::guest::{pack, with_runtime, Runtime};
            std::thread_local! {
                static RT: std::cell::RefCell<Runtime<$plugin>> =
                    std::cell::RefCell::new(Runtime::default());
            }

            #[no_mangle]
            pub extern "C" fn wmc_abi_version() -> i32 {
                $crate::abi::ABI_VERSION as i32
            }

            #[no_mangle]
            pub extern "C" fn wmc_input(size: i32) -> i32 {
                with_runtime(&RT, |rt| rt.input(size as u32 as usize) as usize as i32)
            }

            #[no_mangle]
            pub extern "C" fn wmc_init(len: i32) -> i32 {
                with_runtime(&RT, |rt| rt.init(len as u32 as usize))
            }

            #[no_mangle]
            pub extern "C" fn wmc_batch(len: i32) -> i64 {
                with_runtime(&RT, |rt| pack(rt.batch(len as u32 as usize)))
            }

            #[no_mangle]
            pub extern "C" fn wmc_tick(now: i32) {
                with_runtime(&RT, |rt| rt.tick(now as u32))
            }

            #[no_mangle]
            pub extern "C" fn wmc_timer(token: i64) {
                with_runtime(&RT, |rt| rt.timer(token as u64))
            }

            #[no_mangle]
            pub extern "C" fn wmc_stats(group: i32) -> i64 {
                with_runtime(&RT, |rt| pack(rt.stats(group)))
            }

            #[no_mangle]
            pub extern "C" fn wmc_dump(max_bytes: i32) -> i64 {
                with_runtime(&RT, |rt| match rt.dump(max_bytes.max(0) as usize) {
                    Ok(chunk) if chunk.is_empty() => 0,
                    Ok(chunk) => pack(chunk),
                    Err(code) => code,
                })
            }

            #[no_mangle]
            pub extern "C" fn wmc_load(len: i32) -> i32 {
                with_runtime(&RT, |rt| rt.load(len as u32 as usize))
            }

            #[no_mangle]
            pub extern "C" fn wmc_metrics() -> i64 {
                with_runtime(&RT, |rt| pack(rt.metrics()))
            }

            #[no_mangle]
            pub extern "C" fn wmc_iter(cursor: i64, max_bytes: i32) -> i64 {
                with_runtime(&RT, |rt| {
                    match rt.iter(cursor as u64, max_bytes.max(0) as usize) {
                        Ok(chunk) => pack(chunk),
                        Err(code) => code,
                    }
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(location: Option<&Location<'_>>, message: Option<&str>) -> String {
        let mut l = PanicLine::new();
        write_panic(&mut l, location, message);
        l.finish().to_string()
    }

    #[test]
    fn panic_line_has_location_and_message() {
        let here = Location::caller();
        assert_eq!(
            line(Some(here), Some("boom: k1")),
            format!(
                "plugin panicked at {}:{}:{}: boom: k1",
                here.file(),
                here.line(),
                here.column()
            )
        );
        assert_eq!(line(None, Some("boom")), "plugin panicked: boom");
        assert_eq!(line(None, None), "plugin panicked: Box<dyn Any>");
    }

    #[test]
    fn long_panic_line_is_cut_at_a_character() {
        let long = "é".repeat(PANIC_LINE_MAX);
        let l = line(None, Some(&long));
        assert!(l.len() <= PANIC_LINE_MAX, "{}", l.len());
        assert!(l.len() > PANIC_LINE_MAX - 8, "{}", l.len());
        assert!(l.starts_with("plugin panicked: éé"));
        assert!(l.ends_with("é…"), "{l}");
        let fits = "x".repeat(PANIC_LINE_MAX - "plugin panicked: ".len());
        assert_eq!(line(None, Some(&fits)), format!("plugin panicked: {fits}"));
        let over = format!("{fits}y");
        let cut = line(None, Some(&over));
        assert_eq!(cut.len(), PANIC_LINE_MAX);
        assert!(cut.ends_with("x…"), "{cut}");
    }

    /// The hook itself, on a real panic (formatted message, `panic!`'s
    /// location): one ERROR line. Restores the previous hook. Another
    /// test's panic meanwhile (the harness's `should_panic` one) lands in
    /// its own thread's list, not this one's.
    #[test]
    fn hook_logs_message_and_location_at_error() {
        thread_local! {
            static LOGGED: RefCell<Vec<(i32, String)>> = const { RefCell::new(Vec::new()) };
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|info| {
            report_panic(info, |level, msg| {
                LOGGED.with(|l| l.borrow_mut().push((level, msg.to_string())))
            })
        }));
        /// Panics at its caller's location, which it also returns first.
        #[track_caller]
        fn boom(key: &str, at: &mut Option<&'static Location<'static>>) {
            *at = Some(Location::caller());
            panic!("boom: {key}");
        }
        let mut at = None;
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| boom("panic-me", &mut at)));
        std::panic::set_hook(previous);
        assert!(result.is_err());
        let at = at.expect("boom ran");
        let logged = LOGGED.with(|l| l.borrow().clone());
        assert_eq!(
            logged,
            vec![(
                abi::log_level::ERROR,
                format!(
                    "plugin panicked at {}:{}:{}: boom: panic-me",
                    at.file(),
                    at.line(),
                    at.column()
                )
            )]
        );
    }
}

#[cfg(test)]
mod iter_tests {
    use super::*;

    /// Lists `keys[i]` for i from the cursor on; skips empty names as if
    /// they were free places.
    struct Listed {
        keys: Vec<&'static str>,
    }

    impl Plugin for Listed {
        fn init(_config: &Config) -> Result<Self, String> {
            Ok(Listed {
                keys: vec!["a", "", "", "b", "c", "", "d"],
            })
        }

        fn handle(&mut self, _req: &Request<'_>, out: &mut Responder<'_>) {
            out.status(Status::Miss)
        }

        fn iter(&mut self, out: &mut IterWriter<'_>) -> bool {
            let mut i = out.cursor() as usize;
            // At most three places a call, as a store bounds its scan.
            let end = (i + 3).min(self.keys.len());
            while i < end {
                let k = self.keys[i];
                if !k.is_empty()
                    && !out.item(&ItemMeta {
                        key: k.as_bytes(),
                        value_len: i as u32,
                        ..Default::default()
                    })
                {
                    break;
                }
                i += 1;
            }
            out.set_cursor(if i == self.keys.len() { 0 } else { i as u64 });
            true
        }
    }

    /// Does not implement `iter`.
    struct Silent;

    impl Plugin for Silent {
        fn init(_config: &Config) -> Result<Self, String> {
            Ok(Silent)
        }
        fn handle(&mut self, _req: &Request<'_>, out: &mut Responder<'_>) {
            out.status(Status::Miss)
        }
    }

    fn started<P: Plugin>() -> Runtime<P> {
        let mut rt = Runtime::<P>::default();
        let mut init = Vec::new();
        Init {
            abi_version: abi::ABI_VERSION,
            shard_count: 1,
            ..Default::default()
        }
        .encode(&mut init);
        let p = rt.input(init.len());
        // SAFETY: `input` returned a buffer of at least `init.len()` bytes.
        unsafe { std::ptr::copy_nonoverlapping(init.as_ptr(), p, init.len()) };
        assert_eq!(rt.init(init.len()), 0);
        rt
    }

    fn keys(chunk: &[u8]) -> (u64, Vec<String>) {
        let (cursor, recs) = abi::iter_chunk(chunk).unwrap();
        let keys = recs
            .map(|r| String::from_utf8(r.unwrap().key.to_vec()).unwrap())
            .collect();
        assert!(abi::check_iter_chunk(chunk).is_some());
        (cursor, keys)
    }

    #[test]
    fn a_listing_walks_in_bounded_chunks_from_the_hosts_cursor() {
        let mut rt = started::<Listed>();
        let mut cursor = 0;
        let mut seen = Vec::new();
        let mut calls = 0;
        loop {
            let (next, k) = keys(rt.iter(cursor, 1 << 20).unwrap());
            seen.extend(k);
            calls += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert_eq!(seen, ["a", "b", "c", "d"]);
        assert_eq!(calls, 3);
        // Any cursor may be asked again: nothing changed in between.
        assert_eq!(
            keys(rt.iter(3, 1 << 20).unwrap()),
            (6, vec!["b".into(), "c".into()])
        );
        // A full chunk stops early; the record that did not fit comes next.
        let one = ItemMeta {
            key: b"b",
            ..Default::default()
        }
        .encoded_len();
        let (next, k) = keys(rt.iter(3, abi::ITER_HEADER + one).unwrap());
        assert_eq!((next, k), (4, vec!["b".to_string()]));
        // The first record is always taken, whatever max_bytes says.
        assert_eq!(keys(rt.iter(3, 0).unwrap()), (4, vec!["b".into()]));
    }

    #[test]
    fn a_plugin_without_iter_answers_unsupported() {
        let mut rt = started::<Silent>();
        assert_eq!(rt.iter(0, 1 << 20), Err(abi::iter_status::UNSUPPORTED));
        let mut none = Runtime::<Listed>::default();
        assert_eq!(none.iter(0, 1 << 20), Err(abi::iter_status::UNSUPPORTED));
    }
}

#[cfg(test)]
mod stats_writer_tests {
    use super::*;

    #[test]
    fn typed_stats_are_declared_on_the_line_before_and_stat_stays_untyped() {
        let mut out = Vec::new();
        let mut w = StatsWriter { out: &mut out };
        w.stat("curr_items", 3);
        w.counter("busy_time", 7);
        w.gauge("queue_age", 2);
        w.max("peak_bytes", 9);
        w.text("role", "primary east");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "curr_items 3\n#counter\nbusy_time 7\n#gauge\nqueue_age 2\n\
             #max\npeak_bytes 9\n#text\nrole primary east\n"
        );
    }

    #[test]
    fn every_declaration_reads_back_as_its_type() {
        for t in abi::StatType::ALL {
            let mut out = Vec::new();
            StatsWriter { out: &mut out }.typed(t, "n", 1);
            let text = String::from_utf8(out).unwrap();
            let (decl, line) = text.split_once('\n').unwrap();
            assert_eq!(abi::StatType::declared_by(decl), Some(t));
            assert_eq!(line, "n 1\n");
        }
    }
}
