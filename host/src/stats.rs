//! Server statistics in memcached's names.
//!
//! Each worker owns one [`ThreadStats`](crate::counters::ThreadStats) and is its only writer, so counting on
//! the request path is an uncontended relaxed add; `stats` sums all threads.
//! Item statistics come from the shards (the plugin) and are combined by
//! name, or by the type the plugin declares for a line
//! ([`Aggregate`], docs/plugin-abi.md "Stats").
//!
//! The groups memcached has (`stats`, `stats conns`, `stats items`, `stats
//! slabs`, `stats sizes`) print exactly memcached 1.6.18's names in its
//! order; wasmcached's own figures (plugin faults, reloads, shards, and the
//! plugin's stats that are not memcached's) are `stats plugin`, and each
//! shard's plugin stats, uncombined, `stats shards`.

use crate::clock;
use crate::conn::ConnState;
use crate::counters::SSL_HANDSHAKE_ERRORS;
use crate::plugin::Shard;
use crate::reply::Aggregate;
use crate::shared::Shared;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmcached_abi::stats_group;

/// A `stats` group that is wasmcached's own: `stats plugin`. Its shards are
/// asked for their general stats; the names that are not memcached's show here.
pub const PLUGIN_GROUP: i32 = -1;

/// wasmcached's `stats shards`: every shard's general stats and metrics,
/// uncombined, as `shard:<N>:<name>`. The shards themselves are asked for
/// this group ([`Shard::stats`] names each line after its shard, so that
/// combining by name keeps them apart).
pub const SHARDS_GROUP: i32 = Shard::STATS_BY_SHARD;

/// `stats reset`, as far as the shards go: each remembers its plugin's
/// counters, so that `stats` shows them from zero ([`Shard::STATS_RESET`]).
/// The answer has no lines.
pub const RESET_GROUP: i32 = Shard::STATS_RESET;

/// The lines of a finished shard stats fan-out for `group` (text and binary
/// protocol alike).
pub fn finish(shared: &Shared, group: i32, agg: &mut Aggregate) -> Vec<(String, String)> {
    match group {
        stats_group::GENERAL => general(shared, agg),
        PLUGIN_GROUP => plugin(shared, agg),
        SHARDS_GROUP => by_shard(agg.drain()),
        stats_group::SIZES => {
            let lines = agg.drain();
            if !shared.live.track_sizes() {
                // memcached without -o track_sizes or `stats sizes_enable`.
                vec![("sizes_status".into(), "disabled".into())]
            } else {
                // Smallest size first, as memcached prints them (the shards'
                // lines interleave); an empty histogram is END alone.
                let mut lines = lines;
                lines.sort_by_key(|(size, _)| size.parse::<u64>().unwrap_or(u64::MAX));
                lines
            }
        }
        stats_group::ITEMS => items(shared, by_class(agg.drain())),
        stats_group::SLABS => slabs(by_class(agg.drain())),
        _ => agg.drain(),
    }
}

/// `stats shards`: the shards answer in any order (each on its own
/// worker); shown in shard order, each shard's lines in its own order.
fn by_shard(mut lines: Vec<(String, String)>) -> Vec<(String, String)> {
    let shard = |name: &str| -> Option<u32> {
        name.strip_prefix("shard:")?.split_once(':')?.0.parse().ok()
    };
    lines.sort_by_key(|(name, _)| shard(name).unwrap_or(u32::MAX));
    lines
}

/// The class of a per-class line (`items:N:name` or `N:name`).
fn class_of(name: &str) -> Option<u32> {
    let name = name.strip_prefix("items:").unwrap_or(name);
    name.split_once(':')?.0.parse().ok()
}

/// Shards list their own classes: the merged lines go back to class order
/// (each class's names in the order its first shard gave them), the lines
/// of no class last, as memcached prints them.
fn by_class(mut lines: Vec<(String, String)>) -> Vec<(String, String)> {
    lines.sort_by_key(|(name, _)| class_of(name).unwrap_or(u32::MAX));
    lines
}

