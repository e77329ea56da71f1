//! The memcached **text** (ASCII) protocol parser: classic commands, byte-for-byte like
//! memcached 1.6.18.
//!
//! This is a pure module: no I/O, no allocation per command, `std` only (so it can be
//! compiled and tested on its own with
//! `rustc --edition 2021 --test -O protocol/src/text.rs`). The connection layer hands it
//! the unconsumed bytes of a connection's read buffer and gets back one [`Parsed`] value
//! describing the *first* command in it.
//!
//! # Why "exact"
//! wasmcached is a drop-in replacement, so every reply string, every limit and every odd
//! corner is copied from memcached 1.6.18 (`proto_text.c`: `try_read_command_ascii`,
//! `tokenize_command`, `process_command_ascii` and the `process_*_command` functions;
//! `util.c`: `safe_strto*`). Every rule below was checked against the real Debian
//! `memcached 1.6.18` binary over a socket; the unit tests at the bottom encode what it
//! answered. Where memcached's behaviour depends on its configuration or connection state
//! (e.g. `-F` disabling `flush_all`), the command carries the parse outcome so the host can
//! apply its check first and still answer in memcached's order.
//!
//! # Contract with the connection layer (see also [`Parsed`])
//! * Call [`parse`] with the unconsumed bytes. On [`Parsed::Incomplete`] read more and call
//!   again with the (grown) buffer; on anything else drop `consumed` bytes.
//! * [`Parsed::Error`]: write `reply` + `\r\n` unless `noreply` (memcached silences
//!   *errors too* when the client said `noreply`) or the reply is empty; if `unlink` is set
//!   remove that key from the store (memcached does so when a `set` is too large); then
//!   discard the next `swallow` bytes of the stream, which may not have arrived yet
//!   (memcached's `conn_swallow`); if `close`, close the connection *without* writing
//!   replies that are still queued (memcached's `conn_closing`).
//! * Meta commands (`mg ms md ma mn me`) are recognised but not parsed: see
//!   [`Command::Meta`].
//! * When replies reach the socket matters in two cases only ([`GetEnd::KeyTooLong`] and
//!   `close`, which both drop replies not yet written). memcached writes its queued replies
//!   after each retrieval (`get`/`gets`/`gat`/`gats`/`bget`), after `mn`, after 20 commands
//!   of one read batch (`-R`), on `quit`, and whenever it needs more bytes for a command
//!   *line*. While it waits for, or swallows, a data block it does not write: the reply to a
//!   too-large `set` goes out only once its data is swallowed (all verified).
//! * Choosing the protocol is not this module's job: memcached treats a connection whose
//!   first byte is `0x80` as binary protocol and never hands it to the text parser.

/// Longest key memcached accepts (`KEY_MAX_LENGTH`).
pub const KEY_MAX_LENGTH: usize = 250;

/// memcached's `MAX_TOKENS`: its tokenizer returns at most 23 real tokens plus a terminal
/// one; anything after the 23rd token is left unprocessed (only `get` looks at it again).
pub const MAX_TOKENS: usize = 24;

/// Real tokens the tokenizer returns at most (`MAX_TOKENS - 1`).
const MAX_REAL_TOKENS: usize = MAX_TOKENS - 1;

/// `try_read_command_ascii`: when more than this many bytes are buffered without a `\n`,
/// memcached closes the connection unless the line is a large `get`/`gets`.
pub const LINE_PEEK_LIMIT: usize = 2048;

/// memcached's fixed read buffer (`READ_BUFFER_SIZE`). A command line longer than this can
/// never be seen whole (only `get`/`gets` switch to a growable buffer), so memcached always
/// closes on it; we reproduce that deterministically.
pub const READ_BUFFER_SIZE: usize = 16384;

/// `sizeof(item)` of a 64-bit memcached 1.6.18: the fixed item header that counts against
/// `-I` (`item_size_max`). Verified with `-I 1k`/`1m`/`2m`, with and without `-C`.
pub const ITEM_HEADER_SIZE: usize = 48;

/// Slab class ids are below this (`MAX_NUMBER_OF_SLAB_CLASSES`); `stats cachedump` checks it.
pub const MAX_NUMBER_OF_SLAB_CLASSES: u32 = 64;

/// Every reply string this module produces or that the host must produce for a command this
/// module parses, without the trailing `\r\n`. Exported so the host can match on them
/// (e.g. to count `store_too_large`) instead of repeating literals.
pub mod reply {
    /// Unknown command, wrong number of tokens, and several admin-command failures.
    pub const ERROR: &str = "ERROR";
    /// Key too long, unparsable numbers in a storage command, bad length, ...
    pub const BAD_FORMAT: &str = "CLIENT_ERROR bad command line format";
    /// The data block of a storage command did not end in `\r\n`.
    pub const BAD_DATA_CHUNK: &str = "CLIENT_ERROR bad data chunk";
    /// The item (header + key + value) would exceed `-I`.
    pub const TOO_LARGE: &str = "SERVER_ERROR object too large for cache";
    /// The store could not allocate the item (host/store side; the data is swallowed).
    pub const OUT_OF_MEMORY_STORING: &str = "SERVER_ERROR out of memory storing object";
    /// Bad exptime in `touch`, `gat`, `gats`, `flush_all`.
    pub const INVALID_EXPTIME: &str = "CLIENT_ERROR invalid exptime argument";
    /// Bad delta in `incr`/`decr`.
    pub const INVALID_DELTA: &str = "CLIENT_ERROR invalid numeric delta argument";
    /// `incr`/`decr` on a value that is not a number (store side).
    pub const NON_NUMERIC: &str = "CLIENT_ERROR cannot increment or decrement non-numeric value";
    /// `delete <key> <something>` other than `0` / `noreply` (note the two spaces).
    pub const DELETE_USAGE: &str =
        "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
    /// `stats detail` without `on`, `off` or `dump`.
    pub const STATS_DETAIL_USAGE: &str = "CLIENT_ERROR usage: stats detail on|off|dump";
    /// `stats cachedump` with fewer than two arguments.
    pub const BAD_COMMAND_LINE: &str = "CLIENT_ERROR bad command line";
    /// `stats cachedump` with a class id >= 64.
    pub const ILLEGAL_SLAB_ID: &str = "CLIENT_ERROR Illegal slab id";
    /// `stats cachedump` when dumping is disabled (`-X`; host side).
    pub const CACHEDUMP_NOT_ALLOWED: &str = "CLIENT_ERROR stats cachedump not allowed";
    /// `shutdown` with an argument other than `graceful`.
    pub const INVALID_SHUTDOWN_MODE: &str = "CLIENT_ERROR invalid shutdown mode";
    /// `shutdown` without `-A` (host side; checked before the mode).
    pub const SHUTDOWN_NOT_ENABLED: &str = "ERROR: shutdown not enabled";
    /// `flush_all` with `-F` (host side; checked before the delay).
    pub const FLUSH_NOT_ALLOWED: &str = "CLIENT_ERROR flush_all not allowed";
    /// `cache_memlimit` below 8 megabytes.
    pub const MEMLIMIT_TOO_SMALL: &str = "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m";
    /// `cache_memlimit` above 1000000000 (the argument is in megabytes).
    pub const MEMLIMIT_NOT_BYTES: &str =
        "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes";
    /// `cache_memlimit` the store refused (host side).
    pub const MEMLIMIT_ADJUST_FAILED: &str =
        "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust";
    /// `lru tune` with hot + warm percentages above 80 (unsigned 32-bit sum, may wrap).
    pub const LRU_PCTS: &str = "ERROR hot and warm pcts must not exceed 80";
    /// `lru tune` with a factor <= 0.
    pub const LRU_FACTORS: &str = "ERROR hot/warm age factors must be greater than 0";
    /// `lru_crawler sleep` above 1000000 microseconds.
    pub const CRAWLER_SLEEP: &str = "CLIENT_ERROR sleep must be one second or less";
    /// `lru_crawler crawl|metadump` while the crawler is disabled (host side).
    pub const CRAWLER_DISABLED: &str = "CLIENT_ERROR lru crawler disabled";
    /// `lru_crawler metadump` when dumping is disabled (host side).
    pub const METADUMP_NOT_ALLOWED: &str = "ERROR metadump not allowed";
    /// `lru_crawler metadump` with replies still queued (host side).
    pub const METADUMP_PIPELINE: &str = "ERROR cannot pipeline other commands before metadump";
    /// `slabs reassign` when slab reassignment is disabled (host side).
    pub const SLAB_REASSIGN_DISABLED: &str = "CLIENT_ERROR slab reassignment disabled";
    /// `watch` when watchers are disabled (host side).
    pub const WATCH_NOT_ALLOWED: &str = "CLIENT_ERROR watch commands not allowed";
    /// `watch` with replies still queued (host side).
    pub const WATCH_PIPELINE: &str = "ERROR cannot pipeline other commands before watch";
    /// `refresh_certs` on a server built with TLS but not running it (what Debian answers).
    pub const TLS_NOT_ENABLED: &str = "Error TLS not enabled";
}

use reply::*;

/// What the parser must know about the server's configuration.
///
/// Only the two settings that decide how many bytes belong to a storage command are here:
/// memcached rejects a too-large item *before* reading its data block and then swallows it,
/// so the parser must know the limit to know where the next command starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `-I`: the largest item, header and key included (memcached default 1 MiB).
    pub item_size_max: usize,
    /// Not `-C`: when CAS is on every item carries an 8-byte CAS value that counts against
    /// `item_size_max`.
    pub cas_enabled: bool,
}

impl Default for Limits {
    /// memcached's defaults: `-I 1m`, CAS on.
    fn default() -> Self {
        Limits {
            item_size_max: 1024 * 1024,
            cas_enabled: true,
        }
    }
}

impl Limits {
    /// memcached's `item_make_header` + `item_alloc` size: `sizeof(item)` (48) + key + its
    /// NUL + 4 bytes of client flags *only if the flags are non-zero* + the value with its
    /// `\r\n` + 8 bytes of CAS when CAS is on. Public so the meta and binary parsers use the
    /// same rule.
    pub fn item_size(&self, nkey: usize, flags: u32, nbytes_with_crlf: usize) -> usize {
        ITEM_HEADER_SIZE
            + nkey
            + 1
            + if flags != 0 { 4 } else { 0 }
            + nbytes_with_crlf
            + if self.cas_enabled { 8 } else { 0 }
    }

    /// `!item_size_ok(...)`: memcached answers [`reply::TOO_LARGE`].
    pub fn item_too_large(&self, nkey: usize, flags: u32, nbytes_with_crlf: usize) -> bool {
        self.item_size(nkey, flags, nbytes_with_crlf) > self.item_size_max
    }
}

/// The result of looking at the start of a connection's buffer.
#[derive(Clone, Debug, PartialEq)]
pub enum Parsed<'a> {
    /// Not a whole command yet: read more and call [`parse`] again with the grown buffer.
    /// `need`: when known (a storage command's data block is being awaited) the total
    /// number of bytes from the start of `buf` the command occupies, so the connection can
    /// reserve space once instead of growing the buffer repeatedly. It is bounded by the
    /// line plus `item_size_max`, because a too-large item is rejected before its data.
    Incomplete {
        /// Total bytes from the start of `buf` needed, when known.
        need: Option<usize>,
    },
    /// A well-formed command (it may still fail when executed).
    Cmd {
        /// The command.
        cmd: Command<'a>,
        /// Bytes of `buf` it occupies, data block included (> 0).
        consumed: usize,
    },
    /// memcached answers `reply` (no trailing `\r\n`) unless `noreply`, drops `consumed`
    /// bytes, then swallows `swallow` more bytes (which may not have arrived yet: e.g. the
    /// data block of a too-large `set`), and closes the connection if `close`.
    Error {
        /// The reply line without `\r\n`; empty only when memcached closes without a word.
        reply: &'static str,
        /// The client asked for `noreply`: memcached sends nothing, not even errors. The
        /// reply is still given so the host can count or log it. See [`Parsed::wire_reply`].
        noreply: bool,
        /// Bytes of `buf` this error accounts for (> 0).
        consumed: usize,
        /// Bytes *after* `consumed` that memcached reads and throws away (`conn_swallow`).
        swallow: usize,
        /// Close the connection now. memcached does not flush replies still queued: they
        /// are lost (only replies already written, e.g. after a `get`, reach the client).
        close: bool,
        /// Remove this key from the store: a `set` whose item is too large deletes the old
        /// value so stale data does not survive a failed overwrite (memcached does this
        /// even with `noreply`; `add`/`replace`/`append`/`prepend`/`cas` do not).
        unlink: Option<&'a [u8]>,
    },
}

impl<'a> Parsed<'a> {
    /// For an [`Parsed::Error`]: the line to write (without `\r\n`), or `None` when
    /// memcached writes nothing (client said `noreply`, or the connection is dropped).
    pub fn wire_reply(&self) -> Option<&'static str> {
        match self {
            Parsed::Error { reply, noreply, .. } if !*noreply && !reply.is_empty() => Some(reply),
            _ => None,
        }
    }
}

/// The storage command of a [`Command::Store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// `set`: store unconditionally.
    Set,
    /// `add`: store only if absent.
    Add,
    /// `replace`: store only if present.
    Replace,
    /// `append`: add the data after the existing value (flags/exptime ignored).
    Append,
    /// `prepend`: add the data before the existing value (flags/exptime ignored).
    Prepend,
    /// `cas`: store only if the item's CAS equals [`Command::Store::cas`].
    Cas,
}

/// How a multi-key retrieval ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetEnd {
    /// All keys were valid: answer the hits, then `END`.
    End,
    /// A key longer than [`KEY_MAX_LENGTH`] follows the keys in [`Keys`]. memcached looks
    /// up (and for `gat` touches, and counts in the stats) every key *before* the bad one,
    /// then throws away every reply still queued on the connection — the hits of this
    /// command *and* the unwritten replies of earlier pipelined commands (it only writes
    /// out after a retrieval, `mn`, or when the read batch ends) — and answers just
    /// [`reply::BAD_FORMAT`]. Verified: `set a..`, `set b..`, `get a b <251 bytes>` sent
    /// together answers only `CLIENT_ERROR bad command line format`.
    KeyTooLong,
}

/// The keys of a multi-key command: a lazy iterator over the validated, space-separated
/// region of the command line. No allocation; it can be cloned and iterated again.
///
/// Keys are separated by spaces only (memcached tokenizes on `' '`): tabs, `\r` and other
/// control bytes are part of a key. Every key yielded is 1..=250 bytes long.
#[derive(Clone)]
pub struct Keys<'a> {
    rest: &'a [u8],
}

impl<'a> Keys<'a> {
    /// The raw region the keys are taken from (may have leading/trailing spaces).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.rest
    }

    /// True when there is no key at all (only possible for `gat`/`gats`: `gat 10` is
    /// accepted by memcached and answers `END`).
    pub fn is_empty(&self) -> bool {
        !self.rest.iter().any(|&b| b != b' ')
    }
}

impl<'a> Iterator for Keys<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (tok, rest) = next_token(self.rest)?;
        self.rest = rest;
        Some(tok)
    }
}

impl<'a> std::fmt::Debug for Keys<'a> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.clone()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
            )
            .finish()
    }
}

impl<'a, 'b> PartialEq<Keys<'b>> for Keys<'a> {
    /// Two key lists are equal when they yield the same keys, whatever their spacing.
    fn eq(&self, other: &Keys<'b>) -> bool {
        self.clone().eq(other.clone())
    }
}

/// `stats` and its sub-commands as memcached's `process_stat` distinguishes them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StatsCmd<'a> {
    /// `stats` alone (trailing spaces allowed): the general statistics.
    General,
    /// `stats reset` (extra tokens ignored): answer `RESET`.
    Reset,
    /// `stats detail on|off|dump` (extra tokens ignored). A missing or other argument is a
    /// [`reply::STATS_DETAIL_USAGE`] error from the parser.
    Detail(DetailOp),
    /// `stats settings`.
    Settings,
    /// `stats cachedump <class id> <limit>`. memcached first checks that dumping is enabled
    /// ([`reply::CACHEDUMP_NOT_ALLOWED`], host side), then reports the argument error
    /// carried here.
    Cachedump(Result<(u32, u32), &'static str>),
    /// `stats conns`.
    Conns,
    /// Any other sub-command (`items`, `slabs`, `sizes`, `extstore`, ... or unknown): the
    /// engine answers, or the host answers `ERROR`. Debian's build knows `extstore` (it
    /// answers just `END` without an external store) but not `proxy` (`ERROR`).
    Other(&'a [u8]),
}

/// `stats detail` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetailOp {
    /// `stats detail on`: start recording per-prefix stats (`OK`).
    On,
    /// `stats detail off`: stop recording (`OK`).
    Off,
    /// `stats detail dump`: the recorded per-prefix stats, then `END`.
    Dump,
}

