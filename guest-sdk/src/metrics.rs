//! Metrics a plugin declares and the host reads from its memory (ABI v8,
//! `wmc_metrics`): [`Counter`], [`Gauge`] and [`Histogram`].
//!
//! Each metric is a `static` (or leaked with `Box::leak`, so that it never
//! moves; check a name made at run time with [`valid_name`]): its value
//! lives at a fixed address in linear memory, and updating it is a plain
//! add or store, with no host call. Register each one with [`register`]
//! (in `Plugin::init`; registering twice is harmless); the SDK's
//! `wmc_metrics` export describes every registered metric to the host,
//! which reads the values when it is scraped or asked for `stats plugin`.
//!
//! ```
//! use wasmcached_sdk::metrics::{register, Counter, Histogram};
//! static EVICTIONS: Counter = Counter::new("evictions_total", "Items evicted for room");
//! static SIZES: Histogram<3> = Histogram::new("value_bytes", "Sizes stored", [64.0, 1024.0, 16384.0]);
//! register(&EVICTIONS);
//! register(&SIZES);
//! EVICTIONS.inc();
//! SIZES.observe(300);
//! assert_eq!(SIZES.counts(), vec![0, 1, 0, 0]);
//! ```
//!
//! The values are atomics only so that they can be `static` without
//! `unsafe`: on wasm32 (single-threaded) they compile to plain loads and
//! stores. Nothing of them is a Wasm global, so a plugin keeps all its
//! state in its memory (what the warm restart's memory image needs).

use crate::abi::metrics::{self as m, MetricKind, MetricSpec};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// A metric the SDK can describe to the host. Implemented by [`Counter`],
/// [`Gauge`] and [`Histogram`] only.
pub trait Metric: Sync + sealed::Sealed {
    /// The descriptor: kind, name, help, where the value lives, bounds.
    fn spec(&self) -> MetricSpec<'_>;
}

mod sealed {
    pub trait Sealed {}
}

/// The address of a value in linear memory, as the descriptor carries it.
fn address<T>(v: &T) -> u32 {
    v as *const T as usize as u32
}

/// Whether `name` may name a metric (`[a-zA-Z_][a-zA-Z0-9_]*`, at most 64
/// bytes): check a name built at run time before `Counter::new` & co.,
/// which panic (a trap) on a bad one.
pub const fn valid_name(name: &str) -> bool {
    m::valid_metric_name(name.as_bytes())
}

/// Panics (at compile time for a `static`) unless `name` and `help` are
/// what the host accepts.
const fn check_names(name: &str, help: &str) {
    assert!(
        m::valid_metric_name(name.as_bytes()),
        "a metric name is [a-zA-Z_][a-zA-Z0-9_]*, at most 64 bytes"
    );
    assert!(
        m::valid_metric_help(help.as_bytes()),
        "metric help is at most 256 bytes without control characters"
    );
}

/// A count that only goes up (a u64 at a fixed address).
pub struct Counter {
    value: AtomicU64,
    name: &'static str,
    help: &'static str,
}

impl Counter {
    /// A counter at 0. `name` is `[a-zA-Z_][a-zA-Z0-9_]*` (at most 64
    /// bytes; Prometheus shows it as `wasmcached_plugin_NAME`, `stats
    /// plugin` as `metric:NAME`), `help` one line of at most 256 bytes. A
    /// bad one panics: at compile time for a `static`.
    pub const fn new(name: &'static str, help: &'static str) -> Counter {
        check_names(name, help);
        Counter {
            value: AtomicU64::new(0),
            name,
            help,
        }
    }

    #[inline]
    /// Adds 1.
    pub fn inc(&self) {
        self.add(1)
    }

    #[inline]
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.value.fetch_add(n, Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.value.load(Relaxed)
    }
}

impl sealed::Sealed for Counter {}
impl Metric for Counter {
    fn spec(&self) -> MetricSpec<'_> {
        MetricSpec {
            kind: MetricKind::Counter,
            name: self.name,
            help: self.help,
            offset: address(&self.value),
            bounds: &[],
        }
    }
}

