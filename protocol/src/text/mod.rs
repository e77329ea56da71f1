//! The memcached **text** (ASCII) protocol parser: classic commands, byte-for-byte like
//! memcached 1.6.18.
//!
//! This is a pure module: no I/O, no allocation per command, `std` only (so it can be
//! tested and fuzzed without the host). The connection layer hands it the unconsumed bytes
//! of a connection's read buffer and gets back one [`Parsed`] value describing the *first*
//! command in it.
//!
//! # Where things are
//! * `frame.rs`: [`parse`], finding the line and dispatching on the first token.
//! * `command.rs`: the types handed to the host ([`Parsed`], [`Command`], ...).
//! * `tokens.rs`: memcached's tokenizer ([`tokenize`]).
//! * `storage.rs`: get/gat, set/add/replace/append/prepend/cas, delete, incr/decr, touch.
//! * `admin.rs`: stats, slabs, lru, lru_crawler, watch, flush_all, cache_memlimit, extstore.
//! * [`reply`]: every reply string. Numbers are read by [`crate::num`] (memcached's
//!   `util.c`), limits live in [`crate::limits`]; both are re-exported here.
//!
//! # Why "exact"
//! wasmcached is a drop-in replacement, so every reply string, every limit and every odd
//! corner is copied from memcached 1.6.18 (`proto_text.c`: `try_read_command_ascii`,
//! `tokenize_command`, `process_command_ascii` and the `process_*_command` functions;
//! `util.c`: `safe_strto*`). Every rule below was checked against the real Debian
//! `memcached 1.6.18` binary over a socket; the unit tests beside each parser encode what
//! it answered. Where memcached's behaviour depends on its configuration or connection state
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

mod admin;
mod command;
mod frame;
#[cfg(test)]
mod props;
pub mod reply;
mod storage;
#[cfg(test)]
mod test_util;
mod tokens;

pub use crate::limits::{Limits, ITEM_HEADER_SIZE, KEY_MAX_LENGTH, MAX_NUMBER_OF_SLAB_CLASSES};
pub use crate::num::{safe_strtod, safe_strtol, safe_strtoul, safe_strtoull};
pub use command::{
    Command, DetailOp, GetEnd, Keys, LruCmd, LruCrawlerCmd, MetaOp, Parsed, SlabsCmd, StatsCmd,
    StoreOp, WatchFlags,
};
pub use frame::{parse, LINE_PEEK_LIMIT, READ_BUFFER_SIZE};
pub use tokens::{tokenize, Tokens, MAX_TOKENS};
