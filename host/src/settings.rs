//! Command-line settings: memcached 1.6.18's flags and `-o` suboptions, with
//! memcached's meanings, defaults, value syntax, limits, error lines and exit
//! statuses, so existing init scripts, unit files and habits carry over.
//!
//! Numbers are read as memcached reads them (C's `atoi`/`atof` where it uses
//! those: `-b abc` is 0, `-f 1.5x` is 1.5; its `safe_strto*` where it uses
//! those: `-o watcher_logbuf_size=5x` is refused). A refusal is one line; its
//! exit status is memcached's for the same input: 1 for what memcached
//! rejects while reading its options, 64 (EX_USAGE) for its checks after
//! them, and 64 for what only wasmcached refuses ([`Refusal`]).
//!
//! Three kinds of settings (docs/operators.md lists each flag):
//! - those that take effect here (`-p`, `-c`, `-b`, `-o maxconns_fast`, …);
//! - memcached's slab allocator and LRU knobs (`-f`, `-n`, `-o hashpower`,
//!   `slab_*`, `lru_*`, …): validated as memcached validates them, stored in
//!   [`Knobs`] and shown by `stats settings` with the value given, a hint for
//!   the storage plugin (the plugin ABI does not carry them yet);
//! - those refused with a reason: `-e` (warm restart, not yet) and `ext_*`
//!   (extstore, memcached's flash tier, which wasmcached does not have).

use anyhow::{bail, Context, Result};
use clap::{ArgAction, Parser};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// memcached's ITEM_SIZE_MAX_LOWER_LIMIT / UPPER_LIMIT.
const ITEM_SIZE_MAX_LOWER: i64 = 1024;
const ITEM_SIZE_MAX_UPPER: i64 = 1024 * 1024 * 1024;
/// memcached's slab page size (`settings.slab_page_size`); the default
/// `slab_chunk_max` is half of it.
pub const SLAB_PAGE_SIZE: i64 = 1024 * 1024;
/// memcached's CHUNK_ALIGN_BYTES and MAX_NUMBER_OF_SLAB_CLASSES (`-o slab_sizes`).
const CHUNK_ALIGN_BYTES: u32 = 8;
const MAX_NUMBER_OF_SLAB_CLASSES: usize = 64;
/// One wasm32 linear memory is at most 4 GiB; keep each shard's budget well
/// below so its memory cap (budget + slack) still fits.
pub const MAX_SHARD_BUDGET: u64 = 1 << 30;

/// memcached's exit status for what it rejects while reading its options
/// (`return 1` from `main`).
pub const EXIT_OPTION: u8 = 1;
/// EX_USAGE: memcached's status for its checks after reading the options,
/// and wasmcached's for everything only it refuses.
pub const EX_USAGE: u8 = 64;

/// `-o hotkeys_sample` by default: one request in 100 keeps hot-key
/// counting far under 1 % of a request's cost (host/src/hotkeys.rs).
pub const HOTKEYS_SAMPLE: u32 = 100;
/// `-o hotkeys_sample` at most: rarer samples would say nothing.
pub const HOTKEYS_MAX_SAMPLE: u32 = 1_000_000;
/// `-o hotkeys_window` by default, and its bounds, in seconds: it slides by
/// halves, so 2 is the shortest; a day is the longest worth a top-K.
pub const HOTKEYS_WINDOW: u32 = 60;
pub const HOTKEYS_MIN_WINDOW: u32 = 2;
pub const HOTKEYS_MAX_WINDOW: u32 = 86_400;

/// A refusal to start: one line, and the exit status to leave with.
#[derive(Debug)]
pub struct Refusal {
    pub line: String,
    pub status: u8,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

impl std::error::Error for Refusal {}

/// The exit status for a start-up error: a [`Refusal`]'s own, else EX_USAGE.
pub fn exit_status(e: &anyhow::Error) -> u8 {
    e.downcast_ref::<Refusal>().map_or(EX_USAGE, |r| r.status)
}

/// memcached refuses this while reading its options: its line, status 1.
fn opt_err(line: impl Into<String>) -> anyhow::Error {
    Refusal {
        line: line.into(),
        status: EXIT_OPTION,
    }
    .into()
}

/// memcached refuses this after reading its options (or only wasmcached
/// refuses it): status 64.
fn usage_err(line: impl Into<String>) -> anyhow::Error {
    Refusal {
        line: line.into(),
        status: EX_USAGE,
    }
    .into()
}

#[derive(Parser, Debug)]
#[command(
    name = "wasmcached",
    version,
    args_override_self = true,
    about = "wasmcached: a memcached-compatible cache whose storage engine is a WebAssembly plugin",
    after_help = "Flags have memcached 1.6.18's meanings (docs/operators.md).\n\
-o takes memcached's suboptions: maxconns_fast, hashpower, tail_repair_time, hash_algorithm \
(jenkins, murmur3, xxh3), lru_crawler, lru_crawler_sleep, lru_crawler_tocrawl, read_buf_mem_limit, \
lru_maintainer, hot_lru_pct, warm_lru_pct, hot_max_factor, warm_max_factor, temporary_ttl, \
idle_timeout, slab_chunk_max, slab_sizes, slab_reassign, slab_automove, slab_automove_ratio, \
slab_automove_window, slab_automove_freeratio, watcher_logbuf_size, worker_logbuf_size, track_sizes, \
modern, sock_cookie_id, the ssl_* options of -Z, and their no_ forms (no_hashexpand, no_modern, \
no_lru_crawler, …); ext_* (extstore) is refused. \
wasmcached's own: shards=N (storage shards, default max(-t, -m/1024)), plugin_deadline_ms=N \
(per guest call, default 1000), plugin_cache=on|off (keep compiled plugin code on disk, default on), \
io=uring|poll (the workers' reactor: io_uring, the default on Linux where the kernel allows it, \
or epoll/kqueue/IOCP through polling), \
metrics_listen=HOST:PORT (serve Prometheus metrics at http://HOST:PORT/metrics, default off), \
hotkeys_sample=N (count one request in N for `stats hotkeys`, 0 = off, default 100), \
hotkeys_window=SECONDS (the window `stats hotkeys` covers, 2-86400, default 60)."
)]
struct Cli {
    /// TCP port to listen on (default: 11211; with -U and no -p: the UDP port)
    #[arg(
        short = 'p',
        long = "port",
        value_name = "num",
        allow_negative_numbers = true
    )]
    port: Option<String>,
    /// UDP port to listen on (default: 0, off)
    #[arg(
        short = 'U',
        long = "udp-port",
        value_name = "num",
        allow_negative_numbers = true
    )]
    udp_port: Option<String>,
    /// UNIX socket to listen on (disables network support)
    #[arg(short = 's', long = "unix-socket", value_name = "file")]
    unix_socket: Option<PathBuf>,
    /// Access mask for UNIX socket, in octal (default: 700)
    #[arg(short = 'a', long = "unix-mask", value_name = "mask")]
    unix_mask: Option<String>,
    /// Enable ascii "shutdown" command
    #[arg(short = 'A', long = "enable-shutdown")]
    enable_shutdown: bool,
    /// Interface to listen on (repeatable, or a comma-separated list; default: all addresses); `notls:ADDR` stays plain under -Z
    #[arg(short = 'l', long = "listen", value_name = "addr", action = ArgAction::Append)]
    listen: Vec<String>,
    /// Run as a daemon (unix only)
    #[arg(short = 'd', long = "daemon")]
    daemonize: bool,
    /// Maximize core file limit (unix only)
    #[arg(short = 'r', long = "enable-coredumps")]
    maxcore: bool,
    /// Assume identity of <username> (only when run as root; unix only)
    #[arg(short = 'u', long = "user", value_name = "user")]
    user: Option<String>,
    /// Item memory in megabytes (default: 64)
    #[arg(
        short = 'm',
        long = "memory-limit",
        value_name = "num",
        allow_negative_numbers = true
    )]
    memory_limit: Option<String>,
    /// Return error on memory exhausted instead of evicting items
    #[arg(short = 'M', long = "disable-evictions")]
    disable_evictions: bool,
    /// Max simultaneous connections (default: 1024)
    #[arg(
        short = 'c',
        long = "conn-limit",
        value_name = "num",
        allow_negative_numbers = true
    )]
    conn_limit: Option<String>,
    /// Lock down all paged memory (unix only)
    #[arg(short = 'k', long = "lock-memory")]
    lock_memory: bool,
    /// Verbose (print errors/warnings); -vv: also client commands and responses; -vvv: internal state
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    verbose: u8,
    /// Print wasmcached's licence and exit
    #[arg(short = 'i', long = "license")]
    license: bool,
    /// Save PID in <file>
    #[arg(short = 'P', long = "pidfile", value_name = "file")]
    pidfile: Option<PathBuf>,
    /// Slab chunk size growth factor (default: 1.25; a hint for the storage plugin)
    #[arg(
        short = 'f',
        long = "slab-growth-factor",
        value_name = "num",
        allow_negative_numbers = true
    )]
    growth_factor: Option<String>,
    /// Min space used for key+value+flags (default: 48; a hint for the storage plugin)
    #[arg(
        short = 'n',
        long = "slab-min-size",
        value_name = "bytes",
        allow_negative_numbers = true
    )]
    slab_min_size: Option<String>,
    /// Try to use large memory pages for the storage plugins' memory (if available)
    #[arg(short = 'L', long = "enable-largepages")]
    large_pages: bool,
    /// Use <char> as the delimiter between key prefixes and IDs (per-prefix stats; default ":")
    #[arg(short = 'D', value_name = "char", allow_hyphen_values = true)]
    prefix_delimiter: Option<String>,
    /// Number of worker threads (default: 4)
    #[arg(
        short = 't',
        long = "threads",
        value_name = "num",
        allow_negative_numbers = true
    )]
    threads: Option<String>,
    /// Maximum number of requests per event, limits requests processed per connection to prevent starvation (default: 20)
    #[arg(
        short = 'R',
        long = "max-reqs-per-event",
        value_name = "num",
        allow_negative_numbers = true
    )]
    max_reqs_per_event: Option<String>,
    /// Disable use of CAS
    #[arg(short = 'C', long = "disable-cas")]
    disable_cas: bool,
    /// Set the listen backlog queue limit (default: 1024)
    #[arg(
        short = 'b',
        long = "listen-backlog",
        value_name = "num",
        allow_negative_numbers = true
    )]
    backlog: Option<String>,
    /// Protocol: auto (sniff each connection's first byte), ascii or binary (default: auto)
    #[arg(short = 'B', long = "protocol", value_name = "name")]
    protocol: Option<String>,
    /// Max item size (k/m suffixes; default: 1m, min: 1k, max: 1024m, at most half of -m)
    #[arg(
        short = 'I',
        long = "max-item-size",
        value_name = "size",
        allow_negative_numbers = true
    )]
    max_item_size: Option<String>,
    /// Turn on SASL authentication (binary protocol, PLAIN; passwords from $MEMCACHED_SASL_PWDB)
    #[arg(short = 'S', long = "enable-sasl")]
    enable_sasl: bool,
    /// Disable flush_all command
    #[arg(short = 'F', long = "disable-flush-all")]
    disable_flush_all: bool,
    /// Disable stats cachedump and lru_crawler metadump
    #[arg(short = 'X', long = "disable-dumping")]
    disable_dumping: bool,
    /// Disable watch commands (live logging)
    #[arg(short = 'W', long = "disable-watch")]
    disable_watch: bool,
    /// Enable ASCII protocol authentication; file lines are user:password
    #[arg(short = 'Y', long = "auth-file", value_name = "file")]
    auth_file: Option<PathBuf>,
    /// Restartable cache: SIGUSR1 (or `shutdown graceful`) leaves the cache in <file> and files beside it; the next start with the same settings serves it again
    #[arg(short = 'e', long = "memory-file", value_name = "file")]
    memory_file: Option<String>,
    /// Enable TLS on TCP listeners (-o ssl_chain_cert=FILE,ssl_key=FILE[,ssl_ca_cert=FILE,ssl_verify_mode=N,ssl_min_version=N]; `-l notls:ADDR` stays plain)
    #[arg(short = 'Z', long = "enable-ssl")]
    enable_ssl: bool,
    /// Comma-separated list of extended options, e.g. idle_timeout=600 (most have a no_ form to disable)
    #[arg(short = 'o', long = "extended", value_name = "opts", action = ArgAction::Append, allow_hyphen_values = true)]
    extended: Vec<String>,
    /// Number of NAPI IDs (accepted; connections are not steered by NAPI ID here)
    #[arg(
        short = 'N',
        long = "napi-ids",
        value_name = "num",
        allow_negative_numbers = true
    )]
    napi_ids: Option<String>,
    /// Storage plugin (.wasm or .wat) to use instead of the embedded default store
    #[arg(long = "plugin", value_name = "FILE.wasm")]
    plugin: Option<PathBuf>,
    /// Configuration string passed to every plugin instance at init
    #[arg(long = "plugin-config", value_name = "STRING", default_value = "")]
    plugin_config: String,
}