/// `slabs ...`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SlabsCmd {
    /// `slabs reassign <src> <dst>` (exactly these tokens; no `noreply`). memcached first
    /// checks [`reply::SLAB_REASSIGN_DISABLED`] (host), then reports the carried error.
    /// Numbers are `int32` after memcached's truncation (`-1` means "any source").
    Reassign(Result<(i32, i32), &'static str>),
    /// `slabs automove 0|1|2`.
    Automove {
        /// 0, 1 or 2.
        level: u32,
        /// Answer nothing.
        noreply: bool,
    },
    /// `slabs automove ratio <float>`.
    AutomoveRatio {
        /// Any float `strtod` accepts (NaN and infinities included, as memcached).
        ratio: f64,
        /// Answer nothing.
        noreply: bool,
    },
}

/// `lru_crawler ...` (never takes `noreply`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LruCrawlerCmd<'a> {
    /// `lru_crawler crawl <classes>`: `all` or comma separated ids; the host validates them
    /// (`BADCLASS invalid class id`) after checking [`reply::CRAWLER_DISABLED`].
    Crawl {
        /// The raw class list token.
        classes: &'a [u8],
    },
    /// `lru_crawler metadump <classes>`: host checks crawler enabled, dump enabled,
    /// nothing pipelined, in that order.
    Metadump {
        /// The raw class list token.
        classes: &'a [u8],
    },
    /// `lru_crawler tocrawl <n>`.
    Tocrawl(u32),
    /// `lru_crawler sleep <microseconds>` (<= 1000000).
    Sleep(u32),
    /// `lru_crawler enable`.
    Enable,
    /// `lru_crawler disable`.
    Disable,
}

/// `lru ...` (takes `noreply`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LruCmd {
    /// `lru tune <pct_hot> <pct_warm> <hot_factor> <warm_factor>`, already range-checked.
    Tune {
        /// Percentage of memory for the hot LRU.
        pct_hot: u32,
        /// Percentage of memory for the warm LRU.
        pct_warm: u32,
        /// Hot age factor (> 0 or NaN).
        hot_factor: f64,
        /// Warm age factor (> 0 or NaN).
        warm_factor: f64,
        /// Answer nothing.
        noreply: bool,
    },
    /// `lru mode flat|segmented`. Host answers `ERROR` if it runs no LRU maintainer.
    Mode {
        /// `segmented` (true) or `flat` (false).
        segmented: bool,
        /// Answer nothing.
        noreply: bool,
    },
    /// `lru temp_ttl <ttl>` (negative disables). Host answers `ERROR` without maintainer.
    TempTtl {
        /// The TTL below which items go to the temporary LRU.
        ttl: i32,
        /// Answer nothing.
        noreply: bool,
    },
}

/// Log streams a `watch` asks for (bit set; names as memcached 1.6.18 accepts them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WatchFlags(pub u16);

impl WatchFlags {
    /// `rawcmds`
    pub const RAWCMDS: u16 = 1 << 0;
    /// `evictions`
    pub const EVICTIONS: u16 = 1 << 1;
    /// `fetchers` (the default when no stream is named)
    pub const FETCHERS: u16 = 1 << 2;
    /// `mutations`
    pub const MUTATIONS: u16 = 1 << 3;
    /// `sysevents`
    pub const SYSEVENTS: u16 = 1 << 4;
    /// `connevents`
    pub const CONNEVENTS: u16 = 1 << 5;
    /// `proxyreqs`
    pub const PROXYREQS: u16 = 1 << 6;
    /// `proxyevents`
    pub const PROXYEVENTS: u16 = 1 << 7;
    /// `proxyuser`
    pub const PROXYUSER: u16 = 1 << 8;
}

/// Which meta command a [`Command::Meta`] line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaOp {
    /// `mg`
    Get,
    /// `ms` (followed by a data block the meta parser must read)
    Set,
    /// `md`
    Delete,
    /// `ma`
    Arithmetic,
    /// `mn` (memcached answers `MN` and flushes)
    Noop,
    /// `me` (debug)
    Debug,
}