/// A level that goes up and down (an i64 at a fixed address).
pub struct Gauge {
    value: AtomicI64,
    name: &'static str,
    help: &'static str,
}

impl Gauge {
    /// A gauge at 0; `name` and `help` as for [`Counter::new`].
    pub const fn new(name: &'static str, help: &'static str) -> Gauge {
        check_names(name, help);
        Gauge {
            value: AtomicI64::new(0),
            name,
            help,
        }
    }

    #[inline]
    /// Sets the level to `v`.
    pub fn set(&self, v: i64) {
        self.value.store(v, Relaxed);
    }

    #[inline]
    /// Raises the level by `n`.
    pub fn add(&self, n: i64) {
        self.value.fetch_add(n, Relaxed);
    }

    #[inline]
    /// Lowers the level by `n`.
    pub fn sub(&self, n: i64) {
        self.value.fetch_sub(n, Relaxed);
    }

    /// The current level.
    pub fn get(&self) -> i64 {
        self.value.load(Relaxed)
    }
}

impl sealed::Sealed for Gauge {}
impl Metric for Gauge {
    fn spec(&self) -> MetricSpec<'_> {
        MetricSpec {
            kind: MetricKind::Gauge,
            name: self.name,
            help: self.help,
            offset: address(&self.value),
            bounds: &[],
        }
    }
}

/// The values of a histogram with `N` finite bounds, laid out as the ABI
/// reads them: `N + 1` bucket counts (+Inf last), then the sum.
#[repr(C)]
struct Buckets<const N: usize> {
    counts: [AtomicU64; N],
    inf: AtomicU64,
    sum: AtomicU64,
}

/// A distribution of u64 observations over `N` finite upper bounds (a
/// value equal to a bound counts in that bound's bucket, as Prometheus'
/// `le`), with their sum.
pub struct Histogram<const N: usize> {
    values: Buckets<N>,
    bounds: [f64; N],
    name: &'static str,
    help: &'static str,
}

impl<const N: usize> Histogram<N> {
    /// `bounds` must be finite and strictly increasing, at most 64.
    pub const fn new(name: &'static str, help: &'static str, bounds: [f64; N]) -> Histogram<N> {
        check_names(name, help);
        assert!(N <= m::MAX_BOUNDS, "a histogram has at most 64 bounds");
        let mut i = 0;
        while i < N {
            assert!(
                bounds[i].is_finite() && (i == 0 || bounds[i] > bounds[i - 1]),
                "histogram bounds are finite and strictly increasing"
            );
            i += 1;
        }
        Histogram {
            values: Buckets {
                counts: [const { AtomicU64::new(0) }; N],
                inf: AtomicU64::new(0),
                sum: AtomicU64::new(0),
            },
            bounds,
            name,
            help,
        }
    }

    /// Counts `v` in the first bucket whose bound is at least `v`.
    #[inline]
    pub fn observe(&self, v: u64) {
        let x = v as f64;
        let bucket = self
            .bounds
            .iter()
            .position(|&b| x <= b)
            .map_or(&self.values.inf, |i| &self.values.counts[i]);
        bucket.fetch_add(1, Relaxed);
        self.values.sum.fetch_add(v, Relaxed);
    }

    /// The bucket counts, +Inf last (not cumulative).
    pub fn counts(&self) -> Vec<u64> {
        let counts = self.values.counts.iter().chain([&self.values.inf]);
        counts.map(|c| c.load(Relaxed)).collect()
    }

    /// The sum of every observed value (wrapping at 2^64).
    pub fn sum(&self) -> u64 {
        self.values.sum.load(Relaxed)
    }
}

impl<const N: usize> sealed::Sealed for Histogram<N> {}
impl<const N: usize> Metric for Histogram<N> {
    fn spec(&self) -> MetricSpec<'_> {
        MetricSpec {
            kind: MetricKind::Histogram,
            name: self.name,
            help: self.help,
            offset: address(&self.values),
            bounds: &self.bounds,
        }
    }
}