/// memcached's hash table algorithms (`-o hash_algorithm`). wasmcached's
/// router has its own hash; this is a hint for the plugin and shown by
/// `stats settings`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgorithm {
    Jenkins,
    Murmur3,
    Xxh3,
}

impl HashAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Jenkins => "jenkins",
            HashAlgorithm::Murmur3 => "murmur3",
            HashAlgorithm::Xxh3 => "xxh3",
        }
    }
}

/// memcached's slab allocator, hash table, LRU and logger knobs: validated
/// as memcached validates them and kept with the value given (memcached's
/// defaults otherwise) for `stats settings` and, later, the plugin's init.
/// Sizes are in bytes (memcached's kilobyte and megabyte options converted
/// as memcached converts them).
#[derive(Clone, Debug, PartialEq)]
pub struct Knobs {
    /// `-f`
    pub growth_factor: f64,
    /// `-n`
    pub chunk_size: i32,
    /// `-o hashpower` (0: memcached's default start, 16)
    pub hashpower_init: i32,
    /// `-o no_hashexpand` clears it
    pub hash_expand: bool,
    pub hash_algorithm: HashAlgorithm,
    pub slab_reassign: bool,
    pub slab_automove: i32,
    pub slab_automove_ratio: f64,
    pub slab_automove_window: i32,
    pub slab_automove_freeratio: f64,
    /// Bytes (memcached's help says kilobytes; it reads bytes).
    pub slab_chunk_max: i64,
    /// `-o slab_sizes=A-B-C`, validated.
    pub slab_sizes: Vec<u32>,
    pub lru_crawler: bool,
    pub lru_crawler_sleep: i32,
    pub lru_crawler_tocrawl: u32,
    pub lru_maintainer: bool,
    pub lru_segmented: bool,
    pub hot_lru_pct: i32,
    pub warm_lru_pct: i32,
    pub hot_max_factor: f64,
    pub warm_max_factor: f64,
    /// Set by `-o temporary_ttl`.
    pub temp_lru: bool,
    pub temporary_ttl: i32,
    pub tail_repair_time: i32,
    pub watcher_logbuf_size: u64,
    pub worker_logbuf_size: u64,
    pub read_buf_mem_limit: u64,
    pub track_sizes: bool,
    /// `-o drop_privileges` / `no_drop_privileges` (memcached's seccomp
    /// sandbox); None when not given.
    pub drop_privileges: Option<bool>,
    pub sock_cookie_id: i32,
}

impl Default for Knobs {
    /// memcached 1.6.18's defaults.
    fn default() -> Self {
        Knobs {
            growth_factor: 1.25,
            chunk_size: 48,
            hashpower_init: 0,
            hash_expand: true,
            hash_algorithm: HashAlgorithm::Murmur3,
            slab_reassign: true,
            slab_automove: 1,
            slab_automove_ratio: 0.8,
            slab_automove_window: 30,
            slab_automove_freeratio: 0.01,
            slab_chunk_max: SLAB_PAGE_SIZE / 2,
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
            watcher_logbuf_size: 256 * 1024,
            worker_logbuf_size: 64 * 1024,
            read_buf_mem_limit: 0,
            track_sizes: false,
            drop_privileges: None,
            sock_cookie_id: 0,
        }
    }
}

/// The `-o ssl_*` values as given, for `stats settings` (the TLS set-up
/// itself is [`crate::tls_settings::TlsSettings`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SslShown {
    pub chain_cert: Option<String>,
    pub key: Option<String>,
    pub verify_mode: i64,
    pub keyformat: i64,
    pub ciphers: Option<String>,
    pub ca_cert: Option<String>,
    /// Bytes.
    pub wbuf_size: u64,
    pub session_cache: bool,
    pub kernel_tls: bool,
    /// 0 (tlsv1) to 3 (tlsv1.3).
    pub min_version: u8,
}

impl Default for SslShown {
    fn default() -> Self {
        SslShown {
            chain_cert: None,
            key: None,
            verify_mode: 0,
            keyformat: 1, // SSL_FILETYPE_PEM
            ciphers: None,
            ca_cert: None,
            wbuf_size: 16 * 1024,
            session_cache: false,
            kernel_tls: false,
            min_version: 2,
        }
    }
}

/// What `version` answers (text: after `VERSION `; binary: the body) and
/// `stats` shows: memcached's version, then ours.
pub const VERSION: &str = concat!("1.6.18-wasmcached-", env!("CARGO_PKG_VERSION"));

/// memcached's names for TLS versions (`ssl_min_version`).
pub const TLS_VERSION_NAMES: [&str; 4] = ["tlsv1", "tlsv1.1", "tlsv1.2", "tlsv1.3"];

/// `-o io`: how workers wait for and do connection I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Io {
    /// io_uring where this kernel supports it, else `Poll`.
    Auto,
    /// io_uring (Linux): the start fails where the kernel refuses it.
    Uring,
    /// The portable reactor on the `polling` crate (epoll, kqueue, IOCP).
    Poll,
}

impl Io {
    fn parse(v: &str) -> Option<Io> {
        match v {
            "uring" => Some(Io::Uring),
            "poll" => Some(Io::Poll),
            _ => None,
        }
    }

    /// The default when `-o io` is not given: `WASMCACHED_IO` (uring or
    /// poll) if set, which is how the test suite runs every server it
    /// starts on each backend, else [`Io::Auto`].
    fn from_env() -> Io {
        std::env::var("WASMCACHED_IO")
            .ok()
            .and_then(|v| Io::parse(&v))
            .unwrap_or(Io::Auto)
    }
}

