//! wasmcached's host: reactors, connections, protocols and the Wasm shards.
//!
//! Where to find what (see docs/architecture.md for the whole picture):
//! - [`event_base`] / [`timer`]: the libevent-style reactor every thread runs.
//! - [`server`]: the main thread: listeners, accept, hand-off, clock, epoch.
//! - [`worker`]: worker threads: connections, batches, shard execution.
//! - [`conn`]: one connection's buffers, state machine and reply slots.
//! - [`proto`]: protocol parsers and renderers.
//! - [`router`] / [`batch`]: which shard owns a key; what crosses threads.
//! - [`plugin`]: the wasmtime runtime and the sandbox around each shard.
//! - [`plugin_check`]: `wasmcached plugin check`, a plugin conformance kit.
//! - [`plugin_new`]: `wasmcached plugin new`, a plugin project to start from.
//! - [`replay`]: `wasmcached replay`, a plugin driven through a request trace.
//! - [`reload`]: hot plugin reload (SIGHUP, `plugin reload`).
//! - [`tls`]: `-Z` TLS with rustls (memcached's ssl_* options).
//! - [`auth`]: `-Y` ASCII auth and `-S` SASL PLAIN.
//! - [`os`]: `-d`, `-u`, `-r`, `-k`: unix process set-up.
//! - [`signals`]: SIGTERM/SIGINT, Ctrl-C: the same stop as `shutdown`.
//! - [`verbose`]: the verbosity level and the `-vv` command log.
//! - [`large_pages`]: `-L`, huge pages for the plugins' memory.
//! - [`clock`], [`settings`], [`stats`].

pub mod auth;
pub mod authfile;
pub mod batch;
pub mod clock;
pub mod conn;
pub mod core;
pub mod counters;
pub mod detail;
pub mod event_base;
pub mod hotkeys;
pub mod large_pages;
pub mod layering;
pub mod listing;
pub mod live_settings;
pub mod metrics;
pub mod os;
pub mod plugin;
pub mod plugin_check;
pub mod plugin_new;
pub mod proto;
pub mod reload;
pub mod replay;
pub mod reply;
pub mod restart;
pub mod router;
pub mod server;
pub mod settings;
pub mod shared;
pub mod signals;
pub mod stats;
pub mod timer;
pub mod tls;
pub mod tls_settings;
pub mod verbose;
pub mod watch;
pub mod worker;
