//! memcached 1.6's item store as a wasmcached plugin: the storage engine the
//! server embeds, one instance per shard.
//!
//! # Layout
//! - [`store`]: the operations with memcached's semantics (expiry, flush_all,
//!   CAS, incr/decr, append/prepend); `store::space` keeps the shard within
//!   its budget and runs the background work; `store::report` writes stats.
//! - [`slab`]: compact per-item metadata slots addressed by `u32`.
//! - [`index`]: the hash index, resized incrementally.
//! - [`clock`]: CLOCK eviction (the hand and the per-item counters).
//! - [`mem`]: what an item costs against the shard's memory budget.
//! - [`hash`], [`num`]: the key hash and memcached's number parsing.
//! - [`metrics`]: the ABI v8 metrics it declares beyond memcached's stats.
//!
//! # Memory
//! An item is a 32-byte slot (wasm32) plus one allocation holding the client
//! flags (only when non-zero, as memcached's ITEM_CFLAGS), key and value back
//! to back; with the allocator's 4-byte header and 8-byte rounding and ~3
//! bytes of hash bucket, that is about 43 bytes of overhead per item
//! (memcached: 48-byte header + 8-byte CAS + "\r\n" + NUL + slab-class
//! rounding + 8-byte hash bucket). The slot has no list links: CLOCK finds
//! victims by slot order, and the free list borrows the time fields of free
//! slots. See docs/performance.md. Everything is counted against the budget:
//! allocations as the allocator rounds them, slot chunks, index tables. The
//! heap itself (capped by the host) is the last word: item allocations are
//! fallible, and a refusal evicts more and retries instead of trapping.
//!
//! # Eviction
//! CLOCK with a 2-bit counter per item instead of memcached's segmented LRU
//! (which cost 8 bytes of links per item): a hit only raises the item's
//! counter; a hand sweeping the slots lowers counters and evicts the first
//! item it finds at 0, or an expired or flushed one. Each eviction looks at a
//! bounded number of slots. `-M` refuses instead, reclaiming only dead items
//! at the hand. Details in [`clock`].
//!
//! # Moving items (ABI v3)
//! `store::dump` writes the live items in the order the CLOCK hand would
//! reach them (roughly least recently stored first) as item records; `load`
//! stores such records keeping flags, exptime and CAS, so a new plugin
//! instance can take over a shard's contents.
//!
//! # Listing items (ABI v5)
//! `store::list` walks the slots in order from the host's cursor and writes
//! what memcached's `lru_crawler metadump` and `stats cachedump` show of each
//! live item (key, times, CAS, flags, sizes, memcached's slab class), a
//! bounded number of slots per call, changing nothing.
//!
//! # memcached's settings (ABI v5 hints)
//! Of the hints in `Config::hints` the store honours `hashpower` (each
//! shard's index starts at 2^hashpower buckets, capped at a quarter of the
//! shard's budget and at least [`index::MIN_BUCKETS`], and never shrinks
//! below that; `hash_power_level` shows it) and `hash_expand` (`-o
//! no_hashexpand`: the index keeps its initial size). `-f`, `-n`,
//! `slab_sizes` and `slab_chunk_max` build memcached's slab class table,
//! which the store uses as a yardstick only: each item is one exact-size
//! allocation, but it is counted in the class memcached would give it, so
//! `stats items`, `stats slabs`, metadump's `cls=` and `memcached-tool
//! display` read as memcached's would (`store::classes`). The others are
//! ignored, because nothing here matches them: no slab pages to move
//! (`slab_reassign`, `slab_automove*`), CLOCK instead of the segmented LRU
//! (`hot_lru_pct`, `warm_lru_pct`, the max factors, `temporary_ttl`,
//! `lru_maintainer`), an expiry scan in background ticks instead of the LRU
//! crawler (`lru_crawler*`), no refcounts to repair (`tail_repair_time`),
//! its own key hash (`hash_algorithm`); `large_pages` is the host's
//! business. docs/operators.md has the operator's view.
//!
//! # Background work
//! `tick` runs one bounded slice (expiry crawl, shedding after a lowered
//! `MemLimit`, releasing emptied slot chunks, index resizing) and asks for a
//! 5 ms timer while work remains, so no single call holds the worker for
//! more than a few milliseconds.

pub mod clock;
pub mod hash;
pub mod index;
pub mod mem;
pub mod metrics;
pub mod num;
pub mod slab;
pub mod stats;
pub mod store;

#[cfg(test)]
mod tests;

pub use store::Store;
use wasmcached_sdk::{
    Config, DumpWriter, Item, IterWriter, LoadError, Plugin, Request, Responder, StatsWriter,
};

impl Plugin for Store {
    fn init(config: &Config) -> Result<Self, String> {
        metrics::register_all();
        Store::new(config)
    }

    fn handle(&mut self, req: &Request<'_>, out: &mut Responder<'_>) {
        Store::handle(self, req, out)
    }

    fn prepare(&mut self, batch: wasmcached_sdk::abi::Requests<'_>) {
        self.prefetch(batch)
    }

    fn prepare_load(&mut self, items: wasmcached_sdk::abi::Records<'_, Item<'_>>) {
        self.prefetch_keys(items.flatten().map(|i| i.key))
    }

    fn release_held(&mut self) {
        Store::release_held(self)
    }

    fn tick(&mut self, now: u32) {
        Store::tick(self, now)
    }

    fn timer(&mut self, token: u64) {
        Store::timer(self, token)
    }

    fn stats(&mut self, group: i32, out: &mut StatsWriter<'_>) {
        self.write_stats(group, out)
    }

    fn dump(&mut self, out: &mut DumpWriter<'_>) -> bool {
        Store::dump(self, out)
    }

    fn load(&mut self, item: &Item<'_>) -> Result<(), LoadError> {
        Store::load(self, item)
    }

    fn iter(&mut self, out: &mut IterWriter<'_>) -> bool {
        self.list(out)
    }

    fn update_metrics(&mut self) {
        Store::update_metrics(self)
    }
}

wasmcached_sdk::export_plugin!(Store);