/// Validated settings the server runs with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub port: u16,
    pub udp_port: u16,
    pub listen: Vec<String>,
    pub unix_socket: Option<PathBuf>,
    pub unix_mask: u32,
    pub maxbytes: u64,
    pub maxconns: usize,
    pub threads: usize,
    pub item_size_max: usize,
    pub verbose: u8,
    pub evict_to_free: bool,
    pub use_cas: bool,
    pub reqs_per_event: usize,
    pub shutdown_command: bool,
    pub flush_enabled: bool,
    pub pidfile: Option<PathBuf>,
    /// `-e`: where a graceful stop leaves the cache and the next start finds
    /// it (host/src/restart/).
    pub memory_file: Option<PathBuf>,
    /// `-u`, `-d`, `-r`, `-k`: unix process set-up (host/src/os.rs).
    pub user: Option<String>,
    pub daemonize: bool,
    pub maxcore: bool,
    pub lock_memory: bool,
    pub idle_timeout: u32,
    pub shards: usize,
    pub plugin: Option<PathBuf>,
    pub plugin_config: String,
    pub plugin_deadline: Duration,
    /// `-Z` and its `-o ssl_*` options.
    pub tls: Option<crate::tls_settings::TlsSettings>,
    /// `-o ssl_*` as given (`stats settings`).
    pub ssl_shown: SslShown,
    /// `-o plugin_cache=off`: compile the plugin on every start instead of
    /// keeping its compiled code on disk (host/src/plugin/code_cache.rs, `CodeCache`).
    pub plugin_cache: bool,
    /// `-o io=uring|poll`: the workers' reactor backend (host/src/event_base/).
    pub io: Io,
    /// `-o metrics_listen=HOST:PORT`: where `/metrics` is served
    /// (host/src/metrics/); `None`: nowhere.
    pub metrics_listen: Option<String>,
    /// `-o hotkeys_sample=N`: `stats hotkeys` counts one request in N
    /// (host/src/hotkeys.rs); 0: off.
    pub hotkeys_sample: u32,
    /// `-o hotkeys_window=SECONDS`: the sliding window of `stats hotkeys`.
    pub hotkeys_window: u32,
    /// `-B`: which protocols connections speak.
    pub protocol: BindProtocol,
    /// `-S`: binary SASL (PLAIN) required.
    pub sasl: bool,
    /// `MEMCACHED_SASL_PWDB` (read at start, with `-S`): the `user:password` file SASL checks.
    pub sasl_pwdb: Option<PathBuf>,
    /// `-Y`: the authfile, and its entries (loaded at start).
    pub ascii_auth: Option<crate::authfile::Credentials>,
    pub auth_file: Option<PathBuf>,
    /// `-b`: the listen backlog of every TCP and UNIX listener (unix; on
    /// Windows the standard library's).
    pub backlog: i32,
    /// `-D`: the key prefix delimiter of per-prefix stats.
    pub prefix_delimiter: char,
    /// Per-prefix stats collection on from the start (`-D` given).
    pub detail_enabled: bool,
    /// `-X` clears it: `stats cachedump` and `lru_crawler metadump` refused.
    pub dump_enabled: bool,
    /// `-W` clears it: `watch` refused.
    pub watch_enabled: bool,
    /// `-L`: accepted; wasmcached does not ask for large pages.
    pub large_pages: bool,
    /// `-N`: accepted; connections are not steered to workers by NAPI ID.
    pub napi_ids: Option<i32>,
    /// `-o maxconns_fast` (default) answers a connection over `-c` with
    /// `ERROR Too many open connections`; `no_maxconns_fast` leaves it in
    /// the listen backlog until a connection closes.
    pub maxconns_fast: bool,
    /// The slab allocator and LRU knobs (hints for the plugin).
    pub knobs: Knobs,
}

/// memcached's `-B`: `auto` decides per connection from its first byte
/// (0x80 starts a binary request, anything else is text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindProtocol {
    Auto,
    Ascii,
    Binary,
}

impl BindProtocol {
    /// The name `stats settings` shows (memcached's `prot_text`).
    pub fn name(self) -> &'static str {
        match self {
            BindProtocol::Auto => "auto-negotiate",
            BindProtocol::Ascii => "ascii",
            BindProtocol::Binary => "binary",
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::parse_from(["wasmcached"]).expect("defaults are valid")
    }
}

/// Outcome of parsing the command line.
pub enum Parsed {
    Run(Box<Settings>),
    /// `-h` / `-V` / `-i`: print this and exit 0.
    Print(String),
}

/// `-i`: wasmcached's licence (memcached prints its own).
pub fn license_text() -> String {
    format!(
        "wasmcached {}\n\n{}",
        env!("CARGO_PKG_VERSION"),
        LICENSE_BODY
    )
}

const LICENSE_BODY: &str = "\
Copyright (c) the wasmcached authors.
All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are
met:

    * Redistributions of source code must retain the above copyright
notice, this list of conditions and the following disclaimer.

    * Redistributions in binary form must reproduce the above
copyright notice, this list of conditions and the following disclaimer
in the documentation and/or other materials provided with the
distribution.

    * Neither the name of the copyright holder nor the names of its
