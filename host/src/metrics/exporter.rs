//! memcached's stats as prometheus/memcached_exporter's metric families:
//! the same names, types, labels and arithmetic as its
//! pkg/exporter/exporter.go (listed in tests/data/memcached_exporter_metrics.txt),
//! so that dashboards and alerts written for it work on wasmcached.
//!
//! The exporter reads `stats`, `stats slabs` and `stats items` through
//! gomemcache, which files a line by the colons in its name: none, the
//! server's; `<slab>:<field>`, a slab class's; `items:<slab>:<field>`, an
//! item class's. `stats slabs`' own `active_slabs` and `total_malloced`
//! thus land among the server's stats, which is where
//! `memcached_malloced_bytes` is read from.

use super::expo::{Family, Kind, Sample};
use std::collections::{BTreeMap, HashMap};
use Kind::{Counter, Gauge};

/// The name/value lines of `stats`, `stats settings`, `stats items` and
/// `stats slabs`, as the text protocol prints them without `STAT `.
pub struct Stats<'a> {
    pub general: &'a [(String, String)],
    pub settings: &'a [(String, String)],
    pub items: &'a [(String, String)],
    pub slabs: &'a [(String, String)],
}

/// memcached_exporter's families for these stats, sorted by name (as
/// client_golang gathers them). A family whose stats are absent is left
/// out; `memcached_up` is 0 when a stat the exporter reads does not parse.
pub fn families(stats: &Stats) -> Vec<Family> {
    let split = Split::new(stats);
    let settings: Map = stats
        .settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut out = Out::default();
    out.ok &= split.ok;
    server(&mut out, &split.server);
    for (slab, fields) in &split.items {
        item_class(&mut out, &slab.to_string(), fields);
    }
    for (slab, fields) in &split.slabs {
        slab_class(&mut out, &slab.to_string(), fields);
    }
    server_settings(&mut out, &settings);
    let up = if out.ok { 1.0 } else { 0.0 };
    out.push(&UP, &[], up);
    out.finish()
}

type Map<'a> = HashMap<&'a str, &'a str>;

/// The stats as gomemcache hands them to the exporter.
struct Split<'a> {
    server: Map<'a>,
    slabs: BTreeMap<i64, Map<'a>>,
    items: BTreeMap<i64, Map<'a>>,
    /// False when a slab number did not parse (gomemcache's Stats fails).
    ok: bool,
}

