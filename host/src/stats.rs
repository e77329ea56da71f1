//! Server statistics in memcached's names.
//!
//! Each worker owns one [`ThreadStats`] and is its only writer, so counting on
//! the request path is an uncontended relaxed add; `stats` sums all threads.
//! Item statistics come from the shards (the plugin) and are summed by name.

use crate::clock;
use crate::worker::Shared;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

macro_rules! thread_stats {
    ($($name:ident),* $(,)?) => {
        /// Per-worker command counters.
        #[derive(Default)]
        pub struct ThreadStats { $(pub $name: AtomicU64,)* }

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
}

/// Stats that describe a size or an age rather than count something: over
/// several shards the largest is the meaningful one, not the sum.
fn takes_max(name: &str) -> bool {
    [
        "age",
        "_time",
        "chunk_size",
        "chunks_per_page",
        "hash_power_level",
    ]
    .iter()
    .any(|s| name.ends_with(s))
}

/// Sums `name value` lines from several shards. Values that are not numbers
/// keep the first shard's text; sizes and ages take the maximum.
#[derive(Default)]
pub struct Aggregate {
    pub values: BTreeMap<String, Agg>,
    order: Vec<String>,
}

pub enum Agg {
    Num(u64),
    Text(String),
}

impl Aggregate {
    pub fn add_lines(&mut self, text: &[u8]) {
        for line in String::from_utf8_lossy(text).lines() {
            let Some((name, value)) = line.trim().split_once(' ') else {
                continue;
            };
            let value = value.trim();
            match (self.values.get_mut(name), value.parse::<u64>()) {
                (Some(Agg::Num(old)), Ok(v)) => {
                    if takes_max(name) {
                        *old = (*old).max(v)
                    } else {
                        *old += v
                    }
                }
                (Some(_), _) => {}
                (None, parsed) => {
                    self.order.push(name.to_string());
                    let v = match parsed {
                        Ok(v) => Agg::Num(v),
                        Err(_) => Agg::Text(value.to_string()),
                    };
                    self.values.insert(name.to_string(), v);
                }
            }
        }
    }

    pub fn take(&mut self, name: &str) -> Option<String> {
        self.values.remove(name).map(|v| match v {
            Agg::Num(n) => n.to_string(),
            Agg::Text(t) => t,
        })
    }

    /// Remaining stats in the order first seen.
    pub fn drain(&mut self) -> Vec<(String, String)> {
        let order = std::mem::take(&mut self.order);
        order
            .into_iter()
            .filter_map(|n| self.take(&n).map(|v| (n, v)))
            .collect()
    }
}

/// `stats` (general): host counters in memcached's order, with the shards'
/// item statistics placed where memcached shows them and the rest after.
pub fn general(shared: &Shared, agg: &mut Aggregate) -> Vec<(String, String)> {
    let mut t = BTreeMap::new();
    for th in &shared.threads {
        th.add_into(&mut t);
    }
    let n = |name: &str| t.get(name).copied().unwrap_or(0).to_string();
    let now = clock::now();
    let (user, system) = rusage();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| out.push((k.to_string(), v));
    put("pid", std::process::id().to_string());
    put("uptime", now.saturating_sub(60).to_string());
    put("time", (clock::process_started() + now as i64).to_string());
    put(
        "version",
        format!("1.6.18-wasmcached-{}", env!("CARGO_PKG_VERSION")),
    );
    put("libevent", "polling".into());
    put(
        "pointer_size",
        (8 * std::mem::size_of::<usize>()).to_string(),
    );
    put("rusage_user", user);
    put("rusage_system", system);
    put("max_connections", shared.settings.maxconns.to_string());
    put(
        "curr_connections",
        shared
            .conns
            .curr_connections
            .load(Ordering::Relaxed)
            .to_string(),
    );
    put("total_connections", n("total_connections"));
    put(
        "rejected_connections",
        shared
            .conns
            .rejected_connections
            .load(Ordering::Relaxed)
            .to_string(),
    );
    for k in [
        "cmd_get",
        "cmd_set",
        "cmd_flush",
        "cmd_touch",
        "cmd_meta",
        "get_hits",
        "get_misses",
    ] {
        put(k, n(k));
    }
    put(
        "get_expired",
        agg.take("get_expired").unwrap_or_else(|| "0".into()),
    );
    put(
        "get_flushed",
        agg.take("get_flushed").unwrap_or_else(|| "0".into()),
    );
    for k in [
        "delete_misses",
        "delete_hits",
        "incr_misses",
        "incr_hits",
        "decr_misses",
        "decr_hits",
        "cas_misses",
        "cas_hits",
        "cas_badval",
        "touch_hits",
        "touch_misses",
        "store_too_large",
        "store_no_memory",
    ] {
        put(k, n(k));
    }
    put("auth_cmds", n("auth_cmds"));
    put("auth_errors", n("auth_errors"));
    put("bytes_read", n("bytes_read"));
    put("bytes_written", n("bytes_written"));
    put(
        "limit_maxbytes",
        shared.maxbytes.load(Ordering::Relaxed).to_string(),
    );
    agg.take("limit_maxbytes");
    put("accepting_conns", "1".into());
    put("threads", shared.settings.threads.to_string());
    put("conn_yields", n("conn_yields"));
    put("idle_kicks", n("idle_kicks"));
    put("shards", shared.router.shards().to_string());
    put(
        "plugin_traps",
        shared
            .faults
            .plugin_traps
            .load(Ordering::Relaxed)
            .to_string(),
    );
    put(
        "plugin_restarts",
        shared
            .faults
            .plugin_restarts
            .load(Ordering::Relaxed)
            .to_string(),
    );
    let f = &shared.faults;
    put(
        "plugin_reloads",
        f.plugin_reloads.load(Ordering::Relaxed).to_string(),
    );
    put(
        "plugin_reload_failures",
        f.plugin_reload_failures.load(Ordering::Relaxed).to_string(),
    );
    put(
        "plugin_restart_failures",
        f.plugin_restart_failures
            .load(Ordering::Relaxed)
            .to_string(),
    );
    put(
        "plugin_backoffs",
        f.plugin_backoffs.load(Ordering::Relaxed).to_string(),
    );
    put(
        "plugin_shards_backing_off",
        f.plugin_shards_backing_off
            .load(Ordering::Relaxed)
            .to_string(),
    );
    for k in [
        "bytes",
        "curr_items",
        "total_items",
        "expired_unfetched",
        "evicted_unfetched",
        "evicted_active",
        "evictions",
        "reclaimed",
    ] {
        put(k, agg.take(k).unwrap_or_else(|| "0".into()));
    }
    out.extend(agg.drain());
    out
}

/// `stats settings`.
pub fn settings(shared: &Shared) -> Vec<(String, String)> {
    let s = &shared.settings;
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let on_off = |b: bool| if b { "on" } else { "off" }.to_string();
    vec![
        (
            "maxbytes".into(),
            shared.maxbytes.load(Ordering::Relaxed).to_string(),
        ),
        ("maxconns".into(), s.maxconns.to_string()),
        ("tcpport".into(), s.port.to_string()),
        ("udpport".into(), s.udp_port.to_string()),
        (
            "inter".into(),
            if s.listen.is_empty() {
                "NULL".into()
            } else {
                s.listen.join(",")
            },
        ),
        ("verbosity".into(), shared.verbose().to_string()),
        ("evictions".into(), on_off(s.evict_to_free)),
        (
            "domain_socket".into(),
            s.unix_socket
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "NULL".into()),
        ),
        ("umask".into(), format!("{:o}", s.unix_mask)),
        ("num_threads".into(), s.threads.to_string()),
        ("reqs_per_event".into(), s.reqs_per_event.to_string()),
        ("cas_enabled".into(), yes_no(s.use_cas)),
        ("binding_protocol".into(), s.protocol.name().into()),
        ("auth_enabled_sasl".into(), yes_no(s.sasl)),
        (
            "auth_enabled_ascii".into(),
            s.auth_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "no".into()),
        ),
        ("item_size_max".into(), s.item_size_max.to_string()),
        ("maxconns_fast".into(), "yes".into()),
        ("flush_enabled".into(), yes_no(s.flush_enabled)),
        ("shutdown_command".into(), yes_no(s.shutdown_command)),
        ("idle_timeout".into(), s.idle_timeout.to_string()),
        ("shards".into(), s.shards.to_string()),
        (
            "plugin".into(),
            s.plugin
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "default-store".into()),
        ),
        (
            "plugin_deadline_ms".into(),
            s.plugin_deadline.as_millis().to_string(),
        ),
    ]
}

/// CPU time used by the process, as memcached prints it (seconds.micros).
fn rusage() -> (String, String) {
    #[cfg(target_os = "linux")]
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the ")" of the command name; utime and stime are 14th and 15th.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            // USER_HZ is 100 on every Linux this runs on.
            let fmt = |t: u64| format!("{}.{:06}", t / 100, (t % 100) * 10_000);
            return (fmt(tick(11)), fmt(tick(12)));
        }
    }
    ("0.000000".into(), "0.000000".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_by_name() {
        let mut a = Aggregate::default();
        a.add_lines(b"curr_items 3\nitems:1:age 10\nengine default\n");
        a.add_lines(b"curr_items 4\nitems:1:age 7\nengine other\n");
        assert_eq!(a.take("curr_items").as_deref(), Some("7"));
        assert_eq!(
            a.drain(),
            vec![
                ("items:1:age".to_string(), "10".to_string()),
                ("engine".to_string(), "default".to_string())
            ]
        );
    }
}