contributors may be used to endorse or promote products derived from
this software without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS
\"AS IS\" AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT
LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR
A PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT
OWNER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL,
SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT
LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE,
DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY
THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT
(INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.

Note: wasmcached is its own implementation of memcached's flags, protocols
and statistics; it contains no code of memcached (BSD-3-Clause, Danga
Interactive) or of libevent, which it does not use. It is built from Rust
crates (wasmtime, rustls, clap and others) that carry their own licences,
Apache-2.0, MIT and similar permissive ones; each crate's licence comes
with its source.
";

impl Settings {
    /// Parses argv; errors are one line, for the caller to print and exit
    /// with [`exit_status`].
    pub fn parse_args<I, T>(args: I) -> Result<Parsed>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        match Cli::try_parse_from(&args) {
            Ok(cli) if cli.license => Ok(Parsed::Print(license_text())),
            Ok(cli) => Ok(Parsed::Run(Box::new(Settings::from_cli(cli)?))),
            Err(e) => match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Ok(Parsed::Print(e.render().to_string()))
                }
                _ => {
                    // memcached: getopt's complaint, `Illegal argument "?"`, status 1.
                    if let Some(line) = getopt_complaint(&e, &args) {
                        return Err(opt_err(line));
                    }
                    let text = e.render().to_string();
                    let first = text.lines().next().unwrap_or("invalid arguments");
                    Err(opt_err(first.trim_start_matches("error: ")))
                }
            },
        }
    }

    pub fn parse_from<I, T>(args: I) -> Result<Settings>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        match Settings::parse_args(args)? {
            Parsed::Run(s) => Ok(*s),
            Parsed::Print(_) => bail!("help requested"),
        }
    }

    fn from_cli(cli: Cli) -> Result<Settings> {
        let verbose = cli.verbose;
        let threads = match &cli.threads {
            Some(v) => atoi(v),
            None => 4,
        };
        if threads <= 0 {
            return Err(opt_err("Number of threads must be greater than 0"));
        }
        if threads > 64 {
            eprintln!("WARNING: Setting a high number of workerthreads is not recommended.");
            eprintln!(" Set this value to the number of cores in your machine or less.");
        }
        let threads = threads as usize;
        let reqs_per_event = match &cli.max_reqs_per_event {
            Some(v) => atoi(v),
            None => 20,
        };
        if reqs_per_event == 0 {
            return Err(opt_err(
                "Number of requests per event must be greater than 0",
            ));
        }
        let conn_limit = match &cli.conn_limit {
            Some(v) => atoi(v),
            None => 1024,
        };
        if conn_limit <= 0 {
            return Err(opt_err("Maximum connections must be greater than 0"));
        }
        let growth_factor = match &cli.growth_factor {
            Some(v) => atof(v),
            None => 1.25,
        };
        if growth_factor.is_nan() || growth_factor <= 1.0 {
            return Err(opt_err("Factor must be greater than 1"));
        }
        let chunk_size = match &cli.slab_min_size {
            Some(v) => atoi(v),
            None => 48,
        };
        if chunk_size == 0 {
            return Err(opt_err("Chunk size must be greater than 0"));
        }
        let prefix_delimiter = match &cli.prefix_delimiter {
            Some(v) => match v.chars().next() {
                Some(c) => Some(c),
                None => return Err(opt_err("No delimiter specified")),
            },
            None => None,
        };
        let napi_ids = match &cli.napi_ids {
            Some(v) => {
                let n = atoi(v);
                if n <= 0 {
                    return Err(opt_err("Maximum number of NAPI IDs must be greater than 0"));
                }
                Some(n)
            }
            None => None,
        };
        let backlog = cli.backlog.as_deref().map_or(1024, atoi);
        let port = cli.port.as_deref().map(atoi);
        let udp_port = cli.udp_port.as_deref().map_or(0, atoi);
        // memcached: `-U N` without `-p` listens on TCP port N too.
        let port = match port {
            Some(p) => p,
            None if udp_port != 0 => udp_port,
            None => 11211,
        };
        let maxbytes_mb = match &cli.memory_limit {
            Some(v) => c_strtol(v, 10).0,
            None => 64,
        };
        let maxbytes = u64::try_from(maxbytes_mb)
            .ok()
            .and_then(|m| m.checked_mul(1024 * 1024))
            .ok_or_else(|| {
                usage_err(format!("Memory limit (-m) is out of range: {maxbytes_mb}"))
            })?;
        let item_size_max = match &cli.max_item_size {
            Some(v) => parse_item_size(v),
            None => 1024 * 1024,
        };
        let unix_mask = match &cli.unix_mask {
            // strtol(optarg, NULL, 8); the socket file gets the permission bits.
            Some(v) => (c_strtol(v, 8).0 as u32) & 0o777,
            None => 0o700,
        };

        // -o, in order: memcached reads each suboption as it comes.
        let mut ext = Extended::new(Knobs {
            growth_factor,
            chunk_size,
            ..Knobs::default()
        });
        for opts in &cli.extended {
            for piece in subopts(opts) {
                ext.read(piece, verbose)?;
            }
        }
        let Extended {
            mut knobs,
            ssl_shown,
            slab_chunk_changed,
            slab_sizes_unparsed,
            maxconns_fast,
            idle_timeout,
            shards,
            plugin_deadline,
            plugin_cache,
            io,
            metrics_listen,
            hotkeys_sample,
            hotkeys_window,
            ssl_opts,
        } = ext;

        // memcached's checks after the options, in its order.
        if item_size_max < ITEM_SIZE_MAX_LOWER {
            return Err(usage_err("Item max size cannot be less than 1024 bytes."));
        }
        if item_size_max as u64 > maxbytes / 2 {
            return Err(usage_err(
                "Cannot set item size limit higher than 1/2 of memory max.",
            ));
        }
        if item_size_max > ITEM_SIZE_MAX_UPPER {
            return Err(usage_err(
                "Cannot set item size limit higher than a gigabyte.",
            ));
        }
        if item_size_max > SLAB_PAGE_SIZE && !slab_chunk_changed {
            knobs.slab_chunk_max = SLAB_PAGE_SIZE / 2;
        }
        if slab_chunk_changed {
            // memcached checks these for its default too, and so refuses an
            // `-I` below 512k; wasmcached has no slabs, so only an explicit
            // slab_chunk_max is held to them.
            let (chunk, item) = (knobs.slab_chunk_max, item_size_max);
            if chunk > item {
                return Err(usage_err(format!(
                    "slab_chunk_max (bytes: {chunk}) cannot be larger than -I (item_size_max {item})"
                )));
            }
            if item % chunk != 0 {
                return Err(usage_err(format!(
                    "-I (item_size_max: {item}) must be evenly divisible by slab_chunk_max (bytes: {chunk})"
                )));
            }
            if SLAB_PAGE_SIZE % chunk != 0 {
                return Err(usage_err(format!(
                    "slab_chunk_max (bytes: {chunk}) must divide evenly into {SLAB_PAGE_SIZE} (slab_page_size)"
                )));
            }
        } else {
            // What memcached would need for this -I (it refuses an -I below
            // its default chunk size instead).
            knobs.slab_chunk_max = knobs.slab_chunk_max.min(item_size_max);
        }
        if let Some(s) = &slab_sizes_unparsed {
            knobs.slab_sizes = parse_slab_sizes(s, knobs.chunk_size, knobs.slab_chunk_max)?;
        }
        if knobs.hot_lru_pct + knobs.warm_lru_pct > 80 {
            return Err(usage_err(
                "hot_lru_pct + warm_lru_pct cannot be more than 80% combined",
            ));
        }
        if knobs.temp_lru && !knobs.lru_maintainer {
            return Err(usage_err(
                "temporary_ttl requires lru_maintainer to be enabled",
            ));
        }
        if let Some(n) = napi_ids {
            if n as usize > threads {
                return Err(usage_err(format!(
                    "Number of napi_ids({n}) cannot be greater than number of threads({threads})"
                )));
            }
        }
        let mut protocol = match cli.protocol.as_deref().unwrap_or("auto") {
            "auto" => BindProtocol::Auto,
            "ascii" => BindProtocol::Ascii,
            "binary" => BindProtocol::Binary,
            other => return Err(usage_err(format!("Invalid value for binding protocol: {other} -- should be one of auto, binary, or ascii"))),
        };
        // memcached's order: -S wants binary, then -Y wants ascii.
        if cli.enable_sasl {
            match &cli.protocol {
                None => protocol = BindProtocol::Binary,
                Some(_) if protocol == BindProtocol::Binary => {}
                Some(_) => {
                    return Err(usage_err(
                        "ERROR: You cannot allow the ASCII protocol while using SASL.",
                    ))
                }
            }
            if udp_port != 0 {
                return Err(usage_err(
                    "ERROR: Cannot enable UDP while using binary SASL authentication.",
                ));
            }
        }
        let ascii_auth = match &cli.auth_file {
            None => None,
            Some(path) => {
                match &cli.protocol {
                    None => protocol = BindProtocol::Ascii,
                    Some(_) if protocol == BindProtocol::Ascii => {}
                    Some(_) => return Err(usage_err("ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens.")),
                }
                if udp_port != 0 {
                    return Err(usage_err(
                        "Cannot use UDP with ascii authentication enabled (-U 0 to disable)",
                    ));
                }
                Some(crate::authfile::Credentials::load(path)?)
            }
        };
        for p in [port, udp_port] {
            if !(0..=65535).contains(&p) {
                return Err(usage_err(format!("ERROR: Invalid port number {p}.")));
            }
        }
        let sasl_pwdb = if cli.enable_sasl {
            std::env::var_os("MEMCACHED_SASL_PWDB").map(PathBuf::from)
        } else {
            None
        };
        #[cfg(not(unix))]
        {
            // memcached's unix-only process flags (host/src/os.rs does them on unix).
            let unix_only = [
                (
                    cli.unix_socket.is_some(),
                    "-s (UNIX socket)",
                    "listen on TCP with -l 127.0.0.1",
                ),
                (
                    cli.daemonize,
                    "-d (run as a daemon)",
                    "run it as a Windows service or a scheduled task",
                ),
                (
                    cli.user.is_some(),
                    "-u (switch user)",
                    "start it under the account it should run as",
                ),
                (cli.maxcore, "-r (maximize core file limit)", "leave it out"),
                (
                    cli.lock_memory,
                    "-k (lock down all paged memory)",
                    "leave it out",
                ),
            ];
            if let Some((_, flag, instead)) = unix_only.iter().find(|f| f.0) {
                bail!("{flag} is not available on this platform: {instead}");
            }
        }
        // memcached's hash table must be larger than its item lock table
        // (thread_init), which grows with -t.
        let lock_power = match threads {
            0..=2 => 10,
            3 => 11,
            4 => 12,
            5..=10 => 13,
            11..=20 => 14,
            _ => 15,
        };
        let hashpower = if knobs.hashpower_init != 0 {
            knobs.hashpower_init
        } else {
            16
        };
        if lock_power >= hashpower {
            return Err(opt_err(format!(
                "Hash table power size ({hashpower}) cannot be equal to or less than item lock table ({lock_power})"
            )));
        }
        let tls = if cli.enable_ssl {
            if ssl_shown.keyformat != 1 {
                return Err(usage_err(format!(
                    "ssl_keyformat={}: only PEM keys (ssl_keyformat=1) are supported",
                    ssl_shown.keyformat
                )));
            }
            Some(crate::tls_settings::TlsSettings::from_options(&ssl_opts)?)
        } else {
            if let Some((k, _)) = ssl_opts.first() {
                bail!("-o {k} needs -Z (TLS is off)");
            }
            None
        };
        if verbose > 0 && napi_ids.is_some() {
            eprintln!("-N has no effect here: connections are not steered to workers by NAPI ID");
        }
        let min_shards = maxbytes.div_ceil(MAX_SHARD_BUDGET) as usize;
        let shards = shards.unwrap_or(threads).max(min_shards);
        let listen = cli
            .listen
            .iter()
            .flat_map(|l| l.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        Ok(Settings {
            port: port as u16,
            udp_port: udp_port as u16,
            listen,
            unix_socket: cli.unix_socket,
            unix_mask,
            maxbytes,
            maxconns: conn_limit as usize,
            threads,
            item_size_max: item_size_max as usize,
            verbose,
            evict_to_free: !cli.disable_evictions,
            use_cas: !cli.disable_cas,
            // memcached only refuses 0; a negative count yields after every request.
            reqs_per_event: reqs_per_event.max(1) as usize,
            shutdown_command: cli.enable_shutdown,
            flush_enabled: !cli.disable_flush_all,
            pidfile: cli.pidfile,
            memory_file: cli.memory_file.map(PathBuf::from),
            user: cli.user,
            daemonize: cli.daemonize,
            maxcore: cli.maxcore,
            lock_memory: cli.lock_memory,
            protocol,
            sasl: cli.enable_sasl,
            sasl_pwdb,
            auth_file: cli.auth_file,
            ascii_auth,
            idle_timeout,
            shards,
            plugin: cli.plugin,
            plugin_config: cli.plugin_config,
            plugin_deadline,
            plugin_cache,
            io,
            metrics_listen,
            hotkeys_sample,
            hotkeys_window,
            tls,
            ssl_shown,
            backlog,
            prefix_delimiter: prefix_delimiter.unwrap_or(':'),
            detail_enabled: prefix_delimiter.is_some(),
            dump_enabled: !cli.disable_dumping,
            watch_enabled: !cli.disable_watch,
            large_pages: cli.large_pages,
            napi_ids,
            maxconns_fast,
            knobs,
        })
    }

    /// The knobs a v5 plugin gets as hints in its init record.
    pub fn plugin_hints(&self) -> wasmcached_abi::Hints {
        let k = &self.knobs;
        let u = |v: i32| v.max(0) as u32;
        wasmcached_abi::Hints {
            growth_factor: k.growth_factor,
            chunk_size: u(k.chunk_size),
            hashpower: u(k.hashpower_init),
            hash_expand: k.hash_expand,
            hash_algorithm: match k.hash_algorithm {
                HashAlgorithm::Jenkins => 0,
                HashAlgorithm::Murmur3 => 1,
                HashAlgorithm::Xxh3 => 2,
            },
            slab_reassign: k.slab_reassign,
            slab_automove: u(k.slab_automove),
            slab_automove_ratio: k.slab_automove_ratio,
            slab_automove_window: u(k.slab_automove_window),
            slab_automove_freeratio: k.slab_automove_freeratio,
            slab_chunk_max: k.slab_chunk_max.clamp(0, u32::MAX.into()) as u32,
            slab_sizes: k.slab_sizes.clone(),
            lru_crawler: k.lru_crawler,
            lru_crawler_sleep: u(k.lru_crawler_sleep),
            lru_crawler_tocrawl: k.lru_crawler_tocrawl,
            lru_maintainer: k.lru_maintainer,
            lru_segmented: k.lru_segmented,
            hot_lru_pct: u(k.hot_lru_pct),
            warm_lru_pct: u(k.warm_lru_pct),
            hot_max_factor: k.hot_max_factor,
            warm_max_factor: k.warm_max_factor,
            temp_lru: k.temp_lru,
            temporary_ttl: u(k.temporary_ttl),
            tail_repair_time: u(k.tail_repair_time),
            large_pages: self.large_pages,
        }
    }

    /// Memory budget of one shard: `-m` split evenly.
    pub fn shard_budget(&self) -> u64 {
        self.maxbytes / self.shards as u64
    }
}