/// A parsed classic text-protocol command.
///
/// Numbers have memcached's types *after* its conversions: `flags`, `level` and other
/// `safe_strtoul` results are `u32` truncated from the 64-bit `strtoul` value (so flags
/// `4294967296` is 0); `exptime`/`delay`/`ttl` are `i32` truncated from the 64-bit
/// `strtol` value (so exptime `4294967296` is 0 = never expires, `-1` = already expired).
/// The host turns exptimes into server time exactly as memcached's `realtime()` does.
#[derive(Clone, Debug, PartialEq)]
pub enum Command<'a> {
    /// `get`/`gets`/`bget` (`bget` is an undocumented alias of `get` memcached still has).
    /// memcached flushes its queued replies after a retrieval (`conn_mwrite`).
    Get {
        /// The keys to look up, in order (at least one unless `end` is `KeyTooLong`).
        keys: Keys<'a>,
        /// `gets`: each `VALUE` line also carries the item's CAS unique.
        with_cas: bool,
        /// Whether the command ends normally or on a too-long key.
        end: GetEnd,
    },
    /// `gat`/`gats`: get and touch (counted as touches in the stats, not gets).
    Gat {
        /// New expiration time for every key found.
        exptime: i32,
        /// The keys; may be empty (`gat 10` answers `END`).
        keys: Keys<'a>,
        /// `gats`: include the CAS unique.
        with_cas: bool,
        /// Whether the command ends normally or on a too-long key.
        end: GetEnd,
    },
    /// `set`/`add`/`replace`/`append`/`prepend`/`cas` with its data block.
    Store {
        /// Which storage command.
        op: StoreOp,
        /// 1..=250 bytes.
        key: &'a [u8],
        /// Client flags (already truncated to 32 bits like memcached).
        flags: u32,
        /// Expiration time as sent (memcached's `realtime()` is the host's job).
        exptime: i32,
        /// The CAS unique to compare for `cas`; 0 for the other commands.
        cas: u64,
        /// The data block without its trailing `\r\n` (which was checked).
        value: &'a [u8],
        /// The last token was `noreply`: answer nothing, not even errors.
        noreply: bool,
    },
    /// `delete <key> [0] [noreply]` (the legacy hold time must be exactly `0`).
    Delete {
        /// 1..=250 bytes.
        key: &'a [u8],
        /// Answer nothing.
        noreply: bool,
    },
    /// `incr`/`decr <key> <delta>`.
    Arith {
        /// 1..=250 bytes.
        key: &'a [u8],
        /// Any u64: `incr` wraps modulo 2^64, `decr` stops at 0.
        delta: u64,
        /// `incr` (true) or `decr` (false).
        incr: bool,
        /// Answer nothing.
        noreply: bool,
    },
    /// `touch <key> <exptime>`.
    Touch {
        /// 1..=250 bytes.
        key: &'a [u8],
        /// New expiration time as sent.
        exptime: i32,
        /// Answer nothing.
        noreply: bool,
    },
    /// `flush_all [delay] [noreply]`. memcached counts `cmd_flush`, then answers
    /// [`reply::FLUSH_NOT_ALLOWED`] under `-F`, and only then the delay error carried here.
    FlushAll {
        /// The delay; `<= 0` (or absent, which is `Ok(0)`) means "now". `Err` is the reply
        /// for an unparsable delay.
        delay: Result<i32, &'static str>,
        /// Answer nothing, not even errors.
        noreply: bool,
    },
    /// `version` (extra tokens ignored).
    Version,
    /// `verbosity <level> [noreply]`; memcached clamps the level to 2 and answers `OK`.
    Verbosity {
        /// The level as sent (truncated to 32 bits).
        level: u32,
        /// Answer nothing.
        noreply: bool,
    },
    /// `quit` (extra tokens ignored): flush queued replies, then close.
    Quit,
    /// `shutdown [graceful]`. memcached answers [`reply::SHUTDOWN_NOT_ENABLED`] without
    /// `-A` before looking at the mode. On success it closes the connection silently.
    Shutdown {
        /// `Ok(true)`: `shutdown graceful`; `Ok(false)`: `shutdown`; `Err`: the reply for
        /// any other argument list.
        graceful: Result<bool, &'static str>,
    },
    /// `cache_memlimit <megabytes> [noreply]`.
    CacheMemlimit {
        /// Already checked to be 8..=1000000000.
        megabytes: u32,
        /// Answer nothing.
        noreply: bool,
    },
    /// `stats [...]`; never takes `noreply`.
    Stats(StatsCmd<'a>),
    /// `slabs reassign|automove ...`.
    Slabs(SlabsCmd),
    /// `lru_crawler ...`.
    LruCrawler(LruCrawlerCmd<'a>),
    /// `lru tune|mode|temp_ttl ...`.
    Lru(LruCmd),
    /// `watch [streams...]`. memcached checks, in order: watch enabled
    /// ([`reply::WATCH_NOT_ALLOWED`]), nothing queued ([`reply::WATCH_PIPELINE`]), then the
    /// stream names.
    Watch {
        /// The streams asked for (`fetchers` when none is named); `Err(ERROR)` when a
        /// token is not a stream name.
        streams: Result<WatchFlags, &'static str>,
        /// Silences all of the above errors. `noreply` itself is not a stream name, so
        /// `watch noreply` does nothing at all (verified).
        noreply: bool,
    },
    /// `extstore <setting> <value>`, syntactically valid (Debian's memcached is built with
    /// extstore and answers `OK` even when no external store is configured).
    Extstore {
        /// Answer nothing.
        noreply: bool,
    },
    /// `refresh_certs`: Debian's build has TLS compiled in but off and answers
    /// [`reply::TLS_NOT_ENABLED`], even with `noreply`.
    RefreshCerts {
        /// Parsed like memcached, which ignores it for this error.
        noreply: bool,
    },
    /// `plugin reload` (wasmcached's own): compile the `--plugin` file again
    /// and swap it into every shard; answers `OK` or `SERVER_ERROR …`.
    PluginReload,
    /// A meta command (`mg ms md ma mn me`), deliberately not parsed here: it has its own
    /// flag grammar and error strings, so it belongs to a meta parser. `consumed` covers
    /// the line only: for `ms` the meta parser must read (or swallow) the data block that
    /// follows in the buffer, and return its own `Incomplete`.
    Meta {
        /// Which meta command.
        op: MetaOp,
        /// The whole command line without its line ending, cut at the first NUL byte (what
        /// memcached's tokenizer sees); re-tokenize it with [`tokenize`].
        line: &'a [u8],
    },
}

/// memcached's tokenizer output for one line: up to 23 tokens split on `' '` only, plus
/// whether text was left unprocessed after the 23rd token.
#[derive(Clone, Copy)]
pub struct Tokens<'a> {
    toks: [&'a [u8]; MAX_REAL_TOKENS],
    n: usize,
    rest: Option<&'a [u8]>,
}

impl<'a> Tokens<'a> {
    /// Number of real tokens (memcached's `ntokens` is this + 1 for the terminal token).
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when the line had no token at all.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Token `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        if i < self.n {
            Some(self.toks[i])
        } else {
            None
        }
    }

    /// The tokens as a slice.
    pub fn as_slice(&self) -> &[&'a [u8]] {
        &self.toks[..self.n]
    }

    /// The unprocessed text after the 23rd token (memcached's non-NULL terminal token).
    pub fn rest(&self) -> Option<&'a [u8]> {
        self.rest
    }

    /// memcached's `set_noreply_maybe`: the *last returned* token is exactly `noreply`.
    /// With more than 23 tokens that is the 23rd, not the line's last.
    pub fn noreply(&self) -> bool {
        self.n > 0 && self.toks[self.n - 1] == b"noreply"
    }

    /// memcached's `ntokens` (real tokens + the terminal token).
    fn ntokens(&self) -> usize {
        self.n + 1
    }

    /// Token `i` or the empty slice (memcached's terminal token has length 0).
    fn tok(&self, i: usize) -> &'a [u8] {
        if i < self.n {
            self.toks[i]
        } else {
            &[]
        }
    }
}

impl<'a> std::fmt::Debug for Tokens<'a> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field(
                "toks",
                &self
                    .as_slice()
                    .iter()
                    .map(|t| String::from_utf8_lossy(t).into_owned())
                    .collect::<Vec<_>>(),
            )
            .field("rest", &self.rest.map(String::from_utf8_lossy))
            .finish()
    }
}

/// memcached's `tokenize_command(line, tokens, MAX_TOKENS)`.
///
/// Splits on the space byte only (tabs and other control characters are token bytes —
/// `get\ta` is the unknown command `get\ta`). Runs of spaces are one separator. After the
/// 23rd token memcached stops and leaves the rest for `get` to re-tokenize; every other
/// command simply never sees it (`set` with 30 tokens answers `ERROR`). `line` must not
/// contain the line ending and must already be cut at the first NUL (memcached uses
/// `strlen`).
pub fn tokenize(line: &[u8]) -> Tokens<'_> {
    let mut t = Tokens {
        toks: [&[][..]; MAX_REAL_TOKENS],
        n: 0,
        rest: None,
    };
    let len = line.len();
    let mut i = 0;
    loop {
        while i < len && line[i] == b' ' {
            i += 1;
        }
        if i == len {
            return t;
        }
        let start = i;
        while i < len && line[i] != b' ' {
            i += 1;
        }
        t.toks[t.n] = &line[start..i];
        t.n += 1;
        if t.n == MAX_REAL_TOKENS {
            // memcached breaks after the separator that ended the 23rd token; the terminal
            // token points at whatever follows, or is NULL at the end of the string.
            if i + 1 < len {
                t.rest = Some(&line[i + 1..]);
            }
            return t;
        }
    }
}

/// The next space-separated token of `s` and what follows it.
#[inline]
fn next_token(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let start = s.iter().position(|&b| b != b' ')?;
    let s = &s[start..];
    // Word at a time: a byte loop over a 32-byte key was most of `Keys::next`
    // (232 instructions per `get`; docs/performance.md).
    let end = find_byte(b' ', s).unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

// ---------------------------------------------------------------------------------------
// Numbers: glibc strtoul/strtol/strtoull/strtod and memcached's safe_* wrappers (util.c),
// for an LP64 system (long is 64 bits), which is what makes the truncations below happen.
// ---------------------------------------------------------------------------------------

/// C `isspace` in the "C" locale.
#[inline]
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// How a glibc base-10 integer conversion went.
enum CInt {
    /// No digits: `endptr == str`.
    NoConversion,
    /// `errno == ERANGE`.
    Range,
    /// Negative sign seen, magnitude, index just after the digits.
    Ok { neg: bool, mag: u64, end: usize },
}

/// The common front of `strtoul`/`strtol`: leading `isspace`, one optional sign, decimal
/// digits. `mag` overflowing u64 is ERANGE for every variant.
fn c_int(s: &[u8]) -> CInt {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let digits = i;
    let mut mag: u64 = 0;
    let mut overflow = false;
    while i < s.len() && s[i].is_ascii_digit() {
        match mag
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(s[i] - b'0')))
        {
            Some(m) => mag = m,
            None => overflow = true,
        }
        i += 1;
    }
    if i == digits {
        CInt::NoConversion
    } else if overflow {
        CInt::Range
    } else {
        CInt::Ok { neg, mag, end: i }
    }
}

/// The `safe_strto*` tail test: the conversion must stop at the end of the token or at an
/// `isspace` byte. So `1\tx` is accepted as 1 (only the byte after the digits is looked at).
#[inline]
fn ends_ok(s: &[u8], end: usize) -> bool {
    end == s.len() || is_c_space(s[end])
}

/// 64-bit `strtoul`/`strtoull` plus memcached's negative rule: a negative number is
/// negated modulo 2^64 by the C library (`-1` is 18446744073709551615); memcached rejects
/// it only when the result looks negative as a signed number *and* the token contains a
/// `-`. So `-0` is 0, and `-18446744073709551615` is accepted as 1.
fn safe_u64(s: &[u8]) -> Option<u64> {
    match c_int(s) {
        CInt::Ok { neg, mag, end } if ends_ok(s, end) => {
            let v = if neg { mag.wrapping_neg() } else { mag };
            if (v as i64) < 0 && s.contains(&b'-') {
                None
            } else {
                Some(v)
            }
        }
        _ => None,
    }
}

/// memcached's `safe_strtoul`: [`safe_strtoull`] rules on the 64-bit value, then stored
/// into a `uint32_t` *without a range check*: flags `4294967296` become 0 and
/// `18446744073709551615` becomes 4294967295.
pub fn safe_strtoul(s: &[u8]) -> Option<u32> {
    safe_u64(s).map(|v| v as u32)
}

/// memcached's `safe_strtoull` (see `safe_u64` above for the sign rule).
pub fn safe_strtoull(s: &[u8]) -> Option<u64> {
    safe_u64(s)
}

/// memcached's `safe_strtol`: 64-bit `strtol` (ERANGE outside i64), then stored into an
/// `int32_t` without a range check: `4294967297` becomes 1, `-9223372036854775808` 0.
/// This is why `set k 0 0 4294967297` stores a 1-byte value.
pub fn safe_strtol(s: &[u8]) -> Option<i32> {
    match c_int(s) {
        CInt::Ok { neg, mag, end } if ends_ok(s, end) => {
            let v: i64 = if neg {
                if mag > 1u64 << 63 {
                    return None;
                }
                (mag as i64).wrapping_neg()
            } else {
                if mag > i64::MAX as u64 {
                    return None;
                }
                mag as i64
            };
            Some(v as i32)
        }
        _ => None,
    }
}

/// memcached's `safe_strtod` on glibc's `strtod`: decimal with optional exponent, hex
/// floats (`0x1.8p1`), `inf`/`infinity`/`nan`/`nan(chars)` in any case; ERANGE (rejected)
/// on overflow and on underflow to zero or to a subnormal (e.g. `1e-310`). Only admin
/// commands use it (`lru tune`, `slabs automove ratio`, `extstore max_frag`). Exactness
/// limit: hex subnormals are accepted even when inexact.
pub fn safe_strtod(s: &[u8]) -> Option<f64> {
    let (v, end) = c_strtod(s)?;
    if ends_ok(s, end) {
        Some(v)
    } else {
        None
    }
}

fn starts_with_ci(s: &[u8], p: &[u8]) -> bool {
    s.len() >= p.len() && s[..p.len()].eq_ignore_ascii_case(p)
}

/// glibc `strtod`; `None` when no conversion or ERANGE, else (value, end index).
fn c_strtod(s: &[u8]) -> Option<(f64, usize)> {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut sign = 1.0f64;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        if s[i] == b'-' {
            sign = -1.0;
        }
        i += 1;
    }
    let r = &s[i..];
    if starts_with_ci(r, b"inf") {
        let n = if starts_with_ci(r, b"infinity") { 8 } else { 3 };
        return Some((sign * f64::INFINITY, i + n));
    }
    if starts_with_ci(r, b"nan") {
        let mut j = i + 3;
        if s.get(j) == Some(&b'(') {
            let mut k = j + 1;
            while k < s.len() && (s[k].is_ascii_alphanumeric() || s[k] == b'_') {
                k += 1;
            }
            if s.get(k) == Some(&b')') {
                j = k + 1;
            }
        }
        return Some((f64::NAN.copysign(sign), j));
    }
    if r.len() >= 2 && r[0] == b'0' && (r[1] | 0x20) == b'x' {
        return match hex_float(&r[2..]) {
            Some((v, n)) => {
                let v = sign * v;
                if v.is_infinite() {
                    None
                } else {
                    Some((v, i + 2 + n))
                }
            }
            // "0x" without hex digits: glibc converts the "0" and stops at the 'x'.
            None => Some((sign * 0.0, i + 1)),
        };
    }
    // Decimal: digits [. digits] [e [sign] digits], at least one mantissa digit.
    let start = i;
    let mut j = i;
    let mut nonzero = false;
    let mut mant_digits = 0;
    while j < s.len() && s[j].is_ascii_digit() {
        nonzero |= s[j] != b'0';
        mant_digits += 1;
        j += 1;
    }
    if j < s.len() && s[j] == b'.' {
        j += 1;
        while j < s.len() && s[j].is_ascii_digit() {
            nonzero |= s[j] != b'0';
            mant_digits += 1;
            j += 1;
        }
    }
    if mant_digits == 0 {
        return None;
    }
    if j < s.len() && (s[j] | 0x20) == b'e' {
        let mut k = j + 1;
        if k < s.len() && (s[k] == b'+' || s[k] == b'-') {
            k += 1;
        }
        if k < s.len() && s[k].is_ascii_digit() {
            while k < s.len() && s[k].is_ascii_digit() {
                k += 1;
            }
            j = k;
        }
    }
    let text = std::str::from_utf8(&s[start..j]).ok()?;
    let v: f64 = text.parse().ok()?;
    if v.is_infinite() || (nonzero && (v == 0.0 || v.abs() < f64::MIN_POSITIVE)) {
        return None; // ERANGE
    }
    Some((sign * v, j))
}

/// Hex float body after `0x`: hex digits [. hex digits] [p [sign] digits].
fn hex_float(s: &[u8]) -> Option<(f64, usize)> {
    let mut i = 0;
    let mut mant: f64 = 0.0;
    let mut exp: i64 = 0;
    let mut any = false;
    while i < s.len() && s[i].is_ascii_hexdigit() {
        mant = mant * 16.0 + f64::from((s[i] as char).to_digit(16)?);
        any = true;
        i += 1;
    }
    if i < s.len() && s[i] == b'.' {
        let mut k = i + 1;
        while k < s.len() && s[k].is_ascii_hexdigit() {
            mant = mant * 16.0 + f64::from((s[k] as char).to_digit(16)?);
            exp -= 4;
            any = true;
            k += 1;
        }
        if any {
            i = k;
        }
    }
    if !any {
        return None;
    }
    if i < s.len() && (s[i] | 0x20) == b'p' {
        let mut k = i + 1;
        let mut neg = false;
        if k < s.len() && (s[k] == b'+' || s[k] == b'-') {
            neg = s[k] == b'-';
            k += 1;
        }
        if k < s.len() && s[k].is_ascii_digit() {
            let mut e: i64 = 0;
            while k < s.len() && s[k].is_ascii_digit() {
                e = (e * 10 + i64::from(s[k] - b'0')).min(1 << 20);
                k += 1;
            }
            exp += if neg { -e } else { e };
            i = k;
        }
    }
    let mut v = mant;
    let mut e = exp;
    while e > 0 && v.is_finite() {
        let step = e.min(1000);
        v *= 2f64.powi(step as i32);
        e -= step;
    }
    while e < 0 && v != 0.0 {
        let step = (-e).min(1000);
        v /= 2f64.powi(step as i32);
        e += step;
    }
    if mant != 0.0 && v == 0.0 {
        return None; // ERANGE (underflow)
    }
    Some((v, i))
}

// ---------------------------------------------------------------------------------------
// Finding the command line.
// ---------------------------------------------------------------------------------------

/// First index of `needle` in `hay`. Word-at-a-time (SWAR) because this scans every
/// command line and, for large multigets, kilobytes of keys.
#[inline]
fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pat = LO.wrapping_mul(u64::from(needle));
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) ^ pat;
        let m = w.wrapping_sub(LO) & !w & HI;
        if m != 0 {
            return Some(base + (m.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|p| base + p)
}

/// `try_read_command_ascii`'s exemption for long lines: at most 100 leading spaces, then
/// `get ` or `gets ` (so `gat`, `bget` and `get\t` are not exempt).
fn is_large_multiget(buf: &[u8]) -> bool {
    let spaces = buf.iter().take_while(|&&b| b == b' ').count();
    if spaces > 100 {
        return false;
    }
    let p = &buf[spaces..];
    p.starts_with(b"get ") || p.starts_with(b"gets ")
}

/// Close without a word (memcached's `conn_closing`).
fn close_now(consumed: usize) -> Parsed<'static> {
    Parsed::Error {
        reply: "",
        noreply: false,
        consumed,
        swallow: 0,
        close: true,
        unlink: None,
    }
}

/// An error reply for the command line (nothing swallowed).
fn line_err(reply: &'static str, noreply: bool, consumed: usize) -> Parsed<'static> {
    Parsed::Error {
        reply,
        noreply,
        consumed,
        swallow: 0,
        close: false,
        unlink: None,
    }
}

/// Parse the first command in `buf` (the unconsumed bytes of a connection).
///
/// Line rules (`try_read_command_ascii`):
/// * A command ends at the first `\n`; one `\r` right before it is dropped (except when
///   the line is exactly `\r\n`: memcached's `el - rcurr > 1` test keeps that `\r`, which
///   makes no difference since either way the answer is `ERROR`). A bare `\n` ending is
///   fine. Further `\r`s stay in the last token (`get a\r\r\n` looks up the key `a\r`).
/// * The line is cut at its first NUL byte (memcached tokenizes a C string):
///   `version\0junk` is `version`.
/// * No `\n` yet and more than [`LINE_PEEK_LIMIT`] (2048) bytes buffered: memcached closes
///   the connection silently unless the buffer starts with `get `/`gets ` after at most 100
///   spaces (large multigets may be arbitrarily long). Likewise a non-get line longer than
///   [`READ_BUFFER_SIZE`] (16384 bytes with its `\n`) can never fit memcached's read buffer
///   and closes. In between (2049..=16384 bytes) memcached's outcome depends on how the line
///   was segmented; this parser decides on what `buf` holds, as memcached does on what its
///   read buffer holds, so a connection that reads like memcached (up to 16 KiB per read)
///   behaves the same.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Parsed<'a> {
    let nl = match find_byte(b'\n', buf) {
        Some(nl) => nl,
        None => {
            if buf.len() > LINE_PEEK_LIMIT && !is_large_multiget(buf) {
                return close_now(buf.len());
            }
            return Parsed::Incomplete { need: None };
        }
    };
    let line_len = nl + 1;
    if line_len > READ_BUFFER_SIZE && !is_large_multiget(buf) {
        return close_now(buf.len());
    }
    let mut end = nl;
    if nl > 1 && buf[nl - 1] == b'\r' {
        end -= 1;
    }
    let mut line = &buf[..end];
    if let Some(z) = find_byte(0, line) {
        line = &line[..z];
    }
    parse_line(line, buf, line_len, limits)
}

/// `process_command_ascii`: dispatch on the first token, in memcached's order.
fn parse_line<'a>(line: &'a [u8], buf: &'a [u8], line_len: usize, limits: &Limits) -> Parsed<'a> {
    let (cmd, after) = match next_token(line) {
        Some(t) => t,
        // "All commands need a minimum of two tokens": an empty or all-space line.
        None => return line_err(ERROR, false, line_len),
    };
    if cmd.len() < 2 {
        return line_err(ERROR, false, line_len);
    }
    let ok = |cmd: Command<'a>| Parsed::Cmd {
        cmd,
        consumed: line_len,
    };

    // Retrievals first and without the general tokenizer: they are the hottest commands
    // and their keys are not limited to 23 tokens anyway (memcached re-tokenizes).
    match cmd {
        b"get" => return parse_get(after, false, line_len),
        b"gets" => return parse_get(after, true, line_len),
        b"gat" => return parse_gat(after, false, line_len),
        b"gats" => return parse_gat(after, true, line_len),
        b"bget" => return parse_get(after, false, line_len),
        _ => {}
    }

    let t = tokenize(line);
    let nt = t.ntokens();
    let first = cmd[0];

    if first == b'm' && cmd.len() == 2 {
        let op = match cmd[1] {
            b'g' => MetaOp::Get,
            b's' => MetaOp::Set,
            b'd' => MetaOp::Delete,
            b'n' => MetaOp::Noop,
            b'a' => MetaOp::Arithmetic,
            b'e' => MetaOp::Debug,
            _ => return line_err(ERROR, false, line_len),
        };
        return ok(Command::Meta { op, line });
    }
    // memcached answers plain ERROR (never the HTTP close) for unknown commands starting
    // with these letters, because it branches on the first byte before comparing names.
    let want = |lo: usize, hi: usize| nt >= lo && nt <= hi;
    match first {
        b'g' => return line_err(ERROR, false, line_len),
        b's' => {
            return match cmd {
                b"set" if want(6, 7) => parse_store(&t, StoreOp::Set, buf, line_len, limits),
                b"stats" => parse_stats(&t, line_len),
                b"shutdown" => ok(Command::Shutdown {
                    graceful: if nt == 2 {
                        Ok(false)
                    } else if nt == 3 && t.tok(1) == b"graceful" {
                        Ok(true)
                    } else {
                        Err(INVALID_SHUTDOWN_MODE)
                    },
                }),
                b"slabs" => parse_slabs(&t, line_len),
                _ => line_err(ERROR, false, line_len),
            }
        }
        b'a' => {
            return match cmd {
                b"add" if want(6, 7) => parse_store(&t, StoreOp::Add, buf, line_len, limits),
                b"append" if want(6, 7) => parse_store(&t, StoreOp::Append, buf, line_len, limits),
                _ => line_err(ERROR, false, line_len),
            }
        }
        b'c' => {
            return match cmd {
                b"cas" if want(7, 8) => parse_store(&t, StoreOp::Cas, buf, line_len, limits),
                b"cache_memlimit" if want(3, 4) => parse_memlimit(&t, line_len),
                _ => line_err(ERROR, false, line_len),
            }
        }
        b'i' => {
            return match cmd {
                b"incr" if want(4, 5) => parse_arith(&t, true, line_len),
                _ => line_err(ERROR, false, line_len),
            }
        }
        b'd' => {
            return match cmd {
                b"delete" if want(3, 5) => parse_delete(&t, line_len),
                b"decr" if want(4, 5) => parse_arith(&t, false, line_len),
                _ => line_err(ERROR, false, line_len),
            }
        }
        b't' => {
            return match cmd {
                b"touch" if want(4, 5) => parse_touch(&t, line_len),
                _ => line_err(ERROR, false, line_len),
            }
        }
        _ => {}
    }
    match cmd {
        b"replace" if want(6, 7) => parse_store(&t, StoreOp::Replace, buf, line_len, limits),
        b"prepend" if want(6, 7) => parse_store(&t, StoreOp::Prepend, buf, line_len, limits),
        b"flush_all" if want(2, 4) => parse_flush_all(&t, line_len),
        b"version" => ok(Command::Version),
        b"quit" => ok(Command::Quit),
        b"lru_crawler" => parse_lru_crawler(&t, line_len),
        b"watch" => parse_watch(&t, line_len),
        b"verbosity" if want(3, 4) => {
            let noreply = t.noreply();
            match safe_strtoul(t.tok(1)) {
                Some(level) => ok(Command::Verbosity { level, noreply }),
                None => line_err(BAD_FORMAT, noreply, line_len),
            }
        }
        b"lru" if nt >= 3 => parse_lru(&t, line_len),
        b"extstore" if nt >= 3 => parse_extstore(&t, line_len),
        b"plugin" if nt == 3 && t.tok(1) == b"reload" => ok(Command::PluginReload),
        b"refresh_certs" => ok(Command::RefreshCerts {
            noreply: t.noreply(),
        }),
        // Wrong token counts for known commands are plain ERROR.
        b"replace" | b"prepend" | b"flush_all" | b"verbosity" | b"lru" | b"extstore" => {
            line_err(ERROR, false, line_len)
        }
        // Unknown command. memcached drops the connection when the last token it looked at
        // starts with "HTTP/" (someone speaking HTTP to the cache), otherwise ERROR.
        // `misbehave` and `debugtime` exist only in debug builds and land here too.
        _ => {
            if t.tok(t.len() - 1).starts_with(b"HTTP/") {
                close_now(line_len)
            } else {
                line_err(ERROR, false, line_len)
            }
        }
    }
}

/// Validate the keys of a retrieval: the region up to the first key longer than 250 bytes,
/// and whether there was one.
fn scan_keys(region: &[u8]) -> (Keys<'_>, GetEnd) {
    // The common case costs nothing: no token can be too long in a short region.
    if region.len() <= KEY_MAX_LENGTH {
        return (Keys { rest: region }, GetEnd::End);
    }
    let mut i = 0;
    let len = region.len();
    while i < len {
        if region[i] == b' ' {
            i += 1;
            continue;
        }
        let start = i;
        i = find_byte(b' ', &region[start..]).map_or(len, |p| start + p);
        if i - start > KEY_MAX_LENGTH {
            return (
                Keys {
                    rest: &region[..start],
                },
                GetEnd::KeyTooLong,
            );
        }
    }
    (Keys { rest: region }, GetEnd::End)
}

/// `get`/`gets`/`bget`: at least one key (`get` alone or `get   ` is `ERROR`).
fn parse_get(after: &[u8], with_cas: bool, line_len: usize) -> Parsed<'_> {
    if !after.iter().any(|&b| b != b' ') {
        return line_err(ERROR, false, line_len);
    }
    let (keys, end) = scan_keys(after);
    Parsed::Cmd {
        cmd: Command::Get {
            keys,
            with_cas,
            end,
        },
        consumed: line_len,
    }
}

/// `gat`/`gats <exptime> <key>*`: the exptime is required, keys are not.
fn parse_gat(after: &[u8], with_cas: bool, line_len: usize) -> Parsed<'_> {
    let (exp, rest) = match next_token(after) {
        Some(t) => t,
        None => return line_err(ERROR, false, line_len),
    };
    let exptime = match safe_strtol(exp) {
        Some(e) => e,
        None => return line_err(INVALID_EXPTIME, false, line_len),
    };
    let (keys, end) = scan_keys(rest);
    Parsed::Cmd {
        cmd: Command::Gat {
            exptime,
            keys,
            with_cas,
            end,
        },
        consumed: line_len,
    }
}

/// `process_update_command`. Order of checks (each verified against memcached):
/// token count (`ERROR`) → `noreply` → key length → flags/exptime/length numbers → cas
/// number → length range (`< 0` or `> INT_MAX - 2`) → item size (`SERVER_ERROR object too
/// large for cache`, swallowing length+2 bytes) → data block ends in `\r\n`
/// (`CLIENT_ERROR bad data chunk`, after consuming exactly length+2 bytes).
///
/// All the `CLIENT_ERROR bad command line format` cases swallow nothing: memcached then
/// reads the client's data block as a command line (usually answering `ERROR` for it).
/// Every error is silent under `noreply`.
fn parse_store<'a>(
    t: &Tokens<'a>,
    op: StoreOp,
    buf: &'a [u8],
    line_len: usize,
    limits: &Limits,
) -> Parsed<'a> {
    let noreply = t.noreply();
    let key = t.tok(1);
    if key.len() > KEY_MAX_LENGTH {
        return line_err(BAD_FORMAT, noreply, line_len);
    }
    let (flags, exptime, vlen) = match (
        safe_strtoul(t.tok(2)),
        safe_strtol(t.tok(3)),
        safe_strtol(t.tok(4)),
    ) {
        (Some(f), Some(e), Some(v)) => (f, e, v),
        _ => return line_err(BAD_FORMAT, noreply, line_len),
    };
    let cas = if op == StoreOp::Cas {
        match safe_strtoull(t.tok(5)) {
            Some(c) => c,
            None => return line_err(BAD_FORMAT, noreply, line_len),
        }
    } else {
        0
    };
    if !(0..=i32::MAX - 2).contains(&vlen) {
        return line_err(BAD_FORMAT, noreply, line_len);
    }
    let nbytes = vlen as usize + 2;
    if limits.item_too_large(key.len(), flags, nbytes) {
        return Parsed::Error {
            reply: TOO_LARGE,
            noreply,
            consumed: line_len,
            swallow: nbytes,
            close: false,
            unlink: if op == StoreOp::Set { Some(key) } else { None },
        };
    }
    let total = line_len + nbytes;
    if buf.len() < total {
        return Parsed::Incomplete { need: Some(total) };
    }
    if &buf[total - 2..total] != b"\r\n" {
        // memcached read exactly length+2 bytes into the item; whatever follows them is
        // the next command (`set a 0 0 1\r\nxyz\r\n` answers bad data chunk, then ERROR for
        // the empty line). The old value is kept.
        return line_err(BAD_DATA_CHUNK, noreply, total);
    }
    Parsed::Cmd {
        cmd: Command::Store {
            op,
            key,
            flags,
            exptime,
            cas,
            value: &buf[line_len..total - 2],
            noreply,
        },
        consumed: total,
    }
}