impl<'a> Split<'a> {
    fn new(stats: &Stats<'a>) -> Split<'a> {
        let mut split = Split {
            server: Map::new(),
            slabs: BTreeMap::new(),
            items: BTreeMap::new(),
            ok: true,
        };
        let lines = stats.general.iter().chain(stats.slabs).chain(stats.items);
        for (name, value) in lines {
            let parts: Vec<&str> = name.split(':').collect();
            let (class, slab, field) = match parts[..] {
                [field] => {
                    split.server.insert(field, value);
                    continue;
                }
                [slab, field] => (&mut split.slabs, slab, field),
                [_, slab, field] => (&mut split.items, slab, field),
                _ => continue,
            };
            match slab.parse::<i64>() {
                Ok(slab) => {
                    class.entry(slab).or_default().insert(field, value);
                }
                Err(_) => split.ok = false,
            }
        }
        split
    }
}

/// One family's identity: memcached_exporter's name, help and type.
struct Desc {
    name: &'static str,
    help: &'static str,
    kind: Kind,
}

const fn desc(name: &'static str, kind: Kind, help: &'static str) -> Desc {
    Desc { name, help, kind }
}

/// The families being built, by name, and whether every stat parsed.
struct Out {
    families: BTreeMap<&'static str, Family>,
    ok: bool,
}

impl Default for Out {
    fn default() -> Out {
        Out {
            families: BTreeMap::new(),
            ok: true,
        }
    }
}

impl Out {
    /// Adds a sample; `labels` are written sorted by name, as client_golang
    /// writes them.
    fn push(&mut self, d: &Desc, labels: &[(&str, &str)], value: f64) {
        let family = self.families.entry(d.name).or_insert_with(|| Family {
            name: d.name.to_string(),
            help: d.help.to_string(),
            kind: d.kind,
            samples: Vec::new(),
        });
        // One family, one type: memcached_slab_mem_requested_bytes is a
        // counter from `stats items` and a gauge from `stats slabs`; the
        // first source read keeps it (client_golang would fail the scrape).
        if family.kind != d.kind {
            return;
        }
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|&(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.sort();
        family.samples.push(Sample {
            suffix: "",
            labels,
            value,
        });
    }

    /// parseAndNewMetric: a missing stat is skipped, a bad one fails `up`.
    fn stat(&mut self, d: &Desc, stats: &Map, key: &str, labels: &[(&str, &str)]) {
        self.with(d, stats, key, labels, number);
    }

    fn with(&mut self, d: &Desc, stats: &Map, key: &str, labels: &[(&str, &str)], parse: Parse) {
        let Some(text) = stats.get(key) else { return };
        match parse(text) {
            Some(v) => self.push(d, labels, v),
            None => self.ok = false,
        }
    }

    /// Stats that must all be present and parse (the exporter's `sum` and
    /// its cmd_set), else `up` fails.
    fn sum(&mut self, stats: &Map, keys: &[&str]) -> Option<f64> {
        let sum = keys
            .iter()
            .map(|k| stats.get(k)?.parse::<f64>().ok())
            .sum::<Option<f64>>();
        self.ok &= sum.is_some();
        sum
    }

    /// The families, each one's samples in client_golang's order (by label
    /// values, compared as strings).
    fn finish(self) -> Vec<Family> {
        let mut families: Vec<Family> = self.families.into_values().collect();
        for family in &mut families {
            let values = |s: &Sample| s.labels.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>();
            family.samples.sort_by_key(values);
        }
        families
    }
}

/// How the exporter reads a stat's value.
type Parse = fn(&str) -> Option<f64>;

/// strconv.ParseFloat, near enough: both take decimals, exponents, inf, nan.
fn number(text: &str) -> Option<f64> {
    text.parse().ok()
}

/// The rusage_* timevals: seconds and microseconds around a dot.
fn timeval(text: &str) -> Option<f64> {
    let (seconds, micros) = text.split_once('.')?;
    if micros.contains('.') {
        return None;
    }
    Some(seconds.parse::<f64>().ok()? + micros.parse::<f64>().ok()? / 1e6)
}

fn yes_no(text: &str) -> Option<f64> {
    match text {
        "yes" => Some(1.0),
        "no" => Some(0.0),
        _ => None,
    }
}

const UP: Desc = desc(
    "memcached_up",
    Gauge,
    "Could the memcached server be reached.",
);
const VERSION: Desc = desc(
    "memcached_version",
    Gauge,
    "The version of this memcached server.",
);
const COMMANDS: Desc = desc(
    "memcached_commands_total",
    Counter,
    "Total number of all requests broken down by command (get, set, etc.) and status.",
);
const OPS: [&str; 6] = ["get", "delete", "incr", "decr", "cas", "touch"];

/// `stats` fields read as they are, in exporter.go's order.
#[rustfmt::skip]
const SERVER: &[(&str, Desc)] = &[
    ("uptime", desc("memcached_uptime_seconds", Counter, "Number of seconds since the server started.")),
    ("time", desc("memcached_time_seconds", Gauge, "current UNIX time according to the server.")),
    ("bytes", desc("memcached_current_bytes", Gauge, "Current number of bytes used to store items.")),
    ("limit_maxbytes", desc("memcached_limit_bytes", Gauge, "Number of bytes this server is allowed to use for storage.")),
    ("curr_items", desc("memcached_current_items", Gauge, "Current number of items stored by this instance.")),
    ("total_items", desc("memcached_items_total", Counter, "Total number of items stored during the life of this instance.")),
    ("bytes_read", desc("memcached_read_bytes_total", Counter, "Total number of bytes read by this server from network.")),
    ("bytes_written", desc("memcached_written_bytes_total", Counter, "Total number of bytes sent by this server to network.")),
    ("curr_connections", desc("memcached_current_connections", Gauge, "Current number of open connections.")),
    ("total_connections", desc("memcached_connections_total", Counter, "Total number of connections opened since the server started running.")),
    ("rejected_connections", desc("memcached_connections_rejected_total", Counter, "Total number of connections rejected due to hitting the memcached's -c limit in maxconns_fast mode.")),
    ("conn_yields", desc("memcached_connections_yielded_total", Counter, "Total number of connections yielded running due to hitting the memcached's -R limit.")),
    ("listen_disabled_num", desc("memcached_connections_listener_disabled_total", Counter, "Number of times that memcached has hit its connections limit and disabled its listener.")),
    ("evictions", desc("memcached_items_evicted_total", Counter, "Total number of valid items removed from cache to free memory for new items.")),
    ("reclaimed", desc("memcached_items_reclaimed_total", Counter, "Total number of times an entry was stored using memory from an expired entry.")),
    ("store_too_large", desc("memcached_item_too_large_total", Counter, "The number of times an item exceeded the max-item-size when being stored.")),
    ("store_no_memory", desc("memcached_item_no_memory_total", Counter, "The number of times an item could not be stored due to no more memory.")),
    ("lru_crawler_starts", desc("memcached_lru_crawler_starts_total", Counter, "Times an LRU crawler was started.")),
    ("direct_reclaims", desc("memcached_direct_reclaims_total", Counter, "Times worker threads had to directly reclaim or evict items.")),
    ("crawler_items_checked", desc("memcached_lru_crawler_items_checked_total", Counter, "Total items examined by LRU Crawler.")),
    ("crawler_reclaimed", desc("memcached_lru_crawler_reclaimed_total", Counter, "Total items freed by LRU Crawler.")),
    ("moves_to_cold", desc("memcached_lru_crawler_moves_to_cold_total", Counter, "Total number of items moved from HOT/WARM to COLD LRU's.")),
    ("moves_to_warm", desc("memcached_lru_crawler_moves_to_warm_total", Counter, "Total number of items moved from COLD to WARM LRU.")),
    ("moves_within_lru", desc("memcached_lru_crawler_moves_within_lru_total", Counter, "Total number of items reshuffled within HOT or WARM LRU's.")),
    ("total_malloced", desc("memcached_malloced_bytes", Gauge, "Number of bytes of memory allocated to slab pages.")),
    ("accepting_conns", desc("memcached_accepting_connections", Gauge, "The Memcached server is currently accepting new connections.")),
];

#[rustfmt::skip]
const RUSAGE: &[(&str, Desc)] = &[
    ("rusage_user", desc("memcached_process_user_cpu_seconds_total", Counter, "Accumulated user time for this process.")),
    ("rusage_system", desc("memcached_process_system_cpu_seconds_total", Counter, "Accumulated system time for this process.")),
];

/// Only when memcached runs extstore, which `extstore_limit_maxbytes` shows.
#[rustfmt::skip]
const EXTSTORE: &[(&str, Desc)] = &[
    ("extstore_compact_lost", desc("memcached_extstore_compact_lost_total", Counter, "Total number of items lost because they were locked during extstore compaction.")),
    ("extstore_compact_rescues", desc("memcached_extstore_compact_rescued_total", Counter, "Total number of items moved to a new page during extstore compaction,")),
    ("extstore_compact_skipped", desc("memcached_extstore_compact_skipped_total", Counter, "Total number of items dropped due to inactivity during extstore compaction.")),
    ("extstore_page_allocs", desc("memcached_extstore_pages_allocated_total", Counter, "Total number of times a page was allocated in extstore.")),
    ("extstore_page_evictions", desc("memcached_extstore_pages_evicted_total", Counter, "Total number of times a page was evicted from extstore.")),
    ("extstore_page_reclaims", desc("memcached_extstore_pages_reclaimed_total", Counter, "Total number of times an empty extstore page was freed.")),
    ("extstore_pages_free", desc("memcached_extstore_pages_free", Gauge, "Number of extstore pages not yet containing any items.")),
    ("extstore_pages_used", desc("memcached_extstore_pages_used", Gauge, "Number of extstore pages containing at least one item.")),
    ("extstore_objects_evicted", desc("memcached_extstore_objects_evicted_total", Counter, "Total number of items evicted from extstore to free up space.")),
    ("extstore_objects_read", desc("memcached_extstore_objects_read_total", Counter, "Total number of items read from extstore.")),
    ("extstore_objects_written", desc("memcached_extstore_objects_written_total", Counter, "Total number of items written to extstore.")),
    ("extstore_objects_used", desc("memcached_extstore_objects_used", Gauge, "Number of items stored in extstore.")),
    ("extstore_bytes_evicted", desc("memcached_extstore_bytes_evicted_total", Counter, "Total number of bytes evicted from extstore to free up space.")),
    ("extstore_bytes_written", desc("memcached_extstore_bytes_written_total", Counter, "Total number of bytes written to extstore.")),
    ("extstore_bytes_read", desc("memcached_extstore_bytes_read_total", Counter, "Total number of bytes read from extstore.")),
    // A counter in exporter.go, though it is a level.
    ("extstore_bytes_used", desc("memcached_extstore_bytes_used", Counter, "Current number of bytes used to store items in extstore.")),
    ("extstore_bytes_fragmented", desc("memcached_extstore_bytes_fragmented", Gauge, "Current number of bytes in extstore pages allocated but not used to store an object.")),
    ("extstore_limit_maxbytes", desc("memcached_extstore_bytes_limit", Gauge, "Number of bytes of external storage allocated for this server.")),
    ("extstore_io_queue", desc("memcached_extstore_io_queue_depth", Gauge, "Number of items in the I/O queue waiting to be processed.")),
];

/// Only in proxy mode, which `proxy_backend_total` shows; 1.6.18 prints
/// round_robin_fallback and unexpected_napi_ids without it, and the
/// exporter leaves them out then.
#[rustfmt::skip]
const PROXY: &[(&str, Desc)] = &[
    ("proxy_conn_requests", desc("memcached_proxy_conn_requests_total", Counter, "Total number of times the proxy opened a backend connection.")),
    ("proxy_conn_errors", desc("memcached_proxy_conn_errors_total", Counter, "Total number of backend connection errors in proxy mode.")),
    ("proxy_conn_oom", desc("memcached_proxy_conn_oom_total", Counter, "Total number of times the proxy ran out of memory allocating a connection.")),
    ("proxy_req_active", desc("memcached_proxy_req_active", Gauge, "Number of in-flight requests currently forwarded by the proxy.")),
    ("proxy_config_reloads", desc("memcached_proxy_config_reloads_total", Counter, "Total attempts to reload the proxy configuration.")),
    ("proxy_config_reload_fails", desc("memcached_proxy_config_reload_fails_total", Counter, "Total failed attempts to reload the proxy configuration.")),
    ("proxy_config_cron_runs", desc("memcached_proxy_config_cron_runs_total", Counter, "Total times the proxy’s Lua cron hooks have run.")),
    ("proxy_config_cron_fails", desc("memcached_proxy_config_cron_fails_total", Counter, "Total errors from the proxy’s Lua cron hooks.")),
    ("proxy_backend_total", desc("memcached_proxy_backend_total", Gauge, "Number of backend servers configured in proxy mode.")),
    ("proxy_backend_marked_bad", desc("memcached_proxy_backend_marked_bad_total", Counter, "Total times a backend was marked unhealthy by the proxy.")),
    ("proxy_backend_failed", desc("memcached_proxy_backend_failed", Gauge, "Number of backends currently in a failed state.")),
    ("proxy_request_failed_depth", desc("memcached_proxy_request_failed_depth_total", Counter, "Total requests dropped due to backend depth limits.")),
    ("round_robin_fallback", desc("memcached_round_robin_fallback_total", Counter, "Total times the proxy fell back to round-robin routing.")),
    ("unexpected_napi_ids", desc("memcached_unexpected_napi_ids_total", Counter, "Total unexpected internal event-loop IDs seen by the proxy.")),
];

fn server(out: &mut Out, s: &Map) {
    let version = s.get("version").copied().unwrap_or_default();
    out.push(&VERSION, &[("version", version)], 1.0);
    for op in OPS {
        for (suffix, status) in [("_hits", "hit"), ("_misses", "miss")] {
            let labels = [("command", op), ("status", status)];
            out.stat(&COMMANDS, s, &format!("{op}{suffix}"), &labels);
        }
    }
    out.stat(
        &COMMANDS,
        s,
        "cas_badval",
        &[("command", "cas"), ("status", "badval")],
    );
    out.stat(
        &COMMANDS,
        s,
        "cmd_flush",
        &[("command", "flush"), ("status", "hit")],
    );
    // cmd_set counts cas commands too, whatever their outcome.
    let set = out.sum(s, &["cmd_set"]);
    let cas = set.and_then(|_| out.sum(s, &["cas_misses", "cas_hits", "cas_badval"]));
    if let (Some(set), Some(cas)) = (set, cas) {
        out.push(
            &COMMANDS,
            &[("command", "set"), ("status", "hit")],
            set - cas,
        );
    }
    let gated = [
        ("extstore_limit_maxbytes", EXTSTORE),
        ("proxy_backend_total", PROXY),
    ];
    for (sign, table) in gated {
        if s.contains_key(sign) {
            table.iter().for_each(|(key, d)| out.stat(d, s, key, &[]));
        }
    }
    for (key, d) in RUSAGE {
        out.with(d, s, key, &[], timeval);
    }
    for (key, d) in SERVER {
        out.stat(d, s, key, &[]);
    }
}

const SLAB_ITEMS: Desc = desc(
    "memcached_slab_current_items",
    Gauge,
    "Number of items currently stored in this slab class.",
);
const SLAB_AGE: Desc = desc(
    "memcached_slab_items_age_seconds",
    Gauge,
    "Number of seconds the oldest item has been in the slab class.",
);
const LRU_HITS: Desc = desc(
    "memcached_slab_lru_hits_total",
    Counter,
    "Number of get_hits to the LRU.",
);
const MEM_REQUESTED: &str = "memcached_slab_mem_requested_bytes";
const MEM_REQUESTED_HELP: &str = "Number of bytes of memory actual items take up within a slab.";

/// `stats items` fields read as they are. exporter.go's table also maps
/// store_too_large and store_no_memory, which `stats items` never prints.
#[rustfmt::skip]
const ITEM_FIELDS: &[(&str, Desc)] = &[
    ("crawler_reclaimed", desc("memcached_slab_items_crawler_reclaimed_total", Counter, "Number of items freed by the LRU Crawler.")),
    ("evicted", desc("memcached_slab_items_evicted_total", Counter, "Total number of times an item had to be evicted from the LRU before it expired.")),
    ("evicted_nonzero", desc("memcached_slab_items_evicted_nonzero_total", Counter, "Total number of times an item which had an explicit expire time set had to be evicted from the LRU before it expired.")),
    ("evicted_time", desc("memcached_slab_items_evicted_time_seconds", Counter, "Seconds since the last access for the most recent item evicted from this class.")),
    ("evicted_unfetched", desc("memcached_slab_items_evicted_unfetched_total", Counter, "Total nmber of items evicted and never fetched.")),
    ("expired_unfetched", desc("memcached_slab_items_expired_unfetched_total", Counter, "Total number of valid items evicted from the LRU which were never touched after being set.")),
    ("outofmemory", desc("memcached_slab_items_outofmemory_total", Counter, "Total number of items for this slab class that have triggered an out of memory error.")),
    ("reclaimed", desc("memcached_slab_items_reclaimed_total", Counter, "Total number of items reclaimed.")),
    ("tailrepairs", desc("memcached_slab_items_tailrepairs_total", Counter, "Total number of times the entries for a particular ID need repairing.")),
    ("mem_requested", desc(MEM_REQUESTED, Counter, MEM_REQUESTED_HELP)),
    ("moves_to_cold", desc("memcached_slab_items_moves_to_cold", Counter, "Number of items moved from HOT or WARM into COLD.")),
    ("moves_to_warm", desc("memcached_slab_items_moves_to_warm", Counter, "Number of items moves from COLD into WARM.")),
    ("moves_within_lru", desc("memcached_slab_items_moves_within_lru", Counter, "Number of times active items were bumped within HOT or WARM.")),
    ("number_hot", desc("memcached_slab_hot_items", Gauge, "Number of items presently stored in the HOT LRU.")),
    ("number_warm", desc("memcached_slab_warm_items", Gauge, "Number of items presently stored in the WARM LRU.")),
    ("number_cold", desc("memcached_slab_cold_items", Gauge, "Number of items presently stored in the COLD LRU.")),
    ("number_temp", desc("memcached_slab_temporary_items", Gauge, "Number of items presently stored in the TEMPORARY LRU.")),
    ("age_hot", desc("memcached_slab_hot_age_seconds", Gauge, "Age of the oldest item in HOT LRU.")),
    // exporter.go's help says HOT here too.
    ("age_warm", desc("memcached_slab_warm_age_seconds", Gauge, "Age of the oldest item in HOT LRU.")),
];

fn item_class(out: &mut Out, slab: &str, u: &Map) {
    out.stat(&SLAB_ITEMS, u, "number", &[("slab", slab)]);
    out.stat(&SLAB_AGE, u, "age", &[("slab", slab)]);
    for lru in ["hot", "warm", "cold", "temp"] {
        let name = if lru == "temp" { "temporary" } else { lru };
        out.stat(
            &LRU_HITS,
            u,
            &format!("hits_to_{lru}"),
            &[("slab", slab), ("lru", name)],
        );
    }
    for (key, d) in ITEM_FIELDS {
        out.stat(d, u, key, &[("slab", slab)]);
    }
}

const SLAB_COMMANDS: Desc = desc(
    "memcached_slab_commands_total",
    Counter,
    "Total number of all requests broken down by command (get, set, etc.) and status per slab.",
);

/// `stats slabs` fields read as they are (memcached_exporter's
/// --collector.slab, on by default).
#[rustfmt::skip]
const SLAB_FIELDS: &[(&str, Desc)] = &[
    ("chunk_size", desc("memcached_slab_chunk_size_bytes", Gauge, "Number of bytes allocated to each chunk within this slab class.")),
    ("chunks_per_page", desc("memcached_slab_chunks_per_page", Gauge, "Number of chunks within a single page for this slab class.")),
    ("total_pages", desc("memcached_slab_current_pages", Gauge, "Number of pages allocated to this slab class.")),
    ("total_chunks", desc("memcached_slab_current_chunks", Gauge, "Number of chunks allocated to this slab class.")),
    ("used_chunks", desc("memcached_slab_chunks_used", Gauge, "Number of chunks allocated to an item.")),
    ("free_chunks", desc("memcached_slab_chunks_free", Gauge, "Number of chunks not yet allocated items.")),
    ("free_chunks_end", desc("memcached_slab_chunks_free_end", Gauge, "Number of free chunks at the end of the last allocated page.")),
    ("mem_requested", desc(MEM_REQUESTED, Gauge, MEM_REQUESTED_HELP)),
];

fn slab_class(out: &mut Out, slab: &str, v: &Map) {
    for op in OPS {
        let labels = [("slab", slab), ("command", op), ("status", "hit")];
        out.stat(&SLAB_COMMANDS, v, &format!("{op}_hits"), &labels);
    }
    let badval = [("slab", slab), ("command", "cas"), ("status", "badval")];
    out.stat(&SLAB_COMMANDS, v, "cas_badval", &badval);
    // A slab class has no cas misses: they find no item to count under.
    let set = out.sum(v, &["cmd_set"]);
    let cas = set.and_then(|_| out.sum(v, &["cas_hits", "cas_badval"]));
    if let (Some(set), Some(cas)) = (set, cas) {
        let labels = [("slab", slab), ("command", "set"), ("status", "hit")];
        out.push(&SLAB_COMMANDS, &labels, set - cas);
    }
    for (key, d) in SLAB_FIELDS {
        out.stat(d, v, key, &[("slab", slab)]);
    }
}

const MAX_CONNECTIONS: Desc = desc(
    "memcached_max_connections",
    Gauge,
    "Maximum number of clients allowed.",
);

/// `stats settings` fields, read only while the LRU crawler is on.
#[rustfmt::skip]
const LRU_SETTINGS: &[(&str, Desc, Parse)] = &[
    ("lru_crawler", desc("memcached_lru_crawler_enabled", Gauge, "Whether the LRU crawler is enabled."), yes_no),
    ("lru_crawler_sleep", desc("memcached_lru_crawler_sleep", Gauge, "Microseconds to sleep between LRU crawls."), number),
    ("lru_crawler_tocrawl", desc("memcached_lru_crawler_to_crawl", Gauge, "Max items to crawl per slab per run."), number),
    ("lru_maintainer_thread", desc("memcached_lru_crawler_maintainer_thread", Gauge, "Split LRU mode and background threads."), yes_no),
    ("hot_lru_pct", desc("memcached_lru_crawler_hot_percent", Gauge, "Percent of slab memory reserved for HOT LRU."), number),
    ("warm_lru_pct", desc("memcached_lru_crawler_warm_percent", Gauge, "Percent of slab memory reserved for WARM LRU."), number),
    ("hot_max_factor", desc("memcached_lru_crawler_hot_max_factor", Gauge, "Set idle age of HOT LRU to COLD age * this"), number),
    ("warm_max_factor", desc("memcached_lru_crawler_warm_max_factor", Gauge, "Set idle age of WARM LRU to COLD age * this"), number),
];

fn server_settings(out: &mut Out, settings: &Map) {
    out.stat(&MAX_CONNECTIONS, settings, "maxconns", &[]);
    if settings.get("lru_crawler") == Some(&"yes") {
        for (key, d, parse) in LRU_SETTINGS {
            out.with(d, settings, key, &[], *parse);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::expo::grammar::parse;
    use super::super::expo::{render, Format};
    use super::*;

    const FIXTURE: &str = include_str!("../../../tests/data/memcached-1.6.18-stats.txt");
    const LIST: &str = include_str!("../../../tests/data/memcached_exporter_metrics.txt");

    /// The fixture's four sections, by header (`[stats items]`).
    fn fixture() -> HashMap<String, Vec<(String, String)>> {
        let mut sections: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let mut current = String::new();
        for line in FIXTURE
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = header.to_string();
                continue;
            }
            let (name, value) = line.split_once(' ').unwrap_or((line, ""));
            let pair = (name.to_string(), value.to_string());
            sections.entry(current.clone()).or_default().push(pair);
        }
        sections
    }

    fn families_of(sections: &HashMap<String, Vec<(String, String)>>) -> Vec<Family> {
        families(&Stats {
            general: &sections["stats"],
            settings: &sections["stats settings"],
            items: &sections["stats items"],
            slabs: &sections["stats slabs"],
        })
    }

    /// One line of the list: name, type, label names, source group, fields,
    /// and whether a default memcached yields it.
    struct Listed {
        name: String,
        kind: Kind,
        labels: Vec<String>,
        group: String,
        fields: Vec<String>,
        conditional: bool,
    }

    fn list() -> Vec<Listed> {
        let lines = LIST
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        lines
            .map(|line| {
                let words: Vec<&str> = line.split(' ').collect();
                assert!(matches!(words.len(), 4 | 5), "{line}");
                let (group, fields) = words[3].split_once(':').expect(line);
                Listed {
                    name: words[0].to_string(),
                    kind: match words[1] {
                        "counter" => Kind::Counter,
                        "gauge" => Kind::Gauge,
                        other => panic!("type {other} in {line}"),
                    },
                    labels: match words[2] {
                        "-" => vec![],
                        l => l.split(',').map(String::from).collect(),
                    },
                    group: group.to_string(),
                    fields: fields.split(',').map(String::from).collect(),
                    conditional: words.len() == 5,
                }
            })
            .collect()
    }

    fn find<'a>(families: &'a [Family], name: &str) -> &'a Family {
        let found = families.iter().find(|f| f.name == name);
        found.unwrap_or_else(|| panic!("no family {name}"))
    }