/// What the `-o` suboptions set, read one at a time in their order (some
/// depend on the ones before, as in memcached: `no_modern` leaves an earlier
/// `slab_chunk_max` alone).
struct Extended {
    knobs: Knobs,
    ssl_shown: SslShown,
    slab_chunk_changed: bool,
    slab_sizes_unparsed: Option<String>,
    maxconns_fast: bool,
    idle_timeout: u32,
    shards: Option<usize>,
    plugin_deadline: Duration,
    plugin_cache: bool,
    io: Io,
    metrics_listen: Option<String>,
    hotkeys_sample: u32,
    hotkeys_window: u32,
    ssl_opts: Vec<(String, String)>,
}

impl Extended {
    fn new(knobs: Knobs) -> Extended {
        Extended {
            knobs,
            ssl_shown: SslShown::default(),
            slab_chunk_changed: false,
            slab_sizes_unparsed: None,
            maxconns_fast: true,
            idle_timeout: 0,
            shards: None,
            plugin_deadline: Duration::from_millis(1000),
            plugin_cache: true,
            io: Io::from_env(),
            metrics_listen: None,
            hotkeys_sample: HOTKEYS_SAMPLE,
            hotkeys_window: HOTKEYS_WINDOW,
            ssl_opts: Vec::new(),
        }
    }

