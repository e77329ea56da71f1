//! memcached 1.6's item store as a wasmcached plugin: the storage engine the
//! server embeds, one instance per shard.
//!
//! # Layout
//! - [`store`]: the operations with memcached's semantics (expiry, flush_all,
//!   CAS, incr/decr, append/prepend); `store::space` keeps the shard within
//!   its budget and runs the background work; `store::report` writes stats.
//! - [`slab`]: compact per-item metadata slots addressed by `u32`.
//! - [`index`]: the hash index, resized incrementally.
//! - [`lru`]: memcached's segmented LRU (probation + protected lists).
//! - [`mem`]: what an item costs against the shard's memory budget.
//! - [`hash`], [`num`]: the key hash and memcached's number parsing.
//!
//! # Memory
//! An item is a 40-byte slot (wasm32) plus one allocation holding the client
//! flags (only when non-zero, as memcached's ITEM_CFLAGS), key and value back
//! to back; with the allocator's 4-byte header and 8-byte rounding and ~4
//! bytes of hash bucket, that is about 52 bytes of overhead per item
//! (memcached: 48-byte header + 8-byte CAS + "\r\n" + NUL + slab-class
//! rounding + 8-byte hash bucket). See docs/performance.md. Everything is counted against the budget: allocations as the
//! allocator rounds them, slot chunks, index tables. The heap itself (capped
//! by the host) is the last word: item allocations are fallible, and a
//! refusal evicts more and retries instead of trapping.
//!
//! # Eviction
//! memcached's segmented LRU without its background thread: a hit only sets
//! bits; at the probation tail an item fetched twice moves to the protected
//! list (at most 40% of the bytes) instead of being evicted; expired and
//! flushed items found there are reclaimed first. `-M` refuses instead.
//!
//! # Moving items (ABI v3)
//! `store::dump` writes the live items, least recently used first, as item
//! records; `load` stores such records keeping flags, exptime and CAS, so a
//! new plugin instance can take over a shard's contents.
//!
//! # Background work
//! `tick` runs one bounded slice (expiry crawl, shedding after a lowered
//! `MemLimit`, releasing emptied slot chunks, index resizing) and asks for a
//! 5 ms timer while work remains, so no single call holds the worker for
//! more than a few milliseconds.

pub mod hash;
pub mod index;
pub mod lru;
pub mod mem;
pub mod num;
pub mod slab;
pub mod stats;
pub mod store;

#[cfg(test)]
mod tests;

pub use store::Store;
use wasmcached_sdk::{
    Config, DumpWriter, Item, LoadError, Plugin, Request, Responder, StatsWriter,
};

impl Plugin for Store {
    fn init(config: &Config) -> Result<Self, String> {
        Store::new(config)
    }

    fn handle(&mut self, req: &Request<'_>, out: &mut Responder<'_>) {
        Store::handle(self, req, out)
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
}

wasmcached_sdk::export_plugin!(Store);