    /// The value of the sample with exactly these labels.
    fn value(families: &[Family], name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        want.sort();
        let family = find(families, name);
        let sample = family.samples.iter().find(|s| s.labels == want);
        sample
            .unwrap_or_else(|| panic!("no {name}{labels:?}"))
            .value
    }

    /// Every family a list entry says exists, with its type and labels.
    fn check_listed(families: &[Family], listed: &Listed) {
        let family = find(families, &listed.name);
        assert_eq!(family.kind, listed.kind, "{}", listed.name);
        let mut want = listed.labels.clone();
        want.sort();
        for sample in &family.samples {
            let names: Vec<&String> = sample.labels.iter().map(|(k, _)| k).collect();
            assert_eq!(names, want.iter().collect::<Vec<_>>(), "{}", listed.name);
        }
    }

    #[test]
    fn the_list_has_every_family_of_exporter_go() {
        let list = list();
        assert_eq!(list.len(), 103);
        let count = |g: &str| list.iter().filter(|l| l.group == g).count();
        assert_eq!((count("extstore"), count("proxy")), (19, 14));
        let mut names: Vec<&str> = list.iter().map(|l| l.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), list.len(), "a family listed twice");
    }

    #[test]
    fn memcached_1_6_18_yields_every_listed_family_and_no_other() {
        let families = families_of(&fixture());
        let list = list();
        let expected: Vec<&Listed> = list
            .iter()
            .filter(|l| !["extstore", "proxy"].contains(&l.group.as_str()) && !l.conditional)
            .collect();
        for listed in &expected {
            check_listed(&families, listed);
        }
        let mut got: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
        let mut want: Vec<&str> = expected.iter().map(|l| l.name.as_str()).collect();
        want.sort();
        got.sort();
        assert_eq!(got, want);
    }

    /// extstore, proxy and temp_lru families appear once their stats do.
    #[test]
    fn every_listed_family_appears_when_its_stats_do() {
        let mut sections = fixture();
        for listed in list() {
            let section = match listed.group.as_str() {
                "extstore" | "proxy" => "stats",
                "items" => "stats items",
                _ => continue,
            };
            for field in &listed.fields {
                let name = match section {
                    "stats items" => format!("items:1:{field}"),
                    _ => field.clone(),
                };
                sections.get_mut(section).unwrap().push((name, "7".into()));
            }
        }
        let families = families_of(&sections);
        for listed in list() {
            check_listed(&families, &listed);
        }
        assert_eq!(families.len(), list().len());
        assert_eq!(value(&families, "memcached_extstore_bytes_limit", &[]), 7.0);
        assert_eq!(
            value(&families, "memcached_round_robin_fallback_total", &[]),
            7.0
        );
        assert_eq!(
            value(
                &families,
                "memcached_slab_temporary_items",
                &[("slab", "1")]
            ),
            7.0
        );
    }

    #[test]
    fn values_are_computed_as_exporter_go_computes_them() {
        let f = families_of(&fixture());
        let cmd = |c: &str, s: &str| {
            value(
                &f,
                "memcached_commands_total",
                &[("command", c), ("status", s)],
            )
        };
        assert_eq!((cmd("get", "hit"), cmd("get", "miss")), (11.0, 5.0));
        assert_eq!((cmd("delete", "hit"), cmd("delete", "miss")), (1.0, 1.0));
        assert_eq!(
            (cmd("cas", "hit"), cmd("cas", "miss"), cmd("cas", "badval")),
            (1.0, 1.0, 1.0)
        );
        assert_eq!((cmd("touch", "hit"), cmd("flush", "hit")), (1.0, 0.0));
        assert_eq!(cmd("set", "hit"), 26.0 - 3.0);
        assert_eq!(find(&f, "memcached_commands_total").samples.len(), 15);
        assert_eq!(value(&f, "memcached_up", &[]), 1.0);
        assert_eq!(
            value(&f, "memcached_version", &[("version", "1.6.18")]),
            1.0
        );
        assert_eq!(value(&f, "memcached_current_bytes", &[]), 8237.0);
        assert_eq!(value(&f, "memcached_limit_bytes", &[]), 67108864.0);
        assert_eq!(value(&f, "memcached_malloced_bytes", &[]), 7340032.0);
        assert_eq!(value(&f, "memcached_max_connections", &[]), 1024.0);
        assert_eq!(
            value(&f, "memcached_process_user_cpu_seconds_total", &[]),
            0.003752
        );
        assert_eq!(value(&f, "memcached_uptime_seconds", &[]), 20.0);
        assert_eq!(value(&f, "memcached_lru_crawler_enabled", &[]), 1.0);
        assert_eq!(
            value(&f, "memcached_lru_crawler_maintainer_thread", &[]),
            1.0
        );
        assert_eq!(value(&f, "memcached_lru_crawler_hot_max_factor", &[]), 0.2);
        let slab = |name: &str, s: &str| value(&f, name, &[("slab", s)]);
        assert_eq!(slab("memcached_slab_chunk_size_bytes", "1"), 96.0);
        assert_eq!(slab("memcached_slab_chunk_size_bytes", "19"), 5680.0);
        assert_eq!(slab("memcached_slab_chunks_per_page", "2"), 8738.0);
        assert_eq!(slab("memcached_slab_current_items", "5"), 5.0);
        assert_eq!(slab("memcached_slab_mem_requested_bytes", "19"), 5062.0);
        assert_eq!(find(&f, "memcached_slab_chunk_size_bytes").samples.len(), 7);
        let lru = |s: &str, l: &str| {
            value(
                &f,
                "memcached_slab_lru_hits_total",
                &[("slab", s), ("lru", l)],
            )
        };
        assert_eq!(
            (lru("1", "hot"), lru("3", "hot"), lru("1", "temporary")),
            (5.0, 4.0, 0.0)
        );
        let scmd = |s: &str, c: &str, st: &str| {
            value(
                &f,
                "memcached_slab_commands_total",
                &[("slab", s), ("command", c), ("status", st)],
            )
        };
        assert_eq!(
            (scmd("1", "set", "hit"), scmd("1", "cas", "badval")),
            (9.0 - 2.0, 1.0)
        );
        assert_eq!(scmd("1", "get", "hit"), 5.0);
    }

    #[test]
    fn samples_are_in_client_golang_order() {
        let f = families_of(&fixture());
        let chunk = find(&f, "memcached_slab_chunk_size_bytes");
        let slabs: Vec<&str> = chunk
            .samples
            .iter()
            .map(|s| s.labels[0].1.as_str())
            .collect();
        assert_eq!(slabs, ["1", "19", "2", "3", "4", "5", "6"]);
        let lru = &find(&f, "memcached_slab_lru_hits_total").samples[0];
        assert_eq!(
            lru.labels,
            [("lru".into(), "cold".into()), ("slab".into(), "1".into())]
        );
        let mut names: Vec<&str> = f.iter().map(|f| f.name.as_str()).collect();
        let sorted = names.clone();
        names.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn a_stat_that_does_not_parse_fails_up_and_is_left_out() {
        let mut sections = fixture();
        let general = sections.get_mut("stats").unwrap();
        general.iter_mut().find(|(k, _)| k == "bytes").unwrap().1 = "12x".into();
        let f = families_of(&sections);
        assert_eq!(value(&f, "memcached_up", &[]), 0.0);
        assert!(f.iter().all(|f| f.name != "memcached_current_bytes"));
        assert_eq!(value(&f, "memcached_limit_bytes", &[]), 67108864.0);
    }

    #[test]
    fn a_missing_cmd_set_fails_up_but_a_missing_stat_does_not() {
        let mut sections = fixture();
        sections
            .get_mut("stats")
            .unwrap()
            .retain(|(k, _)| k != "evictions");
        assert_eq!(value(&families_of(&sections), "memcached_up", &[]), 1.0);
        sections
            .get_mut("stats")
            .unwrap()
            .retain(|(k, _)| k != "cmd_set");
        let f = families_of(&sections);
        assert_eq!(value(&f, "memcached_up", &[]), 0.0);
        assert!(f.iter().all(|f| f.name != "memcached_items_evicted_total"));
        assert_eq!(find(&f, "memcached_commands_total").samples.len(), 14);
    }

    #[test]
    fn lru_settings_need_the_crawler_on() {
        let mut sections = fixture();
        let settings = sections.get_mut("stats settings").unwrap();
        settings
            .iter_mut()
            .find(|(k, _)| k == "lru_crawler")
            .unwrap()
            .1 = "no".into();
        let f = families_of(&sections);
        assert!(f
            .iter()
            .all(|f| !f.name.starts_with("memcached_lru_crawler_") || f.name.ends_with("_total")));
        assert_eq!(value(&f, "memcached_max_connections", &[]), 1024.0);
    }

    #[test]
    fn mem_requested_from_stats_slabs_is_a_gauge_when_items_lack_it() {
        let mut sections = fixture();
        sections
            .get_mut("stats items")
            .unwrap()
            .retain(|(k, _)| !k.ends_with(":mem_requested"));
        let slabs = sections.get_mut("stats slabs").unwrap();
        slabs.push(("1:mem_requested".into(), "333".into()));
        let f = families_of(&sections);
        let family = find(&f, MEM_REQUESTED);
        assert_eq!((family.kind, family.samples.len()), (Kind::Gauge, 1));
        // Both sources: the items' counter, once per slab.
        let mut sections = fixture();
        sections
            .get_mut("stats slabs")
            .unwrap()
            .push(("1:mem_requested".into(), "1".into()));
        let f = families_of(&sections);
        let family = find(&f, MEM_REQUESTED);
        assert_eq!((family.kind, family.samples.len()), (Kind::Counter, 7));
        assert_eq!(value(&f, MEM_REQUESTED, &[("slab", "1")]), 333.0);
    }

    #[test]
    fn the_fixture_renders_in_both_formats() {
        let f = families_of(&fixture());
        for format in [Format::Text, Format::OpenMetrics] {
            let text = render(&f, format);
            let parsed = parse(&text, format).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(parsed.len(), f.len());
        }
        let text = render(&f, Format::Text);
        assert!(text.contains("\nmemcached_commands_total{command=\"get\",status=\"hit\"} 11\n"));
        assert!(text.contains("\nmemcached_slab_chunk_size_bytes{slab=\"19\"} 5680\n"));
        assert!(text.contains("\nmemcached_version{version=\"1.6.18\"} 1\n"));
    }
}