    /// One suboption, `name` or `name=value`, with memcached's checks,
    /// error lines and statuses.
    fn read(&mut self, piece: &str, verbose: u8) -> Result<()> {
        let (k, v) = match piece.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (piece, None),
        };
        let need = |missing: &str| v.ok_or_else(|| opt_err(missing));
        let knobs = &mut self.knobs;
        let ssl_shown = &mut self.ssl_shown;
        match k {
            "maxconns_fast" => self.maxconns_fast = true,
            "no_maxconns_fast" => self.maxconns_fast = false,
            "hashpower" => {
                let n = atoi(need("Missing numeric argument for hashpower")?);
                if n < 12 {
                    return Err(opt_err(format!(
                        "Initial hashtable multiplier of {n} is too low"
                    )));
                }
                if n > 32 {
                    return Err(opt_err(format!(
                        "Initial hashtable multiplier of {n} is too high"
                    )));
                }
                knobs.hashpower_init = n;
            }
            "no_hashexpand" => knobs.hash_expand = false,
            "slab_reassign" => knobs.slab_reassign = true,
            "no_slab_reassign" => knobs.slab_reassign = false,
            "slab_automove" => {
                let n = v.map_or(1, atoi);
                if !(0..=2).contains(&n) {
                    return Err(opt_err("slab_automove must be between 0 and 2"));
                }
                knobs.slab_automove = n;
            }
            "no_slab_automove" => knobs.slab_automove = 0,
            "slab_automove_ratio" => {
                let r = atof(need("Missing slab_automove_ratio argument")?);
                if r.is_nan() || r <= 0.0 || r > 1.0 {
                    return Err(opt_err("slab_automove_ratio must be > 0 and < 1"));
                }
                knobs.slab_automove_ratio = r;
            }
            "slab_automove_window" => {
                let n = atoi(need("Missing slab_automove_window argument")?);
                if n < 3 {
                    return Err(opt_err("slab_automove_window must be > 2"));
                }
                knobs.slab_automove_window = n;
            }
            "slab_automove_freeratio" => {
                knobs.slab_automove_freeratio = safe_strtod(need(
                    "Missing slab_automove_freeratio argument",
                )?)
                .ok_or_else(|| opt_err("could not parse argument to slab_automove_freeratio"))?;
            }
            "tail_repair_time" => {
                let n = atoi(need("Missing numeric argument for tail_repair_time")?);
                if n < 10 {
                    return Err(opt_err(
                        "Cannot set tail_repair_time to less than 10 seconds",
                    ));
                }
                knobs.tail_repair_time = n;
            }
            "hash_algorithm" => {
                knobs.hash_algorithm = match need("Missing hash_algorithm argument")? {
                    "jenkins" => HashAlgorithm::Jenkins,
                    "murmur3" => HashAlgorithm::Murmur3,
                    "xxh3" => HashAlgorithm::Xxh3,
                    _ => {
                        return Err(opt_err(
                            "Unknown hash_algorithm option (jenkins, murmur3, xxh3)",
                        ))
                    }
                }
            }
            "lru_crawler" => knobs.lru_crawler = true,
            "no_lru_crawler" => knobs.lru_crawler = false,
            "lru_crawler_sleep" => {
                let n = atoi(need("Missing lru_crawler_sleep value")?);
                if !(0..=1_000_000).contains(&n) {
                    return Err(opt_err("LRU crawler sleep must be between 0 and 1 second"));
                }
                knobs.lru_crawler_sleep = n;
            }
            "lru_crawler_tocrawl" => {
                // safe_strtoul into a uint32_t (larger values wrap, as there).
                knobs.lru_crawler_tocrawl = safe_strtoul(need("Missing lru_crawler_tocrawl value")?)
                    .ok_or_else(|| opt_err("lru_crawler_tocrawl takes a numeric 32bit value"))?
                    as u32;
            }
            "lru_maintainer" => {
                knobs.lru_maintainer = true;
                knobs.lru_segmented = true;
            }
            "no_lru_maintainer" => {
                knobs.lru_maintainer = false;
                knobs.lru_segmented = false;
            }
            "hot_lru_pct" | "warm_lru_pct" => {
                let n = atoi(need(&format!("Missing {k} argument"))?);
                if !(1..80).contains(&n) {
                    return Err(opt_err(format!("{k} must be > 1 and < 80")));
                }
                if k == "hot_lru_pct" {
                    knobs.hot_lru_pct = n
                } else {
                    knobs.warm_lru_pct = n
                }
            }
            "hot_max_factor" | "warm_max_factor" => {
                let f = atof(need(&format!("Missing {k} argument"))?);
                if f.is_nan() || f <= 0.0 {
                    return Err(opt_err(format!("{k} must be > 0")));
                }
                if k == "hot_max_factor" {
                    knobs.hot_max_factor = f
                } else {
                    knobs.warm_max_factor = f
                }
            }
            "temporary_ttl" => {
                knobs.temp_lru = true;
                knobs.temporary_ttl = atoi(need("Missing temporary_ttl argument")?);
            }
            "idle_timeout" => {
                // atoi, as memcached: 0 or less is no timeout.
                let n = atoi(need("Missing numeric argument for idle_timeout")?);
                self.idle_timeout = n.max(0) as u32;
            }
            "watcher_logbuf_size" | "worker_logbuf_size" => {
                let kb = safe_strtoul(need(&format!("Missing {k} argument"))?)
                    .ok_or_else(|| opt_err(format!("could not parse argument to {k}")))?;
                let bytes = kb.saturating_mul(1024);
                if k == "watcher_logbuf_size" {
                    knobs.watcher_logbuf_size = bytes
                } else {
                    knobs.worker_logbuf_size = bytes
                }
            }
            "read_buf_mem_limit" => {
                let mb = safe_strtoul(need("Missing read_buf_mem_limit argument")?)
                    .ok_or_else(|| opt_err("could not parse argument to read_buf_mem_limit"))?;
                knobs.read_buf_mem_limit = mb.saturating_mul(1024 * 1024);
            }
            "resp_obj_mem_limit" => {
                eprintln!("DEPRECATED: resp_obj_mem_limit no longer used. See read_buf_mem_limit,")
            }
            "slab_sizes" => {
                self.slab_sizes_unparsed = Some(need("Missing slab_sizes argument")?.to_string())
            }
            "slab_chunk_max" => {
                let n = safe_strtol(need("Missing slab_chunk_max argument")?)
                    .ok_or_else(|| opt_err("could not parse argument to slab_chunk_max"))?;
                if n == 0 {
                    // memcached divides by it (and dies of SIGFPE).
                    return Err(opt_err("slab_chunk_max must not be 0"));
                }
                knobs.slab_chunk_max = n;
                self.slab_chunk_changed = true;
            }
            "no_chunked_items" => knobs.slab_chunk_max = SLAB_PAGE_SIZE,
            "track_sizes" => knobs.track_sizes = true,
            // No-ops in memcached 1.6.18 too.
            "modern" | "inline_ascii_resp" | "no_inline_ascii_resp" => {}
            "no_modern" => {
                if !self.slab_chunk_changed {
                    knobs.slab_chunk_max = SLAB_PAGE_SIZE;
                }
                knobs.slab_reassign = false;
                knobs.slab_automove = 0;
                self.maxconns_fast = false;
                knobs.lru_segmented = false;
                knobs.hash_algorithm = HashAlgorithm::Jenkins;
                knobs.lru_crawler = false;
                knobs.lru_maintainer = false;
            }
            "drop_privileges" => knobs.drop_privileges = Some(true),
            "no_drop_privileges" => knobs.drop_privileges = Some(false),
            "sock_cookie_id" => {
                // memcached crashes on a missing value; atoi otherwise.
                knobs.sock_cookie_id = atoi(need("Missing sock_cookie_id argument")?);
            }
            "ssl_chain_cert" | "ssl_key" | "ssl_ca_cert" => {
                let v = need(&format!("Missing {k} argument"))?;
                let slot = match k {
                    "ssl_chain_cert" => &mut ssl_shown.chain_cert,
                    "ssl_key" => &mut ssl_shown.key,
                    _ => &mut ssl_shown.ca_cert,
                };
                *slot = Some(v.to_string());
                self.ssl_opts.push((k.to_string(), v.to_string()));
            }
            "ssl_verify_mode" => {
                let v = need("Missing ssl_verify_mode argument")?;
                let n = safe_strtol(v)
                    .ok_or_else(|| opt_err("could not parse argument to ssl_verify_mode"))?;
                if !(0..=3).contains(&n) {
                    return Err(opt_err(
                        "Invalid ssl_verify_mode. Use help to see valid options.",
                    ));
                }
                ssl_shown.verify_mode = n;
                self.ssl_opts.push((k.to_string(), n.to_string()));
            }
            "ssl_min_version" => {
                let v = need("Missing ssl_min_version argument")?;
                // memcached's numbers, or (wasmcached) their names.
                let n = match TLS_VERSION_NAMES.iter().position(|name| *name == v) {
                    Some(i) => i as i64,
                    None => safe_strtol(v)
                        .ok_or_else(|| opt_err("could not parse argument to ssl_min_version"))?,
                };
                if !(0..=3).contains(&n) {
                    return Err(opt_err(
                        "Invalid ssl_min_version. Use help to see valid options.",
                    ));
                }
                ssl_shown.min_version = n as u8;
                self.ssl_opts
                    .push((k.to_string(), TLS_VERSION_NAMES[n as usize].to_string()));
            }
            "ssl_keyformat" => {
                let v = need("Missing ssl_keyformat argument")?;
                ssl_shown.keyformat = if v.eq_ignore_ascii_case("pem") {
                    1
                } else {
                    safe_strtol(v)
                        .ok_or_else(|| opt_err("could not parse argument to ssl_keyformat"))?
                };
            }
            "ssl_wbuf_size" => {
                let kb = safe_strtoul(need("Missing ssl_wbuf_size argument")?)
                    .ok_or_else(|| opt_err("could not parse argument to ssl_wbuf_size"))?;
                ssl_shown.wbuf_size = kb.saturating_mul(1024);
            }
            "ssl_ciphers" => {
                ssl_shown.ciphers = Some(need("Missing ssl_ciphers argument")?.to_string());
                eprintln!("wasmcached: -o ssl_ciphers is accepted and ignored: rustls chooses its cipher suites");
            }
            "ssl_session_cache" => {
                ssl_shown.session_cache = true;
                eprintln!("wasmcached: -o ssl_session_cache is accepted and ignored: rustls keeps its own session cache");
            }
            "ssl_kernel_tls" => {
                ssl_shown.kernel_tls = true;
                if verbose > 0 {
                    eprintln!("-o ssl_kernel_tls has no effect here: TLS runs in rustls, not in the kernel");
                }
            }
            // wasmcached's own.
            "shards" => {
                let n = own_num(k, v)?;
                if n == 0 || n > 4096 {
                    bail!("shards must be between 1 and 4096");
                }
                self.shards = Some(n as usize)
            }
            "plugin_deadline_ms" => {
                let n = own_num(k, v)?;
                if n < 10 {
                    bail!("plugin_deadline_ms must be at least 10");
                }
                self.plugin_deadline = Duration::from_millis(n)
            }
            "plugin_cache" => {
                self.plugin_cache = match v.unwrap_or("") {
                    "on" | "yes" | "true" | "1" => true,
                    "off" | "no" | "false" | "0" => false,
                    _ => bail!("plugin_cache must be on or off"),
                }
            }
            "io" => {
                self.io = Io::parse(v.unwrap_or(""))
                    .ok_or_else(|| anyhow::anyhow!("io must be uring or poll"))?
            }
            "metrics_listen" => {
                let v = v.unwrap_or("");
                // HOST:PORT, the port last (an IPv6 host in brackets).
                match v.rsplit_once(':') {
                    Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                        self.metrics_listen = Some(v.to_string())
                    }
                    _ => bail!("metrics_listen must be HOST:PORT, as in 127.0.0.1:9150"),
                }
            }
            "hotkeys_sample" => {
                let n = own_num(k, v)?;
                if n > HOTKEYS_MAX_SAMPLE as u64 {
                    bail!(
                        "hotkeys_sample must be between 0 (off) and {}",
                        HOTKEYS_MAX_SAMPLE
                    );
                }
                self.hotkeys_sample = n as u32
            }
            "hotkeys_window" => {
                let n = own_num(k, v)?;
                let (lo, hi) = (HOTKEYS_MIN_WINDOW, HOTKEYS_MAX_WINDOW);
                if n < lo as u64 || n > hi as u64 {
                    bail!("hotkeys_window must be between {lo} and {hi} seconds");
                }
                self.hotkeys_window = n as u32
            }
            _ if EXTSTORE_OPTIONS.contains(&k) => {
                return Err(usage_err(format!(
                    "-o {k}: extstore (memcached's flash tier) is not available in \
                     wasmcached: leave the ext_* options out"
                )))
            }
            _ => return Err(opt_err(format!("Illegal suboption \"{piece}\""))),
        }
        Ok(())
    }
}

/// getopt's words for an unknown flag, as memcached prints them after its
/// name (`memcached: invalid option -- 'q'`).
fn getopt_complaint(e: &clap::Error, args: &[std::ffi::OsString]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    if arg.starts_with("--") {
        // As typed, with its `=value` (clap reports the name alone).
        let typed = args
            .iter()
            .filter_map(|a| a.to_str())
            .find(|a| {
                *a == arg
                    || a.strip_prefix(arg.as_str())
                        .is_some_and(|r| r.starts_with('='))
            })
            .unwrap_or(arg);
        return Some(format!("unrecognized option '{typed}'"));
    }
    let c = arg.strip_prefix('-')?.chars().next()?;
    Some(format!("invalid option -- '{c}'"))
}

/// memcached's extstore options (`storage_read_config`), refused here.
const EXTSTORE_OPTIONS: &[&str] = &[
    "ext_path",
    "ext_page_size",
    "ext_wbuf_size",
    "ext_threads",
    "ext_io_depth",
    "ext_item_size",
    "ext_item_age",
    "ext_low_ttl",
    "ext_drop_unread",
    "ext_recache_rate",
    "ext_compact_under",
    "ext_drop_under",
    "ext_max_frag",
    "ext_max_sleep",
];

/// The suboptions of one `-o`, split as getsubopt(3) splits them: at
/// commas, nothing trimmed; an empty last piece (a trailing comma) ends the
/// list, an empty piece elsewhere is an (illegal) suboption "".
fn subopts(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.split(',').collect();
    if v.last() == Some(&"") {
        v.pop();
    }
    v
}

