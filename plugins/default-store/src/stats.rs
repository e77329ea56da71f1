//! Counters the item store keeps for the whole shard, named as memcached
//! names them. Per-class figures (evictions, hits, moves, …) live in
//! `store::classes`; memcached's global item stats are their sums.
//!
//! Only what the store itself knows is counted here; command counters that
//! the host derives from the responses (cmd_get, get_hits, …) are the host's.

#[derive(Default, Debug, Clone)]
pub struct Counters {
    pub total_items: u64,
    /// Passes of the background scan begun (memcached's `lru_crawler_starts`).
    pub crawler_starts: u64,
    /// Slices of background work run (memcached's `lru_maintainer_juggles`).
    pub maintainer_juggles: u64,
    /// Expired / flushed items found (and dropped) by a lookup.
    pub get_expired: u64,
    pub get_flushed: u64,
    /// Allocations the heap refused although the accounting allowed them.
    pub malloc_fails: u64,
}
