//! Counters the item store keeps, named as memcached names them.
//!
//! Only what the store itself knows is counted here; command counters that
//! the host derives from the responses (cmd_get, get_hits, …) are the host's.
//! `slab_*` are the per-class numbers of memcached's `stats slabs`.

#[derive(Default, Debug, Clone)]
pub struct Counters {
    pub total_items: u64,
    pub evictions: u64,
    pub evicted_nonzero: u64,
    /// Seconds since the last access of the most recently evicted item.
    pub evicted_time: u32,
    pub evicted_unfetched: u64,
    pub evicted_active: u64,
    /// Expired or flushed items freed to make room.
    pub reclaimed: u64,
    pub expired_unfetched: u64,
    /// Expired or flushed items freed by the background scan (`tick`).
    pub crawler_reclaimed: u64,
    pub crawler_items_checked: u64,
    /// Passes of the background scan begun (memcached's `lru_crawler_starts`).
    pub crawler_starts: u64,
    /// Slices of background work run (memcached's `lru_maintainer_juggles`).
    pub maintainer_juggles: u64,
    pub moves_to_cold: u64,
    pub moves_to_warm: u64,
    pub moves_within_lru: u64,
    /// Expired / flushed items found (and dropped) by a lookup.
    pub get_expired: u64,
    pub get_flushed: u64,
    /// Stores refused for lack of memory.
    pub outofmemory: u64,
    /// Allocations the heap refused although the accounting allowed them.
    pub malloc_fails: u64,
    pub hits_to_warm: u64,
    pub hits_to_cold: u64,
    pub slab_get_hits: u64,
    pub slab_cmd_set: u64,
    pub slab_delete_hits: u64,
    pub slab_incr_hits: u64,
    pub slab_decr_hits: u64,
    pub slab_cas_hits: u64,
    pub slab_cas_badval: u64,
    pub slab_touch_hits: u64,
}