/// `process_delete_command`: with 3 or 4 tokens the extra ones must be `0` (the old hold
/// time) and/or `noreply`: `delete k 0`, `delete k noreply`, `delete k 0 noreply`. Anything
/// else is [`reply::DELETE_USAGE`] — checked before the key length, and silent when the
/// last token is `noreply` (`delete k 1 noreply` says nothing).
fn parse_delete<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let nt = t.ntokens();
    let mut noreply = false;
    if nt > 3 {
        let hold_is_zero = t.tok(2) == b"0";
        noreply = t.noreply();
        let valid = (nt == 4 && (hold_is_zero || noreply)) || (nt == 5 && hold_is_zero && noreply);
        if !valid {
            return line_err(DELETE_USAGE, noreply, line_len);
        }
    }
    let key = t.tok(1);
    if key.len() > KEY_MAX_LENGTH {
        return line_err(BAD_FORMAT, noreply, line_len);
    }
    Parsed::Cmd {
        cmd: Command::Delete { key, noreply },
        consumed: line_len,
    }
}

/// `process_arithmetic_command`: key length, then the delta (`safe_strtoull`: `-1` is an
/// error, `+5` and `18446744073709551615` are fine). A 5th token other than `noreply` is
/// ignored.
fn parse_arith<'a>(t: &Tokens<'a>, incr: bool, line_len: usize) -> Parsed<'a> {
    let noreply = t.noreply();
    let key = t.tok(1);
    if key.len() > KEY_MAX_LENGTH {
        return line_err(BAD_FORMAT, noreply, line_len);
    }
    match safe_strtoull(t.tok(2)) {
        Some(delta) => Parsed::Cmd {
            cmd: Command::Arith {
                key,
                delta,
                incr,
                noreply,
            },
            consumed: line_len,
        },
        None => line_err(INVALID_DELTA, noreply, line_len),
    }
}

/// `process_touch_command`: key length, then the exptime.
fn parse_touch<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let noreply = t.noreply();
    let key = t.tok(1);
    if key.len() > KEY_MAX_LENGTH {
        return line_err(BAD_FORMAT, noreply, line_len);
    }
    match safe_strtol(t.tok(2)) {
        Some(exptime) => Parsed::Cmd {
            cmd: Command::Touch {
                key,
                exptime,
                noreply,
            },
            consumed: line_len,
        },
        None => line_err(INVALID_EXPTIME, noreply, line_len),
    }
}

/// `process_flush_all_command`: the delay is parsed only when the token count says there is
/// one — `flush_all noreply` has none, but `flush_all noreply noreply` tries to parse the
/// first `noreply` (and silently fails). A third token that is not `noreply` is ignored.
fn parse_flush_all<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let noreply = t.noreply();
    let delay = if t.ntokens() != if noreply { 3 } else { 2 } {
        safe_strtol(t.tok(1)).ok_or(INVALID_EXPTIME)
    } else {
        Ok(0)
    };
    Parsed::Cmd {
        cmd: Command::FlushAll { delay, noreply },
        consumed: line_len,
    }
}

/// `process_memlimit_command`: unparsable is plain `ERROR`; the value is a `uint32_t`
/// (so `4294967296` is 0, too small).
fn parse_memlimit<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let noreply = t.noreply();
    match safe_strtoul(t.tok(1)) {
        None => line_err(ERROR, noreply, line_len),
        Some(m) if m < 8 => line_err(MEMLIMIT_TOO_SMALL, noreply, line_len),
        Some(m) if m > 1_000_000_000 => line_err(MEMLIMIT_NOT_BYTES, noreply, line_len),
        Some(megabytes) => Parsed::Cmd {
            cmd: Command::CacheMemlimit { megabytes, noreply },
            consumed: line_len,
        },
    }
}

/// `process_stat`. Only the second token picks the sub-command; extra tokens are ignored
/// (`stats reset x` resets). `stats` never honours `noreply` (`stats noreply` is an unknown
/// sub-command: `ERROR`).
fn parse_stats<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let nt = t.ntokens();
    let sub = t.tok(1);
    let s = if nt == 2 {
        StatsCmd::General
    } else {
        match sub {
            b"reset" => StatsCmd::Reset,
            b"detail" => {
                let op = if nt < 4 { &b""[..] } else { t.tok(2) };
                match op {
                    b"on" => StatsCmd::Detail(DetailOp::On),
                    b"off" => StatsCmd::Detail(DetailOp::Off),
                    b"dump" => StatsCmd::Detail(DetailOp::Dump),
                    _ => return line_err(STATS_DETAIL_USAGE, false, line_len),
                }
            }
            b"settings" => StatsCmd::Settings,
            b"cachedump" => StatsCmd::Cachedump(if nt < 5 {
                Err(BAD_COMMAND_LINE)
            } else {
                match (safe_strtoul(t.tok(2)), safe_strtoul(t.tok(3))) {
                    (Some(id), Some(_)) if id >= MAX_NUMBER_OF_SLAB_CLASSES => Err(ILLEGAL_SLAB_ID),
                    (Some(id), Some(limit)) => Ok((id, limit)),
                    _ => Err(BAD_FORMAT),
                }
            }),
            b"conns" => StatsCmd::Conns,
            other => StatsCmd::Other(other),
        }
    };
    Parsed::Cmd {
        cmd: Command::Stats(s),
        consumed: line_len,
    }
}

/// `process_slabs_command` / `process_slabs_automove_command`.
fn parse_slabs<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let nt = t.ntokens();
    let ok = |s| Parsed::Cmd {
        cmd: Command::Slabs(s),
        consumed: line_len,
    };
    if nt == 5 && t.tok(1) == b"reassign" {
        let r = match (safe_strtol(t.tok(2)), safe_strtol(t.tok(3))) {
            (Some(src), Some(dst)) => Ok((src, dst)),
            _ => Err(BAD_FORMAT),
        };
        return ok(SlabsCmd::Reassign(r));
    }
    if nt >= 4 && t.tok(1) == b"automove" {
        let noreply = t.noreply();
        if t.tok(2) == b"ratio" {
            return match if nt < 5 { None } else { safe_strtod(t.tok(3)) } {
                Some(ratio) => ok(SlabsCmd::AutomoveRatio { ratio, noreply }),
                None => line_err(ERROR, noreply, line_len),
            };
        }
        return match safe_strtoul(t.tok(2)) {
            None => line_err(BAD_FORMAT, noreply, line_len),
            Some(level) if level <= 2 => ok(SlabsCmd::Automove { level, noreply }),
            Some(_) => line_err(ERROR, noreply, line_len),
        };
    }
    line_err(ERROR, false, line_len)
}

/// `process_lru_crawler_command`: exact token counts, no `noreply`.
fn parse_lru_crawler<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let nt = t.ntokens();
    let ok = |c| Parsed::Cmd {
        cmd: Command::LruCrawler(c),
        consumed: line_len,
    };
    let sub = t.tok(1);
    if nt == 4 {
        match sub {
            b"crawl" => return ok(LruCrawlerCmd::Crawl { classes: t.tok(2) }),
            b"metadump" => return ok(LruCrawlerCmd::Metadump { classes: t.tok(2) }),
            b"tocrawl" => {
                return match safe_strtoul(t.tok(2)) {
                    Some(n) => ok(LruCrawlerCmd::Tocrawl(n)),
                    None => line_err(BAD_FORMAT, false, line_len),
                }
            }
            b"sleep" => {
                return match safe_strtoul(t.tok(2)) {
                    None => line_err(BAD_FORMAT, false, line_len),
                    Some(us) if us > 1_000_000 => line_err(CRAWLER_SLEEP, false, line_len),
                    Some(us) => ok(LruCrawlerCmd::Sleep(us)),
                }
            }
            _ => {}
        }
    } else if nt == 3 {
        match sub {
            b"enable" => return ok(LruCrawlerCmd::Enable),
            b"disable" => return ok(LruCrawlerCmd::Disable),
            _ => {}
        }
    }
    line_err(ERROR, false, line_len)
}

/// `process_watch_command`: each token after `watch` (up to the 23-token limit) must name
/// a log stream; none means `fetchers`.
fn parse_watch<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let noreply = t.noreply();
    let mut f = 0u16;
    let mut streams = Ok(WatchFlags(WatchFlags::FETCHERS));
    if t.ntokens() > 2 {
        for name in &t.as_slice()[1..] {
            f |= match *name {
                b"rawcmds" => WatchFlags::RAWCMDS,
                b"evictions" => WatchFlags::EVICTIONS,
                b"fetchers" => WatchFlags::FETCHERS,
                b"mutations" => WatchFlags::MUTATIONS,
                b"sysevents" => WatchFlags::SYSEVENTS,
                b"connevents" => WatchFlags::CONNEVENTS,
                b"proxyreqs" => WatchFlags::PROXYREQS,
                b"proxyevents" => WatchFlags::PROXYEVENTS,
                b"proxyuser" => WatchFlags::PROXYUSER,
                _ => {
                    streams = Err(ERROR);
                    break;
                }
            };
        }
        if streams.is_ok() {
            streams = Ok(WatchFlags(f));
        }
    }
    Parsed::Cmd {
        cmd: Command::Watch { streams, noreply },
        consumed: line_len,
    }
}

/// `process_lru_command`. Sums and comparisons as memcached does them: the percentages add
/// as `uint32_t` (so `4294967295 2` passes), and a NaN factor is not `<= 0`.
fn parse_lru<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let nt = t.ntokens();
    let noreply = t.noreply();
    let ok = |c| Parsed::Cmd {
        cmd: Command::Lru(c),
        consumed: line_len,
    };
    match t.tok(1) {
        b"tune" if nt >= 7 => {
            match (
                safe_strtoul(t.tok(2)),
                safe_strtoul(t.tok(3)),
                safe_strtod(t.tok(4)),
                safe_strtod(t.tok(5)),
            ) {
                (Some(pct_hot), Some(pct_warm), Some(hot_factor), Some(warm_factor)) => {
                    if pct_hot.wrapping_add(pct_warm) > 80 {
                        line_err(LRU_PCTS, noreply, line_len)
                    } else if warm_factor <= 0.0 || hot_factor <= 0.0 {
                        line_err(LRU_FACTORS, noreply, line_len)
                    } else {
                        ok(LruCmd::Tune {
                            pct_hot,
                            pct_warm,
                            hot_factor,
                            warm_factor,
                            noreply,
                        })
                    }
                }
                _ => line_err(ERROR, noreply, line_len),
            }
        }
        b"mode" if nt >= 4 => match t.tok(2) {
            b"flat" => ok(LruCmd::Mode {
                segmented: false,
                noreply,
            }),
            b"segmented" => ok(LruCmd::Mode {
                segmented: true,
                noreply,
            }),
            _ => line_err(ERROR, noreply, line_len),
        },
        b"temp_ttl" if nt >= 4 => match safe_strtol(t.tok(2)) {
            Some(ttl) => ok(LruCmd::TempTtl { ttl, noreply }),
            None => line_err(ERROR, noreply, line_len),
        },
        _ => line_err(ERROR, noreply, line_len),
    }
}

/// `process_extstore_command` (Debian builds memcached with extstore): `OK` when the
/// setting name and value parse, `ERROR` otherwise. wasmcached has no external storage, so
/// the host just answers `OK`.
fn parse_extstore<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let nt = t.ntokens();
    let noreply = t.noreply();
    let v = t.tok(2);
    let valid = nt >= 4
        && match t.tok(1) {
            b"free_memchunks" if nt > 4 => {
                matches!((safe_strtoul(v), safe_strtoul(t.tok(3))),
                         (Some(cls), Some(_)) if cls < MAX_NUMBER_OF_SLAB_CLASSES)
            }
            b"item_size" | b"item_age" | b"low_ttl" | b"recache_rate" | b"compact_under"
            | b"drop_under" | b"max_sleep" | b"drop_unread" => safe_strtoul(v).is_some(),
            b"max_frag" => safe_strtod(v).is_some(),
            _ => false,
        };
    if valid {
        Parsed::Cmd {
            cmd: Command::Extstore { noreply },
            consumed: line_len,
        }
    } else {
        line_err(ERROR, noreply, line_len)
    }
}

// ---------------------------------------------------------------------------------------
// Test support: the inverse of `parse` for the commands a client sends.
// ---------------------------------------------------------------------------------------