/// Every registered metric, in registration order. A `Mutex` only so that
/// the list can be a `static`; a plugin instance has one thread.
static REGISTRY: Mutex<Vec<&'static dyn Metric>> = Mutex::new(Vec::new());

/// Declares `metric` to the host. Registering the same metric again (a
/// shard's `init` running in a native test twice, say) changes nothing. A
/// second metric of a name already taken, or a 257th metric, is logged and
/// left out: the host would refuse the whole block.
pub fn register(metric: &'static dyn Metric) {
    let mut r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let addr = metric as *const dyn Metric as *const ();
    if r.iter()
        .any(|x| std::ptr::eq(*x as *const dyn Metric as *const (), addr))
    {
        return;
    }
    let name = metric.spec().name;
    let why = if r.len() >= m::MAX_METRICS {
        "more than 256 metrics"
    } else if r.iter().any(|x| x.spec().name == name) {
        "the name is already registered"
    } else {
        r.push(metric);
        return;
    };
    drop(r);
    crate::host::log(
        crate::abi::log_level::ERROR,
        &format!("metric {name} left out: {why}"),
    );
}

/// Replaces `out` with the descriptor block of every registered metric
/// (what `wmc_metrics` returns). Empty when none is, or when there is no
/// memory for the block (the host then shows no metrics this time).
pub fn write_block(out: &mut Vec<u8>) {
    out.clear();
    let r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    if r.is_empty() {
        return;
    }
    let len = m::METRICS_HEADER + r.iter().map(|x| x.spec().encoded_len()).sum::<usize>();
    if out.try_reserve(len).is_err() {
        return;
    }
    m::encode_metrics(out, r.iter().map(|x| x.spec()));
}

#[cfg(test)]
mod tests {
    use super::*;

    static DONE: Counter = Counter::new("done_total", "things done");
    static LEVEL: Gauge = Gauge::new("level", "");
    static SIZES: Histogram<2> = Histogram::new("sizes", "value sizes", [10.0, 100.0]);

    #[test]
    fn values_move_and_the_block_describes_them() {
        register(&DONE);
        register(&LEVEL);
        register(&SIZES);
        register(&DONE);
        DONE.add(2);
        DONE.inc();
        LEVEL.set(5);
        LEVEL.sub(7);
        for v in [3, 10, 11, 1000] {
            SIZES.observe(v);
        }
        assert_eq!((DONE.get(), LEVEL.get()), (3, -2));
        assert_eq!(SIZES.counts(), vec![2, 1, 1]);
        assert_eq!(SIZES.sum(), 1024);
        // The registry is the process's: other tests (the testing
        // harness's) register metrics of their own in parallel.
        let ours = ["done_total", "level", "sizes"];
        let mut block = Vec::new();
        write_block(&mut block);
        let d = m::metric_descriptors(&block).unwrap();
        let d: Vec<_> = d.into_iter().filter(|d| ours.contains(&d.name)).collect();
        let names: Vec<&str> = d.iter().map(|d| d.name).collect();
        assert_eq!(names, ours);
        assert_eq!(d[2].bounds().collect::<Vec<_>>(), [10.0, 100.0]);
        // The histogram's values are its counts then its sum, contiguous.
        assert_eq!(std::mem::size_of::<Buckets<2>>(), 8 * 4);
        assert_eq!(d[2].value_len(), 8 * 4);
        // Another metric of a taken name is left out.
        static AGAIN: Counter = Counter::new("done_total", "");
        register(&AGAIN);
        write_block(&mut block);
        let again = m::metric_descriptors(&block).unwrap();
        assert_eq!(again.iter().filter(|d| d.name == "done_total").count(), 1);
        assert!(REGISTRY.lock().unwrap().iter().all(|x| !std::ptr::eq(
            *x as *const dyn Metric as *const (),
            &AGAIN as *const Counter as *const ()
        )));
    }
}
