//! memcached 1.6's item store as a wasmcached plugin: the storage engine the
//! server embeds, one instance per shard.
//!
//! # Layout
//! - [`store`]: the operations with memcached's semantics (expiry, flush_all,
//!   CAS, incr/decr, append/prepend); `store::access` writes items into the
//!   log, `store::evict` makes room (S3-FIFO), `store::space` runs the
//!   background work, `store::report` writes stats.
//! - [`log`]: the segments items are appended to, in two FIFO queues.
//! - [`item`]: an item's bytes: a header of only the fields it uses.
//! - [`index`]: the hash index of 4-byte item handles, resized incrementally.
//! - [`ghost`]: S3-FIFO's memory of keys evicted while new.
//! - [`mem`]: memcached's own size rule for items.
//! - [`hash`], [`num`]: the key hash and memcached's number parsing.
//! - [`metrics`]: the ABI v8 metrics it declares beyond memcached's stats.
//!
//! # Memory
//! An item is its header (5 bytes for a key and value without flags or
//! TTL: the lengths, two state bits, a 16-bit access time), its key and its
//! value, appended to a segment: no allocator header, no slot, no padding,
//! no list links, and no stored CAS (a new item's CAS is its log position,
//! see [`item`]). The index adds 5 bytes a slot at up to 7/8 full. 1M items
//! of 32-byte keys and 100-byte values take 137 bytes each in the log
//! (memcached: a 192-byte chunk plus an 8-byte bucket). `-m` counts the
//! segments in use, long values and the ghost; like memcached's hash table,
//! the index is not counted. docs/performance.md has the measurements.
//!
//! # Eviction
//! S3-FIFO over segments ([`store`]'s `evict`): new items enter a small
//! FIFO queue; when its oldest segment is recycled, items read while there
//! move to the main queue and the others leave (remembered by the ghost);
//! the main queue gives items with a frequency another round. A hit only
//! raises two bits. `-M` refuses instead, after compacting away dead items.
//!
//! # Moving items (ABI v3)
//! `store::dump` writes the live items in the order eviction would reach
//! them; `load` stores such records keeping flags, exptime, CAS and
//! frequency, so a new plugin instance can take over a shard's contents.
//!
//! # Listing items (ABI v5)
//! `store::list` walks the items in log order from the host's cursor and
//! writes what memcached's `lru_crawler metadump` and `stats cachedump`
//! show of each live item, a bounded number per call, changing nothing.
//!
//! # memcached's settings (ABI v5 hints)
//! Of the hints in `Config::hints` the store honours `hashpower` (each
//! shard's index starts at 2^hashpower slots, capped at half the shard's
//! budget; `hash_power_level` shows the log2 of its slots) and
//! `hash_expand` (`-o no_hashexpand`: the index keeps its initial size).
//! `-f`, `-n`, `slab_sizes` and `slab_chunk_max` build memcached's slab
//! class table, which the store uses as a yardstick only: items are counted
//! in the class memcached would give them, so `stats items`, `stats slabs`,
//! metadump's `cls=` and `memcached-tool display` read as memcached's would
//! (`store::classes`). The others are ignored, because nothing here
//! matches them (no slab pages to move, no segmented LRU, no refcounts,
//! its own key hash); docs/operators.md has the operator's view.
//!
//! # Background work
//! `tick` runs one bounded slice (expiry scan, compaction of segments the
//! scan emptied, shedding after a lowered `MemLimit`, index resizing) and
//! asks for a 5 ms timer while work remains, so no single call holds the
//! worker for more than a few milliseconds.

pub mod ghost;
pub mod hash;
pub mod index;
pub mod item;
pub mod log;
pub mod mem;
pub mod metrics;
pub mod num;
pub mod stats;
pub mod store;

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
        if self.reads_ahead() {
            self.prefetch(batch)
        }
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
#[cfg(test)]
mod tests;