#[cfg(test)]
impl<'a> Command<'a> {
    /// Serialize the command as a client would send it (used by the round-trip tests).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        fn nr(out: &mut Vec<u8>, noreply: bool) {
            if noreply {
                out.extend_from_slice(b" noreply");
            }
        }
        fn keys(out: &mut Vec<u8>, keys: &Keys<'_>) {
            for k in keys.clone() {
                out.push(b' ');
                out.extend_from_slice(k);
            }
        }
        match self {
            Command::Get {
                keys: k, with_cas, ..
            } => {
                out.extend_from_slice(if *with_cas { b"gets" } else { b"get" });
                keys(out, k);
            }
            Command::Gat {
                exptime,
                keys: k,
                with_cas,
                ..
            } => {
                out.extend_from_slice(if *with_cas { b"gats " } else { b"gat " });
                out.extend_from_slice(exptime.to_string().as_bytes());
                keys(out, k);
            }
            Command::Store {
                op,
                key,
                flags,
                exptime,
                cas,
                value,
                noreply,
            } => {
                let name: &[u8] = match op {
                    StoreOp::Set => b"set ",
                    StoreOp::Add => b"add ",
                    StoreOp::Replace => b"replace ",
                    StoreOp::Append => b"append ",
                    StoreOp::Prepend => b"prepend ",
                    StoreOp::Cas => b"cas ",
                };
                out.extend_from_slice(name);
                out.extend_from_slice(key);
                out.extend_from_slice(format!(" {} {} {}", flags, exptime, value.len()).as_bytes());
                if *op == StoreOp::Cas {
                    out.extend_from_slice(format!(" {}", cas).as_bytes());
                }
                nr(out, *noreply);
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(value);
            }
            Command::Delete { key, noreply } => {
                out.extend_from_slice(b"delete ");
                out.extend_from_slice(key);
                nr(out, *noreply);
            }
            Command::Arith {
                key,
                delta,
                incr,
                noreply,
            } => {
                out.extend_from_slice(if *incr { b"incr " } else { b"decr " });
                out.extend_from_slice(key);
                out.extend_from_slice(format!(" {}", delta).as_bytes());
                nr(out, *noreply);
            }
            Command::Touch {
                key,
                exptime,
                noreply,
            } => {
                out.extend_from_slice(b"touch ");
                out.extend_from_slice(key);
                out.extend_from_slice(format!(" {}", exptime).as_bytes());
                nr(out, *noreply);
            }
            Command::FlushAll { delay, noreply } => {
                out.extend_from_slice(b"flush_all");
                if let Ok(d) = delay {
                    out.extend_from_slice(format!(" {}", d).as_bytes());
                }
                nr(out, *noreply);
            }
            Command::Version => out.extend_from_slice(b"version"),
            Command::Quit => out.extend_from_slice(b"quit"),
            Command::PluginReload => out.extend_from_slice(b"plugin reload"),
            Command::Verbosity { level, noreply } => {
                out.extend_from_slice(format!("verbosity {}", level).as_bytes());
                nr(out, *noreply);
            }
            Command::CacheMemlimit { megabytes, noreply } => {
                out.extend_from_slice(format!("cache_memlimit {}", megabytes).as_bytes());
                nr(out, *noreply);
            }
            Command::Shutdown { graceful } => {
                out.extend_from_slice(if *graceful == Ok(true) {
                    &b"shutdown graceful"[..]
                } else {
                    &b"shutdown"[..]
                });
            }
            Command::Stats(s) => {
                out.extend_from_slice(b"stats");
                match s {
                    StatsCmd::General => {}
                    StatsCmd::Reset => out.extend_from_slice(b" reset"),
                    StatsCmd::Settings => out.extend_from_slice(b" settings"),
                    StatsCmd::Conns => out.extend_from_slice(b" conns"),
                    StatsCmd::Detail(DetailOp::On) => out.extend_from_slice(b" detail on"),
                    StatsCmd::Detail(DetailOp::Off) => out.extend_from_slice(b" detail off"),
                    StatsCmd::Detail(DetailOp::Dump) => out.extend_from_slice(b" detail dump"),
                    StatsCmd::Cachedump(Ok((id, limit))) => {
                        out.extend_from_slice(format!(" cachedump {} {}", id, limit).as_bytes())
                    }
                    StatsCmd::Cachedump(Err(_)) => out.extend_from_slice(b" cachedump"),
                    StatsCmd::Other(o) => {
                        out.push(b' ');
                        out.extend_from_slice(o);
                    }
                }
            }
            Command::Meta { line, .. } => out.extend_from_slice(line),
            // Admin commands are covered by the table tests, not the round trip.
            _ => unimplemented!("encode of {:?}", self),
        }
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        item_size_max: 1024 * 1024,
        cas_enabled: true,
    };

    fn p(buf: &[u8]) -> Parsed<'_> {
        parse(buf, &L)
    }

    /// Run the parser over `input` like a connection would and describe each result:
    /// what memcached would write for errors (`!` prefix = silent, `<close>`), or a short
    /// description of the command. Ends with `<incomplete ...>` if bytes are left.
    fn run_with(input: &[u8], limits: &Limits) -> Vec<String> {
        let mut out = Vec::new();
        let mut pos = 0;
        let mut swallow = 0usize;
        loop {
            let skip = swallow.min(input.len() - pos);
            pos += skip;
            swallow -= skip;
            if swallow > 0 {
                out.push(format!("<swallowing {}>", swallow));
                return out;
            }
            if pos == input.len() {
                return out;
            }
            match parse(&input[pos..], limits) {
                Parsed::Incomplete { need } => {
                    out.push(format!("<incomplete {:?}>", need));
                    return out;
                }
                Parsed::Cmd { cmd, consumed } => {
                    assert!(consumed > 0 && consumed <= input.len() - pos);
                    out.push(describe(&cmd));
                    pos += consumed;
                }
                e @ Parsed::Error { .. } => {
                    let Parsed::Error {
                        reply,
                        noreply,
                        consumed,
                        swallow: s,
                        close,
                        unlink,
                    } = e
                    else {
                        unreachable!()
                    };
                    assert!(consumed > 0 && consumed <= input.len() - pos);
                    let mut d = if close {
                        "<close>".to_string()
                    } else if noreply {
                        format!("!{}", reply)
                    } else {
                        reply.to_string()
                    };
                    if let Some(k) = unlink {
                        d.push_str(&format!(" <unlink {}>", String::from_utf8_lossy(k)));
                    }
                    out.push(d);
                    if close {
                        return out;
                    }
                    pos += consumed;
                    swallow = s;
                }
            }
        }
    }

    fn run(input: &[u8]) -> Vec<String> {
        run_with(input, &L)
    }

    fn s(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    fn describe(c: &Command<'_>) -> String {
        match c {
            Command::Get {
                keys,
                with_cas,
                end,
            } => format!(
                "{} {:?}{}",
                if *with_cas { "GETS" } else { "GET" },
                keys,
                if *end == GetEnd::KeyTooLong {
                    " +KEY_TOO_LONG"
                } else {
                    ""
                }
            ),
            Command::Gat {
                exptime,
                keys,
                with_cas,
                end,
            } => format!(
                "{} {} {:?}{}",
                if *with_cas { "GATS" } else { "GAT" },
                exptime,
                keys,
                if *end == GetEnd::KeyTooLong {
                    " +KEY_TOO_LONG"
                } else {
                    ""
                }
            ),
            Command::Store {
                op,
                key,
                flags,
                exptime,
                cas,
                value,
                noreply,
            } => format!(
                "{:?} {} {} {} {} {:?}{}",
                op,
                s(key),
                flags,
                exptime,
                cas,
                s(value),
                if *noreply { " noreply" } else { "" }
            ),
            Command::Delete { key, noreply } => {
                format!(
                    "DELETE {}{}",
                    s(key),
                    if *noreply { " noreply" } else { "" }
                )
            }
            Command::Arith {
                key,
                delta,
                incr,
                noreply,
            } => format!(
                "{} {} {}{}",
                if *incr { "INCR" } else { "DECR" },
                s(key),
                delta,
                if *noreply { " noreply" } else { "" }
            ),
            Command::Touch {
                key,
                exptime,
                noreply,
            } => {
                format!(
                    "TOUCH {} {}{}",
                    s(key),
                    exptime,
                    if *noreply { " noreply" } else { "" }
                )
            }
            Command::Meta { op, line } => format!("META {:?} {}", op, s(line)),
            other => format!("{:?}", other),
        }
    }

    fn k(n: usize) -> Vec<u8> {
        vec![b'k'; n]
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    // ---- line handling -------------------------------------------------------------

    #[test]
    fn empty_and_short_lines_are_error() {
        // memcached: "\r\n", "\n", " \r\n", "x\r\n", "xx\r\n" all answer ERROR.
        for l in [
            &b"\r\n"[..],
            b"\n",
            b" \r\n",
            b"x\r\n",
            b"xx\r\n",
            b"\r\r\n",
            b"   \n",
        ] {
            assert_eq!(run(l), vec!["ERROR"], "{:?}", s(l));
        }
    }

    #[test]
    fn incomplete_until_newline() {
        assert_eq!(p(b""), Parsed::Incomplete { need: None });
        assert_eq!(p(b"get a"), Parsed::Incomplete { need: None });
        assert_eq!(p(b"get a\r"), Parsed::Incomplete { need: None });
        assert_eq!(run(b"get a\n"), vec!["GET [\"a\"]"]);
        assert_eq!(run(b"get a\r\n"), vec!["GET [\"a\"]"]);
    }

    #[test]
    fn only_one_cr_is_stripped() {
        // memcached: `get a\r\r\n` looks up "a\r" (END for a miss).
        assert_eq!(run(b"get a\r\r\n"), vec!["GET [\"a\\r\"]"]);
    }

    #[test]
    fn commands_are_case_sensitive_and_split_on_spaces_only() {
        assert_eq!(run(b"VERSION\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"Get a\r\n"), vec!["ERROR"]);
        // tabs are token bytes: `get\ta` is an unknown 'g' command.
        assert_eq!(run(b"get\ta\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"gets\ta b\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"version\t\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"quit\t\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"mn\t\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"verbosity\t1\r\n"), vec!["ERROR"]);
        // ... and spaces are collapsed; leading spaces are fine.
        assert_eq!(run(b"  get   a   b  \r\n"), vec!["GET [\"a\", \"b\"]"]);
    }

    #[test]
    fn control_bytes_are_key_bytes() {
        // memcached: `set a\x01\t\r 0 0 1` then `get a\x01\t\r` finds the item.
        assert_eq!(
            run(b"set a\x01\t\r 0 0 1\r\nx\r\nget a\x01\t\r\r\n"),
            vec!["Set a\x01\t\r 0 0 0 \"x\"", "GET [\"a\\u{1}\\t\\r\"]"]
        );
    }

    #[test]
    fn nul_truncates_the_line() {
        // memcached tokenizes a C string: `version\0junk` is `version`, `get a\0b` is `get a`.
        assert_eq!(run(b"version\x00junk\r\n"), vec!["Version"]);
        assert_eq!(run(b"get a b\x00 c\r\n"), vec!["GET [\"a\", \"b\"]"]);
        assert_eq!(run(b"\x00get a\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"get a\r\n\x00\r\nversion\r\n"),
            vec!["GET [\"a\"]", "ERROR", "Version"]
        );
    }

    #[test]
    fn long_lines_close_unless_large_multiget() {
        // memcached: 2049 bytes without newline closes; 2048 waits.
        assert_eq!(p(&[b'x'; 2048]), Parsed::Incomplete { need: None });
        assert_eq!(run(&[b'x'; 2049]), vec!["<close>"]);
        let mut set = b"set ".to_vec();
        set.extend(k(3000));
        assert_eq!(run(&set), vec!["<close>"]);
        // `get `/`gets ` lines may be arbitrarily long, with up to 100 leading spaces.
        let mut get = b"get ".to_vec();
        for i in 0..400 {
            get.extend(format!("key{:04} ", i).as_bytes());
        }
        assert_eq!(p(&get), Parsed::Incomplete { need: None });
        let mut gets = b"gets ".to_vec();
        gets.extend(&get[4..]);
        assert_eq!(p(&gets), Parsed::Incomplete { need: None });
        let mut sp = vec![b' '; 100];
        sp.extend(&get);
        assert_eq!(p(&sp), Parsed::Incomplete { need: None });
        let mut sp = vec![b' '; 101];
        sp.extend(&get);
        assert_eq!(run(&sp), vec!["<close>"]);
        // `gat` is not exempt (memcached closed the connection).
        let mut gat = b"gat 0 ".to_vec();
        gat.extend(&get[4..]);
        assert_eq!(run(&gat), vec!["<close>"]);
        // "get" + 3000 spaces keeps reading, then the line is `get` alone: ERROR.
        let mut g = b"get".to_vec();
        g.extend(vec![b' '; 3000]);
        assert_eq!(p(&g), Parsed::Incomplete { need: None });
        g.extend(b"\r\n");
        assert_eq!(run(&g), vec!["ERROR"]);
        // A long get line with its newline is parsed.
        get.extend(b"\r\n");
        match p(&get) {
            Parsed::Cmd {
                cmd: Command::Get { keys, .. },
                consumed,
            } => {
                assert_eq!(keys.count(), 400);
                assert_eq!(consumed, get.len());
            }
            other => panic!("{:?}", other),
        }
    }

    #[test]
    fn whole_lines_up_to_read_buffer_size() {
        // memcached processes a non-get line of up to 16384 bytes (with `\n`) that arrives
        // at once, and closes on 16385 (both with `\r\n` and bare `\n` endings).
        for (total, lf_only) in [(16384, false), (16384, true), (16385, false), (16385, true)] {
            let ending: &[u8] = if lf_only { b"\n" } else { b"\r\n" };
            let mut l = b"set ".to_vec();
            l.extend(vec![b'x'; total - 4 - 6 - ending.len()]);
            l.extend(b" 0 0 1");
            l.extend(ending);
            assert_eq!(l.len(), total);
            let want = if total <= 16384 {
                "CLIENT_ERROR bad command line format"
            } else {
                "<close>"
            };
            assert_eq!(run(&l)[0], want, "{} {}", total, lf_only);
        }
        let mut l = b"set ".to_vec();
        l.extend(k(3000));
        l.extend(b" 0 0 1\r\nx\r\n");
        assert_eq!(
            run(&l),
            vec!["CLIENT_ERROR bad command line format", "ERROR"]
        );
    }

    #[test]
    fn http_closes() {
        assert_eq!(run(b"GET / HTTP/1.1\r\nHost: x\r\n"), vec!["<close>"]);
        assert_eq!(run(b"POST /x HTTP/1.0\r\n"), vec!["<close>"]);
        // only the last token counts
        assert_eq!(run(b"foo HTTP/1.1 x\r\n"), vec!["ERROR"]);
        // a known 'g' command: keys "HTTP/1.1"
        assert_eq!(run(b"get HTTP/1.1\r\n"), vec!["GET [\"HTTP/1.1\"]"]);
        // 'm'/'s'/... branch: plain ERROR
        assert_eq!(run(b"mx HTTP/1.1\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"sx HTTP/1.1\r\n"), vec!["ERROR"]);
        // with more than 23 tokens "last" is the 23rd token (memcached closed on the first,
        // answered ERROR on the second).
        let mut a = b"foo".to_vec();
        for _ in 0..21 {
            a.extend(b" a");
        }
        let mut b = a.clone();
        a.extend(b" HTTP/1.1 b\r\n");
        b.extend(b" a HTTP/1.1 b\r\n");
        assert_eq!(run(&a), vec!["<close>"]);
        assert_eq!(run(&b), vec!["ERROR"]);
    }

    #[test]
    fn debug_only_commands_are_unknown() {
        assert_eq!(run(b"misbehave\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"debugtime 1\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"lru_crawler mgdump 1\r\n"), vec!["ERROR"]);
    }

    // ---- retrieval -------------------------------------------------------------------

    #[test]
    fn get_family() {
        assert_eq!(run(b"get\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"get \r\n"), vec!["ERROR"]);
        assert_eq!(run(b"gets\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"getx a\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"g\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"gets a b\r\n"), vec!["GETS [\"a\", \"b\"]"]);
        assert_eq!(run(b"bget a\r\n"), vec!["GET [\"a\"]"]);
        assert_eq!(run(b"get a noreply\r\n"), vec!["GET [\"a\", \"noreply\"]"]);
        let k250 = k(250);
        let line = cat(&[b"get ", &k250, b"\r\n"]);
        assert_eq!(run(&line).len(), 1);
        assert!(!run(&line)[0].contains("KEY_TOO_LONG"));
    }

    #[test]
    fn get_with_too_long_key() {
        // memcached answers only CLIENT_ERROR bad command line format; keys before the bad
        // one are looked up, keys after it are not.
        let k251 = k(251);
        assert_eq!(
            run(&cat(&[b"get ga gb ", &k251, b" ga\r\n"])),
            vec!["GET [\"ga\", \"gb\"] +KEY_TOO_LONG"]
        );
        assert_eq!(
            run(&cat(&[b"get ", &k251, b"\r\n"])),
            vec!["GET [] +KEY_TOO_LONG"]
        );
        assert_eq!(
            run(&cat(&[b"gat 10 ", &k251, b"\r\n"])),
            vec!["GAT 10 [] +KEY_TOO_LONG"]
        );
        // beyond the 23-token tokenizer window too
        let mut l = b"get".to_vec();
        for i in 0..30 {
            l.extend(format!(" k{}", i).as_bytes());
        }
        l.push(b' ');
        l.extend(&k251);
        l.extend(b" k3\r\n");
        match p(&l) {
            Parsed::Cmd {
                cmd: Command::Get { keys, end, .. },
                ..
            } => {
                assert_eq!(keys.count(), 30);
                assert_eq!(end, GetEnd::KeyTooLong);
            }
            o => panic!("{:?}", o),
        }
    }

    #[test]
    fn get_keys_beyond_max_tokens() {
        // memcached re-tokenizes the rest of a get line: all keys are seen, including when
        // the 23rd token is followed only by spaces.
        let mut l = b"get".to_vec();
        for _ in 0..22 {
            l.extend(b" k3");
        }
        l.extend(b"    \r\n");
        match p(&l) {
            Parsed::Cmd {
                cmd: Command::Get { keys, .. },
                ..
            } => assert_eq!(keys.count(), 22),
            o => panic!("{:?}", o),
        }
    }

    #[test]
    fn gat_family() {
        assert_eq!(run(b"gat\r\n"), vec!["ERROR"]);
        // memcached answers END: an exptime and no keys is fine.
        assert_eq!(run(b"gat 10\r\n"), vec!["GAT 10 []"]);
        assert_eq!(run(b"gat 10 noreply\r\n"), vec!["GAT 10 [\"noreply\"]"]);
        assert_eq!(
            run(b"gat abc ga\r\n"),
            vec!["CLIENT_ERROR invalid exptime argument"]
        );
        assert_eq!(run(b"gats 10 ga gb\r\n"), vec!["GATS 10 [\"ga\", \"gb\"]"]);
        assert_eq!(run(b"gat -1 ga\r\n"), vec!["GAT -1 [\"ga\"]"]);
        assert_eq!(run(b"gat 4294967297 a\r\n"), vec!["GAT 1 [\"a\"]"]);
    }

    // ---- storage ---------------------------------------------------------------------

    #[test]
    fn set_basic_and_incremental() {
        assert_eq!(
            run(b"set a 0 0 1\r\nx\r\nget a\r\n"),
            vec!["Set a 0 0 0 \"x\"", "GET [\"a\"]"]
        );
        // bare \n ending of the command line is fine
        assert_eq!(run(b"set a 0 0 1\nx\r\n"), vec!["Set a 0 0 0 \"x\""]);
        assert_eq!(
            p(b"set a 0 0 5\r\n"),
            Parsed::Incomplete { need: Some(13 + 7) }
        );
        assert_eq!(
            p(b"set a 0 0 5\r\nhel"),
            Parsed::Incomplete { need: Some(20) }
        );
        assert_eq!(
            p(b"set a 0 0 5\r\nhello\r"),
            Parsed::Incomplete { need: Some(20) }
        );
        // the data block is binary and may contain \r\n
        assert_eq!(
            run(b"set a 0 0 3\r\nx\r\n\r\n"),
            vec!["Set a 0 0 0 \"x\\r\\n\""]
        );
        assert_eq!(run(b"set a 0 0 0\r\n\r\n"), vec!["Set a 0 0 0 \"\""]);
        assert_eq!(run(b"set a 0 0 -0\r\n\r\n"), vec!["Set a 0 0 0 \"\""]);
        assert_eq!(run(b"set a 0 0 01\r\nx\r\n"), vec!["Set a 0 0 0 \"x\""]);
    }

    #[test]
    fn bad_data_chunk_consumes_exactly_length_plus_2() {
        // memcached: bad data chunk, then the rest is parsed as commands.
        assert_eq!(
            run(b"set a 0 0 1\r\nxyz\r\nget a\r\n"),
            vec!["CLIENT_ERROR bad data chunk", "ERROR", "GET [\"a\"]"]
        );
        assert_eq!(
            run(b"set a 0 0 1\r\nx\nget a\r\n"),
            vec!["CLIENT_ERROR bad data chunk", "ERROR"]
        );
        assert_eq!(
            run(b"set a 0 0 0\r\nget a\r\n"),
            vec!["CLIENT_ERROR bad data chunk", "ERROR"]
        );
        assert_eq!(
            run(b"set a 0 0 3\r\nabc\rxversion\r\n"),
            vec!["CLIENT_ERROR bad data chunk", "Version"]
        );
        // silent under noreply
        assert_eq!(
            run(b"set b 0 0 1 noreply\r\nxyz\r\nget b\r\n"),
            vec!["!CLIENT_ERROR bad data chunk", "ERROR", "GET [\"b\"]"]
        );
    }

    #[test]
    fn store_token_counts() {
        assert_eq!(run(b"set e 0 0\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"set e 0 0 1 noreply extra\r\nx\r\n"),
            vec!["ERROR", "ERROR"]
        );
        // a 6th token that is not noreply is ignored
        assert_eq!(run(b"set d 0 0 1 2\r\nx\r\n"), vec!["Set d 0 0 0 \"x\""]);
        assert_eq!(
            run(b"set a 0 0 1 noreplyx\r\nx\r\n"),
            vec!["Set a 0 0 0 \"x\""]
        );
        // with noreply
        assert_eq!(
            run(b"set a 0 0 1 noreply\r\nx\r\n"),
            vec!["Set a 0 0 0 \"x\" noreply"]
        );
        // 30 tokens: ERROR (the tokenizer stops at 23)
        let mut l = b"set".to_vec();
        for _ in 0..30 {
            l.extend(b" a");
        }
        l.extend(b"\r\n");
        assert_eq!(run(&l), vec!["ERROR"]);
        // cas needs its unique
        assert_eq!(run(b"cas a 0 0 1\r\nx\r\n"), vec!["ERROR", "ERROR"]);
        assert_eq!(run(b"cas a 0 0 1 5\r\nx\r\n"), vec!["Cas a 0 0 5 \"x\""]);
        assert_eq!(
            run(b"cas a 0 0 1 5 noreply\r\nx\r\n"),
            vec!["Cas a 0 0 5 \"x\" noreply"]
        );
        // `cas k 0 0 1 noreply`: the unique is "noreply" -> silent format error, then the
        // data line is a command (memcached answered just ERROR).
        assert_eq!(
            run(b"cas a 0 0 1 noreply\r\nx\r\nversion\r\n"),
            vec!["!CLIENT_ERROR bad command line format", "ERROR", "Version"]
        );
        for (cmd, op) in [
            ("add", "Add"),
            ("replace", "Replace"),
            ("append", "Append"),
            ("prepend", "Prepend"),
        ] {
            assert_eq!(
                run(format!("{} a 1 2 1\r\nx\r\n", cmd).as_bytes()),
                vec![format!("{} a 1 2 0 \"x\"", op)]
            );
            assert_eq!(run(format!("{} a 1 2\r\n", cmd).as_bytes()), vec!["ERROR"]);
        }
    }

    #[test]
    fn store_bad_numbers() {
        let bad = "CLIENT_ERROR bad command line format";
        // each followed by the data line parsed as a command: ERROR
        for l in [
            &b"set c abc 0 1\r\nx\r\n"[..],
            b"set c 0 0 -1\r\nx\r\n",
            b"set c -1 0 1\r\nx\r\n",
            b"set c -5 0 1\r\nx\r\n",
            b"set c 18446744073709551616 0 1\r\nx\r\n",
            b"set c -9223372036854775808 0 1\r\nx\r\n",
            b"set c 1x 0 1\r\nx\r\n",
            b"set c 0x5 0 1\r\nx\r\n",
            b"set c 1.5 0 1\r\nx\r\n",
            b"set d 0 abc 1\r\nx\r\n",
            b"set d 0 9223372036854775808 1\r\nx\r\n",
            b"cas a 0 0 1 abc\r\nx\r\n",
            b"cas a 0 0 1 -1\r\nx\r\n",
            b"cas a 0 0 1 18446744073709551616\r\nx\r\n",
        ] {
            assert_eq!(run(l), vec![bad, "ERROR"], "{}", s(l));
        }
        assert_eq!(
            run(b"set c abc 0 1 noreply\r\nx\r\nversion\r\n"),
            vec![format!("!{}", bad).as_str(), "ERROR", "Version"]
        );
        // vlen < 0 or > INT_MAX - 2 (after int32 truncation)
        for v in ["-1", "2147483646", "2147483647", "4294967295", "2147483648"] {
            assert_eq!(
                run(format!("set a 0 0 {}\r\nversion\r\n", v).as_bytes()),
                vec![bad, "Version"],
                "{}",
                v
            );
        }
        let k251 = k(251);
        assert_eq!(
            run(&cat(&[b"set ", &k251, b" 0 0 1\r\nx\r\n"])),
            vec![bad, "ERROR"]
        );
        assert_eq!(run(&cat(&[b"set ", &k(250), b" 0 0 1\r\nx\r\n"])).len(), 1);
    }

    #[test]
    fn store_number_quirks() {
        // flags: strtoul then uint32 truncation; '+' and "-0" fine; isspace after digits ok
        assert_eq!(
            run(b"set c 4294967296 0 1\r\nx\r\n"),
            vec!["Set c 0 0 0 \"x\""]
        );
        assert_eq!(
            run(b"set c 4294967295 0 1\r\nx\r\n"),
            vec!["Set c 4294967295 0 0 \"x\""]
        );
        assert_eq!(
            run(b"set c 18446744073709551615 0 1\r\nx\r\n"),
            vec!["Set c 4294967295 0 0 \"x\""]
        );
        assert_eq!(
            run(b"set c -18446744073709551615 0 1\r\nx\r\n"),
            vec!["Set c 1 0 0 \"x\""]
        );
        assert_eq!(
            run(b"set c -9223372036854775809 0 1\r\nx\r\n"),
            vec!["Set c 4294967295 0 0 \"x\""]
        );
        assert_eq!(run(b"set c +5 0 1\r\nx\r\n"), vec!["Set c 5 0 0 \"x\""]);
        assert_eq!(run(b"set c -0 0 1\r\nx\r\n"), vec!["Set c 0 0 0 \"x\""]);
        assert_eq!(run(b"set c 1\t 0 1\r\nx\r\n"), vec!["Set c 1 0 0 \"x\""]);
        assert_eq!(run(b"set c 1\tx 0 1\r\nx\r\n"), vec!["Set c 1 0 0 \"x\""]);
        assert_eq!(run(b"set c \t1 0 1\r\nx\r\n"), vec!["Set c 1 0 0 \"x\""]);
        assert_eq!(run(b"set x 0 0 1\x0c\r\nz\r\n"), vec!["Set x 0 0 0 \"z\""]);
        assert_eq!(run(b"set x 0 0 \r1\r\nz\r\n"), vec!["Set x 0 0 0 \"z\""]);
        // exptime: strtol then int32 truncation
        assert_eq!(
            run(b"set d 0 4294967296 1\r\nx\r\n"),
            vec!["Set d 0 0 0 \"x\""]
        );
        assert_eq!(run(b"set d 0 -1 1\r\nx\r\n"), vec!["Set d 0 -1 0 \"x\""]);
        // length: int32 truncation, so this stores one byte
        assert_eq!(
            run(b"set c 0 0 4294967297\r\nx\r\n"),
            vec!["Set c 0 0 0 \"x\""]
        );
        // cas unique: full u64
        assert_eq!(
            run(b"cas a 0 0 1 18446744073709551615\r\nx\r\n"),
            vec!["Cas a 0 0 18446744073709551615 \"x\""]
        );
        assert_eq!(
            run(b"cas a 0 0 1 -18446744073709551615\r\nx\r\n"),
            vec!["Cas a 0 0 1 \"x\""]
        );
        assert_eq!(run(b"cas a 0 0 1 +5\r\nx\r\n"), vec!["Cas a 0 0 5 \"x\""]);
        assert_eq!(run(b"cas a 0 0 1 -0\r\nx\r\n"), vec!["Cas a 0 0 0 \"x\""]);
    }

    #[test]
    fn item_size_limit_matches_memcached() {
        // Largest accepted value lengths measured on memcached 1.6.18, per
        // (item_size_max, cas, key length, flags).
        let cases = [
            (1024, true, 1, 0, 964),
            (1024, true, 1, 1, 960),
            (1024, true, 250, 0, 715),
            (1024, true, 250, 1, 711),
            (1024, false, 1, 0, 972),
            (1024, false, 1, 1, 968),
            (1024, false, 250, 0, 723),
            (1024, false, 250, 1, 719),
            (1 << 20, true, 1, 0, 1048516),
            (1 << 20, true, 250, 1, 1048263),
            (1 << 20, false, 1, 0, 1048524),
            (1 << 20, false, 250, 1, 1048271),
            (2 << 20, true, 1, 0, 2097092),
            (2 << 20, true, 250, 1, 2096839),
        ];
        for (max, cas, nkey, flags, vmax) in cases {
            let lim = Limits {
                item_size_max: max,
                cas_enabled: cas,
            };
            assert!(!lim.item_too_large(nkey, flags, vmax + 2));
            assert!(lim.item_too_large(nkey, flags, vmax + 3));
            let line = format!("set {} {} 0 {}\r\n", "k".repeat(nkey), flags, vmax + 1);
            match parse(line.as_bytes(), &lim) {
                Parsed::Error {
                    reply,
                    consumed,
                    swallow,
                    unlink,
                    ..
                } => {
                    assert_eq!(reply, TOO_LARGE);
                    assert_eq!(consumed, line.len());
                    assert_eq!(swallow, vmax + 3);
                    assert_eq!(unlink, Some(&line.as_bytes()[4..4 + nkey]));
                }
                o => panic!("{:?}", o),
            }
            let line = format!("set {} {} 0 {}\r\n", "k".repeat(nkey), flags, vmax);
            assert_eq!(
                parse(line.as_bytes(), &lim),
                Parsed::Incomplete {
                    need: Some(line.len() + vmax + 2)
                }
            );
        }
    }

    #[test]
    fn too_large_swallows_and_only_set_unlinks() {
        let lim = Limits {
            item_size_max: 1024,
            cas_enabled: true,
        };
        let data = vec![b'y'; 2000];
        for (cmd, unlink) in [
            ("set", true),
            ("add", false),
            ("replace", false),
            ("append", false),
            ("prepend", false),
        ] {
            let input = cat(&[
                format!("{} a 0 0 2000\r\n", cmd).as_bytes(),
                &data,
                b"\r\nget a\r\n",
            ]);
            let want = if unlink {
                "SERVER_ERROR object too large for cache <unlink a>"
            } else {
                "SERVER_ERROR object too large for cache"
            };
            assert_eq!(run_with(&input, &lim), vec![want, "GET [\"a\"]"]);
        }
        let input = cat(&[b"cas a 0 0 2000 1\r\n", &data, b"\r\nget a\r\n"]);
        assert_eq!(
            run_with(&input, &lim),
            vec!["SERVER_ERROR object too large for cache", "GET [\"a\"]"]
        );
        // noreply: silent, still swallowed (memcached answered only VERSION)
        let input = cat(&[b"set a 0 0 2000 noreply\r\n", &data, b"\r\nversion\r\n"]);
        assert_eq!(
            run_with(&input, &lim),
            vec![
                "!SERVER_ERROR object too large for cache <unlink a>",
                "Version"
            ]
        );
        // the swallow is blind: it eats the 1998 bytes, the \r\n and "ve"; memcached then
        // answered ERROR for "rsion" and VERSION for the second line.
        let input = cat(&[
            b"set a 0 0 2000\r\n",
            &vec![b'y'; 1998],
            b"\r\nversion\r\nversion\r\n",
        ]);
        let r = run_with(&input, &lim);
        assert_eq!(r[1..], ["ERROR", "Version"]);
        // the swallow may exceed what has arrived
        assert_eq!(
            run_with(b"set a 0 0 2147483645\r\nversion\r\n", &lim),
            vec![
                "SERVER_ERROR object too large for cache <unlink a>",
                "<swallowing 2147483638>"
            ]
        );
    }

    // ---- other commands ----------------------------------------------------------------

    #[test]
    fn touch() {
        assert_eq!(run(b"touch gb 10\r\n"), vec!["TOUCH gb 10"]);
        assert_eq!(run(b"touch gb\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"touch gb abc\r\n"),
            vec!["CLIENT_ERROR invalid exptime argument"]
        );
        assert_eq!(
            run(b"touch gb abc noreply\r\n"),
            vec!["!CLIENT_ERROR invalid exptime argument"]
        );
        assert_eq!(run(b"touch gb 10 noreply\r\n"), vec!["TOUCH gb 10 noreply"]);
        assert_eq!(run(b"touch gb 10 x\r\n"), vec!["TOUCH gb 10"]);
        assert_eq!(run(b"touch a 1\tx\r\n"), vec!["TOUCH a 1"]);
        assert_eq!(
            run(&cat(&[b"touch ", &k(251), b" 10\r\n"])),
            vec!["CLIENT_ERROR bad command line format"]
        );
        assert_eq!(
            run(b"touch zz -18446744073709551615\r\n"),
            vec!["CLIENT_ERROR invalid exptime argument"]
        );
        assert_eq!(
            run(b"touch zz 9223372036854775808\r\n"),
            vec!["CLIENT_ERROR invalid exptime argument"]
        );
        assert_eq!(
            run(b"touch zz -9223372036854775808\r\n"),
            vec!["TOUCH zz 0"]
        );
    }

    #[test]
    fn arith() {
        assert_eq!(run(b"incr n 5\r\n"), vec!["INCR n 5"]);
        assert_eq!(run(b"decr n 1000\r\n"), vec!["DECR n 1000"]);
        for d in [
            "-1",
            "abc",
            "18446744073709551616",
            "-5",
            "5x",
            "0x5",
            "1.5",
            "-9223372036854775808",
        ] {
            assert_eq!(
                run(format!("incr n {}\r\n", d).as_bytes()),
                vec!["CLIENT_ERROR invalid numeric delta argument"],
                "{}",
                d
            );
        }
        assert_eq!(run(b"incr n\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"incr n 1 2\r\n"), vec!["INCR n 1"]);
        assert_eq!(
            run(b"incr n 18446744073709551615\r\n"),
            vec!["INCR n 18446744073709551615"]
        );
        assert_eq!(run(b"incr n +1\r\n"), vec!["INCR n 1"]);
        assert_eq!(run(b"incr n -0\r\n"), vec!["INCR n 0"]);
        assert_eq!(run(b"incr n -18446744073709551615\r\n"), vec!["INCR n 1"]);
        assert_eq!(run(b"incr a 1\x0b\r\n"), vec!["INCR a 1"]);
        assert_eq!(run(b"incr n 1 noreply\r\n"), vec!["INCR n 1 noreply"]);
        assert_eq!(
            run(b"incr n x noreply\r\n"),
            vec!["!CLIENT_ERROR invalid numeric delta argument"]
        );
        // `incr a noreply`: the delta is "noreply" and the error is silent
        assert_eq!(
            run(b"incr a noreply\r\n"),
            vec!["!CLIENT_ERROR invalid numeric delta argument"]
        );
        assert_eq!(
            run(&cat(&[b"incr ", &k(251), b" 1\r\n"])),
            vec!["CLIENT_ERROR bad command line format"]
        );
        assert_eq!(
            run(&cat(&[b"decr ", &k(251), b" 1 noreply\r\n"])),
            vec!["!CLIENT_ERROR bad command line format"]
        );
    }

    #[test]
    fn delete() {
        let usage = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
        assert_eq!(run(b"delete a\r\n"), vec!["DELETE a"]);
        assert_eq!(run(b"delete a 0\r\n"), vec!["DELETE a"]);
        assert_eq!(run(b"delete a noreply\r\n"), vec!["DELETE a noreply"]);
        assert_eq!(run(b"delete a 0 noreply\r\n"), vec!["DELETE a noreply"]);
        assert_eq!(run(b"delete noreply\r\n"), vec!["DELETE noreply"]);
        assert_eq!(run(b"delete gb 1\r\n"), vec![usage]);
        assert_eq!(run(b"delete zz noreply 0\r\n"), vec![usage]);
        assert_eq!(run(b"delete zz 0 0\r\n"), vec![usage]);
        assert_eq!(run(b"delete a 0\t\r\n"), vec![usage]);
        assert_eq!(run(b"delete a \t0\r\n"), vec![usage]);
        assert_eq!(run(b"delete zz 1 noreply\r\n"), vec![format!("!{}", usage)]);
        assert_eq!(run(b"delete\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"delete a b c d\r\n"), vec!["ERROR"]);
        let k251 = k(251);
        assert_eq!(
            run(&cat(&[b"delete ", &k251, b"\r\n"])),
            vec!["CLIENT_ERROR bad command line format"]
        );
        assert_eq!(
            run(&cat(&[b"delete ", &k251, b" 0\r\n"])),
            vec!["CLIENT_ERROR bad command line format"]
        );
        // the usage check comes before the key length check
        assert_eq!(run(&cat(&[b"delete ", &k251, b" 1\r\n"])), vec![usage]);
        assert_eq!(
            run(&cat(&[b"delete ", &k251, b" noreply\r\n"])),
            vec!["!CLIENT_ERROR bad command line format"]
        );
    }

    #[test]
    fn flush_all() {
        let ok = |d: i32, nr: bool| {
            format!(
                "{:?}",
                Command::FlushAll {
                    delay: Ok(d),
                    noreply: nr
                }
            )
        };
        let bad = |nr: bool| {
            format!(
                "{:?}",
                Command::FlushAll {
                    delay: Err(INVALID_EXPTIME),
                    noreply: nr
                }
            )
        };
        assert_eq!(run(b"flush_all\r\n"), vec![ok(0, false)]);
        assert_eq!(run(b"flush_all 0\r\n"), vec![ok(0, false)]);
        assert_eq!(run(b"flush_all -1\r\n"), vec![ok(-1, false)]);
        assert_eq!(run(b"flush_all 4294967296\r\n"), vec![ok(0, false)]);
        assert_eq!(run(b"flush_all 1\t\r\n"), vec![ok(1, false)]);
        assert_eq!(run(b"flush_all abc\r\n"), vec![bad(false)]);
        assert_eq!(run(b"flush_all noreply\r\n"), vec![ok(0, true)]);
        assert_eq!(run(b"flush_all abc noreply\r\n"), vec![bad(true)]);
        assert_eq!(run(b"flush_all 0 noreply\r\n"), vec![ok(0, true)]);
        assert_eq!(run(b"flush_all 0 0\r\n"), vec![ok(0, false)]);
        assert_eq!(run(b"flush_all 0 x\r\n"), vec![ok(0, false)]);
        assert_eq!(run(b"flush_all noreply noreply\r\n"), vec![bad(true)]);
        // `noreply\t` is not noreply: the delay "noreply\t" is parsed and fails (memcached
        // answered CLIENT_ERROR invalid exptime argument)
        assert_eq!(run(b"flush_all noreply\t\r\n"), vec![bad(false)]);
        assert_eq!(run(b"flush_all 1 2 3\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"flush_all\t\r\n"), vec!["ERROR"]);
    }

    #[test]
    fn verbosity_version_quit() {
        assert_eq!(run(b"verbosity\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"verbosity 1 2 3\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"verbosity 1\r\n"),
            vec!["Verbosity { level: 1, noreply: false }"]
        );
        assert_eq!(
            run(b"verbosity 1 2\r\n"),
            vec!["Verbosity { level: 1, noreply: false }"]
        );
        assert_eq!(
            run(b"verbosity 1 noreply\r\n"),
            vec!["Verbosity { level: 1, noreply: true }"]
        );
        assert_eq!(
            run(b"verbosity 4294967296\r\n"),
            vec!["Verbosity { level: 0, noreply: false }"]
        );
        assert_eq!(
            run(b"verbosity 18446744073709551615\r\n"),
            vec!["Verbosity { level: 4294967295, noreply: false }"]
        );
        assert_eq!(
            run(b"verbosity abc\r\n"),
            vec!["CLIENT_ERROR bad command line format"]
        );
        assert_eq!(
            run(b"verbosity -1\r\n"),
            vec!["CLIENT_ERROR bad command line format"]
        );
        assert_eq!(
            run(b"verbosity noreply\r\n"),
            vec!["!CLIENT_ERROR bad command line format"]
        );
        assert_eq!(run(b"version\r\n"), vec!["Version"]);
        assert_eq!(run(b"version foo bar\r\n"), vec!["Version"]);
        assert_eq!(run(b"quit\r\nversion\r\n"), vec!["Quit", "Version"]);
        assert_eq!(run(b"quit x\r\n"), vec!["Quit"]);
    }

    #[test]
    fn cache_memlimit() {
        assert_eq!(run(b"cache_memlimit\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"cache_memlimit 1 2 3\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"cache_memlimit abc\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"cache_memlimit -1\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"cache_memlimit x noreply\r\n"), vec!["!ERROR"]);
        assert_eq!(run(b"cache_memlimit 7\r\n"), vec![MEMLIMIT_TOO_SMALL]);
        assert_eq!(
            run(b"cache_memlimit 4294967296\r\n"),
            vec![MEMLIMIT_TOO_SMALL]
        );
        assert_eq!(
            run(b"cache_memlimit 7 noreply\r\n"),
            vec![format!("!{}", MEMLIMIT_TOO_SMALL)]
        );
        assert_eq!(
            run(b"cache_memlimit 1000000001\r\n"),
            vec![MEMLIMIT_NOT_BYTES]
        );
        assert_eq!(
            run(b"cache_memlimit 8\r\n"),
            vec!["CacheMemlimit { megabytes: 8, noreply: false }"]
        );
        assert_eq!(
            run(b"cache_memlimit 64 1\r\n"),
            vec!["CacheMemlimit { megabytes: 64, noreply: false }"]
        );
        assert_eq!(
            run(b"cache_memlimit 64 noreply\r\n"),
            vec!["CacheMemlimit { megabytes: 64, noreply: true }"]
        );
    }

    #[test]
    fn shutdown() {
        let sh = |g: Result<bool, &'static str>| format!("{:?}", Command::Shutdown { graceful: g });
        assert_eq!(run(b"shutdown\r\n"), vec![sh(Ok(false))]);
        assert_eq!(run(b"shutdown graceful\r\n"), vec![sh(Ok(true))]);
        assert_eq!(run(b"shutdown x\r\n"), vec![sh(Err(INVALID_SHUTDOWN_MODE))]);
        assert_eq!(
            run(b"shutdown graceful x\r\n"),
            vec![sh(Err(INVALID_SHUTDOWN_MODE))]
        );
    }

    #[test]
    fn stats() {
        let st = |c: StatsCmd<'static>| format!("{:?}", Command::Stats(c));
        assert_eq!(run(b"stats\r\n"), vec![st(StatsCmd::General)]);
        assert_eq!(run(b"stats  \r\n"), vec![st(StatsCmd::General)]);
        assert_eq!(run(b"stats reset\r\n"), vec![st(StatsCmd::Reset)]);
        assert_eq!(run(b"stats reset x\r\n"), vec![st(StatsCmd::Reset)]);
        assert_eq!(run(b"stats settings\r\n"), vec![st(StatsCmd::Settings)]);
        assert_eq!(run(b"stats conns\r\n"), vec![st(StatsCmd::Conns)]);
        assert_eq!(run(b"stats detail\r\n"), vec![STATS_DETAIL_USAGE]);
        assert_eq!(run(b"stats detail x\r\n"), vec![STATS_DETAIL_USAGE]);
        assert_eq!(
            run(b"stats detail on\r\n"),
            vec![st(StatsCmd::Detail(DetailOp::On))]
        );
        assert_eq!(
            run(b"stats detail on x\r\n"),
            vec![st(StatsCmd::Detail(DetailOp::On))]
        );
        assert_eq!(
            run(b"stats detail off\r\n"),
            vec![st(StatsCmd::Detail(DetailOp::Off))]
        );
        assert_eq!(
            run(b"stats detail dump\r\n"),
            vec![st(StatsCmd::Detail(DetailOp::Dump))]
        );
        assert_eq!(
            run(b"stats cachedump\r\n"),
            vec![st(StatsCmd::Cachedump(Err(BAD_COMMAND_LINE)))]
        );
        assert_eq!(
            run(b"stats cachedump 1\r\n"),
            vec![st(StatsCmd::Cachedump(Err(BAD_COMMAND_LINE)))]
        );
        assert_eq!(
            run(b"stats cachedump x 1\r\n"),
            vec![st(StatsCmd::Cachedump(Err(BAD_FORMAT)))]
        );
        assert_eq!(
            run(b"stats cachedump 1 x\r\n"),
            vec![st(StatsCmd::Cachedump(Err(BAD_FORMAT)))]
        );
        assert_eq!(
            run(b"stats cachedump -1 1\r\n"),
            vec![st(StatsCmd::Cachedump(Err(BAD_FORMAT)))]
        );
        assert_eq!(
            run(b"stats cachedump 64 1\r\n"),
            vec![st(StatsCmd::Cachedump(Err(ILLEGAL_SLAB_ID)))]
        );
        assert_eq!(
            run(b"stats cachedump 1 2 3\r\n"),
            vec![st(StatsCmd::Cachedump(Ok((1, 2))))]
        );
        assert_eq!(run(b"stats items\r\n"), vec![st(StatsCmd::Other(b"items"))]);
        assert_eq!(
            run(b"stats noreply\r\n"),
            vec![st(StatsCmd::Other(b"noreply"))]
        );
        assert_eq!(run(b"stats \t\r\n"), vec![st(StatsCmd::Other(b"\t"))]);
        assert_eq!(run(b"stats\t\r\n"), vec!["ERROR"]);
    }

    #[test]
    fn slabs() {
        let sl = |c: SlabsCmd| format!("{:?}", Command::Slabs(c));
        assert_eq!(run(b"slabs\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"slabs reassign 1\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"slabs reassign 1 2 noreply\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"slabs reassign 1 2\r\n"),
            vec![sl(SlabsCmd::Reassign(Ok((1, 2))))]
        );
        assert_eq!(
            run(b"slabs reassign -1 2\r\n"),
            vec![sl(SlabsCmd::Reassign(Ok((-1, 2))))]
        );
        assert_eq!(
            run(b"slabs reassign 4294967297 2\r\n"),
            vec![sl(SlabsCmd::Reassign(Ok((1, 2))))]
        );
        assert_eq!(
            run(b"slabs reassign a 2\r\n"),
            vec![sl(SlabsCmd::Reassign(Err(BAD_FORMAT)))]
        );
        assert_eq!(
            run(b"slabs automove 1\r\n"),
            vec![sl(SlabsCmd::Automove {
                level: 1,
                noreply: false
            })]
        );
        assert_eq!(
            run(b"slabs automove 4294967296\r\n"),
            vec![sl(SlabsCmd::Automove {
                level: 0,
                noreply: false
            })]
        );
        assert_eq!(
            run(b"slabs automove 1 noreply\r\n"),
            vec![sl(SlabsCmd::Automove {
                level: 1,
                noreply: true
            })]
        );
        assert_eq!(run(b"slabs automove 3\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"slabs automove x\r\n"), vec![BAD_FORMAT]);
        assert_eq!(run(b"slabs automove -1\r\n"), vec![BAD_FORMAT]);
        assert_eq!(
            run(b"slabs automove noreply\r\n"),
            vec![format!("!{}", BAD_FORMAT)]
        );
        assert_eq!(run(b"slabs automove ratio\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"slabs automove ratio x\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"slabs automove ratio 0.5\r\n"),
            vec![sl(SlabsCmd::AutomoveRatio {
                ratio: 0.5,
                noreply: false
            })]
        );
        assert_eq!(
            run(b"slabs automove ratio 0.5 noreply\r\n"),
            vec![sl(SlabsCmd::AutomoveRatio {
                ratio: 0.5,
                noreply: true
            })]
        );
    }

    #[test]
    fn strtod_like_glibc() {
        // accepted / rejected by memcached's `slabs automove ratio` (safe_strtod)
        for ok in [
            "0.5",
            "nan",
            "inf",
            "INF",
            "infinity",
            "nan(abc)",
            "-nan",
            "1e1",
            "0x10",
            ".5",
            "5.",
            "2.2250738585072014e-308",
            "0e-999",
            "0x1p-1074",
            "0x1.8p1",
            "-1",
        ] {
            assert!(safe_strtod(ok.as_bytes()).is_some(), "{}", ok);
        }
        for bad in [
            "x",
            "1e999",
            "1e-999",
            "1e-310",
            "4.9e-324",
            "1e-320",
            "0x",
            "nan(",
            "0x1p99999",
            "",
            ".",
        ] {
            assert!(safe_strtod(bad.as_bytes()).is_none(), "{}", bad);
        }
        assert_eq!(safe_strtod(b"0x1.8p1"), Some(3.0));
        assert_eq!(safe_strtod(b"0x10"), Some(16.0));
        assert_eq!(safe_strtod(b"1e1"), Some(10.0));
        assert_eq!(safe_strtod(b" 2.5\t"), Some(2.5));
    }

    #[test]
    fn lru() {
        assert_eq!(run(b"lru\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"lru x\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"lru mode flat\r\n"),
            vec![format!(
                "{:?}",
                Command::Lru(LruCmd::Mode {
                    segmented: false,
                    noreply: false
                })
            )]
        );
        assert_eq!(
            run(b"lru mode segmented\r\n"),
            vec![format!(
                "{:?}",
                Command::Lru(LruCmd::Mode {
                    segmented: true,
                    noreply: false
                })
            )]
        );
        assert_eq!(
            run(b"lru mode flat noreply\r\n"),
            vec![format!(
                "{:?}",
                Command::Lru(LruCmd::Mode {
                    segmented: false,
                    noreply: true
                })
            )]
        );
        assert_eq!(run(b"lru mode x\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"lru temp_ttl 10\r\n"),
            vec![format!(
                "{:?}",
                Command::Lru(LruCmd::TempTtl {
                    ttl: 10,
                    noreply: false
                })
            )]
        );
        assert_eq!(
            run(b"lru temp_ttl -1\r\n"),
            vec![format!(
                "{:?}",
                Command::Lru(LruCmd::TempTtl {
                    ttl: -1,
                    noreply: false
                })
            )]
        );
        assert_eq!(
            run(b"lru temp_ttl 4294967296\r\n"),
            vec![format!(
                "{:?}",
                Command::Lru(LruCmd::TempTtl {
                    ttl: 0,
                    noreply: false
                })
            )]
        );
        assert_eq!(run(b"lru temp_ttl x\r\n"), vec!["ERROR"]);
        let tune = |h: u32, w: u32, hf: f64, wf: f64| {
            format!(
                "{:?}",
                Command::Lru(LruCmd::Tune {
                    pct_hot: h,
                    pct_warm: w,
                    hot_factor: hf,
                    warm_factor: wf,
                    noreply: false
                })
            )
        };
        assert_eq!(
            run(b"lru tune 10 10 0.1 2\r\n"),
            vec![tune(10, 10, 0.1, 2.0)]
        );
        assert_eq!(
            run(b"lru tune 4294967295 2 0.1 2\r\n"),
            vec![tune(4294967295, 2, 0.1, 2.0)]
        );
        assert_eq!(
            run(b"lru tune 10 10 inf 2\r\n"),
            vec![tune(10, 10, f64::INFINITY, 2.0)]
        );
        assert_eq!(run(b"lru tune 10 10 nan 2\r\n").len(), 1);
        assert!(!run(b"lru tune 10 10 nan 2\r\n")[0].starts_with("ERROR"));
        assert_eq!(run(b"lru tune 50 50 0.1 2\r\n"), vec![LRU_PCTS]);
        assert_eq!(run(b"lru tune 10 10 0 2\r\n"), vec![LRU_FACTORS]);
        assert_eq!(run(b"lru tune 10 10 -1 2\r\n"), vec![LRU_FACTORS]);
        assert_eq!(run(b"lru tune 10 10 x 2\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"lru tune 10 -1 0.1 2\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"lru tune 10 10 1e999 2\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"lru tune 10 10 0.1\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"lru tune 10 10 0.1 2 noreply\r\n").len(), 1);
    }

    #[test]
    fn lru_crawler() {
        let c = |x: LruCrawlerCmd<'static>| format!("{:?}", Command::LruCrawler(x));
        assert_eq!(run(b"lru_crawler\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"lru_crawler x\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"lru_crawler crawl 1\r\n"),
            vec![c(LruCrawlerCmd::Crawl { classes: b"1" })]
        );
        assert_eq!(
            run(b"lru_crawler crawl all\r\n"),
            vec![c(LruCrawlerCmd::Crawl { classes: b"all" })]
        );
        assert_eq!(run(b"lru_crawler crawl 1 2\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"lru_crawler metadump x\r\n"),
            vec![c(LruCrawlerCmd::Metadump { classes: b"x" })]
        );
        assert_eq!(
            run(b"lru_crawler tocrawl 10\r\n"),
            vec![c(LruCrawlerCmd::Tocrawl(10))]
        );
        assert_eq!(run(b"lru_crawler tocrawl x\r\n"), vec![BAD_FORMAT]);
        assert_eq!(run(b"lru_crawler tocrawl -1\r\n"), vec![BAD_FORMAT]);
        assert_eq!(run(b"lru_crawler tocrawl 1 noreply\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"lru_crawler sleep 10\r\n"),
            vec![c(LruCrawlerCmd::Sleep(10))]
        );
        assert_eq!(
            run(b"lru_crawler sleep 1000000\r\n"),
            vec![c(LruCrawlerCmd::Sleep(1000000))]
        );
        assert_eq!(run(b"lru_crawler sleep 2000000\r\n"), vec![CRAWLER_SLEEP]);
        assert_eq!(run(b"lru_crawler sleep -1\r\n"), vec![BAD_FORMAT]);
        assert_eq!(
            run(b"lru_crawler enable\r\n"),
            vec![c(LruCrawlerCmd::Enable)]
        );
        assert_eq!(
            run(b"lru_crawler disable\r\n"),
            vec![c(LruCrawlerCmd::Disable)]
        );
        assert_eq!(run(b"lru_crawler enable x\r\n"), vec!["ERROR"]);
    }

    #[test]
    fn watch() {
        let w = |f: Result<u16, &'static str>, nr: bool| {
            format!(
                "{:?}",
                Command::Watch {
                    streams: f.map(WatchFlags),
                    noreply: nr
                }
            )
        };
        assert_eq!(run(b"watch\r\n"), vec![w(Ok(WatchFlags::FETCHERS), false)]);
        assert_eq!(
            run(b"watch rawcmds\r\n"),
            vec![w(Ok(WatchFlags::RAWCMDS), false)]
        );
        assert_eq!(
            run(b"watch evictions mutations proxyuser\r\n"),
            vec![w(
                Ok(WatchFlags::EVICTIONS | WatchFlags::MUTATIONS | WatchFlags::PROXYUSER),
                false
            )]
        );
        for name in [
            "sysevents",
            "connevents",
            "proxyreqs",
            "proxyevents",
            "fetchers",
        ] {
            assert!(
                run(format!("watch {}\r\n", name).as_bytes())[0].contains("Ok"),
                "{}",
                name
            );
        }
        assert_eq!(run(b"watch deletions\r\n"), vec![w(Err(ERROR), false)]);
        assert_eq!(run(b"watch fetchers x\r\n"), vec![w(Err(ERROR), false)]);
        // memcached said nothing at all for these two
        assert_eq!(run(b"watch noreply\r\n"), vec![w(Err(ERROR), true)]);
        assert_eq!(
            run(b"watch fetchers noreply\r\n"),
            vec![w(Err(ERROR), true)]
        );
    }

    #[test]
    fn extstore_and_refresh_certs() {
        let ok = |nr: bool| format!("{:?}", Command::Extstore { noreply: nr });
        for l in [
            "extstore item_size 10",
            "extstore free_memchunks 1 2",
            "extstore max_frag 0.5",
            "extstore drop_unread 1",
            "extstore item_age 1",
            "extstore low_ttl 1",
            "extstore recache_rate 1",
            "extstore compact_under 1",
            "extstore drop_under 1",
            "extstore max_sleep 1",
        ] {
            assert_eq!(
                run(format!("{}\r\n", l).as_bytes()),
                vec![ok(false)],
                "{}",
                l
            );
        }
        assert_eq!(run(b"extstore item_size 10 noreply\r\n"), vec![ok(true)]);
        for l in [
            "extstore",
            "extstore item_size",
            "extstore item_size x",
            "extstore foo 1",
            "extstore free_memchunks 1",
            "extstore free_memchunks 64 2",
            "extstore max_frag x",
            "extstore item_size -1",
        ] {
            assert_eq!(run(format!("{}\r\n", l).as_bytes()), vec!["ERROR"], "{}", l);
        }
        assert_eq!(run(b"extstore noreply\r\n"), vec!["!ERROR"]);
        assert_eq!(run(b"extstore item_size noreply\r\n"), vec!["!ERROR"]);
        assert_eq!(
            run(b"refresh_certs\r\n"),
            vec!["RefreshCerts { noreply: false }"]
        );
        assert_eq!(
            run(b"refresh_certs noreply\r\n"),
            vec!["RefreshCerts { noreply: true }"]
        );
    }

    #[test]
    fn meta_passthrough() {
        assert_eq!(run(b"mn\r\n"), vec!["META Noop mn"]);
        assert_eq!(run(b"mg a v\r\n"), vec!["META Get mg a v"]);
        assert_eq!(run(b" me a\r\n"), vec!["META Debug  me a"]);
        assert_eq!(run(b"ma a\r\n"), vec!["META Arithmetic ma a"]);
        assert_eq!(run(b"md a q\r\n"), vec!["META Delete md a q"]);
        assert_eq!(run(b"mx\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"mgx\r\n"), vec!["ERROR"]);
        // ms: only the line is consumed; the data block is the meta parser's.
        match p(b"ms a 1\r\nx\r\n") {
            Parsed::Cmd {
                cmd:
                    Command::Meta {
                        op: MetaOp::Set,
                        line,
                    },
                consumed,
            } => {
                assert_eq!(line, b"ms a 1");
                assert_eq!(consumed, 8);
            }
            o => panic!("{:?}", o),
        }
    }

    // ---- tokenizer and numbers -----------------------------------------------------------

    #[test]
    fn tokenizer_matches_memcached() {
        let t = tokenize(b"  a  b ");
        assert_eq!(t.as_slice(), &[&b"a"[..], b"b"]);
        assert_eq!(t.rest(), None);
        let line: Vec<u8> = (0..30)
            .map(|i| format!("t{} ", i))
            .collect::<String>()
            .into_bytes();
        let t = tokenize(&line);
        assert_eq!(t.len(), 23);
        assert_eq!(t.rest(), Some(&line[line.len() - 7 * 4..]));
        // exactly 23 tokens, with or without a trailing space: no rest
        let mut l23: Vec<u8> = (0..23)
            .map(|i| format!("{:02} ", i))
            .collect::<String>()
            .into_bytes();
        assert_eq!(tokenize(&l23).rest(), None);
        l23.pop();
        assert_eq!(tokenize(&l23).len(), 23);
        assert_eq!(tokenize(&l23).rest(), None);
        // spaces only after the 23rd: memcached's terminal is non-NULL
        l23.extend(b"   ");
        assert_eq!(tokenize(&l23).rest(), Some(&b"  "[..]));
        assert!(tokenize(b"").is_empty());
        assert!(tokenize(b"    ").is_empty());
    }

    #[test]
    fn safe_number_helpers() {
        assert_eq!(safe_strtoul(b"4294967296"), Some(0));
        assert_eq!(safe_strtoul(b"-1"), None);
        assert_eq!(safe_strtoul(b"-0"), Some(0));
        assert_eq!(safe_strtoul(b""), None);
        assert_eq!(safe_strtoul(b"+"), None);
        assert_eq!(safe_strtoul(b"-"), None);
        assert_eq!(safe_strtoul(b" "), None);
        assert_eq!(safe_strtoul(b"\t7"), Some(7));
        assert_eq!(safe_strtoul(b"7\r"), Some(7));
        assert_eq!(safe_strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(safe_strtoull(b"18446744073709551616"), None);
        assert_eq!(safe_strtoull(b"-9223372036854775808"), None);
        assert_eq!(
            safe_strtoull(b"-9223372036854775809"),
            Some(9223372036854775807)
        );
        // the '-' rule looks at the whole token
        assert_eq!(safe_strtoull(b"18446744073709551615\t-"), None);
        assert_eq!(safe_strtoull(b"5\t-"), Some(5));
        assert_eq!(safe_strtol(b"2147483648"), Some(i32::MIN));
        assert_eq!(safe_strtol(b"-2147483649"), Some(i32::MAX));
        assert_eq!(safe_strtol(b"9223372036854775807"), Some(-1));
        assert_eq!(safe_strtol(b"9223372036854775808"), None);
        assert_eq!(safe_strtol(b"-9223372036854775808"), Some(0));
        assert_eq!(safe_strtol(b"-9223372036854775809"), None);
        assert_eq!(safe_strtol(b"99999999999999999999999"), None);
    }

    #[test]
    fn find_byte_agrees_with_position() {
        let hay: Vec<u8> = (0..300u32).map(|i| (i * 7 % 251) as u8).collect();
        for start in 0..40 {
            for needle in [0u8, 10, 13, 32, 250, 255, 0x80, 0x7f] {
                let h = &hay[start..];
                assert_eq!(
                    find_byte(needle, h),
                    h.iter().position(|&b| b == needle),
                    "{} {}",
                    start,
                    needle
                );
            }
        }
    }

    #[test]
    fn pipelines_split_anywhere_give_the_same_results() {
        let input: &[u8] = b"set a 0 0 5\r\nhello\r\nget a b\r\ngat 1 a\r\nincr n 1 noreply\r\n\
            delete a 0\r\nset x 1 2 3\r\nabcd\r\nbogus\r\ntouch a 1\r\nmn\r\nversion\r\n";
        let whole = run(input);
        assert_eq!(whole.len(), 11, "{:?}", whole);
        for cut in 0..=input.len() {
            let mut pos = 0;
            let mut out = Vec::new();
            let mut have = cut;
            loop {
                match parse(&input[pos..have], &L) {
                    Parsed::Incomplete { need } => {
                        if let Some(n) = need {
                            assert!(n > have - pos);
                        }
                        if have == input.len() {
                            break;
                        }
                        have = input.len();
                    }
                    Parsed::Cmd { cmd, consumed } => {
                        out.push(describe(&cmd));
                        pos += consumed;
                    }
                    Parsed::Error {
                        reply, consumed, ..
                    } => {
                        out.push(reply.to_string());
                        pos += consumed;
                    }
                }
            }
            assert_eq!(out, whole, "cut at {}", cut);
        }
    }

    #[test]
    fn round_trip_examples() {
        let value = b"v\r\nal\x00ue";
        let cmds = [
            Command::Store {
                op: StoreOp::Cas,
                key: b"k",
                flags: 7,
                exptime: -3,
                cas: 99,
                value,
                noreply: true,
            },
            Command::Store {
                op: StoreOp::Set,
                key: b"k\t",
                flags: 0,
                exptime: 0,
                cas: 0,
                value: b"",
                noreply: false,
            },
            Command::Get {
                keys: Keys { rest: b"a b c" },
                with_cas: true,
                end: GetEnd::End,
            },
            Command::Gat {
                exptime: 5,
                keys: Keys { rest: b"" },
                with_cas: false,
                end: GetEnd::End,
            },
            Command::Delete {
                key: b"noreply",
                noreply: false,
            },
            Command::Delete {
                key: b"d",
                noreply: true,
            },
            Command::Arith {
                key: b"n",
                delta: u64::MAX,
                incr: false,
                noreply: false,
            },
            Command::Touch {
                key: b"t",
                exptime: i32::MIN,
                noreply: true,
            },
            Command::FlushAll {
                delay: Ok(10),
                noreply: true,
            },
            Command::Verbosity {
                level: 2,
                noreply: false,
            },
            Command::CacheMemlimit {
                megabytes: 100,
                noreply: true,
            },
            Command::Version,
            Command::Quit,
            Command::Stats(StatsCmd::Cachedump(Ok((3, 4)))),
        ];
        for c in cmds {
            let mut buf = Vec::new();
            c.encode(&mut buf);
            match parse(&buf, &L) {
                Parsed::Cmd { cmd, consumed } => {
                    assert_eq!(cmd, c);
                    assert_eq!(consumed, buf.len());
                }
                o => panic!("{:?} -> {:?}", c, o),
            }
        }
    }
}
