//! What the text parser hands the host: [`Parsed`] (a command, an error to
//! answer, or "read more") and the [`Command`] types, with memcached's number
//! types already applied. No parsing happens here.

use super::tokens::next_token;

/// The result of looking at the start of a connection's buffer.
#[derive(Clone, Debug, PartialEq)]
pub enum Parsed<'a> {
    /// Not a whole command yet: read more and call [`parse`](super::parse) again with the grown
    /// buffer. `need`: when known (a storage command's data block is being awaited) the total
    /// number of bytes from the start of `buf` the command occupies, so the connection can reserve
    /// space once instead of growing the buffer repeatedly. It is bounded by the line plus
    /// `item_size_max`, because a too-large item is rejected before its data.
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
    /// A key longer than [`KEY_MAX_LENGTH`](crate::limits::KEY_MAX_LENGTH) follows the keys in
    /// [`Keys`]. memcached looks up (and for `gat` touches, and counts in the stats) every key
    /// *before* the bad one, then throws away every reply still queued on the connection — the hits
    /// of this command *and* the unwritten replies of earlier pipelined commands (it only writes
    /// out after a retrieval, `mn`, or when the read batch ends) — and answers just
    /// [`reply::BAD_FORMAT`](super::reply::BAD_FORMAT). Verified: `set a..`, `set b..`, `get a b
    /// <251 bytes>` sent together answers only `CLIENT_ERROR bad command line format`.
    KeyTooLong,
}

/// The keys of a multi-key command: a lazy iterator over the validated, space-separated
/// region of the command line. No allocation; it can be cloned and iterated again.
///
/// Keys are separated by spaces only (memcached tokenizes on `' '`): tabs, `\r` and other
/// control bytes are part of a key. Every key yielded is 1..=250 bytes long.
#[derive(Clone)]
pub struct Keys<'a> {
    pub(super) rest: &'a [u8],
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
    /// [`reply::STATS_DETAIL_USAGE`](super::reply::STATS_DETAIL_USAGE) error from the parser.
    Detail(DetailOp),
    /// `stats settings`.
    Settings,
    /// `stats cachedump <class id> <limit>`. memcached first checks that dumping is enabled
    /// ([`reply::CACHEDUMP_NOT_ALLOWED`](super::reply::CACHEDUMP_NOT_ALLOWED), host side), then
    /// reports the argument error carried here.
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
    /// `slabs reassign <src> <dst>` (exactly these tokens; no `noreply`). memcached first checks
    /// [`reply::SLAB_REASSIGN_DISABLED`](super::reply::SLAB_REASSIGN_DISABLED) (host), then reports
    /// the carried error. Numbers are `int32` after memcached's truncation (`-1` means "any
    /// source").
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
    /// (`BADCLASS invalid class id`) after checking
    /// [`reply::CRAWLER_DISABLED`](super::reply::CRAWLER_DISABLED).
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
    /// [`reply::FLUSH_NOT_ALLOWED`](super::reply::FLUSH_NOT_ALLOWED) under `-F`, and only then the
    /// delay error carried here.
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
    /// `shutdown [graceful]`. memcached answers
    /// [`reply::SHUTDOWN_NOT_ENABLED`](super::reply::SHUTDOWN_NOT_ENABLED) without `-A` before
    /// looking at the mode. On success it closes the connection silently.
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
    /// ([`reply::WATCH_NOT_ALLOWED`](super::reply::WATCH_NOT_ALLOWED)), nothing queued
    /// ([`reply::WATCH_PIPELINE`](super::reply::WATCH_PIPELINE)), then the stream names.
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
    /// [`reply::TLS_NOT_ENABLED`](super::reply::TLS_NOT_ENABLED), even with `noreply`.
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
        /// memcached's tokenizer sees); re-tokenize it with [`tokenize`](super::tokenize).
        line: &'a [u8],
    },
}

/// An error reply for the command line (nothing swallowed).
pub(super) fn line_err(reply: &'static str, noreply: bool, consumed: usize) -> Parsed<'static> {
    Parsed::Error {
        reply,
        noreply,
        consumed,
        swallow: 0,
        close: false,
        unlink: None,
    }
}