/// `stats slabs` summed over shards: a plugin may report a class's
/// `total_chunks` without rounding to whole pages (the default store
/// reports the most chunks it needed), so that the shards' chunks add up
/// before they are rounded up to memcached's pages; `total_pages`,
/// `free_chunks` and `active_slabs` are then those of the sum.
fn slabs(mut lines: Vec<(String, String)>) -> Vec<(String, String)> {
    let num = |lines: &[(String, String)], name: &str| {
        lines
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.parse::<u64>().ok())
    };
    let classes: std::collections::BTreeSet<u32> =
        lines.iter().filter_map(|(n, _)| class_of(n)).collect();
    let mut active = 0;
    for c in &classes {
        let (Some(per), Some(chunks)) = (
            num(&lines, &format!("{c}:chunks_per_page")),
            num(&lines, &format!("{c}:total_chunks")),
        ) else {
            continue;
        };
        let pages = chunks.div_ceil(per.max(1));
        let used = num(&lines, &format!("{c}:used_chunks")).unwrap_or(0);
        if pages > 0 {
            active += 1;
        }
        for (name, value) in lines.iter_mut() {
            match name.split_once(':') {
                Some((n, field)) if n == c.to_string() => match field {
                    "total_pages" => *value = pages.to_string(),
                    "total_chunks" => *value = (pages * per).to_string(),
                    "free_chunks" => *value = (pages * per).saturating_sub(used).to_string(),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    if !classes.is_empty() {
        for (name, value) in lines.iter_mut() {
            if name == "active_slabs" {
                *value = active.to_string();
            }
        }
    }
    lines
}

/// `stats items`: the plugin's per-class lines, with the names memcached
/// prints only under a setting kept or dropped as it does: the segment
/// counts and ages with the segmented LRU (`number_temp` also with
/// `-o temporary_ttl`), the maintainer's figures with the LRU maintainer.
fn items(shared: &Shared, lines: Vec<(String, String)>) -> Vec<(String, String)> {
    let k = &shared.settings.knobs;
    let mut out = Vec::with_capacity(lines.len());
    let temp = k.lru_segmented && k.temp_lru;
    let has_temp = lines.iter().any(|(n, _)| n.ends_with(":number_temp"));
    for (name, value) in lines {
        let field = name.rsplit(':').next().unwrap_or("");
        let shown = match field {
            "number_hot" | "number_warm" | "number_cold" | "age_hot" | "age_warm" => {
                k.lru_segmented
            }
            "number_temp" => temp,
            "evicted_active" | "moves_to_cold" | "moves_to_warm" | "moves_within_lru"
            | "direct_reclaims" | "hits_to_hot" | "hits_to_warm" | "hits_to_cold"
            | "hits_to_temp" => k.lru_maintainer,
            _ => true,
        };
        if !shown {
            continue;
        }
        if temp && !has_temp && field == "number_cold" {
            // A store without a TEMP segment holds no item there.
            let temp_name = name.replace(":number_cold", ":number_temp");
            out.push((name, value));
            out.push((temp_name, "0".into()));
        } else {
            out.push((name, value));
        }
    }
    out
}

/// memcached 1.6.18's general stats, in its order: every name `stats` may
/// print (some only under a setting, see [`general`]). Names the plugin
/// reports that are not in this list are `stats plugin`'s.
pub const MEMCACHED_GENERAL: &[&str] = &[
    "pid",
    "uptime",
    "time",
    "version",
    "libevent",
    "pointer_size",
    "rusage_user",
    "rusage_system",
    "max_connections",
    "curr_connections",
    "total_connections",
    "rejected_connections",
    "connection_structures",
    "response_obj_oom",
    "response_obj_count",
    "response_obj_bytes",
    "read_buf_count",
    "read_buf_bytes",
    "read_buf_bytes_free",
    "read_buf_oom",
    "reserved_fds",
    "cmd_get",
    "cmd_set",
    "cmd_flush",
    "cmd_touch",
    "cmd_meta",
    "get_hits",
    "get_misses",
    "get_expired",
    "get_flushed",
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
    "auth_cmds",
    "auth_errors",
    "idle_kicks",
    "bytes_read",
    "bytes_written",
    "limit_maxbytes",
    "accepting_conns",
    "listen_disabled_num",
    "time_in_listen_disabled_us",
    "threads",
    "conn_yields",
    "hash_power_level",
    "hash_bytes",
    "hash_is_expanding",
    "slab_reassign_rescues",
    "slab_reassign_chunk_rescues",
    "slab_reassign_evictions_nomem",
    "slab_reassign_inline_reclaim",
    "slab_reassign_busy_items",
    "slab_reassign_busy_deletes",
    "slab_reassign_running",
    "slabs_moved",
    "lru_crawler_running",
    "lru_crawler_starts",
    "lru_maintainer_juggles",
    "malloc_fails",
    "log_worker_dropped",
    "log_worker_written",
    "log_watcher_skipped",
    "log_watcher_sent",
    "log_watchers",
    "ssl_handshake_errors",
    "time_since_server_cert_refresh",
    "unexpected_napi_ids",
    "round_robin_fallback",
    "bytes",
    "curr_items",
    "total_items",
    "slab_global_page_pool",
    "expired_unfetched",
    "evicted_unfetched",
    "evicted_active",
    "evictions",
    "reclaimed",
    "crawler_reclaimed",
    "crawler_items_checked",
    "lrutail_reflocked",
    "moves_to_cold",
    "moves_to_warm",
    "moves_within_lru",
    "direct_reclaims",
    "lru_bumps_dropped",
];

/// Which of memcached's optional general stats show: memcached prints some
/// only under a setting (`-o no_maxconns_fast`, `idle_timeout`,
/// `no_slab_reassign`, `no_lru_crawler`, `no_lru_maintainer`, `-Z`).
struct Shown {
    rejected_connections: bool,
    idle_kicks: bool,
    slab_reassign: bool,
    lru_crawler: bool,
    lru_maintainer: bool,
    ssl: bool,
}

impl Shown {
    /// Whether memcached prints `name` under these settings.
    fn shows(&self, name: &str) -> bool {
        match name {
            "rejected_connections" => self.rejected_connections,
            "idle_kicks" => self.idle_kicks,
            "slabs_moved" => self.slab_reassign,
            n if n.starts_with("slab_reassign_") => self.slab_reassign,
            "lru_crawler_running" | "lru_crawler_starts" => self.lru_crawler,
            "lru_maintainer_juggles"
            | "evicted_active"
            | "moves_to_cold"
            | "moves_to_warm"
            | "moves_within_lru"
            | "direct_reclaims"
            | "lru_bumps_dropped" => self.lru_maintainer,
            "ssl_handshake_errors" | "time_since_server_cert_refresh" => self.ssl,
            _ => true,
        }
    }
}

fn shown(shared: &Shared) -> Shown {
    let s = &shared.settings;
    Shown {
        rejected_connections: s.maxconns_fast,
        idle_kicks: s.idle_timeout > 0,
        slab_reassign: s.knobs.slab_reassign,
        lru_crawler: shared.live.lru_crawler(),
        lru_maintainer: s.knobs.lru_maintainer,
        ssl: s.tls.is_some(),
    }
}

/// Connections' buffers over every connection (`read_buf_*`,
/// `response_obj_*`): (read buffers, their bytes, write buffers, their bytes).
fn buffers(shared: &Shared) -> (u64, u64, u64, u64) {
    let reg = shared
        .conn_registry
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let (mut rn, mut rb, mut wn, mut wb) = (0, 0, 0, 0);
    for c in reg.values() {
        let r = c.bufs.rbuf.load(Ordering::Relaxed) as u64;
        let w = c.bufs.wbuf.load(Ordering::Relaxed) as u64;
        rn += u64::from(r > 0);
        rb += r;
        wn += u64::from(w > 0);
        wb += w;
    }
    (rn, rb, wn, wb)
}

/// memcached's `reserved_fds`: descriptors the server holds for other things
/// than connections. On Linux they are counted: every open descriptor that
/// `stats conns` does not list (the reactors' epoll, eventfd and timerfd,
/// the signal pipe, plugin memory images, …), stdin, stdout and stderr
/// aside. Elsewhere memcached's figure of 5 per worker thread.
fn reserved_fds(shared: &Shared) -> u64 {
    #[cfg(target_os = "linux")]
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        // The listing includes the descriptor read_dir itself holds.
        let open = dir.count() as u64;
        let conns = shared
            .conn_registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len() as u64;
        return open.saturating_sub(1 + 3 + conns);
    }
    5 * shared.settings.threads as u64
}

/// `stats` (general): memcached's names in memcached's order, with the
/// shards' item statistics placed where memcached shows them. Other names
/// the plugin reports are left in `agg` (they belong to `stats plugin`).
pub fn general(shared: &Shared, agg: &mut Aggregate) -> Vec<(String, String)> {
    let mut t = BTreeMap::new();
    for th in &shared.threads {
        th.add_into(&mut t);
    }
    let show = shown(shared);
    let now = clock::now();
    let (user, system) = rusage();
    let conns = &shared.conns;
    let (rbufs, rbytes, wbufs, wbytes) = buffers(shared);
    let watch = crate::watch::counters();
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
    let mut out: Vec<(String, String)> = Vec::with_capacity(MEMCACHED_GENERAL.len());
    for &name in MEMCACHED_GENERAL {
        // memcached's names are never the plugin's own (`stats plugin`),
        // shown or not.
        let from_plugin = agg.take(name);
        if !show.shows(name) {
            continue;
        }
        let v = match name {
            "pid" => std::process::id().to_string(),
            "uptime" => now.saturating_sub(60).to_string(),
            "time" => (clock::process_started() + now as i64).to_string(),
            "version" => crate::settings::VERSION.to_string(),
            "libevent" => "polling".into(),
            "pointer_size" => (8 * std::mem::size_of::<usize>()).to_string(),
            "rusage_user" => user.clone(),
            "rusage_system" => system.clone(),
            "max_connections" => shared.settings.maxconns.to_string(),
            "curr_connections" => conns.curr_connections.load(Ordering::Relaxed).to_string(),
            "rejected_connections" => load(&conns.rejected_connections),
            "connection_structures" => load(&conns.conn_structs),
            "response_obj_count" => wbufs.to_string(),
            "response_obj_bytes" => wbytes.to_string(),
            "read_buf_count" => rbufs.to_string(),
            "read_buf_bytes" => rbytes.to_string(),
            // Allocation failures abort a Rust process, and a connection
            // keeps its read buffer (there is no pool of free ones).
            "response_obj_oom" | "read_buf_bytes_free" | "read_buf_oom" => "0".into(),
            "reserved_fds" => reserved_fds(shared).to_string(),
            "limit_maxbytes" => shared.maxbytes.load(Ordering::Relaxed).to_string(),
            "accepting_conns" => {
                u8::from(!conns.listen_disabled.load(Ordering::Relaxed)).to_string()
            }
            "listen_disabled_num" => load(&conns.listen_disabled_num),
            "time_in_listen_disabled_us" => load(&conns.time_in_listen_disabled_us),
            "threads" => shared.settings.threads.to_string(),
            // The watcher log (memcached's `watch`).
            "log_worker_dropped" => watch[0].to_string(),
            "log_worker_written" => watch[1].to_string(),
            "log_watcher_skipped" => watch[2].to_string(),
            "log_watcher_sent" => watch[3].to_string(),
            "log_watchers" => watch[4].to_string(),
            "ssl_handshake_errors" => load(&SSL_HANDSHAKE_ERRORS),
            "time_since_server_cert_refresh" => now
                .saturating_sub(crate::counters::cert_refresh_time())
                .to_string(),
            // NAPI ids (memcached's -N) are not used: connections go round-robin.
            "unexpected_napi_ids" | "round_robin_fallback" => "0".into(),
            // The workers' counters, else the store's figure (0 when the
            // plugin does not report it).
            _ => match t.get(name) {
                Some(v) => v.to_string(),
                None => from_plugin.unwrap_or_else(|| "0".into()),
            },
        };
        out.push((name.to_string(), v));
    }
    out
}

/// `stats plugin`: wasmcached's own settings and figures (the plugin, its
/// shards, faults and reloads), then the stats the plugin reports that are
/// not memcached's, summed over the shards.
pub fn plugin(shared: &Shared, agg: &mut Aggregate) -> Vec<(String, String)> {
    let f = &shared.faults;
    let s = &shared.settings;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
    let plugin = s
        .plugin
        .as_ref()
        .map_or_else(|| "default-store".into(), |p| p.display().to_string());
    let mut out: Vec<(String, String)> = vec![
        ("plugin".into(), plugin),
        (
            "plugin_deadline_ms".into(),
            s.plugin_deadline.as_millis().to_string(),
        ),
        (
            "plugin_cache".into(),
            if s.plugin_cache { "on" } else { "off" }.into(),
        ),
        (
            "io".into(),
            match s.io {
                crate::settings::Io::Uring => "uring",
                _ => "poll",
            }
            .into(),
        ),
        (
            "metrics_listen".into(),
            s.metrics_listen.clone().unwrap_or_else(|| "off".into()),
        ),
        ("hotkeys_sample".into(), s.hotkeys_sample.to_string()),
        ("hotkeys_window".into(), s.hotkeys_window.to_string()),
        ("shards".into(), shared.router.shards().to_string()),
        ("plugin_traps".into(), load(&f.plugin_traps)),
        ("plugin_restarts".into(), load(&f.plugin_restarts)),
        ("plugin_renewals".into(), load(&f.plugin_renewals)),
        ("plugin_reloads".into(), load(&f.plugin_reloads)),
        (
            "plugin_reload_failures".into(),
            load(&f.plugin_reload_failures),
        ),
        (
            "plugin_restart_failures".into(),
            load(&f.plugin_restart_failures),
        ),
        ("plugin_backoffs".into(), load(&f.plugin_backoffs)),
        (
            "plugin_shards_backing_off".into(),
            load(&f.plugin_shards_backing_off),
        ),
    ];
    for k in MEMCACHED_GENERAL {
        agg.take(k);
    }
    // The plugin's own figures, then its ABI v8 metrics under their
    // display names (`metric:<name>`, `metric:<name>:count|sum`).
    out.extend(crate::plugin::stat_lines_for_display(agg.drain()));
    out
}

/// `stats conns`, as memcached prints it: every listening socket, UDP
/// socket and client connection by id (on unix its file descriptor), in id
/// order. `me` is the connection asking, which is parsing a command.
pub fn conns(shared: &Shared, me: u64) -> Vec<(String, String)> {
    let now = clock::now();
    let reg = shared
        .conn_registry
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    for (id, c) in reg.iter() {
        let state = c.state.load();
        let socket = c.udp || state == ConnState::Listening;
        if c.udp {
            out.push((format!("{id}:UDP"), "UDP".to_string()));
        }
        out.push((format!("{id}:addr"), c.addr.clone()));
        if !socket {
            out.push((format!("{id}:listen_addr"), c.listen_addr.clone()));
        }
        // The asking connection is running its commands, whatever it last published.
        let state = if *id == me {
            ConnState::ParseCmd.name()
        } else {
            state.name()
        };
        out.push((format!("{id}:state"), state.to_string()));
        let last = c.last_cmd_time.load(Ordering::Relaxed);
        out.push((
            format!("{id}:secs_since_last_cmd"),
            now.saturating_sub(last).to_string(),
        ));
    }
    out
}

/// `stats settings`: every name memcached 1.6.18 prints, in its order and
/// with its formats; the real value where the concept exists here, the value
/// given for memcached's slab/LRU knobs (hints for the plugin, see
/// [`crate::settings::Knobs`]), memcached's fixed default for what does not
/// exist here (extstore, the restartable memory file). wasmcached's own
/// settings follow.
pub fn settings(shared: &Shared) -> Vec<(String, String)> {
    let s = &shared.settings;
    let k = &s.knobs;
    let t = &s.ssl_shown;
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let on_off = |b: bool| if b { "on" } else { "off" }.to_string();
    // memcached prints unset strings with %s: "(null)" from glibc, or "NULL".
    let or = |v: &Option<String>, none: &str| v.clone().unwrap_or_else(|| none.into());
    let path_or = |v: &Option<std::path::PathBuf>, none: &str| {
        v.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| none.into())
    };
    let lines: Vec<(&str, String)> = vec![
        (
            "maxbytes",
            shared.maxbytes.load(Ordering::Relaxed).to_string(),
        ),
        ("maxconns", s.maxconns.to_string()),
        ("tcpport", s.port.to_string()),
        ("udpport", s.udp_port.to_string()),
        (
            "inter",
            if s.listen.is_empty() {
                "NULL".into()
            } else {
                s.listen.join(",")
            },
        ),
        ("verbosity", shared.verbose().to_string()),
        // memcached's flush_all-with-delay cut-off; flushes here are the plugin's.
        ("oldest", "0".into()),
        ("evictions", on_off(s.evict_to_free)),
        ("domain_socket", path_or(&s.unix_socket, "NULL")),
        ("umask", format!("{:o}", s.unix_mask)),
        ("shutdown_command", yes_no(s.shutdown_command)),
        ("growth_factor", format!("{:.2}", k.growth_factor)),
        ("chunk_size", k.chunk_size.to_string()),
        ("num_threads", s.threads.to_string()),
        // Every worker reads every UDP socket.
        ("num_threads_per_udp", s.threads.to_string()),
        ("stat_key_prefix", s.prefix_delimiter.to_string()),
        ("detail_enabled", yes_no(crate::detail::on())),
        ("reqs_per_event", s.reqs_per_event.to_string()),
        ("cas_enabled", yes_no(s.use_cas)),
        ("tcp_backlog", s.backlog.to_string()),
        ("binding_protocol", s.protocol.name().into()),
        ("auth_enabled_sasl", yes_no(s.sasl)),
        ("auth_enabled_ascii", path_or(&s.auth_file, "no")),
        ("item_size_max", s.item_size_max.to_string()),
        ("maxconns_fast", yes_no(s.maxconns_fast)),
        ("hashpower_init", k.hashpower_init.to_string()),
        ("slab_reassign", yes_no(k.slab_reassign)),
        ("slab_automove", k.slab_automove.to_string()),
        (
            "slab_automove_ratio",
            format!("{:.2}", k.slab_automove_ratio),
        ),
        ("slab_automove_window", k.slab_automove_window.to_string()),
        ("slab_chunk_max", k.slab_chunk_max.to_string()),
        ("lru_crawler", yes_no(shared.live.lru_crawler())),
        (
            "lru_crawler_sleep",
            shared.live.lru_crawler_sleep().to_string(),
        ),
        (
            "lru_crawler_tocrawl",
            shared.live.lru_crawler_tocrawl().to_string(),
        ),
        ("tail_repair_time", k.tail_repair_time.to_string()),
        ("flush_enabled", yes_no(s.flush_enabled)),
        ("dump_enabled", yes_no(s.dump_enabled)),
        ("hash_algorithm", k.hash_algorithm.name().into()),
        ("lru_maintainer_thread", yes_no(k.lru_maintainer)),
        ("lru_segmented", yes_no(k.lru_segmented)),
        ("hot_lru_pct", k.hot_lru_pct.to_string()),
        ("warm_lru_pct", k.warm_lru_pct.to_string()),
        ("hot_max_factor", format!("{:.2}", k.hot_max_factor)),
        ("warm_max_factor", format!("{:.2}", k.warm_max_factor)),
        ("temp_lru", yes_no(k.temp_lru)),
        ("temporary_ttl", k.temporary_ttl.to_string()),
        ("idle_timeout", s.idle_timeout.to_string()),
        ("watcher_logbuf_size", k.watcher_logbuf_size.to_string()),
        ("worker_logbuf_size", k.worker_logbuf_size.to_string()),
        ("read_buf_mem_limit", k.read_buf_mem_limit.to_string()),
        ("track_sizes", yes_no(shared.live.track_sizes())),
        ("inline_ascii_response", "no".into()),
        // extstore (refused here): memcached's defaults.
        ("ext_item_size", "512".into()),
        ("ext_item_age", "4294967295".into()),
        ("ext_low_ttl", "0".into()),
        ("ext_recache_rate", "2000".into()),
        ("ext_wbuf_size", "4194304".into()),
        ("ext_compact_under", "0".into()),
        ("ext_drop_under", "0".into()),
        ("ext_max_sleep", "1000000".into()),
        ("ext_max_frag", "0.80".into()),
        (
            "slab_automove_freeratio",
            format!("{:.3}", k.slab_automove_freeratio),
        ),
        ("ext_drop_unread", "no".into()),
        ("ssl_enabled", yes_no(s.tls.is_some())),
        ("ssl_chain_cert", or(&t.chain_cert, "(null)")),
        ("ssl_key", or(&t.key, "(null)")),
        ("ssl_verify_mode", t.verify_mode.to_string()),
        ("ssl_keyformat", t.keyformat.to_string()),
        ("ssl_ciphers", or(&t.ciphers, "NULL")),
        ("ssl_ca_cert", or(&t.ca_cert, "NULL")),
        ("ssl_wbuf_size", t.wbuf_size.to_string()),
        ("ssl_session_cache", yes_no(t.session_cache)),
        ("ssl_kernel_tls", yes_no(t.kernel_tls)),
        (
            "ssl_min_version",
            crate::settings::TLS_VERSION_NAMES[t.min_version as usize].into(),
        ),
        // memcached 1.6.18 prints "(null)" here whether or not -N is given.
        ("num_napi_ids", "(null)".into()),
        (
            "memory_file",
            s.memory_file
                .as_ref()
                .map_or("(null)".into(), |p| p.display().to_string()),
        ),
        // wasmcached's own settings are in `stats plugin`.
    ];
    lines
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
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

    fn combined(shards: &[&[u8]]) -> Vec<(String, String)> {
        let mut a = Aggregate::default();
        for s in shards {
            a.add_lines(s);
        }
        a.drain()
    }

    fn pairs(lines: &[(String, String)]) -> Vec<(&str, &str)> {
        lines
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    /// Untyped lines keep the rule every version had: summed, the maximum
    /// for sizes, ages and times, the first shard's text.
    #[test]
    fn untyped_lines_combine_by_name() {
        let got = combined(&[
            b"evictions 2\nreclaim_time 9\nitems:1:age 3\nchunk_size 96\nengine s3\n",
            b"evictions 5\nreclaim_time 4\nitems:1:age 8\nchunk_size 96\nengine lru\n",
        ]);
        assert_eq!(
            pairs(&got),
            [
                ("evictions", "7"),
                ("reclaim_time", "9"),
                ("items:1:age", "8"),
                ("chunk_size", "96"),
                ("engine", "s3"),
            ]
        );
    }

    /// A declaration types the one line after it: counters and gauges are
    /// summed whatever the name, a maximum takes the largest, text is left
    /// out of the combined lines.
    #[test]
    fn typed_lines_combine_by_type() {
        let shard = |busy: u64, peak: u64, role: &str| {
            format!(
                "#counter\nbusy_time {busy}\n#gauge\nqueue_age {busy}\n#max\npeak_items {peak}\n\
                 #text\nrole {role}\nplain_time {busy}\n"
            )
        };
        let (a, b) = (shard(3, 10, "primary"), shard(4, 7, "replica"));
        let got = combined(&[a.as_bytes(), b.as_bytes()]);
        assert_eq!(
            pairs(&got),
            [
                ("busy_time", "7"),
                ("queue_age", "7"),
                ("peak_items", "10"),
                // The declaration applied to `role` only.
                ("plain_time", "4"),
            ]
        );
    }

    /// Only the exact declarations type a line; anything else without a
    /// space is skipped as always, and a declaration is spent by the next
    /// line even when that line is not a stat.
    #[test]
    fn malformed_declarations_leave_lines_untyped() {
        let got = combined(&[
            b"#bogus\na_time 5\n#max \nb 1\n#max\noops\nc 4\n#counter\n",
            b"#bogus\na_time 2\n#max \nb 9\n#max\noops\nc 6\n#counter\n",
        ]);
        // `#max ` trims to `#max`: a declaration; `oops` spends the other.
        assert_eq!(pairs(&got), [("a_time", "5"), ("b", "9"), ("c", "10")]);
    }

    /// A typed figure near the top of u64 wraps instead of panicking.
    #[test]
    fn typed_sums_wrap() {
        let max = format!("#counter\nn {}\n", u64::MAX);
        let got = combined(&[max.as_bytes(), b"#counter\nn 2\n"]);
        assert_eq!(pairs(&got), [("n", "1")]);
    }

    /// `stats shards`: lines arrive shard by shard in any order and come
    /// out in shard order, each shard's lines in its order.
    #[test]
    fn shards_view_is_in_shard_order() {
        let mut a = Aggregate::default();
        a.add_lines(b"shard:10:b 1\nshard:10:a 2\n");
        a.add_lines(b"shard:2:b 3\nshard:2:a x y\n");
        a.add_lines(b"shard:0:b 5\nshard:0:a 6\n");
        let got = by_shard(a.drain());
        assert_eq!(
            pairs(&got),
            [
                ("shard:0:b", "5"),
                ("shard:0:a", "6"),
                ("shard:2:b", "3"),
                ("shard:2:a", "x y"),
                ("shard:10:b", "1"),
                ("shard:10:a", "2"),
            ]
        );
    }

    #[test]
    fn keeps_every_shards_order() {
        let mut a = Aggregate::default();
        // An empty shard first, then one with class 2, then one with 1 and 2.
        a.add_lines(b"active_slabs 0\ntotal_malloced 0\n");
        a.add_lines(b"2:chunk_size 120\n2:used 1\nactive_slabs 1\ntotal_malloced 9\n");
        a.add_lines(b"1:chunk_size 96\n1:used 3\n2:chunk_size 120\n2:used 2\nactive_slabs 2\n");
        let names: Vec<String> = a.drain().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "1:chunk_size",
                "1:used",
                "2:chunk_size",
                "2:used",
                "active_slabs",
                "total_malloced"
            ]
        );
    }

    /// Two shards with their own classes: merged back into class order,
    /// chunks summed before they are rounded up to pages.
    #[test]
    fn slabs_of_shards_add_up_to_one_memcached() {
        let mut a = Aggregate::default();
        a.add_lines(
            b"3:chunk_size 152\n3:chunks_per_page 6898\n3:total_pages 1\n3:total_chunks 5\n\
              3:used_chunks 4\n3:free_chunks 1\nactive_slabs 1\ntotal_malloced 10\n",
        );
        a.add_lines(
            b"1:chunk_size 96\n1:chunks_per_page 10922\n1:total_pages 1\n1:total_chunks 2\n\
              1:used_chunks 2\n1:free_chunks 0\n\
              3:chunk_size 152\n3:chunks_per_page 6898\n3:total_pages 1\n3:total_chunks 7000\n\
              3:used_chunks 6990\n3:free_chunks 10\nactive_slabs 2\ntotal_malloced 20\n",
        );
        let lines: Vec<String> = slabs(by_class(a.drain()))
            .into_iter()
            .map(|(n, v)| format!("{n} {v}"))
            .collect();
        assert_eq!(
            lines,
            [
                "1:chunk_size 96",
                "1:chunks_per_page 10922",
                "1:total_pages 1",
                "1:total_chunks 10922",
                "1:used_chunks 2",
                "1:free_chunks 10920",
                "3:chunk_size 152",
                "3:chunks_per_page 6898",
                "3:total_pages 2",
                "3:total_chunks 13796",
                "3:used_chunks 6994",
                "3:free_chunks 6802",
                "active_slabs 2",
                "total_malloced 30",
            ]
        );
    }
}
