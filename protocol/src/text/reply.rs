//! Every reply string the text parser produces or that the host must produce for a command
//! it parses, without the trailing `\r\n` (the meta parser reuses the shared ones). Exported
//! so the host can match on them (e.g. to count `store_too_large`) instead of repeating
//! literals.

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
pub const MEMLIMIT_NOT_BYTES: &str = "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes";
/// `cache_memlimit` the store refused (host side).
pub const MEMLIMIT_ADJUST_FAILED: &str = "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust";
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
/// `slabs reassign` from a class to itself (host side).
pub const REASSIGN_SAME: &str = "SAME src and dst class are identical";
/// `slabs reassign` naming a class that does not exist (host side).
pub const REASSIGN_BADCLASS: &str = "BADCLASS invalid src or dst class id";
/// `slabs reassign` from a class with fewer than two pages (host side).
pub const REASSIGN_NOSPARE: &str = "NOSPARE source class has no spare pages";
/// `watch` when watchers are disabled (host side).
pub const WATCH_NOT_ALLOWED: &str = "CLIENT_ERROR watch commands not allowed";
/// `watch` with replies still queued (host side).
pub const WATCH_PIPELINE: &str = "ERROR cannot pipeline other commands before watch";
/// `refresh_certs` on a server built with TLS but not running it (what Debian answers).
pub const TLS_NOT_ENABLED: &str = "Error TLS not enabled";