/// A number for one of wasmcached's own suboptions.
fn own_num(k: &str, v: Option<&str>) -> Result<u64> {
    let v = v.unwrap_or("");
    v.parse::<u64>()
        .with_context(|| format!("Invalid value for suboption {k}: \"{v}\""))
}

/// memcached's `-o slab_sizes` check (`_parse_slab_sizes`).
fn parse_slab_sizes(s: &str, chunk_size: i32, slab_chunk_max: i64) -> Result<Vec<u32>> {
    let mut sizes = Vec::new();
    let mut last: u32 = 0;
    // strtok_r: empty pieces are skipped.
    for p in s.split('-').filter(|p| !p.is_empty()) {
        let parsed = safe_strtoul(p);
        let size = parsed.unwrap_or(0) as u32;
        if parsed.is_none() || (size as i64) < chunk_size as i64 || size as i64 > slab_chunk_max {
            return Err(usage_err(format!("slab size {size} is out of valid range")));
        }
        if last >= size {
            return Err(usage_err(format!(
                "slab size {size} cannot be lower than or equal to a previous class size"
            )));
        }
        if size <= last + CHUNK_ALIGN_BYTES {
            return Err(usage_err(format!(
                "slab size {size} must be at least {CHUNK_ALIGN_BYTES} bytes larger than previous class"
            )));
        }
        sizes.push(size);
        last = size;
        if sizes.len() >= MAX_NUMBER_OF_SLAB_CLASSES - 1 {
            return Err(usage_err("too many slab classes specified"));
        }
    }
    if sizes.is_empty() {
        return Err(usage_err("slab size 0 is out of valid range"));
    }
    Ok(sizes)
}

/// memcached's `-I` syntax: `atoi` of the number, times 1024 for a `k`/`K`
/// suffix, 1024² for `m`/`M`, in a C `int` (so `2048m` wraps negative and is
/// refused as too small, as there).
fn parse_item_size(s: &str) -> i64 {
    let (num, mul) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1024),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    atoi(num).wrapping_mul(mul) as i64
}

/// C's isspace.
fn c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// C's strtol: leading white space, a sign, digits in `radix`; the value
/// saturates at the i64 range. Returns the value, the rest, and whether any
/// digit was read.
fn c_strtol(s: &str, radix: u32) -> (i64, &str, bool) {
    let t = s.trim_start_matches(c_space);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = t.find(|c: char| !c.is_digit(radix)).unwrap_or(t.len());
    if end == 0 {
        return (0, s, false);
    }
    let mut v: i64 = 0;
    for c in t[..end].chars() {
        let d = c.to_digit(radix).expect("a digit") as i64;
        v = if neg {
            v.saturating_mul(radix as i64).saturating_sub(d)
        } else {
            v.saturating_mul(radix as i64).saturating_add(d)
        };
    }
    (v, &t[end..], true)
}

/// C's atoi as glibc has it: `(int)strtol(s, NULL, 10)`.
fn atoi(s: &str) -> i32 {
    c_strtol(s, 10).0 as i32
}

/// memcached's safe_strtol: digits, then nothing or white space.
fn safe_strtol(s: &str) -> Option<i64> {
    let (v, rest, any) = c_strtol(s, 10);
    if !any || !(rest.is_empty() || rest.starts_with(c_space)) || v == i64::MIN || v == i64::MAX {
        return None;
    }
    Some(v)
}

/// memcached's safe_strtoul: as safe_strtol, and no negative number.
fn safe_strtoul(s: &str) -> Option<u64> {
    let v = safe_strtol(s)?;
    u64::try_from(v).ok()
}

