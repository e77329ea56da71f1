//! The plugin runtime: one wasmtime `Engine` and compiled `Module` for the
//! process, one `Store` + `Instance` per shard, and the sandbox around each call
//! (memory cap through a `ResourceLimiter`, deadline through epoch interruption).
//!
//! Every guest fault — trap, deadline, malformed answer — is contained here: the
//! shard logs it, counts it, and comes back empty on a fresh instance, while the
//! worker answers the affected commands with `SERVER_ERROR`.
//!
//! The pieces: `engine` compiles a plugin (`compile`) for the one engine,
//! through the on-disk `code_cache` when it is on, and links the host
//! functions of `imports`; a plugin that is a component of the WIT world
//! (wit/store.wit) is linked and called by `component`, which turns the
//! ABI's batches into the world's records and back; a `shard` runs one
//! `instance` of either kind and checks
//! every answer that comes back, restarting it empty after a fault unless
//! `faults` says the shard is in a crash loop; `transfer` moves the items
//! from an old instance to a new one on a hot reload, and `snapshot` to
//! and from a file for the warm restart (a core module's dump and load and
//! a component's answer in `handover`'s steps), where `image` saves and restores
//! a whole memory when `image_check` finds that it is the whole instance;
//! `metrics` reads the figures a v8 plugin keeps in its memory (or a
//! component answers from its `metrics` export).
//! The sibling files use each other without a circle
//! (host/src/layering.rs): `compile`, `imports`, `faults`, `handover` and
//! `image_check` need none of the others, `component` only `imports` and
//! `handover`,
//! `shard` is built on `instance`,
//! `metrics` on `shard` (it adds `Shard::stats` and `Shard::plugin_metrics`),
//! and `transfer`, `snapshot` and `image` on `shard`.

mod code_cache;
mod compile;
mod component;
mod engine;
mod faults;
mod handover;
mod image;
mod image_check;
mod imports;
mod instance;
mod metrics;
mod shard;
mod snapshot;
mod stats_reset;
#[cfg(test)]
mod test_support;
mod transfer;

pub use code_cache::{configure_code_cache, CodeCache};
pub use engine::{Plugin, DEFAULT_PLUGIN, EPOCH_TICK};
pub use faults::{FaultStats, BACKOFF_FIRST, BACKOFF_MAX, CRASH_LOOP_FAULTS, CRASH_LOOP_WINDOW};
pub use image::SavedImage;
pub use imports::{tap_log, ShardCtx};
pub use instance::{memory_cap, sized_for_items, ShardConfig};
pub use metrics::{stat_lines_for_display, MetricValue, PluginMetric};
pub use shard::{
    plugin_abi, plugin_lists, plugin_reports_events, Answers, Fault, ListStep, Shard,
    LIST_CHUNK_BYTES,
};
pub use snapshot::{check_items_file, SavedItems};
pub use transfer::{ReloadOutcome, StartedEmpty, Transfer, DUMP_CHUNK_BYTES};
