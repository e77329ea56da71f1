//! The server's own counters, as memcached keeps them in its `stats`
//! structs: each worker's [`ThreadStats`] (it alone writes them, so counting
//! is an uncontended relaxed add), the process-wide connection and TLS
//! counters, and the buffer gauges of each connection. They sit below
//! everything that counts; `crate::stats` renders them with the shards'
//! figures.

use crate::clock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

macro_rules! thread_stats {
    ($($name:ident),* $(,)?) => {
        /// Per-worker command counters.
        #[derive(Default)]
        pub struct ThreadStats {
            $(pub $name: AtomicU64,)*
            /// What only `/metrics` shows (not reset by `stats reset`).
            pub figures: WorkerFigures,
        }

        impl ThreadStats {
            /// Adds this thread's counters into `sum`.
            pub fn add_into(&self, sum: &mut BTreeMap<&'static str, u64>) {
                $(*sum.entry(stringify!($name)).or_default() += self.$name.load(Ordering::Relaxed);)*
            }

            /// `stats reset`. Racing increments from the owner may survive; memcached has the same race.
            pub fn reset(&self) {
                $(self.$name.store(0, Ordering::Relaxed);)*
            }
        }
    };
}

thread_stats!(
    cmd_get,
    cmd_set,
    cmd_flush,
    cmd_touch,
    cmd_meta,
    get_hits,
    get_misses,
    delete_misses,
    delete_hits,
    incr_misses,
    incr_hits,
    decr_misses,
    decr_hits,
    cas_misses,
    cas_hits,
    cas_badval,
    touch_hits,
    touch_misses,
    store_too_large,
    store_no_memory,
    bytes_read,
    bytes_written,
    conn_yields,
    total_connections,
    idle_kicks,
    auth_cmds,
    auth_errors,
);

/// A histogram only one thread observes into and others read: fixed upper
/// bounds, one relaxed counter per bucket (not cumulative; the last bucket
/// is +Inf) and the sum of what was observed.
pub struct Histogram {
    bounds: &'static [u64],
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [u64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    #[inline]
    pub fn observe(&self, v: u64) {
        let i = self.bounds.partition_point(|&b| b < v);
        bump(&self.buckets[i], 1);
        bump(&self.sum, v);
    }

    /// The upper bounds, each bucket's count (the last +Inf) and the sum.
    pub fn read(&self) -> (&'static [u64], Vec<u64>, u64) {
        let counts = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        (self.bounds, counts, self.sum.load(Ordering::Relaxed))
    }
}

/// Upper bounds of a guest call's duration, in nanoseconds: 1 µs to 1 s,
/// four times apart.
pub const GUEST_CALL_NS: &[u64] = &[
    1_000,
    4_000,
    16_000,
    64_000,
    256_000,
    1_024_000,
    4_096_000,
    16_384_000,
    65_536_000,
    262_144_000,
    1_048_576_000,
];

/// Upper bounds of a batch's size, in requests.
pub const BATCH_REQUESTS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// A worker's figures for `/metrics` (host/src/metrics/): how long its
/// guest calls take, how many requests each carries, and how many batches
/// it hands to other workers' shards.
pub struct WorkerFigures {
    pub guest_call_ns: Histogram,
    pub batch_requests: Histogram,
    /// Batches of requests this worker's connections sent to a shard that
    /// another worker owns.
    pub forwarded_batches: AtomicU64,
}

impl Default for WorkerFigures {
    fn default() -> WorkerFigures {
        WorkerFigures {
            guest_call_ns: Histogram::new(GUEST_CALL_NS),
            batch_requests: Histogram::new(BATCH_REQUESTS),
            forwarded_batches: AtomicU64::new(0),
        }
    }
}

/// Adds `n` to a counter only this thread writes.
#[inline]
pub fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Process-wide connection counters.
#[derive(Default)]
pub struct ConnStats {
    pub curr_connections: AtomicUsize,
    pub rejected_connections: AtomicU64,
    /// memcached's `connection_structures`: connection slots ever set up
    /// (listening and UDP sockets, and the workers' connection slots, which
    /// are reused and never freed, like memcached's `conn` structs).
    pub conn_structs: AtomicU64,
    /// Times the listeners stopped accepting because the process ran out of
    /// file descriptors (memcached's `listen_disabled_num`), and for how long.
    pub listen_disabled_num: AtomicU64,
    pub time_in_listen_disabled_us: AtomicU64,
    /// Accepting is off right now (`accepting_conns 0`), since this instant.
    pub listen_disabled_since: Mutex<Option<Instant>>,
    pub listen_disabled: AtomicBool,
}

impl ConnStats {
    /// `stats reset`: memcached zeroes the counters, not the gauges.
    pub fn reset(&self) {
        self.rejected_connections.store(0, Ordering::Relaxed);
        self.listen_disabled_num.store(0, Ordering::Relaxed);
        self.time_in_listen_disabled_us.store(0, Ordering::Relaxed);
        SSL_HANDSHAKE_ERRORS.store(0, Ordering::Relaxed);
    }

    /// The listeners stopped accepting (out of file descriptors).
    pub fn listen_disabled(&self, now: Instant) {
        self.listen_disabled_num.fetch_add(1, Ordering::Relaxed);
        self.listen_disabled.store(true, Ordering::Relaxed);
        *self
            .listen_disabled_since
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(now);
    }

    /// The listeners accept again.
    pub fn listen_enabled(&self, now: Instant) {
        let since = self
            .listen_disabled_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(since) = since {
            let us = now.saturating_duration_since(since).as_micros() as u64;
            self.time_in_listen_disabled_us
                .fetch_add(us, Ordering::Relaxed);
        }
        self.listen_disabled.store(false, Ordering::Relaxed);
    }
}

/// TLS handshakes that failed (`ssl_handshake_errors`, shown with `-Z`).
pub static SSL_HANDSHAKE_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Server time of the last successful `refresh_certs` (0: the start, as in
/// memcached), for `time_since_server_cert_refresh`.
static CERT_REFRESH_TIME: AtomicU32 = AtomicU32::new(0);

/// `refresh_certs` succeeded.
pub fn certs_refreshed() {
    CERT_REFRESH_TIME.store(clock::now(), Ordering::Relaxed);
}

/// When `refresh_certs` last succeeded (server time; 0: never).
pub fn cert_refresh_time() -> u32 {
    CERT_REFRESH_TIME.load(Ordering::Relaxed)
}

/// What a connection's buffers hold, kept up to date by its worker for
/// memcached's `read_buf_*` and `response_obj_*` stats.
#[derive(Default)]
pub struct BufGauge {
    /// Bytes of the read buffer.
    pub rbuf: AtomicUsize,
    /// Bytes allocated for replies waiting to be written (the write buffer).
    pub wbuf: AtomicUsize,
}

impl BufGauge {
    #[inline]
    pub fn update(&self, rbuf: usize, wbuf: usize) {
        self.rbuf.store(rbuf, Ordering::Relaxed);
        self.wbuf.store(wbuf, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_value_in_the_first_bucket_that_holds_it() {
        let h = Histogram::new(&[1, 2, 4]);
        for v in [0, 1, 2, 3, 4, 5, 100] {
            h.observe(v);
        }
        let (bounds, counts, sum) = h.read();
        assert_eq!(bounds, &[1, 2, 4]);
        // <=1: 0 and 1; <=2: 2; <=4: 3 and 4; +Inf: 5 and 100.
        assert_eq!(counts, [2, 1, 2, 2]);
        assert_eq!(sum, 115);
    }
}