/// C's strtod, decimal forms only (and inf/nan): the value of the longest
/// prefix that is a number, the rest, and whether there was a number.
fn c_strtod(s: &str) -> (f64, &str, bool) {
    let t = s.trim_start_matches(c_space);
    let b = t.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    for word in ["infinity", "inf", "nan"] {
        if t.len() >= i + word.len() && t[i..i + word.len()].eq_ignore_ascii_case(word) {
            let end = i + word.len();
            let v: f64 = if word == "nan" {
                f64::NAN
            } else {
                f64::INFINITY
            };
            let v = if b[0] == b'-' { -v } else { v };
            return (v, &t[end..], true);
        }
    }
    let digits = |mut j: usize| {
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    let int_end = digits(i);
    let mut end = int_end;
    let mut any = int_end > i;
    if end < b.len() && b[end] == b'.' {
        let frac_end = digits(end + 1);
        any |= frac_end > end + 1;
        end = frac_end;
    }
    if !any {
        return (0.0, s, false);
    }
    if end < b.len() && (b[end] == b'e' || b[end] == b'E') {
        let mut j = end + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let exp_end = digits(j);
        if exp_end > j {
            end = exp_end;
        }
    }
    (t[..end].parse().unwrap_or(0.0), &t[end..], true)
}

/// C's atof.
fn atof(s: &str) -> f64 {
    c_strtod(s).0
}

/// memcached's safe_strtod: a number, then nothing or white space.
fn safe_strtod(s: &str) -> Option<f64> {
    let (v, rest, any) = c_strtod(s);
    (any && (rest.is_empty() || rest.starts_with(c_space))).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings> {
        Settings::parse_from(std::iter::once("wasmcached").chain(args.iter().copied()))
    }

    /// The refusal's line and exit status.
    fn refused(args: &[&str]) -> (String, u8) {
        let e = parse(args).unwrap_err();
        (e.to_string(), exit_status(&e))
    }

    #[test]
    fn defaults_are_memcacheds() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.port, 11211);
        assert_eq!(s.maxbytes, 64 << 20);
        assert_eq!(s.maxconns, 1024);
        assert_eq!(s.threads, 4);
        assert_eq!(s.item_size_max, 1 << 20);
        assert_eq!(s.reqs_per_event, 20);
        assert!(s.use_cas && s.evict_to_free && s.flush_enabled && !s.shutdown_command);
        assert_eq!(s.shards, 4);
        assert!(s.plugin_cache);
        assert_eq!(s.backlog, 1024);
        assert_eq!(s.prefix_delimiter, ':');
        assert!(!s.detail_enabled && s.dump_enabled && s.watch_enabled && s.maxconns_fast);
        assert_eq!(s.knobs, Knobs::default());
        assert_eq!(s.ssl_shown, SslShown::default());
    }

    #[test]
    fn plugin_cache_option() {
        assert!(!parse(&["-o", "plugin_cache=off"]).unwrap().plugin_cache);
        assert!(parse(&["-o", "plugin_cache=on"]).unwrap().plugin_cache);
        assert!(
            !parse(&["-o", "idle_timeout=5,plugin_cache=no"])
                .unwrap()
                .plugin_cache
        );
        assert!(parse(&["-o", "plugin_cache=maybe"]).is_err());
    }

    #[test]
    fn metrics_listen_option() {
        assert_eq!(parse(&[]).unwrap().metrics_listen, None);
        let s = parse(&["-o", "metrics_listen=127.0.0.1:9150"]).unwrap();
        assert_eq!(s.metrics_listen.as_deref(), Some("127.0.0.1:9150"));
        let s = parse(&["-o", "metrics_listen=[::1]:9150"]).unwrap();
        assert_eq!(s.metrics_listen.as_deref(), Some("[::1]:9150"));
        for bad in [
            "metrics_listen",
            "metrics_listen=9150",
            "metrics_listen=host:port",
        ] {
            assert!(parse(&["-o", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn hotkeys_options() {
        let s = parse(&[]).unwrap();
        assert_eq!((s.hotkeys_sample, s.hotkeys_window), (100, 60));
        let s = parse(&["-o", "hotkeys_sample=1,hotkeys_window=10"]).unwrap();
        assert_eq!((s.hotkeys_sample, s.hotkeys_window), (1, 10));
        assert_eq!(
            parse(&["-o", "hotkeys_sample=0"]).unwrap().hotkeys_sample,
            0
        );
        assert_eq!(
            parse(&["-o", "hotkeys_sample=1000000,hotkeys_window=86400"])
                .map(|s| (s.hotkeys_sample, s.hotkeys_window))
                .unwrap(),
            (1_000_000, 86_400)
        );
        for (bad, line) in [
            (
                "hotkeys_sample",
                "Invalid value for suboption hotkeys_sample: \"\"",
            ),
            (
                "hotkeys_sample=x",
                "Invalid value for suboption hotkeys_sample: \"x\"",
            ),
            (
                "hotkeys_sample=-1",
                "Invalid value for suboption hotkeys_sample: \"-1\"",
            ),
            (
                "hotkeys_sample=1000001",
                "hotkeys_sample must be between 0 (off) and 1000000",
            ),
            (
                "hotkeys_window=1",
                "hotkeys_window must be between 2 and 86400 seconds",
            ),
            (
                "hotkeys_window=86401",
                "hotkeys_window must be between 2 and 86400 seconds",
            ),
            (
                "hotkeys_window=",
                "Invalid value for suboption hotkeys_window: \"\"",
            ),
        ] {
            assert_eq!(refused(&["-o", bad]), (line.to_string(), EX_USAGE), "{bad}");
        }
    }

    #[test]
    fn memcached_value_syntax() {
        let s = parse(&[
            "-p",
            "2000",
            "-l",
            "127.0.0.1,::1",
            "-l",
            "10.0.0.1",
            "-I",
            "2m",
            "-vv",
            "-o",
            "idle_timeout=5",
        ])
        .unwrap();
        assert_eq!(s.port, 2000);
        assert_eq!(s.listen, vec!["127.0.0.1", "::1", "10.0.0.1"]);
        assert_eq!(s.item_size_max, 2 << 20);
        assert_eq!(s.verbose, 2);
        assert_eq!(s.idle_timeout, 5);
        assert_eq!(parse(&["-I", "1024k"]).unwrap().item_size_max, 1 << 20);
        assert_eq!(parse(&["-I", "4096"]).unwrap().item_size_max, 4096);
        // atoi/atof, as memcached reads them.
        assert_eq!(parse(&["-b", "abc"]).unwrap().backlog, 0);
        assert_eq!(parse(&["-b", "-1"]).unwrap().backlog, -1);
        assert_eq!(parse(&["-f", "1.5x"]).unwrap().knobs.growth_factor, 1.5);
        assert_eq!(parse(&["-n", "-5"]).unwrap().knobs.chunk_size, -5);
        assert_eq!(parse(&["-D", "ab"]).unwrap().prefix_delimiter, 'a');
        assert!(parse(&["-D", "#"]).unwrap().detail_enabled);
        // -U without -p: TCP on the UDP port too.
        let s = parse(&["-U", "11311"]).unwrap();
        assert_eq!((s.port, s.udp_port), (11311, 11311));
        // The last of a repeated flag wins.
        assert_eq!(parse(&["-b", "5", "-b", "6"]).unwrap().backlog, 6);
        assert!(!parse(&["-X", "-X", "-W"]).unwrap().dump_enabled);
    }

    #[test]
    fn suboptions_and_their_no_forms() {
        let s = parse(&[
            "-o",
            "slab_reassign,slab_automove=2,lru_crawler,lru_maintainer,no_inline_ascii_resp,modern",
            "-o",
            "hashpower=20,hash_algorithm=xxh3,hot_lru_pct=10,warm_lru_pct=30,hot_max_factor=0.5",
            "-o",
            "watcher_logbuf_size=100,worker_logbuf_size=50,read_buf_mem_limit=5,temporary_ttl=30,track_sizes",
        ])
        .unwrap();
        let k = &s.knobs;
        assert_eq!(k.slab_automove, 2);
        assert_eq!(k.hashpower_init, 20);
        assert_eq!(k.hash_algorithm, HashAlgorithm::Xxh3);
        assert_eq!((k.hot_lru_pct, k.warm_lru_pct), (10, 30));
        assert_eq!(k.watcher_logbuf_size, 100 * 1024);
        assert_eq!(k.worker_logbuf_size, 50 * 1024);
        assert_eq!(k.read_buf_mem_limit, 5 << 20);
        assert!(k.temp_lru && k.track_sizes);
        // The plugin gets them as hints (ABI v5).
        let h = s.plugin_hints();
        assert_eq!((h.hashpower, h.slab_automove, h.hash_algorithm), (20, 2, 2));
        assert_eq!((h.hot_lru_pct, h.warm_lru_pct), (10, 30));
        assert!(h.temp_lru && h.hash_expand && !h.large_pages);
        let d = parse(&[]).unwrap().plugin_hints();
        assert_eq!(d, wasmcached_abi::Hints::default(), "memcached's defaults");
        let h = parse(&["-f", "1.5", "-n", "96", "-L"])
            .unwrap()
            .plugin_hints();
        assert_eq!(
            (h.growth_factor, h.chunk_size, h.large_pages),
            (1.5, 96, true)
        );
        let s = parse(&["-o", "no_modern"]).unwrap();
        assert!(!s.maxconns_fast && !s.knobs.slab_reassign && !s.knobs.lru_crawler);
        assert_eq!(s.knobs.hash_algorithm, HashAlgorithm::Jenkins);
        assert_eq!(s.knobs.slab_chunk_max, SLAB_PAGE_SIZE);
        let s = parse(&["-o", "no_lru_maintainer,no_maxconns_fast,no_hashexpand"]).unwrap();
        assert!(!s.knobs.lru_maintainer && !s.knobs.lru_segmented && !s.maxconns_fast);
        assert!(!s.knobs.hash_expand);
        // A trailing comma ends the list; an empty piece elsewhere is illegal.
        assert!(parse(&["-o", "modern,"]).is_ok());
        assert!(parse(&["-o", ""]).is_ok());
        assert_eq!(
            refused(&["-o", ",modern"]),
            ("Illegal suboption \"\"".into(), 1)
        );
    }

    #[test]
    fn refusals_have_memcacheds_line_and_status() {
        for (args, line, status) in [
            (&["-o", "bogus=1"][..], "Illegal suboption \"bogus=1\"", 1),
            (&["-f", "1"], "Factor must be greater than 1", 1),
            (&["-n", "abc"], "Chunk size must be greater than 0", 1),
            (&["-D", ""], "No delimiter specified", 1),
            (&["-t", "abc"], "Number of threads must be greater than 0", 1),
            (&["-c", "0"], "Maximum connections must be greater than 0", 1),
            (&["-I", "512"], "Item max size cannot be less than 1024 bytes.", 64),
            (&["-I", "2g"], "Item max size cannot be less than 1024 bytes.", 64),
            (&["-I", "40m"], "Cannot set item size limit higher than 1/2 of memory max.", 64),
            (&["-m", "0"], "Cannot set item size limit higher than 1/2 of memory max.", 64),
            (&["-p", "70000"], "ERROR: Invalid port number 70000.", 64),
            (&["-N", "9"], "Number of napi_ids(9) cannot be greater than number of threads(4)", 64),
            (&["-o", "hashpower=11"], "Initial hashtable multiplier of 11 is too low", 1),
            (&["-o", "hashpower=12"], "Hash table power size (12) cannot be equal to or less than item lock table (12)", 1),
            (&["-o", "hot_lru_pct=79"], "hot_lru_pct + warm_lru_pct cannot be more than 80% combined", 64),
            (&["-o", "temporary_ttl=5,no_lru_maintainer"], "temporary_ttl requires lru_maintainer to be enabled", 64),
            (&["-o", "slab_chunk_max=300"], "-I (item_size_max: 1048576) must be evenly divisible by slab_chunk_max (bytes: 300)", 64),
            (&["-o", "slab_sizes=100-104"], "slab size 104 must be at least 8 bytes larger than previous class", 64),
            (&["-o", "lru_crawler_tocrawl=-1"], "lru_crawler_tocrawl takes a numeric 32bit value", 1),
            (&["-o", "watcher_logbuf_size=5x"], "could not parse argument to watcher_logbuf_size", 1),
            (&["-o", "hash_algorithm=MURMUR3"], "Unknown hash_algorithm option (jenkins, murmur3, xxh3)", 1),
            (&["-o", "ssl_verify_mode=9"], "Invalid ssl_verify_mode. Use help to see valid options.", 1),
            (&["-q"], "invalid option -- 'q'", 1),
            (&["--bogus=1"], "unrecognized option '--bogus=1'", 1),
        ] {
            assert_eq!(refused(args), (line.to_string(), status), "{args:?}");
        }
        let (line, status) = refused(&["-o", "ext_path=/tmp/x:64m"]);
        assert!(line.contains("extstore"), "{line}");
        assert_eq!(status, 64);
        assert_eq!(refused(&["-o", "ext_bogus"]).1, 1);
    }

    #[test]
    fn bad_values_are_one_line_errors() {
        for args in [
            &["-p", "-5"][..],
            &["-t", "0"],
            &["-I", "512"],
            &["-I", "40m"],
            &["-B", "bin"],
            &["-o", "nonsense=1"],
            &["--no-such-flag"],
            &["-f"],
        ] {
            let e = parse(args).unwrap_err().to_string();
            assert!(!e.contains('\n'), "{args:?}: {e}");
        }
    }

    #[test]
    fn license_is_printed() {
        match Settings::parse_args(["wasmcached", "-i"]).unwrap() {
            Parsed::Print(t) => assert!(t.contains("Redistribution and use"), "{t}"),
            Parsed::Run(_) => panic!("-i must print the licence"),
        }
    }

    #[test]
    fn c_number_readers() {
        assert_eq!(atoi(" 42abc"), 42);
        assert_eq!(atoi("-7"), -7);
        assert_eq!(atoi("abc"), 0);
        assert_eq!(atof("1.5x"), 1.5);
        assert_eq!(atof(".5"), 0.5);
        assert_eq!(atof("2e1"), 20.0);
        assert_eq!(atof("x"), 0.0);
        assert_eq!(safe_strtoul("5"), Some(5));
        assert_eq!(safe_strtoul("5x"), None);
        assert_eq!(safe_strtoul("-1"), None);
        assert_eq!(safe_strtod("0.02"), Some(0.02));
        assert_eq!(safe_strtod("abc"), None);
        assert_eq!(c_strtol("755", 8).0, 0o755);
        assert_eq!(c_strtol("999", 8).0, 0);
    }

    #[test]
    fn big_memory_spreads_over_more_shards() {
        let s = parse(&["-m", "8192", "-t", "2"]).unwrap();
        assert_eq!(s.shards, 8);
        assert_eq!(s.shard_budget(), 1 << 30);
    }
}
