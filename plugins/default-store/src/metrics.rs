//! What the store tells an operator beyond memcached's stats (ABI v8
//! metrics): shown by `stats plugin` as `metric:<name>` and on `/metrics`
//! as `wasmcached_plugin_<name>`. The counters and the histogram are bumped
//! where the work happens, a plain add each; the gauges are set only when
//! the host asks (`Store::update_metrics`, store/report.rs).

use wasmcached_sdk::metrics::{register, Counter, Gauge, Histogram};

pub static INDEX_RESIZES: Counter = Counter::new(
    "index_resizes_total",
    "Hash index resizes started (grown at 1.5 items per bucket, shrunk below 1/8)",
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
pub static SLOT_CHUNKS: Gauge = Gauge::new(
    "slot_chunks",
    "Chunks of item slots allocated (each holds a fixed number of 32-byte slots)",
);
pub static USED_BYTES: Gauge = Gauge::new(
    "used_bytes",
    "Bytes counted against the shard's budget: item data, slots and the index",
);
pub static BUDGET_BYTES: Gauge =
    Gauge::new("budget_bytes", "The shard's memory budget (-m / shards)");
pub static INDEX_BUCKETS: Gauge = Gauge::new("index_buckets", "Buckets of the hash index");

/// Declares every metric to the host (idempotent).
pub fn register_all() {
    register(&INDEX_RESIZES);
    register(&CRAWLER_CHECKED);
    register(&CRAWLER_RECLAIMED);
    register(&VALUE_BYTES);
    register(&SLOT_CHUNKS);
    register(&USED_BYTES);
    register(&BUDGET_BYTES);
    register(&INDEX_BUCKETS);
}
