//! What the store tells an operator beyond memcached's stats (ABI v8
//! metrics): shown by `stats plugin` as `metric:<name>` and on `/metrics`
//! as `wasmcached_plugin_<name>`. The counters and the histogram are bumped
//! where the work happens, a plain add each; the gauges are set only when
//! the host asks (`Store::update_metrics`, store/report.rs).

use wasmcached_sdk::metrics::{register, Counter, Gauge, Histogram};

pub static INDEX_RESIZES: Counter = Counter::new(
    "index_resizes_total",
    "Hash index resizes started (grown by 1.5 past 7/8 full, shrunk below 1/8)",
);
pub static CRAWLER_CHECKED: Counter = Counter::new(
    "crawler_items_checked_total",
    "Live items the background expiry scan looked at",
);
pub static CRAWLER_RECLAIMED: Counter = Counter::new(
    "crawler_reclaimed_total",
    "Expired or flushed items the background expiry scan freed",
);
pub static VALUE_BYTES: Histogram<8> = Histogram::new(
    "stored_value_bytes",
    "Sizes of the values stored (set, add, replace, cas, append, prepend, incr growth)",
    [
        64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
    ],
);
pub static SEGMENTS: Gauge = Gauge::new(
    "segments",
    "Log segments in use (items are appended to them; eviction recycles whole segments)",
);
pub static PROMOTED: Counter = Counter::new(
    "promoted_total",
    "Items eviction moved from the small queue to the main queue (read while new)",
);
pub static GHOST_HITS: Counter = Counter::new(
    "ghost_hits_total",
    "New items whose key was evicted from the small queue recently (they start with a hit)",
);
pub static COMPACTIONS: Counter = Counter::new(
    "compactions_total",
    "Segments the expiry scan compacted because they were mostly dead items",
);
pub static USED_BYTES: Gauge = Gauge::new(
    "used_bytes",
    "Bytes counted against the shard's budget: segments in use, long values, the ghost",
);
pub static BUDGET_BYTES: Gauge =
    Gauge::new("budget_bytes", "The shard's memory budget (-m / shards)");
pub static INDEX_SLOTS: Gauge = Gauge::new("index_slots", "Slots of the hash index");

/// Declares every metric to the host (idempotent).
pub fn register_all() {
    register(&INDEX_RESIZES);
    register(&CRAWLER_CHECKED);
    register(&CRAWLER_RECLAIMED);
    register(&VALUE_BYTES);
    register(&SEGMENTS);
    register(&PROMOTED);
    register(&GHOST_HITS);
    register(&COMPACTIONS);
    register(&USED_BYTES);
    register(&BUDGET_BYTES);
    register(&INDEX_SLOTS);
}
